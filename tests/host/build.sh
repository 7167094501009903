#!/usr/bin/env bash
# tests/host/build.sh VERSION [TARGET_DIR]: compiles the Broker host emulator for Lua VERSION
# (5.3 or 5.4) into TARGET_DIR/host/broker_host-VERSION when it is missing or older than its
# source, and prints its path. Used by the tests, `make demo` and `make bench`. The emulator
# links liblua dynamically, so lua_* are in the global scope as in Broker (cbd).
set -euo pipefail
version="$1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target="${2:-${CARGO_TARGET_DIR:-$root/target}}"
src="$root/tests/host/broker_host.c"
bin="$target/host/broker_host-$version"
if [[ ! -x "$bin" || "$src" -nt "$bin" ]]; then
  echo "compiling the Broker emulator for Lua $version -> $bin" >&2
  mkdir -p "$target/host"
  tmp="$bin.$$"   # several builders may run at once: compile privately, then rename
  gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 "-I/usr/include/lua$version" \
    "$src" -o "$tmp" "-llua$version" -ldl -lm -pthread
  mv -f "$tmp" "$bin"
fi
echo "$bin"
