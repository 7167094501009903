//! Why the outbox cannot be used, by kind: callers decide on the kind, the message is for people.

use std::fmt;
use std::path::PathBuf;

/// Why the outbox cannot be used. An opening failure names `outbox_path`.
#[derive(Debug)]
pub enum OutboxError {
    /// Opening the outbox at `path` failed; the file is left as it is.
    Open { path: PathBuf, why: OpenFailure },
    /// The database is damaged, and could not be replaced by a fresh one.
    Damaged(Damage),
    /// A read-only look at the outbox at `path` (operators' commands) failed.
    Unreadable { path: PathBuf, why: ReadFailure },
    /// Row `id` exists but its event cannot be decoded: retrying will not help.
    UnreadableRow { id: i64 },
    /// No rejected row has these ids in `outbox`; nothing was changed.
    NoSuchRejected { ids: Vec<i64>, outbox: String },
    /// The delivery threads could not be started.
    Threads(std::io::Error),
    /// SQLite failed on an outbox in use.
    Database(rusqlite::Error),
}

/// Why opening the outbox failed (the file was not touched).
#[derive(Debug)]
pub enum OpenFailure {
    /// The directory of `outbox_path` does not exist.
    NoDirectory(PathBuf),
    /// The lock file beside the database cannot be created.
    LockFile {
        lock: PathBuf,
        error: std::io::Error,
    },
    /// The lock file cannot be locked (other than by another output holding it).
    Lock {
        lock: PathBuf,
        error: std::io::Error,
    },
    /// Another running output (or `pagerduty-event`) holds the lock file.
    InUse,
    /// Another program holds an SQLite lock on the database.
    Locked(rusqlite::Error),
    /// The database or its WAL cannot be opened for reading and writing; `cause`: what the
    /// system says (`": Permission denied (os error 13)"`), or nothing.
    Permission {
        error: rusqlite::Error,
        cause: String,
    },
    /// An I/O error.
    Io(rusqlite::Error),
    /// The disk is full.
    DiskFull(rusqlite::Error),
    /// Any other SQLite failure.
    Sqlite(rusqlite::Error),
    /// WAL mode could not be set (`mode`: the journal mode SQLite answered).
    NoWal { mode: String },
    /// Written by a newer version (`version`: its schema).
    Newer { version: i64 },
    /// Another application's SQLite database: its `application_id`, else its tables.
    Foreign {
        application_id: i64,
        tables: Vec<String>,
    },
    /// Damaged, and renaming it aside failed.
    CannotMoveAside(std::io::Error),
}

/// What is damaged in a database (moved aside when found on opening).
#[derive(Debug)]
pub enum Damage {
    /// Not a database, or a corrupt one, by SQLite's code.
    NotADatabase(rusqlite::Error),
    /// `PRAGMA quick_check` answered this instead of "ok".
    IntegrityCheck(String),
}

/// Why a read-only look at an outbox failed.
#[derive(Debug)]
pub enum ReadFailure {
    Missing,
    NotAFile,
    Io(std::io::Error),
    Sqlite(rusqlite::Error),
    /// A database without the outbox's tables.
    NotAnOutbox,
}

impl OutboxError {
    /// The row exists but its event cannot be decoded: retrying will not help.
    pub fn is_unreadable_row(&self) -> bool {
        matches!(self, OutboxError::UnreadableRow { .. })
    }

    /// Another running output or `pagerduty-event` holds the outbox.
    pub fn is_in_use(&self) -> bool {
        matches!(
            self,
            OutboxError::Open {
                why: OpenFailure::InUse,
                ..
            }
        )
    }
}

impl From<rusqlite::Error> for OutboxError {
    fn from(e: rusqlite::Error) -> Self {
        OutboxError::Database(e)
    }
}

impl fmt::Display for OutboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutboxError::Open { path, why } => {
                write!(f, "parameter 'outbox_path': ")?;
                why.describe(f, &path.display())
            }
            OutboxError::Damaged(d) => write!(f, "outbox database damaged: {d}"),
            OutboxError::Unreadable { path, why } => {
                write!(f, "cannot read the outbox {}: {why}", path.display())
            }
            OutboxError::UnreadableRow { id } => {
                write!(f, "outbox row {id} holds an unreadable event")
            }
            OutboxError::NoSuchRejected { ids, outbox } => {
                let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
                write!(
                    f,
                    "no rejected event with ID {} in {outbox} (see pagerduty-event list --rejected); nothing changed",
                    ids.join(", ")
                )
            }
            OutboxError::Threads(e) => write!(f, "cannot start threads: {e}"),
            OutboxError::Database(e) => write!(f, "outbox database error: {e}"),
        }
    }
}

impl std::error::Error for OutboxError {}

impl OutboxError {
    /// Why an outbox could not be opened, without the parameter's name (`None` for the other
    /// kinds): for a caller that names the outbox its own way.
    pub(crate) fn open_failure(&self) -> Option<String> {
        struct Why<'a>(&'a OpenFailure, &'a std::path::Path);
        impl fmt::Display for Why<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.describe(f, &self.1.display())
            }
        }
        match self {
            OutboxError::Open { path, why } => Some(Why(why, path).to_string()),
            _ => None,
        }
    }
}

impl OpenFailure {
    /// The failure, after "parameter 'outbox_path': ", for the database at `path`.
    fn describe(&self, f: &mut fmt::Formatter<'_>, path: &dyn fmt::Display) -> fmt::Result {
        match self {
            OpenFailure::NoDirectory(dir) => {
                write!(f, "directory {} does not exist", dir.display())
            }
            OpenFailure::LockFile { lock, error } => {
                write!(f, "cannot create {}: {error}", lock.display())
            }
            OpenFailure::Lock { lock, error } => {
                write!(f, "cannot lock {}: {error}", lock.display())
            }
            OpenFailure::InUse => write!(
                f,
                "{path} is used by another running output; give each output its own outbox_path"
            ),
            OpenFailure::Locked(e) => write!(
                f,
                "{path} is locked by another program (busy: {e}); close it (an sqlite3 session, a \
                 backup) and Broker retries the output"
            ),
            OpenFailure::Permission { error, cause } => write!(
                f,
                "{path} cannot be opened for reading and writing ({error}{cause}); check the owner \
                 and mode of the file and of its directory"
            ),
            OpenFailure::Io(e) => write!(f, "{path} cannot be read or written: I/O error ({e})"),
            OpenFailure::DiskFull(e) => write!(f, "{path} cannot be written: disk full ({e})"),
            OpenFailure::Sqlite(e) => write!(f, "{path} cannot be opened ({e})"),
            OpenFailure::NoWal { mode } => write!(f, "{path} cannot use WAL mode (got {mode})"),
            OpenFailure::Newer { version } => write!(
                f,
                "{path} was written by a newer version (schema {version})"
            ),
            OpenFailure::Foreign {
                application_id,
                tables,
            } => {
                let what = if *application_id != 0 {
                    format!("application_id {application_id}")
                } else {
                    format!("tables: {}", tables.join(", "))
                };
                write!(
                    f,
                    "{path} is another application's SQLite database ({what}), not an outbox; it was left untouched: give the outbox a file of its own"
                )
            }
            OpenFailure::CannotMoveAside(e) => {
                write!(f, "{path} is damaged and cannot be moved aside: {e}")
            }
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::NotADatabase(e) => write!(f, "{e}"),
            Damage::IntegrityCheck(check) => write!(f, "integrity check failed: {check}"),
        }
    }
}

impl fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadFailure::Missing => f.write_str("it does not exist"),
            ReadFailure::NotAFile => f.write_str("not a regular file"),
            ReadFailure::Io(e) => write!(f, "{e}"),
            ReadFailure::Sqlite(e) => write!(f, "{e}"),
            ReadFailure::NotAnOutbox => {
                f.write_str("not an outbox of centreon-pagerduty (no outbox and rejected tables)")
            }
        }
    }
}
