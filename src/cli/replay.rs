//! `pagerduty-event replay`: recorded Centreon events (JSON lines) through the connector's own decisions; prints the PagerDuty events, and sends them unless `--dry-run`.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::options::{self, Route};
use super::spool::{self, Session};
use super::{EXIT_FAILED, EXIT_OK, Stop, check_config, key};
use crate::config::Config;
use crate::connector::Connector;
use crate::event::RawEvent;
use crate::log::{Level, Sink};
use crate::payload;

/// Default `--wait`, seconds.
pub(crate) const WAIT: u64 = 30;

/// Key used by `--dry-run` when none is given: nothing is sent, and the output masks keys.
const DRY_RUN_KEY: &str = "00000000000000000000000000000000";

/// Parameters that belong to the Broker output, not to a replay: replaced.
const OUTPUT_FILES: &[&str] = &["outbox_path", "stats_path", "log_path", "logfile"];

/// Drive recorded Centreon events (JSON lines) through the connector's decisions; print
/// (--dry-run) or send the PagerDuty events
///
/// Reads Centreon events, one JSON object per line (FILE, or - for standard input; blank
/// lines and lines starting with # are skipped), with the fields the Lua bridge hands over:
/// `_type` (or `category` and `element`), BBDO 2 or BBDO 3 fields (host_id, service_id,
/// state, state_type, last_check, last_state_change, output, long_output, perfdata,
/// acknowledged or acknowledgement_type, scheduled_downtime_depth, flapping, author,
/// comment_data...) and names (host_name, service_description, hostgroups, servicegroups,
/// poller, host_address...). They go through the same decisions as in Broker; each
/// PagerDuty event is printed as one JSON line (routing key masked) and, without
/// --dry-run, sent through the outbox.
///
/// outbox_path, stats_path and log_path are not used: the events go through this command's
/// outbox, and the connector's log goes to stderr with --verbose. Incident state is
/// remembered in the outbox like the connector does; use a fresh --outbox to start from
/// nothing.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 done, 1 some event rejected by PagerDuty, not stored or answered by
something other than PagerDuty (a redirect, a proxy's page: kept queued), 2 bad usage
or unreadable input."
)]
pub(crate) struct Args {
    /// The recorded events (JSON lines); - for standard input
    #[arg(value_name = "FILE")]
    file: String,
    /// Print the events only (no routing key needed)
    #[arg(long, help_heading = "Replay")]
    dry_run: bool,
    /// Connector parameters: Broker's configuration file (central-broker.json: its PagerDuty
    /// output's, see --output), the output's JSON, its lua_parameter array, or an object of
    /// name -> value
    #[arg(long, value_name = "FILE.json", help_heading = "Replay")]
    config: Option<String>,
    /// The output whose parameters are used, by its name, when the Broker configuration of
    /// --config has several PagerDuty outputs
    #[arg(long, value_name = "NAME", help_heading = "Replay")]
    output: Option<String>,
    /// A connector parameter (repeatable; wins over --config)
    #[arg(long, value_name = "NAME=VALUE", help_heading = "Replay")]
    param: Vec<String>,
    #[command(flatten)]
    route: Route,
}

/// Runs `replay`.
pub(crate) fn run(p: &Args) -> Result<i32, Stop> {
    let input = p.file.as_str();
    let events = read_events(input)?;
    let mut params = parameters(p)?;
    for name in OUTPUT_FILES {
        params.remove(*name);
    }
    let given_key = params
        .remove("pdy_routing_key")
        .and_then(|v| v.as_str().map(str::to_string));
    let key = match (key::from_options(&p.route.routing, false)?, given_key) {
        (Some(k), _) => Some(k),
        (None, Some(k)) => Some(key::check(&k, "pdy_routing_key")?),
        (None, None) => key::from_options(&p.route.routing, true)?,
    };
    params.extend(p.route.network.params(None));
    if p.dry_run {
        return dry_run(params, key, &events, p.route.delivery.verbose);
    }
    let key = key.ok_or_else(|| {
        Stop::Usage(format!(
            "no routing key: give --routing-key-file PATH, set {}, put pdy_routing_key in --config, or use --dry-run",
            key::ENV
        ))
    })?;
    let wait = p.route.delivery.wait(WAIT)?;
    let dir = spool::directory(p.route.delivery.outbox.as_deref())?;
    let mut session = Session::open(&dir, &key, params, wait, p.route.delivery.verbose)?;
    session.show_progress("replay");
    session.wait_out_rate_limits();
    session.deliver_earlier();
    let mut decided = 0;
    let stored = session.deliver(|c| {
        c.keep_decided();
        decided = play(c, &events);
        decided as u64
    });
    let o = session.close();
    stored?;
    eprintln!(
        "{} Centreon event(s), {decided} PagerDuty event(s): {} delivered, {} rejected, {} merged, {} queued{}",
        events.len(),
        o.delivered,
        o.rejected,
        o.merged,
        o.queued,
        o.reason
            .as_deref()
            .map_or(String::new(), |r| format!(" (last error: {r})"))
    );
    if o.queued > 0 {
        eprintln!(
            "queued events are in {}; `pagerduty-event flush` or the next invocation will send them",
            dir.display()
        );
    }
    // events kept because something other than PagerDuty answered fail too: waiting will
    // not deliver them
    let failed = o.rejected > 0 || (o.queued > 0 && o.misdirected > 0);
    Ok(if failed { EXIT_FAILED } else { EXIT_OK })
}

/// `--dry-run`: a connector that sends nothing (`send_data_test`), on a throw-away outbox.
fn dry_run(
    mut params: Map<String, Value>,
    key: Option<key::Key>,
    events: &[(usize, RawEvent)],
    verbose: bool,
) -> Result<i32, Stop> {
    let scratch = scratch_dir()?;
    params.insert(
        "pdy_routing_key".into(),
        key.map_or(DRY_RUN_KEY.to_string(), |k| k.secret.expose().to_string())
            .into(),
    );
    params.insert(
        "outbox_path".into(),
        scratch.join("outbox.db").display().to_string().into(),
    );
    params.insert("send_data_test".into(), 1.into());
    let result = (|| {
        let (cfg, warnings) =
            Config::from_json(&Value::Object(params)).map_err(options::config_error)?;
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        let log = Arc::new(Sink::in_memory(Level::Debug));
        let mut c = Connector::new(cfg, &[], Some(Arc::clone(&log)))
            .map_err(|e| Stop::Failed(e.to_string()))?;
        c.keep_decided();
        let decided = play(&mut c, events);
        drop(c);
        if verbose {
            for line in log.lines() {
                eprintln!("{line}");
            }
        }
        eprintln!(
            "{} Centreon event(s), {decided} PagerDuty event(s) (dry run: nothing sent)",
            events.len()
        );
        Ok(EXIT_OK)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Submits every event, printing the PagerDuty events each one makes; returns their number.
fn play(c: &mut Connector, events: &[(usize, RawEvent)]) -> usize {
    let mut decided = 0;
    for (line, ev) in events {
        if let Err(e) = c.submit(ev) {
            eprintln!("line {line}: skipped: {e}");
        }
        for out in c.take_decided() {
            println!("{}", payload::redacted(&out));
            decided += 1;
        }
    }
    decided
}

/// The events of the input, with their line numbers.
fn read_events(input: &str) -> Result<Vec<(usize, RawEvent)>, Stop> {
    let reader: Box<dyn BufRead> = if input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(input)
            .map_err(|e| Stop::Usage(format!("cannot read {input}: {e}")))?;
        Box::new(std::io::BufReader::new(f))
    };
    let mut events = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| Stop::Usage(format!("{input}: line {n}: {e}")))?;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let v: Value = serde_json::from_str(t)
            .map_err(|e| Stop::Usage(format!("{input}: line {n}: not JSON ({e})")))?;
        let ev =
            RawEvent::from_json(&v).map_err(|e| Stop::Usage(format!("{input}: line {n}: {e}")))?;
        events.push((n, ev));
    }
    Ok(events)
}

/// `--config` then `--param`, as one object of name -> value.
fn parameters(p: &Args) -> Result<Map<String, Value>, Stop> {
    let mut params = Map::new();
    if let Some(path) = &p.config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Stop::Usage(format!("--config: cannot read {path}: {e}")))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Stop::Usage(format!("--config: {path} is not JSON ({e})")))?;
        let v = match (check_config::broker_of(&v), &p.output) {
            (Some(broker), name) => {
                let (output, script) = broker_output(path, broker, name.as_deref())?;
                eprintln!(
                    "{path}: the parameters of the output {:?} ({script})",
                    output_name(output)
                );
                Value::Array(
                    check_config::one_or_many(output.get("lua_parameter"))
                        .into_iter()
                        .cloned()
                        .collect(),
                )
            }
            (None, Some(_)) => {
                return Err(Stop::Usage(format!(
                    "--output: {path} is not a Centreon Broker configuration file (no \"centreonBroker\" object)"
                )));
            }
            (None, None) => match v {
                Value::Object(mut o) if o.contains_key("lua_parameter") => {
                    o.remove("lua_parameter").unwrap_or(Value::Null)
                }
                v => v,
            },
        };
        match v {
            Value::Object(o) => params = o,
            Value::Array(items) => {
                for item in items {
                    match (item.get("name").and_then(Value::as_str), item.get("value")) {
                        (Some(name), Some(value)) => {
                            params.insert(name.to_string(), value.clone());
                        }
                        _ => {
                            return Err(Stop::Usage(format!(
                                "--config: {path}: each lua_parameter entry needs a name and a value"
                            )));
                        }
                    }
                }
            }
            _ => {
                return Err(Stop::Usage(format!(
                    "--config: {path}: expected an object of parameters or a lua_parameter array"
                )));
            }
        }
    }
    if p.config.is_none() && p.output.is_some() {
        return Err(Stop::Usage(
            "--output: give the Broker configuration file with --config".into(),
        ));
    }
    for (name, value) in options::pairs(&p.param, "--param")? {
        params.insert(name.to_string(), value.into());
    }
    Ok(params)
}

/// The PagerDuty output of a Broker configuration: the one named `name`, else the only one;
/// a usage error names the candidates.
fn broker_output<'a>(
    path: &str,
    broker: &'a Map<String, Value>,
    name: Option<&str>,
) -> Result<(&'a Map<String, Value>, &'static str), Stop> {
    let candidates = check_config::pagerduty_outputs(broker);
    let list = || {
        candidates
            .iter()
            .map(|(o, (script, _))| format!("{:?} ({script})", output_name(o)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (name, candidates.as_slice()) {
        (_, []) => Err(Stop::Usage(format!(
            "--config: {path} has no PagerDuty output (no Lua output runs {})",
            check_config::SCRIPTS
                .iter()
                .map(|(s, _)| *s)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        (Some(name), _) => candidates
            .iter()
            .find(|(o, _)| output_name(o) == name)
            .map(|(o, (script, _))| (*o, *script))
            .ok_or_else(|| {
                Stop::Usage(format!(
                    "--output: {path} has no PagerDuty output named {name:?} (its PagerDuty outputs: {})",
                    list()
                ))
            }),
        (None, [(o, (script, _))]) => Ok((o, script)),
        (None, several) => Err(Stop::Usage(format!(
            "--config: {path} has {} PagerDuty outputs: choose one with --output NAME ({})",
            several.len(),
            list()
        ))),
    }
}

/// A Broker output's name.
fn output_name(output: &Map<String, Value>) -> &str {
    output.get("name").and_then(Value::as_str).unwrap_or("")
}

/// A fresh private directory for a dry run's throw-away outbox.
fn scratch_dir() -> Result<PathBuf, Stop> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "pagerduty-event-replay-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| {
        Stop::Failed(format!(
            "cannot create a scratch directory {}: {e}",
            dir.display()
        ))
    })?;
    Ok(dir)
}
