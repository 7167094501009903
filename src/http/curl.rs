//! `log_curl_commands`: each request as a ready-to-run `curl` command line, with the routing key and the proxy password masked.
//!
//! The Lua library (`sc_logger:log_curl_command`) logs, as a notice, `curl` with the proxy,
//! `-k` without certificate verification, the method, the headers, the URL and the body in
//! single quotes. Here the same, with what our requests also carry (timeouts, the user agent,
//! `ca_file`), every argument quoted for a POSIX shell (a `'` in the body does not end the
//! argument, as it did there), and no secret: the routing key in the body is masked as
//! everywhere else ([`crate::params::Secret::masked`]: all but its last 4 characters
//! replaced by `*`) and a proxy password is `****` (the library wrote both in clear). Put
//! the real key in place of the masked one and the command posts the same JSON. A proxy
//! taken from the environment (`HTTPS_PROXY`...) is not written: curl reads the same
//! variables.

use std::time::Duration;

use crate::http::options::HttpOptions;
use crate::params::Secret;
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
    pub(crate) fn new(cfg: &HttpOptions) -> CurlCommand {
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
mod tests;
