-- format_file templates through the bridge: a service template (its own dedup_key, extra
-- event and broker_cache fields), a host template, an acknowledgement template.
local C = dofile(os.getenv("CPD_SCENARIO_DIR") .. "/common.lua")
local path = C.work .. "/templates.json"
local f = assert(io.open(path, "w"))
f:write([[
{
  "neb_service_status": {
    "routing_key": "whatever the old library wanted here",
    "event_action": "trigger",
    "dedup_key": "{cache.host.name}/{cache.service.description}",
    "payload": {
      "summary": "{cache.host.name}/{cache.service.description} is {state_scstate}: {output_scshort}",
      "source": "{cache.host.alias}",
      "severity": "{state_scstate}",
      "timestamp": "{last_check}",
      "custom_details": {
        "display": "{cache.service.display_name}",
        "address": "{cache.host.address}",
        "poller": "{cache.instance.name}",
        "severities": ["{cache.severity.host}", "{cache.severity.service}"],
        "groups": "{groups(hg,inline,.*)} / {cache.servicegroups}",
        "type": "{state_type_sctype}",
        "change": "{percent_state_change}",
        "attempt": "{check_attempt_scstring}"
      }
    }
  },
  "neb_host_status": {
    "payload": {
      "summary": "host {cache.host.name} {state_scstate}",
      "custom_details": {"hostgroups": "{cache.hostgroups}", "id": "{host_id}"}
    }
  },
  "neb_acknowledgement": {"payload": {"summary": "{author} acknowledged: {comment_data}"}}
}
]])
f:close()

local out = C.output { format_file = path }
C.running(out)
local e = C.svc { host_id = 12, service_id = 34, state = 2, output = "CRITICAL - /var 97%",
  long_output = "inodes 50%", check_attempt = 3 }
e.percent_state_change = 12.5 -- a field the bridge reads only because a template names it
-- Each step waits for the previous one's delivery, so that each request is checked on its own.
out:send(e)
C.delivered(out, 1)
out:send(C.ev.acknowledgement { bbdo = C.bbdo, host_id = 12, service_id = 34, author = "alice",
  comment_data = "on it" })
C.delivered(out, 2)
out:send(C.svc { host_id = 12, service_id = 34, state = 0, output = "OK - /var 40%" })
out:send(C.hst { host_id = 12, state = 1, output = "DOWN - no route" })
C.delivered(out, 4)
out:send(C.hst { host_id = 12, state = 0, output = "UP" })
C.settle(out)
C.delivered(out, 5)
out:stop()
print("templates: done")
