//! `pagerduty-event send`: any event (trigger, acknowledge, resolve) from options, through the outbox.

use serde_json::Map;

use super::options::{self, Route};
use super::spool::{self, Session};
use super::{EXIT_OK, Stop, key};
use crate::decision::Action;
use crate::payload::Severity;
use crate::payload::{self, Custom};

/// Any event (trigger, acknowledge, resolve) from options
///
/// Sends one event to PagerDuty through the outbox: delivered now, or stored and sent by
/// `pagerduty-event flush` or the next invocation when PagerDuty cannot be reached.
#[derive(Debug, clap::Args)]
#[command(
    override_usage = "pagerduty-event send --action ACTION --dedup-key KEY [--summary TEXT] [options]",
    after_help = "Exit status: 0 delivered or queued, 1 rejected by PagerDuty, not stored, or answered by
something other than PagerDuty (a redirect, a proxy's or portal's page: kept queued),
2 bad usage."
)]
pub(crate) struct Args {
    #[command(flatten)]
    event: Event,
    #[command(flatten)]
    pub(crate) sending: Sending,
}

/// The event's fields.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Event")]
struct Event {
    /// trigger, acknowledge or resolve
    #[arg(long, value_name = "ACTION")]
    action: Option<String>,
    /// Identifies the incident (1 to 255 characters): events with the same key update,
    /// acknowledge or resolve the same incident
    #[arg(long, value_name = "KEY")]
    dedup_key: Option<String>,
    /// What is wrong (required for trigger; cut to 1024 characters)
    #[arg(long, value_name = "TEXT")]
    summary: Option<String>,
    /// critical, error, warning or info (default error)
    #[arg(long, value_name = "LEVEL")]
    severity: Option<String>,
    /// The affected system (default: this machine's name)
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Optional payload field
    #[arg(long, value_name = "NAME")]
    component: Option<String>,
    /// Optional payload field
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// Optional payload field
    #[arg(long, value_name = "NAME")]
    class: Option<String>,
    /// A custom detail (repeatable)
    #[arg(long, value_name = "NAME=VALUE")]
    detail: Vec<String>,
    /// A link shown in the incident (repeatable)
    #[arg(long, value_name = "URL")]
    link: Vec<String>,
    /// The monitoring tool that sent it (trigger only)
    #[arg(long, value_name = "NAME")]
    client: Option<String>,
    /// The monitoring tool's URL (trigger only)
    #[arg(long, value_name = "URL")]
    client_url: Option<String>,
}

/// What `send` and `pandora` share: the preview, the routing key, PagerDuty and the outbox.
#[derive(Debug, clap::Args)]
pub(crate) struct Sending {
    /// Print the event (routing key masked) instead of sending it
    #[arg(long, help_heading = "Preview")]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) route: Route,
}

/// Default `--wait`, seconds.
pub(crate) const WAIT: u64 = 10;

/// Runs `send`.
pub(crate) fn run(args: &Args) -> Result<i32, Stop> {
    let e = &args.event;
    let action = match &e.action {
        None => {
            return Err(Stop::Usage(
                "missing --action (trigger, acknowledge or resolve)".into(),
            ));
        }
        Some(a) => parse_action(a).ok_or_else(|| {
            Stop::Usage(format!(
                "--action: expected trigger, acknowledge or resolve, got {a:?}"
            ))
        })?,
    };
    let dedup_key = e
        .dedup_key
        .as_deref()
        .ok_or_else(|| Stop::Usage("missing --dedup-key".into()))?;
    super::check_dedup_key(dedup_key, "--dedup-key")?;
    let summary = e.summary.as_deref().map(str::trim).unwrap_or("");
    if action == Action::Trigger && summary.is_empty() {
        return Err(Stop::Usage(
            "missing --summary (required for trigger)".into(),
        ));
    }
    let severity = match &e.severity {
        None => Severity::Error,
        Some(s) => Severity::parse(s).ok_or_else(|| {
            Stop::Usage(format!(
                "--severity: expected critical, error, warning or info, got {s:?}"
            ))
        })?,
    };
    let details = options::pairs(&e.detail, "--detail")?
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.into()))
        .collect::<Map<_, _>>();
    let links = links(&e.link)?;
    let host = super::hostname();
    let fallback = format!("{} {dedup_key}", action.as_str());
    let event = Custom {
        action,
        dedup_key,
        summary: if summary.is_empty() {
            &fallback
        } else {
            summary
        },
        source: e.source.as_deref().unwrap_or(&host),
        severity,
        timestamp: Some(crate::timefmt::now_unix()),
        component: e.component.as_deref(),
        group: e.group.as_deref(),
        class: e.class.as_deref(),
        details,
        links,
        client: e.client.as_deref(),
        client_url: e.client_url.as_deref(),
    };
    let key = key::required(&args.sending.route.routing)?;
    deliver_with_key(&args.sending, &key, &event, WAIT)
}

/// Sends one event through the outbox with `key` and reports (shared with `pandora`).
pub(crate) fn deliver_with_key(
    s: &Sending,
    key: &key::Key,
    event: &Custom,
    default_wait: u64,
) -> Result<i32, Stop> {
    let wait = s.route.delivery.wait(default_wait)?;
    let out = payload::custom_event(event);
    if s.dry_run {
        println!("{}", payload::redacted(&out));
        return Ok(EXIT_OK);
    }
    let dir = spool::directory(s.route.delivery.outbox.as_deref())?;
    let params = s.route.network.params(None);
    let what = format!("{} {}", out.action.as_str(), out.dedup_key);
    let mut session = Session::open(&dir, key, params, wait, s.route.delivery.verbose)?;
    session.deliver_earlier();
    let stored = session.deliver(|c| {
        c.push_outgoing(out);
        1
    });
    let outcome = session.close();
    stored?;
    Ok(spool::report_one(&what, &dir, wait, &outcome))
}

fn parse_action(a: &str) -> Option<Action> {
    match a.trim().to_ascii_lowercase().as_str() {
        "trigger" => Some(Action::Trigger),
        "acknowledge" | "ack" => Some(Action::Acknowledge),
        "resolve" => Some(Action::Resolve),
        _ => None,
    }
}

fn links(values: &[String]) -> Result<Vec<(&str, Option<&str>)>, Stop> {
    values
        .iter()
        .map(|l| {
            if l.starts_with("https://") || l.starts_with("http://") {
                Ok((l.as_str(), None))
            } else {
                Err(Stop::Usage(format!(
                    "--link: expected an http:// or https:// URL, got {l:?}"
                )))
            }
        })
        .collect()
}
