//! `pagerduty-event check-config`: reads a Centreon Broker configuration file and says, for each parameter of its PagerDuty Lua outputs, whether this connector honours it, knows it under another name, ignores it (and why), or refuses it.
//!
//! Values are checked by the connector's own configuration parsing ([`Config::from_params`]),
//! so the messages are the ones `init()` would log; nothing prints a value: the routing key
//! and passwords never appear.

use std::path::Path;

use serde_json::{Map, Value};

use super::{EXIT_FAILED, EXIT_OK, Stop};
use crate::config::{Config, ParamInfo, ParamStatus, ParamValue, known_parameters};

/// The scripts whose outputs are checked (by file name), and what they are.
pub(super) const SCRIPTS: &[(&str, &str)] = &[
    ("pagerduty.lua", "this connector's Lua bridge"),
    (
        "pagerduty-events-apiv2.lua",
        "the certified Lua connector: point the path at pagerduty.lua to switch",
    ),
    (
        "pagerduty-apiv1.lua",
        "the legacy Lua connector: point the path at pagerduty.lua to switch",
    ),
];

/// Stands for a routing key the file lacks or gets wrong, so that the other parameters are
/// still checked (never printed, never used to send).
const PLACEHOLDER_KEY: &str = "00000000000000000000000000000000";

/// Where the routing key may come from.
const KEY_PARAMS: &[&str] = &["pdy_routing_key", "pdy_routing_key_file"];

/// A parameter whose meaning changes with the script an output ran: (script, name, note).
const MEANING_CHANGES: &[(&str, &str, &str)] = &[(
    "pagerduty-apiv1.lua",
    "skip_anon_events",
    "pagerduty-apiv1.lua sent objects the cache could not name when it was 1 and dropped them \
     when it was 0; here 1 drops them and 0 (the default) sends them: remove it, or swap its value",
)];

/// Migration check of the PagerDuty Lua outputs of a Centreon Broker configuration file
///
/// Reads a Centreon Broker configuration file (for example
/// /etc/centreon-broker/central-broker.json) and checks every Lua output whose path is
/// pagerduty.lua (this connector), pagerduty-events-apiv2.lua or pagerduty-apiv1.lua (the
/// Lua connectors it replaces).
///
/// For each lua_parameter it prints one of:
///
///   honoured   this connector reads it, with the same meaning
///   renamed    an older spelling, still read (the line names the current one)
///   ignored    accepted, without effect here; the line says why
///   unknown    not a parameter of this connector nor of the Lua connectors (ignored)
///   invalid    the connector would refuse to start: the message init() would log
///
/// Values are checked as the connector checks them at start; a format_file or a
/// pdy_routing_key_file is read from this machine. No text value is ever printed: the
/// messages say what is expected (a key or a password pasted in the wrong parameter stays
/// hidden; a file name that could be a key is masked).
#[derive(Debug, clap::Args)]
#[command(
    verbatim_doc_comment,
    override_usage = "pagerduty-event check-config BROKER.json",
    after_help = "Exit status: 0 every parameter can be used, 1 some parameter is invalid (or no PagerDuty
output was found), 2 bad usage or a file that is not a Broker configuration."
)]
pub(crate) struct Args {
    /// A Centreon Broker configuration file
    #[arg(value_name = "BROKER.json")]
    broker: String,
}

/// Runs `check-config`.
pub(crate) fn run(p: &Args) -> Result<i32, Stop> {
    let path = p.broker.as_str();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Stop::Usage(format!("cannot read {path}: {e}")))?;
    let root: Value = serde_json::from_str(&text)
        .map_err(|e| Stop::Usage(format!("{path} is not JSON ({e})")))?;
    let broker = broker_of(&root).ok_or_else(|| {
        Stop::Usage(format!(
            "{path}: no \"centreonBroker\" object: not a Centreon Broker configuration file"
        ))
    })?;
    let outputs = one_or_many(broker.get("output"));
    let checked: Vec<Report> = pagerduty_outputs(broker)
        .into_iter()
        .map(|(o, s)| check_output(o, s))
        .collect();
    let name = broker
        .get("broker_name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    println!(
        "{path}: Broker {name:?}: {} output(s), {} with a PagerDuty connector",
        outputs.len(),
        checked.len()
    );
    if checked.is_empty() {
        println!(
            "no Lua output runs {}",
            SCRIPTS
                .iter()
                .map(|(s, _)| *s)
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(EXIT_FAILED);
    }
    let mut invalid = false;
    for report in &checked {
        println!();
        print!("{}", report.text());
        invalid |= report.invalid();
    }
    Ok(if invalid { EXIT_FAILED } else { EXIT_OK })
}

/// The `centreonBroker` object of a Centreon Broker configuration file.
pub(super) fn broker_of(root: &Value) -> Option<&Map<String, Value>> {
    root.get("centreonBroker").and_then(Value::as_object)
}

/// A script's file name, and what it is (one of [`SCRIPTS`]).
pub(super) type Script = (&'static str, &'static str);

/// The outputs of a Broker configuration that run a PagerDuty Lua script, in the file's
/// order, with the script.
pub(super) fn pagerduty_outputs(broker: &Map<String, Value>) -> Vec<(&Map<String, Value>, Script)> {
    one_or_many(broker.get("output"))
        .into_iter()
        .filter_map(|o| o.as_object())
        .filter_map(|o| script_of(o).map(|s| (o, s)))
        .collect()
}

/// A JSON array's items, or a single value as one item (Broker accepts both).
pub(super) fn one_or_many(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
    }
}

/// The script an output runs, when it is a Lua output of one of [`SCRIPTS`].
fn script_of(output: &Map<String, Value>) -> Option<(&'static str, &'static str)> {
    let lua = output
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("lua"));
    let path = output.get("path").and_then(Value::as_str)?;
    let file = Path::new(path.trim()).file_name()?.to_str()?;
    SCRIPTS
        .iter()
        .find(|(s, _)| lua && *s == file)
        .map(|(s, what)| (*s, *what))
}

/// What one `lua_parameter` entry becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Honoured,
    /// An older spelling: the current name.
    Renamed(String),
    /// Why it has no effect.
    Ignored(String),
    Unknown,
    /// The configuration's message.
    Invalid(String),
}

impl Verdict {
    fn label(&self) -> &'static str {
        match self {
            Verdict::Honoured => "honoured",
            Verdict::Renamed(_) => "renamed",
            Verdict::Ignored(_) => "ignored",
            Verdict::Unknown => "unknown",
            Verdict::Invalid(_) => "invalid",
        }
    }
}

/// One parameter as written, and what it becomes.
struct Line {
    name: String,
    verdict: Verdict,
    /// Warnings of the configuration about it, and notes.
    notes: Vec<String>,
}

/// The check of one output.
struct Report {
    name: String,
    path: String,
    what: &'static str,
    lines: Vec<Line>,
    /// Problems of the output as a whole (category filter, routing key...).
    problems: Vec<String>,
    /// Warnings that name no parameter of the output.
    notes: Vec<String>,
    /// Defaults that change when the output switches from a Lua connector.
    switching: Vec<String>,
}

impl Report {
    fn invalid(&self) -> bool {
        !self.problems.is_empty()
            || self
                .lines
                .iter()
                .any(|l| matches!(l.verdict, Verdict::Invalid(_)))
    }

    fn text(&self) -> String {
        let mut out = format!("output {:?} ({}): {}\n", self.name, self.path, self.what);
        for p in &self.problems {
            out.push_str(&format!("  problem: {p}\n"));
        }
        let width = self.lines.iter().map(|l| l.name.len()).max().unwrap_or(0);
        for l in &self.lines {
            let detail = match &l.verdict {
                Verdict::Honoured | Verdict::Unknown => String::new(),
                Verdict::Renamed(to) => format!(": legacy name of {to}, still read"),
                Verdict::Ignored(why) | Verdict::Invalid(why) => format!(": {why}"),
            };
            out.push_str(&format!(
                "  {:<width$}  {}{detail}\n",
                l.name,
                l.verdict.label()
            ));
            if l.verdict == Verdict::Unknown {
                out.push_str(&format!(
                    "  {:<width$}    not a parameter of this connector nor of the Lua connectors\n",
                    ""
                ));
            }
            for n in &l.notes {
                out.push_str(&format!("  {:<width$}    {n}\n", ""));
            }
        }
        for n in &self.notes {
            out.push_str(&format!("  note: {n}\n"));
        }
        if !self.switching.is_empty() {
            out.push_str("  when it switches to this connector:\n");
            for n in &self.switching {
                out.push_str(&format!("    - {n}\n"));
            }
        }
        let count = |label: &str| {
            self.lines
                .iter()
                .filter(|l| l.verdict.label() == label)
                .count()
        };
        out.push_str(&format!(
            "  {} parameter(s): {} honoured, {} renamed, {} ignored, {} unknown, {} invalid\n",
            self.lines.len(),
            count("honoured"),
            count("renamed"),
            count("ignored"),
            count("unknown"),
            count("invalid")
        ));
        out
    }
}

/// One `lua_parameter` entry as Broker hands it to `init()`: `string` and `password` values
/// as strings, `number` values as numbers; `None` for the types Broker drops.
fn broker_value(kind: &str, value: &Value) -> Option<ParamValue> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match kind {
        "" | "string" | "password" => Some(ParamValue::Str(text)),
        "number" => Some(
            text.trim()
                .parse::<i64>()
                .map(ParamValue::Int)
                .or_else(|_| text.trim().parse::<f64>().map(ParamValue::Float))
                .unwrap_or(ParamValue::Str(text)),
        ),
        _ => None,
    }
}

fn info(name: &str) -> Option<&'static ParamInfo> {
    known_parameters().iter().find(|p| p.name == name)
}

/// The verdict of a parameter the configuration accepted, from its name.
fn by_name(name: &str) -> Verdict {
    match info(name) {
        Some(i) if i.status == ParamStatus::Ignored => {
            Verdict::Ignored(i.doc.strip_prefix("ignored: ").unwrap_or(i.doc).to_string())
        }
        Some(i) => match i.legacy_of {
            Some(to) => Verdict::Renamed(to.to_string()),
            None => Verdict::Honoured,
        },
        None => Verdict::Unknown,
    }
}

/// The check of one output running `script`.
fn check_output(output: &Map<String, Value>, script: (&'static str, &'static str)) -> Report {
    let text = |key: &str| {
        output
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut report = Report {
        name: text("name"),
        path: text("path"),
        what: script.1,
        lines: Vec::new(),
        problems: Vec::new(),
        notes: Vec::new(),
        switching: Vec::new(),
    };
    report.problems.extend(category_problem(output));
    let given = read_entries(output, &mut report);
    let (invalid, warnings, cfg) = validate(given.clone(), &mut report.problems);
    let written: Vec<&str> = given.iter().map(|(n, _)| n.trim()).collect();
    // the seed guide installed the legacy script as pagerduty.lua: its parameters tell
    let script = match legacy_at_our_path(script.0, &report.path, &written) {
        Some(what) => {
            report.what = what;
            LEGACY
        }
        None => script,
    };
    for line in report.lines.iter_mut() {
        judge(line, &invalid, script.0);
    }
    for w in warnings {
        place_warning(&mut report, w);
    }
    if let Some(cfg) = &cfg {
        report.notes.extend(buffering_latency(cfg, &written));
        if script.0 != OURS {
            report.switching = switching_changes(cfg, script.0, &written);
        }
    }
    report
}

/// The problem of an output whose category filter leaves out neb (the host and service
/// statuses).
fn category_problem(output: &Map<String, Value>) -> Option<String> {
    let categories = output
        .get("filters")
        .and_then(|f| f.get("category"))
        .map(|c| one_or_many(Some(c)))?;
    let neb = categories
        .iter()
        .any(|c| c.as_str().is_some_and(|c| c.eq_ignore_ascii_case("neb")));
    (!neb).then(|| {
        "its category filter leaves out neb: no host or service status reaches the connector".into()
    })
}

/// The `lua_parameter` entries Broker hands over, in the file's order; each gets a line of
/// `report` (honoured until judged), an entry without a name a problem.
fn read_entries(output: &Map<String, Value>, report: &mut Report) -> Vec<(String, ParamValue)> {
    let mut given: Vec<(String, ParamValue)> = Vec::new();
    for entry in one_or_many(output.get("lua_parameter")) {
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.trim().is_empty() {
            report
                .problems
                .push("a lua_parameter entry has no name: Broker refuses the output".into());
            continue;
        }
        let kind = entry.get("type").and_then(Value::as_str).unwrap_or("");
        let value = entry.get("value").unwrap_or(&Value::Null);
        match broker_value(kind, value) {
            Some(v) => {
                given.push((name.clone(), v));
                report.lines.push(Line {
                    name,
                    verdict: Verdict::Honoured,
                    notes: Vec::new(),
                });
            }
            None => report.lines.push(Line {
                name,
                verdict: Verdict::Ignored(format!(
                    "Broker drops parameters of type {kind:?} (it hands string, number and \
                     password ones to the script)"
                )),
                notes: Vec::new(),
            }),
        }
    }
    given
}

/// The verdict of a line Broker hands over, and its notes: refused (`invalid` holds the
/// refused names with their messages) or read by name, a meaning that changes from `script`,
/// the nearest known name of an unknown one.
fn judge(line: &mut Line, invalid: &[(String, String)], script: &str) {
    if matches!(line.verdict, Verdict::Ignored(_)) {
        return;
    }
    let name = line.name.trim();
    line.verdict = match invalid.iter().find(|(n, _)| n == name) {
        Some((_, message)) => Verdict::Invalid(message.clone()),
        None => by_name(name),
    };
    if let Some((_, _, note)) = MEANING_CHANGES
        .iter()
        .find(|(s, n, _)| *s == script && *n == name)
    {
        line.notes.push((*note).to_string());
    }
    if line.verdict == Verdict::Unknown
        && let Some(near) = crate::config::nearest_parameter(name)
    {
        line.notes.push(format!("did you mean {near}?"));
    }
}

/// A warning of the configuration goes under the line of the parameter it names, or among
/// the output's notes.
fn place_warning(report: &mut Report, w: String) {
    let quoted = |name: &str| w.contains(&format!("'{}'", name.trim()));
    match report.lines.iter_mut().find(|l| quoted(&l.name)) {
        // the verdict already says why an ignored or unknown name has no effect
        Some(line) if matches!(line.verdict, Verdict::Ignored(_) | Verdict::Unknown) => {}
        Some(line) => line.notes.push(w),
        None => report.notes.push(w),
    }
}

/// The file name of this connector's bridge.
const OURS: &str = "pagerduty.lua";
/// The legacy connector, as [`SCRIPTS`] lists it.
const LEGACY: (&str, &str) = (
    "pagerduty-apiv1.lua",
    "the legacy Lua connector: point the path at pagerduty.lua to switch",
);
/// Names only the legacy connector wrote (this connector reads them as older spellings).
const LEGACY_NAMES: &[&str] = &["log_path", "max_buffer_age", "http_timeout", "filter_type"];
/// What this connector's bridge holds (the legacy script does not).
const BRIDGE_MARK: &str = "centreon_pagerduty";

/// When an output runs `pagerduty.lua` with the legacy connector's parameters only and the
/// file there (when this machine has it) is not this connector's bridge: what it is.
fn legacy_at_our_path(script: &str, path: &str, written: &[&str]) -> Option<&'static str> {
    if script != OURS {
        return None;
    }
    let legacy = written.iter().any(|n| LEGACY_NAMES.contains(n));
    let ours_only = written
        .iter()
        .any(|n| !LEGACY_NAMES.contains(n) && !LEGACY_AND_OURS.contains(n) && info(n).is_some());
    if !legacy || ours_only {
        return None;
    }
    match std::fs::read(path.trim()) {
        Ok(text) if contains(&text, BRIDGE_MARK.as_bytes()) => None,
        Ok(_) => Some(
            "the legacy Lua connector installed as pagerduty.lua (as the seed guide did): its parameters, and the file there is not this connector's bridge; install this connector's pagerduty.lua there to switch",
        ),
        Err(_) => Some(
            "by its parameters, the legacy Lua connector installed as pagerduty.lua (as the seed guide did): this machine has no file there to tell; once this connector's pagerduty.lua replaces it, the notes below apply",
        ),
    }
}

/// Names the legacy connector's documentation shows, read here too.
const LEGACY_AND_OURS: &[&str] = &[
    "pdy_routing_key",
    "pdy_centreon_url",
    "http_proxy_string",
    "log_level",
    "max_buffer_size",
    "http_server_url",
    "skip_anon_events",
];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A note when buffering parameters hold events back before they are sent.
fn buffering_latency(cfg: &Config, written: &[&str]) -> Option<String> {
    let age = cfg.delivery.max_buffer_age.as_secs_f64();
    let age_written = written
        .iter()
        .any(|n| *n == "max_buffer_age" || *n == "max_all_queues_age");
    if cfg.delivery.max_buffer_size > 1 {
        Some(format!(
            "max_buffer_size {} holds events until {} are waiting or the oldest is {age} s old: up to {age} s added before an incident opens or resolves. PagerDuty takes one event per request, so buffering saves no request here: remove max_buffer_size (1, the default, sends at once)",
            cfg.delivery.max_buffer_size, cfg.delivery.max_buffer_size
        ))
    } else if age_written {
        Some(format!(
            "max_buffer_age / max_all_queues_age ({age} s) has no effect while max_buffer_size is 1: events are sent at once"
        ))
    } else {
        None
    }
}

/// What changes for an output of the Lua connector `script` when it switches to this
/// connector with its parameters as written: the defaults this connector sets differently.
fn switching_changes(cfg: &Config, script: &str, written: &[&str]) -> Vec<String> {
    let set = |n: &str| written.contains(&n);
    let mut out = Vec::new();
    if !set("severity_host_down") {
        out.push(format!(
            "a DOWN host is sent with severity {} (the Lua connectors sent warning: a down host paged softly); severity_host_down=warning keeps the old one",
            cfg.payload.severities.host_down.as_str()
        ));
    }
    if !set("send_acknowledgements") && cfg.decision.send_acknowledgements {
        out.push(
            "acknowledgements are now sent: acknowledging in Centreon acknowledges the PagerDuty incident (send_acknowledgements=0 keeps them in Centreon)"
                .into(),
        );
    }
    if script == "pagerduty-events-apiv2.lua" && !set("skip_anon_events") {
        out.push(
            "skip_anon_events defaults to 0: objects Broker's cache cannot name are sent as host #42 / service #317 instead of being dropped (skip_anon_events=1 keeps dropping them)"
                .into(),
        );
    }
    out.push(format!(
        "log file {} ({}): its lines read `2023-11-14T22:13:20Z [WARNING] ...` (UTC); log_format=centreon keeps Broker's `Tue Nov 14 23:13:20 2023: WARNING: ...`",
        crate::config::unless_key(&cfg.log.path.display().to_string()),
        if set("logfile") || set("log_path") {
            "as set"
        } else {
            "the default"
        }
    ));
    let dir = cfg
        .outbox
        .path
        .parent()
        .map_or_else(|| ".".to_string(), |d| d.display().to_string());
    out.push(format!(
        "events are first stored in an outbox in {} ({}): that directory must exist and be writable by centreon-broker",
        crate::config::unless_key(&dir),
        if set("outbox_path") {
            "outbox_path"
        } else {
            "the default; outbox_path sets another"
        },
    ));
    out
}

/// Checks the parameters with the connector's own parsing: each parameter it refuses is set
/// aside with its message and the rest checked again, until it accepts them. Returns the
/// refused parameters and the warnings of the accepted rest; `problems` gets what names no
/// written parameter.
fn validate(
    mut params: Vec<(String, ParamValue)>,
    problems: &mut Vec<String>,
) -> (Vec<(String, String)>, Vec<String>, Option<Config>) {
    let mut invalid: Vec<(String, String)> = Vec::new();
    let written =
        |params: &[(String, ParamValue)], name: &str| params.iter().any(|(n, _)| n.trim() == name);
    let placeholder = || {
        (
            "pdy_routing_key".to_string(),
            ParamValue::Str(PLACEHOLDER_KEY.into()),
        )
    };
    if !KEY_PARAMS.iter().any(|k| written(&params, k)) {
        problems.push(format!(
            "no pdy_routing_key nor pdy_routing_key_file: the connector starts only if Broker's \
             environment gives {} (a systemd Environment= line)",
            crate::config::ROUTING_KEY_ENV
        ));
        params.push(placeholder());
    }
    // Each round sets at least one written parameter aside: at most one round per parameter.
    for _ in 0..=params.len() {
        let e = match Config::from_params(&params) {
            Ok((cfg, warnings)) => {
                return (
                    invalid,
                    warnings.into_iter().map(|w| w.0).collect(),
                    Some(cfg),
                );
            }
            Err(e) => e,
        };
        let named = e.parameter.trim().to_string();
        // The parameter at fault: the one the error names, or the other one it is about.
        let culprit = if written(&params, &named) {
            Some((named.clone(), e.message.clone()))
        } else {
            e.other_parameter()
                .map(str::trim)
                .filter(|other| written(&params, other))
                .map(|other| (other.to_string(), e.to_string()))
        };
        let Some((name, message)) = culprit else {
            problems.push(e.to_string());
            break;
        };
        params.retain(|(n, _)| n.trim() != name);
        invalid.push((name.clone(), message));
        if KEY_PARAMS.contains(&name.as_str()) && !KEY_PARAMS.iter().any(|k| written(&params, k)) {
            params.push(placeholder());
        }
    }
    (invalid, Vec::new(), None)
}

#[cfg(test)]
mod tests;
