//! `pagerduty-event`, the built binary, against the local PagerDuty stand-in: Pandora FMS syntax, `send`, the outbox with `flush`, `test`, `replay`, usage errors, and the routing key never printed.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pd_standin::{Answer, IncidentStatus, Standin};
use serde_json::{Value, json};
use support::{PROXY_VARS, ROUTING_KEY, UNREACHABLE, scratch};

struct Run {
    output: Output,
}

impl Run {
    fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    fn all(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout(), self.stderr())
    }
    fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code(), code, "exit status\n{}", self.all());
        self
    }
    /// Exit status 0 and `<action> <dedup_key>: delivered` on stdout.
    fn expect_delivered(&self, action: &str, dedup_key: &str) -> &Self {
        self.expect(0);
        let line = format!("{action} {dedup_key}: delivered");
        assert!(self.stdout().contains(&line), "{line}\n{}", self.all());
        self
    }
}

/// Runs the binary in a clean environment (no proxy, no routing key, no outbox variable,
/// HOME in `dir`); `env` adds variables. The routing key must never appear in its output.
fn run_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    run_command(dir, cmd, env)
}

const BIN: &str = env!("CARGO_BIN_EXE_pagerduty-event");

/// Runs `cmd` as [`run_env`] runs the binary.
fn run_command(dir: &Path, mut cmd: Command, env: &[(&str, &str)]) -> Run {
    cmd.env("HOME", dir)
        .env_remove("XDG_STATE_HOME")
        .env_remove("PAGERDUTY_ROUTING_KEY")
        .env_remove("PAGERDUTY_EVENT_OUTBOX")
        .env_remove("TZ");
    for v in PROXY_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().expect("run pagerduty-event");
    let run = Run { output };
    assert!(
        !run.stdout().contains(ROUTING_KEY) && !run.stderr().contains(ROUTING_KEY),
        "the routing key was printed\n{}",
        run.all()
    );
    run
}

fn run(dir: &Path, args: &[&str]) -> Run {
    run_env(dir, args, &[])
}

/// A scratch directory with the routing key in `key` (mode 0600) and an outbox `outbox/`.
struct Setup {
    dir: PathBuf,
    key_file: String,
    outbox: String,
}

fn setup(name: &str) -> Setup {
    let dir = scratch(&format!("cli-{name}"));
    let key_file = dir.join("key");
    std::fs::write(&key_file, format!("{ROUTING_KEY}\n")).unwrap();
    Setup {
        key_file: key_file.display().to_string(),
        outbox: dir.join("outbox").display().to_string(),
        dir,
    }
}

impl Setup {
    /// `pagerduty-event pandora` with the key file as `@PATH` and Pandora's arguments.
    fn pandora(&self, url: &str, args: &[&str]) -> Run {
        let key = self.key_argument();
        let mut all = vec![key.as_str()];
        all.extend_from_slice(args);
        self.pandora_fields(url, &all)
    }

    /// The key file as Pandora's `service_api_key` argument.
    fn key_argument(&self) -> String {
        format!("@{}", self.key_file)
    }

    /// `pagerduty-event pandora` with every positional argument given (the key too).
    fn pandora_fields(&self, url: &str, fields: &[&str]) -> Run {
        let mut all = vec![
            "pandora",
            "--url",
            url,
            "--outbox",
            &self.outbox,
            "--timezone",
            "+02:00",
        ];
        all.extend_from_slice(fields);
        run(&self.dir, &all)
    }

    /// What Pandora FMS does with the documented alert command: each value substituted as
    /// plain text between the command's double quotes, the line run by `sh -c`.
    fn pandora_through_shell(&self, url: &str, values: &[&str]) -> Run {
        let mut line = format!(
            "exec \"$0\" pandora --url {url} --outbox '{}' --timezone +02:00 \"{}\"",
            self.outbox,
            self.key_argument()
        );
        for v in values {
            line.push_str(&format!(" \"{v}\""));
        }
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(line).arg(BIN);
        run_command(&self.dir, cmd, &[])
    }

    fn send(&self, url: &str, args: &[&str]) -> Run {
        let mut all = vec![
            "send",
            "--routing-key-file",
            &self.key_file,
            "--url",
            url,
            "--outbox",
            &self.outbox,
        ];
        all.extend_from_slice(args);
        run(&self.dir, &all)
    }

    /// Queues triggers `k<first>`..`k<first + n - 1>` (PagerDuty unreachable): each exits 0.
    fn queue_triggers(&self, first: usize, n: usize) {
        for i in first..first + n {
            let key = format!("k{i}");
            let args = ["--action", "trigger", "--dedup-key", &key, "--summary", "x"];
            self.send(UNREACHABLE, &args).expect(0);
        }
    }

    /// Files of the outbox directory holding the routing key for `flush`.
    fn key_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.outbox)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with(".key.json"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn bodies_for<'a>(bodies: &'a [Value], dedup_key: &str) -> Vec<&'a Value> {
    bodies
        .iter()
        .filter(|b| b["dedup_key"] == dedup_key)
        .collect()
}

#[test]
fn pandora_every_severity_and_both_event_types() {
    let pd = Standin::start().unwrap();
    let s = setup("pandora-severities");
    let cases = [
        ("Critical", "critical"),
        ("Major", "error"),
        ("Warning", "warning"),
        ("Minor", "warning"),
        ("Informational", "info"),
        ("Normal", "info"),
        ("Maintenance", "info"),
    ];
    for (i, (pandora, _)) in cases.iter().enumerate() {
        let id = (100 + i).to_string();
        let r = s.pandora(
            &pd.url(),
            &[
                &id,
                "trigger",
                "Module disk_/var is in critical state",
                "23-11-14 22:13:20",
                pandora,
                "web-01",
                "disk_/var",
                "-95.5",
            ],
        );
        r.expect_delivered("trigger", &format!("pandora-{id}"));
        let r = s.pandora(
            &pd.url(),
            &[
                &id,
                "resolve",
                "[RECOVER]Module disk_/var is in critical state",
                "2023-11-14 22:20:00",
                pandora,
                "web-01",
                "disk_/var",
                "40",
            ],
        );
        r.expect_delivered("resolve", &format!("pandora-{id}"));
    }
    let bodies = pd.accepted();
    assert_eq!(bodies.len(), 2 * cases.len());
    for (i, (pandora, pagerduty)) in cases.iter().enumerate() {
        let id = format!("pandora-{}", 100 + i);
        let events = bodies_for(&bodies, &id);
        assert_eq!(events.len(), 2, "{id}");
        let (trigger, resolve) = (events[0], events[1]);
        assert_eq!(trigger["event_action"], "trigger");
        assert_eq!(resolve["event_action"], "resolve");
        let p = &trigger["payload"];
        assert_eq!(p["severity"], *pagerduty, "{pandora}");
        assert_eq!(p["summary"], "Module disk_/var is in critical state");
        // yy-mm-dd hh:mm:ss in the zone given by --timezone
        assert_eq!(p["timestamp"], "2023-11-14T20:13:20Z");
        assert_eq!(p["source"], "web-01");
        assert_eq!(p["component"], "disk_/var");
        assert_eq!(p["custom_details"]["ModuleData"], "-95.5");
        assert_eq!(p["custom_details"]["AlertId"], (100 + i).to_string());
        assert_eq!(p["custom_details"]["PandoraSeverity"], *pandora);
        assert_eq!(trigger["client"], "Pandora FMS");
        // the [RECOVER] prefix is removed
        assert_eq!(
            resolve["payload"]["summary"],
            "Module disk_/var is in critical state"
        );
        assert_eq!(resolve["payload"]["timestamp"], "2023-11-14T20:20:00Z");
    }
    assert_eq!(pd.open_incident_count(), 0);
    // a later trigger of the same alert opens a new incident
    s.pandora(&pd.url(), &["100", "trigger", "again"]).expect(0);
    let incidents: Vec<_> = pd
        .incidents()
        .into_iter()
        .filter(|i| i.dedup_key == "pandora-100")
        .collect();
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    assert_eq!(incidents[0].status, IncidentStatus::Resolved);
    assert_eq!(incidents[1].status, IncidentStatus::Open);
    // nothing is queued: the key is not kept on disk
    assert!(s.key_files().is_empty());
}

#[test]
fn pandora_description_first_line_is_the_summary_the_rest_in_details() {
    let pd = Standin::start().unwrap();
    let s = setup("pandora-lines");
    let description = "Disk /var full\n/var at 97%\nsince 10:00";
    let r = s.pandora(
        &pd.url(),
        &[
            "7",
            "trigger",
            description,
            "23-11-14 22:13:20",
            "Critical",
            "web-01",
            "disk_/var",
        ],
    );
    r.expect(0);
    let body = &pd.accepted()[0];
    assert_eq!(body["payload"]["summary"], "Disk /var full");
    assert_eq!(
        body["payload"]["custom_details"]["Description"],
        description
    );
}

#[test]
fn pandora_recovery_with_blank_fields_and_unquoted_timestamp() {
    let pd = Standin::start().unwrap();
    let s = setup("pandora-recover");
    // `_timestamp_` left unquoted in the alert command: the date and the time are two words
    s.pandora(
        &pd.url(),
        &[
            "7",
            "trigger",
            "CPU high",
            "2023-11-14",
            "22:13:20",
            "Warning",
            "db-01",
        ],
    )
    .expect(0);
    // recovery fields left blank: Pandora repeats the firing values behind [RECOVER]
    s.pandora(&pd.url(), &["7", "[RECOVER]trigger", "[RECOVER]CPU high"])
        .expect(0);
    let bodies = pd.accepted();
    let actions: Vec<&Value> = bodies.iter().map(|b| &b["event_action"]).collect();
    assert_eq!(actions, ["trigger", "resolve"]);
    assert_eq!(bodies[0]["payload"]["timestamp"], "2023-11-14T20:13:20Z");
    assert_eq!(bodies[0]["payload"]["severity"], "warning");
    assert_eq!(bodies[1]["payload"]["summary"], "CPU high");
    assert_eq!(pd.open_incident_count(), 0);
}

/// A `"` in a description or in module data ends the alert command's quoting: the shell
/// splits the value into more words than Pandora's fields. The alert is still delivered,
/// the words joined back by the documented rule, with a warning.
#[test]
fn pandora_values_with_quotes_are_delivered() {
    let pd = Standin::start().unwrap();
    let s = setup("pandora-quotes");
    let r = s.pandora_through_shell(
        &pd.url(),
        &[
            "31",
            "trigger",
            r#"Disk "/var is full" on web-01"#,
            "23-11-14 22:13:20",
            "Major",
            "web-01",
            "disk_/var",
            r#"status "not ok" (3 retries)"#,
        ],
    );
    r.expect_delivered("trigger", "pandora-31");
    assert!(
        r.stderr()
            .contains("warning: 12 words for Pandora's 9 fields"),
        "{}",
        r.all()
    );
    let bodies = pd.accepted();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let p = &bodies[0]["payload"];
    // the shell removed the quotes; the words are joined with the blank it split at
    assert_eq!(p["summary"], "Disk /var is full on web-01");
    assert_eq!(
        p["custom_details"]["ModuleData"],
        "status not ok (3 retries)"
    );
    assert_eq!(p["timestamp"], "2023-11-14T20:13:20Z");
    assert_eq!(p["severity"], "error");
    assert_eq!(p["source"], "web-01");
    assert_eq!(p["component"], "disk_/var");

    // its recovery, quotes again, resolves the same incident
    s.pandora_through_shell(
        &pd.url(),
        &[
            "31",
            "resolve",
            r#"Disk "/var is fine" again"#,
            "23-11-14 22:30:00",
            "Major",
            "web-01",
            "disk_/var",
            "40",
        ],
    )
    .expect(0);
    assert_eq!(pd.open_incident_count(), 0);
    assert_eq!(pd.accepted()[1]["event_action"], "resolve");
}

/// Pandora's own PagerDuty command takes its arguments from the action's fields, and on a
/// recovery whose fields are left blank Pandora puts `[RECOVER]` before every field but
/// Field 1: the key and the alert id arrive marked too, and the event type may be the
/// marker alone.
#[test]
fn pandora_recovery_with_every_field_marked_resolves() {
    let pd = Standin::start().unwrap();
    let s = setup("pandora-recover-all");
    let key = s.key_argument();
    for (id, event_type) in [("51", "[RECOVER]trigger"), ("52", "[RECOVER]")] {
        s.pandora_fields(
            &pd.url(),
            &[
                &key,
                id,
                "trigger",
                "Fan failure",
                "23-11-14 22:13:20",
                "Critical",
                "sw-01",
                "fan",
                "0",
            ],
        )
        .expect(0);
        let marked = |v: &str| format!("[RECOVER]{v}");
        let r = s.pandora_fields(
            &pd.url(),
            &[
                &marked(&key),
                &marked(id),
                event_type,
                &marked("Fan failure"),
                &marked("23-11-14 22:20:00"),
                &marked("Critical"),
                &marked("sw-01"),
                "fan",
                "1",
            ],
        );
        r.expect_delivered("resolve", &format!("pandora-{id}"));
    }
    let bodies = pd.accepted();
    let actions = support::actions(&bodies);
    let expected = [
        ("trigger", "pandora-51"),
        ("resolve", "pandora-51"),
        ("trigger", "pandora-52"),
        ("resolve", "pandora-52"),
    ]
    .map(|(a, k)| (a.to_string(), k.to_string()));
    assert_eq!(actions, expected);
    assert_eq!(bodies[1]["payload"]["summary"], "Fan failure");
    assert_eq!(bodies[1]["payload"]["timestamp"], "2023-11-14T20:20:00Z");
    assert_eq!(bodies[1]["payload"]["source"], "sw-01");
    assert_eq!(pd.open_incident_count(), 0);
}

#[test]
fn pandora_malformed_timestamp_and_missing_argument_exit_2() {
    let pd = Standin::start().unwrap();
    let s = setup("pandora-usage");
    let r = s.pandora(
        &pd.url(),
        &["8", "trigger", "Disk", "14/11/2023 22:13:20", "Critical"],
    );
    r.expect(2);
    let err = r.stderr();
    assert_eq!(err.lines().count(), 1, "{}", r.all());
    assert!(
        err.contains("fired_timestamp") && err.contains("yy-mm-dd hh:mm:ss"),
        "{err}"
    );

    let r = s.pandora(&pd.url(), &["8", "trigger"]);
    r.expect(2);
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.all());
    assert!(
        r.stderr().contains("missing argument <description>"),
        "{}",
        r.all()
    );

    let r = s.pandora(&pd.url(), &["8", "fire", "Disk"]);
    r.expect(2);
    assert!(r.stderr().contains("event_type"), "{}", r.all());
    // nothing sent, nothing stored
    assert_eq!(pd.count(), 0);
    assert!(s.key_files().is_empty());
}

#[test]
fn unreachable_server_queues_then_flush_delivers() {
    let pd = Standin::start().unwrap();
    let s = setup("queue-flush");
    let r = s.pandora(
        UNREACHABLE,
        &["9", "trigger", "Database down", "", "Critical", "db-01"],
    );
    r.expect(0);
    assert!(
        r.stdout().contains("trigger pandora-9: queued in"),
        "{}",
        r.all()
    );
    assert!(r.stdout().contains("pagerduty-event flush"), "{}", r.all());
    // the key is kept beside the outbox, readable by its owner only
    let keys = s.key_files();
    assert_eq!(keys.len(), 1);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&keys[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");

    // still unreachable: flush says so, exit 1
    let r = run(&s.dir, &["flush", "--outbox", &s.outbox]);
    r.expect(1);
    assert!(r.stdout().contains("1 still queued"), "{}", r.all());

    let r = run(
        &s.dir,
        &["flush", "--outbox", &s.outbox, "--url", &pd.url()],
    );
    r.expect(0);
    assert!(r.stdout().contains("1 delivered"), "{}", r.all());
    let bodies = pd.accepted();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["dedup_key"], "pandora-9");
    assert_eq!(bodies[0]["routing_key"], ROUTING_KEY);
    assert!(
        s.key_files().is_empty(),
        "nothing queued: the key file is gone"
    );

    let r = run(&s.dir, &["flush", "--outbox", &s.outbox]);
    r.expect(0);
    assert!(r.stdout().contains("nothing queued"), "{}", r.all());
}

#[test]
fn later_invocation_sends_older_queued_events_first() {
    let pd = Standin::start().unwrap();
    let s = setup("older-first");
    s.send(
        UNREACHABLE,
        &[
            "--action",
            "trigger",
            "--dedup-key",
            "job-1",
            "--summary",
            "backup failed",
        ],
    )
    .expect(0);
    s.send(
        UNREACHABLE,
        &["--action", "resolve", "--dedup-key", "job-1"],
    )
    .expect(0);
    assert_eq!(pd.count(), 0);
    let r = s.send(
        &pd.url(),
        &[
            "--action",
            "trigger",
            "--dedup-key",
            "job-2",
            "--summary",
            "disk full",
        ],
    );
    r.expect_delivered("trigger", "job-2");
    assert!(
        r.stdout().contains("queued earlier delivered first"),
        "{}",
        r.all()
    );
    // the queued events first, in their order, then the new one
    let order: Vec<(String, String)> = support::actions(&pd.accepted());
    let expected = [
        ("trigger", "job-1"),
        ("resolve", "job-1"),
        ("trigger", "job-2"),
    ]
    .map(|(a, k)| (a.to_string(), k.to_string()));
    assert_eq!(order, expected);
    assert!(s.key_files().is_empty());
}

#[test]
fn send_sets_every_field() {
    let pd = Standin::start().unwrap();
    let s = setup("send-fields");
    let r = s.send(
        &pd.url(),
        &[
            "--action",
            "trigger",
            "--dedup-key",
            "nightly-backup",
            "--summary",
            "Backup of db-01 failed",
            "--severity",
            "warning",
            "--source",
            "backup-server",
            "--component",
            "db-01",
            "--group",
            "databases",
            "--class",
            "backup",
            "--detail",
            "exit_code=3",
            "--detail",
            "log=/var/log/backup.log",
            "--link",
            "https://wiki.example.com/backup",
            "--client",
            "cron",
            "--client-url",
            "https://backup.example.com/",
        ],
    );
    r.expect(0);
    let b = &pd.accepted()[0];
    let p = &b["payload"];
    assert_eq!(b["event_action"], "trigger");
    assert_eq!(b["dedup_key"], "nightly-backup");
    assert_eq!(p["summary"], "Backup of db-01 failed");
    assert_eq!(p["severity"], "warning");
    assert_eq!(p["source"], "backup-server");
    assert_eq!(p["component"], "db-01");
    assert_eq!(p["group"], "databases");
    assert_eq!(p["class"], "backup");
    assert_eq!(
        p["custom_details"],
        json!({"exit_code": "3", "log": "/var/log/backup.log"})
    );
    assert_eq!(
        b["links"],
        json!([{"href": "https://wiki.example.com/backup"}])
    );
    assert_eq!(b["client"], "cron");
    assert_eq!(b["client_url"], "https://backup.example.com/");
    assert!(p["timestamp"].as_str().unwrap().ends_with('Z'));

    s.send(
        &pd.url(),
        &["--action", "acknowledge", "--dedup-key", "nightly-backup"],
    )
    .expect(0);
    s.send(
        &pd.url(),
        &["--action", "resolve", "--dedup-key", "nightly-backup"],
    )
    .expect(0);
    assert_eq!(pd.open_incident_count(), 0);
    assert_eq!(support::actions(&pd.accepted()).len(), 3);
}

#[test]
fn send_rejected_by_pagerduty_exits_1_with_the_reason() {
    let pd = Standin::start().unwrap();
    pd.push_answers([Answer::Reject("payload.custom_details is invalid".into())]);
    let s = setup("send-rejected");
    let r = s.send(
        &pd.url(),
        &["--action", "trigger", "--dedup-key", "k1", "--summary", "x"],
    );
    r.expect(1);
    assert!(r.stderr().contains("rejected by PagerDuty"), "{}", r.all());
    assert!(
        r.stderr().contains("payload.custom_details is invalid"),
        "{}",
        r.all()
    );
    assert!(!r.stdout().contains("queued"), "{}", r.all());
    assert!(s.key_files().is_empty(), "a rejected event is not queued");
}

#[test]
fn send_usage_errors_exit_2() {
    let s = setup("send-usage");
    for (args, needle) in [
        (vec!["--dedup-key", "k", "--summary", "x"], "--action"),
        (vec!["--action", "fire", "--dedup-key", "k"], "--action"),
        (vec!["--action", "trigger", "--summary", "x"], "--dedup-key"),
        (vec!["--action", "trigger", "--dedup-key", "k"], "--summary"),
        (
            vec![
                "--action",
                "trigger",
                "--dedup-key",
                "k",
                "--summary",
                "x",
                "--severity",
                "high",
            ],
            "--severity",
        ),
        (
            vec![
                "--action",
                "trigger",
                "--dedup-key",
                "k",
                "--summary",
                "x",
                "--detail",
                "novalue",
            ],
            "--detail",
        ),
        (
            vec![
                "--action",
                "trigger",
                "--dedup-key",
                "k",
                "--summary",
                "x",
                "--bogus",
            ],
            "--bogus",
        ),
    ] {
        let r = s.send(UNREACHABLE, &args);
        r.expect(2);
        assert_eq!(r.stderr().lines().count(), 1, "{}", r.all());
        assert!(r.stderr().contains(needle), "{needle}: {}", r.all());
    }
    assert!(s.key_files().is_empty());
}

#[test]
fn routing_key_from_environment_file_or_nowhere() {
    let pd = Standin::start().unwrap();
    let s = setup("key-sources");
    let args = [
        "send",
        "--url",
        &pd.url(),
        "--outbox",
        &s.outbox,
        "--action",
        "trigger",
        "--dedup-key",
        "env",
        "--summary",
        "from the environment",
    ];
    run_env(&s.dir, &args, &[("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)]).expect(0);
    assert_eq!(pd.accepted()[0]["routing_key"], ROUTING_KEY);

    let r = run(&s.dir, &args);
    r.expect(2);
    assert!(r.stderr().contains("no routing key"), "{}", r.all());

    // a wrong key is refused with where it came from, and never echoed
    let wrong = "abcdefghijklmnopqrstuvwxyz0123456";
    let r = run_env(&s.dir, &args, &[("PAGERDUTY_ROUTING_KEY", wrong)]);
    r.expect(2);
    assert!(r.stderr().contains("PAGERDUTY_ROUTING_KEY"), "{}", r.all());
    assert!(
        !r.stderr().contains(wrong) && !r.stdout().contains(wrong),
        "{}",
        r.all()
    );

    // the outbox directory may come from the environment too
    let env_outbox = s.dir.join("env-outbox");
    let r = run_env(
        &s.dir,
        &[
            "send",
            "--routing-key-file",
            &s.key_file,
            "--url",
            UNREACHABLE,
            "--action",
            "trigger",
            "--dedup-key",
            "q",
            "--summary",
            "queued",
        ],
        &[("PAGERDUTY_EVENT_OUTBOX", &env_outbox.display().to_string())],
    );
    r.expect(0);
    assert!(
        r.stdout().contains(&env_outbox.display().to_string()),
        "{}",
        r.all()
    );
}

#[test]
fn concurrent_invocations_for_one_key_take_turns() {
    let pd = Standin::start().unwrap();
    pd.set_latency(std::time::Duration::from_millis(200));
    let s = setup("concurrent");
    let url = pd.url();
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let (s, url) = (&s, &url);
                scope.spawn(move || {
                    let key = format!("c{i}");
                    s.send(
                        url,
                        &["--action", "trigger", "--dedup-key", &key, "--summary", "x"],
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &runs {
        r.expect(0);
        assert!(r.stdout().contains("delivered"), "{}", r.all());
    }
    assert_eq!(pd.accepted().len(), 3);
}

#[test]
fn test_command_explains_202_400_and_unreachable() {
    let pd = Standin::start().unwrap();
    let s = setup("test-command");
    let test = |url: &str, more: &[&str]| {
        let mut args = vec!["test", "--routing-key-file", &s.key_file, "--url", url];
        args.extend_from_slice(more);
        run(&s.dir, &args)
    };

    // by default, one change event proves the key: no incident opens
    let r = test(&pd.url(), &[]);
    r.expect(0);
    assert!(
        r.stdout().contains(&format!(
            "Sending a change event to {} with routing key",
            pd.change_url()
        )),
        "{}",
        r.all()
    );
    assert!(
        r.stdout().contains("change event: accepted (HTTP 202)")
            && r.stdout().contains("(no incident opened)"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout().contains("****2345"),
        "the key is shown masked\n{}",
        r.all()
    );
    let requests = pd.requests();
    assert_eq!(requests.len(), 1, "one request");
    assert_eq!(requests[0].path, pd_standin::CHANGE_ENQUEUE_PATH);
    assert_eq!(requests[0].status, 202);
    let body = requests[0].json.as_ref().unwrap();
    assert!(
        body["payload"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("centreon-pagerduty test from ")
    );
    assert!(body.get("event_action").is_none(), "{body}");
    assert!(pd.incidents().is_empty(), "no incident opened");
    assert!(pd.timeline().is_empty());

    // --incident: the trigger and its resolve, as before
    pd.clear();
    let r = test(&pd.url(), &["--incident"]);
    r.expect(0);
    assert!(
        r.stdout().contains("trigger: accepted (HTTP 202)"),
        "{}",
        r.all()
    );
    assert!(r.stdout().contains("resolve: accepted"), "{}", r.all());
    let bodies = pd.accepted();
    assert_eq!(support::actions(&bodies).len(), 2);
    assert!(
        bodies[0]["payload"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("centreon-pagerduty test event from ")
    );
    assert!(
        pd.requests()
            .iter()
            .all(|r| r.path == pd_standin::ENQUEUE_PATH)
    );
    assert_eq!(pd.incidents().len(), 1);
    assert_eq!(pd.open_incident_count(), 0);

    for more in [&[][..], &["--incident"][..]] {
        pd.push_answers([Answer::Reject("Invalid routing key".into())]);
        let r = test(&pd.url(), more);
        r.expect(1);
        assert!(
            r.stdout().contains("refused the routing key"),
            "{more:?}\n{}",
            r.all()
        );
        assert!(r.stdout().contains("Events API V2"), "{}", r.all());
    }
    // a change event PagerDuty finds invalid is explained too
    pd.push_answers([Answer::Reject("payload.summary is required".into())]);
    let r = test(&pd.url(), &[]);
    r.expect(1);
    assert!(
        r.stdout().contains(
            "change event: PagerDuty rejected the event as invalid (HTTP 400: Event object is invalid: payload.summary is required)"
        ),
        "{}",
        r.all()
    );

    for more in [&[][..], &["--incident"][..]] {
        let r = test(UNREACHABLE, more);
        r.expect(1);
        assert!(r.stdout().contains("connection refused"), "{}", r.all());
        assert!(r.stdout().contains("HTTPS_PROXY"), "{}", r.all());
    }

    // a wrong path answers 404: the wrong URL or region
    let wrong = pd.url().replace("/v2/", "/v1/");
    let r = test(&wrong, &["--incident"]);
    r.expect(1);
    assert!(
        r.stdout().contains("HTTP 404") && r.stdout().contains("events.eu.pagerduty.com"),
        "{}",
        r.all()
    );
    // no change events URL can be derived from it: say so, and how to give one
    let r = test(&wrong, &[]);
    r.expect(2);
    assert!(
        r.stderr().contains("does not end with /v2/enqueue") && r.stderr().contains("--change-url"),
        "{}",
        r.all()
    );
    let r = test(&wrong, &["--change-url", &pd.change_url()]);
    r.expect(0);

    pd.push_answers([Answer::TooMany { retry_after: None }]);
    let r = test(&pd.url(), &[]);
    r.expect(1);
    assert!(r.stdout().contains("rate limited"), "{}", r.all());
    // `test` never uses the outbox
    assert!(!Path::new(&s.outbox).exists());
}

/// `output` is the golden file `golden` (relative to the repository); `UPDATE_GOLDEN=1`
/// rewrites the file instead.
fn assert_golden(output: &str, golden: &str) {
    let path = support::root().join(golden);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, output).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        output, expected,
        "output differs from {golden} (UPDATE_GOLDEN=1 rewrites it)"
    );
}

#[test]
fn replay_dry_run_matches_golden_output() {
    let s = setup("replay-golden");
    let root = support::root();
    let input = root.join("tests/cli/replay.jsonl");
    let r = run(
        &s.dir,
        &[
            "replay",
            "--dry-run",
            "--param",
            "pdy_centreon_url=https://centreon.example.com",
            &input.display().to_string(),
        ],
    );
    r.expect(0);
    assert_golden(&r.stdout(), "tests/cli/replay.golden");
    assert!(
        r.stderr()
            .contains("12 Centreon event(s), 8 PagerDuty event(s)"),
        "{}",
        r.all()
    );
}

#[test]
fn replay_sends_through_the_outbox_with_a_broker_configuration() {
    let pd = Standin::start().unwrap();
    let s = setup("replay-send");
    // the output's JSON as Centreon's Broker configuration holds it
    let config = s.dir.join("output.json");
    std::fs::write(
        &config,
        json!({
            "name": "PagerDuty", "type": "lua", "path": "/usr/share/centreon-broker/lua/pagerduty.lua",
            "lua_parameter": [
                {"type": "password", "name": "pdy_routing_key", "value": ROUTING_KEY},
                {"type": "string", "name": "http_server_url", "value": pd.url()},
                {"type": "string", "name": "pdy_centreon_url", "value": "https://centreon.example.com"},
                {"type": "string", "name": "outbox_path", "value": "/nonexistent/outbox.db"},
                {"type": "string", "name": "log_path", "value": "/nonexistent/log"}
            ]
        })
        .to_string(),
    )
    .unwrap();
    let input = support::root().join("tests/cli/replay.jsonl");
    let r = run(
        &s.dir,
        &[
            "replay",
            "--config",
            &config.display().to_string(),
            "--outbox",
            &s.outbox,
            &input.display().to_string(),
        ],
    );
    r.expect(0);
    assert_eq!(r.stdout().lines().count(), 8, "{}", r.all());
    // every decided event is delivered, or merged away by a later one of its dedup_key when it
    // was still queued (how many depends on how fast the stand-in answers): never rejected,
    // never left queued
    let counts = r.stderr();
    let count = |what: &str| -> usize {
        let end = counts
            .find(what)
            .unwrap_or_else(|| panic!("no '{what}': {counts}"));
        let start = counts[..end].trim_end().rfind(' ').map_or(0, |i| i + 1);
        counts[start..end].trim().parse().unwrap()
    };
    assert_eq!(count(" delivered") + count(" merged"), 8, "{}", r.all());
    assert_eq!(count(" rejected"), 0, "{}", r.all());
    assert_eq!(count(" queued"), 0, "{}", r.all());
    let order = support::actions(&pd.accepted());
    assert_eq!(order.len(), count(" delivered"), "{order:?}");
    let of = |k: &str| -> Vec<&str> {
        order
            .iter()
            .filter(|(_, x)| x == k)
            .map(|(a, _)| a.as_str())
            .collect()
    };
    // per dedup_key: what PagerDuty got is the decided sequence less merged events, in order,
    // and ends in the same state (a trigger and its resolve may cancel out while queued)
    for (key, decided) in [
        (
            "12_34",
            &["trigger", "trigger", "acknowledge", "resolve"][..],
        ),
        ("13_H", &["trigger", "resolve"][..]),
        ("13_35", &["trigger"][..]),
        ("99_H", &["trigger"][..]),
    ] {
        let got = of(key);
        let mut rest = decided.iter();
        assert!(
            got.iter().all(|a| rest.any(|d| d == a)),
            "{key}: {got:?} is not in the order of {decided:?}"
        );
        let last = decided.last().copied();
        assert!(
            got.last().copied() == last || (got.is_empty() && last == Some("resolve")),
            "{key}: {got:?} does not end as {decided:?}"
        );
    }
}

#[test]
fn help_on_every_command_and_usage_errors() {
    let s = setup("help");
    for cmd in ["pandora", "send", "flush", "test", "replay"] {
        let r = run(&s.dir, &[cmd, "--help"]);
        r.expect(0);
        assert!(
            r.stdout().starts_with("Usage: pagerduty-event"),
            "{cmd}: {}",
            r.all()
        );
        assert!(r.stderr().is_empty(), "{cmd}: {}", r.all());
        run(&s.dir, &["help", cmd]).expect(0);
    }
    let r = run(&s.dir, &["--help"]);
    r.expect(0);
    for cmd in ["pandora", "send", "flush", "test", "replay"] {
        assert!(r.stdout().contains(cmd), "{}", r.all());
    }
    let r = run(&s.dir, &["frobnicate"]);
    r.expect(2);
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.all());
    assert!(r.stderr().contains("unknown command"), "{}", r.all());
    let r = run(&s.dir, &[]);
    r.expect(2);
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.all());
}

#[test]
fn pandora_timestamp_is_local_time_of_the_tz_environment() {
    let s = setup("pandora-tz");
    let key = format!("@{}", s.key_file);
    let args = [
        "pandora",
        "--dry-run",
        &key,
        "5",
        "trigger",
        "Disk",
        "23-11-14 22:13:20",
        "Critical",
    ];
    let event = |r: &Run| -> Value { serde_json::from_str(r.stdout().trim()).unwrap() };
    // a POSIX rule needs no zone file: Central European Time, +01:00 in November
    let r = run_env(&s.dir, &args, &[("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")]);
    r.expect(0);
    let e = event(&r);
    assert_eq!(
        e["payload"]["timestamp"],
        "2023-11-14T21:13:20Z",
        "{}",
        r.all()
    );
    assert_eq!(e["routing_key"], "<masked>");
    assert_eq!(e["dedup_key"], "pandora-5");
    // --timezone wins over TZ
    let mut with_option = args.to_vec();
    with_option.insert(2, "--timezone");
    with_option.insert(3, "UTC");
    let r = run_env(
        &s.dir,
        &with_option,
        &[("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")],
    );
    assert_eq!(
        event(&r)["payload"]["timestamp"],
        "2023-11-14T22:13:20Z",
        "{}",
        r.all()
    );
    // a dry run touches no outbox
    assert!(!Path::new(&s.outbox).exists());
}

#[test]
fn event_that_cannot_be_stored_exits_1() {
    let s = setup("not-stored");
    // the outbox "directory" is a file: nothing can be stored there
    let file = s.dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let r = run(
        &s.dir,
        &[
            "send",
            "--routing-key-file",
            &s.key_file,
            "--url",
            UNREACHABLE,
            "--outbox",
            &file.join("outbox").display().to_string(),
            "--action",
            "trigger",
            "--dedup-key",
            "k",
            "--summary",
            "x",
        ],
    );
    r.expect(1);
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.all());
    assert!(r.stderr().contains("outbox"), "{}", r.all());
}

#[test]
fn server_errors_and_rate_limits_are_queued_not_failed() {
    let pd = Standin::start().unwrap();
    let s = setup("5xx-429");
    pd.push_answers([Answer::ServerError(503)]);
    let r = s.send(
        &pd.url(),
        &["--action", "trigger", "--dedup-key", "a", "--summary", "x"],
    );
    r.expect(0);
    assert!(
        r.stdout().contains("trigger a: queued") && r.stdout().contains("HTTP 503"),
        "{}",
        r.all()
    );

    pd.push_answers([Answer::TooMany {
        retry_after: Some(1),
    }]);
    let r = s.send(
        &pd.url(),
        &["--action", "trigger", "--dedup-key", "b", "--summary", "y"],
    );
    r.expect(0);
    // the queued event goes first and meets the rate limit: this one waits behind it
    assert!(
        r.stdout().contains("trigger b: queued") && r.stdout().contains("rate limited"),
        "{}",
        r.all()
    );
    assert_eq!(pd.accepted().len(), 0);

    let r = run(&s.dir, &["flush", "--outbox", &s.outbox]);
    r.expect(0);
    // order is kept per dedup_key; these two are independent
    let mut keys: Vec<String> = support::actions(&pd.accepted())
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    keys.sort();
    assert_eq!(keys, ["a", "b"]);
}

#[test]
fn check_config_of_a_broker_configuration_matches_golden_output() {
    let s = setup("check-config");
    // relative paths: the golden output names the file as given
    let config = "tests/cli/central-broker.json";
    let r = run(&s.dir, &["check-config", config]);
    // the certified output's documented example key (13 characters) and format_file (absent
    // here) are invalid: exit status 1
    r.expect(1);
    assert_golden(&r.stdout(), "tests/cli/check-config.golden");
    for secret in [
        "xxxxxxxxxxxxx",
        "Pr0xyPa55",
        "db-PASSWORD-not-ours",
        "splunk-TOKEN-not-ours",
    ] {
        assert!(!r.all().contains(secret), "{secret} printed\n{}", r.all());
    }
}

#[test]
fn check_config_exit_statuses() {
    let s = setup("check-config-status");
    let write = |name: &str, v: serde_json::Value| {
        let p = s.dir.join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p.display().to_string()
    };
    let output = |params: serde_json::Value| {
        json!({"centreonBroker": {"broker_name": "b", "output": [{
            "name": "pd", "type": "lua", "path": "/usr/share/centreon-broker/lua/pagerduty.lua",
            "lua_parameter": params
        }]}})
    };
    // every parameter usable: 0 (an ignored and an unknown one included)
    let ok = write(
        "ok.json",
        output(json!([
            {"type": "password", "name": "pdy_routing_key", "value": ROUTING_KEY},
            {"type": "string", "name": "timezone", "value": "Europe/Paris"},
            {"type": "string", "name": "my_own", "value": "x"}
        ])),
    );
    let r = run(&s.dir, &["check-config", &ok]);
    r.expect(0);
    assert!(
        r.stdout()
            .contains("3 parameter(s): 1 honoured, 0 renamed, 1 ignored, 1 unknown, 0 invalid"),
        "{}",
        r.all()
    );
    // one parameter refused: 1, with the connector's own message
    let bad = write(
        "bad.json",
        output(json!({"type": "string", "name": "hard_only", "value": "maybe"})),
    );
    let r = run(&s.dir, &["check-config", &bad]);
    r.expect(1);
    assert!(
        r.stdout().contains(
            "hard_only  invalid: expected 0 or 1, got a text of 5 characters (not shown)"
        ),
        "{}",
        r.all()
    );
    // a key or a password pasted in the wrong parameter is never printed
    let pasted = write(
        "pasted.json",
        output(json!([
            {"type": "string", "name": "pdy_routing_key_file", "value": ROUTING_KEY},
            {"type": "string", "name": "pdy_centreon_url", "value": ROUTING_KEY},
            {"type": "string", "name": "hard_only", "value": "Hunter2-password"},
            {"type": "string", "name": "format_file", "value": format!("/etc/{ROUTING_KEY}")}
        ])),
    );
    let r = run(&s.dir, &["check-config", &pasted]);
    r.expect(1);
    assert!(
        !r.all().contains(ROUTING_KEY) && !r.all().contains("Hunter2"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout().contains(&format!(
            "pdy_routing_key_file  invalid: cannot read {}{}",
            "*".repeat(28),
            &ROUTING_KEY[28..]
        )),
        "{}",
        r.all()
    );
    // no PagerDuty output: 1
    let none = write("none.json", json!({"centreonBroker": {"output": []}}));
    run(&s.dir, &["check-config", &none]).expect(1);
    // usage: no file, two files, a file that is not JSON or not Broker's: 2
    run(&s.dir, &["check-config"]).expect(2);
    run(&s.dir, &["check-config", &ok, &ok]).expect(2);
    run(
        &s.dir,
        &["check-config", "/nonexistent/central-broker.json"],
    )
    .expect(2);
    let text = s.dir.join("text.json");
    std::fs::write(&text, "not json").unwrap();
    run(&s.dir, &["check-config", &text.display().to_string()]).expect(2);
    let other = write("other.json", json!({"output": []}));
    run(&s.dir, &["check-config", &other]).expect(2);
    let help = run(&s.dir, &["check-config", "--help"]);
    help.expect(0);
    assert!(
        help.stdout()
            .contains("Usage: pagerduty-event check-config BROKER.json")
    );
}

/// The masked form of [`ROUTING_KEY`] (all but its last four characters hidden).
const MASKED_KEY: &str = "****************************2345";

#[test]
fn send_answered_by_a_redirect_or_a_portal_is_not_delivered_and_exits_1() {
    let pd = Standin::start().unwrap();
    let portal = format!("http://{}/portal/login", pd.addr());
    let s = setup("send-redirect");
    pd.push_answers([Answer::Redirect(302, portal.clone())]);
    let r = s.send(
        &pd.url(),
        &["--action", "trigger", "--dedup-key", "r1", "--summary", "x"],
    );
    r.expect(1);
    assert!(!r.all().contains("delivered to"), "{}", r.all());
    assert!(
        r.stderr()
            .contains("trigger r1: NOT delivered: HTTP 302: redirected to ")
            && r.stderr().contains(&portal)
            && r.stderr().contains("correct --url or the proxy"),
        "{}",
        r.all()
    );
    assert_eq!(s.key_files().len(), 1, "kept in the outbox");

    let p = setup("send-portal");
    pd.push_answers([Answer::Page(200, String::new())]);
    let r = p.send(
        &pd.url(),
        &["--action", "trigger", "--dedup-key", "p1", "--summary", "y"],
    );
    r.expect(1);
    assert!(!r.all().contains("delivered to"), "{}", r.all());
    assert!(
        r.stderr()
            .contains(r#"NOT delivered: HTTP 200 but not PagerDuty's answer (an HTML page titled "Guest Wi-Fi - Please log in")"#),
        "{}",
        r.all()
    );
    assert!(pd.accepted().is_empty());
    assert!(
        pd.requests().iter().all(|r| r.method == "POST"),
        "never followed"
    );

    // once the endpoint answers 202, both are delivered (once)
    for o in [&s, &p] {
        let r = run(&o.dir, &["flush", "--outbox", &o.outbox]);
        r.expect(0);
        assert!(r.stdout().contains("1 delivered"), "{}", r.all());
    }
    let keys: Vec<(String, String)> = support::actions(&pd.accepted());
    assert_eq!(
        keys,
        [
            ("trigger".to_string(), "r1".to_string()),
            ("trigger".to_string(), "p1".to_string())
        ]
    );
}

#[test]
fn test_command_explains_a_redirect_and_answers_not_from_pagerduty() {
    let pd = Standin::start().unwrap();
    let portal = format!("http://{}/portal/login", pd.addr());
    let s = setup("test-redirect");
    let test = || {
        run(
            &s.dir,
            &[
                "test",
                "--routing-key-file",
                &s.key_file,
                "--url",
                &pd.url(),
            ],
        )
    };
    for code in [301, 302, 303] {
        pd.push_answers([Answer::Redirect(code, portal.clone())]);
        let r = test();
        r.expect(1);
        assert!(
            r.stdout().contains(&format!(
                "change event: NOT delivered: the request was redirected (HTTP {code} to {portal}). PagerDuty's Events API never redirects"
            )),
            "{}",
            r.all()
        );
        assert!(!r.stdout().contains("accepted"), "{}", r.all());
    }
    pd.push_answers([Answer::Page(200, String::new())]);
    let r = test();
    r.expect(1);
    assert!(
        r.stdout()
            .contains(r#"change event: NOT delivered: HTTP 200 but not PagerDuty's answer (an HTML page titled "Guest Wi-Fi - Please log in")"#),
        "{}",
        r.all()
    );
    // JSON, but not PagerDuty's "success"
    pd.push_answers([Answer::Status(202, r#"{"status":"queued"}"#.into())]);
    let r = test();
    r.expect(1);
    assert!(
        r.stdout()
            .contains(r#"answer says status "queued", not "success""#),
        "{}",
        r.all()
    );
    assert!(
        pd.requests().iter().all(|r| r.method == "POST"),
        "never followed"
    );
    assert!(pd.incidents().is_empty());
}

#[test]
fn an_echoed_routing_key_is_never_printed() {
    // run_env checks that the full key is in no output
    let pd = Standin::start().unwrap();
    let s = setup("echo");
    pd.push_answers([Answer::Echo(502)]);
    let r = s.send(
        &pd.url(),
        &[
            "--action",
            "trigger",
            "--dedup-key",
            "e1",
            "--summary",
            "x",
            "--verbose",
        ],
    );
    r.expect(0);
    assert!(
        r.stdout().contains("trigger e1: queued") && r.stdout().contains(MASKED_KEY),
        "{}",
        r.all()
    );
    assert!(
        r.stderr().contains(MASKED_KEY),
        "the log lines\n{}",
        r.all()
    );
    pd.push_answers([Answer::Echo(400)]);
    let r = run(&s.dir, &["flush", "--outbox", &s.outbox, "--verbose"]);
    r.expect(0);
    assert!(
        r.stdout().contains("1 rejected by PagerDuty"),
        "{}",
        r.all()
    );
    assert!(r.stderr().contains(MASKED_KEY), "{}", r.all());
    pd.push_answers([Answer::Echo(400)]);
    let r = s.send(
        &pd.url(),
        &["--action", "trigger", "--dedup-key", "e2", "--summary", "x"],
    );
    r.expect(1);
    assert!(
        r.stderr().contains("rejected by PagerDuty") && r.stderr().contains(MASKED_KEY),
        "{}",
        r.all()
    );
    for code in [400, 502] {
        pd.push_answers([Answer::Echo(code)]);
        let r = run(
            &s.dir,
            &[
                "test",
                "--routing-key-file",
                &s.key_file,
                "--url",
                &pd.url(),
            ],
        );
        r.expect(1);
        assert!(r.stdout().contains(MASKED_KEY), "{}", r.all());
        // quoting the request's routing_key field is not PagerDuty refusing the key
        assert!(
            !r.stdout().contains("refused the routing key"),
            "{}",
            r.all()
        );
    }
    assert!(
        pd.requests()
            .iter()
            .filter(|r| r.response_body.contains(ROUTING_KEY))
            .count()
            >= 5,
        "the stand-in did echo the key"
    );
}

#[test]
fn an_unparseable_proxy_variable_is_an_error_naming_it() {
    let pd = Standin::start().unwrap();
    let s = setup("proxy-env");
    for var in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "HTTP_PROXY"] {
        for value in [
            // quotes kept from an environment file
            "\"http://centreon:pr0xy-s3cret@proxy.example:3128\"",
            "ftp://centreon:pr0xy-s3cret@proxy.example:21",
            // ureq would take the port for 80
            "http://centreon:pr0xy-s3cret@proxy.example:31a8",
        ] {
            let key = format!("@{}", s.key_file);
            let send = [
                "send",
                "--routing-key-file",
                &s.key_file,
                "--url",
                &pd.url(),
                "--outbox",
                &s.outbox,
                "--action",
                "trigger",
                "--dedup-key",
                "x",
                "--summary",
                "x",
            ];
            let test = [
                "test",
                "--routing-key-file",
                &s.key_file,
                "--url",
                &pd.url(),
            ];
            let pandora = [
                "pandora",
                "--url",
                &pd.url(),
                "--outbox",
                &s.outbox,
                &key,
                "1",
                "trigger",
                "x",
                "",
                "Critical",
                "db",
            ];
            for args in [&send[..], &test[..], &pandora[..]] {
                let r = run_env(&s.dir, args, &[(var, value)]);
                assert_ne!(r.code(), 0, "{var}={value} {args:?}\n{}", r.all());
                assert!(
                    r.stderr()
                        .contains(&format!("environment variable {var}: not a proxy URL")),
                    "{var}={value} {args:?}\n{}",
                    r.all()
                );
                assert!(!r.all().contains("pr0xy-s3cret"), "{}", r.all());
                assert!(!r.all().contains("delivered"), "{}", r.all());
            }
        }
    }
    assert_eq!(pd.count(), 0, "nothing went direct");
}

/// The user nobody, for commands run as a user other than root (the tests run as root).
const NOBODY: &str = "65534";
/// A group id that stands for `pagerduty-event`, the group the packages create.
const SPOOL_GID: &str = "4242";

/// `sh -c script` in a mount namespace of its own, where `/var/lib` is an empty tmpfs and
/// `/etc/group` holds the group `pagerduty-event` (gid [`SPOOL_GID`]): the shared outbox
/// directory `/var/lib/pagerduty-event` is the real default one, and nothing of this
/// machine's is touched. `$BIN` is the program, `$S` the scratch directory.
fn in_private_var_lib(s: &Setup, script: &str) -> Run {
    let group = s.dir.join("group");
    let mut groups = std::fs::read_to_string("/etc/group").unwrap();
    groups.push_str(&format!("pagerduty-event:x:{SPOOL_GID}:\n"));
    std::fs::write(&group, groups).unwrap();
    let full = format!(
        "set -e\nmount -t tmpfs tmpfs /var/lib\nmount --bind \"$S/group\" /etc/group\nset +e\n{script}"
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "sh", "-c", &full])
        .env("BIN", BIN)
        .env("S", &s.dir);
    run_command(&s.dir, cmd, &[])
}

/// `$1`'s exit status, stdout and stderr in `$S/<name>.{code,out,err}`.
const STEP: &str = "step() { name=$1; shift; \"$@\" >\"$S/$name.out\" 2>\"$S/$name.err\"; echo $? >\"$S/$name.code\"; }\n";

/// What one step of [`in_private_var_lib`] printed, and its exit status.
fn step(s: &Setup, name: &str) -> (i32, String, String) {
    let read = |ext: &str| std::fs::read_to_string(s.dir.join(format!("{name}.{ext}"))).unwrap();
    let (out, err) = (read("out"), read("err"));
    assert!(!out.contains(ROUTING_KEY) && !err.contains(ROUTING_KEY));
    (read("code").trim().parse().unwrap(), out, err)
}

fn assert_root() {
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata("/proc/self").unwrap().uid(),
        0,
        "this test runs commands as another user: run the tests as root"
    );
}

/// Root's flush timer runs before anything is queued, then the Pandora server (a user in
/// the group pagerduty-event) queues an event while PagerDuty cannot be reached: the event
/// lands in the shared /var/lib/pagerduty-event, where the next flush finds and delivers
/// it. A user outside the group is told which directory and which group, nothing stored.
#[test]
fn events_queued_by_a_user_of_the_group_are_flushed_by_root() {
    assert_root();
    let pd = Standin::start().unwrap();
    let s = setup("shared-spool");
    let mut perms = std::fs::metadata(&s.key_file).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&s.key_file, perms).unwrap();
    // an outbox an earlier version queued in the user's own directory
    let old = s.dir.join("home/.local/state/pagerduty-event");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("centreon-pagerduty-0123.key.json"), "{}").unwrap();
    let as_user = |groups: &str| {
        format!("setpriv --reuid {NOBODY} --regid {NOBODY} {groups} env HOME=\"$S/home\"")
    };
    let script = format!(
        "{STEP}\
         step flush1 \"$BIN\" flush --url {UNREACHABLE}\n\
         stat -c '%a %g' /var/lib/pagerduty-event >\"$S/mode\"\n\
         step member {member} \"$BIN\" pandora --url {UNREACHABLE} @{key} 9 trigger 'Database down'\n\
         step outsider {outsider} \"$BIN\" pandora --url {UNREACHABLE} @{key} 10 trigger 'Disk full'\n\
         step flush2 \"$BIN\" flush --url {url}\n\
         ls -l /var/lib/pagerduty-event >\"$S/listing\"\n",
        member = as_user(&format!("--groups {SPOOL_GID}")),
        outsider = as_user("--clear-groups"),
        key = s.key_file,
        url = pd.url(),
    );
    in_private_var_lib(&s, &script).expect(0);
    let listing = std::fs::read_to_string(s.dir.join("listing")).unwrap_or_default();

    let (code, out, err) = step(&s, "flush1");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nothing queued"), "{out}{err}");
    // created as the packages create it: setgid, the group's
    let mode = std::fs::read_to_string(s.dir.join("mode")).unwrap();
    assert_eq!(mode.trim(), format!("2770 {SPOOL_GID}"));

    let (code, out, err) = step(&s, "member");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("trigger pandora-9: queued in /var/lib/pagerduty-event"),
        "{out}{err}"
    );
    assert!(
        err.contains(&format!(
            "warning: {} holds outboxes of an earlier pagerduty-event",
            old.display()
        )),
        "{out}{err}"
    );

    let (code, out, err) = step(&s, "outsider");
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("cannot write the shared outbox directory /var/lib/pagerduty-event")
            && err.contains("group pagerduty-event")
            && err.contains("nothing was stored"),
        "{out}{err}"
    );

    let (code, out, err) = step(&s, "flush2");
    assert_eq!(code, 0, "{out}{err}\n{listing}");
    assert!(out.contains("1 delivered"), "{out}{err}");
    assert_eq!(
        support::actions(&pd.accepted()),
        [("trigger".to_string(), "pandora-9".to_string())]
    );
    // what the user queued belongs to the group and is writable by it
    assert!(
        listing
            .lines()
            .filter(|l| l.contains("centreon-pagerduty-") && l.ends_with(".db"))
            .all(|l| l.starts_with("-rw-rw----")),
        "{listing}"
    );
}

/// `flush` names every outbox it cannot read and exits 1; `--outbox` on a path that does
/// not exist is an error, not "nothing queued".
#[test]
fn flush_reports_unreadable_outboxes_and_missing_directories() {
    assert_root();
    let s = setup("flush-unreadable");
    let r = run(&s.dir, &["flush", "--outbox", &s.outbox]);
    r.expect(1);
    assert!(r.stderr().contains(&s.outbox), "{}", r.all());
    assert!(!Path::new(&s.outbox).exists(), "flush created {}", s.outbox);

    // root queues in a directory others may write; nobody cannot read what root stored
    std::fs::create_dir(&s.outbox).unwrap();
    let mut perms = std::fs::metadata(&s.outbox).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o777);
    std::fs::set_permissions(&s.outbox, perms).unwrap();
    s.pandora(UNREACHABLE, &["11", "trigger", "Queue full"])
        .expect(0);
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", BIN])
        .args(["flush", "--outbox", &s.outbox]);
    let r = run_command(&s.dir, cmd, &[]);
    r.expect(1);
    let err = r.stderr();
    assert!(
        err.contains("cannot read this outbox's routing key")
            && err.contains("cannot read this outbox"),
        "{}",
        r.all()
    );
    assert!(!r.stdout().contains("nothing"), "{}", r.all());
    // root reads them: delivered later, nothing was moved aside
    let pd = Standin::start().unwrap();
    run(
        &s.dir,
        &["flush", "--outbox", &s.outbox, "--url", &pd.url()],
    )
    .expect(0);
    assert_eq!(pd.count(), 1);
}

/// Each command and the options its help must name.
const COMMAND_OPTIONS: &[(&str, &[&str])] = &[
    (
        "pandora",
        &[
            "--timezone",
            "--dedup-key-prefix",
            "--client-url",
            "--dry-run",
            "--routing-key-file",
            "--url",
            "--outbox",
            "--wait",
            "service_api_key",
            "[RECOVER]",
        ],
    ),
    (
        "send",
        &[
            "--action",
            "--dedup-key",
            "--summary",
            "--severity",
            "--source",
            "--component",
            "--group",
            "--class",
            "--detail",
            "--link",
            "--client",
            "--client-url",
            "--dry-run",
            "--routing-key",
            "--routing-key-file",
            "--proxy",
            "--timeout",
            "--insecure",
            "--verbose",
        ],
    ),
    (
        "flush",
        &[
            "--routing-key-file",
            "--url",
            "--proxy",
            "--timeout",
            "--insecure",
            "--outbox",
            "--wait",
            "--verbose",
        ],
    ),
    (
        "test",
        &["--routing-key-file", "--routing-key", "--url", "--proxy"],
    ),
    (
        "replay",
        &[
            "FILE",
            "--dry-run",
            "--config",
            "--param",
            "--outbox",
            "--wait",
        ],
    ),
    ("check-config", &["BROKER.json"]),
    (
        "check",
        &[
            "--outbox",
            "--warning-pending",
            "--critical-pending",
            "--warning-age",
            "--critical-age",
            "--warning-rejected",
            "--critical-rejected",
        ],
    ),
    ("list", &["--outbox", "--pending", "--rejected", "--limit"]),
    ("resend", &["--outbox", "--all", "ID"]),
    ("discard", &["--outbox", "--all", "ID"]),
];

#[test]
fn every_command_has_a_help_naming_its_options() {
    let s = setup("help-options");
    let all = run(&s.dir, &["--help"]);
    all.expect(0);
    for (cmd, options) in COMMAND_OPTIONS {
        assert!(
            all.stdout().contains(&format!("  {cmd} ")),
            "{cmd}\n{}",
            all.all()
        );
        for help in [vec![*cmd, "--help"], vec![*cmd, "-h"], vec!["help", *cmd]] {
            let r = run(&s.dir, &help);
            r.expect(0);
            assert!(r.stderr().is_empty(), "{help:?}: {}", r.all());
            assert!(
                r.stdout()
                    .starts_with(&format!("Usage: pagerduty-event {cmd}")),
                "{help:?}: {}",
                r.all()
            );
            for option in *options {
                assert!(
                    r.stdout().contains(option),
                    "{help:?}: {option}\n{}",
                    r.all()
                );
            }
        }
    }
    // each command's own default --wait
    for (cmd, wait) in [("send", 10), ("pandora", 10), ("flush", 30), ("replay", 30)] {
        let r = run(&s.dir, &[cmd, "--help"]);
        assert!(
            r.stdout()
                .contains(&format!("stay queued (default {wait})")),
            "{cmd}: {}",
            r.all()
        );
    }
}

#[test]
fn version_with_dash_v_and_version() {
    let s = setup("version");
    let expected = format!("pagerduty-event {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["-V", "--version", "version"] {
        let r = run(&s.dir, &[flag]);
        r.expect(0);
        assert_eq!(r.stdout(), expected, "{flag}");
        assert!(r.stderr().is_empty(), "{flag}: {}", r.all());
    }
}

#[test]
fn usage_errors_are_one_line_with_exit_2_and_3_for_check() {
    let s = setup("clap-usage");
    for (args, needle) in [
        (vec!["send", "--bogus"], "--bogus"),
        (
            vec!["flush", "--url", "http://a", "--url", "http://b"],
            "--url",
        ),
        (vec!["flush", "--insecure=1"], "--insecure"),
        (vec!["flush", "--wait"], "--wait"),
        (vec!["flush", "extra"], "extra"),
        (vec!["list", "--limit", "many"], "--limit"),
        (vec!["replay"], "FILE"),
        (vec!["check-config"], "BROKER.json"),
        (vec!["completions", "tcsh"], "tcsh"),
        // options come before Pandora's arguments; an unknown one is refused
        (
            vec!["pandora", "--bogus", "-", "1", "trigger", "x"],
            "--bogus",
        ),
        (vec!["pandora", "-5", "1", "trigger", "x"], "-5"),
    ] {
        let r = run(&s.dir, &args);
        r.expect(2);
        assert_eq!(r.stderr().lines().count(), 1, "{args:?}\n{}", r.all());
        assert!(r.stderr().contains(needle), "{args:?}\n{}", r.all());
        assert!(
            r.stderr()
                .starts_with(&format!("pagerduty-event {}: ", args[0])),
            "{args:?}\n{}",
            r.all()
        );
        assert!(r.stdout().is_empty(), "{args:?}\n{}", r.all());
    }
    // check answers as a monitoring plugin: one UNKNOWN line on stdout, exit 3
    for args in [
        vec!["check", "--bogus"],
        vec!["check", "--outbox"],
        vec!["check", "--warning-age", "1", "--warning-age", "2"],
    ] {
        let r = run(&s.dir, &args);
        r.expect(3);
        assert_eq!(r.stdout().lines().count(), 1, "{args:?}\n{}", r.all());
        assert!(
            r.stdout().starts_with("PAGERDUTY UNKNOWN - "),
            "{args:?}\n{}",
            r.all()
        );
    }
}

#[test]
fn bash_completion_is_valid_and_completes_commands_and_options() {
    let s = setup("completions-bash");
    let r = run(&s.dir, &["completions", "bash"]);
    r.expect(0);
    let script = s.dir.join("pagerduty-event.bash");
    std::fs::write(&script, r.stdout()).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{syntax:?}");
    // what bash's programmable completion does on TAB: call the registered function
    let complete = |words: &[&str]| -> Vec<String> {
        let words_array = words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let cword = words.len() - 1;
        let line = format!(
            "source '{}'
f=$(complete -p pagerduty-event | sed -E 's/.*-F ([^ ]+).*/\\1/')
COMP_WORDS=({words_array}); COMP_CWORD={cword}
COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}
\"$f\" pagerduty-event \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"
printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let out = Command::new("bash").arg("-c").arg(line).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let commands = complete(&["pagerduty-event", ""]);
    for (cmd, _) in COMMAND_OPTIONS {
        assert!(commands.iter().any(|c| c == cmd), "{cmd}: {commands:?}");
    }
    // the hidden commands that serve the packaging are not offered
    for hidden in ["completions", "man"] {
        assert!(!commands.iter().any(|c| c == hidden), "{commands:?}");
    }
    assert_eq!(
        complete(&["pagerduty-event", "check"]),
        ["check-config", "check"]
    );
    // a subcommand's options (a hyphenated program name broke them in clap_complete)
    assert_eq!(
        complete(&["pagerduty-event", "flush", "--routing-k"]),
        ["--routing-key-file", "--routing-key"]
    );
    assert!(complete(&["pagerduty-event", "list", "--"]).contains(&"--rejected".to_string()));
}

#[test]
fn zsh_and_fish_completions_name_every_command() {
    let s = setup("completions-other");
    for shell in ["zsh", "fish"] {
        let r = run(&s.dir, &["completions", shell]);
        r.expect(0);
        assert!(
            r.stdout().contains("pagerduty-event"),
            "{shell}: {}",
            r.all()
        );
        for (cmd, options) in COMMAND_OPTIONS {
            assert!(r.stdout().contains(cmd), "{shell}: {cmd}");
            let first = options.iter().find(|o| o.starts_with("--")).copied();
            if let Some(o) = first {
                let bare = o.trim_start_matches('-');
                assert!(r.stdout().contains(bare), "{shell}: {cmd} {o}");
            }
        }
        // the shell itself checks the syntax where it is installed
        let check = Command::new(shell)
            .arg("-n")
            .arg("/dev/stdin")
            .stdin(std::process::Stdio::piped())
            .spawn();
        if let Ok(mut child) = check {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(r.stdout().as_bytes())
                .unwrap();
            assert!(child.wait().unwrap().success(), "{shell} -n");
        }
    }
}

#[test]
fn man_page_names_every_command_and_renders() {
    let s = setup("man");
    let r = run(&s.dir, &["man"]);
    r.expect(0);
    let page = r.stdout();
    assert!(
        page.lines()
            .any(|l| l.starts_with(".TH PAGERDUTY-EVENT 1 ")),
        "{page}"
    );
    for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "NOTES"] {
        assert!(
            page.lines().any(|l| l == format!(".SH {section}")),
            "{section}"
        );
    }
    for (cmd, options) in COMMAND_OPTIONS {
        let heading = format!(".SH \"PAGERDUTY-EVENT {}\"", cmd.to_uppercase());
        let at = page.find(&heading).unwrap_or_else(|| panic!("{heading}"));
        let body = &page[at..];
        let end = body[1..].find("\n.SH ").map_or(body.len(), |e| e + 1);
        for option in options.iter().filter(|o| o.starts_with("--")) {
            // roff writes a dash as \-
            let roff = option.replace('-', "\\-");
            assert!(body[..end].contains(&roff), "{cmd}: {option}");
        }
    }
    // rendered by man(1) where it is installed, without a warning
    let file = s.dir.join("pagerduty-event.1");
    std::fs::write(&file, &page).unwrap();
    if let Ok(out) = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(text.contains("PAGERDUTY-EVENT(1)"), "{text}");
        assert!(text.contains("pagerduty-event flush"), "{text}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn replay_takes_the_pagerduty_output_of_a_broker_configuration() {
    let s = setup("replay-broker");
    let config = "tests/cli/central-broker.json";
    let events = "tests/cli/replay.jsonl";
    // three PagerDuty outputs and no --output: all named, nothing replayed
    let r = run(&s.dir, &["replay", "--dry-run", "--config", config, events]);
    r.expect(2);
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.all());
    for needle in [
        "3 PagerDuty outputs",
        "--output NAME",
        "\"PagerDuty events\" (pagerduty-events-apiv2.lua)",
        "\"PagerDuty legacy\" (pagerduty-apiv1.lua)",
        "\"PagerDuty seed guide\" (pagerduty.lua)",
    ] {
        assert!(r.stderr().contains(needle), "{needle}\n{}", r.all());
    }
    assert!(r.stdout().is_empty(), "{}", r.all());
    // an output that is not a PagerDuty one (Splunk) is not picked
    let r = run(
        &s.dir,
        &[
            "replay",
            "--dry-run",
            "--config",
            config,
            "--output",
            "Splunk events",
            events,
        ],
    );
    r.expect(2);
    assert!(
        r.stderr()
            .contains("no PagerDuty output named \"Splunk events\""),
        "{}",
        r.all()
    );
    // --output picks one: the same events as with that output's JSON alone
    let picked = run(
        &s.dir,
        &[
            "replay",
            "--dry-run",
            "--config",
            config,
            "--output",
            "PagerDuty legacy",
            events,
        ],
    );
    picked.expect(0);
    assert!(
        picked
            .stderr()
            .contains("the parameters of the output \"PagerDuty legacy\" (pagerduty-apiv1.lua)"),
        "{}",
        picked.all()
    );
    assert!(!picked.all().contains("Pr0xyPa55"), "{}", picked.all());
    let broker: Value = serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    let legacy = broker["centreonBroker"]["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "PagerDuty legacy")
        .unwrap();
    let alone = s.dir.join("legacy-output.json");
    std::fs::write(&alone, legacy.to_string()).unwrap();
    let expected = run(
        &s.dir,
        &[
            "replay",
            "--dry-run",
            "--config",
            &alone.display().to_string(),
            events,
        ],
    );
    expected.expect(0);
    assert!(expected.stdout().lines().count() > 3, "{}", expected.all());
    assert_eq!(picked.stdout(), expected.stdout());
    // a Broker configuration with one PagerDuty output needs no --output; none is an error
    let one = s.dir.join("one.json");
    let mut only = broker.clone();
    only["centreonBroker"]["output"] = json!([legacy]);
    std::fs::write(&one, only.to_string()).unwrap();
    let r = run(
        &s.dir,
        &[
            "replay",
            "--dry-run",
            "--config",
            &one.display().to_string(),
            events,
        ],
    );
    r.expect(0);
    assert_eq!(r.stdout(), expected.stdout());
    only["centreonBroker"]["output"] = json!([]);
    std::fs::write(&one, only.to_string()).unwrap();
    let r = run(
        &s.dir,
        &[
            "replay",
            "--dry-run",
            "--config",
            &one.display().to_string(),
            events,
        ],
    );
    r.expect(2);
    assert!(
        r.stderr().contains("has no PagerDuty output"),
        "{}",
        r.all()
    );
    // --output needs a Broker configuration
    let r = run(
        &s.dir,
        &[
            "replay",
            "--dry-run",
            "--output",
            "PagerDuty legacy",
            events,
        ],
    );
    r.expect(2);
    let r = run(
        &s.dir,
        &[
            "replay",
            "--dry-run",
            "--config",
            &alone.display().to_string(),
            "--output",
            "PagerDuty legacy",
            events,
        ],
    );
    r.expect(2);
}

/// Runs the binary under `script` (util-linux): its stdout and stderr on a pseudo-terminal,
/// as an operator at a terminal sees them (`None` where `script` is not installed).
fn run_on_a_terminal(dir: &Path, args: &[&str]) -> Option<Run> {
    let probe = Command::new("script").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("script (util-linux) is not installed: the terminal form is not checked");
        return None;
    }
    let quoted: Vec<String> = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &quoted.join(" "), "/dev/null"])
        .stdin(std::process::Stdio::null());
    Some(run_command(dir, cmd, &[]))
}

/// What a terminal shows to erase the progress line before drawing the next frame.
const ERASE: &str = "\r\x1b[K";

#[test]
fn flush_shows_progress_on_a_terminal_and_one_summary_line_otherwise() {
    let pd = Standin::start().unwrap();
    let s = setup("flush-progress");
    s.queue_triggers(0, 5);
    // in a pipe (cron, a timer): no progress, the result lines only
    let r = run(
        &s.dir,
        &["flush", "--outbox", &s.outbox, "--url", &pd.url()],
    );
    r.expect(0);
    assert_eq!(
        r.stdout(),
        format!(
            "routing key {MASKED_KEY}: 5 delivered\n5 event(s) delivered; nothing left queued\n"
        )
    );
    assert_eq!(r.stderr(), "", "{}", r.all());
    // on a terminal: the progress line, drawn in place, then erased before the results
    s.queue_triggers(5, 5);
    let Some(r) = run_on_a_terminal(
        &s.dir,
        &["flush", "--outbox", &s.outbox, "--url", &pd.url()],
    ) else {
        return;
    };
    r.expect(0);
    let screen = r.stdout();
    let first = screen.find(ERASE).unwrap_or_else(|| panic!("{screen:?}"));
    let frame = &screen[first + ERASE.len()..];
    assert!(frame.starts_with("flush ****2345: "), "{screen:?}");
    assert!(
        frame.starts_with("flush ****2345: ") && frame.contains("/5 answered"),
        "{screen:?}"
    );
    assert!(
        screen.ends_with(&format!(
            "{ERASE}routing key {MASKED_KEY}: 5 delivered\r\n5 event(s) delivered; nothing left queued\r\n"
        )),
        "{screen:?}"
    );
    assert_eq!(support::actions(&pd.accepted()).len(), 10);
}

#[test]
fn replay_shows_progress_on_a_terminal_and_one_summary_line_otherwise() {
    let pd = Standin::start().unwrap();
    let s = setup("replay-progress");
    let input = support::root().join("tests/cli/replay.jsonl");
    let input = input.display().to_string();
    let args = |outbox: &str| -> Vec<String> {
        [
            "replay",
            "--routing-key-file",
            &s.key_file,
            "--url",
            &pd.url(),
            "--outbox",
            outbox,
            "--param",
            "pdy_centreon_url=https://centreon.example.com",
            &input,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let piped = args(&s.outbox);
    let piped: Vec<&str> = piped.iter().map(String::as_str).collect();
    let r = run(&s.dir, &piped);
    r.expect(0);
    // one summary line, nothing drawn
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.all());
    assert!(
        r.stderr()
            .starts_with("12 Centreon event(s), 8 PagerDuty event(s): "),
        "{}",
        r.all()
    );
    assert!(!r.all().contains('\r'), "{}", r.all());
    // on a terminal, with a fresh outbox (the incidents' state starts from nothing)
    let fresh = s.dir.join("outbox2").display().to_string();
    let on_terminal = args(&fresh);
    let on_terminal: Vec<&str> = on_terminal.iter().map(String::as_str).collect();
    let Some(r) = run_on_a_terminal(&s.dir, &on_terminal) else {
        return;
    };
    r.expect(0);
    let screen = r.stdout();
    assert!(screen.contains(&format!("{ERASE}replay: ")), "{screen:?}");
    assert!(screen.contains("/8 answered"), "{screen:?}");
    assert!(
        screen.contains(&format!(
            "{ERASE}12 Centreon event(s), 8 PagerDuty event(s): "
        )),
        "{screen:?}"
    );
}

#[test]
fn flush_waits_out_pagerduty_rate_limit_within_its_wait() {
    let pd = Standin::start().unwrap();
    let s = setup("flush-429");
    s.queue_triggers(0, 5);
    // PagerDuty asks for a pause: flush pauses as asked and goes on (send would stop here)
    pd.push_answers([Answer::TooMany {
        retry_after: Some(1),
    }]);
    let r = run(
        &s.dir,
        &[
            "flush",
            "--outbox",
            &s.outbox,
            "--url",
            &pd.url(),
            "--wait",
            "60",
        ],
    );
    r.expect(0);
    assert_eq!(
        r.stdout(),
        format!(
            "routing key {MASKED_KEY}: 5 delivered\n5 event(s) delivered; nothing left queued\n"
        ),
        "{}",
        r.all()
    );
    let mut keys: Vec<String> = support::actions(&pd.accepted())
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    keys.sort();
    assert_eq!(keys, ["k0", "k1", "k2", "k3", "k4"]);
}
