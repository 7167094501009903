# centreon-pagerduty: the two commands are `make demo` (main job) and `make test` (everything).
# Both install what they need on a fresh Debian machine (apt-get for Lua, gcc, curl, dpkg-dev
# and rpm; `make packages`, run by the tests, installs cargo-deb and cargo-generate-rpm with
# cargo; cargo is expected from the machine's Rust toolchain, Debian's `cargo` package is tried
# otherwise). `make release` and `make install` install nothing on the system beyond the files
# of `make install` (no apt-get: they serve production servers, Debian or EL8/EL9, with cargo).

CARGO ?= cargo
APT_PACKAGES := lua5.3 lua5.4 liblua5.3-dev liblua5.4-dev gcc g++ binutils sqlite3 util-linux valgrind curl \
	dpkg-dev rpm python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build release test lint unit demo bench clean install uninstall packages deb rpm \
	package-build package-scripts

# make install: where things go (DESTDIR for packaging, PREFIX for the tree).
PREFIX ?= /usr
LUADIR ?= $(PREFIX)/share/centreon-broker/lua
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include

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

## release: the library and pagerduty-event, optimised (cargo only: nothing is installed)
release:
	$(CARGO) build --release --lib --bin pagerduty-event

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
## BENCHMARKS.md and the storm and outage timelines (bench/storm.svg, bench/outage.svg).
## `make bench REAL_BROKER=DIR` also runs a short series in a real cbd built by
## bench/real-broker/build.sh in DIR (REAL_N statuses, REAL_ROUNDS rounds; bench/real-broker/README.md)
bench: deps
	bash bench/run.sh

## install: the bridge and the library where Broker looks for them
## (/usr/share/centreon-broker/lua/pagerduty.lua and lib/centreon_pagerduty.so, a link to the
## C library), the command line tool, the C library (libcentreon_pagerduty.so.<version>, its
## SONAME link .so.<major> and the development link .so) and its header, the flush timer's
## systemd units, the logrotate file, /etc/pagerduty-event (for a routing key file), the man
## page and the shell completions; DESTDIR and PREFIX are honoured. Binaries are stripped of
## debug info (35 MB -> 6 MB each; symbols stay, for backtraces). Builds first when cargo is
## here (when root has no cargo: `make release` as yourself, then `sudo make install`), in
## cargo's target dir (CARGO_TARGET_DIR, default target). Runs no package manager.
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))
SONAME := libcentreon_pagerduty.so.$(SOMAJOR)
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
# Debian's zsh reads vendor-completions; EL's site-functions (the RPMs' stage sets it)
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/vendor-completions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
STRIP ?= strip
UNITS := pagerduty-event-flush.service pagerduty-event-flush.timer
INSTALLED := $(LUADIR)/pagerduty.lua $(LUADIR)/lib/centreon_pagerduty.so \
	$(BINDIR)/pagerduty-event $(LIBDIR)/libcentreon_pagerduty.so $(LIBDIR)/$(SONAME) \
	$(LIBDIR)/libcentreon_pagerduty.so.$(VERSION) $(INCLUDEDIR)/centreon_pagerduty.h \
	$(addprefix $(UNITDIR)/,$(UNITS)) $(SYSCONFDIR)/logrotate.d/centreon-pagerduty \
	$(MANDIR)/man1/pagerduty-event.1.gz $(BASHCOMPDIR)/pagerduty-event \
	$(ZSHCOMPDIR)/_pagerduty-event $(FISHCOMPDIR)/pagerduty-event.fish
TARGET_DIR = $(or $(CARGO_TARGET_DIR),target)
RELEASE_DIR = $(TARGET_DIR)/release
install:
	@if command -v $(CARGO) >/dev/null 2>&1; then $(CARGO) build --release --lib --bin pagerduty-event; \
	elif [ ! -f $(RELEASE_DIR)/libcentreon_pagerduty.so ] || [ ! -f $(RELEASE_DIR)/pagerduty-event ]; then \
	  echo "make install: no cargo here and nothing built: run 'make release' first" >&2; exit 1; fi
	install -d -m 0755 $(DESTDIR)$(LUADIR)/lib $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
	  $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/pagerduty-event
	install -m 0644 lua-bridge/pagerduty.lua $(DESTDIR)$(LUADIR)/pagerduty.lua
	install -m 0755 $(RELEASE_DIR)/pagerduty-event $(DESTDIR)$(BINDIR)/pagerduty-event
	install -m 0755 $(RELEASE_DIR)/libcentreon_pagerduty.so $(DESTDIR)$(LIBDIR)/libcentreon_pagerduty.so.$(VERSION)
	$(STRIP) --strip-debug $(DESTDIR)$(BINDIR)/pagerduty-event $(DESTDIR)$(LIBDIR)/libcentreon_pagerduty.so.$(VERSION)
	ln -sfn libcentreon_pagerduty.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sfn $(SONAME) $(DESTDIR)$(LIBDIR)/libcentreon_pagerduty.so
	@# Broker's module: one copy of the library, linked relatively (valid under DESTDIR too)
	ln -sfn $$(realpath -ms --relative-to=$(LUADIR)/lib $(LIBDIR)/$(SONAME)) \
	  $(DESTDIR)$(LUADIR)/lib/centreon_pagerduty.so
	install -m 0644 include/centreon_pagerduty.h $(DESTDIR)$(INCLUDEDIR)/centreon_pagerduty.h
	@# into the system itself (no DESTDIR), as root: the loader's cache learns the library
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig || true; fi
	for u in $(UNITS); do \
	  sed 's|@BINDIR@|$(BINDIR)|g' packaging/systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; done
	install -m 0644 packaging/logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/centreon-pagerduty
	@# The man page and the completions, written by the built binary (its hidden `man` and
	@# `completions SHELL` commands).
	install -d -m 0755 $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) \
	  $(DESTDIR)$(FISHCOMPDIR)
	$(RELEASE_DIR)/pagerduty-event man >$(DESTDIR)$(MANDIR)/man1/pagerduty-event.1
	gzip -9nf $(DESTDIR)$(MANDIR)/man1/pagerduty-event.1
	$(RELEASE_DIR)/pagerduty-event completions bash >$(DESTDIR)$(BASHCOMPDIR)/pagerduty-event
	$(RELEASE_DIR)/pagerduty-event completions zsh >$(DESTDIR)$(ZSHCOMPDIR)/_pagerduty-event
	$(RELEASE_DIR)/pagerduty-event completions fish >$(DESTDIR)$(FISHCOMPDIR)/pagerduty-event.fish
	chmod 0644 $(DESTDIR)$(MANDIR)/man1/pagerduty-event.1.gz $(DESTDIR)$(BASHCOMPDIR)/pagerduty-event \
	  $(DESTDIR)$(ZSHCOMPDIR)/_pagerduty-event $(DESTDIR)$(FISHCOMPDIR)/pagerduty-event.fish

## uninstall: removes what install put (nothing else: outboxes, logs and a key file stay)
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(LUADIR)/lib $(DESTDIR)$(SYSCONFDIR)/pagerduty-event 2>/dev/null

## packages: the DEB and the RPMs in $(PKGDIR) (default target/packages), the layout of
## `make install` (/usr/lib64 and /usr/lib/systemd/system on EL) plus the docs, examples and
## changelog, files root-owned 0644/0755, and the maintainer scripts of packaging/scripts
## (the legacy bridge kept aside, the group, spool and /etc/pagerduty-event, ldconfig, the
## flush timer enabled; purge removes what they made, never queued events):
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

# The trees the packages are made from (the asset sources in Cargo.toml): `make install` into
# $(PKGSTAGE) with Debian's layout (units in /lib/systemd/system) plus the changelog, and into
# $(PKGSTAGE)-el with EL's (/usr/lib64, /usr/lib/systemd/system, zsh's site-functions); the
# maintainer scripts, with the version written in, in $(PKGSCRIPTS).
# Its binaries are built in $(TARGET_DIR)/compat (target/release is left alone) and linked
# against PACKAGE_SYSROOT, made once by packaging/sysroot.sh (needs Debian's archive the first
# time, 15 MB, 10 s): Debian 11's headers and startup files, with glibc's libraries cut down to
# the symbols of glibc $(PACKAGE_GLIBC), so that no binary can need a newer one; then
# packaging/check-glibc.sh fails the build if one still does (or needs a library other than
# glibc's and libgcc_s). PACKAGE_SYSROOT=none builds against this machine's glibc instead
# (packages for it or newer only: printed).
PKGSTAGE := target/package-stage
PKGSCRIPTS ?= target/package-scripts
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
STAGE_DIRS := PREFIX=/usr LUADIR=/usr/share/centreon-broker/lua BINDIR=/usr/bin \
  INCLUDEDIR=/usr/include SYSCONFDIR=/etc
package-build: package-scripts
	rm -rf $(PKGSTAGE) $(PKGSTAGE)-el
	$(PACKAGE_ENV) $(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(PKGSTAGE) $(STAGE_DIRS) \
	  LIBDIR=/usr/lib UNITDIR=/lib/systemd/system
	$(PACKAGE_ENV) $(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(PKGSTAGE)-el $(STAGE_DIRS) \
	  LIBDIR=/usr/lib64 UNITDIR=/usr/lib/systemd/system ZSHCOMPDIR=/usr/share/zsh/site-functions
	@# Debian policy: the upstream changelog as /usr/share/doc/<package>/changelog.gz
	install -d $(PKGSTAGE)/usr/share/doc/centreon-pagerduty
	gzip -9n <CHANGELOG.md >$(PKGSTAGE)/usr/share/doc/centreon-pagerduty/changelog.gz
	bash packaging/check-glibc.sh $(PACKAGE_CHECK) $(PKGSTAGE)

## package-scripts: the packages' maintainer scripts (packaging/scripts with the version written in)
package-scripts:
	rm -rf $(PKGSCRIPTS) && mkdir -p $(PKGSCRIPTS)
	for s in preinst postinst prerm postrm posttrans; do \
	  sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@SOMAJOR@|$(SOMAJOR)|g' packaging/scripts/$$s \
	    >$(PKGSCRIPTS)/$$s && chmod 0755 $(PKGSCRIPTS)/$$s || exit 1; done

clean:
	$(CARGO) clean
