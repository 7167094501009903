-- centreon-pagerduty: Centreon Broker "Generic - Stream connector" output for PagerDuty.
--
-- Drop-in for /usr/share/centreon-broker/lua/pagerduty.lua. This script is plumbing only: the
-- native library (lib/centreon_pagerduty.so next to this file) makes every decision, sends in
-- the background and tells us when Broker may consider events safe. At init it hands us, as
-- data (its plan), the event types it accepts, the fields to read of each at each step, the
-- broker_cache lookups to do, its answer codes and the fast path's constants. See README.md.

-- Events arrive as read-only userdata: fields are produced only when read (each read is a call
-- into Broker).
broker_api_version = 2

local lib, handle, plan, A, state_fn, status_fn, event_fn, submit_fn, flush_fn
local types = {} -- accepted _type -> its plan (empty until init: Broker probes filter(1, 2) first)
-- The objects the library's last answer about them said stay OK (stays_ok[host_id][service_id],
-- 0 for a host): their next OK status needs no call while `settled` (the library's last
-- answer: every event handed over is stored). While not settled such a status waits (false) and
-- every wait_calls-th one asks again. `unseen` counts the events answered here, handed to the
-- next call for the library's statistics.
local stays_ok, settled, waiting, unseen = {}, false, 0, 0
-- The fast path's constants and A, the library's answers (plan.answers). Every COLLECT_EVENTS
-- events handed to write() (counted in `handed`), a step of Lua's collector as if COLLECT_KB
-- kilobytes had been allocated: the memory of Broker's events, which Lua does not see and
-- frees only when it runs their finalizers (plan.collect_events; none before init).
local OK_STATE, WAIT_CALLS, UNSEEN_MAX, COLLECT_EVENTS, COLLECT_KB, handed = nil, nil, nil, math.huge, 0, 0

-- The fields of `r` (a reader of the plan: its field names and r.read, a function reading them
-- all in one table constructor, sized for the fields added afterwards) of event e, in a fresh
-- table: one protected call for all; only if a read raises, each field on its own (a field
-- that cannot be read is absent). t1, t2: the check times when write() has read them (the
-- reader does not read them again).
local function read(e, r, t1, t2)
  local ok, d = pcall(r.read, e, t1, t2)
  if ok then return d end
  d = {}
  for _, k in ipairs(r.names) do
    local read_ok, v = pcall(function() return e[k] end)
    if read_ok and v ~= nil then d[k] = v end
  end
  return d
end

-- One broker_cache lookup; a failing or missing cache gives nil, never an error.
local function cached(method, ...)
  local cache = broker_cache
  if not cache or not cache[method] then return nil end
  local ok, v = pcall(cache[method], cache, ...)
  if ok then return v end
end

-- d[pairs[2i]] = object[pairs[2i-1]] (a table with broker_api_version 1, a read-only userdata
-- with 2: read by indexing only; called protected).
local function copy(d, object, pairs)
  for i = 1, #pairs, 2 do
    local v = object[pairs[i]]
    if v ~= nil then d[pairs[i + 1]] = v end
  end
end

-- The lookups the plan lists for a host's or a service's event, into d.
local function complete(d)
  local hid, sid = d.host_id, d.service_id
  if not hid then return d end
  local steps = (sid and sid ~= 0) and plan.service_lookups or plan.host_lookups
  for i = 1, #steps do
    local s, v = steps[i], nil
    if s.from then
      if d[s.from] ~= nil then v = cached(s.method, d[s.from]) end
    elseif not (s.unless_set and d[s.into] ~= nil) then
      if s.ids == 2 then v = cached(s.method, hid, sid) else v = cached(s.method, hid) end
    end
    -- a list of groups ({group_id, group_name} each) is handed over as it is
    if v ~= nil and s.object then
      pcall(copy, d, v, s.object)
    elseif type(v) == "table" or (v ~= nil and not s.groups) then
      d[s.into] = v
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
  if not ok then fail("cannot load the native library centreon_pagerduty (lib/centreon_pagerduty.so next to this script): " .. tostring(mod)) end
  if mod == true then fail("the native library could not find the Lua C API in this process (lua_* symbols)") end
  if type(mod) ~= "table" then fail(tostring(mod)) end
  if not mod.plan then fail("lib/centreon_pagerduty.so is older than this script: install the library and pagerduty.lua of one release") end
  lib = mod
  if handle then lib.close(handle) end
  local h, err = lib.new(conf)
  if not h then fail("init failed: " .. tostring(err)) end
  handle = h
  local p, perr = lib.plan(h)
  if not p then fail("init failed: " .. tostring(perr)) end
  for t, tp in pairs(p.types) do
    for _, r in ipairs({ tp.read, tp.read_all }) do
      r.read = assert(load(r.source, "=pagerduty.lua:read_" .. t, "t", {}))
    end
  end
  plan, types = p, p.types
  OK_STATE, WAIT_CALLS, UNSEEN_MAX, A, COLLECT_EVENTS, COLLECT_KB, handed = p.ok_state, p.wait_calls, p.unseen_max, p.answers, p.collect_events or math.huge, p.collect_kb or 0, 0
  stays_ok, settled, waiting, unseen = {}, false, 0, 0
  state_fn, status_fn, event_fn, submit_fn, flush_fn = lib.state, lib.status, lib.event, lib.submit, lib.flush
end

-- Broker calls filter() for an event right before write() for the same event: the plan of its
-- type is kept, which saves write() a field read (nil when filtering is off: then from e._type).
local filtered

function filter(category, element)
  filtered = types[(category << 16) | element]
  return filtered ~= nil
end

-- The library's answer r to the last question: the verdict for Broker, once settled.
local function answered(r)
  unseen, waiting, settled = 0, 0, r == A.acknowledged or r == A.stays_ok_acknowledged
  return settled
end

-- The verdict after the answer r, once the details d it asked for (nil: none) are handed over.
local function submitted(r, d)
  answered(r)
  if d ~= nil then settled = submit_fn(handle, complete(d)) == true end
  return settled
end

function write(e)
  handed = handed + 1 -- pcall: a finalizer's error is not write()'s
  if handed >= COLLECT_EVENTS then handed = 0; pcall(collectgarbage, "step", COLLECT_KB) end
  local p, d, r, t1, t2 = filtered, nil, nil
  filtered = nil
  if p == nil then
    local t = e._type
    p = types[t]
    if p == nil then return answered(event_fn(handle, t, unseen)) end
  end
  if not p.status then
    r = event_fn(handle, p.type, unseen)
    if r == A.need_details then d = read(e, p.read) end
    return submitted(r, d)
  end
  local hid, sid, st = e.host_id, 0, e.state
  if p.service then sid = e.service_id end
  local known = stays_ok[hid]
  r = A.need_flags
  if st == OK_STATE then
    if known and known[sid] then
      if settled then
        if unseen < UNSEEN_MAX then unseen = unseen + 1; return true end
      elseif waiting < WAIT_CALLS - 1 then
        waiting, unseen = waiting + 1, unseen + 1
        return false
      end
    end
    r = state_fn(handle, p.type, hid, sid, st, unseen)
    unseen, waiting = 0, 0
    -- an object the library has no memory of: asked again with the status's check times
    if r == A.need_times then
      t1, t2 = e[p.times[1]], e[p.times[2]]
      r = state_fn(handle, p.type, hid, sid, st, 0, t1, t2)
    end
    if r == A.stays_ok or r == A.stays_ok_acknowledged then
      if not known then known = {}; stays_ok[hid] = known end
      known[sid] = true
      return answered(r)
    end
  end
  if known and known[sid] ~= nil then known[sid] = nil end
  if r == A.need_flags then
    -- the fields the plan names for the status() question, handed over as read
    local f = p.flags
    local stype, ack, depth, flap = e[f[1]], e[f[2]], e[f[3]], e[f[4]]
    r = status_fn(handle, p.type, hid, sid, st, stype, ack, depth, flap, unseen)
    if r == A.need_details then
      d = read(e, p.read, t1, t2)
      d[f[1]], d[f[2]], d[f[3]], d[f[4]] = stype, ack, depth, flap
    end
  elseif r == A.need_details then
    d = read(e, p.read_all, t1, t2)
  end
  if d ~= nil then
    -- what write() has read is not read again
    d.category, d.element, d.host_id, d.state = p.category, p.element, hid, st
    if p.service then d.service_id = sid end
  end
  return submitted(r, d)
end

function flush()
  if not handle then return true end
  settled, unseen, waiting = flush_fn(handle, unseen) == true, 0, 0
  return settled
end
