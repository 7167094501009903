-- What the bridge reads of a status that changes nothing (each field read is a call into
-- Broker's userdata, counted by host.field_reads(); API 2 only), and that skipping the flags
-- of an object that stays OK loses nothing: a problem that starts in a downtime entered while
-- OK is still triggered when the downtime ends, an acknowledgement of a problem still sent.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local out = C.output()
C.running(out)

-- field reads made by sending the events given, in order
local function reads_of(...)
  local before = host.field_reads()
  for _, ev in ipairs({ ... }) do out:send(ev) end
  return host.field_reads() - before
end

-- field reads per event of `n` copies of a status that changes nothing
local function reads_per_event(make, n)
  out:send(make(true)) -- the first status of the object: the details path
  local evs = {}
  for i = 1, n do evs[i] = make(false) end
  return reads_of(table.unpack(evs)) / n
end

local N = 50
local ok_svc = reads_per_event(function(change)
  return C.svc { host_id = 20, service_id = 1, state = 0, change = false, output = "OK" }
end, N)
local crit_svc = reads_per_event(function(change)
  return C.svc { host_id = 20, service_id = 2, state = 2, change = change, output = "CRITICAL" }
end, N)
local up_host = reads_per_event(function(change)
  return C.hst { host_id = 21, state = 0, change = false, output = "OK - rta 1ms" }
end, N)
local down_host = reads_per_event(function(change)
  return C.hst { host_id = 20, state = 1, change = change, output = "CRITICAL - down" }
end, N)
print(string.format("field_reads: per event: OK service %.2f, CRITICAL service %.2f, UP host %.2f, DOWN host %.2f",
  ok_svc, crit_svc, up_host, down_host))
C.eq(ok_svc, 3.0, "field reads of an unchanged OK service (host_id, service_id, state)")
C.eq(crit_svc, 7.0, "field reads of an unchanged CRITICAL service (and its state type and 3 flags)")
C.eq(up_host, 2.0, "field reads of an unchanged UP host (host_id, state)")
C.eq(down_host, 6.0, "field reads of an unchanged DOWN host (and its state type and 3 flags)")
C.delivered(out, 2) -- triggers of 20:2 and host 20 (an OK of an unknown object that is not a
                    -- state change sends nothing)
out:send(C.hst { host_id = 20, state = 0, output = "OK - back" })

-- 21:1 enters a downtime while OK (not read), fails in it (held), the downtime ends: trigger
out:send(C.svc { host_id = 21, service_id = 1, state = 0, change = false, output = "OK" })
out:send(C.svc { host_id = 21, service_id = 1, state = 0, change = false, downtime = 1, output = "OK" })
out:send(C.svc { host_id = 21, service_id = 1, state = 2, downtime = 1, output = "CRITICAL - in downtime" })
out:send(C.svc { host_id = 21, service_id = 1, state = 2, change = false, downtime = 1, output = "CRITICAL - in downtime" })
out:send(C.svc { host_id = 21, service_id = 1, state = 2, change = false, output = "CRITICAL - downtime over" })
-- 21:2 fails, is acknowledged: acknowledge
out:send(C.svc { host_id = 21, service_id = 2, state = 2, output = "CRITICAL" })
C.delivered(out, 5) -- host 20 resolved, 21:1 and 21:2 triggered
out:send(C.svc { host_id = 21, service_id = 2, state = 2, change = false, acknowledged = true, output = "CRITICAL" })
C.delivered(out, 6)
out:send(C.svc { host_id = 20, service_id = 2, state = 0, output = "OK" })
C.delivered(out, 7)

-- A state change takes the details path, which does not read again what write() has read (the
-- type, ids, state and flags) and reads of a status only what the library uses: 8 fields
-- (38 reads in all for a service until 2026-12-07, when the details were all 31 fields).
local svc_problem = reads_of(C.svc { host_id = 20, service_id = 3, state = 2, output = "CRITICAL - new" })
local svc_recovery = reads_of(C.svc { host_id = 20, service_id = 3, state = 0, output = "OK - back" })
local host_problem = reads_of(C.hst { host_id = 21, state = 1, output = "CRITICAL - down" })
print(string.format("field_reads: state changes: service problem %d, its recovery %d, host problem %d",
  svc_problem, svc_recovery, host_problem))
-- BBDO 2: acknowledgement_type too (the library's second choice after `acknowledged`)
local v2 = C.bbdo == 2 and 1 or 0
C.eq(svc_problem, 15 + v2, "field reads of a service going CRITICAL (3 + 4 flags + 8 details)")
C.eq(svc_recovery, 15 + v2, "field reads of a service recovering (3 + 4 flags + 8 details)")
C.eq(host_problem, 14 + v2, "field reads of a host going DOWN (2 + 4 flags + 8 details)")
C.delivered(out, 10)

-- The first status of an object the library has no memory of, OK and not a state change: its
-- ids, state and two check times, nothing else (15 reads for a service, the whole details path
-- with its 9 broker_cache lookups, until 2026-12-07). An OK state change, which may close an
-- incident opened before a restart, takes the details path, without reading the times again,
-- and its resolve is sent.
local first_ok_svc = reads_of(C.svc { host_id = 22, service_id = 1, state = 0, change = false, output = "OK" })
local first_up_host = reads_of(C.hst { host_id = 22, state = 0, change = false, output = "OK - rta 1ms" })
local first_recovery = reads_of(C.svc { host_id = 22, service_id = 2, state = 0, change = true, output = "OK - back" })
print(string.format("field_reads: first statuses: OK service %d, UP host %d, service recovery %d",
  first_ok_svc, first_up_host, first_recovery))
C.eq(first_ok_svc, 5, "field reads of the first OK status of a service (3 + 2 times)")
C.eq(first_up_host, 4, "field reads of the first UP status of a host (2 + 2 times)")
C.eq(first_recovery, 15 + v2, "field reads of the first status of a service, a recovery (3 + 2 times + 4 flags + 6 details)")
C.delivered(out, 11)
C.settle(out)
C.eq(out:unacked(), 0, "unacknowledged after settle")
out:stop()
print("field_reads: done")
