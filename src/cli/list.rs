//! `pagerduty-event list`: the events waiting in an outbox and those PagerDuty rejected, with their age, attempts and last error or PagerDuty's reason, read-only.

use std::path::Path;

use super::inspect::{self, age, since};
use super::{EXIT_FAILED, EXIT_OK, Stop, spool};
use crate::outbox::ReadOnly;

/// Default `--limit`.
const LIMIT: u64 = 100;
/// Longest summary shown.
const SUMMARY_MAX: usize = 40;

/// The events waiting in the outbox and those PagerDuty rejected (age, attempts, last error
/// or PagerDuty's reason)
///
/// Lists, without changing anything (a running connector is not disturbed), the events
/// waiting for PagerDuty, oldest first, with their failed attempts and last error, and the
/// events PagerDuty rejected, with its reason. A rejected event is sent again with
/// `pagerduty-event resend`, or forgotten with `pagerduty-event discard`, by its ID.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 listed, 1 the outbox cannot be read, 2 bad usage.")]
pub(crate) struct Args {
    /// The connector's outbox_path (Broker's output), or a pagerduty-event outbox directory
    /// (default: $PAGERDUTY_EVENT_OUTBOX, else the directory send and flush use)
    #[arg(long, value_name = "PATH")]
    outbox: Option<String>,
    /// Only the events waiting
    #[arg(long)]
    pending: bool,
    /// Only the rejected events
    #[arg(long)]
    rejected: bool,
    /// At most N events waiting shown (the count is always given)
    #[arg(long, value_name = "N", default_value_t = LIMIT)]
    limit: u64,
}

/// The columns both lists share; each adds a last one of its own.
const HEAD: [&str; 6] = ["ID", "AGE", "ACTION", "DEDUP KEY", "ATTEMPTS", "SUMMARY"];

/// One event's row: the columns of [`HEAD`] (`at`: when it was queued or rejected, Unix ms),
/// then `last`.
fn event_row(
    id: i64,
    action: &str,
    dedup_key: &str,
    summary: &str,
    at: i64,
    attempts: String,
    last: String,
) -> Vec<String> {
    vec![
        id.to_string(),
        age(since(at)),
        action.to_string(),
        cell(dedup_key, 60),
        attempts,
        cell(summary, SUMMARY_MAX),
        last,
    ]
}

/// A table under [`HEAD`] and the column `last`: columns as wide as their widest cell, the
/// last one as it is.
fn table(last: &str, rows: &[Vec<String>]) -> String {
    let head: Vec<&str> = HEAD.iter().copied().chain([last]).collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(head);
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// One cell: no control character, at most `max` characters.
fn cell(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() > max {
        format!("{}...", clean.chars().take(max).collect::<String>())
    } else {
        clean
    }
}

/// Prints what one outbox holds.
fn show(db: &Path, title: &str, pending: bool, rejected: bool, limit: u64) -> Result<(), String> {
    let o = ReadOnly::open(db).map_err(|e| e.to_string())?;
    let (rows, total) = o
        .pending(if pending { limit } else { 0 })
        .map_err(|e| e.to_string())?;
    let refused = o.rejected().map_err(|e| e.to_string())?;
    println!(
        "{title}: {total} waiting for PagerDuty, {} rejected",
        refused.len()
    );
    if pending && total > 0 {
        println!("\nWaiting for PagerDuty, oldest first:");
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let last = match (&r.last_error, r.last_attempt) {
                    (Some(e), Some(at)) => format!("{} ({} ago)", cell(e, 200), age(since(at))),
                    (Some(e), None) => cell(e, 200),
                    _ => "-".into(),
                };
                let attempts = r.attempts.to_string();
                event_row(
                    r.id,
                    &r.action,
                    &r.dedup_key,
                    &r.summary,
                    r.created,
                    attempts,
                    last,
                )
            })
            .collect();
        print!("{}", table("LAST ERROR", &cells));
        if total > rows.len() as u64 {
            println!("... and {} more (--limit)", total - rows.len() as u64);
        }
    }
    if rejected && !refused.is_empty() {
        println!("\nRejected by PagerDuty, oldest first:");
        let cells: Vec<Vec<String>> = refused
            .iter()
            .map(|r| {
                let attempts = r.attempts.map_or("-".into(), |n| n.to_string());
                let reason = cell(&r.reason, 300);
                event_row(
                    r.id,
                    &r.action,
                    &r.dedup_key,
                    &r.summary,
                    r.at,
                    attempts,
                    reason,
                )
            })
            .collect();
        print!("{}", table("PAGERDUTY'S REASON", &cells));
    }
    Ok(())
}

/// A database's title: its path, and the masked routing key of a command-line outbox.
fn title(db: &Path) -> String {
    let key = db
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".db"))
        .map(|stem| db.with_file_name(format!("{stem}.key.json")))
        .and_then(|p| spool::read_target(&p).ok());
    match key {
        Some((k, _)) => format!("{} (routing key {})", db.display(), k.secret.masked()),
        None => db.display().to_string(),
    }
}

/// Runs `list`.
pub(crate) fn run(p: &Args) -> Result<i32, Stop> {
    let (pending, rejected) = match (p.pending, p.rejected) {
        (false, false) => (true, true),
        both => both,
    };
    let limit = p.limit;
    let path = inspect::path(p.outbox.as_deref());
    let target = inspect::target(&path).map_err(Stop::Failed)?;
    if target.databases.is_empty() {
        println!("{}: no outbox, nothing waiting", path.display());
    }
    let mut code = EXIT_OK;
    for (i, db) in target.databases.iter().enumerate() {
        if i > 0 {
            println!();
        }
        if let Err(e) = show(db, &title(db), pending, rejected, limit) {
            eprintln!("pagerduty-event list: {e}");
            code = EXIT_FAILED;
        }
    }
    Ok(code)
}
