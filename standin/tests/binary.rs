//! Tests of the `pd-standin` binary: startup line, per-event lines, answers file,
//! events file, clean exit at end of stdin or --max-seconds.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Client, KEY, event, trigger};

const WAIT: Duration = Duration::from_secs(10);

fn temp_path(name: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!("pd-standin-{}-{nanos}-{name}", std::process::id()))
}

struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    addr: SocketAddr,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pd-standin"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pd-standin");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines.recv_timeout(WAIT).expect("first line");
        let url = first
            .strip_prefix("listening http://")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        assert!(url.ends_with("/v2/enqueue"), "{first}");
        let addr: SocketAddr = url.trim_end_matches("/v2/enqueue").parse().unwrap();
        assert!(addr.ip().is_loopback());
        Running { child, lines, addr }
    }

    fn next_line(&self) -> String {
        self.lines.recv_timeout(WAIT).expect("a stdout line")
    }

    /// Waits for the exit (killing it after `WAIT`) and returns the remaining lines.
    fn finish(mut self) -> (bool, Vec<String>) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("pd-standin did not exit");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            rest.push(line);
        }
        (status.success(), rest)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn logs_events_writes_the_events_file_and_stops_at_end_of_stdin() {
    let events = temp_path("events.jsonl");
    let answers = temp_path("answers.txt");
    std::fs::write(
        &answers,
        "# first requests are scripted\n429 retry-after=2\n\n400 no thanks\necho 400\nredirect 302 http://portal.example/login\nhtml 200\n",
    )
    .unwrap();
    let mut run = Running::start(&[
        "--port",
        "0",
        "--answers",
        answers.to_str().unwrap(),
        "--events-out",
        events.to_str().unwrap(),
        "--max-seconds",
        "30",
    ]);
    let mut c = Client::connect(run.addr);
    let body = trigger("12_34", "srv/Disk: CRITICAL - 95% used");
    let r = c.post("/v2/enqueue", &body).unwrap();
    assert_eq!((r.status, r.header("retry-after")), (429, Some("2")));
    assert!(run.next_line().contains(" 429 trigger 12_34 critical "));
    let r = c.post("/v2/enqueue", &body).unwrap();
    assert_eq!(r.status, 400);
    assert!(run.next_line().contains("errors: no thanks"));
    // the hostile answers: the echoed key is never printed, only its last four characters
    let r = c.post("/v2/enqueue", &body).unwrap();
    assert!(r.status == 400 && r.body.contains(KEY), "{}", r.body);
    let line = run.next_line();
    assert!(
        line.contains(" 400 trigger 12_34 ") && line.contains("...6789") && !line.contains(KEY),
        "{line}"
    );
    let r = c.post("/v2/enqueue", &body).unwrap();
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("http://portal.example/login"))
    );
    assert!(run.next_line().contains(" 302 trigger 12_34 "));
    let r = c.post("/v2/enqueue", &body).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<title>"), "{}", r.body);
    assert!(run.next_line().contains(" 200 trigger 12_34 "));
    let r = c.post("/v2/enqueue", &body).unwrap();
    assert_eq!(r.status, 202);
    let line = run.next_line();
    assert!(
        line.ends_with(r#" 202 trigger 12_34 critical "srv/Disk: CRITICAL - 95% used""#),
        "{line}"
    );
    let (time, _) = line.split_once(' ').unwrap();
    assert_eq!(time.len(), "HH:MM:SS.mmm".len(), "{line}");
    let resolve = event(KEY, "resolve", "12_34", "").to_string();
    assert_eq!(c.post("/v2/enqueue", &resolve).unwrap().status, 202);
    assert!(run.next_line().contains(" 202 resolve 12_34 "));
    assert_eq!(c.post("/v2/enqueue", "{}").unwrap().status, 400);
    assert!(run.next_line().contains("routing_key is required"));

    drop(run.child.stdin.take());
    let (ok, rest) = run.finish();
    assert!(ok);
    let report = rest.join("\n");
    assert!(
        report.contains("stopped: end of standard input"),
        "{report}"
    );
    assert!(report.contains("opened #1"), "{report}");
    assert!(report.contains("resolved #1"), "{report}");
    assert!(
        report.contains("#1 resolved ...6789 12_34 critical events=2"),
        "{report}"
    );
    assert!(!report.contains(KEY), "the routing key is never printed");

    let written = std::fs::read_to_string(&events).unwrap();
    let lines: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["event_action"], "trigger");
    assert_eq!(lines[1]["event_action"], "resolve");
    let _ = std::fs::remove_file(events);
    let _ = std::fs::remove_file(answers);
}

#[test]
fn stops_after_max_seconds_even_with_stdin_open() {
    let run = Running::start(&[
        "--max-seconds",
        "1",
        "--latency-ms",
        "1",
        "--rate-limit",
        "5",
    ]);
    let started = Instant::now();
    let (ok, rest) = run.finish();
    assert!(ok);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        rest.iter().any(|l| l == "stopped: --max-seconds reached"),
        "{rest:?}"
    );
    assert!(
        rest.iter().any(|l| l.starts_with("incidents (0, 0 open)")),
        "{rest:?}"
    );
}

#[test]
fn no_stdin_mode_ignores_end_of_stdin() {
    let mut run = Running::start(&["--no-stdin", "--max-seconds", "1"]);
    drop(run.child.stdin.take());
    thread::sleep(Duration::from_millis(300));
    assert!(matches!(run.child.try_wait(), Ok(None)), "still running");
    let (ok, rest) = run.finish();
    assert!(ok);
    assert!(rest.iter().any(|l| l == "stopped: --max-seconds reached"));
}

#[test]
fn bad_arguments_and_answers_are_refused() {
    // the stand-in run with `args` and nothing on its standard input, to its end
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pd-standin"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: pd-standin"));
    let out = run(&["--no-stdin"]);
    assert_eq!(out.status.code(), Some(2));

    let answers = temp_path("bad-answers.txt");
    let mut f = std::fs::File::create(&answers).unwrap();
    writeln!(f, "202\nteapot").unwrap();
    drop(f);
    let out = run(&["--answers", answers.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":2: unknown answer"));
    let _ = std::fs::remove_file(answers);

    let out = run(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("usage: pd-standin"));
}
