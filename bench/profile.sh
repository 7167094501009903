#!/usr/bin/env bash
# bench/profile.sh: instruction counts of the write path, per event, with valgrind's callgrind:
# a deterministic complement to bench/writepath.sh, whose wall-clock figures move with the
# machine's load.
#
#   bash bench/profile.sh [--lua 5.3|5.4] [--events N] [--top K] [--change-every C] [--reuse] [--json]
#                          [--services S] [--gc stop]
#
# Runs bench/writepath.lua ("time" mode) under callgrind for the baseline script, for
# bench/fieldread.lua (the bridge's field reads alone) and for the bridge, with N and 3N timed
# events (default N = 10,000; events to a closed port), and
# subtracts: (Ir(3N) - Ir(N)) / 2N is the cost of one event in the steady state, setup and
# warm-up excluded. Only the emulator's main thread is counted (Broker's thread: the script,
# the library's calls, Broker's own work), not the library's committer and delivery threads,
# whose work depends on timing (callgrind --separate-threads, file -01). time() is fixed for the
# emulator (bench/fixed_time.c, preloaded): Lua seeds its string hashes with it, and with a
# different seed each run the same events cost up to 2,000 instructions more or less to build. Prints Ir/event for both scripts, the difference, and the K (default 25)
# functions whose inclusive cost per event grew most in the bridge run (liblua has no symbols:
# its functions show as addresses). Run bench/writepath.sh (or --tiny) first: it builds the
# emulator and lays out target/bench/lua. Callgrind files stay in target/bench/profile/.
# C (default 100) is bench/writepath.lua's BENCH_CHANGE_EVERY: 0 = no state change at all,
# i.e. the fast path alone. --reuse: analyse the callgrind files of an earlier run again.
# S (default 10,000): services of the scenario (BENCH_SERVICES; fewer only for smoke runs).
# --gc stop: no garbage collection in the counted part (BENCH_GC=stop in bench/writepath.lua):
# the collector's cycles fall at different places for different scripts and move each total by
# about 2,000 instructions per event at N = 10,000; without it the three scripts' differences
# are close (the fast path allocates nothing; the collector's own cost is then not counted),
# though runs of the same scripts an hour apart have differed by up to about 800 instructions
# per event (2026-12-07, bench/HISTORY.md section 11).
# --json: print only one JSON line on stdout (make bench), the rest on stderr:
#   {"bench":"instructions","lua":"5.4","gc":"on"|"stop","events":2N,"baseline_ir":A,"fieldread_ir":F,"bridge_ir":B,
#    "added_ir":B-A,"ratio":B/A}
# F - A is what reading the fields the bridge reads costs (Broker's userdata), B - F the library's own.
set -euo pipefail
export LC_ALL=C
source "$(dirname "${BASH_SOURCE[0]}")/../tests/host/env.sh" # ROOT (the current directory), TARGET

V=5.4 N=10000 TOP=25 CHANGE=100 REUSE=0 JSON=0 SERVICES=10000 GC=on
while (($#)); do
  case "$1" in
    --lua) V=$2; shift ;;
    --events) N=$2; shift ;;
    --top) TOP=$2; shift ;;
    --change-every) CHANGE=$2; shift ;;
    --reuse) REUSE=1 ;;
    --json) JSON=1 ;;
    --services) SERVICES=$2; shift ;;
    --gc) GC=$2; shift ;;
    -h | --help) usage_help "$0"; exit 0 ;;
    *) echo "profile.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[[ "$GC" == on || "$GC" == stop ]] || { echo "profile.sh: --gc stop (or on, the default)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "profile.sh: valgrind is not installed" >&2; exit 1; }
HOST_BIN="$TARGET/host/broker_host-$V"
LUA_DIR="$TARGET/bench/lua"
[[ -x "$HOST_BIN" && -f "$LUA_DIR/pagerduty.lua" && -f "$LUA_DIR/fieldread.lua" && -f "$LUA_DIR/lib/centreon_pagerduty.so" ]] || {
  echo "profile.sh: run bash bench/writepath.sh --tiny first (emulator, script dir)" >&2
  exit 1
}
OUT="$TARGET/bench/profile"
mkdir -p "$OUT"
FIXED_TIME_SO="$OUT/fixed_time.so"
gcc -shared -fPIC -O2 -Wall -Werror -o "$FIXED_TIME_SO" "$ROOT/bench/fixed_time.c"

export BENCH_EVENTS_LUA="$ROOT/tests/host/events.lua"
export BENCH_KEY="BenchRoutingKeyCentreonPagerDut1"
export BENCH_URL="http://127.0.0.1:9/v2/enqueue"
export BENCH_CHANGE_EVERY="$CHANGE"
export BENCH_SERVICES="$SERVICES"
export BENCH_GC="$GC"

# Every run sees arguments and an environment of the same lengths (the script as a copy named
# cg-<first letter>.lua, work directories named alike; N and 3N have the same digit count for
# the default N): Lua also seeds its string hashes with a stack address, which moves with them,
# and the seed moves the same events' cost by up to 1,700 instructions (2026-12-04, Lua 5.4:
# bench/fieldread.lua +589, +1,420 and +1,393 over the baseline from three sets of paths).
one() { # script n
  local s=$1 n=$2 w="$OUT/work-$V-${1:0:1}-$2"
  cp -f "$LUA_DIR/$s.lua" "$LUA_DIR/cg-${s:0:1}.lua"
  rm -rf "$w"
  mkdir -p "$w"
  rm -f "$OUT/cg-$V-$s-$n.out"*
  BENCH_WORK="$w" LD_PRELOAD="$FIXED_TIME_SO" valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/cg-$V-$s-$n.out" \
    "$HOST_BIN" "$ROOT/bench/writepath.lua" time "$LUA_DIR/cg-${s:0:1}.lua" "$n" >"$w/out" 2>"$w/err" || {
    echo "profile.sh: callgrind run $s $n failed, see $w/err" >&2
    return 1
  }
  # the main thread's file (Broker's thread); the others are the library's threads
  mv -f "$OUT/cg-$V-$s-$n.out-01" "$OUT/cg-$V-$s-$n.main"
  rm -f "$OUT/cg-$V-$s-$n.out"*
}

total() { sed -n 's/^summary: //p' "$1"; }

# "name<TAB>inclusive Ir" of every function of a callgrind file
inclusive() {
  callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$1" 2>/dev/null |
    awk 'match($0, /^ *[0-9,]+ +\([^)]*\) +/) {
      n = substr($0, 1, RLENGTH); name = substr($0, RLENGTH + 1)
      sub(/ *\(.*$/, "", n); gsub(/[ ,]/, "", n); print name "\t" n }'
}

N3=$((3 * N))
if ((REUSE)); then
  for f in "$OUT"/cg-"$V"-{baseline,fieldread,pagerduty}-{"$N","$N3"}.main; do
    [[ -f "$f" ]] || { echo "profile.sh: --reuse: $f is missing" >&2; exit 1; }
  done
else
  echo "== callgrind, Lua $V, $N and $N3 events per script (1 in $CHANGE a state change; this takes minutes)" >&2
  pids=()
  for s in baseline fieldread pagerduty; do
    (one "$s" "$N" && one "$s" "$N3") &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
fi

declare -A PER
for s in baseline fieldread pagerduty; do
  a=$(total "$OUT/cg-$V-$s-$N.main")
  b=$(total "$OUT/cg-$V-$s-$N3.main")
  PER[$s]=$(((b - a) / (N3 - N)))
done
if ((JSON)); then
  awk -v v="$V" -v gc="$GC" -v n=$((N3 - N)) -v a="${PER[baseline]}" -v f="${PER[fieldread]}" -v b="${PER[pagerduty]}" 'BEGIN {
    printf "{\"bench\":\"instructions\",\"lua\":\"%s\",\"gc\":\"%s\",\"events\":%d,\"baseline_ir\":%d,\"fieldread_ir\":%d,\"bridge_ir\":%d,\"added_ir\":%d,\"ratio\":%.4f}\n",
      v, gc, n, a, f, b, b - a, (a > 0 ? b / a : 0) }'
  exec 1>&2
fi
printf 'Lua %s: Ir per event: baseline %d, field reads alone %d (+%d), bridge %d\n' "$V" "${PER[baseline]}" \
  "${PER[fieldread]}" $((PER[fieldread] - PER[baseline])) "${PER[pagerduty]}"
printf 'Lua %s: Ir per event: baseline %d, bridge %d, added %d (%.1f%%)\n' "$V" "${PER[baseline]}" \
  "${PER[pagerduty]}" $((PER[pagerduty] - PER[baseline])) \
  "$(awk -v a="${PER[baseline]}" -v b="${PER[pagerduty]}" 'BEGIN { print (b - a) * 100 / a }')"

# "name<TAB>Ir per event" for one script: inclusive cost growth from N to 3N events
per_event() { # script
  join -t $'\t' -a 2 -e 0 -o 0,1.2,2.2 \
    <(inclusive "$OUT/cg-$V-$1-$N.main" | sort -t $'\t' -k1,1) \
    <(inclusive "$OUT/cg-$V-$1-$N3.main" | sort -t $'\t' -k1,1) |
    awk -F '\t' -v d=$((N3 - N)) '{ printf "%s\t%.0f\n", $1, ($3 - $2) / d }'
}
echo "Functions by inclusive Ir per event, bridge minus baseline (top $TOP; liblua's and the"
echo "emulator's own functions move by a few thousand either way with garbage-collection timing):"
printf '%10s %10s %10s  %s\n' "added" "bridge" "baseline" "function"
join -t $'\t' -a 1 -e 0 -o 0,1.2,2.2 <(per_event pagerduty | sort -t $'\t' -k1,1) \
  <(per_event baseline | sort -t $'\t' -k1,1) |
  awk -F '\t' '{ printf "%10d %10d %10d  %s\n", $2 - $3, $2, $3, $1 }' |
  sort -rn | awk -v top="$TOP" 'NR <= top' # reads everything: no SIGPIPE under pipefail
