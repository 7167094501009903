//! May a host or service status open an incident? The filters of the Centreon
//! stream-connectors library (`sc_event.lua`), with the parameters users already set.
//!
//! The checks run in the library's order (`is_valid_host_status_event` /
//! `is_valid_service_status_event`): names known (anonymous events), host and service name
//! patterns (`accepted_hosts`, `accepted_services`: Lua patterns, see
//! [`crate::luapattern`]), accepted state, state type,
//! acknowledgement, downtime, flapping, poller, host severity, service severity, host groups,
//! service groups. The first one that fails is the reason given.
//!
//! Events that lack their ids never get here: [`nil_id_level`] says how `skip_nil_id` logs them.
//!
//! Where we differ from the library, on purpose:
//! - `in_downtime`: the library compares `in_downtime >= scheduled_downtime_depth`, so with
//!   `in_downtime = 1` an object under two overlapping downtimes (depth 2) was still refused.
//!   Here `in_downtime = 1` accepts any depth.
//! - Pollers: the library refuses every event whose host has no known poller (instance),
//!   even with no poller list set. Here an unknown poller is refused only when
//!   `accepted_pollers` is set (as the library does in that case); with `rejected_pollers`
//!   it passes, as in the library.
//! - Accepted and rejected lists of one kind set together: the library silently ignored both;
//!   the configuration refuses it (see [`FilterOptions::read`]).
//! - `!=`: the library only understood Lua's `~=` (with `!=` it refused every event); both
//!   spellings mean "not equal" here.
//!
//! This module only judges a problem state: whether a recovery, an acknowledgement or a state
//! already sent is forwarded is decided by the caller, so that filters never make an open
//! incident impossible to resolve.

use std::fmt;

use crate::event::{Kind, StatusEvent};
use crate::log::Level;
use crate::luapattern::{self, Pattern};
use crate::params::{ConfigError, Given, Param, ParamReader};

/// Why a status does not open an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// `hard_only = 1` and the state is SOFT.
    Soft,
    /// The state is not in `host_status` / `service_status`.
    StateNotAccepted,
    /// `acknowledged = 0` and the object is acknowledged.
    Acknowledged,
    /// `in_downtime = 0` and the object is in downtime.
    InDowntime,
    /// `flapping = 0` and the object is flapping.
    Flapping,
    /// Host groups: not in `accepted_hostgroups`, or in `rejected_hostgroups`.
    Hostgroup,
    /// Service groups: not in `accepted_servicegroups`, or in `rejected_servicegroups`.
    Servicegroup,
    /// Poller: not in `accepted_pollers` (or unknown while it is set), or in `rejected_pollers`.
    Poller,
    /// The host severity does not pass `host_severity_threshold`/`host_severity_operator`.
    HostSeverity,
    /// The service severity does not pass `service_severity_threshold`/`service_severity_operator`.
    ServiceSeverity,
    /// `skip_anon_events = 1` and the host name (or service description) is unknown.
    Anonymous,
    /// The host name matches none of the `accepted_hosts` patterns.
    HostName,
    /// The service description matches none of the `accepted_services` patterns.
    ServiceName,
    /// `suppress_services_of_down_hosts = 1` and the service's host is DOWN or UNREACHABLE
    /// (decided by [`crate::decision`], which knows the host's state).
    HostDown,
}

impl Rejection {
    /// A short reason, for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Soft => "SOFT state (hard_only)",
            Rejection::StateNotAccepted => "state not accepted (host_status/service_status)",
            Rejection::Acknowledged => "acknowledged (acknowledged)",
            Rejection::InDowntime => "in downtime (in_downtime)",
            Rejection::Flapping => "flapping (flapping)",
            Rejection::Hostgroup => {
                "host group not accepted (accepted_hostgroups/rejected_hostgroups)"
            }
            Rejection::Servicegroup => {
                "service group not accepted (accepted_servicegroups/rejected_servicegroups)"
            }
            Rejection::Poller => "poller not accepted (accepted_pollers/rejected_pollers)",
            Rejection::HostSeverity => "host severity not accepted (host_severity_threshold)",
            Rejection::ServiceSeverity => {
                "service severity not accepted (service_severity_threshold)"
            }
            Rejection::Anonymous => {
                "host or service unknown to the Broker cache (skip_anon_events)"
            }
            Rejection::HostName => "host name does not match accepted_hosts",
            Rejection::ServiceName => "service description does not match accepted_services",
            Rejection::HostDown => {
                "host DOWN or UNREACHABLE, listed in its incident (suppress_services_of_down_hosts)"
            }
        }
    }

    /// True for the reasons that end by themselves (acknowledgement removed, downtime or
    /// flapping over, host back UP): the problem is kept and sent then if still present.
    pub fn waits(self) -> bool {
        matches!(
            self,
            Rejection::Acknowledged
                | Rejection::InDowntime
                | Rejection::Flapping
                | Rejection::HostDown
        )
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a problem state does not open an incident (`None` = it may).
pub fn problem_filter(cfg: &FilterOptions, ev: &StatusEvent) -> Option<Rejection> {
    let service = ev.kind() == Kind::Service;
    let ctx = &ev.ctx;

    // is_valid_host / is_valid_service: names from the cache.
    if cfg.skip_anon_events
        && (ctx.host_name.is_none() || (service && ctx.service_description.is_none()))
    {
        return Some(Rejection::Anonymous);
    }
    // is_valid_host / is_valid_service: Lua patterns on the name (the id when unknown, as
    // the library does).
    if !patterns_pass(
        &cfg.accepted_hosts,
        ctx.host_name.as_deref(),
        ev.key.host_id,
    ) {
        return Some(Rejection::HostName);
    }
    if service
        && !patterns_pass(
            &cfg.accepted_services,
            ctx.service_description.as_deref(),
            ev.key.service_id,
        )
    {
        return Some(Rejection::ServiceName);
    }
    // is_valid_event_status.
    let states = if service {
        &cfg.service_status
    } else {
        &cfg.host_status
    };
    if !states.contains(&ev.state) {
        return Some(Rejection::StateNotAccepted);
    }
    // is_valid_event_states: `state_type >= hard_only`, `acknowledged >= ack`,
    // `in_downtime >= downtime depth`, `flapping >= flapping` (0/1 numbers).
    if cfg.hard_only && !ev.hard {
        return Some(Rejection::Soft);
    }
    if !cfg.acknowledged && ev.flags.acknowledged {
        return Some(Rejection::Acknowledged);
    }
    if !cfg.in_downtime && ev.flags.in_downtime {
        return Some(Rejection::InDowntime);
    }
    if !cfg.flapping && ev.flags.flapping {
        return Some(Rejection::Flapping);
    }
    // is_valid_poller.
    if !names_pass(
        &cfg.accepted_pollers,
        &cfg.rejected_pollers,
        ctx.poller.as_slice(),
    ) {
        return Some(Rejection::Poller);
    }
    // is_valid_host_severity: also checked for service events, as the library does.
    if let Some(f) = cfg.host_severity_filter
        && !severity_passes(f, ctx.host_severity)
    {
        return Some(Rejection::HostSeverity);
    }
    // is_valid_service_severity.
    if service
        && let Some(f) = cfg.service_severity_filter
        && !severity_passes(f, ctx.service_severity)
    {
        return Some(Rejection::ServiceSeverity);
    }
    // is_valid_hostgroup (the host's groups, for host and service events).
    if !names_pass(
        &cfg.accepted_hostgroups,
        &cfg.rejected_hostgroups,
        &ctx.hostgroups,
    ) {
        return Some(Rejection::Hostgroup);
    }
    // is_valid_servicegroup.
    if service
        && !names_pass(
            &cfg.accepted_servicegroups,
            &cfg.rejected_servicegroups,
            &ctx.servicegroups,
        )
    {
        return Some(Rejection::Servicegroup);
    }
    None
}

/// `skip_nil_id` (the library's `is_valid_host` / `is_valid_service`): the log level of an
/// event dropped because it lacks its ids (no `host_id`, or a service status without
/// `service_id`; see [`crate::event::EventError::is_missing_id`]). Such an event is never
/// sent: its `dedup_key` is made of the ids. With 1 (default) it is dropped as a filter
/// drops an event, with a line at level 2 (the library logged it as a warning, its level 2);
/// with 0 it is an error, logged at every level: the library went on with the event there and
/// failed on it with a Lua error.
pub fn nil_id_level(cfg: &FilterOptions) -> Level {
    if cfg.skip_nil_id {
        Level::Info
    } else {
        Level::Error
    }
}

/// The library's group/poller rule, names compared exactly: with an accepted list, one of the
/// object's names must be in it (an object with none is refused); with a rejected list, none
/// may be (an object with none passes).
/// No pattern, or `name` (else `id`, as the library falls back to it) matches one of them.
fn patterns_pass(patterns: &[Pattern], name: Option<&str>, id: u64) -> bool {
    if patterns.is_empty() {
        return true;
    }
    let id_text;
    let subject = match name {
        Some(n) => n,
        None => {
            id_text = id.to_string();
            &id_text
        }
    };
    patterns.iter().any(|p| p.is_match(subject))
}

fn names_pass(accepted: &[String], rejected: &[String], names: &[String]) -> bool {
    if !accepted.is_empty() && !names.iter().any(|n| accepted.contains(n)) {
        return false;
    }
    !names.iter().any(|n| rejected.contains(n))
}

/// The library's `compare_numbers(threshold, severity, operator)`: the filter reads
/// "threshold OPERATOR severity", e.g. threshold 2 with `>=` accepts severities 2, 1, 0 (and
/// below) and refuses 3. An object without severity is refused whenever a threshold is set
/// (`compare_numbers` returns nil for a nil number, which the library treats as a failure).
fn severity_passes(f: SeverityFilter, severity: Option<i64>) -> bool {
    let Some(s) = severity else {
        return false;
    };
    let t = f.threshold;
    match f.op {
        CompareOp::Eq => t == s,
        CompareOp::Ne => t != s,
        CompareOp::Lt => t < s,
        CompareOp::Le => t <= s,
        CompareOp::Gt => t > s,
        CompareOp::Ge => t >= s,
    }
}

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

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

/// What may open an incident: the filters' parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterOptions {
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
    /// `skip_anon_events`: 1 = drop events the cache cannot name (old behaviour).
    pub skip_anon_events: bool,
    /// `skip_nil_id`: 1 (default) = an event without ids is dropped as a filter drops it;
    /// 0 = it is reported as an error (it can never be sent: its `dedup_key` needs the ids).
    pub skip_nil_id: bool,
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
}

const HOST_STATUS: Param = Param::new(
    "host_status",
    "comma list of host states that may open incidents: 0 UP, 1 DOWN, 2 UNREACHABLE (default 0,1,2)",
);
const SERVICE_STATUS: Param = Param::new(
    "service_status",
    "comma list of service states that may open incidents: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (default 0,1,2,3)",
);
const HARD_ONLY: Param = Param::flag(
    "hard_only",
    true,
    "1 (default) = only HARD states open incidents",
);
const ACKNOWLEDGED: Param = Param::flag(
    "acknowledged",
    false,
    "1 = acknowledged objects may open incidents (default 0)",
);
const IN_DOWNTIME: Param = Param::flag(
    "in_downtime",
    false,
    "1 = objects in downtime may open incidents (default 0)",
);
const FLAPPING: Param = Param::flag(
    "flapping",
    false,
    "1 = flapping objects may open incidents (default 0)",
);
const SKIP_ANON_EVENTS: Param = Param::flag(
    "skip_anon_events",
    false,
    "1 = drop events whose host or service the Broker cache cannot name (default 0: send them with their ids)",
);
const ACCEPTED_HOSTGROUPS: Param = Param::new(
    "accepted_hostgroups",
    "comma list: only hosts in one of these host groups open incidents",
);
const REJECTED_HOSTGROUPS: Param = Param::new(
    "rejected_hostgroups",
    "comma list: hosts in one of these host groups open no incident",
);
const ACCEPTED_SERVICEGROUPS: Param = Param::new(
    "accepted_servicegroups",
    "comma list: only services in one of these service groups open incidents",
);
const REJECTED_SERVICEGROUPS: Param = Param::new(
    "rejected_servicegroups",
    "comma list: services in one of these service groups open no incident",
);
const ACCEPTED_POLLERS: Param = Param::new(
    "accepted_pollers",
    "comma list: only objects monitored by one of these pollers open incidents",
);
const REJECTED_POLLERS: Param = Param::new(
    "rejected_pollers",
    "comma list: objects monitored by one of these pollers open no incident",
);
const HOST_SEVERITY_THRESHOLD: Param = Param::new(
    "host_severity_threshold",
    "integer: a host opens incidents when 'threshold OPERATOR host severity' holds",
);
const HOST_SEVERITY_OPERATOR: Param = Param::new(
    "host_severity_operator",
    "==, !=, <, <=, > or >= (default >=), see host_severity_threshold",
);
const SERVICE_SEVERITY_THRESHOLD: Param = Param::new(
    "service_severity_threshold",
    "integer: a service opens incidents when 'threshold OPERATOR service severity' holds",
);
const SERVICE_SEVERITY_OPERATOR: Param = Param::new(
    "service_severity_operator",
    "==, !=, <, <=, > or >= (default >=), see service_severity_threshold",
);
const ACCEPTED_HOSTS: Param = Param::new(
    "accepted_hosts",
    "Lua pattern a host name must match to open incidents (string.match, as the Lua library; default: all)",
);
const ACCEPTED_SERVICES: Param = Param::new(
    "accepted_services",
    "Lua pattern a service description must match to open incidents (default: all)",
);
const ACCEPTED_HOSTS_SPLIT: Param = Param::flag(
    "accepted_hosts_enable_split_pattern",
    false,
    "1 = accepted_hosts is a list of patterns (default 0)",
);
const ACCEPTED_HOSTS_SEPARATOR: Param = Param::text(
    "accepted_hosts_split_character",
    Some(","),
    "separator characters of the accepted_hosts list (default ,)",
);
const ACCEPTED_SERVICES_SPLIT: Param = Param::flag(
    "accepted_services_enable_split_pattern",
    false,
    "1 = accepted_services is a list of patterns (default 0)",
);
const ACCEPTED_SERVICES_SEPARATOR: Param = Param::text(
    "accepted_services_split_character",
    Some(","),
    "separator characters of the accepted_services list (default ,)",
);
const SKIP_NIL_ID: Param = Param::flag(
    "skip_nil_id",
    true,
    "1 (default) = an event without host_id (or a service status without service_id) is dropped, with a line at log level 2; 0 = it is logged as an error (it cannot be sent: its dedup_key needs the ids)",
);

/// The filters' parameters, in the order of the documentation.
pub(crate) const PARAMS: &[Param] = &[
    HOST_STATUS,
    SERVICE_STATUS,
    HARD_ONLY,
    ACKNOWLEDGED,
    IN_DOWNTIME,
    FLAPPING,
    SKIP_ANON_EVENTS,
    ACCEPTED_HOSTGROUPS,
    REJECTED_HOSTGROUPS,
    ACCEPTED_SERVICEGROUPS,
    REJECTED_SERVICEGROUPS,
    ACCEPTED_POLLERS,
    REJECTED_POLLERS,
    HOST_SEVERITY_THRESHOLD,
    HOST_SEVERITY_OPERATOR,
    SERVICE_SEVERITY_THRESHOLD,
    SERVICE_SEVERITY_OPERATOR,
    ACCEPTED_HOSTS,
    ACCEPTED_SERVICES,
    ACCEPTED_HOSTS_SPLIT,
    ACCEPTED_HOSTS_SEPARATOR,
    ACCEPTED_SERVICES_SPLIT,
    ACCEPTED_SERVICES_SEPARATOR,
    SKIP_NIL_ID,
];

impl FilterOptions {
    /// Reads the filters' parameters.
    pub(crate) fn read(r: &mut ParamReader) -> Result<FilterOptions, ConfigError> {
        let host_status = match r.take(&HOST_STATUS) {
            None => vec![0, 1, 2],
            Some(e) => states(&e, 2, "0 UP, 1 DOWN, 2 UNREACHABLE")?,
        };
        let service_status = match r.take(&SERVICE_STATUS) {
            None => vec![0, 1, 2, 3],
            Some(e) => states(&e, 3, "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN")?,
        };
        let hard_only = r.flag(&HARD_ONLY)?;
        let acknowledged = r.flag(&ACKNOWLEDGED)?;
        let in_downtime = r.flag(&IN_DOWNTIME)?;
        let flapping = r.flag(&FLAPPING)?;
        let skip_anon_events = r.flag(&SKIP_ANON_EVENTS)?;
        let skip_nil_id = r.flag(&SKIP_NIL_ID)?;
        let (accepted_hostgroups, rejected_hostgroups) =
            r.list_pair(&ACCEPTED_HOSTGROUPS, &REJECTED_HOSTGROUPS)?;
        let (accepted_servicegroups, rejected_servicegroups) =
            r.list_pair(&ACCEPTED_SERVICEGROUPS, &REJECTED_SERVICEGROUPS)?;
        let accepted_hosts = patterns(
            r,
            &ACCEPTED_HOSTS,
            &ACCEPTED_HOSTS_SPLIT,
            &ACCEPTED_HOSTS_SEPARATOR,
        )?;
        let accepted_services = patterns(
            r,
            &ACCEPTED_SERVICES,
            &ACCEPTED_SERVICES_SPLIT,
            &ACCEPTED_SERVICES_SEPARATOR,
        )?;
        let (accepted_pollers, rejected_pollers) =
            r.list_pair(&ACCEPTED_POLLERS, &REJECTED_POLLERS)?;
        let host_severity_filter =
            severity_filter(r, &HOST_SEVERITY_THRESHOLD, &HOST_SEVERITY_OPERATOR)?;
        let service_severity_filter =
            severity_filter(r, &SERVICE_SEVERITY_THRESHOLD, &SERVICE_SEVERITY_OPERATOR)?;
        Ok(FilterOptions {
            host_status,
            service_status,
            hard_only,
            acknowledged,
            in_downtime,
            flapping,
            skip_anon_events,
            skip_nil_id,
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
        })
    }
}

/// A comma list of states from 0 to `max`, sorted.
fn states(e: &Given, max: i64, names: &str) -> Result<Vec<i64>, ConfigError> {
    let bad = || {
        e.err(format!(
            "expected a comma separated list of states from 0 to {max} ({names}), got {}",
            e.shown()
        ))
    };
    let mut out = Vec::new();
    for item in e.list()? {
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

/// `accepted_hosts`-style Lua patterns: one pattern, or with `split` set a list cut at any
/// character of `separator` (the library's `sc_common:split`). A pattern Lua would refuse is
/// an error naming the parameter, with Lua's message.
fn patterns(
    r: &mut ParamReader,
    row: &Param,
    split: &Param,
    separator_row: &Param,
) -> Result<Vec<Pattern>, ConfigError> {
    let split = r.flag(split)?;
    let separator = r.text(separator_row)?.unwrap_or_default();
    let Some(e) = r.take(row) else {
        return Ok(Vec::new());
    };
    let text = e.text()?;
    let texts = if split {
        luapattern::split(&text, &separator).map_err(|er| {
            e.err(format!(
                "cannot be split at the separator of '{}': {er}",
                separator_row.name
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

/// A "threshold OPERATOR severity" filter; the operator alone has no effect (a warning).
fn severity_filter(
    r: &mut ParamReader,
    threshold: &Param,
    operator: &Param,
) -> Result<Option<SeverityFilter>, ConfigError> {
    let t = r.take(threshold);
    let o = r.take(operator);
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
            r.warn(format!(
                "parameter '{}' has no effect without '{}'",
                o.written, threshold.name
            ));
            Ok(None)
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests;
