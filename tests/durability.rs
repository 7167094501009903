//! Nothing lost: SIGKILL with events pending, a long outage, damaged or unusable outbox files, statistics.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use pd_standin::{Answer, IncidentStatus, Standin};
use support::*;

#[test]
fn sigkill_with_events_pending_then_a_new_process_delivers_all_once() {
    for lua in LUAS {
        let refusing = Standin::start().unwrap();
        refusing.set_default(Answer::ServerError(503));
        let run = Run::new(lua, "kill_target.lua").env("CPD_URL", refusing.url());
        let (dir, mut child) = run.spawn(Stdio::piped());
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut ready = false;
        while Instant::now() < deadline {
            match lines.next() {
                Some(Ok(l)) if l == "READY" => {
                    ready = true;
                    break;
                }
                Some(Ok(_)) => continue,
                _ => break,
            }
        }
        assert!(ready, "the scenario did not get ready");
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(refusing.accepted().is_empty());

        // a new process on the same outbox; Broker also replays CRITICALs it had acknowledged
        let pd = Standin::start().unwrap();
        let resumed = Run::new(lua, "resume.lua")
            .work(&dir)
            .env("CPD_URL", pd.url())
            .env("CPD_REPLAY", "202 204 206 208 210")
            .go();
        resumed.assert_ok();
        // the replayed CRITICALs (checked before the last status handled: Broker replays
        // them with their time) are recognised from the persisted state
        for sid in [202, 204, 206, 208, 210] {
            let line = format!(
                "service #12:{sid} CRITICAL: nothing sent (not newer than the status already handled)"
            );
            assert!(resumed.log.contains(&line), "{line}\n{}", resumed.log);
        }
        let got = pd.accepted();
        for i in 1..=10u32 {
            let key = format!("12_{}", 200 + i);
            let seq: Vec<(String, String)> = for_key(&got, &key)
                .iter()
                .map(|b| {
                    (
                        b["event_action"].as_str().unwrap().to_string(),
                        b["payload"]["severity"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            let opened = pd
                .incidents()
                .iter()
                .filter(|inc| inc.dedup_key == key)
                .count();
            assert!(opened <= 1, "{key}: opened {opened} incidents: {seq:?}");
            if i % 2 == 0 {
                // still CRITICAL: the incident is open with the latest state
                assert_eq!(
                    seq.last(),
                    Some(&("trigger".to_string(), "critical".to_string())),
                    "{key}: {seq:?}"
                );
                assert!(seq.iter().all(|(a, _)| a == "trigger"), "{key}: {seq:?}");
            } else {
                // recovered: nothing left open, and a resolve never comes before a trigger
                assert!(
                    seq.is_empty() || seq.last().unwrap().0 == "resolve",
                    "{key}: {seq:?}"
                );
                assert!(!seq.is_empty() || opened == 0);
            }
        }
        let open: Vec<_> = pd
            .incidents()
            .into_iter()
            .filter(|i| i.status != IncidentStatus::Resolved)
            .collect();
        assert_eq!(open.len(), 5, "{open:#?}");
    }
}

#[test]
fn ten_thousand_changes_during_an_outage() {
    let pd = Standin::start().unwrap();
    pd.set_default(Answer::ServerError(500));
    let run = Run::new("5.4", "outage.lua").env("CPD_URL", pd.url());
    let (dir, mut child) = run.spawn(Stdio::piped());
    // PagerDuty stays down until every event is written and acknowledged by the outbox (the
    // scenario says so on stdout), however long the machine takes: the backlog forms during the
    // outage, as the assertions below expect, not because of a fixed delay
    let mut stdout = String::new();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut lines, &mut line).unwrap() == 0 {
            break;
        }
        stdout.push_str(&line);
        if line.starts_with("outage: 10000 events written") {
            break;
        }
    }
    pd.set_default(Answer::Accept);
    std::io::Read::read_to_string(&mut lines, &mut stdout).unwrap();
    let output = child.wait_with_output().unwrap();
    let log = std::fs::read_to_string(dir.join("connector.log")).unwrap_or_default();
    assert!(
        output.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
    println!("{stdout}");
    assert!(!log.contains(ROUTING_KEY));
    // every service ends with an open CRITICAL incident, none twice
    let incidents = pd.incidents();
    let open: Vec<_> = incidents
        .iter()
        .filter(|i| i.status != IncidentStatus::Resolved)
        .collect();
    assert_eq!(open.len(), 2500);
    assert!(open.iter().all(|i| i.severity == "critical"));
    let mut keys: Vec<&str> = open.iter().map(|i| i.dedup_key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 2500);
    // the backlog was merged: far fewer requests than state changes
    let stats: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("PagerDuty.db.stats.json")).unwrap(),
    )
    .unwrap();
    let k = &stats["routing_keys"]["****************************2345"];
    println!("{k:#}");
    assert_eq!(k["events_seen"], 10_000);
    // group commits: the 10,000 events took far fewer transactions (fsyncs)
    let commits = k["commits"].as_u64().unwrap();
    println!("10000 events, {commits} commits");
    assert!(commits < 10_000 / 10, "{commits} commits");
    assert_eq!(k["pending"], 0);
    assert!(k["merged"].as_u64().unwrap() > 0);
    assert!(k["retried"].as_u64().unwrap() > 0);
    assert_eq!(
        k["delivered"].as_u64().unwrap(),
        pd.accepted().len() as u64,
        "delivered counts what PagerDuty accepted"
    );
    assert!(
        (pd.accepted().len() as u64) < 10_000 / 2,
        "{} requests",
        pd.accepted().len()
    );
}

#[test]
fn damaged_outbox_is_moved_aside_and_a_fresh_one_used() {
    let pd = Standin::start().unwrap();
    let dir = scratch("damaged");
    let path = dir.join("broken.db");
    std::fs::write(&path, vec![0x5au8; 8192]).unwrap();
    let out = Run::new("5.3", "open_outbox.lua")
        .work(&dir)
        .env("CPD_URL", pd.url())
        .env("CPD_OUTBOX", path.display().to_string())
        .go();
    out.assert_ok();
    assert!(out.stdout().contains("state: running"), "{}", out.stdout());
    assert!(out.log.contains("moved aside"), "{}", out.log);
    assert_eq!(pd.accepted().len(), 1);
    let aside = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("broken.db.corrupt-")
        });
    assert!(aside, "the damaged file is kept for inspection");
}

#[test]
fn unusable_outbox_location_fails_init_clearly_and_broker_keeps_the_events() {
    // a missing directory; a directory where nothing can be created (procfs, even for root);
    // a path under a regular file
    for (path, want) in [
        ("/nonexistent-cpd-dir/outbox.db", "does not exist"),
        ("/proc/self/outbox.db", "outbox_path"),
        ("/etc/hostname/outbox.db", "outbox_path"),
    ] {
        let out = Run::new("5.4", "open_outbox.lua")
            .env("CPD_OUTBOX", path)
            .go();
        out.assert_ok();
        let stdout = out.stdout();
        assert!(stdout.contains("state: init_failed"), "{path}: {stdout}");
        assert!(stdout.contains(want), "{path}: {stdout}");
        kept_unacked_with_one_line(&stdout, path);
    }
}

#[test]
fn two_outputs_cannot_share_one_outbox() {
    let dir = scratch("shared-outbox");
    let path = dir.join("one.db");
    let _held = centreon_pagerduty::outbox::Outbox::open(&path).unwrap();
    let out = Run::new("5.3", "open_outbox.lua")
        .work(&dir)
        .env("CPD_OUTBOX", path.display().to_string())
        .go();
    out.assert_ok();
    assert!(
        out.stdout().contains("another running output"),
        "{}",
        out.stdout()
    );
}

#[test]
fn full_disk_gives_one_log_line_keeps_events_and_recovers() {
    let pd = Standin::start().unwrap();
    let run = Run::new("5.4", "full_disk.lua").env("CPD_URL", pd.url());
    let (dir, sd) = run.prepare();
    let fs = dir.join("small-fs");
    std::fs::create_dir_all(&fs).unwrap();
    // a private user and mount namespace with a 4 MB tmpfs: a real full disk, nothing mounted
    // on the host
    let mut unshare = std::process::Command::new("unshare");
    unshare
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg("mount -t tmpfs -o size=4m tmpfs \"$0\" && exec \"$@\"")
        .arg(&fs)
        .env("CPD_SMALL_FS", &fs);
    let output = run
        .wrapped(&dir, &sd, unshare)
        .output()
        .expect("run unshare (util-linux)");
    let log = std::fs::read_to_string(dir.join("connector.log")).unwrap_or_default();
    assert!(
        output.status.success(),
        "{}\n{}\n{log}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{}", String::from_utf8_lossy(&output.stdout));
    let got = pd.accepted();
    for sid in 3001..=3060 {
        assert_eq!(for_key(&got, &format!("12_{sid}")).len(), 1, "12_{sid}");
    }
    assert!(
        log.contains("acknowledging events"),
        "recovery logged: {log}"
    );
}

/// An outbox holding one pending event, closed (no WAL left), and its lock file, which any
/// user may open (as one left by an earlier run).
fn outbox_with_one_event(path: &std::path::Path) {
    use centreon_pagerduty::decision::Action;
    use centreon_pagerduty::outbox::{Outbox, Stored};
    let (mut o, _) = Outbox::open(path).unwrap();
    let mut b = o.batch().unwrap();
    let ev = Stored {
        dedup_key: "12_99".into(),
        action: Action::Trigger,
        summary: "kept".into(),
        body: r#"{"dedup_key":"12_99","event_action":"trigger"}"#.into(),
    };
    b.insert(&ev, true, &|_| false, false).unwrap();
    b.commit().unwrap();
    drop(o);
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    chmod(std::path::Path::new(&lock), 0o666);
}

fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs open_outbox.lua on `outbox` as user nobody (the tests run as root, whom file modes
/// do not stop): what Broker's `centreon-broker` user meets with a file restored as root.
fn open_as_nobody(dir: &std::path::Path, outbox: &std::path::Path) -> (String, String) {
    use std::os::unix::process::CommandExt;
    chmod(dir, 0o777);
    let run = Run::new("5.4", "open_outbox.lua")
        .work(dir)
        .env("CPD_OUTBOX", outbox.display().to_string());
    let (dir, sd) = run.prepare();
    let output = run
        .command(&dir, &sd)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log = std::fs::read_to_string(dir.join("connector.log")).unwrap_or_default();
    (stdout, log)
}

/// The one pending event is still in `path`, whose inode is `inode`, and nothing was moved aside.
/// A failed init's output: Broker kept the event (unacknowledged), and Broker's log says why
/// in one line about the outbox. `context` leads the messages.
fn kept_unacked_with_one_line(stdout: &str, context: &str) {
    assert!(stdout.contains("unacked: 1"), "{context}: {stdout}");
    let logged = stdout
        .lines()
        .filter(|l| l.starts_with("broker_log:") && l.contains("outbox"))
        .count();
    assert_eq!(logged, 1, "one clear line: {stdout}");
}

fn still_there(path: &std::path::Path, inode: u64) {
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(path).unwrap().ino(), inode, "same file");
    let aside = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
    assert!(!aside, "nothing moved aside");
    let (o, warn) = centreon_pagerduty::outbox::Outbox::open(path).unwrap();
    assert!(warn.is_none());
    assert_eq!(o.pending_count().unwrap(), 1, "the pending event is kept");
}

/// A file Broker's user may not read (restored as root, mode 0600), or a directory it may
/// not write: init fails with one line naming outbox_path and the system's reason; nothing is
/// called damaged or moved aside, and Broker keeps its events.
#[test]
fn unreadable_outbox_or_read_only_directory_fails_init_and_is_kept() {
    use std::os::unix::fs::MetadataExt;
    let dir = scratch("unreadable");
    let private = dir.join("private");
    std::fs::create_dir_all(&private).unwrap();
    chmod(&private, 0o777);
    let file = private.join("restored.db");
    outbox_with_one_event(&file);
    chmod(&file, 0o600);
    let read_only = dir.join("read-only");
    std::fs::create_dir_all(&read_only).unwrap();
    let in_ro = read_only.join("outbox.db");
    outbox_with_one_event(&in_ro);
    chmod(&in_ro, 0o666);
    chmod(&read_only, 0o755);
    for (path, want) in [
        (&file, "Permission denied"),
        (&in_ro, "-wal: Permission denied"),
    ] {
        let inode = std::fs::metadata(path).unwrap().ino();
        let (stdout, log) = open_as_nobody(&dir, path);
        assert!(stdout.contains("state: init_failed"), "{stdout}\n{log}");
        let error = stdout
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap()
            .to_string();
        println!("{error}");
        assert!(
            error.contains("parameter 'outbox_path'")
                && error.contains(&path.display().to_string())
                && error.contains(want),
            "{error}"
        );
        assert!(
            !error.contains("damaged") && !log.contains("moved aside"),
            "{error}\n{log}"
        );
        kept_unacked_with_one_line(&stdout, &path.display().to_string());
        still_there(path, inode);
    }
}

/// An operator's `sqlite3` session holds the outbox (BEGIN EXCLUSIVE): init fails at once with
/// the lock named, Broker keeps the events, and the outbox is left with its events.
#[test]
fn locked_outbox_fails_init_promptly_and_is_kept() {
    use std::os::unix::fs::MetadataExt;
    let dir = scratch("locked");
    let path = dir.join("locked.db");
    outbox_with_one_event(&path);
    let inode = std::fs::metadata(&path).unwrap().ino();
    let mut session = std::process::Command::new("sqlite3")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run sqlite3");
    let mut stdin = session.stdin.take().unwrap();
    use std::io::Write;
    stdin
        .write_all(b"BEGIN EXCLUSIVE;\nSELECT 'held';\n")
        .unwrap();
    stdin.flush().unwrap();
    let mut held = String::new();
    BufReader::new(session.stdout.take().unwrap())
        .read_line(&mut held)
        .unwrap();
    assert_eq!(held.trim(), "held");
    let out = Run::new("5.4", "open_outbox.lua")
        .work(&dir)
        .env("CPD_OUTBOX", path.display().to_string())
        .go();
    drop(stdin); // sqlite3 ends, releasing the lock
    session.wait().unwrap();
    out.assert_ok();
    let stdout = out.stdout();
    println!("{stdout}");
    assert!(
        stdout.contains("state: init_failed"),
        "{stdout}\n{}",
        out.log
    );
    assert!(
        stdout.contains("parameter 'outbox_path'") && stdout.contains("locked"),
        "{stdout}"
    );
    assert!(stdout.contains("unacked: 1"), "{stdout}");
    // init on Broker's thread waited a moment, not the 5 s busy timeout of the committer
    let init_ms: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("init_ms: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(init_ms < 1000, "init took {init_ms} ms");
    still_there(&path, inode);
}

/// The plan of the kill-and-replay trials: state changes of services 20:1 to 20:4 at
/// increasing check times; often the same service twice in a row (a problem and its recovery
/// close together, the case Broker's replay used to open again).
fn replay_plan(rng: &mut fastrand::Rng, events: usize) -> Vec<(u64, i64, i64)> {
    let mut states = [0i64; 5];
    let mut t = 1_700_000_000i64;
    let mut sid = 1usize;
    let mut plan = Vec::with_capacity(events);
    for _ in 0..events {
        if rng.bool() {
            sid = rng.usize(1..=4);
        }
        let now = states[sid];
        states[sid] = match now {
            0 => rng.i64(1..=2),
            _ if rng.u8(0..10) < 6 => 0,
            s => 3 - s,
        };
        t += rng.i64(1..=3);
        plan.push((sid as u64, states[sid], t));
    }
    plan
}

/// Random SIGKILLs of the Broker emulator while PagerDuty (the stand-in) fails then recovers;
/// each new process first gets, as from Broker, every event not acknowledged before the kill.
/// Nothing is lost (every service ends with the incident its last state calls for) and no
/// problem opens a second incident. `CPD_SEED=<n>` repeats a run.
#[test]
fn random_kills_with_brokers_replay_lose_nothing_and_open_no_second_incident() {
    const TRIALS: usize = 20;
    const BATCH: usize = 16;
    let seed = std::env::var("CPD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("kill-and-replay seed: {seed} (CPD_SEED={seed} repeats this run)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let plan = replay_plan(&mut rng, TRIALS * BATCH);
    let dir = scratch("kill-replay");
    let plan_file = dir.join("plan.txt");
    std::fs::write(
        &plan_file,
        plan.iter()
            .map(|(sid, state, t)| format!("{sid} {state} {t}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let journal = dir.join("journal.txt");
    let pd = Standin::start().unwrap();
    let started = Instant::now();
    let mut kills = 0;
    for trial in 0..TRIALS {
        let failing = rng.bool();
        pd.set_default(if failing {
            Answer::ServerError(503)
        } else {
            Answer::Accept
        });
        let recover_after = rng.usize(1..=BATCH);
        let kill_after = rng.usize(1..=BATCH + 4);
        let run = Run::new("5.4", "kill_replay.lua")
            .work(&dir)
            .env("CPD_URL", pd.url())
            .env("CPD_PLAN", plan_file.display().to_string())
            .env("CPD_JOURNAL", journal.display().to_string())
            .env("CPD_BATCH", BATCH.to_string());
        let (_, mut child) = run.spawn(Stdio::null());
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut handed = 0;
        let mut killed = false;
        while let Some(Ok(line)) = lines.next() {
            if line.starts_with("PROGRESS ") {
                handed += 1;
                if failing && handed == recover_after {
                    pd.set_default(Answer::Accept);
                }
                if handed == kill_after {
                    child.kill().unwrap(); // SIGKILL, right after a write()
                    killed = true;
                    break;
                }
            } else if line == "BATCH_DONE" {
                pd.set_default(Answer::Accept);
                std::thread::sleep(Duration::from_millis(rng.u64(0..150)));
                child.kill().unwrap(); // SIGKILL while idle: flushing, delivering
                killed = true;
                break;
            }
        }
        assert!(
            killed,
            "trial {trial} (seed {seed}): the run ended by itself"
        );
        assert!(!child.wait().unwrap().success());
        kills += 1;
    }
    pd.set_default(Answer::Accept);
    let last = Run::new("5.4", "kill_replay.lua")
        .work(&dir)
        .env("CPD_URL", pd.url())
        .env("CPD_PLAN", plan_file.display().to_string())
        .env("CPD_JOURNAL", journal.display().to_string())
        .env("CPD_FINAL", "1")
        .go();
    if !last.output.status.success() {
        panic!(
            "seed {seed}: final run failed: {}\n{}",
            last.stdout(),
            last.stderr()
        );
    }
    // the problem episode of a service each check time belongs to (None: an OK state)
    let episode = |sid: u64, t: i64| -> Option<usize> {
        let mut n = 0;
        let mut state = 0;
        for &(_, st, at) in plan.iter().filter(|p| p.0 == sid) {
            if state == 0 && st != 0 {
                n += 1;
            }
            state = st;
            if at == t {
                return (st != 0).then_some(n);
            }
        }
        None
    };
    // each incident opened, attributed to the problem episode of the trigger that opened it
    let accepted = pd.accepted();
    let mut opened: std::collections::HashMap<(String, usize), usize> = Default::default();
    let mut second = Vec::new();
    for entry in pd.timeline() {
        if !entry.effect.starts_with("opened") {
            continue;
        }
        let text = &entry.summary;
        let t: i64 = text
            .split("t=")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("no check time in {text}"));
        let sid: u64 = entry.dedup_key.trim_start_matches("20_").parse().unwrap();
        let ep = episode(sid, t).unwrap_or_else(|| panic!("trigger of an OK state: {text}"));
        let n = opened.entry((entry.dedup_key.clone(), ep)).or_default();
        *n += 1;
        if *n > 1 {
            second.push(format!("{} episode {ep} (t={t})", entry.dedup_key));
        }
    }
    // what must be open at the end: the last state of each service
    let mut lost = Vec::new();
    let incidents = pd.incidents();
    for sid in 1..=4u64 {
        let key = format!("20_{sid}");
        let want = plan.iter().rev().find(|p| p.0 == sid).map_or(0, |p| p.1);
        let open: Vec<_> = incidents
            .iter()
            .filter(|i| i.dedup_key == key && i.status != IncidentStatus::Resolved)
            .collect();
        let severity = ["", "warning", "critical"];
        let ok = match want {
            0 => open.is_empty(),
            s => open.len() == 1 && open[0].severity == severity[s as usize],
        };
        if !ok {
            lost.push(format!("{key}: last state {want}, open: {open:?}"));
        }
    }
    println!(
        "{TRIALS} trials, {kills} SIGKILLs, {} events planned, {} accepted by PagerDuty, {} incidents; lost {}, second incidents {}; {:.1} s",
        plan.len(),
        accepted.len(),
        incidents.len(),
        lost.len(),
        second.len(),
        started.elapsed().as_secs_f64()
    );
    let story = |key: &str| {
        pd.timeline()
            .iter()
            .filter(|e| e.dedup_key == key)
            .map(|e| format!("  {} {}: {}", e.action, e.effect, e.summary))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        lost.is_empty() && second.is_empty(),
        "seed {seed}: lost {lost:#?}\nsecond incidents {second:#?}\n{}",
        (1..=4)
            .map(|sid| format!("20_{sid}:\n{}", story(&format!("20_{sid}"))))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
