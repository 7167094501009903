-- bench/real-broker/severity.lua (S): the floor (floor.lua) plus 9 broker_cache:get_severity()
-- calls per status event, for objects without a severity: Broker answers nil by throwing and
-- catching a C++ exception (macro_cache::get_severity), as for every nil broker_cache answer.
-- (S - F) / 9 is what such a nil answer costs Broker's output thread (calibration of
-- tests/host's "miss" cost, issue 34).
require("calib_base") -- API 2, init(), filter()

function write(e)
  local hid, sid = e.host_id, e.service_id
  local _ = e.state
  local c = broker_cache
  for _ = 1, 9 do
    c:get_severity(hid, sid)
  end
  return true
end
