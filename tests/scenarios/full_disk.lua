-- The outbox's file system fills up (CPD_SMALL_FS is a 4 MB tmpfs; a filler file takes most
-- of it): one clear log line, no crash, Broker keeps what could not be stored; once space is
-- freed everything is stored, acknowledged and delivered.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local fs = assert(os.getenv("CPD_SMALL_FS"))
local out = C.output { outbox_path = fs .. "/outbox.db", stats_path = C.work .. "/full.stats.json",
  stats_interval = 1, outbox_commit_delay_ms = 0 }
C.running(out)
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
local logs = io.open(C.log):read("a")
local _, lines = logs:gsub("cannot write the outbox", "")
C.eq(lines, 1, "one clear log line for the full disk")
-- the administrator frees space
assert(os.remove(fs .. "/filler"))
C.settle(out, 30)
local function pending()
  local fh = io.open(C.work .. "/full.stats.json")
  if not fh then return nil end
  local t = fh:read("a"); fh:close()
  return tonumber(t:match('"pending": (%d+)'))
end
C.check(out:idle_until(function() return pending() == 0 end, 60), "outbox drained")
out:idle(4) -- the recovery is announced after 3 s of normal operation
out:stop()
print("full_disk: done")
