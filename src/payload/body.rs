//! The Events API v2 request bodies, typed (serde), and the JSON a template or the outbox gives.
//!
//! Fields are declared in alphabetical order: serde writes a struct's fields in declaration
//! order and a `serde_json::Map` in key order, so a typed body and the same body as a `Map`
//! are the same bytes (what the outbox stores, what is sent).

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::fit::{BODY_BUDGET, json_len, shrink};
use crate::decision::Action;
use crate::payload::Severity;

/// An alert event (`/v2/enqueue`) without its `routing_key` (added when it is sent).
#[derive(Debug, Clone, Serialize)]
pub struct AlertEvent {
    /// Triggers only, as PagerDuty wants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_url: Option<String>,
    pub dedup_key: String,
    pub event_action: Action,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    pub payload: Payload,
}

/// A change event (`/v2/change/enqueue`) without its `routing_key`.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeEvent {
    pub payload: Payload,
}

/// `payload`: what PagerDuty shows of an event.
#[derive(Debug, Clone, Serialize)]
pub struct Payload {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Free-form, as PagerDuty defines it; not sent when empty.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub custom_details: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Alert events only (a change event has none).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "severity_name"
    )]
    pub severity: Option<Severity>,
    pub source: String,
    /// At most 1024 characters (`MAX_SUMMARY_CHARS`).
    pub summary: String,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// One of `links`.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub href: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Payload {
    fn to_json(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }
}

fn severity_name<S: Serializer>(s: &Option<Severity>, out: S) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => out.serialize_str(s.as_str()),
        None => out.serialize_none(),
    }
}

/// A request body without its `routing_key`: built here (typed), or JSON (a `format_file`
/// template's event, a row read back from the outbox, a typed body that had to be shrunk).
/// Either way it serialises to the JSON object sent.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Body {
    Alert(Box<AlertEvent>),
    Change(ChangeEvent),
    Json(Map<String, Value>),
}

impl Body {
    /// `event` as it is when it fits [`BODY_BUDGET`], else its JSON shrunk to fit.
    pub(crate) fn alert(event: AlertEvent) -> Body {
        if json_len(&event) <= BODY_BUDGET {
            return Body::Alert(Box::new(event));
        }
        Body::shrunk(&event)
    }

    /// [`Body::alert`] for a change event.
    pub(crate) fn change(event: ChangeEvent) -> Body {
        if json_len(&event) <= BODY_BUDGET {
            return Body::Change(event);
        }
        Body::shrunk(&event)
    }

    fn shrunk<T: Serialize>(event: &T) -> Body {
        let mut json = match serde_json::to_value(event) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        shrink(&mut json, BODY_BUDGET);
        Body::Json(json)
    }

    /// The body as a JSON object (borrowed when it is one already).
    pub fn to_json(&self) -> Cow<'_, Map<String, Value>> {
        match self {
            Body::Json(m) => Cow::Borrowed(m),
            typed => match serde_json::to_value(typed) {
                Ok(Value::Object(m)) => Cow::Owned(m),
                _ => Cow::Owned(Map::new()),
            },
        }
    }

    /// The body as a JSON object to edit (a typed body becomes its JSON).
    pub(crate) fn as_json_mut(&mut self) -> &mut Map<String, Value> {
        if !matches!(self, Body::Json(_)) {
            *self = Body::Json(self.to_json().into_owned());
        }
        match self {
            Body::Json(m) => m,
            _ => unreachable!("made JSON above"),
        }
    }

    /// `payload.<name>` as JSON, when the body has it.
    pub(crate) fn payload_field(&self, name: &str) -> Option<Value> {
        let Body::Alert(e) = self else {
            return self.to_json().get("payload")?.get(name).cloned();
        };
        let p = &e.payload;
        match name {
            // what a template falls back on, read without writing the rest as JSON
            "summary" => Some(p.summary.as_str().into()),
            "source" => Some(p.source.as_str().into()),
            "severity" => p.severity.map(|s| s.as_str().into()),
            _ => serde_json::to_value(p).ok()?.get(name).cloned(),
        }
    }

    /// `payload` as a JSON object, when the body has one.
    pub(crate) fn payload_json(&self) -> Option<Map<String, Value>> {
        match self {
            Body::Alert(e) => Some(e.payload.to_json()),
            Body::Change(e) => Some(e.payload.to_json()),
            Body::Json(m) => m.get("payload")?.as_object().cloned(),
        }
    }

    /// Sets `dedup_key`.
    pub(crate) fn set_dedup_key(&mut self, key: &str) {
        match self {
            Body::Alert(e) => e.dedup_key = key.to_string(),
            other => {
                other.as_json_mut().insert("dedup_key".into(), key.into());
            }
        }
    }

    /// `payload.custom_details`, when the body has them.
    pub(crate) fn custom_details_mut(&mut self) -> Option<&mut Map<String, Value>> {
        match self {
            Body::Alert(e) => Some(&mut e.payload.custom_details),
            Body::Change(e) => Some(&mut e.payload.custom_details),
            Body::Json(m) => m
                .get_mut("payload")?
                .as_object_mut()?
                .get_mut("custom_details")?
                .as_object_mut(),
        }
    }
}

/// Bodies are equal when they send the same JSON.
impl PartialEq for Body {
    fn eq(&self, other: &Body) -> bool {
        self.to_json() == other.to_json()
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::Json(Map::new())
    }
}

impl From<Map<String, Value>> for Body {
    fn from(m: Map<String, Value>) -> Body {
        Body::Json(m)
    }
}

/// A body read back (from the outbox) is JSON.
impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Body, D::Error> {
        Map::deserialize(d).map(Body::Json)
    }
}
