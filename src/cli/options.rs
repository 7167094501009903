//! Options the subcommands share (routing key, endpoint, proxy, timeout, TLS, outbox, wait) and the connector parameters they become.

use std::time::Duration;

use serde_json::{Map, Value};

use super::Stop;
use super::args::{Opt, Parsed, flag, value};
use crate::config::ConfigError;

/// Where the routing key comes from.
pub const ROUTING: &[Opt] = &[value("routing-key"), value("routing-key-file")];
/// How PagerDuty is reached.
pub const NETWORK: &[Opt] = &[
    value("url"),
    value("proxy"),
    value("timeout"),
    flag("insecure"),
];
/// The outbox, how long to wait for PagerDuty, and the connector's log on stderr.
pub const DELIVERY: &[Opt] = &[value("outbox"), value("wait"), flag("verbose")];

/// Help text of [`ROUTING`].
pub const ROUTING_HELP: &str = "\
Routing key (the Integration Key of an Events API V2 integration, 32 characters; never printed):
  --routing-key-file PATH  read it from a file (keeps it out of the process list)
  PAGERDUTY_ROUTING_KEY    or from this environment variable
  --routing-key KEY        or from the command line (visible in `ps`)
";

/// Help text of [`NETWORK`].
pub const NETWORK_HELP: &str = "\
PagerDuty:
  --url URL          endpoint (default https://events.pagerduty.com/v2/enqueue;
                     EU accounts: https://events.eu.pagerduty.com/v2/enqueue)
  --proxy URL        proxy, e.g. http://proxy:3128 (default: HTTPS_PROXY, HTTP_PROXY,
                     ALL_PROXY and NO_PROXY from the environment; put credentials
                     there rather than on the command line)
  --timeout SECONDS  longest time one request may take (default 10)
  --insecure         do not verify PagerDuty's TLS certificate (tests only)
";

/// Help text of [`DELIVERY`]; `wait` is the default of `--wait`.
pub fn delivery_help(wait: u64) -> String {
    format!(
        "\
Outbox:
  --outbox DIR       outbox directory (default: $PAGERDUTY_EVENT_OUTBOX, else the shared
                     /var/lib/pagerduty-event, which members of the group pagerduty-event
                     write; only when it does not exist, $XDG_STATE_HOME/pagerduty-event
                     or ~/.local/state/pagerduty-event)
  --wait SECONDS     longest wait for PagerDuty's answers (default {wait}); events not
                     answered by then stay queued
  --verbose          print the connector's log lines on stderr
"
    )
}

/// The options of several groups, for [`super::args::parse`].
pub fn merge(groups: &[&[Opt]]) -> Vec<Opt> {
    groups.iter().flat_map(|g| g.iter().copied()).collect()
}

/// Connector parameters for [`NETWORK`]; `url` is the endpoint when `--url` is not given.
pub fn network_params(p: &Parsed, url: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(u) = p.value("url").or(url) {
        m.insert("http_server_url".into(), u.into());
    }
    if let Some(proxy) = p.value("proxy") {
        m.insert("http_proxy_string".into(), proxy.into());
    }
    if let Some(t) = p.value("timeout") {
        m.insert("connection_timeout".into(), t.into());
    }
    if p.flag("insecure") {
        m.insert("verify_certificate".into(), 0.into());
    }
    m
}

/// `--wait` (at most an hour).
pub fn wait(p: &Parsed, default: u64) -> Result<Duration, Stop> {
    Ok(Duration::from_secs_f64(p.seconds(
        "wait",
        default as f64,
        3600.0,
    )?))
}

/// A configuration error, worded with the command line's option names.
pub fn config_error(e: ConfigError) -> Stop {
    let option = match e.parameter.as_str() {
        "pdy_routing_key" => "routing key",
        "http_server_url" => "--url",
        "http_proxy_string" => "--proxy",
        "connection_timeout" => "--timeout",
        _ => return Stop::Usage(e.to_string()),
    };
    Stop::Usage(format!("{option}: {}", e.message))
}
