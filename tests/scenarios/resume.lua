-- A new run on the same outbox (after a stop, a reload or a kill -9): what was pending is
-- sent without Broker handing anything over; CPD_EXPECT events are expected in all.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local want = os.getenv("CPD_EXPECT") or "all"
local out = C.output { stats_interval = 1 }
C.running(out)
if want == "all" then C.drain(out) else C.delivered(out, tonumber(want)) end
-- Broker replays what it had not been told was safe: recognised, not sent again
local replay = os.getenv("CPD_REPLAY")
if replay then
  for sid in replay:gmatch("%d+") do
    out:send(C.svc { host_id = 12, service_id = tonumber(sid), state = 2, output = "CRITICAL - replayed" })
  end
  C.settle(out)
end
out:stop()
print("resume: done")
