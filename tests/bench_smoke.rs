//! Every benchmark of `make bench` runs once on a tiny input, so none can rot (no timing is asserted).

mod support;

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
    ] {
        assert!(stdout.contains(bench), "{bench} missing:\n{stdout}");
    }
    assert!(stdout.contains("## Results"), "{stdout}");
}
