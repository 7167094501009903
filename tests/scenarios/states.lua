-- Every row of the state machine (README, "How Centreon states become PagerDuty incidents"),
-- in the BBDO version of CPD_BBDO, through two outputs that see the same events:
--   A: default parameters (dedup keys "20_1", ...);
--   V: dedup_key_prefix "V-", downtime_action=resolve, suppress_services_of_down_hosts=1,
--      skip_anon_events=1, send_acknowledgements=0.
-- Centreon's own sequences are reproduced per BBDO version: BBDO 2 signals acknowledgements
-- and downtimes with an acknowledgement/downtime event plus a status carrying the flag, BBDO 3
-- with a pb_acknowledgement/pb_downtime event plus an adaptive status.
-- tests/bridge.rs checks what PagerDuty received for each object.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local ev = C.ev
local V_PARAMS = { dedup_key_prefix = "V-", downtime_action = "resolve",
  suppress_services_of_down_hosts = 1, skip_anon_events = 1, send_acknowledgements = 0 }

local function start()
  local a = C.output({}, { name = "A" })
  local v = C.output(V_PARAMS, { name = "V" })
  C.running(a); C.running(v)
  return { a, v }
end
local outs = start()

-- Sends `e` to both outputs; `n` is how many PagerDuty events (A and V together) it causes.
-- They are waited for before going on, so that no event is pending when the next one for the
-- same object comes: a backlog would let the outbox merge superseded events (by design), and
-- the checks want every step.
local expected = 0
local function send(e, n)
  for _, o in ipairs(outs) do o:send(e) end
  if n and n > 0 then
    expected = expected + n
    C.delivered(outs[1], expected, 90)
  end
end

local function svc(hid, sid, state, o)
  o = o or {}
  o.host_id, o.service_id, o.state = hid, sid, state
  o.output = o.output or ({ [0] = "OK", "WARNING - w", "CRITICAL - c" })[state]
  return C.svc(o)
end

local function ack(hid, sid, author, comment, state, n)
  send(ev.acknowledgement { bbdo = C.bbdo, host_id = hid, service_id = sid, author = author,
    comment = comment, state = state }, n)
  if C.bbdo == 3 then
    send(ev.adaptive_service_status { host_id = hid, service_id = sid, acknowledgement_type = 1 })
  else
    send(svc(hid, sid, state, { change = false, acknowledged = true }))
  end
end

-- Downtime start (depth 1) or end (depth 0) on a service currently in `state`.
local function downtime(hid, sid, depth, state, n)
  send(ev.downtime { bbdo = C.bbdo, host_id = hid, service_id = sid, started = true,
    actual_end_time = depth == 0 and os.time() or 0 })
  if C.bbdo == 3 then
    send(ev.adaptive_service_status { host_id = hid, service_id = sid, scheduled_downtime_depth = depth }, n)
  else
    send(svc(hid, sid, state, { change = false, downtime = depth }), n)
  end
end

-- 20:1 problem -> acknowledgement (alice) -> recovery
send(svc(20, 1, 2), 2)
ack(20, 1, "alice", "on it, ticket 42", 2, 1)
send(svc(20, 1, 2, { change = false, acknowledged = true }))
-- the acknowledgement is removed while the problem persists: logged, nothing sent
send(ev.acknowledgement { bbdo = C.bbdo, host_id = 20, service_id = 1, author = "alice",
  deletion_time = os.time(), state = 2 })
send(svc(20, 1, 2, { change = false, acknowledged = false }))
send(svc(20, 1, 0), 2)

-- 20:2 problem that starts inside a downtime, then the downtime ends while it still fails
send(svc(20, 2, 0, { change = false }))
downtime(20, 2, 1, 0)
send(svc(20, 2, 2, { downtime = 1, output = "CRITICAL - started in the downtime" }))
downtime(20, 2, 0, 2, 2)
send(svc(20, 2, 2, { change = false, output = "CRITICAL - still failing" }))

-- 20:3 recovery inside a downtime
send(svc(20, 3, 2), 2)
downtime(20, 3, 1, 2, 1)
send(svc(20, 3, 0, { downtime = 1 }), 1)

-- 20:4 flapping: nothing while it flaps, the current state once it stops
send(svc(20, 4, 2, { flapping = true }))
send(svc(20, 4, 1, { flapping = true }))
send(svc(20, 4, 2, { flapping = true }))
send(svc(20, 4, 2, { change = false, flapping = false, output = "CRITICAL - stopped flapping" }), 2)

-- 20:5 acknowledgement with no open incident
send(svc(20, 5, 0, { change = false }))
ack(20, 5, "bob", "nothing open", 0)

-- 21 host DOWN with a failing service; then UP while the service still fails
send(C.hst { host_id = 21, state = 1, output = "CRITICAL - 10.0.0.21: rta nan, lost 100%" }, 2)
send(svc(21, 1, 2, { output = "CRITICAL - BGP session down" }), 2)
send(svc(21, 2, 1, { output = "WARNING - eth1 errors" }), 2)
send(svc(21, 2, 0, { output = "OK - errors gone" }), 1)
send(C.hst { host_id = 21, state = 0, output = "OK - rta 1ms" }, 3)
send(svc(21, 1, 0, { output = "OK - BGP established" }), 2)

-- 99 host missing from Broker's cache
send(C.hst { host_id = 99, state = 1, output = "CRITICAL - unknown host down" }, 1)

-- 20:7 downtime starts while an incident is open, ends while it still fails
send(svc(20, 7, 2), 2)
downtime(20, 7, 1, 2, 1)
downtime(20, 7, 0, 2, 1)
send(svc(20, 7, 0), 2)

-- 20:6 restart between trigger (acknowledged) and recovery; Broker replays the CRITICAL
send(svc(20, 6, 2), 2)
ack(20, 6, "carol", "", 2, 1)
for _, o in ipairs(outs) do C.settle(o, 60) end
-- everything so far delivered (A 18, V 17), so that no request is in flight at the stop
-- (one would be sent again after the restart: at least once, same dedup_key)
assert(expected == 35, "expected count " .. expected)
for _, o in ipairs(outs) do o:stop() end
outs = start()
send(svc(20, 6, 2, { change = false, acknowledged = true, output = "CRITICAL - replayed after restart" }))
send(svc(20, 6, 0), 2)

for _, o in ipairs(outs) do C.settle(o, 60) end
-- A: 20_1 x3, 20_2 x1, 20_3 x2, 20_4 x1, 21_H x2, 21_1 x2, 21_2 x2, 99_H x1, 20_7 x2, 20_6 x3
-- V: 20_1 x2, 20_2 x1, 20_3 x2, 20_4 x1, 21_H x4, 21_1 x2, 20_7 x4, 20_6 x2
assert(expected == 19 + 18, "expected count " .. expected)
for _, o in ipairs(outs) do o:stop() end
print("states: done")
