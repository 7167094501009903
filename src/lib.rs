//! Native PagerDuty Events API v2 connector for Centreon Broker, with a Lua module and a C ABI.
//!
//! # Layout
//!
//! The folders follow the pipeline: Broker event -> decision -> payload -> outbox -> delivery.
//!
//! - [`event`]: Centreon events as field records and their typed, BBDO-independent form.
//! - [`decision`]: which problems may open incidents ([`decision::filter`]), per-object memory
//!   and the state machine: trigger, acknowledge, resolve or nothing; [`decision::seen`]: the
//!   fast path's table of what each object last showed (one cache line per lookup).
//! - [`payload`]: the Events API v2 bodies, typed ([`payload::Body`]), in the certified format
//!   (defects fixed) or a `format_file` template's ([`payload::template`]), chosen in one
//!   place; PagerDuty's limits and the cuts that fit them; the plugin output as sent
//!   ([`payload::output`]), [`payload::perfdata`].
//! - [`outbox`]: the durable SQLite outbox (pending, rejected, per-object incident state).
//! - [`delivery`]: the committer (group commits, merges, acknowledgement) and the sender lanes;
//!   [`delivery::retry`]: the backoff and the pause after a 429.
//! - [`http`]: the HTTP agent (keep-alive, timeouts, proxy, TLS) and one request, what
//!   PagerDuty's answer means ([`http::verdict`]: done, rejected, misdirected or retry), the same
//!   request as a `curl` command line, name resolution without a thread per request.
//! - `params`: parameters as given, one table row per parameter (name, legacy spelling, doc,
//!   secret or not, parser and default) and their reading; each part above owns its options
//!   and rows (`decision::filter`, `decision::options`, `payload::options`, `http::options`,
//!   `delivery::options` (the outbox's too), `stats`, `log`, `event::options`).
//! - [`config`]: composes the parts' options ([`config::Config`]) and gathers their rows:
//!   reading, `check-config` and the documentation test derive from them.
//! - [`connector`]: one output: ties the above together; what the Lua module and the C ABI drive.
//! - [`stats`]: counters and the statistics file; [`log`]: each output's log file as a `log`
//!   sink (levels 0-3, rotation-safe, control characters escaped) and the dispatcher that finds
//!   it from the calling thread; [`files`]: small regular files read with a size cap, private
//!   files (0640) created without following links; [`timefmt`]: timestamps and time zones
//!   (chrono); [`luapattern`]: Lua patterns (the Lua connectors' filters and templates).
//! - `lua`: the Lua module `centreon_pagerduty` (unsafe glue, one binary for Lua 5.3 and 5.4).
//! - [`ffi`]: the C ABI (`cpd_*`, `include/centreon_pagerduty.h`).
//! - [`cli`]: the `pagerduty-event` command line (Pandora FMS, scripts, flush, test, replay,
//!   check-config).
//!
//! Unsafe code is denied everywhere but in `ffi` and `lua`, the two edges that take pointers
//! from C; the rest of the crate (files, CLI...) uses std and libc's constants through safe APIs.

#![deny(unsafe_code)]

pub mod cli;
pub mod config;
pub mod connector;
pub mod decision;
pub mod delivery;
pub mod event;
#[allow(unsafe_code)]
pub mod ffi;
pub(crate) mod files;
pub(crate) mod http;
pub mod log;
#[allow(unsafe_code)]
mod lua;
pub mod luapattern;
pub mod outbox;
mod params;
pub mod payload;
pub(crate) mod stats;
pub mod timefmt;

/// The library version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
