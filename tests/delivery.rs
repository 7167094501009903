//! Delivery through the library API against the local stand-in: buffer size and age, order per `dedup_key` under failures, `send_data_test`, proxies.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use centreon_pagerduty::connector::Connector;
use pd_standin::{Answer, Standin};
use serde_json::json;
use support::*;

/// A connector whose buffer holds 3 events for at most `age` seconds, with two events of
/// service 1:1 and 1:2 submitted (not acknowledged: they wait in the buffer), and the moment
/// just before the first submit.
fn two_buffered(name: &str, age: u64) -> (Standin, Connector, Instant) {
    let pd = Standin::start().unwrap();
    let dir = scratch(name);
    let mut c = connector(
        json!({"http_server_url": pd.url(), "max_buffer_size": 3, "max_buffer_age": age}),
        &dir,
    );
    let t0 = Instant::now();
    assert!(!c.submit(&service(1, 1, 2, 100)).unwrap());
    assert!(!c.submit(&service(1, 2, 2, 100)).unwrap());
    std::thread::sleep(Duration::from_millis(300));
    (pd, c, t0)
}

#[test]
fn buffer_is_released_by_its_age_timer() {
    let (pd, mut c, t0) = two_buffered("buffer-age", 1);
    // read before their age (a late wake-up on a busy machine skips the check)
    let waiting = pd.count();
    if t0.elapsed() < Duration::from_millis(900) {
        assert_eq!(waiting, 0, "two events wait in the buffer");
    }
    // no further event, no flush: the age timer releases them, never before their age
    assert!(pd.wait_for_accepted(2, Duration::from_secs(60)));
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    assert!(c.wait_idle(Duration::from_secs(60)));
    assert!(c.verdict());
}

/// A full buffer is released at once: with an age of a day, nothing but its size can have
/// released it (no timed bound: the test waits for the deliveries themselves).
#[test]
fn buffer_is_released_by_its_size() {
    let (pd, mut c, _) = two_buffered("buffer-size", 86_400);
    assert_eq!(pd.count(), 0, "two events wait in the buffer");
    c.submit(&service(1, 3, 2, 100)).unwrap();
    assert!(pd.wait_for_accepted(3, Duration::from_secs(60)));
    assert!(c.wait_idle(Duration::from_secs(60)));
    assert!(c.verdict());
}

#[test]
fn order_per_dedup_key_holds_under_failures() {
    let pd = Standin::start().unwrap();
    pd.push_answers([
        Answer::ServerError(500),
        Answer::Reset,
        Answer::TooMany {
            retry_after: Some(0),
        },
        Answer::Close,
        Answer::ServerError(503),
        Answer::Status(502, "bad gateway".into()),
    ]);
    let dir = scratch("order");
    let mut c = connector(json!({"http_server_url": pd.url()}), &dir);
    let services = 12u64;
    for s in 1..=services {
        c.submit(&service(7, s, 1, 100)).unwrap(); // WARNING: trigger
        c.submit(&service(7, s, 2, 160)).unwrap(); // CRITICAL: trigger (update)
        c.submit(&service(7, s, 0, 220)).unwrap(); // OK: resolve
    }
    assert!(c.wait_idle(Duration::from_secs(30)), "{}", log_of(&dir));
    let got = pd.accepted();
    // PagerDuty failing is a backlog: events waiting behind a failed one may be merged (an
    // update superseded by a newer one, a trigger that opened nothing and its resolve), but
    // what is sent for each key keeps its order and ends resolved
    let full = [
        ("trigger".to_string(), "warning".to_string()),
        ("trigger".into(), "critical".into()),
        ("resolve".into(), "info".into()),
    ];
    for s in 1..=services {
        let key = format!("7_{s}");
        let seq: Vec<(String, String)> = for_key(&got, &key)
            .iter()
            .map(|b| {
                (
                    b["event_action"].as_str().unwrap().into(),
                    b["payload"]["severity"].as_str().unwrap().into(),
                )
            })
            .collect();
        let mut rest = full.iter();
        assert!(
            seq.iter().all(|e| rest.any(|f| f == e)),
            "{key}: {seq:?} is out of order or repeated"
        );
        assert!(
            seq.last().is_none_or(|(a, _)| a == "resolve"),
            "{key}: {seq:?} does not end resolved"
        );
    }
    let counters = c.counters();
    use std::sync::atomic::Ordering::Relaxed;
    // every event was either sent once or merged away
    let (delivered, merged) = (
        counters.delivered.load(Relaxed),
        counters.merged.load(Relaxed),
    );
    println!("{delivered} delivered, {merged} merged");
    assert_eq!(delivered, got.len() as u64);
    assert_eq!(delivered + merged, 3 * services);
    assert_eq!(counters.rate_limited.load(Relaxed), 1);
    assert_eq!(counters.retried.load(Relaxed), 5);
    assert_eq!(pd.open_incident_count(), 0);
    assert!(!log_of(&dir).contains(ROUTING_KEY));
}

#[test]
fn send_data_test_logs_instead_of_sending() {
    let pd = Standin::start().unwrap();
    let dir = scratch("send-data-test");
    let mut c = connector(
        json!({"http_server_url": pd.url(), "send_data_test": 1}),
        &dir,
    );
    c.submit(&service(3, 4, 2, 100)).unwrap();
    assert!(c.wait_idle(Duration::from_secs(5)));
    drop(c);
    assert_eq!(pd.count(), 0, "nothing sent");
    let log = log_of(&dir);
    assert!(log.contains("send_data_test: would send"), "{log}");
    assert!(log.contains("\"dedup_key\":\"3_4\""), "{log}");
    assert!(log.contains("\"routing_key\":\"<masked>\""), "{log}");
    assert!(!log.contains(ROUTING_KEY));
}

#[test]
fn a_rejected_event_never_blocks_the_next() {
    let pd = Standin::start().unwrap();
    pd.push_answers([Answer::Reject("bad event".into())]);
    let dir = scratch("reject");
    let mut c = connector(json!({"http_server_url": pd.url()}), &dir);
    c.submit(&service(5, 6, 2, 100)).unwrap();
    // answered before the recovery comes (the trigger's rejection is what this test is about)
    assert!(c.wait_idle(Duration::from_secs(10)));
    c.submit(&service(5, 6, 0, 160)).unwrap();
    assert!(c.wait_idle(Duration::from_secs(10)));
    assert_eq!(
        actions(&pd.accepted()),
        [("resolve".to_string(), "5_6".to_string())]
    );
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(c.counters().rejected.load(Relaxed), 1);
    assert!(log_of(&dir).contains("bad event"));
    drop(c);
    // kept for inspection with PagerDuty's reason and the time
    let db = rusqlite::Connection::open(dir.join("outbox.db")).unwrap();
    let (key, action, reason, at): (String, String, String, i64) = db
        .query_row(
            "SELECT dedup_key, action, reason, at FROM rejected",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((key.as_str(), action.as_str()), ("5_6", "trigger"));
    assert!(reason.contains("bad event"), "{reason}");
    assert!(at > 1_600_000_000_000);
    let pending: i64 = db
        .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pending, 0);
}

#[test]
fn a_rate_limited_key_pauses_alone() {
    let pd = Standin::start().unwrap();
    pd.set_rate_limit(2);
    pd.set_rate_window(Duration::from_secs(3));
    let dir_a = scratch("rate-a");
    let dir_b = scratch("rate-b");
    let mut a = connector(json!({"http_server_url": pd.url()}), &dir_a);
    let mut b = Connector::from_json(&json!({
        "pdy_routing_key": OTHER_KEY,
        "http_server_url": pd.url(),
        "log_path": dir_b.join("connector.log").display().to_string(),
        "outbox_path": dir_b.join("outbox.db").display().to_string(),
    }))
    .unwrap();
    for s in 1..=5 {
        a.submit(&service(30, s, 2, 100)).unwrap();
    }
    // key A is over its limit and paused; key B still goes through at once
    assert!(pd.wait_for_requests(3, Duration::from_secs(5)));
    let t = Instant::now();
    b.submit(&service(31, 1, 2, 100)).unwrap();
    assert!(b.wait_idle(Duration::from_secs(5)));
    let b_latency = t.elapsed();
    assert!(
        pd.accepted().iter().any(|e| e["routing_key"] == OTHER_KEY),
        "key B delivered while key A is rate limited"
    );
    // A gets everything through after its pause, nothing lost
    assert!(a.wait_idle(Duration::from_secs(30)), "{}", log_of(&dir_a));
    let from_a = pd
        .accepted()
        .iter()
        .filter(|e| e["routing_key"] == ROUTING_KEY)
        .count();
    assert_eq!(from_a, 5);
    use std::sync::atomic::Ordering::Relaxed;
    assert!(a.counters().rate_limited.load(Relaxed) >= 1);
    assert_eq!(b.counters().rate_limited.load(Relaxed), 0);
    println!("key B delivered in {b_latency:?} while key A was paused");
}

/// Polls `cond` every millisecond until it holds or `timeout` passes.
fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

#[test]
fn an_event_is_committed_at_once_not_after_the_group_commit_delay() {
    use std::sync::atomic::Ordering::Relaxed;
    // the stand-in never answers: no lane result, only the events make commits
    let pd = Standin::start().unwrap();
    pd.set_default(Answer::Hang);
    let dir = scratch("commit-at-once");
    let mut c = connector(
        json!({"http_server_url": pd.url(), "outbox_commit_delay_ms": 1000, "http_timeout": 60}),
        &dir,
    );
    let commits = |c: &Connector| c.counters().commits.load(Relaxed);
    // an isolated event is stored by a commit of its own, long before the 1 s delay
    // (without waiting for more events, the commit takes a fraction of a millisecond)
    c.submit(&service(2, 1, 2, 100)).unwrap();
    assert!(eventually(Duration::from_millis(500), || c.verdict()));
    assert_eq!(commits(&c), 1);
    // so is the next one: one commit per isolated event
    c.submit(&service(2, 2, 2, 100)).unwrap();
    assert!(eventually(Duration::from_millis(500), || c.verdict()));
    assert_eq!(commits(&c), 2);
    // a burst still groups: the events that arrive during one commit share the next
    for s in 3..=2002 {
        c.submit(&service(2, s, 2, 100)).unwrap();
    }
    assert!(eventually(Duration::from_secs(30), || c.verdict()));
    let burst = commits(&c) - 2;
    println!("2000 events: {burst} commits");
    assert!(burst < 2000, "{burst} commits for 2000 events");
    assert_eq!(c.counters().committed.load(Relaxed), 2002);
}

/// Broker's acknowledgement waits for the commit; the statistics keep the longest wait
/// (`ack_wait_max_ms`), from the first question that found the event uncommitted to the first
/// answer that found it committed, `write()`'s or `flush()`'s.
#[test]
fn the_longest_wait_for_an_acknowledgement_is_kept() {
    use std::sync::atomic::Ordering::Relaxed;
    let pd = Standin::start().unwrap();
    let dir = scratch("ack-wait");
    let mut c = connector(json!({"http_server_url": pd.url()}), &dir);
    c.submit(&service(2, 1, 2, 100)).unwrap();
    assert!(eventually(Duration::from_secs(60), || c.verdict()));
    let quick = c.counters().ack_wait_max_ms.load(Relaxed);
    // an operator's sqlite3 session holds the outbox's write lock: the next commit waits
    let other = rusqlite::Connection::open(dir.join("outbox.db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let held = Instant::now();
    c.submit(&service(2, 2, 2, 100)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!c.verdict(), "the commit waits for the lock");
    other.execute_batch("COMMIT").unwrap();
    // Broker idle: flush() waits a little for the commit; its answer ends the wait
    assert!(eventually(Duration::from_secs(60), || c.flush()));
    let ms = c.counters().ack_wait_max_ms.load(Relaxed);
    // counted from this wait's start, not the first one's (a first commit slowed by a busy
    // machine may be the longer of the two)
    let bound = held.elapsed().as_millis().max(quick as u128);
    assert!(
        ms >= 300 && ms as u128 <= bound,
        "{ms} ms (first wait {quick} ms)"
    );
}

#[test]
fn after_a_429_a_single_request_probes_each_pause() {
    use std::sync::atomic::Ordering::Relaxed;
    let pd = Standin::start().unwrap();
    pd.set_default(Answer::TooMany { retry_after: None });
    let dir = scratch("probe");
    let mut c = connector(json!({"http_server_url": pd.url()}), &dir);
    c.submit(&service(40, 1, 2, 100)).unwrap();
    assert!(pd.wait_for_requests(1, Duration::from_secs(5)));
    // the connector has read the 429 (not only sent the request): the key is paused
    assert!(eventually(Duration::from_secs(5), || {
        c.counters().rate_limited.load(Relaxed) >= 1
    }));
    // events for 30 more services wait in (nearly) every lane
    for s in 2..=31 {
        c.submit(&service(40, s, 2, 100)).unwrap();
    }
    // after each pause (at least 0.25 s), one request probes; the other lanes wait for it:
    // three probes answered after the first request, however long a busy machine takes
    let answered = || -> Vec<_> {
        let all = pd.requests();
        all.into_iter().filter(|r| r.status != 0).collect()
    };
    assert!(eventually(Duration::from_secs(60), || answered().len() >= 4));
    // a probe may be in flight (recorded, not yet answered): only the answered ones
    let requests = answered();
    for pair in requests.windows(2) {
        let gap = pair[1].at.saturating_duration_since(pair[0].at);
        assert!(
            gap >= Duration::from_millis(100),
            "two requests {gap:?} apart during the rate limit"
        );
    }
    assert!(requests.iter().all(|r| r.status == 429));
    // PagerDuty takes events again: the next probe goes through and every lane resumes
    pd.set_default(Answer::Accept);
    assert!(c.wait_idle(Duration::from_secs(30)), "{}", log_of(&dir));
    assert_eq!(pd.accepted().len(), 31);
    let throttled = pd.requests().iter().filter(|r| r.status == 429).count() as u64;
    assert_eq!(c.counters().rate_limited.load(Relaxed), throttled);
    let log = log_of(&dir);
    assert!(log.contains("then one request probes"), "{log}");
    assert!(log.contains("PagerDuty takes events again"), "{log}");
}

#[test]
fn an_event_answered_429_can_still_merge_during_the_pause() {
    use std::sync::atomic::Ordering::Relaxed;
    let pd = Standin::start().unwrap();
    pd.push_answers([Answer::TooMany {
        retry_after: Some(1),
    }]);
    let dir = scratch("merge-429");
    let mut c = connector(json!({"http_server_url": pd.url()}), &dir);
    // CRITICAL: the trigger is answered 429, so PagerDuty did not take it ...
    c.submit(&service(41, 1, 2, 100)).unwrap();
    assert!(eventually(Duration::from_secs(5), || {
        c.counters().rate_limited.load(Relaxed) == 1
    }));
    std::thread::sleep(Duration::from_millis(100));
    // ... and OK comes during the 1 s pause: the trigger opened nothing, neither is sent
    c.submit(&service(41, 1, 0, 160)).unwrap();
    assert!(c.wait_idle(Duration::from_secs(10)), "{}", log_of(&dir));
    assert_eq!(pd.requests().len(), 1);
    assert!(pd.accepted().is_empty());
    assert_eq!(c.counters().merged.load(Relaxed), 2);
    assert_eq!(pd.open_incident_count(), 0);
}

/// 150 events wait through an outage (500s), long enough that the lanes back off for several
/// seconds; when PagerDuty answers again, the first success releases every waiting lane at
/// once (logged), and everything is delivered, in order per key, nothing merged away by a
/// retry: the outage is a backlog, but these are distinct services.
#[test]
fn after_an_outage_the_first_success_releases_every_waiting_lane() {
    use std::sync::atomic::Ordering::Relaxed;
    let pd = Standin::start().unwrap();
    pd.set_default(Answer::ServerError(500));
    let dir = scratch("recovery");
    let mut c = connector(json!({"http_server_url": pd.url()}), &dir);
    let services = 150u64;
    for s in 1..=services {
        c.submit(&service(60, s, 2, 100)).unwrap();
    }
    // 64 failed attempts: about four per lane, whose backoffs are now about 0.8 to 2.5 s
    assert!(eventually(Duration::from_secs(120), || {
        c.counters().retried.load(Relaxed) >= 64
    }));
    let failed = pd.requests().len();
    pd.set_default(Answer::Accept);
    assert!(c.wait_idle(Duration::from_secs(120)), "{}", log_of(&dir));
    let got = pd.accepted();
    assert_eq!(got.len(), services as usize);
    let log = log_of(&dir);
    assert!(
        log.contains("PagerDuty answers again:")
            && log.contains("lane(s) backing off after a failure retry now"),
        "{log}"
    );
    assert_eq!(c.counters().merged.load(Relaxed), 0);
    println!("{failed} requests failed before the recovery");
}

/// What the proxy saw: each CONNECT line and its Proxy-Authorization header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A minimal HTTP CONNECT proxy on 127.0.0.1: records each CONNECT line and its
/// Proxy-Authorization header, then pipes bytes both ways.
struct ConnectProxy {
    port: u16,
    seen: Seen,
}

impl ConnectProxy {
    fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        std::thread::spawn(move || {
            // bounded: the test process ends; each connection ends when either side closes
            for conn in listener.incoming().take(64) {
                let Ok(client) = conn else { continue };
                let record = Arc::clone(&record);
                std::thread::spawn(move || serve_connect(client, &record));
            }
        });
        ConnectProxy { port, seen }
    }
}

fn serve_connect(client: TcpStream, record: &Seen) {
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let mut auth = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line
            .strip_prefix("Proxy-Authorization: ")
            .or_else(|| line.strip_prefix("proxy-authorization: "))
        {
            auth = Some(v.trim().to_string());
        }
    }
    let target = first.split_whitespace().nth(1).unwrap_or("").to_string();
    record
        .lock()
        .unwrap()
        .push((first.trim().to_string(), auth));
    let Ok(upstream) = TcpStream::connect(&target) else {
        return;
    };
    let mut client_w = client.try_clone().unwrap();
    client_w
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .unwrap();
    let mut up_r = upstream.try_clone().unwrap();
    let mut up_w = upstream;
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_r, &mut client_w);
    });
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if up_w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = up_w.shutdown(std::net::Shutdown::Both);
    let _ = t.join();
}

#[test]
fn proxy_from_either_parameter_style() {
    for style in ["legacy", "certified"] {
        let pd = Standin::start().unwrap();
        let proxy = ConnectProxy::start();
        let dir = scratch(&format!("proxy-{style}"));
        let extra = match style {
            "legacy" => {
                json!({"http_server_url": pd.url(), "http_proxy_string": format!("http://127.0.0.1:{}", proxy.port)})
            }
            _ => {
                json!({"http_server_url": pd.url(), "proxy_address": "127.0.0.1", "proxy_port": proxy.port.to_string(),
                        "proxy_username": "centreon", "proxy_password": "pr0xy-s3cret"})
            }
        };
        let mut c = connector(extra, &dir);
        c.submit(&service(8, 9, 2, 100)).unwrap();
        settled(&mut c, 10, &dir, style);
        drop(c);
        assert_eq!(pd.accepted().len(), 1, "{style}");
        let seen = proxy.seen.lock().unwrap().clone();
        assert!(!seen.is_empty(), "{style}: the proxy was used");
        assert!(
            seen[0]
                .0
                .starts_with(&format!("CONNECT 127.0.0.1:{}", pd.addr().port())),
            "{seen:?}"
        );
        if style == "certified" {
            // base64("centreon:pr0xy-s3cret")
            assert_eq!(
                seen[0].1.as_deref(),
                Some("Basic Y2VudHJlb246cHIweHktczNjcmV0")
            );
            assert!(
                !log_of(&dir).contains("pr0xy-s3cret"),
                "the proxy password is never logged"
            );
        }
    }
}

#[test]
fn proxy_from_the_environment() {
    let pd = Standin::start().unwrap();
    let proxy = ConnectProxy::start();
    Run::new("5.4", "lifecycle.lua")
        .env("CPD_URL", pd.url())
        .env("HTTPS_PROXY", format!("http://127.0.0.1:{}", proxy.port))
        .go()
        .assert_ok();
    assert_eq!(pd.accepted().len(), 6);
    assert!(
        !proxy.seen.lock().unwrap().is_empty(),
        "HTTPS_PROXY honoured"
    );
}

/// Every file the connector wrote in `dir` (log, statistics, outbox database and journal),
/// as text.
fn files_text(dir: &std::path::Path) -> String {
    files_under(dir)
        .iter()
        .map(|f| String::from_utf8_lossy(&std::fs::read(dir.join(f)).unwrap()).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_redirect_or_a_portal_page_keeps_the_event_until_pagerduty_answers_202() {
    use std::sync::atomic::Ordering::Relaxed;
    let pd = Standin::start().unwrap();
    let portal = format!("http://{}/portal/login", pd.addr());
    // followed, a redirect GETs the portal's page, whose 200 passed for delivery
    pd.push_answers([
        Answer::Redirect(301, portal.clone()),
        Answer::Redirect(302, portal.clone()),
        Answer::Redirect(303, portal.clone()),
        Answer::Page(200, String::new()),
    ]);
    let dir = scratch("redirect");
    let mut c = connector(json!({"http_server_url": pd.url()}), &dir);
    c.submit(&service(5, 6, 2, 100)).unwrap();
    assert!(
        pd.wait_for_accepted(1, Duration::from_secs(60)),
        "the event was lost: {:?}\n{}",
        pd.requests(),
        log_of(&dir)
    );
    assert!(c.wait_idle(Duration::from_secs(10)), "{}", log_of(&dir));
    let requests = pd.requests();
    let seen: Vec<(&str, &str, u16)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.status))
        .collect();
    assert_eq!(
        seen,
        [
            ("POST", "/v2/enqueue", 301),
            ("POST", "/v2/enqueue", 302),
            ("POST", "/v2/enqueue", 303),
            ("POST", "/v2/enqueue", 200),
            ("POST", "/v2/enqueue", 202),
        ],
        "never followed, sent again until PagerDuty answered"
    );
    assert_eq!(pd.accepted()[0]["dedup_key"], "5_6");
    let counters = c.counters();
    assert_eq!(counters.delivered.load(Relaxed), 1);
    assert_eq!(counters.misdirected.load(Relaxed), 4);
    assert_eq!(counters.retried.load(Relaxed), 4);
    c.close();
    let log = log_of(&dir);
    for code in [301, 302, 303] {
        assert!(
            log.contains(&format!(
                "HTTP {code}: redirected to {portal}, not followed"
            )),
            "{log}"
        );
    }
    assert!(
        log.contains(r#"HTTP 200 but not PagerDuty's answer (an HTML page titled "Guest Wi-Fi - Please log in")"#),
        "{log}"
    );
    assert!(log.contains("delivered trigger 5_6 (attempt 5)"), "{log}");
}

#[test]
fn an_echoed_routing_key_lands_nowhere() {
    let pd = Standin::start().unwrap();
    // a proxy's 502 page, then a WAF's 400, both quoting the request with its key
    pd.push_answers([Answer::Echo(502), Answer::Echo(400)]);
    let dir = scratch("echo");
    let mut c = connector(
        json!({"http_server_url": pd.url(), "stats_path": dir.join("stats.json").display().to_string()}),
        &dir,
    );
    c.submit(&service(3, 4, 2, 100)).unwrap();
    assert!(c.wait_idle(Duration::from_secs(30)), "{}", log_of(&dir));
    c.close();
    let requests = pd.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests
            .iter()
            .all(|r| r.response_body.contains(ROUTING_KEY))
    );
    let masked = "****************************2345";
    // the answers did reach the log, the statistics and the rejected table, masked
    let log = log_of(&dir);
    assert!(
        log.contains(&format!("HTTP 502: 502 Bad Gateway while handling POST /v2/enqueue: {{\"routing_key\":\"{masked}\"")),
        "{log}"
    );
    let stats = std::fs::read_to_string(dir.join("stats.json")).unwrap();
    assert!(stats.contains(masked), "{stats}");
    let db = rusqlite::Connection::open(dir.join("outbox.db")).unwrap();
    let reason: String = db
        .query_row("SELECT reason FROM rejected", [], |r| r.get(0))
        .unwrap();
    assert!(
        reason.starts_with("HTTP 400: Event object is invalid: could not process the request: ")
            && reason.contains(masked),
        "{reason}"
    );
    drop(db);
    // the full key is in no file the connector wrote
    let files = files_under(&dir);
    assert!(files.iter().any(|f| f == "stats.json"), "{files:?}");
    assert!(
        !files_text(&dir).contains(ROUTING_KEY),
        "the routing key leaked into {files:?}"
    );
}

/// The start line is written at the default log level but is not a WARNING (an alert on
/// WARNING lines would fire on every reload); `log_format = centreon` writes Broker's lines.
#[test]
fn start_line_is_a_notice_in_either_log_format() {
    let pd = Standin::start().unwrap();
    for (format, start, warning) in [
        (None, "Z [NOTICE] centreon-pagerduty ", "Z [WARNING] "),
        (
            Some("native"),
            "Z [NOTICE] centreon-pagerduty ",
            "Z [WARNING] ",
        ),
        (
            Some("centreon"),
            ": INFO: centreon-pagerduty ",
            ": WARNING: ",
        ),
    ] {
        let dir = scratch(&format!("log-format-{}", format.unwrap_or("default")));
        let mut params = json!({"http_server_url": pd.url(), "log_level": 1});
        if let Some(f) = format {
            params["log_format"] = f.into();
        }
        // an unknown parameter gives a warning line
        params["max_bufer_size"] = 2.into();
        let c = connector(params, &dir);
        c.close();
        let log = log_of(&dir);
        let lines: Vec<&str> = log.lines().collect();
        let first = lines
            .iter()
            .find(|l| l.contains("centreon-pagerduty ") && l.contains(" started: "))
            .unwrap_or_else(|| panic!("{format:?}: no start line\n{log}"));
        assert!(first.contains(start), "{format:?}: {first}");
        assert!(
            lines
                .iter()
                .filter(|l| l.contains(warning))
                .all(|l| l.contains("max_bufer_size")),
            "{format:?}: only the unknown parameter is a warning\n{log}"
        );
        assert!(log.contains(warning), "{format:?}\n{log}");
        if format == Some("centreon") {
            // `Tue Nov 14 23:13:20 2023: INFO: ...`
            let date = first.split(": ").next().unwrap();
            assert_eq!(date.len(), 24, "{first}");
            assert_eq!(date.split_whitespace().count(), 5, "{first}");
        }
    }
}

/// The 16 sender lanes run as `SCHED_BATCH` threads, which do not preempt Broker's thread when
/// they are woken; the committer, whose commits Broker's acknowledgement waits for, keeps the
/// default policy (src/delivery/priority.rs); in a process started with `nice` the lanes are
/// left as they are.
#[test]
fn lanes_give_way_to_brokers_thread_the_committer_does_not() {
    let dir = scratch("give-way");
    let c = connector(json!({"http_server_url": UNREACHABLE}), &dir);
    let field = |stat: &str, n: usize| -> Option<i64> {
        let rest = &stat[stat.rfind(')')? + 2..];
        rest.split(' ').nth(n - 3).and_then(|p| p.parse().ok())
    };
    let nice = field(&std::fs::read_to_string("/proc/self/stat").unwrap(), 19);
    let lane = if nice == Some(0) { 3 } else { 0 };
    let want = |comm: &str| if comm == "cpd-commit" { 0 } else { lane };
    // each thread sets its policy when it starts: wait for all of them (other tests' connectors
    // in this process count too, and become batch threads the same way)
    let own = || -> Vec<(String, Option<i64>)> {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Vec::new();
        };
        tasks
            .flatten()
            .filter_map(|t| {
                let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
                let comm = comm.trim().to_string();
                let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
                let policy = field(&stat, 41);
                (comm == "cpd-commit" || comm.starts_with("cpd-lane-")).then_some((comm, policy))
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let threads = own();
        if threads.len() >= 17 && threads.iter().all(|(c, p)| *p == Some(want(c))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lanes not all at policy {lane} (niceness {nice:?}) or the committer not at 0: {threads:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(c);
}
