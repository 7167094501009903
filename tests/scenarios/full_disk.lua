-- The outbox's file system fills up (CPD_SMALL_FS is a 4 MB tmpfs; a filler file takes most
-- of it): one clear log line, no crash, Broker keeps what could not be stored; once space is
-- freed everything is stored, acknowledged and delivered.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local fs = assert(os.getenv("CPD_SMALL_FS"))
local out = C.output { outbox_path = fs .. "/outbox.db", stats_path = C.work .. "/full.stats.json",
  stats_interval = 1, outbox_commit_delay_ms = 0 }
C.running(out)
-- 12:4000 stays OK: the library remembers it at its first status, the script answers the next
local function ok_4000() return C.svc { host_id = 12, service_id = 4000, state = 0, change = false, output = "OK" } end
out:send(ok_4000())
out:send(ok_4000())
C.settle(out)
-- fill the file system, leaving a few pages
local filler = io.open(fs .. "/filler", "wb")
filler:setvbuf("no")
local chunk = string.rep("f", 512)
while filler:write(chunk) do end
filler:close()
local big = string.rep("y", 6000)
for sid = 1, 60 do
  out:send(C.svc { host_id = 12, service_id = 3000 + sid, state = 2, output = "CRITICAL - " .. sid, long_output = big })
end
out:idle(1.5)
local waiting = out:unacked()
print("full_disk: events Broker keeps while the disk is full: " .. waiting)
C.check(waiting > 0, "Broker keeps what could not be stored")
-- the script answers these itself, and acknowledges none while a state change is not stored
for _ = 1, 40 do out:send(ok_4000()) end
C.eq(out:unacked(), waiting + 40, "unacknowledged after 40 OK statuses while the disk is full")
waiting = waiting + 40
local logs = io.open(C.log):read("a")
local _, lines = logs:gsub("cannot write the outbox", "")
C.eq(lines, 1, "one clear log line for the full disk")
-- the administrator frees space
assert(os.remove(fs .. "/filler"))
C.settle(out)
local stats = C.work .. "/full.stats.json"
C.check(out:idle_until(function() return C.stat("pending", stats) == 0 end, 60), "outbox drained")
out:idle(4) -- the recovery is announced after 3 s of normal operation
out:stop()
-- of the 40, every 32nd asked the library (still not stored): 39 answered by the script, and
-- the second status of 12:4000
C.eq(C.stat("events_answered_by_script", stats), 40, "events answered by the script")
C.eq(C.stat("events_seen", stats), 102, "events seen")
print("full_disk: done")
