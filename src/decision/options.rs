//! The decisions' options: filters, repeated problems, acknowledgements, downtimes, services of
//! down hosts; their parameters.

use super::filter::FilterOptions;
use crate::event::Kind;
use crate::params::{ConfigError, Param, ParamReader};

/// `downtime_action`: what a downtime does to an object's incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DowntimeAction {
    /// No new incident while the object is in downtime; a recovery still resolves, and a
    /// problem still present when the downtime ends is triggered then.
    Suppress,
    /// As `Suppress`, and the open incident is resolved when the downtime starts.
    Resolve,
}

/// What the state machine decides with.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionOptions {
    /// Which problems may open incidents.
    pub filter: FilterOptions,
    /// `enable_host_status_dedup`: 0 = repeated host problem statuses are sent again.
    pub host_status_dedup: bool,
    /// `enable_service_status_dedup`: 0 = repeated service problem statuses are sent again.
    pub service_status_dedup: bool,
    /// `send_acknowledgements`: 1 (default) = a Centreon acknowledgement acknowledges the
    /// open incident.
    pub send_acknowledgements: bool,
    /// `downtime_action`: what a downtime does to an object's incidents.
    pub downtime_action: DowntimeAction,
    /// `suppress_services_of_down_hosts`: 1 = service problems of a DOWN or UNREACHABLE host
    /// are listed in the host's incident instead of opening their own.
    pub suppress_services_of_down_hosts: bool,
}

const SEND_ACKNOWLEDGEMENTS: Param = Param::flag(
    "send_acknowledgements",
    true,
    "1 (default) = a Centreon acknowledgement acknowledges the open incident, with its author and comment; 0 = never",
);
const DOWNTIME_ACTION: Param = Param::new(
    "downtime_action",
    "suppress (default: no new incident in a downtime; a recovery still resolves) or resolve (also resolve the open incident when a downtime starts)",
);
const SUPPRESS_SERVICES_OF_DOWN_HOSTS: Param = Param::flag(
    "suppress_services_of_down_hosts",
    false,
    "1 = service problems of a DOWN or UNREACHABLE host open no incident of their own: they are listed in the host's incident, and triggered if the host comes back UP while they still fail (default 0)",
);
const HOST_STATUS_DEDUP: Param = Param::flag(
    "enable_host_status_dedup",
    true,
    "1 (default) = a host problem already sent is not sent again; 0 = every status of a host in a problem state is sent again (trigger, same dedup_key: PagerDuty adds it to the incident)",
);
const SERVICE_STATUS_DEDUP: Param = Param::flag(
    "enable_service_status_dedup",
    true,
    "1 (default) = a service problem already sent is not sent again; 0 = every status of a service in a problem state is sent again",
);

/// The decisions' own parameters (the filters' are [`super::filter::PARAMS`]).
pub(crate) const PARAMS: &[Param] = &[
    SEND_ACKNOWLEDGEMENTS,
    DOWNTIME_ACTION,
    SUPPRESS_SERVICES_OF_DOWN_HOSTS,
    HOST_STATUS_DEDUP,
    SERVICE_STATUS_DEDUP,
];

impl DecisionOptions {
    /// Reads the decisions' parameters, the filters' included.
    pub(crate) fn read(r: &mut ParamReader) -> Result<DecisionOptions, ConfigError> {
        let filter = FilterOptions::read(r)?;
        let host_status_dedup = r.flag(&HOST_STATUS_DEDUP)?;
        let service_status_dedup = r.flag(&SERVICE_STATUS_DEDUP)?;
        let send_acknowledgements = r.flag(&SEND_ACKNOWLEDGEMENTS)?;
        let downtime_action = match r.take(&DOWNTIME_ACTION) {
            None => DowntimeAction::Suppress,
            Some(e) => match e.text()?.trim().to_ascii_lowercase().as_str() {
                "suppress" => DowntimeAction::Suppress,
                "resolve" if filter.in_downtime => {
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
        let suppress_services_of_down_hosts = r.flag(&SUPPRESS_SERVICES_OF_DOWN_HOSTS)?;
        Ok(DecisionOptions {
            filter,
            host_status_dedup,
            service_status_dedup,
            send_acknowledgements,
            downtime_action,
            suppress_services_of_down_hosts,
        })
    }

    /// Is a repeated problem status of this kind of object left unsent
    /// (`enable_host_status_dedup` / `enable_service_status_dedup`)?
    pub fn dedup(&self, kind: Kind) -> bool {
        match kind {
            Kind::Host => self.host_status_dedup,
            Kind::Service => self.service_status_dedup,
        }
    }
}
