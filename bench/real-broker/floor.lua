-- bench/real-broker/floor.lua (F): the floor of issue 34's target 1. An API 2 output that reads
-- only what the connector must read of an OK service status to decide it (host_id, service_id,
-- state: three calls into Broker's broker_event __index) and acknowledges every event. Its
-- filter() does what the bridge's does (one table lookup of the event type), so F - E is the
-- price of the reads and of that lookup, and O - F what the connector adds on top.
require("calib_base") -- API 2, init(), filter()

function write(e)
  local _, _, _ = e.host_id, e.service_id, e.state
  return true
end
