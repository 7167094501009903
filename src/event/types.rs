//! The event types we handle, in one table: category, element, Broker's name, BBDO version, host or service, and kind.
//!
//! Everything that needs to know an event type reads it here: the classification of raw events
//! ([`EventClass::of`]), the `accepted_elements` option, the `format_file` template keys, and
//! the Lua bridge (the library hands it the accepted types at `init`, see `crate::lua`).

use super::{Bbdo, CATEGORY_NEB, EventClass, Kind, element::*, event_type};

/// One event type of Broker's (category `neb`; see the Broker contract, section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    pub category: u32,
    pub element: u32,
    /// Broker's name of the element (`pb_` names are BBDO 3's).
    pub name: &'static str,
    /// What the event is: a status, an adaptive status, an acknowledgement or a downtime, with
    /// its BBDO version and, for (adaptive) statuses, host or service.
    pub class: EventClass,
    /// The `accepted_elements` names that select it (the first one is the documented name;
    /// empty: never named, implied by the status types it qualifies).
    pub selected_by: &'static [&'static str],
}

const fn neb(
    element: u32,
    name: &'static str,
    class: EventClass,
    selected_by: &'static [&'static str],
) -> EventType {
    EventType {
        category: CATEGORY_NEB,
        element,
        name,
        class,
        selected_by,
    }
}

const HOST_STATUS_NAMES: &[&str] = &["host_status", "pb_host_status"];
const SERVICE_STATUS_NAMES: &[&str] = &["service_status", "pb_service_status"];

/// Every event type the library acts on.
pub const EVENT_TYPES: [EventType; 10] = [
    neb(
        HOST_STATUS,
        "host_status",
        EventClass::Status(Kind::Host, Bbdo::V2),
        HOST_STATUS_NAMES,
    ),
    neb(
        SERVICE_STATUS,
        "service_status",
        EventClass::Status(Kind::Service, Bbdo::V2),
        SERVICE_STATUS_NAMES,
    ),
    neb(
        PB_HOST_STATUS,
        "pb_host_status",
        EventClass::Status(Kind::Host, Bbdo::V3),
        HOST_STATUS_NAMES,
    ),
    neb(
        PB_SERVICE_STATUS,
        "pb_service_status",
        EventClass::Status(Kind::Service, Bbdo::V3),
        SERVICE_STATUS_NAMES,
    ),
    neb(
        PB_ADAPTIVE_HOST_STATUS,
        "pb_adaptive_host_status",
        EventClass::Adaptive(Kind::Host),
        &[],
    ),
    neb(
        PB_ADAPTIVE_SERVICE_STATUS,
        "pb_adaptive_service_status",
        EventClass::Adaptive(Kind::Service),
        &[],
    ),
    neb(
        ACKNOWLEDGEMENT,
        "acknowledgement",
        EventClass::Acknowledgement(Bbdo::V2),
        &["acknowledgement"],
    ),
    neb(
        PB_ACKNOWLEDGEMENT,
        "pb_acknowledgement",
        EventClass::Acknowledgement(Bbdo::V3),
        &["acknowledgement"],
    ),
    neb(
        DOWNTIME,
        "downtime",
        EventClass::Downtime(Bbdo::V2),
        &["downtime"],
    ),
    neb(
        PB_DOWNTIME,
        "pb_downtime",
        EventClass::Downtime(Bbdo::V3),
        &["downtime"],
    ),
];

impl EventType {
    /// The row of `(category, element)`, if we handle it.
    pub fn of(category: u32, element: u32) -> Option<&'static EventType> {
        EVENT_TYPES
            .iter()
            .find(|t| t.category == category && t.element == element)
    }

    /// The row of an `_type` value, if we handle it.
    pub fn of_type(t: u32) -> Option<&'static EventType> {
        Self::of(t >> 16, t & 0xffff)
    }

    /// Its `_type`: `(category << 16) | element`.
    pub const fn type_id(&self) -> u32 {
        event_type(self.category, self.element)
    }

    pub fn bbdo(&self) -> Bbdo {
        match self.class {
            EventClass::Status(_, b) | EventClass::Acknowledgement(b) | EventClass::Downtime(b) => {
                b
            }
            EventClass::Adaptive(_) => Bbdo::V3,
        }
    }

    /// Host or service, for a status or an adaptive status (`None`: the event names either).
    pub fn object(&self) -> Option<Kind> {
        match self.class {
            EventClass::Status(k, _) | EventClass::Adaptive(k) => Some(k),
            EventClass::Acknowledgement(_) | EventClass::Downtime(_) => None,
        }
    }

    /// The `_type`s an `accepted_elements` name selects (both BBDO versions), if it names one.
    pub fn selected_by(name: &str) -> Option<Vec<u32>> {
        let types: Vec<u32> = EVENT_TYPES
            .iter()
            .filter(|t| t.selected_by.contains(&name))
            .map(EventType::type_id)
            .collect();
        (!types.is_empty()).then_some(types)
    }

    /// An `accepted_elements` name as documented (`host_status`, not `pb_host_status`).
    pub fn is_documented_name(name: &str) -> bool {
        EVENT_TYPES
            .iter()
            .any(|t| t.selected_by.first() == Some(&name))
    }
}

/// Categories Broker knows (only `neb` is of use to us).
pub const KNOWN_CATEGORIES: &[&str] = &[
    "neb",
    "bbdo",
    "storage",
    "correlation",
    "dumper",
    "bam",
    "extcmd",
];

/// Element names the Centreon stream-connectors library knows, other than the ones we handle.
pub const KNOWN_ELEMENTS: &[&str] = &[
    "comment",
    "custom_variable",
    "custom_variable_status",
    "event_handler",
    "flapping_status",
    "host_check",
    "host_dependency",
    "host_group",
    "host_group_member",
    "host",
    "host_parent",
    "instance",
    "instance_status",
    "log_entry",
    "module",
    "service_check",
    "service_dependency",
    "service_group",
    "service_group_member",
    "service",
    "instance_configuration",
    "responsive_instance",
    "pb_service",
    "pb_adaptive_service",
    "pb_host",
    "pb_adaptive_host",
    "pb_severity",
    "pb_tag",
    "metric",
    "rebuild",
    "remove_graph",
    "status",
    "index_mapping",
    "metric_mapping",
    "ba_status",
    "kpi_status",
    "meta_service_status",
    "ba_event",
    "kpi_event",
    "ba_duration_event",
    "dimension_ba_event",
    "dimension_kpi_event",
    "dimension_ba_bv_relation_event",
    "dimension_bv_event",
    "dimension_truncate_table_signal",
    "bam_rebuild",
    "dimension_timeperiod",
    "dimension_ba_timeperiod_relation",
    "dimension_timeperiod_exception",
    "dimension_timeperiod_exclusion",
    "inherited_downtime",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_once_and_its_class_matches_its_name() {
        for (i, t) in EVENT_TYPES.iter().enumerate() {
            assert!(
                EVENT_TYPES[i + 1..]
                    .iter()
                    .all(|u| u.type_id() != t.type_id() && u.name != t.name),
                "{} twice",
                t.name
            );
            assert_eq!(
                t.name.starts_with("pb_"),
                t.bbdo() == Bbdo::V3,
                "{}",
                t.name
            );
            assert_eq!(EventType::of_type(t.type_id()), Some(t));
            assert!(!KNOWN_ELEMENTS.contains(&t.name), "{} is handled", t.name);
        }
        assert_eq!(EventType::of(1, 23), None);
        assert_eq!(EventType::of(2, HOST_STATUS), None);
    }

    #[test]
    fn accepted_element_names_select_both_bbdo_versions() {
        assert_eq!(
            EventType::selected_by("pb_host_status"),
            Some(vec![65550, 65568])
        );
        assert_eq!(
            EventType::selected_by("acknowledgement"),
            Some(vec![65537, 65581])
        );
        assert_eq!(EventType::selected_by("pb_acknowledgement"), None);
        assert_eq!(EventType::selected_by("pb_adaptive_host_status"), None);
        assert!(EventType::is_documented_name("downtime"));
        assert!(!EventType::is_documented_name("pb_service_status"));
    }
}
