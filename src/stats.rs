//! Statistics: counters shared by the connector's threads and the JSON file rewritten atomically at `stats_path`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde_json::{Value, json};

use crate::files;
use crate::params::{ConfigError, Param, ParamReader, Secret};
use crate::timefmt;

/// Counters of one connector (one routing key).
#[derive(Debug, Default)]
pub struct Counters {
    /// Events Broker handed to `write()` (status fast path included).
    pub seen: AtomicU64,
    /// Of those, statuses of objects that stay OK which the Lua bridge answered without
    /// calling the library (it remembers what the library last found OK and unchanged).
    pub answered_by_script: AtomicU64,
    /// Events that had something to send.
    pub relevant: AtomicU64,
    /// Rows written to the outbox.
    pub committed: AtomicU64,
    /// Transactions committed (one fsync each): many events share one in a burst.
    pub commits: AtomicU64,
    pub delivered: AtomicU64,
    /// Attempts that failed and were retried (5xx, network errors, timeouts).
    pub retried: AtomicU64,
    /// Of the retried attempts, those answered by something other than PagerDuty's Events
    /// API (a redirect, a 2xx without PagerDuty's answer): the URL or the proxy is wrong.
    pub misdirected: AtomicU64,
    pub rejected: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Pending events made unnecessary by a later one.
    pub merged: AtomicU64,
    /// Rows waiting in the outbox.
    pub pending: AtomicU64,
    /// The longest Broker's acknowledgement waited for a commit, in ms: from the first of
    /// the host's questions that found an event handed over not yet committed to the first
    /// that found everything committed (Broker keeps every event of that stretch queued).
    pub ack_wait_max_ms: AtomicU64,
    last_error: Mutex<Option<(String, i64)>>,
}

impl Counters {
    /// Records the last error (never holds a secret: callers pass PagerDuty's answer or an I/O error).
    pub fn set_error(&self, msg: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((msg, timefmt::now_unix()));
    }

    /// The statistics document. `held` counts events received but not yet stored;
    /// `oldest_ms` is the creation time of the oldest pending row.
    pub fn snapshot(&self, key: &Secret, held: u64, oldest_ms: Option<i64>) -> Value {
        let now = timefmt::now_unix();
        let last_error = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let per_key = json!({
            "events_seen": self.seen.load(Relaxed),
            "events_answered_by_script": self.answered_by_script.load(Relaxed),
            "events_relevant": self.relevant.load(Relaxed),
            "committed": self.committed.load(Relaxed),
            "commits": self.commits.load(Relaxed),
            "ack_wait_max_ms": self.ack_wait_max_ms.load(Relaxed),
            "delivered": self.delivered.load(Relaxed),
            "retried": self.retried.load(Relaxed),
            "misdirected": self.misdirected.load(Relaxed),
            "rejected": self.rejected.load(Relaxed),
            "rate_limited": self.rate_limited.load(Relaxed),
            "merged": self.merged.load(Relaxed),
            "pending": self.pending.load(Relaxed) + held,
            "oldest_pending_age_seconds": oldest_ms.map(|ms| (now - ms / 1000).max(0)),
            "last_error": last_error.as_ref().map(|(m, _)| m.clone()),
            "last_error_time": last_error.map(|(_, t)| timefmt::rfc3339_utc(t)),
        });
        json!({
            "version": crate::VERSION,
            "time": timefmt::rfc3339_utc(now),
            "routing_keys": { key.masked(): per_key },
        })
    }
}

/// Writes `doc` to `path` through a temporary file and a rename, so readers never see half a
/// file: the temporary file is created exclusively under a random name, 0640, never through a
/// symbolic link ([`files::replace_private`]).
pub fn write_atomically(path: &Path, doc: &Value) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(doc)?;
    text.push('\n');
    files::replace_private(path, text.as_bytes())
}

/// The statistics file: `stats_path`, `stats_interval`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsOptions {
    /// `stats_path`: the statistics file, rewritten every `stats_interval`.
    pub path: PathBuf,
    /// `stats_interval`: seconds between two statistics files.
    pub interval: Duration,
}

const STATS_PATH: Param = Param::text(
    "stats_path",
    None,
    "statistics file, rewritten atomically (default: the outbox path with .stats.json)",
);
const STATS_INTERVAL: Param = Param::integer(
    "stats_interval",
    1,
    3600,
    Some(5),
    "seconds between two statistics files, 1 to 3600 (default 5)",
);

/// The statistics' parameters.
pub(crate) const PARAMS: &[Param] = &[STATS_PATH, STATS_INTERVAL];

impl StatsOptions {
    /// Reads the statistics' parameters; the file is beside `outbox_path` unless set.
    pub(crate) fn read(
        r: &mut ParamReader,
        outbox_path: &Path,
    ) -> Result<StatsOptions, ConfigError> {
        let path = r.text(&STATS_PATH)?.map_or_else(
            || {
                let mut p = outbox_path.as_os_str().to_owned();
                p.push(".stats.json");
                PathBuf::from(p)
            },
            PathBuf::from,
        );
        let interval = Duration::from_secs(r.integer(&STATS_INTERVAL)?.unwrap_or_default() as u64);
        Ok(StatsOptions { path, interval })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_masks_the_key_and_counts() {
        let c = Counters::default();
        c.seen.fetch_add(10, Relaxed);
        c.pending.store(2, Relaxed);
        c.ack_wait_max_ms.store(12, Relaxed);
        c.set_error("HTTP 500".into());
        let key = Secret::new("abcdefghijklmnopqrstuvwxyz012345");
        let doc = c.snapshot(&key, 1, Some(0));
        let text = doc.to_string();
        assert!(!text.contains(key.expose()));
        let k = &doc["routing_keys"]["****************************2345"];
        assert_eq!(k["events_seen"], 10);
        assert_eq!(k["pending"], 3);
        assert_eq!(k["ack_wait_max_ms"], 12);
        assert_eq!(k["last_error"], "HTTP 500");
        assert!(k["oldest_pending_age_seconds"].as_i64().unwrap() > 1_000_000);
        let dir = crate::files::tests::scratch("stats");
        let p = dir.join("s.json");
        write_atomically(&p, &doc).unwrap();
        let back: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn the_stats_file_is_private_and_planted_links_are_not_followed() {
        use std::os::unix::fs::MetadataExt;
        let dir = crate::files::tests::scratch("stats-link");
        let victim = crate::files::tests::victim(&dir);
        let p = dir.join("s.json");
        // the temporary name the connector used before: a link planted there was followed
        std::os::unix::fs::symlink(&victim, dir.join("s.json.tmp")).unwrap();
        let doc = json!({"a": 1});
        write_atomically(&p, &doc).unwrap();
        crate::files::tests::assert_untouched(&victim);
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o640);
        // a link at the file's own name is replaced, not written through
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        write_atomically(&p, &doc).unwrap();
        crate::files::tests::assert_untouched(&victim);
        assert!(!std::fs::symlink_metadata(&p).unwrap().is_symlink());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
