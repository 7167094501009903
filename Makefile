# centreon-pagerduty: the two commands are `make demo` (main job) and `make test` (everything).
# Both install what they need on a fresh Debian machine (apt-get for Lua and gcc; cargo is
# expected from the machine's Rust toolchain, Debian's `cargo` package is tried otherwise).

CARGO ?= cargo
APT_PACKAGES := lua5.3 lua5.4 liblua5.3-dev liblua5.4-dev gcc g++ binutils sqlite3 util-linux
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build release test lint unit demo bench clean

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

clean:
	$(CARGO) clean
