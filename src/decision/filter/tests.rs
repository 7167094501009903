//! Tests of `filter`.

/// Parameters as users write them: (name, value).
type Params = &'static [(&'static str, &'static str)];

use super::*;
use crate::config::{Config, ParamValue};
use crate::event::{Bbdo, Context, Flags, ObjectKey};

const KEY: &str = "0123456789abcdefABCDEF0123456789";

/// A config from parameters as users write them (strings).
fn cfg(params: &[(&str, &str)]) -> Config {
    try_cfg(params).expect("valid config")
}

fn try_cfg(params: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut all = vec![("pdy_routing_key".to_string(), ParamValue::Str(KEY.into()))];
    all.extend(
        params
            .iter()
            .map(|(k, v)| (k.to_string(), ParamValue::Str(v.to_string()))),
    );
    Config::from_params(&all).map(|(c, _)| c)
}

/// A HARD, named, unflagged status in a problem state.
fn host(state: i64) -> StatusEvent {
    StatusEvent {
        bbdo: Bbdo::V3,
        key: ObjectKey {
            host_id: 1,
            service_id: 0,
        },
        state,
        hard: true,
        check_attempt: None,
        max_check_attempts: None,
        last_check: Some(100),
        last_state_change: Some(100),
        last_hard_state_change: Some(100),
        output: String::new(),
        long_output: String::new(),
        perfdata: String::new(),
        flags: Flags::default(),
        ctx: Context {
            host_name: Some("web1".into()),
            ..Context::default()
        },
    }
}

fn service(state: i64) -> StatusEvent {
    let mut ev = host(state);
    ev.key.service_id = 2;
    ev.ctx.service_description = Some("disk".into());
    ev
}

fn groups(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn defaults_accept_a_hard_problem() {
    let c = cfg(&[]);
    assert_eq!(problem_filter(&c.decision.filter, &host(1)), None);
    assert_eq!(problem_filter(&c.decision.filter, &service(2)), None);
}

#[test]
fn hard_only() {
    // (hard_only as written, event is hard, expected)
    let table: &[(Option<&str>, bool, Option<Rejection>)] = &[
        (None, true, None),
        (None, false, Some(Rejection::Soft)),
        (Some("1"), false, Some(Rejection::Soft)),
        (Some(" 1 "), true, None),
        (Some("0"), false, None),
        (Some("false"), false, None),
    ];
    for (i, (value, hard, want)) in table.iter().enumerate() {
        let c = match value {
            Some(v) => cfg(&[("hard_only", v)]),
            None => cfg(&[]),
        };
        let mut ev = service(2);
        ev.hard = *hard;
        assert_eq!(problem_filter(&c.decision.filter, &ev), *want, "row {i}");
    }
}

#[test]
fn states() {
    // (host_status, service_status, event, expected)
    let table: &[(&str, &str, StatusEvent, Option<Rejection>)] = &[
        ("", "", host(1), None),
        ("", "", host(2), None),
        ("", "", service(3), None),
        ("", "", service(4), Some(Rejection::StateNotAccepted)),
        ("0, 1", "", host(2), Some(Rejection::StateNotAccepted)),
        ("0, 1", "", host(1), None),
        ("1", "", host(1), None),
        ("", "0,2", service(1), Some(Rejection::StateNotAccepted)),
        ("", "0,2", service(2), None),
        ("", " 2 , 3 ", service(3), None),
        // host_status does not apply to services, nor the other way round
        ("1", "", service(2), None),
        ("", "2", host(1), None),
    ];
    for (i, (hs, ss, ev, want)) in table.iter().enumerate() {
        let c = cfg(&[("host_status", hs), ("service_status", ss)]);
        assert_eq!(problem_filter(&c.decision.filter, ev), *want, "row {i}");
    }
}

#[test]
fn acknowledged_downtime_flapping() {
    let ack = Flags {
        acknowledged: true,
        ..Flags::default()
    };
    let dt = Flags {
        in_downtime: true,
        ..Flags::default()
    };
    let flap = Flags {
        flapping: true,
        ..Flags::default()
    };
    // (parameters, flags, expected)
    let table: &[(Params, Flags, Option<Rejection>)] = &[
        (&[], ack, Some(Rejection::Acknowledged)),
        (&[("acknowledged", "0")], ack, Some(Rejection::Acknowledged)),
        (&[("acknowledged", "1")], ack, None),
        (&[("acknowledged", "yes")], ack, None),
        (&[], dt, Some(Rejection::InDowntime)),
        (&[("in_downtime", "1")], dt, None),
        (&[("in_downtime", "1")], ack, Some(Rejection::Acknowledged)),
        (&[], flap, Some(Rejection::Flapping)),
        (&[("flapping", "1")], flap, None),
        (&[("flapping", "TRUE")], flap, None),
        (&[("acknowledged", "1")], Flags::default(), None),
    ];
    for (i, (params, flags, want)) in table.iter().enumerate() {
        let c = cfg(params);
        let mut ev = service(2);
        ev.flags = *flags;
        assert_eq!(problem_filter(&c.decision.filter, &ev), *want, "row {i}");
    }
}

#[test]
fn hostgroups() {
    // (parameters, host's groups, expected) for a host and a service event alike
    let table: &[(Params, &[&str], Option<Rejection>)] = &[
        (&[], &[], None),
        (&[], &["linux"], None),
        (&[("accepted_hostgroups", "")], &[], None),
        (&[("accepted_hostgroups", "linux")], &["linux"], None),
        (
            &[("accepted_hostgroups", "linux")],
            &["windows"],
            Some(Rejection::Hostgroup),
        ),
        (
            &[("accepted_hostgroups", "linux")],
            &[],
            Some(Rejection::Hostgroup),
        ),
        (
            &[("accepted_hostgroups", "linux, db ")],
            &["web", "db"],
            None,
        ),
        (&[("accepted_hostgroups", "linux,,db,")], &["db"], None),
        // exact names: no case folding, no partial match
        (
            &[("accepted_hostgroups", "linux")],
            &["Linux"],
            Some(Rejection::Hostgroup),
        ),
        (
            &[("accepted_hostgroups", "lin")],
            &["linux"],
            Some(Rejection::Hostgroup),
        ),
        (
            &[("rejected_hostgroups", "test")],
            &["test"],
            Some(Rejection::Hostgroup),
        ),
        (
            &[("rejected_hostgroups", "test , lab")],
            &["prod", "lab"],
            Some(Rejection::Hostgroup),
        ),
        (&[("rejected_hostgroups", "test")], &["prod"], None),
        (&[("rejected_hostgroups", "test")], &[], None),
    ];
    for (i, (params, names, want)) in table.iter().enumerate() {
        let c = cfg(params);
        for mut ev in [host(1), service(2)] {
            ev.ctx.hostgroups = groups(names);
            assert_eq!(
                problem_filter(&c.decision.filter, &ev),
                *want,
                "row {i} {:?}",
                ev.kind()
            );
        }
    }
    let err = try_cfg(&[("accepted_hostgroups", "a"), ("rejected_hostgroups", "b")]).unwrap_err();
    assert!(err.to_string().contains("accepted_hostgroups"));
    assert!(err.to_string().contains("rejected_hostgroups"));
}

#[test]
fn host_and_service_name_patterns() {
    // (parameters as users write them, host name, service description, expected)
    type Row = (
        Params,
        Option<&'static str>,
        Option<&'static str>,
        Option<Rejection>,
    );
    let table: &[Row] = &[
        (&[], Some("web1"), Some("disk"), None),
        (
            &[("accepted_hosts", "^web")],
            Some("web1"),
            Some("disk"),
            None,
        ),
        (
            &[("accepted_hosts", "^web")],
            Some("db1"),
            Some("disk"),
            Some(Rejection::HostName),
        ),
        // without the split option a comma is part of the pattern
        (
            &[("accepted_hosts", "web1,db1")],
            Some("db1"),
            Some("disk"),
            Some(Rejection::HostName),
        ),
        (
            &[
                ("accepted_hosts", "web1,db%d"),
                ("accepted_hosts_enable_split_pattern", "1"),
            ],
            Some("db7"),
            Some("disk"),
            None,
        ),
        // pieces are not trimmed, as in the library: " db1" needs the space
        (
            &[
                ("accepted_hosts", "web1, db1$"),
                ("accepted_hosts_enable_split_pattern", "1"),
            ],
            Some("db1"),
            Some("disk"),
            Some(Rejection::HostName),
        ),
        (
            &[
                ("accepted_hosts", "web1;^db"),
                ("accepted_hosts_enable_split_pattern", "1"),
                ("accepted_hosts_split_character", ";"),
            ],
            Some("db1"),
            Some("disk"),
            None,
        ),
        // a host unknown to the cache is matched by its id
        (&[("accepted_hosts", "^1$")], None, Some("disk"), None),
        (
            &[("accepted_services", "^disk")],
            Some("web1"),
            Some("cpu"),
            Some(Rejection::ServiceName),
        ),
        (
            &[
                ("accepted_services", "^Disk"),
                ("accepted_services_enable_split_pattern", "1"),
            ],
            Some("web1"),
            Some("Disk /var"),
            None,
        ),
        (&[("accepted_services", "^2$")], Some("web1"), None, None),
    ];
    for (i, (params, host_name, svc_name, want)) in table.iter().enumerate() {
        let c = cfg(params);
        let mut ev = service(2);
        ev.ctx.host_name = host_name.map(str::to_string);
        ev.ctx.service_description = svc_name.map(str::to_string);
        assert_eq!(problem_filter(&c.decision.filter, &ev), *want, "row {i}");
    }
    // service patterns never apply to hosts
    let c = cfg(&[("accepted_services", "^nothing$")]);
    assert_eq!(problem_filter(&c.decision.filter, &host(1)), None);
    // a pattern Lua refuses is refused at init, naming the parameter and Lua's reason
    let e = try_cfg(&[("accepted_hosts", "web[")]).unwrap_err();
    assert_eq!(e.parameter, "accepted_hosts");
    assert!(
        e.to_string().contains("malformed pattern (missing ']')"),
        "{e}"
    );
    let e = try_cfg(&[
        ("accepted_services", "ok,(bad"),
        ("accepted_services_enable_split_pattern", "1"),
    ])
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("pattern 2 of 2 is not a valid Lua pattern: unfinished capture"),
        "{e}"
    );
}

#[test]
fn servicegroups() {
    // (parameters, service's groups, expected)
    let table: &[(Params, &[&str], Option<Rejection>)] = &[
        (&[], &[], None),
        (&[("accepted_servicegroups", "")], &["mail"], None),
        (&[("rejected_servicegroups", " ")], &["mail"], None),
        (&[("accepted_servicegroups", "mail")], &["mail"], None),
        (&[("accepted_servicegroups", " mail ")], &["mail"], None),
        (
            &[("accepted_servicegroups", "mail")],
            &["web"],
            Some(Rejection::Servicegroup),
        ),
        (
            &[("accepted_servicegroups", "mail")],
            &[],
            Some(Rejection::Servicegroup),
        ),
        (
            &[("accepted_servicegroups", " web , mail ")],
            &["mail"],
            None,
        ),
        (
            &[("rejected_servicegroups", "noise")],
            &["noise"],
            Some(Rejection::Servicegroup),
        ),
        (&[("rejected_servicegroups", "noise")], &[], None),
        (&[("rejected_servicegroups", "noise, dev")], &["prod"], None),
    ];
    for (i, (params, names, want)) in table.iter().enumerate() {
        let c = cfg(params);
        let mut ev = service(2);
        ev.ctx.servicegroups = groups(names);
        assert_eq!(problem_filter(&c.decision.filter, &ev), *want, "row {i}");
        // service groups never apply to hosts
        assert_eq!(
            problem_filter(&c.decision.filter, &host(1)),
            None,
            "row {i} host"
        );
    }
    assert!(
        try_cfg(&[
            ("accepted_servicegroups", "a"),
            ("rejected_servicegroups", "b")
        ])
        .is_err()
    );
}

#[test]
fn pollers() {
    // (parameters, poller of the host, expected)
    let table: &[(Params, Option<&str>, Option<Rejection>)] = &[
        (&[], None, None),
        (&[], Some("Central"), None),
        (&[("accepted_pollers", "Central")], Some("Central"), None),
        (
            &[("accepted_pollers", "Central")],
            Some("poller-2"),
            Some(Rejection::Poller),
        ),
        (
            &[("accepted_pollers", "Central")],
            None,
            Some(Rejection::Poller),
        ),
        (
            &[("accepted_pollers", "poller-1, poller-2")],
            Some("poller-2"),
            None,
        ),
        (
            &[("rejected_pollers", "lab")],
            Some("lab"),
            Some(Rejection::Poller),
        ),
        (&[("rejected_pollers", "lab")], Some("Central"), None),
        (&[("rejected_pollers", "lab")], None, None),
        (&[("accepted_pollers", "")], None, None),
        (&[("accepted_pollers", " Central ")], Some("Central"), None),
        (
            &[("accepted_pollers", "Central,")],
            Some("central"),
            Some(Rejection::Poller),
        ),
        (
            &[("rejected_pollers", "lab, Central")],
            Some("Central"),
            Some(Rejection::Poller),
        ),
    ];
    for (i, (params, poller, want)) in table.iter().enumerate() {
        let c = cfg(params);
        for mut ev in [host(1), service(2)] {
            ev.ctx.poller = poller.map(str::to_string);
            assert_eq!(problem_filter(&c.decision.filter, &ev), *want, "row {i}");
        }
    }
    assert!(try_cfg(&[("accepted_pollers", "a"), ("rejected_pollers", "b")]).is_err());
}

#[test]
fn host_severity() {
    // "threshold OPERATOR severity": (threshold, operator, host severity, expected)
    let table: &[(&str, &str, Option<i64>, Option<Rejection>)] = &[
        ("", "", None, None),
        ("", ">", Some(5), None), // operator alone: no filter (a warning)
        ("2", "", Some(1), None), // default >=: 2 >= 1
        ("2", "", Some(2), None),
        ("2", "", Some(3), Some(Rejection::HostSeverity)),
        ("2", ">=", None, Some(Rejection::HostSeverity)),
        ("2", ">", Some(2), Some(Rejection::HostSeverity)),
        ("2", ">", Some(1), None),
        ("2", "<", Some(3), None),
        ("2", "<", Some(2), Some(Rejection::HostSeverity)),
        ("2", "<=", Some(2), None),
        ("2", "==", Some(2), None),
        ("2", "==", Some(1), Some(Rejection::HostSeverity)),
        ("2", "!=", Some(2), Some(Rejection::HostSeverity)),
        ("2", "~=", Some(1), None),
        (" 3 ", " >= ", Some(3), None),
    ];
    for (i, (t, op, sev, want)) in table.iter().enumerate() {
        let c = cfg(&[
            ("host_severity_threshold", t),
            ("host_severity_operator", op),
        ]);
        for mut ev in [host(1), service(2)] {
            ev.ctx.host_severity = *sev;
            // the host filter also applies to services (library behaviour)
            assert_eq!(problem_filter(&c.decision.filter, &ev), *want, "row {i}");
        }
    }
}

#[test]
fn service_severity() {
    // (threshold, operator, service severity, expected)
    let table: &[(&str, &str, Option<i64>, Option<Rejection>)] = &[
        ("", "", None, None),
        ("1", "", Some(1), None),
        ("1", "", Some(2), Some(Rejection::ServiceSeverity)),
        ("1", "", None, Some(Rejection::ServiceSeverity)),
        ("1", "<", Some(2), None),
        ("1", "==", Some(1), None),
    ];
    for (i, (t, op, sev, want)) in table.iter().enumerate() {
        let c = cfg(&[
            ("service_severity_threshold", t),
            ("service_severity_operator", op),
        ]);
        let mut ev = service(2);
        ev.ctx.service_severity = *sev;
        assert_eq!(problem_filter(&c.decision.filter, &ev), *want, "row {i}");
        // never applies to hosts
        assert_eq!(
            problem_filter(&c.decision.filter, &host(1)),
            None,
            "row {i} host"
        );
    }
}

#[test]
fn anonymous() {
    // (skip_anon_events, host name known, service description known, expected)
    let table: &[(&str, bool, bool, Option<Rejection>)] = &[
        ("", false, false, None),
        ("0", false, false, None),
        ("1", true, true, None),
        ("1", false, true, Some(Rejection::Anonymous)),
        ("1", true, false, Some(Rejection::Anonymous)),
    ];
    for (i, (skip, host_known, svc_known, want)) in table.iter().enumerate() {
        let c = cfg(&[("skip_anon_events", skip)]);
        let mut ev = service(2);
        if !host_known {
            ev.ctx.host_name = None;
        }
        if !svc_known {
            ev.ctx.service_description = None;
        }
        assert_eq!(problem_filter(&c.decision.filter, &ev), *want, "row {i}");
    }
    // a host event needs no service description
    let c = cfg(&[("skip_anon_events", "1")]);
    assert_eq!(problem_filter(&c.decision.filter, &host(1)), None);
}

#[test]
fn skip_nil_id() {
    // (skip_nil_id as written, log level of the dropped event)
    let table = [
        ("", Level::Info),
        ("1", Level::Info),
        (" yes ", Level::Info),
        ("0", Level::Error),
        ("false", Level::Error),
    ];
    for (i, (value, level)) in table.into_iter().enumerate() {
        assert_eq!(
            nil_id_level(&cfg(&[("skip_nil_id", value)]).decision.filter),
            level,
            "row {i}"
        );
    }
    assert!(try_cfg(&[("skip_nil_id", "2")]).is_err());
}

#[test]
fn categories_and_elements() {
    use crate::event::event_type;
    const HOST: u32 = 14;
    const SERVICE: u32 = 24;
    const PB_SERVICE: u32 = 29;
    const PB_HOST: u32 = 32;
    const ACK: u32 = 1;
    const DOWNTIME: u32 = 5;
    // (accepted_categories, accepted_elements, element, considered)
    let table: &[(&str, &str, u32, bool)] = &[
        ("", "", HOST, true),
        ("", "", PB_SERVICE, true),
        ("", "", ACK, true),
        ("", "", DOWNTIME, false),
        ("neb", "", SERVICE, true),
        (" neb , bam ", "", PB_HOST, true),
        ("", "service_status", HOST, false),
        ("", "service_status", PB_HOST, false),
        ("", "service_status", PB_SERVICE, true),
        ("", " host_status ", PB_HOST, true),
        ("", "host_status,service_status", SERVICE, true),
        ("", "host_status, downtime", DOWNTIME, true),
        ("", "pb_service_status", SERVICE, true),
        // acknowledgements of accepted statuses are always considered
        ("", "service_status", ACK, true),
        ("", "acknowledgement", HOST, false),
    ];
    for (i, (categories, elements, element, want)) in table.iter().enumerate() {
        let c = cfg(&[
            ("accepted_categories", categories),
            ("accepted_elements", elements),
        ]);
        assert_eq!(
            c.accepted_types.contains(&event_type(1, *element)),
            *want,
            "row {i}"
        );
    }
    // no neb, or nothing this connector handles: an init error
    for (categories, elements) in [("bam", ""), ("storage", ""), ("", "metric"), ("", "x")] {
        assert!(
            try_cfg(&[
                ("accepted_categories", categories),
                ("accepted_elements", elements),
            ])
            .is_err(),
            "{categories:?} {elements:?}"
        );
    }
}

#[test]
fn first_failing_check_is_reported_in_library_order() {
    let c = cfg(&[("skip_anon_events", "1"), ("accepted_hostgroups", "x")]);
    let mut ev = service(2);
    ev.hard = false;
    ev.flags.in_downtime = true;
    assert_eq!(
        problem_filter(&c.decision.filter, &ev),
        Some(Rejection::Soft)
    );
    ev.ctx.host_name = None;
    assert_eq!(
        problem_filter(&c.decision.filter, &ev),
        Some(Rejection::Anonymous)
    );
    let mut ev = service(2);
    ev.flags.in_downtime = true;
    assert_eq!(
        problem_filter(&c.decision.filter, &ev),
        Some(Rejection::InDowntime)
    );
    ev.flags.in_downtime = false;
    assert_eq!(
        problem_filter(&c.decision.filter, &ev),
        Some(Rejection::Hostgroup)
    );
}

#[test]
fn display_is_short() {
    for r in [
        Rejection::Soft,
        Rejection::StateNotAccepted,
        Rejection::Acknowledged,
        Rejection::InDowntime,
        Rejection::Flapping,
        Rejection::Hostgroup,
        Rejection::Servicegroup,
        Rejection::Poller,
        Rejection::HostSeverity,
        Rejection::ServiceSeverity,
        Rejection::Anonymous,
    ] {
        let s = r.to_string();
        assert!(!s.is_empty() && s.len() < 80, "{s}");
    }
}
