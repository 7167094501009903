-- bench/baseline.lua: the do-nothing Broker Lua output the write-path benchmark compares the
-- bridge (lua-bridge/pagerduty.lua) against. Same API version as the bridge (events arrive as
-- read-only userdata), a filter() that accepts everything and a write() that acknowledges
-- everything: what is left is the cost of Broker (here: its emulator) handing events over.
broker_api_version = 2

function init(conf)
end

function filter(category, element)
  return true
end

function write(e)
  return true
end

function flush()
  return true
end
