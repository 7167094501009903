//! Which Broker events are read: `accepted_categories` and `accepted_elements`, the names
//! Broker and the stream-connectors library give categories and elements.

use super::{KNOWN_CATEGORIES, KNOWN_ELEMENTS};
use crate::params::{ConfigError, Param, ParamReader};

const ACCEPTED_CATEGORIES: Param = Param::new(
    "accepted_categories",
    "comma list of Broker categories; only neb events become incidents (default neb)",
);
const ACCEPTED_ELEMENTS: Param = Param::new(
    "accepted_elements",
    "comma list among host_status, service_status, acknowledgement, downtime (default host_status,service_status); acknowledgements (see send_acknowledgements) and BBDO 3 adaptive statuses of accepted objects are always handled",
);

/// The parameters of the events read.
pub(crate) const PARAMS: &[Param] = &[ACCEPTED_CATEGORIES, ACCEPTED_ELEMENTS];

/// The BBDO 2 and BBDO 3 `_type`s of an element name we handle (the table of event types).
fn handled_element(name: &str) -> Option<Vec<u32>> {
    super::EventType::selected_by(name)
}

/// Event types handled whenever the status types they qualify are: adaptive statuses (BBDO 3
/// acknowledgement and downtime changes) and, with `send_acknowledgements`, acknowledgements.
pub(crate) fn implied_types(types: &[u32], send_acknowledgements: bool) -> Vec<u32> {
    use super::{CATEGORY_NEB, element::*, event_type};
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

/// `accepted_categories` x `accepted_elements`, as `_type` numbers (both BBDO versions),
/// before [`implied_types`] adds the types they imply.
pub(crate) fn read_accepted_types(r: &mut ParamReader) -> Result<Vec<u32>, ConfigError> {
    if let Some(e) = r.take(&ACCEPTED_CATEGORIES) {
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
    match r.take(&ACCEPTED_ELEMENTS) {
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
