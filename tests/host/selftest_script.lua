-- selftest_script.lua: a tiny Broker Lua output used by selftest.lua to exercise
-- the broker_host emulator itself (it does not load the PagerDuty library).
--
-- conf (from lua_parameter): log_level, log_path, ack ("every2" default: write
-- returns true every 2nd event | "never" | "always"), flush ("true" default |
-- "false" | "error" | "after:N": true from the N-th flush call on),
-- fail_init_file (init() raises while this file exists).
-- Events with element 99 are "probes": their `probe` field is Lua code run here;
-- the result is logged as "probe ok" / "probe failed: ...", write returns nil.

-- a wrapper script may set SELFTEST_API before dofile()-ing this one
broker_api_version = SELFTEST_API or 1

local top = string.format("top: broker_log=%s broker=%s broker_cache=%s",
  type(broker_log), type(broker), type(broker_cache))
-- what the filter probe saw (Broker probes filter(1, 2) before broker_log exists and before init)
local probe_seen
local conf = {}
local n = 0
local nflush = 0
events = {}
FLUSH_MODE = nil

local function describe(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    parts[#parts + 1] = k .. "=" .. (math.type(v) or type(v)) .. ":" .. tostring(v)
  end
  return table.concat(parts, " ")
end

function init(c)
  conf = c
  broker_log:set_parameters(tonumber(c.log_level) or 0, c.log_path or "")
  broker_log:info(0, top)
  broker_log:info(0, "init: broker_cache=" .. type(broker_cache) .. " broker=" .. type(broker))
  if probe_seen then broker_log:info(0, "filter probe 1 2: " .. probe_seen) end
  broker_log:info(0, "conf: " .. describe(c))
  broker_log:info(1, "level1 message")
  broker_log:warning(2, "level2 message")
  broker_log:error(3, "level3 error")
  if c.fail_init_file then
    local f = io.open(c.fail_init_file)
    if f then
      f:close()
      error("init boom")
    end
  end
end

function filter(category, element)
  if category == 1 and element == 2 then
    probe_seen = string.format("broker_log=%s init_done=%s", type(broker_log), tostring(next(conf) ~= nil))
  end
  return category == 1
end

function write(e)
  if e.element == 99 then
    local f, err = load(e.probe, "probe", "t")
    local ok, res = false, err
    if f then ok, res = pcall(f) end
    broker_log:info(0, ok and "probe ok" or ("probe failed: " .. tostring(res)))
    return nil
  end
  n = n + 1
  events[#events + 1] = e
  broker_log:info(0, string.format("write %d: %s _type=%s host_id=%s service_id=%s", n, type(e),
    tostring(e._type), tostring(e.host_id), tostring(e.service_id)))
  if e.host_id == 666 then error("write boom") end
  local ack = conf.ack or "every2"
  if ack == "never" then return false end
  if ack == "always" then return true end
  return n % 2 == 0
end

function flush()
  nflush = nflush + 1
  local mode = FLUSH_MODE or conf.flush or "true"
  if mode == "true" then return true end
  if mode == "false" then return false end
  if mode == "error" then error("flush boom") end
  local k = tonumber(mode:match("^after:(%d+)$"))
  if k then return nflush >= k end
  return false
end
