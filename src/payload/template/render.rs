//! Rendering a template into an event in one bounded pass: texts built no longer than their room.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::file::{Node, Template};
use super::macros::{Macro, Piece};
use super::value::{Scope, Val};
use crate::decision::Action;
use crate::payload::Severity;
use crate::payload::{self, Outgoing};
use crate::timefmt;

/// A macro's value, resolved once per event: its text among text and that text's length in
/// a JSON string.
struct Shown {
    val: Val,
    /// The text of a value that is not a string (a string is its own text).
    text: Option<String>,
    escaped: usize,
}

impl Shown {
    fn new(val: Val) -> Shown {
        let text = match &val {
            Val::Str(_) => None,
            other => Some(other.text()),
        };
        let mut shown = Shown {
            val,
            text,
            escaped: 0,
        };
        shown.escaped = payload::escaped_len(shown.text());
        shown
    }

    fn text(&self) -> &str {
        match (&self.val, &self.text) {
            (Val::Str(s), _) => s,
            (_, Some(t)) => t,
            _ => "",
        }
    }
}

/// How a text of a template is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Kept whole, as long as the event fits.
    Whole,
    /// `payload.summary` and `payload.severity`: built no longer than PagerDuty's 1024
    /// characters.
    Label,
    /// A text of `payload.custom_details`: shares the room the rest of the event leaves.
    Detail,
}

/// Bytes of JSON text enough for one character more than a summary may have, whatever the
/// characters (an escaped character takes at most 6 bytes), and the marker.
const LABEL_BYTES: usize = (payload::MAX_SUMMARY_CHARS + 1) * 6 + payload::TRUNCATION_MARKER.len();

/// Where the text of a string comes from.
#[derive(Clone, Copy)]
enum Str<'t> {
    Pieces(&'t [Piece]),
    Macro(&'t Macro),
    Fixed(&'t str),
}

/// One event made from a template, in one pass over its size: every macro resolved once,
/// every text built no longer than the room left for it (never built whole and cut after).
///
/// The first pass builds the event with the texts of `payload.custom_details` left empty,
/// their lengths noted, and stops building once the event is over [`payload::BODY_BUDGET`];
/// the room the rest leaves is then shared among those texts ([`payload::fair_share`]) and
/// `custom_details` alone is built again, each text cut to the share.
pub(super) struct Render<'t, 's> {
    scope: &'s Scope<'s>,
    /// Per macro as written: its value.
    memo: HashMap<&'t str, Option<Shown>>,
    /// First pass: the texts of `custom_details` are left empty, their lengths in `lengths`.
    measuring: bool,
    /// Second pass: the most escaped bytes a text of `custom_details` keeps (`None`: all).
    share: Option<usize>,
    lengths: Vec<usize>,
    /// The `custom_details` of the payload (the last one: the one the map keeps).
    details: Option<&'t Node>,
    /// Bytes of JSON text built so far (at most what the event takes).
    used: usize,
    /// The event went over the budget: what follows was not built.
    pub(super) over: bool,
}

impl<'t, 's> Render<'t, 's> {
    pub(super) fn new(scope: &'s Scope<'s>) -> Self {
        Render {
            scope,
            memo: HashMap::new(),
            measuring: true,
            share: None,
            lengths: Vec::new(),
            details: None,
            used: 0,
            over: false,
        }
    }

    fn resolve(&mut self, m: &'t Macro) {
        let scope = self.scope;
        self.memo
            .entry(m.text.as_str())
            .or_insert_with(|| scope.resolve(m).map(Shown::new));
    }

    fn shown(&self, m: &Macro) -> Option<&Shown> {
        self.memo.get(m.text.as_str()).and_then(Option::as_ref)
    }

    /// A text whole (a `dedup_key`), outside the event's budget.
    pub(super) fn whole(&mut self, p: &'t [Piece]) -> String {
        for piece in p {
            if let Piece::Mac(m) = piece {
                self.resolve(m);
            }
        }
        p.iter()
            .filter_map(|piece| match piece {
                Piece::Lit(s) => Some(s.as_str()),
                Piece::Mac(m) => self.shown(m).map(Shown::text),
            })
            .collect()
    }

    /// A string of the event, sized by its role.
    fn string(&mut self, src: Str<'t>, role: Role) -> Value {
        match src {
            Str::Pieces(p) => p.iter().for_each(|piece| {
                if let Piece::Mac(m) = piece {
                    self.resolve(m)
                }
            }),
            Str::Macro(m) => self.resolve(m),
            Str::Fixed(_) => {}
        }
        let memo = &self.memo;
        let shown = |m: &Macro| memo.get(m.text.as_str()).and_then(Option::as_ref);
        let parts: Vec<(&str, usize)> = match src {
            Str::Pieces(p) => p
                .iter()
                .filter_map(|piece| match piece {
                    Piece::Lit(s) => Some((s.as_str(), payload::escaped_len(s))),
                    Piece::Mac(m) => shown(m).map(|v| (v.text(), v.escaped)),
                })
                .collect(),
            Str::Macro(m) => shown(m)
                .map(|v| (v.text(), v.escaped))
                .into_iter()
                .collect(),
            Str::Fixed(s) => vec![(s, payload::escaped_len(s))],
        };
        let total: usize = parts.iter().map(|(_, n)| n).sum();
        let cap = match role {
            Role::Detail if self.measuring => {
                self.lengths.push(total);
                0
            }
            Role::Detail => self.share.unwrap_or(usize::MAX),
            Role::Label => LABEL_BYTES,
            Role::Whole => usize::MAX,
        };
        // One byte more than the room left: a text that does not fit shows it.
        let room = payload::BODY_BUDGET.saturating_sub(self.used) + 1;
        let mut text = payload::join_within(&parts, cap.min(room));
        if role == Role::Label {
            text = payload::truncate_chars(&text, payload::MAX_SUMMARY_CHARS);
        }
        let len = if total <= cap.min(room) {
            total
        } else {
            payload::escaped_len(&text)
        };
        self.grow(len + 2);
        text.into()
    }

    fn grow(&mut self, bytes: usize) {
        self.used += bytes;
        self.over |= self.used > payload::BODY_BUDGET;
    }

    fn key(&mut self, p: &'t [Piece]) -> String {
        let key = match self.string(Str::Pieces(p), Role::Whole) {
            Value::String(s) => s,
            _ => String::new(),
        };
        self.grow(1);
        key
    }

    pub(super) fn node(&mut self, n: &'t Node, role: Role) -> Value {
        if self.over {
            return Value::Null;
        }
        match n {
            Node::Fixed(Value::String(s)) => self.string(Str::Fixed(s), role),
            Node::Fixed(v) => {
                self.grow(payload::json_len(v));
                v.clone()
            }
            Node::Exact(m) => {
                self.resolve(m);
                match self.shown(m).map(|v| &v.val) {
                    None => {
                        self.grow(4);
                        Value::Null
                    }
                    Some(Val::Str(_)) => self.string(Str::Macro(m), role),
                    Some(v) => {
                        let v = v.clone().json();
                        self.grow(payload::json_len(&v));
                        v
                    }
                }
            }
            Node::Text(p) => self.string(Str::Pieces(p), role),
            Node::Array(items) => items.iter().map(|i| self.node(i, role)).collect(),
            Node::Object(fields) => {
                let mut map = Map::new();
                for (k, v) in fields {
                    let key = self.key(k);
                    map.insert(key, self.node(v, role));
                }
                Value::Object(map)
            }
        }
    }

    /// The first pass: the event's fields, `custom_details` texts left empty.
    pub(super) fn body(&mut self, t: &'t Template) -> Map<String, Value> {
        let mut body = Map::new();
        for (k, node) in &t.fields {
            let key = self.key(k);
            let value = match node {
                Node::Object(fields) if key == "payload" => {
                    self.details = None;
                    let mut p = Map::new();
                    for (k, v) in fields {
                        let key = self.key(k);
                        let role = match key.as_str() {
                            "summary" | "severity" => Role::Label,
                            "custom_details" => {
                                self.details = Some(v);
                                self.lengths.clear();
                                Role::Detail
                            }
                            _ => Role::Whole,
                        };
                        p.insert(key, self.node(v, role));
                    }
                    Value::Object(p)
                }
                _ => self.node(node, Role::Whole),
            };
            body.insert(key, value);
        }
        body
    }

    /// The second pass: `custom_details` built with its texts cut to the fair share of
    /// `room` bytes.
    fn details(&mut self, room: usize) -> Option<Value> {
        let details = self.details?;
        self.measuring = false;
        self.share = payload::fair_share(&self.lengths, room);
        self.used = 0;
        self.over = false;
        Some(self.node(details, Role::Detail))
    }
}

/// A value where PagerDuty wants a string: strings as they are, other values as JSON text.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The rendered template made a valid event: the connector's `event_action` and `dedup_key`,
/// PagerDuty's required and string fields (the built-in ones where the template gives none
/// or an invalid one).
fn finish(mut body: Map<String, Value>, action: Action, builtin: &Outgoing) -> Outgoing {
    body.remove("routing_key");
    body.insert("event_action".into(), action.as_str().into());
    body.insert("dedup_key".into(), builtin.dedup_key.as_str().into());
    let from_builtin = |k: &str| builtin.body.payload_field(k);
    match body.get_mut("payload") {
        Some(Value::Object(p)) => {
            for k in ["summary", "source"] {
                let text = p.get(k).filter(|v| !v.is_null()).map(as_text);
                match text.filter(|t| !t.trim().is_empty()) {
                    Some(t) => p.insert(k.into(), t.into()),
                    None => from_builtin(k).and_then(|v| p.insert(k.into(), v)),
                };
            }
            let severity = p
                .get("severity")
                .and_then(Value::as_str)
                .and_then(Severity::parse);
            match severity {
                Some(s) => p.insert("severity".into(), s.as_str().into()),
                None => from_builtin("severity").and_then(|v| p.insert("severity".into(), v)),
            };
            match p.get("timestamp") {
                Some(Value::String(_)) => {}
                Some(Value::Number(n)) => {
                    let t = n.as_i64().or_else(|| n.as_f64().map(|f| f as i64));
                    let text = t.map(timefmt::rfc3339_utc);
                    match text {
                        Some(t) => p.insert("timestamp".into(), t.into()),
                        None => p.remove("timestamp"),
                    };
                }
                Some(_) => {
                    p.remove("timestamp");
                }
                None => {}
            }
            for k in ["component", "group", "class"] {
                match p.get(k) {
                    Some(Value::Null) => {
                        p.remove(k);
                    }
                    Some(v) if !v.is_string() => {
                        let t = as_text(v);
                        p.insert(k.into(), t.into());
                    }
                    _ => {}
                }
            }
            if let Some(Value::String(s)) = p.get_mut("summary") {
                *s = payload::truncate_chars(s, payload::MAX_SUMMARY_CHARS);
            }
        }
        _ => {
            let payload = builtin.body.payload_json();
            body.insert("payload".into(), payload.map_or(Value::Null, Value::Object));
        }
    }
    if action != Action::Trigger {
        body.remove("client");
        body.remove("client_url");
    }
    let summary = body
        .get("payload")
        .and_then(|p| p.get("summary"))
        .and_then(Value::as_str)
        .map_or_else(|| builtin.summary.clone(), str::to_string);
    Outgoing {
        dedup_key: builtin.dedup_key.clone(),
        action,
        summary,
        body: body.into(),
    }
}

impl<'t> Render<'t, '_> {
    /// The event of template `t`, shrunk to the budget; `None` when what is not
    /// `custom_details` does not fit alone.
    pub(super) fn event(
        &mut self,
        t: &'t Template,
        action: Action,
        builtin: &Outgoing,
    ) -> Option<Outgoing> {
        let body = self.body(t);
        if self.over {
            return None;
        }
        let mut out = finish(body, action, builtin);
        let room = payload::BODY_BUDGET.checked_sub(payload::json_len(&out.body))?;
        if let Some(details) = self.details(room)
            && let Some(Value::Object(p)) = out.body.as_json_mut().get_mut("payload")
        {
            p.insert("custom_details".into(), details);
        }
        (payload::json_len(&out.body) <= payload::BODY_BUDGET).then_some(out)
    }
}
