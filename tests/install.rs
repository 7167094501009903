//! `make install` / `make uninstall` into a scratch DESTDIR: the installed bridge and library (one copy, linked from Broker's module path) run in the Broker emulator (Lua 5.3 and 5.4) as Broker would load them, binaries are stripped, `make release`/`make install` run no package manager, and uninstall leaves nothing behind.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const SONAME: &str = concat!("libcentreon_pagerduty.so.", env!("CARGO_PKG_VERSION_MAJOR"));

/// What `make install` puts under DESTDIR, always (files and links).
fn installed() -> Vec<String> {
    let mut files: Vec<String> = vec![
        "etc/logrotate.d/centreon-pagerduty".into(),
        "usr/bin/pagerduty-event".into(),
        "usr/include/centreon_pagerduty.h".into(),
        "usr/lib/libcentreon_pagerduty.so".into(),
        format!("usr/lib/{SONAME}"),
        format!("usr/lib/libcentreon_pagerduty.so.{VERSION}"),
        "usr/lib/systemd/system/pagerduty-event-flush.service".into(),
        "usr/lib/systemd/system/pagerduty-event-flush.timer".into(),
        "usr/share/centreon-broker/lua/lib/centreon_pagerduty.so".into(),
        "usr/share/centreon-broker/lua/pagerduty.lua".into(),
    ];
    files.extend(MAN_AND_COMPLETIONS.map(String::from));
    files.sort();
    files
}

/// The man page and completions, written by the installed binary's hidden `man` and
/// `completions` commands.
const MAN_AND_COMPLETIONS: [&str; 4] = [
    "usr/share/man/man1/pagerduty-event.1.gz",
    "usr/share/bash-completion/completions/pagerduty-event",
    "usr/share/zsh/vendor-completions/_pagerduty-event",
    "usr/share/fish/vendor_completions.d/pagerduty-event.fish",
];

fn readelf(args: &[&str], f: &Path) -> String {
    let out = Command::new("readelf").args(args).arg(f).output().unwrap();
    assert!(out.status.success(), "readelf {args:?} {}", f.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `make -n TARGET`: the commands make would run.
fn dry_run(target: &str) -> String {
    let out = Command::new("make")
        .args(["-n", target])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "make -n {target}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `make release` and `make install` serve production servers (EL8/EL9 too): cargo only, no
/// apt-get; the test and demo dependencies stay with `make test` and `make demo`.
#[test]
fn release_and_install_run_no_package_manager() {
    for target in ["release", "install"] {
        let commands = dry_run(target);
        assert!(commands.contains("cargo build --release"), "{commands}");
        for pm in ["apt-get", "dpkg -s", "dnf", "yum"] {
            assert!(
                !commands.contains(pm),
                "make {target} runs {pm}:\n{commands}"
            );
        }
    }
    for target in ["test", "demo"] {
        assert!(dry_run(target).contains("apt-get install"), "make {target}");
    }
}

#[test]
fn installed_bridge_runs_and_uninstall_removes_it() {
    let dir = scratch("install");
    let root_dir = dir.join("root");
    make("install", &[("DESTDIR", &root_dir)]);
    let bin = root_dir.join("usr/bin/pagerduty-event");
    assert_eq!(files_under(&root_dir), installed());

    // one copy of the library: the SONAME link, the development link and Broker's module
    // path all lead to libcentreon_pagerduty.so.<version>, relatively (valid under DESTDIR)
    let lib = root_dir.join("usr/lib");
    let link = |p: &Path| std::fs::read_link(p).unwrap().display().to_string();
    assert_eq!(
        link(&lib.join(SONAME)),
        format!("libcentreon_pagerduty.so.{VERSION}")
    );
    assert_eq!(link(&lib.join("libcentreon_pagerduty.so")), SONAME);
    let module = root_dir.join("usr/share/centreon-broker/lua/lib/centreon_pagerduty.so");
    assert_eq!(link(&module), format!("../../../../lib/{SONAME}"));
    let real = lib.join(format!("libcentreon_pagerduty.so.{VERSION}"));
    assert_eq!(module.canonicalize().unwrap(), real.canonicalize().unwrap());
    assert!(!real.is_symlink());
    assert!(
        readelf(&["-d"], &real).contains(&format!("Library soname: [{SONAME}]")),
        "SONAME"
    );

    // stripped of debug info (.debug_info, .debug_line...; .debug_gdb_scripts is loaded
    // data, not debug info), symbols kept (backtraces)
    for f in [&real, &bin] {
        let sections = readelf(&["-S", "-W"], f);
        let debug: Vec<&str> = sections
            .split_whitespace()
            .filter(|w| w.starts_with(".debug_") && *w != ".debug_gdb_scripts")
            .collect();
        assert!(debug.is_empty(), "{}: {debug:?}", f.display());
        assert!(
            sections.contains(".symtab"),
            "{}: symbols stripped",
            f.display()
        );
    }

    // /etc/pagerduty-event, for a routing key file: not world-readable
    use std::os::unix::fs::PermissionsExt;
    let etc = std::fs::metadata(root_dir.join("etc/pagerduty-event")).unwrap();
    assert_eq!(etc.permissions().mode() & 0o7777, 0o750);
    // the flush service runs the installed binary
    let service = std::fs::read_to_string(
        root_dir.join("usr/lib/systemd/system/pagerduty-event-flush.service"),
    )
    .unwrap();
    assert!(
        service.contains("\nExecStart=/usr/bin/pagerduty-event flush\n"),
        "{service}"
    );

    verify_units(&dir, &root_dir);

    // Broker loads /usr/share/centreon-broker/lua/pagerduty.lua, which finds lib/ next to it:
    // Lua 5.3 and 5.4's require through the link
    run_installed(&dir.join("lua5.3"), &root_dir);
    run_installed_with_lua(&dir.join("lua5.4"), &root_dir, "5.4");

    make("uninstall", &[("DESTDIR", &root_dir)]);
    assert!(
        files_under(&root_dir).is_empty(),
        "{:?}",
        files_under(&root_dir)
    );
    assert!(!root_dir.join("etc/pagerduty-event").exists());
}

/// The man page is gzipped roff and each completion script names the command.
#[test]
fn man_page_and_completions_come_from_the_binary() {
    let dir = scratch("install-man");
    let root_dir = dir.join("root");
    make("install", &[("DESTDIR", &root_dir)]);
    let man = root_dir.join(MAN_AND_COMPLETIONS[0]);
    let out = Command::new("gzip").arg("-dc").arg(&man).output().unwrap();
    assert!(out.status.success());
    let roff = String::from_utf8_lossy(&out.stdout);
    assert!(
        roff.contains(".TH") && roff.contains("pagerduty-event"),
        "{roff}"
    );
    for f in &MAN_AND_COMPLETIONS[1..] {
        let text = std::fs::read_to_string(root_dir.join(f)).unwrap();
        assert!(text.contains("pagerduty-event"), "{f}: {text}");
    }
}

/// `systemd-analyze verify` on the installed units (ExecStart pointed at the installed
/// binary, no man page lookup): no error and no warning, an unknown directive included.
/// Skipped, with a message, where systemd-analyze is missing.
fn verify_units(dir: &Path, root_dir: &Path) {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-analyze missing, the units are not verified");
        return;
    }
    let units = dir.join("units");
    std::fs::create_dir_all(&units).unwrap();
    let installed = root_dir.join("usr/lib/systemd/system");
    let bin = root_dir.join("usr/bin/pagerduty-event");
    let mut names = Vec::new();
    for name in [
        "pagerduty-event-flush.service",
        "pagerduty-event-flush.timer",
    ] {
        let text = std::fs::read_to_string(installed.join(name)).unwrap();
        let text = text.replace("/usr/bin/pagerduty-event", &bin.display().to_string());
        std::fs::write(units.join(name), text).unwrap();
        names.push(units.join(name));
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&names)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}
