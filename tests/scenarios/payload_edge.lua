-- Hostile plugin output: control characters, quotes, invalid UTF-8, 100 kB; unknown objects.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local out = C.output()
C.running(out)
local ctl = {}
for i = 0, 31 do ctl[#ctl + 1] = string.char(i) end
local nasty = "CRITICAL - \"quoted\" back\\slash \xff\xfe bad utf8 " .. table.concat(ctl) .. " end"
out:send(C.svc { host_id = 12, service_id = 34, state = 2, output = nasty })
out:send(C.svc { host_id = 13, service_id = 35, state = 3, output = "UNKNOWN - " .. string.rep("x", 100 * 1024),
  long_output = string.rep("long line\n", 20000) })
-- unknown to the cache: still sent, with ids
out:send(C.hst { host_id = 99, state = 1, output = "DOWN - unknown host" })
out:send(C.svc { host_id = 12, service_id = 99, state = 2, output = "CRITICAL - unknown service" })
-- a Broker that raises on reading a field the event lacks: the details are then read one field
-- at a time, and the event is sent with every field it has
local strict = C.svc { host_id = 12, service_id = 36, state = 2, output = "CRITICAL - strict event",
  perfdata = "'used'=97%;80;90;0;100" }
strict.__strict = true
out:send(strict)
C.settle(out)
C.delivered(out, 5)
out:stop()
print("payload_edge: done")
