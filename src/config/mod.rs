//! Output configuration: the Lua connectors' parameters (legacy and certified spellings), checked at `init`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::files;

use crate::luapattern::{self, Pattern};
use crate::payload::output::OutputOptions;
use crate::payload::template::Templates;
use std::sync::Arc;

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

/// An HTTP(S) proxy.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// `scheme://host:port`, without credentials.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "****"))
            .finish()
    }
}

/// Severity filter "threshold OP severity".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeverityFilter {
    pub threshold: i64,
    pub op: CompareOp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Every setting of one output.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `pdy_routing_key`: 32 alphanumeric characters.
    pub routing_key: Secret,
    /// `pdy_centreon_url`: base URL for links, without trailing slash.
    pub centreon_url: String,
    /// `pdy_source`: overrides `payload.source` (default: host name).
    pub source: Option<String>,
    /// `http_server_url`: the Events API endpoint.
    pub endpoint: String,
    /// `client`.
    pub client: String,
    /// `http_proxy_string` or `proxy_address`/`proxy_port`/`proxy_protocol`/`proxy_username`/`proxy_password`.
    /// `None` means "use the standard environment variables, if set".
    pub proxy: Option<Proxy>,
    /// `connection_timeout` / `http_timeout`: overall time for one request.
    pub timeout: Duration,
    /// `verify_certificate`.
    pub verify_certificate: bool,
    /// `ca_file`: PEM certificate authorities trusted in addition to the system's bundle
    /// (corporate proxies that inspect TLS).
    pub ca_file: Option<PathBuf>,
    /// `log_level` 0..=3.
    pub log_level: u8,
    /// `log_path` / `logfile`.
    pub log_path: PathBuf,
    /// `log_format`.
    pub log_format: crate::log::LogFormat,
    /// `max_buffer_size`: events held before they are released to the sender.
    pub max_buffer_size: usize,
    /// `max_buffer_age` / `max_all_queues_age`.
    pub max_buffer_age: Duration,
    /// `accepted_categories` x `accepted_elements`, as `_type` numbers (both BBDO versions).
    pub accepted_types: Vec<u32>,
    /// `host_status`: host states that may open incidents.
    pub host_status: Vec<i64>,
    /// `service_status`: service states that may open incidents.
    pub service_status: Vec<i64>,
    /// `hard_only`.
    pub hard_only: bool,
    /// `acknowledged`: 1 = acknowledged objects may open incidents.
    pub acknowledged: bool,
    /// `in_downtime`: 1 = objects in downtime may open incidents.
    pub in_downtime: bool,
    /// `flapping`: 1 = flapping objects may open incidents.
    pub flapping: bool,
    /// `enable_host_status_dedup`: 0 = repeated host problem statuses are sent again.
    pub host_status_dedup: bool,
    /// `enable_service_status_dedup`: 0 = repeated service problem statuses are sent again.
    pub service_status_dedup: bool,
    /// `skip_anon_events`: 1 = drop events the cache cannot name (old behaviour).
    pub skip_anon_events: bool,
    /// `skip_nil_id`: 1 (default) = an event without ids is dropped as a filter drops it;
    /// 0 = it is reported as an error (it can never be sent: its `dedup_key` needs the ids).
    pub skip_nil_id: bool,
    /// `use_long_output`, `output_size_limit`, `remove_line_break_in_output`,
    /// `output_line_break_replacement_character`: the plugin output as sent.
    pub output: OutputOptions,
    /// `log_curl_commands`: 1 = each request is also logged as a ready-to-run `curl` command
    /// (routing key and proxy password masked).
    pub log_curl_commands: bool,
    /// `send_acknowledgements`: 1 (default) = a Centreon acknowledgement acknowledges the
    /// open incident.
    pub send_acknowledgements: bool,
    /// `downtime_action`: what a downtime does to an object's incidents.
    pub downtime_action: DowntimeAction,
    /// `suppress_services_of_down_hosts`: 1 = service problems of a DOWN or UNREACHABLE host
    /// are listed in the host's incident instead of opening their own.
    pub suppress_services_of_down_hosts: bool,
    /// `dedup_key_prefix`: prepended to every `dedup_key` (several platforms on one key).
    pub dedup_key_prefix: String,
    /// `send_data_test`: 1 = log each payload instead of sending it.
    pub send_data_test: bool,
    /// `severity_host_down`, `severity_host_unreachable`, `severity_service_warning`,
    /// `severity_service_critical`, `severity_service_unknown`.
    pub severities: SeverityMap,
    /// `accepted_hostgroups` (empty = all).
    pub accepted_hostgroups: Vec<String>,
    pub rejected_hostgroups: Vec<String>,
    pub accepted_servicegroups: Vec<String>,
    pub rejected_servicegroups: Vec<String>,
    /// `accepted_hosts` (Lua patterns, split with `accepted_hosts_enable_split_pattern`;
    /// empty = all): a host name must match one.
    pub accepted_hosts: Vec<Pattern>,
    /// `accepted_services`, the same for service descriptions.
    pub accepted_services: Vec<Pattern>,
    pub accepted_pollers: Vec<String>,
    pub rejected_pollers: Vec<String>,
    pub host_severity_filter: Option<SeverityFilter>,
    pub service_severity_filter: Option<SeverityFilter>,
    /// `outbox_path`: the durable outbox (default: one file per routing key under
    /// `/var/lib/centreon-broker/`).
    pub outbox_path: PathBuf,
    /// `outbox_max_events`: pending events kept before acknowledgements to Broker stop.
    pub outbox_max_events: u64,
    /// `outbox_commit_delay_ms`: the longest a commit waits for more events within a burst, when
    /// the latest 16 events all arrived within this delay (an event that finds the committer
    /// idle, or a slower stream, is committed at once); also how long delivered
    /// events wait to be deleted together.
    pub outbox_commit_delay: Duration,
    /// `rejected_max_events`: rejected events kept for inspection (oldest pruned).
    pub rejected_max_events: u64,
    /// `stats_path`: the statistics file, rewritten every `stats_interval`.
    pub stats_path: PathBuf,
    /// `stats_interval`: seconds between two statistics files.
    pub stats_interval: Duration,
    /// `format_file`: the templates replacing the built-in events, checked (none by default).
    pub templates: Option<Arc<Templates>>,
}

/// `downtime_action`: what a downtime does to an object's incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DowntimeAction {
    /// No new incident while the object is in downtime; a recovery still resolves, and a
    /// problem still present when the downtime ends is triggered then.
    Suppress,
    /// As `Suppress`, and the open incident is resolved when the downtime starts.
    Resolve,
}

/// A parameter that was accepted but gave a warning (unknown name, ignored, set twice...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning(pub String);

/// A wrong parameter: its name and what is expected. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub parameter: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "parameter '{}': {}", self.parameter, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------
// Parameter names
// ---------------------------------------------------------------------------------------

/// How this connector treats a parameter name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamStatus {
    /// Read and honoured (legacy spellings included: their `doc` says "legacy name of X").
    Supported,
    /// Known from the Lua connectors or their library but meaningless here; `doc` says why.
    Ignored,
}

/// One parameter name we know, for tools (`--help`, documentation, checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamInfo {
    pub name: &'static str,
    pub status: ParamStatus,
    /// What it does, "legacy name of X", or "ignored: why".
    pub doc: &'static str,
}

const fn p(name: &'static str, status: ParamStatus, doc: &'static str) -> ParamInfo {
    ParamInfo { name, status, doc }
}

use ParamStatus::{Ignored, Supported};

const BAM: &str = "ignored: BAM events are not turned into incidents";
const METRICS: &str = "ignored: metrics are not sent to PagerDuty";
const TIME: &str = "ignored: timestamps are sent to PagerDuty with an explicit time zone";
const CENTREON_DB: &str = "ignored: the native connector does not query the Centreon database";

static PARAMS: &[ParamInfo] = &[
    // Connection to PagerDuty.
    p(
        "pdy_routing_key",
        Supported,
        "integration (routing) key of a PagerDuty Events API v2 integration: 32 letters or digits (required, unless pdy_routing_key_file or the PAGERDUTY_ROUTING_KEY environment variable gives it)",
    ),
    p(
        "pdy_routing_key_file",
        Supported,
        "file holding the routing key (surrounding blank space ignored), readable by centreon-broker: keeps the key out of Broker's configuration",
    ),
    p(
        "pdy_centreon_url",
        Supported,
        "base URL of Centreon for the links of incidents (default http://set.pdy_centreon_url.parameter)",
    ),
    p(
        "pdy_source",
        Supported,
        "payload.source of every event (default: the host name)",
    ),
    p(
        "http_server_url",
        Supported,
        "Events API endpoint (default https://events.pagerduty.com/v2/enqueue; EU: https://events.eu.pagerduty.com/v2/enqueue)",
    ),
    p(
        "client",
        Supported,
        "client field of events (default Centreon Stream Connector)",
    ),
    p(
        "http_proxy_string",
        Supported,
        "proxy URL, e.g. http://proxy:3128 or http://user:password@proxy:3128 (legacy; or use proxy_address and proxy_port)",
    ),
    p(
        "proxy_address",
        Supported,
        "proxy host name or address (with proxy_port)",
    ),
    p("proxy_port", Supported, "proxy port, 1 to 65535"),
    p(
        "proxy_protocol",
        Supported,
        "proxy protocol: http (default), https or socks5",
    ),
    p("proxy_username", Supported, "proxy user name"),
    p("proxy_password", Supported, "proxy password"),
    p(
        "connection_timeout",
        Supported,
        "seconds one request to PagerDuty may take, more than 0 and at most 300 (default 10)",
    ),
    p(
        "http_timeout",
        Supported,
        "legacy name of connection_timeout",
    ),
    p(
        "verify_certificate",
        Supported,
        "1 (default) = verify the TLS certificate of PagerDuty and of an https proxy; 0 = do not",
    ),
    p(
        "ca_file",
        Supported,
        "PEM file of certificate authorities trusted in addition to the system's bundle (a proxy that inspects TLS)",
    ),
    // Logging.
    p(
        "log_level",
        Supported,
        "0 errors, 1 warnings (default), 2 information, 3 debug",
    ),
    p(
        "logfile",
        Supported,
        "log file (default /var/log/centreon-broker/stream-connector-pagerduty.log)",
    ),
    p("log_path", Supported, "legacy name of logfile"),
    p(
        "log_format",
        Supported,
        "native (default: 2023-11-14T22:13:20Z [WARNING] message, UTC) or centreon (Tue Nov 14 23:13:20 2023: WARNING: message, local time: the lines Centreon Broker writes for the Lua stream connectors)",
    ),
    // Buffering.
    p(
        "max_buffer_size",
        Supported,
        "events held before they are released to the sender, 1 to 10000 (default 1)",
    ),
    p(
        "max_all_queues_age",
        Supported,
        "seconds an event may wait in the buffer (default 5)",
    ),
    p(
        "max_buffer_age",
        Supported,
        "legacy name of max_all_queues_age",
    ),
    // What is considered.
    p(
        "accepted_categories",
        Supported,
        "comma list of Broker categories; only neb events become incidents (default neb)",
    ),
    p(
        "accepted_elements",
        Supported,
        "comma list among host_status, service_status, acknowledgement, downtime (default host_status,service_status); acknowledgements (see send_acknowledgements) and BBDO 3 adaptive statuses of accepted objects are always handled",
    ),
    p(
        "host_status",
        Supported,
        "comma list of host states that may open incidents: 0 UP, 1 DOWN, 2 UNREACHABLE (default 0,1,2)",
    ),
    p(
        "service_status",
        Supported,
        "comma list of service states that may open incidents: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (default 0,1,2,3)",
    ),
    p(
        "hard_only",
        Supported,
        "1 (default) = only HARD states open incidents",
    ),
    p(
        "acknowledged",
        Supported,
        "1 = acknowledged objects may open incidents (default 0)",
    ),
    p(
        "in_downtime",
        Supported,
        "1 = objects in downtime may open incidents (default 0)",
    ),
    p(
        "flapping",
        Supported,
        "1 = flapping objects may open incidents (default 0)",
    ),
    p(
        "skip_anon_events",
        Supported,
        "1 = drop events whose host or service the Broker cache cannot name (default 0: send them with their ids)",
    ),
    p(
        "send_acknowledgements",
        Supported,
        "1 (default) = a Centreon acknowledgement acknowledges the open incident, with its author and comment; 0 = never",
    ),
    p(
        "downtime_action",
        Supported,
        "suppress (default: no new incident in a downtime; a recovery still resolves) or resolve (also resolve the open incident when a downtime starts)",
    ),
    p(
        "suppress_services_of_down_hosts",
        Supported,
        "1 = service problems of a DOWN or UNREACHABLE host open no incident of their own: they are listed in the host's incident, and triggered if the host comes back UP while they still fail (default 0)",
    ),
    p(
        "dedup_key_prefix",
        Supported,
        "text prepended to every dedup_key, for several Centreon platforms on one routing key (default empty: the Lua connector's keys)",
    ),
    p(
        "outbox_path",
        Supported,
        "durable outbox database (default /var/lib/centreon-broker/centreon-pagerduty-<hash of the routing key>.db); one per output",
    ),
    p(
        "outbox_max_events",
        Supported,
        "pending events kept in the outbox before acknowledgements to Broker stop, 1 to 10000000 (default 100000)",
    ),
    p(
        "outbox_commit_delay_ms",
        Supported,
        "milliseconds a commit may wait for more events within a burst, 0 to 1000 (default 10): an event that finds the committer idle is committed at once; events arriving during a commit wait at most as long as that commit took, and never more than this; also how long delivered events wait to be deleted together",
    ),
    p(
        "rejected_max_events",
        Supported,
        "events rejected by PagerDuty kept for inspection, 1 to 1000000 (default 1000)",
    ),
    p(
        "stats_path",
        Supported,
        "statistics file, rewritten atomically (default: the outbox path with .stats.json)",
    ),
    p(
        "stats_interval",
        Supported,
        "seconds between two statistics files, 1 to 3600 (default 5)",
    ),
    p(
        "send_data_test",
        Supported,
        "1 = write each payload to the log instead of sending it (default 0)",
    ),
    p(
        "severity_host_down",
        Supported,
        "PagerDuty severity of a DOWN host: critical (default), error, warning or info",
    ),
    p(
        "severity_host_unreachable",
        Supported,
        "PagerDuty severity of an UNREACHABLE host (default critical)",
    ),
    p(
        "severity_service_warning",
        Supported,
        "PagerDuty severity of a WARNING service (default warning)",
    ),
    p(
        "severity_service_critical",
        Supported,
        "PagerDuty severity of a CRITICAL service (default critical)",
    ),
    p(
        "severity_service_unknown",
        Supported,
        "PagerDuty severity of an UNKNOWN service (default error)",
    ),
    p(
        "accepted_hostgroups",
        Supported,
        "comma list: only hosts in one of these host groups open incidents",
    ),
    p(
        "rejected_hostgroups",
        Supported,
        "comma list: hosts in one of these host groups open no incident",
    ),
    p(
        "accepted_servicegroups",
        Supported,
        "comma list: only services in one of these service groups open incidents",
    ),
    p(
        "rejected_servicegroups",
        Supported,
        "comma list: services in one of these service groups open no incident",
    ),
    p(
        "accepted_pollers",
        Supported,
        "comma list: only objects monitored by one of these pollers open incidents",
    ),
    p(
        "rejected_pollers",
        Supported,
        "comma list: objects monitored by one of these pollers open no incident",
    ),
    p(
        "host_severity_threshold",
        Supported,
        "integer: a host opens incidents when 'threshold OPERATOR host severity' holds",
    ),
    p(
        "host_severity_operator",
        Supported,
        "==, !=, <, <=, > or >= (default >=), see host_severity_threshold",
    ),
    p(
        "service_severity_threshold",
        Supported,
        "integer: a service opens incidents when 'threshold OPERATOR service severity' holds",
    ),
    p(
        "service_severity_operator",
        Supported,
        "==, !=, <, <=, > or >= (default >=), see service_severity_threshold",
    ),
    // Accepted, to be honoured later.
    p(
        "accepted_hosts",
        Supported,
        "Lua pattern a host name must match to open incidents (string.match, as the Lua library; default: all)",
    ),
    p(
        "accepted_services",
        Supported,
        "Lua pattern a service description must match to open incidents (default: all)",
    ),
    p(
        "accepted_hosts_enable_split_pattern",
        Supported,
        "1 = accepted_hosts is a list of patterns (default 0)",
    ),
    p(
        "accepted_hosts_split_character",
        Supported,
        "separator characters of the accepted_hosts list (default ,)",
    ),
    p(
        "accepted_services_enable_split_pattern",
        Supported,
        "1 = accepted_services is a list of patterns (default 0)",
    ),
    p(
        "accepted_services_split_character",
        Supported,
        "separator characters of the accepted_services list (default ,)",
    ),
    p(
        "skip_nil_id",
        Supported,
        "1 (default) = an event without host_id (or a service status without service_id) is dropped, with a line at log level 2; 0 = it is logged as an error (it cannot be sent: its dedup_key needs the ids)",
    ),
    p(
        "enable_host_status_dedup",
        Supported,
        "1 (default) = a host problem already sent is not sent again; 0 = every status of a host in a problem state is sent again (trigger, same dedup_key: PagerDuty adds it to the incident)",
    ),
    p(
        "enable_service_status_dedup",
        Supported,
        "1 (default) = a service problem already sent is not sent again; 0 = every status of a service in a problem state is sent again",
    ),
    p(
        "output_size_limit",
        Supported,
        "at most this many characters of plugin output in an event, first line and long output together, 1 to 1000000 (default: no limit but PagerDuty's)",
    ),
    p(
        "use_long_output",
        Supported,
        "1 (default) = the long output is sent (custom_details.LongOutput); 0 = the first line only",
    ),
    p(
        "remove_line_break_in_output",
        Supported,
        "1 = the line breaks of the output sent are replaced with output_line_break_replacement_character (default 0: kept)",
    ),
    p(
        "output_line_break_replacement_character",
        Supported,
        "what replaces a line break with remove_line_break_in_output=1 (default a space)",
    ),
    p(
        "format_file",
        Supported,
        "JSON file of templates keyed by <category>_<element> (neb_service_status, neb_host_status, neb_acknowledgement, neb_pb_...) replacing the built-in events, with the Lua library's macros ({output}, {cache.host.name}, {state_scstate}...); checked at start",
    ),
    p(
        "log_curl_commands",
        Supported,
        "1 = each request to PagerDuty is also logged (log level 1) as a ready-to-run curl command; the routing key and the proxy password are masked (default 0)",
    ),
    // Known names that make no sense here.
    p("ba_status", Ignored, BAM),
    p("accepted_bvs", Ignored, BAM),
    p("rejected_bvs", Ignored, BAM),
    p("enable_bam_host", Ignored, BAM),
    p(
        "ack_host_status",
        Ignored,
        "ignored: acknowledgements are not filtered by state",
    ),
    p(
        "ack_service_status",
        Ignored,
        "ignored: acknowledgements are not filtered by state",
    ),
    p(
        "dt_host_status",
        Ignored,
        "ignored: downtimes are not filtered by state",
    ),
    p(
        "dt_service_status",
        Ignored,
        "ignored: downtimes are not filtered by state",
    ),
    p(
        "accepted_authors",
        Ignored,
        "ignored: acknowledgements and downtimes are not filtered by author",
    ),
    p(
        "rejected_authors",
        Ignored,
        "ignored: acknowledgements and downtimes are not filtered by author",
    ),
    p("accepted_metrics", Ignored, METRICS),
    p("metric_name_regex", Ignored, METRICS),
    p("metric_replacement_character", Ignored, METRICS),
    p(
        "max_stored_events",
        Ignored,
        "ignored: workaround for an old Broker issue; buffering follows max_buffer_size",
    ),
    p(
        "send_mixed_events",
        Ignored,
        "ignored: PagerDuty takes one event per request",
    ),
    p(
        "allow_insecure_connection",
        Ignored,
        "ignored: use verify_certificate (1 verifies TLS certificates, 0 does not)",
    ),
    p(
        "custom_code_file",
        Ignored,
        "ignored: Lua custom code cannot run in the native connector",
    ),
    p("local_time_diff_from_utc", Ignored, TIME),
    p("timestamp_conversion_format", Ignored, TIME),
    p("timezone", Ignored, TIME),
    p("date_format", Ignored, TIME),
    p("enable_broker_cache_counter_check", Ignored, CENTREON_DB),
    p("centreon_db_name", Ignored, CENTREON_DB),
    p("centreon_db_user", Ignored, CENTREON_DB),
    p("centreon_db_password", Ignored, CENTREON_DB),
    p("centreon_db_address", Ignored, CENTREON_DB),
    p("centreon_db_port", Ignored, CENTREON_DB),
    p(
        "filter_type",
        Ignored,
        "ignored: legacy setting without effect; use accepted_elements",
    ),
];

/// Every parameter name we know: supported ones (legacy spellings included) and known ones
/// that are ignored, with the reason.
pub fn known_parameters() -> &'static [ParamInfo] {
    PARAMS
}

/// The known parameter name closest to an unknown `name` (a typo, another case, a dash for
/// an underscore): at most 2 edits apart, or a third of the name's length for long names.
pub fn nearest_parameter(name: &str) -> Option<&'static str> {
    let name = name.trim().to_ascii_lowercase().replace('-', "_");
    let limit = (name.chars().count() / 3).clamp(2, 4);
    PARAMS
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
    PARAMS.iter().find(|i| i.name == name)
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

const DEFAULT_CENTREON_URL: &str = "http://set.pdy_centreon_url.parameter";
const DEFAULT_ENDPOINT: &str = "https://events.pagerduty.com/v2/enqueue";
const DEFAULT_CLIENT: &str = "Centreon Stream Connector";
const DEFAULT_LOG_PATH: &str = "/var/log/centreon-broker/stream-connector-pagerduty.log";
const DEFAULT_TIMEOUT_SECS: u64 = 10;
const MAX_TIMEOUT_SECS: f64 = 300.0;
const DEFAULT_BUFFER_AGE_SECS: u64 = 5;
const DEFAULT_OUTBOX_DIR: &str = "/var/lib/centreon-broker";

/// The default outbox of a routing key: a file named by a hash of the key (never the key).
fn default_outbox_path(key: &Secret) -> PathBuf {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.expose().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    PathBuf::from(DEFAULT_OUTBOX_DIR).join(format!("centreon-pagerduty-{h:016x}.db"))
}
/// Upper bound of `max_buffer_age`: a day (also keeps `Duration::from_secs_f64` in range).
const MAX_BUFFER_AGE_SECS: f64 = 86_400.0;

/// Parameters whose values are never shown in messages.
const SECRET_PARAMS: &[&str] = &["pdy_routing_key", "proxy_password", "http_proxy_string"];

/// One parameter as the user wrote it.
struct Entry {
    /// The name as written (untrimmed), for messages.
    written: String,
    value: ParamValue,
    /// The value must not be shown: a secret parameter, a value holding a secret given
    /// elsewhere (a routing key pasted in the wrong parameter), or URL credentials.
    hidden: bool,
}

impl Entry {
    fn err(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            parameter: self.written.clone(),
            message: message.into(),
        }
    }

    /// What a message says of the value, for every parameter (Broker's log, the command
    /// line, `check-config`): messages say what is expected and never echo text, which may
    /// be a secret pasted in the wrong place. A number is shown; text only by its length;
    /// nothing of a secret parameter's value.
    fn shown(&self) -> String {
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
    fn path_shown(&self, path: &str) -> String {
        if self.hidden {
            "(not shown)".to_string()
        } else {
            format!("{:?}", unless_key(path))
        }
    }

    /// A string setting (numbers are taken as written; booleans refused). Trimmed.
    fn text(&self) -> Result<String, ConfigError> {
        match &self.value {
            ParamValue::Str(s) => Ok(s.trim().to_string()),
            ParamValue::Int(i) => Ok(i.to_string()),
            ParamValue::Float(f) => Ok(f.to_string()),
            ParamValue::Bool(_) => Err(self.err("expected a string, got a boolean")),
        }
    }

    /// 1/0, true/false, yes/no (strings in any case, trimmed).
    fn boolean(&self) -> Result<bool, ConfigError> {
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
    fn int_value(&self) -> Option<i64> {
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

    fn integer(&self, min: i64, max: i64) -> Result<i64, ConfigError> {
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
    fn list(&self) -> Result<Vec<String>, ConfigError> {
        let mut out: Vec<String> = Vec::new();
        for item in self.text()?.split(',').map(str::trim) {
            if !item.is_empty() && !out.iter().any(|o| o == item) {
                out.push(item.to_string());
            }
        }
        Ok(out)
    }

    /// A comma list of states from 0 to `max`, sorted.
    fn states(&self, max: i64, names: &str) -> Result<Vec<i64>, ConfigError> {
        let bad = || {
            self.err(format!(
                "expected a comma separated list of states from 0 to {max} ({names}), got {}",
                self.shown()
            ))
        };
        let mut out = Vec::new();
        for item in self.list()? {
            let state = item
                .parse::<i64>()
                .ok()
                .filter(|s| (0..=max).contains(s))
                .ok_or_else(bad)?;
            out.push(state);
        }
        if out.is_empty() {
            return Err(bad());
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

fn float_to_int(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

fn is_blank(v: &ParamValue) -> bool {
    matches!(v, ParamValue::Str(s) if s.trim().is_empty())
}

/// The parameters not consumed yet, by trimmed name.
struct Reader {
    entries: BTreeMap<String, Entry>,
    warnings: Vec<Warning>,
}

impl Reader {
    fn new(params: &[(String, ParamValue)]) -> Reader {
        let as_text = |v: &ParamValue| match v {
            ParamValue::Str(s) => s.trim().to_string(),
            ParamValue::Int(i) => i.to_string(),
            ParamValue::Float(f) => f.to_string(),
            ParamValue::Bool(_) => String::new(),
        };
        // Secret values (long enough to be recognised), to hide wherever they appear.
        let secrets: Vec<String> = params
            .iter()
            .filter(|(name, _)| SECRET_PARAMS.contains(&name.trim()))
            .map(|(_, v)| as_text(v))
            .filter(|v| v.chars().count() >= 6)
            .collect();
        let mut entries = BTreeMap::new();
        let mut warnings = Vec::new();
        for (name, value) in params {
            let key = name.trim().to_string();
            let text = as_text(value);
            let hidden = SECRET_PARAMS.contains(&key.as_str())
                || secrets.iter().any(|s| text.contains(s.as_str()))
                || (text.contains('@') && (text.contains("://") || key.starts_with("proxy_")));
            let entry = Entry {
                written: name.clone(),
                value: value.clone(),
                hidden,
            };
            if entries.insert(key, entry).is_some() {
                warnings.push(Warning(format!(
                    "parameter '{name}' is set more than once: the last value is used"
                )));
            }
        }
        Reader { entries, warnings }
    }

    fn warn(&mut self, msg: impl Into<String>) {
        self.warnings.push(Warning(msg.into()));
    }

    /// Removes and returns a parameter; an empty (or blank) string counts as not set.
    fn take(&mut self, name: &str) -> Option<Entry> {
        self.entries.remove(name).filter(|e| !is_blank(&e.value))
    }

    /// Reads a setting that has a certified and a legacy name: both are checked, the
    /// certified one wins (with a warning) when both are set.
    fn pick<T>(
        &mut self,
        certified: &str,
        legacy: &str,
        parse: impl Fn(&Entry) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        let new = self.take(certified);
        let old = self.take(legacy);
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

    fn bool_or(&mut self, name: &str, default: bool) -> Result<bool, ConfigError> {
        self.take(name).map_or(Ok(default), |e| e.boolean())
    }

    fn text_or(&mut self, name: &str, default: &str) -> Result<String, ConfigError> {
        self.take(name)
            .map_or(Ok(default.to_string()), |e| e.text())
    }

    fn severity_or(&mut self, name: &str, default: Severity) -> Result<Severity, ConfigError> {
        let Some(e) = self.take(name) else {
            return Ok(default);
        };
        Severity::parse(&e.text()?).ok_or_else(|| {
            e.err(format!(
                "expected critical, error, warning or info, got {}",
                e.shown()
            ))
        })
    }

    /// `accepted_hosts`-style Lua patterns: one pattern, or with `split` set a list cut at
    /// any character of `separator` (the library's `sc_common:split`). A pattern Lua would
    /// refuse is an error naming the parameter, with Lua's message.
    fn patterns(
        &mut self,
        name: &str,
        split: &str,
        separator: &str,
    ) -> Result<Vec<Pattern>, ConfigError> {
        let split = self.bool_or(split, false)?;
        let separator_name = separator;
        let separator = self.text_or(separator_name, ",")?;
        let Some(e) = self.take(name) else {
            return Ok(Vec::new());
        };
        let text = e.text()?;
        let texts = if split {
            luapattern::split(&text, &separator).map_err(|er| {
                e.err(format!(
                    "cannot be split at the separator of '{separator_name}': {er}"
                ))
            })?
        } else {
            vec![text]
        };
        let several = texts.len() > 1;
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Pattern::new(t).map_err(|er| {
                    let which = if several {
                        format!("pattern {} of {}", i + 1, texts.len())
                    } else {
                        "the pattern".to_string()
                    };
                    e.err(format!("{which} is not a valid Lua pattern: {er}"))
                })
            })
            .collect()
    }

    /// An `accepted_X`/`rejected_X` pair of name lists; setting both is an error.
    fn list_pair(
        &mut self,
        accepted: &str,
        rejected: &str,
    ) -> Result<(Vec<String>, Vec<String>), ConfigError> {
        let a = self.take(accepted);
        let r = self.take(rejected);
        if let (Some(a), Some(r)) = (&a, &r) {
            return Err(a.err(format!(
                "cannot be used together with '{}': set one of them",
                r.written
            )));
        }
        let a = a.map_or(Ok(Vec::new()), |e| e.list())?;
        let r = r.map_or(Ok(Vec::new()), |e| e.list())?;
        Ok((a, r))
    }

    fn severity_filter(
        &mut self,
        threshold: &str,
        operator: &str,
    ) -> Result<Option<SeverityFilter>, ConfigError> {
        let t = self.take(threshold);
        let o = self.take(operator);
        let op = match &o {
            None => CompareOp::Ge,
            Some(e) => match e.text()?.as_str() {
                "==" => CompareOp::Eq,
                // `~=` is Lua's spelling, the only one the Lua library understood.
                "!=" | "~=" => CompareOp::Ne,
                "<" => CompareOp::Lt,
                "<=" => CompareOp::Le,
                ">" => CompareOp::Gt,
                ">=" => CompareOp::Ge,
                _ => {
                    return Err(e.err(format!(
                        "expected one of ==, !=, <, <=, >, >=, got {}",
                        e.shown()
                    )));
                }
            },
        };
        match (t, o) {
            (Some(t), _) => {
                let threshold = t
                    .int_value()
                    .ok_or_else(|| t.err(format!("expected an integer, got {}", t.shown())))?;
                Ok(Some(SeverityFilter { threshold, op }))
            }
            (None, Some(o)) => {
                self.warn(format!(
                    "parameter '{}' has no effect without '{threshold}'",
                    o.written
                ));
                Ok(None)
            }
            (None, None) => Ok(None),
        }
    }

    /// Warnings for what is left: ignored, unknown.
    fn finish(mut self) -> Vec<Warning> {
        let rest = std::mem::take(&mut self.entries);
        for (name, e) in rest {
            if is_blank(&e.value) {
                continue;
            }
            let msg = match param_info(&name) {
                Some(i) if i.status == Ignored => format!("parameter '{}' {}", e.written, i.doc),
                // Supported names are all consumed; kept for safety.
                Some(_) => continue,
                None => match nearest_parameter(&name) {
                    Some(near) => format!(
                        "unknown parameter '{}' (ignored; did you mean '{near}'?)",
                        e.written
                    ),
                    None => format!("unknown parameter '{}' (ignored)", e.written),
                },
            };
            self.warnings.push(Warning(msg));
        }
        self.warnings
    }
}

/// The parts of an `scheme://[user[:password]@]host[:port][/rest]` URL.
struct Url<'a> {
    scheme: String,
    userinfo: Option<&'a str>,
    host: &'a str,
    port: Option<u16>,
    /// Path, query and fragment ("" when none).
    rest: &'a str,
}

/// A small URL parser (no dependency): enough to check endpoints and proxies.
/// The error never contains the URL.
fn parse_url(s: &str) -> Result<Url<'_>, &'static str> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a URL must not contain spaces");
    }
    let (scheme, after) = s.split_once("://").ok_or("expected scheme://host")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err("expected scheme://host");
    }
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = if hostport.starts_with('[') {
        let close = hostport.find(']').ok_or("unterminated IPv6 address")?;
        let (h, tail) = hostport.split_at(close + 1);
        if !h[1..h.len() - 1]
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            || h.len() < 3
        {
            return Err("invalid IPv6 address");
        }
        match tail {
            "" => (h, None),
            t => (h, Some(t.strip_prefix(':').ok_or("invalid port")?)),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if !host.starts_with('[')
        && (host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err("expected a host name");
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("invalid port (expected 1 to 65535)")?,
        ),
    };
    Ok(Url {
        scheme: scheme.to_ascii_lowercase(),
        userinfo,
        host,
        port,
        rest,
    })
}

/// An http(s) URL with a host and no credentials; returned trimmed.
fn http_url(e: &Entry) -> Result<String, ConfigError> {
    let s = e.text()?;
    let bad = |why: &str| {
        e.err(format!(
            "expected an http:// or https:// URL with a host ({why}), got {}",
            e.shown()
        ))
    };
    let url = parse_url(&s).map_err(bad)?;
    if url.scheme != "http" && url.scheme != "https" {
        return Err(bad("unsupported scheme"));
    }
    if url.userinfo.is_some() {
        return Err(bad("credentials are not allowed in this URL"));
    }
    Ok(s)
}

/// Percent-decoding of the user information of a proxy URL.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const PROXY_SCHEMES: &str = "http, https or socks5";

fn proxy_scheme_ok(s: &str) -> bool {
    matches!(s, "http" | "https" | "socks5")
}

/// Port curl used when a proxy string has none (1080, or 443 for an https proxy).
fn default_proxy_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 1080 }
}

fn proxy_url(scheme: &str, host: &str, port: u16) -> String {
    format!("{scheme}://{host}:{port}")
}

/// `http_proxy_string`: `[scheme://][user[:password]@]host[:port][/]`. Its value may hold a
/// password: messages never show it.
fn legacy_proxy(e: &Entry) -> Result<Proxy, ConfigError> {
    let raw = e.text()?;
    let bad = |why: &str| {
        e.err(format!(
            "expected a proxy URL like http://proxy:3128 or http://user:password@proxy:3128 ({why})"
        ))
    };
    let with_scheme = if raw.contains("://") {
        raw.clone()
    } else {
        format!("http://{raw}")
    };
    let url = parse_url(&with_scheme).map_err(bad)?;
    if !proxy_scheme_ok(&url.scheme) {
        return Err(bad(&format!("the scheme must be {PROXY_SCHEMES}")));
    }
    if !url.rest.is_empty() && url.rest != "/" {
        return Err(bad("a proxy URL has no path"));
    }
    let (username, password) = match url.userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = match u.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (u, None),
            };
            let user = percent_decode(user);
            if user.is_empty() {
                return Err(bad("empty user name"));
            }
            let pass = pass
                .filter(|p| !p.is_empty())
                .map(|p| Secret::new(percent_decode(p)));
            (Some(user), pass)
        }
    };
    let port = url.port.unwrap_or_else(|| default_proxy_port(&url.scheme));
    Ok(Proxy {
        url: proxy_url(&url.scheme, url.host, port),
        username,
        password,
    })
}

/// Both proxy styles; `None` when no proxy is configured.
fn read_proxy(r: &mut Reader) -> Result<Option<Proxy>, ConfigError> {
    let legacy = r.take("http_proxy_string");
    let address = r.take("proxy_address");
    let port = r.take("proxy_port");
    let protocol = r.take("proxy_protocol");
    let username = r.take("proxy_username");
    let password = r.take("proxy_password");

    if let Some(l) = &legacy {
        let certified = [&address, &port, &username, &password];
        if let Some(other) = certified.into_iter().flatten().next() {
            return Err(l.err(format!(
                "cannot be used together with '{}': set either http_proxy_string or \
                 proxy_address/proxy_port/proxy_username/proxy_password",
                other.written
            )));
        }
        if let Some(p) = &protocol {
            r.warn(format!(
                "parameter '{}' is ignored: the scheme of 'http_proxy_string' is used",
                p.written
            ));
        }
        return legacy_proxy(l).map(Some);
    }

    let Some(address) = address else {
        if let Some(e) = port.iter().chain(&username).chain(&password).next() {
            return Err(e.err("is set but 'proxy_address' is not"));
        }
        if let Some(p) = &protocol {
            r.warn(format!(
                "parameter '{}' has no effect without 'proxy_address'",
                p.written
            ));
        }
        return Ok(None);
    };

    let protocol = match &protocol {
        None => None,
        Some(e) => {
            let s = e.text()?.to_ascii_lowercase();
            if !proxy_scheme_ok(&s) {
                return Err(e.err(format!("expected {PROXY_SCHEMES}, got {}", e.shown())));
            }
            Some((s, e))
        }
    };
    let text = address.text()?;
    let bad = |why: &str| {
        address.err(format!(
            "expected a proxy host name or address ({why}), got {}",
            address.shown()
        ))
    };
    // Like curl, the address may carry a scheme and a port.
    let with_scheme = if text.contains("://") {
        text.clone()
    } else {
        format!(
            "{}://{text}",
            protocol.as_ref().map_or("http", |p| p.0.as_str())
        )
    };
    let url = parse_url(&with_scheme).map_err(bad)?;
    if url.userinfo.is_some() {
        return Err(
            address.err("must not contain credentials: use proxy_username and proxy_password")
        );
    }
    if !url.rest.is_empty() && url.rest != "/" {
        return Err(bad("a proxy address has no path"));
    }
    if !proxy_scheme_ok(&url.scheme) {
        return Err(bad(&format!("the scheme must be {PROXY_SCHEMES}")));
    }
    if let Some((p, e)) = &protocol
        && *p != url.scheme
    {
        return Err(e.err(format!(
            "conflicts with the scheme written in '{}'",
            address.written
        )));
    }
    let port = match (&port, url.port) {
        (Some(e), Some(_)) => {
            return Err(e.err(format!(
                "the port is also written in '{}': set it in one place",
                address.written
            )));
        }
        (Some(e), None) => e.integer(1, 65535)? as u16,
        (None, Some(p)) => p,
        (None, None) => {
            return Err(ConfigError {
                parameter: "proxy_port".into(),
                message: format!("is required when '{}' is set", address.written),
            });
        }
    };
    let username = username.map(|e| e.text()).transpose()?;
    let password = match password {
        None => None,
        Some(e) => {
            if username.is_none() {
                return Err(e.err("is set but 'proxy_username' is not"));
            }
            // Passwords are kept exactly as written (not trimmed).
            Some(Secret::new(match &e.value {
                ParamValue::Str(s) => s.clone(),
                _ => e.text()?,
            }))
        }
    };
    Ok(Some(Proxy {
        url: proxy_url(&url.scheme, url.host, port),
        username,
        password,
    }))
}

/// The environment variable the routing key is read from when no parameter gives it (for
/// Broker: an `Environment=` line in a systemd drop-in of `centreon-broker`/`cbd`).
pub const ROUTING_KEY_ENV: &str = "PAGERDUTY_ROUTING_KEY";

/// Checks a routing key: 32 letters or digits. The message never shows the key.
pub fn routing_key(text: &str) -> Result<Secret, String> {
    let n = text.chars().count();
    if n != 32 {
        return Err(format!(
            "expected 32 alphanumeric characters (got {n} characters)"
        ));
    }
    let other = text.chars().filter(|c| !c.is_ascii_alphanumeric()).count();
    if other > 0 {
        return Err(format!(
            "expected 32 alphanumeric characters (got {other} characters that are not letters or digits)"
        ));
    }
    Ok(Secret::new(text))
}

/// The routing key from `pdy_routing_key` (a Broker `password` parameter), from the file
/// `pdy_routing_key_file`, or from the environment variable [`ROUTING_KEY_ENV`].
fn read_routing_key(r: &mut Reader) -> Result<Secret, ConfigError> {
    match (r.take("pdy_routing_key"), r.take("pdy_routing_key_file")) {
        (Some(e), Some(f)) => Err(e.err(format!(
            "cannot be used together with '{}': set one of them",
            f.written
        ))),
        (Some(e), None) => routing_key(&e.text()?).map_err(|m| e.err(m)),
        (None, Some(f)) => {
            let path = f.text()?;
            let shown = unless_key(&path);
            let text =
                files::read_small(Path::new(&path), files::KEY_FILE_MAX_BYTES).map_err(|e| {
                    let hint = if e.is_io() {
                        " (it must be readable by the centreon-broker user)"
                    } else {
                        ""
                    };
                    f.err(format!("{}{hint}", e.about(&shown)))
                })?;
            routing_key(text.trim()).map_err(|m| f.err(format!("{shown}: {m}")))
        }
        (None, None) => match std::env::var(ROUTING_KEY_ENV) {
            Ok(v) if !v.trim().is_empty() => routing_key(v.trim()).map_err(|m| ConfigError {
                parameter: "pdy_routing_key".into(),
                message: format!("from the environment variable {ROUTING_KEY_ENV}: {m}"),
            }),
            _ => Err(ConfigError {
                parameter: "pdy_routing_key".into(),
                message: format!(
                    "is required: the 32-character integration key of a PagerDuty Events API \
                     v2 integration (or pdy_routing_key_file, or the environment variable \
                     {ROUTING_KEY_ENV})"
                ),
            }),
        },
    }
}

/// The BBDO 2 and BBDO 3 `_type`s of an element name we handle (the table of event types).
fn handled_element(name: &str) -> Option<Vec<u32>> {
    crate::event::EventType::selected_by(name)
}

/// Largest `output_size_limit`, in characters (PagerDuty takes 512 KB in all).
const MAX_OUTPUT_SIZE_LIMIT: i64 = 1_000_000;

/// `use_long_output`, `output_size_limit`, `remove_line_break_in_output` and
/// `output_line_break_replacement_character` (see [`crate::payload::output`]).
fn read_output_options(r: &mut Reader) -> Result<OutputOptions, ConfigError> {
    let long = r.bool_or("use_long_output", true)?;
    let size_limit = r
        .take("output_size_limit")
        .map(|e| e.integer(1, MAX_OUTPUT_SIZE_LIMIT))
        .transpose()?
        .map(|n| n as usize);
    let remove = r.bool_or("remove_line_break_in_output", false)?;
    let replacement = match r.take("output_line_break_replacement_character") {
        None => None,
        // Kept as written (" | " is not trimmed); a blank value is the default space.
        Some(Entry {
            value: ParamValue::Str(s),
            ..
        }) => Some((s, remove)),
        Some(e) => Some((e.text()?, remove)),
    };
    let line_break = match replacement {
        Some((text, true)) => Some(text),
        Some((_, false)) => {
            r.warn(
                "parameter 'output_line_break_replacement_character' has no effect without \
                 remove_line_break_in_output=1",
            );
            None
        }
        None => remove.then(|| " ".to_string()),
    };
    Ok(OutputOptions {
        long,
        size_limit,
        line_break,
    })
}

/// Longest `dedup_key_prefix`: the ids after it always fit PagerDuty's 255 characters.
const MAX_DEDUP_KEY_PREFIX_CHARS: usize = 200;

/// Event types handled whenever the status types they qualify are: adaptive statuses (BBDO 3
/// acknowledgement and downtime changes) and, with `send_acknowledgements`, acknowledgements.
fn implied_types(types: &[u32], send_acknowledgements: bool) -> Vec<u32> {
    use crate::event::{CATEGORY_NEB, element::*, event_type};
    let has = |el| types.contains(&event_type(CATEGORY_NEB, el));
    let mut implied = Vec::new();
    if has(PB_HOST_STATUS) {
        implied.push(PB_ADAPTIVE_HOST_STATUS);
    }
    if has(PB_SERVICE_STATUS) {
        implied.push(PB_ADAPTIVE_SERVICE_STATUS);
    }
    if send_acknowledgements && (has(HOST_STATUS) || has(SERVICE_STATUS)) {
        implied.extend([ACKNOWLEDGEMENT, PB_ACKNOWLEDGEMENT]);
    }
    implied
        .into_iter()
        .map(|el| event_type(CATEGORY_NEB, el))
        .collect()
}

fn read_accepted_types(r: &mut Reader) -> Result<Vec<u32>, ConfigError> {
    use crate::event::{KNOWN_CATEGORIES, KNOWN_ELEMENTS};
    if let Some(e) = r.take("accepted_categories") {
        let mut neb = false;
        for (i, c) in e.list()?.into_iter().enumerate() {
            let lc = c.to_ascii_lowercase();
            if lc == "neb" {
                neb = true;
            } else if KNOWN_CATEGORIES.contains(&lc.as_str()) {
                r.warn(format!(
                    "parameter '{}': category {c:?} ignored: only neb events can become incidents",
                    e.written
                ));
            } else {
                return Err(e.err(format!(
                    "item {} is not a known category (expected neb; known categories: {})",
                    i + 1,
                    KNOWN_CATEGORIES.join(", ")
                )));
            }
        }
        if !neb {
            return Err(e.err("must include neb (the only category this connector handles)"));
        }
    }
    let mut types = Vec::new();
    match r.take("accepted_elements") {
        None => {
            for name in ["host_status", "service_status"] {
                types.extend(handled_element(name).unwrap_or_default());
            }
        }
        Some(e) => {
            for (i, name) in e.list()?.into_iter().enumerate() {
                let lc = name.to_ascii_lowercase();
                if let Some(elements) = handled_element(&lc) {
                    types.extend(elements);
                } else if KNOWN_ELEMENTS.contains(&lc.as_str()) {
                    r.warn(format!(
                        "parameter '{}': element {name:?} ignored: this connector handles only \
                         host_status, service_status, acknowledgement and downtime",
                        e.written
                    ));
                } else {
                    return Err(e.err(format!(
                        "item {} is not a known element (expected host_status, \
                         service_status, acknowledgement or downtime)",
                        i + 1
                    )));
                }
            }
            if types.is_empty() {
                return Err(e.err(
                    "none of the elements can become incidents (expected host_status, \
                     service_status, acknowledgement or downtime)",
                ));
            }
        }
    }
    types.sort_unstable();
    types.dedup();
    Ok(types)
}

impl Config {
    /// Is a repeated problem status of this kind of object left unsent
    /// (`enable_host_status_dedup` / `enable_service_status_dedup`)?
    pub fn dedup(&self, kind: crate::event::Kind) -> bool {
        match kind {
            crate::event::Kind::Host => self.host_status_dedup,
            crate::event::Kind::Service => self.service_status_dedup,
        }
    }

    /// Parses Broker's parameters (the `conf` table of `init`). Order-independent; when a
    /// name appears twice the last value wins. An empty string counts as "not set".
    /// Returns the config and warnings (unknown, ignored or not-yet-honoured parameters...).
    /// Errors name the parameter as written and never contain a secret.
    pub fn from_params(
        params: &[(String, ParamValue)],
    ) -> Result<(Config, Vec<Warning>), ConfigError> {
        let mut r = Reader::new(params);
        let routing_key = read_routing_key(&mut r)?;
        let centreon_url = match r.take("pdy_centreon_url") {
            None => DEFAULT_CENTREON_URL.to_string(),
            Some(e) => http_url(&e)?.trim_end_matches('/').to_string(),
        };
        let source = r.take("pdy_source").map(|e| e.text()).transpose()?;
        let endpoint = match r.take("http_server_url") {
            None => DEFAULT_ENDPOINT.to_string(),
            Some(e) => http_url(&e)?,
        };
        let client = r.text_or("client", DEFAULT_CLIENT)?;
        let proxy = read_proxy(&mut r)?;
        let timeout = r
            .pick("connection_timeout", "http_timeout", |e| {
                e.seconds(MAX_TIMEOUT_SECS)
            })?
            .unwrap_or(Duration::from_secs(DEFAULT_TIMEOUT_SECS));
        let verify_certificate = r.bool_or("verify_certificate", true)?;
        let ca_file = r
            .take("ca_file")
            .map(|e| e.text())
            .transpose()?
            .map(PathBuf::from);
        let log_level = r.take("log_level").map_or(Ok(1), |e| e.integer(0, 3))? as u8;
        let log_path = r
            .pick("logfile", "log_path", |e| e.text())?
            .map_or_else(|| PathBuf::from(DEFAULT_LOG_PATH), PathBuf::from);
        let log_format = match r.take("log_format") {
            None => crate::log::LogFormat::Native,
            Some(e) => crate::log::LogFormat::parse(&e.text()?)
                .ok_or_else(|| e.err(format!("expected native or centreon, got {}", e.shown())))?,
        };
        let max_buffer_size = r
            .take("max_buffer_size")
            .map_or(Ok(1), |e| e.integer(1, 10_000))? as usize;
        let max_buffer_age = r
            .pick("max_all_queues_age", "max_buffer_age", |e| {
                e.seconds(MAX_BUFFER_AGE_SECS)
            })?
            .unwrap_or(Duration::from_secs(DEFAULT_BUFFER_AGE_SECS));
        let accepted_types = read_accepted_types(&mut r)?;
        let host_status = match r.take("host_status") {
            None => vec![0, 1, 2],
            Some(e) => e.states(2, "0 UP, 1 DOWN, 2 UNREACHABLE")?,
        };
        let service_status = match r.take("service_status") {
            None => vec![0, 1, 2, 3],
            Some(e) => e.states(3, "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN")?,
        };
        let hard_only = r.bool_or("hard_only", true)?;
        let acknowledged = r.bool_or("acknowledged", false)?;
        let in_downtime = r.bool_or("in_downtime", false)?;
        let flapping = r.bool_or("flapping", false)?;
        let skip_anon_events = r.bool_or("skip_anon_events", false)?;
        let skip_nil_id = r.bool_or("skip_nil_id", true)?;
        let output = read_output_options(&mut r)?;
        let log_curl_commands = r.bool_or("log_curl_commands", false)?;
        let host_status_dedup = r.bool_or("enable_host_status_dedup", true)?;
        let service_status_dedup = r.bool_or("enable_service_status_dedup", true)?;
        let send_acknowledgements = r.bool_or("send_acknowledgements", true)?;
        let downtime_action = match r.take("downtime_action") {
            None => DowntimeAction::Suppress,
            Some(e) => match e.text()?.trim().to_ascii_lowercase().as_str() {
                "suppress" => DowntimeAction::Suppress,
                "resolve" if in_downtime => {
                    return Err(e.err(
                        "resolve cannot be used with in_downtime=1 (objects in downtime open \
                         incidents): set one of them"
                            .to_string(),
                    ));
                }
                "resolve" => DowntimeAction::Resolve,
                _ => {
                    return Err(e.err(format!("expected suppress or resolve, got {}", e.shown())));
                }
            },
        };
        let suppress_services_of_down_hosts =
            r.bool_or("suppress_services_of_down_hosts", false)?;
        let dedup_key_prefix = match r.take("dedup_key_prefix") {
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
        let mut accepted_types = accepted_types;
        accepted_types.extend(implied_types(&accepted_types, send_acknowledgements));
        accepted_types.sort_unstable();
        accepted_types.dedup();
        let send_data_test = r.bool_or("send_data_test", false)?;
        let d = SeverityMap::default();
        let severities = SeverityMap {
            host_down: r.severity_or("severity_host_down", d.host_down)?,
            host_unreachable: r.severity_or("severity_host_unreachable", d.host_unreachable)?,
            service_warning: r.severity_or("severity_service_warning", d.service_warning)?,
            service_critical: r.severity_or("severity_service_critical", d.service_critical)?,
            service_unknown: r.severity_or("severity_service_unknown", d.service_unknown)?,
        };
        let (accepted_hostgroups, rejected_hostgroups) =
            r.list_pair("accepted_hostgroups", "rejected_hostgroups")?;
        let (accepted_servicegroups, rejected_servicegroups) =
            r.list_pair("accepted_servicegroups", "rejected_servicegroups")?;
        let accepted_hosts = r.patterns(
            "accepted_hosts",
            "accepted_hosts_enable_split_pattern",
            "accepted_hosts_split_character",
        )?;
        let accepted_services = r.patterns(
            "accepted_services",
            "accepted_services_enable_split_pattern",
            "accepted_services_split_character",
        )?;
        let (accepted_pollers, rejected_pollers) =
            r.list_pair("accepted_pollers", "rejected_pollers")?;
        let host_severity_filter =
            r.severity_filter("host_severity_threshold", "host_severity_operator")?;
        let service_severity_filter =
            r.severity_filter("service_severity_threshold", "service_severity_operator")?;
        let outbox_path = r
            .take("outbox_path")
            .map(|e| e.text())
            .transpose()?
            .map_or_else(|| default_outbox_path(&routing_key), PathBuf::from);
        let outbox_max_events =
            r.take("outbox_max_events")
                .map_or(Ok(100_000), |e| e.integer(1, 10_000_000))? as u64;
        let outbox_commit_delay = Duration::from_millis(
            r.take("outbox_commit_delay_ms")
                .map_or(Ok(10), |e| e.integer(0, 1000))? as u64,
        );
        let rejected_max_events =
            r.take("rejected_max_events")
                .map_or(Ok(1000), |e| e.integer(1, 1_000_000))? as u64;
        let stats_path = r
            .take("stats_path")
            .map(|e| e.text())
            .transpose()?
            .map_or_else(
                || {
                    let mut p = outbox_path.clone().into_os_string();
                    p.push(".stats.json");
                    PathBuf::from(p)
                },
                PathBuf::from,
            );
        let stats_interval = Duration::from_secs(
            r.take("stats_interval")
                .map_or(Ok(5), |e| e.integer(1, 3600))? as u64,
        );
        let templates = match r.take("format_file") {
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
        let config = Config {
            routing_key,
            centreon_url,
            source,
            endpoint,
            client,
            proxy,
            timeout,
            verify_certificate,
            ca_file,
            log_level,
            log_path,
            log_format,
            max_buffer_size,
            max_buffer_age,
            accepted_types,
            host_status,
            service_status,
            hard_only,
            acknowledged,
            in_downtime,
            flapping,
            skip_anon_events,
            skip_nil_id,
            output,
            log_curl_commands,
            host_status_dedup,
            service_status_dedup,
            send_acknowledgements,
            downtime_action,
            suppress_services_of_down_hosts,
            dedup_key_prefix,
            send_data_test,
            severities,
            accepted_hostgroups,
            rejected_hostgroups,
            accepted_servicegroups,
            rejected_servicegroups,
            accepted_hosts,
            accepted_services,
            accepted_pollers,
            rejected_pollers,
            host_severity_filter,
            service_severity_filter,
            outbox_path,
            outbox_max_events,
            outbox_commit_delay,
            rejected_max_events,
            stats_path,
            stats_interval,
            templates,
        };
        Ok((config, r.finish()))
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
                        message: "expected a string, a number or a boolean".into(),
                    });
                }
            }))
        }
        let bad = || ConfigError {
            parameter: "configuration".into(),
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
mod tests {
    /// Parameters as users write them: (name, value).
    type Params = &'static [(&'static str, &'static str)];

    use super::*;
    use crate::event::{element, event_type};

    const KEY: &str = "R0ut1ngKeyABCDEFGHIJKLMNOPQRSTUV";

    fn s(v: &str) -> ParamValue {
        ParamValue::Str(v.to_string())
    }

    fn with_key(params: &[(&str, ParamValue)]) -> Vec<(String, ParamValue)> {
        let mut all = vec![("pdy_routing_key".to_string(), s(KEY))];
        all.extend(params.iter().map(|(k, v)| (k.to_string(), v.clone())));
        all
    }

    fn parse(params: &[(&str, ParamValue)]) -> (Config, Vec<Warning>) {
        Config::from_params(&with_key(params)).expect("valid config")
    }

    fn parse_err(params: &[(&str, ParamValue)]) -> ConfigError {
        Config::from_params(&with_key(params)).expect_err("invalid config")
    }

    fn warnings_text(w: &[Warning]) -> String {
        w.iter()
            .map(|w| w.0.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn types(pairs: &[u32]) -> Vec<u32> {
        let mut v: Vec<u32> = pairs.iter().map(|e| event_type(1, *e)).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn defaults() {
        let (c, w) = parse(&[]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.routing_key.expose(), KEY);
        assert_eq!(c.centreon_url, "http://set.pdy_centreon_url.parameter");
        assert_eq!(c.source, None);
        assert_eq!(c.endpoint, "https://events.pagerduty.com/v2/enqueue");
        assert_eq!(c.client, "Centreon Stream Connector");
        assert_eq!(c.proxy, None);
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert!(c.verify_certificate);
        assert_eq!(c.log_level, 1);
        assert_eq!(
            c.log_path,
            PathBuf::from("/var/log/centreon-broker/stream-connector-pagerduty.log")
        );
        assert_eq!(c.max_buffer_size, 1);
        assert_eq!(c.max_buffer_age, Duration::from_secs(5));
        assert_eq!(
            c.accepted_types,
            types(&[
                element::HOST_STATUS,
                element::PB_HOST_STATUS,
                element::SERVICE_STATUS,
                element::PB_SERVICE_STATUS,
                element::PB_ADAPTIVE_HOST_STATUS,
                element::PB_ADAPTIVE_SERVICE_STATUS,
                element::ACKNOWLEDGEMENT,
                element::PB_ACKNOWLEDGEMENT,
            ])
        );
        assert_eq!(
            c.accepted_types,
            vec![65537, 65550, 65560, 65565, 65568, 65581, 65591, 65592]
        );
        assert!(c.send_acknowledgements && !c.suppress_services_of_down_hosts);
        assert_eq!(c.downtime_action, DowntimeAction::Suppress);
        assert_eq!(c.dedup_key_prefix, "");
        assert_eq!(c.host_status, vec![0, 1, 2]);
        assert_eq!(c.service_status, vec![0, 1, 2, 3]);
        assert!(c.hard_only);
        assert!(!c.acknowledged && !c.in_downtime && !c.flapping);
        assert!(!c.skip_anon_events);
        assert!(!c.send_data_test);
        assert_eq!(c.severities, SeverityMap::default());
        assert_eq!(c.severities.host_down, Severity::Critical);
        assert_eq!(c.severities.service_unknown, Severity::Error);
        assert!(c.accepted_hostgroups.is_empty() && c.rejected_pollers.is_empty());
        assert_eq!(c.host_severity_filter, None);
        assert_eq!(c.service_severity_filter, None);
    }

    #[test]
    fn everything_set_as_strings() {
        let (c, w) = parse(&[
            ("pdy_centreon_url", s("https://centreon.example.com/")),
            ("pdy_source", s(" central ")),
            (
                "http_server_url",
                s("https://events.eu.pagerduty.com/v2/enqueue"),
            ),
            ("client", s("Centreon EU")),
            ("connection_timeout", s("2.5")),
            ("verify_certificate", s("0")),
            ("log_level", s(" 3 ")),
            ("logfile", s("/tmp/pd.log")),
            ("max_buffer_size", s("10")),
            ("max_all_queues_age", s("1.5")),
            (
                "accepted_elements",
                s("host_status, service_status ,acknowledgement,downtime"),
            ),
            ("host_status", s("1, 2")),
            ("service_status", s(" 2 ")),
            ("hard_only", s("no")),
            ("acknowledged", s("Yes")),
            ("in_downtime", s("TRUE")),
            ("flapping", s("1")),
            ("skip_anon_events", s("1")),
            ("send_acknowledgements", s("0")),
            ("downtime_action", s("Suppress")),
            ("suppress_services_of_down_hosts", s("1")),
            ("dedup_key_prefix", s("paris-")),
            ("send_data_test", s("true")),
            ("severity_host_down", s("Error")),
            ("severity_host_unreachable", s("warning")),
            ("severity_service_warning", s("info")),
            ("severity_service_critical", s("error")),
            ("severity_service_unknown", s("critical")),
            ("accepted_hostgroups", s("linux, db,,")),
            ("rejected_servicegroups", s("noise")),
            ("accepted_pollers", s("Central")),
            ("host_severity_threshold", s("2")),
            ("host_severity_operator", s("<")),
            ("service_severity_threshold", s("3.0")),
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.centreon_url, "https://centreon.example.com");
        assert_eq!(c.source.as_deref(), Some("central"));
        assert_eq!(c.endpoint, "https://events.eu.pagerduty.com/v2/enqueue");
        assert_eq!(c.client, "Centreon EU");
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert!(!c.verify_certificate);
        assert_eq!(c.log_level, 3);
        assert_eq!(c.log_path, PathBuf::from("/tmp/pd.log"));
        assert_eq!(c.max_buffer_size, 10);
        assert_eq!(c.max_buffer_age, Duration::from_millis(1500));
        assert_eq!(
            c.accepted_types,
            vec![
                65537, 65541, 65550, 65560, 65565, 65568, 65572, 65581, 65591, 65592
            ]
        );
        assert_eq!(c.host_status, vec![1, 2]);
        assert_eq!(c.service_status, vec![2]);
        assert!(!c.hard_only && c.acknowledged && c.in_downtime && c.flapping);
        assert!(c.skip_anon_events && c.send_data_test);
        assert!(!c.send_acknowledgements && c.suppress_services_of_down_hosts);
        assert_eq!(c.downtime_action, DowntimeAction::Suppress);
        assert_eq!(c.dedup_key_prefix, "paris-");
        assert_eq!(
            c.severities,
            SeverityMap {
                host_down: Severity::Error,
                host_unreachable: Severity::Warning,
                service_warning: Severity::Info,
                service_critical: Severity::Error,
                service_unknown: Severity::Critical,
            }
        );
        assert_eq!(c.accepted_hostgroups, vec!["linux", "db"]);
        assert_eq!(c.rejected_servicegroups, vec!["noise"]);
        assert_eq!(c.accepted_pollers, vec!["Central"]);
        assert_eq!(
            c.host_severity_filter,
            Some(SeverityFilter {
                threshold: 2,
                op: CompareOp::Lt
            })
        );
        assert_eq!(
            c.service_severity_filter,
            Some(SeverityFilter {
                threshold: 3,
                op: CompareOp::Ge
            })
        );
    }

    #[test]
    fn numbers_as_lua_numbers() {
        let (c, w) = parse(&[
            ("connection_timeout", ParamValue::Int(30)),
            ("verify_certificate", ParamValue::Int(1)),
            ("log_level", ParamValue::Float(2.0)),
            ("max_buffer_size", ParamValue::Int(50)),
            ("max_buffer_age", ParamValue::Float(0.5)),
            ("hard_only", ParamValue::Bool(false)),
            ("host_severity_threshold", ParamValue::Int(1)),
            ("proxy_address", s("proxy.local")),
            ("proxy_port", ParamValue::Int(3128)),
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert!(c.verify_certificate);
        assert_eq!(c.log_level, 2);
        assert_eq!(c.max_buffer_size, 50);
        assert_eq!(c.max_buffer_age, Duration::from_millis(500));
        assert!(!c.hard_only);
        assert_eq!(c.host_severity_filter.map(|f| f.threshold), Some(1));
        assert_eq!(c.proxy.unwrap().url, "http://proxy.local:3128");
    }

    #[test]
    fn legacy_and_certified_spellings() {
        // (legacy name, certified name, value, check)
        let (c, w) = parse(&[("http_timeout", s("7"))]);
        assert!(w.is_empty());
        assert_eq!(c.timeout, Duration::from_secs(7));
        let (c, _) = parse(&[("connection_timeout", s("8"))]);
        assert_eq!(c.timeout, Duration::from_secs(8));
        let (c, w) = parse(&[("connection_timeout", s("8")), ("http_timeout", s("7"))]);
        assert_eq!(c.timeout, Duration::from_secs(8));
        assert!(
            warnings_text(&w).contains("'connection_timeout' is used"),
            "{w:?}"
        );

        let (c, w) = parse(&[("log_path", s("/var/log/a.log"))]);
        assert!(w.is_empty());
        assert_eq!(c.log_path, PathBuf::from("/var/log/a.log"));
        let (c, _) = parse(&[("logfile", s("/var/log/b.log"))]);
        assert_eq!(c.log_path, PathBuf::from("/var/log/b.log"));
        let (c, w) = parse(&[("logfile", s("/b")), ("log_path", s("/a"))]);
        assert_eq!(c.log_path, PathBuf::from("/b"));
        assert_eq!(w.len(), 1);

        let (c, w) = parse(&[("max_buffer_age", s("3"))]);
        assert!(w.is_empty());
        assert_eq!(c.max_buffer_age, Duration::from_secs(3));
        let (c, _) = parse(&[("max_all_queues_age", s("4"))]);
        assert_eq!(c.max_buffer_age, Duration::from_secs(4));
        let (c, w) = parse(&[("max_all_queues_age", s("4")), ("max_buffer_age", s("3"))]);
        assert_eq!(c.max_buffer_age, Duration::from_secs(4));
        assert_eq!(w.len(), 1);

        // the losing spelling is still checked
        let e = parse_err(&[("connection_timeout", s("8")), ("http_timeout", s("soon"))]);
        assert_eq!(e.parameter, "http_timeout");
    }

    #[test]
    fn booleans() {
        for (v, want) in [
            (s("1"), true),
            (s(" 0 "), false),
            (s("TRUE"), true),
            (s("false"), false),
            (s("Yes"), true),
            (s("no"), false),
            (ParamValue::Int(1), true),
            (ParamValue::Int(0), false),
            (ParamValue::Float(1.0), true),
            (ParamValue::Bool(false), false),
        ] {
            let (c, _) = parse(&[("verify_certificate", v.clone())]);
            assert_eq!(c.verify_certificate, want, "{v:?}");
        }
        for v in [
            s("2"),
            s("on"),
            s("vrai"),
            ParamValue::Int(2),
            ParamValue::Float(0.5),
        ] {
            let e = parse_err(&[("verify_certificate", v.clone())]);
            assert_eq!(e.parameter, "verify_certificate");
            assert!(e.message.starts_with("expected 0 or 1"), "{e}");
        }
    }

    #[test]
    fn bad_values_name_the_parameter() {
        // (parameter, value, text expected in the message)
        let table: &[(&str, ParamValue, &str)] = &[
            (
                "max_buffer_size",
                s("ten"),
                "expected an integer from 1 to 10000, got a text of 3 characters (not shown)",
            ),
            ("max_buffer_size", s("0"), "from 1 to 10000"),
            ("max_buffer_size", s("10001"), "from 1 to 10000"),
            ("max_buffer_size", ParamValue::Float(2.5), "got 2.5"),
            ("max_buffer_size", s("2.5"), "integer"),
            ("log_level", s("4"), "from 0 to 3"),
            ("log_level", ParamValue::Int(-1), "from 0 to 3"),
            (
                "connection_timeout",
                s("0"),
                "greater than 0 and at most 300",
            ),
            ("connection_timeout", s("301"), "at most 300"),
            ("http_timeout", s("-1"), "greater than 0"),
            ("http_timeout", s("nan"), "seconds"),
            ("max_buffer_age", s("0"), "greater than 0"),
            ("max_all_queues_age", s("x"), "seconds"),
            (
                "hard_only",
                s("maybe"),
                "expected 0 or 1, got a text of 5 characters (not shown)",
            ),
            ("host_status", s("0,3"), "from 0 to 2"),
            ("host_status", s(","), "from 0 to 2"),
            ("service_status", s("0,4"), "from 0 to 3"),
            ("service_status", s("ok"), "from 0 to 3"),
            (
                "severity_host_down",
                s("high"),
                "critical, error, warning or info",
            ),
            (
                "severity_service_unknown",
                s("x"),
                "got a text of 1 characters",
            ),
            ("host_severity_threshold", s("high"), "expected an integer"),
            (
                "service_severity_threshold",
                ParamValue::Float(1.5),
                "expected an integer",
            ),
            ("host_severity_operator", s("=>"), "expected one of =="),
            (
                "accepted_categories",
                s("neb,foo"),
                "item 2 is not a known category",
            ),
            ("accepted_categories", s("bam"), "must include neb"),
            (
                "accepted_elements",
                s("host_status,garbage"),
                "item 2 is not a known element",
            ),
            (
                "accepted_elements",
                s("host,service"),
                "none of the elements",
            ),
            (
                "pdy_centreon_url",
                s("centreon.example.com"),
                "http:// or https://",
            ),
            (
                "pdy_centreon_url",
                s("ftp://centreon"),
                "unsupported scheme",
            ),
            ("pdy_centreon_url", s("http://"), "host"),
            (
                "http_server_url",
                s("https://user:pw@events.pagerduty.com"),
                "credentials",
            ),
            (
                "http_server_url",
                s("https://events.pagerduty.com:99999/"),
                "port",
            ),
            (
                "http_server_url",
                s("https://events pagerduty.com"),
                "spaces",
            ),
            (
                "http_server_url",
                s("https://u:topsecret@host:99999"),
                "not shown",
            ),
            ("proxy_protocol", s("ftp"), "http, https or socks5"),
            ("client", ParamValue::Bool(true), "expected a string"),
            (
                "downtime_action",
                s("later"),
                "expected suppress or resolve",
            ),
            ("log_format", s("syslog"), "expected native or centreon"),
            ("send_acknowledgements", s("sure"), "expected 0 or 1"),
            ("suppress_services_of_down_hosts", s("2"), "expected 0 or 1"),
            ("dedup_key_prefix", s("prod\tparis"), "control characters"),
            (
                "dedup_key_prefix",
                s(&"p".repeat(201)),
                "at most 200 characters",
            ),
        ];
        for (name, value, want) in table {
            let mut params: Vec<(&str, ParamValue)> = vec![(name, value.clone())];
            if *name == "proxy_protocol" {
                params.push(("proxy_address", s("proxy")));
                params.push(("proxy_port", s("3128")));
            }
            let e = parse_err(&params);
            assert_eq!(e.parameter, *name, "{e}");
            assert!(e.to_string().contains(want), "{name}: {e}");
            assert!(!e.to_string().contains("topsecret"), "{name}: {e}");
            assert!(e.to_string().starts_with(&format!("parameter '{name}': ")));
        }
    }

    #[test]
    fn messages_never_echo_text() {
        // a password or a key pasted in the wrong parameter, and other text: never shown
        let secret = "Hunter2-not-a-value";
        for (name, value) in [
            ("hard_only", secret.to_string()),
            ("max_buffer_size", secret.to_string()),
            ("severity_host_down", secret.to_string()),
            ("downtime_action", secret.to_string()),
            ("pdy_centreon_url", secret.to_string()),
            ("http_server_url", format!("https://{secret} x")),
            ("host_severity_operator", secret.to_string()),
            ("accepted_categories", format!("neb,{secret}")),
            ("accepted_elements", format!("host_status,{secret}")),
            ("dedup_key_prefix", format!("{secret}\tx")),
            ("proxy_protocol", secret.to_string()),
            ("format_file", format!("/nonexistent/{KEY}")),
            ("connection_timeout", secret.to_string()),
            ("host_status", secret.to_string()),
        ] {
            let mut params = vec![(name, s(&value))];
            if name == "proxy_protocol" {
                params.push(("proxy_address", s("proxy")));
                params.push(("proxy_port", s("3128")));
            }
            let e = parse_err(&params);
            assert_eq!(e.parameter, name, "{e}");
            assert!(!e.to_string().contains(secret), "{e}");
            assert!(!e.to_string().contains(KEY), "{e}");
        }
        // a Lua pattern in error is named by its place
        let e = parse_err(&[
            ("accepted_hosts", s("web,(bad")),
            ("accepted_hosts_enable_split_pattern", s("1")),
        ]);
        assert!(
            e.message
                .starts_with("pattern 2 of 2 is not a valid Lua pattern"),
            "{e}"
        );
        // numbers are shown
        let e = parse_err(&[("max_buffer_size", s("0"))]);
        assert!(e.message.ends_with("got 0"), "{e}");
    }

    #[test]
    fn parameter_name_as_written() {
        let params = vec![
            ("pdy_routing_key".to_string(), s(KEY)),
            (" max_buffer_size ".to_string(), s("ten")),
        ];
        let e = Config::from_params(&params).unwrap_err();
        assert_eq!(e.parameter, " max_buffer_size ");
    }

    #[test]
    fn routing_key_checks_and_never_leaks() {
        let secret_short = "SECRETKEY123";
        let e = Config::from_params(&[("pdy_routing_key".into(), s(secret_short))]).unwrap_err();
        assert_eq!(e.parameter, "pdy_routing_key");
        assert_eq!(
            e.to_string(),
            "parameter 'pdy_routing_key': expected 32 alphanumeric characters (got 12 characters)"
        );
        let bad_chars = "SECRET-KEY-0123456789abcdefghijk";
        assert_eq!(bad_chars.len(), 32);
        let e = Config::from_params(&[("pdy_routing_key".into(), s(bad_chars))]).unwrap_err();
        assert!(!e.to_string().contains("SECRET"), "{e}");
        assert!(
            e.message
                .contains("2 characters that are not letters or digits"),
            "{e}"
        );
        let e = Config::from_params(&[]).unwrap_err();
        assert_eq!(e.parameter, "pdy_routing_key");
        assert!(e.message.contains("required"));
        let e = Config::from_params(&[("pdy_routing_key".into(), s("   "))]).unwrap_err();
        assert!(e.message.contains("required"));
        // trimmed
        let (c, _) =
            Config::from_params(&[("pdy_routing_key".into(), s(&format!(" {KEY}\n")))]).unwrap();
        assert_eq!(c.routing_key.expose(), KEY);

        // The key appears in no error, no warning and no Debug output.
        let mut outputs = Vec::new();
        let (c, w) = parse(&[("unknown_thing", s(KEY)), ("timezone", s(KEY))]);
        outputs.push(format!("{c:?}"));
        outputs.push(format!("{:?} {}", c.routing_key, c.routing_key));
        outputs.push(warnings_text(&w));
        outputs.push(format!("{w:?}"));
        for (name, value) in [
            ("max_buffer_size", KEY),
            ("pdy_centreon_url", KEY),
            ("http_server_url", KEY),
            ("host_status", KEY),
            ("accepted_categories", KEY),
            ("accepted_elements", KEY),
            ("hard_only", KEY),
            ("format_file", KEY),
        ] {
            let e = parse_err(&[(name, s(value))]);
            let _ = e.to_string();
            outputs.push(format!("{e} {e:?}"));
        }
        // the key given twice, the second one bad
        let e = Config::from_params(&[
            ("pdy_routing_key".into(), s(KEY)),
            ("pdy_routing_key".into(), s(&KEY[..31])),
        ])
        .unwrap_err();
        outputs.push(format!("{e} {e:?}"));
        for o in &outputs {
            assert!(!o.contains(KEY), "routing key leaked in: {o}");
            assert!(!o.contains(&KEY[..28]), "routing key leaked in: {o}");
        }
    }

    #[test]
    fn proxy_legacy_string() {
        // (value, url, username, password)
        let table: &[(&str, &str, Option<&str>, Option<&str>)] = &[
            ("http://proxy:3128", "http://proxy:3128", None, None),
            ("proxy.local:8080", "http://proxy.local:8080", None, None),
            ("http://proxy", "http://proxy:1080", None, None),
            ("https://proxy.local", "https://proxy.local:443", None, None),
            (
                "socks5://10.0.0.1:1080/",
                "socks5://10.0.0.1:1080",
                None,
                None,
            ),
            ("http://[::1]:3128", "http://[::1]:3128", None, None),
            (
                "http://bob:s3cr%40t@proxy:3128",
                "http://proxy:3128",
                Some("bob"),
                Some("s3cr@t"),
            ),
            (
                "http://bob@proxy:3128",
                "http://proxy:3128",
                Some("bob"),
                None,
            ),
        ];
        for (value, url, user, pass) in table {
            let (c, w) = parse(&[("http_proxy_string", s(value))]);
            assert!(w.is_empty(), "{w:?}");
            let p = c.proxy.expect("proxy");
            assert_eq!(p.url, *url, "{value}");
            assert_eq!(p.username.as_deref(), *user, "{value}");
            assert_eq!(p.password.as_ref().map(Secret::expose), *pass, "{value}");
            assert!(!format!("{p:?}").contains("s3cr"), "{p:?}");
        }
        for bad in [
            "ftp://proxy:21",
            "http://proxy:0",
            "http://proxy:3128/path",
            "http://:pw@proxy:3128",
            "http://us er:topsecret@proxy",
            "http://user:topsecret@proxy:99999",
        ] {
            let e = parse_err(&[("http_proxy_string", s(bad))]);
            assert_eq!(e.parameter, "http_proxy_string");
            assert!(!e.to_string().contains("topsecret"), "{e}");
            assert!(!e.to_string().contains(bad), "value shown: {e}");
        }
    }

    #[test]
    fn proxy_certified_parameters() {
        let (c, w) = parse(&[
            ("proxy_address", s("proxy.local")),
            ("proxy_port", s(" 3128 ")),
            ("proxy_username", s("bob")),
            ("proxy_password", s("hunter2!")),
        ]);
        assert!(w.is_empty(), "{w:?}");
        let p = c.proxy.clone().unwrap();
        assert_eq!(p.url, "http://proxy.local:3128");
        assert_eq!(p.username.as_deref(), Some("bob"));
        assert_eq!(p.password.as_ref().map(Secret::expose), Some("hunter2!"));
        assert!(!format!("{c:?}").contains("hunter2"));

        let (c, _) = parse(&[
            ("proxy_address", s("proxy.local")),
            ("proxy_port", ParamValue::Float(8443.0)),
            ("proxy_protocol", s("HTTPS")),
        ]);
        assert_eq!(c.proxy.unwrap().url, "https://proxy.local:8443");
        let (c, _) = parse(&[
            ("proxy_address", s("socks5://10.1.1.1")),
            ("proxy_port", s("1080")),
            ("proxy_protocol", s("socks5")),
        ]);
        assert_eq!(c.proxy.unwrap().url, "socks5://10.1.1.1:1080");
        let (c, _) = parse(&[("proxy_address", s("proxy.local:3128"))]);
        assert_eq!(c.proxy.unwrap().url, "http://proxy.local:3128");

        // (parameters, parameter named by the error, text in the message)
        let table: &[(Params, &str, &str)] = &[
            (
                &[("proxy_port", "3128")],
                "proxy_port",
                "'proxy_address' is not",
            ),
            (
                &[("proxy_username", "bob")],
                "proxy_username",
                "'proxy_address' is not",
            ),
            (&[("proxy_address", "proxy")], "proxy_port", "required"),
            (
                &[("proxy_address", "proxy"), ("proxy_port", "70000")],
                "proxy_port",
                "1 to 65535",
            ),
            (
                &[("proxy_address", "proxy"), ("proxy_port", "http")],
                "proxy_port",
                "1 to 65535",
            ),
            (
                &[("proxy_address", "proxy"), ("proxy_port", "0")],
                "proxy_port",
                "1 to 65535",
            ),
            (
                &[
                    ("proxy_address", "proxy"),
                    ("proxy_port", "1"),
                    ("proxy_protocol", "socks4"),
                ],
                "proxy_protocol",
                "http, https or socks5",
            ),
            (
                &[
                    ("proxy_address", "https://proxy"),
                    ("proxy_port", "1"),
                    ("proxy_protocol", "http"),
                ],
                "proxy_protocol",
                "conflicts",
            ),
            (
                &[("proxy_address", "proxy:3128"), ("proxy_port", "3128")],
                "proxy_port",
                "one place",
            ),
            (
                &[
                    ("proxy_address", "proxy"),
                    ("proxy_port", "1"),
                    ("proxy_password", "topsecret"),
                ],
                "proxy_password",
                "'proxy_username' is not",
            ),
            (
                &[("proxy_address", "u:topsecret@proxy"), ("proxy_port", "1")],
                "proxy_address",
                "credentials",
            ),
            (
                &[("proxy_address", "u:topsecret@proxy:99999")],
                "proxy_address",
                "not shown",
            ),
            (
                &[("proxy_address", "proxy/x"), ("proxy_port", "1")],
                "proxy_address",
                "a proxy address has no path",
            ),
            (
                &[
                    ("http_proxy_string", "http://p:1"),
                    ("proxy_address", "proxy"),
                ],
                "http_proxy_string",
                "'proxy_address'",
            ),
            (
                &[("http_proxy_string", "http://p:1"), ("proxy_port", "1")],
                "http_proxy_string",
                "'proxy_port'",
            ),
        ];
        for (params, param, want) in table {
            let params: Vec<(&str, ParamValue)> = params.iter().map(|(k, v)| (*k, s(v))).collect();
            let e = parse_err(&params);
            assert_eq!(e.parameter, *param, "{e}");
            assert!(e.message.contains(want), "{e}");
            assert!(!e.to_string().contains("topsecret"), "{e}");
        }

        // proxy_protocol with the legacy string, or alone: warnings
        let (c, w) = parse(&[
            ("http_proxy_string", s("http://p:1")),
            ("proxy_protocol", s("http")),
        ]);
        assert!(c.proxy.is_some());
        assert_eq!(w.len(), 1, "{w:?}");
        let (c, w) = parse(&[("proxy_protocol", s("http"))]);
        assert!(c.proxy.is_none());
        assert_eq!(w.len(), 1, "{w:?}");
        // empty strings (as the UI leaves them) are "not set"
        let (c, w) = parse(&[
            ("proxy_address", s("")),
            ("proxy_port", s("")),
            ("proxy_username", s("")),
            ("proxy_password", s("")),
        ]);
        assert!(c.proxy.is_none() && w.is_empty());
    }

    #[test]
    fn routing_key_from_a_file() {
        let dir = std::env::temp_dir().join(format!("cpd-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("key");
        std::fs::write(&good, format!("  {KEY}\n")).unwrap();
        let bad = dir.join("bad");
        std::fs::write(&bad, "not-a-key-but-a-secret-anyway!!!").unwrap();
        let from = |params: Vec<(&str, String)>| {
            let params: Vec<(String, ParamValue)> = params
                .into_iter()
                .map(|(k, v)| (k.to_string(), s(&v)))
                .collect();
            Config::from_params(&params)
        };
        let path = |p: &std::path::Path| p.display().to_string();
        let (c, _) = from(vec![("pdy_routing_key_file", path(&good))]).unwrap();
        assert_eq!(c.routing_key.expose(), KEY);
        let e = from(vec![("pdy_routing_key_file", path(&bad))]).unwrap_err();
        assert_eq!(e.parameter, "pdy_routing_key_file");
        assert!(
            e.to_string()
                .contains("expected 32 alphanumeric characters"),
            "{e}"
        );
        assert!(!e.to_string().contains("secret-anyway"), "{e}");
        let e = from(vec![("pdy_routing_key_file", path(&dir.join("missing")))]).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
        assert!(
            e.to_string()
                .contains("readable by the centreon-broker user"),
            "{e}"
        );
        let e = from(vec![
            ("pdy_routing_key", KEY.to_string()),
            ("pdy_routing_key_file", path(&good)),
        ])
        .unwrap_err();
        assert_eq!(e.parameter, "pdy_routing_key");
        assert!(e.to_string().contains("cannot be used together"), "{e}");
        assert!(!e.to_string().contains(KEY));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn routing_key_file_that_is_no_small_regular_file_is_refused_at_once() {
        let dir = std::env::temp_dir().join(format!("cpd-key-hostile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let from = |path: &str| {
            Config::from_params(&[("pdy_routing_key_file".to_string(), s(path))]).unwrap_err()
        };
        // a FIFO without a writer: refused at once (reading it would wait for ever)
        let fifo = dir.join("key.fifo");
        crate::files::tests::mkfifo(&fifo);
        let e = from(&fifo.display().to_string());
        assert_eq!(
            e.to_string(),
            format!(
                "parameter 'pdy_routing_key_file': {} is a FIFO, expected a regular file of at \
                 most 4096 bytes",
                fifo.display()
            )
        );
        // an endless device, a huge file: refused without reading them
        let e = from("/dev/zero");
        assert!(e.message.contains("/dev/zero is a character device"), "{e}");
        let big = dir.join("big.key");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        let e = from(&big.display().to_string());
        assert!(e.message.contains("is larger than 4096 bytes"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_key_pasted_as_the_key_file_is_not_shown() {
        let from = |path: &str| {
            Config::from_params(&[("pdy_routing_key_file".to_string(), s(path))]).unwrap_err()
        };
        for value in [KEY.to_string(), format!("/etc/centreon-broker/{KEY}")] {
            let e = from(&value);
            let text = e.to_string();
            assert!(!text.contains(KEY), "{text}");
            assert!(
                text.contains(&Secret::new(value.as_str()).masked()),
                "masked as keys are: {text}"
            );
            assert!(text.contains("cannot read"), "{text}");
        }
        // a file name is still named
        let e = from("/etc/centreon-broker/pd.key");
        assert!(e.message.contains("/etc/centreon-broker/pd.key"), "{e}");
    }

    #[test]
    fn downtime_action_values() {
        let (c, _) = parse(&[("downtime_action", s(" RESOLVE "))]);
        assert_eq!(c.downtime_action, DowntimeAction::Resolve);
        let e = parse_err(&[("in_downtime", s("1")), ("downtime_action", s("resolve"))]);
        assert_eq!(e.parameter, "downtime_action");
        assert!(e.to_string().contains("in_downtime=1"), "{e}");
        let (c, _) = parse(&[("in_downtime", s("1")), ("downtime_action", s("suppress"))]);
        assert!(c.in_downtime);
    }

    #[test]
    fn categories_and_elements() {
        let (c, w) = parse(&[("accepted_categories", s("neb,bam"))]);
        assert_eq!(c.accepted_types.len(), 8);
        assert!(
            warnings_text(&w).contains("only neb events can become incidents"),
            "{w:?}"
        );
        // statuses bring their adaptive statuses and acknowledgements along
        let (c, w) = parse(&[("accepted_elements", s("host_status,host,service_group"))]);
        assert_eq!(c.accepted_types, vec![65537, 65550, 65568, 65581, 65592]);
        assert_eq!(w.len(), 2, "{w:?}");
        let (c, w) = parse(&[
            ("accepted_elements", s("pb_service_status")),
            ("send_acknowledgements", s("0")),
        ]);
        assert_eq!(c.accepted_types, vec![65560, 65565, 65591]);
        assert!(w.is_empty());
        let (c, _) = parse(&[("accepted_elements", s("acknowledgement"))]);
        assert_eq!(
            c.accepted_types,
            types(&[element::ACKNOWLEDGEMENT, element::PB_ACKNOWLEDGEMENT])
        );
        let (c, _) = parse(&[("accepted_elements", s("downtime"))]);
        assert_eq!(c.accepted_types, vec![65541, 65572]);
    }

    #[test]
    fn severity_operators() {
        for (op, want) in [
            ("==", CompareOp::Eq),
            ("!=", CompareOp::Ne),
            ("~=", CompareOp::Ne),
            ("<", CompareOp::Lt),
            ("<=", CompareOp::Le),
            (">", CompareOp::Gt),
            (" >= ", CompareOp::Ge),
        ] {
            let (c, w) = parse(&[
                ("service_severity_threshold", ParamValue::Int(4)),
                ("service_severity_operator", s(op)),
            ]);
            assert!(w.is_empty());
            assert_eq!(
                c.service_severity_filter,
                Some(SeverityFilter {
                    threshold: 4,
                    op: want
                })
            );
        }
        let (c, w) = parse(&[("host_severity_operator", s("<"))]);
        assert_eq!(c.host_severity_filter, None);
        assert!(
            warnings_text(&w).contains("'host_severity_operator' has no effect without"),
            "{w:?}"
        );
    }

    #[test]
    fn warnings_for_other_names() {
        let (_, w) = parse(&[
            ("skip_nil_id", s("1")),
            ("log_curl_commands", ParamValue::Int(1)),
            ("timezone", s("Europe/Paris")),
            ("max_stored_events", s("10")),
            ("allow_insecure_connection", s("1")),
            ("filter_type", s("metric,status")),
            ("my_param", s("x")),
            ("use_long_output", s("")), // empty: not set, no warning
        ]);
        let text = warnings_text(&w);
        assert_eq!(w.len(), 5, "{text}");
        assert!(!text.contains("skip_nil_id") && !text.contains("log_curl_commands"));
        assert!(text.contains("parameter 'timezone' ignored: "));
        assert!(text.contains("parameter 'max_stored_events' ignored: "));
        assert!(text.contains("parameter 'allow_insecure_connection' ignored: "));
        assert!(text.contains("unknown parameter 'my_param' (ignored)"));
        assert_eq!(nearest_parameter("max_bufer_size"), Some("max_buffer_size"));
        assert_eq!(nearest_parameter("Log-Level"), Some("log_level"));
        assert_eq!(nearest_parameter("pdy_routingkey"), Some("pdy_routing_key"));
        assert_eq!(nearest_parameter("my_param"), None);
        assert_eq!(nearest_parameter("zzz"), None);
        assert!(!text.contains("Europe/Paris"));
    }

    #[test]
    fn output_options_skip_nil_id_and_curl_commands() {
        let (c, w) = parse(&[]);
        assert!(w.is_empty());
        assert_eq!(c.output, OutputOptions::default());
        assert!(c.skip_nil_id && !c.log_curl_commands);
        // (parameters as users write them, use_long_output, output_size_limit, replacement)
        type Row = (Params, bool, Option<usize>, Option<&'static str>);
        let table: &[Row] = &[
            (&[("use_long_output", "0")], false, None, None),
            (&[("use_long_output", "1")], true, None, None),
            (&[("output_size_limit", " 255 ")], true, Some(255), None),
            (&[("output_size_limit", "")], true, None, None),
            (
                &[("remove_line_break_in_output", "1")],
                true,
                None,
                Some(" "),
            ),
            (&[("remove_line_break_in_output", "0")], true, None, None),
            (
                &[
                    ("remove_line_break_in_output", "1"),
                    ("output_line_break_replacement_character", " | "),
                ],
                true,
                None,
                Some(" | "),
            ),
            (
                &[
                    ("remove_line_break_in_output", "1"),
                    ("output_line_break_replacement_character", " "),
                ],
                true,
                None,
                Some(" "),
            ),
        ];
        for (i, (params, long, limit, line_break)) in table.iter().enumerate() {
            let params: Vec<(&str, ParamValue)> = params.iter().map(|(k, v)| (*k, s(v))).collect();
            let (c, w) = parse(&params);
            assert!(w.is_empty(), "row {i}: {w:?}");
            assert_eq!(
                c.output,
                OutputOptions {
                    long: *long,
                    size_limit: *limit,
                    line_break: line_break.map(str::to_string),
                },
                "row {i}"
            );
        }
        let (c, w) = parse(&[("output_line_break_replacement_character", s("_"))]);
        assert_eq!(c.output.line_break, None);
        assert!(
            warnings_text(&w).contains("has no effect without remove_line_break_in_output=1"),
            "{w:?}"
        );
        for bad in ["0", "-1", "ten", "1000001"] {
            let e = parse_err(&[("output_size_limit", s(bad))]);
            assert_eq!(e.parameter, "output_size_limit");
            assert!(e.message.contains("from 1 to 1000000"), "{e}");
        }
        let e = parse_err(&[("use_long_output", s("2"))]);
        assert_eq!(e.parameter, "use_long_output");
        let (c, _) = parse(&[
            ("skip_nil_id", s("0")),
            ("log_curl_commands", ParamValue::Int(1)),
        ]);
        assert!(!c.skip_nil_id && c.log_curl_commands);
        assert_eq!(
            parse_err(&[("skip_nil_id", s("yes please"))]).parameter,
            "skip_nil_id"
        );
    }

    #[test]
    fn format_file_is_read_and_checked_at_init() {
        let dir = std::env::temp_dir().join(format!("cpd-format-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        };
        let good = file(
            "good.json",
            r#"{"neb_service_status": {"routing_key": "R0ut1ngKeyABCDEFGHIJKLMNOPQRSTUV",
                "payload": {"summary": "{cache.host.name}: {output_scshort}"}}}"#,
        );
        let (c, w) = parse(&[("format_file", s(&good))]);
        let t = c.templates.expect("templates");
        assert!(t.fields().contains("output"));
        let text = warnings_text(&w);
        assert!(text.contains("routing_key is ignored"), "{text}");
        assert!(
            !text.contains("not honoured") && !text.contains(KEY),
            "{text}"
        );

        for (name, content, want) in [
            ("bad.json", "{\"neb_service_status\": ", "is not valid JSON"),
            (
                "macro.json",
                r#"{"neb_service_status": {"payload": {"summary": "{cache.host.nom}"}}}"#,
                "template \"neb_service_status\": unknown macro {cache.host.nom}",
            ),
            (
                "flag.json",
                r#"{"neb_host_status": {"payload": {"summary": "{state_scsatte}"}}}"#,
                "template \"neb_host_status\": unknown flag _scsatte in macro {state_scsatte}",
            ),
        ] {
            let path = file(name, content);
            let e = parse_err(&[("format_file", s(&path))]);
            assert_eq!(e.parameter, "format_file");
            assert!(e.message.contains(&path) && e.message.contains(want), "{e}");
        }
        let e = parse_err(&[("format_file", s("/dev/zero"))]);
        assert_eq!(
            e.to_string(),
            "parameter 'format_file': \"/dev/zero\": it is a character device, expected a \
             regular file of at most 1048576 bytes"
        );
        let e = parse_err(&[("format_file", s("/nonexistent/templates.json"))]);
        assert!(
            e.to_string().starts_with(
                "parameter 'format_file': \"/nonexistent/templates.json\": cannot read it"
            ),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn duplicates_last_wins() {
        let params = with_key(&[("max_buffer_size", s("2")), ("max_buffer_size", s("3"))]);
        let (c, w) = Config::from_params(&params).unwrap();
        assert_eq!(c.max_buffer_size, 3);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn order_independent() {
        let mut params = with_key(&[
            ("http_proxy_string", s("http://p:3128")),
            ("log_level", s("2")),
            ("accepted_pollers", s("a,b")),
            ("connection_timeout", s("3")),
        ]);
        let (a, wa) = Config::from_params(&params).unwrap();
        params.reverse();
        let (b, wb) = Config::from_params(&params).unwrap();
        assert_eq!(a, b);
        assert_eq!(wa, wb);
    }

    #[test]
    fn known_parameters_table() {
        let all = known_parameters();
        let mut names: Vec<&str> = all.iter().map(|p| p.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate names");
        for name in [
            "pdy_routing_key",
            "http_timeout",
            "log_path",
            "max_buffer_age",
            "proxy_password",
            "severity_host_down",
        ] {
            let info = all.iter().find(|p| p.name == name).unwrap();
            assert_eq!(info.status, ParamStatus::Supported, "{name}");
        }
        for p in all.iter().filter(|p| p.status == ParamStatus::Ignored) {
            assert!(p.doc.starts_with("ignored: "), "{}", p.name);
        }
        // every supported name is read: setting it never gives an "unknown" warning
        for p in all.iter().filter(|p| p.status == ParamStatus::Supported) {
            let params = with_key(&[(p.name, s("zzz-not-valid"))]);
            if let Ok((_, w)) = Config::from_params(&params) {
                assert!(!warnings_text(&w).contains("unknown"), "{}", p.name);
            }
        }
    }

    #[test]
    fn from_json_object_and_lua_parameter_array() {
        let v = serde_json::json!({
            "pdy_routing_key": KEY,
            "max_buffer_size": 5,
            "connection_timeout": 2.5,
            "verify_certificate": false,
            "log_level": "3",
            "pdy_source": null
        });
        let (c, w) = Config::from_json(&v).unwrap();
        assert!(w.is_empty());
        assert_eq!(c.max_buffer_size, 5);
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert!(!c.verify_certificate);
        assert_eq!(c.log_level, 3);
        assert_eq!(c.source, None);

        let v = serde_json::json!([
            {"type": "password", "name": "pdy_routing_key", "value": KEY},
            {"type": "number", "name": "max_buffer_size", "value": "7"}
        ]);
        let (c, _) = Config::from_json(&v).unwrap();
        assert_eq!(c.max_buffer_size, 7);

        let e = Config::from_json(&serde_json::json!({"pdy_routing_key": KEY, "client": [1]}))
            .unwrap_err();
        assert_eq!(e.parameter, "client");
        assert!(Config::from_json(&serde_json::json!("x")).is_err());
        let e = Config::from_json(&serde_json::json!({"pdy_routing_key": "short"})).unwrap_err();
        assert!(!e.to_string().contains("short"));
    }
}
