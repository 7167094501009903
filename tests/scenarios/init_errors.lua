-- A wrong parameter makes init() fail with the parameter's name; Broker keeps the events.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local function failing(extra, key, want)
  if type(want) ~= "table" then want = { want } end
  local out = C.output(extra, { key = key })
  C.eq(out:state(), "init_failed", "state with " .. want[#want])
  local err = tostring(out:error())
  local logs = table.concat(out:logs(), "\n")
  for _, w in ipairs(want) do
    C.check(err:find(w, 1, true), "error names " .. w .. ": " .. err)
    C.check(logs:find(w, 1, true), "broker_log has the message: " .. logs)
  end
  C.check(not err:find(key or C.key, 1, true), "the routing key is not in the error")
  out:send(C.svc { host_id = 12, service_id = 34, state = 2, output = "CRITICAL" })
  C.eq(out:unacked(), 1, "events wait in Broker's queue")
  print("init_errors: " .. err)
end
-- A format_file template file, written in the work directory.
local function template(name, text)
  local path = C.work .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end
failing({}, "SECRETsecret123", "pdy_routing_key")
failing({ http_server_url = "not a url" }, nil, "http_server_url")
failing({ severity_host_down = "urgent" }, nil, "severity_host_down")
failing({ max_buffer_size = "ten" }, nil, "max_buffer_size")
failing({ verify_certificate = "maybe" }, nil, "verify_certificate")
-- broken templates: the parameter, the template key and the macro are named
failing({ format_file = template("bad.json", '{"neb_service_status": {') }, nil,
  { "parameter 'format_file'", "bad.json", "is not valid JSON" })
failing({ format_file = template("macro.json",
  '{"neb_service_status": {"payload": {"summary": "{cache.host.nmae} is {state_scstate}"}}}') }, nil,
  { "parameter 'format_file'", 'template "neb_service_status": unknown macro {cache.host.nmae}' })
failing({ format_file = template("flag.json",
  '{"neb_host_status": {"payload": {"summary": "{cache.host.name} is {state_scstat}"}}}') }, nil,
  { "parameter 'format_file'", 'template "neb_host_status": unknown flag _scstat in macro {state_scstat}' })
failing({ format_file = C.work .. "/missing.json" }, nil, { "parameter 'format_file'", "cannot read it" })
-- hostile files: a FIFO as the key file is refused at once (reading it would wait for ever),
-- an endless device as format_file is not read, a key pasted as the file name is masked
local fifo = C.work .. "/key.fifo"
os.remove(fifo)
assert(os.execute("mkfifo " .. fifo))
failing({ pdy_routing_key_file = fifo }, false,
  { "parameter 'pdy_routing_key_file'", fifo .. " is a FIFO, expected a regular file of at most 4096 bytes" })
failing({ format_file = "/dev/zero" }, nil,
  { "parameter 'format_file'", "it is a character device, expected a regular file" })
failing({ log_path = "/nonexistent/" .. C.key .. "/connector.log" }, nil,
  { "parameter 'log_path'", "does not exist" })
failing({ pdy_routing_key_file = C.key }, false,
  { "parameter 'pdy_routing_key_file'", "cannot read " .. string.rep("*", #C.key - 4) .. C.key:sub(-4) })
-- numbers as strings and as numbers are both fine
local ok = C.output { max_buffer_size = 1, verify_certificate = "1", proxy_port = "3128", proxy_address = "127.0.0.1" }
C.running(ok)
ok:stop()
print("init_errors: done")
