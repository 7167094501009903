//! Tests of `format_file` templates: parsing, macros, rendering and the one-pass shrink.

use serde_json::{Map, Value, json};

use super::file::{Node, node};
use super::render::Role;
use super::*;
use crate::config::{Config, ParamValue, Secret};
use crate::event::{Event, RawEvent};
use crate::log::{Level, Sink};

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn load(v: Value) -> Templates {
    Templates::parse(&v.to_string()).expect("valid templates").0
}

fn warnings(v: Value) -> Vec<String> {
    Templates::parse(&v.to_string()).expect("valid templates").1
}

fn err(v: Value) -> String {
    Templates::parse(&v.to_string())
        .expect_err("invalid templates")
        .to_string()
}

fn ctx() -> Context {
    Context {
        host_name: Some("srv-db".into()),
        service_description: Some("Disk /var".into()),
        hostgroups: vec!["linux".into(), "db".into()],
        servicegroups: vec!["storage".into()],
        host_severity: Some(2),
        service_severity: Some(1),
        poller: Some("Central".into()),
        host_address: Some("10.0.0.5".into()),
        ..Context::default()
    }
}

/// A BBDO 3 service status as the bridge hands it over with a template configured.
fn raw() -> RawEvent {
    RawEvent::from_json(&json!({
        "category": 1, "element": 29, "host_id": 12, "service_id": 34,
        "state": 2, "state_type": 1, "last_check": 1_700_000_000, "last_state_change": 1_700_000_000,
        "output": "CRITICAL - /var 97%", "long_output": "inodes 50%", "perfdata": "used=97%",
        "acknowledgement_type": 1, "percent_state_change": 6.25, "execution_time": 2.0,
        "host_name": "srv-db", "service_description": "Disk /var",
        "cache.host.alias": "database", "cache.host.instance_id": 1, "cache.host.state": 1,
        "cache.host.notes": "42", "cache.service.display_name": "Disk var",
    }))
    .unwrap()
}

fn scope_ctx(raw: &RawEvent) -> Context {
    let mut c = ctx();
    c.template_fields = raw.fields.clone();
    c
}

fn eval_in(s: &str, what: For, key: ObjectKey, ctx: &Context) -> Value {
    let n = node(&json!(s), what, "x").unwrap_or_else(|e| panic!("{s}: {e}"));
    let scope = Scope {
        key,
        ctx,
        output: &OutputOptions::default(),
    };
    Render::new(&scope).node(&n, Role::Whole)
}

const SVC: ObjectKey = ObjectKey::new(12, 34);
const HOST: ObjectKey = ObjectKey::new(12, 0);

/// `s` rendered in a service status template for [`raw`].
fn eval(s: &str) -> Value {
    eval_in(s, For::Service, SVC, &scope_ctx(&raw()))
}

#[test]
fn output_macros_follow_the_output_options() {
    // a BBDO 2 output: first line and long output in one text
    let mut r = raw();
    r.fields
        .retain(|(k, _)| k != "output" && k != "long_output");
    r.fields.push((
        "output".into(),
        RawValue::Str("CRITICAL - /var 97%\ninodes 50%".into()),
    ));
    let c = scope_ctx(&r);
    let eval_with = |s: &str, o: OutputOptions| {
        let n = node(&json!(s), For::Service, "x").unwrap();
        let scope = Scope {
            key: SVC,
            ctx: &c,
            output: &o,
        };
        Render::new(&scope).node(&n, Role::Whole)
    };
    let opts = |long, size_limit, line_break: Option<&str>| OutputOptions {
        long,
        size_limit,
        line_break: line_break.map(str::to_string),
    };
    // (options, {output}, {short_output}, {long_output})
    let table = [
        (
            opts(true, None, None),
            "CRITICAL - /var 97%\ninodes 50%",
            "CRITICAL - /var 97%",
        ),
        (
            opts(false, None, None),
            "CRITICAL - /var 97%",
            "CRITICAL - /var 97%",
        ),
        (
            opts(true, None, Some(" ")),
            "CRITICAL - /var 97% inodes 50%",
            "CRITICAL - /var 97%",
        ),
        (opts(true, Some(8), None), "CRITICAL", "CRITICAL"),
    ];
    for (i, (o, output, short)) in table.into_iter().enumerate() {
        assert_eq!(eval_with("{output}", o.clone()), json!(output), "row {i}");
        assert_eq!(
            eval_with("{short_output}", o.clone()),
            json!(short),
            "row {i}"
        );
        // the long output is the library's: never shaped by the options
        assert_eq!(
            eval_with("{long_output}", o),
            json!("CRITICAL - /var 97%\ninodes 50%"),
            "row {i}"
        );
    }
    // set through the configuration: use_long_output=0 reaches the templates
    let t = load(json!({"neb_service_status": {"payload": {"summary": "{output}"}}}))
        .with_output(opts(false, None, None));
    assert_eq!(t.output, opts(false, None, None));
}

#[test]
fn event_field_macros() {
    assert_eq!(
        eval("{host_id}"),
        json!(12),
        "alone, a number stays a number"
    );
    assert_eq!(eval("{service_id}"), json!(34));
    assert_eq!(eval("{state}"), json!(2));
    assert_eq!(eval("{current_state}"), json!(2), "BBDO 2 name of state");
    assert_eq!(eval("{output}"), json!("CRITICAL - /var 97%"));
    assert_eq!(
        eval("{long_output}"),
        json!("CRITICAL - /var 97%\ninodes 50%")
    );
    assert_eq!(eval("{short_output}"), json!("CRITICAL - /var 97%"));
    assert_eq!(eval("{percent_state_change}"), json!(6.25));
    assert_eq!(
        eval("{last_update}"),
        json!(1_700_000_000),
        "BBDO 3: last_check"
    );
    assert_eq!(
        eval("{acknowledged}"),
        json!(true),
        "from acknowledgement_type"
    );
    assert_eq!(eval("{perf_data}"), json!("used=97%"));
    assert_eq!(eval("id {host_id}/{service_id}!"), json!("id 12/34!"));
    // no value: null alone, nothing among text
    assert_eq!(eval("{latency}"), Value::Null);
    assert_eq!(eval("[{latency}]"), json!("[]"));
    // a host event has no service_id
    let host = eval_in(
        "{service_id}",
        For::Acknowledgement,
        HOST,
        &scope_ctx(&raw()),
    );
    assert_eq!(host, Value::Null);
}

#[test]
fn cache_macros() {
    assert_eq!(eval("{cache.host.name}"), json!("srv-db"));
    assert_eq!(eval("{cache.host.alias}"), json!("database"));
    assert_eq!(eval("{cache.host.address}"), json!("10.0.0.5"));
    assert_eq!(eval("{cache.host.host_id}"), json!(12));
    assert_eq!(eval("{cache.host.timezone}"), Value::Null);
    assert_eq!(eval("{cache.service.description}"), json!("Disk /var"));
    assert_eq!(eval("{cache.service.display_name}"), json!("Disk var"));
    assert_eq!(eval("{cache.service.service_id}"), json!(34));
    assert_eq!(eval("{cache.severity.host}"), json!(2));
    assert_eq!(eval("{cache.severity.service}"), json!(1));
    assert_eq!(eval("{cache.instance.name}"), json!("Central"));
    assert_eq!(eval("{cache.instance.id}"), json!(1));
    assert_eq!(
        eval("{cache.host.name}/{cache.service.description} on {cache.instance.name}"),
        json!("srv-db/Disk /var on Central")
    );
    // objects the cache does not know are named by their ids, as sc_event does
    let anon = Context::default();
    assert_eq!(
        eval_in("{cache.host.name}", For::Service, SVC, &anon),
        json!(12)
    );
    assert_eq!(
        eval_in("{cache.service.description}", For::Service, SVC, &anon),
        json!(34)
    );
    assert_eq!(
        eval_in("{cache.severity.host}", For::Service, SVC, &anon),
        Value::Null
    );
    assert_eq!(
        eval_in("{cache.instance.name}", For::Service, SVC, &anon),
        Value::Null
    );
}

#[test]
fn group_macros() {
    assert_eq!(eval("{cache.hostgroups}"), json!(["linux", "db"]));
    assert_eq!(eval("{cache.servicegroups}"), json!(["storage"]));
    assert_eq!(eval("in {cache.hostgroups}"), json!("in linux,db"));
    assert_eq!(eval("{groups(hg,table,.*)}"), json!(["linux", "db"]));
    assert_eq!(eval("{groups(hg,table,^l)}"), json!(["linux"]));
    assert_eq!(eval("{groups(hg,inline,.*)}"), json!("linux,db"));
    assert_eq!(eval("{groups(sg,inline,%d)}"), json!(""));
    assert_eq!(
        eval("hg: {groups(hg,table,.*)}"),
        json!("hg: [\"linux\",\"db\"]"),
        "a table among text is its JSON text, as the library"
    );
}

#[test]
fn flags() {
    // _scdate: RFC 3339 in UTC
    assert_eq!(eval("{last_check_scdate}"), json!("2023-11-14T22:13:20Z"));
    assert_eq!(eval("{cache.host.alias_scdate}"), json!("database"));
    // _sctype
    assert_eq!(eval("{state_type_sctype}"), json!("HARD"));
    let mut soft = raw();
    soft.fields.retain(|(k, _)| k != "state_type");
    soft.fields.push(("state_type".into(), RawValue::Int(0)));
    soft.fields
        .push(("cache.host.state_type".into(), RawValue::Str("0".into())));
    let c = scope_ctx(&soft);
    assert_eq!(
        eval_in("{state_type_sctype}", For::Service, SVC, &c),
        json!("SOFT")
    );
    assert_eq!(
        eval_in("{cache.host.state_type_sctype}", For::Service, SVC, &c),
        json!("HARD"),
        "the text \"0\" is not 0, as in Lua"
    );
    // _scshort: the first line
    let mut two = raw();
    two.fields
        .push(("comment".into(), RawValue::Str("a\nb\nc".into())));
    two.fields.retain(|(k, _)| k != "output");
    two.fields.push((
        "output".into(),
        RawValue::Str("first\nsecond\nthird".into()),
    ));
    let c = scope_ctx(&two);
    assert_eq!(
        eval_in("{output_scshort}", For::Service, SVC, &c),
        json!("first")
    );
    assert_eq!(
        eval_in("{short_output}", For::Service, SVC, &c),
        json!("first")
    );
    assert_eq!(eval("{host_id_scshort}"), json!(12));
    // _scstate: by the object's kind; cache.host states are host states
    assert_eq!(eval("{state_scstate}"), json!("CRITICAL"));
    assert_eq!(eval("{cache.host.state_scstate}"), json!("DOWN"));
    let host = RawEvent::from_json(&json!({"element": 32, "host_id": 12, "state": 1})).unwrap();
    assert_eq!(
        eval_in("{state_scstate}", For::Host, HOST, &scope_ctx(&host)),
        json!("DOWN")
    );
    let odd = RawEvent::from_json(&json!({"state": 7})).unwrap();
    assert_eq!(
        eval_in("{state_scstate}", For::Service, SVC, &scope_ctx(&odd)),
        Value::Null
    );
    // _scnumber
    assert_eq!(eval("{cache.host.notes_scnumber}"), json!(42));
    assert_eq!(eval("{cache.host.alias_scnumber}"), Value::Null);
    assert_eq!(eval("{percent_state_change_scnumber}"), json!(6.25));
    // _scstring
    assert_eq!(eval("{host_id_scstring}"), json!("12"));
    assert_eq!(eval("{acknowledged_scstring}"), json!("true"));
    assert_eq!(eval("{execution_time_scstring}"), json!("2.0"));
    assert_eq!(eval("{cache.hostgroups_scstring}"), json!("linux,db"));
    assert_eq!(eval("{latency_scstring}"), Value::Null);
}

#[test]
fn what_is_a_macro() {
    assert_eq!(eval("{not a macro}"), json!("{not a macro}"));
    assert_eq!(eval("{}"), json!("{}"));
    assert_eq!(eval("{{host_id}}"), json!("{12}"));
    assert_eq!(eval("é{host_id}€"), json!("é12€"));
    assert_eq!(eval("{host_id"), json!("{host_id"));
    let t = load(
        json!({"neb_service_status": {"payload": {}, "by_{host_id}": {"{state_scstate}": 1}}}),
    );
    // JSON object keys come sorted: by_... first
    let field = &t.slots[2].as_ref().unwrap().fields[0];
    let Node::Object(inner) = &field.1 else {
        panic!()
    };
    let c = scope_ctx(&raw());
    let s = Scope {
        key: SVC,
        ctx: &c,
        output: &OutputOptions::default(),
    };
    assert_eq!(Render::new(&s).whole(&field.0), "by_12");
    assert_eq!(Render::new(&s).whole(&inner[0].0), "CRITICAL");
}

fn tpl(key: &str, body: Value) -> Value {
    json!({ key: body })
}

fn svc_tpl(field: &str) -> Value {
    tpl("neb_service_status", json!({"payload": {"summary": field}}))
}

#[test]
fn broken_templates_name_the_key_and_the_macro() {
    let e = err(json!(null)).to_string();
    assert!(e.contains("expected a JSON object"), "{e}");
    let e = Templates::parse("{\"neb_service_status\": {")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not valid JSON") && e.contains("line 1"), "{e}");
    let e = err(json!({"neb_service_status": "x"}));
    assert!(
        e.contains("\"neb_service_status\" must be a JSON object"),
        "{e}"
    );
    let e = err(json!({"neb_serviec_status": {}}));
    assert!(
        e.contains("unknown template key \"neb_serviec_status\""),
        "{e}"
    );
    for (field, want) in [
        (
            "{outptu}",
            "unknown macro {outptu} (not a field of the events of service statuses)",
        ),
        (
            "x {state_scfoo}",
            "unknown flag _scfoo in macro {state_scfoo}",
        ),
        ("{cache.host.nme}", "unknown macro {cache.host.nme}"),
        ("{cache.poller.name}", "unknown macro {cache.poller.name}"),
        ("{cache.severity.ba}", "unknown macro {cache.severity.ba}"),
        (
            "{cache.instance.address}",
            "unknown macro {cache.instance.address}",
        ),
        ("{cache.groups}", "unknown macro {cache.groups}"),
        ("{groups(bv,table,.*)}", "business views are BAM objects"),
        ("{groups(hg,list,.*)}", "the format must be table or inline"),
        (
            "{groups(hg,table,[a)}",
            "is not a valid Lua pattern: malformed pattern",
        ),
        ("{author}", "unknown macro {author}"),
    ] {
        let e = err(svc_tpl(field));
        assert!(
            e.contains("template \"neb_service_status\"") && e.contains(want),
            "{field}: {e}"
        );
        assert!(e.contains("payload.summary"), "the place: {e}");
    }
    let e = err(tpl(
        "neb_host_status",
        json!({"payload": {"c": ["{cache.service.description}"]}}),
    ));
    assert!(
        e.contains(
            "template \"neb_host_status\": macro {cache.service.description} names service data"
        ) && e.contains("payload.c[0]"),
        "{e}"
    );
    let e = err(tpl("neb_host_status", json!({"x": "{service_id}"})));
    assert!(e.contains("unknown macro {service_id}"), "{e}");
    let e = err(tpl("neb_acknowledgement", json!({"x": "{output}"})));
    assert!(
        e.contains("template \"neb_acknowledgement\": unknown macro {output} (not a field of the events of acknowledgements)"),
        "{e}"
    );
    let e = err(tpl("neb_service_status", json!({"x_{bad}": 1})));
    assert!(
        e.contains("unknown macro {bad}") && e.contains("in a key"),
        "{e}"
    );
    let e = err(tpl(
        "neb_service_status",
        json!({"payload": {"severity": "urgent"}}),
    ));
    assert!(e.contains("payload.severity \"urgent\""), "{e}");
}

#[test]
fn dedup_key_rules() {
    for (dedup, want) in [
        (
            json!("{host_id}_{state}"),
            "macro {state} cannot be used in dedup_key",
        ),
        (
            json!("{cache.host.name}_{last_check}"),
            "macro {last_check} cannot be used",
        ),
        (json!("centreon"), "does not name the object"),
        (
            json!("{host_id}"),
            "and {service_id} or {cache.service.description}",
        ),
        (json!(12), "dedup_key must be a string"),
    ] {
        let e = err(tpl(
            "neb_service_status",
            json!({"dedup_key": dedup, "payload": {}}),
        ));
        assert!(
            e.contains("\"neb_service_status\"") && e.contains(want),
            "{dedup}: {e}"
        );
    }
    load(tpl("neb_host_status", json!({"dedup_key": "h-{host_id}"})));
    load(tpl(
        "neb_service_status",
        json!({"dedup_key": "{cache.instance.name}/{cache.host.name}/{cache.service.description}"}),
    ));
    let e = err(json!({
        "neb_service_status": {"dedup_key": "{host_id}_{service_id}"},
        "neb_pb_service_status": {"dedup_key": "{host_id}-{service_id}"}
    }));
    assert!(e.contains("set different dedup_keys"), "{e}");
    load(json!({
        "neb_service_status": {"dedup_key": "{host_id}_{service_id}"},
        "neb_pb_service_status": {"dedup_key": "{host_id}_{service_id}"}
    }));
}

#[test]
fn warnings_for_what_is_ignored() {
    let w = warnings(json!({
        "neb_service_status": {"routing_key": KEY, "event_action": "trigger", "payload": {}},
        "neb_acknowledgement": {"dedup_key": "{host_id}", "payload": {}},
        "neb_host_status": {"summary": "no payload"},
        "neb_downtime": {},
        "bam_ba_status": {}
    }))
    .join("\n");
    assert!(
        w.contains("\"neb_service_status\": routing_key is ignored"),
        "{w}"
    );
    assert!(!w.contains(KEY), "the key in the file is never shown");
    assert!(w.contains("event_action is ignored"), "{w}");
    assert!(
        w.contains("\"neb_acknowledgement\": dedup_key is ignored"),
        "{w}"
    );
    assert!(w.contains("\"neb_host_status\" has no payload"), "{w}");
    assert!(w.contains("\"neb_downtime\" is ignored"), "{w}");
    assert!(w.contains("\"bam_ba_status\" is ignored"), "{w}");
}

#[test]
fn fields_the_bridge_reads() {
    let t = load(json!({
        "neb_service_status": {"dedup_key": "{cache.host.alias}:{service_id}", "payload": {
            "summary": "{output_scshort} {percent_state_change}",
            "custom_details": {"n": "{cache.service.display_name}", "i": "{cache.instance.id}"}}},
        "neb_acknowledgement": {"x": "{author}"}
    }));
    let f = t.fields();
    for name in [
        "author",
        "cache.host.alias",
        "cache.host.instance_id",
        "cache.service.display_name",
        "category",
        "element",
        "output",
        "percent_state_change",
        "service_id",
    ] {
        assert!(f.split(' ').any(|n| n == name), "{name} in {f}");
    }
    let mut c = Context::default();
    t.capture(&raw(), &mut c);
    let kept: Vec<&str> = c.template_fields.iter().map(|(k, _)| k.as_str()).collect();
    assert!(kept.contains(&"percent_state_change") && kept.contains(&"cache.host.alias"));
    assert!(
        !kept.contains(&"perfdata"),
        "only what the templates read: {kept:?}"
    );
}

fn cfg() -> crate::payload::PayloadOptions {
    let params = [
        ("pdy_routing_key".to_string(), ParamValue::Str(KEY.into())),
        (
            "pdy_centreon_url".to_string(),
            ParamValue::Str("https://centreon.example.com".into()),
        ),
    ];
    Config::from_params(&params).unwrap().0.payload
}

fn status(raw: &RawEvent, t: &Templates) -> StatusEvent {
    let Some(mut ev) = Event::from_raw(raw).unwrap() else {
        panic!("not an event")
    };
    t.capture(raw, ev.context_mut().unwrap());
    let Event::Status(mut st) = ev else {
        panic!("not a status")
    };
    let names = ctx();
    st.ctx = Context {
        template_fields: st.ctx.template_fields,
        ..names
    };
    st
}

fn send(t: &Templates, st: &StatusEvent, action: Action) -> (Outgoing, Vec<String>) {
    let log = std::sync::Arc::new(Sink::in_memory(Level::Debug));
    let _current = log.enter();
    let builtin = payload::status_event(st, action, &cfg());
    let out = t.status_event(st, action, builtin);
    (out, log.lines())
}

fn sent(out: &Outgoing) -> Value {
    serde_json::from_slice(&payload::encode(out, &Secret::new(KEY))).unwrap()
}

#[test]
fn a_service_template_makes_the_event() {
    let t = load(json!({"neb_service_status": {
        "routing_key": "ignored-in-the-file",
        "event_action": "acknowledge",
        "payload": {
            "summary": "{cache.host.name}/{cache.service.description} is {state_scstate}: {output_scshort}",
            "source": "{cache.host.name}",
            "severity": "{state_scstate}",
            "timestamp": "{last_check}",
            "component": "{service_id}",
            "custom_details": {"host_id": "{host_id}", "groups": "{cache.hostgroups}",
                "since": "{last_state_change_scdate}"}
        },
        "client": "Centreon", "client_url": "https://centreon.example.com/"
    }}));
    let st = status(&raw(), &t);
    let (out, log) = send(&t, &st, Action::Trigger);
    assert!(log.is_empty(), "{log:?}");
    let v = sent(&out);
    assert_eq!(
        v,
        json!({
            "routing_key": KEY,
            "event_action": "trigger",
            "dedup_key": "12_34",
            "payload": {
                "summary": "srv-db/Disk /var is CRITICAL: CRITICAL - /var 97%",
                "source": "srv-db",
                "severity": "critical",
                "timestamp": "2023-11-14T22:13:20Z",
                "component": "34",
                "custom_details": {"host_id": 12, "groups": ["linux", "db"],
                    "since": "2023-11-14T22:13:20Z"}
            },
            "client": "Centreon",
            "client_url": "https://centreon.example.com/"
        })
    );
    assert_eq!(
        out.summary,
        "srv-db/Disk /var is CRITICAL: CRITICAL - /var 97%"
    );
    assert_eq!(out.dedup_key, "12_34");
    // the resolve: OK is no PagerDuty severity (the built-in one is used), no client
    let mut ok = raw();
    ok.fields.retain(|(k, _)| k != "state");
    ok.fields.push(("state".into(), RawValue::Int(0)));
    let (out, _) = send(&t, &status(&ok, &t), Action::Resolve);
    let v = sent(&out);
    assert_eq!(v["event_action"], "resolve");
    assert_eq!(v["payload"]["severity"], "info");
    assert!(v.get("client").is_none() && v.get("client_url").is_none());
}

#[test]
fn a_host_template_and_missing_fields() {
    let t = load(json!({"neb_host_status": {
        "dedup_key": "host:{cache.host.name}",
        "payload": {"summary": null, "severity": "{cache.host.alias}", "group": ["{cache.hostgroups}"],
            "timestamp": {"x": 1}, "class": 5},
        "links": [{"href": "https://x/{host_id}"}]
    }}));
    let raw = RawEvent::from_json(&json!({"category": 1, "element": 14, "host_id": 12,
        "state": 1, "state_type": 1, "last_check": 5, "output": "DOWN"}))
    .unwrap();
    let st = status(&raw, &t);
    let (out, _) = send(&t, &st, Action::Trigger);
    let v = sent(&out);
    assert_eq!(v["dedup_key"], "host:srv-db");
    assert_eq!(out.dedup_key, "host:srv-db");
    let p = &v["payload"];
    assert_eq!(p["summary"], "srv-db: DOWN", "built-in summary when none");
    assert_eq!(p["source"], "srv-db", "built-in source when none");
    assert_eq!(
        p["severity"], "critical",
        "built-in severity when not a PagerDuty one"
    );
    assert_eq!(
        p["group"], "[[\"linux\",\"db\"]]",
        "strings where PagerDuty wants them"
    );
    assert_eq!(p["class"], "5");
    assert!(p.get("timestamp").is_none());
    assert_eq!(v["links"], json!([{"href": "https://x/12"}]));
    // no payload at all: the built-in one
    let t = load(json!({"neb_host_status": {"x": "{state_scstate}"}}));
    let (out, _) = send(&t, &status(&raw, &t), Action::Trigger);
    let v = sent(&out);
    assert_eq!(v["x"], "DOWN");
    assert_eq!(v["payload"]["summary"], "srv-db: DOWN");
    assert_eq!(v["payload"]["class"], "host");
}

/// Bytes a text takes in a JSON string.
fn escaped(s: &str) -> usize {
    serde_json::to_string(s).unwrap().len() - 2
}

#[test]
fn details_share_the_room_fairly_in_one_pass() {
    let t = load(json!({"neb_service_status": {
        "dedup_key": "{host_id}_{service_id}",
        "payload": {"summary": "{output_scshort}", "source": "{cache.host.name}",
            "severity": "{state_scstate}",
            "custom_details": {"small": "{host_id}", "fixed": "a \"literal\"", "pct": "{percent_state_change}",
                "long": "{long_output}", "output": "out: {output}",
                "nested": {"list": ["{long_output}", "{short_output}"]}}},
        "links": [{"href": "https://x/{host_id}"}]
    }}));
    // multi-byte characters, quotes and control characters (escaped to 2 and 6 bytes)
    let unit = "é\"\u{1}€ab\\";
    let mut big = raw();
    big.fields
        .retain(|(k, _)| k != "output" && k != "long_output");
    big.fields.push((
        "output".into(),
        RawValue::Str(format!("CRITICAL\n{}", unit.repeat(40_000))),
    ));
    big.fields
        .push(("long_output".into(), RawValue::Str(unit.repeat(30_000))));
    let st = status(&big, &t);
    let (out, log) = send(&t, &st, Action::Trigger);
    assert!(log.is_empty(), "{log:?}");
    let body = payload::encode(&out, &Secret::new(KEY));
    assert!(body.len() <= payload::MAX_BODY, "{}", body.len());
    let v: Value = serde_json::from_slice(&body).expect("valid JSON");
    let p = &v["payload"];
    assert_eq!(p["summary"], "CRITICAL");
    assert_eq!(p["source"], "srv-db");
    assert_eq!(p["severity"], "critical");
    assert_eq!(v["dedup_key"], "12_34");
    assert_eq!(v["links"], json!([{"href": "https://x/12"}]));
    let d = &p["custom_details"];
    // what is shorter than the share is kept whole
    assert_eq!(d["small"], 12);
    assert_eq!(d["fixed"], "a \"literal\"");
    assert_eq!(d["pct"], 6.25);
    assert_eq!(d["nested"]["list"][1], "CRITICAL");
    // the three long texts get one share each, cut on a character, marked
    let full_output = format!("CRITICAL\n{}", unit.repeat(40_000));
    let full_long = format!("{full_output}\n{}", unit.repeat(30_000));
    let cut = [
        (d["long"].as_str().unwrap(), full_long.clone()),
        (d["output"].as_str().unwrap(), format!("out: {full_output}")),
        (d["nested"]["list"][0].as_str().unwrap(), full_long),
    ];
    let lens: Vec<usize> = cut.iter().map(|(c, _)| escaped(c)).collect();
    let share = *lens.iter().max().unwrap();
    for (c, full) in &cut {
        let kept = c.strip_suffix(payload::TRUNCATION_MARKER).expect("marked");
        assert!(full.starts_with(kept), "a prefix of the text");
        // an escaped character takes at most 6 bytes: the cut is as close as that
        assert!(escaped(c) + 6 > share, "{lens:?}");
    }
    // the room is used: the body is the budget, less the per-text rounding
    let sent_len = body.len();
    assert!(
        sent_len + 3 * 6 + 100 >= payload::MAX_BODY - 1024,
        "{sent_len}"
    );
}

#[test]
fn fixed_part_too_big_falls_back_at_once() {
    // 200 top-level fields of a 400 KB output: nothing past the budget is built, and
    // the event goes in the built-in format
    let fields: Map<String, Value> = (0..200)
        .map(|i| (format!("x{i}"), Value::from("{long_output}")))
        .collect();
    let mut tpl = json!({"payload": {"summary": "{output}"}});
    tpl.as_object_mut().unwrap().extend(fields);
    let t = load(json!({ "neb_service_status": tpl }));
    let mut big = raw();
    big.fields.retain(|(k, _)| k != "long_output");
    big.fields
        .push(("long_output".into(), RawValue::Str("l".repeat(400_000))));
    let st = status(&big, &t);
    let (out, log) = send(&t, &st, Action::Trigger);
    assert!(
        log[0].contains("does not fit PagerDuty's 512 KB"),
        "{log:?}"
    );
    assert!(out.body.to_json().get("x0").is_none());
    // the render stopped past the budget: at most the budget and one text was built
    let scope = Scope {
        key: SVC,
        ctx: &st.ctx,
        output: &OutputOptions::default(),
    };
    let mut r = Render::new(&scope);
    let body = r.body(t.slot(For::Service, Bbdo::V3).unwrap());
    assert!(r.over);
    let built: usize = body.values().map(payload::json_len).sum();
    assert!(built <= payload::BODY_BUDGET + 400_100, "{built}");
}

#[test]
fn limits_still_apply() {
    let t = load(json!({"neb_service_status": {
        "dedup_key": "{cache.service.display_name}:{cache.host.name}",
        "payload": {"summary": "{output}", "custom_details": {"big": "{long_output}"}}
    }}));
    let mut big = raw();
    big.fields
        .retain(|(k, _)| k != "output" && k != "long_output");
    big.fields
        .push(("output".into(), RawValue::Str("s".repeat(5000))));
    big.fields
        .push(("long_output".into(), RawValue::Str("l".repeat(600_000))));
    let (out, log) = send(&t, &status(&big, &t), Action::Trigger);
    assert!(log.is_empty(), "{log:?}");
    let body = payload::encode(&out, &Secret::new(KEY));
    assert!(body.len() <= payload::MAX_BODY);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["payload"]["summary"].as_str().unwrap().chars().count(),
        1024
    );
    assert_eq!(v["dedup_key"], "Disk var:srv-db");
    assert!(v["payload"].get("custom_details").is_some());

    // what shrinking cannot fix is sent in the built-in format, said in the log
    let t = load(json!({"neb_service_status": {
        "dedup_key": "{cache.service.display_name}:{cache.host.name}",
        "payload": {}, "huge": "{long_output}"}}));
    let (out, log) = send(&t, &status(&big, &t), Action::Trigger);
    assert!(
        log[0].contains("does not fit PagerDuty's 512 KB"),
        "{log:?}"
    );
    let v = sent(&out);
    assert!(v.get("huge").is_none());
    assert_eq!(
        v["dedup_key"], "Disk var:srv-db",
        "the object's dedup_key all the same"
    );

    // a dedup_key PagerDuty would refuse: the built-in one, said in the log
    let mut long = raw();
    long.fields
        .retain(|(k, _)| k != "cache.service.display_name");
    long.fields.push((
        "cache.service.display_name".into(),
        RawValue::Str("d".repeat(300)),
    ));
    let (out, log) = send(&t, &status(&long, &t), Action::Trigger);
    assert_eq!(out.dedup_key, "12_34");
    assert!(
        log[0].contains("the dedup_key of service #12:34 is 307 characters long"),
        "{log:?}"
    );
}

#[test]
fn acknowledgements_and_resolves_without_status() {
    let t = load(json!({
        "neb_service_status": {"dedup_key": "{cache.host.name}/{service_id}", "payload": {}},
        "neb_acknowledgement": {"payload": {"summary": "ack by {author}: {comment_data}"}},
        "neb_pb_acknowledgement": {"payload": {"summary": "BBDO 3 ack by {author}"}}
    }));
    let log = std::sync::Arc::new(Sink::in_memory(Level::Debug));
    let _current = log.enter();
    let c = cfg();
    for (element, want) in [(1, "ack by alice: on it"), (45, "BBDO 3 ack by alice")] {
        let raw = RawEvent::from_json(&json!({"category": 1, "element": element, "host_id": 12,
            "service_id": 34, "author": "alice", "comment_data": "on it"}))
        .unwrap();
        let mut ctx = ctx();
        t.capture(&raw, &mut ctx);
        let note = payload::Note::acknowledged(Some("alice"), Some("on it"), None);
        let builtin = payload::note_event(SVC, &ctx, &note, &c);
        let out = t.note_event(SVC, &ctx, Action::Acknowledge, builtin);
        let v = sent(&out);
        assert_eq!(v["payload"]["summary"], want);
        assert_eq!(v["event_action"], "acknowledge");
        assert_eq!(v["dedup_key"], "srv-db/34", "the incident's dedup_key");
    }
    // a resolve when a downtime starts: built-in format, the object's dedup_key
    let ctx = ctx();
    let builtin = payload::note_event(SVC, &ctx, &payload::Note::downtime_started(), &c);
    let out = t.note_event(SVC, &ctx, Action::Resolve, builtin);
    assert_eq!(out.dedup_key, "srv-db/34");
    assert_eq!(
        sent(&out)["payload"]["summary"],
        "srv-db/Disk /var: resolved: downtime started"
    );
    // hosts keep the built-in dedup_key: only the service template sets one
    let builtin = payload::note_event(HOST, &ctx, &payload::Note::downtime_started(), &c);
    assert_eq!(
        t.note_event(HOST, &ctx, Action::Resolve, builtin).dedup_key,
        "12_H"
    );
    assert!(log.lines().is_empty(), "{:?}", log.lines());
}

#[test]
fn the_shipped_example_is_valid() {
    let (t, w) = Templates::parse(include_str!("../../../examples/format_file.json")).unwrap();
    assert!(w.is_empty(), "{w:?}");
    let (out, log) = send(&t, &status(&raw(), &t), Action::Trigger);
    assert!(log.is_empty(), "{log:?}");
    let v = sent(&out);
    assert_eq!(
        v["payload"]["summary"],
        "srv-db/Disk /var is CRITICAL: CRITICAL - /var 97%"
    );
    assert_eq!(v["payload"]["group"], "linux,db");
    assert_eq!(
        v["payload"]["custom_details"]["servicegroups"],
        json!(["storage"])
    );
    assert_eq!(v["dedup_key"], "12_34");
}

#[test]
fn bbdo_variants() {
    let t = load(json!({
        "neb_service_status": {"payload": {"summary": "v2 {output}"}},
        "neb_pb_service_status": {"payload": {"summary": "v3 {output}"}},
        "neb_host_status": {"payload": {"summary": "any {output}"}}
    }));
    let v3 = status(&raw(), &t);
    let mut v2_raw = raw();
    v2_raw.fields.retain(|(k, _)| k != "element");
    v2_raw.fields.push(("element".into(), RawValue::Int(24)));
    let v2 = status(&v2_raw, &t);
    assert_eq!(
        send(&t, &v3, Action::Trigger).0.summary,
        "v3 CRITICAL - /var 97%"
    );
    assert_eq!(
        send(&t, &v2, Action::Trigger).0.summary,
        "v2 CRITICAL - /var 97%"
    );
    for element in [14, 32] {
        let h = RawEvent::from_json(&json!({"category": 1, "element": element, "host_id": 12,
            "state": 1, "output": "DOWN"}))
        .unwrap();
        assert_eq!(
            send(&t, &status(&h, &t), Action::Trigger).0.summary,
            "any DOWN"
        );
    }
}

#[test]
fn errors_have_kinds() {
    let kind = |text: &str| Templates::parse(text).expect_err("invalid templates");
    assert!(matches!(kind("{"), TemplateError::NotJson(_)));
    assert!(matches!(kind("[]"), TemplateError::NotAnObject));
    assert!(matches!(kind(r#"{"x_y": {}}"#), TemplateError::UnknownKey(k) if k == "x_y"));
    assert!(matches!(
        kind(r#"{"neb_host_status": 1}"#),
        TemplateError::TemplateNotAnObject(k) if k == "neb_host_status"
    ));
    assert!(matches!(
        kind(r#"{"neb_host_status": {"x": "{nope}"}}"#),
        TemplateError::InTemplate { key, problem }
            if key == "neb_host_status" && problem.contains("{nope}")
    ));
    let unreadable = Templates::load("/nonexistent/templates.json").expect_err("no file");
    assert!(matches!(unreadable, TemplateError::Unreadable(_)));
    assert!(
        unreadable.to_string().starts_with("cannot read it"),
        "{unreadable}"
    );
}
