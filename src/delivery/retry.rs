//! Retry policy: one function turns PagerDuty's answer into done, rejected or retry, and the backoff.

use std::time::Duration;

/// What became of one attempt to deliver an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx with PagerDuty's JSON answer (`"status": "success"`): PagerDuty has the event.
    Accepted,
    /// The event itself is wrong (400, 413, 422): never retried, recorded with PagerDuty's reason.
    Rejected(String),
    /// 429: the event was not ingested; pause this routing key.
    RateLimited { retry_after: Option<Duration> },
    /// Anything else (5xx, 408, other 4xx, network errors, timeouts): retried with backoff.
    Failed(String),
    /// The answer did not come from PagerDuty's Events API: a redirect (3xx, never
    /// followed), or a 2xx without PagerDuty's JSON answer (a captive portal, a proxy's
    /// login page, a wrong URL). Kept and retried like [`Outcome::Failed`], but waiting
    /// alone will not fix it: the URL or the proxy must change.
    Misdirected(String),
}

/// Backoff: 0.5 s x 1.5 per attempt, +-50 % jitter, capped (Alertmanager's policy).
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
pub const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// Upper bound for a server-supplied `Retry-After`.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);

/// Classifies an HTTP answer: its status, body, `Retry-After` and `Location` headers.
pub fn classify(
    status: u16,
    body: &str,
    retry_after: Option<&str>,
    location: Option<&str>,
) -> Outcome {
    match status {
        200..=299 => accepted(status, body),
        300..=399 => Outcome::Misdirected(match location {
            Some(l) => format!(
                "HTTP {status}: redirected to {l}, not followed (PagerDuty's Events API never redirects: a captive portal, a proxy's login page or a wrong URL)"
            ),
            None => format!(
                "HTTP {status} (a redirection status, not PagerDuty's answer: a captive portal, a proxy or a wrong URL)"
            ),
        }),
        400 | 413 | 422 => Outcome::Rejected(reason(status, body)),
        429 => Outcome::RateLimited {
            retry_after: retry_after.and_then(parse_retry_after),
        },
        _ => Outcome::Failed(reason(status, body)),
    }
}

/// A 2xx is PagerDuty's only when its body is PagerDuty's JSON answer with `"status": "success"`.
fn accepted(status: u16, body: &str) -> Outcome {
    let said = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_string));
    match said.as_deref() {
        Some("success") => Outcome::Accepted,
        Some(other) => Outcome::Misdirected(format!(
            "HTTP {status} but the answer says status {other:?}, not \"success\" ({}): PagerDuty may not have the event",
            excerpt(body)
        )),
        None => Outcome::Misdirected(format!(
            "HTTP {status} but not PagerDuty's answer ({}): a captive portal, a proxy or a wrong URL answered instead of PagerDuty",
            excerpt(body)
        )),
    }
}

/// PagerDuty's explanation: `message` and `errors` of the JSON answer, else an excerpt of the body.
fn reason(status: u16, body: &str) -> String {
    let detail = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => {
            let message = v.get("message").and_then(|m| m.as_str()).unwrap_or("");
            let errors: Vec<String> = v
                .get("errors")
                .and_then(|e| e.as_array())
                .map(|a| {
                    a.iter()
                        .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            match (message.is_empty(), errors.is_empty()) {
                (_, false) if !message.is_empty() => format!("{message}: {}", errors.join("; ")),
                (_, false) => errors.join("; "),
                (false, true) => message.to_string(),
                (true, true) => String::new(),
            }
        }
        Err(_) if body.trim().is_empty() => String::new(),
        Err(_) => excerpt(body),
    };
    if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {detail}")
    }
}

/// A body in a few words for a log line: an HTML page by its title, other text by its
/// first 200 characters; white space (line breaks included) collapsed.
fn excerpt(body: &str) -> String {
    let words = |s: &str, n: usize| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(n)
            .collect::<String>()
    };
    let lower = body.to_ascii_lowercase();
    if lower.trim_start().starts_with('<') && lower.contains("<html") {
        let title = lower
            .find("<title")
            .and_then(|i| Some(i + lower[i..].find('>')? + 1))
            .and_then(|start| Some((start, start + lower[start..].find("</title")?)))
            .map(|(start, end)| words(&body[start..end], 100))
            .filter(|t| !t.is_empty());
        return match title {
            Some(t) => format!("an HTML page titled {t:?}"),
            None => "an HTML page".to_string(),
        };
    }
    if body.trim().is_empty() {
        return "an empty body".to_string();
    }
    words(body, 200)
}

/// `Retry-After` in seconds (HTTP dates are not used by PagerDuty and are ignored).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(secs).min(RETRY_AFTER_CAP))
}

/// Longest pause after a 429 without `Retry-After`: one request probes the routing key at the
/// end of each pause, so a longer pause only delays the events once PagerDuty takes them again.
pub const RATE_LIMIT_PAUSE_CAP: Duration = Duration::from_secs(5);

/// Pause of a routing key after its `strikes`-th 429 in a row (1 = the first): the backoff,
/// capped at [`RATE_LIMIT_PAUSE_CAP`].
pub fn rate_limit_pause(strikes: u32, unit: f64) -> Duration {
    backoff(strikes, unit).min(RATE_LIMIT_PAUSE_CAP)
}

/// Pause after the `strikes`-th 429 of an episode that starts right after another one ended
/// (a storm): the previous episode lasted `previous`, about as long as PagerDuty then took to
/// take events again. The first probe goes at three quarters of it, the next ones in steps
/// of a tenth growing by half each time; +-20 % jitter, at least 50 ms, capped at
/// [`RATE_LIMIT_PAUSE_CAP`].
pub fn learned_pause(previous: Duration, strikes: u32, unit: f64) -> Duration {
    let fraction = match strikes {
        0 | 1 => 0.75,
        s => 0.1 * 1.5f64.powi(s.saturating_sub(2).min(40) as i32),
    };
    let secs = previous.as_secs_f64() * fraction * (0.8 + 0.4 * unit.clamp(0.0, 1.0));
    Duration::from_secs_f64(secs.min(RATE_LIMIT_PAUSE_CAP.as_secs_f64())).max(LEARNED_PAUSE_MIN)
}

/// Shortest [`learned_pause`].
pub const LEARNED_PAUSE_MIN: Duration = Duration::from_millis(50);

/// Delay before attempt number `attempt` (1 = first retry). `unit` in [0, 1) supplies the jitter.
pub fn backoff(attempt: u32, unit: f64) -> Duration {
    let exp = BACKOFF_BASE.as_secs_f64() * 1.5f64.powi(attempt.saturating_sub(1).min(40) as i32);
    let capped = exp.min(BACKOFF_CAP.as_secs_f64());
    let jittered = capped * (0.5 + unit.clamp(0.0, 1.0));
    Duration::from_secs_f64(jittered.min(BACKOFF_CAP.as_secs_f64()))
}

/// A small, seedable random source for jitter (no cryptographic use).
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Jitter {
        Jitter(seed | 1)
    }

    /// Seeded from the clock and a per-call counter.
    pub fn from_clock() -> Jitter {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Jitter::new(t ^ COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed))
    }

    /// Uniform in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
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

    /// PagerDuty's answer to an accepted event.
    const SUCCESS: &str = r#"{"status":"success","message":"Event processed","dedup_key":"k"}"#;
    const PORTAL: &str = "<!DOCTYPE html>\n<HTML><head><Title>Guest Wi-Fi\n  log in</title></head><body>...</body></html>";

    #[test]
    fn every_status_has_an_action() {
        let table: &[(u16, &str, Option<&str>, &str)] = &[
            (200, SUCCESS, None, "accepted"),
            (202, SUCCESS, None, "accepted"),
            // a 2xx that is not PagerDuty's answer: a portal, a proxy, a wrong URL
            (200, PORTAL, None, "misdirected"),
            (200, "", None, "misdirected"),
            (202, "OK", None, "misdirected"),
            (204, "", None, "misdirected"),
            (202, r#"{"status":"queued"}"#, None, "misdirected"),
            (202, r#"{"message":"Event processed"}"#, None, "misdirected"),
            (202, r#"["success"]"#, None, "misdirected"),
            // redirects are never followed nor taken as delivery
            (301, "", Some("https://portal.example/"), "misdirected"),
            (302, PORTAL, Some("/login"), "misdirected"),
            (303, "", Some("https://portal.example/"), "misdirected"),
            (307, "", Some("https://portal.example/"), "misdirected"),
            (308, "", Some("https://portal.example/"), "misdirected"),
            (304, "", None, "misdirected"),
            (400, "", None, "rejected"),
            (401, "", None, "failed"),
            (403, "", None, "failed"),
            (404, "", None, "failed"),
            (407, "", None, "failed"),
            (408, "", None, "failed"),
            (413, "", None, "rejected"),
            (422, "", None, "rejected"),
            (429, "", None, "rate"),
            (500, "", None, "failed"),
            (501, "", None, "failed"),
            (502, "", None, "failed"),
            (503, "", None, "failed"),
            (504, "", None, "failed"),
        ];
        for (status, body, location, want) in table {
            let got = match classify(*status, body, None, *location) {
                Outcome::Accepted => "accepted",
                Outcome::Rejected(_) => "rejected",
                Outcome::RateLimited { .. } => "rate",
                Outcome::Failed(_) => "failed",
                Outcome::Misdirected(_) => "misdirected",
            };
            assert_eq!(got, *want, "status {status} {body:?}");
        }
    }

    #[test]
    fn answers_not_from_pagerduty_say_why() {
        let Outcome::Misdirected(r) = classify(302, "", None, Some("http://portal.example/login"))
        else {
            panic!()
        };
        assert!(
            r.starts_with("HTTP 302: redirected to http://portal.example/login, not followed"),
            "{r}"
        );
        let Outcome::Misdirected(r) = classify(200, PORTAL, None, None) else {
            panic!()
        };
        assert!(
            r.starts_with(
                r#"HTTP 200 but not PagerDuty's answer (an HTML page titled "Guest Wi-Fi log in")"#
            ),
            "{r}"
        );
        let Outcome::Misdirected(r) = classify(202, r#"{"status":"queued"}"#, None, None) else {
            panic!()
        };
        assert!(r.contains(r#"says status "queued""#), "{r}");
        // line breaks of an answer never split a log line
        assert_eq!(
            classify(502, "bad\r\n  gateway\n", None, None),
            Outcome::Failed("HTTP 502: bad gateway".into())
        );
        assert_eq!(
            classify(
                502,
                "<html><title>502 Bad Gateway</title></html>",
                None,
                None
            ),
            Outcome::Failed(r#"HTTP 502: an HTML page titled "502 Bad Gateway""#.into())
        );
    }

    #[test]
    fn rejection_keeps_pagerduty_reason() {
        let body = r#"{"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing or blank"]}"#;
        assert_eq!(
            classify(400, body, None, None),
            Outcome::Rejected(
                "HTTP 400: Event object is invalid: 'payload.summary' is missing or blank".into()
            )
        );
        assert_eq!(
            classify(400, "not json", None, None),
            Outcome::Rejected("HTTP 400: not json".into())
        );
        assert_eq!(
            classify(500, "", None, None),
            Outcome::Failed("HTTP 500".into())
        );
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        assert_eq!(
            classify(429, "", Some("7"), None),
            Outcome::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(parse_retry_after("100000"), Some(RETRY_AFTER_CAP));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

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
