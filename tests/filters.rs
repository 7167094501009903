//! Every filter and format option of the Lua library, with the values users write, as tables of verdicts through the connector's decisions; and a recovery of an open incident is sent whatever the filters say.

mod support;

use centreon_pagerduty::connector::Connector;
use centreon_pagerduty::event::RawEvent;
use serde_json::{Value, json};
use support::scratch;

const T: i64 = 1_700_000_000;

/// A BBDO 3 service status, HARD, a state change at `t`, named by the cache and with groups,
/// severities and a poller; `extra` sets fields (`null` removes one).
fn service(state: i64, t: i64, extra: Value) -> Value {
    let mut e = json!({
        "category": 1, "element": 29, "host_id": 1, "service_id": 2,
        "state": state, "state_type": 1, "last_check": t, "last_state_change": t,
        "check_attempt": 3, "max_check_attempts": 3,
        "output": format!("state {state}"), "long_output": "line two\nline three",
        "host_name": "srv-db", "service_description": "Disk /var",
        "hostgroups": ["linux"], "servicegroups": ["storage"],
        "host_severity": 1, "service_severity": 1, "poller": "Central",
    });
    merge(&mut e, extra);
    e
}

/// The same for the host: BBDO 3 host status.
fn host(state: i64, t: i64, extra: Value) -> Value {
    let mut e = service(state, t, extra);
    let o = e.as_object_mut().unwrap();
    o.insert("element".into(), 32.into());
    o.remove("service_id");
    o.remove("service_description");
    e
}

fn merge(e: &mut Value, extra: Value) {
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            e.as_object_mut().unwrap().remove(k);
        } else {
            e[k] = v.clone();
        }
    }
}

/// A connector of `params` (as users write them) that sends nothing (`send_data_test`), its
/// decisions kept; its log in `dir/<name>.log`.
fn connector(params: &Value, dir: &std::path::Path, name: &str) -> Connector {
    let mut p = params.clone();
    p["send_data_test"] = "1".into();
    p["outbox_path"] = dir.join(format!("{name}.db")).display().to_string().into();
    p["log_path"] = dir.join(format!("{name}.log")).display().to_string().into();
    let mut c = support::connector(p, dir);
    c.keep_decided();
    c
}

/// The actions the events give, and the events sent.
fn decide(c: &mut Connector, events: &[Value]) -> (Vec<&'static str>, Vec<Value>) {
    let mut actions = Vec::new();
    let mut bodies = Vec::new();
    for e in events {
        let _ = c.submit(&RawEvent::from_json(e).unwrap());
        for out in c.take_decided() {
            actions.push(out.action.as_str());
            bodies.push(Value::Object(out.body.to_json().into_owned()));
        }
    }
    (actions, bodies)
}

#[test]
fn filters_decide_which_problems_open_incidents() {
    let dir = scratch("filters");
    let yes: &[&str] = &["trigger"];
    let no: &[&str] = &[];
    // (parameters as users write them, the problem's fields, what is sent)
    let table: Vec<(Value, Value, &[&str])> = vec![
        (json!({}), json!({}), yes),
        // accepted_categories, accepted_elements
        (json!({"accepted_categories": "neb"}), json!({}), yes),
        (
            json!({"accepted_categories": " neb , bam "}),
            json!({}),
            yes,
        ),
        (json!({"accepted_elements": "host_status"}), json!({}), no),
        (
            json!({"accepted_elements": "host_status, service_status"}),
            json!({}),
            yes,
        ),
        (json!({"accepted_elements": ""}), json!({}), yes),
        // host_status / service_status, hard_only
        (json!({"service_status": "1,3"}), json!({}), no),
        (json!({"service_status": " 2 "}), json!({}), yes),
        (json!({}), json!({"state_type": 0}), no),
        (json!({"hard_only": "0"}), json!({"state_type": 0}), yes),
        // acknowledged, in_downtime, flapping
        (json!({}), json!({"acknowledgement_type": 1}), no),
        (
            json!({"acknowledged": "1"}),
            json!({"acknowledgement_type": 2}),
            yes,
        ),
        (json!({}), json!({"scheduled_downtime_depth": 1}), no),
        (
            json!({"in_downtime": "1"}),
            json!({"scheduled_downtime_depth": 2}),
            yes,
        ),
        (json!({}), json!({"flapping": true}), no),
        (json!({"flapping": "1"}), json!({"flapping": true}), yes),
        // accepted_hostgroups / rejected_hostgroups
        (json!({"accepted_hostgroups": "linux"}), json!({}), yes),
        (
            json!({"accepted_hostgroups": "windows, db"}),
            json!({"hostgroups": ["db", "web"]}),
            yes,
        ),
        (json!({"accepted_hostgroups": "windows"}), json!({}), no),
        (
            json!({"accepted_hostgroups": "linux"}),
            json!({"hostgroups": null}),
            no,
        ),
        (json!({"accepted_hostgroups": ""}), json!({}), yes),
        (json!({"rejected_hostgroups": "lab, linux"}), json!({}), no),
        (json!({"rejected_hostgroups": "lab"}), json!({}), yes),
        // accepted_servicegroups / rejected_servicegroups
        (
            json!({"accepted_servicegroups": " storage "}),
            json!({}),
            yes,
        ),
        (json!({"accepted_servicegroups": "mail,web"}), json!({}), no),
        (json!({"rejected_servicegroups": "storage"}), json!({}), no),
        (
            json!({"rejected_servicegroups": "noise"}),
            json!({"servicegroups": null}),
            yes,
        ),
        // accepted_pollers / rejected_pollers
        (json!({"accepted_pollers": "Central"}), json!({}), yes),
        (
            json!({"accepted_pollers": "poller-1, poller-2"}),
            json!({}),
            no,
        ),
        (
            json!({"accepted_pollers": "Central"}),
            json!({"poller": null}),
            no,
        ),
        (json!({"rejected_pollers": "Central"}), json!({}), no),
        (
            json!({"rejected_pollers": "lab"}),
            json!({"poller": null}),
            yes,
        ),
        // severities: "threshold OPERATOR severity"
        (
            json!({"host_severity_threshold": "2"}),
            json!({"host_severity": 2}),
            yes,
        ),
        (
            json!({"host_severity_threshold": "2"}),
            json!({"host_severity": 3}),
            no,
        ),
        (
            json!({"host_severity_threshold": "2", "host_severity_operator": "<"}),
            json!({"host_severity": 3}),
            yes,
        ),
        (
            json!({"host_severity_threshold": "2"}),
            json!({"host_severity": null}),
            no,
        ),
        (
            json!({"service_severity_threshold": "1", "service_severity_operator": "=="}),
            json!({}),
            yes,
        ),
        (
            json!({"service_severity_threshold": "1", "service_severity_operator": "~="}),
            json!({}),
            no,
        ),
        // accepted_hosts / accepted_services (Lua patterns)
        (json!({"accepted_hosts": "^srv%-"}), json!({}), yes),
        (json!({"accepted_hosts": "^web"}), json!({}), no),
        (
            json!({"accepted_services": "^CPU,^Disk", "accepted_services_enable_split_pattern": "1"}),
            json!({}),
            yes,
        ),
        (json!({"accepted_services": "^CPU,^Disk"}), json!({}), no),
        // skip_anon_events
        (json!({}), json!({"host_name": null}), yes),
        (
            json!({"skip_anon_events": "1"}),
            json!({"host_name": null}),
            no,
        ),
        (
            json!({"skip_anon_events": "1"}),
            json!({"service_description": null}),
            no,
        ),
        // skip_nil_id: never sent either way (the log differs, below)
        (json!({}), json!({"host_id": 0}), no),
        (json!({"skip_nil_id": "0"}), json!({"host_id": null}), no),
        (json!({"skip_nil_id": "1"}), json!({"service_id": 0}), no),
    ];
    for (i, (params, fields, want)) in table.iter().enumerate() {
        let mut c = connector(params, &dir, &format!("row{i}"));
        let (got, _) = decide(&mut c, &[service(2, T, fields.clone())]);
        assert_eq!(got, *want, "row {i}: {params} {fields}");
    }
}

#[test]
fn both_lists_of_a_pair_fail_init() {
    let dir = scratch("filters-pairs");
    for (a, r) in [
        ("accepted_hostgroups", "rejected_hostgroups"),
        ("accepted_servicegroups", "rejected_servicegroups"),
        ("accepted_pollers", "rejected_pollers"),
    ] {
        let params = json!({
            "pdy_routing_key": support::ROUTING_KEY,
            "outbox_path": dir.join("o.db").display().to_string(),
            a: "x", r: "y",
        });
        let e = Connector::from_json(&params)
            .err()
            .expect("an init error")
            .to_string();
        assert!(
            e.contains(a) && e.contains(r) && e.contains("cannot be used together"),
            "{e}"
        );
    }
}

#[test]
fn a_recovery_of_an_open_incident_is_sent_whatever_the_filters() {
    let dir = scratch("filters-recovery");
    let both: &[&str] = &["trigger", "resolve"];
    // (parameters, the recovery's fields, which the filters would refuse for a problem)
    let table: Vec<(Value, Value)> = vec![
        (json!({"service_status": "2"}), json!({})),
        (json!({}), json!({"state_type": 0})),
        (json!({}), json!({"acknowledgement_type": 1})),
        (json!({}), json!({"scheduled_downtime_depth": 1})),
        (json!({}), json!({"flapping": true})),
        (
            json!({"accepted_hostgroups": "linux"}),
            json!({"hostgroups": ["windows"]}),
        ),
        (
            json!({"rejected_hostgroups": "lab"}),
            json!({"hostgroups": ["lab"]}),
        ),
        (
            json!({"accepted_servicegroups": "storage"}),
            json!({"servicegroups": null}),
        ),
        (
            json!({"rejected_servicegroups": "noise"}),
            json!({"servicegroups": ["noise"]}),
        ),
        (
            json!({"accepted_pollers": "Central"}),
            json!({"poller": "lab"}),
        ),
        (json!({"rejected_pollers": "lab"}), json!({"poller": "lab"})),
        (
            json!({"host_severity_threshold": "1"}),
            json!({"host_severity": 5}),
        ),
        (
            json!({"service_severity_threshold": "1"}),
            json!({"service_severity": 5}),
        ),
        (
            json!({"accepted_hosts": "^srv"}),
            json!({"host_name": "renamed"}),
        ),
        (
            json!({"skip_anon_events": "1"}),
            json!({"service_description": null}),
        ),
    ];
    for (i, (params, fields)) in table.iter().enumerate() {
        let mut c = connector(params, &dir, &format!("row{i}"));
        let events = [service(2, T, json!({})), service(0, T + 60, fields.clone())];
        let (got, _) = decide(&mut c, &events);
        assert_eq!(got, both, "row {i}: {params} {fields}");
    }
}

#[test]
fn dedup_options() {
    let dir = scratch("filters-dedup");
    // the same problem again (not a state change), then the recovery
    let again = |f: fn(i64, i64, Value) -> Value| {
        let mut repeat = f(2, T + 60, json!({"output": "still failing"}));
        repeat["last_state_change"] = T.into();
        vec![f(2, T, json!({})), repeat, f(0, T + 120, json!({}))]
    };
    // (parameters, events of a service (true) or a host, what is sent)
    let table: Vec<(Value, bool, &[&str])> = vec![
        (json!({}), true, &["trigger", "resolve"]),
        (
            json!({"enable_service_status_dedup": "1"}),
            true,
            &["trigger", "resolve"],
        ),
        (
            json!({"enable_service_status_dedup": "0"}),
            true,
            &["trigger", "trigger", "resolve"],
        ),
        (
            json!({"enable_host_status_dedup": "0"}),
            true,
            &["trigger", "resolve"],
        ),
        (json!({}), false, &["trigger", "resolve"]),
        (
            json!({"enable_host_status_dedup": "0"}),
            false,
            &["trigger", "trigger", "resolve"],
        ),
        (
            json!({"enable_service_status_dedup": "0"}),
            false,
            &["trigger", "resolve"],
        ),
    ];
    for (i, (params, is_service, want)) in table.iter().enumerate() {
        let mut c = connector(params, &dir, &format!("row{i}"));
        let events = if *is_service {
            again(service)
        } else {
            again(host)
        };
        let (got, _) = decide(&mut c, &events);
        assert_eq!(got, *want, "row {i}: {params}");
    }
}

#[test]
fn output_options() {
    let dir = scratch("filters-output");
    let output = "CRITICAL - /var 97% used";
    // (parameters, summary, Output, LongOutput)
    let table: Vec<(Value, &str, &str, Option<&str>)> = vec![
        (
            json!({}),
            "srv-db/Disk /var: CRITICAL - /var 97% used",
            output,
            Some("line two\nline three"),
        ),
        (
            json!({"use_long_output": "1"}),
            "srv-db/Disk /var: CRITICAL - /var 97% used",
            output,
            Some("line two\nline three"),
        ),
        (
            json!({"use_long_output": "0"}),
            "srv-db/Disk /var: CRITICAL - /var 97% used",
            output,
            None,
        ),
        (
            json!({"remove_line_break_in_output": "1"}),
            "srv-db/Disk /var: CRITICAL - /var 97% used",
            output,
            Some("line two line three"),
        ),
        (
            json!({"remove_line_break_in_output": "1", "output_line_break_replacement_character": " / "}),
            "srv-db/Disk /var: CRITICAL - /var 97% used",
            output,
            Some("line two / line three"),
        ),
        (
            json!({"remove_line_break_in_output": "0", "output_line_break_replacement_character": "_"}),
            "srv-db/Disk /var: CRITICAL - /var 97% used",
            output,
            Some("line two\nline three"),
        ),
        (
            json!({"output_size_limit": "33"}),
            "srv-db/Disk /var: CRITICAL - /var 97% used",
            output,
            Some("line two"),
        ),
        (
            json!({"output_size_limit": "8"}),
            "srv-db/Disk /var: CRITICAL",
            "CRITICAL",
            None,
        ),
        (
            json!({"output_size_limit": ""}),
            "srv-db/Disk /var: CRITICAL - /var 97% used",
            output,
            Some("line two\nline three"),
        ),
    ];
    for (i, (params, summary, out, long)) in table.iter().enumerate() {
        let mut c = connector(params, &dir, &format!("row{i}"));
        let (_, bodies) = decide(&mut c, &[service(2, T, json!({"output": output}))]);
        let p = &bodies[0]["payload"];
        assert_eq!(p["summary"], *summary, "row {i}: {params}");
        assert_eq!(p["custom_details"]["Output"], *out, "row {i}: {params}");
        assert_eq!(
            p["custom_details"]
                .get("LongOutput")
                .and_then(Value::as_str),
            *long,
            "row {i}: {params}"
        );
    }
}

#[test]
fn skip_nil_id_logs_the_drop_at_its_level() {
    let dir = scratch("filters-nil-id");
    // (skip_nil_id as written, the level of the line, or none at log level 1)
    for (i, (value, level)) in [("", "INFO"), ("1", "INFO"), ("0", "ERROR")]
        .into_iter()
        .enumerate()
    {
        for log_level in ["1", "2"] {
            let name = format!("row{i}-{log_level}");
            let params = json!({"skip_nil_id": value, "log_level": log_level});
            let mut c = connector(&params, &dir, &name);
            let (got, _) = decide(&mut c, &[service(2, T, json!({"host_id": 0}))]);
            assert!(got.is_empty());
            drop(c);
            let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap();
            let line = log
                .lines()
                .find(|l| l.contains("field 'host_id' must be a positive integer"));
            let shown = level == "ERROR" || log_level == "2";
            assert_eq!(
                line.is_some(),
                shown,
                "row {i} log_level {log_level}: {log}"
            );
            if let Some(l) = line {
                assert!(l.contains(&format!("[{level}]")), "row {i}: {l}");
            }
        }
    }
}
