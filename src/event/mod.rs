//! Centreon events as the library sees them: raw field records (from Lua, JSON or C) and their typed form.
//!
//! Broker's events reach us as a bag of fields (`RawEvent`), whether they come from the Lua
//! bridge (BBDO 2 or BBDO 3 fields plus names read from `broker_cache`), from a JSON line
//! (C ABI, command-line replay) or from tests. [`Event::from_raw`] checks and normalises them
//! into one typed form, hiding the differences between BBDO versions.

use std::fmt;

pub mod options;
pub mod types;

pub use types::{EventType, KNOWN_CATEGORIES, KNOWN_ELEMENTS};

/// Category `neb` (the only one we act on).
pub const CATEGORY_NEB: u32 = 1;

/// `_type` of an event: `(category << 16) | element`.
pub const fn event_type(category: u32, element: u32) -> u32 {
    (category << 16) | element
}

/// The element numbers we know, per BBDO version (see the Broker contract, section 5).
pub mod element {
    /// BBDO 2 acknowledgement.
    pub const ACKNOWLEDGEMENT: u32 = 1;
    /// BBDO 2 downtime.
    pub const DOWNTIME: u32 = 5;
    /// BBDO 2 host status.
    pub const HOST_STATUS: u32 = 14;
    /// BBDO 2 service status.
    pub const SERVICE_STATUS: u32 = 24;
    /// BBDO 3 service status.
    pub const PB_SERVICE_STATUS: u32 = 29;
    /// BBDO 3 host status.
    pub const PB_HOST_STATUS: u32 = 32;
    /// BBDO 3 downtime.
    pub const PB_DOWNTIME: u32 = 36;
    /// BBDO 3 acknowledgement.
    pub const PB_ACKNOWLEDGEMENT: u32 = 45;
    /// BBDO 3 adaptive service status.
    pub const PB_ADAPTIVE_SERVICE_STATUS: u32 = 55;
    /// BBDO 3 adaptive host status.
    pub const PB_ADAPTIVE_HOST_STATUS: u32 = 56;
}

/// Which BBDO protocol version an event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bbdo {
    V2,
    V3,
}

/// Host or service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Host,
    Service,
}

/// What kind of event an `_type` is, if we understand it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClass {
    Status(Kind, Bbdo),
    /// BBDO 3 adaptive status: acknowledgement or downtime depth changed, nothing else.
    Adaptive(Kind),
    Acknowledgement(Bbdo),
    Downtime(Bbdo),
}

impl EventClass {
    /// Classifies a `(category, element)` pair from the table of event types
    /// ([`types::EVENT_TYPES`]); `None` for anything we do not handle.
    pub fn of(category: u32, element: u32) -> Option<EventClass> {
        EventType::of(category, element).map(|t| t.class)
    }
}

/// The monitored object an event is about. `service_id` is 0 for a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub host_id: u64,
    pub service_id: u64,
}

impl ObjectKey {
    /// The key of service `service_id` of host `host_id`, or of the host when `service_id` is 0.
    pub const fn new(host_id: u64, service_id: u64) -> ObjectKey {
        ObjectKey {
            host_id,
            service_id,
        }
    }
    pub fn kind(&self) -> Kind {
        if self.service_id == 0 {
            Kind::Host
        } else {
            Kind::Service
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            Kind::Host => write!(f, "host #{}", self.host_id),
            Kind::Service => write!(f, "service #{}:{}", self.host_id, self.service_id),
        }
    }
}

/// One field value of a raw event.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    /// A list of names (host groups, service groups).
    List(Vec<String>),
}

/// An event as a bag of named fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawEvent {
    pub fields: Vec<(String, RawValue)>,
}

impl RawEvent {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a field (builder style).
    pub fn with(mut self, name: &str, value: RawValue) -> Self {
        self.fields.push((name.to_string(), value));
        self
    }

    pub fn get(&self, name: &str) -> Option<&RawValue> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Builds a raw event from a JSON object (C ABI, command-line replay, tests).
    pub fn from_json(value: &serde_json::Value) -> Result<RawEvent, EventError> {
        let obj = value
            .as_object()
            .ok_or_else(|| EventError::new("event", "a JSON object"))?;
        let mut ev = RawEvent::new();
        for (k, v) in obj {
            let rv = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::Bool(b) => RawValue::Bool(*b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => RawValue::Int(i),
                    None => RawValue::Float(n.as_f64().unwrap_or(0.0)),
                },
                serde_json::Value::String(s) => RawValue::Str(s.clone()),
                serde_json::Value::Array(items) => RawValue::List(
                    items
                        .iter()
                        .filter_map(|i| match i {
                            serde_json::Value::String(s) => Some(s.clone()),
                            serde_json::Value::Object(o) => o
                                .get("group_name")
                                .and_then(|g| g.as_str())
                                .map(str::to_string),
                            _ => None,
                        })
                        .collect(),
                ),
                serde_json::Value::Object(_) => continue,
            };
            ev.fields.push((k.clone(), rv));
        }
        Ok(ev)
    }

    fn int(&self, name: &'static str) -> Result<Option<i64>, EventError> {
        match self.get(name) {
            None => Ok(None),
            Some(RawValue::Int(i)) => Ok(Some(*i)),
            Some(RawValue::Float(f)) if f.fract() == 0.0 && f.is_finite() => Ok(Some(*f as i64)),
            Some(RawValue::Bool(b)) => Ok(Some(*b as i64)),
            Some(RawValue::Str(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| EventError::new(name, "an integer")),
            Some(_) => Err(EventError::new(name, "an integer")),
        }
    }

    fn flag(&self, name: &'static str) -> Result<Option<bool>, EventError> {
        match self.get(name) {
            None => Ok(None),
            Some(RawValue::Bool(b)) => Ok(Some(*b)),
            Some(_) => self.int(name).map(|o| o.map(|i| i != 0)),
        }
    }

    fn text(&self, name: &'static str) -> Option<String> {
        match self.get(name) {
            Some(RawValue::Str(s)) => Some(s.clone()),
            Some(RawValue::Int(i)) => Some(i.to_string()),
            Some(RawValue::Float(f)) => Some(f.to_string()),
            _ => None,
        }
        .filter(|s| !s.is_empty())
    }

    fn list(&self, name: &'static str) -> Vec<String> {
        match self.get(name) {
            Some(RawValue::List(l)) => l.clone(),
            Some(RawValue::Str(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// `(category, element)` from `category`/`element` or from `_type`.
    pub fn category_element(&self) -> Result<(u32, u32), EventError> {
        let cat = self.int("category")?;
        let elem = self.int("element")?;
        match (cat, elem, self.int("_type")?) {
            (Some(c), Some(e), _) => Ok((c as u32, e as u32)),
            (_, _, Some(t)) => Ok(((t >> 16) as u32, (t & 0xffff) as u32)),
            _ => Err(EventError::new(
                "_type",
                "an event type (or category and element)",
            )),
        }
    }
}

/// A malformed event: which field, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    pub field: &'static str,
    pub expected: &'static str,
}

/// What an id must be: BBDO 2 hands an id of 0 over as nil, so both mean "no id".
const AN_ID: &str = "a positive integer";

impl EventError {
    pub fn new(field: &'static str, expected: &'static str) -> Self {
        Self { field, expected }
    }

    /// The event lacks the ids that name its object (`host_id`, or the `service_id` of a
    /// service status): nil, 0 or negative (`skip_nil_id`).
    pub fn is_missing_id(&self) -> bool {
        matches!(self.field, "host_id" | "service_id") && self.expected == AN_ID
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed event: field '{}' must be {}",
            self.field, self.expected
        )
    }
}

impl std::error::Error for EventError {}

/// What `broker_cache` told the bridge about the object (all optional: the cache may not know it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub host_name: Option<String>,
    pub service_description: Option<String>,
    pub hostgroups: Vec<String>,
    pub servicegroups: Vec<String>,
    pub host_severity: Option<i64>,
    pub service_severity: Option<i64>,
    pub poller: Option<String>,
    pub host_address: Option<String>,
    pub notes_url: Option<String>,
    pub action_url: Option<String>,
    /// Raw fields kept for `format_file` templates (the event fields and the `cache.host.*` /
    /// `cache.service.*` values they name); empty unless a template is configured.
    pub template_fields: Vec<(String, RawValue)>,
}

/// What Broker's cache last told about an object: kept with its incident state in the outbox,
/// because Broker saves its cache only at a clean stop (after a crash, the objects defined
/// since then are unknown to it) and a resolve or acknowledgement must name the object as its
/// trigger did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub host_name: Option<String>,
    pub host_address: Option<String>,
    pub poller: Option<String>,
    pub hostgroups: Vec<String>,
    pub host_severity: Option<i64>,
    pub service_description: Option<String>,
    pub servicegroups: Vec<String>,
    pub service_severity: Option<i64>,
}

impl Names {
    /// Broker's cache knows the host of `ctx` (then its host fields are its answers).
    fn host_known(ctx: &Context) -> bool {
        ctx.host_name.is_some()
    }

    /// Broker's cache knows the service of `ctx` (a host has none to know).
    fn service_known(key: ObjectKey, ctx: &Context) -> bool {
        key.service_id == 0 || ctx.service_description.is_some()
    }

    /// The names of `ctx`, when Broker's cache knew the whole object.
    pub fn of(key: ObjectKey, ctx: &Context) -> Option<Names> {
        (Self::host_known(ctx) && Self::service_known(key, ctx)).then(|| Names {
            host_name: ctx.host_name.clone(),
            host_address: ctx.host_address.clone(),
            poller: ctx.poller.clone(),
            hostgroups: ctx.hostgroups.clone(),
            host_severity: ctx.host_severity,
            service_description: ctx.service_description.clone(),
            servicegroups: ctx.servicegroups.clone(),
            service_severity: ctx.service_severity,
        })
    }

    /// True when `ctx` says the same as these names (nothing to remember again).
    pub fn same_as(&self, ctx: &Context) -> bool {
        self.host_name == ctx.host_name
            && self.host_address == ctx.host_address
            && self.poller == ctx.poller
            && self.hostgroups == ctx.hostgroups
            && self.host_severity == ctx.host_severity
            && self.service_description == ctx.service_description
            && self.servicegroups == ctx.servicegroups
            && self.service_severity == ctx.service_severity
    }

    /// Completes `ctx` with these names where Broker's cache did not know the object: the
    /// host's fields when it did not know the host, the service's when it did not know the
    /// service (what it knows stays its answer). True when something was taken from here.
    pub fn fill(&self, key: ObjectKey, ctx: &mut Context) -> bool {
        let mut filled = false;
        if !Self::host_known(ctx) && self.host_name.is_some() {
            ctx.host_name.clone_from(&self.host_name);
            ctx.host_address.clone_from(&self.host_address);
            ctx.poller.clone_from(&self.poller);
            ctx.hostgroups.clone_from(&self.hostgroups);
            ctx.host_severity = self.host_severity;
            filled = true;
        }
        if !Self::service_known(key, ctx) && self.service_description.is_some() {
            ctx.service_description
                .clone_from(&self.service_description);
            ctx.servicegroups.clone_from(&self.servicegroups);
            ctx.service_severity = self.service_severity;
            filled = true;
        }
        filled
    }
}

/// The flags of a status event that decide whether it may open an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    pub acknowledged: bool,
    pub in_downtime: bool,
    pub flapping: bool,
}

impl Flags {
    /// The one reading of a status's flags as Broker gives them, whatever its BBDO version:
    /// acknowledged from BBDO 2's boolean `acknowledged`, else from BBDO 3's
    /// `acknowledgement_type` ([`acknowledged_type`]); in a downtime when
    /// `scheduled_downtime_depth` is above 0 ([`in_downtime`]); flapping as given. A field
    /// Broker left out counts as "no".
    pub fn normalise(
        acknowledged: Option<bool>,
        acknowledgement_type: Option<i64>,
        downtime_depth: Option<i64>,
        flapping: Option<bool>,
    ) -> Flags {
        Flags {
            acknowledged: acknowledged
                .unwrap_or_else(|| acknowledgement_type.is_some_and(acknowledged_type)),
            in_downtime: downtime_depth.is_some_and(in_downtime),
            flapping: flapping.unwrap_or(false),
        }
    }

    /// The fields [`Flags::normalise`] reads of a status of a BBDO version.
    pub fn fields(bbdo: Bbdo) -> &'static [&'static str] {
        match bbdo {
            Bbdo::V2 => &[
                "acknowledged",
                "acknowledgement_type",
                "scheduled_downtime_depth",
                "flapping",
            ],
            Bbdo::V3 => &[
                "acknowledgement_type",
                "scheduled_downtime_depth",
                "flapping",
            ],
        }
    }

    /// The field a BBDO version carries the acknowledgement of a status in (BBDO 2 also
    /// carries `acknowledgement_type`, read only when `acknowledged` is missing).
    pub fn acknowledgement_field(bbdo: Bbdo) -> &'static str {
        match bbdo {
            Bbdo::V2 => "acknowledged",
            Bbdo::V3 => "acknowledgement_type",
        }
    }
}

/// BBDO 3's `acknowledgement_type` (0 NONE, 1 NORMAL, 2 STICKY) as "acknowledged".
pub fn acknowledged_type(acknowledgement_type: i64) -> bool {
    acknowledgement_type != 0
}

/// A `scheduled_downtime_depth` as "in a downtime".
pub fn in_downtime(downtime_depth: i64) -> bool {
    downtime_depth > 0
}

/// A `state_type` as HARD (missing: HARD, as for a status without the field).
pub fn is_hard(state_type: Option<i64>) -> bool {
    state_type.unwrap_or(1) == 1
}

/// A status's check time and last state change (Unix seconds), as Broker gives them: what
/// tells a state change from another status of the same state, and when it was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckTimes {
    pub last_check: Option<i64>,
    pub last_state_change: Option<i64>,
}

impl CheckTimes {
    /// The fields of a status that hold them, in this order.
    pub const FIELDS: [&'static str; 2] = ["last_check", "last_state_change"];

    /// True when this check changed the state (the check time is the state change time).
    pub fn is_state_change(self) -> bool {
        match (self.last_check, self.last_state_change) {
            (Some(c), Some(s)) => c == s,
            _ => false,
        }
    }

    /// The time the state was observed: the check time, else the last state change.
    pub fn observed_at(self) -> Option<i64> {
        self.last_check
            .filter(|t| *t > 0)
            .or(self.last_state_change.filter(|t| *t > 0))
    }
}

/// A host or service status, normalised across BBDO versions.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEvent {
    pub bbdo: Bbdo,
    pub key: ObjectKey,
    /// Service: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, 4 PENDING; host: 0 UP, 1 DOWN, 2 UNREACHABLE.
    pub state: i64,
    pub hard: bool,
    pub check_attempt: Option<i64>,
    pub max_check_attempts: Option<i64>,
    /// Time of the check that produced this status (Unix seconds).
    pub last_check: Option<i64>,
    pub last_state_change: Option<i64>,
    pub last_hard_state_change: Option<i64>,
    /// First line(s) of the plugin output (BBDO 2 `output` is split at its first newline).
    pub output: String,
    pub long_output: String,
    pub perfdata: String,
    pub flags: Flags,
    pub ctx: Context,
}

impl StatusEvent {
    pub fn kind(&self) -> Kind {
        self.key.kind()
    }

    /// True when this check changed the state (the check time is the state change time).
    pub fn is_state_change(&self) -> bool {
        self.times().is_state_change()
    }

    /// The time the state was observed: the check time, else the last state change.
    pub fn observed_at(&self) -> Option<i64> {
        self.times().observed_at()
    }

    pub fn times(&self) -> CheckTimes {
        CheckTimes {
            last_check: self.last_check,
            last_state_change: self.last_state_change,
        }
    }

    /// Name of the state as Centreon shows it.
    pub fn state_name(&self) -> &'static str {
        state_name(self.kind(), self.state)
    }
}

/// `UP`, `DOWN`, `OK`, `CRITICAL`... for a host or service state number.
pub fn state_name(kind: Kind, state: i64) -> &'static str {
    match (kind, state) {
        (Kind::Host, 0) => "UP",
        (Kind::Host, 1) => "DOWN",
        (Kind::Host, 2) => "UNREACHABLE",
        (Kind::Service, 0) => "OK",
        (Kind::Service, 1) => "WARNING",
        (Kind::Service, 2) => "CRITICAL",
        (Kind::Service, 3) => "UNKNOWN",
        (Kind::Service, 4) => "PENDING",
        _ => "UNKNOWN",
    }
}

/// A Centreon acknowledgement (set or removed).
#[derive(Debug, Clone, PartialEq)]
pub struct AckEvent {
    pub bbdo: Bbdo,
    pub key: ObjectKey,
    pub author: Option<String>,
    pub comment: Option<String>,
    pub entry_time: Option<i64>,
    /// Set when the acknowledgement is removed.
    pub deletion_time: Option<i64>,
    pub ctx: Context,
}

/// A BBDO 3 adaptive status: only the fields Broker set are `Some`.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveEvent {
    pub key: ObjectKey,
    pub acknowledged: Option<bool>,
    pub in_downtime: Option<bool>,
    pub ctx: Context,
}

/// Any event the library understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Status(StatusEvent),
    Adaptive(AdaptiveEvent),
    Acknowledgement(AckEvent),
    /// Downtime events are accepted for compatibility; the downtime depth carried by status
    /// and adaptive status events is what decisions use.
    Downtime(ObjectKey),
}

impl Event {
    /// The cache context of the event (none for a downtime).
    pub fn context_mut(&mut self) -> Option<&mut Context> {
        match self {
            Event::Status(e) => Some(&mut e.ctx),
            Event::Adaptive(e) => Some(&mut e.ctx),
            Event::Acknowledgement(e) => Some(&mut e.ctx),
            Event::Downtime(_) => None,
        }
    }

    /// Checks and normalises a raw event. `Ok(None)` means "not an event type we act on".
    pub fn from_raw(raw: &RawEvent) -> Result<Option<Event>, EventError> {
        let (category, element) = raw.category_element()?;
        let Some(class) = EventClass::of(category, element) else {
            return Ok(None);
        };
        let host_id = raw
            .int("host_id")?
            .filter(|h| *h > 0)
            .ok_or_else(|| EventError::new("host_id", AN_ID))? as u64;
        let service_id = raw.int("service_id")?.unwrap_or(0).max(0) as u64;
        let ctx = Context::of(raw)?;
        // Status events name their kind: a service needs its id, a host ignores any.
        let key_of = |kind: Kind| match kind {
            Kind::Host => Ok(ObjectKey {
                host_id,
                service_id: 0,
            }),
            Kind::Service if service_id == 0 => Err(EventError::new("service_id", AN_ID)),
            Kind::Service => Ok(ObjectKey {
                host_id,
                service_id,
            }),
        };
        let named = ObjectKey {
            host_id,
            service_id,
        };
        Ok(Some(match class {
            EventClass::Status(kind, bbdo) => {
                Event::Status(StatusEvent::of(raw, key_of(kind)?, bbdo, ctx)?)
            }
            EventClass::Adaptive(kind) => Event::Adaptive(AdaptiveEvent {
                key: key_of(kind)?,
                acknowledged: raw.int("acknowledgement_type")?.map(acknowledged_type),
                in_downtime: raw.int("scheduled_downtime_depth")?.map(in_downtime),
                ctx,
            }),
            EventClass::Acknowledgement(bbdo) => Event::Acknowledgement(AckEvent {
                bbdo,
                key: named,
                author: raw.text("author"),
                comment: raw.text("comment_data"),
                entry_time: raw.int("entry_time")?,
                deletion_time: raw.int("deletion_time")?.filter(|t| *t > 0),
                ctx,
            }),
            EventClass::Downtime(_) => Event::Downtime(named),
        }))
    }
}

impl Context {
    /// The names from Broker's cache the bridge added to a raw event.
    fn of(raw: &RawEvent) -> Result<Context, EventError> {
        Ok(Context {
            host_name: raw.text("host_name"),
            service_description: raw.text("service_description"),
            hostgroups: raw.list("hostgroups"),
            servicegroups: raw.list("servicegroups"),
            host_severity: raw.int("host_severity")?,
            service_severity: raw.int("service_severity")?,
            poller: raw.text("poller"),
            host_address: raw.text("host_address"),
            notes_url: raw.text("notes_url"),
            action_url: raw.text("action_url"),
            template_fields: Vec::new(),
        })
    }
}

impl StatusEvent {
    /// The status of `key` in a raw event of BBDO version `bbdo`.
    fn of(raw: &RawEvent, key: ObjectKey, bbdo: Bbdo, ctx: Context) -> Result<Self, EventError> {
        let state = raw
            .int("state")?
            .ok_or_else(|| EventError::new("state", "an integer state"))?;
        let (valid, expected) = match key.kind() {
            Kind::Host => (0..=2, "0 (UP), 1 (DOWN) or 2 (UNREACHABLE)"),
            Kind::Service => (0..=4, "0 (OK) to 4 (PENDING)"),
        };
        if !valid.contains(&state) {
            return Err(EventError::new("state", expected));
        }
        let raw_output = raw.text("output").unwrap_or_default();
        let (output, long_output) = match (bbdo, raw.text("long_output")) {
            (_, Some(long)) => (raw_output, long),
            (Bbdo::V2, None) => match raw_output.split_once('\n') {
                Some((first, rest)) => (first.to_string(), rest.to_string()),
                None => (raw_output, String::new()),
            },
            (Bbdo::V3, None) => (raw_output, String::new()),
        };
        // BBDO 3's acknowledgement_type is read only without BBDO 2's acknowledged
        let acknowledged = raw.flag("acknowledged")?;
        let acknowledgement_type = match acknowledged {
            None => raw.int("acknowledgement_type")?,
            Some(_) => None,
        };
        Ok(StatusEvent {
            bbdo,
            key,
            state,
            hard: is_hard(raw.int("state_type")?),
            check_attempt: raw.int("check_attempt")?,
            max_check_attempts: raw.int("max_check_attempts")?,
            last_check: raw.int("last_check")?,
            last_state_change: raw.int("last_state_change")?,
            last_hard_state_change: raw.int("last_hard_state_change")?,
            output,
            long_output,
            perfdata: raw.text("perfdata").unwrap_or_default(),
            flags: Flags::normalise(
                acknowledged,
                acknowledgement_type,
                raw.int("scheduled_downtime_depth")?,
                raw.flag("flapping")?,
            ),
            ctx,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(bbdo3: bool) -> RawEvent {
        let (el, out) = if bbdo3 {
            (element::PB_SERVICE_STATUS, "CRITICAL - disk full")
        } else {
            (
                element::SERVICE_STATUS,
                "CRITICAL - disk full\nline2\nline3",
            )
        };
        RawEvent::new()
            .with("category", RawValue::Int(1))
            .with("element", RawValue::Int(el as i64))
            .with("host_id", RawValue::Int(12))
            .with("service_id", RawValue::Int(34))
            .with("state", RawValue::Int(2))
            .with("state_type", RawValue::Int(1))
            .with("output", RawValue::Str(out.into()))
            .with("last_check", RawValue::Int(1700000000))
            .with("last_state_change", RawValue::Int(1700000000))
    }

    #[test]
    fn bbdo2_output_is_split_and_acknowledged_is_read() {
        let raw = svc(false).with("acknowledged", RawValue::Bool(true));
        let Some(Event::Status(s)) = Event::from_raw(&raw).unwrap() else {
            panic!("not a status")
        };
        assert_eq!(s.bbdo, Bbdo::V2);
        assert_eq!(s.output, "CRITICAL - disk full");
        assert_eq!(s.long_output, "line2\nline3");
        assert!(s.flags.acknowledged);
        assert!(s.is_state_change());
        assert_eq!(s.state_name(), "CRITICAL");
    }

    #[test]
    fn bbdo3_acknowledgement_type_and_long_output() {
        let raw = svc(true)
            .with("acknowledgement_type", RawValue::Int(2))
            .with("long_output", RawValue::Str("more".into()))
            .with("scheduled_downtime_depth", RawValue::Int(1))
            .with("flapping", RawValue::Bool(true));
        let Some(Event::Status(s)) = Event::from_raw(&raw).unwrap() else {
            panic!("not a status")
        };
        assert_eq!(s.bbdo, Bbdo::V3);
        assert_eq!(s.long_output, "more");
        assert_eq!(
            s.flags,
            Flags {
                acknowledged: true,
                in_downtime: true,
                flapping: true
            }
        );
    }

    #[test]
    fn type_field_and_unknown_types() {
        let raw = RawEvent::new()
            .with(
                "_type",
                RawValue::Int(event_type(1, element::PB_HOST_STATUS) as i64),
            )
            .with("host_id", RawValue::Int(5))
            .with("state", RawValue::Int(1));
        let Some(Event::Status(s)) = Event::from_raw(&raw).unwrap() else {
            panic!("not a status")
        };
        assert_eq!(s.kind(), Kind::Host);
        let other = RawEvent::new().with("_type", RawValue::Int(event_type(3, 1) as i64));
        assert_eq!(Event::from_raw(&other).unwrap(), None);
    }

    #[test]
    fn malformed_fields_are_named() {
        let raw = svc(true).with("state", RawValue::Int(9));
        // `get` returns the first field; replace state by building anew.
        let mut raw2 = raw.clone();
        raw2.fields.retain(|(k, _)| k != "state");
        let raw2 = raw2.with("state", RawValue::Int(9));
        assert_eq!(Event::from_raw(&raw2).unwrap_err().field, "state");
        let mut no_host = svc(true);
        no_host.fields.retain(|(k, _)| k != "host_id");
        assert_eq!(Event::from_raw(&no_host).unwrap_err().field, "host_id");
        let bad = svc(true).with("host_id", RawValue::Str("x".into()));
        assert!(Event::from_raw(&bad).is_ok(), "first host_id wins");
    }

    #[test]
    fn json_events_with_group_objects() {
        let v = serde_json::json!({"_type": 65565, "host_id": 1, "service_id": 2, "state": 1,
            "hostgroups": [{"group_id": 1, "group_name": "linux"}, "db"]});
        let raw = RawEvent::from_json(&v).unwrap();
        let Some(Event::Status(s)) = Event::from_raw(&raw).unwrap() else {
            panic!()
        };
        assert_eq!(s.ctx.hostgroups, vec!["linux", "db"]);
    }
}
