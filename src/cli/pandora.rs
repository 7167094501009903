//! `pagerduty-event pandora`: a Pandora FMS alert command with Pandora's positional arguments, one PagerDuty incident per alert.
//!
//! `pandora <service_api_key> <id_alert> <event_type> <description> [fired_timestamp]
//! [severity] [agent_name] [module_name] [module_data]`, as Pandora FMS's PagerDuty Perl
//! script took them. The `dedup_key` is `pandora-<id_alert>`: `trigger` opens or updates the
//! alert's incident, `resolve` closes it, and a later `trigger` opens a new one (PagerDuty
//! starts a new incident for a key whose incident is resolved), so nothing is kept on disk
//! between alerts.

use serde_json::Map;

use super::args::{self, Opt};
use super::options::{self, DELIVERY, NETWORK, ROUTING};
use super::timezone::Zone;
use super::{EXIT_OK, Stop, key, send};
use crate::config::Severity;
use crate::payload::{Action, Custom};
use crate::timefmt;

const PANDORA: &[Opt] = &[
    args::value("timezone"),
    args::value("dedup-key-prefix"),
    args::value("client-url"),
];

/// Default `dedup_key` prefix.
pub const PREFIX: &str = "pandora-";
/// Pandora's recovery marker, put before a field left blank in the alert's recovery.
const RECOVER: &str = "[RECOVER]";
/// Default `--wait`, seconds: well within the time Pandora FMS gives an alert command.
pub const WAIT: u64 = 10;

const ARGUMENTS: [&str; 9] = [
    "service_api_key",
    "id_alert",
    "event_type",
    "description",
    "fired_timestamp",
    "severity",
    "agent_name",
    "module_name",
    "module_data",
];

fn help() -> String {
    format!(
        "\
Usage: pagerduty-event pandora [options] <service_api_key> <id_alert> <event_type> <description>
                               [fired_timestamp] [severity] [agent_name] [module_name] [module_data]

A Pandora FMS alert, with the arguments of Pandora's PagerDuty integration. Options go
before the first argument (arguments may start with '-').

  service_api_key  the routing key (32 characters), or @PATH (a file holding it), or
                   env:NAME (an environment variable), or - (--routing-key-file or
                   PAGERDUTY_ROUTING_KEY); prefer @PATH: the command line is visible in `ps`
  id_alert         Pandora's alert id: the incident's dedup_key is pandora-<id_alert>
  event_type       trigger (open or update the incident) or resolve (close it);
                   a value or description starting with [RECOVER] is a recovery: resolve
  description      the incident's summary ([RECOVER] prefix removed)
  fired_timestamp  yy-mm-dd hh:mm:ss or yyyy-mm-dd hh:mm:ss, Pandora's local time
                   (see --timezone); empty or absent: now
  severity         Critical -> critical, Major -> error, Warning and Minor -> warning,
                   Informational, Normal and Maintenance -> info (default critical)
  agent_name       source (default: this machine's name)
  module_name      component
  module_data      custom detail ModuleData

Pandora:
  --timezone ZONE         zone of fired_timestamp: a name (Europe/Madrid), UTC, or an
                          offset (+02:00); default: this machine's zone (TZ, /etc/localtime)
  --dedup-key-prefix TEXT instead of pandora- (several Pandora servers on one routing key)
  --client-url URL        Pandora console URL, shown as the incident's backlink

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
        send::PREVIEW_HELP
    )
}

/// Runs `pandora`.
pub fn run(argv: &[String]) -> Result<i32, Stop> {
    let opts = options::merge(&[PANDORA, send::PREVIEW, ROUTING, NETWORK, DELIVERY]);
    let p = args::parse(argv, &opts, true)?;
    if p.help {
        print!("{}", help());
        return Ok(EXIT_OK);
    }
    let alert = Alert::parse(&p.positionals)?;
    let zone = match p.value("timezone") {
        Some(z) => Zone::named(z).map_err(|e| Stop::Usage(format!("--timezone: {e}")))?,
        None => Zone::local(),
    };
    let prefix = p.value("dedup-key-prefix").unwrap_or(PREFIX);
    let dedup_key = format!("{prefix}{}", alert.id);
    super::check_dedup_key(&dedup_key, "id_alert")?;
    let key = key::from_pandora_argument(&alert.key, &p)?;
    let host = super::hostname();
    let source = alert.agent.as_deref().unwrap_or(&host);
    let summary = match alert.description.as_str() {
        "" => format!(
            "Pandora FMS alert {}{}",
            alert.id,
            alert
                .module
                .as_deref()
                .map_or(String::new(), |m| format!(": {source}/{m}"))
        ),
        d => d.to_string(),
    };
    let mut details = Map::new();
    details.insert("AlertId".into(), alert.id.as_str().into());
    for (name, value) in [
        ("Agent", &alert.agent),
        ("Module", &alert.module),
        ("ModuleData", &alert.data),
        ("PandoraSeverity", &alert.severity_name),
        ("FiredTimestamp", &alert.fired),
    ] {
        if let Some(v) = value {
            details.insert(name.into(), v.as_str().into());
        }
    }
    let timestamp = alert
        .fired_local
        .map_or_else(timefmt::now_unix, |local| zone.to_utc(local));
    let event = Custom {
        action: alert.action,
        dedup_key: &dedup_key,
        summary: &summary,
        source,
        severity: alert.severity,
        timestamp: Some(timestamp),
        component: alert.module.as_deref(),
        group: None,
        class: None,
        details,
        links: Vec::new(),
        client: Some("Pandora FMS"),
        client_url: p.value("client-url"),
    };
    send::deliver_with_key(&p, &key, &event, WAIT)
}

/// Pandora's arguments, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Alert {
    key: String,
    id: String,
    action: Action,
    description: String,
    /// `fired_timestamp` as written, and as seconds since 1970 in local wall-clock time.
    fired: Option<String>,
    fired_local: Option<i64>,
    severity: Severity,
    severity_name: Option<String>,
    agent: Option<String>,
    module: Option<String>,
    data: Option<String>,
}

impl Alert {
    fn parse(args: &[String]) -> Result<Alert, Stop> {
        let mut args: Vec<String> = args.to_vec();
        // an unquoted `_timestamp_` macro arrives as two words: a date, then a time
        if args.len() > 5 && looks_like_date(&args[4]) && looks_like_time(&args[5]) {
            let time = args.remove(5);
            args[4] = format!("{} {time}", args[4]);
        }
        if args.len() < 4 {
            return Err(Stop::Usage(format!(
                "missing argument <{}> (Pandora passes: <service_api_key> <id_alert> <event_type> <description> [fired_timestamp] [severity] [agent_name] [module_name] [module_data])",
                ARGUMENTS[args.len()]
            )));
        }
        if args.len() > ARGUMENTS.len() {
            return Err(Stop::Usage(format!(
                "{} arguments, at most {} expected: quote each Pandora macro in the command (\"_field3_\")",
                args.len(),
                ARGUMENTS.len()
            )));
        }
        let opt = |i: usize| {
            args.get(i)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let id = args[1].trim().to_string();
        if id.is_empty() {
            return Err(Stop::Usage("id_alert is empty".into()));
        }
        let (event_type, recovering_type) = unrecover(&args[2]);
        let (description, recovering_description) = unrecover(&args[3]);
        let action = match event_type.to_ascii_lowercase().as_str() {
            "trigger" if recovering_type || recovering_description => Action::Resolve,
            "trigger" => Action::Trigger,
            "resolve" => Action::Resolve,
            "acknowledge" => Action::Acknowledge,
            _ => {
                return Err(Stop::Usage(format!(
                    "event_type: expected trigger or resolve, got {:?}",
                    args[2]
                )));
            }
        };
        let fired = opt(4);
        let fired_local = match &fired {
            None => None,
            Some(f) => Some(timefmt::parse_pandora(f).ok_or_else(|| {
                Stop::Usage(format!(
                    "fired_timestamp: expected yy-mm-dd hh:mm:ss (or yyyy-mm-dd hh:mm:ss), got {f:?}"
                ))
            })?),
        };
        let severity_name = opt(5);
        let severity = match &severity_name {
            None => Severity::Critical,
            Some(s) => severity(s).unwrap_or_else(|| {
                eprintln!(
                    "warning: severity {s:?} is not a Pandora FMS severity (Critical, Major, Warning, Minor, Informational, Normal, Maintenance); sent as error"
                );
                Severity::Error
            }),
        };
        Ok(Alert {
            key: args[0].trim().to_string(),
            id,
            action,
            description: description.to_string(),
            fired,
            fired_local,
            severity,
            severity_name,
            agent: opt(6),
            module: opt(7),
            data: opt(8),
        })
    }
}

/// A field without Pandora's `[RECOVER]` prefix, and whether it had it.
fn unrecover(field: &str) -> (&str, bool) {
    let t = field.trim();
    match t.strip_prefix(RECOVER) {
        Some(rest) => (rest.trim(), true),
        None => (t, false),
    }
}

/// Pandora FMS's criticity names (and PagerDuty's own) as PagerDuty severities.
fn severity(name: &str) -> Option<Severity> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "critical" => Severity::Critical,
        "major" | "error" => Severity::Error,
        "warning" | "minor" => Severity::Warning,
        "informational" | "normal" | "maintenance" | "info" => Severity::Info,
        _ => return None,
    })
}

fn looks_like_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn looks_like_time(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(words: &[&str]) -> Result<Alert, Stop> {
        Alert::parse(&words.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn every_argument() {
        let a = alert(&[
            "@/k",
            "42",
            "trigger",
            "Disk full",
            "23-11-14 22:13:20",
            "Major",
            "web-01",
            "disk_/var",
            "-95.5",
        ])
        .unwrap();
        assert_eq!(a.action, Action::Trigger);
        assert_eq!(a.id, "42");
        assert_eq!(a.fired_local, Some(1_700_000_000));
        assert_eq!(a.severity, Severity::Error);
        assert_eq!(a.agent.as_deref(), Some("web-01"));
        assert_eq!(a.module.as_deref(), Some("disk_/var"));
        assert_eq!(a.data.as_deref(), Some("-95.5"));
    }

    #[test]
    fn severities() {
        for (name, sev) in [
            ("Critical", Severity::Critical),
            ("Major", Severity::Error),
            ("Warning", Severity::Warning),
            ("Minor", Severity::Warning),
            ("Informational", Severity::Info),
            ("Normal", Severity::Info),
            ("Maintenance", Severity::Info),
            ("MAINTENANCE", Severity::Info),
        ] {
            assert_eq!(severity(name), Some(sev), "{name}");
        }
        assert_eq!(severity("Severe"), None);
        assert_eq!(
            alert(&["k", "1", "trigger", "d"]).unwrap().severity,
            Severity::Critical
        );
    }

    #[test]
    fn recovery_marker() {
        let a = alert(&["k", "1", "resolve", "[RECOVER] Disk full"]).unwrap();
        assert_eq!(
            (a.action, a.description.as_str()),
            (Action::Resolve, "Disk full")
        );
        // recovery fields left blank: Pandora repeats the firing values with the marker
        let a = alert(&["k", "1", "[RECOVER]trigger", "[RECOVER]Disk full"]).unwrap();
        assert_eq!(
            (a.action, a.description.as_str()),
            (Action::Resolve, "Disk full")
        );
        let a = alert(&["k", "1", "trigger", "[RECOVER]Disk full"]).unwrap();
        assert_eq!(a.action, Action::Resolve);
    }

    #[test]
    fn unquoted_timestamp_is_joined() {
        let a = alert(&[
            "k",
            "1",
            "trigger",
            "d",
            "2023-11-14",
            "22:13:20",
            "Warning",
            "agent",
        ])
        .unwrap();
        assert_eq!(a.fired.as_deref(), Some("2023-11-14 22:13:20"));
        assert_eq!(a.severity, Severity::Warning);
        assert_eq!(a.agent.as_deref(), Some("agent"));
    }

    #[test]
    fn mistakes() {
        let usage = |r: Result<Alert, Stop>| match r {
            Err(Stop::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        };
        assert!(usage(alert(&["k", "1", "trigger"])).contains("<description>"));
        assert!(usage(alert(&["k"])).contains("<id_alert>"));
        assert!(usage(alert(&["k", "1", "fire", "d"])).contains("event_type"));
        let m = usage(alert(&["k", "1", "trigger", "d", "14/11/2023 22:13"]));
        assert!(m.starts_with("fired_timestamp:"), "{m}");
        assert!(
            usage(alert(&["k", "1", "trigger", "d", "", "", "", "", "", "x"])).contains("quote")
        );
        assert!(usage(alert(&["k", " ", "trigger", "d"])).contains("id_alert"));
    }
}
