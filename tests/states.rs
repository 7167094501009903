//! The state machine end to end: every row of the README's "How Centreon states become PagerDuty incidents" table, in BBDO 2 and BBDO 3, through the real Lua bridge in the Broker emulator.
//!
//! `tests/scenarios/states.lua` plays Centreon's event sequences into two outputs: `A` with
//! the default parameters and `V` (`dedup_key_prefix = "V-"`) with `downtime_action=resolve`,
//! `suppress_services_of_down_hosts=1`, `skip_anon_events=1`, `send_acknowledgements=0`. Each
//! `row_*` function checks one row of the table for both outputs; the README names them.

mod support;

use pd_standin::Standin;
use serde_json::{Value, json};
use support::*;

/// What PagerDuty received, with the log.
struct Got {
    bodies: Vec<Value>,
    log: String,
    bbdo: u32,
}

impl Got {
    fn seq(&self, key: &str) -> Vec<&str> {
        for_key(&self.bodies, key)
            .iter()
            .map(|b| b["event_action"].as_str().unwrap())
            .collect()
    }
    fn nth(&self, key: &str, n: usize) -> &Value {
        for_key(&self.bodies, key)[n]
    }
}

fn run(lua: &str, bbdo: u32, scenario: &str) -> Got {
    let pd = Standin::start().expect("start the PagerDuty stand-in");
    let out = Run::new(lua, scenario)
        .bbdo(bbdo)
        .env("CPD_URL", pd.url())
        .go();
    out.assert_ok();
    Got {
        bodies: pd.accepted(),
        log: out.log.clone(),
        bbdo,
    }
}

/// Problem -> acknowledgement -> recovery: trigger, acknowledge with author and comment,
/// resolve; with `send_acknowledgements=0` no acknowledge.
fn row_problem_ack_recovery(g: &Got) {
    assert_eq!(g.seq("20_1"), ["trigger", "acknowledge", "resolve"]);
    let ack = g.nth("20_1", 1);
    assert_eq!(
        ack["payload"]["summary"],
        "app-20/svc-1: acknowledged by alice: on it, ticket 42"
    );
    assert_eq!(ack["payload"]["custom_details"]["Author"], "alice");
    assert_eq!(
        ack["payload"]["custom_details"]["Comment"],
        "on it, ticket 42"
    );
    assert_eq!(ack["payload"]["severity"], "info");
    assert_eq!(g.seq("V-20_1"), ["trigger", "resolve"]);
    // removed while the problem persists: logged (PagerDuty has no un-acknowledge)
    assert!(
        g.log.contains(
            "acknowledgement of service #20:1 (app-20/svc-1) removed in Centreon while its incident is open"
        ),
        "removal logged"
    );
}

/// A problem that starts in a downtime opens nothing; when the downtime ends while it still
/// fails, it is triggered then (BBDO 2: by the status; BBDO 3: by the adaptive status).
fn row_problem_in_downtime_then_end(g: &Got) {
    for key in ["20_2", "V-20_2"] {
        assert_eq!(g.seq(key), ["trigger"], "{key}");
        let summary = g.nth(key, 0)["payload"]["summary"].as_str().unwrap();
        let want = if g.bbdo == 3 {
            "app-20/svc-2: CRITICAL - started in the downtime"
        } else {
            "app-20/svc-2: CRITICAL - c"
        };
        assert_eq!(summary, want, "{key}");
    }
}

/// Recovery inside a downtime resolves (suppress); with `downtime_action=resolve` the
/// incident was already resolved when the downtime started.
fn row_recovery_in_downtime(g: &Got) {
    assert_eq!(g.seq("20_3"), ["trigger", "resolve"]);
    assert_eq!(g.seq("V-20_3"), ["trigger", "resolve"]);
    let r = g.nth("V-20_3", 1);
    assert_eq!(
        r["payload"]["summary"],
        "app-20/svc-3: resolved: downtime started"
    );
}

/// Downtime starting on an open incident: kept open (suppress) or resolved (resolve), then
/// triggered again when the downtime ends while the problem persists.
fn row_downtime_on_open_incident(g: &Got) {
    assert_eq!(g.seq("20_7"), ["trigger", "resolve"]);
    assert_eq!(
        g.seq("V-20_7"),
        ["trigger", "resolve", "trigger", "resolve"]
    );
}

/// Flapping: nothing while it flaps, the current state once it stops.
fn row_flapping(g: &Got) {
    for key in ["20_4", "V-20_4"] {
        assert_eq!(g.seq(key), ["trigger"], "{key}");
        assert_eq!(
            g.nth(key, 0)["payload"]["summary"],
            "app-20/svc-4: CRITICAL - stopped flapping"
        );
    }
}

/// An acknowledgement with no open incident sends nothing.
fn row_ack_without_incident(g: &Got) {
    assert!(g.seq("20_5").is_empty(), "{:?}", g.seq("20_5"));
    assert!(g.seq("V-20_5").is_empty());
}

/// A service problem under a DOWN host: its own incident by default; with
/// `suppress_services_of_down_hosts=1` listed in the host's incident, and triggered when the
/// host comes back UP while it still fails.
fn row_service_of_down_host(g: &Got) {
    assert_eq!(g.seq("21_H"), ["trigger", "resolve"]);
    assert_eq!(g.seq("21_1"), ["trigger", "resolve"]);
    assert_eq!(g.seq("21_2"), ["trigger", "resolve"]);

    assert_eq!(
        g.seq("V-21_H"),
        ["trigger", "trigger", "trigger", "resolve"]
    );
    assert!(
        g.nth("V-21_H", 0)["payload"]["custom_details"]
            .get("SuppressedServices")
            .is_none()
    );
    assert_eq!(
        g.nth("V-21_H", 1)["payload"]["custom_details"]["SuppressedServices"],
        json!(["BGP: CRITICAL - BGP session down"])
    );
    assert_eq!(
        g.nth("V-21_H", 2)["payload"]["custom_details"]["SuppressedServices"],
        json!([
            "BGP: CRITICAL - BGP session down",
            "Interfaces: WARNING - eth1 errors"
        ])
    );
    // still failing when the host came back: triggered then, with its own output
    assert_eq!(g.seq("V-21_1"), ["trigger", "resolve"]);
    assert_eq!(
        g.nth("V-21_1", 0)["payload"]["summary"],
        "router-21/BGP: CRITICAL - BGP session down"
    );
    // recovered while the host was down: never paged
    assert!(g.seq("V-21_2").is_empty());
}

/// A host missing from Broker's cache is sent with its id and a warning; `skip_anon_events=1`
/// drops it.
fn row_host_missing_from_cache(g: &Got) {
    assert_eq!(g.seq("99_H"), ["trigger"]);
    let t = g.nth("99_H", 0);
    assert_eq!(t["payload"]["source"], "host #99");
    assert_eq!(
        t["payload"]["summary"],
        "host #99: DOWN - CRITICAL - unknown host down"
    );
    assert!(
        g.log
            .contains("host #99 is unknown to Broker's cache; sending it with its id"),
        "warning logged"
    );
    assert!(g.seq("V-99_H").is_empty());
}

/// A restart between an acknowledged trigger and the recovery: the replayed (acknowledged)
/// problem is neither triggered nor acknowledged again, the recovery resolves.
fn row_restart(g: &Got) {
    assert_eq!(g.seq("20_6"), ["trigger", "acknowledge", "resolve"]);
    assert_eq!(g.seq("V-20_6"), ["trigger", "resolve"]);
}

fn every_row(g: &Got) {
    row_problem_ack_recovery(g);
    row_problem_in_downtime_then_end(g);
    row_recovery_in_downtime(g);
    row_downtime_on_open_incident(g);
    row_flapping(g);
    row_ack_without_incident(g);
    row_service_of_down_host(g);
    row_host_missing_from_cache(g);
    row_restart(g);
    assert_eq!(
        g.bodies.len(),
        37,
        "nothing else sent: {:#?}",
        actions(&g.bodies)
    );
}

#[test]
fn state_machine_bbdo2() {
    every_row(&run("5.3", 2, "states.lua"));
}

#[test]
fn state_machine_bbdo3() {
    every_row(&run("5.4", 3, "states.lua"));
}

/// `enable_service_status_dedup=0`: the fast path the Lua bridge takes for an unchanged status
/// hands it over anyway, and every status of a problem is sent again.
#[test]
fn status_dedup_off_bypasses_the_fast_path() {
    use centreon_pagerduty::connector::Quick;
    use centreon_pagerduty::decision::Observed;
    use centreon_pagerduty::event::{Flags, ObjectKey};
    let pd = Standin::start().unwrap();
    for (dedup, want) in [("1", 1), ("0", 3)] {
        let dir = scratch(&format!("dedup-{dedup}"));
        let mut c = connector(
            json!({"http_server_url": pd.url(), "enable_service_status_dedup": dedup}),
            &dir,
        );
        let key = ObjectKey::new(7, 8);
        let observed = Observed {
            state: 2,
            hard: true,
            flags: Flags::default(),
        };
        // each status is delivered before the next one comes: each decision is taken on the
        // state the previous delivery left
        for t in [100, 160, 220] {
            if c.quick_status(1, 29, key, observed) == Quick::NeedDetails {
                c.submit_details(&service(7, 8, 2, t)).unwrap();
            }
            assert!(c.wait_idle(std::time::Duration::from_secs(20)));
        }
        drop(c);
        assert_eq!(
            for_key(&pd.accepted(), "7_8").len(),
            want,
            "enable_service_status_dedup={dedup}"
        );
        pd.clear();
    }
}

/// The fast path's first question, without the flags: only an object that stays OK is done (and
/// named so: [`Quick::StaysOk`]); the first OK status of an object never seen asks for its
/// check times ([`Quick::NeedTimes`]); a problem or a recovery asks for the flags; other event
/// types for details.
#[test]
fn quick_state_is_done_only_for_an_object_that_stays_ok() {
    use centreon_pagerduty::connector::Quick;
    use centreon_pagerduty::event::ObjectKey;
    let dir = scratch("quick-state");
    let mut c = connector(json!({"http_server_url": UNREACHABLE}), &dir);
    let key = ObjectKey::new(7, 8);
    assert_eq!(c.quick_state(1, 29, key, 0), Quick::NeedTimes, "never seen");
    assert_eq!(
        c.quick_state(1, 29, key, 2),
        Quick::NeedFlags,
        "never seen, a problem"
    );
    c.submit_details(&service(7, 8, 0, 100)).unwrap();
    assert!(
        matches!(c.quick_state(1, 29, key, 0), Quick::StaysOk(_)),
        "named: the bridge keeps the object"
    );
    assert_eq!(c.quick_state(1, 29, key, 2), Quick::NeedFlags, "a problem");
    c.submit_details(&service(7, 8, 2, 160)).unwrap();
    assert_eq!(c.quick_state(1, 29, key, 0), Quick::NeedFlags, "a recovery");
    assert_eq!(
        c.quick_state(1, 45, key, 0),
        Quick::NeedDetails,
        "an acknowledgement"
    );
    assert!(
        matches!(c.quick_state(1, 23, key, 0), Quick::Done(_)),
        "not a type we act on"
    );
    // the other types' question: details when accepted, else the verdict alone
    assert_eq!(
        c.quick_event(1, 55),
        Quick::NeedDetails,
        "an adaptive status"
    );
    assert!(matches!(c.quick_event(1, 23), Quick::Done(_)));
}

/// A service status without its service id is never answered from the host's memory (the id
/// reads as 0, the host's key): it goes to the details, which log it and skip it.
#[test]
fn a_service_status_without_service_id_is_not_taken_for_its_host() {
    use centreon_pagerduty::connector::Quick;
    use centreon_pagerduty::decision::Observed;
    use centreon_pagerduty::event::{Flags, ObjectKey, RawEvent};
    let dir = scratch("no-service-id");
    let mut c = connector(json!({"http_server_url": UNREACHABLE}), &dir);
    // host 7 is known DOWN (1, HARD)
    let host = |state: i64, t: i64| {
        RawEvent::from_json(&json!({
            "category": 1, "element": 32, "host_id": 7, "state": state, "state_type": 1,
            "last_check": t, "last_state_change": t, "output": "down", "host_name": "h",
        }))
        .unwrap()
    };
    c.submit_details(&host(1, 100)).unwrap();
    let host_key = ObjectKey::new(7, 0);
    let down = Observed {
        state: 1,
        hard: true,
        flags: Flags::default(),
    };
    assert!(
        matches!(c.quick_status(1, 32, host_key, down), Quick::Done(_)),
        "the host's own status is answered from its memory"
    );
    // a service status (WARNING, 1: the host's state number) without a service id
    assert_eq!(c.quick_status(1, 29, host_key, down), Quick::NeedDetails);
    assert_eq!(c.quick_state(1, 29, host_key, 1), Quick::NeedDetails);
    let svc = RawEvent::from_json(&json!({
        "category": 1, "element": 29, "host_id": 7, "state": 1, "state_type": 1,
        "last_check": 160, "last_state_change": 160, "output": "warning",
    }))
    .unwrap();
    assert!(c.submit_details(&svc).is_err(), "reported, not taken");
    drop(c);
    assert!(
        log_of(&dir).contains("service_id"),
        "the log names the missing field: {}",
        log_of(&dir)
    );
}

/// Broker saves its cache only at a clean stop: after a crash it no longer knows the objects
/// defined since. Their acknowledgement, re-trigger and resolve after a restart with an empty
/// cache (`tests/scenarios/empty_cache.lua`) carry the names, address, poller, groups and
/// severities of their trigger, kept with the incident in the outbox; an object never named
/// is still sent with its ids.
fn names_kept_across_a_restart_with_an_empty_cache(lua: &str, bbdo: u32) {
    let g = run(lua, bbdo, "empty_cache.lua");
    assert_eq!(g.seq("12_34"), ["trigger", "resolve"], "{}", g.log);
    assert_eq!(g.seq("13_H"), ["trigger", "resolve"], "{}", g.log);
    assert_eq!(
        g.seq("20_1"),
        ["trigger", "acknowledge", "trigger"],
        "{}",
        g.log
    );
    let resolve = &g.nth("12_34", 1)["payload"];
    assert_eq!(resolve["summary"], "srv-db/Disk /var: OK - /var 50%");
    assert_eq!(resolve["source"], "srv-db");
    assert_eq!(resolve["component"], "Disk /var");
    assert_eq!(resolve["group"], "linux, db");
    let d = &resolve["custom_details"];
    assert_eq!(d["HostAddress"], "10.0.0.5");
    assert_eq!(d["Poller"], "Central");
    assert_eq!(d["Hostgroups"], "linux, db");
    assert_eq!(d["Servicegroups"], "storage");
    assert_eq!(d["Hostseverity"], 2);
    assert_eq!(d["Serviceseverity"], 1);
    assert_eq!(g.nth("13_H", 1)["payload"]["summary"], "web 01/é: UP");
    assert_eq!(
        g.nth("20_1", 1)["payload"]["summary"],
        "app-20/svc-1: acknowledged by alice: on it"
    );
    assert_eq!(
        g.nth("20_1", 2)["payload"]["summary"],
        "app-20/svc-1: WARNING - svc-1"
    );
    assert_eq!(g.nth("99_1", 0)["payload"]["source"], "host #99");
    assert!(
        g.log.contains("service #20:1 (app-20/svc-1) is unknown to Broker's cache; named as when it was last sent"),
        "{}",
        g.log
    );
}

#[test]
fn names_kept_across_a_restart_with_an_empty_cache_bbdo2() {
    names_kept_across_a_restart_with_an_empty_cache("5.3", 2);
}

#[test]
fn names_kept_across_a_restart_with_an_empty_cache_bbdo3() {
    names_kept_across_a_restart_with_an_empty_cache("5.4", 3);
}

/// The first OK status of an object never seen, asked with its check times: nothing to send
/// and remembered as [`Connector::submit_details`] would (the object stays OK; a later
/// problem is triggered, an older one is not newer) when it is not the state change itself;
/// the state change itself (it may close an incident opened before a restart) and an object
/// restored from the outbox go on to the whole event.
#[test]
fn a_first_ok_status_is_decided_from_its_ids_and_check_times() {
    use centreon_pagerduty::connector::{Connector, Quick};
    use centreon_pagerduty::event::{CheckTimes, ObjectKey};
    let dir = scratch("first-ok");
    let mut c = connector(json!({"http_server_url": UNREACHABLE}), &dir);
    c.keep_decided();
    let key = |s| ObjectKey::new(7, s);
    let times = |check, change| CheckTimes {
        last_check: Some(check),
        last_state_change: Some(change),
    };
    let first = |c: &mut Connector, s, t| c.quick_first_ok(1, 29, key(s), t);
    assert!(matches!(
        first(&mut c, 1, times(100, 70)),
        Quick::StaysOk(_)
    ));
    assert!(
        matches!(c.quick_state(1, 29, key(1), 0), Quick::StaysOk(_)),
        "remembered OK"
    );
    // checked before the status handled: not newer, nothing sent; after it: triggered
    c.submit_details(&service(7, 1, 2, 90)).unwrap();
    assert!(c.take_decided().is_empty(), "an older problem is not newer");
    c.submit_details(&service(7, 1, 2, 160)).unwrap();
    let sent: Vec<_> = c.take_decided().iter().map(|o| o.action).collect();
    assert_eq!(sent, [centreon_pagerduty::decision::Action::Trigger]);
    // the state change itself: the whole event, nothing remembered
    assert_eq!(first(&mut c, 2, times(100, 100)), Quick::NeedFlags);
    assert_eq!(c.quick_state(1, 29, key(2), 0), Quick::NeedTimes);
    c.submit_details(&service(7, 2, 0, 100)).unwrap();
    let sent: Vec<_> = c.take_decided().iter().map(|o| o.action).collect();
    assert_eq!(
        sent,
        [centreon_pagerduty::decision::Action::Resolve],
        "a first recovery resolves"
    );
    // a host status with a service's key is not its own object's memory
    assert_eq!(
        c.quick_first_ok(1, 14, key(3), times(100, 70)),
        Quick::NeedFlags
    );
    drop(c);
    // restored from the outbox (7:1 has an open incident): the whole event
    let mut c = connector(json!({"http_server_url": UNREACHABLE}), &dir);
    assert_eq!(
        c.quick_state(1, 29, key(1), 0),
        Quick::NeedFlags,
        "restored"
    );
    assert_eq!(
        first(&mut c, 1, times(200, 150)),
        Quick::NeedFlags,
        "restored"
    );
    let log = log_of(&dir);
    assert!(
        log.contains("service #7:1 OK: nothing sent (recovery with no open incident)"),
        "{log}"
    );
}
