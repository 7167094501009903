//! Tests of `timefmt`.

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
    let dir = crate::files::tests::scratch("tz-fifo");
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
