//! `pagerduty-event flush`: delivers the events queued in the outbox directory, routing key by routing key, and says what is left and why.

use super::args;
use super::options::{self, DELIVERY, NETWORK, ROUTING};
use super::spool::{self, Place, Session};
use super::{EXIT_FAILED, EXIT_OK, Stop, key};
use crate::outbox::Outbox;

/// Default `--wait`, seconds.
pub const WAIT: u64 = 30;

fn help() -> String {
    format!(
        "\
Usage: pagerduty-event flush [options]

Delivers the events that `pandora`, `send` and `replay` queued because PagerDuty could
not be reached, oldest first, for every routing key in the outbox directory (or only
the key given with --routing-key-file or --routing-key). Each key is sent to the
endpoint it was queued for, unless --url is given. Run it from a timer (see the README).

{}
{}
{}
Exit status: 0 nothing left queued, 1 events remain (the reason is printed), 2 bad usage.
",
        options::ROUTING_HELP,
        options::NETWORK_HELP,
        options::delivery_help(WAIT)
    )
}

/// Runs `flush`.
pub fn run(argv: &[String]) -> Result<i32, Stop> {
    let opts = options::merge(&[ROUTING, NETWORK, DELIVERY]);
    let Some(p) = args::parse_options(argv, &opts, help)? else {
        return Ok(EXIT_OK);
    };
    let wait = options::wait(&p, WAIT)?;
    let dir = spool::directory(p.value("outbox"))?;
    let mut targets = Vec::new();
    let mut unknown = Vec::new();
    match key::from_options(&p, false)? {
        Some(k) => {
            let place = Place::of(&dir, &k);
            let url = spool::read_target(&place.target).ok().and_then(|(_, u)| u);
            targets.push((k, url));
        }
        None => {
            for (place, has_target, has_db) in spool::listing(&dir)? {
                if has_target {
                    match spool::read_target(&place.target) {
                        Ok(t) => targets.push(t),
                        Err(e) => {
                            eprintln!("warning: {}: {e}", place.target.display());
                            unknown.push(place);
                        }
                    }
                } else if has_db {
                    unknown.push(place);
                }
            }
        }
    }
    let mut left = 0u64;
    let mut delivered = 0u64;
    for (k, url) in &targets {
        let params = options::network_params(&p, url.as_deref());
        let mut session = Session::open(&dir, k, params, wait, p.flag("verbose"))?;
        session.deliver_earlier();
        let o = session.close();
        delivered += o.earlier_delivered;
        left += o.queued;
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
    }
    for place in &unknown {
        let waiting = pending(place);
        if waiting > 0 {
            left += waiting;
            eprintln!(
                "{}: {waiting} queued event(s) for a routing key this directory does not hold; deliver them with `pagerduty-event flush --routing-key-file PATH`",
                place.db.display()
            );
        }
    }
    if targets.is_empty() && left == 0 {
        println!("nothing queued in {}", dir.display());
    } else if left == 0 {
        println!("{delivered} event(s) delivered; nothing left queued");
    }
    Ok(if left > 0 { EXIT_FAILED } else { EXIT_OK })
}

/// Events waiting in an outbox whose routing key is unknown (0 when it cannot be opened now).
fn pending(place: &Place) -> u64 {
    Outbox::open(&place.db)
        .ok()
        .and_then(|(outbox, _)| outbox.pending_count().ok())
        .unwrap_or(0)
}
