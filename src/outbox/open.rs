//! Opening the outbox: lock file, application id, schema, and what a damaged, locked or foreign database does.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::error::{Damage, OpenFailure};
use super::schema::{MIGRATIONS, SCHEMA, SCHEMA_VERSION};
use super::{Outbox, OutboxError, lock_path, now_ms};

/// `PRAGMA application_id` of an outbox ("CPD1"): a database without it is not adopted
/// unless it is empty or an outbox of an earlier version ([`OUR_TABLES`]).
pub(crate) const APPLICATION_ID: i64 = 0x4350_4431;

/// The tables of an outbox (an earlier version's outbox has no [`APPLICATION_ID`]).
const OUR_TABLES: [&str; 3] = ["objects", "outbox", "rejected"];

/// How long opening the outbox (on Broker's thread) waits for a lock another program holds.
const OPEN_BUSY_WAIT: Duration = Duration::from_millis(200);

/// Takes the exclusive lock on `lock`, trying again for at most `wait` while it is held.
///
/// The lock (`flock`) belongs to the open file, not to a process: a process that forks
/// while an outbox is open (another thread spawning a program, a Broker reload racing a
/// Lua `io.popen`) keeps a copy of the descriptor, and with it the lock, until the child
/// execs and closes it. An outbox closed just before is then seen held for that moment;
/// waiting a little tells that moment from another output really using the outbox.
fn lock_within(lock: &std::fs::File, wait: Duration) -> Result<(), std::fs::TryLockError> {
    let deadline = Instant::now() + wait;
    loop {
        match lock.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(LOCK_RETRY);
            }
            other => return other,
        }
    }
}

/// How often [`lock_within`] tries the lock again.
const LOCK_RETRY: Duration = Duration::from_millis(5);

/// How long the committer and the lanes (off Broker's thread) wait for a lock.
const WORK_BUSY_WAIT: Duration = Duration::from_secs(5);

/// An SQLite error on opening, classified by its code (never by its text): only real damage
/// ([`OutboxError::Damaged`]) moves the file aside; anything else (locked, not readable or
/// writable, an I/O error...) leaves the file as it is and fails init.
fn classify(path: &Path, e: rusqlite::Error) -> OutboxError {
    use rusqlite::ErrorCode as C;
    let why = match e.sqlite_error_code() {
        Some(C::NotADatabase | C::DatabaseCorrupt) => {
            return OutboxError::Damaged(Damage::NotADatabase(e));
        }
        Some(C::DatabaseBusy | C::DatabaseLocked) => OpenFailure::Locked(e),
        Some(C::PermissionDenied | C::ReadOnly | C::CannotOpen) => OpenFailure::Permission {
            error: e,
            cause: access_cause(path),
        },
        Some(C::SystemIoFailure) => OpenFailure::Io(e),
        Some(C::DiskFull) => OpenFailure::DiskFull(e),
        _ => OpenFailure::Sqlite(e),
    };
    failed(path, why)
}

/// Opening the outbox at `path` failed: `why`.
fn failed(path: &Path, why: OpenFailure) -> OutboxError {
    OutboxError::Open {
        path: path.to_path_buf(),
        why,
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

impl Outbox {
    /// Opens (or creates) the outbox at `path`. A damaged database is moved aside (the
    /// returned warning says where) and a fresh one created; any other failure (a lock held
    /// by another output or program for longer than [`OPEN_BUSY_WAIT`], permissions, I/O,
    /// another application's database) is an error naming `outbox_path`, with the file left
    /// as it is.
    pub fn open(path: &Path) -> Result<(Outbox, Option<String>), OutboxError> {
        Self::open_waiting(path, OPEN_BUSY_WAIT)
    }

    /// [`Outbox::open`], waiting at most `wait` for the lock file.
    pub(crate) fn open_waiting(
        path: &Path,
        wait: Duration,
    ) -> Result<(Outbox, Option<String>), OutboxError> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(failed(path, OpenFailure::NoDirectory(dir.to_path_buf())));
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(path))
            .map_err(|error| {
                let lock = lock_path(path);
                failed(path, OpenFailure::LockFile { lock, error })
            })?;
        match lock_within(&lock, wait) {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(failed(path, OpenFailure::InUse));
            }
            Err(std::fs::TryLockError::Error(error)) => {
                let lock = lock_path(path);
                return Err(failed(path, OpenFailure::Lock { lock, error }));
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
            Err(OutboxError::Damaged(first)) if path.exists() => {
                let aside = Self::move_aside(path)?;
                let conn = Self::open_checked(path)?;
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
            Err(e) => Err(e),
        }
    }

    fn open_checked(path: &Path) -> Result<Connection, OutboxError> {
        let fatal = |e: rusqlite::Error| classify(path, e);
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
            return Err(failed(path, OpenFailure::NoWal { mode }));
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
            return Err(OutboxError::Damaged(Damage::IntegrityCheck(check)));
        }
        // the write lock, taken now: a database another program holds fails here
        conn.execute_batch("BEGIN IMMEDIATE").map_err(fatal)?;
        let setup = || -> Result<(), OutboxError> {
            let version: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(fatal)?;
            if version > SCHEMA_VERSION {
                return Err(failed(path, OpenFailure::Newer { version }));
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
    fn check_ours(path: &Path, conn: &Connection) -> Result<(), OutboxError> {
        let fatal = |e: rusqlite::Error| classify(path, e);
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
        Err(failed(
            path,
            OpenFailure::Foreign {
                application_id: id,
                tables,
            },
        ))
    }

    /// Renames the database (and its WAL and shared-memory files) to `<path>.corrupt-<ms>`.
    fn move_aside(path: &Path) -> Result<PathBuf, OutboxError> {
        let stamp = now_ms();
        let mut aside = path.as_os_str().to_owned();
        aside.push(format!(".corrupt-{stamp}"));
        let aside = PathBuf::from(aside);
        std::fs::rename(path, &aside).map_err(|e| failed(path, OpenFailure::CannotMoveAside(e)))?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            let mut to = aside.as_os_str().to_owned();
            to.push(suffix);
            let _ = std::fs::rename(PathBuf::from(side), PathBuf::from(to));
        }
        Ok(aside)
    }
}
