//! The `pagerduty-event` command line: Pandora FMS alerts, a general sender, `flush`, a connection test, Centreon event replay and a migration check of Broker's configuration, on the library's outbox, sender and configuration.
//!
//! Exit statuses: 0 done (delivered, or stored and queued for a later attempt), 1 failed
//! (PagerDuty rejected the event, it could not be stored, or something other than PagerDuty
//! answered: a redirect, a proxy's page; the event stays queued), 2 bad usage (one line says why).

mod check;
mod check_config;
mod diagnose;
mod flush;
mod inspect;
mod key;
mod list;
mod manual;
mod options;
mod pandora;
mod progress;
mod replay;
mod resend;
mod send;
mod spool;

/// Why a command stops early. Messages are one line and never hold a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Bad usage: exit status 2.
    Usage(String),
    /// A failure: exit status 1.
    Failed(String),
}

/// The program's name.
pub(crate) const PROGRAM: &str = "pagerduty-event";

pub(crate) const EXIT_OK: i32 = 0;
pub(crate) const EXIT_FAILED: i32 = 1;
pub(crate) const EXIT_USAGE: i32 = 2;

/// The `pagerduty-event` command line, as clap parses it.
#[derive(Debug, clap::Parser)]
#[command(
    name = PROGRAM,
    version = crate::VERSION,
    about = "Send events to PagerDuty (Events API v2) through a durable outbox",
    subcommand_required = true,
    after_help = "\
Events that cannot reach PagerDuty are stored in the outbox and sent by
`pagerduty-event flush` or by the next invocation for the same routing key.

Exit status: 0 delivered or queued, 1 failed (rejected by PagerDuty, not stored,
or answered by something other than PagerDuty: kept queued), 2 bad usage.
check-config: 0 all parameters usable, 1 some invalid, 2 bad usage.
check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; each one's help is its `Args`' documentation.
#[derive(Debug, clap::Subcommand)]
enum Command {
    Pandora(pandora::Args),
    Send(send::Args),
    Flush(flush::Args),
    Test(diagnose::Args),
    Replay(replay::Args),
    CheckConfig(check_config::Args),
    Check(check::Args),
    List(list::Args),
    Resend(resend::Resend),
    Discard(resend::Discard),
    /// Print the shell completion script for bash, zsh or fish on stdout
    #[command(hide = true)]
    Completions {
        #[arg(value_enum)]
        shell: manual::Shell,
    },
    /// Print the man page pagerduty-event(1) (roff) on stdout
    #[command(hide = true)]
    Man,
    /// Print the version
    #[command(hide = true)]
    Version,
}

/// Help texts open with the usage line.
const HELP_TEMPLATE: &str = "\
{usage-heading} {usage}

{about-with-newline}
{all-args}{after-help}
";

/// The command line's definition (help, completions, man page).
fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
        .help_template(HELP_TEMPLATE)
        .mut_subcommands(|c| {
            let wait = match c.get_name() {
                "send" => Some(send::WAIT),
                "pandora" => Some(pandora::WAIT),
                "flush" => Some(flush::WAIT),
                "replay" => Some(replay::WAIT),
                _ => None,
            };
            let c = c.help_template(HELP_TEMPLATE);
            match wait {
                // each command's own default `--wait`, in its help
                Some(seconds) => c.mut_arg("wait", |a| {
                    let help = a.get_help().map(ToString::to_string).unwrap_or_default();
                    a.help(format!("{help} (default {seconds})"))
                }),
                None => c,
            }
        })
}

/// Lines of the library logged while no output's sink is current go to stderr through
/// simplelog (`[WARN] text`; none today: a connector's lines go to its session's sink, shown
/// by `--verbose`). The command's own messages are its output, written as they are.
fn log_to_stderr() {
    use simplelog::{ConfigBuilder, LevelFilter, WriteLogger};
    let config = ConfigBuilder::new()
        .set_time_level(LevelFilter::Off)
        .set_target_level(LevelFilter::Off)
        .set_thread_level(LevelFilter::Off)
        .set_location_level(LevelFilter::Off)
        .build();
    crate::log::set_fallback(WriteLogger::new(
        LevelFilter::Warn,
        config,
        std::io::stderr(),
    ));
}

/// Runs the command line (`args` without the program name); returns the exit status.
pub fn run(args: &[String]) -> i32 {
    use clap::FromArgMatches;
    log_to_stderr();
    let argv = std::iter::once("pagerduty-event".to_string()).chain(args.iter().cloned());
    let parsed = command()
        .try_get_matches_from(argv)
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => return clap_error(&e, args),
    };
    let (name, result) = match &cli.command {
        Command::Pandora(a) => ("pandora", pandora::run(a)),
        Command::Send(a) => ("send", send::run(a)),
        Command::Flush(a) => ("flush", flush::run(a)),
        Command::Test(a) => ("test", diagnose::run(a)),
        Command::Replay(a) => ("replay", replay::run(a)),
        Command::CheckConfig(a) => ("check-config", check_config::run(a)),
        Command::Check(a) => ("check", check::run(a)),
        Command::List(a) => ("list", list::run(a)),
        Command::Resend(a) => ("resend", resend::run(&a.which, false)),
        Command::Discard(a) => ("discard", resend::run(&a.which, true)),
        Command::Completions { shell } => ("completions", manual::completions(*shell)),
        Command::Man => ("man", manual::man_page()),
        Command::Version => {
            println!("pagerduty-event {}", crate::VERSION);
            ("version", Ok(EXIT_OK))
        }
    };
    match result {
        Ok(code) => code,
        Err(Stop::Usage(m)) => {
            eprintln!("pagerduty-event {name}: {m} (see pagerduty-event {name} --help)");
            EXIT_USAGE
        }
        Err(Stop::Failed(m)) => {
            eprintln!("pagerduty-event {name}: {m}");
            EXIT_FAILED
        }
    }
}

/// Reports what clap found wrong (or prints the help or version it was asked for): one line
/// on stderr, exit status 2; `check` answers as a monitoring plugin (UNKNOWN, 3).
fn clap_error(e: &clap::Error, args: &[String]) -> i32 {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return EXIT_OK;
    }
    let cmd = command();
    let sub = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .and_then(|a| cmd.find_subcommand(a))
        .map(|c| c.get_name().to_string());
    let message = match (e.kind(), e.get(ContextKind::InvalidSubcommand)) {
        (ErrorKind::InvalidSubcommand, Some(ContextValue::String(other))) => format!(
            "unknown command {other:?} (commands: {}; see pagerduty-event --help)",
            cmd.get_subcommands()
                .filter(|c| !c.is_hide_set())
                .map(clap::Command::get_name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand, _) => {
            "missing command (see pagerduty-event --help)".to_string()
        }
        _ => one_line(&e.render().to_string()),
    };
    match sub.as_deref() {
        Some("check") => check::unknown(&message),
        Some(name) => {
            eprintln!("pagerduty-event {name}: {message} (see pagerduty-event {name} --help)");
            EXIT_USAGE
        }
        None => {
            eprintln!("pagerduty-event: {message}");
            EXIT_USAGE
        }
    }
}

/// clap's error text on one line: its message and what it lists, without the usage, the
/// tips and the pointer to --help.
fn one_line(text: &str) -> String {
    let mut words = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() || line.starts_with("tip:") {
            continue;
        }
        words.push(line.strip_prefix("error: ").unwrap_or(line));
    }
    words.join(" ")
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
