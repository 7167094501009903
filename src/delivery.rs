//! Background delivery: a committer makes events durable in group commits, sender lanes deliver them (one `dedup_key` always in one lane, in order).
//!
//! Broker's thread only hands events over a channel and reads two counters: an event is
//! acknowledged to Broker once the committer has written it to the outbox (one fsync for
//! many events, at most `outbox_commit_delay` later). The committer also applies what the
//! lanes report (delivered: deleted; rejected: moved to `rejected`), merges superseded
//! pending events, holds new events back when the outbox is full or the disk fails (so
//! Broker keeps them), releases committed events to the lanes according to
//! `max_buffer_size`/`max_buffer_age`, and writes the statistics file.
//!
//! A lane retries its head event with backoff (so a resolve never overtakes its trigger)
//! while other lanes keep flowing; a 429 pauses every lane, since they share the routing
//! key; a rejected event never blocks the events behind it. Every network call happens on
//! the lanes; stopping aborts requests in flight and joins every thread.

use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender as Channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{Config, Secret};
use crate::log::Logger;
use crate::outbox::{ObjectState, Outbox, OutboxError, Reader};
use crate::payload::{self, Outgoing};
use crate::retry::{self, Jitter, Outcome};
use crate::send::Sender;
use crate::stats::{self, Counters};

/// How many requests may be in flight at once (one per lane).
pub const LANES: usize = 16;

/// Where encoded events go.
#[derive(Clone)]
pub enum Transport {
    /// POST to the Events API.
    Http(Sender),
    /// `send_data_test=1`: log the (redacted) body instead of sending it.
    LogOnly,
}

/// One event decided on Broker's thread.
pub struct NewEvent {
    pub out: Outgoing,
    /// The trigger opens an incident (none was open before it).
    pub opens: bool,
    /// The object's incident state after this event.
    pub object: ObjectState,
}

enum Msg {
    Event(u64, Box<NewEvent>),
    Delivered(i64),
    Rejected(i64, String),
    Release,
    Stop,
}

struct Queue {
    /// Committed ids not yet released to the lanes: `(id, lane)`.
    buffer: Vec<(i64, usize)>,
    buffer_since: Option<Instant>,
    lanes: Vec<VecDeque<i64>>,
    /// Ids taken by a lane: being sent, or sent and awaiting deletion. Never merged.
    busy: HashSet<i64>,
    paused_until: Option<Instant>,
    stopping: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Sequence number of the last event handed over by Broker's thread.
    submitted: AtomicU64,
    /// Sequence number up to which every event is durably stored (or merged away).
    committed: AtomicU64,
    committed_signal: (Mutex<()>, Condvar),
    counters: Counters,
    log: Arc<Logger>,
    routing_key: Secret,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The delivery side of one connector. Dropping it stops and joins its threads.
pub struct Delivery {
    shared: Arc<Shared>,
    inbox: Channel<Msg>,
    transport: Transport,
    lanes: Vec<JoinHandle<()>>,
    committer: Option<JoinHandle<()>>,
}

impl Delivery {
    /// Starts the committer on `outbox` and the lanes; pending events of an earlier run are
    /// queued first, in their original order.
    pub fn start(
        cfg: &Config,
        outbox: Outbox,
        log: Arc<Logger>,
        transport: Transport,
    ) -> Result<Delivery, OutboxError> {
        let pending = outbox.pending()?;
        let mut lanes: Vec<VecDeque<i64>> = (0..LANES).map(|_| VecDeque::new()).collect();
        for (id, key) in &pending {
            lanes[lane_of(key)].push_back(*id);
        }
        if !pending.is_empty() {
            log.warning(&format!(
                "{} event(s) left pending by an earlier run are sent first",
                pending.len()
            ));
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                buffer: Vec::new(),
                buffer_since: None,
                lanes,
                busy: HashSet::new(),
                paused_until: None,
                stopping: false,
            }),
            wake: Condvar::new(),
            submitted: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            committed_signal: (Mutex::new(()), Condvar::new()),
            counters: Counters::default(),
            log,
            routing_key: cfg.routing_key.clone(),
        });
        shared
            .counters
            .pending
            .store(pending.len() as u64, Ordering::Relaxed);
        let (inbox, rx) = mpsc::channel();
        let mut readers = Vec::new();
        for _ in 0..LANES {
            readers.push(outbox.reader()?);
        }
        let spawn_err = |e: std::io::Error| OutboxError(format!("cannot start threads: {e}"));
        let mut d = Delivery {
            shared,
            inbox,
            transport,
            lanes: Vec::new(),
            committer: None,
        };
        let committer = Committer {
            shared: Arc::clone(&d.shared),
            outbox,
            rx,
            held: VecDeque::new(),
            results: Vec::new(),
            pending_rows: pending.len() as u64,
            max_events: cfg.outbox_max_events,
            rejected_max: cfg.rejected_max_events,
            delay: cfg.outbox_commit_delay,
            max_buffer_size: cfg.max_buffer_size.max(1),
            max_buffer_age: cfg.max_buffer_age,
            stats_path: cfg.stats_path.clone(),
            stats_interval: cfg.stats_interval,
            last_stats: None,
            blocked: None,
            clear_since: None,
            batch_limit: MAX_BATCH,
        };
        d.committer = Some(
            std::thread::Builder::new()
                .name("cpd-commit".into())
                .spawn(move || committer.run())
                .map_err(spawn_err)?,
        );
        for (lane, reader) in readers.into_iter().enumerate() {
            let shared = Arc::clone(&d.shared);
            let transport = d.transport.clone();
            let inbox = d.inbox.clone();
            let t = std::thread::Builder::new()
                .name(format!("cpd-lane-{lane}"))
                .spawn(move || run_lane(&shared, &transport, &reader, &inbox, lane))
                .map_err(spawn_err)?;
            d.lanes.push(t);
        }
        Ok(d)
    }

    /// Hands one event to the committer (Broker's thread: no I/O).
    pub fn push(&self, ev: NewEvent) {
        let seq = self.shared.submitted.fetch_add(1, Ordering::SeqCst) + 1;
        if self.inbox.send(Msg::Event(seq, Box::new(ev))).is_err() {
            self.shared
                .log
                .error("the committer thread is gone; events are no longer acknowledged");
        }
    }

    /// Counts an event Broker handed over (statistics).
    pub fn seen(&self) {
        self.shared.counters.seen.fetch_add(1, Ordering::Relaxed);
    }

    /// True when every event handed over is durably stored.
    pub fn all_committed(&self) -> bool {
        self.shared.committed.load(Ordering::SeqCst) >= self.shared.submitted.load(Ordering::SeqCst)
    }

    /// Waits at most `timeout` for every handed-over event to be durably stored.
    pub fn wait_committed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &self.shared.committed_signal;
        let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !self.all_committed() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = cv
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Releases buffered events to the lanes now (Broker is idle: `flush()`).
    pub fn release(&self) {
        let _ = self.inbox.send(Msg::Release);
    }

    /// Events handed over and not yet delivered or rejected (committed or not).
    pub fn outstanding(&self) -> u64 {
        let uncommitted = self
            .shared
            .submitted
            .load(Ordering::SeqCst)
            .saturating_sub(self.shared.committed.load(Ordering::SeqCst));
        uncommitted + self.shared.counters.pending.load(Ordering::SeqCst)
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Stops the lanes (aborting requests in flight), lets the committer write what it
    /// holds, and joins every thread. Events not delivered stay in the outbox.
    pub fn stop(&mut self) {
        {
            let mut q = self.shared.lock();
            q.stopping = true;
        }
        self.shared.wake.notify_all();
        if let Transport::Http(sender) = &self.transport {
            sender.abort();
        }
        for t in self.lanes.drain(..) {
            let _ = t.join();
        }
        let _ = self.inbox.send(Msg::Stop);
        if let Some(t) = self.committer.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lane_of(dedup_key: &str) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dedup_key.hash(&mut h);
    (h.finish() % LANES as u64) as usize
}

/// Why new events are held back instead of committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocked {
    Full,
    Disk,
}

struct Committer {
    shared: Arc<Shared>,
    outbox: Outbox,
    rx: Receiver<Msg>,
    /// Events received and not yet committed, in order.
    held: VecDeque<(u64, Box<NewEvent>)>,
    /// Delivered and rejected rows to apply.
    results: Vec<Msg>,
    pending_rows: u64,
    max_events: u64,
    rejected_max: u64,
    delay: Duration,
    max_buffer_size: usize,
    max_buffer_age: Duration,
    stats_path: std::path::PathBuf,
    stats_interval: Duration,
    last_stats: Option<Instant>,
    blocked: Option<Blocked>,
    /// Since when nothing was held back and no write failed, while still `blocked`.
    clear_since: Option<Instant>,
    /// Events taken per transaction: halved after a failed commit (a full disk may have room
    /// for a few events but not for a large batch), doubled back after each success.
    batch_limit: usize,
}

/// How long a blocked outbox must work normally before its recovery is announced.
const RECOVERY_QUIET: Duration = Duration::from_secs(3);

/// Largest number of messages applied in one transaction.
const MAX_BATCH: usize = 10_000;

impl Committer {
    fn run(mut self) {
        let mut stopping = false;
        while !stopping {
            let mut release = false;
            let timeout = self.next_timeout();
            match self.rx.recv_timeout(timeout) {
                Ok(m) => {
                    stopping |= self.take(m, &mut release);
                    // group commit: wait a little for more events
                    let until = Instant::now() + self.delay;
                    while self.held.len() + self.results.len() < MAX_BATCH {
                        let left = until.saturating_duration_since(Instant::now());
                        let next = if left.is_zero() {
                            self.rx.try_recv().map_err(|_| RecvTimeoutError::Timeout)
                        } else {
                            self.rx.recv_timeout(left)
                        };
                        match next {
                            Ok(m) => stopping |= self.take(m, &mut release),
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => {
                                stopping = true;
                                break;
                            }
                        }
                    }
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

    fn take(&mut self, m: Msg, release: &mut bool) -> bool {
        match m {
            Msg::Event(seq, ev) => self.held.push_back((seq, ev)),
            Msg::Delivered(_) | Msg::Rejected(..) => self.results.push(m),
            Msg::Release => *release = true,
            Msg::Stop => return true,
        }
        false
    }

    /// One transaction: results first (they free room and are never merged), then as many
    /// held events as the outbox has room for. Memory changes only once the commit succeeded.
    fn commit(&mut self) {
        let mut q = self.shared.lock();
        let busy = q.busy.clone();
        let is_busy = |id: i64| busy.contains(&id);
        let outcome = (|| -> Result<_, OutboxError> {
            let mut batch = self.outbox.batch()?;
            let mut done = Vec::new();
            let mut rejected = 0u64;
            for m in &self.results {
                match m {
                    Msg::Delivered(id) => {
                        batch.delivered(*id)?;
                        done.push(*id);
                    }
                    Msg::Rejected(id, reason) => {
                        batch.rejected(*id, reason, self.rejected_max)?;
                        done.push(*id);
                        rejected += 1;
                    }
                    _ => {}
                }
            }
            let mut room = self
                .max_events
                .saturating_sub(self.pending_rows.saturating_sub(done.len() as u64));
            let mut added = Vec::new();
            let mut removed = Vec::new();
            let mut merged = 0u64;
            let mut notes = Vec::new();
            let mut taken = 0usize;
            let mut last_seq = None;
            for (seq, ev) in self.held.iter().take(self.batch_limit) {
                if room == 0 {
                    break;
                }
                let ins = batch.insert(&ev.out, ev.opens, &is_busy)?;
                batch.object(&ev.object)?;
                if let Some(id) = ins.id {
                    added.push((id, lane_of(&ev.out.dedup_key)));
                    room -= 1;
                }
                room += ins.removed.len() as u64;
                removed.extend(ins.removed);
                merged += ins.merged;
                notes.extend(ins.note.map(|n| (n, ins.merged >= 2 && ins.id.is_none())));
                taken += 1;
                last_seq = Some(*seq);
            }
            batch.commit()?;
            Ok((
                done, rejected, added, removed, merged, notes, taken, last_seq,
            ))
        })();
        match outcome {
            Ok((done, _rejected, added, removed, merged, notes, taken, last_seq)) => {
                for id in &done {
                    q.busy.remove(id);
                }
                let gone: HashSet<i64> = removed.iter().copied().collect();
                if !gone.is_empty() {
                    q.buffer.retain(|(id, _)| !gone.contains(id));
                    for lane in q.lanes.iter_mut() {
                        lane.retain(|id| !gone.contains(id));
                    }
                }
                let fresh: Vec<(i64, usize)> = added
                    .iter()
                    .copied()
                    .filter(|(id, _)| !gone.contains(id))
                    .collect();
                if !fresh.is_empty() && q.buffer.is_empty() {
                    q.buffer_since = Some(Instant::now());
                }
                q.buffer.extend(fresh.iter().copied());
                if q.buffer.len() >= self.max_buffer_size {
                    release(&mut q);
                }
                drop(q);
                self.shared.wake.notify_all();
                self.pending_rows = (self.pending_rows + added.len() as u64)
                    .saturating_sub(removed.len() as u64 + done.len() as u64);
                self.results.clear();
                self.held.drain(..taken);
                let c = &self.shared.counters;
                c.committed.fetch_add(added.len() as u64, Ordering::Relaxed);
                c.commits.fetch_add(1, Ordering::Relaxed);
                c.merged.fetch_add(merged, Ordering::Relaxed);
                c.pending.store(self.pending_rows, Ordering::SeqCst);
                for (n, unsent_problem) in notes {
                    if unsent_problem {
                        self.shared.log.warning(&n);
                    } else {
                        self.shared.log.info(&n);
                    }
                }
                if let Some(seq) = last_seq {
                    self.shared.committed.store(seq, Ordering::SeqCst);
                    let (lock, cv) = &self.shared.committed_signal;
                    drop(lock.lock().unwrap_or_else(|e| e.into_inner()));
                    cv.notify_all();
                }
                self.batch_limit = (self.batch_limit * 2).min(MAX_BATCH);
                if !self.held.is_empty() && self.pending_rows >= self.max_events {
                    self.set_blocked(Some(Blocked::Full), "");
                }
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
            release(&mut q);
            drop(q);
            self.shared.wake.notify_all();
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

fn release(q: &mut Queue) {
    let buffered = std::mem::take(&mut q.buffer);
    for (id, lane) in buffered {
        q.lanes[lane].push_back(id);
    }
    q.buffer_since = None;
}

/// Takes the next id of `lane` (marking it busy), or `None` when stopping.
fn next_id(shared: &Shared, lane: usize) -> Option<i64> {
    let mut q = shared.lock();
    loop {
        if q.stopping {
            return None;
        }
        if let Some(id) = q.lanes[lane].pop_front() {
            q.busy.insert(id);
            return Some(id);
        }
        q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner());
    }
}

/// Sleeps until `until` (or the end of a rate-limit pause); false when stopping.
fn wait(shared: &Shared, until: Option<Instant>) -> bool {
    let mut q = shared.lock();
    loop {
        if q.stopping {
            return false;
        }
        let now = Instant::now();
        let target = match (
            q.paused_until.filter(|p| *p > now),
            until.filter(|u| *u > now),
        ) {
            (None, None) => return true,
            (Some(p), Some(u)) => p.max(u),
            (Some(t), None) | (None, Some(t)) => t,
        };
        q = shared
            .wake
            .wait_timeout(q, target - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

fn run_lane(
    shared: &Shared,
    transport: &Transport,
    reader: &Reader,
    inbox: &Channel<Msg>,
    lane: usize,
) {
    let mut jitter = Jitter::from_clock();
    while let Some(id) = next_id(shared, lane) {
        let row = loop {
            match reader.fetch(id) {
                Ok(Some(row)) => break Some(row),
                Ok(None) => {
                    let _ = inbox.send(Msg::Delivered(id));
                    break None;
                }
                Err(e) if e.is_unreadable_row() => {
                    shared.log.error(&format!("{e}; moved to rejected"));
                    let _ = inbox.send(Msg::Rejected(id, e.0));
                    break None;
                }
                // a transient database error (busy, I/O): try again, never drop the event
                Err(e) => {
                    shared
                        .log
                        .warning(&format!("cannot read outbox row {id}: {e}; retrying"));
                    if !wait(shared, Some(Instant::now() + Duration::from_secs(1))) {
                        return;
                    }
                }
            }
        };
        let Some(row) = row else { continue };
        let out = row.outgoing();
        let what = format!("{} {}", out.action.as_str(), out.dedup_key);
        let mut attempts = 0u32;
        let mut not_before = None;
        loop {
            if !wait(shared, not_before) {
                return; // stopping: the row stays in the outbox for the next run
            }
            attempts += 1;
            let outcome = match transport {
                Transport::Http(sender) => sender.send(&payload::encode(&out, &shared.routing_key)),
                Transport::LogOnly => {
                    shared.log.warning(&format!(
                        "send_data_test: would send {}",
                        payload::redacted(&out)
                    ));
                    Outcome::Accepted
                }
            };
            if shared.lock().stopping
                && !matches!(outcome, Outcome::Accepted | Outcome::Rejected(_))
            {
                return;
            }
            match outcome {
                Outcome::Accepted => {
                    shared.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    shared.log.info(&format!(
                        "delivered {what} (attempt {attempts}): {}",
                        out.summary
                    ));
                    let _ = inbox.send(Msg::Delivered(id));
                    break;
                }
                Outcome::Rejected(reason) => {
                    shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    shared.counters.set_error(format!("{what}: {reason}"));
                    shared.log.error(&format!(
                        "PagerDuty rejected {what}; kept in the outbox's rejected table: {reason}; event: {}",
                        payload::redacted(&out)
                    ));
                    let _ = inbox.send(Msg::Rejected(id, reason));
                    break;
                }
                Outcome::RateLimited { retry_after } => {
                    shared.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                    let pause =
                        retry_after.unwrap_or_else(|| retry::backoff(attempts, jitter.next_unit()));
                    shared.log.warning(&format!(
                        "rate limited by PagerDuty on {what}; pausing this routing key for {:.1} s",
                        pause.as_secs_f64()
                    ));
                    let mut q = shared.lock();
                    let until = Instant::now() + pause;
                    q.paused_until = Some(q.paused_until.map_or(until, |p| p.max(until)));
                }
                Outcome::Failed(reason) => {
                    shared.counters.retried.fetch_add(1, Ordering::Relaxed);
                    shared.counters.set_error(format!("{what}: {reason}"));
                    let delay = retry::backoff(attempts, jitter.next_unit());
                    shared.log.warning(&format!(
                        "sending {what} failed ({reason}); retry {attempts} in {:.1} s",
                        delay.as_secs_f64()
                    ));
                    not_before = Some(Instant::now() + delay);
                }
            }
        }
    }
}
