//! Time zones without libc: TZif files (`TZ`, `/etc/localtime`, `/usr/share/zoneinfo`) and POSIX `TZ` rules, to turn a local wall-clock time into UTC.
//!
//! Pandora FMS gives the time an alert fired as `yy-mm-dd hh:mm:ss` in its server's local
//! time. [`Zone::local`] finds that zone the way the C library does (`TZ`, else
//! `/etc/localtime`, else UTC), and [`Zone::to_utc`] converts, daylight saving time included.

use std::path::{Path, PathBuf};

use crate::timefmt;

/// Largest zone file read (real ones are a few kilobytes).
const MAX_TZIF: u64 = 256 * 1024;

/// A time zone: its name (for messages) and its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// Where it comes from: `UTC`, `+02:00`, `Europe/Paris`, `/etc/localtime`, a `TZ` rule...
    pub name: String,
    rules: Rules,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rules {
    /// A fixed offset from UTC, in seconds (east positive).
    Fixed(i64),
    /// A TZif table: transition instants and the offset from each on.
    Table {
        times: Vec<i64>,
        offsets: Vec<i64>,
        /// The offset before the first transition.
        before: i64,
        /// The rule after the last transition (TZif version 2+ footer).
        after: Option<Posix>,
    },
    Posix(Posix),
}

/// A POSIX `TZ` rule such as `CET-1CEST,M3.5.0,M10.5.0/3`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Posix {
    /// Standard offset from UTC, seconds east.
    std: i64,
    dst: Option<Dst>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Dst {
    /// Daylight offset from UTC, seconds east.
    offset: i64,
    /// Daylight time starts at this local standard time...
    start: (When, i64),
    /// ... and ends at this local daylight time (day, seconds after midnight).
    end: (When, i64),
}

/// The day of a POSIX rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// `Mm.w.d`: day `d` (0 = Sunday) of week `w` (5 = last) of month `m`.
    Month(u32, u32, u32),
    /// `Jn`: day 1..365, February 29 never counted.
    Julian(u32),
    /// `n`: day 0..365, February 29 counted.
    Day(u32),
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
    /// POSIX rule), else `/etc/localtime`, else UTC.
    pub fn local() -> Zone {
        match std::env::var("TZ") {
            Ok(tz) if tz.trim().is_empty() => Zone::utc(),
            Ok(tz) => Zone::from_tz(&tz).unwrap_or_else(Zone::utc),
            Err(_) => {
                load_file(Path::new("/etc/localtime"), "/etc/localtime").unwrap_or_else(Zone::utc)
            }
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

    /// A `TZ` value: `:name`, a zone name or file, or a POSIX rule.
    fn from_tz(tz: &str) -> Option<Zone> {
        let name = tz.strip_prefix(':').unwrap_or(tz).trim();
        if let Some(path) = zone_file(name)
            && let Some(z) = load_file(&path, name)
        {
            return Some(z);
        }
        let (posix, rest) = Posix::parse(name)?;
        rest.is_empty().then(|| Zone {
            name: name.to_string(),
            rules: Rules::Posix(posix),
        })
    }

    /// The offset from UTC (seconds east) in force at the instant `utc`.
    pub fn offset_at(&self, utc: i64) -> i64 {
        match &self.rules {
            Rules::Fixed(o) => *o,
            Rules::Posix(p) => p.offset_at(utc),
            Rules::Table {
                times,
                offsets,
                before,
                after,
            } => match times.partition_point(|t| *t <= utc) {
                0 => *before,
                n if n == times.len() && after.is_some() => {
                    after.as_ref().map_or(offsets[n - 1], |p| p.offset_at(utc))
                }
                n => offsets[n - 1],
            },
        }
    }

    /// The UTC instant of a local wall-clock time given as seconds since 1970-01-01 00:00
    /// local. A time skipped or repeated by a daylight saving change gets one of its
    /// candidate instants.
    pub fn to_utc(&self, local: i64) -> i64 {
        let mut utc = local - self.offset_at(local);
        for _ in 0..2 {
            let next = local - self.offset_at(utc);
            if next == utc {
                break;
            }
            utc = next;
        }
        utc
    }
}

/// `+02:00`, `-0530`, `+02`: an ISO 8601 offset, seconds east.
fn iso_offset(s: &str) -> Option<i64> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    (hours <= 14 && minutes < 60).then_some(sign * (hours * 3600 + minutes * 60))
}

/// The file of a zone name: an absolute path, or a name under `TZDIR` (default
/// `/usr/share/zoneinfo`). Names that climb out of the directory are refused.
fn zone_file(name: &str) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    if name.starts_with('/') {
        return Some(PathBuf::from(name));
    }
    if name.split('/').any(|part| part == ".." || part.is_empty()) {
        return None;
    }
    let dir = std::env::var_os("TZDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/zoneinfo"));
    Some(dir.join(name))
}

/// Reads a zone file: a regular file, opened without waiting (a FIFO or a device named in
/// `TZ` or `--timezone` is refused, not waited on or read forever).
fn load_file(path: &Path, name: &str) -> Option<Zone> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut data = Vec::new();
    file.take(MAX_TZIF).read_to_end(&mut data).ok()?;
    Some(Zone {
        name: name.to_string(),
        rules: parse_tzif(&data)?,
    })
}

/// Parses a TZif file (RFC 8536, versions 1 to 4).
fn parse_tzif(data: &[u8]) -> Option<Rules> {
    fn counts(h: &[u8]) -> Option<[usize; 6]> {
        if h.len() < 44 || &h[..4] != b"TZif" {
            return None;
        }
        let mut c = [0usize; 6];
        for (i, n) in c.iter_mut().enumerate() {
            let at = 20 + 4 * i;
            *n = u32::from_be_bytes(h[at..at + 4].try_into().ok()?) as usize;
        }
        Some(c)
    }
    // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
    let c = counts(data)?;
    let v1_len = c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    let (size, c, start) = if data[4] >= b'2' {
        let h2 = 44usize.checked_add(v1_len)?;
        (8usize, counts(data.get(h2..)?)?, h2 + 44)
    } else {
        (4, c, 44)
    };
    let [isut, isstd, leaps, timecnt, typecnt, charcnt] = c;
    if typecnt == 0 {
        return None;
    }
    let times_at = start;
    let idx_at = times_at + timecnt * size;
    let types_at = idx_at + timecnt;
    let end = types_at + typecnt * 6 + charcnt + leaps * (size + 4) + isstd + isut;
    let body = data.get(..end)?;
    let offset_of = |t: usize| -> Option<i64> {
        let at = types_at + 6 * t;
        Some(i64::from(i32::from_be_bytes(
            body.get(at..at + 4)?.try_into().ok()?,
        )))
    };
    let mut times = Vec::with_capacity(timecnt);
    let mut offsets = Vec::with_capacity(timecnt);
    for i in 0..timecnt {
        let at = times_at + i * size;
        let t = if size == 8 {
            i64::from_be_bytes(body[at..at + 8].try_into().ok()?)
        } else {
            i64::from(i32::from_be_bytes(body[at..at + 4].try_into().ok()?))
        };
        let ty = usize::from(body[idx_at + i]);
        if ty >= typecnt {
            return None;
        }
        times.push(t);
        offsets.push(offset_of(ty)?);
    }
    let after = if size == 8 {
        data.get(end..)
            .and_then(|f| f.strip_prefix(b"\n"))
            .and_then(|f| f.split(|b| *b == b'\n').next())
            .and_then(|f| std::str::from_utf8(f).ok())
            .and_then(|f| Posix::parse(f).filter(|(_, rest)| rest.is_empty()))
            .map(|(p, _)| p)
    } else {
        None
    };
    Some(Rules::Table {
        times,
        offsets,
        before: offset_of(0)?,
        after,
    })
}

impl Posix {
    /// Parses a rule; returns it and what follows it.
    fn parse(s: &str) -> Option<(Posix, &str)> {
        let rest = zone_abbreviation(s)?;
        let (std, rest) = clock(rest, 24)?;
        let std = -std;
        let Some(rest) = zone_abbreviation(rest) else {
            return Some((Posix { std, dst: None }, rest));
        };
        let (offset, rest) = match clock(rest, 24) {
            Some((o, r)) => (-o, r),
            None => (std + 3600, rest),
        };
        // without rules, the C library uses the United States' ones
        let (start, end, rest) = match rest.strip_prefix(',') {
            Some(r) => {
                let (start, r) = rule(r)?;
                let (end, r) = rule(r.strip_prefix(',')?)?;
                (start, end, r)
            }
            None => (
                (When::Month(3, 2, 0), 7200),
                (When::Month(11, 1, 0), 7200),
                rest,
            ),
        };
        Some((
            Posix {
                std,
                dst: Some(Dst { offset, start, end }),
            },
            rest,
        ))
    }

    fn offset_at(&self, utc: i64) -> i64 {
        let Some(d) = &self.dst else {
            return self.std;
        };
        let year = year_of(utc + self.std);
        let (Some(start), Some(end)) = (day_start(d.start.0, year), day_start(d.end.0, year))
        else {
            return self.std;
        };
        let start = start + d.start.1 - self.std;
        let end = end + d.end.1 - d.offset;
        let daylight = if start < end {
            start <= utc && utc < end
        } else {
            !(end <= utc && utc < start)
        };
        if daylight { d.offset } else { self.std }
    }
}

/// Skips a zone abbreviation: 3 or more letters, or `<...>`.
fn zone_abbreviation(s: &str) -> Option<&str> {
    if let Some(r) = s.strip_prefix('<') {
        let (name, rest) = r.split_once('>')?;
        return (name.len() >= 3).then_some(rest);
    }
    let n = s.bytes().take_while(u8::is_ascii_alphabetic).count();
    (n >= 3).then(|| &s[n..])
}

/// `[+-]hh[:mm[:ss]]` in seconds (hours up to `max_hours`), and what follows.
fn clock(s: &str, max_hours: i64) -> Option<(i64, &str)> {
    let (sign, s) = match s.as_bytes().first()? {
        b'-' => (-1, &s[1..]),
        b'+' => (1, &s[1..]),
        _ => (1, s),
    };
    let mut total = 0i64;
    let mut rest = s;
    for (i, scale) in [3600i64, 60, 1].into_iter().enumerate() {
        if i > 0 {
            match rest.strip_prefix(':') {
                Some(r) => rest = r,
                None => break,
            }
        }
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 3 {
            return None;
        }
        let v: i64 = rest[..n].parse().ok()?;
        if (i == 0 && v > max_hours) || (i > 0 && v > 59) {
            return None;
        }
        total += v * scale;
        rest = &rest[n..];
    }
    Some((sign * total, rest))
}

/// `Mm.w.d[/time]`, `Jn[/time]` or `n[/time]` (time defaults to 02:00).
fn rule(s: &str) -> Option<((When, i64), &str)> {
    let number = |s: &str| -> Option<(u32, usize)> {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        Some((s[..n].parse().ok()?, n))
    };
    let (when, rest) = if let Some(r) = s.strip_prefix('M') {
        let (m, a) = number(r)?;
        let r = r[a..].strip_prefix('.')?;
        let (w, b) = number(r)?;
        let r = r[b..].strip_prefix('.')?;
        let (d, c) = number(r)?;
        if !(1..=12).contains(&m) || !(1..=5).contains(&w) || d > 6 {
            return None;
        }
        (When::Month(m, w, d), &r[c..])
    } else if let Some(r) = s.strip_prefix('J') {
        let (n, a) = number(r)?;
        if !(1..=365).contains(&n) {
            return None;
        }
        (When::Julian(n), &r[a..])
    } else {
        let (n, a) = number(s)?;
        if n > 365 {
            return None;
        }
        (When::Day(n), &s[a..])
    };
    match rest.strip_prefix('/') {
        Some(r) => {
            let (t, r) = clock(r, 167)?;
            Some(((when, t), r))
        }
        None => Some(((when, 7200), rest)),
    }
}

/// Seconds since 1970-01-01 of local midnight of `(year, month, day)`.
fn midnight(year: i64, month: u32, day: u32) -> Option<i64> {
    timefmt::parse_pandora(&format!("{year:04}-{month:02}-{day:02} 00:00:00"))
}

fn year_of(t: i64) -> i64 {
    timefmt::rfc3339_utc(t)[..4].parse().unwrap_or(1970)
}

/// Local midnight (seconds since 1970 local) of a rule's day in `year`.
fn day_start(when: When, year: i64) -> Option<i64> {
    let jan1 = midnight(year, 1, 1)?;
    let leap = midnight(year, 2, 29).is_some();
    match when {
        When::Day(n) => Some(jan1 + i64::from(n) * 86_400),
        When::Julian(n) => {
            let n = i64::from(n) - 1 + i64::from(leap && n >= 60);
            Some(jan1 + n * 86_400)
        }
        When::Month(m, w, d) => {
            let first = midnight(year, m, 1)?;
            // 1970-01-01 was a Thursday (4)
            let weekday = (first / 86_400 + 4).rem_euclid(7) as u32;
            let mut day = 1 + (d + 7 - weekday) % 7 + 7 * (w - 1);
            while midnight(year, m, day).is_none() {
                day -= 7;
            }
            midnight(year, m, day)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> i64 {
        timefmt::parse_pandora(s).unwrap()
    }

    fn utc(z: &Zone, wall: &str) -> String {
        timefmt::rfc3339_utc(z.to_utc(local(wall)))
    }

    #[test]
    fn fixed_offsets() {
        let z = Zone::named("+02:00").unwrap();
        assert_eq!(utc(&z, "2023-11-14 22:13:20"), "2023-11-14T20:13:20Z");
        let z = Zone::named("-0530").unwrap();
        assert_eq!(utc(&z, "2023-11-14 22:13:20"), "2023-11-15T03:43:20Z");
        assert_eq!(Zone::named("utc").unwrap(), Zone::utc());
        assert!(Zone::named("+25:00").is_err());
        assert!(Zone::named("Nowhere/Atlantis").is_err());
        assert!(Zone::named("../../etc/passwd").is_err());
    }

    #[test]
    fn posix_rules_north_and_south() {
        let z = Zone::named("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        assert_eq!(utc(&z, "2023-01-15 12:00:00"), "2023-01-15T11:00:00Z");
        assert_eq!(utc(&z, "2023-07-01 12:00:00"), "2023-07-01T10:00:00Z");
        // 2023-03-26 is the last Sunday of March: 02:00 CET becomes 03:00 CEST
        assert_eq!(utc(&z, "2023-03-26 01:59:59"), "2023-03-26T00:59:59Z");
        assert_eq!(utc(&z, "2023-03-26 03:00:00"), "2023-03-26T01:00:00Z");
        // 2023-10-29: 03:00 CEST becomes 02:00 CET
        assert_eq!(utc(&z, "2023-10-29 03:30:00"), "2023-10-29T02:30:00Z");
        let z = Zone::named("AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
        assert_eq!(utc(&z, "2024-01-15 12:00:00"), "2024-01-15T01:00:00Z");
        assert_eq!(utc(&z, "2024-07-15 12:00:00"), "2024-07-15T02:00:00Z");
        // no rules: the United States' ones
        let z = Zone::named("EST5EDT").unwrap();
        assert_eq!(utc(&z, "2024-07-04 12:00:00"), "2024-07-04T16:00:00Z");
        assert_eq!(utc(&z, "2024-12-25 12:00:00"), "2024-12-25T17:00:00Z");
        let z = Zone::named("<+0330>-3:30").unwrap();
        assert_eq!(utc(&z, "2024-07-04 12:00:00"), "2024-07-04T08:30:00Z");
        let z = Zone::named("XXX3YYY,J60/1,300").unwrap();
        assert_eq!(z.offset_at(local("2024-06-01 00:00:00")), -2 * 3600);
        assert!(Zone::named("CET-1CEST,M13.5.0,M10.5.0").is_err());
    }

    #[test]
    fn zone_files() {
        // the tz database is part of every distribution Pandora FMS runs on
        let Ok(z) = Zone::named("Europe/Paris") else {
            eprintln!("no /usr/share/zoneinfo/Europe/Paris: skipped");
            return;
        };
        assert_eq!(utc(&z, "2023-01-15 12:00:00"), "2023-01-15T11:00:00Z");
        assert_eq!(utc(&z, "2023-07-01 12:00:00"), "2023-07-01T10:00:00Z");
        // beyond the file's table: the footer rule
        assert_eq!(utc(&z, "2100-07-01 12:00:00"), "2100-07-01T10:00:00Z");
        assert_eq!(utc(&z, "2100-12-01 12:00:00"), "2100-12-01T11:00:00Z");
        // before any daylight saving time
        assert_eq!(utc(&z, "1971-07-01 12:00:00"), "1971-07-01T11:00:00Z");
        assert!(parse_tzif(b"TZif2 too short").is_none());
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
        // a thread: the old open waited for a writer forever
        std::thread::spawn(move || tx.send(Zone::named(&spec).is_err()));
        let refused = rx.recv_timeout(std::time::Duration::from_secs(60));
        assert_eq!(refused, Ok(true), "a FIFO given as the zone was waited on");
        assert!(Zone::named("/dev/null").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
