use super::*;

/// PagerDuty's answer to an accepted event.
const SUCCESS: &str = r#"{"status":"success","message":"Event processed","dedup_key":"k"}"#;
const PORTAL: &str = "<!DOCTYPE html>\n<HTML><head><Title>Guest Wi-Fi\n  log in</title></head><body>...</body></html>";

#[test]
fn every_status_has_an_action() {
    let table: &[(u16, &str, Option<&str>, &str)] = &[
        (200, SUCCESS, None, "accepted"),
        (202, SUCCESS, None, "accepted"),
        // a 2xx that is not PagerDuty's answer: a portal, a proxy, a wrong URL
        (200, PORTAL, None, "misdirected"),
        (200, "", None, "misdirected"),
        (202, "OK", None, "misdirected"),
        (204, "", None, "misdirected"),
        (202, r#"{"status":"queued"}"#, None, "misdirected"),
        (202, r#"{"message":"Event processed"}"#, None, "misdirected"),
        (202, r#"["success"]"#, None, "misdirected"),
        // redirects are never followed nor taken as delivery
        (301, "", Some("https://portal.example/"), "misdirected"),
        (302, PORTAL, Some("/login"), "misdirected"),
        (303, "", Some("https://portal.example/"), "misdirected"),
        (307, "", Some("https://portal.example/"), "misdirected"),
        (308, "", Some("https://portal.example/"), "misdirected"),
        (304, "", None, "misdirected"),
        (400, "", None, "rejected"),
        (401, "", None, "failed"),
        (403, "", None, "failed"),
        (404, "", None, "failed"),
        (407, "", None, "failed"),
        (408, "", None, "failed"),
        (413, "", None, "rejected"),
        (422, "", None, "rejected"),
        (429, "", None, "rate"),
        (500, "", None, "failed"),
        (501, "", None, "failed"),
        (502, "", None, "failed"),
        (503, "", None, "failed"),
        (504, "", None, "failed"),
    ];
    for (status, body, location, want) in table {
        let got = match classify(*status, body, None, *location) {
            Verdict::Accepted => "accepted",
            Verdict::Rejected(_) => "rejected",
            Verdict::RateLimited { .. } => "rate",
            Verdict::Failed(_) => "failed",
            Verdict::Misdirected(_) => "misdirected",
        };
        assert_eq!(got, *want, "status {status} {body:?}");
    }
}

#[test]
fn answers_not_from_pagerduty_say_why() {
    let Verdict::Misdirected(r) = classify(302, "", None, Some("http://portal.example/login"))
    else {
        panic!()
    };
    assert!(
        r.starts_with("HTTP 302: redirected to http://portal.example/login, not followed"),
        "{r}"
    );
    let Verdict::Misdirected(r) = classify(200, PORTAL, None, None) else {
        panic!()
    };
    assert!(
        r.starts_with(
            r#"HTTP 200 but not PagerDuty's answer (an HTML page titled "Guest Wi-Fi log in")"#
        ),
        "{r}"
    );
    let Verdict::Misdirected(r) = classify(202, r#"{"status":"queued"}"#, None, None) else {
        panic!()
    };
    assert!(r.contains(r#"says status "queued""#), "{r}");
    // line breaks of an answer never split a log line
    assert_eq!(
        classify(502, "bad\r\n  gateway\n", None, None),
        Verdict::Failed("HTTP 502: bad gateway".into())
    );
    assert_eq!(
        classify(
            502,
            "<html><title>502 Bad Gateway</title></html>",
            None,
            None
        ),
        Verdict::Failed(r#"HTTP 502: an HTML page titled "502 Bad Gateway""#.into())
    );
}

#[test]
fn rejection_keeps_pagerduty_reason() {
    let body = r#"{"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing or blank"]}"#;
    assert_eq!(
        classify(400, body, None, None),
        Verdict::Rejected(
            "HTTP 400: Event object is invalid: 'payload.summary' is missing or blank".into()
        )
    );
    assert_eq!(
        classify(400, "not json", None, None),
        Verdict::Rejected("HTTP 400: not json".into())
    );
    assert_eq!(
        classify(500, "", None, None),
        Verdict::Failed("HTTP 500".into())
    );
}

#[test]
fn retry_after_is_honoured_and_capped() {
    assert_eq!(
        classify(429, "", Some("7"), None),
        Verdict::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert_eq!(parse_retry_after("100000"), Some(RETRY_AFTER_CAP));
    assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    assert_eq!(parse_retry_after("-1"), None);
}
