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
//!   [`delivery::retry`]: PagerDuty's answer -> done, rejected or retry, and the backoff.
//! - [`http`]: the HTTP agent (keep-alive, timeouts, proxy, TLS) and one request, the same
//!   request as a `curl` command line, name resolution without a thread per request.
//! - [`config`]: the output's parameters (legacy and certified spellings), checked at `init`.
//! - [`connector`]: one output: ties the above together; what the Lua module and the C ABI drive.
//! - [`stats`]: counters and the statistics file; [`log`]: the log file (levels 0-3,
//!   rotation-safe, control characters escaped); [`files`]: small regular files read with a
//!   size cap, private files (0640) created without following links; [`timefmt`]: timestamps;
//!   [`luapattern`]: Lua patterns (the Lua connectors' filters and templates).
//! - `lua`: the Lua module `centreon_pagerduty` (unsafe glue, one binary for Lua 5.3 and 5.4).
//! - [`ffi`]: the C ABI (`cpd_*`, `include/centreon_pagerduty.h`).
//! - [`cli`]: the `pagerduty-event` command line (Pandora FMS, scripts, flush, test, replay,
//!   check-config).

pub mod cli;
pub mod config;
pub mod connector;
pub mod decision;
pub mod delivery;
pub mod event;
pub mod ffi;
pub mod files;
pub mod http;
pub mod log;
mod lua;
pub mod luapattern;
pub mod outbox;
pub mod payload;
pub mod stats;
pub mod timefmt;

/// The library version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
