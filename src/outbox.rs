//! The durable outbox: a SQLite database (WAL, fsync on commit) of events to send, rejected events and per-object incident state.
//!
//! One writer (the committer thread) groups many changes into one transaction; a sender lane
//! reads back, through its own read-only connection, the rows it does not already hold
//! (rows of an earlier run, rows updated after their commit). Bodies are stored and sent as
//! JSON text. A database that cannot
//! be read is moved aside and a fresh one started; one that cannot be created fails `init`,
//! so Broker keeps the events in its own retention.

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::event::ObjectKey;
use crate::payload::{Action, Outgoing};

/// Schema version stored in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectState {
    pub key: ObjectKey,
    /// `Some(state)` when an incident is open.
    pub open_state: Option<i64>,
    pub acknowledged: bool,
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

/// The writer side of the outbox.
pub struct Outbox {
    conn: Connection,
    path: PathBuf,
    /// Held for the life of the outbox: two outputs never use one database.
    _lock: File,
}

fn lock_path(path: &Path) -> PathBuf {
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
    /// returned warning says where) and a fresh one created.
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
            Err(first) if path.exists() => {
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
        let named = |e: rusqlite::Error| {
            OutboxError(format!(
                "parameter 'outbox_path': cannot open {}: {e}",
                path.display()
            ))
        };
        let conn = Connection::open(path).map_err(named)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(named)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(named)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OutboxError(format!(
                "parameter 'outbox_path': {} cannot use WAL mode (got {mode})",
                path.display()
            )));
        }
        // fsync on every commit; checkpoint every 256 pages (1 MiB) and cut the WAL back to
        // 1 MiB after it, so that the WAL never holds much more than the live rows (a WAL
        // that fills a disk cannot be checkpointed once the disk is full)
        conn.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF; \
             PRAGMA wal_autocheckpoint=256; PRAGMA journal_size_limit=1048576;",
        )
        .map_err(named)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(named)?;
        if check != "ok" {
            return Err(OutboxError(format!("integrity check failed: {check}")));
        }
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(named)?;
        if version > SCHEMA_VERSION {
            return Err(OutboxError(format!(
                "parameter 'outbox_path': {} was written by a newer version (schema {version})",
                path.display()
            )));
        }
        conn.execute_batch(SCHEMA).map_err(named)?;
        conn.execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION}"))
            .map_err(named)?;
        Ok(conn)
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
        let mut st = self
            .conn
            .prepare("SELECT host_id, service_id, open_state, acknowledged FROM objects")?;
        let rows = st.query_map([], |r| {
            Ok(ObjectState {
                key: ObjectKey {
                    host_id: r.get::<_, i64>(0)? as u64,
                    service_id: r.get::<_, i64>(1)? as u64,
                },
                open_state: r.get(2)?,
                acknowledged: r.get::<_, i64>(3)? != 0,
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
                "INSERT INTO rejected (dedup_key, action, summary, body, reason, at)
                 SELECT dedup_key, action, summary, body, ?2, ?3 FROM outbox WHERE id = ?1",
            )?
            .execute(params![id, reason, now_ms()])?;
        self.delete(id)?;
        self.tx
            .prepare_cached("DELETE FROM rejected WHERE id <= (SELECT MAX(id) FROM rejected) - ?1")?
            .execute(params![keep as i64])?;
        Ok(())
    }

    /// Records the incident state of an object.
    pub fn object(&mut self, s: &ObjectState) -> Result<(), OutboxError> {
        self.tx
            .prepare_cached(
                "INSERT INTO objects (host_id, service_id, open_state, acknowledged) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (host_id, service_id) DO UPDATE SET open_state = excluded.open_state, acknowledged = excluded.acknowledged",
            )?
            .execute(params![
                s.key.host_id as i64,
                s.key.service_id as i64,
                s.open_state,
                s.acknowledged as i64
            ])?;
        Ok(())
    }

    /// Commits (fsync of the WAL).
    pub fn commit(self) -> Result<(), OutboxError> {
        Ok(self.tx.commit()?)
    }
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
            body,
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
            })
            .unwrap();
            b.commit().unwrap();
        }
        let (o, _) = Outbox::open(&path).unwrap();
        let p = o.pending().unwrap();
        assert_eq!(
            p.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(),
            ["1_2", "3_H"]
        );
        let r = o.reader().unwrap().fetch(p[0].0).unwrap().unwrap();
        assert_eq!(r.summary, "a");
        assert_eq!(r.outgoing().body["event_action"], "trigger");
        assert_eq!(o.objects().unwrap()[0].open_state, Some(2));
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
            body: body.clone(),
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
        assert_eq!((row.outgoing().body, row.summary), (body, "s".to_string()));
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
}
