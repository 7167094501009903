//! The committer: group commits of new events, merges, lane results, Broker's acknowledgement.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use super::queue::{Msg, Queue, Shared, release};
use super::{Body, LANES, NewEvent, lane_of};
use crate::config::Config;
use crate::event::StatusEvent;
use crate::outbox::{ObjectState, Outbox, OutboxError, Stored};
use crate::payload;
use crate::stats;

/// A new event in the committer.
pub(super) struct Held {
    /// The event as stored; for a status handed over unbuilt, a placeholder with its action
    /// until [`Held::build`] (right before the commit that stores it).
    pub(super) out: Stored,
    /// The status `out` is still to be built from.
    pub(super) status: Option<Box<StatusEvent>>,
    pub(super) opens: bool,
    pub(super) object: ObjectState,
}

impl Held {
    pub(super) fn new(ev: NewEvent) -> Held {
        let NewEvent {
            body,
            opens,
            object,
        } = ev;
        let (out, status) = match body {
            Body::Stored(out) => (out, None),
            Body::Status(st, action) => (
                Stored {
                    dedup_key: String::new(),
                    action,
                    summary: String::new(),
                    body: String::new(),
                },
                Some(st),
            ),
        };
        Held {
            out,
            status,
            opens,
            object,
        }
    }

    /// Builds the payload of a status handed over unbuilt (once; the committer's thread,
    /// outside any lock: the same payload Broker's thread would have built, as it depends on
    /// the status and the configuration only).
    fn build(&mut self, cfg: &Config) {
        if let Some(st) = self.status.take() {
            self.out = payload::status_event(&st, self.out.action, cfg).into();
        }
    }
}

/// Why new events are held back instead of committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Blocked {
    Full,
    Disk,
}

pub(super) struct Committer {
    pub(super) shared: Arc<Shared>,
    /// What the payloads of statuses are built with.
    pub(super) cfg: Config,
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
    /// Events taken per transaction: halved after a failed commit (a full disk may have room
    /// for a few events but not for a large batch), doubled back after each success.
    pub(super) batch_limit: usize,
}

/// What one transaction wrote, applied to memory once it is committed.
#[derive(Debug, Default)]
struct Written {
    /// Rows delivered or rejected (no longer pending).
    done: Vec<i64>,
    /// New rows and their lanes.
    added: Vec<(i64, usize)>,
    /// The held event each new row comes from: (index in `held`, row id).
    origin: Vec<(usize, i64)>,
    /// Rows whose body was replaced by a newer event.
    updated: Vec<i64>,
    /// Rows merged away.
    removed: Vec<i64>,
    /// Events merged.
    merged: u64,
    /// The merges' log lines, each with whether it is a warning (a problem never sent merged
    /// away).
    notes: Vec<(String, bool)>,
    /// Held events the transaction took.
    taken: usize,
    /// Sequence number of the last of them.
    last_seq: Option<u64>,
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

    /// Moves the `taken` events just committed out of `held`, keeping the new rows (`origin`:
    /// index in `held`, row id) in [`Queue::ready`] for their lanes, unless merged away or
    /// updated in the same commit. Rows `updated` or `gone` are dropped from it: their lane
    /// reads the database.
    fn keep_ready(
        held: &mut VecDeque<(u64, Held)>,
        q: &mut Queue,
        taken: usize,
        origin: &[(usize, i64)],
        updated: &[i64],
        gone: &HashSet<i64>,
    ) {
        // a set: a burst under a backlog updates thousands of rows in one commit
        let changed: HashSet<i64> = updated.iter().chain(gone).copied().collect();
        for id in &changed {
            q.ready.remove(id);
        }
        let mut origin = origin.iter().peekable();
        for (i, (_, ev)) in held.drain(..taken).enumerate() {
            let Some(&(_, id)) = origin.next_if(|(at, _)| *at == i) else {
                continue;
            };
            if q.ready.len() < READY_MAX && !changed.contains(&id) {
                q.ready.insert(id, ev.out);
            }
        }
    }

    /// Takes the messages already waiting, then decides when to commit.
    ///
    /// New events: at once, unless in a burst ([`Committer::burst_until`]): then they wait
    /// `delay` for more to join, so that a burst groups into few commits however fast the disk
    /// (waiting only as long as the previous commit took made the grouping depend on how long
    /// the committer itself worked: with a fast disk and fast commits, 10,000 events took
    /// 2,000 commits), while an isolated event, or a stream slower than a burst, waits for
    /// nothing but its own commit. Only lane results, or events held back
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

    /// Until when the commit of the events gathered since `start` waits for more: `delay`
    /// after `start` in a burst (the latest [`BURST_EVENTS`] events all arrived within `delay`),
    /// else not at all.
    fn burst_until(&self, start: Instant) -> Option<Instant> {
        let oldest = *self.arrivals.front()?;
        (self.arrivals.len() >= BURST_EVENTS && oldest.elapsed() <= self.delay)
            .then_some(start + self.delay)
    }

    pub(super) fn take(&mut self, m: Msg, release: &mut bool) -> bool {
        match m {
            Msg::Event(seq, ev) => {
                if self.arrivals.len() >= BURST_EVENTS {
                    self.arrivals.pop_front();
                }
                self.arrivals.push_back(Instant::now());
                self.held.push_back((seq, Held::new(*ev)));
            }
            Msg::Delivered(_) | Msg::Rejected(..) | Msg::Attempt(..) => self.results.push(m),
            Msg::Release => *release = true,
            Msg::Stop => return true,
        }
        false
    }

    /// One transaction: results first (they free room and are never merged), then as many
    /// held events as the outbox has room for. Memory changes only once the commit succeeded.
    pub(super) fn commit(&mut self) {
        // the payloads this batch may store, before anything is locked: built here rather than
        // as the events arrive, gathering stays as quick as it was (how many events share a
        // commit, and so which merge, must not depend on how long their payloads take)
        for (_, ev) in self.held.iter_mut().take(self.batch_limit) {
            ev.build(&self.cfg);
        }
        let shared = Arc::clone(&self.shared);
        let mut q = shared.lock();
        let busy = q.busy.clone();
        // the merge rule: events of a dedup_key merge only in a backlog, when its lane's head
        // event has failed a delivery attempt or the routing key is rate limited; never
        // because a lane is slow to take its rows (while PagerDuty answers, every state change
        // is sent, in order)
        let throttled = q.throttle.holds(Instant::now());
        let behind: Vec<bool> = (0..LANES)
            .map(|lane| throttled || q.failing & (1 << lane) != 0)
            .collect();
        match self.write(&busy, &behind) {
            Ok(written) => {
                let woken = self.requeue(&mut q, &written);
                drop(q);
                self.committed(written, woken);
            }
            Err(e) => {
                drop(q);
                // give back the WAL's space; this fails too while the disk is still full
                let _ = self.outbox.checkpoint();
                self.batch_limit = (self.batch_limit / 2).max(1);
                self.shared.counters.set_error(format!("outbox: {}", e.0));
                self.set_blocked(Some(Blocked::Disk), &e.0);
            }
        }
    }

    /// Writes the lane results and the held events (up to the outbox's room) in one
    /// transaction; `busy` rows are never merged, events of a lane `behind` merge.
    fn write(&mut self, busy: &HashSet<i64>, behind: &[bool]) -> Result<Written, OutboxError> {
        let is_busy = |id: i64| busy.contains(&id);
        let mut batch = self.outbox.batch()?;
        let mut w = Written::default();
        for m in &self.results {
            match m {
                Msg::Delivered(id) => {
                    batch.delivered(*id)?;
                    w.done.push(*id);
                }
                Msg::Rejected(id, reason) => {
                    batch.rejected(*id, reason, self.rejected_max)?;
                    w.done.push(*id);
                }
                Msg::Attempt(id, error) => batch.attempt_failed(*id, error)?,
                _ => {}
            }
        }
        let mut room = self
            .max_events
            .saturating_sub(self.pending_rows.saturating_sub(w.done.len() as u64));
        for (i, (seq, ev)) in self.held.iter().take(self.batch_limit).enumerate() {
            if room == 0 {
                break;
            }
            let lane = lane_of(&ev.out.dedup_key);
            let ins = batch.insert(&ev.out, ev.opens, &is_busy, behind[lane])?;
            batch.object(&ev.object)?;
            if let Some(id) = ins.id {
                w.added.push((id, lane));
                w.origin.push((i, id));
                room -= 1;
            }
            w.updated.extend(ins.updated);
            room += ins.removed.len() as u64;
            w.removed.extend(ins.removed);
            w.merged += ins.merged;
            w.notes
                .extend(ins.note.map(|n| (n, ins.merged >= 2 && ins.id.is_none())));
            w.taken += 1;
            w.last_seq = Some(*seq);
        }
        batch.commit()?;
        Ok(w)
    }

    /// After a commit, in memory: rows delivered or rejected are no longer busy, merged rows
    /// leave the queue, new rows join the buffer (released to their lanes once it is full).
    /// Returns the lanes to wake (a bit each).
    fn requeue(&mut self, q: &mut Queue, w: &Written) -> u64 {
        for id in &w.done {
            q.busy.remove(id);
        }
        let gone: HashSet<i64> = w.removed.iter().copied().collect();
        Self::keep_ready(&mut self.held, q, w.taken, &w.origin, &w.updated, &gone);
        if !gone.is_empty() {
            q.buffer.retain(|(id, _)| !gone.contains(id));
            for lane in q.lanes.iter_mut() {
                lane.retain(|id| !gone.contains(id));
            }
        }
        let fresh: Vec<(i64, usize)> = w
            .added
            .iter()
            .copied()
            .filter(|(id, _)| !gone.contains(id))
            .collect();
        if !fresh.is_empty() && q.buffer.is_empty() {
            q.buffer_since = Some(Instant::now());
        }
        q.buffer.extend(fresh.iter().copied());
        if q.buffer.len() >= self.max_buffer_size {
            release(q)
        } else {
            0
        }
    }

    /// After a commit, outside the lock: counters, Broker's acknowledgement, then the lanes
    /// `woken`, the merge notes, and whether the outbox is now full.
    fn committed(&mut self, w: Written, woken: u64) {
        self.pending_rows = (self.pending_rows + w.added.len() as u64)
            .saturating_sub(w.removed.len() as u64 + w.done.len() as u64);
        self.results.clear();
        let c = &self.shared.counters;
        c.committed
            .fetch_add(w.added.len() as u64, Ordering::Relaxed);
        c.commits.fetch_add(1, Ordering::Relaxed);
        c.merged.fetch_add(w.merged, Ordering::Relaxed);
        // pending before committed: outstanding() never misses an event in between
        c.pending.store(self.pending_rows, Ordering::SeqCst);
        // the acknowledgement first, then the lanes (waking 16 threads takes a while on a
        // small machine)
        if let Some(seq) = w.last_seq {
            self.shared.committed.store(seq, Ordering::SeqCst);
            let (lock, cv) = &self.shared.committed_signal;
            drop(lock.lock().unwrap_or_else(|e| e.into_inner()));
            cv.notify_all();
        }
        self.shared.wake_lanes(woken);
        for (n, unsent_problem) in w.notes {
            if unsent_problem {
                self.shared.log.warning(&n);
            } else {
                self.shared.log.info(&n);
            }
        }
        self.batch_limit = (self.batch_limit * 2).min(MAX_BATCH);
        if !self.held.is_empty() && self.pending_rows >= self.max_events {
            self.set_blocked(Some(Blocked::Full), "");
        }
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
    fn set_blocked(&mut self, now: Option<Blocked>, why: &str) {
        if now.is_some() {
            self.clear_since = None;
        }
        if now == self.blocked {
            return;
        }
        let log = &self.shared.log;
        match &now {
            Some(Blocked::Full) => log.error(&format!(
                "outbox full ({} pending events, outbox_max_events): no longer acknowledging; Broker keeps new events in its retention until PagerDuty catches up",
                self.pending_rows
            )),
            Some(Blocked::Disk) => log.error(&format!(
                "cannot write the outbox {}: {why}; no longer acknowledging, Broker keeps the events; retrying",
                self.outbox.path().display()
            )),
            None => log.warning("outbox writable and below outbox_max_events again: acknowledging events"),
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
            self.shared.log.debug(&format!(
                "cannot write the statistics file {}: {e}",
                self.stats_path.display()
            ));
        }
    }
}
