//! The command line's outbox directory: one connector outbox per routing key, the key and endpoint kept beside it while events wait, and delivery with a bounded wait.
//!
//! `<dir>/centreon-pagerduty-<hash>.db` is the library's durable outbox for one routing key
//! (`<hash>` is a hash of the key). The outbox stores events without their key, so
//! `<dir>/centreon-pagerduty-<hash>.key.json` (mode 0600) keeps the key and the endpoint
//! for `pagerduty-event flush`; it is written when an invocation opens the outbox and
//! removed when the outbox is empty again. Invocations for one key take turns (the
//! outbox's lock): each holds it for at most its `--wait`.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::Stop;
use super::key::Key;
use super::options;
use super::progress::{Progress, Tally};
use crate::config::{Config, Secret};
use crate::connector::{Connector, InitError};
use crate::files;
use crate::log::{Level, Sink};

/// Environment variable naming the outbox directory.
pub(crate) const ENV_OUTBOX: &str = "PAGERDUTY_EVENT_OUTBOX";
/// The system-wide outbox directory, used when writable.
pub(crate) const SYSTEM_DIR: &str = "/var/lib/pagerduty-event";
/// How long an invocation waits for its turn on an outbox another one is using.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(30);
/// How long storing events may take before the command gives up.
const STORE_WAIT: Duration = Duration::from_secs(10);
/// How often progress is checked while waiting.
const POLL: Duration = Duration::from_millis(10);

/// The group whose members may queue events in [`SYSTEM_DIR`] (created by the packages).
pub(crate) const GROUP: &str = "pagerduty-event";

/// The directory given with `--outbox` or [`ENV_OUTBOX`], and which of them gave it.
fn given(option: Option<&str>) -> Option<(PathBuf, &'static str)> {
    option.map(|o| (PathBuf::from(o), "--outbox")).or_else(|| {
        std::env::var(ENV_OUTBOX)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (PathBuf::from(v), ENV_OUTBOX))
    })
}

/// The outbox directory events are queued in: `--outbox`, else `$PAGERDUTY_EVENT_OUTBOX`
/// (created, mode 0700, when missing), else the shared [`SYSTEM_DIR`]. A user who cannot
/// write the shared directory gets an error naming it and its group: nothing is queued
/// where `flush` would not look. Only when [`SYSTEM_DIR`] does not exist (installed
/// without the packages) does a user other than root queue in its own
/// `$XDG_STATE_HOME/pagerduty-event` or `~/.local/state/pagerduty-event`; root creates the
/// shared directory instead.
pub(crate) fn directory(option: Option<&str>) -> Result<PathBuf, Stop> {
    if let Some((dir, from)) = given(option) {
        if dir.exists() && !dir.is_dir() {
            return Err(Stop::Usage(format!(
                "{from}: {} is not a directory (the outbox is a directory: one database per routing key)",
                dir.display()
            )));
        }
        create(&dir).map_err(|e| {
            Stop::Failed(format!(
                "cannot create the outbox directory {}: {e}",
                dir.display()
            ))
        })?;
        return Ok(dir);
    }
    let system = system_dir()?;
    if system.exists() {
        if !writable(&system) {
            return Err(Stop::Failed(no_access(&system)));
        }
        // a key file stays beside an outbox while events are queued in it
        let queued = |d: &PathBuf| listing(d).is_ok_and(|l| l.iter().any(|(_, key, _)| *key));
        if let Some(own) = user_dir().filter(queued) {
            eprintln!(
                "warning: {} holds outboxes of an earlier pagerduty-event (events now go to {SYSTEM_DIR}): deliver them with `pagerduty-event flush --outbox {}` run as {}",
                own.display(),
                own.display(),
                user_name()
            );
        }
        return Ok(system);
    }
    match user_dir() {
        Some(dir) if writable(&dir) => Ok(dir),
        Some(dir) => Err(Stop::Failed(format!(
            "cannot write the outbox directory {} ({SYSTEM_DIR}, the shared one, does not exist: install the package or see the README): give --outbox DIR or set {ENV_OUTBOX}",
            dir.display()
        ))),
        None => Err(Stop::Failed(format!(
            "no outbox directory: {SYSTEM_DIR} does not exist and HOME is not set; give --outbox DIR or set {ENV_OUTBOX}"
        ))),
    }
}

/// The outbox directories `flush` delivers: the one given (which must exist), else
/// [`SYSTEM_DIR`] and this user's own directory, those that exist (none: nothing queued).
pub(crate) fn flush_directories(option: Option<&str>) -> Result<Vec<PathBuf>, Stop> {
    if let Some((dir, from)) = given(option) {
        return match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(vec![dir]),
            Ok(_) => Err(Stop::Usage(format!(
                "{from}: {} is not a directory (the outbox is a directory: one database per routing key)",
                dir.display()
            ))),
            Err(e) => Err(Stop::Failed(format!(
                "{from}: cannot use the outbox directory {}: {e}",
                dir.display()
            ))),
        };
    }
    let mut dirs: Vec<PathBuf> = vec![system_dir()?];
    dirs.extend(user_dir());
    dirs.retain(|d| d.exists());
    dirs.dedup();
    Ok(dirs)
}

/// [`SYSTEM_DIR`], created as the packages create it when root finds it missing (root's
/// `flush` timer may run first: a directory only root could write would leave the users
/// who queue events nowhere to put them but their own directories, which it never reads).
fn system_dir() -> Result<PathBuf, Stop> {
    let system = PathBuf::from(SYSTEM_DIR);
    if !system.exists() && euid() == Some(0) {
        create_shared(&system).map_err(|e| {
            Stop::Failed(format!(
                "cannot create the outbox directory {SYSTEM_DIR}: {e}"
            ))
        })?;
    }
    Ok(system)
}

/// The per-user outbox directory: `$XDG_STATE_HOME/pagerduty-event`, else
/// `~/.local/state/pagerduty-event`.
pub(super) fn user_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".local/state"))
        })
        .map(|s| s.join("pagerduty-event"))
}

/// Why this user cannot queue in the shared directory, and what to do.
fn no_access(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let user = user_name();
    let Ok(m) = std::fs::metadata(dir) else {
        return format!("cannot use the outbox directory {}", dir.display());
    };
    let group = group_name(m.gid()).unwrap_or_else(|| m.gid().to_string());
    let mode = m.mode() & 0o7777;
    let fix = if mode & 0o070 == 0o070 {
        format!(
            "add {user} to the group {group} (usermod -a -G {group} {user}) and restart what runs pagerduty-event (Pandora FMS's server)"
        )
    } else {
        format!(
            "make it the shared outbox, as the packages do (chgrp {GROUP} {0} && chmod 2770 {0}), and add {user} to the group {GROUP}",
            dir.display()
        )
    };
    format!(
        "{user} cannot write the shared outbox directory {} (group {group}, mode {mode:o}): {fix}; or give --outbox DIR or set {ENV_OUTBOX} (then run `pagerduty-event flush` on that directory); nothing was stored",
        dir.display()
    )
}

/// This process's effective user id (the owner of `/proc/self`).
fn euid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// This process's user name (from /etc/passwd), else `uid N`.
fn user_name() -> String {
    let Some(uid) = euid() else {
        return "this user".into();
    };
    name_of("/etc/passwd", 2, uid).unwrap_or_else(|| format!("uid {uid}"))
}

fn group_name(gid: u32) -> Option<String> {
    name_of("/etc/group", 2, gid)
}

/// The id of a group of /etc/group.
fn group_id(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(2)?.parse().ok())
}

/// The name of the entry of a colon-separated database (/etc/passwd, /etc/group) whose
/// field `field` is `id`.
fn name_of(file: &str, field: usize, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.get(field).and_then(|v| v.parse::<u32>().ok()) == Some(id))
        .map(|f| f[0].to_string())
}

fn create(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates the shared directory as the packages do: mode 2770, group [`GROUP`] when it
/// exists (root's alone otherwise, until the packages make it shared).
fn create_shared(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    create(dir)?;
    if let Some(gid) = group_id(GROUP) {
        std::os::unix::fs::chown(dir, None, Some(gid))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o2770))
}

/// The directory is shared with its group (group-writable): files created there are made
/// group-readable and writable so that the group's members and root's `flush` can use them.
fn shared(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o020 != 0)
}

/// The directory exists (or was created) and a file can be created in it.
fn writable(dir: &Path) -> bool {
    if create(dir).is_err() {
        return false;
    }
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let ok = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// The files of one routing key in the outbox directory.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// The connector's outbox database.
    pub(crate) db: PathBuf,
    /// The routing key and endpoint, for `flush`.
    pub(crate) target: PathBuf,
}

const PREFIX: &str = "centreon-pagerduty-";
const DB: &str = ".db";
const TARGET: &str = ".key.json";

impl Place {
    /// The outbox's files: the database, SQLite's journal files, the lock.
    fn files(&self) -> Vec<PathBuf> {
        let beside = |suffix: &str| {
            let mut p = self.db.as_os_str().to_owned();
            p.push(suffix);
            PathBuf::from(p)
        };
        vec![
            self.db.clone(),
            beside("-wal"),
            beside("-shm"),
            crate::outbox::lock_path(&self.db),
        ]
    }

    /// Checks that this user can read and write every file of the outbox that exists (the
    /// library sets a database it cannot open aside and starts an empty one: events queued
    /// by another user would be stranded there). In a shared directory, creates the
    /// database and its lock group-readable and writable.
    pub(crate) fn prepare(&self, dir: &Path) -> Result<(), Stop> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        for f in self.files() {
            let Ok(m) = std::fs::metadata(&f) else {
                continue;
            };
            if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open(&f) {
                return Err(Stop::Failed(format!(
                    "cannot use the outbox file {} (owner uid {}, group {}, mode {:o}): {e}; its events stay queued: run `pagerduty-event flush` as root, or give the group read and write access to the outbox's files",
                    f.display(),
                    m.uid(),
                    group_name(m.gid()).unwrap_or_else(|| m.gid().to_string()),
                    m.mode() & 0o7777
                )));
            }
        }
        if shared(dir) {
            for f in [self.db.clone(), crate::outbox::lock_path(&self.db)] {
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&f)
                {
                    Ok(file) => file
                        .set_permissions(std::fs::Permissions::from_mode(0o660))
                        .map_err(|e| Stop::Failed(format!("cannot create {}: {e}", f.display())))?,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(Stop::Failed(format!("cannot create {}: {e}", f.display())));
                    }
                }
            }
        }
        Ok(())
    }

    pub(crate) fn of(dir: &Path, key: &Key) -> Place {
        let stem = key.outbox_file.strip_suffix(DB).unwrap_or(&key.outbox_file);
        Place::from_stem(dir, stem)
    }

    fn from_stem(dir: &Path, stem: &str) -> Place {
        Place {
            db: dir.join(format!("{stem}{DB}")),
            target: dir.join(format!("{stem}{TARGET}")),
        }
    }
}

/// What the directory holds: `(stem, has a key file, has a database)`, sorted.
pub(crate) fn listing(dir: &Path) -> Result<Vec<(Place, bool, bool)>, Stop> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Stop::Failed(format!(
            "cannot read the outbox directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut stems = std::collections::BTreeMap::<String, (bool, bool)>::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(PREFIX) {
            continue;
        }
        if let Some(stem) = name.strip_suffix(TARGET) {
            stems.entry(stem.to_string()).or_default().0 = true;
        } else if let Some(stem) = name.strip_suffix(DB) {
            stems.entry(stem.to_string()).or_default().1 = true;
        }
    }
    Ok(stems
        .into_iter()
        .map(|(stem, (target, db))| (Place::from_stem(dir, &stem), target, db))
        .collect())
}

/// The routing key and endpoint stored beside an outbox.
pub(crate) fn read_target(path: &Path) -> Result<(Key, Option<String>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&text).map_err(|_| "not a JSON object".to_string())?;
    let key = v
        .get("routing_key")
        .and_then(Value::as_str)
        .ok_or_else(|| "no routing_key".to_string())?;
    let key = super::key::check(key, &format!("file {}", path.display())).map_err(|e| match e {
        Stop::Usage(m) | Stop::Failed(m) => m,
    })?;
    let url = v.get("url").and_then(Value::as_str).map(str::to_string);
    Ok((key, url))
}

/// Writes the key file (mode 0600, 0640 in a shared directory: its group's members flush
/// it; through a temporary file and a rename), unless it already says the same.
fn write_target(path: &Path, key: &Secret, url: Option<&str>, mode: u32) -> std::io::Result<()> {
    let mut doc = Map::new();
    doc.insert("routing_key".into(), key.expose().into());
    doc.insert("url".into(), url.map_or(Value::Null, Value::from));
    let text = Value::Object(doc).to_string();
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    files::replace_durable(path, text.as_bytes(), mode)
}

/// What became of the events an invocation handled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Settled {
    /// Events queued by earlier invocations, delivered or rejected first.
    pub(crate) earlier_delivered: u64,
    pub(crate) earlier_rejected: u64,
    /// Earlier events still waiting when this invocation's events were stored.
    pub(crate) earlier_left: u64,
    /// This invocation's events.
    pub(crate) delivered: u64,
    pub(crate) rejected: u64,
    /// Made unnecessary by a later event while waiting (merged in the outbox).
    pub(crate) merged: u64,
    /// Events still queued at the end (this invocation's and earlier ones).
    pub(crate) queued: u64,
    /// Attempts answered by something other than PagerDuty's Events API (a redirect, a 2xx
    /// without PagerDuty's answer): waiting will not help, the URL or the proxy is wrong.
    pub(crate) misdirected: u64,
    /// The last error, when one happened (never a secret).
    pub(crate) reason: Option<String>,
}

/// One routing key's outbox, open (its lock held) with its connector running.
pub(crate) struct Session {
    connector: Connector,
    log: Arc<Sink>,
    key: Secret,
    place: Place,
    deadline: Instant,
    verbose: bool,
    outcome: Settled,
    /// Where delivery stands, on a terminal ([`Session::show_progress`]).
    progress: Option<Progress>,
    /// This invocation's events handed to the connector.
    handed: u64,
    /// A 429 does not end the wait ([`Session::wait_out_rate_limits`]).
    patient: bool,
}

impl Session {
    /// Opens the outbox of `key` in `dir` with the connector `params` (network options),
    /// waiting up to [`LOCK_WAIT`] for another invocation to finish with it. `url` is
    /// stored beside the outbox for `flush`.
    pub(crate) fn open(
        dir: &Path,
        key: &Key,
        mut params: Map<String, Value>,
        wait: Duration,
        verbose: bool,
    ) -> Result<Session, Stop> {
        let place = Place::of(dir, key);
        place.prepare(dir)?;
        params.insert("pdy_routing_key".into(), key.secret.expose().into());
        params.insert("outbox_path".into(), place.db.display().to_string().into());
        let url = params
            .get("http_server_url")
            .and_then(Value::as_str)
            .map(str::to_string);
        let (cfg, warnings) =
            Config::from_json(&Value::Object(params)).map_err(options::config_error)?;
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        let log = Arc::new(Sink::in_memory(Level::Info));
        let give_up = Instant::now() + LOCK_WAIT;
        let connector = loop {
            match Connector::new(cfg.clone(), &[], Some(Arc::clone(&log))) {
                Ok(c) => break c,
                Err(e) if e.outbox_in_use() && Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) if e.outbox_in_use() => {
                    return Err(Stop::Failed(format!(
                        "the outbox {} stayed busy for {} s (another pagerduty-event for this routing key); nothing was stored",
                        place.db.display(),
                        LOCK_WAIT.as_secs()
                    )));
                }
                Err(e) => {
                    // the outbox, the log, or the network settings (a proxy variable)
                    let outbox = match &e {
                        InitError::Outbox(o) => o.open_failure(),
                        _ => None,
                    };
                    return Err(Stop::Failed(match outbox {
                        Some(why) => format!("cannot use the outbox: {why}"),
                        None => e.to_string(),
                    }));
                }
            }
        };
        let mode = if shared(dir) { 0o640 } else { 0o600 };
        if let Err(e) = write_target(&place.target, &key.secret, url.as_deref(), mode) {
            eprintln!(
                "warning: cannot write {}: {e}; `pagerduty-event flush` will need --routing-key-file for events queued now",
                place.target.display()
            );
        }
        // counted from the outbox as found: the lanes may already have delivered some
        let earlier = connector.resumed();
        Ok(Session {
            connector,
            log,
            key: key.secret.clone(),
            place,
            deadline: Instant::now() + wait,
            verbose,
            outcome: Settled {
                earlier_left: earlier,
                ..Settled::default()
            },
            progress: None,
            handed: 0,
            patient: false,
        })
    }

    /// Keeps waiting (up to the deadline) when PagerDuty rate-limits: the connector pauses as
    /// PagerDuty asks and goes on (`flush` and `replay`, whose work is to deliver many events;
    /// `send` and `pandora` stop at the first 429 and leave the event queued).
    pub(crate) fn wait_out_rate_limits(&mut self) {
        self.patient = true;
    }

    /// Shows, while waiting for PagerDuty, how many events are answered, the rate and what
    /// waits for its rate limit, on stderr when it is a terminal; `label` says what is done.
    pub(crate) fn show_progress(&mut self, label: impl Into<String>) {
        self.progress = Some(Progress::on_stderr(label));
    }

    /// Delivers the events queued by earlier invocations (all before this one's, so
    /// none is overtaken). Stops when they are all answered, at the first failed attempt
    /// (PagerDuty unreachable, 5xx, 429: they stay queued), or at the deadline.
    pub(crate) fn deliver_earlier(&mut self) {
        if self.outcome.earlier_left == 0 {
            return;
        }
        // the connector is fresh: everything its counters hold concerns earlier events,
        // including answers that came before this call
        self.wait_answers(0);
        let (d, r, _, _) = self.counts();
        self.outcome.earlier_delivered = d;
        self.outcome.earlier_rejected = r;
        self.outcome.earlier_left = self.connector.outstanding();
    }

    /// Hands this invocation's events to the connector (`submit` decides how many, and
    /// returns that number), waits until they are stored, then for PagerDuty's answers
    /// (unless earlier events are still waiting: PagerDuty just failed them, these are queued
    /// behind).
    pub(crate) fn deliver(
        &mut self,
        submit: impl FnOnce(&mut Connector) -> u64,
    ) -> Result<(), Stop> {
        let (delivered, rejected, failures, merged) = self.counts();
        self.handed += submit(&mut self.connector);
        let give_up = Instant::now() + STORE_WAIT;
        while !self.connector.flush() {
            if Instant::now() >= give_up {
                return Err(Stop::Failed(format!(
                    "could not store the event in the outbox {}{}",
                    self.place.db.display(),
                    self.last_error()
                        .map_or(String::new(), |e| format!(": {e}"))
                )));
            }
        }
        if self.outcome.earlier_left == 0 {
            self.wait_answers(failures);
        }
        let (d, r, _, m) = self.counts();
        self.outcome.delivered = d - delivered;
        self.outcome.rejected = r - rejected;
        self.outcome.merged = m - merged;
        Ok(())
    }

    /// Waits until nothing is outstanding, the failed attempts exceed `failures`, or the
    /// deadline passes.
    fn wait_answers(&mut self, failures: u64) {
        self.tick();
        while self.connector.outstanding() > 0
            && self.counts().2 == failures
            && Instant::now() < self.deadline
        {
            std::thread::sleep(POLL);
            self.tick();
        }
        self.tick();
    }

    /// Updates the progress line, if any.
    fn tick(&mut self) {
        let Some(progress) = self.progress.as_mut() else {
            return;
        };
        let c = self.connector.counters();
        progress.show(&Tally {
            delivered: c.delivered.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
            merged: c.merged.load(Relaxed),
            total: self.connector.resumed() + self.handed,
            rate_limited: c.rate_limited.load(Relaxed),
            retried: c.retried.load(Relaxed),
        });
    }

    /// Delivered, rejected, failed attempts that end a wait (retried, and rate limited unless
    /// the session is patient with rate limits), merged.
    fn counts(&self) -> (u64, u64, u64, u64) {
        let c = self.connector.counters();
        let limited = if self.patient {
            0
        } else {
            c.rate_limited.load(Relaxed)
        };
        (
            c.delivered.load(Relaxed),
            c.rejected.load(Relaxed),
            c.retried.load(Relaxed) + limited,
            c.merged.load(Relaxed),
        )
    }

    /// The connector's last error (PagerDuty's answer or a network error; never a secret).
    fn last_error(&self) -> Option<String> {
        let snapshot = self.connector.counters().snapshot(&self.key, 0, None);
        snapshot["routing_keys"][self.key.masked()]["last_error"]
            .as_str()
            .map(str::to_string)
    }

    /// Stops the connector (events not answered stay in the outbox, sent first next time),
    /// removes the key file when nothing is queued, and says what happened.
    pub(crate) fn close(mut self) -> Settled {
        if let Some(mut progress) = self.progress.take() {
            progress.clear();
        }
        let mut outcome = self.outcome.clone();
        outcome.queued = self.connector.outstanding();
        outcome.misdirected = self.connector.counters().misdirected.load(Relaxed);
        // a 429 is not recorded as an error by the sender: say it here
        let limited = (self.connector.counters().rate_limited.load(Relaxed) > 0)
            .then(|| "rate limited by PagerDuty (HTTP 429)".to_string());
        outcome.reason = match (self.last_error(), limited) {
            (Some(e), Some(l)) => Some(format!("{e}; {l}")),
            (e, l) => e.or(l),
        };
        if outcome.queued == 0 {
            let _ = std::fs::remove_file(&self.place.target);
        }
        let Session {
            connector,
            log,
            verbose,
            ..
        } = self;
        drop(connector);
        if verbose {
            for line in log.lines() {
                eprintln!("{line}");
            }
        }
        outcome
    }
}

/// Prints what became of one event (`what`: `trigger pandora-42`); returns the exit status.
pub(crate) fn report_one(what: &str, dir: &Path, wait: Duration, o: &Settled) -> i32 {
    let reason = o
        .reason
        .as_deref()
        .map(|r| r.strip_prefix(&format!("{what}: ")).unwrap_or(r));
    if o.earlier_delivered > 0 {
        println!(
            "{} event(s) queued earlier delivered first",
            o.earlier_delivered
        );
    }
    if o.earlier_rejected > 0 {
        eprintln!(
            "warning: PagerDuty rejected {} event(s) queued earlier (kept in the outbox's rejected table)",
            o.earlier_rejected
        );
    }
    if o.rejected > 0 {
        eprintln!(
            "pagerduty-event: {what}: rejected by PagerDuty ({}); not queued: correct the event and send it again",
            reason.unwrap_or("no reason given")
        );
        return super::EXIT_FAILED;
    }
    if o.queued > 0 && o.misdirected > 0 {
        eprintln!(
            "pagerduty-event: {what}: NOT delivered: {}; kept in {}: correct --url or the proxy (HTTPS_PROXY), then `pagerduty-event flush` sends it",
            reason.unwrap_or("not PagerDuty's answer"),
            dir.display()
        );
        return super::EXIT_FAILED;
    }
    if o.queued > 0 {
        let why = match (o.earlier_left, reason) {
            (0, Some(r)) => format!("PagerDuty not reached: {r}"),
            (0, None) => format!("no answer from PagerDuty within {} s", wait.as_secs_f64()),
            (n, r) => format!(
                "behind {n} earlier event(s) not delivered yet: {}",
                r.unwrap_or("PagerDuty did not answer in time")
            ),
        };
        let flush = if dir == Path::new(SYSTEM_DIR) {
            "`pagerduty-event flush`".to_string()
        } else {
            format!("`pagerduty-event flush --outbox {}`", dir.display())
        };
        println!(
            "{what}: queued in {} ({why}); {flush} or the next invocation will send it",
            dir.display()
        );
        return super::EXIT_OK;
    }
    println!("{what}: delivered to PagerDuty");
    super::EXIT_OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Action;
    use crate::payload::Severity;
    use crate::payload::{Custom, custom_event};

    fn session(dir: &Path, key: &Key, params: Value) -> Session {
        let Value::Object(params) = params else {
            unreachable!()
        };
        Session::open(dir, key, params, Duration::from_secs(5), false)
            .unwrap_or_else(|_| panic!("open the outbox in {}", dir.display()))
    }

    /// The key file beside a queue is written through an unguessable temporary name, never
    /// through a link: a link planted at the name a former version used (`<target>.tmp-<pid>`)
    /// receives nothing, and the file gets the mode asked for whatever the umask.
    #[test]
    fn the_key_file_is_never_written_through_a_planted_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::files::tests::scratch("spool-link");
        let victim = crate::files::tests::victim(&dir);
        let target = dir.join("queue.key.json");
        let planted = dir.join(format!("queue.key.json.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let key = super::super::key::check("abcdefghijklmnopqrstuvwxyz012345", "test").unwrap();

        write_target(&target, &key.secret, Some("http://127.0.0.1:9/"), 0o600).unwrap();

        crate::files::tests::assert_untouched(&victim);
        let written = std::fs::read_to_string(&target).unwrap();
        assert!(
            written.contains("abcdefghijklmnopqrstuvwxyz012345"),
            "{written}"
        );
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An event queued by an earlier run and delivered as soon as the outbox opens (before
    /// `deliver_earlier` is even called) is reported as delivered, not as nothing.
    #[test]
    fn earlier_events_delivered_at_once_are_counted() {
        let dir = crate::files::tests::scratch("spool-earlier");
        let key = super::super::key::check("abcdefghijklmnopqrstuvwxyz012345", "test").unwrap();

        // nothing listens on the discard port: the event stays queued
        let mut first = session(
            &dir,
            &key,
            serde_json::json!({"http_server_url": "http://127.0.0.1:9/v2/enqueue"}),
        );
        first.deliver_earlier();
        let event = Custom {
            action: Action::Trigger,
            dedup_key: "spool-1",
            summary: "queued",
            source: "test",
            severity: Severity::Error,
            timestamp: None,
            component: None,
            group: None,
            class: None,
            details: Map::new(),
            links: Vec::new(),
            client: None,
            client_url: None,
        };
        first
            .deliver(|c| {
                c.push_outgoing(custom_event(&event));
                1
            })
            .unwrap();
        let o = first.close();
        assert_eq!((o.delivered, o.queued), (0, 1), "{o:?}");
        assert!(Place::of(&dir, &key).target.exists());

        // delivered at once (logged only), before anything else is asked
        let mut second = session(
            &dir,
            &key,
            serde_json::json!({"send_data_test": 1, "outbox_commit_delay_ms": 0}),
        );
        let give_up = Instant::now() + Duration::from_secs(10);
        while second.connector.outstanding() > 0 && Instant::now() < give_up {
            std::thread::sleep(POLL);
        }
        second.deliver_earlier();
        let o = second.close();
        assert_eq!(
            (o.earlier_delivered, o.earlier_left, o.queued),
            (1, 0, 0),
            "{o:?}"
        );
        assert!(!Place::of(&dir, &key).target.exists(), "nothing queued");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
