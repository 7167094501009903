//! The PagerDuty Events API v2 body for a Centreon status or acknowledgement (certified format, defects fixed).
//!
//! The layout is the certified Lua connector's (`dedup_key`s, `custom_details` keys), with
//! its defects fixed: summary cut to 1024 characters, control characters escaped, names
//! percent-encoded in links, a service link, `client_url`, RFC 3339 timestamps, metrics
//! from the perfdata, and a body that always fits PagerDuty's size limit.

pub mod options;
pub mod output;
pub mod perfdata;
pub mod template;

use serde_json::{Map, Value};

pub use options::{PayloadOptions, Severity, SeverityMap};

use crate::event::{Context, Kind, ObjectKey, StatusEvent};
use crate::params::Secret;
use crate::timefmt;

/// Largest body we send: PagerDuty's limit is 512 KB, whichever unit it means.
pub const MAX_BODY: usize = 512 * 1000;
/// `payload.summary` limit, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1024;
/// `dedup_key` limit, in characters.
pub const MAX_DEDUP_KEY_CHARS: usize = 255;
/// Appended to every text we cut.
pub const TRUNCATION_MARKER: &str = "…[truncated]";
/// Room kept for `"routing_key":"…",` when an event is built (keys are 32 characters).
const ROUTING_KEY_RESERVE: usize = 1024;
/// Largest event (JSON text without `routing_key`) built: [`MAX_BODY`] less that room.
pub(crate) const BODY_BUDGET: usize = MAX_BODY - ROUTING_KEY_RESERVE;
/// Length that `source`, `component`, `group` and `client` are cut to as a last resort.
const LAST_RESORT_CHARS: usize = 1024;

/// `event_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Trigger,
    Acknowledge,
    Resolve,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Trigger => "trigger",
            Action::Acknowledge => "acknowledge",
            Action::Resolve => "resolve",
        }
    }
}

/// An event ready to send, without its routing key.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub dedup_key: String,
    pub action: Action,
    /// `payload.summary` (at most 1024 characters).
    pub summary: String,
    /// Everything sent except `routing_key`: `event_action`, `dedup_key`, `payload`,
    /// `links`, `client`, `client_url`.
    pub body: Map<String, Value>,
}

/// `<host_id>_H` for a host, `<host_id>_<service_id>` for a service (the certified
/// connector's keys), after `prefix`. At most 255 characters: a long prefix is cut so that
/// the identifiers are always kept whole.
pub fn dedup_key(key: ObjectKey, prefix: &str) -> String {
    let id = match key.kind() {
        Kind::Host => format!("{}_H", key.host_id),
        Kind::Service => format!("{}_{}", key.host_id, key.service_id),
    };
    let room = MAX_DEDUP_KEY_CHARS.saturating_sub(id.len());
    let mut out: String = prefix.chars().take(room).collect();
    out.push_str(&id);
    out
}

/// The event for a host or service status.
pub fn status_event(ev: &StatusEvent, action: Action, cfg: &PayloadOptions) -> Outgoing {
    let obj = Object::new(ev.key, &ev.ctx);
    let (first, rest) = split_first_line(&ev.output);
    let long: Vec<&str> = [rest.trim_end_matches(['\r', '\n']), ev.long_output.as_str()]
        .into_iter()
        .filter(|s| !s.trim().is_empty())
        .collect();
    // use_long_output, output_size_limit, remove_line_break_in_output
    let (output, long) = cfg.output.details(first, &long.join("\n"));
    let summary = state_line(&obj.label(), ev.state_name(), &output);

    let mut details = Map::new();
    obj.group_details(&mut details);
    details.insert("Output".into(), output.into());
    if let Some(long) = long {
        details.insert("LongOutput".into(), long.into());
    }
    details.insert(
        "StateType".into(),
        if ev.hard { "HARD" } else { "SOFT" }.into(),
    );
    if let (Some(a), Some(m)) = (ev.check_attempt, ev.max_check_attempts) {
        details.insert("Attempt".into(), format!("{a}/{m}").into());
    }
    obj.context_details(&mut details);
    let metrics = metrics(&ev.perfdata);
    if !metrics.is_empty() {
        details.insert("Metrics".into(), Value::Object(metrics));
    }

    let severity = cfg.severities.of(ev.kind(), ev.state);
    obj.assemble(action, cfg, &summary, severity, ev.observed_at(), details)
}

/// What an event with no status behind it says: an acknowledgement, or a resolve when a
/// downtime starts (`downtime_action = resolve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Note<'a> {
    pub action: Action,
    /// Summary text after the object's name: "acknowledged", "resolved: downtime started".
    pub what: &'a str,
    pub author: Option<&'a str>,
    pub comment: Option<&'a str>,
    /// When it happened (Unix seconds).
    pub at: Option<i64>,
}

impl<'a> Note<'a> {
    /// An acknowledgement set in Centreon by `author` at `at`.
    pub fn acknowledged(
        author: Option<&'a str>,
        comment: Option<&'a str>,
        at: Option<i64>,
    ) -> Self {
        Note {
            action: Action::Acknowledge,
            what: "acknowledged",
            author,
            comment,
            at,
        }
    }

    /// The object entered a downtime and `downtime_action = resolve`.
    pub fn downtime_started() -> Note<'static> {
        Note {
            action: Action::Resolve,
            what: "resolved: downtime started",
            author: None,
            comment: None,
            at: None,
        }
    }
}

/// The event for a [`Note`] about `key`.
pub fn note_event(key: ObjectKey, ctx: &Context, note: &Note, cfg: &PayloadOptions) -> Outgoing {
    let obj = Object::new(key, ctx);
    let author = note.author.map(str::trim).filter(|a| !a.is_empty());
    let comment = note.comment.filter(|c| !c.trim().is_empty());
    let mut summary = format!("{}: {}", obj.label(), note.what);
    if let Some(a) = author {
        summary.push_str(" by ");
        summary.push_str(a);
    }
    let (comment_line, _) = split_first_line(comment.unwrap_or(""));
    if !comment_line.is_empty() {
        summary.push_str(": ");
        summary.push_str(comment_line);
    }

    let mut details = Map::new();
    obj.group_details(&mut details);
    if let Some(a) = author {
        details.insert("Author".into(), a.into());
    }
    if let Some(c) = comment {
        details.insert("Comment".into(), c.into());
    }
    obj.context_details(&mut details);
    obj.assemble(
        note.action,
        cfg,
        &summary,
        Severity::Info,
        note.at.filter(|t| *t > 0),
        details,
    )
}

/// An event described field by field rather than decided from a Centreon status: the
/// command line's `send` and `pandora`.
#[derive(Debug, Clone, PartialEq)]
pub struct Custom<'a> {
    pub action: Action,
    /// At most [`MAX_DEDUP_KEY_CHARS`] characters (the caller checks: a key is never cut).
    pub dedup_key: &'a str,
    /// Cut to [`MAX_SUMMARY_CHARS`] characters.
    pub summary: &'a str,
    pub source: &'a str,
    pub severity: Severity,
    /// When it happened (Unix seconds).
    pub timestamp: Option<i64>,
    pub component: Option<&'a str>,
    pub group: Option<&'a str>,
    pub class: Option<&'a str>,
    pub details: Map<String, Value>,
    /// `links`: `href` and, when given, `text`.
    pub links: Vec<(&'a str, Option<&'a str>)>,
    /// `client` and `client_url` (triggers only, as PagerDuty wants).
    pub client: Option<&'a str>,
    pub client_url: Option<&'a str>,
}

/// The event for a [`Custom`] description; its body always fits PagerDuty's size limit.
pub fn custom_event(c: &Custom) -> Outgoing {
    let summary = truncate_chars(c.summary, MAX_SUMMARY_CHARS);
    let mut payload = Map::new();
    payload.insert("summary".into(), summary.clone().into());
    payload.insert("source".into(), c.source.into());
    payload.insert("severity".into(), c.severity.as_str().into());
    if let Some(t) = c.timestamp {
        payload.insert("timestamp".into(), timefmt::rfc3339_utc(t).into());
    }
    for (name, value) in [
        ("component", c.component),
        ("group", c.group),
        ("class", c.class),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            payload.insert(name.into(), v.into());
        }
    }
    if !c.details.is_empty() {
        payload.insert("custom_details".into(), Value::Object(c.details.clone()));
    }
    let mut body = Map::new();
    body.insert("event_action".into(), c.action.as_str().into());
    body.insert("dedup_key".into(), c.dedup_key.into());
    body.insert("payload".into(), Value::Object(payload));
    if !c.links.is_empty() {
        let links = c
            .links
            .iter()
            .map(|(href, text)| link(href.to_string(), *text))
            .collect();
        body.insert("links".into(), Value::Array(links));
    }
    if c.action == Action::Trigger {
        if let Some(client) = c.client {
            body.insert("client".into(), client.into());
        }
        if let Some(url) = c.client_url {
            body.insert("client_url".into(), url.into());
        }
    }
    shrink(&mut body, BODY_BUDGET);
    Outgoing {
        dedup_key: c.dedup_key.to_string(),
        action: c.action,
        summary,
        body,
    }
}

/// A change event (`/v2/change/enqueue`): PagerDuty records it on the service of the routing
/// key and opens no incident. The body without `routing_key` ([`encode_body`] adds it).
pub fn change_event(
    summary: &str,
    source: &str,
    timestamp: i64,
    details: Map<String, Value>,
) -> Map<String, Value> {
    let mut payload = Map::new();
    payload.insert(
        "summary".into(),
        truncate_chars(summary, MAX_SUMMARY_CHARS).into(),
    );
    payload.insert("timestamp".into(), timefmt::rfc3339_utc(timestamp).into());
    payload.insert("source".into(), source.into());
    if !details.is_empty() {
        payload.insert("custom_details".into(), Value::Object(details));
    }
    let mut body = Map::new();
    body.insert("payload".into(), Value::Object(payload));
    shrink(&mut body, BODY_BUDGET);
    body
}

/// Lists, in a host's event, the service problems it suppresses
/// (`suppress_services_of_down_hosts`): `custom_details.SuppressedServices`, one line each.
pub fn list_suppressed_services(out: &mut Outgoing, services: &[&StatusEvent]) {
    if services.is_empty() {
        return;
    }
    let lines: Vec<Value> = services
        .iter()
        .map(|ev| {
            let obj = Object::new(ev.key, &ev.ctx);
            let (first, _) = split_first_line(&ev.output);
            let line = state_line(&obj.service, ev.state_name(), first);
            truncate_chars(&line, MAX_SUMMARY_CHARS).into()
        })
        .collect();
    if let Some(Value::Object(details)) = out
        .body
        .get_mut("payload")
        .and_then(|p| p.get_mut("custom_details"))
    {
        details.insert("SuppressedServices".into(), Value::Array(lines));
    }
}

/// The final request body: `routing_key` first, then the event; at most [`MAX_BODY`] bytes
/// (shrunk further if an unusually long routing key needs the room).
pub fn encode(out: &Outgoing, routing_key: &Secret) -> Vec<u8> {
    render(&out.body, routing_key.expose())
}

/// [`encode`] of a body built without an [`Outgoing`] (a [`change_event`]).
pub fn encode_body(body: &Map<String, Value>, routing_key: &Secret) -> Vec<u8> {
    render(body, routing_key.expose())
}

/// [`encode`] of a body that is JSON text already, as the outbox stores it: the same bytes,
/// the text spliced as it is, parsed only when it must be shrunk to fit.
pub fn encode_json(body: &str, routing_key: &Secret) -> Vec<u8> {
    let key = routing_key.expose();
    let prefix = key_prefix(key);
    if body.len() <= MAX_BODY.saturating_sub(prefix.len())
        && body.starts_with('{')
        && body.ends_with('}')
    {
        return join(prefix, body.as_bytes());
    }
    render(&serde_json::from_str(body).unwrap_or_default(), key)
}

/// The body as [`encode`] would send it, with `"routing_key":"<masked>"`: for logs.
pub fn redacted(out: &Outgoing) -> String {
    String::from_utf8_lossy(&render(&out.body, "<masked>")).into_owned()
}

/// The body as [`encode`] would send it, the routing key masked as [`Secret::masked`] shows
/// it (`log_curl_commands`): the same bytes once the real key is put back.
pub fn with_masked_key(out: &Outgoing, routing_key: &Secret) -> String {
    String::from_utf8_lossy(&render(&out.body, &routing_key.masked())).into_owned()
}

fn render(body: &Map<String, Value>, routing_key: &str) -> Vec<u8> {
    let prefix = key_prefix(routing_key);
    let budget = MAX_BODY.saturating_sub(prefix.len());
    let mut text = to_bytes(body);
    if text.len() > budget {
        let mut smaller = body.clone();
        shrink(&mut smaller, budget);
        text = to_bytes(&smaller);
    }
    join(prefix, &text)
}

/// `{"routing_key":"<key>"`: the request body up to the event's fields.
fn key_prefix(routing_key: &str) -> Vec<u8> {
    let mut bytes = b"{\"routing_key\":".to_vec();
    bytes.extend_from_slice(
        Value::String(routing_key.to_string())
            .to_string()
            .as_bytes(),
    );
    bytes
}

/// The prefix, then the fields of the JSON object `body`: its opening brace becomes the comma
/// (same length, so `body` fitting the budget is enough).
fn join(mut bytes: Vec<u8>, body: &[u8]) -> Vec<u8> {
    if body.len() <= 2 {
        bytes.push(b'}');
    } else {
        bytes.push(b',');
        bytes.extend_from_slice(&body[1..]);
    }
    bytes
}

fn to_bytes(body: &Map<String, Value>) -> Vec<u8> {
    body_text(body).into_bytes()
}

/// `body` as JSON text, as the outbox stores it and [`encode`] sends it.
pub fn body_text(body: &Map<String, Value>) -> String {
    // Sized first, then written once: growing the text by doubling took about 5 reallocations
    // per payload, each a turn of a malloc arena lock that Broker's thread may share (perf:
    // most of the times the committer woke Broker's thread waiting for that lock).
    // Serialising a `Map` of `Value`s cannot fail (keys are strings, numbers finite).
    // Bodies are shrunk to fit `MAX_BODY` before they get here; the cap only guards the
    // `usize::MAX` that `json_len` says for what cannot be serialised.
    let mut out = Vec::with_capacity(json_len(body).min(MAX_BODY));
    match serde_json::to_writer(&mut out, body).map(|()| String::from_utf8(out)) {
        Ok(Ok(text)) => text,
        _ => "{}".into(),
    }
}

/// Counts the bytes a value serialises to, without building them.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
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

/// The host or service an event is about, with its display names.
struct Object<'a> {
    key: ObjectKey,
    ctx: &'a Context,
    host: String,
    service: String,
}

/// A name the cache gave, unless it is blank.
fn known(name: &Option<String>) -> Option<&str> {
    name.as_deref().filter(|n| !n.trim().is_empty())
}

impl<'a> Object<'a> {
    fn new(key: ObjectKey, ctx: &'a Context) -> Self {
        let host = known(&ctx.host_name)
            .map(str::to_string)
            .unwrap_or_else(|| format!("host #{}", key.host_id));
        let service = known(&ctx.service_description)
            .map(str::to_string)
            .unwrap_or_else(|| format!("service #{}", key.service_id));
        Object {
            key,
            ctx,
            host,
            service,
        }
    }

    fn kind(&self) -> Kind {
        self.key.kind()
    }

    /// `host` or `host/service`.
    fn label(&self) -> String {
        match self.kind() {
            Kind::Host => self.host.clone(),
            Kind::Service => format!("{}/{}", self.host, self.service),
        }
    }

    /// The certified connector's keys: `Hostgroups`, `Hostseverity` (+ service ones).
    fn group_details(&self, details: &mut Map<String, Value>) {
        details.insert("Hostgroups".into(), self.ctx.hostgroups.join(", ").into());
        if let Some(s) = self.ctx.host_severity {
            details.insert("Hostseverity".into(), s.into());
        }
        if self.kind() == Kind::Service {
            details.insert(
                "Servicegroups".into(),
                self.ctx.servicegroups.join(", ").into(),
            );
            if let Some(s) = self.ctx.service_severity {
                details.insert("Serviceseverity".into(), s.into());
            }
        }
    }

    /// `Poller`, `HostAddress`, `NotesUrl`, `ActionUrl`, when known.
    fn context_details(&self, details: &mut Map<String, Value>) {
        for (name, value) in [
            ("Poller", &self.ctx.poller),
            ("HostAddress", &self.ctx.host_address),
            ("NotesUrl", &self.ctx.notes_url),
            ("ActionUrl", &self.ctx.action_url),
        ] {
            if let Some(v) = known(value) {
                details.insert(name.into(), v.into());
            }
        }
    }

    /// Host page and service page links, for the names the cache knows.
    fn links(&self, base: &str) -> Vec<Value> {
        let mut links = Vec::new();
        let Some(host) = known(&self.ctx.host_name) else {
            return links;
        };
        let host = percent_encode(host);
        links.push(link(
            format!("{base}/centreon/main.php?p=20202&o=hd&host_name={host}"),
            Some("Host page"),
        ));
        if self.kind() == Kind::Service
            && let Some(svc) = known(&self.ctx.service_description)
        {
            links.push(link(
                    format!(
                        "{base}/centreon/main.php?p=20201&o=svcd&host_name={host}&service_description={}",
                        percent_encode(svc)
                    ),
                    Some("Service page"),
                ));
        }
        links
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        &self,
        action: Action,
        cfg: &PayloadOptions,
        summary: &str,
        severity: Severity,
        timestamp: Option<i64>,
        details: Map<String, Value>,
    ) -> Outgoing {
        let summary = truncate_chars(summary, MAX_SUMMARY_CHARS);
        let dedup_key = dedup_key(self.key, &cfg.dedup_key_prefix);
        let source = cfg
            .source
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(&self.host);

        let mut payload = Map::new();
        payload.insert("summary".into(), summary.clone().into());
        payload.insert("source".into(), source.into());
        payload.insert("severity".into(), severity.as_str().into());
        if let Some(t) = timestamp {
            payload.insert("timestamp".into(), timefmt::rfc3339_utc(t).into());
        }
        let component = match self.kind() {
            Kind::Host => &self.host,
            Kind::Service => &self.service,
        };
        payload.insert("component".into(), component.as_str().into());
        if !self.ctx.hostgroups.is_empty() {
            payload.insert("group".into(), self.ctx.hostgroups.join(", ").into());
        }
        let class = match self.kind() {
            Kind::Host => "host",
            Kind::Service => "service",
        };
        payload.insert("class".into(), class.into());
        payload.insert("custom_details".into(), Value::Object(details));

        let base = cfg.centreon_url.trim_end_matches('/');
        let mut body = Map::new();
        body.insert("event_action".into(), action.as_str().into());
        body.insert("dedup_key".into(), dedup_key.as_str().into());
        body.insert("payload".into(), Value::Object(payload));
        let links = self.links(base);
        if !links.is_empty() {
            body.insert("links".into(), Value::Array(links));
        }
        if action == Action::Trigger {
            body.insert("client".into(), cfg.client.as_str().into());
            body.insert("client_url".into(), format!("{base}/centreon/").into());
        }
        shrink(&mut body, BODY_BUDGET);
        Outgoing {
            dedup_key,
            action,
            summary,
            body,
        }
    }
}

fn link(href: String, text: Option<&str>) -> Value {
    let mut l = Map::new();
    l.insert("href".into(), href.into());
    if let Some(t) = text {
        l.insert("text".into(), t.into());
    }
    Value::Object(l)
}

/// The first line (trimmed) and everything after it.
fn split_first_line(text: &str) -> (&str, &str) {
    match text.split_once('\n') {
        Some((first, rest)) => (first.trim(), rest),
        None => (text.trim(), ""),
    }
}

/// `<name>: <STATE> - <output>`, the output without the state it starts with (plugins
/// write `CRITICAL - HTTP 503`: the line says CRITICAL once).
fn state_line(name: &str, state: &str, output: &str) -> String {
    let output = without_state(output, state);
    let mut line = format!("{name}: {state}");
    if !output.is_empty() {
        line.push_str(" - ");
        line.push_str(output);
    }
    line
}

/// `text` without a leading `state` (any case) followed by `:`, ` -` or nothing: `CRITICAL -
/// x`, `critical: x` and `CRITICAL` lose it; `CRITICAL x`, `CRITICALITY: x` and another
/// state's word (a contradiction worth reading) are kept.
pub fn without_state<'a>(text: &'a str, state: &str) -> &'a str {
    let Some(head) = text.get(..state.len()) else {
        return text;
    };
    if state.is_empty() || !head.eq_ignore_ascii_case(state) {
        return text;
    }
    let rest = &text[state.len()..];
    let after = rest
        .strip_prefix(':')
        .or_else(|| rest.strip_prefix(" -"))
        .or_else(|| rest.strip_prefix(" :"))
        .unwrap_or(rest);
    let separated = rest.is_empty()
        || (after.len() < rest.len()
            && (after.is_empty() || after.starts_with(char::is_whitespace)));
    if separated { after.trim_start() } else { text }
}

/// `Metrics`: name -> {value, unit, warn, crit, min, max}, first occurrence of a name wins.
fn metrics(perfdata: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for m in perfdata::parse(perfdata) {
        if out.contains_key(&m.name) {
            continue;
        }
        let mut o = Map::new();
        let num = |v: f64| serde_json::Number::from_f64(v).map(Value::Number);
        if let Some(v) = num(m.value) {
            o.insert("value".into(), v);
        }
        if !m.unit.is_empty() {
            o.insert("unit".into(), m.unit.into());
        }
        if let Some(w) = m.warn {
            o.insert("warn".into(), w.into());
        }
        if let Some(c) = m.crit {
            o.insert("crit".into(), c.into());
        }
        if let Some(v) = m.min.and_then(num) {
            o.insert("min".into(), v);
        }
        if let Some(v) = m.max.and_then(num) {
            o.insert("max".into(), v);
        }
        out.insert(m.name, Value::Object(o));
    }
    out
}

/// Percent-encodes every byte but the unreserved characters `A-Za-z0-9-._~`.
fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
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
fn cut_escaped(s: &str, max: usize) -> String {
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
fn shrink(body: &mut Map<String, Value>, budget: usize) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ParamValue};
    use crate::event::{Bbdo, Flags};
    use serde_json::json;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn cfg() -> PayloadOptions {
        cfg_with(&[])
    }

    /// The test configuration with `extra` parameters, as users write them.
    fn cfg_with(extra: &[(&str, &str)]) -> PayloadOptions {
        let params: Vec<(String, ParamValue)> = [
            ("pdy_routing_key", KEY),
            ("pdy_centreon_url", "https://centreon.example.com"),
            ("outbox_path", "/tmp/unused.db"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), ParamValue::Str(v.to_string())))
        .collect();
        Config::from_params(&params).unwrap().0.payload
    }

    fn status(host_id: u64, service_id: u64, state: i64) -> StatusEvent {
        StatusEvent {
            bbdo: Bbdo::V3,
            key: ObjectKey {
                host_id,
                service_id,
            },
            state,
            hard: true,
            check_attempt: None,
            max_check_attempts: None,
            last_check: Some(1_700_000_000),
            last_state_change: Some(1_700_000_000),
            last_hard_state_change: None,
            output: String::new(),
            long_output: String::new(),
            perfdata: String::new(),
            flags: Flags::default(),
            ctx: Context::default(),
        }
    }

    fn critical_disk() -> StatusEvent {
        let mut ev = status(12, 34, 2);
        ev.check_attempt = Some(3);
        ev.max_check_attempts = Some(3);
        ev.output = "CRITICAL - /var 95% used\nline two\n".into();
        ev.long_output = "details".into();
        ev.perfdata = "'/var'=95%;80;90;0;100 'inodes used'=1234;;;0; bad=U".into();
        ev.ctx = Context {
            host_name: Some("db-01.paris".into()),
            service_description: Some("Disk /var".into()),
            hostgroups: vec!["linux".into(), "databases".into()],
            servicegroups: vec!["storage".into()],
            host_severity: Some(10),
            service_severity: None,
            poller: Some("central".into()),
            host_address: Some("10.0.0.12".into()),
            notes_url: None,
            action_url: None,
            template_fields: Vec::new(),
        };
        ev
    }

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("valid JSON")
    }

    #[test]
    fn the_summary_says_the_state_once() {
        // (kind, state, output, summary's end after the object's name)
        let table: &[(Kind, i64, &str, &str)] = &[
            (
                Kind::Service,
                2,
                "CRITICAL - HTTP 503",
                "CRITICAL - HTTP 503",
            ),
            (
                Kind::Service,
                2,
                "CRITICAL: HTTP 503",
                "CRITICAL - HTTP 503",
            ),
            (
                Kind::Service,
                2,
                "Critical : HTTP 503",
                "CRITICAL - HTTP 503",
            ),
            (
                Kind::Service,
                2,
                "critical -HTTP 503",
                "CRITICAL - critical -HTTP 503",
            ),
            (Kind::Service, 2, "CRITICAL", "CRITICAL"),
            (Kind::Service, 2, "CRITICAL - ", "CRITICAL"),
            (
                Kind::Service,
                2,
                "CRITICAL HTTP 503",
                "CRITICAL - CRITICAL HTTP 503",
            ),
            (
                Kind::Service,
                2,
                "CRITICALITY: high",
                "CRITICAL - CRITICALITY: high",
            ),
            (
                Kind::Service,
                2,
                "HTTP CRITICAL: 503",
                "CRITICAL - HTTP CRITICAL: 503",
            ),
            // another state's word contradicts the state sent: kept
            (
                Kind::Service,
                2,
                "WARNING - HTTP 503",
                "CRITICAL - WARNING - HTTP 503",
            ),
            (Kind::Service, 0, "OK - HTTP 200", "OK - HTTP 200"),
            (Kind::Service, 0, "OK: fine", "OK - fine"),
            (Kind::Service, 1, "WARNING - load 9", "WARNING - load 9"),
            (
                Kind::Service,
                3,
                "UNKNOWN: no answer",
                "UNKNOWN - no answer",
            ),
            (Kind::Host, 0, "UP - rta 1ms", "UP - rta 1ms"),
            (Kind::Host, 1, "DOWN - unreachable", "DOWN - unreachable"),
            (
                Kind::Host,
                1,
                "CRITICAL - 10.0.0.6: rta nan",
                "DOWN - CRITICAL - 10.0.0.6: rta nan",
            ),
            (
                Kind::Host,
                2,
                "UNREACHABLE: parent down",
                "UNREACHABLE - parent down",
            ),
            (Kind::Service, 2, "", "CRITICAL"),
            (Kind::Service, 2, "é - x", "CRITICAL - é - x"),
        ];
        for (kind, state, output, end) in table {
            let mut ev = critical_disk();
            if *kind == Kind::Host {
                ev.key.service_id = 0;
                ev.ctx.service_description = None;
            }
            ev.state = *state;
            ev.output = format!("{output}\nsecond line");
            let out = status_event(&ev, Action::Trigger, &cfg());
            let name = match kind {
                Kind::Host => "db-01.paris",
                Kind::Service => "db-01.paris/Disk /var",
            };
            assert_eq!(out.summary, format!("{name}: {end}"), "{output:?}");
            // the details keep the output as the plugin wrote it
            assert_eq!(
                out.body["payload"]["custom_details"]["Output"],
                output.trim(),
                "{output:?}"
            );
        }
    }

    #[test]
    fn golden_bbdo3_service_critical() {
        let out = status_event(&critical_disk(), Action::Trigger, &cfg());
        assert_eq!(out.dedup_key, "12_34");
        assert_eq!(out.action, Action::Trigger);
        assert_eq!(
            out.summary,
            "db-01.paris/Disk /var: CRITICAL - /var 95% used"
        );
        let expected = json!({
            "routing_key": KEY,
            "event_action": "trigger",
            "dedup_key": "12_34",
            "payload": {
                "summary": "db-01.paris/Disk /var: CRITICAL - /var 95% used",
                "source": "db-01.paris",
                "severity": "critical",
                "timestamp": "2023-11-14T22:13:20Z",
                "component": "Disk /var",
                "group": "linux, databases",
                "class": "service",
                "custom_details": {
                    "Hostgroups": "linux, databases",
                    "Hostseverity": 10,
                    "Servicegroups": "storage",
                    "Output": "CRITICAL - /var 95% used",
                    "LongOutput": "line two\ndetails",
                    "StateType": "HARD",
                    "Attempt": "3/3",
                    "Poller": "central",
                    "HostAddress": "10.0.0.12",
                    "Metrics": {
                        "/var": {"value": 95.0, "unit": "%", "warn": "80", "crit": "90", "min": 0.0, "max": 100.0},
                        "inodes used": {"value": 1234.0, "min": 0.0}
                    }
                }
            },
            "links": [
                {"href": "https://centreon.example.com/centreon/main.php?p=20202&o=hd&host_name=db-01.paris", "text": "Host page"},
                {"href": "https://centreon.example.com/centreon/main.php?p=20201&o=svcd&host_name=db-01.paris&service_description=Disk%20%2Fvar", "text": "Service page"}
            ],
            "client": "Centreon Stream Connector",
            "client_url": "https://centreon.example.com/centreon/"
        });
        let body = encode(&out, &Secret::new(KEY));
        assert!(body.starts_with(format!("{{\"routing_key\":\"{KEY}\",").as_bytes()));
        assert_eq!(parse(&body), expected);
    }

    #[test]
    fn golden_host_down() {
        let mut ev = status(7, 0, 1);
        ev.hard = false;
        ev.check_attempt = Some(1);
        ev.max_check_attempts = Some(3);
        ev.last_check = Some(0);
        ev.last_state_change = Some(1_709_164_800);
        ev.output = "CRITICAL - 10.0.0.7: rta nan, lost 100%".into();
        ev.perfdata =
            "rta=0.000ms;3000.000;5000.000;0; pl=100%;80;100;; rtmax=0.000ms;;;; rtmin=0.000ms;;;;"
                .into();
        ev.ctx.host_name = Some("web 7 (é)".into());
        let mut c = cfg();
        c.source = Some("centreon-prod".into());
        c.centreon_url = "http://centreon/".into();
        c.dedup_key_prefix = "prod-".into();
        let out = status_event(&ev, Action::Trigger, &c);
        assert_eq!(out.dedup_key, "prod-7_H");
        let expected = json!({
            "routing_key": "<masked>",
            "event_action": "trigger",
            "dedup_key": "prod-7_H",
            "payload": {
                "summary": "web 7 (é): DOWN - CRITICAL - 10.0.0.7: rta nan, lost 100%",
                "source": "centreon-prod",
                "severity": "critical",
                "timestamp": "2024-02-29T00:00:00Z",
                "component": "web 7 (é)",
                "class": "host",
                "custom_details": {
                    "Hostgroups": "",
                    "Output": "CRITICAL - 10.0.0.7: rta nan, lost 100%",
                    "StateType": "SOFT",
                    "Attempt": "1/3",
                    "Metrics": {
                        "rta": {"value": 0.0, "unit": "ms", "warn": "3000.000", "crit": "5000.000", "min": 0.0},
                        "pl": {"value": 100.0, "unit": "%", "warn": "80", "crit": "100"},
                        "rtmax": {"value": 0.0, "unit": "ms"},
                        "rtmin": {"value": 0.0, "unit": "ms"}
                    }
                }
            },
            "links": [
                {"href": "http://centreon/centreon/main.php?p=20202&o=hd&host_name=web%207%20%28%C3%A9%29", "text": "Host page"}
            ],
            "client": "Centreon Stream Connector",
            "client_url": "http://centreon/centreon/"
        });
        assert_eq!(parse(redacted(&out).as_bytes()), expected);
        assert!(!redacted(&out).contains(KEY));
    }

    #[test]
    fn golden_service_resolve() {
        let mut ev = critical_disk();
        ev.state = 0;
        ev.output = "OK - /var 40% used".into();
        ev.long_output.clear();
        ev.perfdata.clear();
        ev.ctx.hostgroups.clear();
        ev.ctx.servicegroups.clear();
        ev.ctx.host_severity = None;
        ev.ctx.service_severity = Some(3);
        ev.ctx.poller = None;
        ev.ctx.host_address = None;
        ev.ctx.notes_url = Some("https://wiki/disk".into());
        ev.ctx.action_url = Some("https://act/disk".into());
        let out = status_event(&ev, Action::Resolve, &cfg());
        let expected = json!({
            "routing_key": KEY,
            "event_action": "resolve",
            "dedup_key": "12_34",
            "payload": {
                "summary": "db-01.paris/Disk /var: OK - /var 40% used",
                "source": "db-01.paris",
                "severity": "info",
                "timestamp": "2023-11-14T22:13:20Z",
                "component": "Disk /var",
                "class": "service",
                "custom_details": {
                    "Hostgroups": "",
                    "Servicegroups": "",
                    "Serviceseverity": 3,
                    "Output": "OK - /var 40% used",
                    "StateType": "HARD",
                    "Attempt": "3/3",
                    "NotesUrl": "https://wiki/disk",
                    "ActionUrl": "https://act/disk"
                }
            },
            "links": [
                {"href": "https://centreon.example.com/centreon/main.php?p=20202&o=hd&host_name=db-01.paris", "text": "Host page"},
                {"href": "https://centreon.example.com/centreon/main.php?p=20201&o=svcd&host_name=db-01.paris&service_description=Disk%20%2Fvar", "text": "Service page"}
            ]
        });
        assert_eq!(parse(&encode(&out, &Secret::new(KEY))), expected);
    }

    #[test]
    fn golden_anonymous_host() {
        let mut ev = status(99, 0, 2);
        ev.last_check = None;
        ev.last_state_change = None;
        let out = status_event(&ev, Action::Trigger, &cfg());
        let expected = json!({
            "routing_key": KEY,
            "event_action": "trigger",
            "dedup_key": "99_H",
            "payload": {
                "summary": "host #99: UNREACHABLE",
                "source": "host #99",
                "severity": "critical",
                "component": "host #99",
                "class": "host",
                "custom_details": {
                    "Hostgroups": "",
                    "Output": "",
                    "StateType": "HARD"
                }
            },
            "client": "Centreon Stream Connector",
            "client_url": "https://centreon.example.com/centreon/"
        });
        assert_eq!(parse(&encode(&out, &Secret::new(KEY))), expected);
    }

    #[test]
    fn anonymous_service_keeps_the_host_link_only() {
        let mut ev = status(5, 6, 3);
        ev.ctx.host_name = Some("h".into());
        ev.ctx.service_description = Some("  ".into());
        let out = status_event(&ev, Action::Trigger, &cfg());
        assert_eq!(out.summary, "h/service #6: UNKNOWN");
        assert_eq!(out.body["payload"]["severity"], "error");
        assert_eq!(out.body["payload"]["component"], "service #6");
        assert_eq!(out.body["links"].as_array().unwrap().len(), 1);
        ev.ctx.host_name = None;
        ev.ctx.service_description = Some("svc".into());
        let out = status_event(&ev, Action::Trigger, &cfg());
        assert_eq!(out.summary, "host #5/svc: UNKNOWN");
        assert!(out.body.get("links").is_none());
    }

    #[test]
    fn severities_follow_the_map() {
        let c = cfg();
        let sev = |kind, state| c.severities.of(kind, state).as_str();
        assert_eq!(sev(Kind::Host, 0), "info");
        assert_eq!(sev(Kind::Host, 1), "critical");
        assert_eq!(sev(Kind::Host, 2), "critical");
        assert_eq!(sev(Kind::Service, 0), "info");
        assert_eq!(sev(Kind::Service, 1), "warning");
        assert_eq!(sev(Kind::Service, 2), "critical");
        assert_eq!(sev(Kind::Service, 3), "error");
        assert_eq!(sev(Kind::Service, 4), "info");
        let mut c2 = cfg();
        c2.severities.host_down = Severity::Warning;
        assert_eq!(c2.severities.of(Kind::Host, 1), Severity::Warning);
    }

    #[test]
    fn acknowledge_summary_and_details() {
        let ctx = Context {
            host_name: Some("h1".into()),
            service_description: Some("ping".into()),
            ..Context::default()
        };
        let key = ObjectKey {
            host_id: 1,
            service_id: 2,
        };
        let out = note_event(
            key,
            &ctx,
            &Note::acknowledged(Some("alice"), Some("on it\nticket 42"), Some(1_700_000_000)),
            &cfg(),
        );
        assert_eq!(out.action, Action::Acknowledge);
        assert_eq!(out.summary, "h1/ping: acknowledged by alice: on it");
        let v = parse(&encode(&out, &Secret::new(KEY)));
        assert_eq!(v["event_action"], "acknowledge");
        assert_eq!(v["dedup_key"], "1_2");
        assert_eq!(v["payload"]["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(v["payload"]["custom_details"]["Author"], "alice");
        assert_eq!(
            v["payload"]["custom_details"]["Comment"],
            "on it\nticket 42"
        );
        assert!(v.get("client").is_none() && v.get("client_url").is_none());
        let anon = note_event(
            ObjectKey {
                host_id: 3,
                service_id: 0,
            },
            &Context::default(),
            &Note::acknowledged(None, None, None),
            &cfg(),
        );
        assert_eq!(anon.summary, "host #3: acknowledged");
        assert_eq!(anon.dedup_key, "3_H");
        assert!(anon.body["payload"].get("timestamp").is_none());
    }

    #[test]
    fn dedup_keys() {
        let h = ObjectKey {
            host_id: 12,
            service_id: 0,
        };
        let s = ObjectKey {
            host_id: 12,
            service_id: 34,
        };
        assert_eq!(dedup_key(h, ""), "12_H");
        assert_eq!(dedup_key(s, ""), "12_34");
        assert_eq!(dedup_key(s, "x-"), "x-12_34");
        let long = "é".repeat(300);
        let k = dedup_key(s, &long);
        assert_eq!(k.chars().count(), 255);
        assert!(k.ends_with("é12_34"));
        let max = ObjectKey {
            host_id: u64::MAX,
            service_id: u64::MAX,
        };
        assert_eq!(dedup_key(max, &long).chars().count(), 255);
    }

    #[test]
    fn control_characters_quotes_and_backslashes_stay_valid_json() {
        let nasty: String =
            (0u8..0x20).map(char::from).collect::<String>() + "\"q\" \\b\\ \u{7f} é €";
        let mut ev = status(1, 2, 2);
        ev.output = nasty.replace('\n', "");
        ev.long_output = nasty.clone();
        ev.perfdata = format!("'{}'=1", nasty.replace(['\'', ' ', '\n'], ""));
        ev.ctx.host_name = Some(nasty.clone());
        ev.ctx.service_description = Some(nasty.clone());
        ev.ctx.hostgroups = vec![nasty.clone()];
        ev.ctx.poller = Some(nasty.clone());
        let mut c = cfg();
        c.client = nasty.clone();
        c.dedup_key_prefix = nasty.clone();
        let out = status_event(&ev, Action::Trigger, &c);
        let body = encode(&out, &Secret::new(KEY));
        let v = parse(&body);
        assert_eq!(v["payload"]["custom_details"]["LongOutput"], nasty.as_str());
        assert_eq!(v["payload"]["component"], nasty.as_str());
        assert_eq!(v["client"], nasty.as_str());
        assert_eq!(v["payload"]["summary"], out.summary.as_str());
        let red = redacted(&out);
        assert!(!red.contains(KEY));
        let rv = parse(red.as_bytes());
        assert_eq!(rv["routing_key"], "<masked>");
        let href = v["links"][1]["href"].as_str().unwrap();
        assert!(href.bytes().all(|b| b.is_ascii_graphic()), "{href}");
    }

    #[test]
    fn body_text_is_written_once_into_its_exact_size() {
        let mut nasty = status(3, 4, 2);
        nasty.output = "\"quoted\" \\ é\u{1}".into();
        nasty.long_output = "y".repeat(5000);
        for ev in [status(1, 2, 2), nasty] {
            let out = status_event(&ev, Action::Trigger, &cfg());
            let text = body_text(&out.body);
            assert_eq!(text, serde_json::to_string(&out.body).unwrap());
            // no growth by doubling: the buffer was reserved at the final size
            assert_eq!(text.capacity(), text.len());
        }
        assert_eq!(body_text(&Map::new()), "{}");
    }

    /// The outbox keeps bodies as JSON text; sending splices that text: the bytes must be
    /// those of the event itself, shrunk the same way when too large.
    #[test]
    fn encoding_the_stored_text_gives_the_same_bytes() {
        let key = Secret::new(KEY);
        let mut big = status(1, 2, 2);
        big.long_output = "x".repeat(2 * MAX_BODY);
        let mut nasty = status(3, 4, 2);
        nasty.output = "\"quoted\" \\ é\u{1}".into();
        for ev in [status(1, 2, 2), nasty, big] {
            let out = status_event(&ev, Action::Trigger, &cfg());
            let text = serde_json::to_string(&out.body).unwrap();
            let sent = encode_json(&text, &key);
            assert_eq!(sent, encode(&out, &key));
            assert!(sent.len() <= MAX_BODY);
            // text as another writer may have stored it: parsed, then the same bytes
            assert_eq!(encode_json(&format!(" {text}"), &key), sent);
        }
        let empty = Outgoing {
            dedup_key: "k".into(),
            action: Action::Resolve,
            summary: String::new(),
            body: Map::new(),
        };
        assert_eq!(encode_json("{}", &key), encode(&empty, &key));
        assert_eq!(parse(&encode_json("{}", &key))["routing_key"], KEY);
    }

    #[test]
    fn summary_is_cut_to_1024_chars_with_marker() {
        let mut ev = status(1, 2, 1);
        ev.output = "é".repeat(100_000);
        ev.ctx.host_name = Some("h".into());
        ev.ctx.service_description = Some("s".into());
        let out = status_event(&ev, Action::Trigger, &cfg());
        assert_eq!(out.summary.chars().count(), 1024);
        assert!(out.summary.ends_with(TRUNCATION_MARKER));
        assert!(out.summary.starts_with("h/s: WARNING - éé"));
        let body = encode(&out, &Secret::new(KEY));
        assert!(body.len() <= MAX_BODY);
        let v = parse(&body);
        assert_eq!(v["payload"]["summary"], out.summary.as_str());
        // 200 kB of output fits: kept whole in the details.
        assert_eq!(v["payload"]["custom_details"]["Output"], ev.output.as_str());
        // Exactly 1024 characters is not cut.
        assert_eq!(truncate_chars(&"a".repeat(1024), 1024), "a".repeat(1024));
    }

    #[test]
    fn output_of_control_characters_is_cut_by_escaped_size() {
        // 100 kB of \u0001 escapes to 600 kB: the Output detail must be cut.
        let mut ev = status(1, 2, 2);
        ev.output = "\u{1}".repeat(100_000);
        ev.long_output = "long".repeat(1000);
        let out = status_event(&ev, Action::Trigger, &cfg());
        let body = encode(&out, &Secret::new(KEY));
        assert!(body.len() <= MAX_BODY, "{}", body.len());
        assert!(
            body.len() > MAX_BODY - 2 * ROUTING_KEY_RESERVE,
            "cut no more than needed"
        );
        let v = parse(&body);
        let d = &v["payload"]["custom_details"];
        assert_eq!(d["LongOutput"], TRUNCATION_MARKER);
        assert!(d["Output"].as_str().unwrap().ends_with(TRUNCATION_MARKER));
        assert_eq!(d["StateType"], "HARD");
    }

    #[test]
    fn huge_long_output_and_20000_metrics() {
        let mut ev = critical_disk();
        ev.long_output = "x".repeat(2_000_000);
        ev.perfdata = (0..20_000)
            .map(|i| format!("metric_{i}=1.5ms;10;20;0;100"))
            .collect::<Vec<_>>()
            .join(" ");
        let out = status_event(&ev, Action::Trigger, &cfg());
        let body = encode(&out, &Secret::new(KEY));
        assert!(body.len() <= MAX_BODY, "{}", body.len());
        let v = parse(&body);
        let d = &v["payload"]["custom_details"];
        assert!(d.get("Metrics").is_none());
        let long = d["LongOutput"].as_str().unwrap();
        assert!(long.ends_with(TRUNCATION_MARKER));
        assert!(long.len() > 400_000, "LongOutput keeps what fits");
        assert_eq!(d["Output"], "CRITICAL - /var 95% used");
        assert_eq!(v["event_action"], "trigger");
        assert_eq!(v["dedup_key"], "12_34");

        // Metrics alone over the limit: dropped, everything else kept.
        ev.long_output = "short".into();
        let out = status_event(&ev, Action::Trigger, &cfg());
        let v = parse(&encode(&out, &Secret::new(KEY)));
        let d = &v["payload"]["custom_details"];
        assert!(d.get("Metrics").is_none());
        assert_eq!(d["LongOutput"], "line two\nshort");

        // Many metrics that fit are all kept.
        ev.perfdata = (0..2_000)
            .map(|i| format!("m{i}=1"))
            .collect::<Vec<_>>()
            .join(" ");
        let out = status_event(&ev, Action::Trigger, &cfg());
        assert_eq!(
            out.body["payload"]["custom_details"]["Metrics"]
                .as_object()
                .unwrap()
                .len(),
            2_000
        );
    }

    #[test]
    fn everything_huge_still_sends_the_event() {
        let big = "g".repeat(600_000);
        let mut ev = status(1, 2, 2);
        ev.output = big.clone();
        ev.long_output = big.clone();
        ev.ctx.host_name = Some(big.clone());
        ev.ctx.service_description = Some(big.clone());
        ev.ctx.hostgroups = vec![big.clone()];
        ev.ctx.servicegroups = vec![big.clone()];
        ev.ctx.notes_url = Some(big.clone());
        let mut c = cfg();
        c.client = big.clone();
        let out = status_event(&ev, Action::Trigger, &c);
        let body = encode(&out, &Secret::new(KEY));
        assert!(body.len() <= MAX_BODY, "{}", body.len());
        let v = parse(&body);
        assert_eq!(v["event_action"], "trigger");
        assert_eq!(v["dedup_key"], "1_2");
        assert_eq!(v["payload"]["severity"], "critical");
        assert_eq!(
            v["payload"]["summary"].as_str().unwrap().chars().count(),
            1024
        );
        // A long routing key reserves more room.
        let long_key = Secret::new("k".repeat(5_000));
        let ev2 = {
            let mut e = critical_disk();
            e.long_output = "y".repeat(600_000);
            e
        };
        let out2 = status_event(&ev2, Action::Trigger, &cfg());
        let body2 = encode(&out2, &long_key);
        assert!(body2.len() <= MAX_BODY, "{}", body2.len());
        assert_eq!(parse(&body2)["routing_key"], "k".repeat(5_000));
    }

    #[test]
    fn output_options_shape_output_long_output_and_summary() {
        // BBDO 2 output (long output after the first line) and BBDO 3 long_output alike
        let mut v2 = critical_disk();
        v2.output = "CRITICAL - /var 95% used\nline two\nline three".into();
        v2.long_output.clear();
        let mut v3 = critical_disk();
        v3.output = "CRITICAL - /var 95% used".into();
        v3.long_output = "line two\nline three".into();
        // (parameters, summary, Output, LongOutput)
        type Row = (
            &'static [(&'static str, &'static str)],
            &'static str,
            &'static str,
            Option<&'static str>,
        );
        let table: &[Row] = &[
            (
                &[],
                "db-01.paris/Disk /var: CRITICAL - /var 95% used",
                "CRITICAL - /var 95% used",
                Some("line two\nline three"),
            ),
            (
                &[("use_long_output", "0")],
                "db-01.paris/Disk /var: CRITICAL - /var 95% used",
                "CRITICAL - /var 95% used",
                None,
            ),
            (
                &[("remove_line_break_in_output", "1")],
                "db-01.paris/Disk /var: CRITICAL - /var 95% used",
                "CRITICAL - /var 95% used",
                Some("line two line three"),
            ),
            (
                &[
                    ("remove_line_break_in_output", "1"),
                    ("output_line_break_replacement_character", " | "),
                ],
                "db-01.paris/Disk /var: CRITICAL - /var 95% used",
                "CRITICAL - /var 95% used",
                Some("line two | line three"),
            ),
            (
                &[("output_size_limit", "33")],
                "db-01.paris/Disk /var: CRITICAL - /var 95% used",
                "CRITICAL - /var 95% used",
                Some("line two"),
            ),
            (
                &[("output_size_limit", "8")],
                "db-01.paris/Disk /var: CRITICAL",
                "CRITICAL",
                None,
            ),
            (
                &[("output_size_limit", "20"), ("use_long_output", "1")],
                "db-01.paris/Disk /var: CRITICAL - CRITICAL…[truncated]",
                "CRITICAL…[truncated]",
                None,
            ),
        ];
        for (i, (params, summary, output, long)) in table.iter().enumerate() {
            let c = cfg_with(params);
            for ev in [&v2, &v3] {
                let out = status_event(ev, Action::Trigger, &c);
                let d = &out.body["payload"]["custom_details"];
                assert_eq!(out.summary, *summary, "row {i}");
                assert_eq!(out.body["payload"]["summary"], *summary, "row {i}");
                assert_eq!(d["Output"], *output, "row {i}");
                assert_eq!(
                    d.get("LongOutput").and_then(Value::as_str),
                    *long,
                    "row {i}"
                );
            }
        }
        // the summary stays within PagerDuty's 1024 characters whatever the limit
        let mut big = critical_disk();
        big.output = "x".repeat(5000);
        let out = status_event(
            &big,
            Action::Trigger,
            &cfg_with(&[("output_size_limit", "4000")]),
        );
        assert_eq!(out.summary.chars().count(), MAX_SUMMARY_CHARS);
        let d = &out.body["payload"]["custom_details"];
        assert_eq!(d["Output"].as_str().unwrap().chars().count(), 4000);
        assert!(d.get("LongOutput").is_none(), "no room left for it");
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(
            percent_encode("a b&c=d/é?#%+"),
            "a%20b%26c%3Dd%2F%C3%A9%3F%23%25%2B"
        );
    }

    #[test]
    fn fair_share_keeps_the_short_and_cuts_the_long_alike() {
        assert_eq!(fair_share(&[10, 20, 30], 60), None);
        assert_eq!(fair_share(&[], 0), None);
        // 10 and 20 fit in a third of 90: kept; the rest (60) is shared by the two long ones
        assert_eq!(fair_share(&[100, 10, 1000, 20], 90), Some(30));
        assert_eq!(fair_share(&[10_000; 200], 511_000), Some(2555));
        assert_eq!(fair_share(&[5, 5], 3), Some(1));
        for (lens, room) in [(vec![7, 300, 2, 90, 90], 150), (vec![1; 5], 4)] {
            let share = fair_share(&lens, room).unwrap();
            let used: usize = lens.iter().map(|n| (*n).min(share)).sum();
            assert!(
                used <= room && room - used < lens.len(),
                "{lens:?} {room}: {share}"
            );
        }
    }

    #[test]
    fn join_within_copies_only_what_it_keeps() {
        let parts = [("ab\"c", 5), ("é€", 5), ("\u{1}x", 7), ("0123456789", 10)];
        assert_eq!(join_within(&parts, 27), "ab\"cé€\u{1}x0123456789");
        let marker = escaped_len(TRUNCATION_MARKER);
        // never a character cut in two, never past the limit
        for max in 0..27 {
            let j = join_within(&parts, max);
            assert!(escaped_len(&j) <= max, "{max}: {j:?}");
            if max < marker {
                assert_eq!(j, "");
            } else {
                assert!(j.ends_with(TRUNCATION_MARKER));
            }
        }
        let j = join_within(&parts, marker + 6);
        assert_eq!(j, format!("ab\"c{TRUNCATION_MARKER}"));
        let j = join_within(&parts, marker + 7);
        assert_eq!(j, format!("ab\"cé{TRUNCATION_MARKER}"));
    }

    #[test]
    fn cut_escaped_respects_budget() {
        let s = "\u{1}\"é€a".repeat(100);
        for max in [0, 5, 14, 15, 20, 100, 333, 10_000] {
            let c = cut_escaped(&s, max);
            if escaped_len(&s) > max {
                assert!(c.ends_with(TRUNCATION_MARKER));
                assert!(escaped_len(&c) <= max.max(escaped_len(TRUNCATION_MARKER)));
            }
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json.len(), escaped_len(&c) + 2);
        }
    }

    fn custom(action: Action) -> Custom<'static> {
        let mut details = Map::new();
        details.insert("Agent".into(), "web-01".into());
        Custom {
            action,
            dedup_key: "pandora-42",
            summary: "Disk almost full",
            source: "web-01",
            severity: Severity::Warning,
            timestamp: Some(1_700_000_000),
            component: Some("disk_/var"),
            group: None,
            class: Some(""),
            details,
            links: vec![
                ("https://pandora.example.com/", Some("Console")),
                ("https://x/", None),
            ],
            client: Some("Pandora FMS"),
            client_url: Some("https://pandora.example.com/"),
        }
    }

    #[test]
    fn custom_event_fields() {
        let out = custom_event(&custom(Action::Trigger));
        assert_eq!(out.dedup_key, "pandora-42");
        assert_eq!(out.summary, "Disk almost full");
        let body = Value::Object(out.body.clone());
        assert_eq!(
            body,
            json!({
                "event_action": "trigger",
                "dedup_key": "pandora-42",
                "payload": {
                    "summary": "Disk almost full",
                    "source": "web-01",
                    "severity": "warning",
                    "timestamp": "2023-11-14T22:13:20Z",
                    "component": "disk_/var",
                    "custom_details": {"Agent": "web-01"}
                },
                "links": [{"href": "https://pandora.example.com/", "text": "Console"}, {"href": "https://x/"}],
                "client": "Pandora FMS",
                "client_url": "https://pandora.example.com/"
            })
        );
        // client and client_url are for triggers only
        let out = custom_event(&custom(Action::Resolve));
        assert!(!out.body.contains_key("client") && !out.body.contains_key("client_url"));
        assert_eq!(out.body["event_action"], "resolve");
    }

    #[test]
    fn custom_event_is_cut_to_the_limits() {
        let long = "x".repeat(MAX_BODY);
        let mut c = custom(Action::Trigger);
        c.summary = &long;
        c.details.insert("Data".into(), long.clone().into());
        let out = custom_event(&c);
        assert_eq!(out.summary.chars().count(), MAX_SUMMARY_CHARS);
        assert!(out.summary.ends_with(TRUNCATION_MARKER));
        assert!(encode(&out, &Secret::new(KEY)).len() <= MAX_BODY);
    }
}
