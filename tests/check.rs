//! `pagerduty-event check` (the monitoring plugin), `list`, `resend` and `discard`, the built binary on real outboxes: statuses, thresholds, read-only access beside a running connector.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use pd_standin::{Answer, Standin};
use support::{PROXY_VARS, ROUTING_KEY, UNREACHABLE, scratch};

/// Exit status, stdout and stderr of the binary, run in a clean environment (HOME in `dir`).
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pagerduty-event"));
    cmd.args(args)
        .env("HOME", dir)
        .env_remove("XDG_STATE_HOME")
        .env_remove("PAGERDUTY_ROUTING_KEY")
        .env_remove("PAGERDUTY_EVENT_OUTBOX");
    for v in PROXY_VARS {
        cmd.env_remove(v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run pagerduty-event");
    let (out, err) = (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    );
    assert!(
        !out.contains(ROUTING_KEY) && !err.contains(ROUTING_KEY),
        "the routing key was printed:\n{out}{err}"
    );
    (status.code().unwrap_or(-1), out, err)
}

/// `check` with `args`: its exit status and its one output line.
fn check(dir: &Path, args: &[&str]) -> (i32, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let (code, out, err) = run(dir, &all);
    assert_eq!(out.lines().count(), 1, "one line:\n{out}{err}");
    (code, out.trim_end().to_string())
}

/// A scratch directory with the routing key in `key`.
fn setup(name: &str) -> (PathBuf, String) {
    let dir = scratch(&format!("check-{name}"));
    let key = dir.join("key");
    std::fs::write(&key, format!("{ROUTING_KEY}\n")).unwrap();
    (dir, key.display().to_string())
}

/// `send` of one trigger to `url` through the outbox directory `outbox`.
fn send(dir: &Path, key: &str, outbox: &str, url: &str, dedup_key: &str) -> (i32, String, String) {
    run(
        dir,
        &[
            "send",
            "--routing-key-file",
            key,
            "--url",
            url,
            "--outbox",
            outbox,
            "--wait",
            "2",
            "--action",
            "trigger",
            "--dedup-key",
            dedup_key,
            "--summary",
            &format!("{dedup_key} is down"),
        ],
    )
}

/// The files of a directory with their bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn ok_when_empty_with_default_thresholds_in_the_perfdata() {
    let (dir, _) = setup("ok");
    let outbox = dir.join("outbox.db");
    support::connector(serde_json::json!({}), &dir).close();
    let (code, line) = check(&dir, &["--outbox", outbox.to_str().unwrap()]);
    assert_eq!(code, 0, "{line}");
    assert_eq!(
        line,
        "PAGERDUTY OK - no event waiting for PagerDuty; none rejected | pending=0;100;1000;0 oldest_pending=0s;300;900;0 rejected=0;0;;0"
    );
}

#[test]
fn pending_events_warn_then_critical_with_the_last_error() {
    let (dir, key) = setup("pending");
    let outbox = dir.join("outbox").display().to_string();
    for k in ["db-1", "db-2"] {
        let (code, out, err) = send(&dir, &key, &outbox, UNREACHABLE, k);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("queued"), "{out}{err}");
    }
    // the command line's outbox directory; plain N alerts above N
    let (code, line) = check(&dir, &["--outbox", &outbox, "--warning-pending", "1"]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.starts_with("PAGERDUTY WARNING - 2 events waiting for PagerDuty, oldest "),
        "{line}"
    );
    assert!(line.contains("(last error: network error"), "{line}");
    assert!(
        line.contains("| pending=2;1;1000;0 oldest_pending="),
        "{line}"
    );
    let (code, line) = check(&dir, &["--outbox", &outbox, "--warning-pending", "2"]);
    assert_eq!(code, 0, "{line}");
    let (code, line) = check(
        &dir,
        &[
            "--outbox",
            &outbox,
            "--warning-pending",
            "0",
            "--critical-pending=1",
        ],
    );
    assert_eq!(code, 2, "{line}");
    assert!(line.starts_with("PAGERDUTY CRITICAL - 2 events"), "{line}");
    // the age thresholds, as Nagios ranges (@0: alerts at any age); an empty one is none
    let (code, line) = check(&dir, &["--outbox", &outbox, "--warning-age", "@0:"]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains("oldest_pending=") && line.contains("s;@0:;900;0"),
        "{line}"
    );
    let (code, line) = check(
        &dir,
        &[
            "--outbox",
            &outbox,
            "--critical-age",
            "@0:",
            "--warning-pending=",
        ],
    );
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("pending=2;;1000;0"), "{line}");
}

#[test]
fn rejected_events_warn_with_pagerduty_s_reason() {
    let pd = Standin::start().unwrap();
    pd.push_answers([Answer::Reject("payload.severity is invalid".into())]);
    let (dir, key) = setup("rejected");
    let outbox = dir.join("outbox").display().to_string();
    let (code, out, err) = send(&dir, &key, &outbox, &pd.url(), "web-1");
    assert_eq!(code, 1, "{out}{err}");
    let (code, line) = check(&dir, &["--outbox", &outbox]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.starts_with("PAGERDUTY WARNING - 1 event rejected by PagerDuty (latest "),
        "{line}"
    );
    assert!(
        line.contains("trigger web-1: ") && line.contains("payload.severity is invalid"),
        "{line}"
    );
    assert!(line.ends_with("rejected=1;0;;0"), "{line}");
    let (code, line) = check(
        &dir,
        &[
            "--outbox",
            &outbox,
            "--critical-rejected",
            "0",
            "--warning-rejected",
            "",
        ],
    );
    assert_eq!(code, 2, "{line}");
    assert!(line.ends_with("rejected=1;;0;0"), "{line}");
}

#[test]
fn unknown_when_the_outbox_cannot_be_read_and_nothing_is_created() {
    let (dir, _) = setup("unknown");
    let missing = dir.join("nowhere/broker.db");
    let (code, line) = check(&dir, &["--outbox", missing.to_str().unwrap()]);
    assert_eq!(code, 3, "{line}");
    assert_eq!(
        line,
        format!(
            "PAGERDUTY UNKNOWN - cannot read the outbox {}: it does not exist",
            missing.display()
        )
    );
    let missing = dir.join("broker.db");
    let (code, _) = check(&dir, &["--outbox", missing.to_str().unwrap()]);
    assert_eq!(code, 3);
    assert!(!missing.exists(), "check created the outbox");

    let garbage = dir.join("garbage.db");
    std::fs::write(
        &garbage,
        "not a database, just text that is long enough to be read",
    )
    .unwrap();
    let (code, line) = check(&dir, &["--outbox", garbage.to_str().unwrap()]);
    assert_eq!(code, 3, "{line}");
    assert!(
        line.contains("garbage.db") && line.contains("not a database"),
        "{line}"
    );

    // a plugin's usage error is UNKNOWN too (2 would read as CRITICAL)
    let (code, line) = check(&dir, &["--warning-age", "soon"]);
    assert_eq!(code, 3, "{line}");
    assert!(
        line.starts_with("PAGERDUTY UNKNOWN - --warning-age: "),
        "{line}"
    );
    let (code, line) = check(&dir, &["--bogus"]);
    assert_eq!(code, 3, "{line}");
}

/// Beside a running connector (the outbox open in WAL mode, its lanes retrying) and another
/// connection holding the write lock in the middle of a transaction, `check` and `list`
/// read what is committed; with nobody on the outbox, they change no byte and add no file.
#[test]
fn reads_beside_a_running_connector_and_a_writer_and_changes_nothing() {
    let (dir, _) = setup("live");
    let db = dir.join("outbox.db");
    let mut connector =
        support::connector(serde_json::json!({"http_server_url": UNREACHABLE}), &dir);
    let t = 1_700_000_000;
    for svc in 1..=3 {
        connector.submit(&support::service(1, svc, 2, t)).unwrap();
    }
    let give_up = Instant::now() + Duration::from_secs(30);
    while !connector.flush() {
        assert!(Instant::now() < give_up, "events not stored");
    }
    let writer = rusqlite::Connection::open(&db).unwrap();
    writer
        .execute_batch(
            "BEGIN IMMEDIATE; INSERT INTO rejected (dedup_key, action, summary, body, reason, at) \
             VALUES ('x', 'trigger', 's', '{}', 'uncommitted', 0);",
        )
        .unwrap();
    let (code, line) = check(
        &dir,
        &["--outbox", db.to_str().unwrap(), "--warning-pending", "2"],
    );
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains("3 events waiting for PagerDuty") && line.contains("none rejected"),
        "{line}"
    );
    let (code, out, err) = run(&dir, &["list", "--outbox", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    for svc in 1..=3 {
        assert!(out.contains(&format!(" 1_{svc} ")), "{out}");
    }
    writer.execute_batch("ROLLBACK").unwrap();
    drop(writer);
    connector.close();

    assert!(!Path::new(&format!("{}-wal", db.display())).exists());
    let before = files(&dir);
    let (code, line) = check(&dir, &["--outbox", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{line}");
    let (code, out, err) = run(&dir, &["list", "--outbox", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(files(&dir) == before, "check or list changed the directory");
}

/// A 400 rejects an event; once PagerDuty accepts again, `resend` queues it and `flush`
/// delivers it once; `list` no longer shows it rejected. `discard` forgets one; unknown IDs
/// and an outbox in use change nothing.
#[test]
fn a_rejected_event_is_resent_once_fixed_and_delivered_once() {
    let pd = Standin::start().unwrap();
    pd.push_answers([
        Answer::Reject("payload.summary is invalid".into()),
        Answer::Reject("payload.source is invalid".into()),
    ]);
    let (dir, key) = setup("resend");
    let outbox = dir.join("outbox").display().to_string();
    for k in ["app-1", "app-2"] {
        let (code, out, err) = send(&dir, &key, &outbox, &pd.url(), k);
        assert_eq!(code, 1, "{out}{err}");
    }
    let (code, out, err) = run(&dir, &["list", "--outbox", &outbox, "--rejected"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 waiting for PagerDuty, 2 rejected"), "{out}");
    let line = out.lines().find(|l| l.contains("app-1")).unwrap();
    assert!(
        line.starts_with("1 ")
            && line.contains(" trigger ")
            && line.contains("payload.summary is invalid"),
        "{out}"
    );

    // an unknown ID: nothing changes
    let (code, _, err) = run(&dir, &["resend", "--outbox", &outbox, "1", "7"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no rejected event with ID 7") && err.contains("nothing changed"),
        "{err}"
    );

    let before = pd.accepted().len();
    let (code, out, err) = run(&dir, &["resend", "--outbox", &outbox, "1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("rejected event 1 (trigger app-1) queued again as "),
        "{out}"
    );
    assert!(out.contains("--routing-key-file"), "{out}");
    let (code, line) = check(&dir, &["--outbox", &outbox]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains("1 event waiting for PagerDuty") && line.contains("1 event rejected"),
        "{line}"
    );

    let (code, out, err) = run(
        &dir,
        &[
            "flush",
            "--outbox",
            &outbox,
            "--routing-key-file",
            &key,
            "--url",
            &pd.url(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 delivered"), "{out}");
    let accepted = pd.accepted();
    assert_eq!(accepted.len(), before + 1);
    assert_eq!(
        accepted
            .iter()
            .filter(|b| b["dedup_key"] == "app-1")
            .count(),
        1
    );

    let (code, out, _) = run(&dir, &["list", "--outbox", &outbox]);
    assert_eq!(code, 0);
    assert!(out.contains("0 waiting for PagerDuty, 1 rejected"), "{out}");
    assert!(!out.contains("app-1") && out.contains("app-2"), "{out}");

    // forgotten: check is OK again
    let (code, out, err) = run(&dir, &["discard", "--outbox", &outbox, "--all"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("rejected event 2 (trigger app-2) discarded"),
        "{out}"
    );
    let (code, line) = check(&dir, &["--outbox", &outbox]);
    assert_eq!(code, 0, "{line}");
}

/// A Broker outbox held by a running connector is not changed by `resend`: the connector
/// would not see the row (and could merge a new event into it unseen).
#[test]
fn resend_refuses_an_outbox_a_connector_holds() {
    let pd = Standin::start().unwrap();
    pd.set_default(Answer::Reject("payload.severity is invalid".into()));
    let (dir, _) = setup("resend-held");
    let db = dir.join("outbox.db");
    let mut connector = support::connector(serde_json::json!({"http_server_url": pd.url()}), &dir);
    connector
        .submit(&support::service(1, 1, 2, 1_700_000_000))
        .unwrap();
    assert!(connector.wait_idle(Duration::from_secs(30)), "not answered");
    let (code, out, err) = run(&dir, &["resend", "--outbox", db.to_str().unwrap(), "--all"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("in use by a running connector") && err.contains("nothing changed"),
        "{err}"
    );
    connector.close();
    let (code, out, err) = run(&dir, &["resend", "--outbox", db.to_str().unwrap(), "--all"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("(trigger 1_1) queued again")
            && out.contains("when Broker's PagerDuty output starts"),
        "{out}"
    );
    let (code, line) = check(&dir, &["--outbox", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{line}");
    assert!(line.contains("1 event waiting"), "{line}");
}
