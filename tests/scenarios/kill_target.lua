-- Events are stored and acknowledged while PagerDuty refuses them; the test then kills this
-- process with SIGKILL (see tests/durability.rs) and a new run must deliver every one.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local out = C.output()
C.running(out)
for i = 1, 10 do
  local sid = 200 + i
  out:send(C.svc { host_id = 12, service_id = sid, state = 1, output = "WARNING - " .. sid })
  out:send(C.svc { host_id = 12, service_id = sid, state = 2, output = "CRITICAL - " .. sid })
  if i % 2 == 1 then
    out:send(C.svc { host_id = 12, service_id = sid, state = 0, output = "OK - " .. sid })
  end
end
C.settle(out)
C.eq(out:unacked(), 0, "Broker was told every event is safe")
print("READY")
io.stdout:flush()
host.sleep(60) -- killed long before
error("not killed")
