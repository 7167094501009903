-- Reload in the middle of a stream while PagerDuty fails: unacknowledged events are replayed, none lost.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local out = C.output()
C.running(out)
for sid = 50, 54 do
  out:send(C.svc { host_id = 12, service_id = sid, state = 2, output = "CRITICAL - " .. sid })
end
C.settle(out) -- stored: acknowledged although the server fails
out:reload()
C.running(out)
out:send(C.svc { host_id = 12, service_id = 55, state = 1, output = "WARNING - after reload" })
C.settle(out)
C.delivered(out, 6)
out:reload()
C.running(out)
-- a recovery after the reload: the new instance resolves what the old one opened
out:send(C.svc { host_id = 12, service_id = 50, state = 0, output = "OK" })
C.settle(out)
C.delivered(out, 7)
out:stop()
print("reload: done")
