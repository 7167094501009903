//! The routing key's rate limit: the pause after a 429, one probe, then the lanes ramp up.

use std::time::{Duration, Instant};

use super::LANES;
use super::retry;

/// The rate-limit state of the routing key. A 429 pauses every lane; when the pause ends, a
/// single request probes while the other lanes wait: a 429 pauses again, longer; a request
/// that PagerDuty processed (accepted or rejected) ends the episode, and the lanes resume
/// one more at a time with each further request processed, so that a window that reopens
/// slowly is not flooded. Requests already in flight when a pause starts may be answered 429
/// too: those are stale, they neither lengthen the pause nor end the episode. An episode that
/// starts right after the previous one ended (a storm) paces its probes by that episode's
/// length.
#[derive(Debug, Default)]
pub(super) struct Throttle {
    /// No lane sends before this.
    pub(super) paused_until: Option<Instant>,
    /// Requests allowed in flight since the latest 429: 1 (the probe), one more with each
    /// request PagerDuty processes; `None`: no limit (every lane).
    pub(super) ramp: Option<usize>,
    /// Requests sent and not answered yet.
    pub(super) in_flight: usize,
    /// 429s of this episode that started a pause (the pause grows with them); 0: no episode.
    pub(super) strikes: u32,
    /// Incremented by each pause: an answer to a request sent before the latest pause is stale.
    pub(super) epoch: u64,
    /// Start of the episode.
    pub(super) since: Option<Instant>,
    /// Length of the previous episode, when it ended less than that long before this one
    /// started: how long PagerDuty is likely to take before it takes events again.
    pub(super) guide: Option<Duration>,
    /// Length and end of the previous episode.
    pub(super) last: Option<(Duration, Instant)>,
}

/// A lane's permission to send one request: the throttle's epoch when it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Turn(u64);

impl Throttle {
    /// The key is paused or probing: an event committed now cannot be sent right away.
    pub(super) fn holds(&self, now: Instant) -> bool {
        self.strikes > 0 || self.paused_until.is_some_and(|p| p > now)
    }

    /// `Ok` when a lane may send now, else `Err` with when to look again (`None`: when woken
    /// by an answer).
    pub(super) fn check(&self, now: Instant) -> Result<(), Option<Instant>> {
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
    pub(super) fn turn(&mut self, now: Instant) -> Result<Turn, Option<Instant>> {
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
    pub(super) fn limited(
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
    pub(super) fn processed(&mut self, turn: Turn, now: Instant) -> Option<Duration> {
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
    pub(super) fn failed(&mut self) {
        self.answered();
    }
}
