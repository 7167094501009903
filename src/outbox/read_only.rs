//! Read-only access for operators' commands (`check`, `list`): never creates, migrates or locks the outbox.

use std::fs::File;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::OutboxError;
use super::error::ReadFailure;

/// A pending row as an operator sees it (`pagerduty-event list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingRow {
    pub id: i64,
    pub dedup_key: String,
    pub action: String,
    pub summary: String,
    /// Unix milliseconds.
    pub created: i64,
    /// Failed attempts so far (0 in an outbox written before attempts were recorded).
    pub attempts: u64,
    /// The latest failed attempt's error and time (Unix ms).
    pub last_error: Option<String>,
    pub last_attempt: Option<i64>,
}

/// A row PagerDuty rejected, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RejectedRow {
    pub id: i64,
    pub dedup_key: String,
    pub action: String,
    pub summary: String,
    pub reason: String,
    /// When it was rejected (Unix ms).
    pub at: i64,
    /// Attempts it took, rejection included (`None`: rejected before attempts were recorded).
    pub attempts: Option<u64>,
}

/// What a monitoring check needs, read in one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub pending: u64,
    /// Creation time (Unix ms) of the oldest pending row.
    pub oldest: Option<i64>,
    pub rejected: u64,
    /// The most recent failed attempt's error among pending rows.
    pub last_error: Option<String>,
    /// The latest rejected row.
    pub last_rejected: Option<RejectedRow>,
}

/// A read-only look at an outbox another process (Broker's connector, a `pagerduty-event`
/// invocation) may hold open and be writing: opened `SQLITE_OPEN_READ_ONLY`, never created,
/// never migrated, no write lock taken; each query set runs in one read transaction.
pub(crate) struct ReadOnly {
    conn: Connection,
    /// The outbox records attempts (its schema has the columns).
    attempts: bool,
}

impl ReadOnly {
    /// Opens the outbox at `path`; the error says why in words (and never creates a file).
    pub(crate) fn open(path: &Path) -> Result<ReadOnly, OutboxError> {
        let named = |why: ReadFailure| OutboxError::Unreadable {
            path: path.to_path_buf(),
            why,
        };
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => named(ReadFailure::Missing),
            _ => named(ReadFailure::Io(e)),
        })?;
        if !meta.is_file() {
            return Err(named(ReadFailure::NotAFile));
        }
        // open the file first: a permission problem is reported as such, not as SQLite's
        // "unable to open database file"
        File::open(path).map_err(|e| named(ReadFailure::Io(e)))?;
        let sql = |e: rusqlite::Error| named(ReadFailure::Sqlite(e));
        // without a WAL file nobody has the database open: read it as immutable, or SQLite
        // would create the -wal and -shm files (owned by whoever runs the check, which could
        // then keep Broker from opening its own outbox) and leave them behind. With a WAL
        // file, the connector is running: read through its shared memory, as a reader.
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = if Path::new(&wal).exists() {
            Connection::open_with_flags(path, flags)
        } else {
            Connection::open_with_flags(
                format!("file:{}?immutable=1", uri_path(path)),
                flags | OpenFlags::SQLITE_OPEN_URI,
            )
        }
        .map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(2))
            .map_err(sql)?;
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('outbox', 'rejected')",
                [],
                |r| r.get(0),
            )
            .map_err(sql)?;
        if tables != 2 {
            return Err(named(ReadFailure::NotAnOutbox));
        }
        let attempts: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('outbox') WHERE name = 'attempts'",
                [],
                |r| r.get(0),
            )
            .map_err(sql)?;
        Ok(ReadOnly {
            conn,
            attempts: attempts > 0,
        })
    }

    /// Runs `f` in one read transaction (one consistent snapshot).
    fn snapshot<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, OutboxError> {
        self.conn.execute_batch("BEGIN DEFERRED")?;
        let result = f(&self.conn);
        let _ = self.conn.execute_batch("COMMIT");
        Ok(result?)
    }

    /// Counts, the oldest pending event and the latest errors.
    pub(crate) fn summary(&self) -> Result<Summary, OutboxError> {
        let attempts = self.attempts;
        self.snapshot(|c| {
            let (pending, oldest): (i64, Option<i64>) = c.query_row(
                "SELECT COUNT(*), MIN(created) FROM outbox",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let rejected: i64 = c.query_row("SELECT COUNT(*) FROM rejected", [], |r| r.get(0))?;
            let last_error = if attempts {
                c.query_row(
                    "SELECT last_error FROM outbox WHERE last_error IS NOT NULL ORDER BY last_attempt DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?
            } else {
                None
            };
            let last_rejected = Self::rejected_query(c, attempts, "ORDER BY id DESC LIMIT 1")?.pop();
            Ok(Summary {
                pending: pending as u64,
                oldest,
                rejected: rejected as u64,
                last_error,
                last_rejected,
            })
        })
    }

    /// The pending rows, oldest first (at most `limit`), and how many there are in all.
    pub(crate) fn pending(&self, limit: u64) -> Result<(Vec<PendingRow>, u64), OutboxError> {
        let sql = if self.attempts {
            "SELECT id, dedup_key, action, summary, created, attempts, last_error, last_attempt FROM outbox ORDER BY id LIMIT ?1"
        } else {
            "SELECT id, dedup_key, action, summary, created, 0, NULL, NULL FROM outbox ORDER BY id LIMIT ?1"
        };
        self.snapshot(|c| {
            let total: i64 = c.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?;
            let mut st = c.prepare(sql)?;
            let rows = st.query_map(params![limit.min(i64::MAX as u64) as i64], |r| {
                Ok(PendingRow {
                    id: r.get(0)?,
                    dedup_key: r.get(1)?,
                    action: r.get(2)?,
                    summary: r.get(3)?,
                    created: r.get(4)?,
                    attempts: r.get::<_, i64>(5)?.max(0) as u64,
                    last_error: r.get(6)?,
                    last_attempt: r.get(7)?,
                })
            })?;
            Ok((rows.collect::<Result<_, _>>()?, total as u64))
        })
    }

    /// The rejected rows, oldest first.
    pub(crate) fn rejected(&self) -> Result<Vec<RejectedRow>, OutboxError> {
        let attempts = self.attempts;
        self.snapshot(|c| Self::rejected_query(c, attempts, "ORDER BY id"))
    }

    fn rejected_query(
        c: &Connection,
        attempts: bool,
        tail: &str,
    ) -> rusqlite::Result<Vec<RejectedRow>> {
        let column = if attempts { "attempts" } else { "NULL" };
        let mut st = c.prepare(&format!(
            "SELECT id, dedup_key, action, summary, reason, at, {column} FROM rejected {tail}"
        ))?;
        let rows = st.query_map([], |r| {
            Ok(RejectedRow {
                id: r.get(0)?,
                dedup_key: r.get(1)?,
                action: r.get(2)?,
                summary: r.get(3)?,
                reason: r.get(4)?,
                at: r.get(5)?,
                attempts: r.get::<_, Option<i64>>(6)?.map(|n| n.max(0) as u64),
            })
        })?;
        rows.collect()
    }
}

/// `path` for a `file:` URI: the characters a URI gives a meaning escaped.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        match b {
            b'%' | b'?' | b'#' | 0..=0x20 | 0x7f.. => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    out
}
