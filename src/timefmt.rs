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
mod tests {
    use super::*;

    #[test]
    fn c_locale_time_is_strftime_percent_c() {
        assert_eq!(c_locale_time(1_700_000_000), "Tue Nov 14 22:13:20 2023");
        assert_eq!(c_locale_time(1_699_000_000), "Fri Nov  3 08:26:40 2023");
        assert_eq!(c_locale_time(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(c_locale_time(-1), "Wed Dec 31 23:59:59 1969");
    }

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(86_399), "1970-01-01T23:59:59Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn leap_days() {
        // 2024-02-29 and the day after.
        assert_eq!(rfc3339_utc(1_709_164_800), "2024-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_709_251_200), "2024-03-01T00:00:00Z");
        // 2100 is not a leap year, 2000 is.
        assert_eq!(rfc3339_utc(4_107_456_000), "2100-02-28T00:00:00Z");
        assert_eq!(rfc3339_utc(4_107_542_400), "2100-03-01T00:00:00Z");
        assert_eq!(parse_pandora("2024-02-29 12:00:00"), Some(1_709_208_000));
        assert_eq!(parse_pandora("00-02-29 00:00:00"), Some(951_782_400));
        assert_eq!(parse_pandora("2023-02-29 00:00:00"), None);
        assert_eq!(parse_pandora("2100-02-29 00:00:00"), None);
    }

    #[test]
    fn after_2038_and_limits() {
        assert_eq!(rfc3339_utc(2_147_483_647), "2038-01-19T03:14:07Z");
        assert_eq!(rfc3339_utc(2_147_483_648), "2038-01-19T03:14:08Z");
        assert_eq!(rfc3339_utc(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(MAX_SECS), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339_utc(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339_utc(i64::MIN), "0000-01-01T00:00:00Z");
        assert_eq!(c_locale_time(i64::MIN), "Sat Jan  1 00:00:00 0000");
        assert_eq!(parse_pandora("2038-01-19 03:14:08"), Some(2_147_483_648));
        assert_eq!(parse_pandora("9999-12-31 23:59:59"), Some(MAX_SECS));
    }

    #[test]
    fn round_trip_every_day_for_a_few_centuries() {
        let mut t = 0i64;
        while t < 13_000_000_000 {
            let s = rfc3339_utc(t);
            let pandora = s.trim_end_matches('Z').replacen('T', " ", 1);
            assert_eq!(parse_pandora(&pandora), Some(t), "{s}");
            t += 86_400 + 3_661;
        }
    }

    #[test]
    fn pandora_formats() {
        assert_eq!(parse_pandora("23-11-14 22:13:20"), Some(1_700_000_000));
        assert_eq!(parse_pandora("2023-11-14 22:13:20"), Some(1_700_000_000));
        assert_eq!(parse_pandora("  23-11-14 22:13:20\n"), Some(1_700_000_000));
        assert_eq!(parse_pandora("70-01-01 00:00:00"), Some(3_155_760_000));
        assert_eq!(parse_pandora("1970-01-01 00:00:00"), Some(0));
    }

    #[test]
    fn pandora_invalid_inputs() {
        for bad in [
            "",
            " ",
            "23-11-14",
            "22:13:20",
            "23-13-14 22:13:20",
            "23-00-14 22:13:20",
            "23-11-00 22:13:20",
            "23-11-31 22:13:20",
            "23-04-31 22:13:20",
            "23-11-14 24:00:00",
            "23-11-14 22:60:00",
            "23-11-14 22:13:60",
            "23-11-14 22:13",
            "23-11-14 22:13:20:00",
            "23-11-14-01 22:13:20",
            "023-11-14 22:13:20",
            "1969-12-31 23:59:59",
            "+3-11-14 22:13:20",
            "23-+1-14 22:13:20",
            "23-1-14 22:13:20",
            "23-11-14 2:13:20",
            "23-11-14T22:13:20",
            "aa-bb-cc dd:ee:ff",
            "２３-11-14 22:13:20",
            "23-11-14 22:13:2é",
        ] {
            assert_eq!(parse_pandora(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn now_is_plausible() {
        let now = now_unix();
        assert!(now > 1_700_000_000);
        assert!(rfc3339_utc(now).ends_with('Z'));
    }

    fn local(s: &str) -> i64 {
        parse_pandora(s).unwrap()
    }

    fn to_utc(z: &Zone, wall: &str) -> String {
        rfc3339_utc(z.to_utc(local(wall)))
    }

    #[test]
    fn fixed_offsets() {
        let z = Zone::named("+02:00").unwrap();
        assert_eq!(to_utc(&z, "2023-11-14 22:13:20"), "2023-11-14T20:13:20Z");
        let z = Zone::named("-0530").unwrap();
        assert_eq!(to_utc(&z, "2023-11-14 22:13:20"), "2023-11-15T03:43:20Z");
        let z = Zone::named("utc").unwrap();
        assert_eq!((z.name.as_str(), z.offset_at(0)), ("UTC", 0));
        assert!(Zone::named("+25:00").is_err());
        assert!(Zone::named("Nowhere/Atlantis").is_err());
        assert!(Zone::named("../../etc/passwd").is_err());
    }

    #[test]
    fn posix_rules_north_and_south() {
        let z = Zone::named("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        assert_eq!(to_utc(&z, "2023-01-15 12:00:00"), "2023-01-15T11:00:00Z");
        assert_eq!(to_utc(&z, "2023-07-01 12:00:00"), "2023-07-01T10:00:00Z");
        // 2023-03-26 is the last Sunday of March: 02:00 CET becomes 03:00 CEST
        assert_eq!(to_utc(&z, "2023-03-26 01:59:59"), "2023-03-26T00:59:59Z");
        assert_eq!(to_utc(&z, "2023-03-26 03:00:00"), "2023-03-26T01:00:00Z");
        // 2023-10-29: 03:00 CEST becomes 02:00 CET
        assert_eq!(to_utc(&z, "2023-10-29 03:30:00"), "2023-10-29T02:30:00Z");
        let z = Zone::named("AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
        assert_eq!(to_utc(&z, "2024-01-15 12:00:00"), "2024-01-15T01:00:00Z");
        assert_eq!(to_utc(&z, "2024-07-15 12:00:00"), "2024-07-15T02:00:00Z");
        // no rules: the United States' ones
        let z = Zone::named("EST5EDT").unwrap();
        assert_eq!(to_utc(&z, "2024-07-04 12:00:00"), "2024-07-04T16:00:00Z");
        assert_eq!(to_utc(&z, "2024-12-25 12:00:00"), "2024-12-25T17:00:00Z");
        let z = Zone::named("<+0330>-3:30").unwrap();
        assert_eq!(to_utc(&z, "2024-07-04 12:00:00"), "2024-07-04T08:30:00Z");
        let z = Zone::named("XXX3YYY,J60/1,300").unwrap();
        assert_eq!(z.offset_at(local("2024-06-01 00:00:00")), -2 * 3600);
        assert!(Zone::named("CET-1CEST,M13.5.0,M10.5.0").is_err());
    }

    #[test]
    fn repeated_and_skipped_times_take_the_offset_after_the_change() {
        // as the hand-written converter this replaced did (its fixed point)
        let z = Zone::named("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        // 02:30 happens twice on 2023-10-29 (00:30Z CEST, 01:30Z CET): the later one
        assert_eq!(to_utc(&z, "2023-10-29 02:30:00"), "2023-10-29T01:30:00Z");
        // 02:30 never happens on 2023-03-26: read as CEST, the offset after the change
        assert_eq!(to_utc(&z, "2023-03-26 02:30:00"), "2023-03-26T00:30:00Z");
        // the southern hemisphere: Sydney goes forward on 2024-10-06, back on 2024-04-07
        let z = Zone::named("AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
        assert_eq!(to_utc(&z, "2024-10-06 02:30:00"), "2024-10-05T15:30:00Z");
        assert_eq!(to_utc(&z, "2024-04-07 02:30:00"), "2024-04-06T16:30:00Z");
    }

    #[test]
    fn zone_files() {
        // the tz database is part of every distribution Pandora FMS runs on
        let Ok(z) = Zone::named("Europe/Paris") else {
            eprintln!("no /usr/share/zoneinfo/Europe/Paris: skipped");
            return;
        };
        assert_eq!(to_utc(&z, "2023-01-15 12:00:00"), "2023-01-15T11:00:00Z");
        assert_eq!(to_utc(&z, "2023-07-01 12:00:00"), "2023-07-01T10:00:00Z");
        // beyond the file's table: the footer rule
        assert_eq!(to_utc(&z, "2100-07-01 12:00:00"), "2100-07-01T10:00:00Z");
        assert_eq!(to_utc(&z, "2100-12-01 12:00:00"), "2100-12-01T11:00:00Z");
        // before any daylight saving time
        assert_eq!(to_utc(&z, "1971-07-01 12:00:00"), "1971-07-01T11:00:00Z");
        assert_eq!(to_utc(&z, "2023-10-29 02:30:00"), "2023-10-29T01:30:00Z");
        assert_eq!(to_utc(&z, "2023-03-26 02:30:00"), "2023-03-26T00:30:00Z");
        // chrono's Local (TZ unset) reads /etc/localtime as tz-rs does
        if std::env::var_os("TZ").is_none()
            && let Some(file) = Zone::from_tz("/etc/localtime")
        {
            let machine = Zone::local();
            assert_eq!(machine.name, "/etc/localtime");
            for t in (0..60).map(|i| 1_600_000_000 + i * 1_000_003) {
                assert_eq!(machine.offset_at(t), file.offset_at(t), "{t}");
            }
        }
        // a file that is not a zone file, a device
        assert!(Zone::named("/etc/hostname").is_err());
        assert!(Zone::named("/dev/zero").is_err());
    }

    #[test]
    fn a_fifo_named_as_the_zone_is_refused_without_waiting() {
        let dir = std::env::temp_dir().join(format!("cpd-tz-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("zone");
        crate::files::tests::mkfifo(&fifo);
        let (tx, rx) = std::sync::mpsc::channel();
        let spec = fifo.display().to_string();
        // a thread: an open without O_NONBLOCK waits for a writer forever
        std::thread::spawn(move || tx.send(Zone::named(&spec).is_err()));
        let refused = rx.recv_timeout(std::time::Duration::from_secs(60));
        assert_eq!(refused, Ok(true), "a FIFO given as the zone was waited on");
        assert!(Zone::named("/dev/null").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
