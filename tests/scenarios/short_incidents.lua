-- Short incidents while PagerDuty answers slowly (the Rust test delays every 202): each
-- service goes CRITICAL, OK, CRITICAL, OK in quick succession, each state change acknowledged
-- (committed on its own) before the next one comes, all long before the first answer: later
-- events wait in their lanes behind earlier ones. Nothing fails and nothing is rate limited,
-- so nothing may be merged: all four events of each service are sent, in order
-- (tests/bridge.rs checks the stand-in's incidents and the statistics).
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local out = C.output()
C.running(out)
local services = 7
for round = 1, 2 do
  for sid = 1, services do
    out:send(C.svc { host_id = 20, service_id = sid, state = 2, output = "CRITICAL - round " .. round })
    C.settle(out)
    out:send(C.svc { host_id = 20, service_id = sid, state = 0, output = "OK - round " .. round })
    C.settle(out)
  end
end
C.delivered(out, 4 * services)
out:stop()
print("short_incidents: done")
