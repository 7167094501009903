//! The PagerDuty Events API v2 body for a Centreon status or acknowledgement (certified format, defects fixed).
//!
//! The layout is the certified Lua connector's (`dedup_key`s, `custom_details` keys), with
//! its defects fixed: summary cut to 1024 characters, control characters escaped, names
//! percent-encoded in links, a service link, `client_url`, RFC 3339 timestamps, metrics
//! from the perfdata, and a body that always fits PagerDuty's size limit.
//!
//! `Builder` is where an output's events are made, in this format or a `format_file`
//! template's ([`template`]); `body.rs` holds the request bodies as typed structs, `fit.rs`
//! PagerDuty's limits and the cuts that make an event fit them.

mod body;
mod fit;
pub mod options;
pub mod output;
pub mod perfdata;
pub mod template;

use serde_json::{Map, Value};

pub use options::{PayloadOptions, Severity, SeverityMap};

use crate::decision::Action;
use crate::event::{Context, Kind, ObjectKey, StatusEvent};
use crate::params::Secret;
use crate::timefmt;

pub use body::{AlertEvent, Body, ChangeEvent, Link, Payload};
use fit::shrink;
pub(crate) use fit::{
    BODY_BUDGET, MAX_DEDUP_KEY_CHARS, MAX_SUMMARY_CHARS, escaped_len, fair_share, join_within,
    json_len, truncate_chars,
};
pub use fit::{MAX_BODY, TRUNCATION_MARKER};

/// An event ready to send, without its routing key.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub dedup_key: String,
    pub action: Action,
    /// `payload.summary` (at most 1024 characters).
    pub summary: String,
    /// Everything sent except `routing_key`: `event_action`, `dedup_key`, `payload`,
    /// `links`, `client`, `client_url`.
    pub body: Body,
}

/// Builds the events of a Broker output, the one place that chooses their format: the
/// built-in one, or that of the `format_file` templates when there are (falling back on the
/// built-in one where a template is missing or cannot be used, with a warning in the log).
pub(crate) struct Builder<'a> {
    cfg: &'a PayloadOptions,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(cfg: &'a PayloadOptions) -> Self {
        Builder { cfg }
    }

    /// The event for a host or service status.
    pub(crate) fn status(&self, st: &StatusEvent, action: Action) -> Outgoing {
        let out = status_event(st, action, self.cfg);
        match &self.cfg.templates {
            Some(t) => t.status_event(st, action, out),
            None => out,
        }
    }

    /// The event for a [`Note`] about `key`.
    pub(crate) fn note(&self, key: ObjectKey, ctx: &Context, note: &Note) -> Outgoing {
        let out = note_event(key, ctx, note, self.cfg);
        match &self.cfg.templates {
            Some(t) => t.note_event(key, ctx, note.action, out),
            None => out,
        }
    }

    /// The `dedup_key` of `key`'s events when it is known without building them (no
    /// template may set it).
    pub(crate) fn dedup_key_unbuilt(&self, key: ObjectKey) -> Option<String> {
        self.cfg
            .templates
            .is_none()
            .then(|| dedup_key(key, &self.cfg.dedup_key_prefix))
    }
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
pub(crate) struct Note<'a> {
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
pub(crate) fn note_event(
    key: ObjectKey,
    ctx: &Context,
    note: &Note,
    cfg: &PayloadOptions,
) -> Outgoing {
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
pub(crate) struct Custom<'a> {
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
pub(crate) fn custom_event(c: &Custom) -> Outgoing {
    let summary = truncate_chars(c.summary, MAX_SUMMARY_CHARS);
    let given = |v: Option<&str>| v.filter(|v| !v.is_empty()).map(String::from);
    let trigger = c.action == Action::Trigger;
    let event = AlertEvent {
        client: c.client.filter(|_| trigger).map(String::from),
        client_url: c.client_url.filter(|_| trigger).map(String::from),
        dedup_key: c.dedup_key.to_string(),
        event_action: c.action,
        links: c
            .links
            .iter()
            .map(|(href, text)| link(href, *text))
            .collect(),
        payload: Payload {
            class: given(c.class),
            component: given(c.component),
            custom_details: c.details.clone(),
            group: given(c.group),
            severity: Some(c.severity),
            source: c.source.to_string(),
            summary: summary.clone(),
            timestamp: c.timestamp.map(timefmt::rfc3339_utc),
        },
    };
    Outgoing {
        dedup_key: c.dedup_key.to_string(),
        action: c.action,
        summary,
        body: Body::alert(event),
    }
}

/// A change event (`/v2/change/enqueue`): PagerDuty records it on the service of the routing
/// key and opens no incident. The body without `routing_key` ([`encode_body`] adds it).
pub(crate) fn change_event(
    summary: &str,
    source: &str,
    timestamp: i64,
    details: Map<String, Value>,
) -> Body {
    Body::change(ChangeEvent {
        payload: Payload {
            class: None,
            component: None,
            custom_details: details,
            group: None,
            severity: None,
            source: source.to_string(),
            summary: truncate_chars(summary, MAX_SUMMARY_CHARS),
            timestamp: Some(timefmt::rfc3339_utc(timestamp)),
        },
    })
}

/// Lists, in a host's event, the service problems it suppresses
/// (`suppress_services_of_down_hosts`): `custom_details.SuppressedServices`, one line each.
pub(crate) fn list_suppressed_services(out: &mut Outgoing, services: &[&StatusEvent]) {
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
    if let Some(details) = out.body.custom_details_mut() {
        details.insert("SuppressedServices".into(), Value::Array(lines));
    }
}

/// The final request body: `routing_key` first, then the event; at most [`MAX_BODY`] bytes
/// (shrunk further if an unusually long routing key needs the room).
pub fn encode(out: &Outgoing, routing_key: &Secret) -> Vec<u8> {
    render(&out.body, routing_key.expose())
}

/// [`encode`] of a body built without an [`Outgoing`] (a [`change_event`]).
pub(crate) fn encode_body(body: &Body, routing_key: &Secret) -> Vec<u8> {
    render(body, routing_key.expose())
}

/// [`encode`] of a body that is JSON text already, as the outbox stores it: the same bytes,
/// the text spliced as it is, parsed only when it must be shrunk to fit.
pub(crate) fn encode_json(body: &str, routing_key: &Secret) -> Vec<u8> {
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
pub(crate) fn redacted(out: &Outgoing) -> String {
    String::from_utf8_lossy(&render(&out.body, "<masked>")).into_owned()
}

/// The body as [`encode`] would send it, the routing key masked as [`Secret::masked`] shows
/// it (`log_curl_commands`): the same bytes once the real key is put back.
pub(crate) fn with_masked_key(out: &Outgoing, routing_key: &Secret) -> String {
    String::from_utf8_lossy(&render(&out.body, &routing_key.masked())).into_owned()
}

fn render(body: &Body, routing_key: &str) -> Vec<u8> {
    let prefix = key_prefix(routing_key);
    let budget = MAX_BODY.saturating_sub(prefix.len());
    let mut text = to_bytes(body);
    if text.len() > budget {
        let mut smaller = body.to_json().into_owned();
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

fn to_bytes<T: serde::Serialize>(body: &T) -> Vec<u8> {
    body_text(body).into_bytes()
}

/// `body` as JSON text, as the outbox stores it and [`encode`] sends it.
pub(crate) fn body_text<T: serde::Serialize>(body: &T) -> String {
    // Sized first, then written once: growing the text by doubling took about 5 reallocations
    // per payload, each a turn of a malloc arena lock that Broker's thread may share (perf:
    // most of the times the committer woke Broker's thread waiting for that lock).
    // Serialising a body cannot fail (keys are strings, numbers finite).
    // Bodies are shrunk to fit `MAX_BODY` before they get here; the cap only guards the
    // `usize::MAX` that `json_len` says for what cannot be serialised.
    let mut out = Vec::with_capacity(json_len(body).min(MAX_BODY));
    match serde_json::to_writer(&mut out, body).map(|()| String::from_utf8(out)) {
        Ok(Ok(text)) => text,
        _ => "{}".into(),
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
    fn links(&self, base: &str) -> Vec<Link> {
        let mut links = Vec::new();
        let Some(host) = known(&self.ctx.host_name) else {
            return links;
        };
        let host = percent_encode(host);
        links.push(link(
            &format!("{base}/centreon/main.php?p=20202&o=hd&host_name={host}"),
            Some("Host page"),
        ));
        if self.kind() == Kind::Service
            && let Some(svc) = known(&self.ctx.service_description)
        {
            links.push(link(
                    &format!(
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

        let (component, class) = match self.kind() {
            Kind::Host => (&self.host, "host"),
            Kind::Service => (&self.service, "service"),
        };
        let base = cfg.centreon_url.trim_end_matches('/');
        let trigger = action == Action::Trigger;
        let event = AlertEvent {
            client: trigger.then(|| cfg.client.clone()),
            client_url: trigger.then(|| format!("{base}/centreon/")),
            dedup_key: dedup_key.clone(),
            event_action: action,
            links: self.links(base),
            payload: Payload {
                class: Some(class.into()),
                component: Some(component.clone()),
                custom_details: details,
                group: (!self.ctx.hostgroups.is_empty()).then(|| self.ctx.hostgroups.join(", ")),
                severity: Some(severity),
                source: source.to_string(),
                summary: summary.clone(),
                timestamp: timestamp.map(timefmt::rfc3339_utc),
            },
        };
        Outgoing {
            dedup_key,
            action,
            summary,
            body: Body::alert(event),
        }
    }
}

fn link(href: &str, text: Option<&str>) -> Link {
    Link {
        href: href.to_string(),
        text: text.map(String::from),
    }
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
pub(crate) fn without_state<'a>(text: &'a str, state: &str) -> &'a str {
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

#[cfg(test)]
mod tests;
