//! One HTTP request to the Events API: the keep-alive agent (timeouts, proxy, TLS) and its outcome.

use std::time::Duration;

use std::sync::Arc;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, parse_pem};
use ureq::{Agent, Proxy as UreqProxy, ProxyProtocol};

use crate::config::{Config, Proxy};
use crate::retry::{self, Outcome};

/// Where the system's certificate authorities are (Debian, then Enterprise Linux).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// Largest answer body read from PagerDuty (its answers are a few hundred bytes).
const MAX_ANSWER: u64 = 64 * 1024;

/// Sends encoded events to one endpoint over kept-alive connections.
#[derive(Clone)]
pub struct Sender {
    agent: Agent,
    endpoint: String,
}

impl Sender {
    /// Builds the HTTP agent. `connections` is how many requests may run at once.
    /// The error names the parameter at fault and never holds a secret.
    pub fn new(cfg: &Config, connections: usize) -> Result<Sender, String> {
        let proxy = match &cfg.proxy {
            Some(p) => Some(ureq_proxy(p)?),
            None => UreqProxy::try_from_env(),
        };
        let connect = cfg.timeout.min(Duration::from_secs(10));
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(cfg.timeout))
            .timeout_connect(Some(connect))
            .proxy(proxy)
            .tls_config(tls_config(cfg)?)
            .max_idle_connections(connections.max(1))
            .max_idle_connections_per_host(connections.max(1))
            .max_idle_age(Duration::from_secs(55))
            .user_agent(concat!("centreon-pagerduty/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Sender {
            agent,
            endpoint: cfg.endpoint.clone(),
        })
    }

    /// POSTs one JSON body and classifies the answer. Never panics; errors carry no secret
    /// (the body, which holds the routing key, is never part of an error).
    pub fn send(&self, body: &[u8]) -> Outcome {
        let result = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "application/json")
            .send(body);
        match result {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let text = resp
                    .body_mut()
                    .with_config()
                    .limit(MAX_ANSWER)
                    .read_to_string()
                    .unwrap_or_default();
                retry::classify(status, &text, retry_after.as_deref())
            }
            Err(e) => Outcome::Failed(describe(&e)),
        }
    }

    /// Aborts requests in flight (they fail at once) so that sender threads can be joined.
    pub fn abort(&self) {
        self.agent.clone().shutdown();
    }
}

/// A network error in words, without anything secret.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timeout ({t:?})"),
        ureq::Error::HostNotFound => "host not found (check http_server_url and DNS)".into(),
        ureq::Error::Io(io) => format!("network error: {io}"),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Tls(m) => format!("TLS error: {m}"),
        other => format!("{other}"),
    }
}

fn ureq_proxy(p: &Proxy) -> Result<UreqProxy, String> {
    let (scheme, rest) = p
        .url
        .split_once("://")
        .ok_or_else(|| "parameter 'proxy': expected scheme://host:port".to_string())?;
    let protocol = match scheme.to_ascii_lowercase().as_str() {
        "http" => ProxyProtocol::Http,
        "https" => ProxyProtocol::Https,
        "socks4" => ProxyProtocol::Socks4,
        "socks4a" => ProxyProtocol::Socks4A,
        "socks5" => ProxyProtocol::Socks5,
        "socks5h" => ProxyProtocol::Socks5h,
        other => {
            return Err(format!(
                "parameter 'proxy_protocol': unsupported protocol '{other}'"
            ));
        }
    };
    let hostport = rest.trim_end_matches('/');
    let mut b = UreqProxy::builder(protocol);
    match hostport.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || hostport.starts_with('[') => {
            let port: u16 = port
                .parse()
                .map_err(|_| "parameter 'proxy_port': expected a port number".to_string())?;
            b = b.host(host).port(port);
        }
        _ => b = b.host(hostport),
    }
    if let Some(u) = &p.username {
        b = b.username(u);
        if let Some(pw) = &p.password {
            b = b.password(pw.expose());
        }
    }
    b.build()
        .map_err(|_| "parameter 'proxy': not a valid proxy address".to_string())
}

/// TLS settings: verification (unless `verify_certificate = 0`) against Mozilla's roots, or,
/// with `ca_file`, against the system's bundle plus the authorities of that file.
fn tls_config(cfg: &Config) -> Result<TlsConfig, String> {
    let mut tls = TlsConfig::builder().disable_verification(!cfg.verify_certificate);
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("parameter 'ca_file': cannot read {}: {e}", path.display()))?;
        let own = pem_certificates(&pem);
        if own.is_empty() {
            return Err(format!(
                "parameter 'ca_file': no PEM certificate (-----BEGIN CERTIFICATE-----) in {}",
                path.display()
            ));
        }
        let mut roots: Vec<Certificate<'static>> = SYSTEM_CA_BUNDLES
            .iter()
            .find_map(|b| std::fs::read(b).ok())
            .map(|pem| pem_certificates(&pem))
            .unwrap_or_default();
        roots.extend(own);
        tls = tls.root_certs(RootCerts::Specific(Arc::new(roots)));
    }
    Ok(tls.build())
}

/// The certificates of a PEM bundle (other items and unreadable ones skipped).
fn pem_certificates(pem: &[u8]) -> Vec<Certificate<'static>> {
    parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}
