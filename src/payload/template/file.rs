//! Reading a template file: the JSON checked, each template put in its slot, macros located.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use super::fields::{For, HOST_IDENTITY, SERVICE_IDENTITY};
use super::macros::{Macro, Piece, Source, pieces};
use super::{Loaded, Templates};
use crate::event::Bbdo;
use crate::event::{EventType, KNOWN_CATEGORIES, KNOWN_ELEMENTS};
use crate::files::ReadError;
use crate::payload::Severity;
use crate::payload::output::OutputOptions;

/// A JSON value of a template, macros located.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    /// No macro inside.
    Fixed(Value),
    /// A string that is exactly one macro: the macro's value keeps its JSON type.
    Exact(Macro),
    /// A string with macros among text: always a string.
    Text(Vec<Piece>),
    Array(Vec<Node>),
    Object(Vec<(Vec<Piece>, Node)>),
}

/// One template of the file.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Template {
    /// The top-level fields, `routing_key`, `event_action` and `dedup_key` taken out.
    pub(super) fields: Vec<(Vec<Piece>, Node)>,
}

/// The templates a file may hold, in slot order: key, events formatted, BBDO version.
// NOTE(issue 32): the keys are `neb_` and Broker's element names; when event/ holds the one
// table of event types with their names, these rows are read from it.
pub(super) const SLOTS: [(&str, For, Bbdo); 6] = [
    ("neb_host_status", For::Host, Bbdo::V2),
    ("neb_pb_host_status", For::Host, Bbdo::V3),
    ("neb_service_status", For::Service, Bbdo::V2),
    ("neb_pb_service_status", For::Service, Bbdo::V3),
    ("neb_acknowledgement", For::Acknowledgement, Bbdo::V2),
    ("neb_pb_acknowledgement", For::Acknowledgement, Bbdo::V3),
];

/// The `dedup_key`s a file's status templates set: per object kind (host, service), with the
/// key of the template that sets each.
type DedupKeys<'a> = [Vec<(&'a str, Vec<Piece>)>; 2];

/// What is wrong with a template file (its `Display` is the message `init` gives).
#[derive(Debug)]
pub enum TemplateError {
    /// The file cannot be read: missing, not a regular file, too large.
    Unreadable(ReadError),
    NotJson(serde_json::Error),
    /// The file is not a JSON object of templates.
    NotAnObject,
    /// A key that is neither a template we use nor an event type the library knows.
    UnknownKey(String),
    /// The template of this key is not a JSON object.
    TemplateNotAnObject(String),
    /// What is wrong in the template of `key` (a macro, a key, `dedup_key`, `payload`).
    InTemplate {
        key: String,
        problem: String,
    },
    /// Two status templates of one object kind set different `dedup_key`s.
    DedupKeysDiffer {
        first: String,
        other: String,
    },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Unreadable(e) => f.write_str(&e.about("it")),
            TemplateError::NotJson(e) => write!(f, "it is not valid JSON: {e}"),
            TemplateError::NotAnObject => f.write_str(
                "expected a JSON object of templates keyed by <category>_<element> \
                 (for example neb_service_status)",
            ),
            TemplateError::UnknownKey(key) => {
                let names: Vec<&str> = SLOTS.iter().map(|(k, _, _)| *k).collect();
                write!(
                    f,
                    "unknown template key \"{key}\" (expected <category>_<element>: {})",
                    names.join(", ")
                )
            }
            TemplateError::TemplateNotAnObject(key) => write!(
                f,
                "template \"{key}\" must be a JSON object (the event to send)"
            ),
            TemplateError::InTemplate { key, problem } => {
                write!(f, "template \"{key}\": {problem}")
            }
            TemplateError::DedupKeysDiffer { first, other } => write!(
                f,
                "templates \"{first}\" and \"{other}\" set different dedup_keys: an object \
                 has one dedup_key whatever the BBDO version (set the same one)"
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

/// Checks the text of a template file.
pub(super) fn parse(text: &str) -> Result<Loaded, TemplateError> {
    let root: Value = serde_json::from_str(text).map_err(TemplateError::NotJson)?;
    let Value::Object(root) = root else {
        return Err(TemplateError::NotAnObject);
    };
    let mut warnings = Vec::new();
    let mut slots: Vec<Option<Template>> = vec![None; SLOTS.len()];
    let mut dedup: DedupKeys = [Vec::new(), Vec::new()];
    let mut needs = BTreeSet::new();
    for (key, value) in &root {
        let Some(slot) = SLOTS.iter().position(|(k, _, _)| k == key) else {
            warnings.push(unused_key(key)?);
            continue;
        };
        let t = template(key, value, SLOTS[slot].1, &mut warnings, &mut dedup)?;
        t.collect_needs(&mut needs);
        slots[slot] = Some(t);
    }
    let mut chosen: [Option<Vec<Piece>>; 2] = [None, None];
    for (i, found) in dedup.into_iter().enumerate() {
        chosen[i] = one_dedup_key(found)?;
        for p in chosen[i].iter().flatten() {
            if let Piece::Mac(m) = p {
                m.collect_needs(&mut needs);
            }
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

/// Checks the template of `key`: its fields, macros located; a status template's `dedup_key`
/// goes to `dedup`, what is ignored to `warnings`.
fn template<'a>(
    key: &'a str,
    value: &Value,
    what: For,
    warnings: &mut Vec<String>,
    dedup: &mut DedupKeys<'a>,
) -> Result<Template, TemplateError> {
    let Value::Object(obj) = value else {
        return Err(TemplateError::TemplateNotAnObject(key.to_string()));
    };
    let at = |problem: String| TemplateError::InTemplate {
        key: key.to_string(),
        problem,
    };
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
                let k = pieces(name, what).map_err(|m| at(format!("{m} in a key")))?;
                let node = node(v, what, name).map_err(at)?;
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
    Ok(Template { fields })
}

/// The one `dedup_key` of an object kind: the templates of both BBDO versions that set one
/// must set the same.
fn one_dedup_key(found: Vec<(&str, Vec<Piece>)>) -> Result<Option<Vec<Piece>>, TemplateError> {
    let mut found = found.into_iter();
    let Some((first_key, first)) = found.next() else {
        return Ok(None);
    };
    if let Some((other, _)) = found.find(|(_, p)| *p != first) {
        return Err(TemplateError::DedupKeysDiffer {
            first: first_key.to_string(),
            other: other.to_string(),
        });
    }
    Ok(Some(first))
}

/// A key of the file that is no template we use: a warning, or an error for a name the
/// library would not know either.
fn unused_key(key: &str) -> Result<String, TemplateError> {
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
        Err(TemplateError::UnknownKey(key.to_string()))
    }
}

pub(super) fn node(v: &Value, what: For, path: &str) -> Result<Node, String> {
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
