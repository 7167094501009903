//! Benchmarks of the outbox, of delivery, of a 429 storm, of huge `format_file` events, of the recovery after an outage and of an outage drawn as a timeline, with a Markdown report.
//!
//! ```text
//! cargo run --release --example bench -- outbox   [--tiny] [--runs N] [--size B]
//! cargo run --release --example bench -- delivery [--tiny] [--runs N] [--size E] [--latency-ms MS]
//! cargo run --release --example bench -- storm    [--tiny] [--runs N] [--size SERVICES] [--scale S]
//! cargo run --release --example bench -- template [--tiny] [--runs N] [--size OUTPUT_BYTES]
//! cargo run --release --example bench -- recovery [--tiny] [--runs N] [--size E] [--outage-s S]
//! cargo run --release --example bench -- outage   [--tiny] [--runs N] [--size EVENTS]
//! cargo run --release --example bench -- report results.jsonl
//! ```
//!
//! Each measuring subcommand prints one JSON object on one line on stdout (progress goes
//! to stderr). Every figure is compared with a baseline measured in the same run, and the
//! top-level figures are medians over the runs (`runs` holds each run). `report` turns such
//! lines (these, and the `write_path_summary` / `memory_summary` lines of the write-path
//! benchmark) into a `## Results` Markdown section. Benchmarks are not tests: nothing here
//! asserts a timing; `--tiny` only checks that every path still runs.
//!
//! The storm and the outage also draw their timeline (`bench/timeline.rs`): `bench/storm.svg`
//! and `bench/outage.svg` in the repository, which the report shows (`target/bench/` with
//! `--tiny`).
//!
//! Everything stays on loopback, every wait is bounded, and connectors and stand-ins are
//! dropped (their threads joined) before a run is reported. Scratch outboxes go to
//! `target/bench/`.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use centreon_pagerduty::config::{Config, Secret};
use centreon_pagerduty::connector::Connector;
use centreon_pagerduty::decision::Action;
use centreon_pagerduty::event::{Event, ObjectKey, RawEvent, StatusEvent};
use centreon_pagerduty::log::{Level, Sink};
use centreon_pagerduty::payload;
use centreon_pagerduty::payload::template::Templates;
use pd_standin::{Answer, Request, Standin};
use rusqlite::{Connection, params};
use serde_json::{Value, json};

#[path = "../tests/support/mod.rs"]
mod support;
#[path = "bench/timeline.rs"]
mod timeline;

type Res<T> = Result<T, String>;

/// Check time of the first state of every service (any fixed past time works).
const T0: i64 = 1_700_000_000;
/// Outbox target: committed state changes per second in a burst.
const OUTBOX_TARGET_PER_S: f64 = 20_000.0;
/// Latency of the stand-in in the delivery benchmark (`--latency-ms` changes it).
const LATENCY_MS: f64 = 50.0;
/// Delivery target for one routing key (PagerDuty's largest per-key limit is 10,000/min = 167/s).
const DELIVERY_TARGET_PER_S: f64 = 150.0;
/// Recovery: events waiting through the outage, and how long PagerDuty is down.
const RECOVERY_EVENTS: usize = 150;
const RECOVERY_OUTAGE_S: f64 = 15.0;
/// Recovery target: every waiting event delivered within this long after PagerDuty is back.
const RECOVERY_TARGET_S: f64 = 1.0;
/// Storm: PagerDuty's rate limit per routing key and window.
const STORM_LIMIT: u32 = 120;
/// Write-path targets: added cost per event and ratio to the baseline script.
const WRITE_PATH_MAX_ADDED_NS: f64 = 1_000.0;
const WRITE_PATH_MAX_RATIO: f64 = 1.3;
/// Memory targets: growth from the first to the second count of events, and the most above
/// the baseline script.
const MEMORY_MAX_GROWTH_PCT: f64 = 5.0;
const MEMORY_MAX_ABOVE_MB: f64 = 20.0;
/// Broker's events (API 2) not yet finalized at once behind the bridge, at most: each holds its
/// C++ event (about 1 KB) until Lua runs its finalizer (`tests/bridge.rs` `finalizers_*`).
const MEMORY_MAX_AWAITING_FINALIZER: f64 = 20_000.0;
/// Template shrink: most time to make one event of 200 huge `custom_details` fields.
const TEMPLATE_TARGET_MS: f64 = 20.0;
/// Template shrink: `custom_details` fields of the big templates.
const TEMPLATE_FIELDS: usize = 200;
/// Sender lanes per connector (`centreon_pagerduty::delivery::LANES`).
const LANES: usize = centreon_pagerduty::delivery::LANES;

fn main() {
    // Loopback only: never let a proxy from the environment carry the stand-in's traffic.
    for var in support::PROXY_VARS {
        // SAFETY: no other thread exists yet, so nothing reads the environment concurrently.
        unsafe { std::env::remove_var(var) };
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

const USAGE: &str = "usage: bench outbox|delivery|storm|template|recovery|outage [--tiny] [--runs N] [--size N] [--scale S] [--latency-ms MS] [--outage-s S] | bench report FILE";

#[derive(Debug, Default)]
struct Opts {
    tiny: bool,
    runs: Option<usize>,
    size: Option<usize>,
    scale: Option<f64>,
    latency_ms: Option<f64>,
    outage_s: Option<f64>,
}

fn run(args: &[String]) -> Res<()> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err(USAGE.into());
    };
    if cmd == "report" {
        let [file] = rest else {
            return Err(USAGE.into());
        };
        let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
        print!("{}", report(&text));
        return Ok(());
    }
    let opts = parse_opts(rest)?;
    let line = match cmd.as_str() {
        "outbox" => outbox(&opts)?,
        "delivery" => delivery(&opts)?,
        "storm" => storm(&opts)?,
        "template" => template(&opts)?,
        "recovery" => recovery(&opts)?,
        "outage" => outage(&opts)?,
        _ => return Err(USAGE.into()),
    };
    println!("{line}");
    Ok(())
}

fn parse_opts(args: &[String]) -> Res<Opts> {
    let mut o = Opts::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Res<f64> {
            it.next()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(|| format!("{name} needs a positive number"))
        };
        match a.as_str() {
            "--tiny" => o.tiny = true,
            "--runs" => o.runs = Some(value("--runs")? as usize),
            "--size" => o.size = Some(value("--size")? as usize),
            "--scale" => o.scale = Some(value("--scale")?),
            "--latency-ms" => o.latency_ms = Some(value("--latency-ms")?),
            "--outage-s" => o.outage_s = Some(value("--outage-s")?),
            _ => return Err(format!("unknown argument {a:?}; {USAGE}")),
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------
// helpers

fn bench_root() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench")
}

/// A fresh, empty directory under `target/bench/`.
fn fresh_dir(name: &str) -> Res<PathBuf> {
    let dir = bench_root().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Removes a run's scratch directory once its figures are taken (kept when a run fails,
/// for inspection; `BENCH_KEEP=1` keeps them all).
fn done_with(dir: &Path) {
    if std::env::var_os("BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// How often the storm and outage benchmarks sample the outbox backlog for their timelines.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// Samples the outbox backlog (rows pending) for a timeline.
fn sample_backlog(rec: &mut timeline::Recording, c: &Connector, t0: Instant) {
    let pending = c.counters().pending.load(Relaxed);
    rec.backlog.push((t0.elapsed().as_secs_f64(), pending));
}

/// Draws a run's timeline and writes it: `bench/NAME.svg` after a full run (next to
/// BENCHMARKS.md, which links it), `target/bench/NAME.svg` after a smoke run. Returns the
/// path BENCHMARKS.md links (relative to the repository) or the smoke run's file.
fn write_timeline(
    name: &str,
    tiny: bool,
    title: &str,
    subtitle: &str,
    rec: &timeline::Recording,
) -> Res<String> {
    let doc = timeline::svg(&timeline::chart(title, subtitle, rec));
    let (path, link) = if tiny {
        let path = bench_root().join(format!("{name}.svg"));
        let link = path.display().to_string();
        (path, link)
    } else {
        let link = format!("bench/{name}.svg");
        (PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(&link), link)
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(&path, doc).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("timeline: wrote {}", path.display());
    Ok(link)
}

/// A 32-character routing key (letters and digits), distinct per `n`.
fn routing_key(n: usize) -> String {
    format!("{:0<32}", format!("benchRoutingKey{n}"))
}

/// A connector with its log and outbox in `dir`, log level 1 (warnings: the default), and
/// `extra` parameters.
fn connector(extra: Value, dir: &Path) -> Res<Connector> {
    let mut cfg = json!({
        "pdy_routing_key": routing_key(0),
        "log_path": dir.join("connector.log").display().to_string(),
        "outbox_path": dir.join("outbox.db").display().to_string(),
        "log_level": 1,
        "http_timeout": 10,
    });
    if let Some(obj) = extra.as_object() {
        for (k, v) in obj {
            cfg[k] = v.clone();
        }
    }
    Connector::from_json(&cfg).map_err(|e| format!("connector: {e}"))
}

/// A BBDO 3 hard service status that is a state change at check time `t`.
fn service(host: u64, svc: u64, state: i64, t: i64) -> RawEvent {
    RawEvent::from_json(&json!({
        "category": 1, "element": 29, "host_id": host, "service_id": svc,
        "state": state, "state_type": 1, "last_check": t, "last_state_change": t,
        "output": format!("state {state}"), "host_name": format!("host{host}"),
        "service_description": format!("svc{svc}"),
    }))
    .expect("a valid event")
}

fn submit(c: &mut Connector, ev: &RawEvent) -> Res<bool> {
    c.submit(ev).map_err(|e| format!("submit: {e}"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Percentile `p` (0..=100) of sorted values (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median over runs of a numeric field.
fn median_of(runs: &[Value], key: &str) -> f64 {
    median(runs.iter().filter_map(|r| r[key].as_f64()).collect())
}

/// Rounds for the JSON output (keeps lines short; NaN becomes null).
fn r3(x: f64) -> Value {
    if x.is_finite() {
        json!((x * 1000.0).round() / 1000.0)
    } else {
        Value::Null
    }
}

/// Polls the verdict every 50 µs until it is true; the instant it was seen, or `None` at `deadline`.
fn wait_verdict(c: &Connector, deadline: Instant) -> Option<Instant> {
    loop {
        if c.verdict() {
            return Some(Instant::now());
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// The lane the connector sends `dedup_key` on (same hash as `delivery::lane_of`).
fn lane_of(dedup_key: &str) -> usize {
    let mut h = DefaultHasher::new();
    dedup_key.hash(&mut h);
    (h.finish() % LANES as u64) as usize
}

fn dedup(host: u64, svc: u64) -> String {
    payload::dedup_key(
        ObjectKey {
            host_id: host,
            service_id: svc,
        },
        "",
    )
}

// ---------------------------------------------------------------------------------------
// 3. outbox

/// One outbox row as the connector stored it, to replay in the raw SQLite baselines.
struct OutRow {
    dedup_key: String,
    action: String,
    opens: i64,
    summary: String,
    body: String,
    created: i64,
    host: i64,
    svc: i64,
}

fn outbox(o: &Opts) -> Res<Value> {
    let burst = o.size.unwrap_or(if o.tiny { 200 } else { 10_000 });
    let runs = o.runs.unwrap_or(if o.tiny { 1 } else { 5 });
    let isolated = if o.tiny { 3 } else { 20 };
    let single_n = burst.min(if o.tiny { 50 } else { 1_000 });
    let mut rs = Vec::new();
    for run in 0..runs {
        eprintln!("outbox: run {}/{runs}, burst of {burst}", run + 1);
        let r = outbox_run(burst, isolated, single_n, run)?;
        eprintln!(
            "outbox:   {:.0}/s committed (raw: {:.0}/s one row per transaction, {:.0}/s one transaction), last submit -> verdict {:.2} ms, isolated event {:.2} ms",
            r["rate_per_s"].as_f64().unwrap_or(f64::NAN),
            r["raw_single_per_s"].as_f64().unwrap_or(f64::NAN),
            r["raw_group_per_s"].as_f64().unwrap_or(f64::NAN),
            r["ack_after_last_ms"].as_f64().unwrap_or(f64::NAN),
            r["ack_isolated_ms"].as_f64().unwrap_or(f64::NAN),
        );
        rs.push(r);
    }
    let m = |k: &str| r3(median_of(&rs, k));
    let rate = median_of(&rs, "rate_per_s");
    Ok(json!({
        "bench": "outbox",
        "tiny": o.tiny,
        "burst": burst,
        "runs_n": runs,
        "commit_delay_ms": m("commit_delay_ms"),
        "rate_per_s": r3(rate),
        "raw_single_per_s": m("raw_single_per_s"),
        "raw_group_per_s": m("raw_group_per_s"),
        "ratio_vs_single": m("ratio_vs_single"),
        "ratio_vs_group": m("ratio_vs_group"),
        "raw_group_vs_single": m("raw_group_vs_single"),
        "rows_per_commit": m("rows_per_commit"),
        "submit_per_s": m("submit_per_s"),
        "ack_after_last_ms": m("ack_after_last_ms"),
        "ack_event_p50_ms": m("ack_event_p50_ms"),
        "ack_event_p99_ms": m("ack_event_p99_ms"),
        "ack_event_max_ms": m("ack_event_max_ms"),
        "ack_isolated_ms": m("ack_isolated_ms"),
        "raw_commit_ms": m("raw_commit_ms"),
        "ack_added_ms": m("ack_added_ms"),
        "target_per_s": OUTBOX_TARGET_PER_S,
        "met": rate >= OUTBOX_TARGET_PER_S,
        "runs": rs,
    }))
}

fn outbox_run(burst: usize, isolated: usize, single_n: usize, run: usize) -> Res<Value> {
    let dir = fresh_dir(&format!("outbox-r{run}"))?;
    // Sending disabled: the stand-in never answers, so each lane holds one request and
    // stays blocked (no CPU, no deletions competing with the committer). Defaults otherwise
    // (max_buffer_size 1: every commit is released to the lanes, as in production).
    let pd = Standin::start().map_err(|e| format!("stand-in: {e}"))?;
    pd.set_default(Answer::Hang);
    let mut c = connector(
        json!({"http_server_url": pd.url(), "http_timeout": 300}),
        &dir,
    )?;
    let commit_delay_ms = ms(c.config().outbox.commit_delay);

    // Isolated events: submit, then the verdict; the first one only warms up.
    let mut iso = Vec::new();
    for k in 0..=isolated {
        std::thread::sleep(Duration::from_millis(30));
        let ev = service(900_000 + k as u64, 1, 2, T0);
        let t = Instant::now();
        let at = if submit(&mut c, &ev)? {
            Instant::now()
        } else {
            wait_verdict(&c, t + Duration::from_secs(5))
                .ok_or("an isolated event was not committed within 5 s")?
        };
        if k > 0 {
            iso.push(ms(at - t));
        }
    }
    std::thread::sleep(Duration::from_millis(30));

    // The burst: distinct services, each a trigger; events are built beforehand.
    let events: Vec<RawEvent> = (0..burst as u64)
        .map(|i| service(1 + i / 20, 1 + i, 2, T0))
        .collect();
    let counters = c.counters();
    let committed0 = counters.committed.load(Relaxed) as usize;
    let commits0 = counters.commits.load(Relaxed);
    let mut submitted_at = Vec::with_capacity(burst);
    let mut acked_at: Vec<Instant> = Vec::with_capacity(burst);
    let t0 = Instant::now();
    for ev in &events {
        submitted_at.push(Instant::now());
        submit(&mut c, ev)?;
        let done = (c.counters().committed.load(Relaxed) as usize - committed0).min(burst);
        if done > acked_at.len() {
            let now = Instant::now();
            acked_at.resize(done, now);
        }
    }
    let last_submit = Instant::now();
    let deadline = last_submit + Duration::from_secs(30);
    let verdict_at = loop {
        let done = (c.counters().committed.load(Relaxed) as usize - committed0).min(burst);
        if done > acked_at.len() {
            let now = Instant::now();
            acked_at.resize(done, now);
        }
        if c.verdict() {
            break Instant::now();
        }
        if Instant::now() >= deadline {
            return Err("the burst was not committed within 30 s".into());
        }
        std::thread::sleep(Duration::from_micros(50));
    };
    acked_at.resize(burst, verdict_at);
    let commits = c.counters().commits.load(Relaxed) - commits0;
    drop(c);
    drop(pd);

    let mut per_event: Vec<f64> = acked_at
        .iter()
        .zip(&submitted_at)
        .map(|(a, s)| ms(a.saturating_duration_since(*s)))
        .collect();
    per_event.sort_by(f64::total_cmp);
    let secs = (verdict_at - t0).as_secs_f64();
    let rate = burst as f64 / secs;

    // Baselines: the same rows (outbox row + object state) replayed with raw rusqlite,
    // WAL and synchronous=FULL like the outbox, in the same directory.
    let db = dir.join("outbox.db");
    let schema = read_schema(&db)?;
    let rows = read_rows(&db, burst)?;
    let (single_rate, raw_commit_ms) = raw_single(
        &dir.join("raw-single.db"),
        &schema,
        &rows[..single_n.min(rows.len())],
        Duration::from_secs(20),
    )?;
    let group_rate = raw_group(&dir.join("raw-group.db"), &schema, &rows)?;
    done_with(&dir);
    let ack_isolated = median(iso.clone());
    Ok(json!({
        "commit_delay_ms": commit_delay_ms,
        "burst_s": r3(secs),
        "rate_per_s": r3(rate),
        "submit_per_s": r3(burst as f64 / (last_submit - t0).as_secs_f64()),
        "commits": commits,
        "rows_per_commit": r3(burst as f64 / commits.max(1) as f64),
        "raw_single_rows": single_n.min(rows.len()),
        "raw_single_per_s": r3(single_rate),
        "raw_group_per_s": r3(group_rate),
        "ratio_vs_single": r3(rate / single_rate),
        "ratio_vs_group": r3(rate / group_rate),
        "raw_group_vs_single": r3(group_rate / single_rate),
        "ack_after_last_ms": r3(ms(verdict_at - last_submit)),
        "ack_event_p50_ms": r3(percentile(&per_event, 50.0)),
        "ack_event_p99_ms": r3(percentile(&per_event, 99.0)),
        "ack_event_max_ms": r3(percentile(&per_event, 100.0)),
        "ack_isolated_ms": r3(ack_isolated),
        "ack_isolated_samples": iso.iter().map(|x| r3(*x)).collect::<Vec<_>>(),
        "raw_commit_ms": r3(raw_commit_ms),
        "ack_added_ms": r3(ack_isolated - raw_commit_ms),
    }))
}

/// The outbox's own schema, to create the baseline databases identically.
fn read_schema(db: &Path) -> Res<Vec<String>> {
    let conn = Connection::open(db).map_err(sql)?;
    let mut st = conn
        .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid")
        .map_err(sql)?;
    let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(sql)?;
    rows.collect::<Result<_, _>>().map_err(sql)
}

/// The last `n` rows of the outbox (the burst), oldest first.
fn read_rows(db: &Path, n: usize) -> Res<Vec<OutRow>> {
    let conn = Connection::open(db).map_err(sql)?;
    let mut st = conn
        .prepare(
            "SELECT dedup_key, action, opens, summary, body, created FROM
             (SELECT * FROM outbox ORDER BY id DESC LIMIT ?1) ORDER BY id",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([n as i64], |r| {
            let dedup_key: String = r.get(0)?;
            let (h, s) = dedup_key.split_once('_').unwrap_or(("0", "0"));
            Ok(OutRow {
                host: h.parse().unwrap_or(0),
                svc: s.parse().unwrap_or(0),
                dedup_key,
                action: r.get(1)?,
                opens: r.get(2)?,
                summary: r.get(3)?,
                body: r.get(4)?,
                created: r.get(5)?,
            })
        })
        .map_err(sql)?;
    let rows: Vec<OutRow> = rows.collect::<Result<_, _>>().map_err(sql)?;
    if rows.len() != n {
        return Err(format!(
            "expected {n} pending rows in the outbox, found {}",
            rows.len()
        ));
    }
    Ok(rows)
}

fn sql(e: rusqlite::Error) -> String {
    format!("sqlite: {e}")
}

/// A baseline database with the outbox's settings (WAL, fsync on commit) and schema.
fn raw_open(path: &Path, schema: &[String]) -> Res<Connection> {
    let conn = Connection::open(path).map_err(sql)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(sql)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("baseline database not in WAL mode ({mode})"));
    }
    conn.execute_batch(
        "PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=256; PRAGMA journal_size_limit=1048576;",
    )
    .map_err(sql)?;
    for s in schema {
        conn.execute_batch(s).map_err(sql)?;
    }
    Ok(conn)
}

/// The same two writes per event as the committer, without its merge lookup.
fn raw_insert(conn: &Connection, r: &OutRow) -> Res<()> {
    conn.prepare_cached(
        "INSERT INTO outbox (dedup_key, action, opens, summary, body, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut st| {
        st.execute(params![
            r.dedup_key,
            r.action,
            r.opens,
            r.summary,
            r.body,
            r.created
        ])
    })
    .map_err(sql)?;
    conn.prepare_cached(
        "INSERT INTO objects (host_id, service_id, open_state, acknowledged) VALUES (?1, ?2, 2, 0)
         ON CONFLICT (host_id, service_id) DO UPDATE SET open_state = excluded.open_state, acknowledged = excluded.acknowledged",
    )
    .and_then(|mut st| st.execute(params![r.host, r.svc]))
    .map_err(sql)?;
    Ok(())
}

/// One transaction (one fsync) per row: rows per second and the median commit time in ms.
fn raw_single(
    path: &Path,
    schema: &[String],
    rows: &[OutRow],
    budget: Duration,
) -> Res<(f64, f64)> {
    let mut conn = raw_open(path, schema)?;
    let mut times = Vec::with_capacity(rows.len());
    let t0 = Instant::now();
    for r in rows {
        let t = Instant::now();
        let tx = conn.transaction().map_err(sql)?;
        raw_insert(&tx, r)?;
        tx.commit().map_err(sql)?;
        times.push(ms(t.elapsed()));
        if t0.elapsed() >= budget {
            break;
        }
    }
    let rate = times.len() as f64 / t0.elapsed().as_secs_f64();
    Ok((rate, median(times)))
}

/// One transaction for the whole burst: rows per second, commit included.
fn raw_group(path: &Path, schema: &[String], rows: &[OutRow]) -> Res<f64> {
    let mut conn = raw_open(path, schema)?;
    let t0 = Instant::now();
    let tx = conn.transaction().map_err(sql)?;
    for r in rows {
        raw_insert(&tx, r)?;
    }
    tx.commit().map_err(sql)?;
    Ok(rows.len() as f64 / t0.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------------------
// 4. delivery

fn delivery(o: &Opts) -> Res<Value> {
    let per_key = o.size.unwrap_or(if o.tiny { 40 } else { 2_000 });
    let runs = o.runs.unwrap_or(if o.tiny { 1 } else { 5 });
    let latency = Duration::from_secs_f64(o.latency_ms.unwrap_or(LATENCY_MS) / 1e3);
    let connection_per_s = 1.0 / latency.as_secs_f64();
    // What the static lane assignment allows: the busiest lane sends one event per latency.
    let mut per_lane = [0usize; LANES];
    for i in 0..per_key as u64 {
        per_lane[lane_of(&dedup(1 + i / 20, 1 + i))] += 1;
    }
    let lane_max = per_lane.iter().copied().max().unwrap_or(0).max(1);
    let lane_bound = per_key as f64 / (lane_max as f64 * latency.as_secs_f64());
    let events = delivery_events(per_key, false);
    let balanced = delivery_events(per_key, true);
    let mut rs = Vec::new();
    for run in 0..runs {
        eprintln!(
            "delivery: run {}/{runs}, {per_key} events, stand-in latency {} ms",
            run + 1,
            latency.as_millis()
        );
        let one = delivery_run(&events, 1, latency, run)?;
        eprintln!(
            "delivery:   one key: {:.1} events/s ({:.2} ms per request beyond the latency)",
            one.per_s, one.overhead_ms
        );
        let ten = delivery_run(&events, 10, latency, run)?;
        eprintln!(
            "delivery:   ten keys: {:.1} events/s in all ({:.2} ms per request beyond the latency)",
            ten.per_s, ten.overhead_ms
        );
        let even = delivery_run(&balanced, 1, latency, run)?;
        eprintln!(
            "delivery:   one key, services spread evenly over the lanes: {:.1} events/s",
            even.per_s
        );
        rs.push(json!({
            "one_key_per_s": r3(one.per_s),
            "one_key_s": r3(one.secs),
            "one_key_overhead_ms": r3(one.overhead_ms),
            "ten_keys_per_s": r3(ten.per_s),
            "ten_keys_s": r3(ten.secs),
            "ten_keys_overhead_ms": r3(ten.overhead_ms),
            "balanced_per_s": r3(even.per_s),
            "ratio_one_vs_connection": r3(one.per_s / connection_per_s),
            "ratio_one_vs_target": r3(one.per_s / DELIVERY_TARGET_PER_S),
            "ratio_one_vs_lane_bound": r3(one.per_s / lane_bound),
            "ratio_ten_vs_connection": r3(ten.per_s / connection_per_s),
            "ratio_ten_vs_one": r3(ten.per_s / one.per_s),
            "ratio_balanced_vs_target": r3(even.per_s / DELIVERY_TARGET_PER_S),
            "ratio_balanced_vs_one": r3(even.per_s / one.per_s),
        }));
    }
    let m = |k: &str| r3(median_of(&rs, k));
    let one = median_of(&rs, "one_key_per_s");
    Ok(json!({
        "bench": "delivery",
        "tiny": o.tiny,
        "events_per_key": per_key,
        "latency_ms": r3(ms(latency)),
        "lanes": LANES,
        "runs_n": runs,
        "connection_per_s": connection_per_s,
        "target_per_s": DELIVERY_TARGET_PER_S,
        "lane_counts": per_lane.to_vec(),
        "lane_max": lane_max,
        "lanes_bound_per_s": r3(LANES as f64 / latency.as_secs_f64()),
        "lane_bound_per_s": r3(lane_bound),
        "one_key_per_s": r3(one),
        "ten_keys_per_s": m("ten_keys_per_s"),
        "ratio_one_vs_connection": m("ratio_one_vs_connection"),
        "ratio_one_vs_target": m("ratio_one_vs_target"),
        "ratio_one_vs_lane_bound": m("ratio_one_vs_lane_bound"),
        "ratio_ten_vs_connection": m("ratio_ten_vs_connection"),
        "ratio_ten_vs_one": m("ratio_ten_vs_one"),
        "one_key_overhead_ms": m("one_key_overhead_ms"),
        "ten_keys_overhead_ms": m("ten_keys_overhead_ms"),
        "balanced_per_s": m("balanced_per_s"),
        "ratio_balanced_vs_target": m("ratio_balanced_vs_target"),
        "ratio_balanced_vs_one": m("ratio_balanced_vs_one"),
        "met": one >= DELIVERY_TARGET_PER_S,
        "runs": rs,
    }))
}

/// `keys` connectors (one routing key each) with `per_key` events each, all submitted at
/// once: events per second until every connector is idle, and the seconds it took.
fn delivery_run(events: &[RawEvent], keys: usize, latency: Duration, run: usize) -> Res<Delivered> {
    let per_key = events.len();
    let pd = Standin::start().map_err(|e| format!("stand-in: {e}"))?;
    pd.set_latency(latency);
    let mut cs = Vec::new();
    let mut dirs = Vec::new();
    for k in 0..keys {
        let dir = fresh_dir(&format!("delivery-k{keys}-r{run}-{k}"))?;
        dirs.push(dir.clone());
        cs.push(connector(
            json!({"pdy_routing_key": routing_key(k), "http_server_url": pd.url()}),
            &dir,
        )?);
    }
    // bounded by the speed of a single connection, plus a margin
    let budget = Duration::from_secs_f64(per_key as f64 * latency.as_secs_f64() + 30.0);
    let t0 = Instant::now();
    for ev in events {
        for c in cs.iter_mut() {
            submit(c, ev)?;
        }
    }
    let deadline = t0 + budget;
    for (k, c) in cs.iter_mut().enumerate() {
        if !c.wait_idle(deadline.saturating_duration_since(Instant::now())) {
            return Err(format!(
                "delivery: key {k} not idle within {budget:?} ({} outstanding)",
                c.outstanding()
            ));
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let requests = pd.requests();
    let accepted = requests.iter().filter(|r| r.status == 202).count();
    // Per-request overhead: on each kept-alive connection, the time between two requests
    // beyond the stand-in's latency (answer, lane bookkeeping, next request).
    let mut by_conn: HashMap<u64, Vec<Instant>> = HashMap::new();
    for r in &requests {
        by_conn.entry(r.connection_id).or_default().push(r.at);
    }
    let mut gaps = Vec::new();
    for ats in by_conn.values_mut() {
        ats.sort();
        gaps.extend(ats.windows(2).map(|w| ms(w[1] - w[0]) - ms(latency)));
    }
    drop(requests);
    drop(cs);
    drop(pd);
    for dir in &dirs {
        done_with(dir);
    }
    if accepted != per_key * keys {
        return Err(format!(
            "delivery: the stand-in accepted {accepted} events, expected {}",
            per_key * keys
        ));
    }
    Ok(Delivered {
        per_s: (per_key * keys) as f64 / secs,
        secs,
        overhead_ms: median(gaps),
    })
}

/// What one delivery run measured.
struct Delivered {
    per_s: f64,
    secs: f64,
    /// Median time per request beyond the stand-in's latency, on one connection.
    overhead_ms: f64,
}

/// `n` distinct services, the `i`-th on host `1 + i / 20`; with `balanced`, only services
/// whose `dedup_key`s spread evenly over the lanes (what a dispatch without a static lane
/// per key would achieve).
fn delivery_events(n: usize, balanced: bool) -> Vec<RawEvent> {
    let per_lane = n.div_ceil(LANES);
    let mut counts = [0usize; LANES];
    let mut out = Vec::with_capacity(n);
    let mut i = 0u64;
    while out.len() < n {
        let (h, s) = (1 + i / 20, 1 + i);
        i += 1;
        if balanced {
            let lane = lane_of(&dedup(h, s));
            if counts[lane] >= per_lane {
                continue;
            }
            counts[lane] += 1;
        }
        out.push(service(h, s, 2, T0));
    }
    out
}

// ---------------------------------------------------------------------------------------
// 5. storm

/// Follows, from the stand-in's answers, how far PagerDuty's incidents are from the final state.
struct Tracker {
    /// Should an incident be open at the end?
    want: HashMap<String, bool>,
    open: HashMap<String, bool>,
    /// Keys whose incident state differs from the final one.
    mismatch: i64,
    /// Last time `mismatch` became 0.
    settled_at: Option<Instant>,
    last_accepted_at: Option<Instant>,
    accepted: u64,
    throttled: u64,
}

impl Tracker {
    fn see(&mut self, r: &Request) {
        if r.status == 429 {
            self.throttled += 1;
        }
        if r.status != 202 {
            return;
        }
        self.accepted += 1;
        self.last_accepted_at = Some(r.at);
        let Some(body) = &r.json else { return };
        let (Some(action), Some(key)) = (body["event_action"].as_str(), body["dedup_key"].as_str())
        else {
            return;
        };
        let want = self.want.get(key).copied().unwrap_or(false);
        let was = self.open.get(key).copied().unwrap_or(false);
        let now = match action {
            "trigger" => true,
            "resolve" => false,
            _ => was,
        };
        self.open.insert(key.to_string(), now);
        self.mismatch += i64::from(now != want) - i64::from(was != want);
        if self.mismatch == 0 {
            self.settled_at = Some(Instant::now());
        }
    }
}

fn storm(o: &Opts) -> Res<Value> {
    let services = o.size.unwrap_or(if o.tiny { 200 } else { 10_000 });
    let hosts = if o.tiny && o.size.is_none() {
        10
    } else {
        (services / 20).max(1)
    };
    let scale = o.scale.unwrap_or(60.0);
    let runs = o.runs.unwrap_or(if o.tiny { 1 } else { 3 });
    let window = Duration::from_secs_f64(60.0 / scale);
    let mut rs = Vec::new();
    let mut recs = Vec::new();
    for run in 0..runs {
        eprintln!(
            "storm: run {}/{runs}: {services} services on {hosts} hosts, {STORM_LIMIT} events per {:.3} s window (time scale {scale})",
            run + 1,
            window.as_secs_f64()
        );
        let (r, rec) = storm_run(services, hosts, window, scale, run)?;
        recs.push(rec);
        eprintln!(
            "storm:   final state after {:.2} s ({:.1} real min), lower bound {:.2} s: x{:.2}; {} requests, {} x 429, {} merged",
            r["time_to_final_s"].as_f64().unwrap_or(f64::NAN),
            r["time_to_final_real_min"].as_f64().unwrap_or(f64::NAN),
            r["lower_bound_s"].as_f64().unwrap_or(f64::NAN),
            r["ratio"].as_f64().unwrap_or(f64::NAN),
            r["requests"],
            r["http_429"],
            r["merged"],
        );
        rs.push(r);
    }
    let m = |k: &str| r3(median_of(&rs, k));
    let needed = services.div_ceil(2);
    let lb_windows = needed as f64 / f64::from(STORM_LIMIT);
    // the timeline of the median run (by time to the final state)
    let mut order: Vec<usize> = (0..rs.len()).collect();
    order.sort_by(|&a, &b| {
        num(&rs[a], "time_to_final_s").total_cmp(&num(&rs[b], "time_to_final_s"))
    });
    let shown = order[order.len() / 2];
    let mut rec = std::mem::take(&mut recs[shown]);
    let bucket = timeline::bucket_len(rec.end());
    rec.shade_status(429, bucket, "PagerDuty answering 429 (rate limit)");
    let svg = write_timeline(
        "storm",
        o.tiny,
        &format!(
            "Storm: {services} services go CRITICAL, then {} recover at once",
            services - needed
        ),
        &format!(
            "Stand-in: {STORM_LIMIT} events per {:.3} s window per key. Run {} of {runs}.",
            window.as_secs_f64(),
            shown + 1
        ),
        &rec,
    )?;
    Ok(json!({
        "bench": "storm",
        "tiny": o.tiny,
        "services": services,
        "hosts": hosts,
        "recovered": services - needed,
        "limit_per_window": STORM_LIMIT,
        "scale": scale,
        "window_s": window.as_secs_f64(),
        "runs_n": runs,
        "final_events_needed": needed,
        "lower_bound_windows": r3(lb_windows),
        "lower_bound_s": r3(lb_windows * window.as_secs_f64()),
        "lower_bound_real_min": r3(lb_windows),
        "time_to_final_s": m("time_to_final_s"),
        "time_to_final_real_min": m("time_to_final_real_min"),
        "ratio": m("ratio"),
        "requests": m("requests"),
        "http_429": m("http_429"),
        "accepted": m("accepted"),
        "merged": m("merged"),
        "rate_limited": m("rate_limited"),
        "retried": m("retried"),
        "requests_per_needed": m("requests_per_needed"),
        "accepted_per_needed": m("accepted_per_needed"),
        "final_state_ok": rs.iter().all(|r| r["final_state_ok"] == true),
        "timeline_svg": svg,
        "timeline_run": shown + 1,
        "runs": rs,
    }))
}

fn storm_run(
    services: usize,
    hosts: usize,
    window: Duration,
    scale: f64,
    run: usize,
) -> Res<(Value, timeline::Recording)> {
    let per_host = services.div_ceil(hosts).max(1) as u64;
    let ids: Vec<(u64, u64)> = (0..services as u64)
        .map(|i| (1 + i / per_host, 1 + i))
        .collect();
    // services with an odd id stay CRITICAL, the others recover
    let want: HashMap<String, bool> = ids
        .iter()
        .map(|&(h, s)| (dedup(h, s), s % 2 == 1))
        .collect();
    let needed = want.values().filter(|w| **w).count();
    let tracker = Arc::new(Mutex::new(Tracker {
        want: want.clone(),
        open: HashMap::new(),
        mismatch: needed as i64,
        settled_at: None,
        last_accepted_at: None,
        accepted: 0,
        throttled: 0,
    }));
    let pd = Standin::start().map_err(|e| format!("stand-in: {e}"))?;
    pd.set_rate_limit(STORM_LIMIT);
    pd.set_rate_window(window);
    {
        let tracker = Arc::clone(&tracker);
        pd.on_request(move |r| tracker.lock().unwrap_or_else(|e| e.into_inner()).see(r));
    }
    let dir = fresh_dir(&format!("storm-r{run}"))?;
    let mut c = connector(json!({"http_server_url": pd.url()}), &dir)?;
    let critical: Vec<RawEvent> = ids.iter().map(|&(h, s)| service(h, s, 2, T0)).collect();
    let recover: Vec<RawEvent> = ids
        .iter()
        .filter(|(_, s)| s % 2 == 0)
        .map(|&(h, s)| service(h, s, 0, T0 + 60))
        .collect();
    let lb_s = needed as f64 / f64::from(STORM_LIMIT) * window.as_secs_f64();
    let budget = Duration::from_secs_f64(lb_s * 20.0 + 60.0);

    let mut rec = timeline::Recording::default();
    let t0 = Instant::now();
    for (i, ev) in critical.iter().chain(&recover).enumerate() {
        submit(&mut c, ev)?;
        rec.queued.push(t0.elapsed().as_secs_f64());
        if i % 256 == 0 {
            sample_backlog(&mut rec, &c, t0);
        }
    }
    let submitted_s = t0.elapsed().as_secs_f64();
    let deadline = t0 + budget;
    let mut told = Instant::now();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let idle = c.wait_idle(left.min(SAMPLE_EVERY));
        sample_backlog(&mut rec, &c, t0);
        if idle {
            break;
        }
        if left.is_zero() {
            return Err(format!(
                "storm: not idle within {budget:?} ({} outstanding)",
                c.outstanding()
            ));
        }
        if told.elapsed() < Duration::from_secs(5) {
            continue;
        }
        told = Instant::now();
        let t = tracker.lock().unwrap_or_else(|e| e.into_inner());
        eprintln!(
            "storm:   {:>6.1} s: {} accepted, {} x 429, {} outstanding, {} keys off the final state",
            t0.elapsed().as_secs_f64(),
            t.accepted,
            t.throttled,
            c.outstanding(),
            t.mismatch
        );
    }
    let idle_s = t0.elapsed().as_secs_f64();
    let counters = c.counters();
    let merged = counters.merged.load(Relaxed);
    let rate_limited = counters.rate_limited.load(Relaxed);
    let retried = counters.retried.load(Relaxed);
    let delivered = counters.delivered.load(Relaxed);
    let commits = counters.commits.load(Relaxed);
    drop(c);
    let requests = pd.requests();
    let n_req = requests.len();
    let n429 = requests.iter().filter(|r| r.status == 429).count();
    let n202 = requests.iter().filter(|r| r.status == 202).count();
    rec.add_requests(t0, &requests);
    drop(requests);
    // the stand-in's own incident model must hold exactly the final state
    let incidents = pd.incidents();
    let open: HashSet<&str> = incidents
        .iter()
        .filter(|i| i.status.is_open())
        .map(|i| i.dedup_key.as_str())
        .collect();
    let all_critical = incidents
        .iter()
        .filter(|i| i.status.is_open())
        .all(|i| i.severity == "critical");
    let final_ok = all_critical
        && open.len() == needed
        && want.iter().all(|(k, w)| open.contains(k.as_str()) == *w);
    let (settled, last_accepted) = {
        let t = tracker.lock().unwrap_or_else(|e| e.into_inner());
        (
            (t.mismatch == 0).then_some(t.settled_at).flatten(),
            t.last_accepted_at,
        )
    };
    drop(pd);
    done_with(&dir);
    let time_to_final = settled.map_or(f64::NAN, |s| (s - t0).as_secs_f64());
    Ok((
        json!({
            "submitted_s": r3(submitted_s),
            "time_to_final_s": r3(time_to_final),
            "time_to_final_real_min": r3(time_to_final * scale / 60.0),
            "last_accepted_s": r3(last_accepted.map_or(f64::NAN, |a| a.saturating_duration_since(t0).as_secs_f64())),
            "idle_s": r3(idle_s),
            "lower_bound_s": r3(lb_s),
            "ratio": r3(time_to_final / lb_s),
            "final_events_needed": needed,
            "requests": n_req,
            "http_429": n429,
            "accepted": n202,
            "delivered": delivered,
            "merged": merged,
            "rate_limited": rate_limited,
            "retried": retried,
            "commits": commits,
            "requests_per_needed": r3(n_req as f64 / needed as f64),
            "accepted_per_needed": r3(n202 as f64 / needed as f64),
            "open_incidents": open.len(),
            "final_state_ok": final_ok,
        }),
        rec,
    ))
}

// ---------------------------------------------------------------------------------------
// 6. template shrink

/// A service going CRITICAL with a long output of `size` bytes, as the connector holds it
/// (template fields captured).
fn shrink_status(t: &Templates, size: usize) -> Res<StatusEvent> {
    let raw = RawEvent::from_json(&json!({
        "category": 1, "element": 29, "host_id": 12, "service_id": 34,
        "state": 2, "state_type": 1, "last_check": T0,
        "output": "CRITICAL - disk full", "long_output": "x".repeat(size),
        "host_name": "srv-db", "service_description": "Disk /var",
    }))
    .map_err(|e| format!("event: {e}"))?;
    let mut ev = Event::from_raw(&raw)
        .map_err(|e| format!("event: {e}"))?
        .ok_or("not an event")?;
    let ctx = ev.context_mut().ok_or("no context")?;
    ctx.host_name = Some("srv-db".into());
    ctx.service_description = Some("Disk /var".into());
    t.capture(&raw, ctx);
    match ev {
        Event::Status(st) => Ok(st),
        _ => Err("not a status".into()),
    }
}

/// Median milliseconds to make the event (built-in event, template, request body), as
/// Broker's thread makes it for a state change (`Connector::status_out`), over `n` events;
/// and the body's size.
fn shrink_time(t: &Templates, st: &StatusEvent, cfg: &Config, n: usize) -> (f64, usize) {
    let log = std::sync::Arc::new(Sink::in_memory(Level::Warning));
    let _current = log.enter();
    let key = Secret::new(routing_key(0));
    let mut times = Vec::with_capacity(n);
    let mut size = 0;
    for _ in 0..n {
        let start = Instant::now();
        let builtin = payload::status_event(st, Action::Trigger, &cfg.payload);
        let out = t.status_event(st, Action::Trigger, builtin);
        let body = payload::encode(&out, &key);
        times.push(ms(start.elapsed()));
        size = std::hint::black_box(body).len();
    }
    (median(times), size)
}

fn template(o: &Opts) -> Res<Value> {
    let size = o.size.unwrap_or(if o.tiny { 4_000 } else { 400_000 });
    let runs = o.runs.unwrap_or(if o.tiny { 1 } else { 5 });
    let events = if o.tiny { 2 } else { 20 };
    let (cfg, _) = Config::from_json(&json!({"pdy_routing_key": routing_key(0)}))
        .map_err(|e| format!("config: {e}"))?;
    let cases = [
        ("baseline", 1, "{long_output}"),
        ("one", TEMPLATE_FIELDS, "{long_output}"),
        (
            "three",
            TEMPLATE_FIELDS,
            "{long_output}{long_output}{long_output}",
        ),
    ];
    let mut prepared = Vec::new();
    for (name, fields, value) in cases {
        let t = support::shrink_templates(fields, value);
        let st = shrink_status(&t, size)?;
        prepared.push((name, t, st));
    }
    let mut rs = Vec::new();
    for run in 0..runs {
        eprintln!(
            "template: run {}/{runs}, {events} events per template, {size}-byte output",
            run + 1
        );
        let mut r = json!({});
        // interleaved: the three templates in each run, same minutes
        for (name, t, st) in &prepared {
            let (ms, bytes) = shrink_time(t, st, &cfg, events);
            r[format!("{name}_ms")] = r3(ms);
            r[format!("{name}_bytes")] = json!(bytes);
        }
        rs.push(r);
    }
    let mut v = json!({
        "bench": "template", "tiny": o.tiny, "output_bytes": size,
        "fields": TEMPLATE_FIELDS, "events_per_run": events,
        "target_ms": TEMPLATE_TARGET_MS, "max_body": payload::MAX_BODY,
    });
    for name in ["baseline", "one", "three"] {
        v[format!("{name}_ms")] = r3(median_of(&rs, &format!("{name}_ms")));
        v[format!("{name}_bytes")] = rs[0][format!("{name}_bytes")].clone();
    }
    v["runs"] = Value::Array(rs);
    Ok(v)
}

// 7. recovery after an outage

fn recovery(o: &Opts) -> Res<Value> {
    let n = o.size.unwrap_or(if o.tiny { 20 } else { RECOVERY_EVENTS });
    let runs = o.runs.unwrap_or(if o.tiny { 1 } else { 5 });
    let outage =
        Duration::from_secs_f64(
            o.outage_s
                .unwrap_or(if o.tiny { 1.0 } else { RECOVERY_OUTAGE_S }),
        );
    let events = delivery_events(n, false);
    let mut rs = Vec::new();
    for run in 0..runs {
        eprintln!(
            "recovery: run {}/{runs}, {n} events, PagerDuty down {:.1} s",
            run + 1,
            outage.as_secs_f64()
        );
        let up = recovery_run(&events, None, run)?;
        let back = recovery_run(&events, Some(outage), run)?;
        eprintln!(
            "recovery:   delivered {:.3} s after the recovery ({:.3} s after the first success; {} failed attempts, longest backoff {:.1} s); PagerDuty up all along: {:.3} s",
            back.drain_s, back.after_first_s, back.failed, back.longest_backoff_s, up.drain_s
        );
        rs.push(json!({
            "drain_s": r3(back.drain_s),
            "after_first_success_s": r3(back.after_first_s),
            "baseline_s": r3(up.drain_s),
            "failed_attempts": back.failed,
            "longest_backoff_s": r3(back.longest_backoff_s),
            "ratio_vs_baseline": r3(back.drain_s / up.drain_s),
        }));
    }
    let m = |k: &str| r3(median_of(&rs, k));
    let drain = median_of(&rs, "drain_s");
    Ok(json!({
        "bench": "recovery",
        "tiny": o.tiny,
        "events": n,
        "outage_s": r3(outage.as_secs_f64()),
        "runs_n": runs,
        "target_s": RECOVERY_TARGET_S,
        "drain_s": r3(drain),
        "drain_max_s": r3(rs.iter().filter_map(|r| r["drain_s"].as_f64()).fold(f64::NAN, f64::max)),
        "after_first_success_s": m("after_first_success_s"),
        "baseline_s": m("baseline_s"),
        "ratio_vs_baseline": m("ratio_vs_baseline"),
        "failed_attempts": m("failed_attempts"),
        "longest_backoff_s": m("longest_backoff_s"),
        "met": drain < RECOVERY_TARGET_S,
        "runs": rs,
    }))
}

/// What one recovery run measured.
struct Recovered {
    /// From the recovery (or, PagerDuty up all along, from the first submit) until idle.
    drain_s: f64,
    /// From the first request accepted until idle.
    after_first_s: f64,
    /// Attempts that failed during the outage.
    failed: u64,
    /// The longest retry backoff a lane started during the outage (from the log).
    longest_backoff_s: f64,
}

/// `events` submitted to one connector; with `outage`, PagerDuty answers 503 for that long
/// first (the events are committed and wait in their lanes, backing off), then 202.
fn recovery_run(events: &[RawEvent], outage: Option<Duration>, run: usize) -> Res<Recovered> {
    let pd = Standin::start().map_err(|e| format!("stand-in: {e}"))?;
    if outage.is_some() {
        pd.set_default(Answer::ServerError(503));
    }
    let first_ok: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    {
        let first_ok = Arc::clone(&first_ok);
        pd.on_request(move |r| {
            if r.status == 202 {
                first_ok
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(Instant::now());
            }
        });
    }
    let name = if outage.is_some() { "down" } else { "up" };
    let dir = fresh_dir(&format!("recovery-{name}-r{run}"))?;
    let mut c = connector(json!({"http_server_url": pd.url()}), &dir)?;
    let t0 = Instant::now();
    for ev in events {
        submit(&mut c, ev)?;
    }
    let start = match outage {
        Some(d) => {
            std::thread::sleep(d);
            pd.set_default(Answer::Accept);
            Instant::now()
        }
        None => t0,
    };
    let budget = Duration::from_secs(120);
    if !c.wait_idle(budget) {
        return Err(format!(
            "recovery: not idle within {budget:?} after the recovery ({} outstanding)",
            c.outstanding()
        ));
    }
    let end = Instant::now();
    let failed = c.counters().retried.load(Relaxed);
    drop(c);
    let accepted = pd.requests().iter().filter(|r| r.status == 202).count();
    let first = first_ok
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(end);
    drop(pd);
    // "sending trigger 1_1 failed (HTTP 503 ...); retry 4 in 2.8 s"
    let log = std::fs::read_to_string(dir.join("connector.log")).unwrap_or_default();
    let longest_backoff_s = log
        .lines()
        .filter(|l| l.contains("failed (") && l.ends_with(" s"))
        .filter_map(|l| {
            l.rsplit(" in ")
                .next()?
                .strip_suffix(" s")?
                .parse::<f64>()
                .ok()
        })
        .fold(0.0, f64::max);
    done_with(&dir);
    if accepted != events.len() {
        return Err(format!(
            "recovery: the stand-in accepted {accepted} events, expected {}",
            events.len()
        ));
    }
    Ok(Recovered {
        drain_s: (end - start).as_secs_f64(),
        after_first_s: end.saturating_duration_since(first).as_secs_f64(),
        failed,
        longest_backoff_s,
    })
}

// ---------------------------------------------------------------------------------------
// 8. outage and drain (a timeline)

/// Outage: events for distinct services, handed over at a steady pace.
const OUTAGE_EVENTS: usize = 200;
/// Outage: seconds over which they are handed over; PagerDuty is down from `OUTAGE_FROM_S`
/// for `OUTAGE_DOWN_S` (answering 500, then resetting connections, half the time each).
const OUTAGE_PACE_S: f64 = 10.0;
const OUTAGE_FROM_S: f64 = 2.0;
const OUTAGE_DOWN_S: f64 = 10.0;

fn outage(o: &Opts) -> Res<Value> {
    let n = o.size.unwrap_or(if o.tiny { 20 } else { OUTAGE_EVENTS });
    let runs = o.runs.unwrap_or(if o.tiny { 1 } else { 3 });
    // the smoke run plays the same script ten times faster
    let speed = if o.tiny { 0.1 } else { 1.0 };
    let events = delivery_events(n, false);
    let mut rs = Vec::new();
    let mut recs = Vec::new();
    for run in 0..runs {
        eprintln!(
            "outage: run {}/{runs}: {n} events over {:.1} s, PagerDuty down from {:.1} s for {:.1} s (500, then resets)",
            run + 1,
            OUTAGE_PACE_S * speed,
            OUTAGE_FROM_S * speed,
            OUTAGE_DOWN_S * speed
        );
        let up = outage_run(&events, speed, false, run)?;
        let (down, rec) = outage_run(&events, speed, true, run)?;
        eprintln!(
            "outage:   drained {:.3} s after PagerDuty is back ({} failed attempts, backlog up to {}); PagerDuty up all along: {:.3} s after the last event",
            down.drain_s, down.failed, down.backlog_max, up.0.drain_s
        );
        rs.push(json!({
            "drain_s": r3(down.drain_s),
            "baseline_s": r3(up.0.drain_s),
            "ratio_vs_baseline": r3(down.drain_s / up.0.drain_s),
            "failed_attempts": down.failed,
            "http_500": down.http_500,
            "resets": down.resets,
            "backlog_max": down.backlog_max,
            "accepted": down.accepted,
            "accepted_once": down.accepted_once,
        }));
        recs.push(rec);
    }
    let mut order: Vec<usize> = (0..rs.len()).collect();
    order.sort_by(|&a, &b| num(&rs[a], "drain_s").total_cmp(&num(&rs[b], "drain_s")));
    let shown = order[order.len() / 2];
    let svg = write_timeline(
        "outage",
        o.tiny,
        &format!("Outage and drain: {n} events while PagerDuty is down"),
        &format!(
            "Stand-in: 500 for {:.1} s, then connection resets for {:.1} s, then 202. Run {} of {runs}.",
            OUTAGE_DOWN_S * speed / 2.0,
            OUTAGE_DOWN_S * speed / 2.0,
            shown + 1
        ),
        &recs[shown],
    )?;
    let m = |k: &str| r3(median_of(&rs, k));
    let all_once = rs.iter().all(|r| r["accepted_once"] == true);
    Ok(json!({
        "bench": "outage",
        "tiny": o.tiny,
        "events": n,
        "pace_s": r3(OUTAGE_PACE_S * speed),
        "down_from_s": r3(OUTAGE_FROM_S * speed),
        "down_s": r3(OUTAGE_DOWN_S * speed),
        "runs_n": runs,
        "drain_s": m("drain_s"),
        "baseline_s": m("baseline_s"),
        "ratio_vs_baseline": m("ratio_vs_baseline"),
        "failed_attempts": m("failed_attempts"),
        "http_500": m("http_500"),
        "resets": m("resets"),
        "backlog_max": m("backlog_max"),
        "all_accepted_once": all_once,
        "timeline_svg": svg,
        "timeline_run": shown + 1,
        "runs": rs,
    }))
}

/// What one outage run measured.
struct Drained {
    /// From PagerDuty back (or, up all along, from the last event handed over) until idle.
    drain_s: f64,
    /// Requests answered 500, and connections reset, during the outage.
    http_500: usize,
    resets: usize,
    /// Attempts the connector counted as failed and retried.
    failed: u64,
    /// Most outbox rows pending at a sample.
    backlog_max: u64,
    accepted: usize,
    /// Every event accepted, each `dedup_key` exactly once.
    accepted_once: bool,
}

/// `events` handed to one connector at a steady pace (flushed as Broker does when idle);
/// with `down`, the stand-in answers 500 and then resets connections for a while. The
/// outbox backlog is sampled all along for the timeline.
fn outage_run(
    events: &[RawEvent],
    speed: f64,
    down: bool,
    run: usize,
) -> Res<(Drained, timeline::Recording)> {
    let pd = Standin::start().map_err(|e| format!("stand-in: {e}"))?;
    let name = if down { "down" } else { "up" };
    let dir = fresh_dir(&format!("outage-{name}-r{run}"))?;
    let mut c = connector(json!({"http_server_url": pd.url()}), &dir)?;
    let pace = Duration::from_secs_f64(OUTAGE_PACE_S * speed / events.len().max(1) as f64);
    let fail_at = Duration::from_secs_f64(OUTAGE_FROM_S * speed);
    let reset_at = fail_at + Duration::from_secs_f64(OUTAGE_DOWN_S * speed / 2.0);
    let back_at = fail_at + Duration::from_secs_f64(OUTAGE_DOWN_S * speed);
    // (when it happened, what the stand-in answers from then on), in order
    let script = [
        (fail_at, Answer::ServerError(500), "PagerDuty answering 500"),
        (reset_at, Answer::Reset, "PagerDuty resetting connections"),
        (back_at, Answer::Accept, ""),
    ];
    let mut switched: Vec<f64> = Vec::new();
    let mut rec = timeline::Recording::default();
    let mut next = 0;
    let t0 = Instant::now();
    let mut last_handed = t0;
    let budget = Duration::from_secs_f64(OUTAGE_FROM_S * speed + OUTAGE_DOWN_S * speed + 120.0);
    loop {
        let now = t0.elapsed();
        if down {
            while let Some((at, answer, _)) = script.get(switched.len()) {
                if now < *at {
                    break;
                }
                pd.set_default(answer.clone());
                switched.push(t0.elapsed().as_secs_f64());
            }
        }
        let due = events
            .len()
            .min((now.as_secs_f64() / pace.as_secs_f64()) as usize + 1);
        if next < due {
            while next < due {
                submit(&mut c, &events[next])?;
                rec.queued.push(t0.elapsed().as_secs_f64());
                next += 1;
            }
            c.flush();
            last_handed = Instant::now();
        }
        sample_backlog(&mut rec, &c, t0);
        let script_done = !down || switched.len() == script.len();
        if next == events.len() && script_done {
            if c.wait_idle(SAMPLE_EVERY) {
                sample_backlog(&mut rec, &c, t0);
                break;
            }
        } else {
            std::thread::sleep(SAMPLE_EVERY.min(pace));
        }
        if now > budget {
            return Err(format!(
                "outage: not idle within {budget:?} ({} outstanding)",
                c.outstanding()
            ));
        }
    }
    let end = Instant::now();
    let failed = c.counters().retried.load(Relaxed);
    drop(c);
    let requests = pd.requests();
    drop(pd);
    done_with(&dir);
    rec.add_requests(t0, &requests);
    for (i, (_, _, label)) in script.iter().enumerate().take(switched.len().min(2)) {
        rec.periods.push(timeline::Period {
            from: switched[i],
            to: switched.get(i + 1).copied().unwrap_or(switched[i]),
            label: (*label).to_string(),
        });
    }
    let keys: Vec<&str> = requests
        .iter()
        .filter(|r| r.status == 202)
        .filter_map(|r| r.json.as_ref()?["dedup_key"].as_str())
        .collect();
    let distinct: HashSet<&str> = keys.iter().copied().collect();
    let start = if down {
        t0 + Duration::from_secs_f64(switched.last().copied().unwrap_or(0.0))
    } else {
        last_handed
    };
    Ok((
        Drained {
            drain_s: end.saturating_duration_since(start).as_secs_f64(),
            http_500: requests.iter().filter(|r| r.status == 500).count(),
            resets: requests.iter().filter(|r| r.status == 0).count(),
            failed,
            backlog_max: rec.backlog.iter().map(|b| b.1).max().unwrap_or(0),
            accepted: keys.len(),
            accepted_once: keys.len() == events.len() && distinct.len() == events.len(),
        },
        rec,
    ))
}

// ---------------------------------------------------------------------------------------
// report

/// One table row: figure, value, baseline, ratio, target, met?
type Line = [String; 6];

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

/// A difference with its sign, thousands separators and `dec` decimals ("+1,500", "-220").
fn signed(x: f64, dec: usize) -> String {
    if x < 0.0 {
        fmt(x, dec)
    } else {
        format!("+{}", fmt(x, dec))
    }
}

/// A number with thousands separators and `dec` decimals ("n/a" for a missing one).
fn fmt(x: f64, dec: usize) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let s = format!("{:.*}", dec, x.abs());
    let (int, frac) = s.split_once('.').map_or((s.as_str(), ""), |(i, f)| (i, f));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if x < 0.0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

fn ratio(x: f64) -> String {
    if x.is_finite() {
        format!("x{x:.2}")
    } else {
        "n/a".into()
    }
}

fn met(b: Option<bool>) -> String {
    match b {
        Some(true) => "yes".into(),
        Some(false) => "**no**".into(),
        None => "-".into(),
    }
}

fn line(
    figure: &str,
    value: String,
    baseline: String,
    ratio: String,
    target: &str,
    ok: Option<bool>,
) -> Line {
    [
        figure.to_string(),
        value,
        baseline,
        ratio,
        target.to_string(),
        met(ok),
    ]
}

fn table(out: &mut String, title: &str, note: &str, rows: &[Line]) {
    out.push_str(&format!("\n### {title}\n\n"));
    if !note.is_empty() {
        out.push_str(note);
        out.push_str("\n\n");
    }
    out.push_str("| figure | value | baseline | ratio | target | met? |\n");
    out.push_str("|---|---:|---:|---:|---|---|\n");
    for r in rows {
        out.push_str(&format!("| {} |\n", r.join(" | ")));
    }
}

fn report(text: &str) -> String {
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v["bench"].is_string())
        .collect();
    let mut out = String::from("## Results\n");
    out.push_str(&format!(
        "\nMedians over the runs of each benchmark; each ratio or difference is taken against a baseline measured in the same run ({} CPUs).\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    for v in &lines {
        match v["bench"].as_str().unwrap_or_default() {
            "outbox" => report_outbox(&mut out, v),
            "delivery" => report_delivery(&mut out, v),
            "storm" => report_storm(&mut out, v),
            "template" => report_template(&mut out, v),
            "recovery" => report_recovery(&mut out, v),
            "outage" => report_outage(&mut out, v),
            "write_path_summary" => report_write_path(&mut out, v),
            "instructions" => report_instructions(&mut out, v, &lines),
            "memory_summary" => report_memory(&mut out, v),
            _ => {}
        }
    }
    if lines.is_empty() {
        out.push_str("\nNo benchmark results found.\n");
    }
    out
}

fn tiny_note(v: &Value) -> &'static str {
    if v["tiny"] == true {
        " (--tiny: a smoke run, not a measurement)"
    } else {
        ""
    }
}

fn report_template(out: &mut String, v: &Value) {
    let base = num(v, "baseline_ms");
    let target = num(v, "target_ms");
    let fields = num(v, "fields");
    let row = |name: &str, what: &str| {
        let ms = num(v, &format!("{name}_ms"));
        line(
            &format!(
                "time per event, {} fields of {what} (body {} bytes)",
                fmt(fields, 0),
                fmt(num(v, &format!("{name}_bytes")), 0)
            ),
            format!("{} ms", fmt(ms, 3)),
            format!("{} ms (1 field)", fmt(base, 3)),
            ratio(ms / base),
            &format!("< {} ms", fmt(target, 0)),
            (ms.is_finite() && v["tiny"] != true).then_some(ms < target),
        )
    };
    let rows = [
        row("one", "`{long_output}`"),
        row("three", "`{long_output}{long_output}{long_output}`"),
    ];
    let note = format!(
        "A service going CRITICAL with a {}-byte long output, through a `format_file` whose \
         `custom_details` repeats it: the time Broker's thread takes to make the event (built-in \
         event, template, request body; `Connector::status_out`), median of {} events per run \
         over {} run(s), the three templates interleaved in each run. Baseline: the same event \
         with a template of one such field. Before the one-pass shrink, the one-macro event took \
         17 s and the three-macro one did not end in 120 s{}.",
        fmt(num(v, "output_bytes"), 0),
        fmt(num(v, "events_per_run"), 0),
        v["runs"].as_array().map_or(0, Vec::len),
        tiny_note(v)
    );
    table(out, "Template shrink (6)", &note, &rows);
}

fn report_outbox(out: &mut String, v: &Value) {
    let rate = num(v, "rate_per_s");
    let single = num(v, "raw_single_per_s");
    let group = num(v, "raw_group_per_s");
    let rows = [
        line(
            "committed state changes/s, burst (vs 1 row per transaction)",
            format!("{}/s", fmt(rate, 0)),
            format!("{}/s", fmt(single, 0)),
            ratio(num(v, "ratio_vs_single")),
            &format!(">= {}/s", fmt(num(v, "target_per_s"), 0)),
            v["met"].as_bool(),
        ),
        line(
            "committed state changes/s, burst (vs 1 transaction for the burst)",
            format!("{}/s", fmt(rate, 0)),
            format!("{}/s", fmt(group, 0)),
            ratio(num(v, "ratio_vs_group")),
            "-",
            None,
        ),
        line(
            "raw SQLite: 1 transaction for the burst vs 1 per row",
            format!("{}/s", fmt(group, 0)),
            format!("{}/s", fmt(single, 0)),
            ratio(num(v, "raw_group_vs_single")),
            "-",
            None,
        ),
        line(
            "events per group commit",
            fmt(num(v, "rows_per_commit"), 0),
            "1".into(),
            ratio(num(v, "rows_per_commit")),
            "-",
            None,
        ),
        line(
            "ack delay, last submit -> verdict (burst)",
            format!("{} ms", fmt(num(v, "ack_after_last_ms"), 2)),
            format!("{} ms (1-row commit)", fmt(num(v, "raw_commit_ms"), 2)),
            format!(
                "+{} ms",
                fmt(num(v, "ack_after_last_ms") - num(v, "raw_commit_ms"), 2)
            ),
            "-",
            None,
        ),
        line(
            "ack delay per event in the burst, p50 / p99 / max",
            format!(
                "{} / {} / {} ms",
                fmt(num(v, "ack_event_p50_ms"), 2),
                fmt(num(v, "ack_event_p99_ms"), 2),
                fmt(num(v, "ack_event_max_ms"), 2)
            ),
            format!("{} ms (1-row commit)", fmt(num(v, "raw_commit_ms"), 2)),
            format!(
                "+{} ms (p50)",
                fmt(num(v, "ack_event_p50_ms") - num(v, "raw_commit_ms"), 2)
            ),
            "-",
            None,
        ),
        line(
            "ack delay of an isolated event (added delay)",
            format!("{} ms", fmt(num(v, "ack_isolated_ms"), 2)),
            format!("{} ms (1-row commit)", fmt(num(v, "raw_commit_ms"), 2)),
            format!("+{} ms", fmt(num(v, "ack_added_ms"), 2)),
            &format!(
                "~ one commit: it starts at once (the {} ms commit delay only applies within a burst)",
                fmt(num(v, "commit_delay_ms"), 0)
            ),
            None,
        ),
    ];
    let note = format!(
        "Bursts of {} distinct services going CRITICAL (one trigger each), sending held back, {} run(s){}. Baselines: the same rows (outbox row + object state) written with raw rusqlite, WAL, synchronous=FULL, in the same directory.",
        v["burst"],
        v["runs_n"],
        tiny_note(v)
    );
    table(out, "Outbox (3)", &note, &rows);
}

fn report_delivery(out: &mut String, v: &Value) {
    let one = num(v, "one_key_per_s");
    let ten = num(v, "ten_keys_per_s");
    let conn = num(v, "connection_per_s");
    let target = num(v, "target_per_s");
    let rows = [
        line(
            "one routing key: events/s (vs one connection)",
            format!("{}/s", fmt(one, 1)),
            format!("{}/s (1 / latency)", fmt(conn, 0)),
            ratio(num(v, "ratio_one_vs_connection")),
            &format!(">= {}/s", fmt(target, 0)),
            v["met"].as_bool(),
        ),
        line(
            "one routing key: events/s (vs target)",
            format!("{}/s", fmt(one, 1)),
            format!("{}/s (target)", fmt(target, 0)),
            ratio(num(v, "ratio_one_vs_target")),
            &format!(">= {}/s", fmt(target, 0)),
            v["met"].as_bool(),
        ),
        line(
            "one routing key: events/s (vs busiest-lane bound)",
            format!("{}/s", fmt(one, 1)),
            format!(
                "{}/s ({} lanes: {}/s if balanced)",
                fmt(num(v, "lane_bound_per_s"), 1),
                v["lanes"],
                fmt(num(v, "lanes_bound_per_s"), 0)
            ),
            ratio(num(v, "ratio_one_vs_lane_bound")),
            "-",
            None,
        ),
        line(
            "one routing key, services spread evenly over the lanes (diagnostic)",
            format!("{}/s", fmt(num(v, "balanced_per_s"), 1)),
            format!("{}/s (target)", fmt(target, 0)),
            ratio(num(v, "ratio_balanced_vs_target")),
            &format!(">= {}/s", fmt(target, 0)),
            v["balanced_per_s"].as_f64().map(|b| b >= target),
        ),
        line(
            "time per request beyond the latency, one key / ten keys",
            format!(
                "{} / {} ms",
                fmt(num(v, "one_key_overhead_ms"), 2),
                fmt(num(v, "ten_keys_overhead_ms"), 2)
            ),
            format!("{} ms (latency)", v["latency_ms"]),
            "-".into(),
            "-",
            None,
        ),
        line(
            "ten routing keys in parallel: events/s in all",
            format!("{}/s", fmt(ten, 1)),
            format!("{}/s (1 / latency)", fmt(conn, 0)),
            ratio(num(v, "ratio_ten_vs_connection")),
            "-",
            None,
        ),
        line(
            "ten routing keys vs one",
            format!("{}/s", fmt(ten, 1)),
            format!("{}/s", fmt(one, 1)),
            ratio(num(v, "ratio_ten_vs_one")),
            "x10 ideal",
            None,
        ),
    ];
    let note = format!(
        "{} events (distinct services) per routing key, stand-in latency {} ms, time until every event is delivered (`wait_idle`), {} run(s){}.",
        v["events_per_key"],
        v["latency_ms"],
        v["runs_n"],
        tiny_note(v)
    );
    table(out, "Delivery (4)", &note, &rows);
}

fn report_storm(out: &mut String, v: &Value) {
    let scale = num(v, "scale");
    let needed = num(v, "final_events_needed");
    let rows = [
        line(
            "time until PagerDuty holds the final state",
            format!(
                "{} s = {} real min",
                fmt(num(v, "time_to_final_s"), 2),
                fmt(num(v, "time_to_final_real_min"), 1)
            ),
            format!(
                "{} s = {} real min (lower bound)",
                fmt(num(v, "lower_bound_s"), 2),
                fmt(num(v, "lower_bound_real_min"), 1)
            ),
            ratio(num(v, "ratio")),
            "close to the lower bound",
            None,
        ),
        line(
            "requests sent",
            fmt(num(v, "requests"), 0),
            format!("{} (final events needed)", fmt(needed, 0)),
            ratio(num(v, "requests_per_needed")),
            "-",
            None,
        ),
        line(
            "429 answers received",
            fmt(num(v, "http_429"), 0),
            "0".into(),
            format!("+{}", fmt(num(v, "http_429"), 0)),
            "-",
            None,
        ),
        line(
            "events accepted by PagerDuty",
            fmt(num(v, "accepted"), 0),
            format!("{} (final events needed)", fmt(needed, 0)),
            ratio(num(v, "accepted_per_needed")),
            "-",
            None,
        ),
        line(
            "events merged (counter)",
            fmt(num(v, "merged"), 0),
            format!(
                "{} (2 per recovered service)",
                fmt(2.0 * num(v, "recovered"), 0)
            ),
            ratio(num(v, "merged") / (2.0 * num(v, "recovered"))),
            "-",
            None,
        ),
        line(
            "final state verified in the stand-in's incident model",
            if v["final_state_ok"] == true {
                "yes".into()
            } else {
                "NO".into()
            },
            "-".into(),
            "-".into(),
            "yes",
            v["final_state_ok"].as_bool(),
        ),
    ];
    let note = format!(
        "{} services on {} hosts go CRITICAL, then {} recover at once; the stand-in allows {} events per {} s sliding window per key (time scale {}: 1 real minute = {} s). Lower bound = final events needed / {} windows.{}",
        v["services"],
        v["hosts"],
        v["recovered"],
        v["limit_per_window"],
        fmt(num(v, "window_s"), 3),
        fmt(scale, 0),
        fmt(num(v, "window_s"), 3),
        v["limit_per_window"],
        tiny_note(v)
    );
    let note = if scale > 1.0 {
        format!(
            "{note} Caveat: only the stand-in's window is scaled, not the connector's own pauses after a 429 (0.5 s x 1.5^n, +-50 %, at most 5 s, then one request probes; in a storm, paced by the length of the previous pause): they are {} times longer relative to the window than in real time.",
            fmt(scale, 0)
        )
    } else {
        note
    };
    table(out, "Storm (5)", &note, &rows);
    report_timeline(
        out,
        v,
        "Storm timeline: requests per second by answer, events handed over and accepted, outbox backlog",
        &format!(
            "What to look at: every state change is handed over in the first second and the outbox merges them into the rows that matter (purple); then the connector sends at about PagerDuty's allowed rate (green), the 429s it provokes stay a thin orange layer (shaded: the buckets with a 429), and the backlog falls steadily until PagerDuty holds the final state ({} s, lower bound {} s).",
            fmt(num(v, "time_to_final_s"), 1),
            fmt(num(v, "lower_bound_s"), 1)
        ),
    );
}

/// The timeline image a benchmark drew (`timeline_svg`), with a one-line caption.
fn report_timeline(out: &mut String, v: &Value, alt: &str, caption: &str) {
    if let Some(path) = v["timeline_svg"].as_str() {
        out.push_str(&format!(
            "\n![{alt}]({path})\n\n*The median run ({} of {}).* {caption}\n",
            v["timeline_run"], v["runs_n"]
        ));
    }
}

fn report_outage(out: &mut String, v: &Value) {
    let rows = [
        line(
            &format!(
                "{} events handed over around the outage, accepted",
                v["events"]
            ),
            format!(
                "{} (each once)",
                if v["all_accepted_once"] == true {
                    "all"
                } else {
                    "NOT all"
                }
            ),
            "-".into(),
            "-".into(),
            "all, each once",
            v["all_accepted_once"].as_bool(),
        ),
        line(
            "backlog drained, after PagerDuty is back",
            format!("{} s", fmt(num(v, "drain_s"), 3)),
            format!(
                "{} s (PagerDuty up all along, after the last event)",
                fmt(num(v, "baseline_s"), 3)
            ),
            ratio(num(v, "ratio_vs_baseline")),
            "-",
            None,
        ),
        line(
            "most rows waiting in the outbox",
            fmt(num(v, "backlog_max"), 0),
            "-".into(),
            "-".into(),
            "-",
            None,
        ),
        line(
            "failed attempts (500 answers / connections reset)",
            format!(
                "{} ({} / {})",
                fmt(num(v, "failed_attempts"), 0),
                fmt(num(v, "http_500"), 0),
                fmt(num(v, "resets"), 0)
            ),
            "-".into(),
            "-".into(),
            "-",
            None,
        ),
    ];
    let note = format!(
        "{} events for distinct services are handed over at a steady pace over {} s (flushed as Broker does when idle); from {} s the stand-in answers 500 for half of {} s, then resets every connection for the other half, then answers 202 again. Drain: from then until every event is delivered (`wait_idle`), median of {} run(s). Baseline: the same events with PagerDuty up all along, from the last event handed over until idle, in the same run.{}",
        v["events"],
        fmt(num(v, "pace_s"), 1),
        fmt(num(v, "down_from_s"), 1),
        fmt(num(v, "down_s"), 1),
        v["runs_n"],
        tiny_note(v)
    );
    table(out, "Outage and drain (8)", &note, &rows);
    report_timeline(
        out,
        v,
        "Outage timeline: requests per second by answer, events handed over and accepted, outbox backlog",
        &format!(
            "What to look at: during the shaded outage only failed attempts (red) go out, fewer as the lanes back off, while the backlog (purple) climbs with every event handed over; after PagerDuty is back, how soon the green bars drain it and the accepted line meets the handed-over one ({} s, median).",
            fmt(num(v, "drain_s"), 1)
        ),
    );
}

fn report_recovery(out: &mut String, v: &Value) {
    let target = num(v, "target_s");
    let rows = [
        line(
            &format!(
                "{} waiting events delivered, after PagerDuty is back",
                v["events"]
            ),
            format!(
                "{} s (slowest run {} s)",
                fmt(num(v, "drain_s"), 3),
                fmt(num(v, "drain_max_s"), 3)
            ),
            format!(
                "{} s (PagerDuty up all along)",
                fmt(num(v, "baseline_s"), 3)
            ),
            ratio(num(v, "ratio_vs_baseline")),
            &format!("< {} s", fmt(target, 0)),
            v["met"].as_bool(),
        ),
        line(
            "of which after the first request accepted",
            format!("{} s", fmt(num(v, "after_first_success_s"), 3)),
            format!(
                "{} s (PagerDuty up all along)",
                fmt(num(v, "baseline_s"), 3)
            ),
            "-".into(),
            "-",
            None,
        ),
        line(
            "longest retry backoff started during the outage (what a lane would otherwise sleep out)",
            format!("{} s", fmt(num(v, "longest_backoff_s"), 1)),
            "-".into(),
            "-".into(),
            "-",
            None,
        ),
        line(
            "failed attempts during the outage",
            fmt(num(v, "failed_attempts"), 0),
            "-".into(),
            "-".into(),
            "-",
            None,
        ),
    ];
    let note = format!(
        "{} events (distinct services) wait while the stand-in answers 503 for {} s, then it answers 202 again: time from then until every event is delivered (`wait_idle`), {} run(s){}. The first request after the recovery goes when the earliest lane's backoff ends; its success releases every other lane at once. Baseline: the same events with PagerDuty up all along, submit to idle, in the same run.",
        v["events"],
        fmt(num(v, "outage_s"), 1),
        v["runs_n"],
        tiny_note(v)
    );
    table(out, "Recovery after an outage (7)", &note, &rows);
}

fn lua_of(v: &Value) -> String {
    match &v["lua"] {
        Value::String(s) => s.clone(),
        Value::Null => "?".into(),
        other => other.to_string(),
    }
}

fn report_write_path(out: &mut String, v: &Value) {
    let lua = lua_of(v);
    let (added, r) = (num(v, "added_ns"), num(v, "ratio"));
    let mut rows = vec![
        line(
            &format!("write() per event, Lua {lua}: ratio"),
            format!("{} ns", fmt(num(v, "bridge_ns"), 0)),
            format!("{} ns", fmt(num(v, "baseline_ns"), 0)),
            ratio(r),
            &format!("<= x{WRITE_PATH_MAX_RATIO:.2}"),
            r.is_finite().then_some(r <= WRITE_PATH_MAX_RATIO),
        ),
        line(
            &format!("write() per event, Lua {lua}: added cost"),
            format!("{} ns", fmt(num(v, "bridge_ns"), 0)),
            format!("{} ns", fmt(num(v, "baseline_ns"), 0)),
            format!("+{} ns", fmt(added, 0)),
            &format!("<= +{} ns", fmt(WRITE_PATH_MAX_ADDED_NS, 0)),
            added
                .is_finite()
                .then_some(added <= WRITE_PATH_MAX_ADDED_NS),
        ),
    ];
    let (wait0, wait) = (
        num(v, "baseline_waits_per_100k"),
        num(v, "bridge_waits_per_100k"),
    );
    // absent from results written before it was measured; -1 where /proc/thread-self is missing
    if wait0 >= 0.0 && wait >= 0.0 {
        rows.push(line(
            &format!("Broker's thread put to sleep per 100,000 events, Lua {lua}"),
            fmt(wait, 0),
            fmt(wait0, 0),
            signed(wait - wait0, 0),
            "-",
            None,
        ));
    }
    table(
        out,
        &format!("Write path (Lua {lua})"),
        WRITE_PATH_NOTE,
        &rows,
    );
}

/// What the sleeps of Broker's thread are (see bench/HISTORY.md, section 6).
const WRITE_PATH_NOTE: &str = "Put to sleep: voluntary context switches of the emulator's main thread (Broker's) during the timed loop, the times it waited for a lock another thread held (in this emulator, the C library's malloc arena: glibc gives at most 8 arenas per core, so on 2 cores some of the library's 17 threads (committer and 16 lanes) share Broker's thread's arena). A diagnostic without a target; the wall-clock times in the table include them.";

/// The write path in instructions (callgrind): repeatable whatever the machine's load. The
/// added cost in time is estimated at the baseline's own speed (its ns per instruction in the
/// wall-clock run of the same Lua version), when that run is in the results.
fn report_instructions(out: &mut String, v: &Value, all: &[Value]) {
    let lua = lua_of(v);
    let (base, added, r) = (num(v, "baseline_ir"), num(v, "added_ir"), num(v, "ratio"));
    let base_ns = all
        .iter()
        .find(|w| w["bench"] == "write_path_summary" && w["lua"] == v["lua"])
        .map(|w| num(w, "baseline_ns"));
    let mut rows = vec![line(
        &format!("instructions per event, Lua {lua}: ratio"),
        fmt(num(v, "bridge_ir"), 0),
        fmt(base, 0),
        format!("{} (+{})", ratio(r), fmt(added, 0)),
        &format!("<= x{WRITE_PATH_MAX_RATIO:.2}"),
        r.is_finite().then_some(r <= WRITE_PATH_MAX_RATIO),
    )];
    if let Some(ns) = base_ns.filter(|ns| ns.is_finite() && base > 0.0) {
        let est = added * ns / base;
        rows.push(line(
            &format!("added cost at the baseline's speed, Lua {lua}"),
            format!("+{} ns", fmt(est, 0)),
            format!("{} ns", fmt(ns, 0)),
            format!("{} ns per instruction", fmt(ns / base, 3)),
            &format!("<= +{} ns", fmt(WRITE_PATH_MAX_ADDED_NS, 0)),
            est.is_finite().then_some(est <= WRITE_PATH_MAX_ADDED_NS),
        ));
    }
    let gc_stopped = v["gc"] == "stop";
    let mut note = format!(
        "`valgrind --tool=callgrind` on the emulator, events to a closed port, steady state: (instructions after 3N events - after N) / 2N, N = {} events, counted on the emulator's main thread only (Broker's thread: Broker's work, the script and the library's calls, not the library's own threads), with time() fixed so that Lua seeds its string hashes alike in every run ({}). Instruction counts do not move with the machine's load; the wall-clock figures above do.",
        fmt(num(v, "events") / 2.0, 0),
        if gc_stopped {
            "and the garbage collectors stopped during the counted loops, so that the collector's phase does not move the totals; runs of the same scripts an hour apart still differed by up to about 800 instructions per event (2026-12-07); the collector's cost of the bridge's own allocations, the details of the 1 event in 100 that changes state, is not counted"
        } else {
            "each run ending with a full garbage collection; where the collector's cycles fall still moves each total by about 2,000"
        }
    );
    // profile.sh's third script: the bridge's field reads alone
    let fields = num(v, "fieldread_ir");
    if fields.is_finite() {
        note.push_str(&format!(
            " `bench/fieldread.lua`, which only reads the fields the bridge reads for every event (3 of an OK service, 7 of a service with a problem), and nothing else: {} ({} against the baseline: Broker's cost of the reads); the bridge's {} more are its own Lua work and the library's calls, the fast path of every event and the details of the 1 event in 100 that changes state.",
            fmt(fields, 0),
            signed(fields - base, 0),
            signed(num(v, "bridge_ir") - fields, 0)
        ));
    }
    table(
        out,
        &format!("Write path in instructions (Lua {lua})"),
        &note,
        &rows,
    );
}

fn report_memory(out: &mut String, v: &Value) {
    let lua = lua_of(v);
    let (growth, above) = (num(v, "growth_pct"), num(v, "above_baseline_mb"));
    let awaiting = num(v, "awaiting_finalizer");
    let rows = [
        line(
            &format!("resident memory growth, Lua {lua}"),
            format!("{} %", fmt(growth, 1)),
            "-".into(),
            "-".into(),
            &format!("<= {MEMORY_MAX_GROWTH_PCT} %"),
            growth
                .is_finite()
                .then_some(growth <= MEMORY_MAX_GROWTH_PCT),
        ),
        line(
            &format!("resident memory above the baseline script, Lua {lua}"),
            format!("{} MB", signed(above, 1)),
            "0 MB".into(),
            "-".into(),
            &format!("<= +{MEMORY_MAX_ABOVE_MB} MB"),
            above.is_finite().then_some(above <= MEMORY_MAX_ABOVE_MB),
        ),
        line(
            &format!("Broker's events awaiting their finalizer at once, Lua {lua}"),
            fmt(num(v, "awaiting_finalizer"), 0),
            fmt(num(v, "baseline_awaiting_finalizer"), 0),
            "-".into(),
            &format!("<= {}", fmt(MEMORY_MAX_AWAITING_FINALIZER, 0)),
            awaiting
                .is_finite()
                .then_some(awaiting <= MEMORY_MAX_AWAITING_FINALIZER),
        ),
    ];
    let note = if v["max_retained"].is_number() {
        format!(
            "Of which: Broker's retention, up to {} events unacknowledged at once while a commit runs (the emulator keeps them in its Lua heap, as Broker keeps them in its queue), and C heap kept free by malloc at the end: {} MB (baseline script: {} MB).",
            fmt(num(v, "max_retained"), 0),
            fmt(num(v, "heap_free_mb"), 1),
            fmt(num(v, "baseline_heap_free_mb"), 1)
        )
    } else {
        String::new()
    };
    table(out, &format!("Memory (Lua {lua})"), &note, &rows);
}

/// Smoke runs (`--tiny`), so that the benchmarks cannot rot: no timing is asserted. They run
/// with `cargo test --example bench`, and with `cargo test --workspace` once `Cargo.toml`
/// declares the example with `test = true`.
#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Opts {
        Opts {
            tiny: true,
            ..Opts::default()
        }
    }

    #[test]
    fn outbox_runs_on_a_tiny_burst() {
        let v = outbox(&tiny()).unwrap();
        assert_eq!(v["bench"], "outbox");
        assert_eq!(v["runs"].as_array().map(Vec::len), Some(1));
        assert!(report(&v.to_string()).contains("### Outbox"));
    }

    #[test]
    fn delivery_runs_on_a_tiny_input() {
        let v = delivery(&tiny()).unwrap();
        assert_eq!(v["bench"], "delivery");
        assert!(report(&v.to_string()).contains("### Delivery"));
    }

    #[test]
    fn storm_runs_on_a_tiny_input_and_reaches_the_final_state() {
        let v = storm(&tiny()).unwrap();
        assert_eq!(v["bench"], "storm");
        assert_eq!(v["final_state_ok"], true);
        assert!(report(&v.to_string()).contains("### Storm"));
    }

    #[test]
    fn recovery_runs_on_a_tiny_input() {
        let v = recovery(&tiny()).unwrap();
        assert_eq!(v["bench"], "recovery");
        assert!(report(&v.to_string()).contains("### Recovery after an outage"));
    }

    #[test]
    fn outage_runs_on_a_tiny_input_and_every_event_is_accepted_once() {
        let v = outage(&tiny()).unwrap();
        assert_eq!(v["bench"], "outage");
        assert_eq!(v["all_accepted_once"], true);
        assert!(num(&v, "http_500") > 0.0 && num(&v, "resets") > 0.0, "{v}");
        let md = report(&v.to_string());
        assert!(md.contains("### Outage and drain"), "{md}");
        assert!(md.contains("outage.svg)"), "{md}");
    }

    #[test]
    fn report_renders_the_write_path_and_memory_lines() {
        let text = concat!(
            "{\"bench\":\"write_path_summary\",\"lua\":\"5.4\",\"baseline_ns\":900,\"bridge_ns\":1500,\"added_ns\":600,\"ratio\":1.67,\"baseline_waits_per_100k\":0.0,\"bridge_waits_per_100k\":212.4}\n",
            "not json\n",
            "{\"bench\":\"memory_summary\",\"growth_pct\":0.4,\"above_baseline_mb\":21.2,\"max_retained\":3581,\"heap_free_mb\":20.2,\"baseline_heap_free_mb\":4.4}\n",
        );
        let md = report(text);
        assert!(md.starts_with("## Results"), "{md}");
        assert!(md.contains("Lua 5.4") && md.contains("1,500 ns") && md.contains("+600 ns"));
        // x1.67 misses the ratio target, +600 ns meets the added-cost one
        assert!(md.contains("| x1.67 | <= x1.30 | **no** |"), "{md}");
        assert!(md.contains("| +600 ns | <= +1,000 ns | yes |"), "{md}");
        assert!(
            md.contains("| Broker's thread put to sleep per 100,000 events, Lua 5.4 | 212 | 0 | +212 | - | - |"),
            "{md}"
        );
        assert!(md.contains("### Memory") && md.contains("+21.2 MB"));
        assert!(
            md.contains("| <= 5 % | yes |") && md.contains("| <= +20 MB | **no** |"),
            "{md}"
        );
        assert!(md.contains("up to 3,581 events unacknowledged"), "{md}");
        // the bridge below the baseline prints its sign; events awaiting their finalizer
        let md = report(
            "{\"bench\":\"memory_summary\",\"lua\":\"5.4\",\"growth_pct\":2.5,\"above_baseline_mb\":-341.5,\"awaiting_finalizer\":1819,\"baseline_awaiting_finalizer\":179995}\n",
        );
        assert!(md.contains("| -341.5 MB | 0 MB |"), "{md}");
        assert!(
            md.contains("| Broker's events awaiting their finalizer at once, Lua 5.4 | 1,819 | 179,995 | - | <= 20,000 | yes |"),
            "{md}"
        );
        let text = concat!(
            "{\"bench\":\"write_path_summary\",\"lua\":\"5.4\",\"baseline_ns\":20000,\"bridge_ns\":26000,\"added_ns\":6000,\"ratio\":1.3}\n",
            "{\"bench\":\"instructions\",\"lua\":\"5.4\",\"gc\":\"stop\",\"events\":20000,\"baseline_ir\":100000,\"fieldread_ir\":101800,\"bridge_ir\":102500,\"added_ir\":2500,\"ratio\":1.025}\n",
        );
        let md = report(text);
        assert!(md.contains("| x1.02 (+2,500) | <= x1.30 | yes |"), "{md}");
        // the field reads alone, in the note
        assert!(
            md.contains("and nothing else: 101,800 (+1,800 against the baseline: Broker's cost of the reads); the bridge's +700 more"),
            "{md}"
        );
        assert!(md.contains("the garbage collectors stopped"), "{md}");
        assert_eq!(
            (signed(-220.0, 0), signed(1500.0, 0)),
            ("-220".to_string(), "+1,500".to_string())
        );
        // 2,500 instructions at 0.2 ns each
        assert!(
            md.contains("| +500 ns | 20,000 ns | 0.200 ns per instruction | <= +1,000 ns | yes |"),
            "{md}"
        );
    }
}
