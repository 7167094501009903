//! End-to-end tests of the stand-in through a raw TCP client on 127.0.0.1.

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::{Client, KEY, OTHER_KEY, event, post, trigger};
use pd_standin::{Answer, IncidentStatus, MAX_BODY_BYTES, Standin};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);

fn errors_for(pd: &Standin, body: &str) -> Vec<String> {
    let r = post(pd.addr(), body);
    assert_eq!(r.status, 400, "{body} -> {}", r.body);
    let j = r.json();
    assert_eq!(j["status"], "invalid event");
    assert_eq!(j["message"], "Event object is invalid");
    r.errors()
}

fn assert_error(pd: &Standin, body: &Value, expected: &str) {
    let errors = errors_for(pd, &body.to_string());
    assert!(
        errors.iter().any(|e| e.contains(expected)),
        "expected an error containing {expected:?}, got {errors:?}"
    );
}

#[test]
fn valid_trigger_is_accepted_and_opens_an_incident() {
    let pd = Standin::start().unwrap();
    assert!(pd.url().starts_with("http://127.0.0.1:"));
    assert!(pd.url().ends_with("/v2/enqueue"));
    assert_eq!(
        pd.addr().port(),
        pd.url()[17..]
            .split('/')
            .next()
            .unwrap()
            .parse::<u16>()
            .unwrap()
    );

    let r = post(
        pd.addr(),
        &trigger("12_34", "srv/Disk: CRITICAL - 95% used"),
    );
    assert_eq!(r.status, 202);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.body,
        r#"{"status":"success","message":"Event processed","dedup_key":"12_34"}"#
    );

    assert!(pd.wait_for_accepted(1, WAIT));
    assert_eq!(pd.count(), 1);
    let accepted = pd.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["dedup_key"], "12_34");
    let req = &pd.requests()[0];
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/v2/enqueue")
    );
    assert_eq!(req.status, 202);
    assert_eq!(req.seq, 1);
    assert_eq!(req.connection_id, 1);
    assert_eq!(req.header("CONTENT-TYPE"), Some("application/json"));
    assert!(req.json.is_some());

    let incidents = pd.incidents();
    assert_eq!(incidents.len(), 1);
    let i = &incidents[0];
    assert_eq!(i.number, 1);
    assert_eq!(i.routing_key_last4, "6789");
    assert_eq!(i.dedup_key, "12_34");
    assert_eq!(i.status, IncidentStatus::Open);
    assert_eq!(i.summary, "srv/Disk: CRITICAL - 95% used");
    assert_eq!(i.severity, "critical");
    assert_eq!(i.events, 1);
    assert_eq!(pd.open_incident_count(), 1);
    let timeline = pd.timeline();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].effect, "opened #1");
    assert_eq!(timeline[0].action, "trigger");
}

#[test]
fn trigger_without_dedup_key_gets_a_generated_one() {
    let pd = Standin::start().unwrap();
    let mut ev = event(KEY, "trigger", "", "no key");
    ev.as_object_mut().unwrap().remove("dedup_key");
    let r = post(pd.addr(), &ev.to_string());
    assert_eq!(r.status, 202);
    let key = r.json()["dedup_key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 32);
    assert_eq!(pd.incidents()[0].dedup_key, key);
}

#[test]
fn each_validation_rule_answers_400_with_its_error() {
    let pd = Standin::start().unwrap();
    let good = event(KEY, "trigger", "12_34", "summary");

    assert!(errors_for(&pd, "not json")[0].contains("not valid JSON"));
    assert!(errors_for(&pd, "")[0].contains("not valid JSON"));
    assert_eq!(errors_for(&pd, "[1,2]"), ["event must be a JSON object"]);

    let mut ev = good.clone();
    ev.as_object_mut().unwrap().remove("routing_key");
    assert_error(&pd, &ev, "routing_key is required");
    for bad in [
        json!("short"),
        json!("0123456789abcdef-BCDEF0123456789"),
        json!("0123456789abcdefABCDEF01234567890"),
    ] {
        let mut ev = good.clone();
        ev["routing_key"] = bad;
        assert_error(&pd, &ev, "routing_key must be 32 alphanumeric characters");
    }
    let mut ev = good.clone();
    ev["routing_key"] = json!(12);
    assert_error(&pd, &ev, "routing_key must be a string");

    let mut ev = good.clone();
    ev["event_action"] = json!("escalate");
    assert_error(
        &pd,
        &ev,
        "event_action must be one of trigger, acknowledge, resolve",
    );
    let mut ev = good.clone();
    ev.as_object_mut().unwrap().remove("event_action");
    assert_error(&pd, &ev, "event_action is required");

    let mut ev = good.clone();
    ev["dedup_key"] = json!("k".repeat(256));
    assert_error(
        &pd,
        &ev,
        "dedup_key must be at most 255 characters (got 256)",
    );
    let mut ev = good.clone();
    ev["dedup_key"] = json!("k".repeat(255));
    assert_eq!(post(pd.addr(), &ev.to_string()).status, 202);

    for action in ["acknowledge", "resolve"] {
        let mut ev = event(KEY, action, "x", "");
        ev.as_object_mut().unwrap().remove("dedup_key");
        assert_error(&pd, &ev, &format!("dedup_key is required for {action}"));
    }

    let mut ev = good.clone();
    ev.as_object_mut().unwrap().remove("payload");
    assert_error(&pd, &ev, "payload is required for trigger");
    let mut ev = good.clone();
    ev["payload"].as_object_mut().unwrap().remove("summary");
    assert_error(&pd, &ev, "payload.summary is required");
    let mut ev = good.clone();
    ev["payload"]["summary"] = json!("é".repeat(1025));
    assert_error(
        &pd,
        &ev,
        "payload.summary must be at most 1024 characters (got 1025)",
    );
    let mut ev = good.clone();
    ev["payload"]["summary"] = json!("é".repeat(1024));
    assert_eq!(
        post(pd.addr(), &ev.to_string()).status,
        202,
        "1024 characters are fine"
    );
    let mut ev = good.clone();
    ev["payload"].as_object_mut().unwrap().remove("source");
    assert_error(&pd, &ev, "payload.source is required");
    let mut ev = good.clone();
    ev["payload"].as_object_mut().unwrap().remove("severity");
    assert_error(&pd, &ev, "payload.severity is required");
    let mut ev = good.clone();
    ev["payload"]["severity"] = json!("fatal");
    assert_error(
        &pd,
        &ev,
        "payload.severity must be one of critical, error, warning, info",
    );

    let mut ev = good.clone();
    ev["payload"]["timestamp"] = json!("yesterday");
    assert_error(&pd, &ev, "payload.timestamp is not an ISO 8601 date-time");

    let mut ev = good.clone();
    ev["links"] = json!(["https://example.invalid"]);
    assert_error(&pd, &ev, "links[0] must be an object");
    let mut ev = good.clone();
    ev["links"] = json!([{"href": "https://example.invalid", "text": "ok"}, {"text": "no href"}]);
    assert_error(&pd, &ev, "links[1].href is required");
    let mut ev = good.clone();
    ev["links"] = json!({"href": "x"});
    assert_error(&pd, &ev, "links must be an array");

    let mut ev = good.clone();
    ev["payload"]["custom_details"] = json!({"blob": "x".repeat(MAX_BODY_BYTES)});
    assert_error(&pd, &ev, "event is larger than 524288 bytes");

    // Acknowledge and resolve need no payload.
    let ack = event(KEY, "acknowledge", "12_34", "");
    assert_eq!(post(pd.addr(), &ack.to_string()).status, 202);

    // Every problem is listed.
    let errors = errors_for(
        &pd,
        &json!({"routing_key": "x", "event_action": "trigger", "payload": {"severity": "bad"}})
            .to_string(),
    );
    assert_eq!(errors.len(), 4, "{errors:?}");

    // The full routing key never shows in an error.
    let mut ev = good.clone();
    ev["routing_key"] = json!(format!("{KEY}!"));
    let errors = errors_for(&pd, &ev.to_string());
    assert!(errors.iter().all(|e| !e.contains(KEY)));
}

#[test]
fn other_paths_and_methods() {
    let pd = Standin::start().unwrap();
    let mut c = Client::connect(pd.addr());
    let r = c.post("/v2/elsewhere", &trigger("a", "b")).unwrap();
    assert_eq!(r.status, 404);
    c.send_raw(b"GET /v2/enqueue HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));

    let change = json!({"routing_key": KEY, "payload": {"summary": "deployed v2", "source": "ci"}});
    let r = c.post("/v2/change/enqueue", &change.to_string()).unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["status"], "success");
    let r = c
        .post("/v2/change/enqueue", r#"{"routing_key":"x"}"#)
        .unwrap();
    assert_eq!(r.status, 400);

    let r = c
        .post("/v2/enqueue?x=1", &trigger("q", "with query"))
        .unwrap();
    assert_eq!(r.status, 202);
    assert_eq!(pd.accepted().len(), 2);
    assert!(pd.incidents().iter().all(|i| i.dedup_key == "q"));
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let pd = Standin::start().unwrap();
    let mut c = Client::connect(pd.addr());
    for n in 0..3 {
        let r = c
            .post("/v2/enqueue", &trigger(&format!("k{n}"), "s"))
            .unwrap();
        assert_eq!(r.status, 202);
        assert_eq!(r.header("connection"), None);
    }
    assert_eq!(pd.connections(), 1);
    assert!(pd.requests().iter().all(|r| r.connection_id == 1));

    // Two requests written at once (pipelined) are both answered.
    let one = format!(
        "POST /v2/enqueue HTTP/1.1\r\nContent-Length: {}\r\n\r\n{}",
        trigger("p1", "s").len(),
        trigger("p1", "s")
    );
    c.send_raw(format!("{one}{one}").as_bytes()).unwrap();
    assert_eq!(c.read_response().unwrap().status, 202);
    assert_eq!(c.read_response().unwrap().status, 202);

    // Connection: close is honoured.
    c.write_post("/v2/enqueue", &trigger("k9", "s"), "Connection: close\r\n")
        .unwrap();
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 202);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(c.read_some().unwrap(), 0, "server closed the connection");
    assert_eq!(pd.connections(), 1);

    // HTTP/1.0 closes unless asked to keep alive.
    let mut c = Client::connect(pd.addr());
    let body = trigger("h10", "s");
    c.send_raw(
        format!(
            "POST /v2/enqueue HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(c.read_response().unwrap().status, 202);
    assert_eq!(c.read_some().unwrap(), 0);
    assert_eq!(pd.connections(), 2);
}

#[test]
fn chunked_body_and_expect_continue() {
    let pd = Standin::start().unwrap();
    let mut c = Client::connect(pd.addr());
    let body = trigger("chunky", "sent in chunks");
    let (a, b) = body.split_at(10);
    let request = format!(
        "POST /v2/enqueue HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\nX-Trailer: t\r\n\r\n",
        a.len(),
        b.len()
    );
    c.send_raw(request.as_bytes()).unwrap();
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(pd.requests()[0].body, body.as_bytes());

    let body = trigger("cont", "expect");
    c.send_raw(
        format!(
            "POST /v2/enqueue HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let interim = c.read_interim_head();
    assert_eq!(interim, "HTTP/1.1 100 Continue");
    c.send_raw(body.as_bytes()).unwrap();
    assert_eq!(c.read_response().unwrap().status, 202);
}

#[test]
fn malformed_http_gets_400_and_close() {
    let pd = Standin::start().unwrap();
    let mut c = Client::connect(pd.addr());
    c.send_raw(b"HELLO\r\n\r\n").unwrap();
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.header("connection"), Some("close"));
    let mut c = Client::connect(pd.addr());
    c.send_raw(b"POST /v2/enqueue HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
        .unwrap();
    assert_eq!(c.read_response().unwrap().status, 400);
    assert_eq!(pd.count(), 0);
}

#[test]
fn scripted_status_answers_are_consumed_in_order() {
    let pd = Standin::start().unwrap();
    pd.push_answers([
        Answer::TooMany {
            retry_after: Some(2),
        },
        Answer::TooMany { retry_after: None },
        Answer::ServerError(500),
        Answer::ServerError(502),
        Answer::ServerError(503),
        Answer::Reject("nope".to_string()),
        Answer::Status(418, r#"{"teapot":true}"#.to_string()),
    ]);
    assert_eq!(pd.pending_answers(), 7);
    let mut c = Client::connect(pd.addr());
    let body = trigger("s", "scripted");

    let r = c.post("/v2/enqueue", &body).unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(r.json()["status"], "throttle event");
    assert_eq!(
        r.json()["message"],
        "Requests for this service are arriving too quickly. Please retry later."
    );
    let r = c.post("/v2/enqueue", &body).unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), None);
    for code in [500, 502, 503] {
        let r = c.post("/v2/enqueue", &body).unwrap();
        assert_eq!(r.status, code);
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    let r = c.post("/v2/enqueue", &body).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.errors(), ["nope"]);
    let r = c.post("/v2/enqueue", &body).unwrap();
    assert_eq!((r.status, r.body.as_str()), (418, r#"{"teapot":true}"#));
    // Queue empty: the default (Accept) applies.
    let r = c.post("/v2/enqueue", &body).unwrap();
    assert_eq!(r.status, 202);
    assert_eq!(pd.pending_answers(), 0);
    assert_eq!(pd.connections(), 1);

    let statuses: Vec<u16> = pd.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 500, 502, 503, 400, 418, 202]);
    assert_eq!(pd.accepted().len(), 1);
    assert_eq!(
        pd.incidents().len(),
        1,
        "only the accepted event reached the model"
    );

    pd.set_default(Answer::ServerError(503));
    assert_eq!(c.post("/v2/enqueue", &body).unwrap().status, 503);
    pd.push_answer(Answer::Accept);
    assert_eq!(c.post("/v2/enqueue", &body).unwrap().status, 202);
    assert_eq!(c.post("/v2/enqueue", &body).unwrap().status, 503);
}

#[test]
fn hang_never_answers() {
    let pd = Standin::start().unwrap();
    pd.push_answer(Answer::Hang);
    let mut c = Client::connect(pd.addr());
    c.set_read_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = c
        .post("/v2/enqueue", &trigger("h", "hang"))
        .err()
        .expect("no answer");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(pd.wait_for_requests(1, WAIT));
    assert_eq!(pd.requests()[0].status, 0);
    assert!(pd.accepted().is_empty());
    drop(c);
    // The client left: the next connection is served normally.
    assert_eq!(post(pd.addr(), &trigger("h", "after")).status, 202);
}

#[test]
fn reset_makes_the_client_see_an_error() {
    let pd = Standin::start().unwrap();
    pd.push_answer(Answer::Reset);
    let mut c = Client::connect(pd.addr());
    let err = c
        .post("/v2/enqueue", &trigger("r", "reset"))
        .err()
        .expect("an error");
    #[cfg(target_os = "linux")]
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err:?}");
    assert!(
        !matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err:?}"
    );
    assert_eq!(pd.requests()[0].status, 0);
}

#[test]
fn close_ends_the_connection_without_an_answer() {
    let pd = Standin::start().unwrap();
    pd.push_answer(Answer::Close);
    let mut c = Client::connect(pd.addr());
    let err = c
        .post("/v2/enqueue", &trigger("c", "close"))
        .err()
        .expect("no answer");
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err:?}");
    assert_eq!(pd.requests()[0].status, 0);
}

#[test]
fn delay_and_latency_hold_the_answer_back() {
    let pd = Standin::start().unwrap();
    pd.push_answer(Answer::delay(
        Duration::from_millis(300),
        Answer::ServerError(502),
    ));
    let mut c = Client::connect(pd.addr());
    let started = Instant::now();
    let r = c.post("/v2/enqueue", &trigger("d", "delay")).unwrap();
    assert_eq!(r.status, 502);
    assert!(started.elapsed() >= Duration::from_millis(300));

    pd.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(
        c.post("/v2/enqueue", &trigger("d", "latency"))
            .unwrap()
            .status,
        202
    );
    assert!(started.elapsed() >= Duration::from_millis(200));

    // A client with a shorter timeout gives up before a delayed answer.
    pd.set_latency(Duration::ZERO);
    pd.push_answer(Answer::delay(Duration::from_secs(2), Answer::Accept));
    let mut c = Client::connect(pd.addr());
    c.set_read_timeout(Duration::from_millis(200));
    assert!(c.post("/v2/enqueue", &trigger("d", "late")).is_err());
}

#[test]
fn rate_limit_uses_a_sliding_window_per_routing_key() {
    let pd = Standin::start().unwrap();
    pd.set_rate_limit(2);
    pd.set_rate_window(Duration::from_millis(1000));
    let mut c = Client::connect(pd.addr());
    let started = Instant::now();
    assert_eq!(
        c.post("/v2/enqueue", &trigger("a", "1")).unwrap().status,
        202
    );
    let first_counted_before = Instant::now();
    assert_eq!(
        c.post("/v2/enqueue", &trigger("a", "2")).unwrap().status,
        202
    );
    let r = c.post("/v2/enqueue", &trigger("a", "3")).unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["status"], "throttle event");
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "the test machine is too slow for this window"
    );
    // Another routing key has its own window.
    let other = event(OTHER_KEY, "trigger", "a", "other key").to_string();
    assert_eq!(c.post("/v2/enqueue", &other).unwrap().status, 202);
    // Invalid events are refused before the rate limit.
    assert_eq!(c.post("/v2/enqueue", "{}").unwrap().status, 400);

    // Once the first event has left the window, one more fits.
    let until = first_counted_before + Duration::from_millis(1020);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    assert_eq!(
        c.post("/v2/enqueue", &trigger("a", "4")).unwrap().status,
        202
    );
    assert_eq!(pd.accepted().len(), 4);
    // The throttled event did not reach the incident model.
    assert_eq!(pd.incidents()[0].events, 3);

    pd.clear_rate_limit();
    for n in 0..5 {
        assert_eq!(
            c.post("/v2/enqueue", &trigger("a", &n.to_string()))
                .unwrap()
                .status,
            202
        );
    }
}

#[test]
fn incident_model_follows_pagerduty() {
    let pd = Standin::start().unwrap();
    let mut c = Client::connect(pd.addr());
    let mut send = |key: &str, action: &str, dedup: &str, summary: &str| {
        let r = c
            .post(
                "/v2/enqueue",
                &event(key, action, dedup, summary).to_string(),
            )
            .unwrap();
        assert_eq!(r.status, 202, "{}", r.body);
    };
    send(KEY, "trigger", "12_34", "srv/Disk: CRITICAL - 95%");
    send(KEY, "trigger", "12_34", "srv/Disk: CRITICAL - 97%");
    assert_eq!(pd.incidents().len(), 1);
    assert_eq!(pd.incidents()[0].events, 2);
    assert_eq!(pd.incidents()[0].summary, "srv/Disk: CRITICAL - 97%");
    send(KEY, "acknowledge", "12_34", "");
    assert_eq!(pd.incidents()[0].status, IncidentStatus::Acknowledged);
    assert_eq!(pd.open_incident_count(), 1);
    // A resolve through another routing key is dropped.
    send(OTHER_KEY, "resolve", "12_34", "");
    assert_eq!(pd.open_incident_count(), 1);
    send(KEY, "resolve", "12_34", "");
    assert_eq!(pd.incidents()[0].status, IncidentStatus::Resolved);
    assert_eq!(pd.open_incident_count(), 0);
    send(KEY, "trigger", "12_34", "srv/Disk: CRITICAL - 99%");
    send(KEY, "resolve", "56_78", "");
    send(KEY, "acknowledge", "56_78", "");

    let incidents = pd.incidents();
    assert_eq!(incidents.len(), 2);
    assert_eq!(incidents[1].number, 2);
    assert_eq!(incidents[1].status, IncidentStatus::Open);
    assert_eq!(incidents[1].dedup_key, "12_34");
    assert_eq!(incidents[0].events, 4);
    assert_eq!(pd.open_incident_count(), 1);

    let effects: Vec<String> = pd.timeline().iter().map(|t| t.effect.clone()).collect();
    assert_eq!(
        effects,
        [
            "opened #1",
            "updated #1",
            "acknowledged #1",
            "dropped (no open incident)",
            "resolved #1",
            "opened #2",
            "dropped (no open incident)",
            "dropped (no open incident)",
        ]
    );
    let timeline = pd.timeline();
    assert_eq!(timeline[2].summary, "srv/Disk: CRITICAL - 97%");
    assert_eq!(timeline[3].routing_key_last4, "7654");
    assert_eq!(timeline[4].incident, Some(1));
    assert_eq!(timeline[6].incident, None);

    // The full routing key shows nowhere but in the recorded bodies.
    let shown = format!("{:?}{:?}{:?}", pd.incidents(), pd.timeline(), pd.requests());
    assert!(!shown.contains(KEY) && !shown.contains(OTHER_KEY));
    assert!(shown.contains("...6789"));
    assert!(String::from_utf8_lossy(&pd.requests()[0].body).contains(KEY));

    pd.clear();
    assert_eq!((pd.count(), pd.connections()), (0, 0));
    assert!(pd.incidents().is_empty() && pd.timeline().is_empty());
    send(KEY, "trigger", "12_34", "after clear");
    assert_eq!(pd.incidents()[0].number, 1);
    assert!(pd.requests()[0].seq > 8, "seq is never reused");
}

#[test]
fn waits_are_bounded_and_wake_up() {
    let pd = Standin::start().unwrap();
    let started = Instant::now();
    assert!(!pd.wait_for_accepted(1, Duration::from_millis(100)));
    assert!(!pd.wait_for_requests(1, Duration::from_millis(100)));
    assert!(started.elapsed() < Duration::from_secs(2));

    let addr = pd.addr();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        for n in 0..3 {
            assert_eq!(post(addr, &trigger(&n.to_string(), "s")).status, 202);
        }
    });
    assert!(pd.wait_for_accepted(3, WAIT));
    assert!(pd.wait_for_requests(3, WAIT));
    sender.join().unwrap();
    assert_eq!(pd.connections(), 3);
}

#[test]
fn observer_sees_every_settled_request() {
    let pd = Standin::start().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    pd.on_request(move |r| sink.lock().unwrap().push(r.status));
    pd.push_answers([Answer::ServerError(500), Answer::Close]);
    let _ = post(pd.addr(), &trigger("o", "1"));
    let mut c = Client::connect(pd.addr());
    assert!(c.post("/v2/enqueue", &trigger("o", "2")).is_err());
    let _ = post(pd.addr(), &trigger("o", "3"));
    assert_eq!(*seen.lock().unwrap(), [500, 0, 202]);
}

#[test]
fn shutdown_is_prompt_even_with_a_hanging_connection() {
    let mut pd = Standin::start().unwrap();
    let addr = pd.addr();
    pd.push_answers([
        Answer::Hang,
        Answer::delay(Duration::from_secs(30), Answer::Accept),
    ]);
    let mut hanging = Client::connect(addr);
    hanging
        .write_post("/v2/enqueue", &trigger("x", "hang"), "")
        .unwrap();
    let mut delayed = Client::connect(addr);
    delayed
        .write_post("/v2/enqueue", &trigger("x", "delay"), "")
        .unwrap();
    let _idle = Client::connect(addr);
    assert!(pd.wait_for_requests(2, WAIT));

    let started = Instant::now();
    pd.shutdown();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    // The clients see the connections end without an answer.
    assert!(hanging.read_response().is_err());
    assert!(delayed.read_response().is_err());
    // No longer listening.
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
    // Recordings are still readable; a second shutdown (and the drop) is harmless.
    assert_eq!(pd.count(), 2);
    pd.shutdown();

    // Dropping is as prompt.
    let pd = Standin::start().unwrap();
    pd.push_answer(Answer::Hang);
    let mut c = Client::connect(pd.addr());
    c.write_post("/v2/enqueue", &trigger("x", "hang"), "")
        .unwrap();
    assert!(pd.wait_for_requests(1, WAIT));
    let started = Instant::now();
    drop(pd);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn start_on_a_given_port() {
    let probe = Standin::start().unwrap();
    let port = probe.addr().port();
    drop(probe);
    let pd = Standin::start_on(port).unwrap();
    assert_eq!(pd.addr().port(), port);
    assert_eq!(pd.url(), format!("http://127.0.0.1:{port}/v2/enqueue"));
    assert!(Standin::start_on(port).is_err(), "port in use");
}

#[test]
fn answer_lines_parse() {
    let cases = [
        ("202", Answer::Accept),
        ("accept", Answer::Accept),
        ("400 bad summary", Answer::Reject("bad summary".to_string())),
        ("429", Answer::TooMany { retry_after: None }),
        (
            "429 retry-after=2",
            Answer::TooMany {
                retry_after: Some(2),
            },
        ),
        ("500", Answer::ServerError(500)),
        ("503", Answer::ServerError(503)),
        ("hang", Answer::Hang),
        ("RESET", Answer::Reset),
        ("close", Answer::Close),
        (
            "delay 200 202",
            Answer::delay(Duration::from_millis(200), Answer::Accept),
        ),
        (
            "delay 10 delay 20 500",
            Answer::delay(
                Duration::from_millis(10),
                Answer::delay(Duration::from_millis(20), Answer::ServerError(500)),
            ),
        ),
        (
            "418 {\"x\":1}",
            Answer::Status(418, "{\"x\":1}".to_string()),
        ),
        ("200", Answer::Status(200, String::new())),
        (
            "redirect 302 http://portal.example/login?from=x",
            Answer::Redirect(302, "http://portal.example/login?from=x".to_string()),
        ),
        (
            "REDIRECT 301 /v2/moved",
            Answer::Redirect(301, "/v2/moved".to_string()),
        ),
        ("html 200", Answer::Page(200, String::new())),
        (
            "html 200 <html>proxy</html>",
            Answer::Page(200, "<html>proxy</html>".to_string()),
        ),
        ("echo 400", Answer::Echo(400)),
        ("echo 502", Answer::Echo(502)),
    ];
    for (line, expected) in cases {
        assert_eq!(Answer::parse(line), Ok(expected.clone()), "{line}");
        assert_eq!(line.parse::<Answer>(), Ok(expected), "{line}");
    }
    for bad in [
        "",
        "teapot",
        "429 soon",
        "delay x 202",
        "delay 10",
        "hang now",
        "99",
        "600",
        "redirect 302",
        "redirect 200 http://x/",
        "redirect x http://x/",
        "html",
        "html 700",
        "echo",
        "echo 42",
        "echo 400 more",
    ] {
        assert!(Answer::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn hostile_answers_redirect_answer_html_and_echo_the_request() {
    let pd = Standin::start().unwrap();
    for code in [301, 302, 303] {
        pd.push_answer(Answer::Redirect(code, "http://portal.example/login".into()));
        let r = post(pd.addr(), &trigger("r", "redirected"));
        assert_eq!(r.status, code);
        assert_eq!(r.header("location"), Some("http://portal.example/login"));
        assert_eq!(r.header("content-type"), Some("text/html"));
    }
    pd.push_answer(Answer::Page(200, String::new()));
    let r = post(pd.addr(), &trigger("p", "portal"));
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(r.body, pd_standin::PORTAL_PAGE);
    assert!(serde_json::from_str::<Value>(&r.body).is_err(), "not JSON");

    pd.push_answer(Answer::Echo(400));
    let sent = trigger("e", "echoed");
    let r = post(pd.addr(), &sent);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["status"], "invalid event");
    assert!(r.errors()[0].contains(common::KEY), "{}", r.body);
    assert!(r.errors()[0].ends_with(&sent), "{}", r.body);

    pd.push_answer(Answer::Echo(502));
    let r = post(pd.addr(), &sent);
    assert_eq!(r.status, 502);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert!(
        r.body
            .starts_with("502 Bad Gateway while handling POST /v2/enqueue: "),
        "{}",
        r.body
    );
    assert!(r.body.contains(common::KEY), "{}", r.body);

    // none of them reached the incident model; the answers are recorded as sent
    assert!(pd.accepted().is_empty());
    assert_eq!(pd.open_incident_count(), 0);
    let statuses: Vec<u16> = pd.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [301, 302, 303, 200, 400, 502]);
}
