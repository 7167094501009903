//! Tests of `check-config`: verdicts, legacy scripts, output-level problems.

use super::*;
use serde_json::json;

fn report(output: Value) -> Report {
    let o = output.as_object().unwrap();
    let script = script_of(o).expect("a PagerDuty output");
    check_output(o, script)
}

fn verdicts(r: &Report) -> Vec<(String, &'static str)> {
    r.lines
        .iter()
        .map(|l| (l.name.clone(), l.verdict.label()))
        .collect()
}

#[test]
fn the_legacy_script_at_our_path_is_recognised_by_its_parameters() {
    let dir = crate::files::tests::scratch("check-legacy");
    let legacy = ["pdy_routing_key", "log_path", "max_buffer_age"];
    let path = dir.join("pagerduty.lua");
    let p = path.display().to_string();
    // the verdict on the legacy parameters with `script` at our path (None: no file)
    let with_script = |script: Option<&str>| {
        if let Some(text) = script {
            std::fs::write(&path, text).unwrap();
        }
        legacy_at_our_path(OURS, &p, &legacy)
    };
    // no file: told by the parameters
    assert!(with_script(None).unwrap().contains("by its parameters"));
    let legacy_script = "-- pagerduty-apiv1\nlocal http = require('socket.http')\n";
    assert!(
        with_script(Some(legacy_script))
            .unwrap()
            .contains("is not this connector's bridge")
    );
    let bridge = "local ok, mod = pcall(require, \"centreon_pagerduty\")\n";
    assert_eq!(with_script(Some(bridge)), None, "this connector's bridge");
    std::fs::remove_file(&path).unwrap();
    // a name only this connector reads: it is this connector
    assert_eq!(
        legacy_at_our_path(OURS, &p, &["log_path", "outbox_path"]),
        None
    );
    assert_eq!(
        legacy_at_our_path(OURS, &p, &["pdy_routing_key", "logfile"]),
        None
    );
    assert_eq!(legacy_at_our_path("pagerduty-apiv1.lua", &p, &legacy), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn outputs_are_recognised_by_script() {
    let o = |t: &str, p: &str| json!({"type": t, "path": p});
    let of = |v: Value| script_of(v.as_object().unwrap()).map(|s| s.0);
    assert_eq!(
        of(o("lua", "/usr/share/centreon-broker/lua/pagerduty.lua")),
        Some("pagerduty.lua")
    );
    assert_eq!(
        of(o("LUA", "/opt/pagerduty-events-apiv2.lua")),
        Some("pagerduty-events-apiv2.lua")
    );
    assert_eq!(
        of(o("lua", "pagerduty-apiv1.lua")),
        Some("pagerduty-apiv1.lua")
    );
    assert_eq!(
        of(o("lua", "/usr/share/centreon-broker/lua/splunk.lua")),
        None
    );
    assert_eq!(of(o("unified_sql", "/x/pagerduty.lua")), None);
    assert_eq!(of(json!({"type": "lua"})), None);
}

#[test]
fn every_verdict() {
    let r = report(json!({
        "name": "pd", "type": "lua", "path": "/x/pagerduty.lua",
        "lua_parameter": [
            {"type": "password", "name": "pdy_routing_key", "value": "short-SECRET"},
            {"type": "number", "name": "http_timeout", "value": "5"},
            {"type": "string", "name": "timezone", "value": "Europe/Paris"},
            {"type": "string", "name": "my_param", "value": "x"},
            {"type": "number", "name": "max_buffer_size", "value": "0"},
            {"type": "boolean", "name": "hard_only", "value": "1"},
            {"type": "string", "name": "accepted_hostgroups", "value": "a"},
            {"type": "string", "name": "rejected_hostgroups", "value": "b"},
            {"type": "string", "name": "proxy_password", "value": "pw-SECRET"},
            {"type": "string", "name": "log_level", "value": "2"}
        ]
    }));
    assert_eq!(
        verdicts(&r),
        [
            ("pdy_routing_key".to_string(), "invalid"),
            ("http_timeout".to_string(), "renamed"),
            ("timezone".to_string(), "ignored"),
            ("my_param".to_string(), "unknown"),
            ("max_buffer_size".to_string(), "invalid"),
            ("hard_only".to_string(), "ignored"),
            ("accepted_hostgroups".to_string(), "invalid"),
            ("rejected_hostgroups".to_string(), "honoured"),
            ("proxy_password".to_string(), "invalid"),
            ("log_level".to_string(), "honoured"),
        ]
    );
    assert!(r.invalid());
    let text = r.text();
    assert!(!text.contains("SECRET"), "{text}");
    assert!(
        text.contains(
            "pdy_routing_key      invalid: expected 32 alphanumeric characters (got 12 characters)"
        ),
        "{text}"
    );
    assert!(
        text.contains("max_buffer_size      invalid: expected an integer from 1 to 10000, got 0"),
        "{text}"
    );
    assert!(
        text.contains("proxy_password       invalid: is set but 'proxy_address' is not"),
        "{text}"
    );
    assert!(
        text.contains(
            "http_timeout         renamed: legacy name of connection_timeout, still read"
        ),
        "{text}"
    );
    assert!(
        text.contains("10 parameter(s): 2 honoured, 1 renamed, 2 ignored, 1 unknown, 4 invalid"),
        "{text}"
    );
}

#[test]
fn a_valid_output_and_output_level_problems() {
    let r = report(json!({
        "name": "pd", "type": "lua", "path": "pagerduty.lua",
        "filters": {"category": ["storage"]},
        "lua_parameter": {"type": "string", "name": "proxy_address", "value": "proxy"}
    }));
    assert_eq!(verdicts(&r), [("proxy_address".to_string(), "invalid")]);
    assert!(
        r.problems[0].contains("category filter leaves out neb"),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems[1].contains("PAGERDUTY_ROUTING_KEY"),
        "{:?}",
        r.problems
    );
    assert!(
        r.text()
            .contains("invalid: parameter 'proxy_port': is required when 'proxy_address' is set"),
        "{}",
        r.text()
    );
    let r = report(json!({
        "name": "pd", "type": "lua", "path": "pagerduty.lua",
        "filters": {"category": ["neb"]},
        "lua_parameter": [
            {"type": "password", "name": "pdy_routing_key", "value": PLACEHOLDER_KEY},
            {"type": "string", "name": "skip_anon_events", "value": "1"},
            {"type": "string", "name": "accepted_elements", "value": "host_status,host"}
        ]
    }));
    assert!(!r.invalid(), "{}", r.text());
    assert!(
        r.text().contains("element \"host\" ignored"),
        "{}",
        r.text()
    );
    // the same parameter in an output of the legacy script: its meaning changed
    let r = report(json!({
        "name": "old", "type": "lua", "path": "/x/pagerduty-apiv1.lua",
        "lua_parameter": [
            {"type": "password", "name": "pdy_routing_key", "value": PLACEHOLDER_KEY},
            {"type": "number", "name": "skip_anon_events", "value": "1"}
        ]
    }));
    assert!(r.text().contains("swap its value"), "{}", r.text());
}
