-- bench/fieldread.lua: the fields the bridge reads for every event, and nothing else.
-- bench/profile.sh runs it beside bench/baseline.lua and the bridge to split the bridge's added
-- cost: (this - baseline) is what reading an event's state costs in Broker (here: its
-- emulator's read-only userdata, one __index call per field), which any output that looks at
-- the state pays; (bridge - this) is the bridge's own work and the library's. The reads are
-- those of lua-bridge/pagerduty.lua's write() for a BBDO 3 service status (host_id, service_id,
-- state; the state type and the 3 flags too unless the state is OK). (The bridge also reads
-- the state type and flags of a recovery, 1 event in 200 of the benchmark, and every field of
-- a state change, which this script does not.)
broker_api_version = 2

local filtered_type

function init(conf)
end

function filter(category, element)
  filtered_type = (category << 16) | element
  return true
end

function write(e)
  filtered_type = nil
  local _, _, st = e.host_id, e.service_id, e.state
  if st ~= 0 then
    local _ = e.state_type, (e.acknowledgement_type or 0) ~= 0, e.scheduled_downtime_depth, e.flapping
  end
  return true
end

function flush()
  return true
end
