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

mod ack;
mod commit;
mod committer;
mod lane;
pub mod options;
mod priority;
mod queue;
pub(crate) mod retry;
mod throttle;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender as Channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::decision::Action;
use crate::decision::ObjectState;
use crate::event::StatusEvent;
use crate::http::send::Sender;
use crate::log::Sink;
use crate::outbox::{Outbox, OutboxError, Stored};
use crate::stats::Counters;
use ack::AckWait;
use committer::{BURST_EVENTS, Committer, MAX_BATCH};
use lane::run_lane;
use queue::{Msg, Shared};

/// How many requests may be in flight at once (one per lane).
pub const LANES: usize = 16;

/// Where encoded events go.
#[derive(Clone)]
pub(crate) enum Transport {
    /// POST to the Events API.
    Http(Sender),
    /// `send_data_test=1`: log the (redacted) body instead of sending it.
    LogOnly,
}

/// The body of an event decided on Broker's thread.
pub(crate) enum Body {
    /// Built there (acknowledgements, templates, the command line).
    Stored(Stored),
    /// A status and the action to send for it: the committer builds its payload, most of
    /// the work of a state change, off Broker's thread (the same payload: it depends on the
    /// status and the configuration only, never on when it is built).
    Status(Box<StatusEvent>, Action),
}

/// One event decided on Broker's thread.
pub(crate) struct NewEvent {
    pub(crate) body: Body,
    /// The trigger opens an incident (none was open before it).
    pub(crate) opens: bool,
    /// The object's incident state after this event.
    pub(crate) object: ObjectState,
}

/// The delivery side of one connector. Dropping it stops and joins its threads.
pub(crate) struct Delivery {
    shared: Arc<Shared>,
    ack: AckWait,
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
    pub(crate) fn start(
        cfg: &options::Setup<'_>,
        outbox: Outbox,
        log: Arc<Sink>,
        transport: Transport,
    ) -> Result<Delivery, OutboxError> {
        let pending = outbox.pending()?;
        let mut lanes: Vec<VecDeque<i64>> = (0..LANES).map(|_| VecDeque::new()).collect();
        for (id, key) in &pending {
            lanes[lane_of(key)].push_back(*id);
        }
        if !pending.is_empty() {
            log::warn!(
                "{} event(s) left pending by an earlier run are sent first",
                pending.len()
            );
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
        let spawn_err = OutboxError::Threads;
        let mut d = Delivery {
            shared,
            ack: AckWait::new(),
            inbox,
            transport,
            lanes: Vec::new(),
            committer: None,
            resumed: pending.len() as u64,
        };
        let committer = Committer {
            shared: Arc::clone(&d.shared),
            cfg: cfg.payload.clone(),
            outbox,
            rx,
            held: VecDeque::new(),
            results: Vec::new(),
            pending_rows: pending.len() as u64,
            max_events: cfg.outbox.max_events,
            rejected_max: cfg.outbox.rejected_max_events,
            delay: cfg.outbox.commit_delay,
            max_buffer_size: cfg.delivery.max_buffer_size.max(1),
            max_buffer_age: cfg.delivery.max_buffer_age,
            stats_path: cfg.stats.path.clone(),
            stats_interval: cfg.stats.interval,
            last_stats: None,
            blocked: None,
            clear_since: None,
            arrivals: VecDeque::with_capacity(BURST_EVENTS),
            unacknowledged_since: None,
            batch_limit: MAX_BATCH,
        };
        d.committer = Some(
            std::thread::Builder::new()
                .name("cpd-commit".into())
                .spawn(move || {
                    // the committer keeps the default policy: Broker's acknowledgement waits
                    // for its commits (priority.rs)
                    let _log = committer.shared.log.enter();
                    committer.run()
                })
                .map_err(spawn_err)?,
        );
        let curl = cfg.http.curl_command();
        for (lane, reader) in readers.into_iter().enumerate() {
            let shared = Arc::clone(&d.shared);
            let transport = d.transport.clone();
            let inbox = d.inbox.clone();
            let curl = curl.clone();
            let t = std::thread::Builder::new()
                .name(format!("cpd-lane-{lane}"))
                .spawn(move || {
                    priority::give_way();
                    let _log = shared.log.enter();
                    run_lane(&shared, &transport, &reader, &inbox, lane, curl.as_ref())
                })
                .map_err(spawn_err)?;
            d.lanes.push(t);
        }
        Ok(d)
    }

    /// Hands one event to the committer (Broker's thread: no I/O).
    pub(crate) fn push(&self, ev: NewEvent) {
        let seq = self.shared.submitted.fetch_add(1, Ordering::SeqCst) + 1;
        if self.inbox.send(Msg::Event(seq, Box::new(ev))).is_err() {
            log::error!("the committer thread is gone; events are no longer acknowledged");
        }
    }

    /// Counts an event Broker handed over (statistics).
    pub(crate) fn seen(&self) {
        self.shared.counters.seen.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts events the host answered itself without asking (statistics: seen, and
    /// answered by the script).
    pub(crate) fn answered_by_script(&self, events: u64) {
        let c = &self.shared.counters;
        c.seen.fetch_add(events, Ordering::Relaxed);
        c.answered_by_script.fetch_add(events, Ordering::Relaxed);
    }

    /// The host's question: is every event handed over durably stored (then Broker may
    /// acknowledge them all)? Keeps the longest stretch of "no" (`ack_wait_max_ms`).
    pub(crate) fn acknowledged(&self) -> bool {
        let ok = self.all_committed();
        if let Some(ms) = self.ack.observe(ok) {
            self.shared
                .counters
                .ack_wait_max_ms
                .fetch_max(ms, Ordering::Relaxed);
        }
        ok
    }

    /// True when every event handed over is durably stored.
    pub(crate) fn all_committed(&self) -> bool {
        self.shared.committed.load(Ordering::SeqCst) >= self.shared.submitted.load(Ordering::SeqCst)
    }

    /// Waits at most `timeout` for every handed-over event to be durably stored.
    pub(crate) fn wait_committed(&self, timeout: Duration) -> bool {
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
    pub(crate) fn release(&self) {
        let _ = self.inbox.send(Msg::Release);
    }

    /// Events an earlier run left pending, found in the outbox at start (however many
    /// were delivered since).
    pub(crate) fn resumed(&self) -> u64 {
        self.resumed
    }

    /// Events handed over and not yet delivered or rejected (committed or not).
    pub(crate) fn outstanding(&self) -> u64 {
        let uncommitted = self
            .shared
            .submitted
            .load(Ordering::SeqCst)
            .saturating_sub(self.shared.committed.load(Ordering::SeqCst));
        uncommitted + self.shared.counters.pending.load(Ordering::SeqCst)
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Stops the lanes (aborting requests in flight), lets the committer write what it
    /// holds, and joins every thread. Events not delivered stay in the outbox.
    pub(crate) fn stop(&mut self) {
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

/// The lane of a `dedup_key`: all its events go through one lane, in order.
fn lane_of(dedup_key: &str) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dedup_key.hash(&mut h);
    (h.finish() % LANES as u64) as usize
}
