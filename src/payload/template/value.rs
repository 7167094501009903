//! A macro's value: looked up in the event, Broker's cache and the context, its flag applied.

use serde_json::Value;

use super::fields::aliases;
use super::macros::{Flag, Macro, Source};
use crate::event::{Context, Kind, ObjectKey, RawValue};
use crate::payload::output::{OutputOptions, first_line};
use crate::timefmt;

/// A macro's value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
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

    pub(super) fn json(self) -> Value {
        match self {
            Val::Int(i) => i.into(),
            Val::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            Val::Str(s) => s.into(),
            Val::Bool(b) => b.into(),
            Val::List(l) | Val::Table(l) => l.into_iter().map(Value::from).collect(),
        }
    }

    /// The value among text, as Lua's `tostring` writes it.
    pub(super) fn text(&self) -> String {
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
pub(super) struct Scope<'a> {
    pub(super) key: ObjectKey,
    pub(super) ctx: &'a Context,
    pub(super) output: &'a OutputOptions,
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
            // NOTE(issue 32): the rule of event/'s `from_raw` (acknowledged, else
            // acknowledgement_type != 0); it becomes a call when event/ has its one
            // flag-normalisation function (the field's own value is kept as written).
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
    pub(super) fn resolve(&self, m: &Macro) -> Option<Val> {
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
            // NOTE(issue 32): the state numbers are event/'s (`from_raw` accepts 0..=2 for a
            // host, 0..=4 for a service); a `state_name` returning `None` out of range would
            // let this be one call.
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
