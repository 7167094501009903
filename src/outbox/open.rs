//! Opening the outbox: lock file, application id, schema, and what a damaged, locked or foreign database does.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::schema::{MIGRATIONS, SCHEMA, SCHEMA_VERSION};
use super::{Outbox, OutboxError, lock_path, now_ms};

/// `PRAGMA application_id` of an outbox ("CPD1"): a database without it is not adopted
/// unless it is empty or an outbox of an earlier version ([`OUR_TABLES`]).
pub const APPLICATION_ID: i64 = 0x4350_4431;

/// The tables of an outbox (an earlier version's outbox has no [`APPLICATION_ID`]).
const OUR_TABLES: [&str; 3] = ["objects", "outbox", "rejected"];

/// How long opening the outbox (on Broker's thread) waits for a lock another program holds.
const OPEN_BUSY_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// How long the committer and the lanes (off Broker's thread) wait for a lock.
const WORK_BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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
}
