//! Parameters as Broker hands them over, one table row per parameter, and their reading.
//!
//! Each part of the pipeline owns the rows of the parameters it reads ([`Param`] constants
//! beside its options) and reads them through a [`ParamReader`]; [`crate::config`] gathers the
//! rows (for `check-config`, the documentation test and the unknown-name warnings) and
//! composes the options. A row read by no code, or code reading a row no table lists, fails
//! `config`'s tests: see [`ParamReader::asked`].

mod url;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub(crate) use url::{http_url, parse_url, percent_decode};

/// A parameter value as Broker hands it over (`string`/`password` entries are strings,
/// `number` entries integers or floats), or as JSON gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// The routing key (or any secret): never printed. `Debug` and `Display` show it masked.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the request body only.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// All but the last 4 characters replaced by `*`.
    pub fn masked(&self) -> String {
        let n = self.0.chars().count();
        let keep = if n > 8 { 4 } else { 0 };
        let tail: String = self.0.chars().skip(n - keep).collect();
        format!("{}{}", "*".repeat(n - keep), tail)
    }
}

/// How messages show a value that is not a secret parameter's (a file name, for instance):
/// masked as [`Secret::masked`] masks a key when it could hold one (a routing key pasted in
/// the wrong place: 20 or more letters or digits in a row), else as it is.
pub fn unless_key(text: &str) -> String {
    let mut run = 0;
    for c in text.chars() {
        run = if c.is_ascii_alphanumeric() {
            run + 1
        } else {
            0
        };
        if run >= 20 {
            return Secret::new(text).masked();
        }
    }
    text.to_string()
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// A parameter that was accepted but gave a warning (unknown name, ignored, set twice...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning(pub String);

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is wrong, for code that acts on an error (`check-config` sets the parameter at fault
/// aside); the wording is for people only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The parameter's value is not what is expected.
    Value,
    /// The parameter cannot be set as it is together with another one, named as written.
    Conflict(String),
    /// The parameter is missing; when another parameter needs it, that one, as written.
    Missing(Option<String>),
    /// The configuration is not a set of parameters at all (JSON of another shape).
    Shape,
}

/// A wrong parameter: its name and what is expected. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub parameter: String,
    pub kind: ErrorKind,
    pub message: String,
}

impl ConfigError {
    /// A missing parameter, needed by `needed_by` (as written) when given.
    pub(crate) fn missing(
        parameter: &str,
        needed_by: Option<&str>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            parameter: parameter.to_string(),
            kind: ErrorKind::Missing(needed_by.map(str::to_string)),
            message: message.into(),
        }
    }

    /// The other parameter this error names, as written, if any.
    pub fn other_parameter(&self) -> Option<&str> {
        match &self.kind {
            ErrorKind::Conflict(o) | ErrorKind::Missing(Some(o)) => Some(o),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "parameter '{}': {}", self.parameter, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// How a parameter's value is read, with its default; `Own` when the module that owns the row
/// reads the value itself (lists, patterns, URLs, files...), its doc saying what is expected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Parser {
    /// 1/0, true/false, yes/no.
    Flag(bool),
    /// An integer from `min` to `max`; `None`: not set unless written.
    Integer {
        min: i64,
        max: i64,
        default: Option<i64>,
    },
    /// Seconds, more than 0 and at most `max`.
    Seconds { max: f64, default: u64 },
    /// A text, trimmed; `None`: not set unless written.
    Text(Option<&'static str>),
    /// Read by the module that owns the row.
    Own,
}

/// One parameter: its name, an older spelling, what it does, whether its value is a secret
/// and how it is read. Rows are constants of the module that reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Param {
    pub name: &'static str,
    /// The legacy spelling still read (the certified `name` wins, with a warning, when both
    /// are set).
    pub legacy: Option<&'static str>,
    pub doc: &'static str,
    /// Its value is never shown, nor any text holding it.
    pub secret: bool,
    pub parser: Parser,
}

impl Param {
    /// A row read by its module's own code.
    pub const fn new(name: &'static str, doc: &'static str) -> Param {
        Param {
            name,
            legacy: None,
            doc,
            secret: false,
            parser: Parser::Own,
        }
    }
    pub const fn flag(name: &'static str, default: bool, doc: &'static str) -> Param {
        Param::new(name, doc).parser(Parser::Flag(default))
    }
    pub const fn integer(
        name: &'static str,
        min: i64,
        max: i64,
        default: Option<i64>,
        doc: &'static str,
    ) -> Param {
        Param::new(name, doc).parser(Parser::Integer { min, max, default })
    }
    /// A [`Parser::Text`] row.
    pub const fn text(
        name: &'static str,
        default: Option<&'static str>,
        doc: &'static str,
    ) -> Param {
        Param::new(name, doc).parser(Parser::Text(default))
    }
    /// A [`Parser::Seconds`] row.
    pub const fn seconds(name: &'static str, max: f64, default: u64, doc: &'static str) -> Param {
        Param::new(name, doc).parser(Parser::Seconds { max, default })
    }
    pub const fn parser(self, parser: Parser) -> Param {
        Param { parser, ..self }
    }
    pub const fn legacy(self, legacy: &'static str) -> Param {
        Param {
            legacy: Some(legacy),
            ..self
        }
    }
    pub const fn secret(self) -> Param {
        Param {
            secret: true,
            ..self
        }
    }
}

/// One parameter as the user wrote it.
pub(crate) struct Given {
    /// The name as written (untrimmed), for messages.
    pub(crate) written: String,
    pub(crate) value: ParamValue,
    /// The value must not be shown: a secret parameter, a value holding a secret given
    /// elsewhere (a routing key pasted in the wrong parameter), or URL credentials.
    pub(crate) hidden: bool,
}

impl Given {
    pub(crate) fn err(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            parameter: self.written.clone(),
            kind: ErrorKind::Value,
            message: message.into(),
        }
    }

    /// An error of this parameter set together with `other`.
    pub(crate) fn conflict(&self, other: &Given, message: impl Into<String>) -> ConfigError {
        ConfigError {
            kind: ErrorKind::Conflict(other.written.clone()),
            ..self.err(message)
        }
    }

    /// What a message says of the value, for every parameter (Broker's log, the command
    /// line, `check-config`): messages say what is expected and never echo text, which may
    /// be a secret pasted in the wrong place. A number is shown; text only by its length;
    /// nothing of a secret parameter's value.
    pub(crate) fn shown(&self) -> String {
        if self.hidden {
            return "a value that is not shown (it may hold a secret)".to_string();
        }
        match &self.value {
            ParamValue::Str(s) => {
                let s = s.trim();
                if s.len() <= 16 && s.parse::<f64>().is_ok() {
                    s.to_string()
                } else {
                    format!("a text of {} characters (not shown)", s.chars().count())
                }
            }
            ParamValue::Int(i) => i.to_string(),
            ParamValue::Float(f) => f.to_string(),
            ParamValue::Bool(b) => b.to_string(),
        }
    }

    /// The file a file parameter names, quoted, for messages about that file: masked like a
    /// key when it could hold one ([`unless_key`]), not shown when the value is hidden.
    pub(crate) fn path_shown(&self, path: &str) -> String {
        if self.hidden {
            "(not shown)".to_string()
        } else {
            format!("{:?}", unless_key(path))
        }
    }

    /// A string setting (numbers are taken as written; booleans refused). Trimmed.
    pub(crate) fn text(&self) -> Result<String, ConfigError> {
        match &self.value {
            ParamValue::Str(s) => Ok(s.trim().to_string()),
            ParamValue::Int(i) => Ok(i.to_string()),
            ParamValue::Float(f) => Ok(f.to_string()),
            ParamValue::Bool(_) => Err(self.err("expected a string, got a boolean")),
        }
    }

    /// 1/0, true/false, yes/no (strings in any case, trimmed).
    pub(crate) fn boolean(&self) -> Result<bool, ConfigError> {
        let b = match &self.value {
            ParamValue::Bool(b) => Some(*b),
            ParamValue::Int(0) => Some(false),
            ParamValue::Int(1) => Some(true),
            ParamValue::Int(_) => None,
            ParamValue::Float(f) if *f == 0.0 => Some(false),
            ParamValue::Float(f) if *f == 1.0 => Some(true),
            ParamValue::Float(_) => None,
            ParamValue::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => Some(true),
                "0" | "false" | "no" => Some(false),
                _ => None,
            },
        };
        b.ok_or_else(|| self.err(format!("expected 0 or 1, got {}", self.shown())))
    }

    /// An integer: a Lua integer, an integral float or a string holding one.
    pub(crate) fn int_value(&self) -> Option<i64> {
        match &self.value {
            ParamValue::Int(i) => Some(*i),
            ParamValue::Float(f) => float_to_int(*f),
            ParamValue::Str(s) => {
                let s = s.trim();
                s.parse::<i64>()
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().and_then(float_to_int))
            }
            ParamValue::Bool(_) => None,
        }
    }

    pub(crate) fn integer(&self, min: i64, max: i64) -> Result<i64, ConfigError> {
        self.int_value()
            .filter(|i| (min..=max).contains(i))
            .ok_or_else(|| {
                self.err(format!(
                    "expected an integer from {min} to {max}, got {}",
                    self.shown()
                ))
            })
    }

    /// A finite number: integer, float or a string holding one.
    fn number(&self) -> Option<f64> {
        match &self.value {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Float(f) => Some(*f),
            ParamValue::Str(s) => s.trim().parse::<f64>().ok(),
            ParamValue::Bool(_) => None,
        }
        .filter(|f| f.is_finite())
    }

    /// Seconds, more than 0 and at most `max`.
    fn seconds(&self, max: f64) -> Result<Duration, ConfigError> {
        self.number()
            .filter(|s| *s > 0.0 && *s <= max)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                self.err(format!(
                    "expected a number of seconds greater than 0 and at most {max}, got {}",
                    self.shown()
                ))
            })
    }

    /// A comma separated list: entries trimmed, empty ones dropped, duplicates removed.
    pub(crate) fn list(&self) -> Result<Vec<String>, ConfigError> {
        let mut out: Vec<String> = Vec::new();
        for item in self.text()?.split(',').map(str::trim) {
            if !item.is_empty() && !out.iter().any(|o| o == item) {
                out.push(item.to_string());
            }
        }
        Ok(out)
    }
}

fn float_to_int(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

fn is_blank(v: &ParamValue) -> bool {
    matches!(v, ParamValue::Str(s) if s.trim().is_empty())
}

fn as_text(v: &ParamValue) -> String {
    match v {
        ParamValue::Str(s) => s.trim().to_string(),
        ParamValue::Int(i) => i.to_string(),
        ParamValue::Float(f) => f.to_string(),
        ParamValue::Bool(_) => String::new(),
    }
}

/// The parameters not consumed yet, by trimmed name, and the rows asked for.
pub(crate) struct ParamReader {
    entries: BTreeMap<String, Given>,
    warnings: Vec<Warning>,
    /// Every spelling asked for, in order: the rows' code reads.
    asked: Vec<&'static str>,
}

impl ParamReader {
    /// `secret_names`: the parameters whose values are never shown, nor any value holding one.
    pub(crate) fn new(params: &[(String, ParamValue)], secret_names: &[&str]) -> ParamReader {
        // Secret values (long enough to be recognised), to hide wherever they appear.
        let secrets: Vec<String> = params
            .iter()
            .filter(|(name, _)| secret_names.contains(&name.trim()))
            .map(|(_, v)| as_text(v))
            .filter(|v| v.chars().count() >= 6)
            .collect();
        let mut entries = BTreeMap::new();
        let mut warnings = Vec::new();
        for (name, value) in params {
            let key = name.trim().to_string();
            let text = as_text(value);
            let hidden = secret_names.contains(&key.as_str())
                || secrets.iter().any(|s| text.contains(s.as_str()))
                || (text.contains('@') && (text.contains("://") || key.starts_with("proxy_")));
            let given = Given {
                written: name.clone(),
                value: value.clone(),
                hidden,
            };
            if entries.insert(key, given).is_some() {
                warnings.push(Warning(format!(
                    "parameter '{name}' is set more than once: the last value is used"
                )));
            }
        }
        ParamReader {
            entries,
            warnings,
            asked: Vec::new(),
        }
    }

    pub(crate) fn warn(&mut self, msg: impl Into<String>) {
        self.warnings.push(Warning(msg.into()));
    }

    /// Every spelling read so far.
    #[cfg(test)]
    pub(crate) fn asked(&self) -> &[&'static str] {
        &self.asked
    }

    fn take_name(&mut self, name: &'static str) -> Option<Given> {
        self.asked.push(name);
        self.entries.remove(name).filter(|e| !is_blank(&e.value))
    }

    /// Removes and returns a parameter of a row without legacy spelling; an empty (or blank)
    /// string counts as not set.
    pub(crate) fn take(&mut self, row: &Param) -> Option<Given> {
        debug_assert!(row.legacy.is_none(), "{}: read with pick", row.name);
        self.take_name(row.name)
    }

    /// Reads a row that has a certified and a legacy name: both are checked, the certified
    /// one wins (with a warning) when both are set.
    pub(crate) fn pick<T>(
        &mut self,
        row: &Param,
        parse: impl Fn(&Given) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        let new = self.take_name(row.name);
        let old = row.legacy.and_then(|l| self.take_name(l));
        let old_value = old.as_ref().map(&parse).transpose()?;
        let new_value = new.as_ref().map(&parse).transpose()?;
        if let (Some(n), Some(o)) = (&new, &old) {
            self.warn(format!(
                "parameters '{}' and '{}' are both set: '{}' is used",
                n.written, o.written, n.written
            ));
        }
        Ok(new_value.or(old_value))
    }

    /// A [`Parser::Flag`] row.
    pub(crate) fn flag(&mut self, row: &Param) -> Result<bool, ConfigError> {
        let Parser::Flag(default) = row.parser else {
            unreachable!("{} is not a flag", row.name)
        };
        self.take(row).map_or(Ok(default), |e| e.boolean())
    }

    /// A [`Parser::Integer`] row.
    pub(crate) fn integer(&mut self, row: &Param) -> Result<Option<i64>, ConfigError> {
        let Parser::Integer { min, max, default } = row.parser else {
            unreachable!("{} is not an integer", row.name)
        };
        match self.take(row) {
            None => Ok(default),
            Some(e) => e.integer(min, max).map(Some),
        }
    }

    /// A [`Parser::Seconds`] row (legacy spelling included).
    pub(crate) fn seconds(&mut self, row: &Param) -> Result<Duration, ConfigError> {
        let Parser::Seconds { max, default } = row.parser else {
            unreachable!("{} is not seconds", row.name)
        };
        Ok(self
            .pick(row, |e| e.seconds(max))?
            .unwrap_or(Duration::from_secs(default)))
    }

    /// A [`Parser::Text`] row (legacy spelling included).
    pub(crate) fn text(&mut self, row: &Param) -> Result<Option<String>, ConfigError> {
        let Parser::Text(default) = row.parser else {
            unreachable!("{} is not a text", row.name)
        };
        Ok(self
            .pick(row, Given::text)?
            .or_else(|| default.map(str::to_string)))
    }

    /// An `accepted_X`/`rejected_X` pair of name lists; setting both is an error.
    pub(crate) fn list_pair(
        &mut self,
        accepted: &Param,
        rejected: &Param,
    ) -> Result<(Vec<String>, Vec<String>), ConfigError> {
        let a = self.take(accepted);
        let r = self.take(rejected);
        if let (Some(a), Some(r)) = (&a, &r) {
            return Err(a.conflict(
                r,
                format!(
                    "cannot be used together with '{}': set one of them",
                    r.written
                ),
            ));
        }
        let a = a.map_or(Ok(Vec::new()), |e| e.list())?;
        let r = r.map_or(Ok(Vec::new()), |e| e.list())?;
        Ok((a, r))
    }

    /// What is left, by trimmed name, with the warnings so far: the caller words the rest.
    pub(crate) fn finish(self) -> (BTreeMap<String, Given>, Vec<Warning>) {
        let rest = self
            .entries
            .into_iter()
            .filter(|(_, e)| !is_blank(&e.value))
            .collect();
        (rest, self.warnings)
    }
}
