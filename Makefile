# centreon-pagerduty: the two commands are `make demo` (main job) and `make test` (everything).
# Both install what they need on a fresh Debian machine (apt-get for Lua, gcc, curl, dpkg-dev
# and rpm; `make packages`, run by the tests, installs cargo-deb and cargo-generate-rpm with
# cargo; cargo is expected from the machine's Rust toolchain, Debian's `cargo` package is tried
# otherwise).

CARGO ?= cargo
APT_PACKAGES := lua5.3 lua5.4 liblua5.3-dev liblua5.4-dev gcc g++ binutils sqlite3 util-linux valgrind curl \
	dpkg-dev rpm
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build release test lint unit demo bench clean install uninstall packages deb rpm \
	package-build

# make install: where things go (DESTDIR for packaging, PREFIX for the tree).
PREFIX ?= /usr
LUADIR ?= $(PREFIX)/share/centreon-broker/lua
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
INSTALLED := $(LUADIR)/pagerduty.lua $(LUADIR)/lib/centreon_pagerduty.so \
	$(BINDIR)/pagerduty-event $(LIBDIR)/libcentreon_pagerduty.so $(INCLUDEDIR)/centreon_pagerduty.h

all: build

## deps: install the system packages the build, the tests and the demo need (only if missing)
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@command -v $(CARGO) >/dev/null 2>&1 || { \
	  echo "cargo not found: trying Debian's cargo package"; \
	  $(SUDO) apt-get install -y -qq cargo; }

build: deps
	$(CARGO) build --workspace

release: deps
	$(CARGO) build --release --workspace

## lint: formatting and clippy, as CI runs them
lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## test: the whole suite (lint, unit, Lua 5.3 and 5.4 end-to-end, C ABI, packages)
test: deps lint
	$(CARGO) build --workspace
	$(CARGO) test --workspace

## demo: a scripted Centreon scenario through the real Lua bridge to a local PagerDuty stand-in
## (or to real PagerDuty when PDY_ROUTING_KEY is set)
demo: deps
	bash demo/run.sh

## bench: every benchmark (write path, memory, outbox, delivery, storm, template shrink, outage); writes
## BENCHMARKS.md and the storm and outage timelines (bench/storm.svg, bench/outage.svg)
bench: deps
	bash bench/run.sh

## install: the bridge and the library where Broker looks for them
## (/usr/share/centreon-broker/lua/pagerduty.lua and lib/centreon_pagerduty.so), the command
## line tool, the C library and its header; DESTDIR and PREFIX are honoured. Builds first
## (when root has no cargo: `make release` as yourself, then `sudo make install`), in cargo's
## target dir (CARGO_TARGET_DIR, default target).
TARGET_DIR = $(or $(CARGO_TARGET_DIR),target)
RELEASE_DIR = $(TARGET_DIR)/release
install:
	@if command -v $(CARGO) >/dev/null 2>&1; then $(CARGO) build --release --lib --bin pagerduty-event; \
	elif [ ! -f $(RELEASE_DIR)/libcentreon_pagerduty.so ] || [ ! -f $(RELEASE_DIR)/pagerduty-event ]; then \
	  echo "make install: no cargo here and nothing built: run 'make release' first" >&2; exit 1; fi
	install -d -m 0755 $(DESTDIR)$(LUADIR)/lib $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)
	install -m 0644 lua-bridge/pagerduty.lua $(DESTDIR)$(LUADIR)/pagerduty.lua
	install -m 0755 $(RELEASE_DIR)/libcentreon_pagerduty.so $(DESTDIR)$(LUADIR)/lib/centreon_pagerduty.so
	install -m 0755 $(RELEASE_DIR)/libcentreon_pagerduty.so $(DESTDIR)$(LIBDIR)/libcentreon_pagerduty.so
	install -m 0755 $(RELEASE_DIR)/pagerduty-event $(DESTDIR)$(BINDIR)/pagerduty-event
	install -m 0644 include/centreon_pagerduty.h $(DESTDIR)$(INCLUDEDIR)/centreon_pagerduty.h

## uninstall: removes what install put (nothing else: outboxes and logs stay)
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(LUADIR)/lib 2>/dev/null

## packages: the DEB and the RPMs in $(PKGDIR) (default target/packages), the layout of
## `make install` (/usr/lib64 on EL) plus the docs, files root-owned 0644/0755:
##   centreon-pagerduty_<version>-1_amd64.deb      Debian 11/12: Depends lua5.3 | lua5.4, libc6
##   centreon-pagerduty-<version>-1.el8.x86_64.rpm EL8: Requires lua(abi) = 5.3
##   centreon-pagerduty-<version>-1.el9.x86_64.rpm EL9: Requires lua(abi) = 5.4
## cargo-deb and cargo-generate-rpm are installed with `cargo install --locked` when missing.
## The binaries need glibc 2.28 or newer (EL8 has 2.28, Debian 11 2.31, EL9 2.34, Debian 12
## 2.36), whatever the build machine's: see package-build.
PKGDIR ?= target/packages
CARGO_DEB_VERSION := 3.8.0
# 0.16.1: 0.19 and later build a PGP stack for signing (2.7x the CPU to install), and 0.18
# cannot read variants.
CARGO_GENERATE_RPM_VERSION := 0.16.1
packages: deb rpm

## deb: only the DEB
deb: deps package-build
	@$(CARGO) deb --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-deb@$(CARGO_DEB_VERSION)
	mkdir -p $(PKGDIR)
	$(CARGO) deb --no-build --no-strip $(DEB_VARIANT) --output $(PKGDIR)/   # stripped in the stage

## rpm: only the RPMs (el8 and el9)
rpm: package-build
	@$(CARGO) generate-rpm --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-generate-rpm@$(CARGO_GENERATE_RPM_VERSION)
	mkdir -p $(PKGDIR)
	for v in el8 el9; do \
	  $(CARGO) generate-rpm --variant $$v --auto-req builtin --payload-compress gzip --output $(PKGDIR)/ || exit 1; \
	done

# The tree both kinds of package are made from (the asset sources in Cargo.toml): `make install`
# into it, debug info stripped (35 MB -> 6 MB per binary; symbols stay, for backtraces).
# Its binaries are built in $(TARGET_DIR)/compat (target/release is left alone) and linked
# against PACKAGE_SYSROOT, made once by packaging/sysroot.sh (needs Debian's archive the first
# time, 15 MB, 10 s): Debian 11's headers and startup files, with glibc's libraries cut down to
# the symbols of glibc $(PACKAGE_GLIBC), so that no binary can need a newer one; then
# packaging/check-glibc.sh fails the build if one still does (or needs a library other than
# glibc's and libgcc_s). PACKAGE_SYSROOT=none builds against this machine's glibc instead
# (packages for it or newer only: printed).
PKGSTAGE := target/package-stage
PACKAGE_GLIBC := 2.28
PACKAGE_SYSROOT ?= $(TARGET_DIR)/sysroot-glibc$(PACKAGE_GLIBC)
ifeq ($(PACKAGE_SYSROOT),none)
PACKAGE_CHECK := none
# the DEB depends on the libc6 dpkg-shlibdeps finds (the RPMs always require what they need)
DEB_VARIANT := --variant native
else
PACKAGE_CHECK := $(PACKAGE_GLIBC)
SR := $(abspath $(PACKAGE_SYSROOT))
# gcc (the linker driver) takes the sysroot's crt files and libraries before its own
# directories' (-B, -L); the cc crate (bundled SQLite, ring) compiles with its headers.
PACKAGE_ENV := CARGO_TARGET_DIR=$(TARGET_DIR)/compat \
  RUSTFLAGS='-C link-arg=--sysroot=$(SR) -C link-arg=-B$(SR)/usr/lib/x86_64-linux-gnu \
  -L native=$(SR)/usr/lib/x86_64-linux-gnu -L native=$(SR)/lib/x86_64-linux-gnu' \
  CFLAGS_x86_64_unknown_linux_gnu=--sysroot=$(SR)
package-build: $(PACKAGE_SYSROOT)/.ready
$(PACKAGE_SYSROOT)/.ready: packaging/sysroot.sh
	bash packaging/sysroot.sh $(PACKAGE_SYSROOT) $(PACKAGE_GLIBC)
endif
package-build:
	rm -rf $(PKGSTAGE)
	$(PACKAGE_ENV) $(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(PKGSTAGE) PREFIX=/usr \
	  LUADIR=/usr/share/centreon-broker/lua BINDIR=/usr/bin LIBDIR=/usr/lib INCLUDEDIR=/usr/include
	cd $(PKGSTAGE)/usr && strip --strip-debug bin/pagerduty-event lib/libcentreon_pagerduty.so \
	  share/centreon-broker/lua/lib/centreon_pagerduty.so
	bash packaging/check-glibc.sh $(PACKAGE_CHECK) $(PKGSTAGE)

clean:
	$(CARGO) clean
