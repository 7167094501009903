//! The `pagerduty-event` command line: Pandora FMS alerts, a general sender, `flush`, a connection test, Centreon event replay and a migration check of Broker's configuration, on the library's outbox, sender and configuration.
//!
//! Exit statuses: 0 done (delivered, or stored and queued for a later attempt), 1 failed
//! (PagerDuty rejected the event, it could not be stored, or something other than PagerDuty
//! answered: a redirect, a proxy's page; the event stays queued), 2 bad usage (one line says why).

mod args;
mod check;
mod check_config;
mod diagnose;
mod flush;
mod inspect;
mod key;
mod list;
mod options;
mod pandora;
mod replay;
mod resend;
mod send;
mod spool;
pub(crate) mod timezone;

/// Why a command stops early. Messages are one line and never hold a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Bad usage: exit status 2.
    Usage(String),
    /// A failure: exit status 1.
    Failed(String),
}

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

const HELP: &str = "\
pagerduty-event: send events to PagerDuty (Events API v2) through a durable outbox.

Usage: pagerduty-event <command> [options] [arguments]

Commands:
  pandora  a Pandora FMS alert, with Pandora's positional arguments:
           pandora <service_api_key> <id_alert> <event_type> <description>
                   [fired_timestamp] [severity] [agent_name] [module_name] [module_data]
  send     any event: send --action trigger --dedup-key KEY --summary TEXT [...]
  flush    deliver the events queued in the outbox
  test     prove the routing key with a change event (no incident; --incident:
           a test trigger and its resolve); explain PagerDuty's answer
  replay   drive recorded Centreon events (JSON lines) through the connector's
           decisions; print (--dry-run) or send the PagerDuty events
  check-config BROKER.json
           migration check: for each parameter of the PagerDuty Lua outputs of a
           Centreon Broker configuration file, honoured, renamed, ignored or invalid
  check    monitoring plugin (Nagios/Centreon): events waiting in the outbox, the
           oldest one's age, events PagerDuty rejected; exit 0/1/2/3
  list     the events waiting in the outbox and those PagerDuty rejected (age,
           attempts, last error or PagerDuty's reason)
  resend   put rejected events back in the queue once the cause is fixed:
           resend [--outbox PATH] (ID... | --all)
  discard  forget rejected events: discard [--outbox PATH] (ID... | --all)
  help     this text; `pagerduty-event <command> --help` describes a command

Events that cannot reach PagerDuty are stored in the outbox and sent by
`pagerduty-event flush` or by the next invocation for the same routing key.

Exit status: 0 delivered or queued, 1 failed (rejected by PagerDuty, not stored,
or answered by something other than PagerDuty: kept queued), 2 bad usage. check-config: 0 all parameters usable, 1 some invalid, 2 bad
usage. check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
";

/// Runs the command line (`args` without the program name); returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let Some((command, rest)) = args.split_first() else {
        eprintln!("pagerduty-event: missing command (see pagerduty-event --help)");
        return EXIT_USAGE;
    };
    let result = match command.as_str() {
        "pandora" => pandora::run(rest),
        "send" => send::run(rest),
        "flush" => flush::run(rest),
        "test" => diagnose::run(rest),
        "replay" => replay::run(rest),
        "check-config" => check_config::run(rest),
        "check" => check::run(rest),
        "list" => list::run(rest),
        "resend" => resend::run(rest, false),
        "discard" => resend::run(rest, true),
        "help" | "--help" | "-h" => {
            match rest.first() {
                Some(c) => return run(&[c.clone(), "--help".to_string()]),
                None => print!("{HELP}"),
            }
            Ok(EXIT_OK)
        }
        "--version" | "version" => {
            println!("pagerduty-event {}", crate::VERSION);
            Ok(EXIT_OK)
        }
        other => {
            eprintln!(
                "pagerduty-event: unknown command {other:?} (commands: pandora, send, flush, test, replay, check-config, check, list, resend, discard; see pagerduty-event --help)"
            );
            return EXIT_USAGE;
        }
    };
    match result {
        Ok(code) => code,
        Err(Stop::Usage(m)) => {
            eprintln!("pagerduty-event {command}: {m} (see pagerduty-event {command} --help)");
            EXIT_USAGE
        }
        Err(Stop::Failed(m)) => {
            eprintln!("pagerduty-event {command}: {m}");
            EXIT_FAILED
        }
    }
}

/// This machine's name (the default `source`).
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .chain(std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .find(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Checks a `dedup_key`: 1 to 255 characters, no control character.
fn check_dedup_key(key: &str, what: &str) -> Result<(), Stop> {
    let n = key.chars().count();
    if n == 0 || n > crate::payload::MAX_DEDUP_KEY_CHARS || key.chars().any(char::is_control) {
        return Err(Stop::Usage(format!(
            "{what}: expected 1 to {} characters without control characters (got {n})",
            crate::payload::MAX_DEDUP_KEY_CHARS
        )));
    }
    Ok(())
}
