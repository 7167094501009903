//! `log_curl_commands`: each request as a ready-to-run `curl` command line, with the routing key and the proxy password masked.
//!
//! The Lua library (`sc_logger:log_curl_command`) logs, as a notice, `curl` with the proxy,
//! `-k` without certificate verification, the method, the headers, the URL and the body in
//! single quotes. Here the same, with what our requests also carry (timeouts, the user agent,
//! `ca_file`), every argument quoted for a POSIX shell (a `'` in the body does not end the
//! argument, as it did there), and no secret: the routing key in the body is masked as
//! everywhere else ([`crate::config::Secret::masked`]: all but its last 4 characters
//! replaced by `*`) and a proxy password is `****` (the library wrote both in clear). Put
//! the real key in place of the masked one and the command posts the same JSON. A proxy
//! taken from the environment (`HTTPS_PROXY`...) is not written: curl reads the same
//! variables.

use std::time::Duration;

use crate::config::{Config, Secret};
use crate::payload::{self, Outgoing};

/// Where a proxy password is written: never its value, nor its length.
const MASKED_PASSWORD: &str = "****";

/// The command line of this output's requests, up to their body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CurlCommand {
    /// `curl` and every option, the URL last.
    prefix: String,
}

impl CurlCommand {
    /// The options every request of `cfg` is sent with.
    pub(crate) fn new(cfg: &Config) -> CurlCommand {
        let connect = cfg.timeout.min(crate::http::send::CONNECT_TIMEOUT);
        let mut words = vec![
            "curl".to_string(),
            "-sS".to_string(),
            "-X".to_string(),
            "POST".to_string(),
            "--connect-timeout".to_string(),
            seconds(connect),
            "--max-time".to_string(),
            seconds(cfg.timeout),
        ];
        if let Some(p) = &cfg.proxy {
            words.extend(["--proxy".to_string(), quote(&p.url)]);
            if let Some(user) = &p.username {
                let password = p.password.as_ref().map_or("", |_| MASKED_PASSWORD);
                words.extend([
                    "--proxy-user".to_string(),
                    quote(&format!("{user}:{password}")),
                ]);
            }
        }
        if !cfg.verify_certificate {
            words.push("-k".to_string());
        }
        if let Some(ca) = &cfg.ca_file {
            words.extend(["--cacert".to_string(), quote(&ca.display().to_string())]);
        }
        words.extend([
            "-H".to_string(),
            quote("Content-Type: application/json"),
            "-A".to_string(),
            quote(crate::http::send::USER_AGENT),
            quote(&cfg.endpoint),
        ]);
        CurlCommand {
            prefix: words.join(" "),
        }
    }

    /// The command that posts `out` as it is sent, its routing key `key` masked.
    pub(crate) fn line(&self, out: &Outgoing, key: &Secret) -> String {
        format!(
            "{} --data-binary {}",
            self.prefix,
            quote(&payload::with_masked_key(out, key))
        )
    }
}

/// Seconds as curl reads them (`10`, `2.5`).
fn seconds(d: Duration) -> String {
    d.as_secs_f64().to_string()
}

/// `s` as one word of a POSIX shell: in single quotes, a `'` written `'\''`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ParamValue;
    use crate::payload::Action;

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
            severity: crate::config::Severity::Critical,
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
        let line = CurlCommand::new(&c).line(&out, &c.routing_key);
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
        let line = CurlCommand::new(&c).line(&event(), &c.routing_key);
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
        let line = CurlCommand::new(&c).line(&event(), &c.routing_key);
        assert!(
            line.contains("--proxy 'socks5://10.0.0.1:1080' --proxy-user 'u:****' -H"),
            "{line}"
        );
        assert!(!line.contains("pw"), "{line}");
        let c = cfg(&[("http_proxy_string", "http://u@p:3128")]);
        let line = CurlCommand::new(&c).line(&event(), &c.routing_key);
        assert!(line.contains("--proxy-user 'u:' -H"), "{line}");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
