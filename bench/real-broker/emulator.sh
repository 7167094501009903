#!/usr/bin/env bash
# bench/real-broker/emulator.sh: the calibration scripts of bench/real-broker run in the Broker
# emulator (tests/host), as calibrate.py compares them with the real cbd.
#   bash bench/real-broker/emulator.sh [--lua 5.3|5.4] [--events N] [--rounds R] [--cost SPEC]
# SPEC is the emulator's cost model (BROKER_HOST_COST, tests/host/broker_host.c): "" (none, the
# default), cbd-23.10, or read=NS,cache=NS,miss=NS,filter=NS. Each round runs E (empty.lua),
# E0 (nofilter.lua), F (floor.lua), R (reads.lua), C (cache.lua) and S (severity.lua) once with
# bench/writepath.lua's "time" mode (BBDO 3 service statuses, 10,000 services); prints one JSON
# line per run: {"bench":"calib_emulator","lua":..,"cost":..,"script":..,"events":N,
# "wall_ns":.., "cpu_ns":..} (cpu_ns: the emulator's main thread, Broker's, 10 ms resolution).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../tests/host/env.sh" # ROOT (the current directory), TARGET
V=5.3 N=300000 ROUNDS=3 COST=""
while (($#)); do
  case "$1" in
    --lua) V=$2; shift ;;
    --events) N=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --cost) COST=$2; shift ;;
    -h | --help) usage_help "$0"; exit 0 ;;
    *) echo "emulator.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
HOST_BIN=$(bash tests/host/build.sh "$V" "$TARGET")
WORK="$TARGET/bench/calib"
mkdir -p "$WORK"
export BENCH_EVENTS_LUA="$ROOT/tests/host/events.lua" BENCH_WORK="$WORK"
export BENCH_KEY="BenchRoutingKeyCentreonPagerDut1" BENCH_URL="http://127.0.0.1:9/v2/enqueue"
D="$ROOT/bench/real-broker"
for ((r = 1; r <= ROUNDS; r++)); do
  for s in E=empty.lua E0=nofilter.lua F=floor.lua R=reads.lua C=cache.lua S=severity.lua; do
    name=${s%%=*}
    res=$(BROKER_HOST_COST="$COST" "$HOST_BIN" bench/writepath.lua time "$D/${s#*=}" "$N" 2>"$WORK/$name.err" \
      | sed -n 's/^RESULT time //p')
    [[ -n "$res" ]] || { echo "emulator.sh: $name failed:" >&2; cat "$WORK/$name.err" >&2; exit 1; }
    read -r n secs cpu _ <<<"$res"
    awk -v v="$V" -v c="${COST:-none}" -v s="$name" -v n="$n" -v w="$secs" -v u="$cpu" 'BEGIN {
      printf "{\"bench\":\"calib_emulator\",\"lua\":\"%s\",\"cost\":\"%s\",\"script\":\"%s\",\"events\":%d,\"wall_ns\":%.1f,\"cpu_ns\":%.1f}\n",
        v, c, s, n, w * 1e9 / n, u * 1e9 / n }'
  done
done
