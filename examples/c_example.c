/*
 * c_example: drive the centreon-pagerduty connector from C.
 *
 *   c_example <endpoint-url> <log-path>
 *
 * Sends a service CRITICAL (host 12, service 34) and its OK recovery to the PagerDuty
 * Events API v2 endpoint <endpoint-url> (e.g. https://events.pagerduty.com/v2/enqueue, or a
 * local stand-in), waiting up to 10 s for each delivery, and shows on the way how errors are
 * reported: an invalid configuration, a malformed event and NULL arguments. The connector
 * logs to <log-path> and keeps its outbox (the durable queue of events not delivered yet)
 * in <log-path>.outbox.db; their directory must exist.
 *
 * The routing key comes from the environment variable PDY_ROUTING_KEY, else a fixed demo
 * key is used (fine for a stand-in, refused by the real PagerDuty).
 *
 * Exit status: 0 when both events were handed over (nothing left outstanding after each
 * flush) and every error case gave the expected result; 1 otherwise. Note that an event
 * PagerDuty rejects (HTTP 400) also counts as handed over: the connector logs it and
 * moves on, so that a bad event never blocks the following ones.
 *
 * Build (from the crate root, after `cargo build`; the program records the library's SONAME,
 * libcentreon_pagerduty.so.0, the link `make install` and the packages make beside it):
 *
 *   ln -sfn libcentreon_pagerduty.so target/debug/libcentreon_pagerduty.so.0
 *   gcc -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude examples/c_example.c \
 *       -Ltarget/debug -lcentreon_pagerduty -Wl,-rpath,$PWD/target/debug -o c_example
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "centreon_pagerduty.h"

#define DEMO_ROUTING_KEY "D3m0R0ut1ngKeyForTheCExample0001" /* 32 letters or digits */
#define FLUSH_TIMEOUT_MS 10000u

static int surprises = 0; /* error cases that did not give the documented result */

/* The name of a result code, for printing. */
static const char *result_name(cpd_result r) {
  switch (r) {
  case CPD_OK: return "CPD_OK";
  case CPD_NULL_ARGUMENT: return "CPD_NULL_ARGUMENT";
  case CPD_INVALID_UTF8: return "CPD_INVALID_UTF8";
  case CPD_INVALID_JSON: return "CPD_INVALID_JSON";
  case CPD_CONFIG_ERROR: return "CPD_CONFIG_ERROR";
  case CPD_EVENT_ERROR: return "CPD_EVENT_ERROR";
  case CPD_TIMEOUT: return "CPD_TIMEOUT";
  case CPD_PANIC: return "CPD_PANIC";
  case CPD_INSUFFICIENT_SIZE: return "CPD_INSUFFICIENT_SIZE";
  }
  return "?";
}

/* Prints "what: CPD_NAME (the library's description)". */
static void print_result(const char *what, cpd_result r) {
  char text[128];
  cpd_result_message(r, text, sizeof text, NULL);
  printf("%s: %s (%s)\n", what, result_name(r), text);
}

/* Prints a result and counts it as a surprise when it is not the documented one. */
static void expect(const char *what, cpd_result got, cpd_result wanted) {
  print_result(what, got);
  if (got != wanted) {
    printf("  unexpected: expected %s\n", result_name(wanted));
    surprises++;
  }
}

/* Copies `src` into `dst` as the inside of a JSON string (quotes, backslashes and control
 * characters escaped). Returns 0 when it does not fit in `cap` bytes. */
static int json_escape(char *dst, size_t cap, const char *src) {
  size_t n = 0;
  for (; *src != '\0'; src++) {
    unsigned char c = (unsigned char)*src;
    char esc[8];
    if (c == '"' || c == '\\') {
      snprintf(esc, sizeof esc, "\\%c", c);
    } else if (c < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
    } else {
      esc[0] = (char)c;
      esc[1] = '\0';
    }
    size_t len = strlen(esc);
    if (n + len + 1 > cap) {
      return 0;
    }
    memcpy(dst + n, esc, len);
    n += len;
  }
  dst[n] = '\0';
  return 1;
}

/* Prints the message of the last failed call on the connector (it names the problem). */
static void print_last_error(const cpd_connector *connector) {
  char error[512];
  if (cpd_connector_last_error(connector, error, sizeof error, NULL) == CPD_OK) {
    printf("  last error: %s\n", error);
  }
}

/* Hands one JSON event to the connector and prints the outcome. */
static cpd_result push(cpd_connector *connector, const char *what, const char *json) {
  bool acknowledged = false;
  cpd_result r = cpd_connector_push_json(connector, (const uint8_t *)json, strlen(json),
                                         &acknowledged);
  print_result(what, r);
  if (r == CPD_OK) {
    /* true once every event handed over is durably stored (what Broker waits for) */
    printf("  all events stored safely: %s\n", acknowledged ? "yes" : "not yet");
  } else {
    print_last_error(connector);
  }
  return r;
}

/* Waits up to 10 s until every event handed over is delivered (or rejected) by PagerDuty. */
static bool flush_all(cpd_connector *connector) {
  bool done = false;
  cpd_result r = cpd_connector_flush(connector, FLUSH_TIMEOUT_MS, &done);
  uint64_t outstanding = cpd_connector_outstanding(connector);
  print_result("flush", r);
  printf("  outstanding after flush: %llu\n", (unsigned long long)outstanding);
  return r == CPD_OK && done && outstanding == 0;
}

/* A BBDO 3 service status (category 1, element 29) of host 12 / service 34, with the names
 * Broker's cache would add. A state change: last_check == last_state_change. */
static void service_status(char *out, size_t cap, int state, const char *output,
                           const char *perfdata, long long when) {
  snprintf(out, cap,
           "{\"category\": 1, \"element\": 29,"
           " \"host_id\": 12, \"service_id\": 34,"
           " \"state\": %d, \"state_type\": 1, \"check_attempt\": 3, \"max_check_attempts\": 3,"
           " \"output\": \"%s\", \"long_output\": \"\", \"perfdata\": \"%s\","
           " \"last_check\": %lld, \"last_state_change\": %lld,"
           " \"acknowledged\": false, \"scheduled_downtime_depth\": 0, \"flapping\": false,"
           " \"host_name\": \"srv-db\", \"service_description\": \"Disk /var\","
           " \"hostgroups\": [\"linux\", \"db\"], \"servicegroups\": [\"storage\"],"
           " \"host_severity\": 2, \"service_severity\": 1, \"poller\": \"Central\","
           " \"host_address\": \"10.0.0.5\"}",
           state, output, perfdata, when, when);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <endpoint-url> <log-path>\n", argv[0]);
    return 2;
  }
  const char *key = getenv("PDY_ROUTING_KEY");
  if (key == NULL || key[0] == '\0') {
    key = DEMO_ROUTING_KEY;
  }
  char url[1024], log_path[1024], routing_key[256];
  if (!json_escape(url, sizeof url, argv[1]) ||
      !json_escape(log_path, sizeof log_path - 16, argv[2]) || /* room for ".outbox.db" */
      !json_escape(routing_key, sizeof routing_key, key)) {
    fprintf(stderr, "argument too long\n");
    return 2;
  }

  printf("centreon-pagerduty %s\n", cpd_version());

  /* 1. An invalid configuration: the message buffer names the parameter (never the key). */
  char config[4096];
  char message[512] = "";
  cpd_connector *connector = NULL;
  snprintf(config, sizeof config,
           "{\"pdy_routing_key\": \"tooshort\", \"http_server_url\": \"%s\","
           " \"log_path\": \"%s\", \"outbox_path\": \"%s.outbox.db\"}",
           url, log_path, log_path);
  cpd_result r = cpd_connector_new((const uint8_t *)config, strlen(config), message,
                                   sizeof message, &connector);
  expect("invalid configuration", r, CPD_CONFIG_ERROR);
  printf("  message: %s\n", message);

  /* 2. The real connector. */
  snprintf(config, sizeof config,
           "{\"pdy_routing_key\": \"%s\", \"http_server_url\": \"%s\","
           " \"log_path\": \"%s\", \"log_level\": 2, \"outbox_path\": \"%s.outbox.db\"}",
           routing_key, url, log_path, log_path);
  r = cpd_connector_new((const uint8_t *)config, strlen(config), message, sizeof message,
                        &connector);
  print_result("create connector", r);
  if (r != CPD_OK) {
    printf("  message: %s\n", message);
    return 1;
  }

  /* 3. NULL arguments: reported as CPD_NULL_ARGUMENT, never a crash. */
  const uint8_t *json = (const uint8_t *)config;
  size_t json_len = strlen(config);
  cpd_connector *unused = NULL;
  expect("NULL out", cpd_connector_new(json, json_len, NULL, 0, NULL), CPD_NULL_ARGUMENT);
  expect("NULL configuration", cpd_connector_new(NULL, 0, NULL, 0, &unused), CPD_NULL_ARGUMENT);
  expect("NULL connector", cpd_connector_push_json(NULL, json, json_len, NULL), CPD_NULL_ARGUMENT);
  expect("NULL event", cpd_connector_push_json(connector, NULL, 0, NULL), CPD_NULL_ARGUMENT);
  print_last_error(connector);
  expect("NULL buffer", cpd_connector_last_error(connector, NULL, 0, NULL), CPD_NULL_ARGUMENT);
  expect("NULL flush", cpd_connector_flush(NULL, 0, NULL), CPD_NULL_ARGUMENT);
  printf("outstanding(NULL) = %llu; free(NULL) does nothing\n",
         (unsigned long long)cpd_connector_outstanding(NULL));
  cpd_connector_free(NULL);

  /* 4. Bad events are skipped (never sent, never blocking); the last error says why. */
  const char *malformed = "{\"category\": 1, \"element\": 29, \"service_id\": 34, \"state\": 2}";
  expect("malformed event (no host_id)",
         cpd_connector_push_json(connector, (const uint8_t *)malformed, strlen(malformed), NULL),
         CPD_EVENT_ERROR);
  print_last_error(connector);
  const char *broken = "{\"category\": 1,";
  expect("invalid JSON",
         cpd_connector_push_json(connector, (const uint8_t *)broken, strlen(broken), NULL),
         CPD_INVALID_JSON);
  print_last_error(connector);

  /* 5. The incident, dedup_key "12_34": CRITICAL (trigger), then OK (resolve). Each is
   * flushed before the next, as in real life where the recovery comes minutes later: a
   * recovery pushed while its trigger is still queued cancels both (nothing is sent). */
  long long now = (long long)time(NULL);
  char event[4096];
  service_status(event, sizeof event, 2, "CRITICAL - /var 97%", "used=97%;90;95;0;100",
                 now - 60);
  cpd_result critical = push(connector, "service CRITICAL", event);
  bool critical_sent = flush_all(connector);
  service_status(event, sizeof event, 0, "OK - /var 40%", "used=40%;90;95;0;100", now);
  cpd_result recovery = push(connector, "service OK", event);
  bool recovery_sent = flush_all(connector);

  cpd_connector_free(connector); /* stops the background threads; connector is now invalid */

  bool delivered = critical == CPD_OK && recovery == CPD_OK && critical_sent && recovery_sent;
  printf("%s\n", delivered ? "both events handed over to PagerDuty"
                           : "the events were NOT all handed over");
  if (surprises > 0) {
    printf("%d error case(s) gave an unexpected result\n", surprises);
  }
  return delivered && surprises == 0 ? 0 : 1;
}
