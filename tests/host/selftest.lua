-- selftest.lua: checks the broker_host emulator itself with selftest_script.lua.
--   broker_host tests/host/selftest.lua
-- Prints "selftest: N passed, 0 failed" and exits 0, or raises listing failures.

local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local script = dir .. "/selftest_script.lua"
local ev = dofile(dir .. "/events.lua")

local passed, failures = 0, {}
local function check(cond, name)
  if cond then
    passed = passed + 1
  else
    failures[#failures + 1] = name
    io.stderr:write("FAIL: " .. name .. "\n")
  end
end
local function eq(a, b, name)
  check(a == b, string.format("%s (got %s, expected %s)", name, tostring(a), tostring(b)))
end

-- temp dir for wrapper scripts and log files
local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p '" .. tmp .. "'"))
local function write_file(name, text)
  local p = tmp .. "/" .. name
  local f = assert(io.open(p, "w"))
  f:write(text)
  f:close()
  return p
end

local function has_log(out, s)
  for _, l in ipairs(out:logs()) do
    if l == s then return true end
  end
  return false
end
local function count_log(out, s)
  local c = 0
  for _, l in ipairs(out:logs()) do
    if l == s then c = c + 1 end
  end
  return c
end
local function last_log(out)
  local l = out:logs()
  return l[#l]
end
local function has_error(out, pat)
  for _, e in ipairs(out:errors()) do
    if e:find(pat, 1, true) then return true end
  end
  return false
end

local function svc(host_id, extra)
  local o = { bbdo = 3, host_id = host_id, service_id = 34, state = 2, output = "CRIT", perfdata = "x=1" }
  for k, v in pairs(extra or {}) do o[k] = v end
  return ev.service_status(o)
end
local function probe(out, code, name)
  out:send({ category = 1, element = 99, probe = code })
  eq(last_log(out), "INFO: probe ok", name)
end

------------------------------------------------------------------------------
-- events.lua shapes
do
  local e2 = ev.service_status{ bbdo = 2, host_id = 12, service_id = 34, state = 2, output = "a",
                                long_output = "b", last_check = 1000 }
  eq(e2.element, 24, "bbdo2 service_status element")
  eq(e2._type, 65560, "bbdo2 service_status _type")
  eq(e2.output, "a\nb", "bbdo2 output joins long_output")
  eq(e2.long_output, nil, "bbdo2 no long_output")
  eq(e2.acknowledged, false, "bbdo2 boolean acknowledged")
  eq(e2.acknowledgement_type, nil, "bbdo2 no acknowledgement_type")
  eq(e2.last_update, 1000, "bbdo2 last_update")
  local e2z = ev.host_status{ bbdo = 2, host_id = 12, state = 1, state_type = 0, last_check = 1000 }
  eq(e2z.element, 14, "bbdo2 host_status element")
  eq(e2z.last_hard_state_change, nil, "bbdo2 zero time -> nil")
  eq(e2z.service_id, nil, "host_status has no service_id")
  local e3 = ev.service_status{ bbdo = 3, host_id = 12, service_id = 34, state = 2, output = "a",
                                long_output = "b", acknowledged = true, downtime = 1 }
  eq(e3.element, 29, "bbdo3 service_status element")
  eq(e3._type, 65565, "bbdo3 service_status _type")
  eq(e3.output, "a", "bbdo3 separate output")
  eq(e3.long_output, "b", "bbdo3 long_output")
  eq(e3.acknowledgement_type, 1, "bbdo3 acknowledgement_type")
  eq(e3.acknowledged, nil, "bbdo3 no acknowledged")
  eq(e3.last_update, nil, "bbdo3 no last_update")
  eq(e3.scheduled_downtime_depth, 1, "scheduled_downtime_depth from downtime")
  local h3 = ev.host_status{ bbdo = 3, host_id = 12, state = 1, state_type = 0 }
  eq(h3._type, 65568, "bbdo3 host_status _type")
  eq(h3.last_hard_state_change, 0, "bbdo3 zero time stays 0")
  eq(ev.acknowledgement{ bbdo = 2, host_id = 1 }._type, 65537, "bbdo2 ack _type")
  eq(ev.acknowledgement{ bbdo = 2, host_id = 1 }.service_id, nil, "bbdo2 host ack service_id nil")
  eq(ev.acknowledgement{ bbdo = 3, host_id = 1, comment = "c" }.comment_data, "c", "ack comment_data")
  eq(ev.acknowledgement{ bbdo = 3, host_id = 1 }._type, 65581, "bbdo3 ack _type")
  eq(ev.downtime{ bbdo = 2, host_id = 1 }._type, 65541, "bbdo2 downtime _type")
  eq(ev.downtime{ bbdo = 3, host_id = 1, service_id = 2 }._type, 65572, "bbdo3 downtime _type")
  eq(ev.type(1, 24), 65560, "ev.type")
end

------------------------------------------------------------------------------
-- load, conf conversion, globals order, filter probe, logs, api 1, acks
local main = host.output{
  script = script,
  params = {
    { type = "string", name = "mode", value = "x" },
    { type = "number", name = "n_int", value = "42" },
    { type = "number", name = "n_float", value = "1.5" },
    { type = "number", name = "n_num", value = 7 },
    { type = "password", name = "secret", value = "pw" },
    { type = "bogus", name = "dropped", value = "1" },
  },
}
eq(main:state(), "running", "load: running")
eq(main:api_version(), 1, "api version 1 by default")
eq(main:filtering(), true, "filter probe enables filtering")
-- audit row "filter probe": Broker probes filter(1, 2) before broker_log exists and before init()
check(has_log(main, "INFO: filter probe 1 2: broker_log=nil init_done=false"), "filter(1, 2) probed before globals and init")
check(has_log(main, "INFO: top: broker_log=nil broker=nil broker_cache=nil"), "no globals during chunk")
check(has_log(main, "INFO: init: broker_cache=nil broker=table"), "broker_cache only after init")
check(has_log(main, "INFO: conf: mode=string:x n_float=float:1.5 n_int=integer:42 n_num=integer:7 secret=string:pw"),
  "lua_parameter conversion")
check(not has_log(main, "INFO: level1 message"), "log level 0 drops level 1")
check(not has_log(main, "WARNING: level2 message"), "log level 0 drops level 2 warning")
-- audit row "broker_log levels": error() obeys the level like info() and warning()
check(not has_log(main, "ERROR: level3 error"), "log level 0 drops a level 3 error too")
eq(main:error(), nil, "no error after load")

eq(main:send(svc(12)), false, "1st write -> false, not acked")
eq(main:unacked(), 1, "unacked 1")
eq(main:send(svc(13)), true, "2nd write -> true, acked")
eq(main:unacked(), 0, "unacked 0 after ack")
eq(main:acked(), 2, "acked 2")
check(has_log(main, "INFO: write 1: table _type=65565 host_id=12 service_id=34"), "api1 event is a table with _type")
main:send({ category = 2, element = 1, host_id = 5 })
eq(main:filtered(), 1, "filter rejects category 2")
eq(main:unacked(), 1, "filtered event still counted")
main:send(svc(14))
eq(main:unacked(), 2, "unacked 2")
main:send(svc(15))
eq(main:acked(), 5, "ack is cumulative (includes the filtered event)")
eq(main:written(), 4, "written 4")
probe(main, [[
  local e = events[#events]
  assert(type(e) == "table" and math.type(e.host_id) == "integer" and e.output == "CRIT")
  assert(e.flapping == false and e.category == 1 and e.element == 29)
  e.x = 1
]], "api1 event fields / writable table")
probe(main, [[
  assert(broker.bbdo_version() == "3.0.0")
  assert(broker.url_encode("a b&c/\xC3\xA9~-_.") == "a%20b%26c%2F%C3%A9~-_.")
  assert(broker.json_encode({}) == "[]")
  assert(broker.json_encode({1, "a"}) == '[1,"a"]')
  assert(broker.json_encode({k = "v\n"}) == '{"k":"v\\n"}')
  assert(broker.stat("/") ~= nil and broker.stat("/nonexistent/x") == nil)
  assert(not pcall(broker_log.set_parameters, broker_log, 5, ""))
]], "broker table and set_parameters level check")
-- write error: nothing acked, error recorded
local before = main:acked()
main:send(svc(666))
check(has_error(main, "write boom"), "write error recorded")
eq(main:acked(), before, "write error acks nothing")
eq(main:flush(), true, "flush() -> true")
eq(main:unacked(), 0, "flush true acks everything")
check(main:flushes() >= 1, "flush counted")
local ok, err = pcall(main.send, main, { category = 1 })
check(not ok and tostring(err):find("element", 1, true), "event without element rejected")

-- log level 3 + log file
do
  local logpath = tmp .. "/broker.log"
  local o = host.output{ script = script, params = { log_level = 3, log_path = logpath } }
  check(has_log(o, "INFO: level1 message") and has_log(o, "WARNING: level2 message")
    and has_log(o, "ERROR: level3 error"), "log level 3 records all")
  local f = io.open(logpath)
  local text = f and f:read("a") or ""
  if f then f:close() end
  check(text:find("INFO: level1 message", 1, true) ~= nil, "log file written")
  o:stop()
end

------------------------------------------------------------------------------
-- api 2: read-only userdata
do
  local api2 = write_file("api2.lua", string.format("SELFTEST_API = 2\ndofile(%q)\n", script))
  local o = host.output{ script = api2, bbdo = "2.0.0", params = { ack = "always" } }
  eq(o:api_version(), 2, "api version 2")
  o:send(ev.service_status{ bbdo = 2, host_id = 12, service_id = 34, state = 1, output = "W", long_output = "L" })
  eq(o:acked(), 1, "api2 write acked")
  check(has_log(o, "INFO: write 1: userdata _type=65560 host_id=12 service_id=34"), "api2 event is userdata")
  probe(o, [[
    local e = events[1]
    assert(type(e) == "userdata")
    assert(e.output == "W\nL" and e.acknowledged == false and math.type(e.host_id) == "integer")
    assert(e.nonexistent == nil)
    -- Broker's metatable has no __newindex: Lua's own error
    local ok, err = pcall(function() e.host_id = 1 end)
    assert(not ok and tostring(err):find("attempt to index a broker_event value", 1, true))
    assert(tostring(e):find("^broker_event: "))
    assert(getmetatable(e) == broker_event and broker_event.__pairs and broker_event.__newindex == nil)
    local n = 0
    for k, v in pairs(e) do n = n + 1 end
    assert(n > 10)
    assert(broker.bbdo_version() == "2.0.0")
  ]], "api2 userdata semantics")
  o:stop()
end

------------------------------------------------------------------------------
-- api 2: Broker's events live outside the output's Lua heap until their finalizer runs
-- (broker_event::create / l_broker_event_destructor), and Broker's own full collection
do
  local api2 = write_file("api2_gc.lua", string.format("SELFTEST_API = 2\ndofile(%q)\n", script))
  local o = host.output{ script = api2, bbdo = "2.0.0", params = { ack = "always" } }
  eq(o:full_collects(), 0, "no full collection before the first event")
  o:send(ev.service_status{ bbdo = 2, host_id = 12, service_id = 34, state = 1, output = "W" })
  eq(o:full_collects(), 1, "a new state's first event: Broker's full collection")
  -- the script keeps its events (events[]): alive, and their fields still read
  o:send(ev.service_status{ bbdo = 2, host_id = 12, service_id = 35, state = 0, output = "O" })
  o:gc("collect")
  eq(o:live_events(), 2, "events kept by the script stay alive")
  probe(o, [[
    assert(#events == 2 and events[1].service_id == 34 and events[2].output == "O")
    local heap = collectgarbage("count")
    events = {}
    collectgarbage()
    assert(collectgarbage("count") < heap)
  ]], "fields of kept events read after later events")
  o:gc("collect")
  eq(o:live_events(), 0, "released events finalized")
  -- 1,000 events behind an empty script: all finalized by a collection, none lost to it
  local empty = host.output{ script = write_file("empty_api2.lua",
    "broker_api_version = 2\nfunction init() end\nfunction write(e) return true end\n") }
  host.send_many(empty, 1000, function(i) return svc(i) end)
  eq(empty:acked(), 1000, "empty script: 1000 acknowledged")
  check(empty:peak_live_events() > 1 and empty:peak_live_events() <= 1000, "empty script: events awaited their finalizers")
  empty:gc("collect")
  eq(empty:live_events(), 0, "empty script: a full collection finalizes every event")
  host.send_many(empty, 10, function(i) return svc(i) end)
  empty:stop()
  eq(empty:live_events(), 0, "closing the state finalizes every event")
  o:stop()
end

------------------------------------------------------------------------------
-- back-pressure
do
  local o = host.output{ script = script, params = { ack = "never", flush = "after:3" },
                         queue_max = 3, flush_interval = 0.05 }
  for i = 1, 3 do o:send(svc(100 + i)) end
  eq(o:unacked(), 3, "bp: 3 unacked")
  eq(o:flushes(), 0, "bp: no flush yet")
  local t0 = host.now()
  o:send(svc(104))
  local dt = host.now() - t0
  eq(o:flushes(), 3, "bp: flush called until it returned true")
  check(dt >= 0.09, "bp: flush every flush_interval (" .. dt .. ")")
  eq(o:acked(), 3, "bp: flush true acked the queue")
  eq(o:unacked(), 1, "bp: then the event was handed")
  eq(o:written(), 4, "bp: write called for the 4th event")
  o:stop()

  local s = host.output{ script = script, params = { ack = "never", flush = "false" },
                         queue_max = 2, flush_interval = 0.05, stall_timeout = 0.2 }
  s:send(svc(1)); s:send(svc(2))
  local ok2, err2 = pcall(s.send, s, svc(3))
  check(not ok2 and tostring(err2):find("output stalled: flush() never returned true", 1, true),
    "bp: stall raises")
  eq(s:written(), 2, "bp: no write while full")
  s:stop()
end

------------------------------------------------------------------------------
-- reload replays unacked events
do
  local o = host.output{ script = script, params = { ack = "never", flush = "false" } }
  for i = 1, 3 do o:send(svc(200 + i)) end
  eq(o:unacked(), 3, "reload: 3 unacked")
  eq(o:reload(), true, "reload: running again")
  eq(o:flushes(), 1, "reload: flush once before close")
  eq(count_log(o, "INFO: init: broker_cache=nil broker=table"), 2, "reload: init ran twice")
  eq(o:unacked(), 3, "reload: replayed events counted again")
  eq(o:written(), 6, "reload: replayed events written")
  local logs, seq = o:logs(), {}
  for _, l in ipairs(logs) do
    local n, h = l:match("^INFO: write (%d+): table _type=%d+ host_id=(%d+)")
    if n then seq[#seq + 1] = n .. ":" .. h end
  end
  eq(table.concat(seq, ","), "1:201,2:202,3:203,1:201,2:202,3:203", "reload: replay in order into a new state")
  probe(o, "FLUSH_MODE = 'true'", "reload: switch flush mode")
  eq(o:flush(), true, "reload: flush true")
  eq(o:unacked(), 0, "reload: everything acked")
  eq(o:acked(), 4, "reload: acked 3 events + the probe")
  o:stop()
end

------------------------------------------------------------------------------
-- stop / restart
do
  local o = host.output{ script = script, params = { ack = "never", flush = "false" } }
  o:send(svc(301)); o:send(svc(302))
  o:stop()
  eq(o:state(), "stopped", "stop: stopped")
  eq(o:flushes(), 1, "stop: flush once")
  local p = o:pending()
  eq(#p, 2, "stop: 2 pending")
  eq(p[1].host_id, 301, "stop: pending in order")
  eq(p[2]._type, 65565, "stop: pending have _type")
  o:send(svc(303))
  eq(o:unacked(), 3, "stop: send while stopped queues")
  eq(o:written(), 2, "stop: no write while stopped")
  eq(o:restart(), true, "restart: running")
  eq(o:written(), 5, "restart: 3 replayed")
  eq(o:unacked(), 3, "restart: still unacked")
  o:stop()
end

------------------------------------------------------------------------------
-- broker_cache
do
  local cache = {
    hosts = {
      [12] = { name = "srv-db", alias = "db", address = "10.0.0.5", instance_id = 1, severity = 2,
               notes_url = "http://n/12", action_url = "http://a/12", notes = "n12",
               groups = { { group_id = 1, group_name = "linux" } } },
      [13] = { name = "srv-web" },
      [14] = { name = "srv-odd", groups = { { group_id = 3, group_name = "a", extra = true }, "junk",
                                            { group_id = 4, group_name = "b" } } },
    },
    services = {
      ["12:34"] = { description = "Disk /var", severity = 1, action_url = "http://a/12/34",
                    groups = { { group_id = 7, group_name = "disks" } } },
      ["12:35"] = { description = "Load" },
    },
    instances = { [1] = "Central" },
  }
  local o = host.output{ script = script, cache = cache, params = { ack = "always" } }
  probe(o, [[
    local c = broker_cache
    -- audit row "broker_cache object": a userdata whose methods check their self
    assert(type(c) == "userdata" and type(broker_log) == "userdata" and type(broker) == "table")
    assert(not pcall(c.get_hostname, 12))
    assert(c:get_hostname(12) == "srv-db")
    assert(c:get_hostname(99) == nil)
    assert(c:get_service_description(12, 34) == "Disk /var")
    assert(c:get_service_description(12, 99) == nil)
    local hg = c:get_hostgroups(12)
    assert(#hg == 1 and hg[1].group_id == 1 and hg[1].group_name == "linux")
    hg[1].group_name = "mutated"
    assert(c:get_hostgroups(12)[1].group_name == "linux")
    -- as Broker builds them: only group_id and group_name, entries that are not tables skipped
    local n = 0
    for k in pairs(c:get_hostgroups(14)[1]) do n = n + 1 end
    assert(n == 2 and #c:get_hostgroups(14) == 2 and c:get_hostgroups(14)[2].group_name == "b")
    local none = c:get_hostgroups(13)
    assert(type(none) == "table" and next(none) == nil)
    -- audit row "groups of an unknown object": an empty table, never nil
    local unknown = c:get_hostgroups(99)
    assert(type(unknown) == "table" and next(unknown) == nil)
    assert(c:get_servicegroups(12, 34)[1].group_name == "disks")
    assert(next(c:get_servicegroups(12, 35)) == nil)
    assert(type(c:get_servicegroups(12, 99)) == "table" and next(c:get_servicegroups(12, 99)) == nil)
    assert(c:get_instance_name(1) == "Central" and c:get_instance_name(2) == nil)
    assert(c:get_severity(12) == 2 and math.type(c:get_severity(12)) == "integer")
    assert(c:get_severity(12, 34) == 1 and c:get_severity(12, 35) == nil and c:get_severity(99) == nil)
    -- audit row "get_severity arguments": a service_id is read when given, an explicit nil raises
    assert(c:get_severity(12, 0) == 2 and not pcall(c.get_severity, c, 12, nil))
    assert(c:get_notes_url(12) == "http://n/12" and c:get_action_url(12, 34) == "http://a/12/34")
    assert(c:get_notes(12) == "n12")
    -- audit row "string fields of a known object": "" when unset, nil only for an unknown object
    assert(c:get_check_command(12) == "" and c:get_notes_url(13) == "" and c:get_action_url(12, 35) == "")
    assert(c:get_notes_url(99) == nil and c:get_action_url(12, 99) == nil)
    -- API 1: full objects are fresh tables with the event type of a host / service (BBDO 3)
    local h = c:get_host(12)
    assert(type(h) == "table" and h._type == 65566 and h.category == 1 and h.element == 30)
    assert(h.host_id == 12 and h.address == "10.0.0.5" and h.name == "srv-db" and h.groups == nil)
    assert(h.severity == nil and h.instance_id == 1 and h.timezone == "")
    assert(c:get_host(13).instance_id == 0)
    local s = c:get_service(12, 34)
    assert(type(s) == "table" and s._type == 65563 and s.element == 27)
    assert(s.host_id == 12 and s.service_id == 34 and s.description == "Disk /var" and s.long_output == "")
    assert(c:get_host(99) == nil and c:get_service(1, 2) == nil)
    assert(not pcall(c.get_hostname, c, nil))
    assert(not pcall(c.get_hostname))
  ]], "broker_cache lookups")
  o:set_cache{ hosts = { [12] = { name = "renamed" } } }
  probe(o, [[assert(broker_cache:get_hostname(12) == "renamed" and broker_cache:get_hostname(13) == nil)]],
    "set_cache replaces data")
  o:stop()
end

------------------------------------------------------------------------------
-- audit row "cache objects under API 2": get_host / get_service give read-only broker_event
-- userdata (broker_event::create), BBDO 2 (neb::host / neb::service) and BBDO 3 (pb_host /
-- pb_service); read by indexing, pairs() walks them, the reads are not counted as event reads
do
  local api2 = write_file("api2_cache.lua", string.format("SELFTEST_API = 2\ndofile(%q)\n", script))
  local cache = {
    hosts = { [12] = { name = "srv-db", address = "10.0.0.5", instance_id = 1, severity = 2,
                       groups = { { group_id = 1, group_name = "linux" } } },
              [13] = { name = "srv-web" } },
    services = { ["12:34"] = { description = "Disk /var", display_name = "Disk" } },
    instances = { [1] = "Central" },
  }
  for _, v in ipairs({ { "2.0.0", 65548, 65559, "nil" }, { "3.0.0", 65566, 65563, "0" } }) do
    local bbdo, htype, stype, no_instance = v[1], v[2], v[3], v[4]
    local o = host.output{ script = api2, bbdo = bbdo, cache = cache, params = { ack = "always" } }
    local reads = host.field_reads()
    probe(o, string.format([[
      local h = broker_cache:get_host(12)
      assert(type(h) == "userdata" and getmetatable(h) == broker_event)
      assert(h.name == "srv-db" and h.address == "10.0.0.5" and h.instance_id == 1 and h.host_id == 12)
      assert(h._type == %d and h.category == 1 and h.element == %d and h.alias == "")
      assert(h.groups == nil and h.severity == nil and h.nonexistent == nil)
      assert(not pcall(function() h.name = "x" end))
      local n = 0
      for k, v in pairs(h) do n = n + 1 end
      assert(n > 10)
      assert(tostring(broker_cache:get_host(13).instance_id) == %q)
      local s = broker_cache:get_service(12, 34)
      assert(type(s) == "userdata" and s.description == "Disk /var" and s.display_name == "Disk")
      assert(s._type == %d and s.host_id == 12 and s.service_id == 34 and s.notes_url == "")
      assert(broker_cache:get_host(99) == nil and broker_cache:get_service(12, 99) == nil)
    ]], htype, htype & 0xffff, no_instance, stype), "cache objects are userdata under API 2, BBDO " .. bbdo)
    eq(host.field_reads() - reads, 2, "cache object reads not counted (only the probe event's element and probe), BBDO " .. bbdo)
    o:stop()
  end
end

------------------------------------------------------------------------------
-- audit rows "filter() at run time", "flush() looked for once", "broker_log arguments"
do
  local fnb = host.output{ script = write_file("filter_nonbool.lua", string.format(
    "dofile(%q)\nfunction filter(c, e) if c == 1 and e == 2 then return true end return 1 end\n", script)),
    params = { ack = "always" } }
  eq(fnb:filtering(), true, "filter probe returned a boolean")
  fnb:send(svc(1))
  eq(fnb:written(), 0, "a non-boolean from filter(): no write()")
  eq(fnb:unacked(), 1, "a non-boolean from filter(): the event is counted")
  check(has_error(fnb, "`filter' must return a boolean"), "a non-boolean from filter() is reported")
  fnb:stop()

  local late = host.output{ script = write_file("late_flush.lua", string.format(
    "dofile(%q)\nlocal f = flush\nflush = nil\nlocal i = init\nfunction init(c) i(c) flush = f end\n", script)),
    params = { ack = "never" } }
  late:send(svc(1))
  eq(late:flush(), false, "flush() defined only in init(): never called")
  eq(late:flushes(), 0, "flush() defined only in init(): not counted")
  late:stop()

  local o = host.output{ script = script, params = { log_level = 1 } }
  probe(o, [[
    broker_log:info("not a number", "level read with lua_tointeger: 0")
    broker_log:warning(1, nil)
    assert(not pcall(broker_log.info, 0, "dot call"))
    assert(not pcall(broker_log.set_parameters, broker_log, 4, ""))
  ]], "broker_log arguments")
  check(has_log(o, "INFO: level read with lua_tointeger: 0"), "a non-number level is 0")
  check(has_log(o, "WARNING: (null)"), "a nil message is (null)")
  o:stop()
end

------------------------------------------------------------------------------
-- init error, retry with start()
do
  local flag = write_file("fail_init", "")
  local o = host.output{ script = script, params = { fail_init_file = flag } }
  eq(o:state(), "init_failed", "init error: init_failed")
  check((o:error() or ""):find("init boom", 1, true), "init error message recorded")
  o:send(svc(401)); o:send(svc(402))
  eq(o:unacked(), 2, "init error: events queue")
  eq(o:written(), 0, "init error: no write")
  eq(o:start(), false, "init error: retry still fails")
  os.remove(flag)
  eq(o:start(), true, "init error: retry succeeds")
  eq(o:written(), 2, "init error: queued events delivered")
  eq(o:acked(), 2, "init error: and acked")
  o:stop()
end

------------------------------------------------------------------------------
-- chunk errors, missing functions, disabled filtering
do
  local o = host.output{ script = write_file("chunk_err.lua", "error('top boom')\n") }
  eq(o:state(), "failed", "chunk error: failed")
  eq(o:error(), "could not be compiled", "chunk error message dropped")
  check(has_error(o, "top boom"), "chunk error: real message kept in errors()")
  o:send(svc(1))
  eq(o:unacked(), 1, "chunk error: event queues")

  local s = host.output{ script = write_file("syntax_err.lua", "function (\n") }
  -- audit row "chunk errors": a syntax error keeps its message, a runtime error does not
  check((s:error() or ""):find("^could not be loaded: .*syntax_err%.lua:1:"), "syntax error -> could not be loaded: <message>")

  local nw = host.output{ script = write_file("no_write.lua", "function init() end\n") }
  eq(nw:state(), "failed", "missing write(): failed")
  check((nw:error() or ""):find("write()", 1, true), "missing write() reported")

  local fnil = host.output{ script = write_file("filter_nil.lua",
    string.format("dofile(%q)\nfunction filter(c, e) return nil end\n", script)) }
  eq(fnil:filtering(), false, "filter returning nil disables filtering")
  fnil:send({ category = 2, element = 1, host_id = 5 })
  eq(fnil:written(), 1, "filtering disabled: category 2 written")
  eq(fnil:filtered(), 0, "filtering disabled: nothing filtered")
  fnil:stop()

  local ferr = host.output{ script = write_file("filter_err.lua",
    string.format("dofile(%q)\nfunction filter(c, e) error('filter boom') end\n", script)) }
  eq(ferr:filtering(), false, "filter raising disables filtering")
  ferr:stop()

  local nf = host.output{ script = write_file("no_filter.lua",
    string.format("dofile(%q)\nfilter = nil\nflush = nil\n", script)), params = { ack = "never" } }
  eq(nf:filtering(), false, "no filter: filtering disabled")
  nf:send(svc(1))
  eq(nf:flush(), false, "no flush(): flush returns false")
  eq(nf:flushes(), 0, "no flush(): not counted")
  nf:stop()
end

------------------------------------------------------------------------------
-- idle / idle_until / flush errors
do
  local o = host.output{ script = script, params = { ack = "never", flush = "after:3" }, flush_interval = 0.05 }
  o:send(svc(1))
  local t0 = host.now()
  o:idle(0.12)
  local dt = host.now() - t0
  check(dt >= 0.11 and dt < 0.5, "idle lasts the given time (" .. dt .. ")")
  eq(o:flushes(), 3, "idle: flush at 0, 0.05, 0.10")
  eq(o:unacked(), 0, "idle: flush true acked")
  o:send(svc(2))
  eq(o:idle_until(function() return o:unacked() == 0 end, 1), true, "idle_until: predicate met")
  probe(o, "FLUSH_MODE = 'false'", "switch flush to false")
  eq(o:idle_until(function() return o:unacked() == 0 end, 0.12), false, "idle_until: timeout")
  probe(o, "FLUSH_MODE = 'error'", "switch flush to error")
  eq(o:flush(), false, "flush error -> false")
  check(has_error(o, "flush boom"), "flush error recorded")
  o:stop()
end

------------------------------------------------------------------------------
-- send_many, misc host functions
do
  local o = host.output{ script = script }
  local acks = host.send_many(o, 100, function(i) return svc(i) end)
  eq(o:written(), 100, "send_many: 100 written")
  eq(o:acked(), 100, "send_many: all acked")
  eq(acks, 50, "send_many: 50 acknowledging writes")
  o:stop()
  check(math.type(host.time()) == "integer" and host.time() > 1600000000, "host.time")
  check(type(host.rss_kb()) == "number" and host.rss_kb() > 0, "host.rss_kb")
  eq(host.getenv("BROKER_HOST_SURELY_UNSET_VAR"), nil, "host.getenv unset")
  check(host.getenv("PATH") ~= nil, "host.getenv PATH")
  local t0 = host.now()
  host.sleep(0.02)
  check(host.now() - t0 >= 0.019, "host.sleep")
end

os.execute("rm -rf '" .. tmp .. "'")
print(string.format("selftest: %d passed, %d failed", passed, #failures))
if #failures > 0 then
  error("selftest failures:\n  " .. table.concat(failures, "\n  "))
end
