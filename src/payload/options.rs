//! What the events sent are built with: links, source, client, severities, `dedup_key`
//! prefix, output options and `format_file` templates; their parameters.

use std::sync::Arc;

use super::output::OutputOptions;
use super::template::Templates;
use crate::event::Kind;
use crate::params::{ConfigError, Param, ParamReader, http_url};

/// PagerDuty severities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
    pub fn parse(s: &str) -> Option<Severity> {
        match s.trim().to_ascii_lowercase().as_str() {
            "critical" => Some(Severity::Critical),
            "error" => Some(Severity::Error),
            "warning" => Some(Severity::Warning),
            "info" => Some(Severity::Info),
            _ => None,
        }
    }
}

/// Severity per Centreon state (defaults fix the legacy "host DOWN = warning" defect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeverityMap {
    pub host_down: Severity,
    pub host_unreachable: Severity,
    pub service_warning: Severity,
    pub service_critical: Severity,
    pub service_unknown: Severity,
}

impl SeverityMap {
    /// PagerDuty severity of a state: problems per this map, everything else `info`.
    pub fn of(&self, kind: Kind, state: i64) -> Severity {
        match (kind, state) {
            (Kind::Host, 1) => self.host_down,
            (Kind::Host, 2) => self.host_unreachable,
            (Kind::Service, 1) => self.service_warning,
            (Kind::Service, 2) => self.service_critical,
            (Kind::Service, 3) => self.service_unknown,
            _ => Severity::Info,
        }
    }
}

impl Default for SeverityMap {
    fn default() -> Self {
        SeverityMap {
            host_down: Severity::Critical,
            host_unreachable: Severity::Critical,
            service_warning: Severity::Warning,
            service_critical: Severity::Critical,
            service_unknown: Severity::Error,
        }
    }
}

/// What the events are built with.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadOptions {
    /// `pdy_centreon_url`: base URL for links, without trailing slash.
    pub centreon_url: String,
    /// `pdy_source`: overrides `payload.source` (default: host name).
    pub source: Option<String>,
    /// `client`.
    pub client: String,
    /// `dedup_key_prefix`: prepended to every `dedup_key` (several platforms on one key).
    pub dedup_key_prefix: String,
    /// `severity_host_down`, `severity_host_unreachable`, `severity_service_warning`,
    /// `severity_service_critical`, `severity_service_unknown`.
    pub severities: SeverityMap,
    /// `use_long_output`, `output_size_limit`, `remove_line_break_in_output`,
    /// `output_line_break_replacement_character`: the plugin output as sent.
    pub output: OutputOptions,
    /// `format_file`: the templates replacing the built-in events, checked (none by default).
    pub templates: Option<Arc<Templates>>,
}

const DEFAULT_CENTREON_URL: &str = "http://set.pdy_centreon_url.parameter";

/// Longest `dedup_key_prefix`: the ids after it always fit PagerDuty's 255 characters.
const MAX_DEDUP_KEY_PREFIX_CHARS: usize = 200;

const CENTREON_URL: Param = Param::new(
    "pdy_centreon_url",
    "base URL of Centreon for the links of incidents (default http://set.pdy_centreon_url.parameter)",
);
const SOURCE: Param = Param::text(
    "pdy_source",
    None,
    "payload.source of every event (default: the host name)",
);
const CLIENT: Param = Param::text(
    "client",
    Some("Centreon Stream Connector"),
    "client field of events (default Centreon Stream Connector)",
);
const DEDUP_KEY_PREFIX: Param = Param::new(
    "dedup_key_prefix",
    "text prepended to every dedup_key, for several Centreon platforms on one routing key (default empty: the Lua connector's keys)",
);
const SEVERITY_HOST_DOWN: Param = Param::new(
    "severity_host_down",
    "PagerDuty severity of a DOWN host: critical (default), error, warning or info",
);
const SEVERITY_HOST_UNREACHABLE: Param = Param::new(
    "severity_host_unreachable",
    "PagerDuty severity of an UNREACHABLE host (default critical)",
);
const SEVERITY_SERVICE_WARNING: Param = Param::new(
    "severity_service_warning",
    "PagerDuty severity of a WARNING service (default warning)",
);
const SEVERITY_SERVICE_CRITICAL: Param = Param::new(
    "severity_service_critical",
    "PagerDuty severity of a CRITICAL service (default critical)",
);
const SEVERITY_SERVICE_UNKNOWN: Param = Param::new(
    "severity_service_unknown",
    "PagerDuty severity of an UNKNOWN service (default error)",
);
const FORMAT_FILE: Param = Param::new(
    "format_file",
    "JSON file of templates keyed by <category>_<element> (neb_service_status, neb_host_status, neb_acknowledgement, neb_pb_...) replacing the built-in events, with the Lua library's macros ({output}, {cache.host.name}, {state_scstate}...); checked at start",
);

/// The payload's own parameters (the output options' are [`super::output::PARAMS`]).
pub(crate) const PARAMS: &[Param] = &[
    CENTREON_URL,
    SOURCE,
    CLIENT,
    DEDUP_KEY_PREFIX,
    SEVERITY_HOST_DOWN,
    SEVERITY_HOST_UNREACHABLE,
    SEVERITY_SERVICE_WARNING,
    SEVERITY_SERVICE_CRITICAL,
    SEVERITY_SERVICE_UNKNOWN,
    FORMAT_FILE,
];

impl PayloadOptions {
    /// Reads the payload's parameters, the output options' included; `format_file` is loaded
    /// and checked.
    pub(crate) fn read(r: &mut ParamReader) -> Result<PayloadOptions, ConfigError> {
        let centreon_url = match r.take(&CENTREON_URL) {
            None => DEFAULT_CENTREON_URL.to_string(),
            Some(e) => http_url(&e)?.trim_end_matches('/').to_string(),
        };
        let source = r.text(&SOURCE)?;
        let client = r.text(&CLIENT)?.unwrap_or_default();
        let output = OutputOptions::read(r)?;
        let dedup_key_prefix = match r.take(&DEDUP_KEY_PREFIX) {
            None => String::new(),
            Some(e) => {
                let text = e.text()?;
                if text.chars().count() > MAX_DEDUP_KEY_PREFIX_CHARS
                    || text.chars().any(char::is_control)
                {
                    return Err(e.err(format!(
                        "expected at most {MAX_DEDUP_KEY_PREFIX_CHARS} characters without \
                         control characters, got {}",
                        e.shown()
                    )));
                }
                text
            }
        };
        let d = SeverityMap::default();
        let severities = SeverityMap {
            host_down: severity(r, &SEVERITY_HOST_DOWN, d.host_down)?,
            host_unreachable: severity(r, &SEVERITY_HOST_UNREACHABLE, d.host_unreachable)?,
            service_warning: severity(r, &SEVERITY_SERVICE_WARNING, d.service_warning)?,
            service_critical: severity(r, &SEVERITY_SERVICE_CRITICAL, d.service_critical)?,
            service_unknown: severity(r, &SEVERITY_SERVICE_UNKNOWN, d.service_unknown)?,
        };
        let templates = match r.take(&FORMAT_FILE) {
            None => None,
            Some(e) => {
                let path = e.text()?;
                let (templates, warnings) = Templates::load(&path)
                    .map_err(|m| e.err(format!("{}: {m}", e.path_shown(&path))))?;
                for w in warnings {
                    r.warn(w);
                }
                Some(Arc::new(templates.with_output(output.clone())))
            }
        };
        Ok(PayloadOptions {
            centreon_url,
            source,
            client,
            dedup_key_prefix,
            severities,
            output,
            templates,
        })
    }
}

fn severity(r: &mut ParamReader, row: &Param, default: Severity) -> Result<Severity, ConfigError> {
    let Some(e) = r.take(row) else {
        return Ok(default);
    };
    Severity::parse(&e.text()?).ok_or_else(|| {
        e.err(format!(
            "expected critical, error, warning or info, got {}",
            e.shown()
        ))
    })
}
