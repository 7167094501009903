-- Broker's events wait for their finalizers: an API 2 event is a 16-byte Lua object whose C++
-- event only its finalizer frees (the emulator models it: out:live_events()). Lua's collector
-- paces itself by the bytes it sees, so behind a script that allocates nothing per event (an
-- empty one) the events pile up by the hundred thousand until Broker's own full collection, 10 s
-- apart. The bridge keeps them bounded, with state changes or without, and loses nothing.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")

local N = 200000    -- statuses after a first round (one per service)
local SERVICES = 2000
local BOUND = 20000 -- events awaiting their finalizer at once, at most

-- service s of host 100 + s // 20, check after check: OK in round 0, then CRITICAL for 2
-- rounds every 200 ((round + s) % 200 < 2): 1 in 100 statuses a state change, as in
-- writepath.lua's stream. Returns the statuses sent and the state changes among them.
local function stream(out)
  local was, changes = {}, 0
  local function gen(i)
    local s = (i - 1) % SERVICES
    local round = (i - 1) // SERVICES
    local state = (round > 0 and (round + s) % 200 < 2) and 2 or 0
    local change = was[s] ~= nil and was[s] ~= state
    if change then changes = changes + 1 end
    was[s] = state
    return C.svc { host_id = 100 + s // 20, service_id = 1 + s % 20, state = state, change = change,
                   output = state == 2 and "CRITICAL" or "OK" }
  end
  host.send_many(out, SERVICES + N, gen)
  return SERVICES + N, changes
end

-- the empty script: what Lua's collector does on its own (printed, not checked: how high the
-- pile grows depends on the sizes of the state's live objects; 11,000-90,000 here, 40,000 or
-- more behind the bridge without its steps, hundreds of thousands in bench/writepath.lua)
local empty = C.work .. "/empty.lua"
local f = assert(io.open(empty, "w"))
f:write("broker_api_version = 2\nfunction init(conf) end\nfunction write(e) return true end\n")
f:close()
local base = host.output { script = empty, params = {}, bbdo = C.bbdo == 2 and "2.0.0" or "3.0.0" }
C.eq(base:state(), "running", "the empty script's state")
stream(base)
print(string.format("finalizers: empty script: at most %d events awaiting their finalizer (Broker's full collections: %d)",
  base:peak_live_events(), base:full_collects()))

local out = C.output()
C.eq(out:state(), "running", "the bridge's state")
local sent, changes = stream(out)
C.settle(out)
print(string.format("finalizers: bridge: at most %d events awaiting their finalizer (Broker's full collections: %d)",
  out:peak_live_events(), out:full_collects()))
C.check(out:peak_live_events() <= BOUND,
  string.format("%d events awaited their finalizer at once, more than %d", out:peak_live_events(), BOUND))
C.eq(out:acked(), sent, "every event acknowledged")
C.eq(#out:errors(), 0, "errors: " .. table.concat(out:errors(), "\n"))
-- nothing lost: a trigger per problem, a resolve per recovery
C.check(changes >= 1000, "state changes in the stream: " .. changes)
C.delivered(out, changes)
out:stop()
C.eq(out:live_events(), 0, "every event finalized when the state is closed")
