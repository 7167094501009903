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
