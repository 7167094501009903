//! Dependency-free UTC time helpers: RFC 3339 formatting, the current time, Pandora FMS timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

/// `0000-01-01T00:00:00Z`, the first instant a four-digit year can show.
const MIN_SECS: i64 = -62_167_219_200;
/// `9999-12-31T23:59:59Z`, the last instant a four-digit year can show.
const MAX_SECS: i64 = 253_402_300_799;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Proleptic Gregorian `(year, month, day)` of a day count since 1970-01-01 (`civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// `2023-11-14T22:13:20Z` for `1700000000`.
///
/// Exact for every instant a four-digit year can show (years 0000 to 9999); values outside
/// that range are clamped to it, so the result is always a valid RFC 3339 timestamp.
pub fn rfc3339_utc(unix_secs: i64) -> String {
    let secs = unix_secs.clamp(MIN_SECS, MAX_SECS);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// `Thu Nov 14 22:13:20 2023` for `1700000000`: C's `%c` in the C locale (`%a %b %e %H:%M:%S
/// %Y`, the day padded with a space), of a time given as seconds since 1970 in the wall-clock
/// time to show. Centreon Broker writes the Lua stream connectors' log lines with it.
pub fn c_locale_time(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = secs.clamp(MIN_SECS, MAX_SECS);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{} {} {day:>2} {:02}:{:02}:{:02} {year}",
        DAYS[(days + 4).rem_euclid(7) as usize],
        MONTHS[month as usize - 1],
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// The current time in Unix seconds (negative if the clock is set before 1970).
pub fn now_unix() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Parses exactly `n` ASCII digits.
fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a Pandora FMS `fired_timestamp`: `yy-mm-dd hh:mm:ss` (year 20yy) or
/// `yyyy-mm-dd hh:mm:ss` (years 1970 to 9999), taken as UTC. Surrounding whitespace is
/// ignored; any out-of-range field (month 13, February 30 outside leap years, hour 24...)
/// gives `None`.
pub fn parse_pandora(s: &str) -> Option<i64> {
    let (date, time) = s.trim().split_once(' ')?;
    let time = time.trim_start();
    let mut d = date.split('-');
    let (ys, ms, ds) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() || ms.len() != 2 || ds.len() != 2 {
        return None;
    }
    let year = match ys.len() {
        2 => 2000 + i64::from(digits(ys)?),
        4 => i64::from(digits(ys)?),
        _ => return None,
    };
    if !(1970..=9999).contains(&year) {
        return None;
    }
    let month = digits(ms)?;
    let day = digits(ds)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut t = time.split(':');
    let (hs, mins, ss) = (t.next()?, t.next()?, t.next()?);
    if t.next().is_some() || hs.len() != 2 || mins.len() != 2 || ss.len() != 2 {
        return None;
    }
    let (hour, minute, second) = (digits(hs)?, digits(mins)?, digits(ss)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second))
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
}
