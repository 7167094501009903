//! `make install` / `make uninstall` into a scratch DESTDIR: the installed bridge and library run in the Broker emulator (Lua 5.3) as Broker would load them, and uninstall leaves nothing behind.

mod support;

use support::*;

/// What `make install` puts under DESTDIR.
const INSTALLED: [&str; 5] = [
    "usr/bin/pagerduty-event",
    "usr/include/centreon_pagerduty.h",
    "usr/lib/libcentreon_pagerduty.so",
    "usr/share/centreon-broker/lua/lib/centreon_pagerduty.so",
    "usr/share/centreon-broker/lua/pagerduty.lua",
];

#[test]
fn installed_bridge_runs_and_uninstall_removes_it() {
    let dir = scratch("install");
    let root_dir = dir.join("root");
    make("install", &[("DESTDIR", &root_dir)]);
    assert_eq!(files_under(&root_dir), INSTALLED);

    // Broker loads /usr/share/centreon-broker/lua/pagerduty.lua, which finds lib/ next to it
    run_installed(&dir, &root_dir);

    make("uninstall", &[("DESTDIR", &root_dir)]);
    assert!(
        files_under(&root_dir).is_empty(),
        "{:?}",
        files_under(&root_dir)
    );
}
