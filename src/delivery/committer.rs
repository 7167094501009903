//! The committer's thread: gathers events and lane results into group commits, acknowledges Broker, holds events back while the outbox is blocked, releases rows to the lanes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use super::commit::Held;
use super::queue::{Msg, Shared, release};
use crate::outbox::Outbox;
use crate::payload::PayloadOptions;
use crate::stats;

/// Why new events are held back instead of committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Blocked {
    Full,
    Disk,
}

pub(super) struct Committer {
    pub(super) shared: Arc<Shared>,
    /// What the payloads of statuses are built with.
    pub(super) cfg: PayloadOptions,
    pub(super) outbox: Outbox,
    pub(super) rx: Receiver<Msg>,
    /// Events received and not yet committed, in order.
    pub(super) held: VecDeque<(u64, Held)>,
    /// Delivered and rejected rows to apply.
    pub(super) results: Vec<Msg>,
    pub(super) pending_rows: u64,
    pub(super) max_events: u64,
    pub(super) rejected_max: u64,
    /// The longest a commit of new events waits for more within a burst; how long lane
    /// results (deletions) wait for more to share a commit; the spacing of commit attempts
    /// while the outbox is blocked. An event that finds the committer idle never waits.
    pub(super) delay: Duration,
    pub(super) max_buffer_size: usize,
    pub(super) max_buffer_age: Duration,
    pub(super) stats_path: std::path::PathBuf,
    pub(super) stats_interval: Duration,
    pub(super) last_stats: Option<Instant>,
    pub(super) blocked: Option<Blocked>,
    /// Since when nothing was held back and no write failed, while still `blocked`.
    pub(super) clear_since: Option<Instant>,
    /// When the latest [`BURST_EVENTS`] events arrived, oldest first.
    pub(super) arrivals: VecDeque<Instant>,
    /// When the oldest event that Broker's acknowledgement waits for arrived: events have been
    /// handed over and not all committed since. None once a commit leaves nothing uncommitted.
    pub(super) unacknowledged_since: Option<Instant>,
    /// Events taken per transaction: halved after a failed commit (a full disk may have room
    /// for a few events but not for a large batch), doubled back after each success.
    pub(super) batch_limit: usize,
}

/// How long a blocked outbox must work normally before its recovery is announced.
const RECOVERY_QUIET: Duration = Duration::from_secs(3);

/// Events that must have arrived within one commit delay for a commit to wait for more (a
/// burst): 1,600 state changes per second at the default 10 ms, so that waiting gathers at
/// least as many per commit. Below that rate every wait would only keep a state change pending
/// (Broker's acknowledgement waits for all of them) while gathering a few events: with Broker
/// handing over 600 state changes per second and two events per commit as the trigger, the
/// acknowledgement was held back so long that Broker retained up to 10,000 events (its whole
/// memory queue) instead of at most about 500.
pub(super) const BURST_EVENTS: usize = 16;

/// Most rows kept in [`Queue::ready`]; rows beyond are read back by their lane.
pub(super) const READY_MAX: usize = 1024;

/// Largest number of messages applied in one transaction.
pub(super) const MAX_BATCH: usize = 10_000;

impl Committer {
    pub(super) fn run(mut self) {
        let mut stopping = false;
        while !stopping {
            let mut release = false;
            let timeout = self.next_timeout();
            match self.rx.recv_timeout(timeout) {
                Ok(m) => {
                    stopping |= self.take(m, &mut release);
                    stopping |= !stopping && self.gather(&mut release);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => stopping = true,
            }
            if !self.held.is_empty() || !self.results.is_empty() {
                self.commit();
            }
            self.check_recovered();
            self.release_due(release || stopping);
            self.write_stats(stopping);
        }
    }

    /// Takes the messages already waiting, then decides when to commit.
    ///
    /// New events: at once, unless in a burst ([`Committer::burst_until`]): then they wait
    /// for more to join until `delay` after the oldest event Broker's acknowledgement waits
    /// for, so that a burst groups into few commits however fast the disk (waiting only as
    /// long as the previous commit took made the grouping depend on how long the committer
    /// itself worked: with a fast disk and fast commits, 10,000 events took 2,000 commits),
    /// while an isolated event, or a stream slower than a burst, waits for nothing but its own
    /// commit, and a stream that keeps Broker waiting is not held longer by waiting again at
    /// every commit. Only lane results, or events held back
    /// while the outbox is blocked: up to `delay`, so that deletions share a commit and a
    /// failing disk is not retried per event. True when stopping.
    pub(super) fn gather(&mut self, release: &mut bool) -> bool {
        let start = Instant::now();
        while self.held.len() + self.results.len() < MAX_BATCH {
            let m = match self.rx.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Disconnected) => return true,
                Err(TryRecvError::Empty) => {
                    let until = if self.held.is_empty() {
                        (!self.results.is_empty()).then_some(start + self.delay)
                    } else if self.blocked.is_some() {
                        Some(start + self.delay)
                    } else {
                        // a trickle (a few events per commit) gains nothing by waiting: each
                        // wait only keeps Broker's events unacknowledged longer
                        self.burst_until(start)
                    };
                    let left = until.map_or(Duration::ZERO, |u| {
                        u.saturating_duration_since(Instant::now())
                    });
                    if left.is_zero() {
                        break;
                    }
                    match self.rx.recv_timeout(left) {
                        Ok(m) => m,
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return true,
                    }
                }
            };
            if self.take(m, release) {
                return true;
            }
        }
        false
    }

    /// How long to wait for the next message: until the buffer is due, a retry of held
    /// events, or the next statistics file.
    fn next_timeout(&self) -> Duration {
        let mut t = self.stats_interval;
        if !self.held.is_empty() || self.blocked.is_some() {
            t = t.min(Duration::from_millis(500));
        }
        let q = self.shared.lock();
        if let Some(since) = q.buffer_since {
            t = t.min((since + self.max_buffer_age).saturating_duration_since(Instant::now()));
        }
        t.max(Duration::from_millis(1))
    }

    /// Until when the commit of the events gathered since `start` waits for more: in a burst
    /// (the latest [`BURST_EVENTS`] events all arrived within `delay`), `delay` after the
    /// oldest event Broker's acknowledgement waits for (a watermark: it waits for every event
    /// handed over), else not at all. Once a stream has kept Broker waiting for `delay`, each
    /// commit starts at once: the acknowledgement comes at the first commit that leaves
    /// nothing behind, and waiting at every commit made that moment rarer (in a real cbd fed
    /// as fast as it goes, Broker's acknowledgement waited up to 39-109 ms per run that way,
    /// 29-104 this way, 17-53 with no burst wait at all: bench/HISTORY.md section 22).
    fn burst_until(&self, start: Instant) -> Option<Instant> {
        let oldest = *self.arrivals.front()?;
        (self.arrivals.len() >= BURST_EVENTS && oldest.elapsed() <= self.delay)
            .then(|| self.unacknowledged_since.unwrap_or(start).min(start) + self.delay)
    }

    pub(super) fn take(&mut self, m: Msg, release: &mut bool) -> bool {
        match m {
            Msg::Event(seq, ev) => {
                if self.arrivals.len() >= BURST_EVENTS {
                    self.arrivals.pop_front();
                }
                let now = Instant::now();
                self.arrivals.push_back(now);
                self.unacknowledged_since.get_or_insert(now);
                self.held.push_back((seq, Held::new(*ev)));
            }
            Msg::Delivered(_) | Msg::Rejected(..) | Msg::Attempt(..) => self.results.push(m),
            Msg::Release => *release = true,
            Msg::Stop => return true,
        }
        false
    }

    /// Announces the end of a blocked episode once nothing was held back and no write
    /// failed for [`RECOVERY_QUIET`]: a nearly full disk that lets a few commits through
    /// between failures is one episode, logged once.
    fn check_recovered(&mut self) {
        if self.blocked.is_none() {
            return;
        }
        if !self.held.is_empty() {
            self.clear_since = None;
            return;
        }
        let since = *self.clear_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= RECOVERY_QUIET {
            self.set_blocked(None, "");
        }
    }

    /// Logs the start of a blocked episode once, not once per event; `why` explains a disk error.
    pub(super) fn set_blocked(&mut self, now: Option<Blocked>, why: &str) {
        if now.is_some() {
            self.clear_since = None;
        }
        if now == self.blocked {
            return;
        }
        match &now {
            Some(Blocked::Full) => log::error!(
                "outbox full ({} pending events, outbox_max_events): no longer acknowledging; Broker keeps new events in its retention until PagerDuty catches up",
                self.pending_rows
            ),
            Some(Blocked::Disk) => log::error!(
                "cannot write the outbox {}: {why}; no longer acknowledging, Broker keeps the events; retrying",
                self.outbox.path().display()
            ),
            None => log::warn!(
                "outbox writable and below outbox_max_events again: acknowledging events"
            ),
        }
        self.blocked = now;
    }

    fn release_due(&self, now: bool) {
        let mut q = self.shared.lock();
        let due = q
            .buffer_since
            .is_some_and(|since| since.elapsed() >= self.max_buffer_age);
        if !q.buffer.is_empty() && (now || due) {
            let woken = release(&mut q);
            drop(q);
            self.shared.wake_lanes(woken);
        }
    }

    fn write_stats(&mut self, force: bool) {
        if !force
            && self
                .last_stats
                .is_some_and(|t| t.elapsed() < self.stats_interval)
        {
            return;
        }
        self.last_stats = Some(Instant::now());
        let oldest = self.outbox.oldest_pending().ok().flatten();
        let snapshot =
            self.shared
                .counters
                .snapshot(&self.shared.routing_key, self.held.len() as u64, oldest);
        if let Err(e) = stats::write_atomically(&self.stats_path, &snapshot) {
            log::debug!(
                "cannot write the statistics file {}: {e}",
                self.stats_path.display()
            );
        }
    }
}
