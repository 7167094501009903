//! The packages' maintainer scripts (packaging/scripts: preinst, postinst, prerm, postrm and the RPMs' posttrans, as `make package-scripts` writes them) run against a scratch root (DPKG_ROOT) with logging stand-ins for dpkg-query, rpm, deb-systemd-helper, systemctl and ldconfig: the legacy bridge kept aside, the directories and group made, the timer enabled, the RPMs' links, and purge removing only what the package made.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use support::*;

const BRIDGE: &str = "usr/share/centreon-broker/lua/pagerduty.lua";
const SONAME: &str = concat!("libcentreon_pagerduty.so.", env!("CARGO_PKG_VERSION_MAJOR"));
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `make package-scripts` once, into a scratch directory.
fn scripts() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("package-scripts").join("scripts");
        make("package-scripts", &[("PKGSCRIPTS", &dir)]);
        dir
    })
}

/// A scratch root (with an /etc/group) and a directory of stand-ins that log their
/// arguments to `calls`; `dpkg-query -S` and `rpm -qf` say "owned" when OWNED=1.
struct Sandbox {
    root: PathBuf,
    bin: PathBuf,
    calls: PathBuf,
}

impl Sandbox {
    fn new(name: &str) -> Sandbox {
        let dir = scratch(name);
        let root = dir.join("root");
        let bin = dir.join("bin");
        let calls = dir.join("calls");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        for tool in [
            "dpkg-query",
            "rpm",
            "deb-systemd-helper",
            "deb-systemd-invoke",
            "systemctl",
            "ldconfig",
        ] {
            let owned = if ["dpkg-query", "rpm"].contains(&tool) {
                "[ \"$OWNED\" = 1 ]"
            } else {
                "true"
            };
            let path = bin.join(tool);
            std::fs::write(
                &path,
                format!("#!/bin/sh\necho \"{tool} $*\" >>\"$CALLS\"\n{owned}\n"),
            )
            .unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Sandbox { root, bin, calls }
    }

    fn run(&self, script: &str, arg: &str, owned: bool) -> Output {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("sh")
            .arg(scripts().join(script))
            .arg(arg)
            .env("DPKG_ROOT", &self.root)
            .env("PATH", path)
            .env("CALLS", &self.calls)
            .env("OWNED", if owned { "1" } else { "0" })
            .output()
            .unwrap();
        assert!(out.status.success(), "{script} {arg}: {out:?}");
        out
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(&self.calls).unwrap_or_default()
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p)
    }

    fn write(&self, p: &str, text: &str) {
        std::fs::create_dir_all(self.path(p).parent().unwrap()).unwrap();
        std::fs::write(self.path(p), text).unwrap();
    }

    fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.path(p)).unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn preinst_keeps_a_bridge_no_package_owns_as_legacy() {
    for (install, upgrade, tool) in [
        ("install", "upgrade", "dpkg-query -S"),
        ("1", "2", "rpm -qf"),
    ] {
        let sb = Sandbox::new("preinst");
        // nothing there: nothing done
        sb.run("preinst", install, false);
        assert!(!sb.path(BRIDGE).exists());

        // the wget-installed script: moved aside, and the install says so
        sb.write(BRIDGE, "-- by hand 1");
        let out = stdout(&sb.run("preinst", install, false));
        assert_eq!(sb.read(&format!("{BRIDGE}.legacy")), "-- by hand 1");
        assert!(!sb.path(BRIDGE).exists());
        assert!(
            out.contains(&format!("kept as /{BRIDGE}.legacy")),
            "{install}: {out}"
        );
        assert!(
            sb.calls().contains(&format!("{tool} /{BRIDGE}")),
            "{}",
            sb.calls()
        );

        // a second one: numbered, the first .legacy kept
        sb.write(BRIDGE, "-- by hand 2");
        let out = stdout(&sb.run("preinst", upgrade, false));
        assert_eq!(sb.read(&format!("{BRIDGE}.legacy")), "-- by hand 1");
        assert_eq!(sb.read(&format!("{BRIDGE}.legacy.1")), "-- by hand 2");
        assert!(
            out.contains(&format!("kept as /{BRIDGE}.legacy.1")),
            "{out}"
        );

        // a package's own (an upgrade): left to the package manager
        sb.write(BRIDGE, "-- packaged");
        let out = stdout(&sb.run("preinst", upgrade, true));
        assert_eq!(sb.read(BRIDGE), "-- packaged");
        assert!(!sb.path(&format!("{BRIDGE}.legacy.2")).exists());
        assert!(out.is_empty(), "{out}");
    }
}

/// The group's id in the scratch root's /etc/group.
fn gid(sb: &Sandbox) -> Option<u32> {
    sb.read("etc/group")
        .lines()
        .find(|l| l.starts_with("pagerduty-event:"))
        .map(|l| l.split(':').nth(2).unwrap().parse().unwrap())
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn deb_postinst_makes_the_key_directory_and_enables_the_timer() {
    let sb = Sandbox::new("postinst-deb");
    // only on configure
    sb.run("postinst", "abort-upgrade", false);
    assert_eq!(files_under(&sb.root), ["etc/group"]);
    assert!(sb.calls().is_empty(), "{}", sb.calls());
    // a spool an earlier pagerduty-event made 0700 as root is given the group and mode
    std::fs::create_dir_all(sb.path("var/lib/pagerduty-event")).unwrap();
    std::fs::set_permissions(
        sb.path("var/lib/pagerduty-event"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    for _ in 0..2 {
        sb.run("postinst", "configure", false);
        for (d, m) in [
            ("var/lib/centreon-broker", 0o775),
            ("var/log/centreon-broker", 0o755),
        ] {
            assert_eq!(mode(&sb.path(d)), m, "{d}");
        }
        let groups = sb.read("etc/group");
        assert_eq!(groups.matches("pagerduty-event:").count(), 1, "{groups}");
    }
    let gid = gid(&sb).expect("group pagerduty-event");
    for (d, m) in [
        ("etc/pagerduty-event", 0o750),
        ("var/lib/pagerduty-event", 0o2770),
    ] {
        assert_eq!(mode(&sb.path(d)), m, "{d}");
        let md = std::fs::metadata(sb.path(d)).unwrap();
        assert_eq!((md.uid(), md.gid()), (0, gid), "{d}");
    }
    let calls = sb.calls();
    let root = sb.root.display();
    assert!(calls.contains(&format!("ldconfig -r {root}\n")), "{calls}");
    assert!(
        calls.contains("deb-systemd-helper enable pagerduty-event-flush.timer\n"),
        "{calls}"
    );
    // under DPKG_ROOT (another system), nothing is started
    assert!(!calls.contains("deb-systemd-invoke"), "{calls}");
    assert!(!calls.contains("systemctl"), "{calls}");
    // the DEB carries its links: its scripts make none
    assert!(!sb.path("usr/lib64").exists());

    // a key file an operator put there keeps its mode; the directory is made 0750 again
    std::fs::write(sb.path("etc/pagerduty-event/routing.key"), "k").unwrap();
    std::fs::set_permissions(
        sb.path("etc/pagerduty-event"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    sb.run("postinst", "configure", false);
    assert_eq!(mode(&sb.path("etc/pagerduty-event")), 0o750);
    assert_eq!(sb.read("etc/pagerduty-event/routing.key"), "k");
}

#[test]
fn rpm_scripts_make_the_library_links_and_preset_the_timer() {
    let sb = Sandbox::new("postinst-rpm");
    let real = format!("usr/lib64/libcentreon_pagerduty.so.{VERSION}");
    sb.write(&real, "ELF");
    sb.run("postinst", "1", false);
    // the links come after the whole transaction (an upgrade from a version that shipped
    // files there removes them after %post)
    assert!(!sb.path(&format!("usr/lib64/{SONAME}")).exists());
    sb.run("posttrans", "0", false);
    let link = |p: &str| {
        std::fs::read_link(sb.path(p))
            .unwrap()
            .display()
            .to_string()
    };
    assert_eq!(
        link(&format!("usr/lib64/{SONAME}")),
        format!("libcentreon_pagerduty.so.{VERSION}")
    );
    assert_eq!(link("usr/lib64/libcentreon_pagerduty.so"), SONAME);
    let module = "usr/share/centreon-broker/lua/lib/centreon_pagerduty.so";
    assert_eq!(
        sb.path(module).canonicalize().unwrap(),
        sb.path(&real).canonicalize().unwrap()
    );
    let calls = sb.calls();
    assert!(
        calls.contains("systemctl --no-reload preset pagerduty-event-flush.timer\n"),
        "{calls}"
    );
    assert!(calls.contains("ldconfig -r"), "{calls}");
    assert!(gid(&sb).is_some());

    // erase: the links go (a file someone put instead stays), ldconfig runs again
    std::fs::remove_file(sb.path("usr/lib64/libcentreon_pagerduty.so")).unwrap();
    sb.write("usr/lib64/libcentreon_pagerduty.so", "not ours");
    std::fs::remove_file(sb.path(&real)).unwrap();
    sb.run("prerm", "0", false);
    assert!(
        sb.calls()
            .contains("systemctl --no-reload disable pagerduty-event-flush.timer\n"),
        "{}",
        sb.calls()
    );
    sb.run("postrm", "0", false);
    assert!(!sb.path(module).is_symlink());
    assert!(!sb.path(&format!("usr/lib64/{SONAME}")).is_symlink());
    assert_eq!(sb.read("usr/lib64/libcentreon_pagerduty.so"), "not ours");
    // an upgrade's %postun (1) leaves the new version's links alone
    sb.write(&real, "ELF");
    sb.run("postinst", "2", false);
    sb.run("posttrans", "0", false);
    sb.run("postrm", "1", false);
    assert!(sb.path(module).is_symlink());
}

#[test]
fn purge_removes_what_the_package_made_and_keeps_queued_events() {
    let sb = Sandbox::new("purge");
    sb.run("postinst", "configure", false);
    sb.write("var/lib/pagerduty-event/abc.outbox", "queued");
    sb.write("var/lib/centreon-broker/pagerduty.db", "Broker's outbox");

    // remove: files stay, the timer is masked
    sb.run("postrm", "remove", false);
    assert!(sb.path("etc/pagerduty-event").is_dir());
    assert!(
        sb.calls()
            .contains("deb-systemd-helper mask pagerduty-event-flush.timer")
    );

    // purge with events queued: the spool and the group stay, and it says so
    let out = stdout(&sb.run("postrm", "purge", false));
    assert!(out.contains("/var/lib/pagerduty-event kept"), "{out}");
    assert_eq!(sb.read("var/lib/pagerduty-event/abc.outbox"), "queued");
    assert!(!sb.path("etc/pagerduty-event").exists());
    assert!(gid(&sb).is_some());
    assert!(
        sb.calls()
            .contains("deb-systemd-helper purge pagerduty-event-flush.timer")
    );

    // once delivered (empty): the spool and the group go; Broker's files stay
    std::fs::remove_file(sb.path("var/lib/pagerduty-event/abc.outbox")).unwrap();
    let out = stdout(&sb.run("postrm", "purge", false));
    assert!(out.is_empty(), "{out}");
    assert!(!sb.path("var/lib/pagerduty-event").exists());
    assert_eq!(gid(&sb), None);
    assert_eq!(
        sb.read("var/lib/centreon-broker/pagerduty.db"),
        "Broker's outbox"
    );
    assert!(sb.path("var/log/centreon-broker").is_dir());

    // a key file the operator put in /etc/pagerduty-event keeps the directory (and the group)
    sb.run("postinst", "configure", false);
    sb.write("etc/pagerduty-event/routing.key", "k");
    let out = stdout(&sb.run("postrm", "purge", false));
    assert!(out.contains("/etc/pagerduty-event kept"), "{out}");
    assert_eq!(sb.read("etc/pagerduty-event/routing.key"), "k");
    assert!(gid(&sb).is_some());
}
