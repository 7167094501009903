//! One HTTP request to the Events API: the keep-alive agent (timeouts, proxy, TLS) and its outcome.

use std::time::Duration;

use std::sync::Arc;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, parse_pem};
use ureq::unversioned::transport::DefaultConnector;
use ureq::{Agent, Proxy as UreqProxy, ProxyProtocol};

use crate::http::options::{HttpOptions, Proxy};
use crate::http::resolve::CachingResolver;
use crate::http::verdict::{self, Verdict};
use crate::params::Secret;

/// Where the system's certificate authorities are (Debian, then Enterprise Linux).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// Largest answer body read from PagerDuty (its answers are a few hundred bytes).
const MAX_ANSWER: u64 = 64 * 1024;

/// Each connection's read and write buffers (ureq's default is 128 KiB each, zeroed when the
/// connection opens: 4 MiB resident for 16 lanes). PagerDuty's answer headers are under 2 KiB;
/// a larger request body is written through the buffer in pieces, so 16 KiB holds any answer
/// header and costs one write per 16 KiB of an event (at most 512 KB).
pub(crate) const CONNECTION_BUFFER: usize = 16 * 1024;

/// The longest a connection may take to open (less when the whole request may take less).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `User-Agent` of every request.
pub(crate) const USER_AGENT: &str = concat!("centreon-pagerduty/", env!("CARGO_PKG_VERSION"));

/// The proxy variables of the environment, in the order ureq reads them (the first one set
/// is used, even for an `https://` endpoint).
pub(crate) const PROXY_ENV: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

/// Sends encoded events to one endpoint over kept-alive connections.
#[derive(Clone)]
pub(crate) struct Sender {
    agent: Agent,
    endpoint: String,
    /// A proxy is used (configured, or from the environment).
    proxied: bool,
    mask: Mask,
}

/// The secrets a server's answer may echo (a WAF's or a proxy's error page, a 400 quoting
/// the request): the routing key and the proxy's password, also as the `Proxy-Authorization`
/// token that carries it. Each secret with what is shown instead.
#[derive(Clone)]
struct Mask(Vec<(String, String)>);

impl Mask {
    fn new(key: &Secret, proxy: Option<&UreqProxy>) -> Mask {
        use base64::Engine;
        let mut secrets = vec![(key.expose().to_string(), key.masked())];
        if let Some(password) = proxy.and_then(UreqProxy::password) {
            let user = proxy.and_then(UreqProxy::username).unwrap_or_default();
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            secrets.push((token, "****".to_string()));
            secrets.push((password.to_string(), "****".to_string()));
        }
        secrets.retain(|(secret, _)| !secret.is_empty());
        Mask(secrets)
    }

    /// `text` with every secret masked: every text taken from a server's answer (body,
    /// `Location`, error) goes through here before anything else reads it.
    fn apply(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (secret, shown) in &self.0 {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), shown);
            }
        }
        text
    }
}

/// What one request gave, before [`verdict::classify`] judges it (for diagnostics such as
/// `pagerduty-event test`; [`Sender::send`] classifies it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// An HTTP answer (from PagerDuty, or from a proxy on the way).
    /// Texts taken from the answer have the routing key and proxy password masked.
    Answered {
        status: u16,
        /// The start of the answer's body (at most 64 KiB).
        body: String,
        retry_after: Option<String>,
        /// Where a redirect points (never followed).
        location: Option<String>,
    },
    /// No HTTP answer.
    Failed {
        kind: Failure,
        /// The error in words, without anything secret.
        detail: String,
    },
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The endpoint's (or the proxy's) host name does not resolve.
    HostNotFound,
    /// Nothing accepts connections at that address and port.
    Refused,
    /// No answer in time (a firewall that drops packets, or a slow network).
    Timeout,
    /// The TLS handshake failed (an untrusted certificate, a proxy intercepting TLS...).
    Tls,
    /// The proxy refused or failed the tunnel.
    Proxy,
    /// Anything else (connection reset, closed...).
    Other,
}

/// Why the HTTP agent cannot be built: the parameter (or environment variable) at fault, never
/// a secret.
#[derive(Debug)]
pub(crate) enum AgentError {
    /// `proxy` has no `scheme://`.
    ProxyUrl,
    /// `proxy_protocol` names a protocol the agent does not speak.
    ProxyProtocol(String),
    /// `proxy_port` is not a port number.
    ProxyPort,
    /// `proxy` is not a valid proxy address.
    ProxyAddress,
    /// This proxy variable of the environment ([`PROXY_ENV`]) is not a proxy URL (its value is
    /// not kept: it may hold a password).
    ProxyEnv(&'static str),
    /// `ca_file` cannot be read.
    CaFileUnreadable(std::path::PathBuf, std::io::Error),
    /// `ca_file` holds no PEM certificate.
    CaFileEmpty(std::path::PathBuf),
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentError::ProxyUrl => f.write_str("parameter 'proxy': expected scheme://host:port"),
            AgentError::ProxyProtocol(p) => {
                write!(f, "parameter 'proxy_protocol': unsupported protocol '{p}'")
            }
            AgentError::ProxyPort => f.write_str("parameter 'proxy_port': expected a port number"),
            AgentError::ProxyAddress => f.write_str("parameter 'proxy': not a valid proxy address"),
            AgentError::ProxyEnv(name) => write!(
                f,
                "environment variable {name}: not a proxy URL (expected [http|https|socks4|socks4a|socks5]://[user:password@]host[:port]; its value is not shown, it may hold a password)"
            ),
            AgentError::CaFileUnreadable(path, e) => {
                write!(
                    f,
                    "parameter 'ca_file': cannot read {}: {e}",
                    path.display()
                )
            }
            AgentError::CaFileEmpty(path) => write!(
                f,
                "parameter 'ca_file': no PEM certificate (-----BEGIN CERTIFICATE-----) in {}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for AgentError {}

impl Sender {
    /// Builds the HTTP agent. `connections` is how many requests may run at once.
    /// The error names the parameter at fault and never holds a secret.
    pub(crate) fn new(
        cfg: &HttpOptions,
        routing_key: &Secret,
        connections: usize,
    ) -> Result<Sender, AgentError> {
        let proxy = match &cfg.proxy {
            Some(p) => Some(ureq_proxy(p)?),
            None => proxy_from_env()?,
        };
        let proxied = proxy.is_some();
        let mask = Mask::new(routing_key, proxy.as_ref());
        let connect = cfg.timeout.min(CONNECT_TIMEOUT);
        let config = Agent::config_builder()
            .http_status_as_error(false)
            // a redirect is not PagerDuty's answer: followed, it turns the POST into a GET
            // without body whose 200 would pass for delivery (verdict::classify judges it)
            .max_redirects(0)
            .timeout_global(Some(cfg.timeout))
            .timeout_connect(Some(connect))
            .proxy(proxy)
            .tls_config(tls_config(cfg)?)
            .max_idle_connections(connections.max(1))
            .max_idle_connections_per_host(connections.max(1))
            .max_idle_age(Duration::from_secs(55))
            .input_buffer_size(CONNECTION_BUFFER)
            .output_buffer_size(CONNECTION_BUFFER)
            .user_agent(USER_AGENT)
            .build();
        // no thread and no DNS lookup per request (crate::http::resolve)
        let agent = Agent::with_parts(
            config,
            DefaultConnector::default(),
            <CachingResolver>::default(),
        );
        Ok(Sender {
            agent,
            endpoint: cfg.endpoint.clone(),
            proxied,
            mask,
        })
    }

    /// POSTs one JSON body and classifies the answer. Never panics; errors carry no secret
    /// (the body, which holds the routing key, is never part of an error).
    pub(crate) fn send(&self, body: &[u8]) -> Verdict {
        match self.post(body) {
            Reply::Answered {
                status,
                body,
                retry_after,
                location,
            } => verdict::classify(status, &body, retry_after.as_deref(), location.as_deref()),
            Reply::Failed { detail, .. } => Verdict::Failed(detail),
        }
    }

    /// POSTs one JSON body and returns the answer as it came, secrets masked (redirects are
    /// not followed). Never panics; errors carry no secret.
    pub(crate) fn post(&self, body: &[u8]) -> Reply {
        let result = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "application/json")
            .send(body);
        match result {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let header = |name: &str| {
                    resp.headers()
                        .get(name)
                        .map(|v| self.mask.apply(&String::from_utf8_lossy(v.as_bytes())))
                };
                let retry_after = header("retry-after");
                let location = header("location");
                let body = resp
                    .body_mut()
                    .with_config()
                    .limit(MAX_ANSWER)
                    .lossy_utf8(true)
                    .read_to_string()
                    .unwrap_or_default();
                Reply::Answered {
                    status,
                    body: self.mask.apply(&body),
                    retry_after,
                    location,
                }
            }
            Err(e) => Reply::Failed {
                kind: failure(&e),
                detail: self.mask.apply(&describe(&e)),
            },
        }
    }

    /// The endpoint events are POSTed to.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// True when requests go through a proxy (configured, or from `HTTPS_PROXY` and the like).
    pub(crate) fn proxied(&self) -> bool {
        self.proxied
    }

    /// Aborts requests in flight (they fail at once) so that sender threads can be joined.
    pub(crate) fn abort(&self) {
        self.agent.clone().shutdown();
    }
}

/// The kind of a network error.
fn failure(e: &ureq::Error) -> Failure {
    use std::io::ErrorKind;
    match e {
        ureq::Error::HostNotFound => Failure::HostNotFound,
        ureq::Error::Timeout(_) => Failure::Timeout,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::TlsRequired => Failure::Tls,
        ureq::Error::ConnectProxyFailed(_) | ureq::Error::InvalidProxyUrl => Failure::Proxy,
        ureq::Error::ConnectionFailed => Failure::Refused,
        // the standard library's resolver error ("failed to lookup address information")
        ureq::Error::Io(io) if io.to_string().contains("lookup address") => Failure::HostNotFound,
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => Failure::Refused,
            ErrorKind::TimedOut | ErrorKind::WouldBlock => Failure::Timeout,
            // rustls reports handshake and certificate failures as invalid data
            ErrorKind::InvalidData => Failure::Tls,
            _ => Failure::Other,
        },
        _ => Failure::Other,
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

/// The proxy of the environment ([`PROXY_ENV`]): the first variable set and not empty. One
/// that is not a proxy URL is an error naming it, never showing its value (it may hold a
/// password), instead of going direct as if it were not set.
fn proxy_from_env() -> Result<Option<UreqProxy>, AgentError> {
    let Some((name, value)) = PROXY_ENV.iter().find_map(|name| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (*name, v))
    }) else {
        return Ok(None);
    };
    let invalid = || AgentError::ProxyEnv(name);
    // ureq takes a port that is not a number (or above 65535) for 80
    let parsed = UreqProxy::new(&value).map_err(|_| invalid())?;
    if parsed.host().is_empty() || !port_is_a_number(&value) {
        return Err(invalid());
    }
    // ureq reads the same variables in the same order, with NO_PROXY: the one just checked
    UreqProxy::try_from_env().map(Some).ok_or_else(invalid)
}

/// The port of `scheme://user:password@host:port/`, when one is written, is 1 to 65535.
fn port_is_a_number(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.rsplit_once(':') {
        // an IPv6 address without a port: [::1]
        Some((_, port)) if port.contains(']') => true,
        Some((_, port)) => port.parse::<u16>().is_ok_and(|n| n > 0),
        None => true,
    }
}

fn ureq_proxy(p: &Proxy) -> Result<UreqProxy, AgentError> {
    let (scheme, rest) = p.url.split_once("://").ok_or(AgentError::ProxyUrl)?;
    let protocol = match scheme.to_ascii_lowercase().as_str() {
        "http" => ProxyProtocol::Http,
        "https" => ProxyProtocol::Https,
        "socks4" => ProxyProtocol::Socks4,
        "socks4a" => ProxyProtocol::Socks4A,
        "socks5" => ProxyProtocol::Socks5,
        "socks5h" => ProxyProtocol::Socks5h,
        other => return Err(AgentError::ProxyProtocol(other.to_string())),
    };
    let hostport = rest.trim_end_matches('/');
    let mut b = UreqProxy::builder(protocol);
    match hostport.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || hostport.starts_with('[') => {
            let port: u16 = port.parse().map_err(|_| AgentError::ProxyPort)?;
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
    b.build().map_err(|_| AgentError::ProxyAddress)
}

/// TLS settings: verification (unless `verify_certificate = 0`) against Mozilla's roots, or,
/// with `ca_file`, against the system's bundle plus the authorities of that file.
fn tls_config(cfg: &HttpOptions) -> Result<TlsConfig, AgentError> {
    let mut tls = TlsConfig::builder().disable_verification(!cfg.verify_certificate);
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path).map_err(|e| AgentError::CaFileUnreadable(path.clone(), e))?;
        let own = pem_certificates(&pem);
        if own.is_empty() {
            return Err(AgentError::CaFileEmpty(path.clone()));
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

#[cfg(test)]
mod tests;
