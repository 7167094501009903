//! Each output's log file as a `log::Log` sink (levels 0-3, rotation, control characters escaped), behind one stateless dispatcher.
//!
//! Every line the library writes goes through the `log` facade (`log::error!`, `warn!`,
//! `info!`, `debug!`). The facade has one logger per process, a static; an output's state
//! (its file, its level, its format) lives in its own [`Sink`], held by its handle. The
//! static logger, [`Dispatch`], holds nothing: it hands each record to the sink **current on
//! the calling thread**, a scoped thread-local set by [`Sink::enter`]:
//!
//! - on the caller's thread, by each method of the connector that may log (every Lua and C
//!   ABI call, and the command line, go through them), for the length of the call: Broker's
//!   thread, which calls several outputs in turn, writes each output's lines to its own file;
//! - on the threads an output owns (its committer and its lanes), once, when they start.
//!
//! Scopes nest (the previous sink comes back when a scope ends). The record's target was
//! the other way to route; it would have needed a registry of outputs by name, a static
//! holding per-output state. A line logged while no sink is current goes to the fallback
//! logger, which only the command line sets (simplelog, to stderr): in Broker it goes
//! nowhere. Records of other crates (ureq, rustls) are not written.
//!
//! A notice (what the Lua library logs as a notice: `log_curl_commands`, the start line) is a
//! warning with the target [`NOTICE`]: written from log level 1 on, labelled `NOTICE`.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fs::File;
use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use crate::files;
use crate::params::{ConfigError, Param, ParamReader};
use crate::timefmt::{self, Zone};

/// Log levels, as `log_level` numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warning = 1,
    Info = 2,
    Debug = 3,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warning => "WARNING",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }

    /// The level of a `log_level`-style number (values above 3 are debug).
    pub fn from_number(n: i64) -> Level {
        match n {
            i64::MIN..=0 => Level::Error,
            1 => Level::Warning,
            2 => Level::Info,
            _ => Level::Debug,
        }
    }
}

/// How a log line is written (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `2023-11-14T22:13:20Z [WARNING] message`: UTC, with the level (ERROR, WARNING, NOTICE,
    /// INFO, DEBUG).
    #[default]
    Native,
    /// `Tue Nov 14 23:13:20 2023: WARNING: message`: what Centreon Broker writes for the Lua
    /// stream connectors (`broker_log`, which the stream connectors' `sc_logger` calls):
    /// local time as C's `%c`, ERROR, WARNING or INFO (notices and debug lines are INFO, as
    /// `sc_logger` writes them).
    Centreon,
}

impl LogFormat {
    /// `native` or `centreon`, as `log_format` spells them.
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "native" => Some(LogFormat::Native),
            "centreon" => Some(LogFormat::Centreon),
            _ => None,
        }
    }
}

/// How often the file is checked for rotation (renamed or truncated by logrotate).
const REOPEN_CHECK: Duration = Duration::from_secs(5);

/// The target that makes a warning a notice (`log::warn!(target: NOTICE, ...)`).
pub const NOTICE: &str = "centreon_pagerduty::notice";

/// The library's own records (module paths and [`NOTICE`]); other crates' are not written.
const OURS: &str = "centreon_pagerduty";

impl From<Level> for log::Level {
    fn from(level: Level) -> log::Level {
        match level {
            Level::Error => log::Level::Error,
            Level::Warning => log::Level::Warn,
            Level::Info => log::Level::Info,
            Level::Debug => log::Level::Debug,
        }
    }
}

impl From<log::Level> for Level {
    fn from(level: log::Level) -> Level {
        match level {
            log::Level::Error => Level::Error,
            log::Level::Warn => Level::Warning,
            log::Level::Info => Level::Info,
            log::Level::Debug | log::Level::Trace => Level::Debug,
        }
    }
}

/// One output's log: an append-only file (or lines in memory). Writes are serialised; a
/// failing file never fails the caller.
pub struct Sink {
    level: Level,
    path: PathBuf,
    file: Mutex<FileState>,
    /// The local time zone for [`LogFormat::Centreon`]; `None` writes [`LogFormat::Native`].
    centreon: Option<Zone>,
}

struct FileState {
    file: Option<File>,
    checked: Instant,
    /// Lines kept in memory when no file is used (the command line, tests).
    memory: Option<Vec<String>>,
}

impl Sink {
    /// A sink writing to `path` (created if missing) at `level` and below.
    pub fn to_file(path: &Path, level: Level) -> Sink {
        install();
        Sink {
            level,
            path: path.to_path_buf(),
            file: Mutex::new(FileState {
                file: open(path),
                checked: Instant::now(),
                memory: None,
            }),
            centreon: None,
        }
    }

    /// A sink that keeps its lines in memory (see [`Sink::lines`]).
    pub fn in_memory(level: Level) -> Sink {
        install();
        Sink {
            level,
            path: PathBuf::new(),
            file: Mutex::new(FileState {
                file: None,
                checked: Instant::now(),
                memory: Some(Vec::new()),
            }),
            centreon: None,
        }
    }

    /// The same sink writing its lines in `format` (the time zone of
    /// [`LogFormat::Centreon`] is found once, here).
    pub fn formatted(mut self, format: LogFormat) -> Sink {
        self.centreon = match format {
            LogFormat::Native => None,
            LogFormat::Centreon => Some(Zone::local()),
        };
        self
    }

    pub fn level(&self) -> Level {
        self.level
    }

    /// The lines of an in-memory sink.
    pub fn lines(&self) -> Vec<String> {
        let state = self.file.lock().unwrap_or_else(|e| e.into_inner());
        state.memory.clone().unwrap_or_default()
    }

    /// Makes this sink the current one of the calling thread until the returned scope ends.
    pub fn enter(self: &Arc<Sink>) -> Scope {
        let previous = CURRENT.with(|c| c.replace(Some(Arc::clone(self))));
        Scope {
            previous,
            _thread: PhantomData,
        }
    }

    fn write(&self, level: Level, label: &str, msg: &str) {
        let now = timefmt::now_unix();
        let mut line = match &self.centreon {
            None => format!("{} [{label}] ", timefmt::rfc3339_utc(now)),
            Some(zone) => {
                let label = match level {
                    Level::Error => "ERROR",
                    Level::Warning if label != "NOTICE" => "WARNING",
                    _ => "INFO",
                };
                let local = now.saturating_add(zone.offset_at(now));
                format!("{}: {label}: ", timefmt::c_locale_time(local))
            }
        };
        push_escaped(&mut line, msg);
        line.push('\n');
        let mut state = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mem) = state.memory.as_mut() {
            mem.push(line.trim_end().to_string());
            return;
        }
        if state.checked.elapsed() >= REOPEN_CHECK || state.file.is_none() {
            state.checked = Instant::now();
            if rotated(&self.path, state.file.as_ref()) {
                state.file = open(&self.path);
            }
        }
        if let Some(f) = state.file.as_mut() {
            // A full disk must not break delivery: the line is lost, nothing else.
            let _ = f.write_all(line.as_bytes());
        }
    }
}

impl log::Log for Sink {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        Level::from(metadata.level()) <= self.level
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = Level::from(record.level());
        if level > self.level {
            return;
        }
        let label = match level {
            Level::Warning if record.target() == NOTICE => "NOTICE",
            l => l.label(),
        };
        let msg = match record.args().as_str() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(record.args().to_string()),
        };
        self.write(level, label, &msg);
    }

    fn flush(&self) {}
}

thread_local! {
    /// The sink of the output this thread works for now ([`Sink::enter`]).
    static CURRENT: RefCell<Option<Arc<Sink>>> = const { RefCell::new(None) };
}

/// While it lives, its sink is the current one of the thread that entered it; the previous
/// one comes back when it ends. Stays on its thread.
#[must_use = "the sink is current only while the scope lives"]
pub struct Scope {
    previous: Option<Arc<Sink>>,
    _thread: PhantomData<*const ()>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // the output's sink is dropped (and its file closed) outside the borrow
        let _ended = CURRENT.try_with(|c| c.replace(previous));
    }
}

/// The process's `log` logger: hands each record of the library to the current sink of the
/// calling thread, else to the fallback. Holds no output's state.
pub struct Dispatch;

static DISPATCH: Dispatch = Dispatch;
/// Where lines go when no sink is current: set by the command line (stderr), unset in Broker.
static FALLBACK: OnceLock<Box<dyn log::Log>> = OnceLock::new();

impl log::Log for Dispatch {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        if !metadata.target().starts_with(OURS) {
            return false;
        }
        match CURRENT.try_with(|c| c.borrow().as_deref().map(|s| s.enabled(metadata))) {
            Ok(Some(enabled)) => enabled,
            // no sink current, or the thread is ending
            _ => FALLBACK.get().is_some_and(|f| f.enabled(metadata)),
        }
    }

    fn log(&self, record: &log::Record<'_>) {
        if !record.target().starts_with(OURS) {
            return;
        }
        let written = CURRENT.try_with(|c| match c.borrow().as_deref() {
            Some(s) => {
                log::Log::log(s, record);
                true
            }
            None => false,
        });
        if !matches!(written, Ok(true))
            && let Some(f) = FALLBACK.get()
        {
            f.log(record)
        }
    }

    fn flush(&self) {}
}

/// Installs [`Dispatch`] as the process's `log` logger (once; done by every sink's
/// constructor). In a Rust program that already has a logger, the library's lines go to it.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if log::set_logger(&DISPATCH).is_ok() {
            log::set_max_level(log::LevelFilter::Debug);
        }
    });
}

/// Sets where the library's lines go while no sink is current (the command line: stderr).
/// The first call wins.
pub fn set_fallback(logger: Box<dyn log::Log>) {
    let _ = FALLBACK.set(logger);
    install();
}

/// Appends `msg` to a log line with every control character escaped (C0 including NUL, CR
/// and line feeds, DEL, C1): a message cannot end its line, forge another one or send
/// escape sequences to a terminal showing the log.
fn push_escaped(line: &mut String, msg: &str) {
    use std::fmt::Write as _;
    for c in msg.chars() {
        match c {
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            '\0' => line.push_str("\\0"),
            c if c.is_control() => {
                let _ = write!(line, "\\x{:02x}", c as u32);
            }
            c => line.push(c),
        }
    }
}

/// Opens the log for appending: created 0640, never through a symbolic link.
fn open(path: &Path) -> Option<File> {
    files::open_append_private(path).ok()
}

/// Checks at init that the log can be written: a symbolic link at `path` is refused (the
/// log is never written through a link someone may have planted).
pub fn check_path(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(format!(
            "{} is a symbolic link: give the log file itself (the log is never written \
             through a link)",
            crate::params::unless_key(&path.display().to_string())
        )),
        _ => Ok(()),
    }
}

/// True when the open file is no longer the one at `path` (renamed away, deleted, or truncated).
fn rotated(path: &Path, file: Option<&File>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(file) = file else { return true };
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(on_disk), Ok(open)) => on_disk.ino() != open.ino() || on_disk.dev() != open.dev(),
        _ => true,
    }
}

/// Where and how an output logs: `log_level`, `logfile`, `log_format`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogOptions {
    /// `log_level` 0..=3.
    pub level: u8,
    /// `logfile` / `log_path`.
    pub path: PathBuf,
    /// `log_format`.
    pub format: LogFormat,
}

const LOG_LEVEL: Param = Param::integer(
    "log_level",
    0,
    3,
    Some(1),
    "0 errors, 1 warnings (default), 2 information, 3 debug",
);
const LOGFILE: Param = Param::text(
    "logfile",
    Some("/var/log/centreon-broker/stream-connector-pagerduty.log"),
    "log file (default /var/log/centreon-broker/stream-connector-pagerduty.log)",
)
.legacy("log_path");
const LOG_FORMAT: Param = Param::new(
    "log_format",
    "native (default: 2023-11-14T22:13:20Z [WARNING] message, UTC) or centreon (Tue Nov 14 23:13:20 2023: WARNING: message, local time: the lines Centreon Broker writes for the Lua stream connectors)",
);

/// The log's parameters.
pub(crate) const PARAMS: &[Param] = &[LOG_LEVEL, LOGFILE, LOG_FORMAT];

impl LogOptions {
    /// Reads the log's parameters.
    pub(crate) fn read(r: &mut ParamReader) -> Result<LogOptions, ConfigError> {
        let level = r.integer(&LOG_LEVEL)?.unwrap_or_default() as u8;
        let path = PathBuf::from(r.text(&LOGFILE)?.unwrap_or_default());
        let format = match r.take(&LOG_FORMAT) {
            None => LogFormat::Native,
            Some(e) => LogFormat::parse(&e.text()?)
                .ok_or_else(|| e.err(format!("expected native or centreon, got {}", e.shown())))?,
        };
        Ok(LogOptions {
            level,
            path,
            format,
        })
    }
}

#[cfg(test)]
mod tests;
