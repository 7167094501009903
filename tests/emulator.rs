//! The Broker host emulator checks itself (tests/host/selftest.lua) under Lua 5.3 and 5.4 before the bridge's tests rely on it.

mod support;

use std::process::Command;

#[test]
fn the_emulator_passes_its_self_test_under_both_luas() {
    for lua in support::LUAS {
        let out = Command::new(support::emulator(lua))
            .arg(support::root().join("tests/host/selftest.lua"))
            .output()
            .expect("run the emulator's self-test");
        support::succeeded_with(&out, " passed, 0 failed", &format!("Lua {lua}"));
    }
}
