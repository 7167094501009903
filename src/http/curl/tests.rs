use super::*;
use crate::config::{Config, ParamValue};
use crate::decision::Action;

const KEY: &str = "R0ut1ngKeyABCDEFGHIJKLMNOPQRSTUV";

fn cfg(extra: &[(&str, &str)]) -> Config {
    let params: Vec<(String, ParamValue)> = [("pdy_routing_key", KEY)]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), ParamValue::Str(v.to_string())))
        .collect();
    Config::from_params(&params).unwrap().0
}

fn event() -> Outgoing {
    payload::custom_event(&payload::Custom {
        action: Action::Trigger,
        dedup_key: "12_34",
        summary: "it's 'quoted' & $HOME `x`",
        source: "srv",
        severity: crate::payload::Severity::Critical,
        timestamp: None,
        component: None,
        group: None,
        class: None,
        details: serde_json::Map::new(),
        links: Vec::new(),
        client: None,
        client_url: None,
    })
}

#[test]
fn defaults() {
    let c = cfg(&[]);
    let out = event();
    let line = CurlCommand::new(&c.http).line(&out, &c.routing_key);
    let body = payload::with_masked_key(&out, &c.routing_key);
    assert_eq!(
        line,
        format!(
            "curl -sS -X POST --connect-timeout 10 --max-time 10 \
             -H 'Content-Type: application/json' -A '{}' \
             'https://events.pagerduty.com/v2/enqueue' --data-binary {}",
            crate::http::send::USER_AGENT,
            quote(&body)
        )
    );
    assert!(body.starts_with("{\"routing_key\":\"****************************STUV\","));
    assert!(
        line.contains(r#""summary":"it'\''s '\''quoted'\'' & $HOME `x`""#),
        "{line}"
    );
    assert!(!line.contains(KEY));
    // the masked key replaced by the real one: the body PagerDuty receives
    assert_eq!(
        body.replace(&c.routing_key.masked(), KEY).into_bytes(),
        payload::encode(&out, &c.routing_key)
    );
}

#[test]
fn proxy_tls_and_timeouts() {
    let c = cfg(&[
        ("proxy_address", "proxy.example.com"),
        ("proxy_port", "3128"),
        ("proxy_username", "o'neil"),
        ("proxy_password", "topsecret"),
        ("verify_certificate", "0"),
        ("ca_file", "/etc/pki/corp ca.pem"),
        ("connection_timeout", "2.5"),
        (
            "http_server_url",
            "https://events.eu.pagerduty.com/v2/enqueue",
        ),
    ]);
    let line = CurlCommand::new(&c.http).line(&event(), &c.routing_key);
    assert!(
        line.starts_with(
            "curl -sS -X POST --connect-timeout 2.5 --max-time 2.5 \
             --proxy 'http://proxy.example.com:3128' --proxy-user 'o'\\''neil:****' -k \
             --cacert '/etc/pki/corp ca.pem' -H 'Content-Type: application/json' -A "
        ),
        "{line}"
    );
    assert!(line.contains(" 'https://events.eu.pagerduty.com/v2/enqueue' --data-binary '"));
    assert!(!line.contains("topsecret") && !line.contains(KEY), "{line}");

    // a proxy user without a password; a legacy proxy string with credentials
    let c = cfg(&[("http_proxy_string", "socks5://u:pw%40x@10.0.0.1:1080")]);
    let line = CurlCommand::new(&c.http).line(&event(), &c.routing_key);
    assert!(
        line.contains("--proxy 'socks5://10.0.0.1:1080' --proxy-user 'u:****' -H"),
        "{line}"
    );
    assert!(!line.contains("pw"), "{line}");
    let c = cfg(&[("http_proxy_string", "http://u@p:3128")]);
    let line = CurlCommand::new(&c.http).line(&event(), &c.routing_key);
    assert!(line.contains("--proxy-user 'u:' -H"), "{line}");
}

#[test]
fn quoting() {
    assert_eq!(quote(""), "''");
    assert_eq!(quote("a b"), "'a b'");
    assert_eq!(quote("it's"), r"'it'\''s'");
}
