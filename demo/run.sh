#!/usr/bin/env bash
# demo/run.sh: `make demo`. Builds the connector, lays out a Broker script dir, and tells a
# short Centreon story (demo/scenario.lua) through the real Lua bridge and native library,
# run by the Broker emulator (tests/host/broker_host.c).
#
#   bash demo/run.sh                      # against pd-standin, a local PagerDuty stand-in
#   PDY_ROUTING_KEY=... bash demo/run.sh  # against real PagerDuty (PDY_URL to change the
#                                         # endpoint, default https://events.pagerduty.com/v2/enqueue)
#
# Needs cargo, gcc and the Lua 5.4 development files. Everything it writes is under target/.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../tests/host/env.sh" # ROOT (the current directory), TARGET
LUA_VERSION=5.4
DEMO="$TARGET/demo"
LOG="$DEMO/connector.log"
DEMO_KEY="DemoRoutingKeyCentreonPagerDuty1" # 32 letters or digits, only for the stand-in

say() { printf '\n== %s\n' "$*"; }
# How a routing key is shown: its last 4 characters only (nothing for a short one).
key_hint() { if (( ${#1} >= 16 )); then printf '...%s' "${1: -4}"; else printf '(hidden)'; fi; }

# ---- build -----------------------------------------------------------------
say "building (cargo build --release)"
cargo build --release --lib
cargo build --release -p pd-standin
SO="$TARGET/release/libcentreon_pagerduty.so"
STANDIN="$TARGET/release/pd-standin"
[[ -f "$SO" ]] || { echo "demo: $SO is missing after the build" >&2; exit 1; }
[[ -x "$STANDIN" ]] || { echo "demo: $STANDIN is missing after the build" >&2; exit 1; }

HOST_BIN="$(bash "$ROOT/tests/host/build.sh" "$LUA_VERSION" "$TARGET")"

# ---- Broker script dir -----------------------------------------------------
rm -rf "$DEMO"
mkdir -p "$DEMO/lua/lib"
cp "$ROOT/lua-bridge/pagerduty.lua" "$DEMO/lua/pagerduty.lua"
cp "$SO" "$DEMO/lua/lib/centreon_pagerduty.so"
echo "Broker script dir: $DEMO/lua (pagerduty.lua + lib/centreon_pagerduty.so)"

run_scenario() { # url key [standin output file]
  CPD_HOST_DIR="$ROOT/tests/host" \
    CPD_SCRIPT="$DEMO/lua/pagerduty.lua" \
    CPD_URL="$1" CPD_KEY="$2" CPD_LOG="$LOG" CPD_WORK="$DEMO" CPD_STANDIN_OUT="${3:-}" \
    timeout --foreground -k 5 300 "$HOST_BIN" "$ROOT/demo/scenario.lua"
}

# The routing key must never reach the logs or the output (the library masks it).
key_leaked() { # key files...
  local key=$1
  shift
  grep -qsF -- "$key" "$@"
}

show_log() {
  local f
  for f in "$LOG" "${LOG%.log}-bbdo2.log"; do
    [[ -f "$f" ]] || continue
    say "last lines of the connector's log $f"
    tail -n 12 "$f"
  done
}

# ---- real PagerDuty --------------------------------------------------------
if [[ -n "${PDY_ROUTING_KEY:-}" ]]; then
  url="${PDY_URL:-https://events.pagerduty.com/v2/enqueue}"
  say "the story, sent to $url with routing key $(key_hint "$PDY_ROUTING_KEY")"
  status=0
  run_scenario "$url" "$PDY_ROUTING_KEY" || status=$?
  if key_leaked "$PDY_ROUTING_KEY" "$LOG" "${LOG%.log}-bbdo2.log"; then
    echo "demo: the routing key appears in the connector's log: not showing it" >&2
    exit 1
  fi
  show_log
  say "summary"
  echo "endpoint:        $url (routing key $(key_hint "$PDY_ROUTING_KEY"))"
  echo "connector's log: $LOG"
  if [[ $status -ne 0 ]]; then
    echo "demo: the scenario failed (exit $status)" >&2
    exit "$status"
  fi
  echo "look for the incidents of srv-db, core-sw-02, web-front-01 and app-legacy in PagerDuty"
  exit 0
fi

# ---- local stand-in ---------------------------------------------------------
STANDIN_OUT="$DEMO/standin.out"
EVENTS="$DEMO/events.jsonl"
SCENARIO_OUT="$DEMO/scenario.out"
: >"$EVENTS"
cleanup() { standin_stop; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting pd-standin, a local PagerDuty Events API v2 stand-in"
# it runs until we close its standard input (or 120 s as a safety net)
if ! standin_start "$STANDIN" "$STANDIN_OUT" --max-seconds 120 --events-out "$EVENTS"; then
  echo "demo: pd-standin did not start:" >&2
  cat "$STANDIN_OUT" >&2
  exit 1
fi
url=$STANDIN_URL
echo "pd-standin is listening on $url"

say "the story (Broker emulator, Lua $LUA_VERSION, routing key $(key_hint "$DEMO_KEY"))"
status=0
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy # a local endpoint
run_scenario "$url" "$DEMO_KEY" "$STANDIN_OUT" | tee "$SCENARIO_OUT" || status=$?

say "stopping pd-standin (end of its standard input): its incident timeline"
standin_close_input
standin_status=0
wait "$STANDIN_PID" || standin_status=$?
STANDIN_PID=""
sed -n '/^stopped: /,$p' "$STANDIN_OUT"

show_log

say "summary"
sent=$(grep -c . "$EVENTS" || true)
opened=$(grep -cE '^  [0-9:.]+ .* opened #[0-9]+ ' "$STANDIN_OUT" || true)
resolved=$(grep -cE '^  [0-9:.]+ .* resolved #[0-9]+ ' "$STANDIN_OUT" || true)
acknowledged=$(grep -cE '^  [0-9:.]+ .* acknowledged #[0-9]+ ' "$STANDIN_OUT" || true)
still_open=$(sed -n 's/^incidents ([0-9]*, \([0-9]*\) open):$/\1/p' "$STANDIN_OUT")
requests=$(sed -n 's/^requests: \(.*\)$/\1/p' "$STANDIN_OUT")
expected=$(sed -n 's/^Expected at PagerDuty: \(.*\)$/\1/p' "$SCENARIO_OUT")
echo "events sent to PagerDuty (accepted): $sent   [requests: ${requests:-?}]"
echo "incidents: $opened opened, $acknowledged acknowledged, $resolved resolved, ${still_open:-?} still open"
echo "expected by the story: ${expected:-?}"
echo "connector's log: $LOG (and ${LOG%.log}-bbdo2.log)"
echo "stand-in output: $STANDIN_OUT, accepted bodies: $EVENTS"

if ! grep -q '^stopped: end of standard input' "$STANDIN_OUT"; then
  echo "demo: pd-standin did not stop at the end of its input (exit $standin_status)" >&2
  if [[ $status -eq 0 ]]; then status=1; fi
fi
if key_leaked "$DEMO_KEY" "$LOG" "${LOG%.log}-bbdo2.log" "$SCENARIO_OUT"; then
  echo "demo: the routing key leaked into the connector's log or the scenario's output" >&2
  if [[ $status -eq 0 ]]; then status=1; fi
fi
if [[ $status -eq 0 && ( "$opened" -eq 0 || "$opened" -ne "$resolved" || "${still_open:-1}" -ne 0 ) ]]; then
  echo "demo: expected every incident opened to be resolved" >&2
  status=1
fi
if [[ $status -ne 0 ]]; then
  echo "demo: FAILED (exit $status)" >&2
  exit "$status"
fi
echo "demo: OK"
