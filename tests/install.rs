//! `make install` / `make uninstall` into a scratch DESTDIR: the installed bridge and library run in the Broker emulator (Lua 5.3) as Broker would load them, and uninstall leaves nothing behind.

mod support;

use std::path::Path;
use std::process::Command;

use pd_standin::Standin;
use support::*;

fn make(target: &str, destdir: &Path) {
    let out = Command::new("make")
        .arg(target)
        .arg(format!("DESTDIR={}", destdir.display()))
        .current_dir(root())
        .output()
        .expect("run make");
    assert!(
        out.status.success(),
        "make {target}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn installed_bridge_runs_and_uninstall_removes_it() {
    let dir = scratch("install");
    let root_dir = dir.join("root");
    make("install", &root_dir);
    assert_eq!(
        files_under(&root_dir),
        [
            "usr/bin/pagerduty-event",
            "usr/include/centreon_pagerduty.h",
            "usr/lib/libcentreon_pagerduty.so",
            "usr/share/centreon-broker/lua/lib/centreon_pagerduty.so",
            "usr/share/centreon-broker/lua/pagerduty.lua",
        ]
    );

    // Broker loads /usr/share/centreon-broker/lua/pagerduty.lua, which finds lib/ next to it
    let pd = Standin::start().unwrap();
    let lua_dir = root_dir.join("usr/share/centreon-broker/lua");
    let run = Run::new("5.3", "lifecycle.lua").env("CPD_URL", pd.url());
    let mut cmd = run.command(&dir, &lua_dir);
    let out = cmd.output().expect("run the emulator");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        pd.accepted().len(),
        6,
        "the lifecycle scenario's six events"
    );

    let cli = Command::new(root_dir.join("usr/bin/pagerduty-event"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(cli.status.success());

    make("uninstall", &root_dir);
    assert!(
        files_under(&root_dir).is_empty(),
        "{:?}",
        files_under(&root_dir)
    );
}
