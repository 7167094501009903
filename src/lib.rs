//! Native PagerDuty Events API v2 connector for Centreon Broker, with a Lua module and a C ABI.
//!
//! # Layout
//!
//! - [`config`]: the output's parameters (legacy and certified spellings), checked at `init`.
//! - [`event`]: Centreon events as field records and their typed, BBDO-independent form.
//! - [`filter`]: which problems may open incidents (the Lua library's filters).
//! - [`decision`]: per-object memory and the state machine: trigger, acknowledge, resolve or nothing;
//!   [`seen`]: the fast path's table of what each object last showed (one cache line per lookup).
//! - [`payload`]: the Events API v2 body (certified format, defects fixed), [`perfdata`], [`timefmt`].
//! - [`output`]: the plugin output as sent (`use_long_output`, `output_size_limit`, line breaks).
//! - [`template`]: `format_file` templates (the Lua library's JSON templates and macros).
//! - [`retry`]: PagerDuty's answer -> done, rejected or retry, and the backoff.
//! - [`send`]: the HTTP agent (keep-alive, timeouts, proxy, TLS) and one request; [`curl`]: the
//!   same request as a `curl` command line (`log_curl_commands`); [`resolve`]: name resolution
//!   without a thread per request (IP literals at once, host names kept 30 s).
//! - [`outbox`]: the durable SQLite outbox (pending, rejected, per-object incident state).
//! - [`delivery`]: the committer (group commits, merges, acknowledgement) and the sender lanes.
//! - [`stats`]: counters and the statistics file.
//! - [`connector`]: one output: ties the above together; what the Lua module and the C ABI drive.
//! - [`log`]: each output's log file as a `log` sink (levels 0-3, rotation-safe, control
//!   characters escaped) and the dispatcher that finds it from the calling thread.
//! - [`files`]: small regular files read with a size cap; private files (0640) created
//!   without following links.
//! - `lua`: the Lua module `centreon_pagerduty` (unsafe glue, one binary for Lua 5.3 and 5.4).
//! - [`ffi`]: the C ABI (`cpd_*`, `include/centreon_pagerduty.h`).
//! - [`cli`]: the `pagerduty-event` command line (Pandora FMS, scripts, flush, test, replay,
//!   check-config).

pub mod cli;
pub mod config;
pub mod connector;
pub mod curl;
pub mod decision;
pub mod delivery;
pub mod event;
pub mod ffi;
pub mod files;
pub mod filter;
pub mod log;
mod lua;
pub mod luapattern;
pub mod outbox;
pub mod output;
pub mod payload;
pub mod perfdata;
pub mod resolve;
pub mod retry;
pub mod seen;
pub mod send;
pub mod stats;
pub mod template;
pub mod timefmt;

/// The library version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
