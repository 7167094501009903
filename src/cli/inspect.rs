//! Which outbox databases `--outbox PATH` names for `check`, `list` and `resend`, found without creating anything, and how ages read.

use std::path::{Path, PathBuf};

use super::spool;

/// What `--outbox` (or its default) names: a Broker outbox file or a `pagerduty-event` outbox
/// directory (one database per routing key).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The databases it holds: the file itself, or the directory's outboxes (sorted).
    pub(crate) databases: Vec<PathBuf>,
}

/// The path `--outbox` names, else `$PAGERDUTY_EVENT_OUTBOX`, else the command line's
/// default outbox directory (as `send` and `flush` choose it), never created here.
pub(crate) fn path(option: Option<&str>) -> PathBuf {
    if let Some(p) = option {
        return PathBuf::from(p);
    }
    if let Some(v) = std::env::var_os(spool::ENV_OUTBOX).filter(|v| !v.is_empty()) {
        return PathBuf::from(v);
    }
    let system = PathBuf::from(spool::SYSTEM_DIR);
    if system.is_dir() {
        return system;
    }
    spool::user_dir().unwrap_or(system)
}

/// The databases at `path`; the error says why in words (a missing path is an error: the
/// connector creates its outbox when it starts).
pub(crate) fn target(path: &Path) -> Result<Target, String> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!(
                "cannot read the outbox {}: it does not exist",
                path.display()
            )
        }
        _ => format!("cannot read the outbox {}: {e}", path.display()),
    })?;
    if !meta.is_dir() {
        return Ok(Target {
            databases: vec![path.to_path_buf()],
        });
    }
    let listing = spool::listing(path).map_err(|e| match e {
        super::Stop::Usage(m) | super::Stop::Failed(m) => m,
    })?;
    Ok(Target {
        databases: listing
            .into_iter()
            .filter(|(_, _, db)| *db)
            .map(|(place, _, _)| place.db)
            .collect(),
    })
}

/// An age in words: `45 s`, `14 min`, `2 h 05 min`, `3 d 04 h`.
pub(crate) fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {:02} h", s / 86400, s % 86400 / 3600),
    }
}

/// Seconds elapsed since `ms` (Unix milliseconds).
pub(crate) fn since(ms: i64) -> i64 {
    (crate::timefmt::now_unix() - ms.div_euclid(1000)).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_words() {
        assert_eq!(age(-3), "0 s");
        assert_eq!(age(59), "59 s");
        assert_eq!(age(14 * 60 + 59), "14 min");
        assert_eq!(age(2 * 3600 + 5 * 60), "2 h 05 min");
        assert_eq!(age(3 * 86400 + 4 * 3600), "3 d 04 h");
    }
}
