#!/usr/bin/env bash
# packaging/check-glibc.sh MAX DIR: what the ELF files under DIR need, from their NEEDED
# entries and version references (what the dynamic loader checks before running them); fails
# when one needs a GLIBC_ version above MAX, libgcc_s above GCC_7.0.0 (the newest version of
# GCC 7 to 11's; EL8 has GCC 8, Debian 11 GCC 10), or a library other than glibc's and
# libgcc_s. MAX=none: prints what they need, checks nothing.
set -euo pipefail

max=$1
dir=$2
gcc_max=7.0.0
allowed=" libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libutil.so.1 \
ld-linux-x86-64.so.2 libgcc_s.so.1 "
status=0
newest() { { grep -o "$1[0-9][0-9.]*" || true; } | sort -uV | tail -1; }
above() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -1)" != "$2" ]; }   # $1 > $2

files=0
all=
while IFS= read -r -d '' f; do
  [ "$(head -c4 "$f")" = $'\x7fELF' ] || continue
  files=$((files + 1))
  p=$(objdump -p "$f")
  glibc=$(newest GLIBC_ <<<"$p")
  gcc=$(newest GCC_ <<<"$p")
  all+="$glibc "
  echo "${f#"$dir"/}: needs ${glibc:-no glibc version}${gcc:+, libgcc_s $gcc}"
  [ "$max" = none ] && continue
  for lib in $(awk '$1 == "NEEDED" { print $2 }' <<<"$p"); do
    [[ $allowed == *" $lib "* ]] || { echo "$f needs $lib (not glibc's or libgcc_s)" >&2; status=1; }
  done
  if [ -n "$glibc" ] && above "${glibc#GLIBC_}" "$max"; then
    echo "$f needs $glibc, above GLIBC_$max (the oldest glibc the packages serve)" >&2; status=1
  fi
  if [ -n "$gcc" ] && above "${gcc#GCC_}" "$gcc_max"; then
    echo "$f needs libgcc_s $gcc, above GCC_$gcc_max" >&2; status=1
  fi
done < <(find "$dir" -type f -print0 | sort -z)
[ "$files" -gt 0 ] || { echo "no ELF file under $dir" >&2; exit 1; }
[ "$max" != none ] || echo "warning: built against this machine's glibc: the binaries need" \
  "$(newest GLIBC_ <<<"$all") or newer" >&2
exit "$status"
