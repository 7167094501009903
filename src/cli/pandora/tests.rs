//! Tests of `pandora`.

use super::*;

fn alert(words: &[&str]) -> Result<Alert, Stop> {
    Alert::parse(&words.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

#[test]
fn the_summary_is_the_description_s_first_line() {
    for (description, expected) in [
        ("Disk full", "Disk full"),
        ("Disk full\n/var at 97%\nsince 10:00", "Disk full"),
        ("Disk full\r\n/var at 97%", "Disk full"),
        ("\n  \nDisk full\nmore", "Disk full"),
        ("Critical: disk full", "Critical: disk full"),
        ("", "Pandora FMS alert 7: web-01/disk"),
    ] {
        let a = alert(&[
            "k",
            "7",
            "trigger",
            description,
            "",
            "Critical",
            "web-01",
            "disk",
        ])
        .unwrap();
        assert_eq!(summary(&a, "web-01"), expected, "{description:?}");
    }
}

#[test]
fn every_argument() {
    let a = alert(&[
        "@/k",
        "42",
        "trigger",
        "Disk full",
        "23-11-14 22:13:20",
        "Major",
        "web-01",
        "disk_/var",
        "-95.5",
    ])
    .unwrap();
    assert_eq!(a.action, Action::Trigger);
    assert_eq!(a.id, "42");
    assert_eq!(a.fired_local, Some(1_700_000_000));
    assert_eq!(a.severity, Severity::Error);
    assert_eq!(a.agent.as_deref(), Some("web-01"));
    assert_eq!(a.module.as_deref(), Some("disk_/var"));
    assert_eq!(a.data.as_deref(), Some("-95.5"));
}

#[test]
fn severities() {
    for (name, sev) in [
        ("Critical", Severity::Critical),
        ("Major", Severity::Error),
        ("Warning", Severity::Warning),
        ("Minor", Severity::Warning),
        ("Informational", Severity::Info),
        ("Normal", Severity::Info),
        ("Maintenance", Severity::Info),
        ("MAINTENANCE", Severity::Info),
    ] {
        assert_eq!(severity(name), Some(sev), "{name}");
    }
    assert_eq!(severity("Severe"), None);
    assert_eq!(
        alert(&["k", "1", "trigger", "d"]).unwrap().severity,
        Severity::Critical
    );
}

#[test]
fn recovery_marker() {
    let a = alert(&["k", "1", "resolve", "[RECOVER] Disk full"]).unwrap();
    assert_eq!(
        (a.action, a.description.as_str()),
        (Action::Resolve, "Disk full")
    );
    // recovery fields left blank: Pandora repeats the firing values with the marker
    let a = alert(&["k", "1", "[RECOVER]trigger", "[RECOVER]Disk full"]).unwrap();
    assert_eq!(
        (a.action, a.description.as_str()),
        (Action::Resolve, "Disk full")
    );
    let a = alert(&["k", "1", "trigger", "[RECOVER]Disk full"]).unwrap();
    assert_eq!(a.action, Action::Resolve);
    // the event type field blank in the recovery: the marker alone
    let a = alert(&["k", "1", "[RECOVER]", "[RECOVER]"]).unwrap();
    assert_eq!((a.action, a.description.as_str()), (Action::Resolve, ""));
    // every field but Field 1 marked: the key, the id, the timestamp and the severity
    // are read without it
    let a = alert(&[
        "[RECOVER]@/k",
        "[RECOVER]42",
        "[RECOVER]trigger",
        "[RECOVER]Disk full",
        "[RECOVER]23-11-14 22:13:20",
        "[RECOVER]Major",
        "[RECOVER]web-01",
    ])
    .unwrap();
    assert_eq!(
        (a.key.as_str(), a.id.as_str(), a.action),
        ("@/k", "42", Action::Resolve)
    );
    assert_eq!(a.fired_local, Some(1_700_000_000));
    assert_eq!(a.severity, Severity::Error);
    assert_eq!(a.agent.as_deref(), Some("web-01"));
    // a trigger whose module data starts with the marker is still a trigger
    let a = alert(&["k", "1", "trigger", "d", "", "", "", "", "[RECOVER]x"]).unwrap();
    assert_eq!(a.action, Action::Trigger);
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

/// The words `sh` makes of `pandora "_field1_" ... "_data_"` when a value holds quotes.
#[test]
fn words_split_by_quotes_are_joined_back() {
    // description `Disk "/var is full" now`
    let a = alert(&[
        "@/k",
        "42",
        "trigger",
        "Disk /var",
        "is",
        "full now",
        "23-11-14 22:13:20",
        "Major",
        "web-01",
        "disk_/var",
        "95",
    ])
    .unwrap();
    assert_eq!(a.description, "Disk /var is full now");
    assert_eq!(a.fired_local, Some(1_700_000_000));
    assert_eq!(a.severity, Severity::Error);
    assert_eq!(
        (a.agent.as_deref(), a.module.as_deref(), a.data.as_deref()),
        (Some("web-01"), Some("disk_/var"), Some("95"))
    );
    // module data `status "not ok" (3 retries)`, description intact, timestamp unquoted
    let (fields, note) = rebuild(words(&[
        "@/k",
        "42",
        "trigger",
        "Service down",
        "2023-11-14",
        "22:13:20",
        "Critical",
        "web-01",
        "http",
        "status not",
        "ok (3",
        "retries)",
    ]));
    assert_eq!(
        fields,
        [
            "@/k",
            "42",
            "trigger",
            "Service down",
            "2023-11-14 22:13:20",
            "Critical",
            "web-01",
            "http",
            "status not ok (3 retries)"
        ]
    );
    let note = note.unwrap();
    assert!(note.contains("words 9 to 11 are module_data"), "{note}");
    // both, with an empty timestamp (not in the command) and an empty severity
    let (fields, _) = rebuild(words(&[
        "k", "1", "resolve", "a", "b", "", "Warning", "ag", "mod", "x", "y",
    ]));
    assert_eq!(
        fields,
        [
            "k", "1", "resolve", "a b", "", "Warning", "ag", "mod", "x y"
        ]
    );
    // a command ending at the severity
    let (fields, _) = rebuild(words(&[
        "k",
        "1",
        "trigger",
        "a",
        "b",
        "23-11-14 22:13:20",
        "Minor",
    ]));
    assert_eq!(
        fields,
        ["k", "1", "trigger", "a b", "23-11-14 22:13:20", "Minor"]
    );
}

#[test]
fn words_without_an_anchor() {
    // more words than fields and no timestamp followed by a severity: all of it is the
    // description, delivered
    let a = alert(&["k", "1", "trigger", "d", "", "", "", "", "", "x"]).unwrap();
    assert_eq!(a.description, "d      x");
    assert_eq!(a.fired, None);
    let (fields, note) = rebuild(words(&[
        "k", "1", "trigger", "a", "b", "c", "d", "e", "f", "g",
    ]));
    assert_eq!(fields, ["k", "1", "trigger", "a b c d e f g"]);
    assert!(note.unwrap().contains("words 4 to 10 are the description"));
    // nine words or fewer fit the fields: nothing is joined, nothing said
    let w = words(&["k", "1", "trigger", "a", "", "Major", "ag", "mod", "data"]);
    assert_eq!(rebuild(w.clone()), (w, None));
}

#[test]
fn unquoted_timestamp_is_joined() {
    let a = alert(&[
        "k",
        "1",
        "trigger",
        "d",
        "2023-11-14",
        "22:13:20",
        "Warning",
        "agent",
    ])
    .unwrap();
    assert_eq!(a.fired.as_deref(), Some("2023-11-14 22:13:20"));
    assert_eq!(a.severity, Severity::Warning);
    assert_eq!(a.agent.as_deref(), Some("agent"));
}

#[test]
fn mistakes() {
    let usage = |r: Result<Alert, Stop>| match r {
        Err(Stop::Usage(m)) => m,
        other => panic!("expected a usage error, got {other:?}"),
    };
    assert!(usage(alert(&["k", "1", "trigger"])).contains("<description>"));
    assert!(usage(alert(&["k"])).contains("<id_alert>"));
    assert!(usage(alert(&["k", "1", "fire", "d"])).contains("event_type"));
    let m = usage(alert(&["k", "1", "trigger", "d", "14/11/2023 22:13"]));
    assert!(m.starts_with("fired_timestamp:"), "{m}");
    assert!(usage(alert(&["k", " ", "trigger", "d"])).contains("id_alert"));
}
