//! One sender lane: its rows in order, each retried with backoff until PagerDuty takes or rejects it.

use std::ops::ControlFlow;
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender as Channel;
use std::time::{Duration, Instant};

use super::Transport;
use super::queue::{Msg, Queue, Shared};
use super::retry::{self, Jitter};
use super::throttle::Turn;
use crate::http::curl::CurlCommand;
use crate::http::verdict::Verdict;
use crate::outbox::{Fetched, Reader, Stored};
use crate::payload;

/// Takes the next id of `lane` (marking it busy) once the lane may send, or `None` when
/// stopping. During a rate-limit pause rows stay in the queue, where newer events can still
/// merge with them.
pub(super) fn next_id(shared: &Shared, lane: usize) -> Option<(i64, Option<Stored>)> {
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
pub(super) struct Backoff {
    pub(super) until: Instant,
    /// [`Queue::recoveries`] when it started.
    pub(super) recoveries: u64,
}

/// Waits until `backoff` ends (its time, or PagerDuty answering another lane's request) and a
/// turn to send (the rate limit); `None` when stopping.
pub(super) fn wait_turn(shared: &Shared, lane: usize, backoff: Option<Backoff>) -> Option<Turn> {
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
pub(super) fn run_lane(
    shared: &Shared,
    transport: &Transport,
    reader: &Reader,
    inbox: &Channel<Msg>,
    lane: usize,
    curl: Option<&CurlCommand>,
) {
    Lane {
        shared,
        transport,
        reader,
        inbox,
        lane,
        curl,
    }
    .run(&mut Jitter::from_clock());
}

/// One sender lane and what it works with.
pub(super) struct Lane<'a> {
    pub(super) shared: &'a Shared,
    pub(super) transport: &'a Transport,
    pub(super) reader: &'a Reader,
    pub(super) inbox: &'a Channel<Msg>,
    pub(super) lane: usize,
    pub(super) curl: Option<&'a CurlCommand>,
}

impl Lane<'_> {
    /// Sends the lane's rows in order until stopping.
    fn run(&self, jitter: &mut Jitter) {
        while let Some((id, kept)) = next_id(self.shared, self.lane) {
            // a row committed by this run is at hand; others (left by an earlier run, updated
            // since it was committed) are read back
            let out = match kept {
                Some(out) => out,
                None => match self.read_back(id) {
                    ControlFlow::Continue(Some(out)) => out,
                    ControlFlow::Continue(None) => continue,
                    ControlFlow::Break(()) => return,
                },
            };
            if self.deliver(id, &out, jitter).is_break() {
                return; // stopping: the row stays in the outbox for the next run
            }
        }
    }

    /// Reads row `id` back from the outbox: `None` when it is gone (settled as delivered) or
    /// unreadable (moved to rejected); a transient database error (busy, I/O) is retried every
    /// second, never dropping the event. `Break` when stopping.
    pub(super) fn read_back(&self, id: i64) -> ControlFlow<(), Option<Stored>> {
        loop {
            match self.reader.read(id) {
                Ok(Fetched::Event(row)) => return ControlFlow::Continue(Some(row)),
                Ok(Fetched::Gone) => {
                    let _ = self.inbox.send(Msg::Delivered(id));
                    return ControlFlow::Continue(None);
                }
                Ok(Fetched::Unreadable(why)) => {
                    log::error!("{why}; moved to rejected");
                    let _ = self.inbox.send(Msg::Rejected(id, why));
                    return ControlFlow::Continue(None);
                }
                Err(e) => {
                    log::warn!("cannot read outbox row {id}: {e}; retrying");
                    let again = Instant::now() + Duration::from_secs(1);
                    if !sleep_until(self.shared, self.lane, again) {
                        return ControlFlow::Break(());
                    }
                }
            }
        }
    }

    /// Attempts row `id` until PagerDuty takes or rejects it: after a failure, backoff (the
    /// rows behind wait: a resolve never overtakes its trigger); a 429 before any failure gives
    /// the row back to the head of the lane. `Break` when stopping.
    fn deliver(&self, id: i64, out: &Stored, jitter: &mut Jitter) -> ControlFlow<()> {
        let what = format!("{} {}", out.action.as_str(), out.dedup_key);
        let mut attempts = 0u32;
        // attempts without an answer (5xx, network error, timeout): PagerDuty may have the event
        let mut failures = 0u32;
        let mut backoff = None;
        loop {
            let Some(turn) = wait_turn(self.shared, self.lane, backoff) else {
                return ControlFlow::Break(());
            };
            attempts += 1;
            let verdict = self.attempt(out);
            if self.shared.lock().stopping
                && !matches!(verdict, Verdict::Accepted | Verdict::Rejected(_))
            {
                return ControlFlow::Break(());
            }
            match verdict {
                Verdict::Accepted => {
                    self.accepted(id, out, &what, attempts, turn);
                    return ControlFlow::Continue(());
                }
                Verdict::Rejected(reason) => {
                    self.rejected(id, out, &what, reason, turn);
                    return ControlFlow::Continue(());
                }
                Verdict::RateLimited { retry_after } => {
                    self.rate_limited(turn, retry_after, &what, jitter);
                    if failures == 0 {
                        self.give_back(id);
                        return ControlFlow::Continue(());
                    }
                    backoff = None;
                }
                Verdict::Failed(reason) | Verdict::Misdirected(reason) => {
                    failures += 1;
                    backoff = Some(self.failed(id, &what, reason, failures, jitter));
                }
            }
        }
    }

    /// One request (logged as a `curl` command when asked; only logged with `send_data_test`).
    fn attempt(&self, out: &Stored) -> Verdict {
        let shared = self.shared;
        if let Some(curl) = self.curl {
            log::warn!(target: crate::log::NOTICE, "{}", curl.line(&out.outgoing(), &shared.routing_key));
        }
        let verdict = match self.transport {
            Transport::Http(sender) => {
                sender.send(&payload::encode_json(&out.body, &shared.routing_key))
            }
            Transport::LogOnly => {
                log::warn!(
                    "send_data_test: would send {}",
                    payload::redacted(&out.outgoing())
                );
                Verdict::Accepted
            }
        };
        if matches!(verdict, Verdict::Misdirected(_)) {
            shared.counters.misdirected.fetch_add(1, Ordering::Relaxed);
        }
        verdict
    }

    /// PagerDuty took the event: it is deleted from the outbox.
    fn accepted(&self, id: i64, out: &Stored, what: &str, attempts: u32, turn: Turn) {
        let shared = self.shared;
        shared.counters.delivered.fetch_add(1, Ordering::Relaxed);
        log::info!("delivered {what} (attempt {attempts}): {}", out.summary);
        processed(shared, turn, self.lane);
        let _ = self.inbox.send(Msg::Delivered(id));
    }

    /// PagerDuty refused the event itself: it moves to the rejected table with the reason, and
    /// never blocks the events behind it.
    fn rejected(&self, id: i64, out: &Stored, what: &str, reason: String, turn: Turn) {
        let shared = self.shared;
        shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
        shared.counters.set_error(format!("{what}: {reason}"));
        log::error!(
            "PagerDuty rejected {what}; kept in the outbox's rejected table: {reason}; event: {}",
            payload::redacted(&out.outgoing())
        );
        processed(shared, turn, self.lane);
        let _ = self.inbox.send(Msg::Rejected(id, reason));
    }

    /// A 429: the routing key pauses (every lane is woken to see it), announced once per
    /// episode.
    fn rate_limited(
        &self,
        turn: Turn,
        retry_after: Option<Duration>,
        what: &str,
        jitter: &mut Jitter,
    ) {
        let shared = self.shared;
        shared.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        let (pause, strikes, storm) = {
            let mut q = shared.lock();
            let pause = q
                .throttle
                .limited(turn, retry_after, jitter.next_unit(), Instant::now());
            (pause, q.throttle.strikes, q.throttle.guide.is_some())
        };
        shared.wake_all();
        match pause {
            // a storm is announced once, not once per rate-limit window
            Some(p) if strikes <= 1 => log::log!(
                if storm {
                    log::Level::Info
                } else {
                    log::Level::Warn
                },
                "rate limited by PagerDuty on {what}; pausing this routing key for {:.1} s, then one request probes",
                p.as_secs_f64()
            ),
            Some(p) => log::info!(
                "still rate limited by PagerDuty ({what}); probing again in {:.1} s",
                p.as_secs_f64()
            ),
            None => log::debug!("rate limited by PagerDuty on {what}, sent before the pause"),
        }
    }

    /// PagerDuty did not take row `id` (a 429): back to the head of the lane, where a newer
    /// event of its dedup_key can still merge with it.
    fn give_back(&self, id: i64) {
        let mut q = self.shared.lock();
        q.busy.remove(&id);
        q.lanes[self.lane].push_front(id);
    }

    /// An attempt without PagerDuty's answer (5xx, network error, timeout, misdirected): the
    /// lane's head is failing (newer events may merge behind it) and backs off; recorded for
    /// operators. Returns the backoff.
    fn failed(
        &self,
        id: i64,
        what: &str,
        reason: String,
        failures: u32,
        jitter: &mut Jitter,
    ) -> Backoff {
        let shared = self.shared;
        let (ramping, recoveries) = {
            let mut q = shared.lock();
            q.throttle.failed();
            q.failing |= 1 << self.lane;
            q.backing_off |= 1 << self.lane;
            (q.throttle.ramp.is_some(), q.recoveries)
        };
        if ramping {
            shared.wake_all();
        }
        shared.counters.retried.fetch_add(1, Ordering::Relaxed);
        shared.counters.set_error(format!("{what}: {reason}"));
        let _ = self.inbox.send(Msg::Attempt(id, reason.clone()));
        let delay = retry::backoff(failures, jitter.next_unit());
        log::warn!(
            "sending {what} failed ({reason}); retry {failures} in {:.1} s",
            delay.as_secs_f64()
        );
        Backoff {
            until: Instant::now() + delay,
            recoveries,
        }
    }
}

/// PagerDuty processed a request of `lane`: its head event is no longer failing; every lane
/// backing off after a failure retries now (PagerDuty is back: its events are not left to
/// sleep out their own backoffs), within the rate limit; after a 429, one more lane may send;
/// the first one since the latest pause ends the rate-limit episode.
pub(super) fn processed(shared: &Shared, turn: Turn, lane: usize) {
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
        log::info!(
            "PagerDuty answers again: {} lane(s) backing off after a failure retry now",
            released.count_ones()
        );
    }
    if let Some((length, storm)) = ended {
        log::log!(
            if storm {
                log::Level::Info
            } else {
                log::Level::Warn
            },
            "PagerDuty takes events again after {:.1} s of rate limiting: the lanes resume",
            length.as_secs_f64()
        );
    }
}
