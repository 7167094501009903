//! PagerDuty's size limits, and the cuts that make an event fit them.

use std::io;

use serde_json::{Map, Value};

/// Largest body we send: PagerDuty's limit is 512 KB, whichever unit it means.
pub const MAX_BODY: usize = 512 * 1000;
/// `payload.summary` limit, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1024;
/// `dedup_key` limit, in characters.
pub const MAX_DEDUP_KEY_CHARS: usize = 255;
/// Appended to every text we cut.
pub const TRUNCATION_MARKER: &str = "…[truncated]";
/// Room kept for `"routing_key":"…",` when an event is built (keys are 32 characters).
pub(super) const ROUTING_KEY_RESERVE: usize = 1024;
/// Largest event (JSON text without `routing_key`) built: [`MAX_BODY`] less that room.
pub(crate) const BODY_BUDGET: usize = MAX_BODY - ROUTING_KEY_RESERVE;
/// Length that `source`, `component`, `group` and `client` are cut to as a last resort.
const LAST_RESORT_CHARS: usize = 1024;

/// Counts the bytes a value serialises to, without building them.
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(crate) fn json_len<T: serde::Serialize + ?Sized>(v: &T) -> usize {
    let mut c = Counter(0);
    match serde_json::to_writer(&mut c, v) {
        Ok(()) => c.0,
        Err(_) => usize::MAX,
    }
}

/// `s` if it has at most `max` characters, else its start and the marker, `max` in all.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    if s.char_indices().nth(max).is_none() {
        return s.to_string();
    }
    let keep = max.saturating_sub(TRUNCATION_MARKER.chars().count());
    let end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    format!("{}{TRUNCATION_MARKER}", &s[..end])
}

/// Bytes a character takes inside a JSON string, as serde_json writes it.
fn escaped_char_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if u32::from(c) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// Bytes `s` takes inside a JSON string (its quotes not counted).
pub(crate) fn escaped_len(s: &str) -> usize {
    s.chars().map(escaped_char_len).sum()
}

/// `s` cut so that, marker included, it takes at most `max` bytes once escaped (only the
/// marker when even that does not fit).
pub(super) fn cut_escaped(s: &str, max: usize) -> String {
    let n = escaped_len(s);
    if n > max && max < escaped_len(TRUNCATION_MARKER) {
        return TRUNCATION_MARKER.into();
    }
    join_within(&[(s, n)], max)
}

/// The texts `parts` (each with its [`escaped_len`]) joined, at most `max` bytes once
/// escaped: all of them when they fit; else as much of them as fits before the marker, cut
/// on a character boundary, then the marker (nothing at all when even the marker does not
/// fit). Only what is kept is copied: the work is bounded by `max`, not by the parts.
pub(crate) fn join_within(parts: &[(&str, usize)], max: usize) -> String {
    let total: usize = parts.iter().map(|(_, n)| n).sum();
    if total <= max {
        let mut out = String::with_capacity(parts.iter().map(|(s, _)| s.len()).sum());
        parts.iter().for_each(|(s, _)| out.push_str(s));
        return out;
    }
    let Some(mut room) = max.checked_sub(escaped_len(TRUNCATION_MARKER)) else {
        return String::new();
    };
    let mut out = String::with_capacity(room + TRUNCATION_MARKER.len());
    for (s, n) in parts {
        if *n <= room {
            out.push_str(s);
            room -= n;
            continue;
        }
        let mut end = 0;
        for (i, c) in s.char_indices() {
            let n = escaped_char_len(c);
            if n > room {
                break;
            }
            room -= n;
            end = i + c.len_utf8();
        }
        out.push_str(&s[..end]);
        break;
    }
    out.push_str(TRUNCATION_MARKER);
    out
}

/// The fair share of `room` among texts of escaped lengths `lengths`, when they do not all
/// fit in it: the texts shorter than the share keep all they have, the others are cut to the
/// share, the same for all of them (the largest share that fits). `None` when all fit.
pub(crate) fn fair_share(lengths: &[usize], room: usize) -> Option<usize> {
    if lengths.iter().sum::<usize>() <= room {
        return None;
    }
    let mut sorted = lengths.to_vec();
    sorted.sort_unstable();
    let mut left = room;
    for (i, len) in sorted.iter().enumerate() {
        let share = left / (sorted.len() - i);
        if *len > share {
            return Some(share);
        }
        left -= len;
    }
    None
}

fn details_mut(body: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    body.get_mut("payload")?
        .as_object_mut()?
        .get_mut("custom_details")?
        .as_object_mut()
}

/// Cuts a string detail by the body's excess; returns the new body size.
fn cut_detail(body: &mut Map<String, Value>, key: &str, size: usize, budget: usize) -> usize {
    let Some(Value::String(s)) = details_mut(body).and_then(|d| d.get_mut(key)) else {
        return size;
    };
    let target = escaped_len(s).saturating_sub(size.saturating_sub(budget));
    *s = cut_escaped(s, target);
    json_len(body)
}

/// Makes the body fit in `budget` bytes: cut `LongOutput`, drop `Metrics` (giving their room
/// back to `LongOutput`), cut `Output`, drop the other details (largest first), and as a last resort drop the links and cut the
/// free-text payload fields. The event itself is always kept.
pub(super) fn shrink(body: &mut Map<String, Value>, budget: usize) {
    let mut size = json_len(body);
    if size <= budget {
        return;
    }
    let long_output = details_mut(body)
        .and_then(|d| d.get("LongOutput"))
        .and_then(Value::as_str)
        .map(str::to_string);
    size = cut_detail(body, "LongOutput", size, budget);
    if size <= budget {
        return;
    }
    if details_mut(body)
        .and_then(|d| d.remove("Metrics"))
        .is_some()
    {
        // The metrics' room goes back to the long output first.
        if let (Some(full), Some(Value::String(cut))) = (
            long_output,
            details_mut(body).and_then(|d| d.get_mut("LongOutput")),
        ) {
            *cut = full;
        }
        size = cut_detail(body, "LongOutput", json_len(body), budget);
        if size <= budget {
            return;
        }
    }
    size = cut_detail(body, "Output", size, budget);
    while size > budget {
        let Some(details) = details_mut(body) else {
            break;
        };
        let largest = details
            .iter()
            .max_by_key(|(k, v)| k.len() + json_len(*v))
            .map(|(k, _)| k.clone());
        let Some(largest) = largest else {
            break;
        };
        details.remove(&largest);
        size = json_len(body);
    }
    if size <= budget {
        return;
    }
    body.remove("links");
    body.remove("client_url");
    if let Some(Value::String(c)) = body.get_mut("client") {
        *c = truncate_chars(c, LAST_RESORT_CHARS);
    }
    if let Some(payload) = body.get_mut("payload").and_then(Value::as_object_mut) {
        for key in ["source", "component", "group"] {
            if let Some(Value::String(s)) = payload.get_mut(key) {
                *s = truncate_chars(s, LAST_RESORT_CHARS);
            }
        }
    }
}
