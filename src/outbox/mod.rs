//! The durable outbox: a SQLite database (WAL, fsync on commit) of events to send, rejected events and per-object incident state.
//!
//! One writer (the committer thread) groups many changes into one transaction; a sender lane
//! reads back, through its own read-only connection, the rows it does not already hold
//! (rows of an earlier run, rows updated after their commit). Bodies are stored and sent as
//! JSON text. Only a damaged
//! database (not a database, or failing its integrity check) is moved aside and a fresh one
//! started; one that is locked, not readable or writable, another application's, or that
//! cannot be created fails `init`, so Broker keeps the events in its own retention.

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use std::sync::Arc;

use crate::decision::{Handled, Observed};
use crate::event::{Flags, Names, ObjectKey};
use crate::payload::{Action, Outgoing};

/// Schema version stored in `PRAGMA user_version`: [`SCHEMA`] creates version 1's tables,
/// each of [`MIGRATIONS`] brings a database to the next version.
const SCHEMA_VERSION: i64 = 1 + MIGRATIONS.len() as i64;

/// What brings a database of version `1 + i` to version `2 + i`, applied once each, in the
/// transaction that opens the outbox (a database is at one version or the next, never
/// between). Additive only: columns added.
const MIGRATIONS: &[&str] = &[
    // 2: each object's names as Broker's cache last gave them (NULL: never known)
    "ALTER TABLE objects ADD COLUMN host_name TEXT;
     ALTER TABLE objects ADD COLUMN host_address TEXT;
     ALTER TABLE objects ADD COLUMN poller TEXT;
     ALTER TABLE objects ADD COLUMN hostgroups TEXT;        -- JSON array of names
     ALTER TABLE objects ADD COLUMN host_severity INTEGER;
     ALTER TABLE objects ADD COLUMN service_description TEXT;
     ALTER TABLE objects ADD COLUMN servicegroups TEXT;     -- JSON array of names
     ALTER TABLE objects ADD COLUMN service_severity INTEGER;",
    // 3: failed attempts of a pending event, for operators (`pagerduty-event list`, `check`);
    // a rejected event's attempts, rejection included (NULL: rejected before they were kept)
    "ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE outbox ADD COLUMN last_error TEXT;
     ALTER TABLE outbox ADD COLUMN last_attempt INTEGER;    -- Unix milliseconds
     ALTER TABLE rejected ADD COLUMN attempts INTEGER;",
    // 4: the last status handled per object (decision::Handled): NULL when none had a time
    "ALTER TABLE objects ADD COLUMN last_check INTEGER;
     ALTER TABLE objects ADD COLUMN last_state INTEGER;
     ALTER TABLE objects ADD COLUMN last_flags INTEGER;",
];
/// `PRAGMA application_id` of an outbox ("CPD1"): a database without it is not adopted
/// unless it is empty or an outbox of an earlier version ([`OUR_TABLES`]).
pub const APPLICATION_ID: i64 = 0x4350_4431;

/// The tables of an outbox (an earlier version's outbox has no [`APPLICATION_ID`]).
const OUR_TABLES: [&str; 3] = ["objects", "outbox", "rejected"];

/// How long opening the outbox (on Broker's thread) waits for a lock another program holds.
const OPEN_BUSY_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// How long the committer and the lanes (off Broker's thread) wait for a lock.
const WORK_BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    opens     INTEGER NOT NULL,   -- 1: this trigger opens an incident (none was open before)
    summary   TEXT    NOT NULL,
    body      TEXT    NOT NULL,   -- the event without its routing key
    created   INTEGER NOT NULL    -- Unix milliseconds
);
CREATE INDEX IF NOT EXISTS outbox_dedup ON outbox (dedup_key, id);
CREATE TABLE IF NOT EXISTS rejected (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    summary   TEXT    NOT NULL,
    body      TEXT    NOT NULL,
    reason    TEXT    NOT NULL,
    at        INTEGER NOT NULL    -- Unix milliseconds
);
CREATE TABLE IF NOT EXISTS objects (
    host_id      INTEGER NOT NULL,
    service_id   INTEGER NOT NULL,
    open_state   INTEGER,          -- NULL: no incident open; else the state sent
    acknowledged INTEGER NOT NULL,
    PRIMARY KEY (host_id, service_id)
);
";

/// An event as the outbox stores it: the body already serialised. A status's is built by the
/// committer (off Broker's thread); an event built on Broker's thread (acknowledgements,
/// templates) is serialised there, so that the committer frees a handful of allocations
/// instead of a JSON tree of dozens, each of which it would free into Broker's thread's
/// malloc arena, contending for its lock.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub dedup_key: String,
    pub action: Action,
    pub summary: String,
    /// `body` as JSON text.
    pub body: String,
}

impl Stored {
    /// The event with its body parsed (for logs; sending splices the text as it is).
    pub fn outgoing(&self) -> Outgoing {
        Outgoing {
            dedup_key: self.dedup_key.clone(),
            action: self.action,
            summary: self.summary.clone(),
            // checked when read from the database, written by serde_json otherwise
            body: serde_json::from_str(&self.body).unwrap_or_default(),
        }
    }
}

impl From<Outgoing> for Stored {
    fn from(out: Outgoing) -> Self {
        Stored {
            body: crate::payload::body_text(&out.body),
            dedup_key: out.dedup_key,
            action: out.action,
            summary: out.summary,
        }
    }
}

/// The incident state of an object, as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectState {
    pub key: ObjectKey,
    /// `Some(state)` when an incident is open.
    pub open_state: Option<i64>,
    pub acknowledged: bool,
    /// Its names as Broker's cache last gave them (`None`: never known).
    pub names: Option<Arc<Names>>,
    /// The last status with a check time handled for the object.
    pub last: Option<Handled>,
}

fn group_list(json: Option<String>) -> Vec<String> {
    json.and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default()
}

/// `last_flags`: the state type and flags of [`Handled`] as bits.
fn flag_bits(o: &Observed) -> i64 {
    o.hard as i64
        | (o.flags.acknowledged as i64) << 1
        | (o.flags.in_downtime as i64) << 2
        | (o.flags.flapping as i64) << 3
}

fn handled(at: Option<i64>, state: Option<i64>, bits: Option<i64>) -> Option<Handled> {
    let (at, state, bits) = (at?, state?, bits?);
    Some(Handled {
        at,
        observed: Observed {
            state,
            hard: bits & 1 != 0,
            flags: Flags {
                acknowledged: bits & 2 != 0,
                in_downtime: bits & 4 != 0,
                flapping: bits & 8 != 0,
            },
        },
    })
}

/// What inserting an event did to the pending rows of its `dedup_key`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inserted {
    /// The new row, if one was added.
    pub id: Option<i64>,
    /// The pending row whose summary and body were replaced by the new event's.
    pub updated: Option<i64>,
    /// Pending rows deleted because the new event supersedes them.
    pub removed: Vec<i64>,
    /// Pending events made unnecessary (deleted rows plus the new event when it was not added).
    pub merged: u64,
    /// A human explanation when something was merged away.
    pub note: Option<String>,
}

/// A rejected event moved back into the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeued {
    pub rejected_id: i64,
    /// Its new pending row.
    pub id: i64,
    pub dedup_key: String,
    pub action: String,
    /// Events of its `dedup_key` that were already waiting, sent before it.
    pub behind: u64,
}

/// Why the outbox cannot be used. Names `outbox_path`.
#[derive(Debug)]
pub struct OutboxError(pub String);

impl std::fmt::Display for OutboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl OutboxError {
    /// The row exists but its event cannot be decoded: retrying will not help.
    pub fn is_unreadable_row(&self) -> bool {
        self.0.contains("unreadable event")
    }
}

impl From<rusqlite::Error> for OutboxError {
    fn from(e: rusqlite::Error) -> Self {
        OutboxError(format!("outbox database error: {e}"))
    }
}

/// Why opening the outbox failed: only real damage moves the file aside.
enum Unusable {
    /// Not a database, or it fails its integrity check.
    Damaged(String),
    /// Locked, not readable or writable, an I/O error, another application's database...:
    /// the file is left as it is and init fails.
    Fatal(OutboxError),
}

impl Unusable {
    /// Classifies an SQLite error by its code (never by its text).
    fn of(path: &Path, e: rusqlite::Error) -> Unusable {
        use rusqlite::ErrorCode as C;
        let code = e.sqlite_error_code();
        let cause = match code {
            Some(C::NotADatabase | C::DatabaseCorrupt) => return Unusable::Damaged(e.to_string()),
            Some(C::DatabaseBusy | C::DatabaseLocked) => format!(
                "is locked by another program (busy: {e}); close it (an sqlite3 session, a \
                 backup) and Broker retries the output"
            ),
            Some(C::PermissionDenied | C::ReadOnly | C::CannotOpen) => {
                format!(
                    "cannot be opened for reading and writing ({e}{}); check the owner and \
                     mode of the file and of its directory",
                    access_cause(path)
                )
            }
            Some(C::SystemIoFailure) => format!("cannot be read or written: I/O error ({e})"),
            Some(C::DiskFull) => format!("cannot be written: disk full ({e})"),
            _ => format!("cannot be opened ({e})"),
        };
        Unusable::Fatal(OutboxError(format!(
            "parameter 'outbox_path': {} {cause}",
            path.display()
        )))
    }

    fn into_error(self) -> OutboxError {
        match self {
            Unusable::Fatal(e) => e,
            Unusable::Damaged(why) => OutboxError(format!("outbox database damaged: {why}")),
        }
    }
}

/// What the system says when the database or a file beside it (its WAL) is opened for
/// writing, as SQLite's codes do not carry it: `": Permission denied (os error 13)"`, or
/// nothing when both can be.
fn access_cause(path: &Path) -> String {
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        return format!(": {e}");
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    if !wal.exists() {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&wal)
        {
            Ok(_) => {
                let _ = std::fs::remove_file(&wal);
            }
            Err(e) => return format!(": cannot create {}: {e}", wal.display()),
        }
    } else if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&wal)
    {
        return format!(": {}: {e}", wal.display());
    }
    String::new()
}

/// The writer side of the outbox.
pub struct Outbox {
    conn: Connection,
    path: PathBuf,
    /// Held for the life of the outbox: two outputs never use one database.
    _lock: File,
}

/// The lock file beside the outbox database `path`.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Outbox {
    /// Opens (or creates) the outbox at `path`. A damaged database is moved aside (the
    /// returned warning says where) and a fresh one created; any other failure (a lock held
    /// by another program, permissions, I/O, another application's database) is an error
    /// naming `outbox_path`, with the file left as it is.
    pub fn open(path: &Path) -> Result<(Outbox, Option<String>), OutboxError> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(OutboxError(format!(
                "parameter 'outbox_path': directory {} does not exist",
                dir.display()
            )));
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(path))
            .map_err(|e| {
                OutboxError(format!(
                    "parameter 'outbox_path': cannot create {}: {e}",
                    lock_path(path).display()
                ))
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OutboxError(format!(
                    "parameter 'outbox_path': {} is used by another running output; give each output its own outbox_path",
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(OutboxError(format!(
                    "parameter 'outbox_path': cannot lock {}: {e}",
                    lock_path(path).display()
                )));
            }
        }
        match Self::open_checked(path) {
            Ok(conn) => Ok((
                Outbox {
                    conn,
                    path: path.to_path_buf(),
                    _lock: lock,
                },
                None,
            )),
            Err(Unusable::Damaged(first)) if path.exists() => {
                let aside = Self::move_aside(path)?;
                let conn = Self::open_checked(path).map_err(Unusable::into_error)?;
                Ok((
                    Outbox {
                        conn,
                        path: path.to_path_buf(),
                        _lock: lock,
                    },
                    Some(format!(
                        "outbox {} could not be used ({first}); moved aside to {} and started a fresh one",
                        path.display(),
                        aside.display()
                    )),
                ))
            }
            Err(e) => Err(e.into_error()),
        }
    }

    fn open_checked(path: &Path) -> Result<Connection, Unusable> {
        let fatal = |e: rusqlite::Error| Unusable::of(path, e);
        // created 0640 before SQLite opens it (SQLite would make it 0644 less the umask): it
        // holds host names and plugin outputs, and SQLite gives -wal and -shm its mode
        let _ = crate::files::create_private(path);
        let conn = Connection::open(path).map_err(fatal)?;
        // on Broker's thread: a lock held by another program fails init at once (Broker
        // retries it), rather than stopping Broker for long
        conn.busy_timeout(OPEN_BUSY_WAIT).map_err(fatal)?;
        // read-only look first: another application's database is refused before anything
        // (WAL mode included) is written to it
        Self::check_ours(path, &conn)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(fatal)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Unusable::Fatal(OutboxError(format!(
                "parameter 'outbox_path': {} cannot use WAL mode (got {mode})",
                path.display()
            ))));
        }
        // fsync on every commit; checkpoint every 256 pages (1 MiB) and cut the WAL back to
        // 1 MiB after it, so that the WAL never holds much more than the live rows (a WAL
        // that fills a disk cannot be checkpointed once the disk is full)
        conn.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF; \
             PRAGMA wal_autocheckpoint=256; PRAGMA journal_size_limit=1048576;",
        )
        .map_err(fatal)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(fatal)?;
        if check != "ok" {
            return Err(Unusable::Damaged(format!(
                "integrity check failed: {check}"
            )));
        }
        // the write lock, taken now: a database another program holds fails here
        conn.execute_batch("BEGIN IMMEDIATE").map_err(fatal)?;
        let setup = || -> Result<(), Unusable> {
            let version: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(fatal)?;
            if version > SCHEMA_VERSION {
                return Err(Unusable::Fatal(OutboxError(format!(
                    "parameter 'outbox_path': {} was written by a newer version (schema {version})",
                    path.display()
                ))));
            }
            conn.execute_batch(SCHEMA).map_err(fatal)?;
            for (i, sql) in MIGRATIONS.iter().enumerate() {
                if version.max(1) < i as i64 + 2 {
                    conn.execute_batch(sql).map_err(fatal)?;
                }
            }
            conn.execute_batch(&format!(
                "PRAGMA application_id={APPLICATION_ID}; PRAGMA user_version={SCHEMA_VERSION}; COMMIT"
            ))
            .map_err(fatal)
        };
        if let Err(e) = setup() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
        // the committer runs off Broker's thread: it may wait for a short lock
        conn.busy_timeout(WORK_BUSY_WAIT).map_err(fatal)?;
        Ok(conn)
    }

    /// Refuses a database that belongs to another application: ours carry
    /// [`APPLICATION_ID`]; an outbox of a version before it is recognised by its tables (and
    /// marked by [`Self::open_checked`]); an empty database is a new outbox.
    fn check_ours(path: &Path, conn: &Connection) -> Result<(), Unusable> {
        let fatal = |e: rusqlite::Error| Unusable::of(path, e);
        let id: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(fatal)?;
        if id == APPLICATION_ID {
            return Ok(());
        }
        let mut st = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .map_err(fatal)?;
        let tables: Vec<String> = st
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(fatal)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(fatal)?;
        let earlier_outbox = (1..=SCHEMA_VERSION).contains(&version)
            && tables.iter().all(|t| OUR_TABLES.contains(&t.as_str()));
        if id == 0 && (tables.is_empty() || earlier_outbox) {
            return Ok(());
        }
        let what = if id != 0 {
            format!("application_id {id}")
        } else {
            format!("tables: {}", tables.join(", "))
        };
        Err(Unusable::Fatal(OutboxError(format!(
            "parameter 'outbox_path': {} is another application's SQLite database ({what}), not an outbox; it was left untouched: give the outbox a file of its own",
            path.display()
        ))))
    }

    /// Renames the database (and its WAL and shared-memory files) to `<path>.corrupt-<ms>`.
    fn move_aside(path: &Path) -> Result<PathBuf, OutboxError> {
        let stamp = now_ms();
        let mut aside = path.as_os_str().to_owned();
        aside.push(format!(".corrupt-{stamp}"));
        let aside = PathBuf::from(aside);
        std::fs::rename(path, &aside).map_err(|e| {
            OutboxError(format!(
                "parameter 'outbox_path': {} is damaged and cannot be moved aside: {e}",
                path.display()
            ))
        })?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            let mut to = aside.as_os_str().to_owned();
            to.push(suffix);
            let _ = std::fs::rename(PathBuf::from(side), PathBuf::from(to));
        }
        Ok(aside)
    }

    /// Prepares the rows an earlier run of Broker's output left, before they are sent again.
    /// They may have been delivered already (a kill -9 between PagerDuty's answer and the
    /// row's deletion), so sent again they must not open an incident anew: rows that a
    /// resolve of their dedup_key follows are dropped (sent again, they would reopen what the
    /// resolve then closes), and so is a resolve that newer rows follow (sent again after
    /// them, it would close the incident they opened, which they would then reopen):
    /// PagerDuty ends with the key's last word either way. No such row counts as opening
    /// nothing any more (a later resolve must still be sent). Returns the rows dropped.
    pub fn settle_resumed(&mut self) -> Result<u64, OutboxError> {
        let tx = self.conn.transaction()?;
        let before = tx.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))?;
        tx.execute_batch(
            "DELETE FROM outbox WHERE id < (SELECT MAX(r.id) FROM outbox r \
             WHERE r.dedup_key = outbox.dedup_key AND r.action = 'resolve'); \
             DELETE FROM outbox WHERE action = 'resolve' AND id < (SELECT MAX(n.id) \
             FROM outbox n WHERE n.dedup_key = outbox.dedup_key); \
             UPDATE outbox SET opens = 0 WHERE opens <> 0;",
        )?;
        let after = tx.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))?;
        tx.commit()?;
        Ok((before - after) as u64)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A read-only connection for a sender lane.
    pub fn reader(&self) -> Result<Reader, OutboxError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // a reader fetches one row by id (a few pages): a small page cache per lane, not
        // SQLite's default 2 MB
        conn.execute_batch("PRAGMA cache_size=-64")?;
        Ok(Reader { conn })
    }

    /// Ids of the pending rows with their `dedup_key`, oldest first.
    pub fn pending(&self) -> Result<Vec<(i64, String)>, OutboxError> {
        let mut st = self
            .conn
            .prepare("SELECT id, dedup_key FROM outbox ORDER BY id")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn pending_count(&self) -> Result<u64, OutboxError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    /// Creation time (Unix ms) of the oldest pending row.
    pub fn oldest_pending(&self) -> Result<Option<i64>, OutboxError> {
        Ok(self
            .conn
            .query_row("SELECT MIN(created) FROM outbox", [], |r| r.get(0))?)
    }

    pub fn rejected_count(&self) -> Result<u64, OutboxError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM rejected", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    /// Persisted incident states.
    pub fn objects(&self) -> Result<Vec<ObjectState>, OutboxError> {
        let mut st = self.conn.prepare(
            "SELECT host_id, service_id, open_state, acknowledged, host_name, host_address, \
             poller, hostgroups, host_severity, service_description, servicegroups, \
             service_severity, last_check, last_state, last_flags FROM objects",
        )?;
        let rows = st.query_map([], |r| {
            let names = Names {
                host_name: r.get(4)?,
                host_address: r.get(5)?,
                poller: r.get(6)?,
                hostgroups: group_list(r.get(7)?),
                host_severity: r.get(8)?,
                service_description: r.get(9)?,
                servicegroups: group_list(r.get(10)?),
                service_severity: r.get(11)?,
            };
            Ok(ObjectState {
                key: ObjectKey {
                    host_id: r.get::<_, i64>(0)? as u64,
                    service_id: r.get::<_, i64>(1)? as u64,
                },
                open_state: r.get(2)?,
                acknowledged: r.get::<_, i64>(3)? != 0,
                names: names.host_name.is_some().then(|| Arc::new(names)),
                last: handled(r.get(12)?, r.get(13)?, r.get(14)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Copies the WAL into the database and truncates it: after a failed write (a full disk),
    /// this gives back the space the WAL holds, so the next, smaller commit can succeed.
    pub fn checkpoint(&self) -> Result<(), OutboxError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Moves rejected rows (`ids`, or all of them) back to the end of the queue, oldest
    /// first, in one transaction: each is sent after the events of its `dedup_key` already
    /// waiting. Fails, changing nothing, when an id is not a rejected row.
    pub fn requeue(&mut self, ids: Option<&[i64]>) -> Result<Vec<Requeued>, OutboxError> {
        let tx = self.conn.transaction()?;
        let rows = Self::chosen(&tx, ids)?;
        let mut done = Vec::new();
        for (rejected_id, dedup_key, action) in rows {
            let waiting: i64 = tx.query_row(
                "SELECT COUNT(*) FROM outbox WHERE dedup_key = ?1",
                params![dedup_key],
                |r| r.get(0),
            )?;
            // opens = 0: whether an incident is open is not known now; a later resolve
            // then supersedes it rather than both being dropped
            tx.execute(
                "INSERT INTO outbox (dedup_key, action, opens, summary, body, created)
                 SELECT dedup_key, action, 0, summary, body, ?2 FROM rejected WHERE id = ?1",
                params![rejected_id, now_ms()],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute("DELETE FROM rejected WHERE id = ?1", params![rejected_id])?;
            done.push(Requeued {
                rejected_id,
                id,
                dedup_key,
                action,
                behind: waiting as u64,
            });
        }
        tx.commit()?;
        Ok(done)
    }

    /// Deletes rejected rows (`ids`, or all of them); fails, changing nothing, when an id is
    /// not a rejected row. Returns `(id, dedup_key, action)` of each.
    pub fn discard(
        &mut self,
        ids: Option<&[i64]>,
    ) -> Result<Vec<(i64, String, String)>, OutboxError> {
        let tx = self.conn.transaction()?;
        let rows = Self::chosen(&tx, ids)?;
        for (id, _, _) in &rows {
            tx.execute("DELETE FROM rejected WHERE id = ?1", params![id])?;
        }
        tx.commit()?;
        Ok(rows)
    }

    /// The rejected rows `ids` (all when `None`), oldest first.
    fn chosen(
        tx: &rusqlite::Transaction<'_>,
        ids: Option<&[i64]>,
    ) -> Result<Vec<(i64, String, String)>, OutboxError> {
        let mut st = tx.prepare("SELECT id, dedup_key, action FROM rejected ORDER BY id")?;
        let all: Vec<(i64, String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let Some(ids) = ids else { return Ok(all) };
        let unknown: Vec<String> = ids
            .iter()
            .filter(|id| !all.iter().any(|(r, _, _)| r == *id))
            .map(i64::to_string)
            .collect();
        if !unknown.is_empty() {
            return Err(OutboxError(format!(
                "no rejected event with ID {} in {} (see pagerduty-event list --rejected); nothing changed",
                unknown.join(", "),
                tx.path().unwrap_or("the outbox")
            )));
        }
        Ok(all
            .into_iter()
            .filter(|(r, _, _)| ids.contains(r))
            .collect())
    }

    /// Starts a transaction: every change of one group commit goes through it.
    pub fn batch(&mut self) -> Result<Batch<'_>, OutboxError> {
        Ok(Batch {
            tx: self.conn.transaction()?,
        })
    }
}

/// One group commit.
pub struct Batch<'a> {
    tx: rusqlite::Transaction<'a>,
}

impl Batch<'_> {
    /// Adds an event. Only under a `backlog` (the caller's rule: the pending rows of this
    /// `dedup_key` are held back by a failure or a rate limit) does it merge with the pending
    /// rows of its `dedup_key` that it makes unnecessary, whichever batch added them; without
    /// one, every event is stored and sent. Rows in `busy` (being sent, or sent and awaiting
    /// deletion) are never touched.
    pub fn insert(
        &mut self,
        out: &Stored,
        opens: bool,
        busy: &dyn Fn(i64) -> bool,
        backlog: bool,
    ) -> Result<Inserted, OutboxError> {
        let mut result = Inserted::default();
        loop {
            let last: Option<(i64, String, bool)> = self
                .tx
                .prepare_cached(
                    "SELECT id, action, opens FROM outbox WHERE dedup_key = ?1 ORDER BY id DESC LIMIT 1",
                )?
                .query_row(params![out.dedup_key], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0))
                })
                .optional()?;
            let Some((id, action, last_opens)) = last.filter(|(id, _, _)| backlog && !busy(*id))
            else {
                break;
            };
            match (action.as_str(), out.action) {
                // a newer trigger for a pending one: send only the latest details
                ("trigger", Action::Trigger) => {
                    self.tx
                        .prepare_cached("UPDATE outbox SET summary = ?2, body = ?3 WHERE id = ?1")?
                        .execute(params![id, out.summary, out.body])?;
                    result.updated = Some(id);
                    result.merged += 1;
                    result.note = Some(format!(
                        "{}: pending trigger updated with the latest state instead of sending both",
                        out.dedup_key
                    ));
                    return Ok(result);
                }
                // a trigger that opened nothing yet, then its resolve: send neither
                ("trigger", Action::Resolve) if last_opens => {
                    self.delete(id)?;
                    result.removed.push(id);
                    result.merged += 2;
                    result.note = Some(format!(
                        "{}: trigger then resolve pending for an incident never opened; nothing sent",
                        out.dedup_key
                    ));
                    return Ok(result);
                }
                // a resolve supersedes a pending update or acknowledgement of the incident
                ("trigger", Action::Resolve) | ("acknowledge", Action::Resolve) => {
                    self.delete(id)?;
                    result.removed.push(id);
                    result.merged += 1;
                    result.note = Some(format!(
                        "{}: pending {action} superseded by a resolve",
                        out.dedup_key
                    ));
                }
                ("acknowledge", Action::Acknowledge) => {
                    result.merged += 1;
                    return Ok(result);
                }
                _ => break,
            }
        }
        // a resolve whose only reason to exist was merged away above is still sent when an
        // incident may be open: the decision made it, and PagerDuty drops it if nothing is open
        let id = self
            .tx
            .prepare_cached(
                "INSERT INTO outbox (dedup_key, action, opens, summary, body, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .insert(params![
                out.dedup_key,
                out.action.as_str(),
                opens as i64,
                out.summary,
                out.body,
                now_ms()
            ])?;
        result.id = Some(id);
        Ok(result)
    }

    fn delete(&mut self, id: i64) -> Result<(), OutboxError> {
        self.tx
            .prepare_cached("DELETE FROM outbox WHERE id = ?1")?
            .execute(params![id])?;
        Ok(())
    }

    /// Removes a delivered row.
    pub fn delivered(&mut self, id: i64) -> Result<(), OutboxError> {
        self.delete(id)
    }

    /// Moves a row PagerDuty rejected to `rejected`, keeping at most `keep` rejected rows.
    pub fn rejected(&mut self, id: i64, reason: &str, keep: u64) -> Result<(), OutboxError> {
        self.tx
            .prepare_cached(
                "INSERT INTO rejected (dedup_key, action, summary, body, reason, at, attempts)
                 SELECT dedup_key, action, summary, body, ?2, ?3, attempts + 1 FROM outbox WHERE id = ?1",
            )?
            .execute(params![id, reason, now_ms()])?;
        self.delete(id)?;
        self.tx
            .prepare_cached("DELETE FROM rejected WHERE id <= (SELECT MAX(id) FROM rejected) - ?1")?
            .execute(params![keep as i64])?;
        Ok(())
    }

    /// Records a failed attempt to send a pending row (for operators; sending does not read it).
    pub fn attempt_failed(&mut self, id: i64, error: &str) -> Result<(), OutboxError> {
        self.tx
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, last_attempt = ?3 WHERE id = ?1",
            )?
            .execute(params![id, error, now_ms()])?;
        Ok(())
    }

    /// Records the incident state of an object.
    pub fn object(&mut self, s: &ObjectState) -> Result<(), OutboxError> {
        let n = s.names.as_deref();
        self.tx
            .prepare_cached(
                "INSERT INTO objects (host_id, service_id, open_state, acknowledged, host_name,
                     host_address, poller, hostgroups, host_severity, service_description,
                     servicegroups, service_severity, last_check, last_state, last_flags)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT (host_id, service_id) DO UPDATE SET open_state = excluded.open_state,
                     acknowledged = excluded.acknowledged, host_name = excluded.host_name,
                     host_address = excluded.host_address, poller = excluded.poller,
                     hostgroups = excluded.hostgroups, host_severity = excluded.host_severity,
                     service_description = excluded.service_description,
                     servicegroups = excluded.servicegroups,
                     service_severity = excluded.service_severity,
                     last_check = excluded.last_check, last_state = excluded.last_state,
                     last_flags = excluded.last_flags",
            )?
            .execute(params![
                s.key.host_id as i64,
                s.key.service_id as i64,
                s.open_state,
                s.acknowledged as i64,
                n.and_then(|n| n.host_name.as_deref()),
                n.and_then(|n| n.host_address.as_deref()),
                n.and_then(|n| n.poller.as_deref()),
                n.map(|n| serde_json::to_string(&n.hostgroups).unwrap_or_default()),
                n.and_then(|n| n.host_severity),
                n.and_then(|n| n.service_description.as_deref()),
                n.map(|n| serde_json::to_string(&n.servicegroups).unwrap_or_default()),
                n.and_then(|n| n.service_severity),
                s.last.map(|h| h.at),
                s.last.map(|h| h.observed.state),
                s.last.map(|h| flag_bits(&h.observed)),
            ])?;
        Ok(())
    }

    /// Commits (fsync of the WAL).
    pub fn commit(self) -> Result<(), OutboxError> {
        Ok(self.tx.commit()?)
    }
}

/// A pending row as an operator sees it (`pagerduty-event list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRow {
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
pub struct RejectedRow {
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
pub struct Summary {
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
pub struct ReadOnly {
    conn: Connection,
    /// The outbox records attempts (its schema has the columns).
    attempts: bool,
}

impl ReadOnly {
    /// Opens the outbox at `path`; the error says why in words (and never creates a file).
    pub fn open(path: &Path) -> Result<ReadOnly, OutboxError> {
        let named =
            |why: String| OutboxError(format!("cannot read the outbox {}: {why}", path.display()));
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => named("it does not exist".into()),
            _ => named(e.to_string()),
        })?;
        if !meta.is_file() {
            return Err(named("not a regular file".into()));
        }
        // open the file first: a permission problem is reported as such, not as SQLite's
        // "unable to open database file"
        File::open(path).map_err(|e| named(e.to_string()))?;
        let sql = |e: rusqlite::Error| named(e.to_string());
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
            return Err(named(
                "not an outbox of centreon-pagerduty (no outbox and rejected tables)".into(),
            ));
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
    pub fn summary(&self) -> Result<Summary, OutboxError> {
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
    pub fn pending(&self, limit: u64) -> Result<(Vec<PendingRow>, u64), OutboxError> {
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
    pub fn rejected(&self) -> Result<Vec<RejectedRow>, OutboxError> {
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

/// A lane's read-only view.
pub struct Reader {
    conn: Connection,
}

impl Reader {
    /// The row to send, or `None` when it was merged away.
    pub fn fetch(&self, id: i64) -> Result<Option<Stored>, OutboxError> {
        let row: Option<(String, String, String, String)> = self
            .conn
            .prepare_cached("SELECT dedup_key, action, summary, body FROM outbox WHERE id = ?1")?
            .query_row(params![id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        let Some((dedup_key, action, summary, body)) = row else {
            return Ok(None);
        };
        let action = match action.as_str() {
            "trigger" => Action::Trigger,
            "acknowledge" => Action::Acknowledge,
            _ => Action::Resolve,
        };
        // a JSON object, checked without building it: it is sent as it is
        let object = body.trim_start().starts_with('{')
            && serde_json::from_str::<serde::de::IgnoredAny>(&body).is_ok();
        if !object {
            return Err(OutboxError(format!(
                "outbox row {id} holds an unreadable event"
            )));
        }
        Ok(Some(Stored {
            dedup_key,
            action,
            summary,
            body,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(key: &str, action: Action, summary: &str) -> Stored {
        let mut body = serde_json::Map::new();
        body.insert("dedup_key".into(), key.into());
        body.insert("event_action".into(), action.as_str().into());
        Outgoing {
            dedup_key: key.into(),
            action,
            summary: summary.into(),
            body: body.into(),
        }
        .into()
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cpd-outbox-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn none(_: i64) -> bool {
        false
    }

    #[test]
    fn rows_survive_reopen_in_order() {
        let d = dir("reopen");
        let path = d.join("o.db");
        {
            let (mut o, warn) = Outbox::open(&path).unwrap();
            assert!(warn.is_none());
            let mut b = o.batch().unwrap();
            b.insert(&out("1_2", Action::Trigger, "a"), true, &none, false)
                .unwrap();
            b.insert(&out("3_H", Action::Trigger, "b"), true, &none, false)
                .unwrap();
            b.object(&ObjectState {
                key: ObjectKey {
                    host_id: 1,
                    service_id: 2,
                },
                open_state: Some(2),
                acknowledged: false,
                names: None,
                last: Some(Handled {
                    at: 1_700_000_000,
                    observed: Observed {
                        state: 2,
                        hard: true,
                        flags: Flags {
                            acknowledged: false,
                            in_downtime: true,
                            flapping: false,
                        },
                    },
                }),
            })
            .unwrap();
            b.commit().unwrap();
        }
        let (mut o, _) = Outbox::open(&path).unwrap();
        let p = o.pending().unwrap();
        assert_eq!(
            p.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(),
            ["1_2", "3_H"]
        );
        let r = o.reader().unwrap().fetch(p[0].0).unwrap().unwrap();
        assert_eq!(r.summary, "a");
        assert_eq!(r.outgoing().body.to_json()["event_action"], "trigger");
        let object = o.objects().unwrap().remove(0);
        assert_eq!(object.open_state, Some(2));
        let last = object.last.unwrap();
        assert_eq!(last.at, 1_700_000_000);
        assert!(last.observed.hard && last.observed.flags.in_downtime);
        assert!(!last.observed.flags.acknowledged && !last.observed.flags.flapping);
        // rows of an earlier run followed by a resolve of their key, and a resolve followed
        // by newer rows, are not sent again: delivered before a kill -9, they would open an
        // incident anew
        let mut b = o.batch().unwrap();
        for (key, action) in [
            ("1_2", Action::Resolve),
            ("1_2", Action::Trigger),
            ("3_H", Action::Acknowledge),
            ("3_H", Action::Resolve),
        ] {
            b.insert(&out(key, action, "later"), false, &|_| true, false)
                .unwrap();
        }
        b.commit().unwrap();
        assert_eq!(o.pending_count().unwrap(), 6);
        drop(o);
        let (mut o, _) = Outbox::open(&path).unwrap();
        assert_eq!(o.pending_count().unwrap(), 6, "opening alone drops nothing");
        assert_eq!(o.settle_resumed().unwrap(), 4);
        let reader = o.reader().unwrap();
        let left: Vec<(String, Action)> = o
            .pending()
            .unwrap()
            .into_iter()
            .map(|(id, key)| (key, reader.fetch(id).unwrap().unwrap().action))
            .collect();
        assert_eq!(
            left,
            [
                ("1_2".to_string(), Action::Trigger),
                ("3_H".to_string(), Action::Resolve)
            ]
        );
        let opening: i64 = o
            .conn
            .query_row("SELECT COUNT(*) FROM outbox WHERE opens <> 0", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            opening, 0,
            "a row of an earlier run may have opened its incident"
        );
    }

    /// An outbox of schema 1 gains the columns of the last status handled, keeping its rows.
    #[test]
    fn schema_1_is_migrated_in_place() {
        let d = dir("migrate");
        let path = d.join("v1.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            c.execute_batch("PRAGMA user_version=1; INSERT INTO objects VALUES (1, 2, 2, 1);")
                .unwrap();
        }
        let (o, _) = Outbox::open(&path).unwrap();
        let objects = o.objects().unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(
            (
                objects[0].open_state,
                objects[0].acknowledged,
                objects[0].last
            ),
            (Some(2), true, None)
        );
        drop(o);
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        // opened again: no migration applied twice
        Outbox::open(&path).unwrap();
    }

    #[test]
    fn stored_body_is_the_json_of_the_map_and_reads_back_the_same() {
        let mut body = serde_json::Map::new();
        body.insert("dedup_key".into(), "7_8".into());
        body.insert("event_action".into(), "trigger".into());
        body.insert(
            "payload".into(),
            serde_json::json!({"summary": "é \"quoted\"\n", "custom_details": {"metrics": [1.5, {"a": null}]}}),
        );
        let out = Outgoing {
            dedup_key: "7_8".into(),
            action: Action::Trigger,
            summary: "s".into(),
            body: body.clone().into(),
        };
        let stored = Stored::from(out);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&stored.body).unwrap(),
            serde_json::Value::Object(body.clone())
        );
        assert_eq!(
            (stored.dedup_key.as_str(), stored.action),
            ("7_8", Action::Trigger)
        );
        let d = dir("stored");
        let (mut o, _) = Outbox::open(&d.join("o.db")).unwrap();
        let id = put(&mut o, stored, true, &none).id.unwrap();
        let row = o.reader().unwrap().fetch(id).unwrap().unwrap();
        assert_eq!(
            (row.outgoing().body, row.summary),
            (body.into(), "s".to_string())
        );
    }

    /// Inserts under a backlog, in a batch of its own.
    fn put(o: &mut Outbox, out: Stored, opens: bool, busy: &dyn Fn(i64) -> bool) -> Inserted {
        let mut b = o.batch().unwrap();
        let r = b.insert(&out, opens, busy, true).unwrap();
        b.commit().unwrap();
        r
    }

    #[test]
    fn merge_rules() {
        let d = dir("merge");
        let (mut o, _) = Outbox::open(&d.join("o.db")).unwrap();
        // WARNING then CRITICAL pending: one trigger with the latest details
        let first = put(&mut o, out("k1", Action::Trigger, "warning"), true, &none);
        let second = put(&mut o, out("k1", Action::Trigger, "critical"), false, &none);
        assert!(first.id.is_some() && second.id.is_none() && second.merged == 1);
        assert_eq!((first.updated, second.updated), (None, first.id));
        let row = o
            .reader()
            .unwrap()
            .fetch(first.id.unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(row.summary, "critical");
        // trigger then resolve for an incident never opened: nothing
        let r = put(&mut o, out("k1", Action::Resolve, "ok"), false, &none);
        assert_eq!(
            (r.id, r.removed.clone(), r.merged),
            (None, vec![first.id.unwrap()], 2)
        );
        assert!(r.note.unwrap().contains("never opened"));
        // an update of an open incident then its resolve: only the resolve
        let upd = put(&mut o, out("k2", Action::Trigger, "update"), false, &none);
        let ack = put(&mut o, out("k2", Action::Acknowledge, "ack"), false, &none);
        let dup = put(&mut o, out("k2", Action::Acknowledge, "ack"), false, &none);
        assert!(ack.id.is_some() && dup.id.is_none());
        let res = put(&mut o, out("k2", Action::Resolve, "ok"), false, &none);
        assert_eq!(res.removed, vec![ack.id.unwrap(), upd.id.unwrap()]);
        assert!(res.id.is_some());
        // resolve then a new problem: both kept (a new incident)
        let t = put(&mut o, out("k2", Action::Trigger, "again"), true, &none);
        assert!(t.id.is_some());
        // a row being sent is never merged
        let busy_id = t.id.unwrap();
        let busy = move |id: i64| id == busy_id;
        let t2 = put(&mut o, out("k2", Action::Trigger, "newer"), false, &busy);
        assert!(t2.id.is_some());
        assert_eq!(o.pending_count().unwrap(), 3);
        // without a backlog nothing merges, in one batch or across batches
        let mut b = o.batch().unwrap();
        let a = b
            .insert(&out("k3", Action::Trigger, "t"), true, &none, false)
            .unwrap();
        let z = b
            .insert(&out("k3", Action::Resolve, "r"), false, &none, false)
            .unwrap();
        b.commit().unwrap();
        assert!(a.id.is_some() && z.id.is_some() && z.merged == 0);
        let mut b = o.batch().unwrap();
        let t = b
            .insert(&out("k3", Action::Trigger, "again"), true, &none, false)
            .unwrap();
        b.commit().unwrap();
        let mut b = o.batch().unwrap();
        let u = b
            .insert(&out("k3", Action::Trigger, "newer"), false, &none, false)
            .unwrap();
        let r = b
            .insert(&out("k3", Action::Resolve, "ok"), false, &none, false)
            .unwrap();
        b.commit().unwrap();
        assert!(t.id.is_some() && u.id.is_some() && r.id.is_some());
        assert_eq!((u.merged, r.merged), (0, 0));
        assert_eq!(o.pending_count().unwrap(), 8);
    }

    #[test]
    fn events_of_one_batch_merge_under_a_backlog() {
        let d = dir("backlog");
        let (mut o, _) = Outbox::open(&d.join("o.db")).unwrap();
        let mut b = o.batch().unwrap();
        // WARNING then CRITICAL of one batch: one trigger with the latest details
        let w = b
            .insert(&out("k4", Action::Trigger, "warning"), true, &none, true)
            .unwrap();
        let c = b
            .insert(&out("k4", Action::Trigger, "critical"), false, &none, true)
            .unwrap();
        assert!(w.id.is_some() && c.id.is_none() && c.merged == 1);
        // a trigger that opened nothing, then its resolve: neither is stored
        let t = b
            .insert(&out("k5", Action::Trigger, "t"), true, &none, true)
            .unwrap();
        let r = b
            .insert(&out("k5", Action::Resolve, "r"), false, &none, true)
            .unwrap();
        assert_eq!((r.id, r.removed, r.merged), (None, vec![t.id.unwrap()], 2));
        // a row of this batch that a lane has taken is still never merged
        let t6 = b
            .insert(&out("k6", Action::Trigger, "t"), true, &none, true)
            .unwrap()
            .id
            .unwrap();
        let busy = move |id: i64| id == t6;
        let r6 = b
            .insert(&out("k6", Action::Resolve, "r"), false, &busy, true)
            .unwrap();
        assert!(r6.id.is_some() && r6.merged == 0);
        b.commit().unwrap();
        assert_eq!(o.pending_count().unwrap(), 3);
        let row = o.reader().unwrap().fetch(w.id.unwrap()).unwrap().unwrap();
        assert_eq!(row.summary, "critical");
    }

    #[test]
    fn rejected_rows_are_kept_and_pruned() {
        let d = dir("rejected");
        let (mut o, _) = Outbox::open(&d.join("o.db")).unwrap();
        let mut b = o.batch().unwrap();
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(
                b.insert(
                    &out(&format!("k{i}"), Action::Trigger, "x"),
                    true,
                    &none,
                    false,
                )
                .unwrap()
                .id
                .unwrap(),
            );
        }
        for id in &ids {
            b.rejected(*id, "HTTP 400: bad", 3).unwrap();
        }
        b.commit().unwrap();
        assert_eq!(o.pending_count().unwrap(), 0);
        assert_eq!(o.rejected_count().unwrap(), 3);
    }

    /// Failed attempts are kept on the pending row and carried to `rejected`; the read-only
    /// view reads them, and reads an outbox of schema 1 (without them) too.
    #[test]
    fn attempts_are_recorded_and_read_back_read_only() {
        let d = dir("attempts");
        let path = d.join("o.db");
        let (mut o, _) = Outbox::open(&path).unwrap();
        let a = put(&mut o, out("k1", Action::Trigger, "a"), true, &none)
            .id
            .unwrap();
        let b = put(&mut o, out("k2", Action::Trigger, "b"), true, &none)
            .id
            .unwrap();
        let mut batch = o.batch().unwrap();
        batch.attempt_failed(a, "HTTP 503").unwrap();
        batch.attempt_failed(a, "network error: timeout").unwrap();
        batch.attempt_failed(b, "HTTP 502").unwrap();
        batch.rejected(b, "HTTP 400: invalid", 10).unwrap();
        batch.commit().unwrap();
        let view = ReadOnly::open(&path).unwrap();
        let (rows, total) = view.pending(10).unwrap();
        assert_eq!(total, 1);
        assert_eq!(
            (rows[0].attempts, rows[0].last_error.as_deref()),
            (2, Some("network error: timeout"))
        );
        let rejected = view.rejected().unwrap();
        assert_eq!(
            (rejected[0].attempts, rejected[0].reason.as_str()),
            (Some(2), "HTTP 400: invalid")
        );
        let s = view.summary().unwrap();
        assert_eq!((s.pending, s.rejected), (1, 1));
        assert_eq!(s.last_error.as_deref(), Some("network error: timeout"));

        let old = d.join("old.db");
        {
            let c = Connection::open(&old).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            c.execute_batch(
                "INSERT INTO outbox (dedup_key, action, opens, summary, body, created) VALUES ('k', 'trigger', 1, 's', '{}', 5);
                 INSERT INTO rejected (dedup_key, action, summary, body, reason, at) VALUES ('r', 'trigger', 's', '{}', 'bad', 7);
                 PRAGMA user_version=1;",
            )
            .unwrap();
        }
        let view = ReadOnly::open(&old).unwrap();
        let (rows, _) = view.pending(10).unwrap();
        assert_eq!((rows[0].attempts, rows[0].created), (0, 5));
        assert_eq!(view.rejected().unwrap()[0].attempts, None);
        assert_eq!(view.summary().unwrap().last_rejected.unwrap().reason, "bad");
    }

    #[test]
    fn damaged_file_is_moved_aside() {
        let d = dir("damaged");
        let path = d.join("o.db");
        std::fs::write(
            &path,
            b"this is not a database at all, just garbage bytes ........",
        )
        .unwrap();
        let (o, warn) = Outbox::open(&path).unwrap();
        let warn = warn.unwrap();
        assert!(warn.contains("moved aside"), "{warn}");
        assert_eq!(o.pending_count().unwrap(), 0);
        let aside: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1);
    }

    /// An operator's `sqlite3` session (or a backup) holding the write lock: init fails at
    /// once, naming the path and the lock, and the file and its events are left as they are.
    #[test]
    fn a_locked_outbox_fails_promptly_and_is_left_untouched() {
        use std::os::unix::fs::MetadataExt;
        let d = dir("locked");
        let path = d.join("o.db");
        {
            let (mut o, _) = Outbox::open(&path).unwrap();
            put(&mut o, out("k1", Action::Trigger, "kept"), true, &none);
        }
        let inode = std::fs::metadata(&path).unwrap().ino();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let started = std::time::Instant::now();
        let err = Outbox::open(&path).err().expect("refused while locked").0;
        let waited = started.elapsed();
        assert!(
            err.contains("parameter 'outbox_path'") && err.contains(&path.display().to_string()),
            "{err}"
        );
        assert!(err.contains("locked") && err.contains("busy"), "{err}");
        assert!(!err.contains("moved aside"), "{err}");
        assert!(waited < std::time::Duration::from_secs(1), "{waited:?}");
        other.execute_batch("COMMIT").unwrap();
        drop(other);
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
        let (o, warn) = Outbox::open(&path).unwrap();
        assert!(warn.is_none());
        assert_eq!(o.pending_count().unwrap(), 1, "the events are still there");
        let aside = std::fs::read_dir(&d)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
        assert!(!aside);
    }

    /// Another application's database is refused, not adopted: left byte for byte as it was.
    #[test]
    fn another_applications_database_is_refused_and_left_untouched() {
        let d = dir("foreign");
        for (name, setup) in [
            (
                "tables.db",
                "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1, 'x');",
            ),
            // our table names, but another application's mark
            (
                "marked.db",
                "PRAGMA application_id=1234; CREATE TABLE outbox (id INTEGER);",
            ),
        ] {
            let path = d.join(name);
            Connection::open(&path)
                .unwrap()
                .execute_batch(setup)
                .unwrap();
            let before = std::fs::read(&path).unwrap();
            let err = Outbox::open(&path).err().expect("refused").0;
            assert!(
                err.contains("parameter 'outbox_path'") && err.contains("another application"),
                "{err}"
            );
            assert_eq!(std::fs::read(&path).unwrap(), before, "{name} untouched");
            for side in ["-wal", "-shm"] {
                let mut p = path.as_os_str().to_owned();
                p.push(side);
                assert!(!PathBuf::from(p).exists(), "{name}{side}");
            }
        }
    }

    /// A new outbox carries our application_id; one of an earlier version (no mark, our
    /// tables) is adopted with its events and marked.
    #[test]
    fn outboxes_are_marked_and_earlier_ones_adopted() {
        let id_of = |p: &Path| -> i64 {
            Connection::open(p)
                .unwrap()
                .query_row("PRAGMA application_id", [], |r| r.get(0))
                .unwrap()
        };
        let d = dir("mark");
        let fresh = d.join("new.db");
        drop(Outbox::open(&fresh).unwrap());
        assert_eq!(id_of(&fresh), APPLICATION_ID);
        let old = d.join("old.db");
        {
            let c = Connection::open(&old).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            c.execute_batch(
                "PRAGMA user_version=1; INSERT INTO outbox (dedup_key, action, opens, summary, body, created) VALUES ('k', 'trigger', 1, 's', '{}', 0);",
            )
            .unwrap();
        }
        assert_eq!(id_of(&old), 0);
        let (o, warn) = Outbox::open(&old).unwrap();
        assert!(warn.is_none());
        assert_eq!(o.pending_count().unwrap(), 1);
        drop(o);
        assert_eq!(id_of(&old), APPLICATION_ID);
    }

    #[test]
    fn the_outbox_and_its_wal_and_shm_are_private() {
        use std::os::unix::fs::MetadataExt;
        let d = dir("mode");
        let path = d.join("o.db");
        let (mut o, _) = Outbox::open(&path).unwrap();
        let mut b = o.batch().unwrap();
        b.insert(&out("1_2", Action::Trigger, "a"), true, &none, false)
            .unwrap();
        b.commit().unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let f = d.join(format!("o.db{suffix}"));
            let mode = std::fs::metadata(&f).unwrap().mode() & 0o777;
            assert_eq!(mode, 0o640, "{}", f.display());
        }
    }

    #[test]
    fn one_output_per_database_and_missing_directory() {
        let d = dir("lock");
        let path = d.join("o.db");
        let (_held, _) = Outbox::open(&path).unwrap();
        let err = Outbox::open(&path).err().unwrap().0;
        assert!(err.contains("another running output"), "{err}");
        let err = Outbox::open(&d.join("missing/o.db")).err().unwrap().0;
        assert!(
            err.contains("outbox_path") && err.contains("does not exist"),
            "{err}"
        );
    }

    /// A database of schema 1 (before names were kept) is migrated in place: its incident
    /// states stay, without names; names written afterwards read back the same.
    #[test]
    fn schema_1_is_migrated_and_names_read_back() {
        let path = dir("migrate").join("o.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            c.execute_batch("INSERT INTO objects VALUES (7, 0, 1, 0); PRAGMA user_version=1;")
                .unwrap();
        }
        let key = ObjectKey {
            host_id: 7,
            service_id: 3,
        };
        let names = Names {
            host_name: Some("srv-7".into()),
            host_address: Some("10.0.0.7".into()),
            poller: Some("Central".into()),
            hostgroups: vec!["linux".into(), "db".into()],
            host_severity: Some(2),
            service_description: Some("Disk".into()),
            servicegroups: vec![],
            service_severity: None,
        };
        {
            let (mut o, warn) = Outbox::open(&path).unwrap();
            assert!(warn.is_none());
            let old = o.objects().unwrap();
            assert_eq!(old.len(), 1);
            assert_eq!((old[0].open_state, old[0].names.clone()), (Some(1), None));
            let mut b = o.batch().unwrap();
            b.object(&ObjectState {
                key,
                open_state: Some(2),
                acknowledged: true,
                names: Some(Arc::new(names.clone())),
                last: None,
            })
            .unwrap();
            b.commit().unwrap();
        }
        let (o, _) = Outbox::open(&path).unwrap();
        let version: i64 = o
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let got = o.objects().unwrap();
        let s = got.iter().find(|s| s.key == key).unwrap();
        assert_eq!(s.names.as_deref(), Some(&names));
        assert!(s.acknowledged);
    }
}
