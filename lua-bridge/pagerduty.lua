-- centreon-pagerduty: Centreon Broker "Generic - Stream connector" output for PagerDuty.
--
-- Drop-in for /usr/share/centreon-broker/lua/pagerduty.lua. This script is deliberately
-- thin: it reads event fields and broker_cache names and hands them to the native library
-- (lib/centreon_pagerduty.so next to this file), which makes every decision, sends in the
-- background and tells us when Broker may consider events safe. See README.md.

-- Events arrive as read-only userdata: fields are produced only when read.
broker_api_version = 2

local lib, handle
local status_fn, submit_fn, flush_fn
local accepted = {}
-- Objects the library last found OK and unchanged are remembered here (stays_ok[host_id]
-- [service_id] = true, service_id 0 for a host): another OK status needs no call at all, as
-- the library would answer the same (it changes nothing for an object that stays OK, whatever
-- its state type and flags, which are not even read). Only the acknowledgement is left to
-- know: `settled` is the library's last verdict (every event handed over durably stored);
-- nothing becomes pending without a call, so while settled such an event is acknowledged
-- here; while not, it waits (false, which acknowledges nothing) and every WAIT_CALLS-th asks
-- again. Any status of the object that is not OK goes to the library and forgets it. `unseen`
-- counts the events answered here, handed to the next call for the library's statistics (at
-- most UNSEEN_MAX of them wait).
local stays_ok, settled, waiting, unseen = {}, false, 0, 0
local WAIT_CALLS, UNSEEN_MAX = 32, 4096
local math_type = math.type

-- With a format_file only: the other event fields and the broker_cache host / service fields
-- its templates read (nil otherwise, so the default path reads nothing more).
local extra_fields, host_fields, service_fields

-- _type values of the events the library may act on (Broker contract, section 5).
local HOST_STATUS, SERVICE_STATUS = 65550, 65560          -- BBDO 2
local PB_SERVICE_STATUS, PB_HOST_STATUS = 65565, 65568    -- BBDO 3
local KNOWN_TYPES = { HOST_STATUS, SERVICE_STATUS, PB_SERVICE_STATUS, PB_HOST_STATUS,
  65537, 65581,   -- acknowledgement (BBDO 2, BBDO 3)
  65541, 65572,   -- downtime (BBDO 2, BBDO 3)
  65591, 65592 }  -- adaptive service / host status (BBDO 3: acknowledgement, downtime depth)

-- Fields handed to the library on the details path (missing ones are simply absent): all of
-- them for the events that are not statuses (acknowledgements, downtimes, adaptive statuses).
local FIELDS = { "category", "element", "host_id", "service_id", "state", "state_type",
  "check_attempt", "max_check_attempts", "last_check", "last_state_change",
  "last_hard_state_change", "last_hard_state", "output", "long_output", "perfdata",
  "acknowledged", "acknowledgement_type", "scheduled_downtime_depth", "flapping",
  "author", "comment_data", "entry_time", "deletion_time", "sticky", "type",
  "start_time", "end_time", "actual_start_time", "actual_end_time", "started", "cancelled" }
-- A status's: write() already has its type (category, element), ids and state, and often its
-- state type and flags; of the rest, only what the library reads of a status (each read is a
-- call into Broker). A format_file's templates get the fields they name on top (extra_fields).
local STATUS_FIELDS = { "check_attempt", "max_check_attempts", "last_check", "last_state_change",
  "last_hard_state_change", "output", "long_output", "perfdata" }
-- The flags, when write() has not read them: BBDO 3 has no `acknowledged`; the library takes
-- BBDO 2's `acknowledged`, else `acknowledgement_type` (read for BBDO 2 even when write() has
-- read `acknowledged`).
local FLAGS_V3 = { "state_type", "acknowledgement_type", "scheduled_downtime_depth", "flapping" }
local FLAGS_V2 = { "state_type", "acknowledged", "acknowledgement_type", "scheduled_downtime_depth",
  "flapping" }

local function field(e, k)
  return e[k]
end

-- A reader of the fields `names` in one table constructor (one protected call, the table sized
-- once), made at load: reader(e, host_event) never reads service_id of a host event. The
-- constructor also names, as nil, the fields write() and the cache lookups add afterwards, so
-- that the table is sized for them too.
local ADDED = { "category", "element", "host_id", "service_id", "state", "host_name",
  "host_address", "poller", "hostgroups", "host_severity", "service_description", "servicegroups",
  "service_severity", "notes_url", "action_url" }
local function reader(names, chunk_name)
  local src, listed = { "local e, host_event = ... return {" }, {}
  for i = 1, #names do
    local k = names[i]
    listed[k] = true
    if k == "service_id" then
      src[#src + 1] = k .. " = not host_event and e." .. k .. " or nil,"
    else
      src[#src + 1] = k .. " = e." .. k .. ","
    end
  end
  for i = 1, #ADDED do
    if not listed[ADDED[i]] then src[#src + 1] = ADDED[i] .. " = nil," end
  end
  src[#src + 1] = "}"
  return { names = names, read = assert(load(table.concat(src, "\n"), "=pagerduty.lua:" .. chunk_name, "t", {})) }
end

local function concat(a, b)
  local t = {}
  for i = 1, #a do t[#t + 1] = a[i] end
  for i = 1, #b do t[#t + 1] = b[i] end
  return t
end

local READ_ALL = reader(FIELDS, "read_fields")
-- [bbdo 3][flags already read]
local READ_STATUS = {
  [true] = { [true] = reader(STATUS_FIELDS, "read_status"),
             [false] = reader(concat(STATUS_FIELDS, FLAGS_V3), "read_status_flags") },
  [false] = { [true] = reader(concat(STATUS_FIELDS, { "acknowledgement_type" }), "read_status_v2"),
              [false] = reader(concat(STATUS_FIELDS, FLAGS_V2), "read_status_flags_v2") },
}

local function group_names(groups)
  if type(groups) ~= "table" then return nil end
  local names = {}
  for _, g in ipairs(groups) do
    if type(g) == "table" and g.group_name then names[#names + 1] = g.group_name end
  end
  return names
end

-- One broker_cache lookup; a failing or missing cache gives nil, never an error.
local function cached(method, ...)
  local cache = broker_cache
  if not cache or not cache[method] then return nil end
  local ok, v = pcall(cache[method], cache, ...)
  if ok then return v end
  return nil
end

-- d[prefix .. name] = object[name] for the names given.
local function copy_fields(d, prefix, object, names)
  for i = 1, #names do
    local v = object[names[i]]
    if v ~= nil then d[prefix .. names[i]] = v end
  end
end

-- The names of a broker_cache host object into d; returns its instance id. The object is a
-- table with broker_api_version 1 and a read-only userdata (Broker's broker_event) with 2:
-- both are read by indexing, never told apart by type() nor iterated (called protected: a
-- read that raises leaves the rest to the other lookups).
local function host_object(d, host)
  d.host_name = host.name
  d.host_address = host.address
  if host_fields then copy_fields(d, "cache.host.", host, host_fields) end
  return host.instance_id
end

-- The fields of `plan` (a reader) of event e, in a fresh table.
local function read_details(e, plan, host_event)
  -- one protected call for all fields; only if a read raises, each field on its own (a field
  -- that cannot be read is absent, the others are kept)
  local ok, d = pcall(plan.read, e, host_event)
  if not ok then
    d = {}
    local names = plan.names
    for i = 1, #names do
      local k = names[i]
      local v
      if not (host_event and k == "service_id") then ok, v = pcall(field, e, k) end
      if ok and v ~= nil then d[k] = v end
    end
  end
  return d
end

-- Completes the details d of event e for the library: the format_file's extra fields (those
-- not read yet), then the names from Broker's cache.
local function complete(d, e, host_event)
  if extra_fields then
    for i = 1, #extra_fields do
      local k = extra_fields[i]
      if d[k] == nil and not (host_event and k == "service_id") then
        local ok, v = pcall(field, e, k)
        if ok and v ~= nil then d[k] = v end
      end
    end
  end
  local hid, sid = d.host_id, d.service_id
  if hid then
    local host = cached("get_host", hid)
    if host ~= nil then
      local ok, instance_id = pcall(host_object, d, host)
      if ok and instance_id then d.poller = cached("get_instance_name", instance_id) end
    end
    -- the full object normally has the name; a cache without get_host may still have it
    if d.host_name == nil then d.host_name = cached("get_hostname", hid) end
    d.hostgroups = group_names(cached("get_hostgroups", hid))
    d.host_severity = cached("get_severity", hid)
    if sid and sid ~= 0 then
      d.service_description = cached("get_service_description", hid, sid)
      d.servicegroups = group_names(cached("get_servicegroups", hid, sid))
      d.service_severity = cached("get_severity", hid, sid)
      d.notes_url = cached("get_notes_url", hid, sid)
      d.action_url = cached("get_action_url", hid, sid)
      if service_fields then
        local svc = cached("get_service", hid, sid)
        if svc ~= nil then pcall(copy_fields, d, "cache.service.", svc, service_fields) end
      end
    else
      d.notes_url = cached("get_notes_url", hid)
      d.action_url = cached("get_action_url", hid)
    end
  end
  return d
end

local function fail(msg)
  broker_log:error(0, "pagerduty: " .. msg)
  error("pagerduty: " .. msg, 0)
end

function init(conf)
  local ok, mod = pcall(require, "centreon_pagerduty")
  if not ok then
    fail("cannot load the native library centreon_pagerduty (lib/centreon_pagerduty.so next to this script): " .. tostring(mod))
  end
  if mod == true then
    fail("the native library could not find the Lua C API in this process (lua_* symbols)")
  elseif type(mod) ~= "table" then
    fail(tostring(mod))
  end
  lib = mod
  if handle then lib.close(handle) end
  local h, err = lib.new(conf)
  if not h then
    fail("init failed: " .. tostring(err))
  end
  handle = h
  stays_ok, settled, waiting, unseen = {}, false, 0, 0
  extra_fields, host_fields, service_fields = nil, nil, nil
  if lib.template_fields then
    local need, terr = lib.template_fields(h)
    if terr then fail("init failed: " .. tostring(terr)) end
    if need then
      extra_fields = {}
      for name in need:gmatch("%S+") do
        local hf, sf = name:match("^cache%.host%.(.+)$"), name:match("^cache%.service%.(.+)$")
        if hf then
          host_fields = host_fields or {}
          host_fields[#host_fields + 1] = hf
        elseif sf then
          service_fields = service_fields or {}
          service_fields[#service_fields + 1] = sf
        else
          extra_fields[#extra_fields + 1] = name
        end
      end
    end
  end
  for _, t in ipairs(KNOWN_TYPES) do
    accepted[t] = lib.accepts(h, t >> 16, t & 0xffff) == true
  end
  status_fn, submit_fn, flush_fn = lib.status, lib.submit, lib.flush
end

-- Broker calls filter() for an event right before write() for the same event: its type is
-- kept, which saves write() a field read (nil when filtering is off: then read from e).
local filtered_type

function filter(category, element)
  local t = (category << 16) | element
  if accepted[t] then
    filtered_type = t
    return true
  end
  return false
end

-- Status types: the element given to status(), and whether the event is a service's.
local STATUS_ELEMENT = { [PB_SERVICE_STATUS] = 29, [PB_HOST_STATUS] = 32, [SERVICE_STATUS] = 24,
  [HOST_STATUS] = 14 }
local SERVICE_TYPE = { [PB_SERVICE_STATUS] = true, [SERVICE_STATUS] = true }

-- status() answers 0 (not acknowledged yet), 1 (acknowledged), 2 (hand over the details) and,
-- when asked without the state type and flags, 3 (ask again with them). Each field read is a
-- call into Broker: an OK status (state 0) is first asked about with the object's ids and
-- state alone, as the others cannot change the decision for an object that stays OK.

-- An object whose status goes to the library is no longer known to stay OK.
local function forget(known, sid)
  if known and known[sid] ~= nil then known[sid] = nil end
end

function write(e)
  local t, r = filtered_type, 3
  filtered_type = nil
  if t == nil then t = e._type end
  local element = STATUS_ELEMENT[t]
  if element then
    local hid, sid, st = e.host_id, 0, e.state
    if SERVICE_TYPE[t] then sid = e.service_id end
    local known = stays_ok[hid]
    if st == 0 then
      if known and known[sid] then
        if settled then
          if unseen < UNSEEN_MAX then
            unseen = unseen + 1
            return true
          end
        elseif waiting < WAIT_CALLS - 1 then
          waiting, unseen = waiting + 1, unseen + 1
          return false
        end
      end
      r = status_fn(handle, 1, element, hid, sid, 0, unseen)
      unseen, waiting = 0, 0
      if r == 0 or r == 1 then
        if math_type(sid) == "integer" then
          if not known and math_type(hid) == "integer" then
            known = {}
            stays_ok[hid] = known
          end
          if known then known[sid] = true end
        end
        settled = r == 1
        return settled
      end
    end
    forget(known, sid)
    local v3, flags_read = t >= PB_SERVICE_STATUS, r == 3 or st ~= 0
    local ackv, stype, sdd, flap
    if flags_read then
      local ack
      if v3 then
        ackv = e.acknowledgement_type
        ack = (ackv or 0) ~= 0
      else
        ackv = e.acknowledged
        ack = ackv
      end
      stype, sdd, flap = e.state_type, e.scheduled_downtime_depth, e.flapping
      r = status_fn(handle, 1, element, hid, sid, st, stype, ack, sdd, flap, unseen)
      unseen, waiting = 0, 0
    end
    if r ~= 2 then
      settled = r == 1
      return settled
    end
    -- the details: what write() has read is not read again
    local host_event = not SERVICE_TYPE[t]
    local d = read_details(e, READ_STATUS[v3][flags_read], host_event)
    d.category, d.element, d.host_id, d.state = 1, element, hid, st
    if not host_event then d.service_id = sid end
    if flags_read then
      d.state_type, d.scheduled_downtime_depth, d.flapping = stype, sdd, flap
      if v3 then d.acknowledgement_type = ackv else d.acknowledged = ackv end
    end
    settled = submit_fn(handle, complete(d, e, host_event)) == true
    return settled
  end
  r = status_fn(handle, e.category, e.element, e.host_id)
  if r ~= 2 then
    settled = r == 1
    return settled
  end
  local host_event = t == 65592 -- adaptive host status
  settled = submit_fn(handle, complete(read_details(e, READ_ALL, host_event), e, host_event)) == true
  return settled
end

function flush()
  if not handle then return true end
  settled = flush_fn(handle, unseen) == true
  unseen, waiting = 0, 0
  return settled
end
