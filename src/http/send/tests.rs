use super::*;
use crate::config::{Config, ParamValue};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

/// One loopback server answering each request with `header_bytes` of extra header and
/// status 202; returns the URL and a thread giving the bodies it read.
fn server(requests: usize, header_bytes: usize) -> (String, std::thread::JoinHandle<Vec<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v2/enqueue", listener.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut w = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        let mut bodies = Vec::new();
        for _ in 0..requests {
            let mut length = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 {
                    return bodies;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            r.read_exact(&mut body).unwrap();
            bodies.push(body);
            let answer = br#"{"status":"success","message":"Event processed","dedup_key":"k"}"#;
            let filler = "x".repeat(header_bytes);
            let head = format!(
                "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nX-Filler: {filler}\r\nContent-Length: {}\r\n\r\n",
                answer.len()
            );
            if w.write_all(head.as_bytes())
                .and_then(|_| w.write_all(answer))
                .is_err()
            {
                return bodies;
            }
        }
        bodies
    });
    (url, t)
}

fn sender(url: &str) -> Sender {
    let params = [
        (
            "pdy_routing_key".to_string(),
            ParamValue::Str("0123456789abcdef0123456789abcdef".into()),
        ),
        ("http_server_url".to_string(), ParamValue::Str(url.into())),
    ];
    let (cfg, _) = Config::from_params(&params).unwrap();
    Sender::new(&cfg.http, &cfg.routing_key, 1).unwrap()
}

#[test]
fn bodies_larger_than_the_connection_buffer_arrive_whole() {
    // 30 times the buffer, near PagerDuty's 512 KB limit, then a small one on the same
    // kept-alive connection
    let big: Vec<u8> = (0..30 * CONNECTION_BUFFER)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let (url, t) = server(2, 0);
    let s = sender(&url);
    // ureq's default (128 KiB each, zeroed per connection) would cost 4 MiB for 16 lanes
    assert_eq!(s.agent.config().input_buffer_size(), CONNECTION_BUFFER);
    assert_eq!(s.agent.config().output_buffer_size(), CONNECTION_BUFFER);
    for body in [&big[..], b"{}"] {
        match s.post(body) {
            Reply::Answered { status, .. } => assert_eq!(status, 202),
            other => panic!("{other:?}"),
        }
    }
    let got = t.join().unwrap();
    assert_eq!(got.len(), 2);
    assert!(
        got[0] == big,
        "the large body arrived changed ({} bytes)",
        got[0].len()
    );
    assert_eq!(got[1], b"{}");
}

#[test]
fn answer_headers_up_to_half_the_buffer_are_read_larger_ones_fail_cleanly() {
    let (url, t) = server(1, CONNECTION_BUFFER / 2);
    match sender(&url).post(b"{}") {
        Reply::Answered { status, body, .. } => {
            assert_eq!(status, 202);
            assert!(body.contains("success"), "{body}");
        }
        other => panic!("{other:?}"),
    }
    t.join().unwrap();
    // a header larger than the buffer: an error, not a hang nor a panic
    let (url, t) = server(1, 4 * CONNECTION_BUFFER);
    match sender(&url).post(b"{}") {
        Reply::Failed { detail, .. } => assert!(!detail.is_empty()),
        other => panic!("expected a failure, got {other:?}"),
    }
    drop(t.join());
}

/// The body `sender` POSTs: an event with its routing key, as the lanes encode it.
fn event_body() -> Vec<u8> {
    format!(
        r#"{{"routing_key":"{KEY}","event_action":"trigger","dedup_key":"d","payload":{{"summary":"s","source":"h","severity":"error"}}}}"#
    )
    .into_bytes()
}

const KEY: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn redirects_are_not_followed_and_reach_classify_with_their_location() {
    use pd_standin::{Answer, Standin};
    let pd = Standin::start().unwrap();
    let portal = format!("http://{}/portal/login", pd.addr());
    for code in [301, 302, 303, 307, 308] {
        // followed, the redirect would GET the portal's page and take its 200 as delivery
        pd.push_answers([
            Answer::Redirect(code, portal.clone()),
            Answer::Page(200, String::new()),
        ]);
        let s = sender(&pd.url());
        match s.post(&event_body()) {
            Reply::Answered {
                status, location, ..
            } => {
                assert_eq!(status, code);
                assert_eq!(location.as_deref(), Some(portal.as_str()));
            }
            other => panic!("{other:?}"),
        }
        let seen: Vec<(String, String)> = pd
            .requests()
            .iter()
            .map(|r| (r.method.clone(), r.path.clone()))
            .collect();
        assert_eq!(
            seen,
            [("POST".to_string(), "/v2/enqueue".to_string())],
            "HTTP {code}: the redirect was followed"
        );
        // the portal's page is still queued for a follower: take it away
        assert_eq!(pd.pending_answers(), 1);
        assert!(matches!(s.post(b"{}"), Reply::Answered { status: 200, .. }));
        pd.push_answer(Answer::Redirect(code, portal.clone()));
        match s.send(&event_body()) {
            Verdict::Misdirected(r) => assert!(r.contains(&portal), "{r}"),
            other => panic!("HTTP {code}: {other:?}"),
        }
        pd.clear();
    }
    // a 2xx is delivery only with PagerDuty's answer
    pd.push_answer(Answer::Page(200, String::new()));
    match sender(&pd.url()).send(&event_body()) {
        Verdict::Misdirected(r) => assert!(r.contains("Guest Wi-Fi"), "{r}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(sender(&pd.url()).send(&event_body()), Verdict::Accepted);
}

#[test]
fn answers_echoing_the_request_have_the_key_masked() {
    use pd_standin::{Answer, Standin};
    let pd = Standin::start().unwrap();
    let s = sender(&pd.url());
    let masked = Secret::new(KEY).masked();
    for code in [400, 502] {
        pd.push_answer(Answer::Echo(code));
        let reply = s.post(&event_body());
        let Reply::Answered { status, body, .. } = &reply else {
            panic!("{reply:?}")
        };
        assert_eq!(*status, code);
        assert!(!body.contains(KEY), "HTTP {code}: {body}");
        assert!(body.contains(&masked), "HTTP {code}: {body}");
        assert!(pd.requests().last().unwrap().response_body.contains(KEY));
        pd.push_answer(Answer::Echo(code));
        let text = format!("{:?}", s.send(&event_body()));
        assert!(!text.contains(KEY) && text.contains(&masked), "{text}");
    }
    // a redirect whose Location quotes the key
    pd.push_answer(Answer::Redirect(
        302,
        format!("http://portal.example/?k={KEY}"),
    ));
    match s.post(&event_body()) {
        Reply::Answered { location, .. } => {
            assert_eq!(location, Some(format!("http://portal.example/?k={masked}")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_proxy_port_must_be_a_number() {
    for ok in [
        "http://proxy:3128",
        "http://u:p@proxy:3128/",
        "proxy",
        "http://[::1]",
        "http://[::1]:8080",
    ] {
        assert!(port_is_a_number(ok), "{ok}");
    }
    for bad in [
        "http://proxy:31a8",
        "http://u:p@proxy:99999",
        "proxy:0",
        "http://u:p@h:",
    ] {
        assert!(!port_is_a_number(bad), "{bad}");
    }
}

#[test]
fn the_proxy_password_is_masked_also_as_its_authorization_token() {
    let proxy = UreqProxy::new("http://centreon:pr0xy-s3cret@127.0.0.1:3128").unwrap();
    let mask = Mask::new(&Secret::new(KEY), Some(&proxy));
    let text = format!(
        "denied {KEY} for centreon:pr0xy-s3cret (Proxy-Authorization: Basic Y2VudHJlb246cHIweHktczNjcmV0)"
    );
    assert_eq!(
        mask.apply(&text),
        "denied ****************************cdef for centreon:**** (Proxy-Authorization: Basic ****)"
    );
    // no proxy, or one without a password: the key only
    let mask = Mask::new(&Secret::new(KEY), None);
    assert_eq!(mask.apply("pr0xy-s3cret"), "pr0xy-s3cret");
}
