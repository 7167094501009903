-- logrotate renames the log while the output runs: the old file keeps what was written
-- before, the connector reopens the path and writes on (checked every 5 s).
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local out = C.output()
C.running(out)
out:send(C.svc { host_id = 12, service_id = 34, state = 2, output = "CRITICAL - before rotation" })
C.settle(out)
C.delivered(out, 1)
assert(os.rename(C.log, C.log .. ".1"))
host.sleep(5.5)
out:send(C.svc { host_id = 12, service_id = 34, state = 0, output = "OK - after rotation" })
C.settle(out)
C.delivered(out, 1) -- counted in the new file
out:stop()
print("rotation: done")
