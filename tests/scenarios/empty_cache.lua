-- Broker saves its cache only at a clean stop: after a crash, the objects defined since are
-- unknown to it. Triggers with a full cache, then a restart with an empty cache (the outbox
-- kept): the acknowledgement, the re-trigger and the resolves must name the objects as their
-- triggers did.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local out = C.output { stats_interval = 1 }
-- every event acknowledged and delivered, then Broker stops the output
local function deliver_all_and_stop()
  C.settle(out)
  C.drain(out, 30)
  out:stop()
end
C.running(out)
out:send(C.svc { host_id = 12, service_id = 34, state = 2, output = "CRITICAL - /var 97%" })
out:send(C.hst { host_id = 13, state = 1, output = "DOWN - unreachable" })
out:send(C.svc { host_id = 20, service_id = 1, state = 2, output = "CRITICAL - svc-1" })
deliver_all_and_stop()

out:set_cache({}) -- Broker restarted after a crash: none of these objects in its cache
C.eq(out:start(), true, "restarted")
out:send(C.ev.acknowledgement { bbdo = C.bbdo, host_id = 20, service_id = 1, author = "alice",
                                comment = "on it" })
out:send(C.svc { host_id = 20, service_id = 1, state = 1, output = "WARNING - svc-1" })
out:send(C.svc { host_id = 12, service_id = 34, state = 0, output = "OK - /var 50%" })
out:send(C.hst { host_id = 13, state = 0, output = "UP" })
out:send(C.svc { host_id = 99, service_id = 1, state = 2, output = "CRITICAL - never named" })
deliver_all_and_stop()
print("empty_cache: done")
