-- bench/real-broker/floor.lua (F): the floor of issue 34's target 1. An API 2 output that reads
-- only what the connector must read of an OK service status to decide it (host_id, service_id,
-- state: three calls into Broker's broker_event __index) and acknowledges every event. Its
-- filter() does what the bridge's does (one table lookup of the event type), so F - E is the
-- price of the reads and of that lookup, and O - F what the connector adds on top.
broker_api_version = 2

local ACCEPTED = { [65550] = true, [65560] = true, [65565] = true, [65568] = true }

function init(conf) end

function filter(category, element)
  return ACCEPTED[(category << 16) | element] == true
end

function write(e)
  local _, _, _ = e.host_id, e.service_id, e.state
  return true
end
