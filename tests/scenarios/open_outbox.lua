-- Opens one output whose outbox_path is CPD_OUTBOX; reports its state (tests/durability.rs).
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local started = host.now()
local out = C.output { outbox_path = os.getenv("CPD_OUTBOX") }
print(string.format("init_ms: %d", math.floor((host.now() - started) * 1000)))
out:send(C.svc { host_id = 12, service_id = 34, state = 2, output = "CRITICAL - x" })
print("state: " .. out:state())
print("error: " .. tostring(out:error()))
print("unacked: " .. out:unacked())
for _, l in ipairs(out:logs()) do print("broker_log: " .. l) end
if out:state() == "running" then
  C.settle(out)
  C.delivered(out, 1)
  out:stop()
end
