//! `pd-standin`: runs the PagerDuty Events API v2 stand-in on 127.0.0.1 and logs every event it receives.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pd_standin::{Answer, CHANGE_ENQUEUE_PATH, ENQUEUE_PATH, Request, Standin};
use serde_json::Value;

const USAGE: &str = "\
usage: pd-standin [--port N] [--latency-ms N] [--rate-limit N] [--rate-window-ms N]
                  [--answers FILE] [--events-out FILE] [--max-seconds N] [--no-stdin]

A PagerDuty Events API v2 stand-in on 127.0.0.1 (POST /v2/enqueue, /v2/change/enqueue).

  --port N            port to listen on (default 0: the system chooses)
  --latency-ms N      wait N ms before every answer
  --rate-limit N      accept at most N events per routing key per window (else 429)
  --rate-window-ms N  length of the rate-limit sliding window (default 60000)
  --answers FILE      scripted answers, one per line, used in order before the normal
                      behaviour: 202 | 400 reason | 429 | 429 retry-after=N | 500 | 502 |
                      503 | hang | reset | close | delay MS ANSWER | NNN [raw body] |
                      redirect NNN URL (3xx with Location) | html NNN [page] (text/html;
                      a captive portal's login page by default) | echo NNN (quotes the
                      request body, routing key included: JSON for 4xx, else text)
                      (blank lines and lines starting with # are skipped)
  --events-out FILE   append every accepted (202) body to FILE as one JSON line
  --max-seconds N     stop after N seconds
  --no-stdin          do not stop at end of standard input (needs --max-seconds)

The first stdout line is `listening http://127.0.0.1:PORT/v2/enqueue`; then one line per
request (UTC time, status or --- when none was sent, action, dedup key, severity,
summary). It stops at end of standard input or after --max-seconds, then prints the
incident timeline.";

struct Options {
    port: u16,
    latency_ms: u64,
    rate_limit: Option<u32>,
    rate_window_ms: Option<u64>,
    answers: Option<PathBuf>,
    events_out: Option<PathBuf>,
    max_seconds: Option<u64>,
    watch_stdin: bool,
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value
        .parse()
        .map_err(|_| format!("{flag}: not a valid number: {value:?}"))
}

/// `Ok(None)` when help was asked for.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut opts = Options {
        port: 0,
        latency_ms: 0,
        rate_limit: None,
        rate_window_ms: None,
        answers: None,
        events_out: None,
        max_seconds: None,
        watch_stdin: true,
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next());
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => opts.port = number(&flag, value())?,
            "--latency-ms" => opts.latency_ms = number(&flag, value())?,
            "--rate-limit" => opts.rate_limit = Some(number(&flag, value())?),
            "--rate-window-ms" => opts.rate_window_ms = Some(number(&flag, value())?),
            "--max-seconds" => opts.max_seconds = Some(number(&flag, value())?),
            "--answers" => {
                opts.answers = Some(value().ok_or("--answers needs a file")?.into());
            }
            "--events-out" => {
                opts.events_out = Some(value().ok_or("--events-out needs a file")?.into());
            }
            "--no-stdin" => opts.watch_stdin = false,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !opts.watch_stdin && opts.max_seconds.is_none() {
        return Err("--no-stdin needs --max-seconds".to_string());
    }
    Ok(Some(opts))
}

fn load_answers(path: &PathBuf) -> Result<Vec<Answer>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut answers = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let answer =
            Answer::parse(line).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        answers.push(answer);
    }
    Ok(answers)
}

/// Turns `Instant`s into UTC wall-clock times.
#[derive(Clone, Copy)]
struct Clock {
    wall: SystemTime,
    mono: Instant,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }

    /// `HH:MM:SS.mmm` (UTC).
    fn format(&self, at: Instant) -> String {
        let wall = self.wall + at.saturating_duration_since(self.mono);
        let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs() % 86_400;
        format!(
            "{:02}:{:02}:{:02}.{:03}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            since.subsec_millis()
        )
    }
}

/// A JSON-quoted string, cut to `max` characters.
fn quoted(s: &str, max: usize) -> String {
    let cut: String = if s.chars().count() > max {
        s.chars().take(max).chain("...".chars()).collect()
    } else {
        s.to_string()
    };
    Value::from(cut).to_string()
}

/// A word as is, or JSON-quoted when empty or holding spaces or control characters.
fn word(s: &str) -> String {
    if s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"')
    {
        quoted(s, 80)
    } else {
        s.chars().take(80).collect()
    }
}

fn str_at<'a>(value: Option<&'a Value>, path: &[&str]) -> Option<&'a str> {
    let mut v = value?;
    for key in path {
        v = v.get(key)?;
    }
    v.as_str()
}

/// One log line for a request.
fn describe(req: &Request, clock: &Clock) -> String {
    let time = clock.format(req.at);
    let status = if req.status == 0 {
        "---".to_string()
    } else {
        req.status.to_string()
    };
    let route = req.path.split('?').next().unwrap_or_default();
    let json = req.json.as_ref().filter(|j| j.is_object());
    let is_event = route == ENQUEUE_PATH || route == CHANGE_ENQUEUE_PATH;
    let mut line = if let (true, Some(_)) = (is_event, json) {
        let response: Option<Value> = serde_json::from_str(&req.redacted_response_body()).ok();
        let action = str_at(json, &["event_action"])
            .or((route == CHANGE_ENQUEUE_PATH).then_some("change"))
            .unwrap_or("-");
        let dedup = str_at(json, &["dedup_key"])
            .or_else(|| str_at(response.as_ref(), &["dedup_key"]))
            .unwrap_or("-");
        let severity = str_at(json, &["payload", "severity"]).unwrap_or("-");
        let summary = str_at(json, &["payload", "summary"]).unwrap_or("");
        let mut line = format!(
            "{time} {status} {} {} {} {}",
            word(action),
            word(dedup),
            word(severity),
            quoted(summary, 120)
        );
        if let Some(errors) = response
            .as_ref()
            .and_then(|r| r.get("errors"))
            .and_then(Value::as_array)
        {
            let errors: Vec<&str> = errors.iter().filter_map(Value::as_str).collect();
            line.push_str(&format!(" errors: {}", errors.join("; ")));
        }
        line
    } else {
        format!(
            "{time} {status} {} {} ({} bytes)",
            word(&req.method),
            word(&req.path),
            req.body.len()
        )
    };
    if req.status == 0 {
        line.push_str(" (no answer)");
    }
    line
}

fn run(opts: Options) -> Result<(), String> {
    let answers = match &opts.answers {
        Some(path) => load_answers(path)?,
        None => Vec::new(),
    };
    let events_out: Option<File> = match &opts.events_out {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let mut pd = Standin::start_on(opts.port)
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", opts.port))?;
    pd.set_latency(Duration::from_millis(opts.latency_ms));
    if let Some(limit) = opts.rate_limit {
        pd.set_rate_limit(limit);
    }
    if let Some(ms) = opts.rate_window_ms {
        pd.set_rate_window(Duration::from_millis(ms));
    }
    pd.push_answers(answers);

    let clock = Clock::now();
    let events_out = Mutex::new(events_out);
    pd.on_request(move |req| {
        let line = describe(req, &clock);
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        drop(out);
        if let (202, Some(json)) = (req.status, &req.json) {
            append_event(&events_out, json);
        }
    });
    {
        let mut out = io::stdout().lock();
        writeln!(out, "listening {}", pd.url()).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }

    let (tx, rx) = mpsc::channel::<&'static str>();
    if opts.watch_stdin {
        let tx = tx.clone();
        // Not joined: it may stay blocked in read when --max-seconds ends the run.
        thread::spawn(move || {
            let mut sink = [0u8; 4096];
            let mut stdin = io::stdin().lock();
            loop {
                match stdin.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send("end of standard input");
        });
    }
    let why = match opts.max_seconds {
        Some(secs) => rx
            .recv_timeout(Duration::from_secs(secs))
            .unwrap_or("--max-seconds reached"),
        None => rx.recv().unwrap_or("end of standard input"),
    };
    drop(tx);
    pd.shutdown();
    print_report(&pd, &clock, why);
    Ok(())
}

/// Appends one accepted body as a JSON line.
fn append_event(events_out: &Mutex<Option<File>>, json: &Value) {
    let mut file = events_out.lock().unwrap_or_else(|p| p.into_inner());
    let Some(file) = file.as_mut() else {
        return;
    };
    if let Err(e) = writeln!(file, "{json}").and_then(|()| file.flush()) {
        eprintln!("pd-standin: cannot write the events file: {e}");
    }
}

fn print_report(pd: &Standin, clock: &Clock, why: &str) {
    let mut out = io::stdout().lock();
    let requests = pd.requests();
    let accepted = requests.iter().filter(|r| r.status == 202).count();
    let _ = writeln!(out, "stopped: {why}");
    let timeline = pd.timeline();
    let _ = writeln!(out, "timeline ({} events):", timeline.len());
    for t in &timeline {
        let _ = writeln!(
            out,
            "  {} {} ...{} {} {} {}",
            clock.format(t.at),
            word(&t.action),
            t.routing_key_last4,
            word(&t.dedup_key),
            t.effect,
            quoted(&t.summary, 120)
        );
    }
    let incidents = pd.incidents();
    let _ = writeln!(
        out,
        "incidents ({}, {} open):",
        incidents.len(),
        pd.open_incident_count()
    );
    for i in &incidents {
        let _ = writeln!(
            out,
            "  #{} {} ...{} {} {} events={} {}",
            i.number,
            i.status,
            i.routing_key_last4,
            word(&i.dedup_key),
            word(&i.severity),
            i.events,
            quoted(&i.summary, 120)
        );
    }
    let _ = writeln!(
        out,
        "requests: {} received, {} accepted, {} connections",
        requests.len(),
        accepted,
        pd.connections()
    );
    let _ = out.flush();
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("pd-standin: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pd-standin: {e}");
            ExitCode::FAILURE
        }
    }
}
