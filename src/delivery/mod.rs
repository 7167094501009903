//! Background delivery: a committer makes events durable in group commits, sender lanes deliver them (one `dedup_key` always in one lane, in order).
//!
//! Broker's thread only hands events over a channel and reads two counters: an event is
//! acknowledged to Broker once the committer has written it to the outbox. The committer
//! also builds the payload of a status (handed over as the status and its action), the
//! largest part of a state change's work. A commit starts
//! as soon as an event waits and the committer is idle, so an isolated event costs one
//! fsync and no wait; events that arrive during a commit share the next one, which in a
//! burst (the latest 16 events all arrived within `outbox_commit_delay`) first waits that delay
//! for more, so that a burst takes few fsyncs however fast the disk, while a slower stream is
//! committed as it comes (waiting would leave a state change pending at every moment, and
//! Broker's acknowledgement with it). The committer also applies what the lanes report
//! (delivered: deleted; rejected: moved to `rejected`; these alone wait up to
//! `outbox_commit_delay` to share a commit), merges
//! superseded pending events in a backlog only (their lane's head event has failed a
//! delivery attempt, or the routing key is rate limited: never because a thread is slow),
//! holds new events back when the outbox is full or the disk fails (so Broker keeps them),
//! releases committed events to the lanes according to `max_buffer_size`/`max_buffer_age`,
//! and writes the statistics file.
//!
//! A lane gets each row the committer just stored from memory, as stored, and reads back
//! only the others (left by an earlier run, updated since their commit). It retries its
//! head event with backoff (so a resolve never overtakes its trigger) while other lanes
//! keep flowing, until PagerDuty answers any request again: then every lane backing off
//! retries at once; a rejected event never blocks the events behind it. A 429
//! pauses every lane, since they share the routing key, and when the pause ends a single
//! request probes: another 429 pauses again (longer, at most 5 s without `Retry-After`);
//! once PagerDuty processes one, the lanes resume one more at a time with each request it
//! processes. An event answered 429 was not
//! taken by PagerDuty: it goes back to its lane, where a newer event may still merge with
//! it. Every network call happens on the lanes; stopping aborts requests in flight and
//! joins every thread.

pub mod retry;

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender as Channel, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{Config, Secret};
use crate::event::StatusEvent;
use crate::http::curl::CurlCommand;
use crate::http::send::Sender;
use crate::log::{Level, Logger};
use crate::outbox::{ObjectState, Outbox, OutboxError, Reader, Stored};
use crate::payload::{self, Action};
use crate::stats::{self, Counters};
use retry::{Jitter, Outcome};

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

/// The body of an event decided on Broker's thread.
pub enum Body {
    /// Built there (acknowledgements, templates, the command line).
    Stored(Stored),
    /// A status and the action to send for it: the committer builds its payload, most of
    /// the work of a state change, off Broker's thread (the same payload: it depends on the
    /// status and the configuration only, never on when it is built).
    Status(Box<StatusEvent>, Action),
}

/// One event decided on Broker's thread.
pub struct NewEvent {
    pub body: Body,
    /// The trigger opens an incident (none was open before it).
    pub opens: bool,
    /// The object's incident state after this event.
    pub object: ObjectState,
}

/// A new event in the committer.
struct Held {
    /// The event as stored; for a status handed over unbuilt, a placeholder with its action
    /// until [`Held::build`] (right before the commit that stores it).
    out: Stored,
    /// The status `out` is still to be built from.
    status: Option<Box<StatusEvent>>,
    opens: bool,
    object: ObjectState,
}

impl Held {
    fn new(ev: NewEvent) -> Held {
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
    fn build(&mut self, builder: &payload::Builder) {
        if let Some(st) = self.status.take() {
            self.out = builder.status(&st, self.out.action).into();
        }
    }
}

enum Msg {
    Event(u64, Box<NewEvent>),
    Delivered(i64),
    Rejected(i64, String),
    /// A failed attempt (the row stays pending): recorded for operators, in the next commit.
    Attempt(i64, String),
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
    /// Rows just committed, as stored, until their lane takes them: the lane sends them
    /// without reading them back from the database (at most [`READY_MAX`]; a row merged or
    /// updated since is dropped from here, and the lane reads the database).
    ready: HashMap<i64, Stored>,
    /// The routing key's rate limit (429).
    throttle: Throttle,
    /// Lanes (a bit each) whose head event has failed a delivery attempt (5xx, network error,
    /// timeout) and has not been accepted or rejected since: the rows behind it are held
    /// back, a backlog where newer events may merge with them.
    failing: u64,
    /// Lanes (a bit each) sleeping out a retry's backoff.
    backing_off: u64,
    /// Incremented each time PagerDuty answers a request while lanes were backing off: a
    /// backoff started before ends there (PagerDuty is back).
    recoveries: u64,
    stopping: bool,
}

/// The rate-limit state of the routing key. A 429 pauses every lane; when the pause ends, a
/// single request probes while the other lanes wait: a 429 pauses again, longer; a request
/// that PagerDuty processed (accepted or rejected) ends the episode, and the lanes resume
/// one more at a time with each further request processed, so that a window that reopens
/// slowly is not flooded. Requests already in flight when a pause starts may be answered 429
/// too: those are stale, they neither lengthen the pause nor end the episode. An episode that
/// starts right after the previous one ended (a storm) paces its probes by that episode's
/// length.
#[derive(Debug, Default)]
struct Throttle {
    /// No lane sends before this.
    paused_until: Option<Instant>,
    /// Requests allowed in flight since the latest 429: 1 (the probe), one more with each
    /// request PagerDuty processes; `None`: no limit (every lane).
    ramp: Option<usize>,
    /// Requests sent and not answered yet.
    in_flight: usize,
    /// 429s of this episode that started a pause (the pause grows with them); 0: no episode.
    strikes: u32,
    /// Incremented by each pause: an answer to a request sent before the latest pause is stale.
    epoch: u64,
    /// Start of the episode.
    since: Option<Instant>,
    /// Length of the previous episode, when it ended less than that long before this one
    /// started: how long PagerDuty is likely to take before it takes events again.
    guide: Option<Duration>,
    /// Length and end of the previous episode.
    last: Option<(Duration, Instant)>,
}

/// A lane's permission to send one request: the throttle's epoch when it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Turn(u64);

impl Throttle {
    /// The key is paused or probing: an event committed now cannot be sent right away.
    fn holds(&self, now: Instant) -> bool {
        self.strikes > 0 || self.paused_until.is_some_and(|p| p > now)
    }

    /// `Ok` when a lane may send now, else `Err` with when to look again (`None`: when woken
    /// by an answer).
    fn check(&self, now: Instant) -> Result<(), Option<Instant>> {
        if let Some(p) = self.paused_until.filter(|p| *p > now) {
            return Err(Some(p));
        }
        if self.ramp.is_some_and(|k| self.in_flight >= k) {
            return Err(None);
        }
        Ok(())
    }

    /// Like [`Throttle::check`], and takes the turn: every turn gets exactly one answer
    /// ([`Throttle::limited`], [`Throttle::processed`] or [`Throttle::failed`]).
    fn turn(&mut self, now: Instant) -> Result<Turn, Option<Instant>> {
        self.check(now)?;
        self.in_flight += 1;
        Ok(Turn(self.epoch))
    }

    fn answered(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// A 429 to the request sent on `turn`. The first one since the latest pause starts a new
    /// pause (`Retry-After`, else the backoff of this episode's strikes, or the pace of the
    /// previous episode in a storm) and returns it; a stale one only honours its `Retry-After`.
    fn limited(
        &mut self,
        turn: Turn,
        retry_after: Option<Duration>,
        unit: f64,
        now: Instant,
    ) -> Option<Duration> {
        self.answered();
        if turn.0 != self.epoch {
            if let Some(ra) = retry_after {
                let until = now + ra;
                self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
            }
            return None;
        }
        if self.strikes == 0 {
            self.since = Some(now);
            self.guide = self
                .last
                .filter(|(length, ended)| now.saturating_duration_since(*ended) <= *length)
                .map(|(length, _)| length);
        }
        self.strikes += 1;
        let pause = retry_after.unwrap_or_else(|| match self.guide {
            Some(previous) => retry::learned_pause(previous, self.strikes, unit),
            None => retry::rate_limit_pause(self.strikes, unit),
        });
        self.paused_until = Some(now + pause);
        self.ramp = Some(1);
        self.epoch += 1;
        Some(pause)
    }

    /// PagerDuty processed (accepted or rejected) the request sent on `turn`: one more lane
    /// may send; the first since the latest pause ends the episode, whose length it returns.
    fn processed(&mut self, turn: Turn, now: Instant) -> Option<Duration> {
        self.answered();
        if turn.0 != self.epoch {
            return None;
        }
        self.ramp = self.ramp.map(|k| k + 1).filter(|k| *k < LANES);
        if self.strikes == 0 {
            return None;
        }
        let length = now.saturating_duration_since(self.since.unwrap_or(now));
        self.strikes = 0;
        self.since = None;
        self.guide = None;
        self.last = Some((length, now));
        Some(length)
    }

    /// The request got no answer about the rate (5xx, network error): its lane backs off,
    /// another one may send.
    fn failed(&mut self) {
        self.answered();
    }
}

struct Shared {
    queue: Mutex<Queue>,
    /// One per lane, all used with `queue`: each lane waits on its own, so that new rows wake
    /// only the lanes they go to (not 16 threads per commit).
    wakes: Vec<Condvar>,
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
    /// Idle state with `lanes` already holding the pending ids of an earlier run.
    fn new(lanes: Vec<VecDeque<i64>>, log: Arc<Logger>, routing_key: Secret) -> Shared {
        Shared {
            queue: Mutex::new(Queue {
                buffer: Vec::new(),
                buffer_since: None,
                lanes,
                busy: HashSet::new(),
                ready: HashMap::new(),
                throttle: Throttle::default(),
                failing: 0,
                backing_off: 0,
                recoveries: 0,
                stopping: false,
            }),
            wakes: (0..LANES).map(|_| Condvar::new()).collect(),
            submitted: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            committed_signal: (Mutex::new(()), Condvar::new()),
            counters: Counters::default(),
            log,
            routing_key,
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every lane (stop, rate-limit changes).
    fn wake_all(&self) {
        self.wake_lanes(u64::MAX);
    }

    /// Wakes the lanes of the bits set in `lanes`.
    fn wake_lanes(&self, lanes: u64) {
        for (i, w) in self.wakes.iter().enumerate() {
            if lanes & (1 << i) != 0 {
                w.notify_all();
            }
        }
    }
}

// a lane is a bit of a u64 in `release` and `wake_lanes`
const _: () = assert!(LANES <= 64);

/// The delivery side of one connector. Dropping it stops and joins its threads.
pub struct Delivery {
    shared: Arc<Shared>,
    inbox: Channel<Msg>,
    transport: Transport,
    lanes: Vec<JoinHandle<()>>,
    committer: Option<JoinHandle<()>>,
    /// Events an earlier run left pending, queued first by this one.
    resumed: u64,
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
        let shared = Arc::new(Shared::new(lanes, log, cfg.routing_key.clone()));
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
            resumed: pending.len() as u64,
        };
        let committer = Committer {
            shared: Arc::clone(&d.shared),
            cfg: cfg.clone(),
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
            arrivals: VecDeque::with_capacity(BURST_EVENTS),
            batch_limit: MAX_BATCH,
        };
        d.committer = Some(
            std::thread::Builder::new()
                .name("cpd-commit".into())
                .spawn(move || committer.run())
                .map_err(spawn_err)?,
        );
        let curl = cfg.log_curl_commands.then(|| CurlCommand::new(cfg));
        for (lane, reader) in readers.into_iter().enumerate() {
            let shared = Arc::clone(&d.shared);
            let transport = d.transport.clone();
            let inbox = d.inbox.clone();
            let curl = curl.clone();
            let t = std::thread::Builder::new()
                .name(format!("cpd-lane-{lane}"))
                .spawn(move || run_lane(&shared, &transport, &reader, &inbox, lane, curl.as_ref()))
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

    /// Counts events the host answered itself without asking (statistics: seen, and
    /// answered by the script).
    pub fn answered_by_script(&self, events: u64) {
        let c = &self.shared.counters;
        c.seen.fetch_add(events, Ordering::Relaxed);
        c.answered_by_script.fetch_add(events, Ordering::Relaxed);
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

    /// Events an earlier run left pending, found in the outbox at start (however many
    /// were delivered since).
    pub fn resumed(&self) -> u64 {
        self.resumed
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
        self.shared.wake_all();
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
    /// What the payloads of statuses are built with.
    cfg: Config,
    outbox: Outbox,
    rx: Receiver<Msg>,
    /// Events received and not yet committed, in order.
    held: VecDeque<(u64, Held)>,
    /// Delivered and rejected rows to apply.
    results: Vec<Msg>,
    pending_rows: u64,
    max_events: u64,
    rejected_max: u64,
    /// The longest a commit of new events waits for more within a burst; how long lane
    /// results (deletions) wait for more to share a commit; the spacing of commit attempts
    /// while the outbox is blocked. An event that finds the committer idle never waits.
    delay: Duration,
    max_buffer_size: usize,
    max_buffer_age: Duration,
    stats_path: std::path::PathBuf,
    stats_interval: Duration,
    last_stats: Option<Instant>,
    blocked: Option<Blocked>,
    /// Since when nothing was held back and no write failed, while still `blocked`.
    clear_since: Option<Instant>,
    /// When the latest [`BURST_EVENTS`] events arrived, oldest first.
    arrivals: VecDeque<Instant>,
    /// Events taken per transaction: halved after a failed commit (a full disk may have room
    /// for a few events but not for a large batch), doubled back after each success.
    batch_limit: usize,
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
const BURST_EVENTS: usize = 16;

/// Most rows kept in [`Queue::ready`]; rows beyond are read back by their lane.
const READY_MAX: usize = 1024;

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
    fn gather(&mut self, release: &mut bool) -> bool {
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

    fn take(&mut self, m: Msg, release: &mut bool) -> bool {
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
    fn commit(&mut self) {
        // the payloads this batch may store, before anything is locked: built here rather than
        // as the events arrive, gathering stays as quick as it was (how many events share a
        // commit, and so which merge, must not depend on how long their payloads take)
        for (_, ev) in self.held.iter_mut().take(self.batch_limit) {
            ev.build(&payload::Builder::new(&self.cfg, &self.shared.log));
        }
        let mut q = self.shared.lock();
        let busy = q.busy.clone();
        let is_busy = |id: i64| busy.contains(&id);
        // the merge rule: events of a dedup_key merge only in a backlog, when its lane's head
        // event has failed a delivery attempt or the routing key is rate limited; never
        // because a lane is slow to take its rows (while PagerDuty answers, every state change
        // is sent, in order)
        let throttled = q.throttle.holds(Instant::now());
        let behind: Vec<bool> = (0..LANES)
            .map(|lane| throttled || q.failing & (1 << lane) != 0)
            .collect();
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
                    Msg::Attempt(id, error) => batch.attempt_failed(*id, error)?,
                    _ => {}
                }
            }
            let mut room = self
                .max_events
                .saturating_sub(self.pending_rows.saturating_sub(done.len() as u64));
            let mut added = Vec::new();
            // the held event each new row comes from, and rows whose body was replaced
            let mut origin = Vec::new();
            let mut updated = Vec::new();
            let mut removed = Vec::new();
            let mut merged = 0u64;
            let mut notes = Vec::new();
            let mut taken = 0usize;
            let mut last_seq = None;
            for (i, (seq, ev)) in self.held.iter().take(self.batch_limit).enumerate() {
                if room == 0 {
                    break;
                }
                let lane = lane_of(&ev.out.dedup_key);
                let ins = batch.insert(&ev.out, ev.opens, &is_busy, behind[lane])?;
                batch.object(&ev.object)?;
                if let Some(id) = ins.id {
                    added.push((id, lane));
                    origin.push((i, id));
                    room -= 1;
                }
                updated.extend(ins.updated);
                room += ins.removed.len() as u64;
                removed.extend(ins.removed);
                merged += ins.merged;
                notes.extend(ins.note.map(|n| (n, ins.merged >= 2 && ins.id.is_none())));
                taken += 1;
                last_seq = Some(*seq);
            }
            batch.commit()?;
            Ok((
                done, rejected, added, origin, updated, removed, merged, notes, taken, last_seq,
            ))
        })();
        match outcome {
            Ok((
                done,
                _rejected,
                added,
                origin,
                updated,
                removed,
                merged,
                notes,
                taken,
                last_seq,
            )) => {
                for id in &done {
                    q.busy.remove(id);
                }
                let gone: HashSet<i64> = removed.iter().copied().collect();
                Self::keep_ready(&mut self.held, &mut q, taken, &origin, &updated, &gone);
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
                let mut woken = 0;
                if q.buffer.len() >= self.max_buffer_size {
                    woken = release(&mut q);
                }
                drop(q);
                self.pending_rows = (self.pending_rows + added.len() as u64)
                    .saturating_sub(removed.len() as u64 + done.len() as u64);
                self.results.clear();
                let c = &self.shared.counters;
                c.committed.fetch_add(added.len() as u64, Ordering::Relaxed);
                c.commits.fetch_add(1, Ordering::Relaxed);
                c.merged.fetch_add(merged, Ordering::Relaxed);
                // pending before committed: outstanding() never misses an event in between
                c.pending.store(self.pending_rows, Ordering::SeqCst);
                // the acknowledgement first, then the lanes (waking 16 threads takes a while
                // on a small machine)
                if let Some(seq) = last_seq {
                    self.shared.committed.store(seq, Ordering::SeqCst);
                    let (lock, cv) = &self.shared.committed_signal;
                    drop(lock.lock().unwrap_or_else(|e| e.into_inner()));
                    cv.notify_all();
                }
                self.shared.wake_lanes(woken);
                for (n, unsent_problem) in notes {
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

/// Moves the buffered rows to their lanes; returns the lanes that got rows (a bit each).
fn release(q: &mut Queue) -> u64 {
    let buffered = std::mem::take(&mut q.buffer);
    let mut lanes = 0u64;
    for (id, lane) in buffered {
        q.lanes[lane].push_back(id);
        lanes |= 1 << lane;
    }
    q.buffer_since = None;
    lanes
}

/// Takes the next id of `lane` (marking it busy) once the lane may send, or `None` when
/// stopping. During a rate-limit pause rows stay in the queue, where newer events can still
/// merge with them.
fn next_id(shared: &Shared, lane: usize) -> Option<(i64, Option<Stored>)> {
    let mut q = shared.lock();
    loop {
        if q.stopping {
            return None;
        }
        let now = Instant::now();
        let mut wake = None;
        if !q.lanes[lane].is_empty() {
            match q.throttle.check(now) {
                Ok(()) => {
                    let id = q.lanes[lane].pop_front()?;
                    q.busy.insert(id);
                    return Some((id, q.ready.remove(&id)));
                }
                Err(w) => wake = w,
            }
        }
        q = park(shared, lane, q, wake, now);
    }
}

/// A retry's backoff: until when, unless PagerDuty answers another request first.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    until: Instant,
    /// [`Queue::recoveries`] when it started.
    recoveries: u64,
}

/// Waits until `backoff` ends (its time, or PagerDuty answering another lane's request) and a
/// turn to send (the rate limit); `None` when stopping.
fn wait_turn(shared: &Shared, lane: usize, backoff: Option<Backoff>) -> Option<Turn> {
    let mut q = shared.lock();
    loop {
        if q.stopping {
            return None;
        }
        let now = Instant::now();
        let wake = match backoff.filter(|b| b.until > now && b.recoveries == q.recoveries) {
            Some(b) => Some(b.until),
            None => match q.throttle.turn(now) {
                Ok(turn) => {
                    q.backing_off &= !(1 << lane);
                    return Some(turn);
                }
                Err(w) => w,
            },
        };
        q = park(shared, lane, q, wake, now);
    }
}

/// Sleeps until `until` (whatever the rate limit); false when stopping.
fn sleep_until(shared: &Shared, lane: usize, until: Instant) -> bool {
    let mut q = shared.lock();
    loop {
        if q.stopping {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        q = park(shared, lane, q, Some(until), now);
    }
}

/// Waits on `lane`'s condition variable until woken or `wake`.
fn park<'a>(
    shared: &'a Shared,
    lane: usize,
    q: MutexGuard<'a, Queue>,
    wake: Option<Instant>,
    now: Instant,
) -> MutexGuard<'a, Queue> {
    let cv = &shared.wakes[lane];
    match wake {
        Some(t) => {
            cv.wait_timeout(q, t.saturating_duration_since(now))
                .unwrap_or_else(|e| e.into_inner())
                .0
        }
        None => cv.wait(q).unwrap_or_else(|e| e.into_inner()),
    }
}

/// Sends the rows of `lane` in order; `curl`: each attempt is also logged as a `curl` command
/// (`log_curl_commands`).
fn run_lane(
    shared: &Shared,
    transport: &Transport,
    reader: &Reader,
    inbox: &Channel<Msg>,
    lane: usize,
    curl: Option<&CurlCommand>,
) {
    let mut jitter = Jitter::from_clock();
    'rows: while let Some((id, kept)) = next_id(shared, lane) {
        // a row committed by this run is at hand; others (left by an earlier run, updated since
        // it was committed) are read back
        let row = match kept {
            Some(out) => Some(out),
            None => loop {
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
                        if !sleep_until(shared, lane, Instant::now() + Duration::from_secs(1)) {
                            return;
                        }
                    }
                }
            },
        };
        let Some(out) = row else { continue };
        let what = format!("{} {}", out.action.as_str(), out.dedup_key);
        let mut attempts = 0u32;
        // attempts without an answer (5xx, network error, timeout): PagerDuty may have the event
        let mut failures = 0u32;
        let mut backoff = None;
        loop {
            let Some(turn) = wait_turn(shared, lane, backoff) else {
                return; // stopping: the row stays in the outbox for the next run
            };
            attempts += 1;
            if let Some(curl) = curl {
                shared
                    .log
                    .notice(&curl.line(&out.outgoing(), &shared.routing_key));
            }
            let outcome = match transport {
                Transport::Http(sender) => {
                    sender.send(&payload::encode_json(&out.body, &shared.routing_key))
                }
                Transport::LogOnly => {
                    shared.log.warning(&format!(
                        "send_data_test: would send {}",
                        payload::redacted(&out.outgoing())
                    ));
                    Outcome::Accepted
                }
            };
            if matches!(outcome, Outcome::Misdirected(_)) {
                shared.counters.misdirected.fetch_add(1, Ordering::Relaxed);
            }
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
                    processed(shared, turn, lane);
                    let _ = inbox.send(Msg::Delivered(id));
                    break;
                }
                Outcome::Rejected(reason) => {
                    shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    shared.counters.set_error(format!("{what}: {reason}"));
                    shared.log.error(&format!(
                        "PagerDuty rejected {what}; kept in the outbox's rejected table: {reason}; event: {}",
                        payload::redacted(&out.outgoing())
                    ));
                    processed(shared, turn, lane);
                    let _ = inbox.send(Msg::Rejected(id, reason));
                    break;
                }
                Outcome::RateLimited { retry_after } => {
                    shared.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                    let (pause, strikes, storm) = {
                        let mut q = shared.lock();
                        let pause = q.throttle.limited(
                            turn,
                            retry_after,
                            jitter.next_unit(),
                            Instant::now(),
                        );
                        (pause, q.throttle.strikes, q.throttle.guide.is_some())
                    };
                    shared.wake_all();
                    match pause {
                        Some(p) if strikes <= 1 => shared.log.log(
                            // a storm is announced once, not once per rate-limit window
                            if storm { Level::Info } else { Level::Warning },
                            &format!(
                                "rate limited by PagerDuty on {what}; pausing this routing key for {:.1} s, then one request probes",
                                p.as_secs_f64()
                            ),
                        ),
                        Some(p) => shared.log.info(&format!(
                            "still rate limited by PagerDuty ({what}); probing again in {:.1} s",
                            p.as_secs_f64()
                        )),
                        None => shared.log.debug(&format!(
                            "rate limited by PagerDuty on {what}, sent before the pause"
                        )),
                    }
                    if failures == 0 {
                        // PagerDuty did not take it: back to the head of the lane, where a
                        // newer event of its dedup_key can still merge with it
                        let mut q = shared.lock();
                        q.busy.remove(&id);
                        q.lanes[lane].push_front(id);
                        continue 'rows;
                    }
                    backoff = None;
                }
                Outcome::Failed(reason) | Outcome::Misdirected(reason) => {
                    failures += 1;
                    let (ramping, recoveries) = {
                        let mut q = shared.lock();
                        q.throttle.failed();
                        q.failing |= 1 << lane;
                        q.backing_off |= 1 << lane;
                        (q.throttle.ramp.is_some(), q.recoveries)
                    };
                    if ramping {
                        shared.wake_all();
                    }
                    shared.counters.retried.fetch_add(1, Ordering::Relaxed);
                    shared.counters.set_error(format!("{what}: {reason}"));
                    let _ = inbox.send(Msg::Attempt(id, reason.clone()));
                    let delay = retry::backoff(failures, jitter.next_unit());
                    shared.log.warning(&format!(
                        "sending {what} failed ({reason}); retry {failures} in {:.1} s",
                        delay.as_secs_f64()
                    ));
                    backoff = Some(Backoff {
                        until: Instant::now() + delay,
                        recoveries,
                    });
                }
            }
        }
    }
}

/// PagerDuty processed a request of `lane`: its head event is no longer failing; every lane
/// backing off after a failure retries now (PagerDuty is back: its events are not left to
/// sleep out their own backoffs), within the rate limit; after a 429, one more lane may send;
/// the first one since the latest pause ends the rate-limit episode.
fn processed(shared: &Shared, turn: Turn, lane: usize) {
    let (ramping, ended, released) = {
        let mut q = shared.lock();
        q.failing &= !(1 << lane);
        let released = std::mem::take(&mut q.backing_off);
        if released != 0 {
            q.recoveries += 1;
        }
        let ramping = q.throttle.ramp.is_some();
        let storm = q.throttle.guide.is_some();
        let ended = q
            .throttle
            .processed(turn, Instant::now())
            .map(|length| (length, storm));
        (ramping, ended, released)
    };
    if ramping {
        shared.wake_all();
    } else if released != 0 {
        shared.wake_lanes(released);
    }
    if released != 0 {
        shared.log.info(&format!(
            "PagerDuty answers again: {} lane(s) backing off after a failure retry now",
            released.count_ones()
        ));
    }
    if let Some((length, storm)) = ended {
        shared.log.log(
            if storm { Level::Info } else { Level::Warning },
            &format!(
                "PagerDuty takes events again after {:.1} s of rate limiting: the lanes resume",
                length.as_secs_f64()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ParamValue;
    use crate::event::ObjectKey;
    use crate::payload::Outgoing;
    use std::sync::atomic::Ordering::Relaxed;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A committer on a fresh outbox, without threads: the test drives it.
    fn committer(name: &str) -> (Committer, Arc<Shared>) {
        let dir = std::env::temp_dir().join(format!("cpd-delivery-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (outbox, _) = Outbox::open(&dir.join("o.db")).unwrap();
        let key = "abcdefghijklmnopqrstuvwxyz012345";
        let shared = Arc::new(Shared::new(
            (0..LANES).map(|_| VecDeque::new()).collect(),
            Arc::new(Logger::in_memory(Level::Debug)),
            Secret::new(key),
        ));
        let (_inbox, rx) = mpsc::channel();
        let params = [("pdy_routing_key".to_string(), ParamValue::Str(key.into()))];
        let c = Committer {
            shared: Arc::clone(&shared),
            cfg: Config::from_params(&params).unwrap().0,
            outbox,
            rx,
            held: VecDeque::new(),
            results: Vec::new(),
            pending_rows: 0,
            max_events: 100_000,
            rejected_max: 10,
            delay: ms(10),
            max_buffer_size: 1,
            max_buffer_age: Duration::from_secs(1),
            stats_path: dir.join("stats.json"),
            stats_interval: Duration::from_secs(5),
            last_stats: None,
            blocked: None,
            clear_since: None,
            arrivals: VecDeque::with_capacity(BURST_EVENTS),
            batch_limit: MAX_BATCH,
        };
        (c, shared)
    }

    fn event(key: &str, action: Action, opens: bool) -> Held {
        let mut body = serde_json::Map::new();
        body.insert("dedup_key".into(), key.into());
        body.insert("event_action".into(), action.as_str().into());
        Held {
            out: Outgoing {
                dedup_key: key.into(),
                action,
                summary: key.into(),
                body: body.into(),
            }
            .into(),
            status: None,
            opens,
            object: ObjectState {
                key: ObjectKey {
                    host_id: 1,
                    service_id: 1,
                },
                open_state: None,
                acknowledged: false,
                names: None,
                last: None,
            },
        }
    }

    /// The same event as Broker's thread hands it over.
    fn handed(seq: u64, key: &str, action: Action, opens: bool) -> Msg {
        let Held {
            out, opens, object, ..
        } = event(key, action, opens);
        Msg::Event(
            seq,
            Box::new(NewEvent {
                body: Body::Stored(out),
                opens,
                object,
            }),
        )
    }

    /// A status handed over unbuilt is stored with exactly the payload Broker's thread would
    /// have built, and the stored and built bodies go to the outbox alike.
    #[test]
    fn the_committer_builds_status_payloads_as_brokers_thread_would() {
        use crate::event::{Event, RawEvent, RawValue};
        let (mut c, _shared) = committer("build");
        let raw = RawEvent::new()
            .with("category", RawValue::Int(1))
            .with("element", RawValue::Int(29))
            .with("host_id", RawValue::Int(12))
            .with("service_id", RawValue::Int(34))
            .with("state", RawValue::Int(2))
            .with("state_type", RawValue::Int(1))
            .with("output", RawValue::Str("CRITICAL - disk full".into()))
            .with("perfdata", RawValue::Str("'used'=97%;80;90;0;100".into()))
            .with("last_check", RawValue::Int(1_700_000_000))
            .with("last_state_change", RawValue::Int(1_700_000_000))
            .with("host_name", RawValue::Str("srv-db".into()))
            .with("service_description", RawValue::Str("Disk".into()));
        let Some(Event::Status(st)) = Event::from_raw(&raw).unwrap() else {
            panic!("not a status");
        };
        let want: Stored = payload::status_event(&st, Action::Trigger, &c.cfg).into();
        assert!(want.body.contains("\"Metrics\""), "{}", want.body);
        let object = ObjectState {
            key: st.key,
            open_state: Some(2),
            acknowledged: false,
            names: None,
            last: None,
        };
        let msg = Msg::Event(
            1,
            Box::new(NewEvent {
                body: Body::Status(Box::new(st), Action::Trigger),
                opens: true,
                object: object.clone(),
            }),
        );
        let mut release = false;
        assert!(!c.take(msg, &mut release));
        let (seq, held) = &c.held[0];
        assert_eq!((*seq, held.opens, &held.object), (1, true, &object));
        assert!(held.status.is_some(), "built at the commit, not on arrival");
        c.commit();
        let stored = c.outbox.pending().unwrap();
        assert_eq!(stored.len(), 1);
        let reader = c.outbox.reader().unwrap();
        assert_eq!(reader.fetch(stored[0].0).unwrap(), Some(want));
    }

    /// New events wait for more only in a burst: the latest [`BURST_EVENTS`] events all
    /// arrived within the delay. Fewer, or as many spread over more than the delay (a steady
    /// stream of state changes, where waiting only kept Broker's events unacknowledged), are
    /// committed at once; a burst waits the whole delay, however short the previous commit was.
    #[test]
    fn only_a_burst_waits_for_more_events() {
        let delay = Duration::from_secs(1);
        // (events already arrived, how long ago the oldest of them came, whether the commit waits)
        for (arrived, oldest_ago, waits) in [
            (2, ms(0), false),
            (BURST_EVENTS - 1, ms(0), false),
            (BURST_EVENTS + 5, delay + ms(500), false),
            (BURST_EVENTS, ms(0), true),
            (BURST_EVENTS + 5, delay / 2, true),
        ] {
            let (mut c, _shared) =
                committer(&format!("burst-{arrived}-{}", oldest_ago.as_millis()));
            let (tx, rx) = mpsc::channel();
            c.rx = rx;
            c.delay = delay;
            let mut release = false;
            // the earlier events, committed already: only their arrival times are left
            for seq in 0..arrived as u64 - 1 {
                let m = handed(seq + 1, &format!("k{seq}"), Action::Trigger, true);
                assert!(!c.take(m, &mut release));
            }
            c.held.clear();
            let shift = |t: Instant| t.checked_sub(oldest_ago).expect("uptime");
            for t in c.arrivals.iter_mut() {
                *t = shift(*t);
            }
            tx.send(handed(arrived as u64, "now", Action::Trigger, true))
                .unwrap();
            let later = tx.clone();
            let late = std::thread::spawn(move || {
                std::thread::sleep(ms(200));
                let _ = later.send(handed(99, "late", Action::Trigger, true));
            });
            let m = c.rx.recv().unwrap();
            assert!(!c.take(m, &mut release));
            assert!(!c.gather(&mut release));
            late.join().unwrap();
            let joined = c.held.len() > 1;
            assert_eq!(
                joined, waits,
                "{arrived} events, the oldest {oldest_ago:?} ago"
            );
            drop(tx);
        }
    }

    /// A commit wakes only the lanes its rows go to: with 16 lanes, waking all of them per
    /// commit cost more CPU than the requests themselves on a 2-core machine.
    #[test]
    fn released_rows_wake_only_their_lanes() {
        let (mut c, shared) = committer("wake");
        let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        let lanes: HashSet<usize> = keys[..3].iter().map(|k| lane_of(k)).collect();
        for (seq, k) in keys[..3].iter().enumerate() {
            c.held
                .push_back((seq as u64 + 1, event(k, Action::Trigger, true)));
        }
        let mut q = shared.lock();
        assert_eq!(release(&mut q), 0, "nothing buffered, no lane to wake");
        drop(q);
        c.max_buffer_size = 1000;
        c.commit();
        let mut q = shared.lock();
        let mask = release(&mut q);
        let want: u64 = lanes.iter().map(|l| 1u64 << l).sum();
        assert_eq!(mask, want);
        for (lane, rows) in q.lanes.iter().enumerate() {
            assert_eq!(!rows.is_empty(), lanes.contains(&lane), "lane {lane}");
        }
    }

    /// A committed row reaches its lane from memory, exactly as stored; a row updated or
    /// merged away after its commit is never sent from memory.
    #[test]
    fn lanes_take_committed_rows_from_memory_unless_changed_since() {
        let (mut c, shared) = committer("ready");
        let reader = c.outbox.reader().unwrap();
        c.held.push_back((1, event("k1", Action::Trigger, true)));
        c.commit();
        let (id, kept) = next_id(&shared, lane_of("k1")).unwrap();
        assert_eq!(kept, reader.fetch(id).unwrap());
        assert!(shared.lock().ready.is_empty());
        // rate limited: rows wait in their lanes, where newer events merge with them
        shared.lock().throttle.paused_until = Some(Instant::now() + Duration::from_secs(60));
        c.held.push_back((2, event("k2", Action::Trigger, true)));
        c.held.push_back((3, event("k3", Action::Trigger, true)));
        c.commit();
        assert_eq!(shared.lock().ready.len(), 2);
        let mut critical = event("k2", Action::Trigger, false);
        critical.out.summary = "critical".into();
        c.held.push_back((4, critical));
        c.held.push_back((5, event("k3", Action::Resolve, false)));
        c.commit();
        assert_eq!(shared.counters.merged.load(Relaxed), 3);
        assert!(
            shared.lock().ready.is_empty(),
            "the update and the merge dropped both"
        );
        assert_eq!(shared.lock().lanes[lane_of("k3")].len(), 0);
        shared.lock().throttle = Throttle::default();
        let (id, kept) = next_id(&shared, lane_of("k2")).unwrap();
        assert_eq!(kept, None, "read back from the database");
        assert_eq!(reader.fetch(id).unwrap().unwrap().summary, "critical");
        // in the same commit: a row updated right after its insert is not kept either
        shared.lock().throttle.paused_until = Some(Instant::now() + Duration::from_secs(60));
        c.held.push_back((6, event("k4", Action::Trigger, true)));
        let mut newer = event("k4", Action::Trigger, false);
        newer.out.summary = "newer".into();
        c.held.push_back((7, newer));
        c.commit();
        assert!(shared.lock().ready.is_empty());
        assert!(c.held.is_empty());
    }

    /// The merge rule depends on PagerDuty's answers only, never on how fast the lanes take
    /// their rows: rows waiting in a lane (no lane thread here takes them) are no backlog.
    #[test]
    fn events_merge_only_behind_a_failure_or_under_a_rate_limit() {
        let (mut c, shared) = committer("backlog");
        let merged = || shared.counters.merged.load(Relaxed);
        // PagerDuty keeps up: a trigger and its resolve committed together are both sent
        c.held.push_back((1, event("k1", Action::Trigger, true)));
        c.held.push_back((2, event("k1", Action::Resolve, false)));
        c.commit();
        assert_eq!((c.pending_rows, merged()), (2, 0));
        // k1's lane still holds both rows (its thread is slow): a new short incident,
        // committed together or one after the other, is still sent in full and in order
        c.held.push_back((3, event("k1", Action::Trigger, true)));
        c.held.push_back((4, event("k1", Action::Resolve, false)));
        c.commit();
        c.held.push_back((5, event("k1", Action::Trigger, true)));
        c.commit();
        c.held.push_back((6, event("k1", Action::Trigger, false)));
        c.commit();
        c.held.push_back((7, event("k1", Action::Resolve, false)));
        c.commit();
        assert_eq!((c.pending_rows, merged()), (7, 0));
        let ids: Vec<i64> = shared.lock().lanes[lane_of("k1")].iter().copied().collect();
        assert_eq!(ids.len(), 7);
        let reader = c.outbox.reader().unwrap();
        let sent: Vec<Action> = ids
            .iter()
            .map(|id| reader.fetch(*id).unwrap().unwrap().action)
            .collect();
        use Action::{Resolve as R, Trigger as T};
        assert_eq!(sent, [T, R, T, R, T, T, R]);
        // the head event of k2's lane has failed a delivery attempt: events behind it merge,
        // in one commit and across commits
        shared.lock().failing |= 1 << lane_of("k2");
        c.held.push_back((8, event("k2", Action::Trigger, true)));
        c.held.push_back((9, event("k2", Action::Trigger, false)));
        c.commit();
        assert_eq!((c.pending_rows, merged()), (8, 1));
        c.held.push_back((10, event("k2", Action::Resolve, false)));
        c.commit();
        assert_eq!((c.pending_rows, merged()), (7, 3));
        // answered again: no backlog, nothing merges
        shared.lock().failing = 0;
        c.held.push_back((11, event("k2", Action::Trigger, true)));
        c.held.push_back((12, event("k2", Action::Resolve, false)));
        c.commit();
        assert_eq!((c.pending_rows, merged()), (9, 3));
        // the key is rate limited: the same pair is merged away within its commit
        shared.lock().throttle.paused_until = Some(Instant::now() + Duration::from_secs(60));
        c.held.push_back((13, event("k3", Action::Trigger, true)));
        c.held.push_back((14, event("k3", Action::Resolve, false)));
        c.commit();
        assert_eq!((c.pending_rows, merged()), (9, 5));
        assert_eq!(shared.committed.load(Ordering::SeqCst), 14);
        assert_eq!(shared.counters.commits.load(Relaxed), 9);
    }

    /// Once PagerDuty answers a request again, every lane backing off after a failure retries
    /// at once instead of sleeping out its backoff (here an hour), still within the rate
    /// limit; a failure after that answer starts a backoff that it does not end.
    #[test]
    fn an_answer_ends_every_backoff_at_once() {
        let (_c, shared) = committer("release");
        let hour = Duration::from_secs(3600);
        // lanes 1 and 2 failed and back off for an hour; lane 3 is failing too
        let (tx, rx) = mpsc::channel();
        let mut waiting = Vec::new();
        for lane in [1usize, 2] {
            let backoff = {
                let mut q = shared.lock();
                q.failing |= 1 << lane;
                q.backing_off |= 1 << lane;
                Backoff {
                    until: Instant::now() + hour,
                    recoveries: q.recoveries,
                }
            };
            let (shared, tx) = (Arc::clone(&shared), tx.clone());
            waiting.push(std::thread::spawn(move || {
                let turn = wait_turn(&shared, lane, Some(backoff));
                tx.send((lane, turn.is_some())).unwrap();
            }));
        }
        shared.lock().failing |= 1 << 3;
        assert!(rx.recv_timeout(ms(200)).is_err(), "still backing off");
        // lane 0's request is answered (accepted or rejected): lanes 1 and 2 retry now
        let turn = shared.lock().throttle.turn(Instant::now()).unwrap();
        processed(&shared, turn, 0);
        let mut released: Vec<(usize, bool)> = (0..2)
            .map(|_| rx.recv_timeout(Duration::from_secs(60)).expect("released"))
            .collect();
        released.sort();
        assert_eq!(released, [(1, true), (2, true)]);
        for t in waiting {
            t.join().unwrap();
        }
        {
            let q = shared.lock();
            assert_eq!((q.backing_off, q.recoveries), (0, 1));
            // their head events have not been answered yet: still a backlog there
            assert_eq!(q.failing, (1 << 1) | (1 << 2) | (1 << 3));
        }
        // a backoff that starts after the answer runs its course; the answer to lane 1's
        // request ends lane 1's failing state only
        let later = Backoff {
            until: Instant::now() + hour,
            recoveries: shared.lock().recoveries,
        };
        let turn = shared.lock().throttle.turn(Instant::now()).unwrap();
        processed(&shared, turn, 1);
        assert_eq!(shared.lock().failing, (1 << 2) | (1 << 3));
        assert_eq!(shared.lock().recoveries, 1, "no lane was backing off");
        let (tx, rx) = mpsc::channel();
        let waiter = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || tx.send(wait_turn(&shared, 4, Some(later))).unwrap())
        };
        assert!(rx.recv_timeout(ms(200)).is_err(), "backing off");
        shared.lock().stopping = true;
        shared.wake_all();
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), None);
        waiter.join().unwrap();
    }

    #[test]
    fn after_a_429_one_request_probes_then_the_lanes_ramp_up() {
        let t0 = Instant::now();
        let mut t = Throttle::default();
        // four lanes send at once; the first answer is a 429
        let turns: Vec<Turn> = (0..4).map(|_| t.turn(t0).unwrap()).collect();
        let pause = t.limited(turns[0], None, 0.5, t0).unwrap();
        assert_eq!(pause, ms(500));
        // the other requests were sent before the pause: their 429s do not lengthen it, and
        // their acceptance does not end it
        assert_eq!(t.limited(turns[1], None, 0.5, t0 + ms(10)), None);
        assert_eq!(t.paused_until, Some(t0 + pause));
        assert_eq!(t.processed(turns[2], t0 + ms(20)), None);
        t.failed();
        assert_eq!(t.in_flight, 0);
        assert!(t.holds(t0 + ms(20)));
        // nobody sends during the pause; after it, exactly one request probes
        assert_eq!(t.check(t0 + ms(100)), Err(Some(t0 + pause)));
        let after = t0 + pause;
        let probe = t.turn(after).unwrap();
        assert_eq!(t.check(after), Err(None));
        // the probe is answered 429: a longer pause, then again a single probe
        let second = t.limited(probe, None, 0.5, after).unwrap();
        assert_eq!(second, retry::rate_limit_pause(2, 0.5));
        assert!(second > pause);
        let later = after + second;
        // a probe without an answer (5xx, network error) lets another request probe
        t.turn(later).unwrap();
        t.failed();
        let probe = t.turn(later).unwrap();
        assert_eq!(t.turn(later), Err(None));
        // the probe goes through: the episode ends, and each request PagerDuty processes
        // lets one more lane send, up to all of them
        let end = later + ms(5);
        assert_eq!(t.processed(probe, end), Some(end - t0));
        assert!(!t.holds(end));
        let mut sent = vec![t.turn(end).unwrap(), t.turn(end).unwrap()];
        assert_eq!(t.turn(end), Err(None));
        for k in 3..LANES {
            let turn = sent.pop().unwrap();
            assert_eq!(t.processed(turn, end), None);
            assert_eq!(t.ramp, Some(k));
            sent.push(t.turn(end).unwrap());
            sent.push(t.turn(end).unwrap());
            assert_eq!(t.turn(end), Err(None));
        }
        let turn = sent.pop().unwrap();
        t.processed(turn, end);
        assert_eq!(t.ramp, None);
        sent.push(t.turn(end).unwrap());
        // a 429 right after: a storm, paced by the length of the previous episode; the other
        // requests in flight are stale
        let next = t.limited(sent[0], None, 0.5, end + ms(1)).unwrap();
        assert_eq!(next, retry::learned_pause(end - t0, 1, 0.5));
        for turn in sent.drain(1..) {
            assert_eq!(t.limited(turn, None, 0.5, end + ms(1)), None);
        }
        assert_eq!(t.in_flight, 0);
        // Retry-After is honoured as given
        let probe = t.turn(end + ms(1) + next).unwrap();
        let told = t.limited(probe, Some(Duration::from_secs(7)), 0.5, end + next);
        assert_eq!(told, Some(Duration::from_secs(7)));
    }
}
