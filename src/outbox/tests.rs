//! Tests of the outbox: rows, merges, migrations, opening and read-only access.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::open::APPLICATION_ID;
use super::schema::{SCHEMA, SCHEMA_VERSION};
use super::*;
use crate::decision::{Action, Handled, ObjectState, Observed};
use crate::event::{Flags, Names, ObjectKey};
use crate::payload::Outgoing;

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
    crate::files::tests::scratch(&format!("outbox-{name}"))
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
    assert_eq!(
        o.conn
            .query_row("SELECT COUNT(*) FROM rejected", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        3
    );
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
    let err = Outbox::open(&path).err().expect("refused while locked");
    assert!(
        matches!(
            &err,
            OutboxError::Open {
                why: OpenFailure::Locked(_),
                ..
            }
        ),
        "{err:?}"
    );
    let err = err.to_string();
    let waited = started.elapsed();
    assert!(
        err.contains("parameter 'outbox_path'") && err.contains(&path.display().to_string()),
        "{err}"
    );
    assert!(err.contains("locked") && err.contains("busy"), "{err}");
    assert!(!err.contains("moved aside"), "{err}");
    // within OPEN_BUSY_WAIT (0.2 s), not the committer's 5 s: a bound between the two, wide
    // enough for a busy machine's late wake-ups
    assert!(waited < std::time::Duration::from_secs(4), "{waited:?}");
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
        let err = Outbox::open(&path).err().expect("refused");
        assert!(
            matches!(
                &err,
                OutboxError::Open {
                    why: OpenFailure::Foreign { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        let err = err.to_string();
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

/// A forked child keeps a copy of the lock file's descriptor (and so the lock) until it
/// execs: an outbox closed and opened again in that moment waits for it instead of failing
/// init as "used by another running output" (seen in CI: a test reopening its outbox while
/// another test spawned a Lua interpreter).
#[test]
fn a_lock_kept_for_a_moment_by_a_copy_of_its_descriptor_is_waited_for() {
    let d = dir("lock-copy");
    let path = d.join("o.db");
    let (o, _) = Outbox::open(&path).unwrap();
    let copy = o._lock.try_clone().unwrap();
    drop(o);
    // still held through the copy: not waiting is the error it was before
    let err = Outbox::open_waiting(&path, Duration::ZERO).err().unwrap();
    assert!(err.is_in_use(), "{err:?}");
    let closing = Arc::new(AtomicBool::new(false));
    let child = std::thread::spawn({
        let closing = Arc::clone(&closing);
        move || {
            std::thread::sleep(Duration::from_millis(20));
            closing.store(true, Ordering::SeqCst);
            drop(copy);
        }
    });
    // a bound far above any exec: the copy is released well within it
    let (o, warning) = Outbox::open_waiting(&path, Duration::from_secs(60)).unwrap();
    assert!(warning.is_none());
    assert!(
        closing.load(Ordering::SeqCst),
        "opened only once the copy closed"
    );
    child.join().unwrap();
    drop(o);
}

#[test]
fn one_output_per_database_and_missing_directory() {
    let d = dir("lock");
    let path = d.join("o.db");
    let (_held, _) = Outbox::open(&path).unwrap();
    let err = Outbox::open(&path).err().unwrap();
    assert!(err.is_in_use(), "{err:?}");
    assert!(err.to_string().contains("another running output"), "{err}");
    let err = Outbox::open(&d.join("missing/o.db")).err().unwrap();
    assert!(
        matches!(
            &err,
            OutboxError::Open {
                why: OpenFailure::NoDirectory(_),
                ..
            }
        ),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(
        err.contains("outbox_path") && err.contains("does not exist"),
        "{err}"
    );
}

/// A database of schema 1 (before names were kept) is migrated in place: its incident
/// states stay, without names; names written afterwards read back the same.
#[test]
fn schema_1_is_migrated_and_names_read_back() {
    let path = dir("migrate-names").join("o.db");
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

/// A row whose body is not a JSON object is an unreadable row by its kind (a lane moves it to
/// rejected), with the same words as before.
#[test]
fn an_unreadable_row_is_told_by_its_kind() {
    let d = dir("unreadable-row");
    let path = d.join("o.db");
    let (mut o, _) = Outbox::open(&path).unwrap();
    let id = put(&mut o, out("k", Action::Trigger, "s"), true, &none)
        .id
        .unwrap();
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE outbox SET body = 'not json' WHERE id = ?1", [id])
        .unwrap();
    let err = o.reader().unwrap().fetch(id).expect_err("unreadable");
    assert!(err.is_unreadable_row(), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("outbox row {id} holds an unreadable event")
    );
    // a database error is not one, whatever its words
    let other = OutboxError::Database(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(1),
        Some("unreadable event".into()),
    ));
    assert!(!other.is_unreadable_row());
}

/// Each kind's message, word for word as before the kinds (users' logs and alerts match them).
#[test]
fn messages_keep_their_words() {
    let p = PathBuf::from("/var/lib/o.db");
    let open = |why| OutboxError::Open {
        path: p.clone(),
        why,
    };
    let io = || std::io::Error::from_raw_os_error(13);
    let cases = [
        (
            open(OpenFailure::NoDirectory(PathBuf::from("/nope"))),
            "parameter 'outbox_path': directory /nope does not exist".to_string(),
        ),
        (
            open(OpenFailure::LockFile {
                lock: PathBuf::from("/var/lib/o.db.lock"),
                error: io(),
            }),
            format!("parameter 'outbox_path': cannot create /var/lib/o.db.lock: {}", io()),
        ),
        (
            open(OpenFailure::InUse),
            "parameter 'outbox_path': /var/lib/o.db is used by another running output; give each output its own outbox_path".to_string(),
        ),
        (
            open(OpenFailure::NoWal { mode: "delete".into() }),
            "parameter 'outbox_path': /var/lib/o.db cannot use WAL mode (got delete)".to_string(),
        ),
        (
            open(OpenFailure::Newer { version: 9 }),
            "parameter 'outbox_path': /var/lib/o.db was written by a newer version (schema 9)".to_string(),
        ),
        (
            open(OpenFailure::Foreign {
                application_id: 0,
                tables: vec!["a".into(), "b".into()],
            }),
            "parameter 'outbox_path': /var/lib/o.db is another application's SQLite database (tables: a, b), not an outbox; it was left untouched: give the outbox a file of its own".to_string(),
        ),
        (
            OutboxError::Damaged(Damage::IntegrityCheck("row 3 missing".into())),
            "outbox database damaged: integrity check failed: row 3 missing".to_string(),
        ),
        (
            OutboxError::Unreadable {
                path: p.clone(),
                why: ReadFailure::Missing,
            },
            "cannot read the outbox /var/lib/o.db: it does not exist".to_string(),
        ),
        (
            OutboxError::NoSuchRejected {
                ids: vec![4, 7],
                outbox: "/var/lib/o.db".into(),
            },
            "no rejected event with ID 4, 7 in /var/lib/o.db (see pagerduty-event list --rejected); nothing changed".to_string(),
        ),
        (
            OutboxError::Threads(io()),
            format!("cannot start threads: {}", io()),
        ),
    ];
    for (err, want) in cases {
        // the same failure without the parameter's name, for the command line
        let failure = want.strip_prefix("parameter 'outbox_path': ");
        assert_eq!(err.open_failure().as_deref(), failure, "{want}");
        assert_eq!(err.to_string(), want);
    }
}
