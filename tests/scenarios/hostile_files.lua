-- Hostile files (run with umask 022): a symbolic link planted at the log path is refused at
-- init and the file it points to untouched; names and outputs holding control characters
-- (ESC, CR, LF, NUL) cannot forge a log line; the outbox, its -wal and -shm, the statistics
-- file and the log are created 0640 (the Rust test checks the files left after the run).
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local victim = C.work .. "/victim.txt"
local f = assert(io.open(victim, "w"))
f:write("precious\n")
f:close()
local planted = C.work .. "/planted.log"
os.remove(planted)
assert(os.execute("ln -s " .. victim .. " " .. planted))
local refused = C.output({ log_path = planted }, { name = "Refused" })
C.eq(refused:state(), "init_failed", "a log path that is a link")
C.check(tostring(refused:error()):find(planted .. " is a symbolic link", 1, true), tostring(refused:error()))

-- a host whose name and output try to forge a line of the log
local forged = "\r\n2030-01-01T00:00:00Z [ERROR] forged"
C.cache.hosts[30] = { name = "evil\27[2J\0" .. forged, address = "10.0.0.30", instance_id = 1, groups = {} }
C.cache.services["30:1"] = { description = "svc" .. forged, groups = {} }
local out = C.output { stats_interval = 1 }
C.running(out)
out:send(C.svc { host_id = 30, service_id = 1, state = 2, output = "CRITICAL\27[31m red\0" .. forged .. "\n" .. forged })
C.settle(out)
C.delivered(out, 1)
local function mode(path)
  local p = assert(io.popen("stat -c %a " .. path))
  local m = p:read("l")
  p:close()
  return m
end
local db = C.work .. "/PagerDuty.db"
for _, file in ipairs { db, db .. "-wal", db .. "-shm" } do
  C.eq(mode(file), "640", "mode of " .. file)
end
C.check(out:idle_until(function() return C.stat("delivered") == 1 end, 20), "statistics written")
out:stop()
f = assert(io.open(victim))
C.eq(f:read("a"), "precious\n", "the file behind the planted link")
f:close()
print("hostile_files: done")
