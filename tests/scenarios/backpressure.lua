-- PagerDuty fails for a while and the outbox is full (outbox_max_events): the library stops
-- acknowledging, Broker's memory queue (queue_max) fills, Broker stops writing and only calls
-- flush() until it returns true; then the stream resumes and nothing is lost.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local out = C.output({ outbox_max_events = 3 }, { queue_max = 5 })
C.running(out)
for sid = 1, 20 do
  out:send(C.svc { host_id = 12, service_id = 100 + sid, state = 2, output = "CRITICAL - " .. sid })
end
C.settle(out)
C.delivered(out, 20)
C.check(out:flushes() > 0, "Broker had to call flush() while the queue was full")
print("backpressure: " .. out:written() .. " writes, " .. out:flushes() .. " flushes")
local logs = io.open(C.log):read("a")
local _, full = logs:gsub("outbox full", "")
C.check(full >= 1, "the log says the outbox is full")
out:stop()
print("backpressure: done")
