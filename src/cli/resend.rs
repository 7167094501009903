//! `pagerduty-event resend` and `discard`: a rejected event moved back into the outbox's queue once its cause is fixed, or forgotten.

use std::path::{Path, PathBuf};

use super::inspect;
use super::{EXIT_OK, Stop};
use crate::outbox::{Outbox, ReadOnly};

/// Put rejected events back in the queue once the cause is fixed
///
/// Moves events PagerDuty rejected (see `pagerduty-event list --rejected`) back into the
/// outbox's queue, oldest first, in one transaction; each is sent after the events of its
/// dedup key already waiting. Fix the cause first (a field, a template, the routing key's
/// service). Then `pagerduty-event flush` sends them (a pagerduty-event outbox directory),
/// or the connector when Broker's PagerDuty output starts again (Broker's outbox).
#[derive(Debug, clap::Args)]
#[command(override_usage = "pagerduty-event resend [--outbox PATH] (ID... | --all)", after_help = AFTER)]
pub(crate) struct Resend {
    #[command(flatten)]
    pub(crate) which: Which,
}

/// Forget rejected events
///
/// Deletes events PagerDuty rejected (see `pagerduty-event list --rejected`) that need not
/// be sent: `pagerduty-event check` stops counting them.
#[derive(Debug, clap::Args)]
#[command(override_usage = "pagerduty-event discard [--outbox PATH] (ID... | --all)", after_help = AFTER)]
pub(crate) struct Discard {
    #[command(flatten)]
    pub(crate) which: Which,
}

const AFTER: &str = "\
The outbox must not be in use: a running connector holds it (stop Broker's PagerDuty
output first); a pagerduty-event command holds it while it runs. Run it as the user
owning the outbox (centreon-broker for Broker's).

Exit status: 0 done, 1 failed (nothing changed), 2 bad usage.";

/// The rejected events `resend` and `discard` act on.
#[derive(Debug, clap::Args)]
pub(crate) struct Which {
    /// The connector's outbox_path (Broker's output), or a pagerduty-event outbox directory
    /// holding one outbox (else give the outbox file that `list` names; default:
    /// $PAGERDUTY_EVENT_OUTBOX, else the directory send and flush use)
    #[arg(long, value_name = "PATH")]
    outbox: Option<String>,
    /// Every rejected event
    #[arg(long)]
    all: bool,
    /// IDs of rejected events (see `pagerduty-event list --rejected`)
    #[arg(value_name = "ID")]
    ids: Vec<String>,
}

/// The one database `path` names.
fn database(path: &Path) -> Result<PathBuf, Stop> {
    let target = inspect::target(path).map_err(Stop::Failed)?;
    match target.databases.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Stop::Failed(format!("{}: no outbox", path.display()))),
        several => Err(Stop::Usage(format!(
            "{} holds {} outboxes (one per routing key): give --outbox with the file that `pagerduty-event list` names",
            path.display(),
            several.len()
        ))),
    }
}

/// Opens the outbox to change it: it must be an outbox already (never created nor replaced
/// here) and nobody may be using it.
fn open(db: &Path) -> Result<Outbox, Stop> {
    ReadOnly::open(db).map_err(|e| Stop::Failed(e.to_string()))?;
    match Outbox::open(db) {
        Ok((outbox, None)) => Ok(outbox),
        Ok((_, Some(warning))) => Err(Stop::Failed(warning)),
        Err(e) if e.is_in_use() => Err(Stop::Failed(format!(
            "the outbox {} is in use by a running connector (Broker's PagerDuty output, or a pagerduty-event command); nothing changed: stop the output (or wait for the command) and try again",
            db.display()
        ))),
        Err(e) => Err(Stop::Failed(e.to_string())),
    }
}

/// What comes next for a requeued event of `db`.
fn next_step(db: &Path) -> String {
    let stem = db
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".db"))
        .filter(|n| n.starts_with("centreon-pagerduty-"));
    let dir = db.parent().unwrap_or(Path::new("."));
    match stem {
        Some(stem) if dir.join(format!("{stem}.key.json")).exists() => format!(
            "`pagerduty-event flush --outbox {}` sends it",
            dir.display()
        ),
        Some(_) => format!(
            "`pagerduty-event flush --outbox {} --routing-key-file PATH` sends it (the routing key it was queued for)",
            dir.display()
        ),
        None => "the connector sends it when Broker's PagerDuty output starts".to_string(),
    }
}

/// Runs `resend` (`discard` when `discard`).
pub(crate) fn run(p: &Which, discard: bool) -> Result<i32, Stop> {
    let ids = match (p.all, p.ids.is_empty()) {
        (true, true) => None,
        (true, false) => {
            return Err(Stop::Usage("give IDs or --all, not both".into()));
        }
        (false, true) => {
            return Err(Stop::Usage(
                "missing the IDs of the rejected events (see pagerduty-event list --rejected), or --all".into(),
            ));
        }
        (false, false) => Some(
            p.ids
                .iter()
                .map(|s| {
                    s.trim().parse::<i64>().map_err(|_| {
                        Stop::Usage(format!("expected the ID of a rejected event, got {s:?}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let db = database(&inspect::path(p.outbox.as_deref()))?;
    let mut outbox = open(&db)?;
    if discard {
        let gone = outbox
            .discard(ids.as_deref())
            .map_err(|e| Stop::Failed(e.to_string()))?;
        for (id, dedup_key, action) in &gone {
            println!("rejected event {id} ({action} {dedup_key}) discarded");
        }
        if gone.is_empty() {
            println!("no rejected event in {}", db.display());
        }
        return Ok(EXIT_OK);
    }
    let done = outbox
        .requeue(ids.as_deref())
        .map_err(|e| Stop::Failed(e.to_string()))?;
    let next = next_step(&db);
    for r in &done {
        let behind = match r.behind {
            0 => String::new(),
            n => format!(", after {n} event(s) of {} already waiting", r.dedup_key),
        };
        println!(
            "rejected event {} ({} {}) queued again as {}{behind}",
            r.rejected_id, r.action, r.dedup_key, r.id
        );
    }
    if done.is_empty() {
        println!("no rejected event in {}", db.display());
    } else {
        println!("{next}");
    }
    Ok(EXIT_OK)
}
