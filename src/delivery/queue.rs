//! What the committer and the lanes share: the committed rows per lane, those being sent, the
//! rate limit, and the messages the lanes send back.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::throttle::Throttle;
use super::{LANES, NewEvent};
use crate::log::Sink;
use crate::outbox::Stored;
use crate::params::Secret;
use crate::stats::Counters;

/// What Broker's thread and the lanes send the committer.
pub(super) enum Msg {
    Event(u64, Box<NewEvent>),
    Delivered(i64),
    Rejected(i64, String),
    /// A failed attempt (the row stays pending): recorded for operators, in the next commit.
    Attempt(i64, String),
    Release,
    Stop,
}

/// The committed rows on their way to PagerDuty, and the lanes' state that decides merges.
pub(super) struct Queue {
    /// Committed ids not yet released to the lanes: `(id, lane)`.
    pub(super) buffer: Vec<(i64, usize)>,
    pub(super) buffer_since: Option<Instant>,
    pub(super) lanes: Vec<VecDeque<i64>>,
    /// Ids taken by a lane: being sent, or sent and awaiting deletion. Never merged.
    pub(super) busy: HashSet<i64>,
    /// Rows just committed, as stored, until their lane takes them: the lane sends them
    /// without reading them back from the database (at most
    /// [`READY_MAX`](super::committer::READY_MAX); a row merged or updated since is dropped
    /// from here, and the lane reads the database).
    pub(super) ready: HashMap<i64, Stored>,
    /// The routing key's rate limit (429).
    pub(super) throttle: Throttle,
    /// Lanes (a bit each) whose head event has failed a delivery attempt (5xx, network error,
    /// timeout) and has not been accepted or rejected since: the rows behind it are held
    /// back, a backlog where newer events may merge with them.
    pub(super) failing: u64,
    /// Lanes (a bit each) sleeping out a retry's backoff.
    pub(super) backing_off: u64,
    /// Incremented each time PagerDuty answers a request while lanes were backing off: a
    /// backoff started before ends there (PagerDuty is back).
    pub(super) recoveries: u64,
    pub(super) stopping: bool,
}

/// The queue and its wake-ups, the acknowledgement's sequence numbers, counters and log.
pub(super) struct Shared {
    pub(super) queue: Mutex<Queue>,
    /// One per lane, all used with `queue`: each lane waits on its own, so that new rows wake
    /// only the lanes they go to (not 16 threads per commit).
    pub(super) wakes: Vec<Condvar>,
    /// Sequence number of the last event handed over by Broker's thread.
    pub(super) submitted: AtomicU64,
    /// Sequence number up to which every event is durably stored (or merged away).
    pub(super) committed: AtomicU64,
    pub(super) committed_signal: (Mutex<()>, Condvar),
    pub(super) counters: Counters,
    pub(super) log: Arc<Sink>,
    pub(super) routing_key: Secret,
}

impl Shared {
    /// Idle state with `lanes` already holding the pending ids of an earlier run.
    pub(super) fn new(lanes: Vec<VecDeque<i64>>, log: Arc<Sink>, routing_key: Secret) -> Shared {
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
    pub(super) fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every lane (stop, rate-limit changes).
    pub(super) fn wake_all(&self) {
        self.wake_lanes(u64::MAX);
    }

    /// Wakes the lanes of the bits set in `lanes`.
    pub(super) fn wake_lanes(&self, lanes: u64) {
        for (i, w) in self.wakes.iter().enumerate() {
            if lanes & (1 << i) != 0 {
                w.notify_all();
            }
        }
    }
}

// a lane is a bit of a u64 in `release` and `wake_lanes`
const _: () = assert!(LANES <= 64);

/// Moves the buffered rows to their lanes; returns the lanes that got rows (a bit each).
pub(super) fn release(q: &mut Queue) -> u64 {
    let buffered = std::mem::take(&mut q.buffer);
    let mut lanes = 0u64;
    for (id, lane) in buffered {
        q.lanes[lane].push_back(id);
        lanes |= 1 << lane;
    }
    q.buffer_since = None;
    lanes
}
