-- Options of the Lua stream-connectors library through the bridge: the output options,
-- skip_nil_id and log_curl_commands, on two outputs told apart by their dedup_key_prefix.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local a = C.output({ dedup_key_prefix = "a-", use_long_output = 0, output_size_limit = 20 },
  { name = "A" })
local b = C.output({ dedup_key_prefix = "b-", remove_line_break_in_output = 1,
  output_line_break_replacement_character = " | ", skip_nil_id = 0, log_curl_commands = 1 },
  { name = "B" })
C.running(a)
C.running(b)
for _, out in ipairs { a, b } do
  -- quotes, a backslash, $ and ` in the output: the curl command must keep them as they are
  out:send(C.svc { host_id = 12, service_id = 34, state = 2,
    output = "CRITICAL - it's /var 97% $HOME `id` \\ \"q\"", long_output = "inodes 50%\nmounted ro" })
  -- no host id (BBDO 2 hands an id of 0 over as nil): never sent
  out:send(C.svc { host_id = 0, service_id = 34, state = 2, output = "no host id" })
end
C.settle(a)
C.settle(b)
C.delivered(b, 2)
a:stop()
b:stop()
print("library_options: done")
