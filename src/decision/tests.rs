//! Tests of `decision`.

use super::*;
use crate::config::{Config, ParamValue};
use crate::event::{Bbdo, Context};

fn cfg_with(extra: &[(&str, &str)]) -> DecisionOptions {
    let mut params = vec![(
        "pdy_routing_key".to_string(),
        ParamValue::Str("abcdefghijklmnopqrstuvwxyz012345".into()),
    )];
    for (k, v) in extra {
        params.push((k.to_string(), ParamValue::Str(v.to_string())));
    }
    Config::from_params(&params).unwrap().0.decision
}

fn cfg() -> DecisionOptions {
    cfg_with(&[])
}

const SVC: ObjectKey = ObjectKey::new(1, 2);
const SVC2: ObjectKey = ObjectKey::new(1, 3);
const HOST: ObjectKey = ObjectKey::new(1, 0);

std::thread_local! {
    /// The check time of the next status: each one is a new check.
    static CLOCK: std::cell::Cell<i64> = const { std::cell::Cell::new(1_000) };
}

/// A status of a new check (its time after every earlier one of this test).
fn status(key: ObjectKey, state: i64, hard: bool, flags: Flags, change: bool) -> StatusEvent {
    let now = CLOCK.with(|c| {
        c.set(c.get() + 60);
        c.get()
    });
    StatusEvent {
        bbdo: Bbdo::V3,
        key,
        state,
        hard,
        check_attempt: None,
        max_check_attempts: None,
        last_check: Some(now),
        last_state_change: Some(if change { now } else { now - 30 }),
        last_hard_state_change: None,
        output: String::new(),
        long_output: String::new(),
        perfdata: String::new(),
        flags,
        ctx: Context::default(),
    }
}

fn svc(state: i64, hard: bool, flags: Flags, change: bool) -> StatusEvent {
    status(SVC, state, hard, flags, change)
}

const NONE: Flags = Flags {
    acknowledged: false,
    in_downtime: false,
    flapping: false,
};
const DT: Flags = Flags {
    in_downtime: true,
    ..NONE
};
const ACK: Flags = Flags {
    acknowledged: true,
    ..NONE
};
const FLAP: Flags = Flags {
    flapping: true,
    ..NONE
};

fn adaptive(
    key: ObjectKey,
    acknowledged: Option<bool>,
    in_downtime: Option<bool>,
) -> AdaptiveEvent {
    AdaptiveEvent {
        key,
        acknowledged,
        in_downtime,
        ctx: Context::default(),
    }
}

/// `(object, action)` of every step, in order.
fn sent(o: &Outcome) -> Vec<(ObjectKey, Action)> {
    o.steps.iter().map(|s| (s.key, s.action)).collect()
}

/// The fast path's question without flags (`stays_ok`) is answered yes only for an
/// object last seen OK with the same state type, and then, whatever its flags were and
/// are (every combination, under every downtime_action and with acknowledgements sent or
/// not), examining the status in full would have sent nothing either.
#[test]
fn an_object_that_stays_ok_needs_no_flags() {
    let mut m = Memory::new();
    let c = cfg();
    assert!(!m.stays_ok(SVC, 0), "never seen");
    m.decide(&c, &svc(0, true, NONE, false));
    assert!(m.stays_ok(SVC, 0));
    assert!(!m.stays_ok(SVC, 2), "a problem");
    assert!(!m.stays_ok(SVC2, 0), "another object");
    m.decide(&c, &svc(2, true, NONE, true));
    assert!(!m.stays_ok(SVC, 0), "a recovery is examined in full");
    m.restore([ObjectState {
        key: HOST,
        open_state: Some(1),
        acknowledged: false,
        names: None,
        last: None,
    }]);
    assert!(!m.stays_ok(HOST, 0), "restored, not yet seen");

    let all = [
        NONE,
        DT,
        ACK,
        FLAP,
        Flags {
            acknowledged: true,
            in_downtime: true,
            flapping: true,
        },
    ];
    for extra in [
        &[][..],
        &[("hard_only", "0")],
        &[("downtime_action", "resolve")],
        &[("send_acknowledgements", "0")],
    ] {
        let c = cfg_with(extra);
        for before in all {
            for now in all {
                for change in [false, true] {
                    // the problem, the OK that ended it and the next OK: HARD or SOFT each
                    for types in 0..8u8 {
                        let [problem, ok, again] = [0, 1, 2].map(|bit| types & (1 << bit) != 0);
                        let mut m = Memory::new();
                        m.decide(&c, &svc(2, problem, before, true));
                        m.decide(&c, &svc(0, ok, before, true));
                        assert!(m.stays_ok(SVC, 0));
                        let out = m.decide(&c, &svc(0, again, now, change));
                        assert!(
                            out.steps.is_empty() && !out.ack_removed,
                            "{extra:?} {before:?} -> {now:?} {types}: {:?}",
                            sent(&out)
                        );
                        assert_eq!(m.incident(SVC), Incident::None);
                    }
                }
            }
        }
    }
}

#[test]
fn key_hasher_spreads_neighbouring_ids() {
    use std::hash::BuildHasher;
    let b = BuildHasherDefault::<KeyHasher>::default();
    let mut low_bits = std::collections::HashSet::new();
    for host_id in 1..=50u64 {
        for service_id in 0..20u64 {
            let h = b.hash_one(ObjectKey {
                host_id,
                service_id,
            });
            low_bits.insert(h & 0x3ff);
        }
    }
    // 1,000 keys into 1,024 buckets: a good spread fills most of them
    assert!(low_bits.len() > 550, "{} distinct buckets", low_bits.len());
}

/// The status an incident was triggered with is copied only where the configuration can
/// use it again (about a kilobyte per open incident otherwise spent for nothing).
#[test]
fn the_triggering_status_is_kept_only_when_used() {
    let kept = |m: &Memory, key| m.objects[&key].sent.is_some();
    let mut m = Memory::new();
    let c = cfg();
    m.decide(&c, &svc(2, true, NONE, true));
    m.decide(&c, &status(HOST, 1, true, NONE, true));
    assert!(!kept(&m, SVC) && !kept(&m, HOST));

    let c = cfg_with(&[("downtime_action", "resolve")]);
    let mut m = Memory::new();
    m.decide(&c, &svc(2, true, NONE, true));
    assert!(
        kept(&m, SVC),
        "held again when a downtime resolves the incident"
    );

    let c = cfg_with(&[("suppress_services_of_down_hosts", "1")]);
    let mut m = Memory::new();
    m.decide(&c, &svc(2, true, NONE, true));
    m.decide(&c, &status(HOST, 1, true, NONE, true));
    assert!(
        kept(&m, HOST),
        "re-sent with the list of suppressed services"
    );
    assert!(!kept(&m, SVC));
}

#[test]
fn table_of_transitions() {
    let c = cfg();
    // (event, expected decision), applied in order on one memory.
    let steps: Vec<(StatusEvent, Result<Action, Skip>)> = vec![
        (svc(0, true, NONE, false), Err(Skip::NoIncident)),
        (
            svc(2, false, NONE, true),
            Err(Skip::Filtered(Rejection::Soft)),
        ),
        (svc(2, true, NONE, true), Ok(Action::Trigger)),
        (svc(2, true, NONE, false), Err(Skip::AlreadySent)),
        (svc(1, true, NONE, true), Ok(Action::Trigger)),
        (svc(1, true, ACK, false), Ok(Action::Acknowledge)),
        (svc(1, true, ACK, false), Err(Skip::AlreadySent)),
        (svc(0, true, DT, true), Ok(Action::Resolve)),
        (svc(0, true, NONE, false), Err(Skip::NoIncident)),
        (
            svc(2, true, DT, true),
            Err(Skip::Held(Rejection::InDowntime)),
        ),
        // downtime ends while still CRITICAL: the problem is not lost
        (svc(2, true, NONE, false), Ok(Action::Trigger)),
        (svc(4, true, NONE, true), Err(Skip::Pending)),
    ];
    let mut m = Memory::new();
    for (i, (ev, want)) in steps.iter().enumerate() {
        let o = m.decide(&c, ev);
        match want {
            Ok(action) => assert_eq!(sent(&o), [(SVC, *action)], "step {i}"),
            Err(skip) => {
                assert_eq!(o.skip, Some(*skip), "step {i}");
                assert!(o.steps.is_empty(), "step {i}");
            }
        }
    }
}

#[test]
fn unknown_object_recovery_state_change_resolves() {
    let c = cfg();
    let mut m = Memory::new();
    assert_eq!(
        sent(&m.decide(&c, &svc(0, true, NONE, true))),
        [(SVC, Action::Resolve)]
    );
    // once known, a later OK state change with no incident sends nothing
    assert_eq!(
        m.decide(&c, &svc(0, true, NONE, true)).skip,
        Some(Skip::NoIncident)
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
    let acked = svc(2, true, ACK, false);
    assert!(!m.unchanged(acked.key, Observed::of(&acked)));
    assert_eq!(
        m.incident(ev.key),
        Incident::Open {
            state: 2,
            acknowledged: false
        }
    );
    // an adaptive status updates what the fast path compares with
    m.adapt(&c, &adaptive(SVC, Some(true), None));
    assert!(m.unchanged(acked.key, Observed::of(&acked)));
}

#[test]
fn problem_in_downtime_is_triggered_when_an_adaptive_status_ends_it() {
    let c = cfg();
    let mut m = Memory::new();
    let mut ev = svc(2, true, DT, true);
    ev.output = "CRITICAL - started in the downtime".into();
    assert_eq!(
        m.decide(&c, &ev).skip,
        Some(Skip::Held(Rejection::InDowntime))
    );
    // another downtime change that keeps it in downtime: still held
    assert!(
        m.adapt(&c, &adaptive(SVC, None, Some(true)))
            .steps
            .is_empty()
    );
    let o = m.adapt(&c, &adaptive(SVC, None, Some(false)));
    assert_eq!(sent(&o), [(SVC, Action::Trigger)]);
    let BuiltFrom::Stored(held) = &o.steps[0].source else {
        panic!("trigger built from the held status")
    };
    assert_eq!(held.output, "CRITICAL - started in the downtime");
    assert!(!held.flags.in_downtime);
    assert!(o.steps[0].opens);
    // the status that follows is the same: nothing more
    assert!(m.unchanged(SVC, Observed::of(&svc(2, true, NONE, false))));
    // recovery inside a later downtime still resolves
    assert_eq!(
        sent(&m.decide(&c, &svc(0, true, DT, true))),
        [(SVC, Action::Resolve)]
    );
}

#[test]
fn held_problem_that_recovers_in_the_downtime_is_forgotten() {
    let c = cfg();
    let mut m = Memory::new();
    m.decide(&c, &svc(2, true, DT, true));
    assert_eq!(
        m.decide(&c, &svc(0, true, DT, true)).skip,
        Some(Skip::NoIncident)
    );
    assert!(
        m.adapt(&c, &adaptive(SVC, None, Some(false)))
            .steps
            .is_empty()
    );
}

#[test]
fn downtime_action_resolve() {
    let c = cfg_with(&[("downtime_action", "resolve")]);
    let mut m = Memory::new();
    m.decide(&c, &svc(2, true, NONE, true));
    // BBDO 3: the downtime starts with an adaptive status
    assert_eq!(
        sent(&m.adapt(&c, &adaptive(SVC, None, Some(true)))),
        [(SVC, Action::Resolve)]
    );
    assert_eq!(m.incident(SVC), Incident::None);
    assert_eq!(
        m.decide(&c, &svc(2, true, DT, false)).skip,
        Some(Skip::Held(Rejection::InDowntime))
    );
    assert_eq!(
        sent(&m.adapt(&c, &adaptive(SVC, None, Some(false)))),
        [(SVC, Action::Trigger)]
    );
    // BBDO 2: the downtime starts with a status
    assert_eq!(
        sent(&m.decide(&c, &svc(2, true, DT, false))),
        [(SVC, Action::Resolve)]
    );
    assert_eq!(
        sent(&m.decide(&c, &svc(2, true, NONE, false))),
        [(SVC, Action::Trigger)]
    );
    // BBDO 3 with no status in the downtime: the problem is still triggered at its end
    m.decide(&c, &svc(0, true, NONE, true));
    m.decide(&c, &svc(2, true, NONE, true));
    assert_eq!(
        sent(&m.adapt(&c, &adaptive(SVC, None, Some(true)))),
        [(SVC, Action::Resolve)]
    );
    assert!(m.unchanged(SVC, Observed::of(&svc(2, true, DT, false))));
    assert_eq!(
        sent(&m.adapt(&c, &adaptive(SVC, None, Some(false)))),
        [(SVC, Action::Trigger)]
    );
    // suppress (default) leaves the open incident alone
    let s = cfg();
    let mut m = Memory::new();
    m.decide(&s, &svc(2, true, NONE, true));
    assert!(
        m.adapt(&s, &adaptive(SVC, None, Some(true)))
            .steps
            .is_empty()
    );
    assert!(m.incident(SVC) != Incident::None);
}

#[test]
fn flapping_waits_or_sends() {
    let c = cfg();
    let mut m = Memory::new();
    assert_eq!(
        m.decide(&c, &svc(2, true, FLAP, true)).skip,
        Some(Skip::Held(Rejection::Flapping))
    );
    assert_eq!(
        sent(&m.decide(&c, &svc(2, true, NONE, false))),
        [(SVC, Action::Trigger)]
    );
    let send = cfg_with(&[("flapping", "1")]);
    let mut m = Memory::new();
    assert_eq!(
        sent(&m.decide(&send, &svc(2, true, FLAP, true))),
        [(SVC, Action::Trigger)]
    );
}

#[test]
fn status_dedup_off_sends_every_problem_status_again() {
    let c = cfg_with(&[("enable_service_status_dedup", "0")]);
    let mut m = Memory::new();
    assert_eq!(
        sent(&m.decide(&c, &svc(2, true, NONE, true))),
        [(SVC, Action::Trigger)]
    );
    let mut ev = svc(2, true, NONE, false);
    ev.output = "CRITICAL - still".into();
    let o = m.decide(&c, &ev);
    assert_eq!(sent(&o), [(SVC, Action::Trigger)]);
    assert!(!o.steps[0].opens, "same incident");
    // recoveries and acknowledgements are unchanged; hosts keep the default
    assert_eq!(
        sent(&m.decide(&c, &svc(0, true, NONE, true))),
        [(SVC, Action::Resolve)]
    );
    assert!(m.decide(&c, &svc(0, true, NONE, false)).steps.is_empty());
    m.decide(&c, &status(HOST, 1, true, NONE, true));
    assert_eq!(
        m.decide(&c, &status(HOST, 1, true, NONE, false)).skip,
        Some(Skip::AlreadySent)
    );
}

#[test]
fn acknowledgements() {
    let c = cfg();
    let mut m = Memory::new();
    // no open incident: nothing to acknowledge
    assert!(!m.acknowledge(&c, SVC));
    m.decide(&c, &svc(2, true, NONE, true));
    assert!(m.acknowledge(&c, SVC));
    assert!(!m.acknowledge(&c, SVC), "only once");
    // the status that follows carries the flag: nothing more
    assert_eq!(
        m.decide(&c, &svc(2, true, ACK, false)).skip,
        Some(Skip::AlreadySent)
    );
    // removed in Centreon: logged; a new acknowledgement is sent again
    let o = m.decide(&c, &svc(2, true, NONE, false));
    assert!(o.ack_removed && o.steps.is_empty());
    assert_eq!(
        sent(&m.adapt(&c, &adaptive(SVC, Some(true), None))),
        [(SVC, Action::Acknowledge)]
    );
    let o = m.adapt(&c, &adaptive(SVC, Some(false), None));
    assert!(o.ack_removed);
    assert!(m.acknowledge(&c, SVC));
    assert!(m.unacknowledge(SVC));
    assert!(!m.unacknowledge(SVC));
    // a recovery resolves; acknowledging it afterwards sends nothing
    m.decide(&c, &svc(0, true, NONE, true));
    assert!(!m.acknowledge(&c, SVC));

    let off = cfg_with(&[("send_acknowledgements", "0")]);
    let mut m = Memory::new();
    m.decide(&off, &svc(2, true, NONE, true));
    assert!(!m.acknowledge(&off, SVC));
    assert!(m.decide(&off, &svc(2, true, ACK, false)).steps.is_empty());
    assert!(
        m.adapt(&off, &adaptive(SVC, Some(true), None))
            .steps
            .is_empty()
    );
}

#[test]
fn problem_acknowledged_before_any_incident_waits_for_the_acknowledgement_to_go() {
    let c = cfg();
    let mut m = Memory::new();
    assert_eq!(
        m.decide(&c, &svc(2, true, ACK, true)).skip,
        Some(Skip::Held(Rejection::Acknowledged))
    );
    assert_eq!(
        sent(&m.adapt(&c, &adaptive(SVC, Some(false), None))),
        [(SVC, Action::Trigger)]
    );
}

#[test]
fn services_of_a_down_host() {
    let c = cfg_with(&[("suppress_services_of_down_hosts", "1")]);
    let mut m = Memory::new();
    // SOFT DOWN: the host is not paged yet, but its services already wait
    assert_eq!(
        m.decide(&c, &status(HOST, 1, false, NONE, true)).skip,
        Some(Skip::Filtered(Rejection::Soft))
    );
    let o = m.decide(&c, &status(SVC, 2, true, NONE, true));
    assert_eq!(o.skip, Some(Skip::Held(Rejection::HostDown)));
    assert!(o.steps.is_empty(), "no host incident to update yet");
    // HARD DOWN: the host incident, listing the service
    let o = m.decide(&c, &status(HOST, 1, true, NONE, false));
    assert_eq!(sent(&o), [(HOST, Action::Trigger)]);
    assert_eq!(
        m.suppressed_services(1)
            .iter()
            .map(|e| e.key)
            .collect::<Vec<_>>(),
        [SVC]
    );
    // a second service fails: the host incident is updated, no service incident
    let o = m.decide(&c, &status(SVC2, 1, true, NONE, true));
    assert_eq!(sent(&o), [(HOST, Action::Trigger)]);
    assert!(!o.steps[0].opens);
    assert_eq!(m.suppressed_services(1).len(), 2);
    // SVC2 recovers while the host is down: forgotten
    m.decide(&c, &status(SVC2, 0, true, NONE, true));
    // host UP: resolved, and the service still failing is triggered
    let o = m.decide(&c, &status(HOST, 0, true, NONE, true));
    assert_eq!(sent(&o), [(HOST, Action::Resolve), (SVC, Action::Trigger)]);
    assert!(o.steps[1].opens);
    assert!(m.suppressed_services(1).is_empty());

    // without the parameter, services open their own incidents
    let plain = cfg();
    let mut m = Memory::new();
    m.decide(&plain, &status(HOST, 1, true, NONE, true));
    assert_eq!(
        sent(&m.decide(&plain, &status(SVC, 2, true, NONE, true))),
        [(SVC, Action::Trigger)]
    );
}

/// Broker's replay after a crash: the problem and its recovery were handled (and
/// persisted), then Broker hands both again. Nothing is sent: no second incident.
#[test]
fn a_replayed_problem_older_than_its_recovery_changes_nothing() {
    let c = cfg();
    let mut m = Memory::new();
    let problem = svc(2, true, NONE, true);
    let recovery = svc(0, true, NONE, true);
    assert_eq!(sent(&m.decide(&c, &problem)), [(SVC, Action::Trigger)]);
    assert_eq!(sent(&m.decide(&c, &recovery)), [(SVC, Action::Resolve)]);
    // a new process restores what the outbox holds
    let mut after = Memory::new();
    after.restore([m.state(SVC)]);
    for ev in [&problem, &recovery] {
        let o = after.decide(&c, ev);
        assert_eq!(o.skip, Some(Skip::NotNewer));
        assert!(o.steps.is_empty());
        assert_eq!(after.incident(SVC), Incident::None);
    }
    // the same replay in the same process changes nothing either
    assert_eq!(m.decide(&c, &problem).skip, Some(Skip::NotNewer));
    // a newer problem is a new incident
    assert_eq!(
        sent(&after.decide(&c, &svc(2, true, NONE, true))),
        [(SVC, Action::Trigger)]
    );
}

/// Within one check time Centreon still changes a status's flags (an acknowledgement, a
/// downtime): those are handled; the very same status again is not.
#[test]
fn a_status_of_the_same_check_time_counts_only_when_it_changed() {
    let c = cfg();
    let mut m = Memory::new();
    let problem = svc(2, true, NONE, true);
    assert_eq!(sent(&m.decide(&c, &problem)), [(SVC, Action::Trigger)]);
    let mut acked = problem.clone();
    acked.flags = ACK;
    assert_eq!(sent(&m.decide(&c, &acked)), [(SVC, Action::Acknowledge)]);
    assert_eq!(m.decide(&c, &acked).skip, Some(Skip::NotNewer));
    // the same check reported with another state is handled too
    let mut warning = problem.clone();
    warning.state = 1;
    assert_eq!(sent(&m.decide(&c, &warning)), [(SVC, Action::Trigger)]);
}

/// Statuses without a check time (a tool's events, BBDO 2 zero times) are always handled,
/// and leave the last time known as the reference; acknowledgements and adaptive
/// statuses carry no check time and are handled as before.
#[test]
fn statuses_without_a_check_time_are_always_handled() {
    let c = cfg();
    let mut m = Memory::new();
    let untimed = |state: i64, flags: Flags| {
        let mut ev = svc(state, true, flags, true);
        ev.last_check = None;
        ev.last_state_change = None;
        ev
    };
    assert_eq!(
        sent(&m.decide(&c, &untimed(2, NONE))),
        [(SVC, Action::Trigger)]
    );
    assert_eq!(
        sent(&m.decide(&c, &untimed(0, NONE))),
        [(SVC, Action::Resolve)]
    );
    assert_eq!(
        sent(&m.decide(&c, &untimed(2, NONE))),
        [(SVC, Action::Trigger)]
    );
    assert_eq!(m.state(SVC).last, None);
    let timed = svc(0, true, NONE, true);
    assert_eq!(sent(&m.decide(&c, &timed)), [(SVC, Action::Resolve)]);
    assert_eq!(m.state(SVC).last.map(|l| l.at), timed.last_check);
    assert_eq!(
        sent(&m.decide(&c, &untimed(2, NONE))),
        [(SVC, Action::Trigger)]
    );
    assert!(
        m.acknowledge(&c, SVC),
        "an acknowledgement has its own time"
    );
    assert_eq!(m.state(SVC).last.map(|l| l.at), timed.last_check);
}

#[test]
fn restored_state_neither_retriggers_nor_forgets() {
    let c = cfg();
    let mut m = Memory::new();
    m.restore([ObjectState {
        key: SVC,
        open_state: Some(2),
        acknowledged: true,
        names: None,
        last: None,
    }]);
    assert_eq!(
        m.decide(&c, &svc(2, true, ACK, false)).skip,
        Some(Skip::AlreadySent)
    );
    assert_eq!(
        sent(&m.decide(&c, &svc(0, true, NONE, true))),
        [(SVC, Action::Resolve)]
    );
}
