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
mod tests;
