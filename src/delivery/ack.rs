//! Broker's acknowledgement as the host sees it: whether every event handed over is committed, and the longest stretch it was not.
//!
//! Broker's acknowledgement is a watermark (`true` acknowledges every event handed over so
//! far): while one state change waits for its commit, every
//! event behind it stays in Broker's queue. How long that lasts is the figure an operator
//! compares with Broker's `unacknowledged_events`; it is measured here, where the host asks,
//! at the moments it asks (a stretch ends at the first question that finds everything
//! committed), and kept as the statistics file's `ack_wait_max_ms`. Only a change between
//! acknowledged and not reads the clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Since when the host's questions have found events not yet committed.
pub(super) struct AckWait {
    base: Instant,
    /// Nanoseconds after `base` when the current stretch started, plus one; 0: none.
    since: AtomicU64,
}

impl AckWait {
    pub(super) fn new() -> AckWait {
        AckWait {
            base: Instant::now(),
            since: AtomicU64::new(0),
        }
    }

    /// Records the answer to one of the host's questions (`acknowledged`: everything handed
    /// over is committed). Returns the stretch this answer ends, in ms, if it ends one.
    pub(super) fn observe(&self, acknowledged: bool) -> Option<u64> {
        let since = self.since.load(Ordering::Relaxed);
        match (acknowledged, since) {
            (false, 0) => {
                self.since.store(self.now() + 1, Ordering::Relaxed);
                None
            }
            (true, s) if s != 0 => {
                self.since.store(0, Ordering::Relaxed);
                Some(self.now().saturating_sub(s - 1) / 1_000_000)
            }
            _ => None,
        }
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_stretch_runs_from_the_first_unacknowledged_answer_to_the_next_acknowledged_one() {
        let w = AckWait::new();
        assert_eq!(w.observe(true), None, "nothing was waiting");
        assert_eq!(w.observe(false), None);
        std::thread::sleep(Duration::from_millis(30));
        // later questions that still find events uncommitted do not restart it
        assert_eq!(w.observe(false), None);
        let ms = w.observe(true).expect("the stretch ends");
        assert!((30..60_000).contains(&ms), "{ms} ms");
        assert_eq!(w.observe(true), None, "only once");
        assert_eq!(w.observe(false), None);
        assert!(w.observe(true).is_some(), "a new stretch ends");
    }
}
