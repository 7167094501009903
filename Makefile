# centreon-pagerduty: the two commands are `make demo` (main job) and `make test` (everything).
# Both install what they need on a fresh Debian machine (apt-get for Lua, gcc and curl; cargo is
# expected from the machine's Rust toolchain, Debian's `cargo` package is tried otherwise).

CARGO ?= cargo
APT_PACKAGES := lua5.3 lua5.4 liblua5.3-dev liblua5.4-dev gcc g++ binutils sqlite3 util-linux valgrind curl
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build release test lint unit demo bench clean install uninstall

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

## test: the whole suite (lint, unit, Lua 5.3 and 5.4 end-to-end, C ABI)
test: deps lint
	$(CARGO) build --workspace
	$(CARGO) test --workspace

## demo: a scripted Centreon scenario through the real Lua bridge to a local PagerDuty stand-in
## (or to real PagerDuty when PDY_ROUTING_KEY is set)
demo: deps
	bash demo/run.sh

## bench: every benchmark (write path, memory, outbox, delivery, storm); writes BENCHMARKS.md
bench: deps
	bash bench/run.sh

## install: the bridge and the library where Broker looks for them
## (/usr/share/centreon-broker/lua/pagerduty.lua and lib/centreon_pagerduty.so), the command
## line tool, the C library and its header; DESTDIR and PREFIX are honoured. Builds first
## (when root has no cargo: `make release` as yourself, then `sudo make install`).
install:
	@if command -v $(CARGO) >/dev/null 2>&1; then $(CARGO) build --release --lib --bin pagerduty-event; \
	elif [ ! -f target/release/libcentreon_pagerduty.so ] || [ ! -f target/release/pagerduty-event ]; then \
	  echo "make install: no cargo here and nothing built: run 'make release' first" >&2; exit 1; fi
	install -d -m 0755 $(DESTDIR)$(LUADIR)/lib $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)
	install -m 0644 lua-bridge/pagerduty.lua $(DESTDIR)$(LUADIR)/pagerduty.lua
	install -m 0755 target/release/libcentreon_pagerduty.so $(DESTDIR)$(LUADIR)/lib/centreon_pagerduty.so
	install -m 0755 target/release/libcentreon_pagerduty.so $(DESTDIR)$(LIBDIR)/libcentreon_pagerduty.so
	install -m 0755 target/release/pagerduty-event $(DESTDIR)$(BINDIR)/pagerduty-event
	install -m 0644 include/centreon_pagerduty.h $(DESTDIR)$(INCLUDEDIR)/centreon_pagerduty.h

## uninstall: removes what install put (nothing else: outboxes and logs stay)
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(LUADIR)/lib 2>/dev/null

clean:
	$(CARGO) clean
