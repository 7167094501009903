//! One group commit: lane results and new events written in one transaction, then applied to memory.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::committer::{Blocked, Committer, MAX_BATCH, READY_MAX};
use super::queue::{Msg, Queue, release};
use super::{Body, LANES, NewEvent, lane_of};
use crate::decision::ObjectState;
use crate::event::StatusEvent;
use crate::outbox::{OutboxError, Stored};
use crate::payload;
use crate::payload::PayloadOptions;

/// A new event in the committer.
pub(super) struct Held {
    /// The event as stored; for a status handed over unbuilt, a placeholder with its action
    /// until [`Held::build`] (right before the commit that stores it).
    pub(super) out: Stored,
    /// The status `out` is still to be built from.
    pub(super) status: Option<Box<StatusEvent>>,
    pub(super) opens: bool,
    pub(super) object: ObjectState,
}

impl Held {
    pub(super) fn new(ev: NewEvent) -> Held {
        let NewEvent {
            body,
            opens,
            object,
        } = ev;
        let (out, status) = match body {
            Body::Stored(out) => (out, None),
            Body::Status(st, action) => (
                Stored {
                    dedup_key: String::new(),
                    action,
                    summary: String::new(),
                    body: String::new(),
                },
                Some(st),
            ),
        };
        Held {
            out,
            status,
            opens,
            object,
        }
    }

    /// Builds the payload of a status handed over unbuilt (once; the committer's thread,
    /// outside any lock: the same payload Broker's thread would have built, as it depends on
    /// the status and the configuration only).
    fn build(&mut self, cfg: &PayloadOptions) {
        if let Some(st) = self.status.take() {
            self.out = payload::Builder::new(cfg)
                .status(&st, self.out.action)
                .into();
        }
    }
}

/// What one transaction wrote, applied to memory once it is committed.
#[derive(Debug, Default)]
struct Written {
    /// Rows delivered or rejected (no longer pending).
    done: Vec<i64>,
    /// New rows and their lanes.
    added: Vec<(i64, usize)>,
    /// The held event each new row comes from: (index in `held`, row id).
    origin: Vec<(usize, i64)>,
    /// Rows whose body was replaced by a newer event.
    updated: Vec<i64>,
    /// Rows merged away.
    removed: Vec<i64>,
    /// Events merged.
    merged: u64,
    /// The merges' log lines, each with whether it is a warning (a problem never sent merged
    /// away).
    notes: Vec<(String, bool)>,
    /// Held events the transaction took.
    taken: usize,
    /// Sequence number of the last of them.
    last_seq: Option<u64>,
}

impl Committer {
    /// One transaction: results first (they free room and are never merged), then as many
    /// held events as the outbox has room for. Memory changes only once the commit succeeded.
    pub(super) fn commit(&mut self) {
        // the payloads this batch may store, before anything is locked: built here rather than
        // as the events arrive, gathering stays as quick as it was (how many events share a
        // commit, and so which merge, must not depend on how long their payloads take)
        for (_, ev) in self.held.iter_mut().take(self.batch_limit) {
            ev.build(&self.cfg);
        }
        let shared = Arc::clone(&self.shared);
        let mut q = shared.lock();
        let busy = q.busy.clone();
        // the merge rule: events of a dedup_key merge only in a backlog, when its lane's head
        // event has failed a delivery attempt or the routing key is rate limited; never
        // because a lane is slow to take its rows (while PagerDuty answers, every state change
        // is sent, in order)
        let throttled = q.throttle.holds(Instant::now());
        let behind: Vec<bool> = (0..LANES)
            .map(|lane| throttled || q.failing & (1 << lane) != 0)
            .collect();
        match self.write(&busy, &behind) {
            Ok(written) => {
                let woken = self.requeue(&mut q, &written);
                drop(q);
                self.committed(written, woken);
            }
            Err(e) => {
                drop(q);
                // give back the WAL's space; this fails too while the disk is still full
                let _ = self.outbox.checkpoint();
                self.batch_limit = (self.batch_limit / 2).max(1);
                self.shared.counters.set_error(format!("outbox: {e}"));
                self.set_blocked(Some(Blocked::Disk), &e.to_string());
            }
        }
    }

    /// Writes the lane results and the held events (up to the outbox's room) in one
    /// transaction; `busy` rows are never merged, events of a lane `behind` merge.
    fn write(&mut self, busy: &HashSet<i64>, behind: &[bool]) -> Result<Written, OutboxError> {
        let is_busy = |id: i64| busy.contains(&id);
        let mut batch = self.outbox.batch()?;
        let mut w = Written::default();
        for m in &self.results {
            match m {
                Msg::Delivered(id) => {
                    batch.delivered(*id)?;
                    w.done.push(*id);
                }
                Msg::Rejected(id, reason) => {
                    batch.rejected(*id, reason, self.rejected_max)?;
                    w.done.push(*id);
                }
                Msg::Attempt(id, error) => batch.attempt_failed(*id, error)?,
                _ => {}
            }
        }
        let mut room = self
            .max_events
            .saturating_sub(self.pending_rows.saturating_sub(w.done.len() as u64));
        for (i, (seq, ev)) in self.held.iter().take(self.batch_limit).enumerate() {
            if room == 0 {
                break;
            }
            let lane = lane_of(&ev.out.dedup_key);
            let ins = batch.insert(&ev.out, ev.opens, &is_busy, behind[lane])?;
            batch.object(&ev.object)?;
            if let Some(id) = ins.id {
                w.added.push((id, lane));
                w.origin.push((i, id));
                room -= 1;
            }
            w.updated.extend(ins.updated);
            room += ins.removed.len() as u64;
            w.removed.extend(ins.removed);
            w.merged += ins.merged;
            w.notes
                .extend(ins.note.map(|n| (n, ins.merged >= 2 && ins.id.is_none())));
            w.taken += 1;
            w.last_seq = Some(*seq);
        }
        batch.commit()?;
        Ok(w)
    }

    /// After a commit, in memory: rows delivered or rejected are no longer busy, merged rows
    /// leave the queue, new rows join the buffer (released to their lanes once it is full).
    /// Returns the lanes to wake (a bit each).
    fn requeue(&mut self, q: &mut Queue, w: &Written) -> u64 {
        for id in &w.done {
            q.busy.remove(id);
        }
        let gone: HashSet<i64> = w.removed.iter().copied().collect();
        Self::keep_ready(&mut self.held, q, w.taken, &w.origin, &w.updated, &gone);
        if !gone.is_empty() {
            q.buffer.retain(|(id, _)| !gone.contains(id));
            for lane in q.lanes.iter_mut() {
                lane.retain(|id| !gone.contains(id));
            }
        }
        let fresh: Vec<(i64, usize)> = w
            .added
            .iter()
            .copied()
            .filter(|(id, _)| !gone.contains(id))
            .collect();
        if !fresh.is_empty() && q.buffer.is_empty() {
            q.buffer_since = Some(Instant::now());
        }
        q.buffer.extend(fresh.iter().copied());
        if q.buffer.len() >= self.max_buffer_size {
            release(q)
        } else {
            0
        }
    }

    /// After a commit, outside the lock: counters, Broker's acknowledgement, then the lanes
    /// `woken`, the merge notes, and whether the outbox is now full.
    fn committed(&mut self, w: Written, woken: u64) {
        self.pending_rows = (self.pending_rows + w.added.len() as u64)
            .saturating_sub(w.removed.len() as u64 + w.done.len() as u64);
        self.results.clear();
        let c = &self.shared.counters;
        c.committed
            .fetch_add(w.added.len() as u64, Ordering::Relaxed);
        c.commits.fetch_add(1, Ordering::Relaxed);
        c.merged.fetch_add(w.merged, Ordering::Relaxed);
        // pending before committed: outstanding() never misses an event in between
        c.pending.store(self.pending_rows, Ordering::SeqCst);
        // the acknowledgement first, then the lanes (waking 16 threads takes a while on a
        // small machine)
        if let Some(seq) = w.last_seq {
            self.shared.committed.store(seq, Ordering::SeqCst);
            // events handed over during the commit are still on their way to the committer
            if self.shared.submitted.load(Ordering::SeqCst) <= seq {
                self.unacknowledged_since = None;
            }
            let (lock, cv) = &self.shared.committed_signal;
            drop(lock.lock().unwrap_or_else(|e| e.into_inner()));
            cv.notify_all();
        }
        self.shared.wake_lanes(woken);
        for (n, unsent_problem) in w.notes {
            if unsent_problem {
                log::warn!("{}", n);
            } else {
                log::info!("{}", n);
            }
        }
        self.batch_limit = (self.batch_limit * 2).min(MAX_BATCH);
        if !self.held.is_empty() && self.pending_rows >= self.max_events {
            self.set_blocked(Some(Blocked::Full), "");
        }
    }

    /// Moves the `taken` events just committed out of `held`, keeping the new rows (`origin`:
    /// index in `held`, row id) in [`Queue::ready`] for their lanes, unless merged away or
    /// updated in the same commit. Rows `updated` or `gone` are dropped from it: their lane
    /// reads the database.
    fn keep_ready(
        held: &mut VecDeque<(u64, Held)>,
        q: &mut Queue,
        taken: usize,
        origin: &[(usize, i64)],
        updated: &[i64],
        gone: &HashSet<i64>,
    ) {
        // a set: a burst under a backlog updates thousands of rows in one commit
        let changed: HashSet<i64> = updated.iter().chain(gone).copied().collect();
        for id in &changed {
            q.ready.remove(id);
        }
        let mut origin = origin.iter().peekable();
        for (i, (_, ev)) in held.drain(..taken).enumerate() {
            let Some(&(_, id)) = origin.next_if(|(at, _)| *at == i) else {
                continue;
            };
            if q.ready.len() < READY_MAX && !changed.contains(&id) {
                q.ready.insert(id, ev.out);
            }
        }
    }
}
