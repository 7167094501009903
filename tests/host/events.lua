-- events.lua: builders of Centreon Broker NEB events, as the Lua output receives
-- them, for scenarios run by broker_host. Shapes follow
-- /work/shared/reference/broker-lua-contract.md section 5.
--
--   local ev = dofile("tests/host/events.lua")   -- or require("events")
--   out:send(ev.service_status{bbdo = 3, host_id = 12, service_id = 34, state = 2,
--                              output = "CRITICAL - disk full"})
--
-- Every builder takes `bbdo` (2 or 3, default 3; "2.0.0"/"3.0.0" accepted).
-- BBDO 2: output = output .. "\n" .. long_output, boolean `acknowledged`, time
-- fields and ids that are 0 become nil, `last_update` present.
-- BBDO 3: separate output / long_output, `acknowledgement_type` (0/1/2), zero
-- times stay 0, no `last_update`.

local M = {}

M.CATEGORY_NEB = 1

-- element numbers per BBDO version
M.ELEMENTS = {
  [2] = { service_status = 24, host_status = 14, acknowledgement = 1, downtime = 5,
          service = 23, host = 12 },
  [3] = { service_status = 29, host_status = 32, acknowledgement = 45, downtime = 36,
          service = 27, host = 30, adaptive_service_status = 55, adaptive_host_status = 56 },
}

function M.type(category, element)
  return (category << 16) | element
end

local function version(o)
  local v = o.bbdo
  if v == nil then return 3 end
  if type(v) == "string" then v = tonumber(v:match("^(%d+)")) end
  if v ~= 2 and v ~= 3 then error("events: bbdo must be 2 or 3, got " .. tostring(o.bbdo), 3) end
  return v
end

local function header(v, name)
  local element = M.ELEMENTS[v][name]
  return { category = M.CATEGORY_NEB, element = element, _type = M.type(M.CATEGORY_NEB, element) }
end

local function bool(x, default)
  if x == nil then return default end
  return x and true or false
end

local function depth(o)
  local d = o.downtime
  if d == nil then d = o.scheduled_downtime_depth end
  if d == true then return 1 end
  if d == false or d == nil then return 0 end
  return math.tointeger(d) or d
end

-- BBDO 2: 0 becomes nil for ids and time fields
local function z(v, x)
  if v == 2 and x == 0 then return nil end
  return x
end

local function status(o, name, with_service)
  local v = version(o)
  local e = header(v, name)
  local now = os.time()
  local state = o.state or 0
  local state_type = o.state_type or 1
  local last_check = o.last_check or now
  local last_state_change = o.last_state_change or last_check
  local last_hard_state = o.last_hard_state
  if last_hard_state == nil then last_hard_state = (state_type == 1) and state or 0 end
  local last_hard_state_change = o.last_hard_state_change
  if last_hard_state_change == nil then
    last_hard_state_change = (state_type == 1) and last_state_change or 0
  end

  e.host_id = z(v, o.host_id or 0)
  if with_service then e.service_id = z(v, o.service_id or 0) end
  e.state = state
  e.state_type = state_type
  e.check_attempt = o.check_attempt or 1
  e.max_check_attempts = o.max_check_attempts or 3
  e.last_check = z(v, last_check)
  e.last_state_change = z(v, last_state_change)
  e.last_hard_state = last_hard_state
  e.last_hard_state_change = z(v, last_hard_state_change)
  e.perfdata = o.perfdata or ""
  e.flapping = bool(o.flapping, false)
  e.scheduled_downtime_depth = depth(o)
  e.check_type = o.check_type or 0
  e.notification_number = o.notification_number or 0

  local output = o.output or ""
  local ack_type = o.acknowledgement_type
  if ack_type == nil then
    if o.acknowledged == true then ack_type = 1
    elseif type(o.acknowledged) == "number" then ack_type = o.acknowledged
    else ack_type = 0 end
  end
  if v == 2 then
    if o.long_output ~= nil and o.long_output ~= "" then
      output = output .. "\n" .. o.long_output
    end
    e.output = output
    e.acknowledged = ack_type ~= 0
    e.last_update = z(v, o.last_update or last_check)
  else
    e.output = output
    e.long_output = o.long_output or ""
    e.acknowledgement_type = ack_type
  end
  return e
end

function M.service_status(o) return status(o or {}, "service_status", true) end
function M.host_status(o) return status(o or {}, "host_status", false) end

function M.acknowledgement(o)
  o = o or {}
  local v = version(o)
  local e = header(v, "acknowledgement")
  e.host_id = z(v, o.host_id or 0)
  e.service_id = z(v, o.service_id or 0)
  e.author = o.author or "admin"
  e.comment_data = o.comment_data or o.comment or ""
  e.entry_time = z(v, o.entry_time or os.time())
  e.deletion_time = z(v, o.deletion_time or 0)
  e.sticky = bool(o.sticky, false)
  e.state = o.state or 0
  return e
end

-- BBDO 3 adaptive status: only the fields given are set (Broker leaves unset optional
-- fields nil), e.g. {host_id = 1, service_id = 2, acknowledgement_type = 1}.
local function adaptive(o, name, with_service)
  local e = header(3, name)
  e.host_id = o.host_id or 0
  if with_service then e.service_id = o.service_id or 0 end
  if o.acknowledgement_type ~= nil then e.acknowledgement_type = o.acknowledgement_type end
  if o.scheduled_downtime_depth ~= nil then e.scheduled_downtime_depth = o.scheduled_downtime_depth end
  if o.notification_number ~= nil then e.notification_number = o.notification_number end
  return e
end

function M.adaptive_service_status(o) return adaptive(o or {}, "adaptive_service_status", true) end
function M.adaptive_host_status(o) return adaptive(o or {}, "adaptive_host_status", false) end

function M.downtime(o)
  o = o or {}
  local v = version(o)
  local e = header(v, "downtime")
  local sid = o.service_id or 0
  local start = o.start_time or os.time()
  local started = bool(o.started, true)
  e.host_id = z(v, o.host_id or 0)
  e.service_id = z(v, sid)
  e.type = o.type or ((sid ~= 0) and 1 or 2) -- 1 service, 2 host
  e.author = o.author or "admin"
  e.comment_data = o.comment_data or o.comment or ""
  e.start_time = z(v, start)
  e.end_time = z(v, o.end_time or (start + 3600))
  e.actual_start_time = z(v, o.actual_start_time or (started and start or 0))
  e.actual_end_time = z(v, o.actual_end_time or 0)
  e.started = started
  e.cancelled = bool(o.cancelled, false)
  e.deletion_time = z(v, o.deletion_time or 0)
  return e
end

return M
