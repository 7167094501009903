//! The connector's log file: levels 0-3 like the Lua connectors, shared by Broker's thread and the sender.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::files;
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

/// An append-only log file. Writes are serialised; a failing file never fails the caller.
pub struct Logger {
    level: Level,
    path: PathBuf,
    sink: Mutex<Sink>,
    /// The local time zone for [`LogFormat::Centreon`]; `None` writes [`LogFormat::Native`].
    centreon: Option<Zone>,
}

struct Sink {
    file: Option<File>,
    checked: Instant,
    /// Lines kept in memory when no file is used (tests, C hosts without a log path).
    memory: Option<Vec<String>>,
}

impl Logger {
    /// A logger writing to `path` (created if missing) at `level` and below.
    pub fn to_file(path: &Path, level: Level) -> Logger {
        Logger {
            level,
            path: path.to_path_buf(),
            sink: Mutex::new(Sink {
                file: open(path),
                checked: Instant::now(),
                memory: None,
            }),
            centreon: None,
        }
    }

    /// A logger that keeps its lines in memory (see [`Logger::lines`]).
    pub fn in_memory(level: Level) -> Logger {
        Logger {
            level,
            path: PathBuf::new(),
            sink: Mutex::new(Sink {
                file: None,
                checked: Instant::now(),
                memory: Some(Vec::new()),
            }),
            centreon: None,
        }
    }

    /// The same logger writing its lines in `format` (the time zone of
    /// [`LogFormat::Centreon`] is read once, here).
    pub fn formatted(mut self, format: LogFormat) -> Logger {
        self.centreon = match format {
            LogFormat::Native => None,
            LogFormat::Centreon => Some(Zone::local()),
        };
        self
    }

    pub fn level(&self) -> Level {
        self.level
    }

    /// True when a message at `level` would be written (lets callers skip formatting).
    pub fn enabled(&self, level: Level) -> bool {
        level <= self.level
    }

    /// The lines of an in-memory logger.
    pub fn lines(&self) -> Vec<String> {
        let sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        sink.memory.clone().unwrap_or_default()
    }

    pub fn log(&self, level: Level, msg: &str) {
        self.write(level, level.label(), msg)
    }

    /// What the Lua library logs as a notice (`log_curl_commands`): written from log level 1
    /// on, like warnings, labelled `NOTICE`.
    pub fn notice(&self, msg: &str) {
        self.write(Level::Warning, "NOTICE", msg)
    }

    fn write(&self, level: Level, label: &str, msg: &str) {
        if !self.enabled(level) {
            return;
        }
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
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mem) = sink.memory.as_mut() {
            mem.push(line.trim_end().to_string());
            return;
        }
        if sink.checked.elapsed() >= REOPEN_CHECK || sink.file.is_none() {
            sink.checked = Instant::now();
            if rotated(&self.path, sink.file.as_ref()) {
                sink.file = open(&self.path);
            }
        }
        if let Some(f) = sink.file.as_mut() {
            // A full disk must not break delivery: the line is lost, nothing else.
            let _ = f.write_all(line.as_bytes());
        }
    }

    pub fn error(&self, msg: &str) {
        self.log(Level::Error, msg)
    }
    pub fn warning(&self, msg: &str) {
        self.log(Level::Warning, msg)
    }
    pub fn info(&self, msg: &str) {
        self.log(Level::Info, msg)
    }
    pub fn debug(&self, msg: &str) {
        self.log(Level::Debug, msg)
    }
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
            crate::config::unless_key(&path.display().to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_filter_lines() {
        let l = Logger::in_memory(Level::Info);
        l.debug("hidden");
        l.info("shown");
        l.error("multi\nline");
        let lines = l.lines();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with("[INFO] shown"), "{}", lines[0]);
        assert!(lines[1].ends_with("[ERROR] multi\\nline"), "{}", lines[1]);
    }

    #[test]
    fn control_characters_are_escaped_so_no_line_is_forged() {
        let dir = std::env::temp_dir().join(format!("cpd-log-ctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        let _ = std::fs::remove_file(&path);
        let l = Logger::to_file(&path, Level::Debug);
        l.info(
            "delivered srv\u{1b}[31m: out\r\n2026-01-01T00:00:00Z [ERROR] forged\0\tend\u{7f}\u{85}\u{9b}é",
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(
            !text.trim_end_matches('\n').chars().any(char::is_control),
            "{text:?}"
        );
        assert!(
            text.ends_with(
                "[INFO] delivered srv\\x1b[31m: out\\r\\n2026-01-01T00:00:00Z [ERROR] forged\\0\\tend\\x7f\\x85\\x9bé\n"
            ),
            "{text:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_log_is_private_and_never_written_through_a_link() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("cpd-log-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        Logger::to_file(&path, Level::Info).info("one");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        assert!(check_path(&path).is_ok());

        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let planted = dir.join("planted.log");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let e = check_path(&planted).unwrap_err();
        assert!(e.contains("is a symbolic link"), "{e}");
        // a link planted after init (the log is reopened after a rotation) is not followed
        let l = Logger::to_file(&planted, Level::Info);
        l.error("clobber");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn centreon_format_is_broker_log_s() {
        let l = Logger::in_memory(Level::Debug).formatted(LogFormat::Centreon);
        l.error("e\nx");
        l.warning("w");
        l.notice("n");
        l.info("i");
        l.debug("d");
        let lines = l.lines();
        // `Thu Nov 14 22:13:20 2023: INFO: i`
        let date = |line: &str| -> String { line.split(": ").next().unwrap().to_string() };
        for (line, end) in lines.iter().zip([
            ": ERROR: e\\nx",
            ": WARNING: w",
            ": INFO: n",
            ": INFO: i",
            ": INFO: d",
        ]) {
            assert!(line.ends_with(end), "{line}");
            let d = date(line);
            let words: Vec<&str> = d.split_whitespace().collect();
            assert_eq!(words.len(), 5, "{d:?}");
            assert!(d.len() == 24, "{d:?}");
            assert!(
                words[4].parse::<u32>().is_ok() && words[3].len() == 8,
                "{d:?}"
            );
        }
        let native = Logger::in_memory(Level::Debug).formatted(LogFormat::Native);
        native.warning("w");
        assert!(native.lines()[0].ends_with("Z [WARNING] w"));
        assert_eq!(LogFormat::parse(" Centreon "), Some(LogFormat::Centreon));
        assert_eq!(LogFormat::parse("native"), Some(LogFormat::Native));
        assert_eq!(LogFormat::parse("syslog"), None);
    }

    #[test]
    fn notices_are_written_from_level_1() {
        let quiet = Logger::in_memory(Level::Error);
        quiet.notice("hidden");
        assert!(quiet.lines().is_empty());
        let l = Logger::in_memory(Level::Warning);
        l.notice("curl -X POST");
        let lines = l.lines();
        assert!(lines[0].ends_with("[NOTICE] curl -X POST"), "{lines:?}");
    }

    #[test]
    fn file_is_reopened_after_rename() {
        let dir = std::env::temp_dir().join(format!("cpd-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        let l = Logger::to_file(&path, Level::Debug);
        l.info("one");
        std::fs::rename(&path, dir.join("a.log.1")).unwrap();
        {
            let mut s = l.sink.lock().unwrap();
            s.checked = Instant::now() - REOPEN_CHECK;
        }
        l.info("two");
        let old = std::fs::read_to_string(dir.join("a.log.1")).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(old.contains("one") && !old.contains("two"));
        assert!(new.contains("two"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn truncated_file_is_written_from_its_new_end() {
        // logrotate's copytruncate: the file is emptied in place
        let dir = std::env::temp_dir().join(format!("cpd-log-trunc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        let l = Logger::to_file(&path, Level::Debug);
        l.info(&"x".repeat(1000));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        l.info("after");
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.contains(&0),
            "no hole of NUL bytes before the new line"
        );
        assert!(
            String::from_utf8(bytes)
                .unwrap()
                .ends_with("[INFO] after\n")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
