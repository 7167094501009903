-- bench/real-broker/calib_base.lua: what the calibration scripts F, R, C and S (floor.lua,
-- reads.lua, cache.lua, severity.lua) share, loaded once by each with require() when Broker
-- loads it (Broker appends the script's own directory to package.path): API 2, an empty
-- init(), and a filter() that does what the bridge's does (one table lookup of the event
-- type). filter() keeps ACCEPTED as its upvalue, so a call costs what it cost when every
-- script defined it.
broker_api_version = 2

local ACCEPTED = { [65550] = true, [65560] = true, [65565] = true, [65568] = true }

function init(conf) end

function filter(category, element)
  return ACCEPTED[(category << 16) | element] == true
end
