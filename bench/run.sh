#!/usr/bin/env bash
# bench/run.sh: `make bench`. Runs every benchmark, prints the table and writes BENCHMARKS.md
# (machine, commands, date, results, then bench/HISTORY.md: profiling and fixes, before/after).
# `bash bench/run.sh --tiny` is the smoke run `make test` uses (tiny inputs, nothing written to
# BENCHMARKS.md). `bash bench/run.sh --report` runs nothing: it writes BENCHMARKS.md again from
# the results of the last run (target/bench/results.jsonl, for instance after one benchmark was
# run again and its line replaced, or after bench/HISTORY.md changed).
#
#   1-2. write path and memory: bench/writepath.sh (Broker emulator, Lua 5.3 and 5.4)
#   1.   write path in instructions: bench/profile.sh --gc stop --json (callgrind, Lua 5.3 and 5.4)
#   3.   outbox:   cargo run --release --example bench -- outbox
#   4.   delivery: cargo run --release --example bench -- delivery
#   5.   storm:    cargo run --release --example bench -- storm
#   6.   template: cargo run --release --example bench -- template
#   7.   recovery: cargo run --release --example bench -- recovery (drain after an outage)
#   8.   outage:   cargo run --release --example bench -- outage (and its drain)
#   9.   real Broker (only with REAL_BROKER=DIR, DIR the work dir of a cbd built with
#        bench/real-broker/build.sh): bench/real-broker/perf.sh, E (empty), F (floor.lua) and O
#        (the connector), REAL_ROUNDS rounds (default 2) of REAL_N statuses (default 100,000),
#        unthrottled; its table goes into BENCHMARKS.md as "Real Broker (this run)"
#        (target/bench/real-broker.md, kept for --report). Without REAL_BROKER nothing of it runs.
#   The storm and the outage also draw their timelines (examples/bench/timeline.rs):
#   bench/storm.svg and bench/outage.svg, shown in BENCHMARKS.md (target/bench/ for --tiny).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../tests/host/env.sh" # ROOT (the current directory), TARGET
TINY=()
REPORT_ONLY=0
case "${1:-}" in
  --tiny) TINY=(--tiny) ;;
  --report) REPORT_ONLY=1 ;;
esac

mkdir -p "$TARGET/bench"
RESULTS="$TARGET/bench/results${TINY:+-tiny}.jsonl"
((REPORT_ONLY)) && [ ! -s "$RESULTS" ] && { echo "run.sh --report: $RESULTS is empty" >&2; exit 1; }
((REPORT_ONLY)) || : > "$RESULTS"

cargo build --release --quiet --lib --example bench -p centreon-pagerduty
cargo build --release --quiet -p pd-standin
BENCH="$TARGET/release/examples/bench"
if ((REPORT_ONLY == 0)); then

echo "== write path and memory" >&2
bash bench/writepath.sh "${TINY[@]}" | tee -a "$RESULTS"
echo "== write path, instruction counts (valgrind --tool=callgrind)" >&2
for v in 5.3 5.4; do
  if [ ${#TINY[@]} -eq 0 ]; then
    bash bench/profile.sh --lua "$v" --gc stop --json --top 15 | tee -a "$RESULTS"
  else
    bash bench/profile.sh --lua "$v" --gc stop --json --top 5 --events 300 --services 500 | tee -a "$RESULTS"
  fi
done
for b in outbox delivery storm template recovery outage; do
  echo "== $b" >&2
  "$BENCH" "$b" "${TINY[@]}" | tee -a "$RESULTS"
done
REAL_MD="$TARGET/bench/real-broker${TINY:+-tiny}.md"
rm -f "$REAL_MD"
if [ -n "${REAL_BROKER:-}" ]; then
  echo "== real Broker ($REAL_BROKER)" >&2
  REAL_OUT="$TARGET/bench/real-broker"
  rm -rf "$REAL_OUT"
  n=${REAL_N:-100000} rounds=${REAL_ROUNDS:-2}
  [ ${#TINY[@]} -eq 0 ] || { n=20000; rounds=1; }
  OUT="$REAL_OUT" bash bench/real-broker/perf.sh "$REAL_BROKER" "$TARGET/release/libcentreon_pagerduty.so" \
    lua-bridge/pagerduty.lua "$n" "$rounds" F=bench/real-broker/floor.lua >&2
  python3 bench/real-broker/summarize.py --json "$REAL_OUT/results.jsonl" | tee -a "$RESULTS"
  {
    echo "## Real Broker"
    echo
    echo "cbd 23.10.16 built by \`bench/real-broker/build.sh\` in \`REAL_BROKER\`, run by \`bench/real-broker/perf.sh\`:"
    echo "E is the empty API 2 script, F the floor (\`bench/real-broker/floor.lua\`: the three field reads"
    echo "the connector must make of an OK status), O the connector; medians (min-max) of $rounds round(s)."
    echo
    cat "$REAL_OUT/summary.md"
  } > "$REAL_MD"
fi
fi

REPORT="$("$BENCH" report "$RESULTS")"
echo "$REPORT"
if [ ${#TINY[@]} -eq 0 ]; then
  {
    echo "# Benchmarks"
    echo
    echo "Measured by \`make bench\`, results of $(date -u -r "$RESULTS" +%Y-%m-%d) ($(date -u -r "$RESULTS" +%H:%M) UTC)."
    echo
    echo "- Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
    echo "- Toolchain: $(rustc --version), $(lua5.3 -v 2>&1 | head -1), $(lua5.4 -v 2>&1 | head -1)"
    echo "- Commands: \`bash bench/writepath.sh\`, \`bash bench/profile.sh --lua 5.3|5.4 --gc stop --json\`, \`target/release/examples/bench outbox|delivery|storm|template|recovery|outage\`,"
    echo "  \`target/release/examples/bench report $RESULTS\` (all run by \`make bench\`)"
    echo "- Every figure is compared with a baseline measured in the same run; times are medians of"
    echo "  several runs. Raw results: one JSON object per line in \`$(realpath --relative-to="$ROOT" "$RESULTS")\`."
    echo
    echo "$REPORT"
    # the real Broker's series of this run (REAL_BROKER), each script against its own floor
    echo
    if [ -f "$TARGET/bench/real-broker.md" ]; then
      cat "$TARGET/bench/real-broker.md"
    else
      echo "## Real Broker"
      echo
      echo "Not measured by this run (\`make bench REAL_BROKER=DIR\`, bench/real-broker/README.md). The"
      echo "latest figures in a real cbd 23.10.16, before and after the work of issue 34 in the same hour:"
      echo "section 22 below (its profile and the emulator's calibration: section 15)."
    fi
    # what was profiled and fixed, with the figures before and after (kept by hand)
    if [ -f bench/HISTORY.md ]; then
      echo
      cat bench/HISTORY.md
    fi
  } > BENCHMARKS.md
  echo "wrote BENCHMARKS.md" >&2
fi
