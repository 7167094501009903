//! Every benchmark of `make bench` runs once on a tiny input, so none can rot (no timing is asserted).

mod support;

// The timeline drawer of the storm and outage benchmarks, with its unit tests (they run here,
// in `make test`, not only with `cargo test --example bench`).
#[allow(dead_code)]
#[path = "../examples/bench/timeline.rs"]
mod timeline;

use std::process::Command;

#[test]
fn every_benchmark_runs_on_a_tiny_input() {
    let out = Command::new("bash")
        .arg(support::root().join("bench/run.sh"))
        .arg("--tiny")
        .current_dir(support::root())
        .output()
        .expect("run bench/run.sh --tiny");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for bench in [
        "\"bench\":\"write_path_summary\"",
        "\"bench\":\"instructions\"",
        "\"bench\":\"memory_summary\"",
        "\"bench\":\"outbox\"",
        "\"bench\":\"delivery\"",
        "\"bench\":\"storm\"",
        "\"bench\":\"template\"",
        "\"bench\":\"recovery\"",
        "\"bench\":\"outage\"",
    ] {
        assert!(stdout.contains(bench), "{bench} missing:\n{stdout}");
    }
    assert!(stdout.contains("## Results"), "{stdout}");
    // the storm and the outage drew their timelines, and the report shows them
    for bench in ["storm", "outage"] {
        let line: serde_json::Value = stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .find(|v: &serde_json::Value| v["bench"] == bench)
            .unwrap_or_else(|| panic!("no {bench} line:\n{stdout}"));
        let path = line["timeline_svg"]
            .as_str()
            .unwrap_or_else(|| panic!("{bench}: no timeline_svg in {line}"));
        assert!(path.ends_with(&format!("{bench}.svg")), "{path}");
        let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        timeline::tests::check_xml(&doc).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(doc.len() > 4_000, "{path}: {} bytes", doc.len());
        // bars of the requests the stand-in answered, the lines of the events, the axes
        for part in [
            "<rect class=\"bar\"",
            "<polyline",
            "requests sent per second",
            "events",
        ] {
            assert!(doc.contains(part), "{path}: no {part}");
        }
        assert!(
            stdout.contains(&format!("]({path})")),
            "{bench} image not in the report:\n{stdout}"
        );
        if bench == "outage" {
            // the outage's two phases are shaded
            assert!(doc.contains("PagerDuty answering 500") && doc.contains("PagerDuty resetting"));
        }
    }
}

/// Runs `python3 bench/real-broker/<script> args...` from the repository root.
fn kit(script: &str, args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .arg(support::root().join("bench/real-broker").join(script))
        .args(args)
        .current_dir(support::root())
        .output()
        .unwrap_or_else(|e| panic!("run python3 {script}: {e}"))
}

/// The real-Broker kit's diagnostic variants (a decomposition series, bench/HISTORY.md
/// section 19) are made from the bridge as it is: every edit finds its place, each variant
/// is valid Lua 5.3 and 5.4 and differs from the bridge; a bridge whose anchors moved is
/// refused, not mis-edited.
#[test]
fn the_real_broker_variants_apply_to_the_bridge() {
    let dir = support::scratch("variants");
    let out_dir = dir.join("v");
    let bridge = support::root().join("lua-bridge/pagerduty.lua");
    let (bridge_s, out_s) = (bridge.to_str().unwrap(), out_dir.to_str().unwrap());
    let out = kit("variants.py", &[bridge_s, "lib.so", out_s]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let original = std::fs::read_to_string(&bridge).unwrap();
    let names = ["Obare", "Ofast", "Ofirst", "Osub0", "Onl", "Oack"];
    for name in names {
        let path = out_dir.join(format!("{name}.lua"));
        assert!(
            stdout.contains(&format!("{name}={}:", path.display())),
            "{name} not in the perf.sh arguments: {stdout}"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_ne!(text, original, "{name} is the bridge unchanged");
        for luac in ["luac5.3", "luac5.4"] {
            let check = Command::new(luac).arg("-p").arg(&path).output().unwrap();
            assert!(
                check.status.success(),
                "{name} with {luac}: {}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
    }
    // what each variant leaves out
    let read = |n: &str| std::fs::read_to_string(out_dir.join(format!("{n}.lua"))).unwrap();
    assert!(!read("Obare").contains("stays_ok[hid]") && !read("Ofast").contains("state_fn(handle"));
    assert!(
        read("Osub0").contains("complete(d); settled = true")
            && !read("Osub0").contains("submit_fn(handle, complete")
    );
    assert!(!read("Oack").contains("return false") && !read("Oack").contains("return settled"));

    let moved = dir.join("moved.lua");
    std::fs::write(
        &moved,
        original.replace("submit_fn(handle, complete(d))", "submit_fn(handle, d)"),
    )
    .unwrap();
    let out = kit(
        "variants.py",
        &[moved.to_str().unwrap(), "lib.so", out_s, "Osub0"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("anchor found 0 times"),
        "{out:?}"
    );
}

/// The kit's summary pairs the runs of one round: per round, each script minus the base, and
/// their median; so does its table of what the output thread's time is made of, beside the
/// machine's interrupts per 1,000 events.
#[test]
fn the_real_broker_summary_pairs_rounds() {
    let dir = support::scratch("summarize");
    // ticks of Broker's Lua output thread (the higher proc_failover tid) and of the
    // connector's committer, per (script, round); N = 100,000: one tick is 0.1 us/event
    let runs = [
        ("F", 1, 200, 0),
        ("O", 1, 210, 9),
        ("F", 2, 230, 0),
        ("O", 2, 242, 8),
        ("F", 3, 190, 0),
        ("O", 3, 203, 7),
    ];
    let mut lines = String::new();
    for (name, rep, out, own) in runs {
        let run = serde_json::json!({
            "name": name, "rep": rep, "n": 100_000, "rate": 0, "status": "ok",
            "cpu_at_detect_s": 2.0, "wall_s": 1.8, "wall_to_feed_done_s": 1.7,
            "last_request_s": null, "vmhwm_kb": 80_000, "requests": 0,
            "threads": [
                {"ticks": 120, "comm": "proc_failover", "tid": 10},
                // schedstat's ns on a CPU as the ticks say; 3 system ticks more for O
                {"ticks": out, "comm": "proc_failover", "tid": 11, "run_ns": out as i64 * 10_000_000,
                 "utime": out - 5 - 3 * (name == "O") as i32, "stime": 5 + 3 * (name == "O") as i32,
                 "wait_ns": 0, "minflt": 400, "vcsw": 100, "nvcsw": 300, "slices": 400},
                {"ticks": own, "comm": "cpd-commit", "tid": 12}
            ],
            "interrupts": {"CAL": if name == "O" { 6_000 } else { 4_000 }, "HYP": 1}
        });
        lines.push_str(&format!("{run}\n"));
    }
    let results = dir.join("results.jsonl");
    std::fs::write(&results, lines).unwrap();
    let out = kit("summarize.py", &[results.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("| O | +1.20 (+1.00, +1.20, +1.30) | +0.80 |"),
        "{stdout}"
    );
    // on a CPU, user, system (µs/event, paired with F), page faults, ... per 1,000 events
    assert!(
        stdout.contains(
            "| O | 21.00 (+1.20) | 20.20 (+0.90) | 0.80 (+0.30) | 0.00 (+0.00) | 4.00 (+0.00) |"
        ),
        "{stdout}"
    );
    // interrupts per 1,000 events; a kind under 1 per 1,000 events is left out
    assert!(
        stdout.contains("| script | CAL |") && stdout.contains("| O | 60.0 |"),
        "{stdout}"
    );
    let out = kit(
        "summarize.py",
        &[results.to_str().unwrap(), "--against", "O"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("minus O in the same round"), "{stdout}");
    assert!(
        stdout.contains("| F | -1.20 (-1.00, -1.20, -1.30) | -0.80 |"),
        "{stdout}"
    );
}
