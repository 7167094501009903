//! End to end: the real `lua-bridge/pagerduty.lua` and the built `.so` in a Broker host emulator (Lua 5.3 and 5.4) against a local PagerDuty stand-in.

mod support;

use std::time::Duration;

use pd_standin::{Answer, Standin};
use serde_json::json;
use support::*;

fn standin() -> Standin {
    Standin::start().expect("start the PagerDuty stand-in")
}

/// Runs `scenario` under Lua `lua` with BBDO `bbdo`, sending to a fresh stand-in; the scenario
/// must pass. The stand-in is returned for what it received.
fn passes_against_standin(lua: &str, bbdo: u32, scenario: &str) -> (Standin, Outcome) {
    let pd = standin();
    let run = Run::new(lua, scenario)
        .bbdo(bbdo)
        .env("CPD_URL", pd.url())
        .go();
    run.assert_ok();
    (pd, run)
}

/// Per `dedup_key`, the actions PagerDuty received, in order.
fn sequence(bodies: &[serde_json::Value], key: &str) -> Vec<String> {
    for_key(bodies, key)
        .iter()
        .map(|b| b["event_action"].as_str().unwrap().to_string())
        .collect()
}

fn lifecycle(lua: &str, bbdo: u32, api: u32) {
    let pd = standin();
    Run::new(lua, "lifecycle.lua")
        .bbdo(bbdo)
        .api(api)
        .env("CPD_URL", pd.url())
        .go()
        .assert_ok();
    let got = pd.accepted();
    assert_eq!(
        sequence(&got, "12_34"),
        ["trigger", "resolve"],
        "service CRITICAL -> OK"
    );
    assert_eq!(
        sequence(&got, "13_H"),
        ["trigger", "resolve"],
        "host DOWN -> UP"
    );
    assert_eq!(
        sequence(&got, "13_35"),
        ["trigger", "resolve"],
        "a recovery inside a downtime resolves"
    );
    assert_eq!(got.len(), 6, "nothing else sent: {:#?}", actions(&got));
    assert_eq!(pd.open_incident_count(), 0, "every incident resolved");

    // golden trigger, field by field
    let t = for_key(&got, "12_34")[0];
    assert_eq!(t["routing_key"], ROUTING_KEY);
    assert_eq!(t["client"], "Centreon Stream Connector");
    assert_eq!(t["client_url"], "https://centreon.example.com/centreon/");
    assert_eq!(
        t["links"],
        json!([
            {"href": "https://centreon.example.com/centreon/main.php?p=20202&o=hd&host_name=srv-db", "text": "Host page"},
            {"href": "https://centreon.example.com/centreon/main.php?p=20201&o=svcd&host_name=srv-db&service_description=Disk%20%2Fvar", "text": "Service page"}
        ])
    );
    let p = &t["payload"];
    assert_eq!(p["summary"], "srv-db/Disk /var: CRITICAL - /var 97%");
    assert_eq!(p["source"], "srv-db");
    assert_eq!(p["component"], "Disk /var");
    assert_eq!(p["group"], "linux, db");
    assert_eq!(p["class"], "service");
    assert_eq!(p["severity"], "critical");
    assert_eq!(p["timestamp"], "2023-11-14T22:13:20Z");
    let d = &p["custom_details"];
    assert_eq!(d["Hostgroups"], "linux, db");
    assert_eq!(d["Servicegroups"], "storage");
    assert_eq!(d["Hostseverity"], 2);
    assert_eq!(d["Serviceseverity"], 1);
    assert_eq!(d["Output"], "CRITICAL - /var 97%");
    assert_eq!(d["LongOutput"], "inodes 50%");
    assert_eq!(d["StateType"], "HARD");
    assert_eq!(d["Attempt"], "3/3");
    assert_eq!(d["Poller"], "Central");
    assert_eq!(d["HostAddress"], "10.0.0.5");
    assert_eq!(
        d["Metrics"],
        json!({
            "used space": {"value": 97.0, "unit": "%", "warn": "90", "crit": "95", "min": 0.0, "max": 100.0},
            "size": {"value": 10.0, "unit": "GB"}
        })
    );

    // host DOWN pages at high urgency; names with spaces, slashes and accents are URL-encoded
    let h = for_key(&got, "13_H")[0];
    assert_eq!(h["payload"]["severity"], "critical");
    assert_eq!(
        h["payload"]["summary"],
        "web 01/é: DOWN - CRITICAL - 10.0.0.6: rta nan, lost 100%"
    );
    assert_eq!(h["payload"]["class"], "host");
    assert_eq!(
        h["links"][0]["href"],
        "https://centreon.example.com/centreon/main.php?p=20202&o=hd&host_name=web%2001%2F%C3%A9"
    );
    let r = for_key(&got, "13_H")[1];
    assert_eq!(r["payload"]["severity"], "info");
    assert!(r.get("client").is_none(), "client only on triggers");
}

#[test]
fn lifecycle_lua53_bbdo3_userdata() {
    lifecycle("5.3", 3, 2);
}
#[test]
fn lifecycle_lua54_bbdo3_userdata() {
    lifecycle("5.4", 3, 2);
}
#[test]
fn lifecycle_lua53_bbdo2_userdata() {
    lifecycle("5.3", 2, 2);
}
#[test]
fn lifecycle_lua54_bbdo2_userdata() {
    lifecycle("5.4", 2, 2);
}
#[test]
fn lifecycle_lua53_bbdo3_tables() {
    lifecycle("5.3", 3, 1);
}
#[test]
fn lifecycle_lua54_bbdo2_tables() {
    lifecycle("5.4", 2, 1);
}
#[test]
fn lifecycle_lua53_bbdo2_tables() {
    lifecycle("5.3", 2, 1);
}
#[test]
fn lifecycle_lua54_bbdo3_tables() {
    lifecycle("5.4", 3, 1);
}

/// The fast path asks Broker for 3 fields of a service that stays OK (2 of a host that stays
/// UP) and for the 3 flags too when the object has a problem (the scenario checks the counts);
/// skipping the flags of OK objects loses nothing: a problem that starts in a downtime entered
/// while OK is triggered when the downtime ends, an acknowledgement is sent.
fn field_reads(lua: &str, bbdo: u32) {
    let (pd, run) = passes_against_standin(lua, bbdo, "field_reads.lua");
    assert!(
        run.stdout()
            .contains("field_reads: per event: OK service 3.00"),
        "{}",
        run.stdout()
    );
    let got = pd.accepted();
    assert_eq!(sequence(&got, "20_2"), ["trigger", "resolve"]);
    assert_eq!(sequence(&got, "20_H"), ["trigger", "resolve"]);
    assert_eq!(
        sequence(&got, "21_1"),
        ["trigger"],
        "held in the downtime, then sent"
    );
    assert_eq!(sequence(&got, "21_2"), ["trigger", "acknowledge"]);
    // the state changes whose reads are counted last: complete events all the same
    assert_eq!(sequence(&got, "20_3"), ["trigger", "resolve"]);
    assert_eq!(sequence(&got, "21_H"), ["trigger"]);
    let problem = for_key(&got, "20_3")[0];
    assert!(
        problem.to_string().contains("CRITICAL - new"),
        "output missing: {problem}"
    );
    // the first status of an unknown object: a recovery is resolved, an OK status not
    assert_eq!(sequence(&got, "22_2"), ["resolve"]);
    assert!(sequence(&got, "22_1").is_empty() && sequence(&got, "22_H").is_empty());
    assert_eq!(got.len(), 11, "nothing else sent: {:#?}", actions(&got));
}

#[test]
fn field_reads_lua53_bbdo3() {
    field_reads("5.3", 3);
}
#[test]
fn field_reads_lua54_bbdo2() {
    field_reads("5.4", 2);
}

/// The script answers for objects that stay OK once the library has found them unchanged
/// (acknowledged at once while nothing is pending, counted in the statistics), and every
/// other status of them still reaches the library: problems triggered, recoveries resolved.
fn stays_ok(lua: &str, bbdo: u32) {
    let (pd, run) = passes_against_standin(lua, bbdo, "stays_ok.lua");
    println!("{}", run.stdout());
    let got = pd.accepted();
    assert_eq!(sequence(&got, "20_2"), ["trigger"]);
    assert_eq!(
        sequence(&got, "20_1"),
        ["trigger", "resolve", "trigger", "resolve"]
    );
    assert_eq!(sequence(&got, "21_H"), ["trigger", "resolve"]);
    assert_eq!(got.len(), 7, "nothing else sent: {:#?}", actions(&got));
}

#[test]
fn stays_ok_lua53_bbdo3() {
    stays_ok("5.3", 3);
}
#[test]
fn stays_ok_lua54_bbdo2() {
    stays_ok("5.4", 2);
}

/// Broker's events wait for their finalizers (the emulator models Broker's: a 16-byte Lua
/// object whose C++ event only `__gc` frees): behind an empty script they pile up by the
/// hundred thousand; behind the bridge at most 20,000 at once, on Lua 5.3 and 5.4, and every
/// state change of the stream is still delivered.
fn finalizers(lua: &str, bbdo: u32) {
    let (_pd, run) = passes_against_standin(lua, bbdo, "finalizers.lua");
    println!("{}", run.stdout());
}

#[test]
fn finalizers_lua53_bbdo3() {
    finalizers("5.3", 3);
}
#[test]
fn finalizers_lua54_bbdo2() {
    finalizers("5.4", 2);
}

#[test]
fn pagerduty_errors_neither_block_nor_lose_events() {
    for lua in LUAS {
        let pd = standin();
        pd.push_answers([
            Answer::Reject("'payload.summary' is missing or blank".into()),
            Answer::TooMany { retry_after: None },
            Answer::Accept,
            Answer::ServerError(500),
            Answer::Accept,
            Answer::Hang,
        ]);
        let out = Run::new(lua, "errors.lua").env("CPD_URL", pd.url()).go();
        out.assert_ok();
        let got = pd.accepted();
        assert_eq!(
            actions(&got),
            [
                ("trigger".to_string(), "12_41".to_string()),
                ("trigger".to_string(), "12_42".to_string()),
                ("trigger".to_string(), "12_43".to_string())
            ],
            "the rejected event is dropped, the others delivered in order"
        );
        let statuses: Vec<u16> = pd.requests().iter().map(|r| r.status).collect();
        assert_eq!(&statuses[..5], &[400, 429, 202, 500, 202], "{statuses:?}");
        assert!(
            out.log.contains("'payload.summary' is missing or blank"),
            "{}",
            out.log
        );
    }
}

#[test]
fn stop_while_pagerduty_hangs_is_prompt_and_the_next_run_delivers() {
    for lua in LUAS {
        let pd = standin();
        pd.set_default(Answer::Hang);
        let out = Run::new(lua, "shutdown.lua").env("CPD_URL", pd.url()).go();
        out.assert_ok();
        assert!(out.log.contains("stay in the outbox"), "{}", out.log);
        assert!(pd.accepted().is_empty());
        // the next run (restart) on the same outbox sends them, with no event from Broker
        let healthy = standin();
        Run::new(lua, "resume.lua")
            .work(&out.dir)
            .env("CPD_URL", healthy.url())
            .env("CPD_EXPECT", "2")
            .go()
            .assert_ok();
        let got = healthy.accepted();
        assert_eq!(sequence(&got, "12_34"), ["trigger"]);
        assert_eq!(sequence(&got, "13_H"), ["trigger"]);
    }
}

#[test]
fn reload_mid_stream_loses_nothing() {
    for lua in LUAS {
        let pd = standin();
        // the first five attempts fail; the events are not acknowledged when reload comes
        pd.push_answers((0..5).map(|_| Answer::ServerError(503)));
        Run::new(lua, "reload.lua")
            .env("CPD_URL", pd.url())
            .go()
            .assert_ok();
        let got = pd.accepted();
        for sid in 50..=55 {
            let key = format!("12_{sid}");
            let seq = sequence(&got, &key);
            assert!(!seq.is_empty(), "{key} delivered: {:#?}", actions(&got));
            assert!(
                seq.iter().all(|a| a == "trigger") || key == "12_50",
                "{key}: {seq:?}"
            );
        }
        let s50 = sequence(&got, "12_50");
        assert_eq!(s50.last().map(String::as_str), Some("resolve"), "{s50:?}");
        assert!(s50[..s50.len() - 1].iter().all(|a| a == "trigger"));
        // replayed duplicates carry the same dedup_key: never a second incident
        assert_eq!(pd.open_incident_count(), 5);
        assert_eq!(pd.incidents().len(), 6);
    }
}

/// Short incidents while PagerDuty is slow to answer (every 202 delayed): each service goes
/// CRITICAL, OK, CRITICAL, OK, all handed over before the first answer, so the lanes are busy
/// and the later events wait behind earlier ones. Nothing failed and nothing was rate limited:
/// nothing is merged, and each service has two incidents, opened and resolved in order. (Until
/// the merge rule depended on PagerDuty's answers only, a resolve that found its trigger still
/// queued cancelled it, and incidents vanished while PagerDuty answered 202.)
#[test]
fn short_incidents_are_sent_in_full_while_pagerduty_answers_slowly() {
    for lua in LUAS {
        let pd = standin();
        pd.set_latency(Duration::from_millis(300));
        let out = Run::new(lua, "short_incidents.lua")
            .env("CPD_URL", pd.url())
            .go();
        out.assert_ok();
        let got = pd.accepted();
        let incidents = pd.incidents();
        for sid in 1..=7 {
            let key = format!("20_{sid}");
            assert_eq!(
                sequence(&got, &key),
                ["trigger", "resolve", "trigger", "resolve"],
                "{lua}: {key}"
            );
            let mine: Vec<_> = incidents.iter().filter(|i| i.dedup_key == key).collect();
            assert_eq!(mine.len(), 2, "{lua}: {key}: {mine:?}");
            assert!(
                mine.iter()
                    .all(|i| i.status == pd_standin::IncidentStatus::Resolved && i.events == 2),
                "{lua}: {key}: {mine:?}"
            );
        }
        assert_eq!(got.len(), 28, "{lua}: {:#?}", actions(&got));
        // the statistics written at stop: nothing merged
        let stats: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.dir.join("PagerDuty.db.stats.json")).unwrap(),
        )
        .unwrap();
        let per_key = stats["routing_keys"].as_object().unwrap();
        let k = per_key.values().next().unwrap();
        assert_eq!(
            (&k["merged"], &k["delivered"]),
            (&json!(0), &json!(28)),
            "{stats}"
        );
    }
}

#[test]
fn two_outputs_share_nothing() {
    for lua in LUAS {
        let pd = standin();
        Run::new(lua, "two_outputs.lua")
            .env("CPD_URL", pd.url())
            .env("CPD_OTHER_KEY", OTHER_KEY)
            .go()
            .assert_ok();
        let got = pd.accepted();
        // sorted: the outputs' lanes deliver different incidents in any order
        let by_key = |k: &str| -> Vec<(String, String)> {
            let mut sent: Vec<(String, String)> = got
                .iter()
                .filter(|b| b["routing_key"] == k)
                .map(|b| {
                    (
                        b["event_action"].as_str().unwrap().to_string(),
                        b["payload"]["severity"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            sent.sort();
            sent
        };
        assert_eq!(by_key(ROUTING_KEY), [("trigger".into(), "critical".into())]);
        assert_eq!(
            by_key(OTHER_KEY),
            [
                ("resolve".into(), "info".into()),
                ("trigger".into(), "critical".into()),
                ("trigger".into(), "warning".into())
            ]
        );
    }
}

#[test]
fn hostile_output_still_gives_valid_events() {
    for lua in LUAS {
        let pd = standin();
        Run::new(lua, "payload_edge.lua")
            .env("CPD_URL", pd.url())
            .go()
            .assert_ok();
        let got = pd.accepted();
        assert_eq!(got.len(), 5, "{:#?}", actions(&got));
        assert!(pd.requests().iter().all(|r| r.status == 202));
        let strict = &for_key(&got, "12_36")[0]["payload"];
        assert!(
            strict["summary"]
                .as_str()
                .unwrap()
                .ends_with("CRITICAL - strict event"),
            "{strict}"
        );
        assert_eq!(strict["custom_details"]["Metrics"]["used"]["value"], 97.0);
        let nasty = &for_key(&got, "12_34")[0]["payload"];
        let summary = nasty["summary"].as_str().unwrap();
        assert!(summary.contains("\"quoted\" back\\slash"), "{summary}");
        assert!(
            summary.contains('\u{FFFD}'),
            "invalid UTF-8 replaced: {summary}"
        );
        assert!(
            summary.contains("\0\u{1}\u{2}"),
            "control characters kept, escaped: {summary:?}"
        );
        let long = nasty["custom_details"]["LongOutput"].as_str().unwrap();
        assert!(
            long.ends_with("\u{1f} end"),
            "text after the newline kept: {long:?}"
        );
        let big = &for_key(&got, "13_35")[0]["payload"];
        assert_eq!(big["summary"].as_str().unwrap().chars().count(), 1024);
        assert!(big["summary"].as_str().unwrap().ends_with("…[truncated]"));
        assert_eq!(big["severity"], "error", "UNKNOWN maps to error");
        let anon = &for_key(&got, "99_H")[0]["payload"];
        assert_eq!(anon["summary"], "host #99: DOWN - unknown host");
        let anon_svc = &for_key(&got, "12_99")[0]["payload"];
        assert_eq!(
            anon_svc["summary"],
            "srv-db/service #99: CRITICAL - unknown service"
        );
    }
}

#[test]
fn wrong_parameters_fail_init_with_their_name() {
    for lua in LUAS {
        let out = Run::new(lua, "init_errors.lua").go();
        out.assert_ok();
        assert!(!out.stdout().contains("SECRETsecret123"));
    }
}

#[test]
fn keep_alive_reuses_connections() {
    let pd = standin();
    pd.set_latency(Duration::from_millis(1));
    Run::new("5.4", "lifecycle.lua")
        .env("CPD_URL", pd.url())
        .go()
        .assert_ok();
    assert_eq!(pd.accepted().len(), 6);
    assert!(
        pd.connections() < 6,
        "{} connections for 6 requests",
        pd.connections()
    );
}

#[test]
fn full_broker_queue_during_an_outage_recovers_without_loss() {
    let pd = standin();
    pd.push_answers((0..8).map(|_| Answer::ServerError(503)));
    Run::new("5.3", "backpressure.lua")
        .env("CPD_URL", pd.url())
        .go()
        .assert_ok();
    let got = pd.accepted();
    for sid in 101..=120 {
        assert_eq!(
            sequence(&got, &format!("12_{sid}")),
            ["trigger"],
            "12_{sid}"
        );
    }
    assert_eq!(got.len(), 20);
}

/// A userdata given the handles' metatable with `debug.setmetatable` is refused, not taken
/// for a connector (which crashed the process).
#[test]
fn a_foreign_userdata_with_the_handles_metatable_is_refused() {
    for lua in ["5.3", "5.4"] {
        let out = Run::new(lua, "foreign_handle.lua").go();
        out.assert_ok();
        assert!(
            out.stdout().contains("foreign_handle: done"),
            "Lua {lua}: {}",
            out.stdout()
        );
    }
}

/// Files in a hostile world, under umask 022: no log through a planted link, no forged log
/// line, the connector's files 0640.
#[test]
fn planted_links_forged_lines_and_file_modes() {
    use std::os::unix::fs::MetadataExt;
    let pd = standin();
    let run = Run::new("5.4", "hostile_files.lua").env("CPD_URL", pd.url());
    let (dir, sd) = run.prepare();
    let mut umask = std::process::Command::new("sh");
    umask.arg("-c").arg("umask 022 && exec \"$0\" \"$@\"");
    let output = run
        .wrapped(&dir, &sd, umask)
        .output()
        .expect("run the emulator");
    succeeded_with(&output, "hostile_files: done", "hostile_files");
    let log = std::fs::read_to_string(dir.join("connector.log")).unwrap();
    assert!(log.contains("] delivered trigger 30_1"), "{log}");
    for line in log.lines() {
        assert!(!line.chars().any(char::is_control), "raw control: {line:?}");
        assert!(!line.starts_with("2030-01-01"), "forged line: {line:?}");
    }
    assert!(
        log.contains("evil\\x1b[2J\\0\\r\\n2030-01-01T00:00:00Z [ERROR] forged"),
        "{log}"
    );
    for file in ["connector.log", "PagerDuty.db", "PagerDuty.db.stats.json"] {
        let mode = std::fs::metadata(dir.join(file)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o640, "{file}");
    }
}

#[test]
fn routing_key_from_a_file_or_the_environment() {
    let pd = standin();
    let out = Run::new("5.4", "key_sources.lua")
        .env("CPD_URL", pd.url())
        .env("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
        .go();
    out.assert_ok();
    let got = pd.accepted();
    assert_eq!(sequence(&got, "12_34"), ["trigger"], "key from the file");
    assert_eq!(
        sequence(&got, "13_35"),
        ["trigger"],
        "key from the environment"
    );
    assert!(got.iter().all(|b| b["routing_key"] == ROUTING_KEY));
    let env_log = std::fs::read_to_string(out.dir.join("e.log")).unwrap();
    assert!(!env_log.contains(ROUTING_KEY) && env_log.contains("routing key ****"));
}

#[test]
fn log_rotated_while_running() {
    let pd = standin();
    let out = Run::new("5.4", "rotation.lua")
        .env("CPD_URL", pd.url())
        .go();
    out.assert_ok();
    let old = std::fs::read_to_string(out.dir.join("connector.log.1")).unwrap();
    assert!(old.contains("delivered trigger 12_34"), "{old}");
    assert!(!old.contains("resolve"), "{old}");
    assert!(out.log.contains("delivered resolve 12_34"), "{}", out.log);
    assert!(!out.log.contains("trigger 12_34"), "{}", out.log);
    assert_eq!(sequence(&pd.accepted(), "12_34"), ["trigger", "resolve"]);
}

fn templates(lua: &str, bbdo: u32, api: u32) {
    let pd = standin();
    let out = Run::new(lua, "templates.lua")
        .bbdo(bbdo)
        .api(api)
        .env("CPD_URL", pd.url())
        .go();
    out.assert_ok();
    assert!(
        out.log.contains("routing_key is ignored") && !out.log.contains("whatever the old"),
        "{}",
        out.log
    );
    let got = pd.accepted();
    let key = "srv-db/Disk /var";
    assert_eq!(
        sequence(&got, key),
        ["trigger", "acknowledge", "resolve"],
        "the template's dedup_key for every event of the service: {:#?}",
        actions(&got)
    );
    assert_eq!(sequence(&got, "12_H"), ["trigger", "resolve"]);
    assert_eq!(got.len(), 5, "{:#?}", actions(&got));
    assert_eq!(pd.open_incident_count(), 0);

    let t = for_key(&got, key)[0];
    assert_eq!(t["routing_key"], ROUTING_KEY);
    let p = &t["payload"];
    assert_eq!(
        p["summary"],
        "srv-db/Disk /var is CRITICAL: CRITICAL - /var 97%"
    );
    assert_eq!(p["source"], "database");
    assert_eq!(p["severity"], "critical");
    assert!(
        p["timestamp"].as_str().unwrap().ends_with('Z'),
        "{}",
        p["timestamp"]
    );
    assert_eq!(
        p["custom_details"],
        json!({
            "display": "Disk on /var",
            "address": "10.0.0.5",
            "poller": "Central",
            "severities": [2, 1],
            "groups": "linux,db / storage",
            "type": "HARD",
            "change": 12.5,
            "attempt": "3"
        })
    );
    let ack = for_key(&got, key)[1];
    assert_eq!(ack["payload"]["summary"], "alice acknowledged: on it");
    let resolve = for_key(&got, key)[2];
    assert_eq!(
        resolve["payload"]["severity"], "info",
        "OK is no PagerDuty severity"
    );
    let h = for_key(&got, "12_H")[0];
    assert_eq!(h["payload"]["summary"], "host srv-db DOWN");
    assert_eq!(
        h["payload"]["custom_details"],
        json!({"hostgroups": ["linux", "db"], "id": 12})
    );
    assert_eq!(
        h["payload"]["severity"], "critical",
        "the built-in severity"
    );
}

#[test]
fn templates_lua53_bbdo3_userdata() {
    templates("5.3", 3, 2);
}
#[test]
fn templates_lua54_bbdo3_userdata() {
    templates("5.4", 3, 2);
}
/// Broker's `get_host` / `get_service` give read-only userdata with `broker_api_version = 2`
/// (as the emulator now does): the `{cache.host.*}` / `{cache.service.*}` fields are filled in
/// BBDO 2 too.
#[test]
fn templates_lua53_bbdo2_userdata() {
    templates("5.3", 2, 2);
}
#[test]
fn templates_lua54_bbdo2_userdata() {
    templates("5.4", 2, 2);
}
#[test]
fn templates_lua53_bbdo2_tables() {
    templates("5.3", 2, 1);
}
#[test]
fn templates_lua54_bbdo2_tables() {
    templates("5.4", 2, 1);
}

/// The Lua library's output options, `skip_nil_id` and `log_curl_commands` through the real
/// bridge; the logged curl command, with the real key put back, is run with the real `curl`
/// against the stand-in and posts the very same request.
fn library_options(lua: &str, bbdo: u32) {
    let pd = standin();
    let out = Run::new(lua, "library_options.lua")
        .bbdo(bbdo)
        .env("CPD_URL", pd.url())
        .go();
    out.assert_ok();
    let got = pd.accepted();
    let mut sent = actions(&got);
    sent.sort();
    assert_eq!(
        sent,
        [
            ("trigger".to_string(), "a-12_34".to_string()),
            ("trigger".to_string(), "b-12_34".to_string())
        ],
        "nothing for the events without host_id"
    );
    assert_eq!(got.len(), 2, "{:#?}", actions(&got));

    // use_long_output=0 and output_size_limit=20: the first line, cut to 20 characters
    let a = &for_key(&got, "a-12_34")[0]["payload"];
    assert_eq!(
        a["summary"],
        "srv-db/Disk /var: CRITICAL - CRITICAL…[truncated]"
    );
    assert_eq!(a["custom_details"]["Output"], "CRITICAL…[truncated]");
    assert!(a["custom_details"].get("LongOutput").is_none(), "{a}");
    // remove_line_break_in_output=1 with " | "
    let b = &for_key(&got, "b-12_34")[0]["payload"];
    assert_eq!(
        b["custom_details"]["Output"],
        "CRITICAL - it's /var 97% $HOME `id` \\ \"q\""
    );
    assert_eq!(b["custom_details"]["LongOutput"], "inodes 50% | mounted ro");

    // skip_nil_id: 1 (default) drops at level 2, 0 logs an error
    let skipped = |level: &str, value: u8| {
        out.log.lines().any(|l| {
            l.contains(&format!("[{level}] malformed event: field 'host_id' must be a positive integer; event skipped (skip_nil_id={value}"))
        })
    };
    assert!(skipped("INFO", 1), "{}", out.log);
    assert!(skipped("ERROR", 0), "{}", out.log);

    // log_curl_commands=1 on output B only: one line, for its one request
    let commands: Vec<&str> = out
        .log
        .lines()
        .filter_map(|l| l.split_once("[NOTICE] ").map(|(_, c)| c))
        .filter(|c| !c.starts_with("centreon-pagerduty ")) // the start line
        .collect();
    assert_eq!(commands.len(), 1, "{}", out.log);
    let command = commands[0];
    assert!(command.starts_with("curl "), "{command}");
    assert!(command.contains(&format!("'{}'", pd.url())), "{command}");
    let masked = centreon_pagerduty::config::Secret::new(ROUTING_KEY).masked();
    assert!(
        command.contains(&format!("\"routing_key\":\"{masked}\"")),
        "the key is masked as everywhere else: {command}"
    );
    assert!(!command.contains(ROUTING_KEY));
    let sent_before = pd.requests().len();
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c").arg(command.replace(&masked, ROUTING_KEY));
    for v in PROXY_VARS {
        sh.env_remove(v);
    }
    let ran = sh.output().expect("run sh");
    assert!(
        ran.status.success(),
        "the logged command is valid shell and curl succeeds: {}\n{command}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(
        pd.wait_for_requests(sent_before + 1, Duration::from_secs(10)),
        "curl posted"
    );
    let requests = pd.requests();
    let original = requests
        .iter()
        .find(|r| r.json.as_ref().is_some_and(|j| j["dedup_key"] == "b-12_34"))
        .unwrap();
    let replayed = requests.last().unwrap();
    assert_eq!(replayed.status, 202, "{}", replayed.response_body);
    assert_eq!(
        String::from_utf8_lossy(&replayed.body),
        String::from_utf8_lossy(&original.body),
        "the same bytes"
    );
    assert_eq!(
        (&replayed.method, &replayed.path),
        (&original.method, &original.path)
    );
    for h in ["content-type", "user-agent"] {
        assert_eq!(replayed.header(h), original.header(h), "{h}");
    }
}

#[test]
fn library_options_lua53_bbdo2() {
    library_options("5.3", 2);
}
#[test]
fn library_options_lua54_bbdo3() {
    library_options("5.4", 3);
}
