//! Pending rows: the stored event, inserting it (with merges under a backlog), reading it back to send, settling an earlier run's rows.

use rusqlite::{OptionalExtension, params};

use super::{Batch, Outbox, OutboxError, Reader, now_ms};
use crate::decision::Action;
use crate::payload::Outgoing;

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
    pub(crate) fn outgoing(&self) -> Outgoing {
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

impl Outbox {
    /// Prepares the rows an earlier run of Broker's output left, before they are sent again.
    /// They may have been delivered already (a kill -9 between PagerDuty's answer and the
    /// row's deletion), so sent again they must not open an incident anew: rows that a
    /// resolve of their dedup_key follows are dropped (sent again, they would reopen what the
    /// resolve then closes), and so is a resolve that newer rows follow (sent again after
    /// them, it would close the incident they opened, which they would then reopen):
    /// PagerDuty ends with the key's last word either way. No such row counts as opening
    /// nothing any more (a later resolve must still be sent). Returns the rows dropped.
    pub(crate) fn settle_resumed(&mut self) -> Result<u64, OutboxError> {
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

    /// Ids of the pending rows with their `dedup_key`, oldest first.
    pub(crate) fn pending(&self) -> Result<Vec<(i64, String)>, OutboxError> {
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
    pub(crate) fn oldest_pending(&self) -> Result<Option<i64>, OutboxError> {
        Ok(self
            .conn
            .query_row("SELECT MIN(created) FROM outbox", [], |r| r.get(0))?)
    }
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
                    let note = format!(
                        "{}: trigger then resolve pending for an incident never opened; nothing sent",
                        out.dedup_key
                    );
                    self.merge_away(&mut result, id, 2, note)?;
                    return Ok(result);
                }
                // a resolve supersedes a pending update or acknowledgement of the incident
                ("trigger", Action::Resolve) | ("acknowledge", Action::Resolve) => {
                    let note = format!(
                        "{}: pending {action} superseded by a resolve",
                        out.dedup_key
                    );
                    self.merge_away(&mut result, id, 1, note)?;
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

    /// Deletes pending row `id`, which the event being inserted makes unnecessary: `merged`
    /// events (the row, and the new event when it is not added either) are merged away, as
    /// `note` explains.
    fn merge_away(
        &mut self,
        result: &mut Inserted,
        id: i64,
        merged: u64,
        note: String,
    ) -> Result<(), OutboxError> {
        self.delete(id)?;
        result.removed.push(id);
        result.merged += merged;
        result.note = Some(note);
        Ok(())
    }

    pub(super) fn delete(&mut self, id: i64) -> Result<(), OutboxError> {
        self.tx
            .prepare_cached("DELETE FROM outbox WHERE id = ?1")?
            .execute(params![id])?;
        Ok(())
    }

    /// Removes a delivered row.
    pub(crate) fn delivered(&mut self, id: i64) -> Result<(), OutboxError> {
        self.delete(id)
    }

    /// Records a failed attempt to send a pending row (for operators; sending does not read it).
    pub(crate) fn attempt_failed(&mut self, id: i64, error: &str) -> Result<(), OutboxError> {
        self.tx
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, last_attempt = ?3 WHERE id = ?1",
            )?
            .execute(params![id, error, now_ms()])?;
        Ok(())
    }
}

/// A row read back by a lane: its event, gone (merged or settled), or unreadable (why): final.
pub(crate) enum Fetched {
    Event(Stored),
    Gone,
    Unreadable(String),
}

impl Reader {
    /// Row `id` as a lane needs it; `Err` only for a database error (busy, I/O).
    pub(crate) fn read(&self, id: i64) -> Result<Fetched, OutboxError> {
        let row: Option<(String, String, String, String)> = self
            .conn
            .prepare_cached("SELECT dedup_key, action, summary, body FROM outbox WHERE id = ?1")?
            .query_row(params![id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        let Some((dedup_key, action, summary, body)) = row else {
            return Ok(Fetched::Gone);
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
            return Ok(Fetched::Unreadable(
                OutboxError::UnreadableRow { id }.to_string(),
            ));
        }
        Ok(Fetched::Event(Stored {
            dedup_key,
            action,
            summary,
            body,
        }))
    }
}

#[cfg(test)]
impl Reader {
    /// The row to send, or `None` when it is gone; an unreadable row is an error.
    pub(crate) fn fetch(&self, id: i64) -> Result<Option<Stored>, OutboxError> {
        match self.read(id)? {
            Fetched::Event(row) => Ok(Some(row)),
            Fetched::Gone => Ok(None),
            Fetched::Unreadable(_) => Err(OutboxError::UnreadableRow { id }),
        }
    }
}
