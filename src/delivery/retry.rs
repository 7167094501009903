//! Retry policy: the backoff after a failed attempt, the pause of a routing key after a 429, and their jitter.
//!
//! PagerDuty's answer itself is judged by [`crate::http::verdict`].

use std::time::Duration;

/// Backoff: 0.5 s x 1.5 per attempt, +-50 % jitter, capped (Alertmanager's policy).
pub(crate) const BACKOFF_BASE: Duration = Duration::from_millis(500);
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// Longest pause after a 429 without `Retry-After`: one request probes the routing key at the
/// end of each pause, so a longer pause only delays the events once PagerDuty takes them again.
pub(crate) const RATE_LIMIT_PAUSE_CAP: Duration = Duration::from_secs(5);

/// Pause of a routing key after its `strikes`-th 429 in a row (1 = the first): the backoff,
/// capped at [`RATE_LIMIT_PAUSE_CAP`].
pub(crate) fn rate_limit_pause(strikes: u32, unit: f64) -> Duration {
    backoff(strikes, unit).min(RATE_LIMIT_PAUSE_CAP)
}

/// Pause after the `strikes`-th 429 of an episode that starts right after another one ended
/// (a storm): the previous episode lasted `previous`, about as long as PagerDuty then took to
/// take events again. The first probe goes at three quarters of it, the next ones in steps
/// of a tenth growing by half each time; +-20 % jitter, at least 50 ms, capped at
/// [`RATE_LIMIT_PAUSE_CAP`].
pub(crate) fn learned_pause(previous: Duration, strikes: u32, unit: f64) -> Duration {
    let fraction = match strikes {
        0 | 1 => 0.75,
        s => 0.1 * 1.5f64.powi(s.saturating_sub(2).min(40) as i32),
    };
    let secs = previous.as_secs_f64() * fraction * (0.8 + 0.4 * unit.clamp(0.0, 1.0));
    Duration::from_secs_f64(secs.min(RATE_LIMIT_PAUSE_CAP.as_secs_f64())).max(LEARNED_PAUSE_MIN)
}

/// Shortest [`learned_pause`].
pub(crate) const LEARNED_PAUSE_MIN: Duration = Duration::from_millis(50);

/// Delay before attempt number `attempt` (1 = first retry). `unit` in [0, 1) supplies the jitter.
pub(crate) fn backoff(attempt: u32, unit: f64) -> Duration {
    let exp = BACKOFF_BASE.as_secs_f64() * 1.5f64.powi(attempt.saturating_sub(1).min(40) as i32);
    let capped = exp.min(BACKOFF_CAP.as_secs_f64());
    let jittered = capped * (0.5 + unit.clamp(0.0, 1.0));
    Duration::from_secs_f64(jittered.min(BACKOFF_CAP.as_secs_f64()))
}

/// A small, seedable random source for jitter (no cryptographic use).
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new(seed: u64) -> Jitter {
        Jitter(seed | 1)
    }

    /// Seeded from the clock and a per-call counter.
    pub(crate) fn from_clock() -> Jitter {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Jitter::new(t ^ COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed))
    }

    /// Uniform in [0, 1).
    pub(crate) fn next_unit(&mut self) -> f64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        assert_eq!(backoff(1, 0.5), Duration::from_millis(500));
        assert_eq!(backoff(2, 0.5), Duration::from_millis(750));
        assert_eq!(backoff(1, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(1, 1.0), Duration::from_millis(750));
        assert_eq!(backoff(100, 0.5), BACKOFF_CAP);
        assert!(backoff(100, 1.0) <= BACKOFF_CAP);
        assert_eq!(rate_limit_pause(1, 0.5), Duration::from_millis(500));
        assert_eq!(rate_limit_pause(100, 1.0), RATE_LIMIT_PAUSE_CAP);
        assert!((1..60).all(|s| rate_limit_pause(s, 0.99) <= RATE_LIMIT_PAUSE_CAP));
        let second = Duration::from_secs(1);
        assert_eq!(learned_pause(second, 1, 0.5), Duration::from_millis(750));
        assert_eq!(learned_pause(second, 2, 0.5), Duration::from_millis(100));
        assert_eq!(learned_pause(second, 3, 0.5), Duration::from_millis(150));
        assert_eq!(
            learned_pause(Duration::from_secs(60), 1, 0.5),
            RATE_LIMIT_PAUSE_CAP
        );
        assert_eq!(learned_pause(Duration::ZERO, 1, 0.5), LEARNED_PAUSE_MIN);
        assert_eq!(learned_pause(second, 200, 1.0), RATE_LIMIT_PAUSE_CAP);
        let mut j = Jitter::new(42);
        let xs: Vec<f64> = (0..1000).map(|_| j.next_unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((0.4..0.6).contains(&mean), "mean {mean}");
    }
}
