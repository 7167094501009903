//! What to send for a status: remembers, per object, what was observed and which incident is open.
//!
//! The rules (README, "How Centreon states become PagerDuty incidents"):
//! - a problem that passes the filters and has no open incident, or whose state differs from
//!   the one sent, triggers (same `dedup_key`, so PagerDuty updates the open incident);
//! - a problem already sent is not sent again; when it becomes acknowledged in Centreon the
//!   incident is acknowledged;
//! - a recovery resolves the open incident whatever the filters say (downtime, flapping,
//!   acknowledgement): an incident is never left open by a filter;
//! - a recovery of an object we have no memory of (first event after a start) is resolved
//!   when the event is the state change itself, so incidents opened before a restart or by
//!   the old Lua connector still close; other OK statuses of unknown objects send nothing.

use std::collections::HashMap;
use std::fmt;

use crate::config::Config;
use crate::event::{Flags, Kind, ObjectKey, StatusEvent};
use crate::filter::{self, Rejection};
use crate::outbox::ObjectState;
use crate::payload::Action;

/// The part of a status that can change a decision. Two statuses with the same `Observed`
/// lead to the same decision, so the fast path can skip an unchanged object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub state: i64,
    pub hard: bool,
    pub flags: Flags,
}

impl Observed {
    pub fn of(ev: &StatusEvent) -> Observed {
        Observed {
            state: ev.state,
            hard: ev.hard,
            flags: ev.flags,
        }
    }
}

/// The incident we believe PagerDuty holds for an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incident {
    None,
    Open { state: i64, acknowledged: bool },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    observed: Observed,
    incident: Incident,
}

/// Why nothing is sent for a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Same state as the one already sent.
    AlreadySent,
    /// A recovery with no incident to resolve.
    NoIncident,
    /// PENDING: no check result yet.
    Pending,
    /// The problem does not pass the filters.
    Filtered(Rejection),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::AlreadySent => f.write_str("state already sent"),
            Skip::NoIncident => f.write_str("recovery with no open incident"),
            Skip::Pending => f.write_str("pending state"),
            Skip::Filtered(r) => write!(f, "filtered: {r}"),
        }
    }
}

/// The outcome for one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send(Action),
    Skip(Skip),
}

/// Per-object memory of one connector.
#[derive(Debug, Default)]
pub struct Memory {
    objects: HashMap<ObjectKey, Entry>,
}

impl Memory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fast path: true when this object was seen with exactly this observation, so the
    /// decision is "nothing to send" without looking at the rest of the event.
    pub fn unchanged(&self, key: ObjectKey, observed: Observed) -> bool {
        self.objects
            .get(&key)
            .is_some_and(|e| e.observed == observed)
    }

    /// The incident we believe is open for `key`.
    pub fn incident(&self, key: ObjectKey) -> Incident {
        self.objects
            .get(&key)
            .map_or(Incident::None, |e| e.incident)
    }

    /// Restores incident states persisted by an earlier run. The objects count as known, and
    /// their first status is examined in full.
    pub fn restore(&mut self, states: impl IntoIterator<Item = ObjectState>) {
        for s in states {
            let incident = match s.open_state {
                Some(state) => Incident::Open {
                    state,
                    acknowledged: s.acknowledged,
                },
                None => Incident::None,
            };
            self.objects.insert(
                s.key,
                Entry {
                    observed: Observed {
                        state: -1,
                        hard: false,
                        flags: Flags::default(),
                    },
                    incident,
                },
            );
        }
    }

    /// The incident state of `key`, as persisted.
    pub fn state(&self, key: ObjectKey) -> ObjectState {
        let (open_state, acknowledged) = match self.incident(key) {
            Incident::Open {
                state,
                acknowledged,
            } => (Some(state), acknowledged),
            Incident::None => (None, false),
        };
        ObjectState {
            key,
            open_state,
            acknowledged,
        }
    }

    /// Records a Centreon acknowledgement; true when an open, not yet acknowledged incident
    /// must now be acknowledged in PagerDuty.
    pub fn acknowledge(&mut self, key: ObjectKey) -> bool {
        match self.objects.get_mut(&key) {
            Some(Entry {
                incident: Incident::Open { acknowledged, .. },
                ..
            }) if !*acknowledged => {
                *acknowledged = true;
                true
            }
            _ => false,
        }
    }

    /// Number of objects remembered.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Decides what to send for `ev` and records it.
    pub fn decide(&mut self, cfg: &Config, ev: &StatusEvent) -> Decision {
        let known = self.objects.get(&ev.key).copied();
        let incident = known.map_or(Incident::None, |e| e.incident);
        let (decision, incident) = decide(cfg, ev, known.is_some(), incident);
        self.objects.insert(
            ev.key,
            Entry {
                observed: Observed::of(ev),
                incident,
            },
        );
        decision
    }
}

fn decide(cfg: &Config, ev: &StatusEvent, known: bool, incident: Incident) -> (Decision, Incident) {
    let pending = ev.kind() == Kind::Service && ev.state == 4;
    if ev.state == 0 {
        return match incident {
            Incident::Open { .. } => (Decision::Send(Action::Resolve), Incident::None),
            Incident::None if !known && ev.is_state_change() => {
                (Decision::Send(Action::Resolve), Incident::None)
            }
            Incident::None => (Decision::Skip(Skip::NoIncident), Incident::None),
        };
    }
    if pending {
        return (Decision::Skip(Skip::Pending), incident);
    }
    if let Incident::Open {
        state,
        acknowledged,
    } = incident
        && state == ev.state
    {
        return if ev.flags.acknowledged && !acknowledged {
            (
                Decision::Send(Action::Acknowledge),
                Incident::Open {
                    state,
                    acknowledged: true,
                },
            )
        } else {
            (Decision::Skip(Skip::AlreadySent), incident)
        };
    }
    if let Some(rejection) = filter::problem_filter(cfg, ev) {
        return (Decision::Skip(Skip::Filtered(rejection)), incident);
    }
    (
        Decision::Send(Action::Trigger),
        Incident::Open {
            state: ev.state,
            acknowledged: false,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ParamValue};
    use crate::event::{Bbdo, Context};

    fn cfg() -> Config {
        let params = vec![(
            "pdy_routing_key".to_string(),
            ParamValue::Str("abcdefghijklmnopqrstuvwxyz012345".into()),
        )];
        Config::from_params(&params).unwrap().0
    }

    fn svc(state: i64, hard: bool, flags: Flags, change: bool) -> StatusEvent {
        StatusEvent {
            bbdo: Bbdo::V3,
            key: ObjectKey {
                host_id: 1,
                service_id: 2,
            },
            state,
            hard,
            check_attempt: None,
            max_check_attempts: None,
            last_check: Some(100),
            last_state_change: Some(if change { 100 } else { 50 }),
            last_hard_state_change: None,
            output: String::new(),
            long_output: String::new(),
            perfdata: String::new(),
            flags,
            ctx: Context::default(),
        }
    }

    const NONE: Flags = Flags {
        acknowledged: false,
        in_downtime: false,
        flapping: false,
    };

    #[test]
    fn table_of_transitions() {
        let c = cfg();
        let dt = Flags {
            in_downtime: true,
            ..NONE
        };
        let ack = Flags {
            acknowledged: true,
            ..NONE
        };
        // (event, expected decision), applied in order on one memory.
        let steps: Vec<(StatusEvent, Decision)> = vec![
            (svc(0, true, NONE, false), Decision::Skip(Skip::NoIncident)),
            (
                svc(2, false, NONE, true),
                Decision::Skip(Skip::Filtered(Rejection::Soft)),
            ),
            (svc(2, true, NONE, true), Decision::Send(Action::Trigger)),
            (svc(2, true, NONE, false), Decision::Skip(Skip::AlreadySent)),
            (svc(1, true, NONE, true), Decision::Send(Action::Trigger)),
            (
                svc(1, true, ack, false),
                Decision::Send(Action::Acknowledge),
            ),
            (svc(1, true, ack, false), Decision::Skip(Skip::AlreadySent)),
            (svc(0, true, dt, true), Decision::Send(Action::Resolve)),
            (svc(0, true, NONE, false), Decision::Skip(Skip::NoIncident)),
            (
                svc(2, true, dt, true),
                Decision::Skip(Skip::Filtered(Rejection::InDowntime)),
            ),
            // downtime ends while still CRITICAL: the problem is not lost
            (svc(2, true, NONE, false), Decision::Send(Action::Trigger)),
            (svc(4, true, NONE, true), Decision::Skip(Skip::Pending)),
        ];
        let mut m = Memory::new();
        for (i, (ev, want)) in steps.iter().enumerate() {
            assert_eq!(m.decide(&c, ev), *want, "step {i}");
        }
    }

    #[test]
    fn unknown_object_recovery_state_change_resolves() {
        let c = cfg();
        let mut m = Memory::new();
        assert_eq!(
            m.decide(&c, &svc(0, true, NONE, true)),
            Decision::Send(Action::Resolve)
        );
        // once known, a later OK state change with no incident sends nothing
        assert_eq!(
            m.decide(&c, &svc(0, true, NONE, true)),
            Decision::Skip(Skip::NoIncident)
        );
    }

    #[test]
    fn fast_path_matches_memory() {
        let c = cfg();
        let mut m = Memory::new();
        let ev = svc(2, true, NONE, true);
        assert!(!m.unchanged(ev.key, Observed::of(&ev)));
        m.decide(&c, &ev);
        assert!(m.unchanged(ev.key, Observed::of(&ev)));
        let acked = svc(
            2,
            true,
            Flags {
                acknowledged: true,
                ..NONE
            },
            false,
        );
        assert!(!m.unchanged(acked.key, Observed::of(&acked)));
        assert_eq!(
            m.incident(ev.key),
            Incident::Open {
                state: 2,
                acknowledged: false
            }
        );
    }
}
