/*
 * centreon_pagerduty.h - C ABI of the centreon-pagerduty connector.
 *
 * The library turns Centreon monitoring events (host and service statuses, acknowledgements)
 * into PagerDuty Events API v2 events (trigger, acknowledge, resolve) and delivers them in
 * the background. Centreon Broker drives it through its Lua module; this header is for every
 * other host: a C or C++ program, or a language with a C FFI.
 *
 * Link with -lcentreon_pagerduty (libcentreon_pagerduty.so). The library has no
 * dependency on liblua.
 *
 * Conventions (the same for every function below):
 *
 *  - Every symbol starts with `cpd_` (types and functions) or `CPD_` (constants).
 *  - Text crosses the ABI as UTF-8 JSON given as (pointer, length in bytes). It does not
 *    need to be NUL-terminated, and the library never keeps the pointer after the call
 *    returns: the caller keeps ownership and may free or reuse the memory at once.
 *  - Messages come back by copying into a buffer the caller owns: (buf, len) where len is
 *    the size of buf in bytes, NUL included. The copy is always NUL-terminated; when the
 *    message does not fit it is cut to len - 1 bytes (possibly in the middle of a
 *    multi-byte UTF-8 character) and CPD_INSUFFICIENT_SIZE is returned. `written`, when
 *    not NULL, receives the number of bytes copied, NUL excluded. 256 bytes is enough for
 *    most messages; a message quoting a long parameter value may need more.
 *  - A required pointer that is NULL gives CPD_NULL_ARGUMENT and nothing else happens.
 *    Optional pointers (marked "may be NULL") are simply not written when NULL.
 *  - No function lets a Rust panic cross the ABI: an internal error is reported as
 *    CPD_PANIC (or 0 / no-op for the functions that return no cpd_result).
 *  - No function blocks on the network except cpd_connector_flush (which waits, up to its
 *    timeout, for the background delivery) and cpd_connector_free (which stops it).
 *  - The library writes its own log file (see the configuration below); it never writes
 *    to stdout or stderr, and never writes the routing key anywhere.
 *
 * Configuration JSON (cpd_connector_new): one JSON object whose keys are the parameter
 * names of the Centreon PagerDuty stream connector (the Lua connector's parameters, legacy
 * and current spellings), with string, number or boolean values. Only pdy_routing_key is
 * required. Example:
 *
 *   {
 *     "pdy_routing_key": "0123456789abcdef0123456789abcdef",   (32 letters or digits)
 *     "http_server_url": "https://events.pagerduty.com/v2/enqueue",
 *     "pdy_centreon_url": "https://centreon.example.com/centreon",
 *     "log_path": "/var/log/myhost/pagerduty.log",              (or "logfile")
 *     "log_level": 2,                  (0 errors, 1 warnings (default), 2 info, 3 debug)
 *     "outbox_path": "/var/lib/myhost/pagerduty-outbox.db",
 *     "max_buffer_size": 1,
 *     "accepted_elements": "host_status,service_status"
 *   }
 *
 * The directories of log_path (default /var/log/centreon-broker/...) and of outbox_path
 * (default /var/lib/centreon-broker/centreon-pagerduty-<hash of the key>.db) must exist:
 * outside a Centreon server, set both. The outbox is a durable database of the events not
 * yet delivered and of the incidents open per object; a connector created again with the
 * same outbox_path sends what was left and remembers open incidents. One outbox per
 * connector: two live connectors must not share it.
 *
 * Other parameters: pdy_source, client, http_proxy_string, proxy_address, proxy_port,
 * proxy_protocol, proxy_username, proxy_password, connection_timeout (http_timeout),
 * verify_certificate, max_all_queues_age (max_buffer_age), accepted_categories, host_status,
 * service_status, hard_only, acknowledged, in_downtime, flapping, skip_anon_events,
 * send_data_test, severity_host_down, severity_host_unreachable, severity_service_warning,
 * severity_service_critical, severity_service_unknown, accepted_hostgroups,
 * rejected_hostgroups, accepted_servicegroups, rejected_servicegroups, accepted_pollers,
 * rejected_pollers, host_severity_threshold, host_severity_operator,
 * service_severity_threshold, service_severity_operator, outbox_max_events,
 * outbox_commit_delay_ms, rejected_max_events, stats_path, stats_interval. Unknown names give
 * a warning in the log, not an error. Broker's own form, an array of
 * {"name": ..., "value": ...} objects, is accepted too.
 *
 * Event JSON (cpd_connector_push_json): one JSON object holding the fields of a Broker
 * event, plus the names Broker's cache knows about the object:
 *
 *   type        "category" and "element" (numbers), or "_type" = (category << 16) | element.
 *               Category 1 (neb). Elements:
 *                            BBDO 3    BBDO 2
 *                 service status   29        24
 *                 host status      32        14
 *                 acknowledgement  45         1   (when accepted_elements includes it)
 *                 downtime         36         5   (when accepted_elements includes it)
 *               Events of other types are ignored (CPD_OK, nothing sent).
 *   ids         "host_id" (required, > 0), "service_id" (required, > 0, for a service).
 *   status      "state" (required; service 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN,
 *               4 PENDING; host 0 UP, 1 DOWN, 2 UNREACHABLE), "state_type" (1 HARD,
 *               default; 0 SOFT), "check_attempt", "max_check_attempts",
 *               "output", "long_output", "perfdata",
 *               "last_check", "last_state_change", "last_hard_state_change" (Unix seconds;
 *               a status is a state change when last_check == last_state_change),
 *               "acknowledged" (boolean) or "acknowledgement_type" (non-zero = acknowledged),
 *               "scheduled_downtime_depth" (> 0 = in downtime), "flapping" (boolean).
 *   names       "host_name", "service_description", "hostgroups" and "servicegroups"
 *               (arrays of strings, or of {"group_name": ...} objects, or a comma list),
 *               "host_severity", "service_severity" (numbers), "poller", "host_address",
 *               "notes_url", "action_url". All optional: an object without names is sent
 *               with its ids ("host #12/service #34").
 *   acknowledgement  "author", "comment_data", "entry_time", "deletion_time".
 *
 * Numbers may also be given as strings of digits, and flags as 0/1. null values are
 * ignored. Example (BBDO 3 service status, a HARD CRITICAL state change):
 *
 *   {"category": 1, "element": 29, "host_id": 12, "service_id": 34, "state": 2,
 *    "state_type": 1, "output": "CRITICAL - /var 97%", "last_check": 1700000000,
 *    "last_state_change": 1700000000, "host_name": "srv-db",
 *    "service_description": "Disk /var", "hostgroups": ["linux", "db"]}
 *
 * The PagerDuty dedup_key is "<host_id>_<service_id>" for a service ("12_34") and
 * "<host_id>_H" for a host.
 *
 * Thread safety: cpd_version and cpd_result_message may be called from any thread at any
 * time. A cpd_connector may be used from several threads at once (calls on one handle are
 * serialised by an internal lock), except cpd_connector_free, which must be the last call
 * on the handle and must not run concurrently with any other call on it. Different handles
 * are independent.
 */

#ifndef CENTREON_PAGERDUTY_H
#define CENTREON_PAGERDUTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Result of a call. The numbers are stable and will not change.
 */
typedef enum cpd_result {
  /* Success. */
  CPD_OK = 0,
  /* A required pointer argument was NULL (or a buffer length was 0). */
  CPD_NULL_ARGUMENT = 1,
  /* The JSON text is not valid UTF-8. */
  CPD_INVALID_UTF8 = 2,
  /* The text is not valid JSON. */
  CPD_INVALID_JSON = 3,
  /* The configuration is invalid; the message names the parameter. */
  CPD_CONFIG_ERROR = 4,
  /* The event is malformed (the message names the field); it was skipped. */
  CPD_EVENT_ERROR = 5,
  /* cpd_connector_flush: events are still being delivered when the timeout expired. */
  CPD_TIMEOUT = 6,
  /* Internal error: a bug in centreon-pagerduty. The handle may still be used and freed. */
  CPD_PANIC = 7,
  /* The caller's buffer was too small: the message was truncated (still NUL-terminated). */
  CPD_INSUFFICIENT_SIZE = 8
} cpd_result;

/*
 * An opaque connector: one PagerDuty output (configuration, memory of open incidents,
 * background sender threads, log file). Created by cpd_connector_new, released by
 * cpd_connector_free. Only ever handled through a pointer.
 */
typedef struct cpd_connector cpd_connector;

/*
 * The library version, e.g. "0.1.0".
 *
 * Returns a static NUL-terminated string owned by the library: never free or modify it.
 * It lives as long as the library stays loaded (the library is never unloaded once
 * loaded: it is linked with -z nodelete).
 * Never NULL. Thread safety: may be called from any thread at any time.
 */
const char *cpd_version(void);

/*
 * Copies the fixed English description of `result` (e.g. "the configuration is invalid")
 * into `buf`, NUL-terminated, truncated to `len - 1` bytes when needed.
 *
 * result:  a cpd_result value, passed as an unsigned number; any number is safe (one that
 *          is not a CPD_* value gives "unknown result code").
 * buf:     caller-owned buffer of `len` bytes, written only during the call. Required: NULL
 *          (or len == 0) gives CPD_NULL_ARGUMENT and writes nothing.
 * written: may be NULL; else receives the number of bytes copied, NUL excluded. Caller-owned.
 *
 * Returns CPD_OK, CPD_INSUFFICIENT_SIZE (truncated), CPD_NULL_ARGUMENT or CPD_PANIC.
 * This describes the result code only; for the details of a failed call on a connector
 * (which parameter, which field) use cpd_connector_last_error or the message buffer of
 * cpd_connector_new.
 * Thread safety: may be called from any thread at any time.
 */
cpd_result cpd_result_message(unsigned int result, char *buf, size_t len, size_t *written);

/*
 * Creates a connector from a configuration JSON object (see the top of this file), opens
 * its log file and its outbox (taking back the events and incidents a previous connector
 * left there) and starts its background threads. No network I/O happens here.
 *
 * config_json, config_len: the UTF-8 JSON text, `config_len` bytes (no NUL needed).
 *          Required (NULL gives CPD_NULL_ARGUMENT). Read during the call only; the caller
 *          keeps ownership.
 * message, message_len: may be NULL; else a caller-owned buffer of `message_len` bytes
 *          that receives, on CPD_CONFIG_ERROR only, a NUL-terminated explanation naming the
 *          parameter, e.g. "parameter 'pdy_routing_key': expected 32 alphanumeric
 *          characters (got 5 characters)". It never contains the routing key or a password.
 *          It is cut (NUL-terminated) when it does not fit. On every other result it is
 *          left untouched (use cpd_result_message for those).
 * out:     required; caller-owned place for the new handle. Set to NULL first, then to the
 *          new connector on CPD_OK. If `out` itself is NULL, CPD_NULL_ARGUMENT is returned
 *          and nothing else happens.
 *
 * Returns CPD_OK, CPD_NULL_ARGUMENT, CPD_INVALID_UTF8, CPD_INVALID_JSON, CPD_CONFIG_ERROR
 * (also when the directory of the log file or of the outbox does not exist, when the outbox
 * cannot be created, or when threads cannot be started) or CPD_PANIC.
 * Ownership of the result: on CPD_OK the caller owns *out and must release it with
 * cpd_connector_free exactly once; on any other result *out is NULL (unless out is NULL)
 * and there is nothing to free.
 * Thread safety: may be called from any thread; creating several connectors is fine.
 */
cpd_result cpd_connector_new(const uint8_t *config_json,
                             size_t config_len,
                             char *message,
                             size_t message_len,
                             cpd_connector **out);

/*
 * Hands one event (a JSON object of Broker fields plus names, see the top of this file)
 * to the connector. It decides at once whether PagerDuty must hear about it (trigger,
 * acknowledge, resolve, or nothing: repeated states, SOFT states, filters...) and queues
 * what must be sent; delivery happens on background threads, in order per dedup_key, with
 * retries on network errors, 429 and 5xx answers. Events PagerDuty rejects (400, 413, 422)
 * are logged and set aside, never retried; they never block the events that follow. A
 * resolve that arrives while the trigger of the same incident is still queued cancels both
 * (nothing is sent). Never blocks on the network.
 *
 * connector:    required; a handle from cpd_connector_new, not yet freed. Borrowed.
 * event_json, event_len: the UTF-8 JSON text, `event_len` bytes (no NUL needed).
 *               Required (NULL gives CPD_NULL_ARGUMENT). Read during the call only; the
 *               caller keeps ownership.
 * acknowledged: may be NULL; else caller-owned, receives true when every event handed over
 *               so far is safe: durably stored in the outbox (it will be delivered even
 *               across a restart). This is the verdict Broker uses to acknowledge its
 *               events; it is often false right after a push (stores are grouped, see
 *               outbox_commit_delay_ms). Written on CPD_OK and CPD_EVENT_ERROR, untouched
 *               otherwise.
 *
 * Returns CPD_OK (also for event types the connector ignores), CPD_NULL_ARGUMENT,
 * CPD_INVALID_UTF8, CPD_INVALID_JSON, CPD_EVENT_ERROR (malformed: the event was logged and
 * skipped; cpd_connector_last_error names the field, e.g. "malformed event: field
 * 'host_id' must be a positive integer") or CPD_PANIC. When the connector is not NULL,
 * CPD_NULL_ARGUMENT, CPD_INVALID_UTF8, CPD_INVALID_JSON and CPD_EVENT_ERROR also set the
 * message returned by cpd_connector_last_error.
 * Thread safety: may be called from several threads at once on the same handle (serialised);
 * not concurrently with cpd_connector_free on that handle.
 */
cpd_result cpd_connector_push_json(cpd_connector *connector,
                                   const uint8_t *event_json,
                                   size_t event_len,
                                   bool *acknowledged);

/*
 * Releases the events held in the buffer (max_buffer_size, max_all_queues_age) to the
 * senders, then waits up to `timeout_ms` milliseconds until nothing is outstanding, i.e.
 * until every event handed over has been delivered to PagerDuty or rejected by it. Meant
 * for shutdown and for tools; an event loop should rather poll cpd_connector_outstanding.
 * timeout_ms == 0 releases the buffer and checks once without waiting.
 *
 * connector: required; a handle from cpd_connector_new, not yet freed. Borrowed.
 * timeout_ms: the longest wait, in milliseconds.
 * done:      may be NULL; else caller-owned, receives true when nothing is outstanding
 *            (same meaning as the result CPD_OK), false on timeout.
 *
 * Returns CPD_OK (nothing outstanding), CPD_TIMEOUT (events still being delivered or
 * retried; they carry on in the background), CPD_NULL_ARGUMENT or CPD_PANIC.
 * Does not set the message of cpd_connector_last_error. Note that CPD_OK does not tell a
 * delivery from a rejection: rejections are written to the connector's log file, kept in
 * the outbox (up to rejected_max_events) and counted in the statistics file (stats_path).
 * Thread safety: may be called from any thread; holds the handle's lock while waiting, so
 * other calls on the same handle wait for it (up to timeout_ms). Not concurrently with
 * cpd_connector_free on that handle.
 */
cpd_result cpd_connector_flush(cpd_connector *connector, uint32_t timeout_ms, bool *done);

/*
 * The number of events handed over and not yet delivered to PagerDuty or rejected by it
 * (being stored, buffered, queued, in flight or waiting for a retry), including the events
 * a previous connector left in the outbox.
 *
 * connector: a handle from cpd_connector_new, not yet freed. Borrowed. NULL gives 0.
 *
 * Returns the count; 0 also for NULL and on an internal error.
 * Thread safety: may be called from any thread; it takes the handle's lock, so it waits
 * while cpd_connector_flush runs on the same handle. Not concurrently with
 * cpd_connector_free on that handle.
 */
uint64_t cpd_connector_outstanding(const cpd_connector *connector);

/*
 * Copies the message of the most recent failed call on this handle
 * (cpd_connector_push_json) into `buf`, NUL-terminated, truncated to `len - 1` bytes when
 * needed. The message is "" when no call has failed yet; successful calls do not clear it.
 * It never contains the routing key.
 *
 * connector: required; a handle from cpd_connector_new, not yet freed. Borrowed.
 * buf:       required; caller-owned buffer of `len` bytes, written only during the call.
 *            NULL (or len == 0) gives CPD_NULL_ARGUMENT and writes nothing.
 * written:   may be NULL; else caller-owned, receives the number of bytes copied, NUL
 *            excluded.
 *
 * Returns CPD_OK, CPD_INSUFFICIENT_SIZE (truncated), CPD_NULL_ARGUMENT or CPD_PANIC.
 * Thread safety: may be called from any thread. The message is per handle, not per thread:
 * when several threads push on one handle, it may describe another thread's failure.
 * Not concurrently with cpd_connector_free on that handle.
 */
cpd_result cpd_connector_last_error(const cpd_connector *connector,
                                    char *buf,
                                    size_t len,
                                    size_t *written);

/*
 * Stops the connector and frees it: aborts requests in flight, stores what is not stored
 * yet, joins the background threads, logs how many events were left undelivered, closes the
 * outbox and the log file and releases the memory. Undelivered events stay in the outbox and
 * are sent first by the next connector created with the same outbox_path (call
 * cpd_connector_flush first to deliver them now). May block briefly while the threads
 * finish.
 *
 * connector: a handle from cpd_connector_new, or NULL (then nothing happens). Ownership is
 *            taken: the pointer is invalid after the call and must not be used or freed
 *            again.
 *
 * Thread safety: must be the last call on the handle; no other call on the same handle may
 * run concurrently or afterwards. Freeing different handles from different threads is fine.
 */
void cpd_connector_free(cpd_connector *connector);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CENTREON_PAGERDUTY_H */
