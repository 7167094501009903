-- A wrong parameter makes init() fail with the parameter's name; Broker keeps the events.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local function failing(extra, key, want)
  local out = C.output(extra, { key = key })
  C.eq(out:state(), "init_failed", "state with " .. want)
  local err = tostring(out:error())
  C.check(err:find(want, 1, true), "error names " .. want .. ": " .. err)
  C.check(not err:find(key or C.key, 1, true), "the routing key is not in the error")
  local logs = table.concat(out:logs(), "\n")
  C.check(logs:find(want, 1, true), "broker_log has the message: " .. logs)
  out:send(C.svc { host_id = 12, service_id = 34, state = 2, output = "CRITICAL" })
  C.eq(out:unacked(), 1, "events wait in Broker's queue")
  print("init_errors: " .. err)
end
failing({}, "SECRETsecret123", "pdy_routing_key")
failing({ http_server_url = "not a url" }, nil, "http_server_url")
failing({ severity_host_down = "urgent" }, nil, "severity_host_down")
failing({ max_buffer_size = "ten" }, nil, "max_buffer_size")
failing({ verify_certificate = "maybe" }, nil, "verify_certificate")
-- numbers as strings and as numbers are both fine
local ok = C.output { max_buffer_size = 1, verify_certificate = "1", proxy_port = "3128", proxy_address = "127.0.0.1" }
C.running(ok)
ok:stop()
print("init_errors: done")
