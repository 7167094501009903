-- 10,000 state changes while PagerDuty answers 500 (the test switches it back to 202 after
-- a while): Broker's queue empties at once, everything reaches PagerDuty after recovery.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local services = 2500
for sid = 1, services do
  C.cache.services["12:" .. (1000 + sid)] = { description = "svc " .. sid, groups = {} }
end
local out = C.output({ stats_interval = 1, log_level = 2 }, { queue_max = 100000 })
C.running(out)
local rss0 = host.rss_kb()
local t0 = host.now()
for _, state in ipairs { 2, 0, 1, 2 } do
  for sid = 1, services do
    out:send(C.svc { host_id = 12, service_id = 1000 + sid, state = state, output = "state " .. state })
  end
end
local sent = host.now() - t0
local t1 = host.now()
C.settle(out, 10)
print(string.format("outage: 10000 events written in %.3f s; Broker's queue empty %.3f s later (%d flushes)",
  sent, host.now() - t1, out:flushes()))
C.eq(out:unacked(), 0, "everything acknowledged during the outage")
C.drain(out, 90)
local grown = host.rss_kb() - rss0
print(string.format("outage: drained after %.1f s; resident memory grew by %d kB", host.now() - t0, grown))
C.check(grown < 100 * 1024, "memory bounded (grew " .. grown .. " kB)")
out:stop()
print("outage: done")
