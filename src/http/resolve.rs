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
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use ureq::Timeout;
    use ureq::unversioned::transport::time::Duration as UreqDuration;

    /// A name lookup that counts its calls and answers 192.0.2.1 (or fails): no network.
    #[derive(Debug, Default)]
    struct Counted {
        calls: AtomicUsize,
        fail: AtomicBool,
    }

    impl Resolver for Counted {
        fn resolve(
            &self,
            uri: &Uri,
            _: &Config,
            _: NextTimeout,
        ) -> Result<ResolvedSocketAddrs, ureq::Error> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Err(ureq::Error::HostNotFound);
            }
            let port = host_and_port(uri)
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .to_string();
            let mut addrs = self.empty();
            addrs.push(format!("192.0.2.1:{port}").parse().unwrap());
            Ok(addrs)
        }
    }

    fn resolve(r: &CachingResolver<Counted>, url: &str) -> Result<Vec<SocketAddr>, ureq::Error> {
        let uri: Uri = url.parse().unwrap();
        let timeout = NextTimeout {
            after: UreqDuration::NotHappening,
            reason: Timeout::Global,
            per_read: None,
            per_write: None,
        };
        r.resolve(&uri, &Config::default(), timeout)
            .map(|a| a.to_vec())
    }

    fn calls(r: &CachingResolver<Counted>) -> usize {
        r.lookup.calls.load(Ordering::SeqCst)
    }

    #[test]
    fn ip_literals_are_answered_without_a_lookup_or_a_cache_entry() {
        let r = CachingResolver::<Counted>::default();
        assert_eq!(
            resolve(&r, "http://127.0.0.1:8080/v2/enqueue").unwrap(),
            vec!["127.0.0.1:8080".parse().unwrap()]
        );
        assert_eq!(
            resolve(&r, "https://[::1]/v2/enqueue").unwrap(),
            vec!["[::1]:443".parse().unwrap()]
        );
        assert_eq!(
            resolve(&r, "http://10.1.2.3/").unwrap(),
            vec!["10.1.2.3:80".parse().unwrap()]
        );
        assert_eq!(calls(&r), 0);
        assert!(r.names.lock().unwrap().entries.is_empty());
    }

    #[test]
    fn a_host_name_is_looked_up_once_then_kept() {
        let r = CachingResolver::<Counted>::default();
        let want: Vec<SocketAddr> = vec!["192.0.2.1:443".parse().unwrap()];
        for _ in 0..5 {
            assert_eq!(
                resolve(&r, "https://events.pagerduty.com/v2/enqueue").unwrap(),
                want
            );
        }
        assert_eq!(calls(&r), 1);
        // another port is another entry
        resolve(&r, "http://events.pagerduty.com:8080/x").unwrap();
        assert_eq!(calls(&r), 2);
    }

    #[test]
    fn a_failed_lookup_is_not_kept() {
        let r = CachingResolver::<Counted>::default();
        r.lookup.fail.store(true, Ordering::SeqCst);
        for n in 1..=3 {
            assert!(resolve(&r, "https://events.pagerduty.com/v2/enqueue").is_err());
            assert_eq!(calls(&r), n);
        }
        assert!(r.names.lock().unwrap().entries.is_empty());
        r.lookup.fail.store(false, Ordering::SeqCst);
        assert!(resolve(&r, "https://events.pagerduty.com/v2/enqueue").is_ok());
        assert_eq!(calls(&r), 4);
    }

    #[test]
    fn entries_expire_after_the_ttl_and_the_cache_stays_bounded() {
        let t0 = Instant::now();
        let mut c = TtlCache::default();
        c.insert("a:1".to_string(), t0, 1);
        assert_eq!(c.fresh("a:1", t0), Some(1));
        assert_eq!(c.fresh("a:1", t0 + TTL - Duration::from_millis(1)), Some(1));
        assert_eq!(c.fresh("a:1", t0 + TTL), None);
        assert_eq!(c.fresh("b:1", t0), None);
        c.insert("a:1".to_string(), t0 + TTL, 2);
        assert_eq!(c.fresh("a:1", t0 + TTL), Some(2));
        for i in 0..3 * MAX_NAMES {
            c.insert(format!("h{i}:1"), t0, i);
            assert!(c.entries.len() <= MAX_NAMES);
        }
    }
}
