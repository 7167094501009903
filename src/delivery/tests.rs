//! The committer, the lanes' waits and the rate limit, driven step by step without threads.

use std::collections::{HashSet, VecDeque};
use std::ops::ControlFlow;
use std::sync::atomic::Ordering::{self, Relaxed};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::commit::Held;
use super::committer::{BURST_EVENTS, Committer, MAX_BATCH};
use super::lane::{Backoff, Lane, next_id, processed, wait_turn};
use super::queue::{Msg, Shared, release};
use super::throttle::{Throttle, Turn};
use super::*;
use crate::config::{Config, ParamValue, Secret};
use crate::decision::Action;
use crate::event::ObjectKey;
use crate::log::{Level, Sink};
use crate::payload::{self, Outgoing};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A committer on a fresh outbox, without threads: the test drives it.
fn committer(name: &str) -> (Committer, Arc<Shared>) {
    let dir = crate::files::tests::scratch(&format!("delivery-{name}"));
    let (outbox, _) = Outbox::open(&dir.join("o.db")).unwrap();
    let key = "abcdefghijklmnopqrstuvwxyz012345";
    let shared = Arc::new(Shared::new(
        (0..LANES).map(|_| VecDeque::new()).collect(),
        Arc::new(Sink::in_memory(Level::Debug)),
        Secret::new(key),
    ));
    let (_inbox, rx) = mpsc::channel();
    let params = [("pdy_routing_key".to_string(), ParamValue::Str(key.into()))];
    let c = Committer {
        shared: Arc::clone(&shared),
        cfg: Config::from_params(&params).unwrap().0.payload,
        outbox,
        rx,
        held: VecDeque::new(),
        results: Vec::new(),
        pending_rows: 0,
        max_events: 100_000,
        rejected_max: 10,
        delay: ms(10),
        max_buffer_size: 1,
        max_buffer_age: Duration::from_secs(1),
        stats_path: dir.join("stats.json"),
        stats_interval: Duration::from_secs(5),
        last_stats: None,
        blocked: None,
        clear_since: None,
        arrivals: VecDeque::with_capacity(BURST_EVENTS),
        unacknowledged_since: None,
        batch_limit: MAX_BATCH,
    };
    (c, shared)
}

fn event(key: &str, action: Action, opens: bool) -> Held {
    let mut body = serde_json::Map::new();
    body.insert("dedup_key".into(), key.into());
    body.insert("event_action".into(), action.as_str().into());
    Held {
        out: Outgoing {
            dedup_key: key.into(),
            action,
            summary: key.into(),
            body: body.into(),
        }
        .into(),
        status: None,
        opens,
        object: ObjectState {
            key: ObjectKey {
                host_id: 1,
                service_id: 1,
            },
            open_state: None,
            acknowledged: false,
            names: None,
            last: None,
        },
    }
}

/// The same event as Broker's thread hands it over.
fn handed(seq: u64, key: &str, action: Action, opens: bool) -> Msg {
    let Held {
        out, opens, object, ..
    } = event(key, action, opens);
    Msg::Event(
        seq,
        Box::new(NewEvent {
            body: Body::Stored(out),
            opens,
            object,
        }),
    )
}

/// A status handed over unbuilt is stored with exactly the payload Broker's thread would
/// have built, and the stored and built bodies go to the outbox alike.
#[test]
fn the_committer_builds_status_payloads_as_brokers_thread_would() {
    use crate::event::{Event, RawEvent, RawValue};
    let (mut c, _shared) = committer("build");
    let raw = RawEvent::new()
        .with("category", RawValue::Int(1))
        .with("element", RawValue::Int(29))
        .with("host_id", RawValue::Int(12))
        .with("service_id", RawValue::Int(34))
        .with("state", RawValue::Int(2))
        .with("state_type", RawValue::Int(1))
        .with("output", RawValue::Str("CRITICAL - disk full".into()))
        .with("perfdata", RawValue::Str("'used'=97%;80;90;0;100".into()))
        .with("last_check", RawValue::Int(1_700_000_000))
        .with("last_state_change", RawValue::Int(1_700_000_000))
        .with("host_name", RawValue::Str("srv-db".into()))
        .with("service_description", RawValue::Str("Disk".into()));
    let Some(Event::Status(st)) = Event::from_raw(&raw).unwrap() else {
        panic!("not a status");
    };
    let want: Stored = payload::status_event(&st, Action::Trigger, &c.cfg).into();
    assert!(want.body.contains("\"Metrics\""), "{}", want.body);
    let object = ObjectState {
        key: st.key,
        open_state: Some(2),
        acknowledged: false,
        names: None,
        last: None,
    };
    let msg = Msg::Event(
        1,
        Box::new(NewEvent {
            body: Body::Status(Box::new(st), Action::Trigger),
            opens: true,
            object: object.clone(),
        }),
    );
    let mut release = false;
    assert!(!c.take(msg, &mut release));
    let (seq, held) = &c.held[0];
    assert_eq!((*seq, held.opens, &held.object), (1, true, &object));
    assert!(held.status.is_some(), "built at the commit, not on arrival");
    c.commit();
    let stored = c.outbox.pending().unwrap();
    assert_eq!(stored.len(), 1);
    let reader = c.outbox.reader().unwrap();
    assert_eq!(reader.fetch(stored[0].0).unwrap(), Some(want));
}

/// New events wait for more only in a burst: the latest [`BURST_EVENTS`] events all
/// arrived within the delay. Fewer, or as many spread over more than the delay (a steady
/// stream of state changes, where waiting only kept Broker's events unacknowledged), are
/// committed at once; a burst waits until the delay after the oldest event Broker's
/// acknowledgement waits for, however short the previous commit was, and not again once
/// Broker has waited that long (a stream that never leaves a moment with everything
/// committed would hold the watermark for a delay at every commit).
///
/// The late event comes 1 s after the others and a burst waits 5 s: a busy machine would have
/// to stall a thread for a second to join it where no wait is due, or for 2.5 s to miss it.
#[test]
fn only_a_burst_waits_for_more_events_and_only_once_per_acknowledgement() {
    let delay = Duration::from_secs(5);
    // (events already arrived, how long ago the oldest of them came, how long ago the oldest
    // still uncommitted came (None: all committed), whether the commit waits)
    for (arrived, oldest_ago, uncommitted_ago, waits) in [
        (2, ms(0), None, false),
        (BURST_EVENTS - 1, ms(0), None, false),
        (BURST_EVENTS + 5, delay + ms(500), None, false),
        (BURST_EVENTS, ms(0), None, true),
        (BURST_EVENTS + 5, delay / 2, None, true),
        (BURST_EVENTS + 5, delay / 2, Some(ms(500)), true),
        (BURST_EVENTS + 5, delay / 2, Some(delay + ms(500)), false),
    ] {
        let what = format!(
            "{arrived} events, the oldest {oldest_ago:?} ago, uncommitted since {uncommitted_ago:?}"
        );
        let (mut c, _shared) = committer(&format!(
            "burst-{arrived}-{}-{}",
            oldest_ago.as_millis(),
            uncommitted_ago.map_or(0, |d| d.as_millis())
        ));
        let (tx, rx) = mpsc::channel();
        c.rx = rx;
        c.delay = delay;
        let mut release = false;
        // the earlier events, committed already: only their arrival times are left
        for seq in 0..arrived as u64 - 1 {
            let m = handed(seq + 1, &format!("k{seq}"), Action::Trigger, true);
            assert!(!c.take(m, &mut release));
        }
        c.held.clear();
        let shift = |t: Instant, ago: Duration| t.checked_sub(ago).expect("uptime");
        for t in c.arrivals.iter_mut() {
            *t = shift(*t, oldest_ago);
        }
        c.unacknowledged_since = uncommitted_ago.map(|ago| shift(Instant::now(), ago));
        tx.send(handed(arrived as u64, "now", Action::Trigger, true))
            .unwrap();
        let later = tx.clone();
        let late = std::thread::spawn(move || {
            std::thread::sleep(ms(1000));
            let _ = later.send(handed(99, "late", Action::Trigger, true));
        });
        let m = c.rx.recv().unwrap();
        assert!(!c.take(m, &mut release));
        assert!(!c.gather(&mut release));
        late.join().unwrap();
        let joined = c.held.len() > 1;
        assert_eq!(joined, waits, "{what}");
        drop(tx);
    }
}

/// The wait of a burst is counted from the oldest event Broker's acknowledgement waits for;
/// the commit that leaves nothing uncommitted ends it, and a commit that leaves events handed
/// over meanwhile (still on their way to the committer) does not.
#[test]
fn a_commit_that_leaves_nothing_uncommitted_ends_the_acknowledgements_wait() {
    let (mut c, shared) = committer("unacknowledged-since");
    let mut release = false;
    assert!(!c.take(handed(1, "a", Action::Trigger, true), &mut release));
    let first = c.unacknowledged_since.expect("set by the first event");
    assert!(!c.take(handed(2, "b", Action::Trigger, true), &mut release));
    assert_eq!(c.unacknowledged_since, Some(first), "kept by later events");
    // a third event handed over by Broker's thread during the commit
    shared.submitted.store(3, Ordering::SeqCst);
    c.commit();
    assert_eq!(shared.committed.load(Ordering::SeqCst), 2);
    assert_eq!(c.unacknowledged_since, Some(first), "event 3 still waits");
    assert!(!c.take(handed(3, "c", Action::Trigger, true), &mut release));
    c.commit();
    assert_eq!(c.unacknowledged_since, None, "everything committed");
}

/// A commit wakes only the lanes its rows go to: with 16 lanes, waking all of them per
/// commit cost more CPU than the requests themselves on a 2-core machine.
#[test]
fn released_rows_wake_only_their_lanes() {
    let (mut c, shared) = committer("wake");
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    let lanes: HashSet<usize> = keys[..3].iter().map(|k| lane_of(k)).collect();
    for (seq, k) in keys[..3].iter().enumerate() {
        c.held
            .push_back((seq as u64 + 1, event(k, Action::Trigger, true)));
    }
    let mut q = shared.lock();
    assert_eq!(release(&mut q), 0, "nothing buffered, no lane to wake");
    drop(q);
    c.max_buffer_size = 1000;
    c.commit();
    let mut q = shared.lock();
    let mask = release(&mut q);
    let want: u64 = lanes.iter().map(|l| 1u64 << l).sum();
    assert_eq!(mask, want);
    for (lane, rows) in q.lanes.iter().enumerate() {
        assert_eq!(!rows.is_empty(), lanes.contains(&lane), "lane {lane}");
    }
}

/// A committed row reaches its lane from memory, exactly as stored; a row updated or
/// merged away after its commit is never sent from memory.
#[test]
fn lanes_take_committed_rows_from_memory_unless_changed_since() {
    let (mut c, shared) = committer("ready");
    let reader = c.outbox.reader().unwrap();
    c.held.push_back((1, event("k1", Action::Trigger, true)));
    c.commit();
    let (id, kept) = next_id(&shared, lane_of("k1")).unwrap();
    assert_eq!(kept, reader.fetch(id).unwrap());
    assert!(shared.lock().ready.is_empty());
    // rate limited: rows wait in their lanes, where newer events merge with them
    shared.lock().throttle.paused_until = Some(Instant::now() + Duration::from_secs(60));
    c.held.push_back((2, event("k2", Action::Trigger, true)));
    c.held.push_back((3, event("k3", Action::Trigger, true)));
    c.commit();
    assert_eq!(shared.lock().ready.len(), 2);
    let mut critical = event("k2", Action::Trigger, false);
    critical.out.summary = "critical".into();
    c.held.push_back((4, critical));
    c.held.push_back((5, event("k3", Action::Resolve, false)));
    c.commit();
    assert_eq!(shared.counters.merged.load(Relaxed), 3);
    assert!(
        shared.lock().ready.is_empty(),
        "the update and the merge dropped both"
    );
    assert_eq!(shared.lock().lanes[lane_of("k3")].len(), 0);
    shared.lock().throttle = Throttle::default();
    let (id, kept) = next_id(&shared, lane_of("k2")).unwrap();
    assert_eq!(kept, None, "read back from the database");
    assert_eq!(reader.fetch(id).unwrap().unwrap().summary, "critical");
    // in the same commit: a row updated right after its insert is not kept either
    shared.lock().throttle.paused_until = Some(Instant::now() + Duration::from_secs(60));
    c.held.push_back((6, event("k4", Action::Trigger, true)));
    let mut newer = event("k4", Action::Trigger, false);
    newer.out.summary = "newer".into();
    c.held.push_back((7, newer));
    c.commit();
    assert!(shared.lock().ready.is_empty());
    assert!(c.held.is_empty());
}

/// A lane reading a row back: an event is sent, a row gone is settled as delivered, an
/// unreadable row moves to rejected with why (retrying would not help) instead of blocking its
/// lane.
#[test]
fn a_lane_rejects_an_unreadable_row_and_settles_a_gone_one() {
    let (mut c, shared) = committer("read-back");
    c.held.push_back((1, event("k1", Action::Trigger, true)));
    c.held.push_back((2, event("k2", Action::Trigger, true)));
    c.commit();
    let ids: Vec<i64> = c
        .outbox
        .pending()
        .unwrap()
        .iter()
        .map(|(id, _)| *id)
        .collect();
    let path = std::env::temp_dir()
        .join(format!("cpd-delivery-read-back-{}", std::process::id()))
        .join("o.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE outbox SET body = '<html>' WHERE id = ?1", [ids[1]])
        .unwrap();
    let reader = c.outbox.reader().unwrap();
    let (inbox, rx) = mpsc::channel();
    let lane = Lane {
        shared: &shared,
        transport: &Transport::LogOnly,
        reader: &reader,
        inbox: &inbox,
        lane: 0,
        curl: None,
    };
    let row = lane.read_back(ids[0]);
    assert!(matches!(row, ControlFlow::Continue(Some(ref out)) if out.dedup_key == "k1"));
    assert!(rx.try_recv().is_err(), "an event is sent, not settled");
    assert!(matches!(
        lane.read_back(ids[1]),
        ControlFlow::Continue(None)
    ));
    match rx.try_recv() {
        Ok(Msg::Rejected(id, why)) => {
            assert_eq!(id, ids[1]);
            assert_eq!(why, format!("outbox row {id} holds an unreadable event"));
        }
        _ => panic!("an unreadable row is rejected"),
    }
    assert!(matches!(
        lane.read_back(ids[1] + 100),
        ControlFlow::Continue(None)
    ));
    assert!(matches!(rx.try_recv(), Ok(Msg::Delivered(id)) if id == ids[1] + 100));
}

/// The merge rule depends on PagerDuty's answers only, never on how fast the lanes take
/// their rows: rows waiting in a lane (no lane thread here takes them) are no backlog.
#[test]
fn events_merge_only_behind_a_failure_or_under_a_rate_limit() {
    let (mut c, shared) = committer("backlog");
    let merged = || shared.counters.merged.load(Relaxed);
    // PagerDuty keeps up: a trigger and its resolve committed together are both sent
    c.held.push_back((1, event("k1", Action::Trigger, true)));
    c.held.push_back((2, event("k1", Action::Resolve, false)));
    c.commit();
    assert_eq!((c.pending_rows, merged()), (2, 0));
    // k1's lane still holds both rows (its thread is slow): a new short incident,
    // committed together or one after the other, is still sent in full and in order
    c.held.push_back((3, event("k1", Action::Trigger, true)));
    c.held.push_back((4, event("k1", Action::Resolve, false)));
    c.commit();
    c.held.push_back((5, event("k1", Action::Trigger, true)));
    c.commit();
    c.held.push_back((6, event("k1", Action::Trigger, false)));
    c.commit();
    c.held.push_back((7, event("k1", Action::Resolve, false)));
    c.commit();
    assert_eq!((c.pending_rows, merged()), (7, 0));
    let ids: Vec<i64> = shared.lock().lanes[lane_of("k1")].iter().copied().collect();
    assert_eq!(ids.len(), 7);
    let reader = c.outbox.reader().unwrap();
    let sent: Vec<Action> = ids
        .iter()
        .map(|id| reader.fetch(*id).unwrap().unwrap().action)
        .collect();
    use Action::{Resolve as R, Trigger as T};
    assert_eq!(sent, [T, R, T, R, T, T, R]);
    // the head event of k2's lane has failed a delivery attempt: events behind it merge,
    // in one commit and across commits
    shared.lock().failing |= 1 << lane_of("k2");
    c.held.push_back((8, event("k2", Action::Trigger, true)));
    c.held.push_back((9, event("k2", Action::Trigger, false)));
    c.commit();
    assert_eq!((c.pending_rows, merged()), (8, 1));
    c.held.push_back((10, event("k2", Action::Resolve, false)));
    c.commit();
    assert_eq!((c.pending_rows, merged()), (7, 3));
    // answered again: no backlog, nothing merges
    shared.lock().failing = 0;
    c.held.push_back((11, event("k2", Action::Trigger, true)));
    c.held.push_back((12, event("k2", Action::Resolve, false)));
    c.commit();
    assert_eq!((c.pending_rows, merged()), (9, 3));
    // the key is rate limited: the same pair is merged away within its commit
    shared.lock().throttle.paused_until = Some(Instant::now() + Duration::from_secs(60));
    c.held.push_back((13, event("k3", Action::Trigger, true)));
    c.held.push_back((14, event("k3", Action::Resolve, false)));
    c.commit();
    assert_eq!((c.pending_rows, merged()), (9, 5));
    assert_eq!(shared.committed.load(Ordering::SeqCst), 14);
    assert_eq!(shared.counters.commits.load(Relaxed), 9);
}

/// Once PagerDuty answers a request again, every lane backing off after a failure retries
/// at once instead of sleeping out its backoff (here an hour), still within the rate
/// limit; a failure after that answer starts a backoff that it does not end.
#[test]
fn an_answer_ends_every_backoff_at_once() {
    let (_c, shared) = committer("release");
    let hour = Duration::from_secs(3600);
    // lanes 1 and 2 failed and back off for an hour; lane 3 is failing too
    let (tx, rx) = mpsc::channel();
    let mut waiting = Vec::new();
    for lane in [1usize, 2] {
        let backoff = {
            let mut q = shared.lock();
            q.failing |= 1 << lane;
            q.backing_off |= 1 << lane;
            Backoff {
                until: Instant::now() + hour,
                recoveries: q.recoveries,
            }
        };
        let (shared, tx) = (Arc::clone(&shared), tx.clone());
        waiting.push(std::thread::spawn(move || {
            let turn = wait_turn(&shared, lane, Some(backoff));
            tx.send((lane, turn.is_some())).unwrap();
        }));
    }
    shared.lock().failing |= 1 << 3;
    assert!(rx.recv_timeout(ms(200)).is_err(), "still backing off");
    // lane 0's request is answered (accepted or rejected): lanes 1 and 2 retry now
    let turn = shared.lock().throttle.turn(Instant::now()).unwrap();
    processed(&shared, turn, 0);
    let mut released: Vec<(usize, bool)> = (0..2)
        .map(|_| rx.recv_timeout(Duration::from_secs(60)).expect("released"))
        .collect();
    released.sort();
    assert_eq!(released, [(1, true), (2, true)]);
    for t in waiting {
        t.join().unwrap();
    }
    {
        let q = shared.lock();
        assert_eq!((q.backing_off, q.recoveries), (0, 1));
        // their head events have not been answered yet: still a backlog there
        assert_eq!(q.failing, (1 << 1) | (1 << 2) | (1 << 3));
    }
    // a backoff that starts after the answer runs its course; the answer to lane 1's
    // request ends lane 1's failing state only
    let later = Backoff {
        until: Instant::now() + hour,
        recoveries: shared.lock().recoveries,
    };
    let turn = shared.lock().throttle.turn(Instant::now()).unwrap();
    processed(&shared, turn, 1);
    assert_eq!(shared.lock().failing, (1 << 2) | (1 << 3));
    assert_eq!(shared.lock().recoveries, 1, "no lane was backing off");
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || tx.send(wait_turn(&shared, 4, Some(later))).unwrap())
    };
    assert!(rx.recv_timeout(ms(200)).is_err(), "backing off");
    shared.lock().stopping = true;
    shared.wake_all();
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), None);
    waiter.join().unwrap();
}

#[test]
fn after_a_429_one_request_probes_then_the_lanes_ramp_up() {
    let t0 = Instant::now();
    let mut t = Throttle::default();
    // four lanes send at once; the first answer is a 429
    let turns: Vec<Turn> = (0..4).map(|_| t.turn(t0).unwrap()).collect();
    let pause = t.limited(turns[0], None, 0.5, t0).unwrap();
    assert_eq!(pause, ms(500));
    // the other requests were sent before the pause: their 429s do not lengthen it, and
    // their acceptance does not end it
    assert_eq!(t.limited(turns[1], None, 0.5, t0 + ms(10)), None);
    assert_eq!(t.paused_until, Some(t0 + pause));
    assert_eq!(t.processed(turns[2], t0 + ms(20)), None);
    t.failed();
    assert_eq!(t.in_flight, 0);
    assert!(t.holds(t0 + ms(20)));
    // nobody sends during the pause; after it, exactly one request probes
    assert_eq!(t.check(t0 + ms(100)), Err(Some(t0 + pause)));
    let after = t0 + pause;
    let probe = t.turn(after).unwrap();
    assert_eq!(t.check(after), Err(None));
    // the probe is answered 429: a longer pause, then again a single probe
    let second = t.limited(probe, None, 0.5, after).unwrap();
    assert_eq!(second, retry::rate_limit_pause(2, 0.5));
    assert!(second > pause);
    let later = after + second;
    // a probe without an answer (5xx, network error) lets another request probe
    t.turn(later).unwrap();
    t.failed();
    let probe = t.turn(later).unwrap();
    assert_eq!(t.turn(later), Err(None));
    // the probe goes through: the episode ends, and each request PagerDuty processes
    // lets one more lane send, up to all of them
    let end = later + ms(5);
    assert_eq!(t.processed(probe, end), Some(end - t0));
    assert!(!t.holds(end));
    let mut sent = vec![t.turn(end).unwrap(), t.turn(end).unwrap()];
    assert_eq!(t.turn(end), Err(None));
    for k in 3..LANES {
        let turn = sent.pop().unwrap();
        assert_eq!(t.processed(turn, end), None);
        assert_eq!(t.ramp, Some(k));
        sent.push(t.turn(end).unwrap());
        sent.push(t.turn(end).unwrap());
        assert_eq!(t.turn(end), Err(None));
    }
    let turn = sent.pop().unwrap();
    t.processed(turn, end);
    assert_eq!(t.ramp, None);
    sent.push(t.turn(end).unwrap());
    // a 429 right after: a storm, paced by the length of the previous episode; the other
    // requests in flight are stale
    let next = t.limited(sent[0], None, 0.5, end + ms(1)).unwrap();
    assert_eq!(next, retry::learned_pause(end - t0, 1, 0.5));
    for turn in sent.drain(1..) {
        assert_eq!(t.limited(turn, None, 0.5, end + ms(1)), None);
    }
    assert_eq!(t.in_flight, 0);
    // Retry-After is honoured as given
    let probe = t.turn(end + ms(1) + next).unwrap();
    let told = t.limited(probe, Some(Duration::from_secs(7)), 0.5, end + next);
    assert_eq!(told, Some(Duration::from_secs(7)));
}
