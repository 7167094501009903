//! `pagerduty-event pandora`: a Pandora FMS alert command with Pandora's positional arguments, one PagerDuty incident per alert.
//!
//! `pandora <service_api_key> <id_alert> <event_type> <description> [fired_timestamp]
//! [severity] [agent_name] [module_name] [module_data]`, as Pandora FMS's PagerDuty Perl
//! script took them. The `dedup_key` is `pandora-<id_alert>`: `trigger` opens or updates the
//! alert's incident, `resolve` closes it, and a later `trigger` opens a new one (PagerDuty
//! starts a new incident for a key whose incident is resolved), so nothing is kept on disk
//! between alerts.

use serde_json::Map;

use super::send::{self, Sending};
use super::{Stop, key};
use crate::decision::Action;
use crate::payload::Custom;
use crate::payload::Severity;
use crate::timefmt::{self, Zone};

/// A Pandora FMS alert, with Pandora's positional arguments
///
/// A Pandora FMS alert, with the arguments of Pandora's PagerDuty integration. Options go
/// before the first argument (arguments may start with '-').
#[derive(Debug, clap::Args)]
#[command(
    override_usage = "pagerduty-event pandora [options] <service_api_key> <id_alert> <event_type> <description>
                               [fired_timestamp] [severity] [agent_name] [module_name] [module_data]",
    after_help = "Arguments:
  service_api_key  the routing key (32 characters), or @PATH (a file holding it), or
                   env:NAME (an environment variable), or - (--routing-key-file or
                   PAGERDUTY_ROUTING_KEY); prefer @PATH: the command line is visible in `ps`
  id_alert         Pandora's alert id: the incident's dedup_key is pandora-<id_alert>
  event_type       trigger (open or update the incident) or resolve (close it);
                   an event type or description starting with [RECOVER] (Pandora's
                   recovery marker, [RECOVER] alone included) is a recovery: resolve
  description      the incident's summary
  fired_timestamp  yy-mm-dd hh:mm:ss or yyyy-mm-dd hh:mm:ss, Pandora's local time
                   (see --timezone); empty or absent: now
  severity         Critical -> critical, Major -> error, Warning and Minor -> warning,
                   Informational, Normal and Maintenance -> info (default critical)
  agent_name       source (default: this machine's name)
  module_name      component
  module_data      custom detail ModuleData

Pandora's [RECOVER] marker is removed from every argument. A value holding a \" splits
into more words than fields: they are joined back around fired_timestamp and severity,
with a warning (docs/command-line.md, \"Values with quotes\").

Exit status: 0 delivered or queued, 1 rejected by PagerDuty, not stored, or answered by
something other than PagerDuty (a redirect, a proxy's or portal's page: kept queued),
2 bad usage."
)]
pub(crate) struct Args {
    /// Zone of fired_timestamp: a name (Europe/Madrid), UTC, or an offset (+02:00); default:
    /// this machine's zone (TZ, /etc/localtime)
    #[arg(long, value_name = "ZONE", help_heading = "Pandora")]
    timezone: Option<String>,
    /// Instead of pandora- (several Pandora servers on one routing key)
    #[arg(long, value_name = "TEXT", help_heading = "Pandora")]
    dedup_key_prefix: Option<String>,
    /// Pandora console URL, shown as the incident's backlink
    #[arg(long, value_name = "URL", help_heading = "Pandora")]
    client_url: Option<String>,
    #[command(flatten)]
    sending: Sending,
    /// Pandora's arguments, as Pandora passes them (see below); everything from the first
    /// one on is an argument, even when it starts with '-'
    #[arg(value_name = "ARGUMENTS", trailing_var_arg = true, hide = true)]
    fields: Vec<String>,
}

/// Default `dedup_key` prefix.
pub(crate) const PREFIX: &str = "pandora-";
/// Pandora's recovery marker, put before a field left blank in the alert's recovery.
const RECOVER: &str = "[RECOVER]";
/// Default `--wait`, seconds: well within the time Pandora FMS gives an alert command.
pub(crate) const WAIT: u64 = 10;

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

/// Runs `pandora`.
pub(crate) fn run(p: &Args) -> Result<i32, Stop> {
    let alert = Alert::parse(&p.fields)?;
    let zone = match p.timezone.as_deref() {
        Some(z) => Zone::named(z).map_err(|e| Stop::Usage(format!("--timezone: {e}")))?,
        None => Zone::local(),
    };
    let prefix = p.dedup_key_prefix.as_deref().unwrap_or(PREFIX);
    let dedup_key = format!("{prefix}{}", alert.id);
    super::check_dedup_key(&dedup_key, "id_alert")?;
    let key = key::from_pandora_argument(&alert.key, &p.sending.route.routing)?;
    let host = super::hostname();
    let source = alert.agent.as_deref().unwrap_or(&host);
    let summary = summary(&alert, source);
    let mut details = Map::new();
    details.insert("AlertId".into(), alert.id.as_str().into());
    if alert.description.lines().nth(1).is_some() {
        // the summary holds the first line; the whole text is here
        details.insert("Description".into(), alert.description.as_str().into());
    }
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
        client_url: p.client_url.as_deref(),
    };
    send::deliver_with_key(&p.sending, &key, &event, WAIT)
}

/// The incident's summary: the description's first line (the whole description goes into
/// `custom_details.Description`), or the alert and module when it is blank. Kept as Pandora
/// wrote it, a leading severity word included: nothing before it says the state.
fn summary(alert: &Alert, source: &str) -> String {
    match alert
        .description
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
    {
        None => format!(
            "Pandora FMS alert {}{}",
            alert.id,
            alert
                .module
                .as_deref()
                .map_or(String::new(), |m| format!(": {source}/{m}"))
        ),
        Some(first) => first.to_string(),
    }
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
        // Pandora puts its recovery marker before every field but Field 1 when the
        // recovery fields are left blank: off every argument (a key, an id, a timestamp
        // behind it would be refused or name another incident); the alert is a recovery
        // when the event type or the description had it (fixed positions, before any text
        // a quote could split)
        let mut recovering = false;
        let words: Vec<String> = args
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let (rest, marked) = unrecover(a);
                recovering |= marked && (i == 2 || i == 3);
                rest.to_string()
            })
            .collect();
        let (args, note) = rebuild(words);
        if let Some(note) = note {
            eprintln!("warning: {note}");
        }
        if args.len() < 4 {
            return Err(Stop::Usage(format!(
                "missing argument <{}> (Pandora passes: <service_api_key> <id_alert> <event_type> <description> [fired_timestamp] [severity] [agent_name] [module_name] [module_data])",
                ARGUMENTS[args.len()]
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
        let action = match args[2].trim().to_ascii_lowercase().as_str() {
            // `[RECOVER]` alone: a recovery whose event type field is blank
            "" | "trigger" | "resolve" | "acknowledge" if recovering => Action::Resolve,
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
            description: args[3].trim().to_string(),
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
    match field.trim_start().strip_prefix(RECOVER) {
        Some(rest) => (rest, true),
        None => (field, false),
    }
}

/// Pandora's fields from the words the shell made of the alert command (the rule is
/// documented in docs/command-line.md, "Values with quotes"). Pandora substitutes macros
/// as plain text, so a `"` in a value ends the command's quoting and the shell splits the
/// value at its blanks. An unquoted `_timestamp_`'s date and time are joined first. Then,
/// when the words do not fit the fields (more than nine, or no timestamp where
/// fired_timestamp goes), the fixed-format fields anchor them: service_api_key, id_alert
/// and event_type are the first three words (nothing free-form comes before them);
/// fired_timestamp followed by a severity is the first such pair after the fourth word;
/// the words between are the description, joined with one space (the blank the shell
/// split at); after the severity come agent_name and module_name, one word each, and
/// module_data is everything left, joined the same way. Without that pair, more than nine
/// words make everything after event_type the description; nine or fewer are left as
/// they are (a malformed timestamp is reported as such). The note says what was joined.
fn rebuild(mut words: Vec<String>) -> (Vec<String>, Option<String>) {
    let mut i = 4;
    while i + 1 < words.len() {
        if looks_like_date(&words[i]) && looks_like_time(&words[i + 1]) {
            let time = words.remove(i + 1);
            words[i] = format!("{} {time}", words[i]);
        }
        i += 1;
    }
    let n = words.len();
    let fits = n <= ARGUMENTS.len()
        && words
            .get(4)
            .is_none_or(|w| w.trim().is_empty() || is_timestamp(w));
    if n <= 4 || fits {
        return (words, None);
    }
    let split = format!(
        "{n} words for Pandora's {} fields (a \" in a value ends the command's quoting and the shell splits the value at its blanks)",
        ARGUMENTS.len()
    );
    let Some(at) = (4..n).find(|&i| is_anchor(&words, i)) else {
        if n <= ARGUMENTS.len() {
            return (words, None);
        }
        let description = words[3..].join(" ");
        let mut fields = words;
        fields.truncate(3);
        fields.push(description);
        return (
            fields,
            Some(format!(
                "{split}: no fired_timestamp followed by a severity among them, so words 4 to {n} are the description"
            )),
        );
    };
    let mut joined = Vec::new();
    if at > 4 {
        joined.push(format!("words 4 to {at} are the description"));
    }
    let data = at + 4;
    if n > data + 1 {
        joined.push(format!("words {} to {n} are module_data", data + 1));
    }
    let tail = words.split_off(at);
    let description = words.split_off(3).join(" ");
    let mut fields = words;
    fields.push(description);
    fields.extend(tail.iter().take(4).cloned());
    if tail.len() > 4 {
        fields.push(tail[4..].join(" "));
    }
    (fields, Some(format!("{split}: {}", joined.join(", "))))
}

/// `words[i]` is fired_timestamp and `words[i + 1]` the severity: a timestamp followed by
/// a Pandora severity, an empty word or nothing, or an empty word followed by a severity.
fn is_anchor(words: &[String], i: usize) -> bool {
    let next = words.get(i + 1).map(|w| w.trim());
    let severity_follows = next.is_some_and(|s| severity(s).is_some());
    if words[i].trim().is_empty() {
        severity_follows
    } else {
        is_timestamp(&words[i]) && (severity_follows || next.is_none_or(str::is_empty))
    }
}

fn is_timestamp(word: &str) -> bool {
    timefmt::parse_pandora(word).is_some()
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
mod tests;
