#!/usr/bin/env bash
# packaging/sysroot.sh DIR GLIBC: makes DIR, the sysroot `make packages` links its binaries
# against so that they need at most glibc GLIBC (2.28: EL8's; Debian 11 has 2.31).
#
# Debian 11's libc6, libc6-dev, linux-libc-dev and libgcc-s1, downloaded from Debian's archive
# (or DEBIAN_MIRROR) with apt-get, which checks the archive's signature with this machine's
# debian-archive-keyring, using a private apt state (no root needed, the machine's apt is left
# alone), unpacked with dpkg -x: headers, startup files and libc_nonshared.a of glibc 2.31.
# Its glibc shared libraries are then replaced with link stubs defining only the symbol
# versions up to GLIBC, each name's default version being the one glibc GLIBC had
# (log@GLIBC_2.2.5, not 2.31's log@@GLIBC_2.29): a symbol glibc GLIBC lacks stays unresolved
# (a link error, or for a weak reference, like those Rust's std makes to gettid and other
# newer functions, a null address it does without), so the linker can only bind versions up
# to GLIBC. DIR is made once (DIR/.ready) and reused; the stubs serve only the link: at run
# time the binaries use the installed glibc.
set -euo pipefail

dir=$(realpath -m "$1")
glibc=$2
suite=bullseye
packages=(libc6 libc6-dev linux-libc-dev libgcc-s1)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

fail() {
  rm -rf "${tmp:-}"
  echo "make packages: $*" >&2
  echo "make packages: PACKAGE_SYSROOT=none builds against this machine's glibc instead" \
    "(packages for its glibc or newer only)" >&2
  exit 1
}

[ -f "$keyring" ] || fail "$keyring missing (apt-get install debian-archive-keyring)"
tmp=$dir.tmp
rm -rf "$tmp" "$dir"
mkdir -p "$tmp/apt/state/lists/partial" "$tmp/apt/cache/archives/partial" "$tmp/debs" "$tmp/root"
touch "$tmp/apt/state/status"
echo "deb [signed-by=$keyring target=Packages] $mirror $suite main" >"$tmp/apt/sources.list"
apt=(apt-get -q -o "Dir::State=$tmp/apt/state" -o "Dir::State::status=$tmp/apt/state/status"
  -o "Dir::Cache=$tmp/apt/cache" -o "Dir::Etc::SourceList=$tmp/apt/sources.list"
  -o Dir::Etc::SourceParts=/dev/null -o Dir::Etc::Preferences=/dev/null
  -o Dir::Etc::PreferencesParts=/dev/null -o APT::Architecture=amd64
  -o APT::Architectures=amd64 -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)")
# (apt-get update only warns when an index fails to download or to verify)
"${apt[@]}" update >"$tmp/apt/log" 2>&1 && compgen -G "$tmp/apt/state/lists/*_${suite}_main_binary-amd64_Packages*" >/dev/null ||
  { cat "$tmp/apt/log" >&2; fail "cannot fetch Debian 11 ($suite)'s package list from $mirror (no network, or it failed to verify: apt's output above)"; }
(cd "$tmp/debs" && "${apt[@]}" download "${packages[@]}") >>"$tmp/apt/log" 2>&1 ||
  { cat "$tmp/apt/log" >&2; fail "cannot download ${packages[*]} of Debian 11 from $mirror"; }
for deb in "$tmp"/debs/*.deb; do dpkg -x "$deb" "$tmp/root"; done

# absolute symlinks (/lib64/ld-linux-x86-64.so.2 -> /lib/...) point into the sysroot
find "$tmp/root" -type l -lname '/*' | while read -r link; do
  target=$tmp/root$(readlink "$link")
  ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$target")" "$link"
done

# The stub of one glibc library: from `readelf --dyn-syms` lines (name@@VERSION is the
# default version, name@VERSION an older one), an assembly file defining each name@VERSION
# up to $glibc (functions, objects of their real size, for copy relocations) and the version
# script declaring those versions.
stub() {
  local lib=$1 work=$tmp/stub soname
  soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  rm -rf "$work" && mkdir -p "$work"
  readelf -W --dyn-syms "$lib" | awk -v max="$glibc" -v s="$work/stub.s" -v v="$work/stub.map" '
    function le(a, b,   x, y, n, i) {   # version a <= version b (2.2.5 <= 2.28)
      n = split(a, x, "."); split(b, y, ".")
      for (i = 1; i <= n || (i in y); i++) if (x[i] + 0 != y[i] + 0) return x[i] + 0 < y[i] + 0
      return 1
    }
    $7 != "UND" && $7 != "ABS" && $8 ~ /@GLIBC_2\.[0-9.]+$/ {
      name = $8; sub(/@.*/, "", name); ver = $8; sub(/.*@GLIBC_/, "", ver)
      if ($8 ~ /@@/) real_default[name] = ver
      if (!le(ver, max)) next
      n++; sym[n] = name; version[n] = ver; type[n] = $4; bind[n] = $5; size[n] = $3
      if (!(name in best) || le(best[name], ver)) best[name] = ver
      versions[ver] = 1
    }
    END {
      for (i = 1; i <= n; i++) {
        name = sym[i]; ver = version[i]
        # the default of glibc max: the real default when old enough, else the newest old one
        d = name in real_default && (le(real_default[name], max) ? real_default[name] == ver : best[name] == ver)
        l = "stub_" i
        if (type[i] == "OBJECT") printf "\t.data\n\t.type %s, @object\n\t.size %s, %d\n", l, l, size[i] > s
        else if (type[i] == "TLS") printf "\t.section .tbss,\"awT\",@nobits\n\t.type %s, @tls_object\n\t.size %s, %d\n", l, l, size[i] > s
        else printf "\t.text\n\t.type %s, @function\n", l > s
        printf "\t.%s %s\n\t.symver %s, %s%sGLIBC_%s\n%s:\n", bind[i] == "WEAK" ? "weak" : "globl", l, l, name, d ? "@@" : "@", ver, l > s
        if (type[i] == "OBJECT" || type[i] == "TLS") printf "\t.zero %d\n", size[i] > s
        else printf "\tret\n" > s
      }
      for (ver in versions) print ver > (v ".versions")
    }'
  [ -s "$work/stub.s" ] || return 0   # not a glibc library
  sort -uV "$work/stub.map.versions" | awk '
    NR == 1 { printf "GLIBC_%s { local: stub_*; };\n", $1 }
    NR > 1 { printf "GLIBC_%s { } GLIBC_%s;\n", $1, prev }
    { prev = $1 }' >"$work/stub.map"
  gcc -shared -nostdlib -Wl,-soname,"$soname" -Wl,--version-script="$work/stub.map" \
    "$work/stub.s" -o "$work/stub.so"
  mv "$work/stub.so" "$lib"
}
for lib in "$tmp"/root/lib/x86_64-linux-gnu/*.so*; do
  if [ -f "$lib" ] && [ ! -L "$lib" ] && [ "$(head -c4 "$lib")" = $'\x7fELF' ]; then stub "$lib"; fi
done
rm -rf "$tmp/stub" "$tmp/apt" "$tmp/debs"
mv "$tmp/root" "$dir"
rmdir "$tmp"
touch "$dir/.ready"
