//! Progress of long work (`flush`, `replay`) on stderr: one line redrawn in place on a terminal, at most four times a second; nothing at all when stderr is not a terminal (cron, timers), where the command's own summary line says what was done.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Shortest time between two frames.
pub(crate) const EVERY: Duration = Duration::from_millis(250);

/// Erases the terminal line the cursor is on (carriage return, then ANSI "erase to the end
/// of the line").
const ERASE: &str = "\r\x1b[K";

/// A progress line on stderr.
#[derive(Debug)]
pub(crate) struct Progress {
    /// What is being done (`flush ****2345`, `replay`), the start of each frame.
    label: String,
    /// The first frame: when, and how many events were delivered then (the rate is counted
    /// from there).
    first: Option<(Instant, u64)>,
    /// Frames are drawn: stderr is a terminal.
    live: bool,
    /// When the last frame was drawn.
    last: Option<Instant>,
    /// A frame is on the screen.
    drawn: bool,
}

/// Where the delivery of a batch of events stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Answered by PagerDuty: accepted.
    pub(crate) delivered: u64,
    /// Answered by PagerDuty: refused.
    pub(crate) rejected: u64,
    /// Made unnecessary by a later event of their dedup key.
    pub(crate) merged: u64,
    /// Events to deliver: found in the outbox at start, and stored since.
    pub(crate) total: u64,
    /// Attempts PagerDuty answered 429 (rate limited).
    pub(crate) rate_limited: u64,
    /// Attempts that failed otherwise (network, 5xx), retried later.
    pub(crate) retried: u64,
}

impl Progress {
    /// Progress on stderr, drawn only when stderr is a terminal.
    pub(crate) fn on_stderr(label: impl Into<String>) -> Progress {
        Progress::new(label, std::io::stderr().is_terminal())
    }

    fn new(label: impl Into<String>, live: bool) -> Progress {
        Progress {
            label: label.into(),
            first: None,
            live,
            last: None,
            drawn: false,
        }
    }

    /// Draws the tally in place: the first frame at once, then at most one per [`EVERY`].
    pub(crate) fn show(&mut self, tally: &Tally) {
        if !self.due(Instant::now()) {
            return;
        }
        let now = Instant::now();
        let (since, delivered) = *self.first.get_or_insert((now, tally.delivered));
        let rate = rate(
            tally.delivered - delivered.min(tally.delivered),
            now - since,
        );
        let frame = frame(&self.label, tally, rate);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{ERASE}{frame}");
        let _ = err.flush();
        self.last = Some(now);
        self.drawn = true;
    }

    /// Whether a frame is to be drawn at `now`.
    fn due(&self, now: Instant) -> bool {
        self.live
            && self
                .last
                .is_none_or(|t| now.saturating_duration_since(t) >= EVERY)
    }

    /// Erases the line, before the command prints its results.
    pub(crate) fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "{ERASE}");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Events per second; `None` before there is a second's worth of time to count on.
fn rate(events: u64, elapsed: Duration) -> Option<f64> {
    (elapsed >= Duration::from_secs(1)).then(|| events as f64 / elapsed.as_secs_f64())
}

/// One frame: `flush ****2345: 120/5000 answered, 39.8/s, 2 rejected, rate limited by
/// PagerDuty (429 x3): 4880 waiting`. Short enough for a terminal line.
pub(crate) fn frame(label: &str, t: &Tally, rate: Option<f64>) -> String {
    let answered = (t.delivered + t.rejected + t.merged).min(t.total);
    let mut line = format!("{label}: {answered}/{} answered", t.total);
    if let Some(r) = rate {
        line.push_str(&format!(", {r:.1}/s"));
    }
    if t.rejected > 0 {
        line.push_str(&format!(", {} rejected", t.rejected));
    }
    if t.rate_limited > 0 {
        line.push_str(&format!(
            ", rate limited by PagerDuty (429 x{}): {} waiting",
            t.rate_limited,
            t.total - answered
        ));
    } else if t.retried > 0 {
        line.push_str(&format!(", {} failed attempt(s)", t.retried));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_count_rate_and_rate_limit() {
        let t = Tally {
            delivered: 118,
            rejected: 2,
            merged: 0,
            total: 5000,
            rate_limited: 3,
            retried: 0,
        };
        assert_eq!(
            frame("flush ****2345", &t, rate(118, Duration::from_secs(4))),
            "flush ****2345: 120/5000 answered, 29.5/s, 2 rejected, rate limited by PagerDuty (429 x3): 4880 waiting"
        );
        let t = Tally {
            delivered: 5,
            total: 6,
            retried: 1,
            ..Tally::default()
        };
        assert_eq!(
            frame("replay", &t, rate(5, Duration::from_secs(2))),
            "replay: 5/6 answered, 2.5/s, 1 failed attempt(s)"
        );
        // no rate before a second has passed; counters read apart never exceed the total
        assert_eq!(rate(3, Duration::from_millis(999)), None);
        let ahead = Tally {
            delivered: 7,
            total: 6,
            ..Tally::default()
        };
        assert_eq!(frame("replay", &ahead, None), "replay: 6/6 answered");
    }

    #[test]
    fn nothing_is_drawn_off_a_terminal_and_frames_are_spaced() {
        let mut quiet = Progress::new("x", false);
        quiet.show(&Tally::default());
        assert!(quiet.last.is_none() && !quiet.drawn);
        let mut live = Progress::new("x", true);
        let t0 = Instant::now();
        assert!(live.due(t0), "the first frame is drawn at once");
        live.last = Some(t0);
        assert!(!live.due(t0 + EVERY / 2));
        assert!(live.due(t0 + EVERY));
        live.last = None;
        live.show(&Tally::default());
        assert!(live.drawn);
        live.clear();
        assert!(!live.drawn);
    }
}
