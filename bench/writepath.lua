-- bench/writepath.lua: the write-path / memory benchmark scenario, run by the Broker emulator
-- (tests/host/broker_host.c) and driven by bench/writepath.sh.
--
--   broker_host-5.4 bench/writepath.lua time   <script.lua> <events>
--   broker_host-5.4 bench/writepath.lua memory <script.lua> <events_1>,<events_2>
--
-- Environment: BENCH_EVENTS_LUA (tests/host/events.lua), BENCH_WORK (a writable directory for
-- the outbox and the log, emptied by the caller), BENCH_URL (Events API endpoint),
-- BENCH_KEY (32-character routing key); BENCH_SERVICES (see below); BENCH_CHANGE_EVERY (default 100, profiling only: 1 event
-- in that many is a state change, 0 for none); BENCH_PROBLEM_ROUNDS (default 2: how many rounds
-- a problem lasts, at most 2 x BENCH_CHANGE_EVERY - 1).
--
-- One output (script <script.lua>, BBDO 3) receives BBDO 3 service status events (category 1,
-- element 29) for 10,000 services on 500 hosts, generated here in the same way whatever the
-- script. Service s is checked once per round of 10,000 events; from round 1 on it is CRITICAL
-- (HARD) in the rounds r where (r + s) % 200 < 2, OK in the others: each service has a problem
-- of 2 rounds (10 minutes at a 5-minute check interval) every 200 rounds, so 1 event in 100 is
-- a state change (last_check == last_state_change; one CRITICAL, one recovery), spread evenly,
-- and 1 % of the services are in a problem at any time, as on a healthy platform; every other
-- event repeats the current state with a new check time. (Until 2026-12-04 a service went
-- CRITICAL at its first change and stayed so for 100 rounds: in a 1,000,000-event run the
-- services in a problem grew from none to all, half the events on average, where a status
-- takes the bridge 7 field reads instead of 3; BENCH_PROBLEM_ROUNDS=100 gives half the services
-- in a problem throughout.) Round 0 (one event per service) is a warm-up that is not measured: it
-- introduces every service to the script (the bridge's first event for an unknown object
-- always takes the details path).
--
-- "time": host.now() around host.send_many(out, events, gen) only; prints
--   RESULT time <events> <seconds> <CPU seconds of the emulator's main thread, or ->
--     <times the main thread was put to sleep (voluntary context switches), or ->
-- "memory": after the warm-up, sends events_1 events, reads the emulator's resident memory,
-- sends events up to events_2 in all, reads it again; prints
--   RESULT memory <events_1> <rss_kb_1> <events_2> <rss_kb_2> <most events retained at once>
--     <C heap kept free, kB> <most events awaiting their finalizer at once>
-- Sanity counters (written, acknowledged, flushes, errors) and, for "memory", where the memory
-- is (C heap in use / kept free, Lua heap, the most events retained unacknowledged) go to stderr. The scenario fails
-- (exit 1) if the output is not running at the end or reported errors.

local mode, script, count = arg[1], arg[2], arg[3]
assert(mode == "time" or mode == "memory", "usage: writepath.lua time|memory <script> <events>")
assert(script and count, "usage: writepath.lua time|memory <script> <events>")

local function env(name)
  return assert(host.getenv(name), name .. " not set")
end
local ev = dofile(env("BENCH_EVENTS_LUA"))
local work = env("BENCH_WORK")

-- BENCH_SERVICES (default 10,000; smaller only for smoke runs of bench/profile.sh): services,
-- 20 per host
local SERVICES = math.tointeger(tonumber(host.getenv("BENCH_SERVICES") or "10000"))
assert(SERVICES and SERVICES >= 20, "BENCH_SERVICES must be an integer >= 20")
local HOSTS = SERVICES // 20
-- 1 event in CHANGE_EVERY is a state change; BENCH_CHANGE_EVERY=0 (profiling only): none at all
local CHANGE_EVERY = math.tointeger(tonumber(host.getenv("BENCH_CHANGE_EVERY") or "100"))
assert(CHANGE_EVERY and CHANGE_EVERY >= 0, "BENCH_CHANGE_EVERY must be an integer >= 0")
local PERIOD = 2 * CHANGE_EVERY
local PROBLEM_ROUNDS = math.tointeger(tonumber(host.getenv("BENCH_PROBLEM_ROUNDS") or "2"))
assert(PROBLEM_ROUNDS and PROBLEM_ROUNDS >= 1 and (CHANGE_EVERY == 0 or PROBLEM_ROUNDS < PERIOD),
  "BENCH_PROBLEM_ROUNDS must be an integer from 1 to 2 x BENCH_CHANGE_EVERY - 1")
local CHECK_INTERVAL = 300

-- ---- what Broker's cache knows ------------------------------------------------------------
local cache = { hosts = {}, services = {}, instances = { [1] = "Central", [2] = "Poller-east" } }
for h = 1, HOSTS do
  cache.hosts[h] = {
    name = string.format("srv-%04d", h),
    alias = string.format("server %d", h),
    address = string.format("10.%d.%d.%d", h // 65536 % 256, h // 256 % 256, h % 256),
    instance_id = 1 + h % 2,
    severity = (h % 5 == 0) and 2 or nil,
    groups = { { group_id = 1, group_name = "linux" }, { group_id = 2 + h % 10, group_name = "site-" .. (h % 10) } },
  }
end
local SERVICE_NAMES = { "Cpu", "Load", "Memory", "Swap", "Disk-/", "Disk-/var", "Ping", "Ntp",
  "Uptime", "Traffic-eth0", "Process-sshd", "Process-crond", "Http", "Https-cert", "Dns",
  "Smtp", "Mysql-Connections", "Mysql-Queries", "Inodes-/", "Zombie-processes" }

-- ---- the services, their current state and a reusable event table each --------------------
-- send_many copies the table the generator returns (as Broker builds a fresh event), so the
-- generator only updates a few fields of a per-service table: its cost is small and the same
-- for both scripts.
local T0 = os.time() - 86400
local svc = {} -- [s] = { ev = event table, out = { [0] = ok output, [2] = critical output }, perf = ... }
for s = 1, SERVICES do
  local hid = (s - 1) % HOSTS + 1
  local name = SERVICE_NAMES[(s - 1) // HOSTS % #SERVICE_NAMES + 1]
  cache.services[hid .. ":" .. s] = {
    description = name,
    notes_url = (s % 3 == 0) and ("https://wiki.example.com/services/" .. name) or nil,
    groups = { { group_id = 100 + s % 7, group_name = "sg-" .. (s % 7) } },
  }
  local pct = 40 + s % 50
  local ok_out = string.format("OK - %s usage is %d%% (threshold 80%%/90%%)", name, pct)
  local crit_out = string.format("CRITICAL - %s usage is %d%% (threshold 80%%/90%%)", name, 95 + s % 5)
  local perf = string.format("'used'=%d%%;80;90;0;100 'used_abs'=%dB;;;0;%d", pct, pct * 1048576, 100 * 1048576)
  local first = T0 + s % CHECK_INTERVAL
  local e = ev.service_status {
    bbdo = 3, host_id = hid, service_id = s, state = 0, state_type = 1,
    check_attempt = 1, max_check_attempts = 3,
    last_check = first, last_state_change = T0 - 7 * 86400, last_hard_state_change = T0 - 7 * 86400,
    output = ok_out, long_output = "", perfdata = perf,
  }
  -- the other fields of a BBDO 3 ServiceStatus (pb_service_status)
  e.checked = true
  e.next_check = first + CHECK_INTERVAL
  e.last_time_ok = first
  e.last_time_warning = 0
  e.last_time_critical = 0
  e.last_time_unknown = 0
  e.percent_state_change = 0.0
  e.latency = 0.012
  e.execution_time = 0.105
  e.should_be_scheduled = true
  e.no_more_notifications = false
  e.last_notification = 0
  e.next_notification = 0
  svc[s] = { ev = e, out = { [0] = ok_out, [2] = crit_out }, state = 0 }
end

-- Event number g (1-based, warm-up included): service (g-1) % SERVICES + 1, round (g-1) // SERVICES.
local g = 0
local function gen()
  g = g + 1
  local s = (g - 1) % SERVICES + 1
  local r = (g - 1) // SERVICES
  local v = svc[s]
  local e = v.ev
  local t = T0 + r * CHECK_INTERVAL + s % CHECK_INTERVAL
  e.last_check = t
  e.next_check = t + CHECK_INTERVAL
  e.latency = (g % 97) * 0.001
  e.execution_time = 0.05 + (g % 13) * 0.01
  local st = v.state
  if r > 0 and CHANGE_EVERY > 0 then st = ((r + s) % PERIOD < PROBLEM_ROUNDS) and 2 or 0 end
  if st ~= v.state then
    v.state = st
    e.state = st
    e.output = v.out[st]
    e.last_state_change = t
    e.last_hard_state = st
    e.last_hard_state_change = t
    e.percent_state_change = 6.25
  end
  if v.state == 0 then e.last_time_ok = t else e.last_time_critical = t end
  return e
end

-- ---- the output -----------------------------------------------------------------------------
local out = host.output {
  script = script,
  bbdo = "3.0.0",
  cache = cache,
  params = {
    { type = "string", name = "outbox_path", value = work .. "/outbox.db" },
    { type = "password", name = "pdy_routing_key", value = env("BENCH_KEY") },
    { type = "string", name = "http_server_url", value = env("BENCH_URL") },
    { type = "string", name = "pdy_centreon_url", value = "https://centreon.example.com" },
    { type = "string", name = "log_path", value = work .. "/connector.log" },
    { type = "number", name = "log_level", value = "0" },
  },
}
if out:state() ~= "running" then
  error("output not running: " .. tostring(out:error()) .. "\n" .. table.concat(out:errors(), "\n"))
end

local function check()
  local errs = out:errors()
  if out:state() ~= "running" or #errs > 0 then
    error("output " .. out:state() .. ": " .. tostring(out:error()) .. "\n" .. table.concat(errs, "\n"))
  end
end

-- warm-up: one round, every service seen once
host.send_many(out, SERVICES, gen)
check()
collectgarbage()
local GC_STOPPED = host.getenv("BENCH_GC") == "stop"
if GC_STOPPED then
  out:gc("collect")
  collectgarbage("stop")
  out:gc("stop")
end

local function report()
  io.stderr:write(string.format("  [%s] written %d, acknowledged %d, unacknowledged %d, flushes %d\n",
    script:match("[^/]+$"), out:written(), out:acked(), out:unacked(), out:flushes()))
end

-- CPU time (user + system, seconds) of this thread, the one that runs Broker's side and the
-- script; nil where /proc/thread-self is missing. Not part of the JSON: a diagnostic for
-- busy machines (wall time also counts time stolen by other processes).
local function thread_cpu()
  local f = io.open("/proc/thread-self/stat")
  if not f then return nil end
  local line = f:read("l")
  f:close()
  local rest = line and line:match("%) (.*)$")
  if not rest then return nil end
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  -- after "pid (comm) ": state is field 3, utime field 14, stime field 15 (1-based, man 5 proc)
  local ut, st = tonumber(fields[12]), tonumber(fields[13])
  if not ut or not st then return nil end
  return (ut + st) / 100 -- USER_HZ
end

-- Times this thread was put to sleep (voluntary context switches: a lock another thread held,
-- a blocking call); nil where /proc/thread-self is missing. The baseline script never waits:
-- each wait of the bridge is Broker's thread stopped by the library's threads.
local function thread_waits()
  local f = io.open("/proc/thread-self/status")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return tonumber(text:match("\nvoluntary_ctxt_switches:%s*(%d+)"))
end

if mode == "time" then
  local n = math.tointeger(tonumber(count))
  assert(n and n > 0, "events must be a positive integer")
  local flushes0 = out:flushes()
  local w0, c0 = thread_waits(), thread_cpu()
  local t0 = host.now()
  host.send_many(out, n, gen)
  local t1 = host.now()
  local c1, w1 = thread_cpu(), thread_waits()
  -- outside the timed window: a full collection, so that callgrind's totals for N and 3N
  -- events (bench/profile.sh) both end with the garbage collected, whatever the phase of the
  -- collector when the loop ended (none with BENCH_GC=stop: no collector runs at all)
  if not GC_STOPPED then collectgarbage() end
  check()
  report()
  io.stderr:write(string.format("  flushes during the timed loop (back-pressure): %d\n", out:flushes() - flushes0))
  print(string.format("RESULT time %d %.9f %s %s", n, t1 - t0, c0 and c1 and string.format("%.2f", c1 - c0) or "-",
    w0 and w1 and string.format("%d", w1 - w0) or "-"))
else
  local n1, n2 = count:match("^(%d+),(%d+)$")
  n1, n2 = math.tointeger(tonumber(n1)), math.tointeger(tonumber(n2))
  assert(n1 and n2 and n2 >= n1, "memory: events must be <events_1>,<events_2>")
  host.send_many(out, n1, gen)
  local rss1 = host.rss_kb()
  host.send_many(out, n2 - n1, gen)
  local rss2 = host.rss_kb()
  check()
  report()
  -- where the resident memory is (diagnostics): the C heap in use and kept free, and the
  -- Lua heap before and after a full collection (Broker's retention is in the Lua heap here)
  local heap, lua_kb = host.heap(), collectgarbage("count")
  collectgarbage("collect")
  io.stderr:write(string.format(
    "  C heap: %.1f MB in use, %.1f MB free but kept, %.1f MB mapped; Lua heap %.1f MB (%.1f MB live); most events retained at once: %d; most events awaiting their finalizer at once: %d (Broker's full collections: %d)\n",
    heap.in_use / 1048576, heap.free / 1048576, heap.mmapped / 1048576, lua_kb / 1024,
    collectgarbage("count") / 1024, out:max_unacked(), out:peak_live_events(), out:full_collects()))
  print(string.format("RESULT memory %d %d %d %d %d %d %d", n1, rss1, n2, rss2, out:max_unacked(),
    heap.free // 1024, out:peak_live_events()))
end
