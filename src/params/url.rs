//! URLs of parameters: endpoints, Centreon's base URL, proxies (no dependency; errors never
//! contain the URL).

use super::{ConfigError, Given};

/// The parts of an `scheme://[user[:password]@]host[:port][/rest]` URL.
pub(crate) struct Url<'a> {
    pub(crate) scheme: String,
    pub(crate) userinfo: Option<&'a str>,
    pub(crate) host: &'a str,
    pub(crate) port: Option<u16>,
    /// Path, query and fragment ("" when none).
    pub(crate) rest: &'a str,
}

/// A small URL parser (no dependency): enough to check endpoints and proxies.
/// The error never contains the URL.
pub(crate) fn parse_url(s: &str) -> Result<Url<'_>, &'static str> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a URL must not contain spaces");
    }
    let (scheme, after) = s.split_once("://").ok_or("expected scheme://host")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err("expected scheme://host");
    }
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = if hostport.starts_with('[') {
        let close = hostport.find(']').ok_or("unterminated IPv6 address")?;
        let (h, tail) = hostport.split_at(close + 1);
        if !h[1..h.len() - 1]
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            || h.len() < 3
        {
            return Err("invalid IPv6 address");
        }
        match tail {
            "" => (h, None),
            t => (h, Some(t.strip_prefix(':').ok_or("invalid port")?)),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if !host.starts_with('[')
        && (host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err("expected a host name");
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("invalid port (expected 1 to 65535)")?,
        ),
    };
    Ok(Url {
        scheme: scheme.to_ascii_lowercase(),
        userinfo,
        host,
        port,
        rest,
    })
}

/// An http(s) URL with a host and no credentials; returned trimmed.
pub(crate) fn http_url(e: &Given) -> Result<String, ConfigError> {
    let s = e.text()?;
    let bad = |why: &str| {
        e.err(format!(
            "expected an http:// or https:// URL with a host ({why}), got {}",
            e.shown()
        ))
    };
    let url = parse_url(&s).map_err(bad)?;
    if url.scheme != "http" && url.scheme != "https" {
        return Err(bad("unsupported scheme"));
    }
    if url.userinfo.is_some() {
        return Err(bad("credentials are not allowed in this URL"));
    }
    Ok(s)
}

/// Percent-decoding of the user information of a proxy URL.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
