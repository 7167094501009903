-- Two outputs with different routing keys in one process share nothing.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local other = assert(os.getenv("CPD_OTHER_KEY"))
local a = C.output({}, { name = "PagerDuty A" })
local b = C.output({ log_path = C.work .. "/b.log" }, { name = "PagerDuty B", key = other })
C.running(a); C.running(b)
a:send(C.svc { host_id = 12, service_id = 34, state = 2, output = "CRITICAL - for A" })
b:send(C.svc { host_id = 12, service_id = 34, state = 1, output = "WARNING - for B" })
C.settle(a); C.settle(b)
C.delivered(a, 1); C.delivered(b, 1, nil, C.work .. "/b.log")
-- closing A leaves B working
a:stop()
b:send(C.svc { host_id = 12, service_id = 34, state = 0, output = "OK - for B" })
-- a host Broker's cache does not know: a warning written on Broker's thread, for B only
b:send(C.svc { host_id = 99, service_id = 7, state = 2, output = "CRITICAL - for B" })
C.settle(b)
C.delivered(b, 3, nil, C.work .. "/b.log")
b:stop()

-- each output's lines in its own file only, from Broker's thread (start, unknown host,
-- stop) and from the output's own threads (delivered)
local function read(path)
  local f = assert(io.open(path))
  local text = f:read("a")
  f:close()
  return text
end
local function count(text, what)
  local n, at = 0, 1
  while true do
    local s, e = text:find(what, at, true)
    if not s then return n end
    n, at = n + 1, e + 1
  end
end
local la, lb = read(C.log), read(C.work .. "/b.log")
C.eq(count(la, "for A"), 1, "A's delivered line in A's log")
C.eq(count(la, "for B"), 0, "B's events in A's log")
C.eq(count(la, "#99"), 0, "B's unknown host in A's log")
C.eq(count(lb, "for A"), 0, "A's events in B's log")
C.eq(count(lb, "for B"), 3, "B's delivered lines in B's log")
C.eq(count(lb, "#99:7 is unknown to Broker's cache"), 1, "B's warning in B's log")
C.eq(count(la, " started: "), 1, "A's start line")
C.eq(count(lb, " started: "), 1, "B's start line")
C.eq(count(la, "] stopped"), 1, "A's stop line")
C.eq(count(lb, "] stopped"), 1, "B's stop line")
print("two_outputs: done")
