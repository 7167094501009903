//! Background delivery: buffered events go to sender lanes (one `dedup_key` always in one lane, in order).
//!
//! Broker's thread only pushes into memory and reads a counter; every network call happens
//! on the lane threads. A lane retries its head event with backoff (so a resolve never
//! overtakes its trigger) while other lanes keep flowing; a 429 pauses every lane, since
//! they share the routing key; a rejected event is logged with PagerDuty's reason and
//! dropped, never blocking the events behind it. `max_buffer_size`/`max_buffer_age` hold
//! events before they are released to the lanes, the age being enforced by a timer thread.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{Config, Secret};
use crate::log::Logger;
use crate::payload::{self, Outgoing};
use crate::retry::{self, Jitter, Outcome};
use crate::send::Sender;

/// How many requests may be in flight at once (one per lane).
pub const LANES: usize = 8;

/// Where encoded events go.
#[derive(Clone)]
pub enum Transport {
    /// POST to the Events API.
    Http(Sender),
    /// `send_data_test=1`: log the (redacted) body instead of sending it.
    LogOnly,
}

/// Counters kept by the delivery side.
#[derive(Debug, Default)]
pub struct Counters {
    pub delivered: AtomicU64,
    pub rejected: AtomicU64,
    pub retried: AtomicU64,
    pub rate_limited: AtomicU64,
}

struct Job {
    out: Outgoing,
    attempts: u32,
    not_before: Option<Instant>,
}

struct Queue {
    buffer: Vec<Job>,
    buffer_since: Option<Instant>,
    lanes: Vec<VecDeque<Job>>,
    paused_until: Option<Instant>,
    stopping: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Events pushed and not yet delivered or rejected.
    outstanding: AtomicU64,
    counters: Counters,
    log: Arc<Logger>,
    routing_key: Secret,
    max_buffer_size: usize,
    max_buffer_age: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The delivery side of one connector. Dropping it stops and joins its threads.
pub struct Delivery {
    shared: Arc<Shared>,
    transport: Transport,
    threads: Vec<JoinHandle<()>>,
}

impl Delivery {
    /// Starts the lane threads and the buffer timer.
    pub fn start(
        cfg: &Config,
        log: Arc<Logger>,
        transport: Transport,
    ) -> std::io::Result<Delivery> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                buffer: Vec::new(),
                buffer_since: None,
                lanes: (0..LANES).map(|_| VecDeque::new()).collect(),
                paused_until: None,
                stopping: false,
            }),
            wake: Condvar::new(),
            outstanding: AtomicU64::new(0),
            counters: Counters::default(),
            log,
            routing_key: cfg.routing_key.clone(),
            max_buffer_size: cfg.max_buffer_size.max(1),
            max_buffer_age: cfg.max_buffer_age,
        });
        let mut d = Delivery {
            shared,
            transport,
            threads: Vec::new(),
        };
        for lane in 0..LANES {
            let shared = Arc::clone(&d.shared);
            let transport = d.transport.clone();
            let t = std::thread::Builder::new()
                .name(format!("cpd-lane-{lane}"))
                .spawn(move || run_lane(&shared, &transport, lane))?;
            d.threads.push(t);
        }
        let shared = Arc::clone(&d.shared);
        let t = std::thread::Builder::new()
            .name("cpd-timer".into())
            .spawn(move || run_timer(&shared))?;
        d.threads.push(t);
        Ok(d)
    }

    /// Queues one event (Broker's thread: memory only, no I/O).
    pub fn push(&self, out: Outgoing) {
        self.shared.outstanding.fetch_add(1, Ordering::SeqCst);
        let mut q = self.shared.lock();
        if q.buffer.is_empty() {
            q.buffer_since = Some(Instant::now());
        }
        q.buffer.push(Job {
            out,
            attempts: 0,
            not_before: None,
        });
        if q.buffer.len() >= self.shared.max_buffer_size {
            release(&mut q);
        }
        drop(q);
        self.shared.wake.notify_all();
    }

    /// Releases buffered events to the lanes now (Broker is idle: `flush()`).
    pub fn release(&self) {
        let mut q = self.shared.lock();
        if !q.buffer.is_empty() {
            release(&mut q);
            drop(q);
            self.shared.wake.notify_all();
        }
    }

    /// Events pushed and not yet delivered or rejected.
    pub fn outstanding(&self) -> u64 {
        self.shared.outstanding.load(Ordering::SeqCst)
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Stops the threads, aborting requests in flight, and joins them. Events not delivered
    /// are dropped here: they were never acknowledged to Broker, which will hand them again.
    pub fn stop(&mut self) {
        {
            let mut q = self.shared.lock();
            q.stopping = true;
        }
        self.shared.wake.notify_all();
        if let Transport::Http(sender) = &self.transport {
            sender.abort();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.stop();
    }
}

fn release(q: &mut Queue) {
    let lanes = q.lanes.len();
    for job in q.buffer.drain(..) {
        let lane = lane_of(&job.out.dedup_key, lanes);
        q.lanes[lane].push_back(job);
    }
    q.buffer_since = None;
}

fn lane_of(dedup_key: &str, lanes: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dedup_key.hash(&mut h);
    (h.finish() % lanes as u64) as usize
}

fn run_timer(shared: &Shared) {
    let mut q = shared.lock();
    loop {
        if q.stopping {
            return;
        }
        match q.buffer_since {
            None => q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner()),
            Some(since) => {
                let due = since + shared.max_buffer_age;
                let now = Instant::now();
                if now >= due {
                    release(&mut q);
                    shared.wake.notify_all();
                } else {
                    q = shared
                        .wake
                        .wait_timeout(q, due - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}

/// Takes the next job of `lane` when it is due, or `None` when stopping.
fn next_job(shared: &Shared, lane: usize) -> Option<Job> {
    let mut q = shared.lock();
    loop {
        if q.stopping {
            return None;
        }
        let now = Instant::now();
        let wait_until = match q.lanes[lane].front() {
            None => None,
            Some(job) => match (q.paused_until.filter(|t| *t > now), job.not_before) {
                (Some(p), Some(n)) => Some(p.max(n)),
                (Some(p), None) => Some(p),
                (None, Some(n)) if n > now => Some(n),
                (None, _) => return q.lanes[lane].pop_front(),
            },
        };
        q = match wait_until {
            None => shared.wake.wait(q).unwrap_or_else(|e| e.into_inner()),
            Some(t) => {
                shared
                    .wake
                    .wait_timeout(q, t.saturating_duration_since(now))
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
    }
}

fn run_lane(shared: &Shared, transport: &Transport, lane: usize) {
    let mut jitter = Jitter::from_clock();
    while let Some(mut job) = next_job(shared, lane) {
        let outcome = match transport {
            Transport::Http(sender) => sender.send(&payload::encode(&job.out, &shared.routing_key)),
            Transport::LogOnly => {
                shared.log.warning(&format!(
                    "send_data_test: would send {}",
                    payload::redacted(&job.out)
                ));
                Outcome::Accepted
            }
        };
        let what = format!("{} {}", job.out.action.as_str(), job.out.dedup_key);
        job.attempts += 1;
        match outcome {
            Outcome::Accepted => {
                shared.counters.delivered.fetch_add(1, Ordering::Relaxed);
                shared.log.info(&format!(
                    "delivered {what} (attempt {}): {}",
                    job.attempts, job.out.summary
                ));
                shared.outstanding.fetch_sub(1, Ordering::SeqCst);
            }
            Outcome::Rejected(reason) => {
                shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
                shared.log.error(&format!(
                    "PagerDuty rejected {what}, dropped: {reason}; event: {}",
                    payload::redacted(&job.out)
                ));
                shared.outstanding.fetch_sub(1, Ordering::SeqCst);
            }
            Outcome::RateLimited { retry_after } => {
                shared.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                let pause =
                    retry_after.unwrap_or_else(|| retry::backoff(job.attempts, jitter.next_unit()));
                shared.log.warning(&format!(
                    "rate limited by PagerDuty on {what}; pausing this routing key for {:.1} s",
                    pause.as_secs_f64()
                ));
                let mut q = shared.lock();
                let until = Instant::now() + pause;
                q.paused_until = Some(q.paused_until.map_or(until, |p| p.max(until)));
                q.lanes[lane].push_front(job);
            }
            Outcome::Failed(reason) => {
                shared.counters.retried.fetch_add(1, Ordering::Relaxed);
                let delay = retry::backoff(job.attempts, jitter.next_unit());
                shared.log.warning(&format!(
                    "sending {what} failed ({reason}); retry {} in {:.1} s",
                    job.attempts,
                    delay.as_secs_f64()
                ));
                job.not_before = Some(Instant::now() + delay);
                shared.lock().lanes[lane].push_front(job);
            }
        }
    }
}
