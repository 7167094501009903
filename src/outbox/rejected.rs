//! Rejected rows: events PagerDuty refused, kept with its reason, counted, moved back to the queue or discarded.

use rusqlite::params;

use super::{Batch, Outbox, OutboxError, now_ms};

/// A rejected event moved back into the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requeued {
    pub rejected_id: i64,
    /// Its new pending row.
    pub id: i64,
    pub dedup_key: String,
    pub action: String,
    /// Events of its `dedup_key` that were already waiting, sent before it.
    pub behind: u64,
}

impl Outbox {
    /// Moves rejected rows (`ids`, or all of them) back to the end of the queue, oldest
    /// first, in one transaction: each is sent after the events of its `dedup_key` already
    /// waiting. Fails, changing nothing, when an id is not a rejected row.
    pub(crate) fn requeue(&mut self, ids: Option<&[i64]>) -> Result<Vec<Requeued>, OutboxError> {
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
    pub(crate) fn discard(
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
        let unknown: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| !all.iter().any(|(r, _, _)| r == id))
            .collect();
        if !unknown.is_empty() {
            return Err(OutboxError::NoSuchRejected {
                ids: unknown,
                outbox: tx.path().unwrap_or("the outbox").to_string(),
            });
        }
        Ok(all
            .into_iter()
            .filter(|(r, _, _)| ids.contains(r))
            .collect())
    }
}

impl Batch<'_> {
    /// Moves a row PagerDuty rejected to `rejected`, keeping at most `keep` rejected rows.
    pub(crate) fn rejected(&mut self, id: i64, reason: &str, keep: u64) -> Result<(), OutboxError> {
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
}
