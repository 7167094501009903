//! Tests of the built-in PagerDuty events: layout, limits, cuts and encoding.

use super::fit::{ROUTING_KEY_RESERVE, cut_escaped};
use super::*;
use crate::config::{Config, ParamValue};
use crate::event::{Bbdo, Flags};
use serde_json::json;

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn cfg() -> PayloadOptions {
    cfg_with(&[])
}

/// The test configuration with `extra` parameters, as users write them.
fn cfg_with(extra: &[(&str, &str)]) -> PayloadOptions {
    let params: Vec<(String, ParamValue)> = [
        ("pdy_routing_key", KEY),
        ("pdy_centreon_url", "https://centreon.example.com"),
        ("outbox_path", "/tmp/unused.db"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), ParamValue::Str(v.to_string())))
    .collect();
    Config::from_params(&params).unwrap().0.payload
}

fn status(host_id: u64, service_id: u64, state: i64) -> StatusEvent {
    StatusEvent {
        bbdo: Bbdo::V3,
        key: ObjectKey {
            host_id,
            service_id,
        },
        state,
        hard: true,
        check_attempt: None,
        max_check_attempts: None,
        last_check: Some(1_700_000_000),
        last_state_change: Some(1_700_000_000),
        last_hard_state_change: None,
        output: String::new(),
        long_output: String::new(),
        perfdata: String::new(),
        flags: Flags::default(),
        ctx: Context::default(),
    }
}

fn critical_disk() -> StatusEvent {
    let mut ev = status(12, 34, 2);
    ev.check_attempt = Some(3);
    ev.max_check_attempts = Some(3);
    ev.output = "CRITICAL - /var 95% used\nline two\n".into();
    ev.long_output = "details".into();
    ev.perfdata = "'/var'=95%;80;90;0;100 'inodes used'=1234;;;0; bad=U".into();
    ev.ctx = Context {
        host_name: Some("db-01.paris".into()),
        service_description: Some("Disk /var".into()),
        hostgroups: vec!["linux".into(), "databases".into()],
        servicegroups: vec!["storage".into()],
        host_severity: Some(10),
        service_severity: None,
        poller: Some("central".into()),
        host_address: Some("10.0.0.12".into()),
        notes_url: None,
        action_url: None,
        template_fields: Vec::new(),
    };
    ev
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

#[test]
fn the_summary_says_the_state_once() {
    // (kind, state, output, summary's end after the object's name)
    let table: &[(Kind, i64, &str, &str)] = &[
        (
            Kind::Service,
            2,
            "CRITICAL - HTTP 503",
            "CRITICAL - HTTP 503",
        ),
        (
            Kind::Service,
            2,
            "CRITICAL: HTTP 503",
            "CRITICAL - HTTP 503",
        ),
        (
            Kind::Service,
            2,
            "Critical : HTTP 503",
            "CRITICAL - HTTP 503",
        ),
        (
            Kind::Service,
            2,
            "critical -HTTP 503",
            "CRITICAL - critical -HTTP 503",
        ),
        (Kind::Service, 2, "CRITICAL", "CRITICAL"),
        (Kind::Service, 2, "CRITICAL - ", "CRITICAL"),
        (
            Kind::Service,
            2,
            "CRITICAL HTTP 503",
            "CRITICAL - CRITICAL HTTP 503",
        ),
        (
            Kind::Service,
            2,
            "CRITICALITY: high",
            "CRITICAL - CRITICALITY: high",
        ),
        (
            Kind::Service,
            2,
            "HTTP CRITICAL: 503",
            "CRITICAL - HTTP CRITICAL: 503",
        ),
        // another state's word contradicts the state sent: kept
        (
            Kind::Service,
            2,
            "WARNING - HTTP 503",
            "CRITICAL - WARNING - HTTP 503",
        ),
        (Kind::Service, 0, "OK - HTTP 200", "OK - HTTP 200"),
        (Kind::Service, 0, "OK: fine", "OK - fine"),
        (Kind::Service, 1, "WARNING - load 9", "WARNING - load 9"),
        (
            Kind::Service,
            3,
            "UNKNOWN: no answer",
            "UNKNOWN - no answer",
        ),
        (Kind::Host, 0, "UP - rta 1ms", "UP - rta 1ms"),
        (Kind::Host, 1, "DOWN - unreachable", "DOWN - unreachable"),
        (
            Kind::Host,
            1,
            "CRITICAL - 10.0.0.6: rta nan",
            "DOWN - CRITICAL - 10.0.0.6: rta nan",
        ),
        (
            Kind::Host,
            2,
            "UNREACHABLE: parent down",
            "UNREACHABLE - parent down",
        ),
        (Kind::Service, 2, "", "CRITICAL"),
        (Kind::Service, 2, "é - x", "CRITICAL - é - x"),
    ];
    for (kind, state, output, end) in table {
        let mut ev = critical_disk();
        if *kind == Kind::Host {
            ev.key.service_id = 0;
            ev.ctx.service_description = None;
        }
        ev.state = *state;
        ev.output = format!("{output}\nsecond line");
        let out = status_event(&ev, Action::Trigger, &cfg());
        let name = match kind {
            Kind::Host => "db-01.paris",
            Kind::Service => "db-01.paris/Disk /var",
        };
        assert_eq!(out.summary, format!("{name}: {end}"), "{output:?}");
        // the details keep the output as the plugin wrote it
        assert_eq!(
            out.body.to_json()["payload"]["custom_details"]["Output"],
            output.trim(),
            "{output:?}"
        );
    }
}

#[test]
fn golden_bbdo3_service_critical() {
    let out = status_event(&critical_disk(), Action::Trigger, &cfg());
    assert_eq!(out.dedup_key, "12_34");
    assert_eq!(out.action, Action::Trigger);
    assert_eq!(
        out.summary,
        "db-01.paris/Disk /var: CRITICAL - /var 95% used"
    );
    let expected = json!({
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": "12_34",
        "payload": {
            "summary": "db-01.paris/Disk /var: CRITICAL - /var 95% used",
            "source": "db-01.paris",
            "severity": "critical",
            "timestamp": "2023-11-14T22:13:20Z",
            "component": "Disk /var",
            "group": "linux, databases",
            "class": "service",
            "custom_details": {
                "Hostgroups": "linux, databases",
                "Hostseverity": 10,
                "Servicegroups": "storage",
                "Output": "CRITICAL - /var 95% used",
                "LongOutput": "line two\ndetails",
                "StateType": "HARD",
                "Attempt": "3/3",
                "Poller": "central",
                "HostAddress": "10.0.0.12",
                "Metrics": {
                    "/var": {"value": 95.0, "unit": "%", "warn": "80", "crit": "90", "min": 0.0, "max": 100.0},
                    "inodes used": {"value": 1234.0, "min": 0.0}
                }
            }
        },
        "links": [
            {"href": "https://centreon.example.com/centreon/main.php?p=20202&o=hd&host_name=db-01.paris", "text": "Host page"},
            {"href": "https://centreon.example.com/centreon/main.php?p=20201&o=svcd&host_name=db-01.paris&service_description=Disk%20%2Fvar", "text": "Service page"}
        ],
        "client": "Centreon Stream Connector",
        "client_url": "https://centreon.example.com/centreon/"
    });
    let body = encode(&out, &Secret::new(KEY));
    assert!(body.starts_with(format!("{{\"routing_key\":\"{KEY}\",").as_bytes()));
    assert_eq!(parse(&body), expected);
}

#[test]
fn golden_host_down() {
    let mut ev = status(7, 0, 1);
    ev.hard = false;
    ev.check_attempt = Some(1);
    ev.max_check_attempts = Some(3);
    ev.last_check = Some(0);
    ev.last_state_change = Some(1_709_164_800);
    ev.output = "CRITICAL - 10.0.0.7: rta nan, lost 100%".into();
    ev.perfdata =
        "rta=0.000ms;3000.000;5000.000;0; pl=100%;80;100;; rtmax=0.000ms;;;; rtmin=0.000ms;;;;"
            .into();
    ev.ctx.host_name = Some("web 7 (é)".into());
    let mut c = cfg();
    c.source = Some("centreon-prod".into());
    c.centreon_url = "http://centreon/".into();
    c.dedup_key_prefix = "prod-".into();
    let out = status_event(&ev, Action::Trigger, &c);
    assert_eq!(out.dedup_key, "prod-7_H");
    let expected = json!({
        "routing_key": "<masked>",
        "event_action": "trigger",
        "dedup_key": "prod-7_H",
        "payload": {
            "summary": "web 7 (é): DOWN - CRITICAL - 10.0.0.7: rta nan, lost 100%",
            "source": "centreon-prod",
            "severity": "critical",
            "timestamp": "2024-02-29T00:00:00Z",
            "component": "web 7 (é)",
            "class": "host",
            "custom_details": {
                "Hostgroups": "",
                "Output": "CRITICAL - 10.0.0.7: rta nan, lost 100%",
                "StateType": "SOFT",
                "Attempt": "1/3",
                "Metrics": {
                    "rta": {"value": 0.0, "unit": "ms", "warn": "3000.000", "crit": "5000.000", "min": 0.0},
                    "pl": {"value": 100.0, "unit": "%", "warn": "80", "crit": "100"},
                    "rtmax": {"value": 0.0, "unit": "ms"},
                    "rtmin": {"value": 0.0, "unit": "ms"}
                }
            }
        },
        "links": [
            {"href": "http://centreon/centreon/main.php?p=20202&o=hd&host_name=web%207%20%28%C3%A9%29", "text": "Host page"}
        ],
        "client": "Centreon Stream Connector",
        "client_url": "http://centreon/centreon/"
    });
    assert_eq!(parse(redacted(&out).as_bytes()), expected);
    assert!(!redacted(&out).contains(KEY));
}

#[test]
fn golden_service_resolve() {
    let mut ev = critical_disk();
    ev.state = 0;
    ev.output = "OK - /var 40% used".into();
    ev.long_output.clear();
    ev.perfdata.clear();
    ev.ctx.hostgroups.clear();
    ev.ctx.servicegroups.clear();
    ev.ctx.host_severity = None;
    ev.ctx.service_severity = Some(3);
    ev.ctx.poller = None;
    ev.ctx.host_address = None;
    ev.ctx.notes_url = Some("https://wiki/disk".into());
    ev.ctx.action_url = Some("https://act/disk".into());
    let out = status_event(&ev, Action::Resolve, &cfg());
    let expected = json!({
        "routing_key": KEY,
        "event_action": "resolve",
        "dedup_key": "12_34",
        "payload": {
            "summary": "db-01.paris/Disk /var: OK - /var 40% used",
            "source": "db-01.paris",
            "severity": "info",
            "timestamp": "2023-11-14T22:13:20Z",
            "component": "Disk /var",
            "class": "service",
            "custom_details": {
                "Hostgroups": "",
                "Servicegroups": "",
                "Serviceseverity": 3,
                "Output": "OK - /var 40% used",
                "StateType": "HARD",
                "Attempt": "3/3",
                "NotesUrl": "https://wiki/disk",
                "ActionUrl": "https://act/disk"
            }
        },
        "links": [
            {"href": "https://centreon.example.com/centreon/main.php?p=20202&o=hd&host_name=db-01.paris", "text": "Host page"},
            {"href": "https://centreon.example.com/centreon/main.php?p=20201&o=svcd&host_name=db-01.paris&service_description=Disk%20%2Fvar", "text": "Service page"}
        ]
    });
    assert_eq!(parse(&encode(&out, &Secret::new(KEY))), expected);
}

#[test]
fn golden_anonymous_host() {
    let mut ev = status(99, 0, 2);
    ev.last_check = None;
    ev.last_state_change = None;
    let out = status_event(&ev, Action::Trigger, &cfg());
    let expected = json!({
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": "99_H",
        "payload": {
            "summary": "host #99: UNREACHABLE",
            "source": "host #99",
            "severity": "critical",
            "component": "host #99",
            "class": "host",
            "custom_details": {
                "Hostgroups": "",
                "Output": "",
                "StateType": "HARD"
            }
        },
        "client": "Centreon Stream Connector",
        "client_url": "https://centreon.example.com/centreon/"
    });
    assert_eq!(parse(&encode(&out, &Secret::new(KEY))), expected);
}

#[test]
fn anonymous_service_keeps_the_host_link_only() {
    let mut ev = status(5, 6, 3);
    ev.ctx.host_name = Some("h".into());
    ev.ctx.service_description = Some("  ".into());
    let out = status_event(&ev, Action::Trigger, &cfg());
    assert_eq!(out.summary, "h/service #6: UNKNOWN");
    assert_eq!(out.body.to_json()["payload"]["severity"], "error");
    assert_eq!(out.body.to_json()["payload"]["component"], "service #6");
    assert_eq!(out.body.to_json()["links"].as_array().unwrap().len(), 1);
    ev.ctx.host_name = None;
    ev.ctx.service_description = Some("svc".into());
    let out = status_event(&ev, Action::Trigger, &cfg());
    assert_eq!(out.summary, "host #5/svc: UNKNOWN");
    assert!(out.body.to_json().get("links").is_none());
}

#[test]
fn severities_follow_the_map() {
    let c = cfg();
    let sev = |kind, state| c.severities.of(kind, state).as_str();
    assert_eq!(sev(Kind::Host, 0), "info");
    assert_eq!(sev(Kind::Host, 1), "critical");
    assert_eq!(sev(Kind::Host, 2), "critical");
    assert_eq!(sev(Kind::Service, 0), "info");
    assert_eq!(sev(Kind::Service, 1), "warning");
    assert_eq!(sev(Kind::Service, 2), "critical");
    assert_eq!(sev(Kind::Service, 3), "error");
    assert_eq!(sev(Kind::Service, 4), "info");
    let mut c2 = cfg();
    c2.severities.host_down = Severity::Warning;
    assert_eq!(c2.severities.of(Kind::Host, 1), Severity::Warning);
}

#[test]
fn acknowledge_summary_and_details() {
    let ctx = Context {
        host_name: Some("h1".into()),
        service_description: Some("ping".into()),
        ..Context::default()
    };
    let key = ObjectKey::new(1, 2);
    let out = note_event(
        key,
        &ctx,
        &Note::acknowledged(Some("alice"), Some("on it\nticket 42"), Some(1_700_000_000)),
        &cfg(),
    );
    assert_eq!(out.action, Action::Acknowledge);
    assert_eq!(out.summary, "h1/ping: acknowledged by alice: on it");
    let v = parse(&encode(&out, &Secret::new(KEY)));
    assert_eq!(v["event_action"], "acknowledge");
    assert_eq!(v["dedup_key"], "1_2");
    assert_eq!(v["payload"]["timestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(v["payload"]["custom_details"]["Author"], "alice");
    assert_eq!(
        v["payload"]["custom_details"]["Comment"],
        "on it\nticket 42"
    );
    assert!(v.get("client").is_none() && v.get("client_url").is_none());
    let anon = note_event(
        ObjectKey::new(3, 0),
        &Context::default(),
        &Note::acknowledged(None, None, None),
        &cfg(),
    );
    assert_eq!(anon.summary, "host #3: acknowledged");
    assert_eq!(anon.dedup_key, "3_H");
    assert!(anon.body.to_json()["payload"].get("timestamp").is_none());
}

#[test]
fn dedup_keys() {
    let h = ObjectKey::new(12, 0);
    let s = ObjectKey::new(12, 34);
    assert_eq!(dedup_key(h, ""), "12_H");
    assert_eq!(dedup_key(s, ""), "12_34");
    assert_eq!(dedup_key(s, "x-"), "x-12_34");
    let long = "é".repeat(300);
    let k = dedup_key(s, &long);
    assert_eq!(k.chars().count(), 255);
    assert!(k.ends_with("é12_34"));
    let max = ObjectKey::new(u64::MAX, u64::MAX);
    assert_eq!(dedup_key(max, &long).chars().count(), 255);
}

#[test]
fn control_characters_quotes_and_backslashes_stay_valid_json() {
    let nasty: String = (0u8..0x20).map(char::from).collect::<String>() + "\"q\" \\b\\ \u{7f} é €";
    let mut ev = status(1, 2, 2);
    ev.output = nasty.replace('\n', "");
    ev.long_output = nasty.clone();
    ev.perfdata = format!("'{}'=1", nasty.replace(['\'', ' ', '\n'], ""));
    ev.ctx.host_name = Some(nasty.clone());
    ev.ctx.service_description = Some(nasty.clone());
    ev.ctx.hostgroups = vec![nasty.clone()];
    ev.ctx.poller = Some(nasty.clone());
    let mut c = cfg();
    c.client = nasty.clone();
    c.dedup_key_prefix = nasty.clone();
    let out = status_event(&ev, Action::Trigger, &c);
    let body = encode(&out, &Secret::new(KEY));
    let v = parse(&body);
    assert_eq!(v["payload"]["custom_details"]["LongOutput"], nasty.as_str());
    assert_eq!(v["payload"]["component"], nasty.as_str());
    assert_eq!(v["client"], nasty.as_str());
    assert_eq!(v["payload"]["summary"], out.summary.as_str());
    let red = redacted(&out);
    assert!(!red.contains(KEY));
    let rv = parse(red.as_bytes());
    assert_eq!(rv["routing_key"], "<masked>");
    let href = v["links"][1]["href"].as_str().unwrap();
    assert!(href.bytes().all(|b| b.is_ascii_graphic()), "{href}");
}

#[test]
fn body_text_is_written_once_into_its_exact_size() {
    let mut nasty = status(3, 4, 2);
    nasty.output = "\"quoted\" \\ é\u{1}".into();
    nasty.long_output = "y".repeat(5000);
    for ev in [status(1, 2, 2), nasty] {
        let out = status_event(&ev, Action::Trigger, &cfg());
        let text = body_text(&out.body);
        assert_eq!(text, serde_json::to_string(&out.body).unwrap());
        // no growth by doubling: the buffer was reserved at the final size
        assert_eq!(text.capacity(), text.len());
    }
    assert_eq!(body_text(&Map::new()), "{}");
}

/// The outbox keeps bodies as JSON text; sending splices that text: the bytes must be
/// those of the event itself, shrunk the same way when too large.
#[test]
fn encoding_the_stored_text_gives_the_same_bytes() {
    let key = Secret::new(KEY);
    let mut big = status(1, 2, 2);
    big.long_output = "x".repeat(2 * MAX_BODY);
    let mut nasty = status(3, 4, 2);
    nasty.output = "\"quoted\" \\ é\u{1}".into();
    for ev in [status(1, 2, 2), nasty, big] {
        let out = status_event(&ev, Action::Trigger, &cfg());
        let text = serde_json::to_string(&out.body).unwrap();
        let sent = encode_json(&text, &key);
        assert_eq!(sent, encode(&out, &key));
        assert!(sent.len() <= MAX_BODY);
        // text as another writer may have stored it: parsed, then the same bytes
        assert_eq!(encode_json(&format!(" {text}"), &key), sent);
    }
    let empty = Outgoing {
        dedup_key: "k".into(),
        action: Action::Resolve,
        summary: String::new(),
        body: Body::default(),
    };
    assert_eq!(encode_json("{}", &key), encode(&empty, &key));
    assert_eq!(parse(&encode_json("{}", &key))["routing_key"], KEY);
}

#[test]
fn summary_is_cut_to_1024_chars_with_marker() {
    let mut ev = status(1, 2, 1);
    ev.output = "é".repeat(100_000);
    ev.ctx.host_name = Some("h".into());
    ev.ctx.service_description = Some("s".into());
    let out = status_event(&ev, Action::Trigger, &cfg());
    assert_eq!(out.summary.chars().count(), 1024);
    assert!(out.summary.ends_with(TRUNCATION_MARKER));
    assert!(out.summary.starts_with("h/s: WARNING - éé"));
    let body = encode(&out, &Secret::new(KEY));
    assert!(body.len() <= MAX_BODY);
    let v = parse(&body);
    assert_eq!(v["payload"]["summary"], out.summary.as_str());
    // 200 kB of output fits: kept whole in the details.
    assert_eq!(v["payload"]["custom_details"]["Output"], ev.output.as_str());
    // Exactly 1024 characters is not cut.
    assert_eq!(truncate_chars(&"a".repeat(1024), 1024), "a".repeat(1024));
}

#[test]
fn output_of_control_characters_is_cut_by_escaped_size() {
    // 100 kB of \u0001 escapes to 600 kB: the Output detail must be cut.
    let mut ev = status(1, 2, 2);
    ev.output = "\u{1}".repeat(100_000);
    ev.long_output = "long".repeat(1000);
    let out = status_event(&ev, Action::Trigger, &cfg());
    let body = encode(&out, &Secret::new(KEY));
    assert!(body.len() <= MAX_BODY, "{}", body.len());
    assert!(
        body.len() > MAX_BODY - 2 * ROUTING_KEY_RESERVE,
        "cut no more than needed"
    );
    let v = parse(&body);
    let d = &v["payload"]["custom_details"];
    assert_eq!(d["LongOutput"], TRUNCATION_MARKER);
    assert!(d["Output"].as_str().unwrap().ends_with(TRUNCATION_MARKER));
    assert_eq!(d["StateType"], "HARD");
}

#[test]
fn huge_long_output_and_20000_metrics() {
    let mut ev = critical_disk();
    ev.long_output = "x".repeat(2_000_000);
    ev.perfdata = (0..20_000)
        .map(|i| format!("metric_{i}=1.5ms;10;20;0;100"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = status_event(&ev, Action::Trigger, &cfg());
    let body = encode(&out, &Secret::new(KEY));
    assert!(body.len() <= MAX_BODY, "{}", body.len());
    let v = parse(&body);
    let d = &v["payload"]["custom_details"];
    assert!(d.get("Metrics").is_none());
    let long = d["LongOutput"].as_str().unwrap();
    assert!(long.ends_with(TRUNCATION_MARKER));
    assert!(long.len() > 400_000, "LongOutput keeps what fits");
    assert_eq!(d["Output"], "CRITICAL - /var 95% used");
    assert_eq!(v["event_action"], "trigger");
    assert_eq!(v["dedup_key"], "12_34");

    // Metrics alone over the limit: dropped, everything else kept.
    ev.long_output = "short".into();
    let out = status_event(&ev, Action::Trigger, &cfg());
    let v = parse(&encode(&out, &Secret::new(KEY)));
    let d = &v["payload"]["custom_details"];
    assert!(d.get("Metrics").is_none());
    assert_eq!(d["LongOutput"], "line two\nshort");

    // Many metrics that fit are all kept.
    ev.perfdata = (0..2_000)
        .map(|i| format!("m{i}=1"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = status_event(&ev, Action::Trigger, &cfg());
    assert_eq!(
        out.body.to_json()["payload"]["custom_details"]["Metrics"]
            .as_object()
            .unwrap()
            .len(),
        2_000
    );
}

#[test]
fn everything_huge_still_sends_the_event() {
    let big = "g".repeat(600_000);
    let mut ev = status(1, 2, 2);
    ev.output = big.clone();
    ev.long_output = big.clone();
    ev.ctx.host_name = Some(big.clone());
    ev.ctx.service_description = Some(big.clone());
    ev.ctx.hostgroups = vec![big.clone()];
    ev.ctx.servicegroups = vec![big.clone()];
    ev.ctx.notes_url = Some(big.clone());
    let mut c = cfg();
    c.client = big.clone();
    let out = status_event(&ev, Action::Trigger, &c);
    let body = encode(&out, &Secret::new(KEY));
    assert!(body.len() <= MAX_BODY, "{}", body.len());
    let v = parse(&body);
    assert_eq!(v["event_action"], "trigger");
    assert_eq!(v["dedup_key"], "1_2");
    assert_eq!(v["payload"]["severity"], "critical");
    assert_eq!(
        v["payload"]["summary"].as_str().unwrap().chars().count(),
        1024
    );
    // A long routing key reserves more room.
    let long_key = Secret::new("k".repeat(5_000));
    let ev2 = {
        let mut e = critical_disk();
        e.long_output = "y".repeat(600_000);
        e
    };
    let out2 = status_event(&ev2, Action::Trigger, &cfg());
    let body2 = encode(&out2, &long_key);
    assert!(body2.len() <= MAX_BODY, "{}", body2.len());
    assert_eq!(parse(&body2)["routing_key"], "k".repeat(5_000));
}

#[test]
fn output_options_shape_output_long_output_and_summary() {
    // BBDO 2 output (long output after the first line) and BBDO 3 long_output alike
    let mut v2 = critical_disk();
    v2.output = "CRITICAL - /var 95% used\nline two\nline three".into();
    v2.long_output.clear();
    let mut v3 = critical_disk();
    v3.output = "CRITICAL - /var 95% used".into();
    v3.long_output = "line two\nline three".into();
    // (parameters, summary, Output, LongOutput)
    type Row = (
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
        Option<&'static str>,
    );
    let table: &[Row] = &[
        (
            &[],
            "db-01.paris/Disk /var: CRITICAL - /var 95% used",
            "CRITICAL - /var 95% used",
            Some("line two\nline three"),
        ),
        (
            &[("use_long_output", "0")],
            "db-01.paris/Disk /var: CRITICAL - /var 95% used",
            "CRITICAL - /var 95% used",
            None,
        ),
        (
            &[("remove_line_break_in_output", "1")],
            "db-01.paris/Disk /var: CRITICAL - /var 95% used",
            "CRITICAL - /var 95% used",
            Some("line two line three"),
        ),
        (
            &[
                ("remove_line_break_in_output", "1"),
                ("output_line_break_replacement_character", " | "),
            ],
            "db-01.paris/Disk /var: CRITICAL - /var 95% used",
            "CRITICAL - /var 95% used",
            Some("line two | line three"),
        ),
        (
            &[("output_size_limit", "33")],
            "db-01.paris/Disk /var: CRITICAL - /var 95% used",
            "CRITICAL - /var 95% used",
            Some("line two"),
        ),
        (
            &[("output_size_limit", "8")],
            "db-01.paris/Disk /var: CRITICAL",
            "CRITICAL",
            None,
        ),
        (
            &[("output_size_limit", "20"), ("use_long_output", "1")],
            "db-01.paris/Disk /var: CRITICAL - CRITICAL…[truncated]",
            "CRITICAL…[truncated]",
            None,
        ),
    ];
    for (i, (params, summary, output, long)) in table.iter().enumerate() {
        let c = cfg_with(params);
        for ev in [&v2, &v3] {
            let out = status_event(ev, Action::Trigger, &c);
            let d = &out.body.to_json()["payload"]["custom_details"];
            assert_eq!(out.summary, *summary, "row {i}");
            assert_eq!(
                out.body.to_json()["payload"]["summary"],
                *summary,
                "row {i}"
            );
            assert_eq!(d["Output"], *output, "row {i}");
            assert_eq!(
                d.get("LongOutput").and_then(Value::as_str),
                *long,
                "row {i}"
            );
        }
    }
    // the summary stays within PagerDuty's 1024 characters whatever the limit
    let mut big = critical_disk();
    big.output = "x".repeat(5000);
    let out = status_event(
        &big,
        Action::Trigger,
        &cfg_with(&[("output_size_limit", "4000")]),
    );
    assert_eq!(out.summary.chars().count(), MAX_SUMMARY_CHARS);
    let d = &out.body.to_json()["payload"]["custom_details"];
    assert_eq!(d["Output"].as_str().unwrap().chars().count(), 4000);
    assert!(d.get("LongOutput").is_none(), "no room left for it");
}

#[test]
fn percent_encoding() {
    assert_eq!(percent_encode("aZ09-._~"), "aZ09-._~");
    assert_eq!(
        percent_encode("a b&c=d/é?#%+"),
        "a%20b%26c%3Dd%2F%C3%A9%3F%23%25%2B"
    );
}

#[test]
fn fair_share_keeps_the_short_and_cuts_the_long_alike() {
    assert_eq!(fair_share(&[10, 20, 30], 60), None);
    assert_eq!(fair_share(&[], 0), None);
    // 10 and 20 fit in a third of 90: kept; the rest (60) is shared by the two long ones
    assert_eq!(fair_share(&[100, 10, 1000, 20], 90), Some(30));
    assert_eq!(fair_share(&[10_000; 200], 511_000), Some(2555));
    assert_eq!(fair_share(&[5, 5], 3), Some(1));
    for (lens, room) in [(vec![7, 300, 2, 90, 90], 150), (vec![1; 5], 4)] {
        let share = fair_share(&lens, room).unwrap();
        let used: usize = lens.iter().map(|n| (*n).min(share)).sum();
        assert!(
            used <= room && room - used < lens.len(),
            "{lens:?} {room}: {share}"
        );
    }
}

#[test]
fn join_within_copies_only_what_it_keeps() {
    let parts = [("ab\"c", 5), ("é€", 5), ("\u{1}x", 7), ("0123456789", 10)];
    assert_eq!(join_within(&parts, 27), "ab\"cé€\u{1}x0123456789");
    let marker = escaped_len(TRUNCATION_MARKER);
    // never a character cut in two, never past the limit
    for max in 0..27 {
        let j = join_within(&parts, max);
        assert!(escaped_len(&j) <= max, "{max}: {j:?}");
        if max < marker {
            assert_eq!(j, "");
        } else {
            assert!(j.ends_with(TRUNCATION_MARKER));
        }
    }
    let j = join_within(&parts, marker + 6);
    assert_eq!(j, format!("ab\"c{TRUNCATION_MARKER}"));
    let j = join_within(&parts, marker + 7);
    assert_eq!(j, format!("ab\"cé{TRUNCATION_MARKER}"));
}

#[test]
fn cut_escaped_respects_budget() {
    let s = "\u{1}\"é€a".repeat(100);
    for max in [0, 5, 14, 15, 20, 100, 333, 10_000] {
        let c = cut_escaped(&s, max);
        if escaped_len(&s) > max {
            assert!(c.ends_with(TRUNCATION_MARKER));
            assert!(escaped_len(&c) <= max.max(escaped_len(TRUNCATION_MARKER)));
        }
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json.len(), escaped_len(&c) + 2);
    }
}

fn custom(action: Action) -> Custom<'static> {
    let mut details = Map::new();
    details.insert("Agent".into(), "web-01".into());
    Custom {
        action,
        dedup_key: "pandora-42",
        summary: "Disk almost full",
        source: "web-01",
        severity: Severity::Warning,
        timestamp: Some(1_700_000_000),
        component: Some("disk_/var"),
        group: None,
        class: Some(""),
        details,
        links: vec![
            ("https://pandora.example.com/", Some("Console")),
            ("https://x/", None),
        ],
        client: Some("Pandora FMS"),
        client_url: Some("https://pandora.example.com/"),
    }
}

#[test]
fn custom_event_fields() {
    let out = custom_event(&custom(Action::Trigger));
    assert_eq!(out.dedup_key, "pandora-42");
    assert_eq!(out.summary, "Disk almost full");
    let body = Value::Object(out.body.to_json().into_owned());
    assert_eq!(
        body,
        json!({
            "event_action": "trigger",
            "dedup_key": "pandora-42",
            "payload": {
                "summary": "Disk almost full",
                "source": "web-01",
                "severity": "warning",
                "timestamp": "2023-11-14T22:13:20Z",
                "component": "disk_/var",
                "custom_details": {"Agent": "web-01"}
            },
            "links": [{"href": "https://pandora.example.com/", "text": "Console"}, {"href": "https://x/"}],
            "client": "Pandora FMS",
            "client_url": "https://pandora.example.com/"
        })
    );
    // client and client_url are for triggers only
    let out = custom_event(&custom(Action::Resolve));
    assert!(
        !out.body.to_json().contains_key("client")
            && !out.body.to_json().contains_key("client_url")
    );
    assert_eq!(out.body.to_json()["event_action"], "resolve");
}

#[test]
fn custom_event_is_cut_to_the_limits() {
    let long = "x".repeat(MAX_BODY);
    let mut c = custom(Action::Trigger);
    c.summary = &long;
    c.details.insert("Data".into(), long.clone().into());
    let out = custom_event(&c);
    assert_eq!(out.summary.chars().count(), MAX_SUMMARY_CHARS);
    assert!(out.summary.ends_with(TRUNCATION_MARKER));
    assert!(encode(&out, &Secret::new(KEY)).len() <= MAX_BODY);
}

/// A typed body is written field by field in declaration order; the same body read back as
/// JSON (the outbox, a template) is written in key order. Both must give the same bytes.
#[test]
fn typed_bodies_are_written_in_json_key_order() {
    let mut ev = critical_disk();
    ev.ctx.notes_url = Some("https://notes".into());
    let mut with_group = custom(Action::Trigger);
    with_group.group = Some("g");
    with_group.class = Some("c");
    let bodies = [
        status_event(&ev, Action::Trigger, &cfg()).body,
        custom_event(&with_group).body,
        change_event("s", "src", 1_700_000_000, custom(Action::Trigger).details),
    ];
    for body in bodies {
        assert!(!matches!(body, Body::Json(_)), "typed: {body:?}");
        let text = body_text(&body);
        assert_eq!(text, body_text(&body.to_json()));
        assert_eq!(
            text,
            body_text(&serde_json::from_str::<Body>(&text).unwrap())
        );
    }
}

/// The builder is where the format is chosen: the built-in events without `format_file`,
/// the templates' with it (and the built-in one where no template applies).
#[test]
fn the_builder_chooses_the_templates_or_the_built_in_format() {
    let dir = crate::files::tests::scratch("builder");
    let file = dir.join("format.json");
    std::fs::write(
        &file,
        r#"{"neb_service_status": {"payload": {"summary": "templated {service_id}"}}}"#,
    )
    .unwrap();
    let templated = cfg_with(&[("format_file", file.to_str().unwrap())]);
    let plain = cfg();
    let ev = critical_disk();
    let ack = Note::acknowledged(Some("alice"), None, None);

    let built = Builder::new(&plain);
    assert_eq!(
        built.status(&ev, Action::Trigger),
        status_event(&ev, Action::Trigger, &plain)
    );
    assert_eq!(
        built.note(ev.key, &ev.ctx, &ack),
        note_event(ev.key, &ev.ctx, &ack, &plain)
    );
    assert_eq!(built.dedup_key_unbuilt(ev.key).as_deref(), Some("12_34"));

    let built = Builder::new(&templated);
    assert_eq!(built.status(&ev, Action::Trigger).summary, "templated 34");
    // no acknowledgement template: the built-in event
    assert_eq!(
        built.note(ev.key, &ev.ctx, &ack),
        note_event(ev.key, &ev.ctx, &ack, &plain)
    );
    assert_eq!(built.dedup_key_unbuilt(ev.key), None);
    std::fs::remove_dir_all(&dir).unwrap();
}
