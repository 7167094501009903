-- bench/real-broker/reads.lua (R): the floor (floor.lua) reading its three fields 30 times per
-- event: 90 field reads instead of 3. (R - F) / 87 is what one broker_event field read costs
-- Broker's output thread (calibration of tests/host, issue 34). Every status event is read,
-- the same fields as the connector's OK path (host_id, service_id, state).
require("calib_base") -- API 2, init(), filter()

function write(e)
  for _ = 1, 30 do
    local _, _, _ = e.host_id, e.service_id, e.state
  end
  return true
end
