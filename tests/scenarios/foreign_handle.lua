-- A userdata that is not a handle but carries the handles' metatable (debug.setmetatable on
-- io.stdout, on a file of io.tmpfile()) is refused by every function and by __gc: an error
-- message, never a crash.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
package.cpath = C.script:match("^(.*)/[^/]*$") .. "/lib/?.so;" .. package.cpath
local pd = require("centreon_pagerduty")
local h = assert(pd.new {
  pdy_routing_key = C.key, send_data_test = 1, log_path = C.log,
  outbox_path = C.work .. "/foreign.db", http_server_url = C.url,
})
C.eq(getmetatable(h), "locked", "the handles' metatable is locked")
local mt = debug.getmetatable(h)
local calls = {
  plan = function(u) return pd.plan(u) end,
  state = function(u) return pd.state(u, 65560, 12, 34, 0, 0) end,
  status = function(u) return pd.status(u, 65560, 12, 34, 2, 1, false, 0, false, 0) end,
  event = function(u) return pd.event(u, 65537, 0) end,
  submit = function(u) return pd.submit(u, { host_id = 12, service_id = 34, state = 2 }) end,
  flush = function(u) return pd.flush(u) end,
  outstanding = function(u) return pd.outstanding(u) end,
  log = function(u) return pd.log(u, 0, "not a handle") end,
  close = function(u) return pd.close(u) end,
  gc = function(u) return mt.__gc(u) end,
}
local function refused(u, what)
  for name, call in pairs(calls) do
    local ok, a, b = pcall(call, u)
    C.check(ok, what .. ": " .. name .. " raised " .. tostring(a))
    C.check(a == nil or a == false, what .. ": " .. name .. " answered " .. tostring(a))
    if a == nil and name ~= "log" and name ~= "gc" then
      C.check(tostring(b):find("not a connector handle", 1, true), what .. ": " .. name .. ": " .. tostring(b))
    end
  end
end
-- io.stdout: a FILE* block the size of a handle's
local stdout_mt = debug.getmetatable(io.stdout)
debug.setmetatable(io.stdout, mt)
refused(io.stdout, "io.stdout")
debug.setmetatable(io.stdout, stdout_mt)
-- a temporary file left with the handles' metatable: its __gc runs ours at collection
local f = io.tmpfile()
debug.setmetatable(f, mt)
refused(f, "io.tmpfile()")
f = nil
collectgarbage("collect")
collectgarbage("collect")
-- the real handle still works, then closes once
C.eq(pd.outstanding(h), 0, "the real handle answers")
C.eq(pd.close(h), true, "the real handle closes")
C.eq(pd.close(h), false, "and only once")
local _, msg = pd.flush(h)
C.check(tostring(msg):find("closed", 1, true), "a closed handle says so: " .. tostring(msg))
print("foreign_handle: done")
