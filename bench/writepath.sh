#!/usr/bin/env bash
# bench/writepath.sh: write-path and memory benchmarks of the Lua bridge, in the Broker emulator.
#
#   bash bench/writepath.sh            # full size: 9 x 1,000,000 events per script and Lua
#                                      # version, memory after 1,000,000 and 10,000,000 events
#   bash bench/writepath.sh --tiny     # smoke run (make test): 1 x 2,000 events, memory after
#                                      # 2,000 and 20,000 events
#   options: --runs R  --events N  --mem-events N1,N2  --mem-runs K  --lua 5.3|5.4 (repeatable)
#            --closed-port (do not start pd-standin: events go to a closed port on 127.0.0.1)
#            --no-memory  --no-time
#            --cost SPEC (the emulator's cost model, BROKER_HOST_COST in tests/host/README.md:
#            cbd-23.10, the default since 2026-12-07 (bench/HISTORY.md section 15): what field
#            reads, broker_cache and filter() calls cost in a real cbd 23.10; none: the emulator's
#            own costs only, as before)
#
# For each Lua version (5.3, 5.4) it times the same BBDO 3 service status events (10,000
# services on 500 hosts, 1 in 100 a state change; see bench/writepath.lua) handed by the
# emulator to two scripts, run alternately in fresh emulator processes:
#   baseline  bench/baseline.lua: filter() and write() just return true
#   bridge    lua-bridge/pagerduty.lua with the release libcentreon_pagerduty.so: a real output
#             (routing key, outbox under target/bench, log_level 0), sending in the background
#             to target/release/pd-standin when it exists (never built here), else to a closed
#             port.
# Only host.send_many() is timed (not the output creation nor a warm-up round of one event per
# service). Medians over the runs.
#
# stdout: one JSON object per line:
#   {"bench":"write_path","lua":"5.4","script":"baseline"|"bridge","events":N,"ns_per_event":X,"runs":[...],
#    "waits_per_100k":W,"cost":SPEC}
#   {"bench":"write_path_summary","lua":"5.4","baseline_ns":M1,"bridge_ns":M2,"added_ns":M2-M1,"ratio":M2/M1,
#    "baseline_waits_per_100k":W1,"bridge_waits_per_100k":W2,"cost":SPEC}
# (waits: how often the emulator's main thread, Broker's, was put to sleep during the timed
# loop, per 100,000 events: voluntary context switches, a lock held by another thread; -1 where
# /proc/thread-self is missing)
#   {"bench":"memory","lua":"5.4","script":"baseline"|"bridge","rss_kb_1m":A,"rss_kb_10m":B,
#    "max_retained":K,"heap_free_kb":F,"awaiting_finalizer":Z}
#   {"bench":"memory_summary","lua":"5.4","growth_pct":(B-A)/A*100 of the bridge,"above_baseline_mb":(B_bridge-B_baseline)/1024,
#    "max_retained":K of the bridge,"heap_free_mb":F of the bridge,"baseline_heap_free_mb":F of the baseline,
#    "awaiting_finalizer":Z of the bridge,"baseline_awaiting_finalizer":Z of the baseline}
# (max_retained: the most events the emulator held unacknowledged at once, Broker's retention;
# heap_free: C heap memory free but kept by malloc at the end, mallinfo2; awaiting_finalizer:
# the most events handed to the script and not yet finalized at once, each holding Broker's
# C++ event: tests/host/README.md row 14)
# (rss_kb_1m / rss_kb_10m are the resident memory after the first and the second count of
# events, whatever the counts.) Progress goes to stderr. No target is asserted: benchmarks are
# not tests. Everything it writes is under target/ (target/bench/lua: the script dir;
# target/bench/work/last: outboxes and logs of the latest run of each kind).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../tests/host/env.sh" # ROOT (the current directory), TARGET

# 9 runs (5 until 2026-12-07): single runs of the same script move by up to 2.7 us within
# minutes on this shared host, and a median of 5 moved the bridge's added cost by 0.7 us between
# two full runs of the same code (bench/HISTORY.md, sections 10 and 11)
RUNS=9
EVENTS=1000000
MEM_EVENTS=1000000,10000000
MEM_RUNS=1
LUAS=()
USE_STANDIN=1
COST=cbd-23.10
DO_TIME=1
DO_MEMORY=1
while (($#)); do
  case "$1" in
    --tiny) RUNS=1 EVENTS=2000 MEM_EVENTS=2000,20000 MEM_RUNS=1 ;;
    --runs) RUNS=$2; shift ;;
    --events) EVENTS=$2; shift ;;
    --mem-events) MEM_EVENTS=$2; shift ;;
    --mem-runs) MEM_RUNS=$2; shift ;;
    --lua) LUAS+=("$2"); shift ;;
    --closed-port) USE_STANDIN=0 ;;
    --cost) COST=$2; shift ;;
    --no-memory) DO_MEMORY=0 ;;
    --no-time) DO_TIME=0 ;;
    -h | --help) usage_help "$0"; exit 0 ;;
    *) echo "writepath.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
((${#LUAS[@]})) || LUAS=(5.3 5.4)
[[ "$MEM_EVENTS" =~ ^[0-9]+,[0-9]+$ ]] || { echo "writepath.sh: --mem-events N1,N2" >&2; exit 2; }

say() { printf '%s\n' "$*" >&2; }

# ---- build ----------------------------------------------------------------------------------
say "== building the release library (cargo build --release --lib)"
cargo build --release --lib >&2
SO="$TARGET/release/libcentreon_pagerduty.so"
[[ -f "$SO" ]] || { say "writepath.sh: $SO is missing after the build"; exit 1; }

for v in "${LUAS[@]}"; do
  bash "$ROOT/tests/host/build.sh" "$v" "$TARGET" >/dev/null
done

# ---- script dir -----------------------------------------------------------------------------
# Installed with a rename, never rewritten in place: another invocation may be running from
# the same directory (a .so rewritten under a running process crashes it).
BENCH="$TARGET/bench"
mkdir -p "$BENCH/lua/lib" "$BENCH/work"
install_file() { # src dst
  cp "$1" "$2.$$" && mv -f "$2.$$" "$2"
}
install_file "$ROOT/lua-bridge/pagerduty.lua" "$BENCH/lua/pagerduty.lua"
install_file "$ROOT/bench/baseline.lua" "$BENCH/lua/baseline.lua"
install_file "$ROOT/bench/fieldread.lua" "$BENCH/lua/fieldread.lua" # bench/profile.sh
install_file "$SO" "$BENCH/lua/lib/centreon_pagerduty.so"
declare -A SCRIPT=([baseline]="$BENCH/lua/baseline.lua" [bridge]="$BENCH/lua/pagerduty.lua")
say "script dir: $BENCH/lua"
# This invocation's outboxes and logs: $BENCH/work/<pid>, kept as $BENCH/work/last after a
# successful run (the latest run of each kind), left in place for inspection after a failure.
WORK="$BENCH/work/$$"
rm -rf "$WORK"
mkdir -p "$WORK"

# ---- the PagerDuty end: pd-standin if built, else a closed port -----------------------------
export BENCH_EVENTS_LUA="$ROOT/tests/host/events.lua"
export BENCH_KEY="BenchRoutingKeyCentreonPagerDut1" # 32 characters, only for the stand-in
export BENCH_URL="http://127.0.0.1:9/v2/enqueue"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy # a local endpoint
STANDIN="$TARGET/release/pd-standin"
cleanup() {
  local status=$?
  if ((status == 0)) && [[ -n "${WORK:-}" && -d "$WORK" ]]; then
    rm -rf "$BENCH/work/last.$$"
    [[ -d "$BENCH/work/last" ]] && mv -f "$BENCH/work/last" "$BENCH/work/last.$$"
    mv -f "$WORK" "$BENCH/work/last" 2>/dev/null || true
    rm -rf "$BENCH/work/last.$$"
  fi
  standin_stop
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if ((USE_STANDIN)) && [[ -x "$STANDIN" ]]; then
  STANDIN_OUT="$WORK/standin.out"
  # it stops when we close its standard input (or after 4 hours)
  standin_start "$STANDIN" "$STANDIN_OUT" --max-seconds 14400 \
    || { say "writepath.sh: pd-standin did not start:"; cat "$STANDIN_OUT" >&2; exit 1; }
  BENCH_URL="$STANDIN_URL"
  say "events are delivered to pd-standin at $BENCH_URL"
else
  say "events are sent to a closed port ($BENCH_URL): delivery keeps retrying in the background"
fi

# ---- helpers --------------------------------------------------------------------------------
# median of the numbers given as arguments
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.1f", v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# run_scenario <lua> <script name> <mode> <count> <tag>: prints the scenario's RESULT fields
run_scenario() {
  local v=$1 name=$2 mode=$3 count=$4 tag=$5
  local work="$WORK/$tag"
  rm -rf "$work"
  mkdir -p "$work"
  local outf="$work/scenario.out" status=0
  BENCH_WORK="$work" BROKER_HOST_COST="${COST/#none/}" timeout --foreground -k 5 3600 \
    "$TARGET/host/broker_host-$v" "$ROOT/bench/writepath.lua" "$mode" "${SCRIPT[$name]}" "$count" \
    >"$outf" 2>"$work/scenario.err" || status=$?
  sed 's/^/    /' "$work/scenario.err" >&2
  if ((status != 0)); then
    say "writepath.sh: Lua $v $name $mode failed (exit $status), see $work"
    exit 1
  fi
  local res
  res="$(sed -n "s/^RESULT $mode //p" "$outf")"
  [[ -n "$res" ]] || { say "writepath.sh: no result from Lua $v $name $mode, see $work"; exit 1; }
  if [[ "$name" == bridge && -s "$work/connector.log" ]]; then
    say "    connector log (errors) of this run: $(wc -l <"$work/connector.log") line(s), e.g.:"
    head -n 3 "$work/connector.log" | sed 's/^/      /' >&2
  fi
  # keep only the latest run of each kind (the outbox of a 10M-event run is not small)
  rm -rf "$WORK/last-$v-$name-$mode"
  mv "$work" "$WORK/last-$v-$name-$mode"
  printf '%s\n' "$res"
}

# ---- write path -----------------------------------------------------------------------------
if ((DO_TIME)); then
  for v in "${LUAS[@]}"; do
    declare -A NS=([baseline]="" [bridge]="") CPU=([baseline]="" [bridge]="") WAITS=([baseline]="" [bridge]="")
    for ((i = 1; i <= RUNS; i++)); do
      for name in baseline bridge; do
        say "== write path, Lua $v, $name, run $i/$RUNS: $EVENTS events"
        res=$(run_scenario "$v" "$name" time "$EVENTS" "time-$v-$name-$i")
        read -r n secs cpu waits <<<"$res"
        ns=$(awk -v s="$secs" -v n="$n" 'BEGIN { printf "%.1f", s * 1e9 / n }')
        cpu_ns=$(awk -v s="$cpu" -v n="$n" 'BEGIN { if (s == "-") print "?"; else printf "%.0f", s * 1e9 / n }')
        waits_100k=$(awk -v w="${waits:--}" -v n="$n" 'BEGIN { if (w == "-") print "-1"; else printf "%.1f", w * 100000 / n }')
        say "   $ns ns/event (main thread CPU: $cpu_ns ns/event; put to sleep $waits_100k times per 100,000 events)"
        CPU[$name]+="$cpu_ns "
        NS[$name]+="$ns "
        WAITS[$name]+="$waits_100k "
      done
    done
    declare -A MED=() MEDW=()
    for name in baseline bridge; do
      # shellcheck disable=SC2086
      MED[$name]=$(median ${NS[$name]})
      # shellcheck disable=SC2086
      MEDW[$name]=$(median ${WAITS[$name]})
      runs=$(printf '%s' "${NS[$name]}" | sed 's/ $//; s/ /,/g')
      printf '{"bench":"write_path","lua":"%s","script":"%s","events":%d,"ns_per_event":%s,"runs":[%s],"waits_per_100k":%s,"cost":"%s"}\n' \
        "$v" "$name" "$EVENTS" "${MED[$name]}" "$runs" "${MEDW[$name]}" "$COST"
    done
    say "   Lua $v main-thread CPU ns/event (diagnostic, 10 ms resolution): baseline ${CPU[baseline]}| bridge ${CPU[bridge]}"
    awk -v v="$v" -v a="${MED[baseline]}" -v b="${MED[bridge]}" -v wa="${MEDW[baseline]}" -v wb="${MEDW[bridge]}" -v c="$COST" 'BEGIN {
      printf "{\"bench\":\"write_path_summary\",\"lua\":\"%s\",\"baseline_ns\":%.1f,\"bridge_ns\":%.1f,\"added_ns\":%.1f,\"ratio\":%.3f,\"baseline_waits_per_100k\":%.1f,\"bridge_waits_per_100k\":%.1f,\"cost\":\"%s\"}\n",
        v, a, b, b - a, (a > 0 ? b / a : 0), wa, wb, c }'
  done
fi

# ---- memory ---------------------------------------------------------------------------------
if ((DO_MEMORY)); then
  for v in "${LUAS[@]}"; do
    declare -A R1=([baseline]="" [bridge]="") R2=([baseline]="" [bridge]="") KEPT=([baseline]="" [bridge]="") FREE=([baseline]="" [bridge]="") FIN=([baseline]="" [bridge]="")
    for ((i = 1; i <= MEM_RUNS; i++)); do
      for name in baseline bridge; do
        say "== memory, Lua $v, $name, run $i/$MEM_RUNS: resident memory after ${MEM_EVENTS/,/ and } events"
        res=$(run_scenario "$v" "$name" memory "$MEM_EVENTS" "mem-$v-$name-$i")
        read -r _ rss1 _ rss2 retained free_kb awaiting <<<"$res"
        say "   $rss1 kB, then $rss2 kB (most events retained unacknowledged at once: $retained; C heap kept free: $free_kb kB; most events awaiting their finalizer at once: $awaiting)"
        R1[$name]+="$rss1 "
        R2[$name]+="$rss2 "
        KEPT[$name]+="$retained "
        FREE[$name]+="$free_kb "
        FIN[$name]+="$awaiting "
      done
    done
    declare -A M1=() M2=() MK=() MF=() MW=()
    for name in baseline bridge; do
      # shellcheck disable=SC2086
      M1[$name]=$(median ${R1[$name]} | sed 's/\.0$//; s/\.5$//')
      # shellcheck disable=SC2086
      M2[$name]=$(median ${R2[$name]} | sed 's/\.0$//; s/\.5$//')
      # shellcheck disable=SC2086
      MK[$name]=$(median ${KEPT[$name]} | sed 's/\.0$//; s/\.5$//')
      # shellcheck disable=SC2086
      MF[$name]=$(median ${FREE[$name]} | sed 's/\.0$//; s/\.5$//')
      # shellcheck disable=SC2086
      MW[$name]=$(median ${FIN[$name]} | sed 's/\.0$//; s/\.5$//')
      printf '{"bench":"memory","lua":"%s","script":"%s","rss_kb_1m":%d,"rss_kb_10m":%d,"max_retained":%d,"heap_free_kb":%d,"awaiting_finalizer":%d}\n' \
        "$v" "$name" "${M1[$name]}" "${M2[$name]}" "${MK[$name]}" "${MF[$name]}" "${MW[$name]}"
    done
    awk -v v="$v" -v a="${M1[bridge]}" -v b="${M2[bridge]}" -v base="${M2[baseline]}" \
      -v kept="${MK[bridge]}" -v free="${MF[bridge]}" -v free0="${MF[baseline]}" \
      -v fin="${MW[bridge]}" -v fin0="${MW[baseline]}" 'BEGIN {
      printf "{\"bench\":\"memory_summary\",\"lua\":\"%s\",\"growth_pct\":%.2f,\"above_baseline_mb\":%.1f,\"max_retained\":%d,\"heap_free_mb\":%.1f,\"baseline_heap_free_mb\":%.1f,\"awaiting_finalizer\":%d,\"baseline_awaiting_finalizer\":%d}\n",
        v, (a > 0 ? (b - a) * 100 / a : 0), (b - base) / 1024, kept, free / 1024, free0 / 1024, fin, fin0 }'
  done
fi
