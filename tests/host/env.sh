# tests/host/env.sh: sourced at the start of the scripts of `make demo` and `make bench`
# (demo/run.sh, bench/run.sh, bench/writepath.sh, bench/profile.sh,
# bench/real-broker/emulator.sh), which use the emulator tests/host/build.sh compiles. Sets
# ROOT, the repository (the current directory from then on), and TARGET, cargo's target
# directory as an absolute path; defines usage_help and the standin_* functions.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac

# usage_help SCRIPT: SCRIPT's opening comment (from line 2 to `set -euo`), as its --help.
usage_help() { sed -n '2,/^set -euo/p' "$1" | sed '$d; s/^# \{0,1\}//'; }

# pd-standin as a coprocess (demo/run.sh, bench/writepath.sh). `standin_start BIN OUT ARGS...`
# starts BIN --port 0 ARGS..., its output to OUT, and waits (10 s at most) for its first line,
# "listening URL": STANDIN_URL is then URL; returns 1 if that line does not come. Its stdin is
# the coprocess pipe: it runs until standin_close_input (or its --max-seconds).
# `standin_stop` closes that pipe and kills the stand-in if it still runs (for an EXIT trap).
STANDIN_PID="" STANDIN_IN="" STANDIN_URL=""
standin_start() {
  local bin=$1 out=$2 line
  shift 2
  : >"$out"
  coproc PD { exec "$bin" --port 0 "$@" >"$out" 2>&1; }
  STANDIN_PID=$PD_PID
  STANDIN_IN=${PD[1]}
  local unused=${PD[0]}
  exec {unused}<&- # it writes to OUT, never to the coprocess pipe
  for _ in $(seq 1 100); do
    line="$(head -n 1 "$out")"
    if [[ "$line" == listening\ * ]]; then
      STANDIN_URL="${line#listening }"
      return 0
    fi
    kill -0 "$STANDIN_PID" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}
standin_close_input() {
  if [[ -n "$STANDIN_IN" ]]; then
    local fd=$STANDIN_IN
    STANDIN_IN=""
    exec {fd}>&-
  fi
}
standin_stop() {
  standin_close_input
  if [[ -n "$STANDIN_PID" ]] && kill -0 "$STANDIN_PID" 2>/dev/null; then
    kill "$STANDIN_PID" 2>/dev/null || true
    wait "$STANDIN_PID" 2>/dev/null || true
  fi
}
