//! What the Lua bridge is told at `init` (`plan(h)`): the accepted types with the fields to read at each step, the `broker_cache` lookups, the answers and the fast path's constants.
//!
//! The bridge decides nothing: it reads the fields listed for the event's type and step, does
//! the lookups listed, keeps the objects an answer names ([`Answer::StaysOk`]) and calls the
//! library. Each field read is a call into Broker: the lists hold only what the library uses.

use std::ffi::CStr;

use crate::connector::{Connector, Quick};
use crate::event::{Bbdo, CheckTimes, EventClass, EventType, Flags, Kind};

/// A value handed to Lua: tables are built in one protected call (`crate::lua`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tree {
    Int(i64),
    Bool(bool),
    Str(String),
    /// A sequence (keys 1..n).
    List(Vec<Tree>),
    /// A record with fixed field names.
    Record(Vec<(&'static CStr, Tree)>),
    /// A table keyed by integers (the accepted `_type`s).
    ByInt(Vec<(i64, Tree)>),
}

fn names<S: AsRef<str>>(list: &[S]) -> Tree {
    Tree::List(list.iter().map(|s| Tree::Str(s.as_ref().into())).collect())
}

/// The answers of `state()`, `status()` and `event()`, as the bridge receives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Nothing to send; not every event is stored yet (Broker must not acknowledge).
    Pending = 0,
    /// Nothing to send; every event handed over is stored (Broker may acknowledge).
    Acknowledged = 1,
    /// Hand over the event's details (`submit`).
    NeedDetails = 2,
    /// Ask again with the state type and flags (`status`).
    NeedFlags = 3,
    /// As `Pending`, and this object stays OK: its next OK (UP) status needs no call while
    /// the bridge's last answer was "acknowledged" (the library would answer the same).
    StaysOk = 4,
    /// As `Acknowledged`, and this object stays OK (see `StaysOk`).
    StaysOkAcknowledged = 5,
    /// Ask `state()` again with the status's check times (its type's `times` fields): the
    /// first OK status of an object the library has no memory of.
    NeedTimes = 6,
}

impl Answer {
    pub(crate) fn of(q: Quick) -> Answer {
        match q {
            Quick::Done(false) => Answer::Pending,
            Quick::Done(true) => Answer::Acknowledged,
            Quick::NeedDetails => Answer::NeedDetails,
            Quick::NeedFlags => Answer::NeedFlags,
            Quick::StaysOk(false) => Answer::StaysOk,
            Quick::StaysOk(true) => Answer::StaysOkAcknowledged,
            Quick::NeedTimes => Answer::NeedTimes,
        }
    }
}

/// The state a status is first asked about with `state()` (ids and state only): OK and UP.
const OK_STATE: i64 = 0;
/// While not every event is stored, an object that stays OK waits (false) and every
/// WAIT_CALLS-th of its statuses asks again.
const WAIT_CALLS: i64 = 32;
/// At most this many events answered by the bridge wait to be counted by the next call.
const UNSEEN_MAX: i64 = 4096;
/// Every COLLECT_EVENTS events handed to write(), the bridge tells Lua's collector of the
/// memory of Broker's it cannot see: COLLECT_KB kilobytes (`collectgarbage("step", kb)`, 256
/// bytes an event). An API 2 event is a 16-byte Lua object whose C++ event only its finalizer
/// frees; a collector pacing itself by the bytes it sees lets them pile up, by hundreds of
/// thousands at thousands of events a second, until Broker's own full collection (10 s apart).
/// 256 bytes keep cbd's peak memory where 1 KB does, and cost Lua 5.3 less (bench/HISTORY.md
/// section 23).
const COLLECT_EVENTS: i64 = 100;
const COLLECT_KB: i64 = 25;

/// Of a status, what the library reads beyond its ids, state, state type and flags.
const STATUS_DETAILS: &[&str] = &[
    "check_attempt",
    "max_check_attempts",
    "last_check",
    "last_state_change",
    "last_hard_state_change",
    "output",
    "long_output",
    "perfdata",
];

/// Every field the library may read of an event that is not a status (acknowledgement,
/// downtime, adaptive status): missing ones are simply absent.
const ALL_FIELDS: &[&str] = &[
    "category",
    "element",
    "host_id",
    "service_id",
    "state",
    "state_type",
    "check_attempt",
    "max_check_attempts",
    "last_check",
    "last_state_change",
    "last_hard_state_change",
    "last_hard_state",
    "output",
    "long_output",
    "perfdata",
    "acknowledged",
    "acknowledgement_type",
    "scheduled_downtime_depth",
    "flapping",
    "author",
    "comment_data",
    "entry_time",
    "deletion_time",
    "sticky",
    "type",
    "start_time",
    "end_time",
    "actual_start_time",
    "actual_end_time",
    "started",
    "cancelled",
];

/// The fields a status's second question (`status()`) reads, in its argument order: state
/// type, acknowledgement (as its BBDO version carries it), downtime depth, flapping.
fn question_fields(bbdo: Bbdo) -> [&'static str; 4] {
    [
        "state_type",
        Flags::acknowledgement_field(bbdo),
        "scheduled_downtime_depth",
        "flapping",
    ]
}

/// The fields of the format_file's templates, split: event fields, `cache.host.X` and
/// `cache.service.X` names.
#[derive(Debug, Default)]
struct TemplateFields {
    event: Vec<String>,
    host: Vec<String>,
    service: Vec<String>,
}

impl TemplateFields {
    fn of(conn: &Connector) -> TemplateFields {
        let mut t = TemplateFields::default();
        for name in conn.template_fields().iter().flat_map(|f| f.split(' ')) {
            if let Some(h) = name.strip_prefix("cache.host.") {
                t.host.push(h.into());
            } else if let Some(s) = name.strip_prefix("cache.service.") {
                t.service.push(s.into());
            } else if !name.is_empty() {
                t.event.push(name.into());
            }
        }
        t
    }
}

/// Where a `get_host` object's instance id is kept for the `get_instance_name` lookup.
const INSTANCE_ID: &str = "cache.host.instance_id";

/// One `broker_cache` lookup.
#[derive(Default)]
struct Lookup {
    method: &'static str,
    /// Called with the host id (1) or the host and service ids (2).
    ids: i64,
    /// Called with this field of the details instead of the ids.
    from: Option<&'static str>,
    /// The field its answer goes to.
    into: Option<&'static str>,
    /// The answer is a list of `{group_id, group_name}`: its names.
    groups: bool,
    /// Only when `into` is still missing.
    unless_set: bool,
    /// The answer is an object: its fields `object[2i-1]` go to `object[2i]` (read in one
    /// protected call, in this order).
    object: Vec<String>,
}

impl Lookup {
    fn into(method: &'static str, ids: i64, into: &'static str) -> Lookup {
        Lookup {
            method,
            ids,
            into: Some(into),
            ..Lookup::default()
        }
    }

    fn groups(mut self) -> Lookup {
        self.groups = true;
        self
    }

    fn tree(&self) -> Tree {
        let mut r = vec![
            (c"method", Tree::Str(self.method.into())),
            (c"ids", Tree::Int(self.ids)),
        ];
        let mut opt = |k: &'static CStr, v: Option<&str>| {
            if let Some(v) = v {
                r.push((k, Tree::Str(v.into())));
            }
        };
        opt(c"from", self.from);
        opt(c"into", self.into);
        if self.groups {
            r.push((c"groups", Tree::Bool(true)));
        }
        if self.unless_set {
            r.push((c"unless_set", Tree::Bool(true)));
        }
        if !self.object.is_empty() {
            r.push((c"object", names(&self.object)));
        }
        Tree::Record(r)
    }
}

/// The lookups for an event about a host (`service: false`) or a service: the host's names
/// (its object, then its poller, its name if the object had none, groups and severity), then
/// the service's or the host's.
fn lookups(service: bool, t: &TemplateFields) -> Vec<Lookup> {
    let mut host_object = vec!["name", "host_name", "address", "host_address"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    for f in &t.host {
        host_object.extend([f.clone(), format!("cache.host.{f}")]);
    }
    host_object.extend(["instance_id".into(), INSTANCE_ID.into()]);
    let mut l = vec![
        Lookup {
            method: "get_host",
            ids: 1,
            object: host_object,
            ..Lookup::default()
        },
        Lookup {
            method: "get_instance_name",
            from: Some(INSTANCE_ID),
            into: Some("poller"),
            ..Lookup::default()
        },
        Lookup {
            unless_set: true,
            ..Lookup::into("get_hostname", 1, "host_name")
        },
        Lookup::into("get_hostgroups", 1, "hostgroups").groups(),
        Lookup::into("get_severity", 1, "host_severity"),
    ];
    if service {
        l.extend([
            Lookup::into("get_service_description", 2, "service_description"),
            Lookup::into("get_servicegroups", 2, "servicegroups").groups(),
            Lookup::into("get_severity", 2, "service_severity"),
            Lookup::into("get_notes_url", 2, "notes_url"),
            Lookup::into("get_action_url", 2, "action_url"),
        ]);
        if !t.service.is_empty() {
            l.push(Lookup {
                method: "get_service",
                ids: 2,
                object: t
                    .service
                    .iter()
                    .flat_map(|f| [f.clone(), format!("cache.service.{f}")])
                    .collect(),
                ..Lookup::default()
            });
        }
    } else {
        l.extend([
            Lookup::into("get_notes_url", 1, "notes_url"),
            Lookup::into("get_action_url", 1, "action_url"),
        ]);
    }
    l
}

/// What the lookups write into the details.
fn looked_up(l: &[Lookup]) -> impl Iterator<Item = &str> {
    l.iter().flat_map(|s| {
        s.into
            .into_iter()
            .chain(s.object.iter().skip(1).step_by(2).map(String::as_str))
    })
}

/// `list` with the template's event fields not in it nor in `set` (what the bridge sets
/// itself), without `service_id` for an event about a host.
fn with_template(list: &[&str], set: &[&str], host: bool, t: &TemplateFields) -> Vec<String> {
    let mut out: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    for f in &t.event {
        let f = f.as_str();
        if !(list.contains(&f) || set.contains(&f) || host && f == "service_id") {
            out.push(f.into());
        }
    }
    out
}

/// A Lua string literal of `s`: every byte that is not a letter, a digit, `_` or `.` as a
/// decimal escape.
fn lua_quoted(s: &str) -> String {
    let mut q = String::from("\"");
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
            q.push(b as char);
        } else {
            q.push_str(&format!("\\{b:03}"));
        }
    }
    q.push('"');
    q
}

/// A reader of the fields `names` of an event: the names, and the Lua source of a function
/// `e -> table` reading them all in one table constructor that also names, as nil, the fields
/// written afterwards (`added`), so that the table is sized for them at once.
fn reader(names: &[String], added: &[&str]) -> Tree {
    // called with the event and, when the bridge has read them, the check times (`times`)
    let mut src = String::from("local e, t1, t2 = ... return {");
    for n in names {
        let q = lua_quoted(n);
        let known = match CheckTimes::FIELDS.iter().position(|f| f == n) {
            Some(i) => format!("t{} or ", i + 1),
            None => String::new(),
        };
        src.push_str(&format!("[{q}] = {known}e[{q}],"));
    }
    for a in added.iter().filter(|a| !names.iter().any(|n| n == *a)) {
        src.push_str(&format!("[{}] = nil,", lua_quoted(a)));
    }
    src.push('}');
    Tree::Record(vec![
        (c"names", self::names(names)),
        (c"source", Tree::Str(src)),
    ])
}

/// The plan of one accepted event type.
fn type_plan(et: &EventType, t: &TemplateFields) -> Tree {
    let host = et.object() == Some(Kind::Host);
    let status = matches!(et.class, EventClass::Status(..));
    let lookups = lookups(et.object() != Some(Kind::Host), t);
    let mut r = vec![
        (c"type", Tree::Int(et.type_id() as i64)),
        (c"category", Tree::Int(et.category as i64)),
        (c"element", Tree::Int(et.element as i64)),
        (c"service", Tree::Bool(et.object() == Some(Kind::Service))),
        (c"status", Tree::Bool(status)),
    ];
    // the names written after the fields are read (the table is sized for them at once)
    let mut added: Vec<&str> = looked_up(&lookups).collect();
    if status {
        let question = question_fields(et.bbdo());
        // what write() has read: the type, ids, state and, after status(), the question's fields
        let mut set = vec!["category", "element", "host_id", "state"];
        if !host {
            set.push("service_id");
        }
        added.extend(&set);
        let flag_fields = Flags::fields(et.bbdo());
        let after: Vec<&str> = STATUS_DETAILS
            .iter()
            .chain(flag_fields.iter().filter(|f| !question.contains(f)))
            .copied()
            .collect();
        let all: Vec<&str> = STATUS_DETAILS
            .iter()
            .copied()
            .chain(["state_type"])
            .chain(flag_fields.iter().copied())
            .collect();
        let with_question: Vec<&str> = set.iter().chain(&question).copied().collect();
        added.extend(question);
        r.push((c"flags", names(&question)));
        r.push((c"times", names(&CheckTimes::FIELDS)));
        let read = with_template(&after, &with_question, host, t);
        r.push((c"read", reader(&read, &added)));
        r.push((
            c"read_all",
            reader(&with_template(&all, &set, host, t), &added),
        ));
    } else {
        let list: Vec<&str> = ALL_FIELDS
            .iter()
            .copied()
            .filter(|f| !(host && *f == "service_id"))
            .collect();
        r.push((c"read", reader(&with_template(&list, &[], host, t), &added)));
    }
    Tree::Record(r)
}

/// The plan of a connector's bridge.
pub(crate) fn plan(conn: &Connector) -> Tree {
    let t = TemplateFields::of(conn);
    let types = conn
        .config()
        .accepted_types
        .iter()
        .filter_map(|ty| EventType::of_type(*ty))
        .map(|et| (et.type_id() as i64, type_plan(et, &t)))
        .collect();
    let steps = |service| Tree::List(lookups(service, &t).iter().map(Lookup::tree).collect());
    let answer = |a: Answer| Tree::Int(a as i64);
    Tree::Record(vec![
        (c"types", Tree::ByInt(types)),
        (c"host_lookups", steps(false)),
        (c"service_lookups", steps(true)),
        (
            c"answers",
            Tree::Record(vec![
                (c"pending", answer(Answer::Pending)),
                (c"acknowledged", answer(Answer::Acknowledged)),
                (c"need_details", answer(Answer::NeedDetails)),
                (c"need_flags", answer(Answer::NeedFlags)),
                (c"stays_ok", answer(Answer::StaysOk)),
                (
                    c"stays_ok_acknowledged",
                    answer(Answer::StaysOkAcknowledged),
                ),
                (c"need_times", answer(Answer::NeedTimes)),
            ]),
        ),
        (c"ok_state", Tree::Int(OK_STATE)),
        (c"wait_calls", Tree::Int(WAIT_CALLS)),
        (c"unseen_max", Tree::Int(UNSEEN_MAX)),
        (c"collect_events", Tree::Int(COLLECT_EVENTS)),
        (c"collect_kb", Tree::Int(COLLECT_KB)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(t: &Tree) -> Vec<&str> {
        match t {
            Tree::List(l) => l
                .iter()
                .map(|s| match s {
                    Tree::Str(s) => s.as_str(),
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    fn field<'a>(t: &'a Tree, name: &str) -> &'a Tree {
        match t {
            Tree::Record(r) => &r.iter().find(|(k, _)| k.to_str() == Ok(name)).unwrap().1,
            other => panic!("{other:?}"),
        }
    }

    fn read<'a>(t: &'a Tree, name: &str) -> Vec<&'a str> {
        list(field(field(t, name), "names"))
    }

    fn of(t: u32, tf: &TemplateFields) -> Tree {
        type_plan(EventType::of_type(t).unwrap(), tf)
    }

    #[test]
    fn a_status_reads_its_question_then_only_what_the_library_uses() {
        let none = TemplateFields::default();
        let v3 = of(65565, &none);
        assert_eq!(
            list(field(&v3, "flags")),
            [
                "state_type",
                "acknowledgement_type",
                "scheduled_downtime_depth",
                "flapping"
            ]
        );
        assert_eq!(read(&v3, "read"), STATUS_DETAILS);
        assert_eq!(read(&v3, "read_all").len(), STATUS_DETAILS.len() + 4);
        // BBDO 2: acknowledgement_type too, the library's second choice after acknowledged
        let v2 = of(65560, &none);
        assert_eq!(list(field(&v2, "flags"))[1], "acknowledged");
        assert_eq!(read(&v2, "read").len(), STATUS_DETAILS.len() + 1);
        assert_eq!(read(&v2, "read_all").len(), STATUS_DETAILS.len() + 5);
    }

    #[test]
    fn a_reader_quotes_every_name_and_sizes_its_table_for_the_added_ones() {
        let names = [
            "output".to_string(),
            "a\"]..\n".to_string(),
            "last_state_change".to_string(),
        ];
        let Tree::Record(r) = reader(&names, &["output", "host_name"]) else {
            panic!()
        };
        // a check time the bridge has read (t1, t2) is not read again
        assert_eq!(
            r[1].1,
            Tree::Str(
                "local e, t1, t2 = ... return {[\"output\"] = e[\"output\"],\
                 [\"a\\034\\093..\\010\"] = e[\"a\\034\\093..\\010\"],\
                 [\"last_state_change\"] = t2 or e[\"last_state_change\"],\
                 [\"host_name\"] = nil,}"
                    .into()
            )
        );
    }

    #[test]
    fn template_fields_are_split_and_read_once() {
        let tf = TemplateFields {
            event: [
                "_type",
                "category",
                "service_id",
                "percent_state_change",
                "output",
            ]
            .map(String::from)
            .to_vec(),
            host: vec!["alias".into()],
            service: vec!["display_name".into()],
        };
        let host = of(65568, &tf);
        assert_eq!(
            read(&host, "read"),
            [STATUS_DETAILS, &["_type", "percent_state_change"]].concat()
        );
        let ack = of(65581, &tf);
        let read = read(&ack, "read");
        assert_eq!(read.len(), ALL_FIELDS.len() + 2, "{read:?}");
        let steps = lookups(true, &tf);
        assert!(steps[0].object.contains(&"cache.host.alias".to_string()));
        assert_eq!(steps.last().unwrap().method, "get_service");
        assert!(
            lookups(false, &tf)
                .iter()
                .all(|s| s.method != "get_service")
        );
        assert!(
            lookups(true, &TemplateFields::default())
                .iter()
                .all(|s| s.method != "get_service")
        );
    }
}
