//! Output configuration: the Lua connectors' parameters (legacy and certified spellings), checked at `init`.
//!
//! Each part of the pipeline owns its options and the table rows of its parameters
//! ([`crate::params::Param`], beside the options it reads); [`Config`] only composes them and
//! this module gathers the rows: reading, `check-config`, the unknown-name warnings and the
//! documentation test all derive from them.

mod ignored;
mod key;

use std::sync::LazyLock;

use crate::decision::DecisionOptions;
use crate::delivery::options::{DeliveryOptions, OutboxOptions, Setup};
use crate::event::options::{implied_types, read_accepted_types};
use crate::http::options::HttpOptions;
use crate::log::LogOptions;
use crate::params::{Given, Param, ParamReader};
use crate::payload::PayloadOptions;
use crate::stats::StatsOptions;

pub use crate::params::{ConfigError, ErrorKind, ParamValue, Secret, Warning, unless_key};
pub use key::{ROUTING_KEY_ENV, routing_key};

/// Every setting of one output: the options of each part.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `pdy_routing_key`: 32 alphanumeric characters.
    pub routing_key: Secret,
    /// `accepted_categories` x `accepted_elements`, as `_type` numbers (both BBDO versions),
    /// with the types they imply.
    pub accepted_types: Vec<u32>,
    pub decision: DecisionOptions,
    pub payload: PayloadOptions,
    pub http: HttpOptions,
    pub delivery: DeliveryOptions,
    pub outbox: OutboxOptions,
    pub stats: StatsOptions,
    pub log: LogOptions,
}

/// The rows of every part, in the documentation's order.
const TABLES: &[&[Param]] = &[
    key::PARAMS,
    crate::payload::options::PARAMS,
    crate::http::options::PARAMS,
    crate::log::PARAMS,
    crate::delivery::options::PARAMS,
    crate::event::options::PARAMS,
    crate::decision::filter::PARAMS,
    crate::decision::options::PARAMS,
    crate::delivery::options::OUTBOX_PARAMS,
    crate::stats::PARAMS,
    crate::payload::output::PARAMS,
];

/// Every parameter row.
fn rows() -> impl Iterator<Item = &'static Param> {
    TABLES.iter().flat_map(|t| t.iter())
}

/// How this connector treats a parameter name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamStatus {
    /// Read and honoured (legacy spellings included: see [`ParamInfo::legacy_of`]).
    Supported,
    /// Known from the Lua connectors or their library but meaningless here; `doc` says why.
    Ignored,
}

/// One parameter name we know, for tools (`--help`, documentation, checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamInfo {
    pub name: &'static str,
    pub status: ParamStatus,
    /// What it does, or "ignored: why".
    pub doc: &'static str,
    /// For a legacy spelling, the certified name it stands for.
    pub legacy_of: Option<&'static str>,
    /// Its value is never shown.
    pub secret: bool,
}

static KNOWN: LazyLock<Vec<ParamInfo>> = LazyLock::new(|| {
    let mut known = Vec::new();
    for row in rows() {
        let info = ParamInfo {
            name: row.name,
            status: ParamStatus::Supported,
            doc: row.doc,
            legacy_of: None,
            secret: row.secret,
        };
        known.push(info);
        if let Some(legacy) = row.legacy {
            known.push(ParamInfo {
                name: legacy,
                legacy_of: Some(row.name),
                ..info
            });
        }
    }
    known.extend(ignored::IGNORED.iter().map(|&(name, doc)| ParamInfo {
        name,
        status: ParamStatus::Ignored,
        doc,
        legacy_of: None,
        secret: false,
    }));
    known
});

/// Every parameter name we know: supported ones (legacy spellings included) and known ones
/// that are ignored, with the reason.
pub fn known_parameters() -> &'static [ParamInfo] {
    &KNOWN
}

/// The known parameter name closest to an unknown `name` (a typo, another case, a dash for
/// an underscore): at most 2 edits apart, or a third of the name's length for long names.
pub fn nearest_parameter(name: &str) -> Option<&'static str> {
    let name = name.trim().to_ascii_lowercase().replace('-', "_");
    let limit = (name.chars().count() / 3).clamp(2, 4);
    known_parameters()
        .iter()
        .map(|i| (edit_distance(&name, i.name), i.name))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Levenshtein distance (insertions, deletions, substitutions), in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

fn param_info(name: &str) -> Option<&'static ParamInfo> {
    known_parameters().iter().find(|i| i.name == name)
}

/// The parameters whose values are never shown.
fn secret_names() -> Vec<&'static str> {
    known_parameters()
        .iter()
        .filter(|i| i.secret)
        .map(|i| i.name)
        .collect()
}

/// Warnings for what no part read: ignored, unknown.
fn finish(r: ParamReader) -> Vec<Warning> {
    let (rest, mut warnings) = r.finish();
    for (name, e) in rest {
        warnings.extend(leftover(&name, &e).map(Warning));
    }
    warnings
}

fn leftover(name: &str, e: &Given) -> Option<String> {
    Some(match param_info(name) {
        Some(i) if i.status == ParamStatus::Ignored => {
            format!("parameter '{}' {}", e.written, i.doc)
        }
        // every supported spelling is read (tests: every_row_is_read)
        Some(_) => return None,
        None => match nearest_parameter(name) {
            Some(near) => format!(
                "unknown parameter '{}' (ignored; did you mean '{near}'?)",
                e.written
            ),
            None => format!("unknown parameter '{}' (ignored)", e.written),
        },
    })
}

impl Config {
    /// Parses Broker's parameters (the `conf` table of `init`). Order-independent; when a
    /// name appears twice the last value wins. An empty string counts as "not set".
    /// Returns the config and warnings (unknown, ignored or not-yet-honoured parameters...).
    /// Errors name the parameter as written and never contain a secret.
    pub fn from_params(
        params: &[(String, ParamValue)],
    ) -> Result<(Config, Vec<Warning>), ConfigError> {
        let mut r = ParamReader::new(params, &secret_names());
        let config = Config::read(&mut r)?;
        Ok((config, finish(r)))
    }

    /// Every part reads its parameters.
    fn read(r: &mut ParamReader) -> Result<Config, ConfigError> {
        let routing_key = key::read(r)?;
        let http = HttpOptions::read(r)?;
        let log = LogOptions::read(r)?;
        let delivery = DeliveryOptions::read(r)?;
        let mut accepted_types = read_accepted_types(r)?;
        let decision = DecisionOptions::read(r)?;
        accepted_types.extend(implied_types(
            &accepted_types,
            decision.send_acknowledgements,
        ));
        accepted_types.sort_unstable();
        accepted_types.dedup();
        let payload = PayloadOptions::read(r)?;
        let outbox = OutboxOptions::read(r, &routing_key)?;
        let stats = StatsOptions::read(r, &outbox.path)?;
        Ok(Config {
            routing_key,
            accepted_types,
            decision,
            payload,
            http,
            delivery,
            outbox,
            stats,
            log,
        })
    }

    /// What the delivery of this output starts with.
    pub fn delivery_setup(&self) -> Setup<'_> {
        Setup {
            routing_key: &self.routing_key,
            payload: &self.payload,
            delivery: &self.delivery,
            outbox: &self.outbox,
            stats: &self.stats,
            http: &self.http,
        }
    }

    /// Same from JSON (C ABI, command line): an object of name -> value (strings, numbers,
    /// booleans; `null` = not set), or Broker's own `lua_parameter` array of
    /// `{"type", "name", "value"}` objects.
    pub fn from_json(v: &serde_json::Value) -> Result<(Config, Vec<Warning>), ConfigError> {
        use serde_json::Value;
        fn convert(name: &str, v: &Value) -> Result<Option<ParamValue>, ConfigError> {
            Ok(Some(match v {
                Value::Null => return Ok(None),
                Value::Bool(b) => ParamValue::Bool(*b),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => ParamValue::Int(i),
                    None => ParamValue::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
                Value::String(s) => ParamValue::Str(s.clone()),
                Value::Array(_) | Value::Object(_) => {
                    return Err(ConfigError {
                        parameter: name.to_string(),
                        kind: ErrorKind::Value,
                        message: "expected a string, a number or a boolean".into(),
                    });
                }
            }))
        }
        let bad = || ConfigError {
            parameter: "configuration".into(),
            kind: ErrorKind::Shape,
            message: "expected a JSON object of parameter names to values, or a lua_parameter \
                      array of {\"name\", \"value\"} objects"
                .into(),
        };
        let mut params = Vec::new();
        match v {
            Value::Object(obj) => {
                for (k, val) in obj {
                    if let Some(pv) = convert(k, val)? {
                        params.push((k.clone(), pv));
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    let name = item.get("name").and_then(Value::as_str).ok_or_else(bad)?;
                    if let Some(pv) = convert(name, item.get("value").unwrap_or(&Value::Null))? {
                        params.push((name.to_string(), pv));
                    }
                }
            }
            _ => return Err(bad()),
        }
        Config::from_params(&params)
    }
}

#[cfg(test)]
mod tests;
