//! Options the subcommands share (routing key, endpoint, proxy, timeout, TLS, outbox, wait) and the connector parameters they become.

use std::time::Duration;

use serde_json::{Map, Value};

use super::Stop;
use crate::config::ConfigError;

/// Where the routing key comes from (the Integration Key of an Events API V2 integration,
/// 32 characters; never printed): `--routing-key-file`, else `PAGERDUTY_ROUTING_KEY`,
/// else `--routing-key`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Routing key (never printed; else from PAGERDUTY_ROUTING_KEY)")]
pub(crate) struct Routing {
    /// Read the routing key from a file (keeps it out of the process list)
    #[arg(long, value_name = "PATH")]
    pub(crate) routing_key_file: Option<String>,
    /// The routing key on the command line (visible in `ps`; prefer --routing-key-file or
    /// PAGERDUTY_ROUTING_KEY)
    #[arg(long, value_name = "KEY")]
    pub(crate) routing_key: Option<String>,
}

/// How PagerDuty is reached.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "PagerDuty")]
pub(crate) struct Network {
    /// Endpoint (default https://events.pagerduty.com/v2/enqueue; EU accounts:
    /// https://events.eu.pagerduty.com/v2/enqueue)
    #[arg(long, value_name = "URL")]
    pub(crate) url: Option<String>,
    /// Proxy, e.g. http://proxy:3128 (default: HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and
    /// NO_PROXY from the environment; put credentials there rather than on the command line)
    #[arg(long, value_name = "URL")]
    pub(crate) proxy: Option<String>,
    /// Longest time one request may take (default 10)
    #[arg(long, value_name = "SECONDS")]
    pub(crate) timeout: Option<String>,
    /// Do not verify PagerDuty's TLS certificate (tests only)
    #[arg(long)]
    pub(crate) insecure: bool,
}

/// The outbox, how long to wait for PagerDuty, and the connector's log on stderr.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Outbox")]
pub(crate) struct Delivery {
    /// Outbox directory (default: $PAGERDUTY_EVENT_OUTBOX, else the shared
    /// /var/lib/pagerduty-event, which members of the group pagerduty-event write; only when
    /// it does not exist, $XDG_STATE_HOME/pagerduty-event or ~/.local/state/pagerduty-event)
    #[arg(long, value_name = "DIR")]
    pub(crate) outbox: Option<String>,
    /// Longest wait for PagerDuty's answers; events not answered by then stay queued
    #[arg(long, value_name = "SECONDS")]
    pub(crate) wait: Option<String>,
    /// Print the connector's log lines on stderr
    #[arg(long)]
    pub(crate) verbose: bool,
}

/// Where and how an event goes: the routing key, PagerDuty, the outbox (`send`, `pandora`,
/// `flush`, `replay`).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct Route {
    #[command(flatten)]
    pub(crate) routing: Routing,
    #[command(flatten)]
    pub(crate) network: Network,
    #[command(flatten)]
    pub(crate) delivery: Delivery,
}

impl Network {
    /// Connector parameters; `url` is the endpoint when `--url` is not given.
    pub(crate) fn params(&self, url: Option<&str>) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(u) = self.url.as_deref().or(url) {
            m.insert("http_server_url".into(), u.into());
        }
        if let Some(proxy) = &self.proxy {
            m.insert("http_proxy_string".into(), proxy.as_str().into());
        }
        if let Some(t) = &self.timeout {
            m.insert("connection_timeout".into(), t.as_str().into());
        }
        if self.insecure {
            m.insert("verify_certificate".into(), 0.into());
        }
        m
    }
}

impl Delivery {
    /// `--wait` (at most an hour); `default` seconds when not given.
    pub(crate) fn wait(&self, default: u64) -> Result<Duration, Stop> {
        const MAX: f64 = 3600.0;
        let Some(v) = &self.wait else {
            return Ok(Duration::from_secs(default));
        };
        match v.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && (0.0..=MAX).contains(&s) => Ok(Duration::from_secs_f64(s)),
            _ => Err(Stop::Usage(format!(
                "--wait: expected a number of seconds between 0 and {MAX}, got {v:?}"
            ))),
        }
    }
}

/// A configuration error, worded with the command line's option names.
pub(crate) fn config_error(e: ConfigError) -> Stop {
    let option = match e.parameter.as_str() {
        "pdy_routing_key" => "routing key",
        "http_server_url" => "--url",
        "http_proxy_string" => "--proxy",
        "connection_timeout" => "--timeout",
        _ => return Stop::Usage(e.to_string()),
    };
    Stop::Usage(format!("{option}: {}", e.message))
}

/// `NAME=VALUE` pairs (`--detail`, `--param`); `option` names the option in messages.
pub(crate) fn pairs<'a>(
    values: &'a [String],
    option: &str,
) -> Result<Vec<(&'a str, &'a str)>, Stop> {
    values
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => Ok((name.trim(), value)),
            _ => Err(Stop::Usage(format!(
                "{option}: expected NAME=VALUE, got {kv:?}"
            ))),
        })
        .collect()
}
