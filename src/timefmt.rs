//! Time on chrono: RFC 3339 UTC timestamps, C's `%c`, the current time, Pandora FMS timestamps and their time zone.
//!
//! Pandora FMS gives the time an alert fired as `yy-mm-dd hh:mm:ss` in its server's local
//! time. [`Zone::local`] finds that zone the way the C library does (`TZ`, else
//! `/etc/localtime` through chrono's [`Local`], else UTC) and [`Zone::to_utc`] converts,
//! daylight saving time included. A zone named in `TZ` or on the command line (a zone name
//! under `TZDIR` or `/usr/share/zoneinfo`, a zone file, or a POSIX `TZ` rule such as
//! `CET-1CEST,M3.5.0,M10.5.0/3`) is read by the `tz-rs` crate: chrono's own reader of those
//! (behind [`Local`]) is private, and chrono-tz knows names only, from a copy of the tz
//! database compiled in rather than the system's.

use chrono::{DateTime, Local, NaiveDate, Offset, SecondsFormat, TimeZone, Utc};

/// `0000-01-01T00:00:00Z`, the first instant a four-digit year can show.
const MIN_SECS: i64 = -62_167_219_200;
/// `9999-12-31T23:59:59Z`, the last instant a four-digit year can show.
const MAX_SECS: i64 = 253_402_300_799;
/// Largest zone file read (real ones are a few kilobytes).
const MAX_TZIF: u64 = 256 * 1024;
const DAY: i64 = 86_400;

/// The instant `unix_secs` (clamped to years 0000 to 9999), in UTC.
fn utc(unix_secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix_secs.clamp(MIN_SECS, MAX_SECS), 0).unwrap_or_default()
}

/// `2023-11-14T22:13:20Z` for `1700000000`.
///
/// Exact for every instant a four-digit year can show (years 0000 to 9999); values outside
/// that range are clamped to it, so the result is always a valid RFC 3339 timestamp.
pub fn rfc3339_utc(unix_secs: i64) -> String {
    utc(unix_secs).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `Thu Nov 14 22:13:20 2023` for `1700000000`: C's `%c` in the C locale (`%a %b %e %H:%M:%S
/// %Y`, the day padded with a space), of a time given as seconds since 1970 in the wall-clock
/// time to show. Centreon Broker writes the Lua stream connectors' log lines with it.
pub fn c_locale_time(secs: i64) -> String {
    utc(secs).format("%a %b %e %H:%M:%S %Y").to_string()
}

/// The current time in Unix seconds (negative if the clock is set before 1970).
pub fn now_unix() -> i64 {
    Utc::now().timestamp()
}

/// Parses exactly `n` ASCII digits.
fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a Pandora FMS `fired_timestamp`: `yy-mm-dd hh:mm:ss` (year 20yy) or
/// `yyyy-mm-dd hh:mm:ss` (years 1970 to 9999), as seconds since 1970-01-01 00:00 of the same
/// wall clock (taken as UTC; [`Zone::to_utc`] places it in a zone). Surrounding whitespace is
/// ignored; any out-of-range field (month 13, February 30 outside leap years, hour 24...)
/// gives `None`. The fields are split by hand: chrono's `%m` or `%Y` would take one digit or
/// a sign.
pub fn parse_pandora(s: &str) -> Option<i64> {
    let (date, time) = s.trim().split_once(' ')?;
    let time = time.trim_start();
    let mut d = date.split('-');
    let (ys, ms, ds) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() || ms.len() != 2 || ds.len() != 2 {
        return None;
    }
    let year = match ys.len() {
        2 => 2000 + digits(ys)?,
        4 => digits(ys)?,
        _ => return None,
    };
    if year < 1970 {
        return None;
    }
    let mut t = time.split(':');
    let (hs, mins, ss) = (t.next()?, t.next()?, t.next()?);
    if t.next().is_some() || hs.len() != 2 || mins.len() != 2 || ss.len() != 2 {
        return None;
    }
    let wall = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, digits(ms)?, digits(ds)?)?
        .and_hms_opt(digits(hs)?, digits(mins)?, digits(ss)?)?;
    Some(wall.and_utc().timestamp())
}

/// A time zone: where it comes from (for messages) and its rules.
#[derive(Debug, Clone)]
pub struct Zone {
    /// `UTC`, `+02:00`, `Europe/Paris`, `/etc/localtime`, a `TZ` rule...
    pub name: String,
    rules: Rules,
}

#[derive(Debug, Clone)]
enum Rules {
    /// A fixed offset from UTC, in seconds (east positive).
    Fixed(i32),
    /// This machine's zone, `/etc/localtime` (chrono's [`Local`], which notices a change of
    /// the file).
    Machine,
    /// A zone file or a POSIX rule.
    Tz(tz::TimeZone),
}

impl Zone {
    /// UTC.
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            rules: Rules::Fixed(0),
        }
    }

    /// The zone of this machine, as the C library finds it: `TZ` (a zone name, a file, or a
    /// POSIX rule; empty or unknown: UTC), else `/etc/localtime`.
    pub fn local() -> Zone {
        match std::env::var("TZ") {
            Ok(tz) if tz.trim().is_empty() => Zone::utc(),
            Ok(tz) => Zone::from_tz(&tz).unwrap_or_else(Zone::utc),
            Err(_) => Zone {
                name: "/etc/localtime".into(),
                rules: Rules::Machine,
            },
        }
    }

    /// A zone named on the command line: `UTC`, an offset (`+02:00`, `-0530`), a zone name
    /// (`Europe/Paris`), a zone file, or a POSIX rule (`CET-1CEST,M3.5.0,M10.5.0/3`).
    pub fn named(spec: &str) -> Result<Zone, String> {
        let spec = spec.trim();
        if spec.eq_ignore_ascii_case("utc") || spec == "Z" {
            return Ok(Zone::utc());
        }
        if let Some(offset) = iso_offset(spec) {
            return Ok(Zone {
                name: spec.to_string(),
                rules: Rules::Fixed(offset),
            });
        }
        Zone::from_tz(spec).ok_or_else(|| {
            format!(
                "unknown time zone {spec:?}: expected UTC, an offset such as +02:00, a zone name \
                 such as Europe/Paris, or a TZ rule"
            )
        })
    }

    /// A `TZ` value: `:name`, a zone name or file, or a POSIX rule. Zone names are looked up
    /// under `TZDIR` (default `/usr/share/zoneinfo`); names that climb out of it, files that
    /// are not regular files or larger than [`MAX_TZIF`] are refused.
    fn from_tz(tz: &str) -> Option<Zone> {
        let name = tz.strip_prefix(':').unwrap_or(tz).trim();
        if name.is_empty() || name.split('/').any(|part| part == "..") {
            return None;
        }
        let dir = std::env::var("TZDIR").unwrap_or_else(|_| "/usr/share/zoneinfo".into());
        let dirs = [dir.as_str()];
        let settings = tz::TimeZoneSettings::new(&dirs, read_zone_file);
        let rules = settings.parse_posix_tz(name).ok()?;
        Some(Zone {
            name: name.to_string(),
            rules: Rules::Tz(rules),
        })
    }

    /// The offset from UTC (seconds east) in force at the instant `utc`.
    pub fn offset_at(&self, utc_secs: i64) -> i64 {
        let seconds = match &self.rules {
            Rules::Fixed(o) => *o,
            Rules::Machine => Local
                .offset_from_utc_datetime(&utc(utc_secs).naive_utc())
                .fix()
                .local_minus_utc(),
            Rules::Tz(z) => z
                .find_local_time_type(utc_secs)
                .map_or(0, tz::LocalTimeType::ut_offset),
        };
        i64::from(seconds)
    }

    /// The UTC instant of a local wall-clock time given as seconds since 1970-01-01 00:00
    /// local ([`parse_pandora`]). A time repeated when the clocks go back is the later of its
    /// two instants; a time skipped when they go forward is read with the offset in force
    /// after the change (02:30 on the night Paris goes to summer time is 00:30Z): in both
    /// cases the offset after the change, the day after.
    pub fn to_utc(&self, local: i64) -> i64 {
        let before = self.offset_at(local - DAY);
        let after = self.offset_at(local + DAY);
        let valid = |offset: i64| self.offset_at(local - offset) == offset;
        if !valid(after) && valid(before) {
            local - before
        } else {
            local - after
        }
    }
}

/// Reads a zone file for `tz-rs`: a regular file of at most [`MAX_TZIF`] bytes, opened
/// without waiting (a FIFO or a device named in `TZ` is refused, not read forever).
fn read_zone_file(path: &str) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(format!("{path} is not a regular file").into());
    }
    let mut data = Vec::new();
    file.take(MAX_TZIF + 1).read_to_end(&mut data)?;
    if data.len() as u64 > MAX_TZIF {
        return Err(format!("{path} is too large for a zone file").into());
    }
    Ok(data)
}

/// `+02:00`, `-0530`, `+02`: an ISO 8601 offset, seconds east.
fn iso_offset(s: &str) -> Option<i32> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    (hours <= 14 && minutes < 60).then_some(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests;
