//! `format_file` templates: the stream-connectors library's JSON event templates and macro language, checked at `init` and rendered per event.
//!
//! A template file is a JSON object keyed by `<category>_<element>` (`neb_service_status`,
//! `neb_host_status`, `neb_acknowledgement` and their BBDO 3 names `neb_pb_...`); each value
//! is the event to send in place of the built-in one. Strings may hold the library's macros
//! (`sc_macros.lua`): `{field}` (a field of the Broker event), `{cache.host.X}`,
//! `{cache.service.X}`, `{cache.severity.host}`, `{cache.severity.service}`,
//! `{cache.instance.name}`, `{cache.instance.id}`, `{groups(hg|sg,table|inline,PATTERN)}`,
//! and `{cache.hostgroups}` / `{cache.servicegroups}`; a macro may end with one flag:
//! `_scdate`, `_scstate`, `_sctype`, `_scshort`, `_scnumber`, `_scstring`.
//!
//! Everything is checked when the file is read: a file that does not parse, a key or a macro
//! the library would not know, a flag that does not exist, all fail `init` naming
//! `format_file`, the key and the macro. At run time the connector keeps what its state
//! machine owns: `event_action` is always its own, the routing key is injected as for the
//! built-in events (a template's `routing_key` is ignored), and `dedup_key` is the built-in
//! one unless the status template of the object's kind sets it, in which case every event
//! about the object (trigger, acknowledge, resolve) uses it. PagerDuty's limits still apply.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::config::Severity;
use crate::event::{
    Bbdo, CATEGORY_NEB, Context, EventType, KNOWN_CATEGORIES, KNOWN_ELEMENTS, Kind, ObjectKey,
    RawEvent, RawValue, StatusEvent,
};
use crate::log::Logger;
use crate::luapattern::Pattern;
use crate::payload::output::{OutputOptions, first_line};
use crate::payload::{self, Action, Outgoing};
use crate::timefmt;

/// Fields of Broker's acknowledgement events (both BBDO versions) and those common to all.
const COMMON_FIELDS: &[&str] = &["_type", "category", "element", "host_id", "instance_id"];

/// Fields of host and service status events (BBDO 2 Lua names and BBDO 3 names), plus the
/// ones the library computes (`short_output`, `long_output` of BBDO 2, `last_update`).
const STATUS_FIELDS: &[&str] = &[
    "acknowledged",
    "acknowledgement_type",
    "active_checks_enabled",
    "check_attempt",
    "check_command",
    "check_interval",
    "check_period",
    "check_type",
    "checked",
    "current_check_attempt",
    "current_state",
    "downtime_depth",
    "enabled",
    "event_handler",
    "event_handler_enabled",
    "execution_time",
    "flap_detection_enabled",
    "flapping",
    "has_been_checked",
    "host_name",
    "internal_id",
    "is_flapping",
    "last_check",
    "last_hard_state",
    "last_hard_state_change",
    "last_notification",
    "last_state_change",
    "last_time_critical",
    "last_time_down",
    "last_time_ok",
    "last_time_unknown",
    "last_time_unreachable",
    "last_time_up",
    "last_time_warning",
    "last_update",
    "latency",
    "long_output",
    "max_check_attempts",
    "modified_attributes",
    "next_check",
    "next_host_notification",
    "next_notification",
    "no_more_notifications",
    "notification_number",
    "notifications_enabled",
    "obsess_over",
    "output",
    "passive_checks_enabled",
    "percent_state_change",
    "perf_data",
    "perfdata",
    "retry_interval",
    "scheduled_downtime_depth",
    "service_description",
    "short_output",
    "should_be_scheduled",
    "state",
    "state_type",
    "type",
];

/// Fields of acknowledgement events (BBDO 2 and `pb_acknowledgement`).
const ACK_FIELDS: &[&str] = &[
    "acknowledgement_type",
    "author",
    "comment",
    "comment_data",
    "deletion_time",
    "entry_time",
    "is_sticky",
    "notify_contacts",
    "notify_only_if_not_already_acknowledged",
    "persistent_comment",
    "state",
    "sticky",
    "type",
];

/// Fields of both the host and the service objects of Broker's cache (`broker_cache:get_host`,
/// `get_service`): `{cache.host.X}`, `{cache.service.X}`.
const OBJECT_CACHE_FIELDS: &[&str] = &[
    "_type",
    "acknowledged",
    "acknowledgement_type",
    "action_url",
    "active_checks",
    "category",
    "check_attempt",
    "check_command",
    "check_freshness",
    "check_interval",
    "check_period",
    "check_type",
    "checked",
    "default_active_checks",
    "default_event_handler_enabled",
    "default_flap_detection",
    "default_notify",
    "default_passive_checks",
    "display_name",
    "element",
    "enabled",
    "event_handler",
    "event_handler_enabled",
    "execution_time",
    "first_notification_delay",
    "flap_detection",
    "flapping",
    "freshness_threshold",
    "high_flap_threshold",
    "host_id",
    "icon_id",
    "icon_image",
    "icon_image_alt",
    "last_check",
    "last_hard_state",
    "last_hard_state_change",
    "last_state_change",
    "last_update",
    "latency",
    "low_flap_threshold",
    "max_check_attempts",
    "next_check",
    "no_more_notifications",
    "notes",
    "notes_url",
    "notification_interval",
    "notification_number",
    "notification_period",
    "notify",
    "notify_on_downtime",
    "notify_on_flapping",
    "notify_on_recovery",
    "output",
    "passive_checks",
    "percent_state_change",
    "perfdata",
    "retain_nonstatus_information",
    "retain_status_information",
    "retry_interval",
    "scheduled_downtime_depth",
    "severity_id",
    "should_be_scheduled",
    "state",
    "state_type",
];

/// Fields of host objects only.
const HOST_CACHE_FIELDS: &[&str] = &[
    "address",
    "alias",
    "flap_detection_on_down",
    "flap_detection_on_unreachable",
    "flap_detection_on_up",
    "instance_id",
    "last_check_value",
    "last_time_down",
    "last_time_unreachable",
    "last_time_up",
    "name",
    "no_more_notification",
    "notify_on_down",
    "notify_on_unreachable",
    "obsess_over_host",
    "stalk_on_down",
    "stalk_on_unreachable",
    "stalk_on_up",
    "statusmap_image",
    "timezone",
];

/// Fields of service objects only.
const SERVICE_CACHE_FIELDS: &[&str] = &[
    "description",
    "flap_detection_on_critical",
    "flap_detection_on_ok",
    "flap_detection_on_unknown",
    "flap_detection_on_warning",
    "is_volatile",
    "last_time_critical",
    "last_time_ok",
    "last_time_unknown",
    "last_time_warning",
    "notify_on_critical",
    "notify_on_unknown",
    "notify_on_warning",
    "obsess_over_service",
    "service_id",
    "stalk_on_critical",
    "stalk_on_ok",
    "stalk_on_unknown",
    "stalk_on_warning",
    "volatile",
];

/// `cache.host` fields that name the host for good (allowed in a `dedup_key`).
const HOST_IDENTITY: &[&str] = &["name", "alias", "address", "display_name", "host_id"];
/// `cache.service` fields that name the service for good (allowed in a `dedup_key`).
const SERVICE_IDENTITY: &[&str] = &["description", "display_name", "service_id"];

/// The transformation flags (`_sc<flag>` at the end of a macro).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    /// A timestamp as an RFC 3339 date in UTC.
    Date,
    /// 0 -> SOFT, anything else -> HARD.
    Type,
    /// The first line of a text.
    Short,
    /// A state number -> its name (OK, DOWN...).
    State,
    /// A text -> a number.
    Number,
    /// Anything -> a text.
    Text,
}

impl Flag {
    const NAMES: &str = "_scdate, _scstate, _sctype, _scshort, _scnumber, _scstring";

    fn parse(name: &str) -> Option<Flag> {
        Some(match name {
            "date" => Flag::Date,
            "type" => Flag::Type,
            "short" => Flag::Short,
            "state" => Flag::State,
            "number" => Flag::Number,
            "string" => Flag::Text,
            _ => return None,
        })
    }
}

/// Where a macro's value comes from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    /// A field of the event (`{output}`).
    Event(String),
    /// `{cache.host.X}`.
    Host(String),
    /// `{cache.service.X}`.
    Service(String),
    HostSeverity,
    ServiceSeverity,
    InstanceName,
    InstanceId,
    /// `{cache.hostgroups}`, `{cache.servicegroups}`: the names, a list.
    GroupList {
        service: bool,
    },
    /// `{groups(hg|sg,table|inline,PATTERN)}`: the names matching the Lua pattern.
    Groups {
        service: bool,
        table: bool,
        pattern: Pattern,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct Macro {
    /// As written, braces included (for messages).
    text: String,
    source: Source,
    flag: Option<Flag>,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    Mac(Macro),
}

/// A JSON value of a template, macros located.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// No macro inside.
    Fixed(Value),
    /// A string that is exactly one macro: the macro's value keeps its JSON type.
    Exact(Macro),
    /// A string with macros among text: always a string.
    Text(Vec<Piece>),
    Array(Vec<Node>),
    Object(Vec<(Vec<Piece>, Node)>),
}

/// Which events a template formats (decides which fields exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum For {
    Host,
    Service,
    Acknowledgement,
}

impl For {
    fn name(self) -> &'static str {
        match self {
            For::Host => "host statuses",
            For::Service => "service statuses",
            For::Acknowledgement => "acknowledgements",
        }
    }
}

/// One template of the file.
#[derive(Debug, Clone, PartialEq)]
struct Template {
    /// The top-level fields, `routing_key`, `event_action` and `dedup_key` taken out.
    fields: Vec<(Vec<Piece>, Node)>,
}

/// The templates of slot order [`SLOTS`].
const SLOTS: [(&str, For, bool); 6] = [
    ("neb_host_status", For::Host, false),
    ("neb_pb_host_status", For::Host, true),
    ("neb_service_status", For::Service, false),
    ("neb_pb_service_status", For::Service, true),
    ("neb_acknowledgement", For::Acknowledgement, false),
    ("neb_pb_acknowledgement", For::Acknowledgement, true),
];

/// The `format_file` of an output, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Templates {
    /// Per [`SLOTS`] entry.
    slots: Vec<Option<Template>>,
    /// The `dedup_key` of host objects, then of service objects, when a status template sets one.
    dedup: [Option<Vec<Piece>>; 2],
    /// Raw fields the templates read: event fields, `cache.host.X`, `cache.service.X`.
    needs: Vec<String>,
    /// The output options `{output}` and `{short_output}` follow.
    output: OutputOptions,
}

/// What reading a template file gives: the templates and the warnings for the log.
pub type Loaded = (Templates, Vec<String>);

impl Templates {
    /// Reads and checks `path`. The error says what is wrong, with the key and the macro.
    pub fn load(path: &str) -> Result<Loaded, String> {
        let text = crate::files::read_small(
            std::path::Path::new(path),
            crate::files::TEMPLATE_FILE_MAX_BYTES,
        )
        .map_err(|e| e.about("it"))?;
        Templates::parse(&text)
    }

    /// Checks the text of a template file.
    pub fn parse(text: &str) -> Result<Loaded, String> {
        let root: Value =
            serde_json::from_str(text).map_err(|e| format!("it is not valid JSON: {e}"))?;
        let Value::Object(root) = root else {
            return Err(
                "expected a JSON object of templates keyed by <category>_<element> \
                        (for example neb_service_status)"
                    .into(),
            );
        };
        let mut warnings = Vec::new();
        let mut slots: Vec<Option<Template>> = vec![None; SLOTS.len()];
        let mut dedup: [Vec<(&str, Vec<Piece>)>; 2] = [Vec::new(), Vec::new()];
        let mut needs = BTreeSet::new();
        for (key, value) in &root {
            let Some(slot) = SLOTS.iter().position(|(k, _, _)| k == key) else {
                warnings.push(unused_key(key)?);
                continue;
            };
            let (_, what, _) = SLOTS[slot];
            let Value::Object(obj) = value else {
                return Err(format!(
                    "template \"{key}\" must be a JSON object (the event to send)"
                ));
            };
            let at = |m: String| format!("template \"{key}\": {m}");
            let mut fields = Vec::new();
            for (name, v) in obj {
                match name.as_str() {
                    // A routing key written in the file is never read, shown or checked.
                    "routing_key" => warnings.push(format!(
                        "format_file: template \"{key}\": routing_key is ignored: the \
                         configured routing key (pdy_routing_key) is sent"
                    )),
                    "event_action" => warnings.push(format!(
                        "format_file: template \"{key}\": event_action is ignored: the \
                         connector decides trigger, acknowledge or resolve"
                    )),
                    "dedup_key" if what == For::Acknowledgement => warnings.push(format!(
                        "format_file: template \"{key}\": dedup_key is ignored: an \
                         acknowledgement uses the dedup_key of the incident it acknowledges"
                    )),
                    "dedup_key" => {
                        let pieces = dedup_pieces(v, what).map_err(at)?;
                        dedup[(what == For::Service) as usize].push((key, pieces));
                    }
                    _ => {
                        let path = name.clone();
                        let k = pieces(name, what).map_err(|m| at(format!("{m} in a key")))?;
                        let node = node(v, what, &path).map_err(at)?;
                        if name == "payload" {
                            check_payload(&node).map_err(at)?;
                        }
                        fields.push((k, node));
                    }
                }
            }
            if !obj.contains_key("payload") {
                warnings.push(format!(
                    "format_file: template \"{key}\" has no payload: the built-in payload is sent"
                ));
            }
            let t = Template { fields };
            t.collect_needs(&mut needs);
            slots[slot] = Some(t);
        }
        let mut chosen: [Option<Vec<Piece>>; 2] = [None, None];
        for (i, found) in dedup.into_iter().enumerate() {
            let mut found = found.into_iter();
            if let Some((first_key, first)) = found.next() {
                if let Some((other, _)) = found.find(|(_, p)| *p != first) {
                    return Err(format!(
                        "templates \"{first_key}\" and \"{other}\" set different dedup_keys: an \
                         object has one dedup_key whatever the BBDO version (set the same one)"
                    ));
                }
                for p in &first {
                    if let Piece::Mac(m) = p {
                        m.collect_needs(&mut needs);
                    }
                }
                chosen[i] = Some(first);
            }
        }
        // The event type (read with every event anyway) tells the BBDO version of acknowledgements.
        needs.extend(["_type", "category", "element"].map(String::from));
        Ok((
            Templates {
                slots,
                dedup: chosen,
                needs: needs.into_iter().collect(),
                output: OutputOptions::default(),
            },
            warnings,
        ))
    }

    /// The same templates, their `{output}` and `{short_output}` shaped by `output`
    /// (`use_long_output`, `output_size_limit`, `remove_line_break_in_output`).
    pub fn with_output(mut self, output: OutputOptions) -> Self {
        self.output = output;
        self
    }

    /// The raw fields the templates read, for the bridge (space separated): event fields and
    /// `cache.host.X` / `cache.service.X` values of `broker_cache:get_host` / `get_service`.
    pub fn fields(&self) -> String {
        self.needs.join(" ")
    }

    /// Keeps, in `ctx`, the raw fields of `raw` the templates read.
    pub fn capture(&self, raw: &RawEvent, ctx: &mut Context) {
        ctx.template_fields = self
            .needs
            .iter()
            .filter_map(|n| raw.get(n).map(|v| (n.clone(), v.clone())))
            .collect();
    }

    fn slot(&self, what: For, bbdo: Bbdo) -> Option<&Template> {
        let find = |pb: bool| {
            SLOTS
                .iter()
                .position(|(_, f, p)| *f == what && *p == pb)
                .and_then(|i| self.slots[i].as_ref())
        };
        match bbdo {
            Bbdo::V3 => find(true).or_else(|| find(false)),
            Bbdo::V2 => find(false),
        }
    }

    /// The event for a host or service status: the template of its kind and BBDO version if
    /// there is one, else `builtin`; with the object's `dedup_key` either way.
    pub fn status_event(
        &self,
        ev: &StatusEvent,
        action: Action,
        builtin: Outgoing,
        log: &Logger,
    ) -> Outgoing {
        let what = match ev.kind() {
            Kind::Host => For::Host,
            Kind::Service => For::Service,
        };
        self.event(
            self.slot(what, ev.bbdo),
            ev.key,
            &ev.ctx,
            action,
            builtin,
            log,
        )
    }

    /// The event for an acknowledgement or a resolve without a status (`builtin` is the
    /// built-in one): acknowledgements follow the acknowledgement template if there is one.
    pub fn note_event(
        &self,
        key: ObjectKey,
        ctx: &Context,
        action: Action,
        builtin: Outgoing,
        log: &Logger,
    ) -> Outgoing {
        let template = (action == Action::Acknowledge)
            .then(|| self.slot(For::Acknowledgement, bbdo_of(ctx)))
            .flatten();
        self.event(template, key, ctx, action, builtin, log)
    }

    fn event(
        &self,
        template: Option<&Template>,
        key: ObjectKey,
        ctx: &Context,
        action: Action,
        mut builtin: Outgoing,
        log: &Logger,
    ) -> Outgoing {
        let scope = Scope {
            key,
            ctx,
            output: &self.output,
        };
        let mut render = Render::new(&scope);
        if let Some(dedup) = self.dedup[(key.kind() == Kind::Service) as usize].as_ref() {
            let text = render.whole(dedup);
            match dedup_problem(&text) {
                None => set_dedup_key(&mut builtin, text),
                Some(why) => log.warning(&format!(
                    "format_file: the dedup_key of {key} is {why}: the built-in {} is used",
                    builtin.dedup_key
                )),
            }
        }
        let Some(t) = template else {
            return builtin;
        };
        match render.event(t, action, &builtin) {
            Some(out) => out,
            None => {
                log.warning(&format!(
                    "format_file: the event for {key} does not fit PagerDuty's 512 KB even \
                     shrunk: sent in the built-in format"
                ));
                builtin
            }
        }
    }
}

impl<'t> Render<'t, '_> {
    /// The event of template `t`, shrunk to the budget; `None` when what is not
    /// `custom_details` does not fit alone.
    fn event(&mut self, t: &'t Template, action: Action, builtin: &Outgoing) -> Option<Outgoing> {
        let body = self.body(t);
        if self.over {
            return None;
        }
        let mut out = finish(body, action, builtin);
        let room = payload::BODY_BUDGET.checked_sub(payload::json_len(&out.body))?;
        if let Some(details) = self.details(room)
            && let Some(Value::Object(p)) = out.body.get_mut("payload")
        {
            p.insert("custom_details".into(), details);
        }
        (payload::json_len(&out.body) <= payload::BODY_BUDGET).then_some(out)
    }
}

/// The BBDO version of the event a context was captured from (its `element`).
fn bbdo_of(ctx: &Context) -> Bbdo {
    let int = |name: &str| {
        ctx.template_fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| match v {
                RawValue::Int(i) => Some(*i),
                _ => None,
            })
    };
    let el = int("element").or_else(|| int("_type").map(|t| t & 0xffff));
    el.and_then(|e| EventType::of(CATEGORY_NEB, e as u32))
        .map_or(Bbdo::V2, EventType::bbdo)
}

fn set_dedup_key(out: &mut Outgoing, key: String) {
    out.body.insert("dedup_key".into(), key.as_str().into());
    out.dedup_key = key;
}

/// Why a rendered `dedup_key` cannot be used, if it cannot.
fn dedup_problem(key: &str) -> Option<String> {
    let n = key.chars().count();
    if key.trim().is_empty() {
        Some("empty".into())
    } else if n > payload::MAX_DEDUP_KEY_CHARS {
        Some(format!(
            "{n} characters long (PagerDuty takes at most {})",
            payload::MAX_DEDUP_KEY_CHARS
        ))
    } else if key.chars().any(char::is_control) {
        Some("holding control characters".into())
    } else {
        None
    }
}

/// A key of the file that is no template we use: a warning, or an error for a name the
/// library would not know either.
fn unused_key(key: &str) -> Result<String, String> {
    // `^(%w+)_(.*)`, as sc_params reads the keys.
    let known = key.split_once('_').is_some_and(|(cat, el)| {
        KNOWN_CATEGORIES.contains(&cat)
            && (KNOWN_ELEMENTS.contains(&el) || EventType::is_documented_name(el))
    });
    if known {
        Ok(format!(
            "format_file: template \"{key}\" is ignored: this connector sends events only for \
             host statuses, service statuses and acknowledgements"
        ))
    } else {
        let names: Vec<&str> = SLOTS.iter().map(|(k, _, _)| *k).collect();
        Err(format!(
            "unknown template key \"{key}\" (expected <category>_<element>: {})",
            names.join(", ")
        ))
    }
}

/// The macros and text of a string. `{`, one or more of the characters the library's
/// pattern `{[%w_.%(%),%%%+%-%*%?%[%]%^%$]+}` allows, and `}` make a macro.
fn pieces(s: &str, what: For) -> Result<Vec<Piece>, String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"_.(),%+-*?[]^$".contains(&b);
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            let len = bytes[i + 1..].iter().take_while(|b| allowed(**b)).count();
            let end = i + 1 + len;
            if len > 0 && bytes.get(end) == Some(&b'}') {
                if !lit.is_empty() {
                    out.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                out.push(Piece::Mac(parse_macro(&s[i..=end], what)?));
                i = end + 1;
                continue;
            }
        }
        let c = s[i..].chars().next().unwrap_or_default();
        lit.push(c);
        i += c.len_utf8().max(1);
    }
    if !lit.is_empty() || out.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Ok(out)
}

fn node(v: &Value, what: For, path: &str) -> Result<Node, String> {
    Ok(match v {
        Value::String(s) => {
            let p = pieces(s, what).map_err(|m| format!("{m} at {path}"))?;
            match <[Piece; 1]>::try_from(p) {
                Ok([Piece::Lit(_)]) => Node::Fixed(v.clone()),
                Ok([Piece::Mac(m)]) => Node::Exact(m),
                Err(p) => Node::Text(p),
            }
        }
        Value::Array(items) => Node::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| node(item, what, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(obj) => Node::Object(
            obj.iter()
                .map(|(k, item)| {
                    let key = pieces(k, what).map_err(|m| format!("{m} in a key at {path}"))?;
                    Ok((key, node(item, what, &format!("{path}.{k}"))?))
                })
                .collect::<Result<_, String>>()?,
        ),
        _ => Node::Fixed(v.clone()),
    })
}

/// A fixed `payload.severity` must be one PagerDuty takes.
fn check_payload(payload: &Node) -> Result<(), String> {
    if let Node::Object(fields) = payload {
        for (k, v) in fields {
            if let ([Piece::Lit(k)], Node::Fixed(Value::String(s))) = (k.as_slice(), v)
                && k == "severity"
                && Severity::parse(s).is_none()
            {
                return Err(format!(
                    "payload.severity {s:?} is not a PagerDuty severity (critical, error, \
                     warning or info)"
                ));
            }
        }
    }
    Ok(())
}

/// A status template's `dedup_key`: a string naming the object only by what never changes
/// between its events, so that trigger, acknowledge and resolve meet in one incident.
fn dedup_pieces(v: &Value, what: For) -> Result<Vec<Piece>, String> {
    let Value::String(s) = v else {
        return Err("dedup_key must be a string".into());
    };
    let p = pieces(s, what).map_err(|m| format!("{m} in dedup_key"))?;
    let (mut host, mut service) = (false, false);
    for piece in &p {
        let Piece::Mac(m) = piece else { continue };
        match &m.source {
            Source::Event(f) if f == "host_id" => host = true,
            Source::Event(f) if f == "service_id" => service = true,
            Source::Host(f) if HOST_IDENTITY.contains(&f.as_str()) => host = true,
            Source::Service(f) if SERVICE_IDENTITY.contains(&f.as_str()) => service = true,
            Source::InstanceName | Source::InstanceId => {}
            _ => {
                return Err(format!(
                    "macro {} cannot be used in dedup_key: the dedup_key ties trigger, \
                     acknowledge and resolve of an object together, so it may only use {{host_id}}, \
                     {{service_id}}, {{cache.host.name}}, {{cache.service.description}} and the \
                     other names of the object ({{cache.host.alias}}, {{cache.host.address}}, \
                     {{cache.host.display_name}}, {{cache.service.display_name}}, \
                     {{cache.instance.name}}...)",
                    m.text
                ));
            }
        }
    }
    if !host || (what == For::Service && !service) {
        return Err(format!(
            "dedup_key {s:?} does not name the object: it needs {{host_id}} or \
             {{cache.host.name}}{}, or every object would share one incident",
            if what == For::Service {
                " and {service_id} or {cache.service.description}"
            } else {
                ""
            }
        ));
    }
    Ok(p)
}

/// Reads one macro (`{...}`, braces included) as the library does, and checks it.
fn parse_macro(text: &str, what: For) -> Result<Macro, String> {
    let inner = &text[1..text.len() - 1];
    let unknown = |why: &str| format!("unknown macro {text} ({why})");
    if let Some(args) = inner
        .strip_prefix("groups(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let mut parts = args.splitn(3, ',');
        let (kind, format, regex) = match (parts.next(), parts.next(), parts.next()) {
            (Some(k), Some(f), Some(r)) => (k, f, r),
            _ => return Err(unknown("expected {groups(hg|sg,table|inline,PATTERN)}")),
        };
        let service = match kind {
            "hg" => false,
            "sg" => true,
            "bv" => {
                return Err(unknown(
                    "business views are BAM objects, which this connector does not handle",
                ));
            }
            _ => return Err(unknown("the group type must be hg or sg")),
        };
        let table = match format {
            "table" => true,
            "inline" => false,
            _ => return Err(unknown("the format must be table or inline")),
        };
        let pattern = Pattern::new(regex)
            .map_err(|e| format!("macro {text}: {regex:?} is not a valid Lua pattern: {e}"))?;
        let m = Macro {
            text: text.to_string(),
            source: Source::Groups {
                service,
                table,
                pattern,
            },
            flag: None,
        };
        return check_for(m, what);
    }
    // `(.*)_sc(%w+)$`: only the last `_sc` can be followed by letters and digits alone.
    let (name, flag) = match inner.rfind("_sc") {
        Some(i)
            if i + 3 < inner.len() && inner[i + 3..].bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            let f = &inner[i + 3..];
            let flag = Flag::parse(f).ok_or_else(|| {
                format!(
                    "unknown flag _sc{f} in macro {text} (flags: {})",
                    Flag::NAMES
                )
            })?;
            (&inner[..i], Some(flag))
        }
        _ => (inner, None),
    };
    let source = if let Some(rest) = name.strip_prefix("cache.") {
        match rest.split_once('.') {
            None if rest == "hostgroups" => Source::GroupList { service: false },
            None if rest == "servicegroups" => Source::GroupList { service: true },
            None => return Err(unknown("cache macros are {cache.<type>.<field>}")),
            Some(("host", f))
                if OBJECT_CACHE_FIELDS.contains(&f) || HOST_CACHE_FIELDS.contains(&f) =>
            {
                Source::Host(f.into())
            }
            Some(("service", f))
                if OBJECT_CACHE_FIELDS.contains(&f) || SERVICE_CACHE_FIELDS.contains(&f) =>
            {
                Source::Service(f.into())
            }
            Some(("host" | "service", _)) => {
                return Err(unknown(
                    "not a field of the hosts or services of Broker's cache",
                ));
            }
            Some(("severity", "host")) => Source::HostSeverity,
            Some(("severity", "service")) => Source::ServiceSeverity,
            Some(("severity", _)) => {
                return Err(unknown("expected severity.host or severity.service"));
            }
            Some(("instance", "name")) => Source::InstanceName,
            Some(("instance", "id")) => Source::InstanceId,
            Some(("instance", _)) => return Err(unknown("expected instance.name or instance.id")),
            Some(_) => {
                return Err(unknown(
                    "the cache types are host, service, severity and instance",
                ));
            }
        }
    } else {
        let known = COMMON_FIELDS.contains(&name)
            || name == "service_id" && what != For::Host
            || match what {
                For::Host | For::Service => STATUS_FIELDS.contains(&name),
                For::Acknowledgement => ACK_FIELDS.contains(&name),
            };
        if !known {
            return Err(unknown(&format!(
                "not a field of the events of {}",
                what.name()
            )));
        }
        Source::Event(name.to_string())
    };
    check_for(
        Macro {
            text: text.to_string(),
            source,
            flag,
        },
        what,
    )
}

/// Service data has no meaning in a host status template.
fn check_for(m: Macro, what: For) -> Result<Macro, String> {
    let service_only = matches!(
        m.source,
        Source::Service(_)
            | Source::ServiceSeverity
            | Source::GroupList { service: true }
            | Source::Groups { service: true, .. }
    );
    if what == For::Host && service_only {
        return Err(format!(
            "macro {} names service data, which host status events do not have",
            m.text
        ));
    }
    Ok(m)
}

impl Macro {
    fn collect_needs(&self, needs: &mut BTreeSet<String>) {
        let mut add = |n: &str| {
            needs.insert(n.to_string());
        };
        match &self.source {
            Source::Event(f) => {
                add(f);
                for alias in aliases(f) {
                    add(alias);
                }
            }
            Source::Host(f) => add(&format!("cache.host.{f}")),
            Source::Service(f) => add(&format!("cache.service.{f}")),
            Source::InstanceId => add("cache.host.instance_id"),
            _ => {}
        }
    }
}

/// The other fields an event field may be read from (BBDO 2 / BBDO 3 names, computed ones),
/// as the library's compatibility patches do.
fn aliases(field: &str) -> &'static [&'static str] {
    match field {
        "state" => &["current_state"],
        "current_state" => &["state"],
        "last_check" => &["last_update"],
        "last_update" => &["last_check"],
        "acknowledged" => &["acknowledgement_type"],
        "scheduled_downtime_depth" => &["downtime_depth"],
        "downtime_depth" => &["scheduled_downtime_depth"],
        "flapping" => &["is_flapping"],
        "is_flapping" => &["flapping"],
        "check_attempt" => &["current_check_attempt"],
        "current_check_attempt" => &["check_attempt"],
        "perfdata" => &["perf_data"],
        "perf_data" => &["perfdata"],
        "short_output" => &["output"],
        "long_output" => &["output"],
        "comment_data" => &["comment"],
        "comment" => &["comment_data"],
        "sticky" => &["is_sticky"],
        "is_sticky" => &["sticky"],
        _ => &[],
    }
}

impl Template {
    fn collect_needs(&self, needs: &mut BTreeSet<String>) {
        fn walk(n: &Node, needs: &mut BTreeSet<String>) {
            match n {
                Node::Fixed(_) => {}
                Node::Exact(m) => m.collect_needs(needs),
                Node::Text(p) => pieces_needs(p, needs),
                Node::Array(items) => items.iter().for_each(|i| walk(i, needs)),
                Node::Object(fields) => {
                    for (k, v) in fields {
                        pieces_needs(k, needs);
                        walk(v, needs);
                    }
                }
            }
        }
        fn pieces_needs(p: &[Piece], needs: &mut BTreeSet<String>) {
            for piece in p {
                if let Piece::Mac(m) = piece {
                    m.collect_needs(needs);
                }
            }
        }
        for (k, v) in &self.fields {
            pieces_needs(k, needs);
            walk(v, needs);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------

/// A macro's value.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    /// Names: a JSON array alone, joined with "," among text.
    List(Vec<String>),
    /// `{groups(...,table,...)}`: a JSON array alone, its JSON text among text (as the library).
    Table(Vec<String>),
}

impl Val {
    fn of(raw: &RawValue) -> Val {
        match raw {
            RawValue::Int(i) => Val::Int(*i),
            RawValue::Float(f) => Val::Float(*f),
            RawValue::Str(s) => Val::Str(s.clone()),
            RawValue::Bool(b) => Val::Bool(*b),
            RawValue::List(l) => Val::List(l.clone()),
        }
    }

    fn json(self) -> Value {
        match self {
            Val::Int(i) => i.into(),
            Val::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            Val::Str(s) => s.into(),
            Val::Bool(b) => b.into(),
            Val::List(l) | Val::Table(l) => l.into_iter().map(Value::from).collect(),
        }
    }

    /// The value among text, as Lua's `tostring` writes it.
    fn text(&self) -> String {
        match self {
            Val::Int(i) => i.to_string(),
            Val::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.1}"),
            Val::Float(f) => f.to_string(),
            Val::Str(s) => s.clone(),
            Val::Bool(b) => b.to_string(),
            Val::List(l) => l.join(","),
            Val::Table(l) => Value::from(l.clone()).to_string(),
        }
    }

    fn integer(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            Val::Float(f) if f.fract() == 0.0 && f.is_finite() => Some(*f as i64),
            _ => None,
        }
    }

    /// Lua's `tonumber`: numbers as they are, texts holding a number converted.
    fn number(self) -> Option<Val> {
        match self {
            Val::Int(_) | Val::Float(_) => Some(self),
            Val::Str(s) => {
                let t = s.trim();
                let hex = t
                    .strip_prefix("0x")
                    .or_else(|| t.strip_prefix("0X"))
                    .and_then(|h| i64::from_str_radix(h, 16).ok());
                t.parse::<i64>()
                    .ok()
                    .or(hex)
                    .map(Val::Int)
                    .or_else(|| t.parse::<f64>().ok().map(Val::Float))
            }
            _ => None,
        }
    }
}

/// The object an event is about and what the bridge told about it.
struct Scope<'a> {
    key: ObjectKey,
    ctx: &'a Context,
    output: &'a OutputOptions,
}

impl Scope<'_> {
    fn raw(&self, name: &str) -> Option<Val> {
        self.ctx
            .template_fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| Val::of(v))
    }

    /// A field of the event, with the library's compatibility patches.
    fn event(&self, name: &str) -> Option<Val> {
        match name {
            "host_id" => return Some(Val::Int(self.key.host_id as i64)),
            "service_id" if self.key.service_id != 0 => {
                return Some(Val::Int(self.key.service_id as i64));
            }
            "service_id" => return None,
            _ => {}
        }
        let output = || match self.raw("output") {
            Some(Val::Str(s)) => Some(s),
            _ => None,
        };
        match name {
            // sc_event's build_outputs: the output options; the first line; output and long
            // output together (never shaped by the options).
            "output" => output()
                .map(|o| Val::Str(self.output.text(&o)))
                .or_else(|| self.raw(name)),
            "short_output" => output().map(|o| Val::Str(self.output.text(first_line(&o)))),
            "long_output" => {
                let o = output()?;
                Some(Val::Str(match self.raw("long_output") {
                    Some(Val::Str(l)) if !l.is_empty() => format!("{o}\n{l}"),
                    _ => o,
                }))
            }
            "acknowledged" => self.raw(name).or_else(|| {
                self.raw("acknowledgement_type")
                    .and_then(|t| t.integer())
                    .map(|t| Val::Bool(t >= 1))
            }),
            _ => self
                .raw(name)
                .or_else(|| aliases(name).iter().find_map(|a| self.raw(a))),
        }
    }

    fn value(&self, source: &Source) -> Option<Val> {
        let ctx = self.ctx;
        let text = |s: &Option<String>| {
            s.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|s| Val::Str(s.to_string()))
        };
        let groups = |service: bool| {
            if service {
                &ctx.servicegroups
            } else {
                &ctx.hostgroups
            }
        };
        match source {
            Source::Event(f) => self.event(f),
            Source::Host(f) => self
                .raw(&format!("cache.host.{f}"))
                .or_else(|| match f.as_str() {
                    // as sc_event: an unknown host is named by its id
                    "name" => text(&ctx.host_name).or(Some(Val::Int(self.key.host_id as i64))),
                    "host_id" => Some(Val::Int(self.key.host_id as i64)),
                    "address" => text(&ctx.host_address),
                    "notes_url" if self.key.kind() == Kind::Host => text(&ctx.notes_url),
                    "action_url" if self.key.kind() == Kind::Host => text(&ctx.action_url),
                    _ => None,
                }),
            Source::Service(_) if self.key.kind() == Kind::Host => None,
            Source::Service(f) => {
                self.raw(&format!("cache.service.{f}"))
                    .or_else(|| match f.as_str() {
                        "description" => text(&ctx.service_description)
                            .or(Some(Val::Int(self.key.service_id as i64))),
                        "service_id" => Some(Val::Int(self.key.service_id as i64)),
                        "host_id" => Some(Val::Int(self.key.host_id as i64)),
                        "notes_url" => text(&ctx.notes_url),
                        "action_url" => text(&ctx.action_url),
                        _ => None,
                    })
            }
            Source::HostSeverity => ctx.host_severity.map(Val::Int),
            Source::ServiceSeverity => ctx.service_severity.map(Val::Int),
            Source::InstanceName => text(&ctx.poller),
            Source::InstanceId => self.raw("cache.host.instance_id"),
            Source::GroupList { service } => Some(Val::List(groups(*service).clone())),
            Source::Groups {
                service,
                table,
                pattern,
            } => {
                let names: Vec<String> = groups(*service)
                    .iter()
                    .filter(|g| pattern.is_match(g))
                    .cloned()
                    .collect();
                Some(if *table {
                    Val::Table(names)
                } else {
                    Val::Str(names.join(","))
                })
            }
        }
    }

    /// A macro's value, its flag applied; `None` when there is none.
    fn resolve(&self, m: &Macro) -> Option<Val> {
        let v = self.value(&m.source)?;
        let Some(flag) = m.flag else {
            return Some(v);
        };
        let kind = match m.source {
            Source::Host(_) => Kind::Host,
            Source::Service(_) => Kind::Service,
            _ => self.key.kind(),
        };
        match flag {
            Flag::Date => Some(match v.clone().number().as_ref().and_then(date_of) {
                Some(d) => Val::Str(d),
                None => v,
            }),
            // `macro_value == 0`: a text "0" is not 0 in Lua.
            Flag::Type => Some(Val::Str(
                if v.integer() == Some(0) {
                    "SOFT"
                } else {
                    "HARD"
                }
                .into(),
            )),
            Flag::Short => Some(match v {
                Val::Str(s) => Val::Str(first_line(&s).to_string()),
                other => other,
            }),
            Flag::State => {
                let max = match kind {
                    Kind::Host => 2,
                    Kind::Service => 4,
                };
                v.integer()
                    .filter(|s| (0..=max).contains(s))
                    .map(|s| Val::Str(crate::event::state_name(kind, s).into()))
            }
            Flag::Number => v.number(),
            Flag::Text => Some(Val::Str(v.text())),
        }
    }
}

fn date_of(v: &Val) -> Option<String> {
    match v {
        Val::Int(i) => Some(timefmt::rfc3339_utc(*i)),
        Val::Float(f) if f.is_finite() => Some(timefmt::rfc3339_utc(*f as i64)),
        _ => None,
    }
}

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
enum Role {
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
struct Render<'t, 's> {
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
    over: bool,
}

impl<'t, 's> Render<'t, 's> {
    fn new(scope: &'s Scope<'s>) -> Self {
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
    fn whole(&mut self, p: &'t [Piece]) -> String {
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

    fn node(&mut self, n: &'t Node, role: Role) -> Value {
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
    fn body(&mut self, t: &'t Template) -> Map<String, Value> {
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
    let fallback = builtin.body.get("payload").and_then(Value::as_object);
    let from_builtin = |k: &str| fallback.and_then(|p| p.get(k)).cloned();
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
            body.insert(
                "payload".into(),
                fallback.cloned().map_or(Value::Null, Value::Object),
            );
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
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ParamValue, Secret};
    use crate::event::Event;
    use crate::log::Level;
    use serde_json::json;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn load(v: Value) -> Templates {
        Templates::parse(&v.to_string()).expect("valid templates").0
    }

    fn warnings(v: Value) -> Vec<String> {
        Templates::parse(&v.to_string()).expect("valid templates").1
    }

    fn err(v: Value) -> String {
        Templates::parse(&v.to_string()).expect_err("invalid templates")
    }

    fn ctx() -> Context {
        Context {
            host_name: Some("srv-db".into()),
            service_description: Some("Disk /var".into()),
            hostgroups: vec!["linux".into(), "db".into()],
            servicegroups: vec!["storage".into()],
            host_severity: Some(2),
            service_severity: Some(1),
            poller: Some("Central".into()),
            host_address: Some("10.0.0.5".into()),
            ..Context::default()
        }
    }

    /// A BBDO 3 service status as the bridge hands it over with a template configured.
    fn raw() -> RawEvent {
        RawEvent::from_json(&json!({
            "category": 1, "element": 29, "host_id": 12, "service_id": 34,
            "state": 2, "state_type": 1, "last_check": 1_700_000_000, "last_state_change": 1_700_000_000,
            "output": "CRITICAL - /var 97%", "long_output": "inodes 50%", "perfdata": "used=97%",
            "acknowledgement_type": 1, "percent_state_change": 6.25, "execution_time": 2.0,
            "host_name": "srv-db", "service_description": "Disk /var",
            "cache.host.alias": "database", "cache.host.instance_id": 1, "cache.host.state": 1,
            "cache.host.notes": "42", "cache.service.display_name": "Disk var",
        }))
        .unwrap()
    }

    fn scope_ctx(raw: &RawEvent) -> Context {
        let mut c = ctx();
        c.template_fields = raw.fields.clone();
        c
    }

    fn eval_in(s: &str, what: For, key: ObjectKey, ctx: &Context) -> Value {
        let n = node(&json!(s), what, "x").unwrap_or_else(|e| panic!("{s}: {e}"));
        let scope = Scope {
            key,
            ctx,
            output: &OutputOptions::default(),
        };
        Render::new(&scope).node(&n, Role::Whole)
    }

    const SVC: ObjectKey = ObjectKey {
        host_id: 12,
        service_id: 34,
    };
    const HOST: ObjectKey = ObjectKey {
        host_id: 12,
        service_id: 0,
    };

    /// `s` rendered in a service status template for [`raw`].
    fn eval(s: &str) -> Value {
        eval_in(s, For::Service, SVC, &scope_ctx(&raw()))
    }

    #[test]
    fn output_macros_follow_the_output_options() {
        // a BBDO 2 output: first line and long output in one text
        let mut r = raw();
        r.fields
            .retain(|(k, _)| k != "output" && k != "long_output");
        r.fields.push((
            "output".into(),
            RawValue::Str("CRITICAL - /var 97%\ninodes 50%".into()),
        ));
        let c = scope_ctx(&r);
        let eval_with = |s: &str, o: OutputOptions| {
            let n = node(&json!(s), For::Service, "x").unwrap();
            let scope = Scope {
                key: SVC,
                ctx: &c,
                output: &o,
            };
            Render::new(&scope).node(&n, Role::Whole)
        };
        let opts = |long, size_limit, line_break: Option<&str>| OutputOptions {
            long,
            size_limit,
            line_break: line_break.map(str::to_string),
        };
        // (options, {output}, {short_output}, {long_output})
        let table = [
            (
                opts(true, None, None),
                "CRITICAL - /var 97%\ninodes 50%",
                "CRITICAL - /var 97%",
            ),
            (
                opts(false, None, None),
                "CRITICAL - /var 97%",
                "CRITICAL - /var 97%",
            ),
            (
                opts(true, None, Some(" ")),
                "CRITICAL - /var 97% inodes 50%",
                "CRITICAL - /var 97%",
            ),
            (opts(true, Some(8), None), "CRITICAL", "CRITICAL"),
        ];
        for (i, (o, output, short)) in table.into_iter().enumerate() {
            assert_eq!(eval_with("{output}", o.clone()), json!(output), "row {i}");
            assert_eq!(
                eval_with("{short_output}", o.clone()),
                json!(short),
                "row {i}"
            );
            // the long output is the library's: never shaped by the options
            assert_eq!(
                eval_with("{long_output}", o),
                json!("CRITICAL - /var 97%\ninodes 50%"),
                "row {i}"
            );
        }
        // set through the configuration: use_long_output=0 reaches the templates
        let t = load(json!({"neb_service_status": {"payload": {"summary": "{output}"}}}))
            .with_output(opts(false, None, None));
        assert_eq!(t.output, opts(false, None, None));
    }

    #[test]
    fn event_field_macros() {
        assert_eq!(
            eval("{host_id}"),
            json!(12),
            "alone, a number stays a number"
        );
        assert_eq!(eval("{service_id}"), json!(34));
        assert_eq!(eval("{state}"), json!(2));
        assert_eq!(eval("{current_state}"), json!(2), "BBDO 2 name of state");
        assert_eq!(eval("{output}"), json!("CRITICAL - /var 97%"));
        assert_eq!(
            eval("{long_output}"),
            json!("CRITICAL - /var 97%\ninodes 50%")
        );
        assert_eq!(eval("{short_output}"), json!("CRITICAL - /var 97%"));
        assert_eq!(eval("{percent_state_change}"), json!(6.25));
        assert_eq!(
            eval("{last_update}"),
            json!(1_700_000_000),
            "BBDO 3: last_check"
        );
        assert_eq!(
            eval("{acknowledged}"),
            json!(true),
            "from acknowledgement_type"
        );
        assert_eq!(eval("{perf_data}"), json!("used=97%"));
        assert_eq!(eval("id {host_id}/{service_id}!"), json!("id 12/34!"));
        // no value: null alone, nothing among text
        assert_eq!(eval("{latency}"), Value::Null);
        assert_eq!(eval("[{latency}]"), json!("[]"));
        // a host event has no service_id
        let host = eval_in(
            "{service_id}",
            For::Acknowledgement,
            HOST,
            &scope_ctx(&raw()),
        );
        assert_eq!(host, Value::Null);
    }

    #[test]
    fn cache_macros() {
        assert_eq!(eval("{cache.host.name}"), json!("srv-db"));
        assert_eq!(eval("{cache.host.alias}"), json!("database"));
        assert_eq!(eval("{cache.host.address}"), json!("10.0.0.5"));
        assert_eq!(eval("{cache.host.host_id}"), json!(12));
        assert_eq!(eval("{cache.host.timezone}"), Value::Null);
        assert_eq!(eval("{cache.service.description}"), json!("Disk /var"));
        assert_eq!(eval("{cache.service.display_name}"), json!("Disk var"));
        assert_eq!(eval("{cache.service.service_id}"), json!(34));
        assert_eq!(eval("{cache.severity.host}"), json!(2));
        assert_eq!(eval("{cache.severity.service}"), json!(1));
        assert_eq!(eval("{cache.instance.name}"), json!("Central"));
        assert_eq!(eval("{cache.instance.id}"), json!(1));
        assert_eq!(
            eval("{cache.host.name}/{cache.service.description} on {cache.instance.name}"),
            json!("srv-db/Disk /var on Central")
        );
        // objects the cache does not know are named by their ids, as sc_event does
        let anon = Context::default();
        assert_eq!(
            eval_in("{cache.host.name}", For::Service, SVC, &anon),
            json!(12)
        );
        assert_eq!(
            eval_in("{cache.service.description}", For::Service, SVC, &anon),
            json!(34)
        );
        assert_eq!(
            eval_in("{cache.severity.host}", For::Service, SVC, &anon),
            Value::Null
        );
        assert_eq!(
            eval_in("{cache.instance.name}", For::Service, SVC, &anon),
            Value::Null
        );
    }

    #[test]
    fn group_macros() {
        assert_eq!(eval("{cache.hostgroups}"), json!(["linux", "db"]));
        assert_eq!(eval("{cache.servicegroups}"), json!(["storage"]));
        assert_eq!(eval("in {cache.hostgroups}"), json!("in linux,db"));
        assert_eq!(eval("{groups(hg,table,.*)}"), json!(["linux", "db"]));
        assert_eq!(eval("{groups(hg,table,^l)}"), json!(["linux"]));
        assert_eq!(eval("{groups(hg,inline,.*)}"), json!("linux,db"));
        assert_eq!(eval("{groups(sg,inline,%d)}"), json!(""));
        assert_eq!(
            eval("hg: {groups(hg,table,.*)}"),
            json!("hg: [\"linux\",\"db\"]"),
            "a table among text is its JSON text, as the library"
        );
    }

    #[test]
    fn flags() {
        // _scdate: RFC 3339 in UTC
        assert_eq!(eval("{last_check_scdate}"), json!("2023-11-14T22:13:20Z"));
        assert_eq!(eval("{cache.host.alias_scdate}"), json!("database"));
        // _sctype
        assert_eq!(eval("{state_type_sctype}"), json!("HARD"));
        let mut soft = raw();
        soft.fields.retain(|(k, _)| k != "state_type");
        soft.fields.push(("state_type".into(), RawValue::Int(0)));
        soft.fields
            .push(("cache.host.state_type".into(), RawValue::Str("0".into())));
        let c = scope_ctx(&soft);
        assert_eq!(
            eval_in("{state_type_sctype}", For::Service, SVC, &c),
            json!("SOFT")
        );
        assert_eq!(
            eval_in("{cache.host.state_type_sctype}", For::Service, SVC, &c),
            json!("HARD"),
            "the text \"0\" is not 0, as in Lua"
        );
        // _scshort: the first line
        let mut two = raw();
        two.fields
            .push(("comment".into(), RawValue::Str("a\nb\nc".into())));
        two.fields.retain(|(k, _)| k != "output");
        two.fields.push((
            "output".into(),
            RawValue::Str("first\nsecond\nthird".into()),
        ));
        let c = scope_ctx(&two);
        assert_eq!(
            eval_in("{output_scshort}", For::Service, SVC, &c),
            json!("first")
        );
        assert_eq!(
            eval_in("{short_output}", For::Service, SVC, &c),
            json!("first")
        );
        assert_eq!(eval("{host_id_scshort}"), json!(12));
        // _scstate: by the object's kind; cache.host states are host states
        assert_eq!(eval("{state_scstate}"), json!("CRITICAL"));
        assert_eq!(eval("{cache.host.state_scstate}"), json!("DOWN"));
        let host = RawEvent::from_json(&json!({"element": 32, "host_id": 12, "state": 1})).unwrap();
        assert_eq!(
            eval_in("{state_scstate}", For::Host, HOST, &scope_ctx(&host)),
            json!("DOWN")
        );
        let odd = RawEvent::from_json(&json!({"state": 7})).unwrap();
        assert_eq!(
            eval_in("{state_scstate}", For::Service, SVC, &scope_ctx(&odd)),
            Value::Null
        );
        // _scnumber
        assert_eq!(eval("{cache.host.notes_scnumber}"), json!(42));
        assert_eq!(eval("{cache.host.alias_scnumber}"), Value::Null);
        assert_eq!(eval("{percent_state_change_scnumber}"), json!(6.25));
        // _scstring
        assert_eq!(eval("{host_id_scstring}"), json!("12"));
        assert_eq!(eval("{acknowledged_scstring}"), json!("true"));
        assert_eq!(eval("{execution_time_scstring}"), json!("2.0"));
        assert_eq!(eval("{cache.hostgroups_scstring}"), json!("linux,db"));
        assert_eq!(eval("{latency_scstring}"), Value::Null);
    }

    #[test]
    fn what_is_a_macro() {
        assert_eq!(eval("{not a macro}"), json!("{not a macro}"));
        assert_eq!(eval("{}"), json!("{}"));
        assert_eq!(eval("{{host_id}}"), json!("{12}"));
        assert_eq!(eval("é{host_id}€"), json!("é12€"));
        assert_eq!(eval("{host_id"), json!("{host_id"));
        let t = load(
            json!({"neb_service_status": {"payload": {}, "by_{host_id}": {"{state_scstate}": 1}}}),
        );
        // JSON object keys come sorted: by_... first
        let field = &t.slots[2].as_ref().unwrap().fields[0];
        let Node::Object(inner) = &field.1 else {
            panic!()
        };
        let c = scope_ctx(&raw());
        let s = Scope {
            key: SVC,
            ctx: &c,
            output: &OutputOptions::default(),
        };
        assert_eq!(Render::new(&s).whole(&field.0), "by_12");
        assert_eq!(Render::new(&s).whole(&inner[0].0), "CRITICAL");
    }

    fn tpl(key: &str, body: Value) -> Value {
        json!({ key: body })
    }

    fn svc_tpl(field: &str) -> Value {
        tpl("neb_service_status", json!({"payload": {"summary": field}}))
    }

    #[test]
    fn broken_templates_name_the_key_and_the_macro() {
        let e = err(json!(null)).to_string();
        assert!(e.contains("expected a JSON object"), "{e}");
        let e = Templates::parse("{\"neb_service_status\": {").unwrap_err();
        assert!(e.contains("not valid JSON") && e.contains("line 1"), "{e}");
        let e = err(json!({"neb_service_status": "x"}));
        assert!(
            e.contains("\"neb_service_status\" must be a JSON object"),
            "{e}"
        );
        let e = err(json!({"neb_serviec_status": {}}));
        assert!(
            e.contains("unknown template key \"neb_serviec_status\""),
            "{e}"
        );
        for (field, want) in [
            (
                "{outptu}",
                "unknown macro {outptu} (not a field of the events of service statuses)",
            ),
            (
                "x {state_scfoo}",
                "unknown flag _scfoo in macro {state_scfoo}",
            ),
            ("{cache.host.nme}", "unknown macro {cache.host.nme}"),
            ("{cache.poller.name}", "unknown macro {cache.poller.name}"),
            ("{cache.severity.ba}", "unknown macro {cache.severity.ba}"),
            (
                "{cache.instance.address}",
                "unknown macro {cache.instance.address}",
            ),
            ("{cache.groups}", "unknown macro {cache.groups}"),
            ("{groups(bv,table,.*)}", "business views are BAM objects"),
            ("{groups(hg,list,.*)}", "the format must be table or inline"),
            (
                "{groups(hg,table,[a)}",
                "is not a valid Lua pattern: malformed pattern",
            ),
            ("{author}", "unknown macro {author}"),
        ] {
            let e = err(svc_tpl(field));
            assert!(
                e.contains("template \"neb_service_status\"") && e.contains(want),
                "{field}: {e}"
            );
            assert!(e.contains("payload.summary"), "the place: {e}");
        }
        let e = err(tpl(
            "neb_host_status",
            json!({"payload": {"c": ["{cache.service.description}"]}}),
        ));
        assert!(
            e.contains(
                "template \"neb_host_status\": macro {cache.service.description} names service data"
            ) && e.contains("payload.c[0]"),
            "{e}"
        );
        let e = err(tpl("neb_host_status", json!({"x": "{service_id}"})));
        assert!(e.contains("unknown macro {service_id}"), "{e}");
        let e = err(tpl("neb_acknowledgement", json!({"x": "{output}"})));
        assert!(
            e.contains("template \"neb_acknowledgement\": unknown macro {output} (not a field of the events of acknowledgements)"),
            "{e}"
        );
        let e = err(tpl("neb_service_status", json!({"x_{bad}": 1})));
        assert!(
            e.contains("unknown macro {bad}") && e.contains("in a key"),
            "{e}"
        );
        let e = err(tpl(
            "neb_service_status",
            json!({"payload": {"severity": "urgent"}}),
        ));
        assert!(e.contains("payload.severity \"urgent\""), "{e}");
    }

    #[test]
    fn dedup_key_rules() {
        for (dedup, want) in [
            (
                json!("{host_id}_{state}"),
                "macro {state} cannot be used in dedup_key",
            ),
            (
                json!("{cache.host.name}_{last_check}"),
                "macro {last_check} cannot be used",
            ),
            (json!("centreon"), "does not name the object"),
            (
                json!("{host_id}"),
                "and {service_id} or {cache.service.description}",
            ),
            (json!(12), "dedup_key must be a string"),
        ] {
            let e = err(tpl(
                "neb_service_status",
                json!({"dedup_key": dedup, "payload": {}}),
            ));
            assert!(
                e.contains("\"neb_service_status\"") && e.contains(want),
                "{dedup}: {e}"
            );
        }
        load(tpl("neb_host_status", json!({"dedup_key": "h-{host_id}"})));
        load(tpl(
            "neb_service_status",
            json!({"dedup_key": "{cache.instance.name}/{cache.host.name}/{cache.service.description}"}),
        ));
        let e = err(json!({
            "neb_service_status": {"dedup_key": "{host_id}_{service_id}"},
            "neb_pb_service_status": {"dedup_key": "{host_id}-{service_id}"}
        }));
        assert!(e.contains("set different dedup_keys"), "{e}");
        load(json!({
            "neb_service_status": {"dedup_key": "{host_id}_{service_id}"},
            "neb_pb_service_status": {"dedup_key": "{host_id}_{service_id}"}
        }));
    }

    #[test]
    fn warnings_for_what_is_ignored() {
        let w = warnings(json!({
            "neb_service_status": {"routing_key": KEY, "event_action": "trigger", "payload": {}},
            "neb_acknowledgement": {"dedup_key": "{host_id}", "payload": {}},
            "neb_host_status": {"summary": "no payload"},
            "neb_downtime": {},
            "bam_ba_status": {}
        }))
        .join("\n");
        assert!(
            w.contains("\"neb_service_status\": routing_key is ignored"),
            "{w}"
        );
        assert!(!w.contains(KEY), "the key in the file is never shown");
        assert!(w.contains("event_action is ignored"), "{w}");
        assert!(
            w.contains("\"neb_acknowledgement\": dedup_key is ignored"),
            "{w}"
        );
        assert!(w.contains("\"neb_host_status\" has no payload"), "{w}");
        assert!(w.contains("\"neb_downtime\" is ignored"), "{w}");
        assert!(w.contains("\"bam_ba_status\" is ignored"), "{w}");
    }

    #[test]
    fn fields_the_bridge_reads() {
        let t = load(json!({
            "neb_service_status": {"dedup_key": "{cache.host.alias}:{service_id}", "payload": {
                "summary": "{output_scshort} {percent_state_change}",
                "custom_details": {"n": "{cache.service.display_name}", "i": "{cache.instance.id}"}}},
            "neb_acknowledgement": {"x": "{author}"}
        }));
        let f = t.fields();
        for name in [
            "author",
            "cache.host.alias",
            "cache.host.instance_id",
            "cache.service.display_name",
            "category",
            "element",
            "output",
            "percent_state_change",
            "service_id",
        ] {
            assert!(f.split(' ').any(|n| n == name), "{name} in {f}");
        }
        let mut c = Context::default();
        t.capture(&raw(), &mut c);
        let kept: Vec<&str> = c.template_fields.iter().map(|(k, _)| k.as_str()).collect();
        assert!(kept.contains(&"percent_state_change") && kept.contains(&"cache.host.alias"));
        assert!(
            !kept.contains(&"perfdata"),
            "only what the templates read: {kept:?}"
        );
    }

    fn cfg() -> Config {
        let params = [
            ("pdy_routing_key".to_string(), ParamValue::Str(KEY.into())),
            (
                "pdy_centreon_url".to_string(),
                ParamValue::Str("https://centreon.example.com".into()),
            ),
        ];
        Config::from_params(&params).unwrap().0
    }

    fn status(raw: &RawEvent, t: &Templates) -> StatusEvent {
        let Some(mut ev) = Event::from_raw(raw).unwrap() else {
            panic!("not an event")
        };
        t.capture(raw, ev.context_mut().unwrap());
        let Event::Status(mut st) = ev else {
            panic!("not a status")
        };
        let names = ctx();
        st.ctx = Context {
            template_fields: st.ctx.template_fields,
            ..names
        };
        st
    }

    fn send(t: &Templates, st: &StatusEvent, action: Action) -> (Outgoing, Vec<String>) {
        let log = Logger::in_memory(Level::Debug);
        let builtin = payload::status_event(st, action, &cfg());
        let out = t.status_event(st, action, builtin, &log);
        (out, log.lines())
    }

    fn sent(out: &Outgoing) -> Value {
        serde_json::from_slice(&payload::encode(out, &Secret::new(KEY))).unwrap()
    }

    #[test]
    fn a_service_template_makes_the_event() {
        let t = load(json!({"neb_service_status": {
            "routing_key": "ignored-in-the-file",
            "event_action": "acknowledge",
            "payload": {
                "summary": "{cache.host.name}/{cache.service.description} is {state_scstate}: {output_scshort}",
                "source": "{cache.host.name}",
                "severity": "{state_scstate}",
                "timestamp": "{last_check}",
                "component": "{service_id}",
                "custom_details": {"host_id": "{host_id}", "groups": "{cache.hostgroups}",
                    "since": "{last_state_change_scdate}"}
            },
            "client": "Centreon", "client_url": "https://centreon.example.com/"
        }}));
        let st = status(&raw(), &t);
        let (out, log) = send(&t, &st, Action::Trigger);
        assert!(log.is_empty(), "{log:?}");
        let v = sent(&out);
        assert_eq!(
            v,
            json!({
                "routing_key": KEY,
                "event_action": "trigger",
                "dedup_key": "12_34",
                "payload": {
                    "summary": "srv-db/Disk /var is CRITICAL: CRITICAL - /var 97%",
                    "source": "srv-db",
                    "severity": "critical",
                    "timestamp": "2023-11-14T22:13:20Z",
                    "component": "34",
                    "custom_details": {"host_id": 12, "groups": ["linux", "db"],
                        "since": "2023-11-14T22:13:20Z"}
                },
                "client": "Centreon",
                "client_url": "https://centreon.example.com/"
            })
        );
        assert_eq!(
            out.summary,
            "srv-db/Disk /var is CRITICAL: CRITICAL - /var 97%"
        );
        assert_eq!(out.dedup_key, "12_34");
        // the resolve: OK is no PagerDuty severity (the built-in one is used), no client
        let mut ok = raw();
        ok.fields.retain(|(k, _)| k != "state");
        ok.fields.push(("state".into(), RawValue::Int(0)));
        let (out, _) = send(&t, &status(&ok, &t), Action::Resolve);
        let v = sent(&out);
        assert_eq!(v["event_action"], "resolve");
        assert_eq!(v["payload"]["severity"], "info");
        assert!(v.get("client").is_none() && v.get("client_url").is_none());
    }

    #[test]
    fn a_host_template_and_missing_fields() {
        let t = load(json!({"neb_host_status": {
            "dedup_key": "host:{cache.host.name}",
            "payload": {"summary": null, "severity": "{cache.host.alias}", "group": ["{cache.hostgroups}"],
                "timestamp": {"x": 1}, "class": 5},
            "links": [{"href": "https://x/{host_id}"}]
        }}));
        let raw = RawEvent::from_json(&json!({"category": 1, "element": 14, "host_id": 12,
            "state": 1, "state_type": 1, "last_check": 5, "output": "DOWN"}))
        .unwrap();
        let st = status(&raw, &t);
        let (out, _) = send(&t, &st, Action::Trigger);
        let v = sent(&out);
        assert_eq!(v["dedup_key"], "host:srv-db");
        assert_eq!(out.dedup_key, "host:srv-db");
        let p = &v["payload"];
        assert_eq!(p["summary"], "srv-db: DOWN", "built-in summary when none");
        assert_eq!(p["source"], "srv-db", "built-in source when none");
        assert_eq!(
            p["severity"], "critical",
            "built-in severity when not a PagerDuty one"
        );
        assert_eq!(
            p["group"], "[[\"linux\",\"db\"]]",
            "strings where PagerDuty wants them"
        );
        assert_eq!(p["class"], "5");
        assert!(p.get("timestamp").is_none());
        assert_eq!(v["links"], json!([{"href": "https://x/12"}]));
        // no payload at all: the built-in one
        let t = load(json!({"neb_host_status": {"x": "{state_scstate}"}}));
        let (out, _) = send(&t, &status(&raw, &t), Action::Trigger);
        let v = sent(&out);
        assert_eq!(v["x"], "DOWN");
        assert_eq!(v["payload"]["summary"], "srv-db: DOWN");
        assert_eq!(v["payload"]["class"], "host");
    }

    /// Bytes a text takes in a JSON string.
    fn escaped(s: &str) -> usize {
        serde_json::to_string(s).unwrap().len() - 2
    }

    #[test]
    fn details_share_the_room_fairly_in_one_pass() {
        let t = load(json!({"neb_service_status": {
            "dedup_key": "{host_id}_{service_id}",
            "payload": {"summary": "{output_scshort}", "source": "{cache.host.name}",
                "severity": "{state_scstate}",
                "custom_details": {"small": "{host_id}", "fixed": "a \"literal\"", "pct": "{percent_state_change}",
                    "long": "{long_output}", "output": "out: {output}",
                    "nested": {"list": ["{long_output}", "{short_output}"]}}},
            "links": [{"href": "https://x/{host_id}"}]
        }}));
        // multi-byte characters, quotes and control characters (escaped to 2 and 6 bytes)
        let unit = "é\"\u{1}€ab\\";
        let mut big = raw();
        big.fields
            .retain(|(k, _)| k != "output" && k != "long_output");
        big.fields.push((
            "output".into(),
            RawValue::Str(format!("CRITICAL\n{}", unit.repeat(40_000))),
        ));
        big.fields
            .push(("long_output".into(), RawValue::Str(unit.repeat(30_000))));
        let st = status(&big, &t);
        let (out, log) = send(&t, &st, Action::Trigger);
        assert!(log.is_empty(), "{log:?}");
        let body = payload::encode(&out, &Secret::new(KEY));
        assert!(body.len() <= payload::MAX_BODY, "{}", body.len());
        let v: Value = serde_json::from_slice(&body).expect("valid JSON");
        let p = &v["payload"];
        assert_eq!(p["summary"], "CRITICAL");
        assert_eq!(p["source"], "srv-db");
        assert_eq!(p["severity"], "critical");
        assert_eq!(v["dedup_key"], "12_34");
        assert_eq!(v["links"], json!([{"href": "https://x/12"}]));
        let d = &p["custom_details"];
        // what is shorter than the share is kept whole
        assert_eq!(d["small"], 12);
        assert_eq!(d["fixed"], "a \"literal\"");
        assert_eq!(d["pct"], 6.25);
        assert_eq!(d["nested"]["list"][1], "CRITICAL");
        // the three long texts get one share each, cut on a character, marked
        let full_output = format!("CRITICAL\n{}", unit.repeat(40_000));
        let full_long = format!("{full_output}\n{}", unit.repeat(30_000));
        let cut = [
            (d["long"].as_str().unwrap(), full_long.clone()),
            (d["output"].as_str().unwrap(), format!("out: {full_output}")),
            (d["nested"]["list"][0].as_str().unwrap(), full_long),
        ];
        let lens: Vec<usize> = cut.iter().map(|(c, _)| escaped(c)).collect();
        let share = *lens.iter().max().unwrap();
        for (c, full) in &cut {
            let kept = c.strip_suffix(payload::TRUNCATION_MARKER).expect("marked");
            assert!(full.starts_with(kept), "a prefix of the text");
            // an escaped character takes at most 6 bytes: the cut is as close as that
            assert!(escaped(c) + 6 > share, "{lens:?}");
        }
        // the room is used: the body is the budget, less the per-text rounding
        let sent_len = body.len();
        assert!(
            sent_len + 3 * 6 + 100 >= payload::MAX_BODY - 1024,
            "{sent_len}"
        );
    }

    #[test]
    fn fixed_part_too_big_falls_back_at_once() {
        // 200 top-level fields of a 400 KB output: nothing past the budget is built, and
        // the event goes in the built-in format
        let fields: Map<String, Value> = (0..200)
            .map(|i| (format!("x{i}"), Value::from("{long_output}")))
            .collect();
        let mut tpl = json!({"payload": {"summary": "{output}"}});
        tpl.as_object_mut().unwrap().extend(fields);
        let t = load(json!({ "neb_service_status": tpl }));
        let mut big = raw();
        big.fields.retain(|(k, _)| k != "long_output");
        big.fields
            .push(("long_output".into(), RawValue::Str("l".repeat(400_000))));
        let st = status(&big, &t);
        let (out, log) = send(&t, &st, Action::Trigger);
        assert!(
            log[0].contains("does not fit PagerDuty's 512 KB"),
            "{log:?}"
        );
        assert!(out.body.get("x0").is_none());
        // the render stopped past the budget: at most the budget and one text was built
        let scope = Scope {
            key: SVC,
            ctx: &st.ctx,
            output: &OutputOptions::default(),
        };
        let mut r = Render::new(&scope);
        let body = r.body(t.slot(For::Service, Bbdo::V3).unwrap());
        assert!(r.over);
        let built: usize = body.values().map(payload::json_len).sum();
        assert!(built <= payload::BODY_BUDGET + 400_100, "{built}");
    }

    #[test]
    fn limits_still_apply() {
        let t = load(json!({"neb_service_status": {
            "dedup_key": "{cache.service.display_name}:{cache.host.name}",
            "payload": {"summary": "{output}", "custom_details": {"big": "{long_output}"}}
        }}));
        let mut big = raw();
        big.fields
            .retain(|(k, _)| k != "output" && k != "long_output");
        big.fields
            .push(("output".into(), RawValue::Str("s".repeat(5000))));
        big.fields
            .push(("long_output".into(), RawValue::Str("l".repeat(600_000))));
        let (out, log) = send(&t, &status(&big, &t), Action::Trigger);
        assert!(log.is_empty(), "{log:?}");
        let body = payload::encode(&out, &Secret::new(KEY));
        assert!(body.len() <= payload::MAX_BODY);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["payload"]["summary"].as_str().unwrap().chars().count(),
            1024
        );
        assert_eq!(v["dedup_key"], "Disk var:srv-db");
        assert!(v["payload"].get("custom_details").is_some());

        // what shrinking cannot fix is sent in the built-in format, said in the log
        let t = load(json!({"neb_service_status": {
            "dedup_key": "{cache.service.display_name}:{cache.host.name}",
            "payload": {}, "huge": "{long_output}"}}));
        let (out, log) = send(&t, &status(&big, &t), Action::Trigger);
        assert!(
            log[0].contains("does not fit PagerDuty's 512 KB"),
            "{log:?}"
        );
        let v = sent(&out);
        assert!(v.get("huge").is_none());
        assert_eq!(
            v["dedup_key"], "Disk var:srv-db",
            "the object's dedup_key all the same"
        );

        // a dedup_key PagerDuty would refuse: the built-in one, said in the log
        let mut long = raw();
        long.fields
            .retain(|(k, _)| k != "cache.service.display_name");
        long.fields.push((
            "cache.service.display_name".into(),
            RawValue::Str("d".repeat(300)),
        ));
        let (out, log) = send(&t, &status(&long, &t), Action::Trigger);
        assert_eq!(out.dedup_key, "12_34");
        assert!(
            log[0].contains("the dedup_key of service #12:34 is 307 characters long"),
            "{log:?}"
        );
    }

    #[test]
    fn acknowledgements_and_resolves_without_status() {
        let t = load(json!({
            "neb_service_status": {"dedup_key": "{cache.host.name}/{service_id}", "payload": {}},
            "neb_acknowledgement": {"payload": {"summary": "ack by {author}: {comment_data}"}},
            "neb_pb_acknowledgement": {"payload": {"summary": "BBDO 3 ack by {author}"}}
        }));
        let log = Logger::in_memory(Level::Debug);
        let c = cfg();
        for (element, want) in [(1, "ack by alice: on it"), (45, "BBDO 3 ack by alice")] {
            let raw =
                RawEvent::from_json(&json!({"category": 1, "element": element, "host_id": 12,
                "service_id": 34, "author": "alice", "comment_data": "on it"}))
                .unwrap();
            let mut ctx = ctx();
            t.capture(&raw, &mut ctx);
            let note = payload::Note::acknowledged(Some("alice"), Some("on it"), None);
            let builtin = payload::note_event(SVC, &ctx, &note, &c);
            let out = t.note_event(SVC, &ctx, Action::Acknowledge, builtin, &log);
            let v = sent(&out);
            assert_eq!(v["payload"]["summary"], want);
            assert_eq!(v["event_action"], "acknowledge");
            assert_eq!(v["dedup_key"], "srv-db/34", "the incident's dedup_key");
        }
        // a resolve when a downtime starts: built-in format, the object's dedup_key
        let ctx = ctx();
        let builtin = payload::note_event(SVC, &ctx, &payload::Note::downtime_started(), &c);
        let out = t.note_event(SVC, &ctx, Action::Resolve, builtin, &log);
        assert_eq!(out.dedup_key, "srv-db/34");
        assert_eq!(
            sent(&out)["payload"]["summary"],
            "srv-db/Disk /var: resolved: downtime started"
        );
        // hosts keep the built-in dedup_key: only the service template sets one
        let builtin = payload::note_event(HOST, &ctx, &payload::Note::downtime_started(), &c);
        assert_eq!(
            t.note_event(HOST, &ctx, Action::Resolve, builtin, &log)
                .dedup_key,
            "12_H"
        );
        assert!(log.lines().is_empty(), "{:?}", log.lines());
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let (t, w) = Templates::parse(include_str!("../../../examples/format_file.json")).unwrap();
        assert!(w.is_empty(), "{w:?}");
        let (out, log) = send(&t, &status(&raw(), &t), Action::Trigger);
        assert!(log.is_empty(), "{log:?}");
        let v = sent(&out);
        assert_eq!(
            v["payload"]["summary"],
            "srv-db/Disk /var is CRITICAL: CRITICAL - /var 97%"
        );
        assert_eq!(v["payload"]["group"], "linux,db");
        assert_eq!(
            v["payload"]["custom_details"]["servicegroups"],
            json!(["storage"])
        );
        assert_eq!(v["dedup_key"], "12_34");
    }

    #[test]
    fn bbdo_variants() {
        let t = load(json!({
            "neb_service_status": {"payload": {"summary": "v2 {output}"}},
            "neb_pb_service_status": {"payload": {"summary": "v3 {output}"}},
            "neb_host_status": {"payload": {"summary": "any {output}"}}
        }));
        let v3 = status(&raw(), &t);
        let mut v2_raw = raw();
        v2_raw.fields.retain(|(k, _)| k != "element");
        v2_raw.fields.push(("element".into(), RawValue::Int(24)));
        let v2 = status(&v2_raw, &t);
        assert_eq!(
            send(&t, &v3, Action::Trigger).0.summary,
            "v3 CRITICAL - /var 97%"
        );
        assert_eq!(
            send(&t, &v2, Action::Trigger).0.summary,
            "v2 CRITICAL - /var 97%"
        );
        for element in [14, 32] {
            let h = RawEvent::from_json(&json!({"category": 1, "element": element, "host_id": 12,
                "state": 1, "output": "DOWN"}))
            .unwrap();
            assert_eq!(
                send(&t, &status(&h, &t), Action::Trigger).0.summary,
                "any DOWN"
            );
        }
    }
}
