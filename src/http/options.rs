//! The HTTP agent's options: endpoint, proxy, timeout, TLS, `curl` lines; their parameters.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::curl::CurlCommand;
use crate::params::{
    ConfigError, Given, Param, ParamReader, ParamValue, Secret, http_url, parse_url, percent_decode,
};

/// How requests reach PagerDuty.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    /// `http_server_url`: the Events API endpoint.
    pub endpoint: String,
    /// `http_proxy_string` or `proxy_address`/`proxy_port`/`proxy_protocol`/`proxy_username`/`proxy_password`.
    /// `None` means "use the standard environment variables, if set".
    pub proxy: Option<Proxy>,
    /// `connection_timeout` / `http_timeout`: overall time for one request.
    pub timeout: Duration,
    /// `verify_certificate`.
    pub verify_certificate: bool,
    /// `ca_file`: PEM certificate authorities trusted in addition to the system's bundle
    /// (corporate proxies that inspect TLS).
    pub ca_file: Option<PathBuf>,
    /// `log_curl_commands`: 1 = each request is also logged as a ready-to-run `curl` command
    /// (routing key and proxy password masked).
    pub log_curl_commands: bool,
}

const DEFAULT_ENDPOINT: &str = "https://events.pagerduty.com/v2/enqueue";

const ENDPOINT: Param = Param::new(
    "http_server_url",
    "Events API endpoint (default https://events.pagerduty.com/v2/enqueue; EU: https://events.eu.pagerduty.com/v2/enqueue)",
);
const PROXY_STRING: Param = Param::new(
    "http_proxy_string",
    "proxy URL, e.g. http://proxy:3128 or http://user:password@proxy:3128 (legacy; or use proxy_address and proxy_port)",
)
.secret();
const PROXY_ADDRESS: Param = Param::new(
    "proxy_address",
    "proxy host name or address (with proxy_port)",
);
const PROXY_PORT: Param = Param::new("proxy_port", "proxy port, 1 to 65535");
const PROXY_PROTOCOL: Param = Param::new(
    "proxy_protocol",
    "proxy protocol: http (default), https or socks5",
);
const PROXY_USERNAME: Param = Param::new("proxy_username", "proxy user name");
const PROXY_PASSWORD: Param = Param::new("proxy_password", "proxy password").secret();
const TIMEOUT: Param = Param::seconds(
    "connection_timeout",
    300.0,
    10,
    "seconds one request to PagerDuty may take, more than 0 and at most 300 (default 10)",
)
.legacy("http_timeout");
const VERIFY_CERTIFICATE: Param = Param::flag(
    "verify_certificate",
    true,
    "1 (default) = verify the TLS certificate of PagerDuty and of an https proxy; 0 = do not",
);
const CA_FILE: Param = Param::text(
    "ca_file",
    None,
    "PEM file of certificate authorities trusted in addition to the system's bundle (a proxy that inspects TLS)",
);
const LOG_CURL_COMMANDS: Param = Param::flag(
    "log_curl_commands",
    false,
    "1 = each request to PagerDuty is also logged (log level 1) as a ready-to-run curl command; the routing key and the proxy password are masked (default 0)",
);

/// The HTTP agent's parameters.
pub(crate) const PARAMS: &[Param] = &[
    ENDPOINT,
    PROXY_STRING,
    PROXY_ADDRESS,
    PROXY_PORT,
    PROXY_PROTOCOL,
    PROXY_USERNAME,
    PROXY_PASSWORD,
    TIMEOUT,
    VERIFY_CERTIFICATE,
    CA_FILE,
    LOG_CURL_COMMANDS,
];

impl HttpOptions {
    /// Reads the HTTP agent's parameters.
    pub(crate) fn read(r: &mut ParamReader) -> Result<HttpOptions, ConfigError> {
        let endpoint = match r.take(&ENDPOINT) {
            None => DEFAULT_ENDPOINT.to_string(),
            Some(e) => http_url(&e)?,
        };
        let proxy = read_proxy(r)?;
        let timeout = r.seconds(&TIMEOUT)?;
        let verify_certificate = r.flag(&VERIFY_CERTIFICATE)?;
        let ca_file = r.text(&CA_FILE)?.map(PathBuf::from);
        let log_curl_commands = r.flag(&LOG_CURL_COMMANDS)?;
        Ok(HttpOptions {
            endpoint,
            proxy,
            timeout,
            verify_certificate,
            ca_file,
            log_curl_commands,
        })
    }
}

impl HttpOptions {
    /// Each request as a `curl` command line, when `log_curl_commands` asks for it.
    pub(crate) fn curl_command(&self) -> Option<CurlCommand> {
        self.log_curl_commands.then(|| CurlCommand::new(self))
    }
}

/// The proxy parameters as written.
struct ProxyParams {
    legacy: Option<Given>,
    address: Option<Given>,
    port: Option<Given>,
    protocol: Option<Given>,
    username: Option<Given>,
    password: Option<Given>,
}

/// Both proxy styles; `None` when no proxy is configured.
fn read_proxy(r: &mut ParamReader) -> Result<Option<Proxy>, ConfigError> {
    let p = ProxyParams {
        legacy: r.take(&PROXY_STRING),
        address: r.take(&PROXY_ADDRESS),
        port: r.take(&PROXY_PORT),
        protocol: r.take(&PROXY_PROTOCOL),
        username: r.take(&PROXY_USERNAME),
        password: r.take(&PROXY_PASSWORD),
    };
    if let Some(l) = &p.legacy {
        let certified = [&p.address, &p.port, &p.username, &p.password];
        if let Some(other) = certified.into_iter().flatten().next() {
            return Err(l.conflict(
                other,
                format!(
                    "cannot be used together with '{}': set either http_proxy_string or \
                     proxy_address/proxy_port/proxy_username/proxy_password",
                    other.written
                ),
            ));
        }
        if let Some(p) = &p.protocol {
            r.warn(format!(
                "parameter '{}' is ignored: the scheme of 'http_proxy_string' is used",
                p.written
            ));
        }
        return legacy_proxy(l).map(Some);
    }
    if p.address.is_none() {
        if let Some(e) = p.port.iter().chain(&p.username).chain(&p.password).next() {
            return Err(e.err("is set but 'proxy_address' is not"));
        }
        if let Some(p) = &p.protocol {
            r.warn(format!(
                "parameter '{}' has no effect without 'proxy_address'",
                p.written
            ));
        }
        return Ok(None);
    }
    certified_proxy(p).map(Some)
}

/// `proxy_address` and its companions.
fn certified_proxy(p: ProxyParams) -> Result<Proxy, ConfigError> {
    let Some(address) = &p.address else {
        unreachable!("read_proxy checks proxy_address")
    };
    let protocol = match &p.protocol {
        None => None,
        Some(e) => {
            let s = e.text()?.to_ascii_lowercase();
            if !proxy_scheme_ok(&s) {
                return Err(e.err(format!("expected {PROXY_SCHEMES}, got {}", e.shown())));
            }
            Some((s, e))
        }
    };
    let text = address.text()?;
    let bad = |why: &str| {
        address.err(format!(
            "expected a proxy host name or address ({why}), got {}",
            address.shown()
        ))
    };
    // Like curl, the address may carry a scheme and a port.
    let with_scheme = if text.contains("://") {
        text.clone()
    } else {
        format!(
            "{}://{text}",
            protocol.as_ref().map_or("http", |p| p.0.as_str())
        )
    };
    let url = parse_url(&with_scheme).map_err(bad)?;
    if url.userinfo.is_some() {
        return Err(
            address.err("must not contain credentials: use proxy_username and proxy_password")
        );
    }
    if !url.rest.is_empty() && url.rest != "/" {
        return Err(bad("a proxy address has no path"));
    }
    if !proxy_scheme_ok(&url.scheme) {
        return Err(bad(&format!("the scheme must be {PROXY_SCHEMES}")));
    }
    if let Some((s, e)) = &protocol
        && *s != url.scheme
    {
        return Err(e.conflict(
            address,
            format!("conflicts with the scheme written in '{}'", address.written),
        ));
    }
    let port = match (&p.port, url.port) {
        (Some(e), Some(_)) => {
            return Err(e.conflict(
                address,
                format!(
                    "the port is also written in '{}': set it in one place",
                    address.written
                ),
            ));
        }
        (Some(e), None) => e.integer(1, 65535)? as u16,
        (None, Some(port)) => port,
        (None, None) => {
            return Err(ConfigError::missing(
                PROXY_PORT.name,
                Some(&address.written),
                format!("is required when '{}' is set", address.written),
            ));
        }
    };
    let username = p.username.as_ref().map(|e| e.text()).transpose()?;
    let password = match &p.password {
        None => None,
        Some(e) => {
            if username.is_none() {
                return Err(e.err("is set but 'proxy_username' is not"));
            }
            // Passwords are kept exactly as written (not trimmed).
            Some(Secret::new(match &e.value {
                ParamValue::Str(s) => s.clone(),
                _ => e.text()?,
            }))
        }
    };
    Ok(Proxy {
        url: proxy_url(&url.scheme, url.host, port),
        username,
        password,
    })
}

/// An HTTP(S) proxy.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// `scheme://host:port`, without credentials.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "****"))
            .finish()
    }
}

const PROXY_SCHEMES: &str = "http, https or socks5";

fn proxy_scheme_ok(s: &str) -> bool {
    matches!(s, "http" | "https" | "socks5")
}

/// Port curl used when a proxy string has none (1080, or 443 for an https proxy).
fn default_proxy_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 1080 }
}

fn proxy_url(scheme: &str, host: &str, port: u16) -> String {
    format!("{scheme}://{host}:{port}")
}

/// `http_proxy_string`: `[scheme://][user[:password]@]host[:port][/]`. Its value may hold a
/// password: messages never show it.
fn legacy_proxy(e: &Given) -> Result<Proxy, ConfigError> {
    let raw = e.text()?;
    let bad = |why: &str| {
        e.err(format!(
            "expected a proxy URL like http://proxy:3128 or http://user:password@proxy:3128 ({why})"
        ))
    };
    let with_scheme = if raw.contains("://") {
        raw.clone()
    } else {
        format!("http://{raw}")
    };
    let url = parse_url(&with_scheme).map_err(bad)?;
    if !proxy_scheme_ok(&url.scheme) {
        return Err(bad(&format!("the scheme must be {PROXY_SCHEMES}")));
    }
    if !url.rest.is_empty() && url.rest != "/" {
        return Err(bad("a proxy URL has no path"));
    }
    let (username, password) = match url.userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = match u.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (u, None),
            };
            let user = percent_decode(user);
            if user.is_empty() {
                return Err(bad("empty user name"));
            }
            let pass = pass
                .filter(|p| !p.is_empty())
                .map(|p| Secret::new(percent_decode(p)));
            (Some(user), pass)
        }
    };
    let port = url.port.unwrap_or_else(|| default_proxy_port(&url.scheme));
    Ok(Proxy {
        url: proxy_url(&url.scheme, url.host, port),
        username,
        password,
    })
}
