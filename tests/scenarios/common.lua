-- common.lua: shared setup for the end-to-end scenarios run by broker_host (driven by tests/bridge.rs).
local M = {}

M.ev = dofile(os.getenv("CPD_HOST_DIR") .. "/events.lua")
M.bbdo = tonumber(os.getenv("CPD_BBDO") or "3")
M.script = assert(os.getenv("CPD_SCRIPT"), "CPD_SCRIPT not set")
M.url = os.getenv("CPD_URL") or "http://127.0.0.1:9/v2/enqueue"
M.key = os.getenv("CPD_KEY")
M.log = os.getenv("CPD_LOG")
M.work = os.getenv("CPD_WORK")

-- What broker_cache knows. Host 99 and service 12:99 are deliberately missing.
M.cache = {
  hosts = {
    [12] = { name = "srv-db", alias = "database", address = "10.0.0.5", instance_id = 1,
             severity = 2, groups = { { group_id = 1, group_name = "linux" }, { group_id = 2, group_name = "db" } } },
    [13] = { name = "web 01/é", address = "10.0.0.6", instance_id = 1, groups = {} },
    [20] = { name = "app-20", address = "10.0.0.20", instance_id = 1, groups = {} },
    [21] = { name = "router-21", address = "10.0.0.21", instance_id = 1, groups = {} },
  },
  services = {
    ["12:34"] = { description = "Disk /var", display_name = "Disk on /var", severity = 1,
                  groups = { { group_id = 5, group_name = "storage" } } },
    ["13:35"] = { description = "HTTP & TLS", groups = {} },
    ["20:1"] = { description = "svc-1", groups = {} }, ["20:2"] = { description = "svc-2", groups = {} },
    ["20:3"] = { description = "svc-3", groups = {} }, ["20:4"] = { description = "svc-4", groups = {} },
    ["20:5"] = { description = "svc-5", groups = {} }, ["20:6"] = { description = "svc-6", groups = {} },
    ["20:7"] = { description = "svc-7", groups = {} }, ["21:1"] = { description = "BGP", groups = {} },
    ["21:2"] = { description = "Interfaces", groups = {} },
  },
  instances = { [1] = "Central" },
}

-- Broker's lua_parameter list: our defaults for tests, then `extra` ({name = value} or list entries).
function M.params(extra, key, name)
  local p = {
    { type = "string", name = "outbox_path", value = M.work .. "/" .. (name or "PagerDuty"):gsub("%W", "_") .. ".db" },
    { type = "string", name = "http_server_url", value = M.url },
    { type = "string", name = "pdy_centreon_url", value = "https://centreon.example.com" },
    { type = "string", name = "log_path", value = M.log },
    { type = "number", name = "log_level", value = "3" },
    { type = "number", name = "http_timeout", value = "5" },
  }
  -- key == false: no pdy_routing_key (the key comes from a file or the environment)
  if key ~= false then
    p[#p + 1] = { type = "password", name = "pdy_routing_key", value = key or M.key }
  end
  for k, v in pairs(extra or {}) do
    if type(k) == "number" then
      p[#p + 1] = v
    else
      p[#p + 1] = { type = type(v) == "number" and "number" or "string", name = k, value = tostring(v) }
    end
  end
  return p
end

function M.output(extra, opts)
  opts = opts or {}
  return host.output {
    script = opts.script or M.script,
    params = M.params(extra, opts.key, opts.name),
    bbdo = M.bbdo == 2 and "2.0.0" or "3.0.0",
    cache = M.cache,
    flush_interval = opts.flush_interval or 0.05,
    queue_max = opts.queue_max,
    name = opts.name,
  }
end

local now = os.time()
function M.tick() now = now + 60; return now end

-- A status event made by `make` (events.lua's service_status or host_status) at a new check
-- time; `change` (default true) makes it a state change.
local function status(make, o)
  o.bbdo = M.bbdo
  o.last_check = o.last_check or M.tick()
  if o.change ~= false then o.last_state_change = o.last_check else o.last_state_change = o.last_check - 30 end
  o.change = nil
  return make(o)
end

function M.svc(o) return status(M.ev.service_status, o) end
function M.hst(o) return status(M.ev.host_status, o) end

function M.check(cond, msg, level)
  if not cond then error("check failed: " .. msg, (level or 1) + 1) end
end

function M.eq(a, b, msg)
  if a ~= b then error(string.format("check failed: %s: expected %s, got %s", msg, tostring(b), tostring(a)), 2) end
end

-- The default bound of the waits below, in seconds: generous, as a wait ends as soon as what
-- it waits for happens (CI is a busy 2-core machine running a debug build).
M.WAIT = 120

-- Broker idles until everything is acknowledged.
function M.settle(out, timeout)
  local ok = out:idle_until(function() return out:unacked() == 0 end, timeout or M.WAIT)
  if not ok then
    error("events not acknowledged in time: unacked=" .. out:unacked() .. "\nerrors: " .. table.concat(out:errors(), "\n"), 2)
  end
end

-- Count of events the connector finished with (delivered or rejected), from its log.
function M.finished(log)
  local f = io.open(log or M.log)
  if not f then return 0 end
  local n = 0
  for line in f:lines() do
    if line:find("] delivered ", 1, true) or line:find("PagerDuty rejected ", 1, true) then n = n + 1 end
  end
  f:close()
  return n
end

-- Broker idles until the connector has delivered (or rejected) `n` events in all.
function M.delivered(out, n, timeout, log)
  local ok = out:idle_until(function() return M.finished(log) >= n end, timeout or M.WAIT)
  if not ok then
    error(string.format("only %d of %d events delivered in time", M.finished(log), n), 2)
  end
end

-- The statistics file of output `name` (the default stats_path).
function M.stats_file(name)
  return M.work .. "/" .. (name or "PagerDuty"):gsub("%W", "_") .. ".db.stats.json"
end

-- A counter of a statistics file (default: output PagerDuty's; nil if not yet written), and
-- the file's "time" (when its snapshot was taken, RFC 3339 UTC).
function M.stat(counter, file)
  local f = io.open(file or M.stats_file())
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return tonumber(text:match('"' .. counter .. '": (%d+)')), text:match('"time": "([^"]+)"')
end

-- Pending events in the outbox (nil if the statistics are not yet written), and when.
function M.pending(name)
  return M.stat("pending", M.stats_file(name))
end

-- Broker idles until the outbox is empty (needs a short stats_interval). Only a snapshot taken
-- after this call began counts: the file may be older than the events just committed (written
-- before them, or by the run before a restart, when its outbox was empty).
function M.drain(out, timeout, name)
  local since = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + 1)
  local ok = out:idle_until(function()
    local pending, at = M.pending(name)
    return pending == 0 and at ~= nil and at >= since
  end, timeout or M.WAIT)
  if not ok then error("outbox not drained in time: pending " .. tostring(M.pending(name)), 2) end
end

function M.running(out)
  if out:state() ~= "running" then
    error("output not running: " .. tostring(out:state()) .. ": " .. tostring(out:error()) ..
      "\n" .. table.concat(out:errors(), "\n") .. "\n" .. table.concat(out:logs(), "\n"), 2)
  end
end

return M
