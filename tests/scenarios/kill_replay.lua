-- Kill-and-replay trials (tests/durability.rs): hands over the events of a plan, noting in a
-- journal each event handed and Broker's acknowledgement watermark; the test kills this
-- process with SIGKILL, and the next run first hands again, in order, every event Broker was
-- not told was safe (the watermark: contract s.2), as Broker does after a restart.
-- CPD_PLAN: lines "service_id state check_time"; CPD_BATCH: new events per run;
-- CPD_FINAL: hand the rest, wait until all is delivered, stop.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local plan = {}
for line in io.lines(os.getenv("CPD_PLAN")) do
  local sid, state, t = line:match("^(%d+) (%d+) (%d+)$")
  plan[#plan + 1] = { sid = tonumber(sid), state = tonumber(state), t = tonumber(t) }
end
local journal_path = assert(os.getenv("CPD_JOURNAL"))
local handed, acked = 0, 0
local f = io.open(journal_path)
if f then
  for line in f:lines() do
    local what, n = line:match("^(%a) (%d+)$")
    n = tonumber(n)
    if what == "h" and n > handed then handed = n end
    if what == "a" and n > acked then acked = n end
  end
  f:close()
end
local journal = assert(io.open(journal_path, "a"))
local function note(what, n)
  journal:write(what, " ", n, "\n")
  journal:flush()
end
local final = os.getenv("CPD_FINAL") == "1"
-- the statistics of an earlier run must not say "nothing pending"
if final then os.remove(C.stats_file()) end
local out = C.output { stats_interval = 1 }
C.running(out)
local names = { [0] = "OK", "WARNING", "CRITICAL" }
local last = acked -- the last plan index handed by this run
-- Broker acknowledged everything up to `last - unacked`
local function watermark()
  local w = last - out:unacked()
  if w > acked then
    acked = w
    note("a", w)
  end
end
local function hand(i)
  local e = plan[i]
  if i > handed then note("h", i) end
  out:send(C.svc { host_id = 20, service_id = e.sid, state = e.state, last_check = e.t,
                   output = names[e.state] .. " - t=" .. e.t })
  last = i
  watermark()
  print("PROGRESS " .. i)
  io.stdout:flush()
end
-- Broker first hands again what it was not told was safe, then new events
for i = acked + 1, handed do hand(i) end
local stop = final and #plan or math.min(#plan, handed + tonumber(os.getenv("CPD_BATCH")))
for i = handed + 1, stop do hand(i) end
print("BATCH_DONE")
io.stdout:flush()
if not final then
  -- idle (flush acknowledges) until killed
  out:idle_until(function() watermark() return false end, 60)
  error("not killed")
end
C.settle(out, 30)
watermark()
C.drain(out, 60)
out:stop()
print("kill_replay: done, " .. #plan .. " events")
