//! PagerDuty's answer judged (one function, [`classify`], for every HTTP status): accepted, rejected, rate limited, failed or misdirected.

use std::time::Duration;

/// What PagerDuty's answer to one attempt to deliver an event means for the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
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
    /// login page, a wrong URL). Kept and retried like [`Verdict::Failed`], but waiting
    /// alone will not fix it: the URL or the proxy must change.
    Misdirected(String),
}

/// Upper bound for a server-supplied `Retry-After`.
pub(crate) const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);

/// Classifies an HTTP answer: its status, body, `Retry-After` and `Location` headers.
pub(crate) fn classify(
    status: u16,
    body: &str,
    retry_after: Option<&str>,
    location: Option<&str>,
) -> Verdict {
    match status {
        200..=299 => accepted(status, body),
        300..=399 => Verdict::Misdirected(match location {
            Some(l) => format!(
                "HTTP {status}: redirected to {l}, not followed (PagerDuty's Events API never redirects: a captive portal, a proxy's login page or a wrong URL)"
            ),
            None => format!(
                "HTTP {status} (a redirection status, not PagerDuty's answer: a captive portal, a proxy or a wrong URL)"
            ),
        }),
        400 | 413 | 422 => Verdict::Rejected(reason(status, body)),
        429 => Verdict::RateLimited {
            retry_after: retry_after.and_then(parse_retry_after),
        },
        _ => Verdict::Failed(reason(status, body)),
    }
}

/// A 2xx is PagerDuty's only when its body is PagerDuty's JSON answer with `"status": "success"`.
fn accepted(status: u16, body: &str) -> Verdict {
    let said = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_string));
    match said.as_deref() {
        Some("success") => Verdict::Accepted,
        Some(other) => Verdict::Misdirected(format!(
            "HTTP {status} but the answer says status {other:?}, not \"success\" ({}): PagerDuty may not have the event",
            excerpt(body)
        )),
        None => Verdict::Misdirected(format!(
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
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(secs).min(RETRY_AFTER_CAP))
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
                Verdict::Accepted => "accepted",
                Verdict::Rejected(_) => "rejected",
                Verdict::RateLimited { .. } => "rate",
                Verdict::Failed(_) => "failed",
                Verdict::Misdirected(_) => "misdirected",
            };
            assert_eq!(got, *want, "status {status} {body:?}");
        }
    }

    #[test]
    fn answers_not_from_pagerduty_say_why() {
        let Verdict::Misdirected(r) = classify(302, "", None, Some("http://portal.example/login"))
        else {
            panic!()
        };
        assert!(
            r.starts_with("HTTP 302: redirected to http://portal.example/login, not followed"),
            "{r}"
        );
        let Verdict::Misdirected(r) = classify(200, PORTAL, None, None) else {
            panic!()
        };
        assert!(
            r.starts_with(
                r#"HTTP 200 but not PagerDuty's answer (an HTML page titled "Guest Wi-Fi log in")"#
            ),
            "{r}"
        );
        let Verdict::Misdirected(r) = classify(202, r#"{"status":"queued"}"#, None, None) else {
            panic!()
        };
        assert!(r.contains(r#"says status "queued""#), "{r}");
        // line breaks of an answer never split a log line
        assert_eq!(
            classify(502, "bad\r\n  gateway\n", None, None),
            Verdict::Failed("HTTP 502: bad gateway".into())
        );
        assert_eq!(
            classify(
                502,
                "<html><title>502 Bad Gateway</title></html>",
                None,
                None
            ),
            Verdict::Failed(r#"HTTP 502: an HTML page titled "502 Bad Gateway""#.into())
        );
    }

    #[test]
    fn rejection_keeps_pagerduty_reason() {
        let body = r#"{"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing or blank"]}"#;
        assert_eq!(
            classify(400, body, None, None),
            Verdict::Rejected(
                "HTTP 400: Event object is invalid: 'payload.summary' is missing or blank".into()
            )
        );
        assert_eq!(
            classify(400, "not json", None, None),
            Verdict::Rejected("HTTP 400: not json".into())
        );
        assert_eq!(
            classify(500, "", None, None),
            Verdict::Failed("HTTP 500".into())
        );
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        assert_eq!(
            classify(429, "", Some("7"), None),
            Verdict::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(parse_retry_after("100000"), Some(RETRY_AFTER_CAP));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
