//! The configuration's tests: every parameter as users write it.

/// Parameters as users write them: (name, value).
type Params = &'static [(&'static str, &'static str)];

use super::*;
use crate::decision::DowntimeAction;
use crate::decision::filter::{CompareOp, SeverityFilter};
use crate::event::{element, event_type};
use crate::payload::output::OutputOptions;
use crate::payload::{Severity, SeverityMap};
use std::path::PathBuf;
use std::time::Duration;

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
    assert_eq!(
        c.payload.centreon_url,
        "http://set.pdy_centreon_url.parameter"
    );
    assert_eq!(c.payload.source, None);
    assert_eq!(c.http.endpoint, "https://events.pagerduty.com/v2/enqueue");
    assert_eq!(c.payload.client, "Centreon Stream Connector");
    assert_eq!(c.http.proxy, None);
    assert_eq!(c.http.timeout, Duration::from_secs(10));
    assert!(c.http.verify_certificate);
    assert_eq!(c.log.level, 1);
    assert_eq!(
        c.log.path,
        PathBuf::from("/var/log/centreon-broker/stream-connector-pagerduty.log")
    );
    assert_eq!(c.delivery.max_buffer_size, 1);
    assert_eq!(c.delivery.max_buffer_age, Duration::from_secs(5));
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
    assert!(c.decision.send_acknowledgements && !c.decision.suppress_services_of_down_hosts);
    assert_eq!(c.decision.downtime_action, DowntimeAction::Suppress);
    assert_eq!(c.payload.dedup_key_prefix, "");
    assert_eq!(c.decision.filter.host_status, vec![0, 1, 2]);
    assert_eq!(c.decision.filter.service_status, vec![0, 1, 2, 3]);
    assert!(c.decision.filter.hard_only);
    assert!(
        !c.decision.filter.acknowledged
            && !c.decision.filter.in_downtime
            && !c.decision.filter.flapping
    );
    assert!(!c.decision.filter.skip_anon_events);
    assert!(!c.delivery.send_data_test);
    assert_eq!(c.payload.severities, SeverityMap::default());
    assert_eq!(c.payload.severities.host_down, Severity::Critical);
    assert_eq!(c.payload.severities.service_unknown, Severity::Error);
    assert!(
        c.decision.filter.accepted_hostgroups.is_empty()
            && c.decision.filter.rejected_pollers.is_empty()
    );
    assert_eq!(c.decision.filter.host_severity_filter, None);
    assert_eq!(c.decision.filter.service_severity_filter, None);
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
    assert_eq!(c.payload.centreon_url, "https://centreon.example.com");
    assert_eq!(c.payload.source.as_deref(), Some("central"));
    assert_eq!(
        c.http.endpoint,
        "https://events.eu.pagerduty.com/v2/enqueue"
    );
    assert_eq!(c.payload.client, "Centreon EU");
    assert_eq!(c.http.timeout, Duration::from_millis(2500));
    assert!(!c.http.verify_certificate);
    assert_eq!(c.log.level, 3);
    assert_eq!(c.log.path, PathBuf::from("/tmp/pd.log"));
    assert_eq!(c.delivery.max_buffer_size, 10);
    assert_eq!(c.delivery.max_buffer_age, Duration::from_millis(1500));
    assert_eq!(
        c.accepted_types,
        vec![
            65537, 65541, 65550, 65560, 65565, 65568, 65572, 65581, 65591, 65592
        ]
    );
    assert_eq!(c.decision.filter.host_status, vec![1, 2]);
    assert_eq!(c.decision.filter.service_status, vec![2]);
    assert!(
        !c.decision.filter.hard_only
            && c.decision.filter.acknowledged
            && c.decision.filter.in_downtime
            && c.decision.filter.flapping
    );
    assert!(c.decision.filter.skip_anon_events && c.delivery.send_data_test);
    assert!(!c.decision.send_acknowledgements && c.decision.suppress_services_of_down_hosts);
    assert_eq!(c.decision.downtime_action, DowntimeAction::Suppress);
    assert_eq!(c.payload.dedup_key_prefix, "paris-");
    assert_eq!(
        c.payload.severities,
        SeverityMap {
            host_down: Severity::Error,
            host_unreachable: Severity::Warning,
            service_warning: Severity::Info,
            service_critical: Severity::Error,
            service_unknown: Severity::Critical,
        }
    );
    assert_eq!(c.decision.filter.accepted_hostgroups, vec!["linux", "db"]);
    assert_eq!(c.decision.filter.rejected_servicegroups, vec!["noise"]);
    assert_eq!(c.decision.filter.accepted_pollers, vec!["Central"]);
    assert_eq!(
        c.decision.filter.host_severity_filter,
        Some(SeverityFilter {
            threshold: 2,
            op: CompareOp::Lt
        })
    );
    assert_eq!(
        c.decision.filter.service_severity_filter,
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
    assert_eq!(c.http.timeout, Duration::from_secs(30));
    assert!(c.http.verify_certificate);
    assert_eq!(c.log.level, 2);
    assert_eq!(c.delivery.max_buffer_size, 50);
    assert_eq!(c.delivery.max_buffer_age, Duration::from_millis(500));
    assert!(!c.decision.filter.hard_only);
    assert_eq!(
        c.decision.filter.host_severity_filter.map(|f| f.threshold),
        Some(1)
    );
    assert_eq!(c.http.proxy.unwrap().url, "http://proxy.local:3128");
}

#[test]
fn legacy_and_certified_spellings() {
    // (legacy name, certified name, value, check)
    let (c, w) = parse(&[("http_timeout", s("7"))]);
    assert!(w.is_empty());
    assert_eq!(c.http.timeout, Duration::from_secs(7));
    let (c, _) = parse(&[("connection_timeout", s("8"))]);
    assert_eq!(c.http.timeout, Duration::from_secs(8));
    let (c, w) = parse(&[("connection_timeout", s("8")), ("http_timeout", s("7"))]);
    assert_eq!(c.http.timeout, Duration::from_secs(8));
    assert!(
        warnings_text(&w).contains("'connection_timeout' is used"),
        "{w:?}"
    );

    let (c, w) = parse(&[("log_path", s("/var/log/a.log"))]);
    assert!(w.is_empty());
    assert_eq!(c.log.path, PathBuf::from("/var/log/a.log"));
    let (c, _) = parse(&[("logfile", s("/var/log/b.log"))]);
    assert_eq!(c.log.path, PathBuf::from("/var/log/b.log"));
    let (c, w) = parse(&[("logfile", s("/b")), ("log_path", s("/a"))]);
    assert_eq!(c.log.path, PathBuf::from("/b"));
    assert_eq!(w.len(), 1);

    let (c, w) = parse(&[("max_buffer_age", s("3"))]);
    assert!(w.is_empty());
    assert_eq!(c.delivery.max_buffer_age, Duration::from_secs(3));
    let (c, _) = parse(&[("max_all_queues_age", s("4"))]);
    assert_eq!(c.delivery.max_buffer_age, Duration::from_secs(4));
    let (c, w) = parse(&[("max_all_queues_age", s("4")), ("max_buffer_age", s("3"))]);
    assert_eq!(c.delivery.max_buffer_age, Duration::from_secs(4));
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
        assert_eq!(c.http.verify_certificate, want, "{v:?}");
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
        let p = c.http.proxy.expect("proxy");
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
    let p = c.http.proxy.clone().unwrap();
    assert_eq!(p.url, "http://proxy.local:3128");
    assert_eq!(p.username.as_deref(), Some("bob"));
    assert_eq!(p.password.as_ref().map(Secret::expose), Some("hunter2!"));
    assert!(!format!("{c:?}").contains("hunter2"));

    let (c, _) = parse(&[
        ("proxy_address", s("proxy.local")),
        ("proxy_port", ParamValue::Float(8443.0)),
        ("proxy_protocol", s("HTTPS")),
    ]);
    assert_eq!(c.http.proxy.unwrap().url, "https://proxy.local:8443");
    let (c, _) = parse(&[
        ("proxy_address", s("socks5://10.1.1.1")),
        ("proxy_port", s("1080")),
        ("proxy_protocol", s("socks5")),
    ]);
    assert_eq!(c.http.proxy.unwrap().url, "socks5://10.1.1.1:1080");
    let (c, _) = parse(&[("proxy_address", s("proxy.local:3128"))]);
    assert_eq!(c.http.proxy.unwrap().url, "http://proxy.local:3128");

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
    assert!(c.http.proxy.is_some());
    assert_eq!(w.len(), 1, "{w:?}");
    let (c, w) = parse(&[("proxy_protocol", s("http"))]);
    assert!(c.http.proxy.is_none());
    assert_eq!(w.len(), 1, "{w:?}");
    // empty strings (as the UI leaves them) are "not set"
    let (c, w) = parse(&[
        ("proxy_address", s("")),
        ("proxy_port", s("")),
        ("proxy_username", s("")),
        ("proxy_password", s("")),
    ]);
    assert!(c.http.proxy.is_none() && w.is_empty());
}

#[test]
fn routing_key_from_a_file() {
    let dir = crate::files::tests::scratch("key");
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
    let dir = crate::files::tests::scratch("key-hostile");
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
    assert_eq!(c.decision.downtime_action, DowntimeAction::Resolve);
    let e = parse_err(&[("in_downtime", s("1")), ("downtime_action", s("resolve"))]);
    assert_eq!(e.parameter, "downtime_action");
    assert!(e.to_string().contains("in_downtime=1"), "{e}");
    let (c, _) = parse(&[("in_downtime", s("1")), ("downtime_action", s("suppress"))]);
    assert!(c.decision.filter.in_downtime);
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
            c.decision.filter.service_severity_filter,
            Some(SeverityFilter {
                threshold: 4,
                op: want
            })
        );
    }
    let (c, w) = parse(&[("host_severity_operator", s("<"))]);
    assert_eq!(c.decision.filter.host_severity_filter, None);
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
    assert_eq!(c.payload.output, OutputOptions::default());
    assert!(c.decision.filter.skip_nil_id && !c.http.log_curl_commands);
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
            c.payload.output,
            OutputOptions {
                long: *long,
                size_limit: *limit,
                line_break: line_break.map(str::to_string),
            },
            "row {i}"
        );
    }
    let (c, w) = parse(&[("output_line_break_replacement_character", s("_"))]);
    assert_eq!(c.payload.output.line_break, None);
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
    assert!(!c.decision.filter.skip_nil_id && c.http.log_curl_commands);
    assert_eq!(
        parse_err(&[("skip_nil_id", s("yes please"))]).parameter,
        "skip_nil_id"
    );
}

#[test]
fn format_file_is_read_and_checked_at_init() {
    let dir = crate::files::tests::scratch("format-file");
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
    let t = c.payload.templates.expect("templates");
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
    assert_eq!(c.delivery.max_buffer_size, 3);
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
    assert_eq!(c.delivery.max_buffer_size, 5);
    assert_eq!(c.http.timeout, Duration::from_millis(2500));
    assert!(!c.http.verify_certificate);
    assert_eq!(c.log.level, 3);
    assert_eq!(c.payload.source, None);

    let v = serde_json::json!([
        {"type": "password", "name": "pdy_routing_key", "value": KEY},
        {"type": "number", "name": "max_buffer_size", "value": "7"}
    ]);
    let (c, _) = Config::from_json(&v).unwrap();
    assert_eq!(c.delivery.max_buffer_size, 7);

    let e =
        Config::from_json(&serde_json::json!({"pdy_routing_key": KEY, "client": [1]})).unwrap_err();
    assert_eq!(e.parameter, "client");
    assert!(Config::from_json(&serde_json::json!("x")).is_err());
    let e = Config::from_json(&serde_json::json!({"pdy_routing_key": "short"})).unwrap_err();
    assert!(!e.to_string().contains("short"));
}

/// Every spelling a table lists is read, and the code reads no spelling the tables do not list:
/// a parameter cannot be listed and forgotten, nor read and left undocumented.
#[test]
fn every_row_is_read() {
    let params = [("pdy_routing_key".to_string(), s(KEY))];
    let mut r = ParamReader::new(&params, &secret_names());
    Config::read(&mut r).unwrap();
    let mut asked: Vec<&str> = r.asked().to_vec();
    asked.sort_unstable();
    let mut supported: Vec<&str> = known_parameters()
        .iter()
        .filter(|p| p.status == ParamStatus::Supported)
        .map(|p| p.name)
        .collect();
    supported.sort_unstable();
    let unread: Vec<&&str> = supported.iter().filter(|n| !asked.contains(n)).collect();
    assert!(unread.is_empty(), "listed but never read: {unread:?}");
    let unlisted: Vec<&&str> = asked.iter().filter(|n| !supported.contains(n)).collect();
    assert!(unlisted.is_empty(), "read but not listed: {unlisted:?}");
    assert_eq!(
        asked.len(),
        supported.len(),
        "a spelling read twice: {asked:?}"
    );
}

#[test]
fn rows_say_which_values_are_secret_and_which_names_are_legacy() {
    let mut secret = secret_names();
    secret.sort_unstable();
    assert_eq!(
        secret,
        ["http_proxy_string", "pdy_routing_key", "proxy_password"]
    );
    let legacy: Vec<(&str, &str)> = known_parameters()
        .iter()
        .filter_map(|p| Some((p.name, p.legacy_of?)))
        .collect();
    assert_eq!(
        legacy,
        [
            ("http_timeout", "connection_timeout"),
            ("log_path", "logfile"),
            ("max_buffer_age", "max_all_queues_age"),
        ]
    );
}

/// Code acts on an error's kind, never on its wording: the other parameter an error is about
/// is named by the error itself.
#[test]
fn errors_name_the_other_parameter_they_are_about() {
    let e = parse_err(&[("proxy_address", s("proxy.example.com"))]);
    assert_eq!(e.parameter, "proxy_port");
    assert_eq!(e.kind, ErrorKind::Missing(Some("proxy_address".into())));
    assert_eq!(e.other_parameter(), Some("proxy_address"));
    let e = parse_err(&[("accepted_pollers", s("a")), (" rejected_pollers", s("b"))]);
    assert_eq!(e.kind, ErrorKind::Conflict(" rejected_pollers".into()));
    let e = parse_err(&[("hard_only", s("maybe"))]);
    assert_eq!(e.kind, ErrorKind::Value);
    assert_eq!(e.other_parameter(), None);
    let e = Config::from_json(&serde_json::json!(42)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Shape);
}
