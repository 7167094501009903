//! `pagerduty-event flush`: delivers the events queued in the outbox directory, routing key by routing key, and says what is left and why.

use std::path::Path;
use std::time::Duration;

use super::key::{self, Key};
use super::options::Route;
use super::spool::{self, Place, Session};
use super::{EXIT_FAILED, EXIT_OK, Stop};
use crate::outbox::Outbox;

/// Default `--wait`, seconds.
pub(crate) const WAIT: u64 = 30;

/// Deliver the events queued in the outbox
///
/// Delivers the events that `pandora`, `send` and `replay` queued because PagerDuty could
/// not be reached, oldest first, for every routing key in the outbox directory (or only the
/// key given with --routing-key-file or --routing-key). Each key is sent to the endpoint it
/// was queued for, unless --url is given. Run it from a timer (see the README).
///
/// Without --outbox (or PAGERDUTY_EVENT_OUTBOX), it delivers the shared outbox directory
/// /var/lib/pagerduty-event and this user's own, those that exist; a directory given must
/// exist.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 nothing left queued, 1 events remain (the reason is printed) or an outbox,
its routing key or a directory could not be read (each is named), 2 bad usage."
)]
pub(crate) struct Args {
    #[command(flatten)]
    route: Route,
}

/// Runs `flush`.
pub(crate) fn run(p: &Args) -> Result<i32, Stop> {
    let wait = p.route.delivery.wait(WAIT)?;
    let dirs = spool::flush_directories(p.route.delivery.outbox.as_deref())?;
    let key = key::from_options(&p.route.routing, false)?;
    let mut total = Totals::default();
    if dirs.is_empty() {
        println!(
            "nothing queued: {} does not exist (nor this user's own outbox directory)",
            spool::SYSTEM_DIR
        );
    }
    for dir in &dirs {
        flush_directory(p, dir, key.as_ref(), wait, &mut total);
    }
    if total.unreadable > 0 {
        eprintln!(
            "pagerduty-event flush: {} outbox(es) or directories could not be read (above): their events, if any, are still queued",
            total.unreadable
        );
    } else if total.left == 0 && !dirs.is_empty() {
        println!(
            "{} event(s) delivered; nothing left queued",
            total.delivered
        );
    }
    Ok(if total.left > 0 || total.unreadable > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// What `flush` did across its directories.
#[derive(Default)]
struct Totals {
    delivered: u64,
    /// Events still queued.
    left: u64,
    /// Directories, key files and outboxes that could not be read or opened.
    unreadable: u64,
}

/// Delivers what one outbox directory holds (only `key`'s outbox when given); every
/// directory, key file or outbox that cannot be read is reported and counted.
fn flush_directory(p: &Args, dir: &Path, key: Option<&Key>, wait: Duration, total: &mut Totals) {
    let unreadable_before = total.unreadable;
    let Outboxes { targets, unknown } = match key {
        Some(k) => {
            let place = Place::of(dir, k);
            let url = spool::read_target(&place.target).ok().and_then(|(_, u)| u);
            Outboxes {
                targets: vec![(k.clone(), url)],
                unknown: Vec::new(),
            }
        }
        None => match outboxes(dir, total) {
            Some(found) => found,
            None => return,
        },
    };
    let mut left = 0;
    for (k, url) in &targets {
        left += flush_key(p, dir, k, url.as_deref(), wait, total);
    }
    for place in &unknown {
        left += report_unknown(dir, place, total);
    }
    if targets.is_empty() && left == 0 && total.unreadable == unreadable_before {
        println!("nothing queued in {}", dir.display());
    }
    total.left += left;
}

/// The outboxes of one directory.
struct Outboxes {
    /// The routing keys it holds, each with the endpoint its events were queued for.
    targets: Vec<(Key, Option<String>)>,
    /// Outboxes whose routing key it does not hold or cannot read.
    unknown: Vec<Place>,
}

/// The outboxes of `dir`; `None` when the directory cannot be read (reported and counted).
fn outboxes(dir: &Path, total: &mut Totals) -> Option<Outboxes> {
    let listing = match spool::listing(dir) {
        Ok(l) => l,
        Err(Stop::Usage(m) | Stop::Failed(m)) => {
            eprintln!("{m}");
            total.unreadable += 1;
            return None;
        }
    };
    let mut targets = Vec::new();
    let mut unknown = Vec::new();
    for (place, has_target, has_db) in listing {
        if has_target {
            match spool::read_target(&place.target) {
                Ok(t) => targets.push(t),
                Err(e) => {
                    eprintln!(
                        "{}: cannot read this outbox's routing key: {e}",
                        place.target.display()
                    );
                    total.unreadable += 1;
                    if has_db {
                        unknown.push(place);
                    }
                }
            }
        } else if has_db {
            unknown.push(place);
        }
    }
    Some(Outboxes { targets, unknown })
}

/// Delivers the outbox of routing key `k` (to `url` when it was queued for one) and prints
/// what became of it. Returns the events still queued.
fn flush_key(
    p: &Args,
    dir: &Path,
    k: &Key,
    url: Option<&str>,
    wait: Duration,
    total: &mut Totals,
) -> u64 {
    let params = p.route.network.params(url);
    let mut session = match Session::open(dir, k, params, wait, p.route.delivery.verbose) {
        Ok(s) => s,
        Err(Stop::Usage(m) | Stop::Failed(m)) => {
            eprintln!("routing key {}: {m}", k.secret.masked());
            total.unreadable += 1;
            return 0;
        }
    };
    let masked = k.secret.masked();
    session.show_progress(format!(
        "flush {}",
        &masked[masked.len().saturating_sub(8)..]
    ));
    session.wait_out_rate_limits();
    session.deliver_earlier();
    let o = session.close();
    total.delivered += o.earlier_delivered;
    let mut line = format!(
        "routing key {}: {} delivered",
        k.secret.masked(),
        o.earlier_delivered
    );
    if o.earlier_rejected > 0 {
        line.push_str(&format!(
            ", {} rejected by PagerDuty (kept in the outbox's rejected table)",
            o.earlier_rejected
        ));
    }
    if o.queued > 0 {
        line.push_str(&format!(
            ", {} still queued ({})",
            o.queued,
            o.reason
                .as_deref()
                .unwrap_or("no answer from PagerDuty in time")
        ));
    }
    println!("{line}");
    o.queued
}

/// Says what waits in an outbox whose routing key the directory does not hold. Returns the
/// events waiting there.
fn report_unknown(dir: &Path, place: &Place, total: &mut Totals) -> u64 {
    match pending(dir, place) {
        Ok(0) => 0,
        Ok(waiting) => {
            eprintln!(
                "{}: {waiting} queued event(s) for a routing key this directory does not hold; deliver them with `pagerduty-event flush --routing-key-file PATH`",
                place.db.display()
            );
            waiting
        }
        Err(e) => {
            eprintln!("{}: cannot read this outbox: {e}", place.db.display());
            total.unreadable += 1;
            0
        }
    }
}

/// Events waiting in an outbox whose routing key is unknown.
fn pending(dir: &Path, place: &Place) -> Result<u64, String> {
    let text = |e: Stop| match e {
        Stop::Usage(m) | Stop::Failed(m) => m,
    };
    place.prepare(dir).map_err(text)?;
    let (outbox, _) = Outbox::open(&place.db).map_err(|e| e.to_string())?;
    outbox.pending_count().map_err(|e| e.to_string())
}
