-- Statuses of objects that stay OK are answered by the script (the library found them OK and
-- unchanged once): acknowledged at once while nothing is pending, counted in the statistics,
-- and any other status of such an object still reaches the library (a problem is triggered,
-- a recovery resolves; a SOFT problem is seen, not sent).
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local out = C.output { stats_interval = 1 }
C.running(out)
local sent = 0
local function send(ev)
  out:send(ev)
  sent = sent + 1
end
local function svc(state, o)
  o = o or {}
  return C.svc { host_id = 20, service_id = o.sid or 1, state = state, change = o.change or false,
    state_type = o.state_type, output = state == 0 and "OK" or "CRITICAL" }
end

-- 20:1 first seen OK, not a state change: the library remembers it from its ids, state and
-- check times (no details read), and the next OK status is the script's
send(svc(0))
send(svc(0))
C.settle(out)
local answered = 1
for _ = 1, 100 do
  send(svc(0))
  C.eq(out:unacked(), 0, "an OK status of an object that stays OK, nothing pending: acknowledged at once")
end
answered = answered + 100

-- 20:2 fails (a trigger to store): the 40 OK statuses of 20:1 behind it are answered by the
-- script, every 32nd asks the library again while the trigger waits for its commit. Whether
-- the commit ends before the trigger's own write() returns is the committer thread's speed
-- (an idle committer commits at once): if it does, write() acknowledges it and all 40 are the
-- script's; the count follows what Broker was told, not a race.
send(svc(2, { sid = 2, change = true }))
local trigger_acknowledged = out:unacked() == 0
for _ = 1, 40 do send(svc(0)) end
answered = answered + (trigger_acknowledged and 40 or 39)
C.settle(out)
C.delivered(out, 1)

-- 20:1 fails: the library sees it (a trigger), and every status of it while CRITICAL
send(svc(2, { change = true }))
for _ = 1, 5 do send(svc(2)) end
C.delivered(out, 2)
-- recovers: resolved; the next OK is the library's to find unchanged, the 10 after it the script's
send(svc(0, { change = true }))
send(svc(0))
for _ = 1, 10 do send(svc(0)) end
answered = answered + 10
C.delivered(out, 3)
-- a SOFT OK is answered like a HARD one (its type changes no decision): 8 more for the script
send(svc(0, { state_type = 0 }))
for _ = 1, 7 do send(svc(0)) end
answered = answered + 8
-- a SOFT problem and its SOFT recovery reach the library (nothing sent: hard_only), the HARD
-- problem after them is triggered and its recovery resolved
send(svc(2, { change = true, state_type = 0 }))
send(svc(0, { change = true, state_type = 0 }))
send(svc(0, { state_type = 0 }))
send(svc(2, { change = true }))
C.delivered(out, 4)
send(svc(0, { change = true }))
C.delivered(out, 5)

-- host 21 stays UP (11 answered by the script), goes DOWN (triggered), comes back (resolved)
local function hst(state, change)
  return C.hst { host_id = 21, state = state, change = change or false, output = state == 0 and "OK - rta 1ms" or "CRITICAL - down" }
end
send(hst(0))
send(hst(0))
for _ = 1, 10 do send(hst(0)) end
answered = answered + 11
send(hst(1, true))
C.delivered(out, 6)
send(hst(0, true))
C.delivered(out, 7)
C.settle(out)
C.eq(out:unacked(), 0, "unacknowledged after settle")
out:stop()
local by_script, seen = C.stat("events_answered_by_script"), C.stat("events_seen")
print(string.format("stays_ok: %d events, %d answered by the script, %d seen by the library's statistics", sent, by_script, seen))
C.eq(by_script, answered, "events answered by the script")
C.eq(seen, sent, "events seen")
print("stays_ok: done")
