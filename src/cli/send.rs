//! `pagerduty-event send`: any event (trigger, acknowledge, resolve) from options, through the outbox.

use serde_json::Map;

use super::args::{self, Opt, Parsed};
use super::options::{self, DELIVERY, NETWORK, ROUTING};
use super::spool::{self, Session};
use super::{EXIT_OK, Stop, key};
use crate::config::Severity;
use crate::payload::{self, Action, Custom};

const EVENT: &[Opt] = &[
    args::value("action"),
    args::value("dedup-key"),
    args::value("summary"),
    args::value("severity"),
    args::value("source"),
    args::value("component"),
    args::value("group"),
    args::value("class"),
    args::repeated("detail"),
    args::repeated("link"),
    args::value("client"),
    args::value("client-url"),
];

/// `--dry-run`: print the event instead of sending it (`send` and `pandora`).
pub const PREVIEW: &[Opt] = &[args::flag("dry-run")];

/// Help text of [`PREVIEW`].
pub const PREVIEW_HELP: &str =
    "Preview:\n  --dry-run          print the event (routing key masked) instead of sending it\n";

/// Default `--wait`, seconds.
pub const WAIT: u64 = 10;

fn help() -> String {
    format!(
        "\
Usage: pagerduty-event send --action ACTION --dedup-key KEY [--summary TEXT] [options]

Sends one event to PagerDuty through the outbox: delivered now, or stored and sent by
`pagerduty-event flush` or the next invocation when PagerDuty cannot be reached.

Event:
  --action ACTION       trigger, acknowledge or resolve
  --dedup-key KEY       identifies the incident (1 to 255 characters): events with the
                        same key update, acknowledge or resolve the same incident
  --summary TEXT        what is wrong (required for trigger; cut to 1024 characters)
  --severity LEVEL      critical, error, warning or info (default error)
  --source NAME         the affected system (default: this machine's name)
  --component NAME, --group NAME, --class NAME
                        optional payload fields
  --detail NAME=VALUE   a custom detail (repeatable)
  --link URL            a link shown in the incident (repeatable)
  --client NAME, --client-url URL
                        the monitoring tool that sent it (trigger only)

{}
{}
{}
{}
Exit status: 0 delivered or queued, 1 rejected by PagerDuty, not stored, or answered by
something other than PagerDuty (a redirect, a proxy's or portal's page: kept queued),
2 bad usage.
",
        options::ROUTING_HELP,
        options::NETWORK_HELP,
        options::delivery_help(WAIT),
        PREVIEW_HELP
    )
}

/// Runs `send`.
pub fn run(argv: &[String]) -> Result<i32, Stop> {
    let opts = options::merge(&[EVENT, PREVIEW, ROUTING, NETWORK, DELIVERY]);
    let Some(p) = args::parse_options(argv, &opts, help)? else {
        return Ok(EXIT_OK);
    };
    let action = match p.value("action") {
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
    let dedup_key = p
        .value("dedup-key")
        .ok_or_else(|| Stop::Usage("missing --dedup-key".into()))?;
    super::check_dedup_key(dedup_key, "--dedup-key")?;
    let summary = p.value("summary").map(str::trim).unwrap_or("");
    if action == Action::Trigger && summary.is_empty() {
        return Err(Stop::Usage(
            "missing --summary (required for trigger)".into(),
        ));
    }
    let severity = match p.value("severity") {
        None => Severity::Error,
        Some(s) => Severity::parse(s).ok_or_else(|| {
            Stop::Usage(format!(
                "--severity: expected critical, error, warning or info, got {s:?}"
            ))
        })?,
    };
    let details = details(&p)?;
    let links = links(&p)?;
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
        source: p.value("source").unwrap_or(&host),
        severity,
        timestamp: Some(crate::timefmt::now_unix()),
        component: p.value("component"),
        group: p.value("group"),
        class: p.value("class"),
        details,
        links,
        client: p.value("client"),
        client_url: p.value("client-url"),
    };
    deliver(&p, &event, WAIT)
}

/// Sends one event through the outbox and reports (shared with `pandora`).
pub fn deliver(p: &Parsed, event: &Custom, default_wait: u64) -> Result<i32, Stop> {
    let key = key::required(p)?;
    deliver_with_key(p, &key, event, default_wait)
}

/// [`deliver`] with the key already read.
pub fn deliver_with_key(
    p: &Parsed,
    key: &key::Key,
    event: &Custom,
    default_wait: u64,
) -> Result<i32, Stop> {
    let wait = options::wait(p, default_wait)?;
    let out = payload::custom_event(event);
    if p.flag("dry-run") {
        println!("{}", payload::redacted(&out));
        return Ok(EXIT_OK);
    }
    let dir = spool::directory(p.value("outbox"))?;
    let params = options::network_params(p, None);
    let what = format!("{} {}", out.action.as_str(), out.dedup_key);
    let mut session = Session::open(&dir, key, params, wait, p.flag("verbose"))?;
    session.deliver_earlier();
    let stored = session.deliver(|c| c.push_outgoing(out));
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

fn details(p: &Parsed) -> Result<Map<String, serde_json::Value>, Stop> {
    let mut m = Map::new();
    for d in p.values("detail") {
        match d.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                m.insert(name.trim().to_string(), value.into());
            }
            _ => {
                return Err(Stop::Usage(format!(
                    "--detail: expected NAME=VALUE, got {d:?}"
                )));
            }
        }
    }
    Ok(m)
}

fn links(p: &Parsed) -> Result<Vec<(&str, Option<&str>)>, Stop> {
    p.values("link")
        .into_iter()
        .map(|l| {
            if l.starts_with("https://") || l.starts_with("http://") {
                Ok((l, None))
            } else {
                Err(Stop::Usage(format!(
                    "--link: expected an http:// or https:// URL, got {l:?}"
                )))
            }
        })
        .collect()
}
