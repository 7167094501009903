-- Service CRITICAL -> OK, host DOWN -> UP, SOFT ignored, repeat not resent, recovery in a downtime resolves.
-- Each recovery is sent once its trigger was delivered, so that the requests arrive one by one
-- (short incidents sent together: tests/scenarios/short_incidents.lua).
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local out = C.output()
C.running(out)

-- SOFT problem: nothing; HARD: trigger; same HARD state again: nothing; OK: resolve
-- (checks in time order: the HARD check has a fixed time, for the golden payload)
out:send(C.svc { host_id = 12, service_id = 34, state = 2, state_type = 0, check_attempt = 1,
  max_check_attempts = 3, output = "CRITICAL - /var 97%", last_check = 1699999880 })
out:send(C.svc { host_id = 12, service_id = 34, state = 2, state_type = 1, check_attempt = 3,
  max_check_attempts = 3, output = "CRITICAL - /var 97%", long_output = "inodes 50%",
  perfdata = "'used space'=97%;90;95;0;100 size=10GB", last_check = 1700000000 })
out:send(C.svc { host_id = 12, service_id = 34, state = 2, change = false, check_attempt = 3,
  max_check_attempts = 3, output = "CRITICAL - /var 98%" })
C.delivered(out, 1)
out:send(C.svc { host_id = 12, service_id = 34, state = 0, output = "OK - /var 40%" })

-- host DOWN -> UP
out:send(C.hst { host_id = 13, state = 1, output = "CRITICAL - 10.0.0.6: rta nan, lost 100%" })
out:send(C.hst { host_id = 13, state = 1, change = false, output = "CRITICAL - still down" })
C.delivered(out, 3)
out:send(C.hst { host_id = 13, state = 0, output = "OK - rta 0.5ms" })

-- a recovery inside a downtime still resolves
out:send(C.svc { host_id = 13, service_id = 35, state = 2, output = "CRITICAL - certificate expired" })
C.delivered(out, 5)
out:send(C.svc { host_id = 13, service_id = 35, state = 0, downtime = 1, output = "OK" })

-- a problem inside a downtime opens nothing (in_downtime=0)
out:send(C.svc { host_id = 12, service_id = 36, state = 1, downtime = 1, output = "WARNING - load" })

-- an OK status of an object never seen that is not a state change: nothing
out:send(C.svc { host_id = 12, service_id = 37, state = 0, change = false, output = "OK" })

C.settle(out)
C.eq(out:unacked(), 0, "unacknowledged after settle")
C.delivered(out, 6)
out:stop()
print("lifecycle: done")
