//! Name resolution for the HTTP agent: IP literals as they are, host names looked up once per [`TTL`], not once per request.
//!
//! ureq resolves the endpoint before every request, even one that goes out on a kept-alive
//! connection, and with a timeout set its default resolver does it on a new thread: one
//! thread started and ended, and one DNS lookup, for every event sent. Starting and ending a
//! thread changes the process's memory map, and the kernel then interrupts every CPU that
//! runs one of the process's threads, Broker's own included (TLB shootdowns). This resolver
//! answers IP literals (the local stand-in, a proxy given by address) at once and keeps the
//! addresses of a host name for [`TTL`]; a lookup that fails is not kept, so the next request
//! tries again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long the addresses of a host name are used before it is looked up again (connections
/// already open stay on their address until they are closed, at most 55 s idle).
pub(crate) const TTL: Duration = Duration::from_secs(30);

/// Most names kept at once (an endpoint and a proxy in practice); beyond it the cache starts over.
const MAX_NAMES: usize = 16;

/// The agent's resolver: see the module documentation. `R` looks host names up (ureq's own
/// resolver, a thread per lookup with the request's timeout).
#[derive(Debug, Default)]
pub(crate) struct CachingResolver<R = DefaultResolver> {
    lookup: R,
    names: Mutex<TtlCache<ResolvedSocketAddrs>>,
}

impl<R: Resolver> Resolver for CachingResolver<R> {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some(key) = host_and_port(uri) else {
            // not a full URL: the default resolver reports it
            return self.lookup.resolve(uri, config, timeout);
        };
        if let Ok(addr) = key.parse::<SocketAddr>() {
            let mut addrs = self.empty();
            addrs.push(addr);
            return Ok(addrs);
        }
        let now = Instant::now();
        if let Some(addrs) = self.names.lock().ok().and_then(|c| c.fresh(&key, now)) {
            return Ok(addrs);
        }
        // the lookup runs without the lock: another request may look the name up meanwhile
        let addrs = self.lookup.resolve(uri, config, timeout)?;
        if let Ok(mut c) = self.names.lock() {
            c.insert(key, now, addrs.clone());
        }
        Ok(addrs)
    }
}

/// `host:port` of a full URL (`[v6]:port` for an IPv6 literal), the port defaulting to the
/// scheme's.
fn host_and_port(uri: &Uri) -> Option<String> {
    DefaultResolver::host_and_port(uri.scheme()?, uri.authority()?)
}

/// Values kept for [`TTL`] from when they were looked up.
#[derive(Debug)]
struct TtlCache<V> {
    entries: HashMap<String, (Instant, V)>,
}

impl<V> Default for TtlCache<V> {
    fn default() -> Self {
        TtlCache {
            entries: HashMap::new(),
        }
    }
}

impl<V: Clone> TtlCache<V> {
    /// The value of `key` when it was looked up less than [`TTL`] before `now`.
    fn fresh(&self, key: &str, now: Instant) -> Option<V> {
        let (at, v) = self.entries.get(key)?;
        (now.saturating_duration_since(*at) < TTL).then(|| v.clone())
    }

    fn insert(&mut self, key: String, at: Instant, v: V) {
        if self.entries.len() >= MAX_NAMES && !self.entries.contains_key(&key) {
            self.entries.clear();
        }
        self.entries.insert(key, (at, v));
    }
}

#[cfg(test)]
mod tests;
