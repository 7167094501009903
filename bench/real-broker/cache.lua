-- bench/real-broker/cache.lua (C): the floor (floor.lua) plus, for every status event, 3 times the
-- 9 broker_cache calls the connector makes for a service's state change (lua-bridge's
-- complete(): get_host, get_instance_name, get_hostgroups, get_severity x2,
-- get_service_description, get_servicegroups, get_notes_url, get_action_url). (C - F) / 27 is
-- what one broker_cache call costs Broker's output thread on average (calibration of
-- tests/host, issue 34). The answers are not read.
require("calib_base") -- API 2, init(), filter()

function write(e)
  local hid, sid = e.host_id, e.service_id
  local _ = e.state
  local c = broker_cache
  for _ = 1, 3 do
    c:get_host(hid)
    c:get_instance_name(1)
    c:get_hostgroups(hid)
    c:get_severity(hid)
    c:get_service_description(hid, sid)
    c:get_servicegroups(hid, sid)
    c:get_severity(hid, sid)
    c:get_notes_url(hid, sid)
    c:get_action_url(hid, sid)
  end
  return true
end
