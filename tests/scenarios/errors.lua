-- PagerDuty answers 400, 429, 500, then a hanging request: nothing blocks, nothing is lost.
-- The Rust test scripts the stand-in: 400, 429, 202, 500, 202, hang, 202...
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local out = C.output { http_timeout = 2 }
C.running(out)

-- 1. rejected (400): logged and dropped, acknowledged
out:send(C.svc { host_id = 12, service_id = 40, state = 2, output = "CRITICAL - rejected one" })
C.settle(out)
C.delivered(out, 1)
-- 2. rate limited (429) then accepted
out:send(C.svc { host_id = 12, service_id = 41, state = 2, output = "CRITICAL - rate limited one" })
C.settle(out)
C.delivered(out, 2)
-- 3. server error (500) then accepted
out:send(C.svc { host_id = 12, service_id = 42, state = 2, output = "CRITICAL - server error one" })
C.settle(out)
C.delivered(out, 3)
-- 4. the server hangs: the request times out (2 s) and is retried
out:send(C.svc { host_id = 12, service_id = 43, state = 2, output = "CRITICAL - hang one" })
local t0 = host.now()
C.settle(out) -- stored in the outbox: acknowledged although the server hangs
C.delivered(out, 4)
print(string.format("errors: hang recovered after %.2f s", host.now() - t0))

local logs = io.open(C.log):read("a")
C.check(logs:find("rejected trigger 12_40", 1, true), "400 logged")
C.check(logs:find("Event object is invalid", 1, true) or logs:find("HTTP 400", 1, true), "PagerDuty's reason logged")
C.check(logs:find("rate limited", 1, true), "429 logged")
C.check(logs:find("HTTP 500", 1, true), "500 logged")
out:stop()
print("errors: done")
