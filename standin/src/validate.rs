//! Event validation following the PagerDuty Events API v2 rules.

use serde_json::{Map, Value};

use crate::{MAX_BODY_BYTES, MAX_DEDUP_KEY_CHARS, MAX_SUMMARY_CHARS, ROUTING_KEY_CHARS};

/// A valid event, as the server needs it.
pub(crate) struct ValidEvent {
    /// The full routing key: only kept while the request is handled.
    pub routing_key: String,
    pub action: String,
    pub dedup_key: Option<String>,
    pub summary: Option<String>,
    pub severity: Option<String>,
}

const ACTIONS: [&str; 3] = ["trigger", "acknowledge", "resolve"];
const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

/// A field that is absent or JSON `null` counts as missing.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

/// Parses the body; on failure, the list of problems so far.
fn parse_object(body: &[u8], errors: &mut Vec<String>) -> Option<Map<String, Value>> {
    if body.len() > MAX_BODY_BYTES {
        errors.push(format!(
            "event is larger than {MAX_BODY_BYTES} bytes ({} bytes)",
            body.len()
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => Some(obj),
        Ok(_) => {
            errors.push("event must be a JSON object".to_string());
            None
        }
        Err(e) => {
            errors.push(format!("body is not valid JSON ({e})"));
            None
        }
    }
}

fn check_routing_key(obj: &Map<String, Value>, errors: &mut Vec<String>) -> Option<String> {
    match field(obj, "routing_key") {
        None => errors.push("routing_key is required".to_string()),
        Some(Value::String(k)) => {
            if k.chars().count() == ROUTING_KEY_CHARS
                && k.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Some(k.clone());
            }
            errors.push(format!(
                "routing_key must be {ROUTING_KEY_CHARS} alphanumeric characters (got {} characters)",
                k.chars().count()
            ));
        }
        Some(_) => errors.push("routing_key must be a string".to_string()),
    }
    None
}

/// Checks an optional string field; returns it when it is a string.
fn optional_string(
    obj: &Map<String, Value>,
    prefix: &str,
    name: &str,
    errors: &mut Vec<String>,
) -> Option<String> {
    match field(obj, name) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(format!("{prefix}{name} must be a string"));
            None
        }
    }
}

fn check_summary(payload: &Map<String, Value>, errors: &mut Vec<String>) -> Option<String> {
    match field(payload, "summary") {
        None => errors.push("payload.summary is required".to_string()),
        Some(Value::String(s)) if s.trim().is_empty() => {
            errors.push("payload.summary must not be empty".to_string())
        }
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n > MAX_SUMMARY_CHARS {
                errors.push(format!(
                    "payload.summary must be at most {MAX_SUMMARY_CHARS} characters (got {n})"
                ));
            }
            return Some(s.clone());
        }
        Some(_) => errors.push("payload.summary must be a string".to_string()),
    }
    None
}

fn check_timestamp(payload: &Map<String, Value>, errors: &mut Vec<String>) {
    match field(payload, "timestamp") {
        None => {}
        Some(Value::String(s)) if is_iso8601(s) => {}
        Some(Value::String(s)) => errors.push(format!(
            "payload.timestamp is not an ISO 8601 date-time ({:?})",
            s.chars().take(64).collect::<String>()
        )),
        Some(_) => errors.push("payload.timestamp must be a string".to_string()),
    }
}

fn check_links(obj: &Map<String, Value>, errors: &mut Vec<String>) {
    match field(obj, "links") {
        None => {}
        Some(Value::Array(links)) => {
            for (i, link) in links.iter().enumerate() {
                match link {
                    Value::Object(l) => match field(l, "href") {
                        Some(Value::String(h)) if !h.is_empty() => {
                            optional_string(l, &format!("links[{i}]."), "text", errors);
                        }
                        Some(Value::String(_)) => {
                            errors.push(format!("links[{i}].href must not be empty"))
                        }
                        Some(_) => errors.push(format!("links[{i}].href must be a string")),
                        None => errors.push(format!("links[{i}].href is required")),
                    },
                    _ => errors.push(format!("links[{i}] must be an object")),
                }
            }
        }
        Some(_) => errors.push("links must be an array".to_string()),
    }
}

fn check_images(obj: &Map<String, Value>, errors: &mut Vec<String>) {
    match field(obj, "images") {
        None => {}
        Some(Value::Array(images)) => {
            for (i, image) in images.iter().enumerate() {
                match image {
                    Value::Object(img) => match field(img, "src") {
                        Some(Value::String(_)) => {}
                        Some(_) => errors.push(format!("images[{i}].src must be a string")),
                        None => errors.push(format!("images[{i}].src is required")),
                    },
                    _ => errors.push(format!("images[{i}] must be an object")),
                }
            }
        }
        Some(_) => errors.push("images must be an array".to_string()),
    }
}

/// Validates an alert event (`/v2/enqueue`).
pub(crate) fn alert_event(body: &[u8]) -> Result<ValidEvent, Vec<String>> {
    let mut errors = Vec::new();
    let Some(obj) = parse_object(body, &mut errors) else {
        return Err(errors);
    };
    let routing_key = check_routing_key(&obj, &mut errors);

    let action = match field(&obj, "event_action") {
        None => {
            errors.push("event_action is required".to_string());
            None
        }
        Some(Value::String(a)) if ACTIONS.contains(&a.as_str()) => Some(a.clone()),
        Some(Value::String(a)) => {
            errors.push(format!(
                "event_action must be one of trigger, acknowledge, resolve (got {:?})",
                a.chars().take(64).collect::<String>()
            ));
            None
        }
        Some(_) => {
            errors.push("event_action must be a string".to_string());
            None
        }
    };

    let mut dedup_wrong_type = false;
    let dedup_key = match field(&obj, "dedup_key") {
        None => None,
        Some(Value::String(k)) => {
            let n = k.chars().count();
            if n > MAX_DEDUP_KEY_CHARS {
                errors.push(format!(
                    "dedup_key must be at most {MAX_DEDUP_KEY_CHARS} characters (got {n})"
                ));
            }
            Some(k.clone()).filter(|k| !k.is_empty())
        }
        Some(_) => {
            errors.push("dedup_key must be a string".to_string());
            dedup_wrong_type = true;
            None
        }
    };
    match action.as_deref() {
        Some(a) if a != "trigger" && dedup_key.is_none() && !dedup_wrong_type => {
            errors.push(format!("dedup_key is required for {a}"));
        }
        _ => {}
    }

    let mut summary = None;
    let mut severity = None;
    if action.as_deref() == Some("trigger") {
        match field(&obj, "payload") {
            None => errors.push("payload is required for trigger".to_string()),
            Some(Value::Object(payload)) => {
                summary = check_summary(payload, &mut errors);
                match field(payload, "source") {
                    None => errors.push("payload.source is required".to_string()),
                    Some(Value::String(s)) if s.trim().is_empty() => {
                        errors.push("payload.source must not be empty".to_string())
                    }
                    Some(Value::String(_)) => {}
                    Some(_) => errors.push("payload.source must be a string".to_string()),
                }
                match field(payload, "severity") {
                    None => errors.push("payload.severity is required".to_string()),
                    Some(Value::String(s)) if SEVERITIES.contains(&s.as_str()) => {
                        severity = Some(s.clone())
                    }
                    Some(Value::String(s)) => errors.push(format!(
                        "payload.severity must be one of critical, error, warning, info (got {:?})",
                        s.chars().take(64).collect::<String>()
                    )),
                    Some(_) => errors.push("payload.severity must be a string".to_string()),
                }
                check_timestamp(payload, &mut errors);
                for name in ["component", "group", "class"] {
                    optional_string(payload, "payload.", name, &mut errors);
                }
            }
            Some(_) => errors.push("payload must be an object".to_string()),
        }
        for name in ["client", "client_url"] {
            optional_string(&obj, "", name, &mut errors);
        }
    } else {
        summary = field(&obj, "payload")
            .and_then(|p| p.get("summary"))
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    check_links(&obj, &mut errors);
    check_images(&obj, &mut errors);

    match (routing_key, action) {
        (Some(routing_key), Some(action)) if errors.is_empty() => Ok(ValidEvent {
            routing_key,
            action,
            dedup_key,
            summary,
            severity,
        }),
        _ => Err(errors),
    }
}

/// Validates a change event (`/v2/change/enqueue`).
pub(crate) fn change_event(body: &[u8]) -> Result<ValidEvent, Vec<String>> {
    let mut errors = Vec::new();
    let Some(obj) = parse_object(body, &mut errors) else {
        return Err(errors);
    };
    let routing_key = check_routing_key(&obj, &mut errors);
    let mut summary = None;
    match field(&obj, "payload") {
        None => errors.push("payload is required".to_string()),
        Some(Value::Object(payload)) => {
            summary = check_summary(payload, &mut errors);
            optional_string(payload, "payload.", "source", &mut errors);
            check_timestamp(payload, &mut errors);
        }
        Some(_) => errors.push("payload must be an object".to_string()),
    }
    check_links(&obj, &mut errors);
    match routing_key {
        Some(routing_key) if errors.is_empty() => Ok(ValidEvent {
            routing_key,
            action: "change".to_string(),
            dedup_key: None,
            summary,
            severity: None,
        }),
        _ => Err(errors),
    }
}

/// Whether `s` is an ISO 8601 extended-format date-time:
/// `YYYY-MM-DDTHH:MM[:SS[.fraction]][Z|±HH[:MM]|±HHMM]` (zone optional, `T` or `t`).
pub(crate) fn is_iso8601(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |from: usize, n: usize| -> Option<u32> {
        let part = b.get(from..from + n)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let (Some(year), Some(month), Some(day)) = (digits(0, 4), digits(5, 2), digits(8, 2)) else {
        return false;
    };
    if !at(4, b'-') || !at(7, b'-') || !(1..=12).contains(&month) {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=month_days).contains(&day) || !(at(10, b'T') || at(10, b't')) {
        return false;
    }
    let (Some(hour), Some(minute)) = (digits(11, 2), digits(14, 2)) else {
        return false;
    };
    if !at(13, b':') || hour > 23 || minute > 59 {
        return false;
    }
    let mut i = 16;
    if at(i, b':') {
        match digits(i + 1, 2) {
            Some(sec) if sec <= 60 => i += 3,
            _ => return false,
        }
        if at(i, b'.') || at(i, b',') {
            let start = i + 1;
            i = start;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return false;
            }
        }
    }
    match b.get(i) {
        None => true,
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            let Some(zh) = digits(i + 1, 2) else {
                return false;
            };
            let rest = &b[i + 3..];
            let zm = match rest {
                [] => Some(0),
                [b':', _, _] => digits(i + 4, 2),
                [_, _] => digits(i + 3, 2),
                _ => None,
            };
            zh <= 23 && zm.is_some_and(|m| m <= 59)
        }
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_iso8601;

    #[test]
    fn iso8601_accepts_common_forms() {
        for s in [
            "2024-05-01T12:34:56Z",
            "2024-05-01T12:34:56.789Z",
            "2024-05-01T12:34:56,5+02:00",
            "2024-05-01T12:34:56+0200",
            "2024-05-01T12:34:56-05",
            "2024-05-01T12:34Z",
            "2024-05-01T12:34:56",
            "2024-02-29T00:00:00z",
            "2024-06-30T23:59:60Z",
        ] {
            assert!(is_iso8601(s), "{s}");
        }
    }

    #[test]
    fn iso8601_refuses_the_rest() {
        for s in [
            "",
            "yesterday",
            "2024-05-01",
            "2024-05-01 12:34:56Z",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:60:00Z",
            "2024-05-01T12:34:56.Z",
            "2024-05-01T12:34:56ZZ",
            "2024-05-01T12:34:56+2:00",
            "2024-05-01T12:34:56+02:0",
            "2024-05-01T12:34:56+25:00",
            "1714566896",
        ] {
            assert!(!is_iso8601(s), "{s}");
        }
    }
}
