-- Stop while PagerDuty hangs: lua_close joins the sender threads promptly; the events are
-- safe in the outbox (acknowledged) and are sent by the next run (see resume.lua).
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local function threads()
  local f = io.open("/proc/self/status")
  local n = tonumber(f:read("a"):match("Threads:%s*(%d+)"))
  f:close()
  return n
end
local before = threads()
local out = C.output { connection_timeout = 60 }
C.running(out)
out:send(C.svc { host_id = 12, service_id = 34, state = 2, output = "CRITICAL - a" })
out:send(C.hst { host_id = 13, state = 1, output = "DOWN" })
C.settle(out)
host.sleep(0.3)
C.check(threads() > before, "the connector runs its own threads")
local t0 = host.now()
out:stop()
local took = host.now() - t0
print(string.format("shutdown: stop took %.3f s", took))
C.check(took < 5, "stop must not wait for the 60 s request timeout (took " .. took .. " s)")
C.eq(threads(), before, "every connector thread is joined when Broker closes the Lua state")
C.eq(#out:pending(), 0, "nothing left in Broker's queue: the outbox has the events")
print("shutdown: done")
