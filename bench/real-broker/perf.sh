#!/bin/bash
# Interleaved performance series in a real cbd: E (the empty API 2 script, the baseline), O (the
# connector), then any other Lua output scripts given; each round runs each of them once, in
# that order rotated by one place per round. Prints the summary table (also written to OUT/summary.md).
# usage: perf.sh WORK_DIR LIB_SO BRIDGE_LUA N ROUNDS [NAME=SCRIPT.lua ...]
#   LIB_SO, BRIDGE_LUA  the connector: target/release/libcentreon_pagerduty.so, lua-bridge/pagerduty.lua
#   N                   service statuses per run (after 10,501 definitions), e.g. 100000
#   NAME=SCRIPT.lua     another script to measure, e.g. C=/opt/sc/pagerduty-events-apiv2.lua;
#                       it runs from its own directory and gets the same PagerDuty parameters as O
#   NAME=BRIDGE.lua:LIB.so  another connector variant (e.g. Ob=old/pagerduty.lua:old/lib.so for a
#                       before/after series): both copied to OUT/NAME/ as O's are
# env: PERF_RECORD (names of the scripts whose runs get `perf record -g` on cbd, e.g. "O F":
#      OUT/NAME-ROUND.perf.data), RPC (dir for Broker's gRPC stubs, default WORK_DIR/pyrpc: made
#      here from WORK_DIR/src's .proto files when python3-grpcio is installed; then each run
#      samples Broker's muxer statistics, its queue of unacknowledged events),
#      LUA (lua5.3 or lua5.4, as built; default lua5.3), RATE (statuses/s; 0, the default, feeds
#      as fast as simu can), OUT (default WORK_DIR/runs/perf-<UTC time>), PORT (receiver, 18301),
#      GRPC_PORT (cbd's gRPC listener, 51097), PIN (1: every run with Broker's Lua output thread
#      alone on CPU 0 and cbd's other threads, the script's own included, on the other CPUs)
set -euo pipefail
[ $# -ge 5 ] || { sed -n '2,/^set/{/^#/p}' "$0"; exit 2; }
KIT=$(cd "$(dirname "$0")" && pwd)
[ -f "$2" ] && [ -f "$3" ] || { echo "no file $2 or $3" >&2; exit 2; }
W=$(cd "$1" && pwd); SO=$(realpath "$2"); BRIDGE=$(realpath "$3"); N=$4 ROUNDS=$5; shift 5
LUA=${LUA:-lua5.3} RATE=${RATE:-0} PORT=${PORT:-18301} GRPC_PORT=${GRPC_PORT:-51097}
CBD=$W/build-$LUA/broker/cbd MODDIR=$W/modules-$LUA
[ -x "$CBD" ] && [ -d "$MODDIR" ] || { echo "no $CBD or $MODDIR: run build.sh first" >&2; exit 2; }
OUT=${OUT:-$W/runs/perf-$(date -u +%Y%m%d-%H%M%S)}
RPC=${RPC:-$W/pyrpc} RPC_ARGS=()
# a python3 with python3-grpcio for the queue statistics (Debian's, when the first in PATH has not)
PY=python3 GRPC=0
for p in python3 /usr/bin/python3; do
  if "$p" -c 'import grpc, google.protobuf' 2>/dev/null; then PY=$p GRPC=1; break; fi
done
if [ ! -f "$RPC/broker_pb2_grpc.py" ] && [ $GRPC = 1 ] \
  && [ -x /usr/bin/grpc_python_plugin ] && [ -f "$W/src/broker/core/src/broker.proto" ]; then
  mkdir -p "$RPC"
  protoc -I"$W/src/broker/core/src" -I"$W/src/common/src" -I/usr/include --python_out="$RPC" \
    --grpc_out="$RPC" --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin broker.proto process_stat.proto
fi
[ $GRPC = 1 ] && [ -f "$RPC/broker_pb2_grpc.py" ] && RPC_ARGS=(--rpc "$RPC")
OUT=$(realpath -m "$OUT")
EXTRA=() VARIANTS=()
for s in "$@"; do
  name=${s%%=*} path=${s#*=} so=
  [[ $path == *.lua:* ]] && so=${path#*.lua:} path=${path%%.lua:*}.lua
  [[ $s == *=* && $name =~ ^[A-Za-z0-9_-]+$ && $name != E && $name != O && -f $path ]] \
    && [[ -z $so || -f $so ]] \
    || { echo "bad script argument '$s': NAME=SCRIPT.lua or NAME=BRIDGE.lua:LIB.so, NAME not E or O, files that exist" >&2; exit 2; }
  if [ -n "$so" ]; then
    VARIANTS+=("$name=$(realpath "$path"):$(realpath "$so")"); EXTRA+=("$name=$OUT/$name/pagerduty.lua")
  else
    EXTRA+=("$name=$(realpath "$path")")
  fi
done
mkdir -p "$OUT/O/lib"
cp "$BRIDGE" "$OUT/O/pagerduty.lua"
cp "$SO" "$OUT/O/lib/centreon_pagerduty.so"
for v in ${VARIANTS[@]+"${VARIANTS[@]}"}; do
  name=${v%%=*} files=${v#*=}
  mkdir -p "$OUT/$name/lib"
  cp "${files%%:*}" "$OUT/$name/pagerduty.lua"; cp "${files#*:}" "$OUT/$name/lib/centreon_pagerduty.so"
done
SCRIPTS=("E=$KIT/empty.lua" "O=$OUT/O/pagerduty.lua" ${EXTRA[@]+"${EXTRA[@]}"})
echo "cbd $CBD ($LUA), N=$N, $ROUNDS round(s), rate ${RATE:-0}/s, results in $OUT"
# round r runs the scripts rotated by r - 1 places: a script's place in a round (what ran just
# before it, how warm the machine is) moved the paired differences by up to 0.6 us/event
# (bench/HISTORY.md section 19); rotating spreads that over every script
for r in $(seq 1 "$ROUNDS"); do
  k=$(( (r - 1) % ${#SCRIPTS[@]} ))
  for s in "${SCRIPTS[@]:k}" "${SCRIPTS[@]:0:k}"; do
    name=${s%%=*} path=${s#*=} params=pd; [ "$name" = E ] && params=none
    echo "[$(date -u +%T)] round $r: $name"
    rm -rf "${OUT:?}/$name-$r"
    "$PY" "$KIT/run.py" "$name" "$path" "$N" "$OUT/$name-$r" --cbd "$CBD" --moddir "$MODDIR" \
      --params $params ${RPC_ARGS[@]+"${RPC_ARGS[@]}"} \
      $([[ " ${PERF_RECORD:-} " == *" $name "* ]] && echo --perf-record "$OUT/$name-$r.perf.data") \
      $([ "${PIN:-0}" = 1 ] && echo --pin) --port "$PORT" --grpc-port "$GRPC_PORT" --rate "$RATE" --rep "$r" \
      --results "$OUT/results.jsonl" > "$OUT/$name-$r.json" 2>&1 || echo "   run failed: see $OUT/$name-$r.json"
    python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().splitlines()[-1]); print("   ", r["status"], "wall", r.get("wall_s"), "s, cbd CPU", r.get("cpu_at_detect_s"), "s, requests", r.get("requests"))' \
      "$OUT/$name-$r.json" 2>/dev/null || tail -3 "$OUT/$name-$r.json"
    sleep 2
  done
done
echo
"$PY" "$KIT/summarize.py" "$OUT/results.jsonl" | tee "$OUT/summary.md"
