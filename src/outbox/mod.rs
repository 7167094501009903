//! The durable outbox: a SQLite database (WAL, fsync on commit) of events to send, rejected events and per-object incident state.
//!
//! One writer (the committer thread) groups many changes into one transaction; a sender lane
//! reads back, through its own read-only connection, the rows it does not already hold
//! (rows of an earlier run, rows updated after their commit). Bodies are stored and sent as
//! JSON text. Only a damaged database (not a database, or failing its integrity check) is
//! moved aside and a fresh one started; one that is locked, not readable or writable, another
//! application's, or that cannot be created fails `init`, so Broker keeps the events in its
//! own retention.
//!
//! Layout: `open` (lock, application id, damage), `schema` (tables and migrations),
//! `pending` (rows to send, merges), `rejected`, `objects` (per-object state),
//! `read_only` (operators' commands).

mod error;
mod objects;
mod open;
mod pending;
mod read_only;
mod rejected;
mod schema;

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

pub use error::{Damage, OpenFailure, OutboxError, ReadFailure};
pub(crate) use pending::Fetched;
pub use pending::{Inserted, Stored};
pub(crate) use read_only::{ReadOnly, RejectedRow, Summary};

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
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A read-only connection for a sender lane.
    pub(crate) fn reader(&self) -> Result<Reader, OutboxError> {
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

    /// Copies the WAL into the database and truncates it: after a failed write (a full disk),
    /// this gives back the space the WAL holds, so the next, smaller commit can succeed.
    pub(crate) fn checkpoint(&self) -> Result<(), OutboxError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
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
    /// Commits (fsync of the WAL).
    pub fn commit(self) -> Result<(), OutboxError> {
        Ok(self.tx.commit()?)
    }
}

/// A lane's read-only view.
pub(crate) struct Reader {
    conn: Connection,
}

#[cfg(test)]
mod tests;
