//! Test support: builds the library and the Broker host emulator, lays out a script dir as Broker does, runs scenarios.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const ROUTING_KEY: &str = "abcdefghijklmnopqrstuvwxyz012345";
/// Proxy variables removed from every child process: tests only talk to loopback.
pub const PROXY_VARS: [&str; 6] = [
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "all_proxy",
];
/// An endpoint nothing listens on (the discard port): deliveries fail, events stay queued.
pub const UNREACHABLE: &str = "http://127.0.0.1:9/v2/enqueue";
pub const OTHER_KEY: &str = "ZYXWVUTSRQPONMLKJIHGFEDCBA987654";

/// The Lua versions Centreon ships (EL8/Debian 5.3, EL9 5.4).
pub const LUAS: [&str; 2] = ["5.3", "5.4"];

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Builds the cdylib once per test process (cargo test does not build it) and returns its path.
pub fn library() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--lib", "--quiet"])
            .current_dir(root())
            .status()
            .expect("run cargo build --lib");
        assert!(status.success(), "cargo build --lib failed");
        let so = target_dir().join("debug/libcentreon_pagerduty.so");
        assert!(so.exists(), "{} missing", so.display());
        so
    })
}

/// Compiles the C Broker host emulator for Lua `version` (5.3 or 5.4) if needed
/// (`tests/host/build.sh`, shared with `make demo` and `make bench`).
pub fn emulator(version: &str) -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join("tests/host/build.sh"))
        .arg(version)
        .arg(target_dir())
        .output()
        .expect("run tests/host/build.sh (needs gcc, liblua5.3-dev, liblua5.4-dev)");
    assert!(
        out.status.success(),
        "compiling the emulator for Lua {version} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A fresh directory under target/tests.
pub fn scratch(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = target_dir()
        .join("tests")
        .join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Lays out a Broker script directory: `pagerduty.lua` and `lib/centreon_pagerduty.so`,
/// plus `pagerduty_api1.lua`, the same script with `broker_api_version = 1`.
pub fn script_dir(dir: &Path) -> PathBuf {
    let sd = dir.join("lua");
    std::fs::create_dir_all(sd.join("lib")).unwrap();
    let _ = std::fs::remove_file(sd.join("lib/centreon_pagerduty.so"));
    std::fs::copy(
        root().join("lua-bridge/pagerduty.lua"),
        sd.join("pagerduty.lua"),
    )
    .unwrap();
    std::fs::copy(library(), sd.join("lib/centreon_pagerduty.so")).unwrap();
    std::fs::write(
        sd.join("pagerduty_api1.lua"),
        format!(
            "dofile({:?})\nbroker_api_version = 1\n",
            sd.join("pagerduty.lua").display().to_string()
        ),
    )
    .unwrap();
    sd
}

/// How to run one scenario.
pub struct Run<'a> {
    pub work: Option<PathBuf>,
    pub lua: &'a str,
    pub bbdo: u32,
    pub api: u32,
    pub scenario: &'a str,
    pub env: Vec<(String, String)>,
}

impl<'a> Run<'a> {
    pub fn new(lua: &'a str, scenario: &'a str) -> Run<'a> {
        Run {
            work: None,
            lua,
            bbdo: 3,
            api: 2,
            scenario,
            env: Vec::new(),
        }
    }
    pub fn bbdo(mut self, v: u32) -> Self {
        self.bbdo = v;
        self
    }
    pub fn api(mut self, v: u32) -> Self {
        self.api = v;
        self
    }
    /// Runs in `dir` (kept from an earlier run: same outbox, same log).
    pub fn work(mut self, dir: &Path) -> Self {
        self.work = Some(dir.to_path_buf());
        self
    }
    pub fn env(mut self, k: &str, v: impl Into<String>) -> Self {
        self.env.push((k.to_string(), v.into()));
        self
    }

    /// Runs the scenario to completion; returns the output and the log file's text.
    pub fn go(self) -> Outcome {
        let (dir, sd) = self.prepare();
        let mut cmd = self.command(&dir, &sd);
        let started = Instant::now();
        let output = cmd.output().expect("run the emulator");
        Outcome {
            log: std::fs::read_to_string(dir.join("connector.log")).unwrap_or_default(),
            output,
            elapsed: started.elapsed(),
            dir,
        }
    }

    /// The work directory and the script directory in it.
    pub fn prepare(&self) -> (PathBuf, PathBuf) {
        let dir = self.work.clone().unwrap_or_else(|| {
            scratch(&format!(
                "{}-{}-b{}-a{}",
                self.scenario.trim_end_matches(".lua"),
                self.lua,
                self.bbdo,
                self.api
            ))
        });
        let sd = script_dir(&dir);
        (dir, sd)
    }

    /// The emulator command for this scenario.
    pub fn command(&self, dir: &Path, sd: &Path) -> Command {
        let script = if self.api == 1 {
            sd.join("pagerduty_api1.lua")
        } else {
            sd.join("pagerduty.lua")
        };
        let log = dir.join("connector.log");
        let mut cmd = Command::new(emulator(self.lua));
        cmd.arg(root().join("tests/scenarios").join(self.scenario))
            .env("CPD_HOST_DIR", root().join("tests/host"))
            .env("CPD_SCENARIO_DIR", root().join("tests/scenarios"))
            .env("CPD_SCRIPT", &script)
            .env("CPD_WORK", dir)
            .env("CPD_LOG", &log)
            .env("CPD_BBDO", self.bbdo.to_string())
            .env("CPD_KEY", ROUTING_KEY);
        for v in PROXY_VARS {
            cmd.env_remove(v);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts the scenario without waiting for it, its stdout piped (the caller reads it from
    /// the child), its stderr to `stderr`; returns the work directory and the child.
    pub fn spawn(&self, stderr: Stdio) -> (PathBuf, Child) {
        let (dir, sd) = self.prepare();
        let child = self
            .command(&dir, &sd)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start the emulator");
        (dir, child)
    }

    /// The emulator command for this scenario, run through `wrapper` (a command ending in
    /// `exec "$@"`): the emulator's program and arguments follow the wrapper's arguments, its
    /// environment is added to the wrapper's.
    pub fn wrapped(&self, dir: &Path, sd: &Path, mut wrapper: Command) -> Command {
        let inner = self.command(dir, sd);
        wrapper.arg(inner.get_program()).args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => wrapper.env(k, v),
                None => wrapper.env_remove(k),
            };
        }
        wrapper
    }
}

pub struct Outcome {
    pub output: Output,
    pub log: String,
    pub elapsed: Duration,
    pub dir: PathBuf,
}

impl Outcome {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    /// Panics with everything useful unless the scenario succeeded.
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.output.status.success(),
            "scenario failed ({:?})\n--- stdout\n{}\n--- stderr\n{}\n--- log\n{}",
            self.output.status,
            self.stdout(),
            self.stderr(),
            self.log
        );
        assert!(
            !self.log.contains(ROUTING_KEY)
                && !self.stdout().contains(ROUTING_KEY)
                && !self.stderr().contains(ROUTING_KEY),
            "the routing key leaked into the log or the output"
        );
        self
    }
}

/// `(event_action, dedup_key)` of each accepted body, in arrival order.
pub fn actions(bodies: &[serde_json::Value]) -> Vec<(String, String)> {
    bodies
        .iter()
        .map(|b| {
            (
                b["event_action"].as_str().unwrap_or("?").to_string(),
                b["dedup_key"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// Accepted bodies for one dedup_key.
pub fn for_key<'a>(bodies: &'a [serde_json::Value], key: &str) -> Vec<&'a serde_json::Value> {
    bodies.iter().filter(|b| b["dedup_key"] == key).collect()
}

/// A connector built through the library API, with its log and outbox in `dir`; `extra`
/// parameters override the defaults.
pub fn connector(extra: serde_json::Value, dir: &Path) -> centreon_pagerduty::connector::Connector {
    let mut cfg = serde_json::json!({
        "pdy_routing_key": ROUTING_KEY,
        "log_path": dir.join("connector.log").display().to_string(),
        "outbox_path": dir.join("outbox.db").display().to_string(),
        "log_level": 3,
        "http_timeout": 5,
    });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    centreon_pagerduty::connector::Connector::from_json(&cfg).expect("valid configuration")
}

/// The stdout of a process that ended well and printed `marker`; fails with `what`, its
/// stdout and its stderr otherwise.
pub fn succeeded_with(output: &Output, marker: &str, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && stdout.contains(marker),
        "{what}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Waits (at most `secs` seconds) until the connector has nothing left to do; fails with
/// `what` and the log of `dir`.
pub fn settled(
    c: &mut centreon_pagerduty::connector::Connector,
    secs: u64,
    dir: &Path,
    what: &str,
) {
    assert!(
        c.wait_idle(Duration::from_secs(secs)),
        "{what}: {}",
        log_of(dir)
    );
}

/// A BBDO 3 service status that is a state change at check time `t`.
pub fn service(host: u64, svc: u64, state: i64, t: i64) -> centreon_pagerduty::event::RawEvent {
    centreon_pagerduty::event::RawEvent::from_json(&serde_json::json!({
        "category": 1, "element": 29, "host_id": host, "service_id": svc,
        "state": state, "state_type": 1, "last_check": t, "last_state_change": t,
        "output": format!("state {state}"), "host_name": "h", "service_description": format!("s{svc}"),
    }))
    .unwrap()
}

/// The connector log written in `dir`.
pub fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("connector.log")).unwrap_or_default()
}

/// Runs `make <target>` in the repository with `VAR=value` arguments; panics with its output
/// when it fails. Without the variables cargo sets for this test binary (they describe the
/// test, not a build: ring's build script tracks CARGO_MANIFEST_DIR, CARGO_PKG_* and OUT_DIR,
/// and seeing them come and go would rebuild the release binaries between `make` run here and
/// in a shell).
pub fn make(target: &str, vars: &[(&str, &Path)]) {
    let mut cmd = Command::new("make");
    cmd.arg(target).current_dir(root());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
            ]
            .contains(&k.as_ref())
        {
            cmd.env_remove(k.as_ref());
        }
    }
    for (k, v) in vars {
        cmd.arg(format!("{k}={}", v.display()));
    }
    let out = cmd.output().expect("run make");
    assert!(
        out.status.success(),
        "make {target}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The files (not directories) under `dir`, relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// Runs an installed tree (`root_dir/usr/...`, from `make install` or a package) as Broker
/// would load it: the lifecycle scenario through `usr/share/centreon-broker/lua/pagerduty.lua`
/// and the `lib/centreon_pagerduty.so` beside it, in the Lua 5.3 emulator, to a stand-in that
/// must receive its six events; then `usr/bin/pagerduty-event --version`. `dir` holds the
/// outbox and the log.
pub fn run_installed(dir: &Path, root_dir: &Path) {
    run_installed_with_lua(dir, root_dir, "5.3")
}

/// [`run_installed`] in the emulator of Lua `lua` (5.3 or 5.4).
pub fn run_installed_with_lua(dir: &Path, root_dir: &Path, lua: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let pd = pd_standin::Standin::start().unwrap();
    let lua_dir = root_dir.join("usr/share/centreon-broker/lua");
    let run = Run::new(lua, "lifecycle.lua").env("CPD_URL", pd.url());
    let out = run
        .command(dir, &lua_dir)
        .output()
        .expect("run the emulator");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        pd.accepted().len(),
        6,
        "the lifecycle scenario's six events"
    );
    let cli = Command::new(root_dir.join("usr/bin/pagerduty-event"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(cli.status.success(), "{cli:?}");
}

/// Templates whose `custom_details` has `fields` fields, each `value`: the template-shrink
/// workload tests/template_shrink.rs checks and examples/bench.rs measures.
pub fn shrink_templates(
    fields: usize,
    value: &str,
) -> centreon_pagerduty::payload::template::Templates {
    let details: serde_json::Map<String, serde_json::Value> = (0..fields)
        .map(|i| (format!("f{i:03}"), serde_json::Value::from(value)))
        .collect();
    let text = serde_json::json!({"neb_pb_service_status": {"payload": {
        "summary": "{cache.host.name}/{cache.service.description}: {output_scshort}",
        "source": "{cache.host.name}",
        "severity": "{state_scstate}",
        "custom_details": details,
    }}});
    centreon_pagerduty::payload::template::Templates::parse(&text.to_string())
        .expect("valid templates")
        .0
}
