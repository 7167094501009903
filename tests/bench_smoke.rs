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
