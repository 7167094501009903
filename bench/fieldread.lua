-- bench/fieldread.lua: the fields the bridge reads for every event, and nothing else.
-- bench/profile.sh runs it beside bench/baseline.lua and the bridge to split the bridge's added
-- cost: (this - baseline) is what reading an event's state costs in Broker (here: its
-- emulator's read-only userdata, one __index call per field), which any output that looks at
-- the state pays; (bridge - this) is the library's own fast path. The reads are those of
-- lua-bridge/pagerduty.lua's write() for a BBDO 3 service status (host_id, service_id, state,
-- state_type; the 3 flags too unless the state is OK), passed to a Lua function that takes
-- them as the library's status() does. (The bridge also reads the flags of a recovery, 1
-- event in 200 of the benchmark, which this script does not.)
broker_api_version = 2

local filtered_type

function init(conf)
end

function filter(category, element)
  filtered_type = (category << 16) | element
  return true
end

local function status(_, _, _, _, _, _, _, _, _, _)
  return 1
end

function write(e)
  filtered_type = nil
  local hid, sid, st, stt = e.host_id, e.service_id, e.state, e.state_type
  if st == 0 then return status(nil, 1, 29, hid, sid, st, stt) == 1 end
  return status(nil, 1, 29, hid, sid, st, stt, (e.acknowledgement_type or 0) ~= 0,
    e.scheduled_downtime_depth, e.flapping) == 1
end

function flush()
  return true
end
