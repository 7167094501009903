-- demo/scenario.lua: a short Centreon story told through the real bridge.
--
-- Run by the Broker emulator (tests/host/broker_host.c), normally through demo/run.sh:
--   broker_host-5.4 demo/scenario.lua
-- Everything comes from the environment that run.sh sets:
--   CPD_HOST_DIR     tests/host (for events.lua, the builders of Broker events)
--   CPD_SCRIPT       the Broker script dir's pagerduty.lua (lib/centreon_pagerduty.so next to it)
--   CPD_URL          the Events API endpoint (the local stand-in, or PagerDuty)
--   CPD_KEY          the routing key (never printed)
--   CPD_LOG          the connector's log file (a second one, <name>-bbdo2.log, for the BBDO 2 output)
--   CPD_WORK         optional: where each output keeps its durable outbox (default: the log's dir)
--   CPD_STANDIN_OUT  optional: the stand-in's output file; what PagerDuty received is then
--                    shown after each step and checked against what the step expects.
--
-- Each step sends Broker events to the output, then idles Broker until the connector has
-- acknowledged them (the connector acknowledges an event once PagerDuty accepted it, or once
-- it decided there was nothing to send).

local HOST_DIR = assert(os.getenv("CPD_HOST_DIR"), "CPD_HOST_DIR not set")
local SCRIPT = assert(os.getenv("CPD_SCRIPT"), "CPD_SCRIPT not set")
local URL = assert(os.getenv("CPD_URL"), "CPD_URL not set")
local KEY = assert(os.getenv("CPD_KEY"), "CPD_KEY not set")
local LOG = assert(os.getenv("CPD_LOG"), "CPD_LOG not set")
local LOG_BBDO2 = (LOG:gsub("%.log$", "")) .. "-bbdo2.log"
local WORK = os.getenv("CPD_WORK") or LOG:match("^(.*)/[^/]*$") or "."
local STANDIN_OUT = os.getenv("CPD_STANDIN_OUT")
if STANDIN_OUT == "" then STANDIN_OUT = nil end
local CENTREON_URL = os.getenv("CPD_CENTREON_URL") or "https://centreon.example.com"
local ACK_TIMEOUT = tonumber(os.getenv("CPD_ACK_TIMEOUT") or "20")
local DELIVERY_TIMEOUT = tonumber(os.getenv("CPD_DELIVERY_TIMEOUT") or "20")
local first_output -- the main output (its log is CPD_LOG)

local ev = dofile(HOST_DIR .. "/events.lua")

------------------------------------------------------------------------------
-- What Broker's cache knows about the monitored estate.
local cache = {
  hosts = {
    [101] = { name = "srv-db", alias = "PostgreSQL primary", address = "10.0.1.5", instance_id = 1,
              severity = 2, notes_url = "https://wiki.example.com/srv-db",
              groups = { { group_id = 1, group_name = "linux" }, { group_id = 2, group_name = "databases" } } },
    [102] = { name = "web-front-01", alias = "Public web front", address = "10.0.2.11", instance_id = 2,
              severity = 3, groups = { { group_id = 1, group_name = "linux" }, { group_id = 3, group_name = "web" } } },
    [103] = { name = "core-sw-02", alias = "Core switch, room B", address = "10.0.0.2", instance_id = 1,
              severity = 1, groups = { { group_id = 4, group_name = "network" } } },
    [104] = { name = "app-legacy", alias = "Legacy ERP", address = "10.0.3.20", instance_id = 2,
              groups = { { group_id = 5, group_name = "erp" } } },
  },
  services = {
    ["101:201"] = { description = "Disk /var", severity = 1,
                    action_url = "https://grafana.example.com/d/disks?host=srv-db",
                    groups = { { group_id = 10, group_name = "storage" } } },
    ["102:202"] = { description = "HTTPS certificate", groups = { { group_id = 11, group_name = "security" } } },
    ["102:203"] = { description = "HTTP response time", groups = { { group_id = 12, group_name = "web-sla" } } },
    ["104:204"] = { description = "Java heap", groups = {} },
  },
  instances = { [1] = "Central", [2] = "Poller-Paris" },
}

local function object_name(host_id, service_id)
  local h = cache.hosts[host_id].name
  if service_id then return h, "service '" .. cache.services[host_id .. ":" .. service_id].description .. "'" end
  return h, "host"
end

------------------------------------------------------------------------------
-- The story clock: the story starts 20 minutes ago, so every check time is in the past.
local T0 = os.time() - 1200

local function stamp(at)
  if at < 60 then return string.format("t+%ds", at) end
  return string.format("t+%dm%02ds", at // 60, at % 60)
end

-- Per object, what Centreon remembers (state, last changes), to build realistic statuses.
local memory = {}

local SERVICE_STATES = { [0] = "OK", "WARNING", "CRITICAL", "UNKNOWN" }
local HOST_STATES = { [0] = "UP", "DOWN", "UNREACHABLE" }

-- A status event at story time `at`. o: host_id, service_id (nil for a host), state,
-- state_type (1 HARD, 0 SOFT), attempt, output, long_output, perfdata, downtime, acknowledged.
local function status(bbdo, at, o)
  local key = o.host_id .. ":" .. (o.service_id or "H")
  local m = memory[key] or { state = 0, lsc = T0 - 86400, lhs = 0, lhsc = T0 - 86400 }
  local now = T0 + at
  local state_type = o.state_type or 1
  if o.state ~= m.state then m.lsc = now end
  if state_type == 1 and o.state ~= m.lhs then m.lhs, m.lhsc = o.state, now end
  m.state = o.state
  memory[key] = m
  local e = {
    bbdo = bbdo, host_id = o.host_id, service_id = o.service_id, state = o.state,
    state_type = state_type, check_attempt = o.attempt or 3, max_check_attempts = 3,
    last_check = now, last_state_change = m.lsc, last_hard_state = m.lhs,
    last_hard_state_change = m.lhsc, output = o.output, long_output = o.long_output,
    perfdata = o.perfdata, downtime = o.downtime, acknowledged = o.acknowledged,
  }
  if o.service_id then return ev.service_status(e) end
  return ev.host_status(e)
end

------------------------------------------------------------------------------
-- Outputs: Broker's "Generic - Stream connector" with its lua_parameter list.
local function output(name, bbdo, log)
  local out = host.output {
    name = name,
    script = SCRIPT,
    bbdo = bbdo,
    cache = cache,
    flush_interval = 0.25,
    params = {
      { type = "password", name = "pdy_routing_key", value = KEY },
      { type = "string", name = "http_server_url", value = URL },
      { type = "string", name = "pdy_centreon_url", value = CENTREON_URL },
      { type = "string", name = "log_path", value = log },
      -- one durable outbox per output (the default lives under /var/lib/centreon-broker)
      { type = "string", name = "outbox_path", value = WORK .. "/outbox-" .. name:gsub("%W", "_") .. ".db" },
      { type = "number", name = "log_level", value = "2" },
      { type = "number", name = "http_timeout", value = "10" },
    },
  }
  if out:state() ~= "running" then
    error(string.format("output %q did not start: %s\n%s", name, tostring(out:error()),
      table.concat(out:errors(), "\n")), 0)
  end
  return out
end

------------------------------------------------------------------------------
-- Following a file that another process appends to: complete lines since the last look.
local function follower(path)
  local offset = 0
  return function()
    local lines = {}
    local f = path and io.open(path, "r")
    if not f then return lines end
    f:seek("set", offset)
    local text = f:read("a") or ""
    f:close()
    local complete = text:match("^(.*\n)") or "" -- a line still being written waits
    offset = offset + #complete
    for line in complete:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
    return lines
  end
end

-- What the stand-in received: "12:00:01.123 202 trigger 101_201 critical "summary"".
local standin_lines = STANDIN_OUT and follower(STANDIN_OUT)
local function standin_news()
  local news = {}
  for _, line in ipairs(standin_lines()) do
    local status, action, dedup, severity, summary =
      line:match('^%d+:%d+:%d+%.%d+ (%S+) (%S+) (%S+) (%S+) (.*)$')
    if status then
      news[#news + 1] = { status = status, action = action, dedup = dedup, severity = severity,
                          summary = summary }
    end
  end
  return news
end
local log_lines = follower(LOG)
local log2_lines = follower(LOG_BBDO2)

local function wait_until(pred, timeout)
  local deadline = host.now() + timeout
  while not pred() do
    if host.now() >= deadline then return false end
    host.sleep(0.05)
  end
  return true
end

local expected_total = { trigger = 0, acknowledge = 0, resolve = 0 }
local mismatches = {}
local started = host.now()

local function mismatch(at, msg)
  msg = string.format("[%s] %s", stamp(at), msg)
  mismatches[#mismatches + 1] = msg
  print("          !! " .. msg)
end

-- One step: narrate, send, let Broker idle until the connector acknowledged everything
-- (it acknowledges once an event is safe in its durable outbox, or needs nothing sent),
-- then wait for the delivery to PagerDuty and show it.
-- expect: nil (nothing must reach PagerDuty) or { action, dedup_key }.
local function step(out, at, who, what, expect, events, why)
  print(string.format("[%s] %s: %s", stamp(at), who, what))
  for _, e in ipairs(events) do out:send(e) end
  local acked = out:idle_until(function() return out:unacked() == 0 end, ACK_TIMEOUT)
  local waiting = out:unacked()
  print(string.format("          Broker: %d event%s waiting (%d handed to the output so far, %.1fs)",
    waiting, waiting == 1 and "" or "s", out:acked() + waiting, host.now() - started))
  if not acked then
    error(string.format("the connector did not acknowledge the events within %ds (see %s)%s",
      ACK_TIMEOUT, LOG, #out:errors() > 0 and ("\n" .. table.concat(out:errors(), "\n")) or ""), 0)
  end
  if expect then expected_total[expect[1]] = expected_total[expect[1]] + 1 end
  local grace = 0.5 -- how long "nothing sent" is watched for

  if not STANDIN_OUT then
    -- real PagerDuty: follow the connector's log until it reports the delivery
    local lines, next_lines = {}, (out == first_output) and log_lines or log2_lines
    local function seen()
      for _, l in ipairs(next_lines()) do lines[#lines + 1] = l end
      if not expect then return false end
      for _, l in ipairs(lines) do
        if l:find(" " .. expect[2], 1, true) then return true end
      end
      return false
    end
    local ok = wait_until(seen, expect and DELIVERY_TIMEOUT or grace)
    for _, l in ipairs(lines) do print("          log: " .. l) end
    if not expect then
      print("          -> nothing for PagerDuty: " .. why)
    elseif not ok then
      mismatch(at, string.format("no news of %s %s in the connector's log after %ds",
        expect[1], expect[2], DELIVERY_TIMEOUT))
    end
    return
  end

  local news = {}
  local function arrived()
    for _, n in ipairs(standin_news()) do news[#news + 1] = n end
    return expect ~= nil and #news >= 1
  end
  wait_until(arrived, expect and DELIVERY_TIMEOUT or grace)
  for _, n in ipairs(news) do
    print(string.format("          PagerDuty <- %s %s %s %s %s", n.status, n.action, n.dedup, n.severity, n.summary))
  end
  if #news == 0 then print("          PagerDuty: nothing received (" .. (why or "?") .. ")") end
  local ok
  if expect then
    ok = #news == 1 and news[1].status == "202" and news[1].action == expect[1] and news[1].dedup == expect[2]
  else
    ok = #news == 0
  end
  if not ok then
    mismatch(at, string.format("expected %s, PagerDuty received %d request(s)",
      expect and (expect[1] .. " " .. expect[2]) or "nothing", #news))
  end
end

-- Anything that reached the stand-in after the last step is a surprise too.
local function nothing_more()
  if not STANDIN_OUT then return end
  host.sleep(0.5)
  for _, n in ipairs(standin_news()) do
    print(string.format("          PagerDuty <- %s %s %s %s %s", n.status, n.action, n.dedup, n.severity, n.summary))
    mismatch(900, "unexpected request after the last step")
  end
end

------------------------------------------------------------------------------
local function story()
  print(string.format("Centreon Broker: output 'PagerDuty' (BBDO 3.0.0) loads %s", SCRIPT))
  local out = output("PagerDuty", "3.0.0", LOG)
  first_output = out
  print(string.format("          running, Broker API %d, filter() enabled: %s, log %s",
    out:api_version(), tostring(out:filtering()), LOG))
  print("Broker cache: srv-db (10.0.1.5, Central, linux+databases, severity 2), " ..
    "web-front-01 (10.0.2.11, Poller-Paris, linux+web, severity 3), core-sw-02 (10.0.0.2, Central, network, severity 1), " ..
    "app-legacy (10.0.3.20, Poller-Paris, erp)")
  print("")

  local S = 3 -- BBDO version of the main output

  step(out, 0, "srv-db", "service 'Disk /var' goes WARNING (SOFT, attempt 1/3)", nil,
    { status(S, 0, { host_id = 101, service_id = 201, state = 1, state_type = 0, attempt = 1,
        output = "WARNING - /var used 91%", perfdata = "'/var'=91%;90;95;0;100" }) },
    "SOFT state, Centreon is still checking")

  step(out, 60, "srv-db", "service 'Disk /var' goes CRITICAL (HARD, attempt 3/3), with perfdata and long output",
    { "trigger", "101_201" },
    { status(S, 60, { host_id = 101, service_id = 201, state = 2, attempt = 3,
        output = "CRITICAL - /var used 97% (2.9 GB free of 100 GB)",
        long_output = "largest: /var/log/postgresql 61 GB\n/var/lib/docker 18 GB",
        perfdata = "'/var'=97%;90;95;0;100 '/var#free'=2.9GB;;;0;100" }) })

  step(out, 120, "srv-db", "service 'Disk /var' still CRITICAL at the next check", nil,
    { status(S, 120, { host_id = 101, service_id = 201, state = 2, attempt = 3,
        output = "CRITICAL - /var used 98% (2.1 GB free of 100 GB)",
        perfdata = "'/var'=98%;90;95;0;100 '/var#free'=2.1GB;;;0;100" }) },
    "the incident is already open")

  step(out, 180, "core-sw-02", "host goes DOWN (HARD), severity critical", { "trigger", "103_H" },
    { status(S, 180, { host_id = 103, state = 1, attempt = 3,
        output = "CRITICAL - 10.0.0.2: rta nan, lost 100%" }) })

  step(out, 300, "srv-db", "operator acknowledges service 'Disk /var' in Centreon (\"purging old WAL files\")",
    { "acknowledge", "101_201" },
    { ev.acknowledgement { bbdo = S, host_id = 101, service_id = 201, author = "alice",
        comment = "purging old WAL files", entry_time = T0 + 300, state = 2 },
      status(S, 300, { host_id = 101, service_id = 201, state = 2, attempt = 3, acknowledged = true,
        output = "CRITICAL - /var used 98% (2.0 GB free of 100 GB)" }) })

  step(out, 420, "core-sw-02", "host is UP again", { "resolve", "103_H" },
    { status(S, 420, { host_id = 103, state = 0, attempt = 1, output = "OK - 10.0.0.2: rta 0.4ms, lost 0%" }) })

  step(out, 480, "web-front-01", "service 'HTTPS certificate' goes CRITICAL (HARD)", { "trigger", "102_202" },
    { status(S, 480, { host_id = 102, service_id = 202, state = 2, attempt = 3,
        output = "CRITICAL - certificate for www.example.com expires in 2 days",
        perfdata = "days_left=2;14;7;0" }) })

  step(out, 600, "web-front-01", "maintenance downtime starts; service 'HTTP response time' goes WARNING (HARD) inside it",
    nil,
    { ev.downtime { bbdo = S, host_id = 102, author = "bob", comment = "certificate renewal",
        start_time = T0 + 600, end_time = T0 + 4200 },
      status(S, 600, { host_id = 102, service_id = 203, state = 1, attempt = 3, downtime = 1,
        output = "WARNING - HTTP 200 in 2.8 s", perfdata = "time=2.8s;2;5;0" }) },
    "a problem that starts in a downtime opens no incident")

  step(out, 660, "web-front-01", "service 'HTTPS certificate' recovers during the downtime (certificate renewed)",
    { "resolve", "102_202" },
    { status(S, 660, { host_id = 102, service_id = 202, state = 0, attempt = 1, downtime = 1,
        output = "OK - certificate for www.example.com valid for 89 days", perfdata = "days_left=89;14;7;0" }) })

  step(out, 720, "srv-db", "service 'Disk /var' recovers (OK)", { "resolve", "101_201" },
    { status(S, 720, { host_id = 101, service_id = 201, state = 0, attempt = 1,
        output = "OK - /var used 64%", perfdata = "'/var'=64%;90;95;0;100" }) })

  step(out, 740, "web-front-01", "the downtime ends while service 'HTTP response time' is still WARNING",
    { "trigger", "102_203" },
    { status(S, 740, { host_id = 102, service_id = 203, state = 1, attempt = 3, downtime = 0,
        output = "WARNING - HTTP 200 in 2.6 s", perfdata = "time=2.6s;2;5;0" }) },
    "a problem that started in a downtime is paged when the downtime ends")

  step(out, 760, "web-front-01", "service 'HTTP response time' recovers (OK)", { "resolve", "102_203" },
    { status(S, 760, { host_id = 102, service_id = 203, state = 0, attempt = 1,
        output = "OK - HTTP 200 in 0.3 s", perfdata = "time=0.3s;2;5;0" }) })

  -- An older Broker speaking BBDO 2: a second output, its own handle in the same library.
  print("")
  print("Centreon Broker: a second output 'PagerDuty (BBDO 2)' with bbdo_version 2.0.0 (an older poller)")
  local old = output("PagerDuty (BBDO 2)", "2.0.0", LOG_BBDO2)
  print(string.format("          running, log %s", LOG_BBDO2))

  step(old, 780, "app-legacy", "service 'Java heap' goes CRITICAL (HARD) [BBDO 2 event]", { "trigger", "104_204" },
    { status(2, 780, { host_id = 104, service_id = 204, state = 2, attempt = 3,
        output = "CRITICAL - heap 97% used", long_output = "old gen 3.9/4.0 GB\nfull GC every 4 s",
        perfdata = "heap=97%;85;95;0;100" }) })

  step(old, 900, "app-legacy", "service 'Java heap' recovers (OK) [BBDO 2 event]", { "resolve", "104_204" },
    { status(2, 900, { host_id = 104, service_id = 204, state = 0, attempt = 1,
        output = "OK - heap 41% used", perfdata = "heap=41%;85;95;0;100" }) })

  nothing_more()

  print("")
  print("Centreon Broker: stopping the outputs (flush, then lua_close)")
  old:stop()
  out:stop()
  print(string.format("          outputs stopped: %s, %s", out:state(), old:state()))

  print(string.format("Expected at PagerDuty: %d trigger, %d acknowledge, %d resolve",
    expected_total.trigger, expected_total.acknowledge, expected_total.resolve))
  if #mismatches > 0 then
    error("the demo did not go as expected:\n  " .. table.concat(mismatches, "\n  "), 0)
  end
end

story()
