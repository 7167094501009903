//! `make packages`: the DEB's control fields, owners, modes and files (those of `make install` plus the docs), the DEB extracted with `dpkg -x` running in the Broker emulator, its postinst, each RPM's requires, files and binaries (`rpm -qp`), and the glibc every packaged binary needs (at most EL8's 2.28).

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::*;

const NAME: &str = "centreon-pagerduty";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `make packages` once per test process, into a scratch PKGDIR; returns that directory and a
/// `make install` tree to compare the packages with.
fn built() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = scratch("packages");
        let out = dir.join("out");
        make("packages", &[("PKGDIR", &out)]);
        let installed = dir.join("installed");
        make("install", &[("DESTDIR", &installed)]);
        (out, installed)
    })
}

/// `make packages`'s file `name` (built first).
fn package(name: &str) -> PathBuf {
    let (out, _) = built();
    let p = out.join(name);
    assert!(
        p.exists(),
        "{} missing: {:?}",
        p.display(),
        files_under(out)
    );
    p
}

fn deb() -> PathBuf {
    package(&format!("{NAME}_{VERSION}-1_amd64.deb"))
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `ls -l`-style permissions of a regular file with `mode`.
fn perms(mode: u32) -> String {
    let mut s = String::from("-");
    for shift in [6, 3, 0] {
        let m = mode >> shift;
        s.push(if m & 4 != 0 { 'r' } else { '-' });
        s.push(if m & 2 != 0 { 'w' } else { '-' });
        s.push(if m & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// Which package a file list is for.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Deb,
    Rpm,
}

/// What a package must hold, path -> permissions (`-> target` for a link): the `make install`
/// tree (with its modes) in the package's layout, and the docs, 0644. The DEB: units in
/// /lib/systemd/system, the links, copyright and changelog.gz. The RPMs: /usr/lib64, zsh's
/// site-functions, no links (their %post makes them), the preset file and CHANGELOG.md.
fn expected(kind: Kind) -> BTreeMap<String, String> {
    let (_, installed) = built();
    let mut want = BTreeMap::new();
    for f in files_under(installed) {
        let path = installed.join(&f);
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let value = if meta.file_type().is_symlink() {
            if kind == Kind::Rpm {
                continue;
            }
            format!("-> {}", std::fs::read_link(&path).unwrap().display())
        } else {
            perms(meta.permissions().mode() & 0o7777)
        };
        let f = match kind {
            Kind::Deb => f.replacen("usr/lib/systemd/", "lib/systemd/", 1),
            Kind::Rpm => f
                .replacen("usr/lib/libcentreon", "usr/lib64/libcentreon", 1)
                .replacen("zsh/vendor-completions/", "zsh/site-functions/", 1),
        };
        want.insert(f, value);
    }
    let doc = format!("usr/share/doc/{NAME}");
    let mut docs = vec![format!("{doc}/README.md")];
    for e in [
        "format_file.json",
        "c_example.c",
        "broker-output.json",
        "pandora-command.txt",
    ] {
        docs.push(format!("{doc}/examples/{e}"));
    }
    for f in files_under(&root().join("docs")) {
        if f.ends_with(".md") {
            docs.push(format!("{doc}/docs/{f}"));
        }
    }
    match kind {
        Kind::Deb => docs.extend([format!("{doc}/copyright"), format!("{doc}/changelog.gz")]),
        Kind::Rpm => {
            docs.push(format!("{doc}/CHANGELOG.md"));
            docs.push("usr/lib/systemd/system-preset/50-centreon-pagerduty.preset".into());
        }
    }
    for d in docs {
        want.insert(d, perms(0o644));
    }
    want
}

/// The oldest glibc the packages serve (EL8's; Debian 11 has 2.31): `PACKAGE_GLIBC` in the
/// Makefile.
const GLIBC: &[u32] = &[2, 28];
/// The libraries a packaged binary may link: glibc's and libgcc_s, on every target system.
const ALLOWED_LIBS: [&str; 8] = [
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libutil.so.1",
    "ld-linux-x86-64.so.2",
    "libgcc_s.so.1",
];

/// `GLIBC_2.28` -> [2, 28].
fn glibc_version(name: &str) -> Vec<u32> {
    let v = name
        .strip_prefix("GLIBC_")
        .unwrap_or_else(|| panic!("{name}"));
    v.split('.').map(|n| n.parse().unwrap()).collect()
}

/// A package's files in a fresh directory: `dpkg -x` for a DEB, `rpm2archive` (from rpm's
/// rpm2cpio) for an RPM.
fn unpacked(pkg: &Path) -> PathBuf {
    let root = scratch("unpacked").join("root");
    std::fs::create_dir_all(&root).unwrap();
    if pkg.extension().is_some_and(|e| e == "deb") {
        output(Command::new("dpkg").arg("-x").arg(pkg).arg(&root));
    } else {
        output(
            Command::new("sh")
                .args(["-c", r#"rpm2archive - <"$0" | tar -xzf - -C "$1""#])
                .arg(pkg)
                .arg(&root),
        );
    }
    root
}

fn sha256(path: &Path) -> String {
    let out = output(Command::new("sha256sum").arg(path));
    out.split_whitespace().next().unwrap().to_string()
}

#[test]
fn deb_depends_on_lua_holds_the_install_layout_and_runs_when_extracted() {
    let deb = deb();

    let field = |f: &str| output(Command::new("dpkg-deb").args(["-f"]).arg(&deb).arg(f));
    assert_eq!(field("Package").trim(), NAME);
    assert_eq!(field("Version").trim(), format!("{VERSION}-1"));
    assert_eq!(field("Architecture").trim(), "amd64");
    let depends = field("Depends");
    assert!(depends.contains("lua5.3 | lua5.4"), "Depends: {depends}");
    assert!(depends.contains("libc6 (>= 2.28)"), "Depends: {depends}");
    assert!(field("Maintainer").contains('@'));
    assert!(field("Description").contains("Centreon Broker"));

    // ./usr/bin/pagerduty-event: root-owned (0/0: cargo-deb writes no names), the modes of
    // make install, directories 0755
    let listing = output(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let mut files = BTreeMap::new();
    for line in listing.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert!(["0/0", "root/root"].contains(&cols[1]), "{line}");
        let path = cols[5].trim_start_matches("./").trim_end_matches('/');
        if cols[0].starts_with('l') {
            assert_eq!((cols.len(), cols[6]), (8, "->"), "{line}");
            files.insert(path.to_string(), format!("-> {}", cols[7]));
            continue;
        }
        assert_eq!(cols.len(), 6, "{line}");
        if cols[0].starts_with('d') {
            assert_eq!(cols[0], "drwxr-xr-x", "{line}");
        } else {
            files.insert(path.to_string(), cols[0].to_string());
        }
    }
    assert_eq!(files, expected(Kind::Deb));
    // the logrotate file is a conffile (kept when changed, removed on purge)
    let conffiles = dir_control(&deb).join("conffiles");
    assert_eq!(
        std::fs::read_to_string(conffiles).unwrap().trim(),
        "/etc/logrotate.d/centreon-pagerduty"
    );
    // the changelog is CHANGELOG.md
    let changelog = output(Command::new("sh").args(["-c", "dpkg-deb --fsys-tarfile \"$0\" | tar -xOf - ./usr/share/doc/centreon-pagerduty/changelog.gz | gzip -dc"]).arg(&deb));
    assert_eq!(
        changelog,
        std::fs::read_to_string(root().join("CHANGELOG.md")).unwrap()
    );

    // dpkg -x: the bridge and library, where Broker finds them, run in the emulator
    let dir = scratch("deb");
    run_installed(&dir, &unpacked(&deb));

    // the maintainer scripts are packaging/scripts as `make package-scripts` writes them
    // (their behaviour: tests/package_scripts.rs)
    let control = dir_control(&deb);
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        assert_eq!(
            std::fs::read_to_string(control.join(script)).unwrap(),
            script_text(script),
            "{script}"
        );
    }
}

/// The DEB's control files, extracted (`dpkg-deb -e`) into a fresh directory.
fn dir_control(deb: &Path) -> PathBuf {
    let control = scratch("control").join("control");
    output(Command::new("dpkg-deb").arg("-e").arg(deb).arg(&control));
    control
}

/// A maintainer script as `make package-scripts` writes it.
fn script_text(name: &str) -> String {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = scratch("scripts").join("scripts");
        make("package-scripts", &[("PKGSCRIPTS", &dir)]);
        dir
    });
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn rpms_require_their_lua_abi_and_hold_the_install_layout() {
    // the DEB's binaries, which ran above: the RPMs must carry the same bytes
    let deb_root = unpacked(&deb());
    for (dist, lua) in [("el8", "5.3"), ("el9", "5.4")] {
        let rpm = package(&format!("{NAME}-{VERSION}-1.{dist}.x86_64.rpm"));
        let q = |fmt: &str| {
            output(
                Command::new("rpm")
                    .args(["-qp", "--nosignature", "--qf", fmt])
                    .arg(&rpm),
            )
        };
        assert_eq!(
            q("%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{LICENSE}"),
            format!("{NAME} {VERSION} 1.{dist} x86_64 Apache-2.0")
        );
        let requires = output(
            Command::new("rpm")
                .args(["-qp", "--nosignature", "--requires"])
                .arg(&rpm),
        );
        let requires: Vec<&str> = requires.lines().map(str::trim).collect();
        assert!(
            requires.contains(&format!("lua(abi) = {lua}").as_str()),
            "{dist}: {requires:?}"
        );
        let glibc: Vec<&str> = requires
            .iter()
            .filter_map(|r| r.strip_prefix("libc.so.6(")?.split(')').next())
            .filter(|v| v.starts_with("GLIBC_"))
            .collect();
        assert!(
            !glibc.is_empty() && glibc.iter().all(|v| glibc_version(v).as_slice() <= GLIBC),
            "{dist}: the glibc the binaries need, at most 2.28: {requires:?}"
        );
        for (tag, script) in [
            ("PREIN", "preinst"),
            ("POSTIN", "postinst"),
            ("PREUN", "prerm"),
            ("POSTUN", "postrm"),
            ("POSTTRANS", "posttrans"),
        ] {
            assert_eq!(
                q(&format!("%{{{tag}}}")).trim_end(),
                script_text(script).trim_end(),
                "{dist}: %{tag} is packaging/scripts/{script}"
            );
        }
        let config = q("[%{FILEFLAGS:fflags} %{FILENAMES}\n]");
        assert!(
            config.contains("cn /etc/logrotate.d/centreon-pagerduty"),
            "{dist}: %config(noreplace)\n{config}"
        );

        let mut files = BTreeMap::new();
        for line in
            q("[%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} %{FILEDIGESTS} %{FILENAMES}\n]")
                .lines()
        {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cols.len(), 4, "{dist}: a link or an empty file? {line}");
            assert_eq!(cols[1], "root/root", "{dist}: {line}");
            let path = cols[3].trim_start_matches('/');
            if let Some(rest) = path.strip_prefix("usr/lib64/") {
                let deb_file = deb_root.join("usr/lib").join(rest);
                assert_eq!(cols[2], sha256(&deb_file), "{dist}: {path}");
            } else if deb_root.join(path).exists() {
                assert_eq!(cols[2], sha256(&deb_root.join(path)), "{dist}: {path}");
            }
            files.insert(path.to_string(), cols[0].to_string());
        }
        assert_eq!(files, expected(Kind::Rpm), "{dist}");
    }
}

/// Each package's ELF files, unpacked: the libraries they link (`NEEDED`) are glibc's and
/// libgcc_s, and the symbol versions they need of glibc (the loader refuses to run a binary
/// needing one the system lacks) are at most 2.28, whatever glibc built them.
#[test]
fn packaged_binaries_need_at_most_glibc_2_28() {
    let mut packages = vec![deb()];
    for dist in ["el8", "el9"] {
        packages.push(package(&format!("{NAME}-{VERSION}-1.{dist}.x86_64.rpm")));
    }
    for pkg in packages {
        let root = unpacked(&pkg);
        // the program and the one copy of the library (the rest are links to it)
        let elves: Vec<String> = files_under(&root)
            .into_iter()
            .filter(|f| !root.join(f).is_symlink())
            .filter(|f| std::fs::read(root.join(f)).unwrap().starts_with(b"\x7fELF"))
            .collect();
        assert_eq!(elves.len(), 2, "{}: {elves:?}", pkg.display());
        for f in elves {
            let p = output(Command::new("objdump").arg("-p").arg(root.join(&f)));
            let what = format!("{} {f}", pkg.display());
            let mut glibc = Vec::new();
            for line in p.lines() {
                let cols: Vec<&str> = line.split_whitespace().collect();
                match cols[..] {
                    ["NEEDED", lib] => assert!(ALLOWED_LIBS.contains(&lib), "{what} links {lib}"),
                    [_, _, _, v] if v.starts_with("GLIBC_") => glibc.push(v),
                    _ => {}
                }
            }
            assert!(!glibc.is_empty(), "{what}: no glibc version needed?\n{p}");
            let above: Vec<&str> = glibc
                .into_iter()
                .filter(|v| glibc_version(v).as_slice() > GLIBC)
                .collect();
            assert!(above.is_empty(), "{what} needs {above:?}: above 2.28 (EL8)");
        }
    }
}

/// What `lua5.3` runs in the Debian 11 root: the installed bridge, loaded as Broker would
/// (`lib/?.so` beside the script on `package.cpath`), initialised and asked whether it takes a
/// BBDO 3 service status.
const DEBIAN11_CHECK: &str = r#"
package.cpath = "/usr/share/centreon-broker/lua/lib/?.so;" .. package.cpath
broker_log = {}
for _, f in ipairs({ "set_parameters", "info", "warning", "error" }) do
  broker_log[f] = function(_, _, msg) if msg then io.stderr:write(f, ": ", msg, "\n") end end
end
dofile("/usr/share/centreon-broker/lua/pagerduty.lua")
init({ pdy_routing_key = "ROUTING_KEY",
  outbox_path = "/tmp/outbox.db", log_path = "/tmp/connector.log" })
assert(filter(1, 29) == true)
print("init ok on " .. _VERSION)
"#;

/// Debian 11 for real (glibc 2.31, its lua5.3): a minimal root made with debootstrap, where the
/// DEB installs with `dpkg -i` (its dependencies met, its scripts run: a hand-installed bridge
/// kept as .legacy, ldconfig, the timer enabled) and the installed bridge initialises in
/// `lua5.3`, `pagerduty-event` runs (`check` and `list` on that outbox, the man page and the
/// completions in place); `dpkg --purge` removes what the package made. Opt-in: needs root, debootstrap
/// and Debian's archive, about 70 s and 220 MB.
#[test]
#[ignore = "Debian 11 root (root, debootstrap, network; 1.5 min): cargo test --test packages -- --ignored"]
fn deb_installs_and_runs_on_debian_11() {
    let deb = deb();
    let root_dir = scratch("debian11").join("root");
    output(
        Command::new("debootstrap")
            .args(["--variant=minbase", "--include=lua5.3", "bullseye"])
            .arg(&root_dir),
    );
    std::fs::copy(&deb, root_dir.join("tmp/package.deb")).unwrap();
    let check = DEBIAN11_CHECK.replace("ROUTING_KEY", ROUTING_KEY);
    std::fs::write(root_dir.join("tmp/check.lua"), check).unwrap();
    let chroot = |args: &[&str]| output(Command::new("chroot").arg(&root_dir).args(args));
    assert!(chroot(&["ldd", "--version"]).contains("2.31"));
    // a bridge installed by hand (the wget of an early guide): kept aside, and said
    let lua_dir = root_dir.join("usr/share/centreon-broker/lua");
    std::fs::create_dir_all(&lua_dir).unwrap();
    std::fs::write(lua_dir.join("pagerduty.lua"), "-- by hand").unwrap();
    let out = chroot(&["dpkg", "-i", "/tmp/package.deb"]);
    assert!(
        out.contains("kept as /usr/share/centreon-broker/lua/pagerduty.lua.legacy"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(lua_dir.join("pagerduty.lua.legacy")).unwrap(),
        "-- by hand"
    );
    assert!(root_dir.join("var/lib/centreon-broker").is_dir());
    let out = chroot(&["lua5.3", "/tmp/check.lua"]);
    assert!(out.contains("init ok on Lua 5.3"), "{out}");
    let version = chroot(&["pagerduty-event", "--version"]);
    assert!(version.contains(VERSION), "{version}");
    // the operator's commands, from the installed package, on the outbox the bridge made
    let check = chroot(&["pagerduty-event", "check", "--outbox", "/tmp/outbox.db"]);
    assert!(check.starts_with("PAGERDUTY OK - "), "{check}");
    assert!(check.contains("| pending=0;"), "{check}");
    let list = chroot(&["pagerduty-event", "list", "--outbox", "/tmp/outbox.db"]);
    assert!(!list.is_empty(), "{list}");
    let help = chroot(&["pagerduty-event", "test", "--help"]);
    assert!(help.contains("--incident"), "{help}");
    for f in [
        "usr/share/man/man1/pagerduty-event.1.gz",
        "usr/share/bash-completion/completions/pagerduty-event",
        "etc/logrotate.d/centreon-pagerduty",
        "usr/share/doc/centreon-pagerduty/changelog.gz",
    ] {
        assert!(root_dir.join(f).is_file(), "{f} not installed");
    }
    // ldconfig ran: the loader knows the SONAME
    let cache = chroot(&["/sbin/ldconfig", "-p"]);
    assert!(cache.contains("libcentreon_pagerduty.so.0 "), "{cache}");
    // enabled by deb-systemd-helper (init-system-helpers, priority required) without systemd
    // running: the timer starts at the next boot
    let wants = "etc/systemd/system/timers.target.wants/pagerduty-event-flush.timer";
    assert!(root_dir.join(wants).is_symlink(), "timer not enabled");
    // reinstalled (dpkg's upgrade): the package's own bridge is not moved aside
    let out = chroot(&["dpkg", "-i", "/tmp/package.deb"]);
    assert!(!out.contains("kept as"), "{out}");
    assert!(!lua_dir.join("pagerduty.lua.legacy.1").exists());
    // purge: what the package made goes, Broker's directories stay
    chroot(&["dpkg", "--purge", NAME]);
    for gone in [
        "etc/pagerduty-event",
        "var/lib/pagerduty-event",
        "etc/logrotate.d/centreon-pagerduty",
    ] {
        assert!(!root_dir.join(gone).exists(), "{gone}");
    }
    assert!(
        !root_dir.join(wants).exists(),
        "timer still enabled after purge"
    );
    let groups = std::fs::read_to_string(root_dir.join("etc/group")).unwrap();
    assert!(!groups.contains("pagerduty-event:"), "{groups}");
    assert!(root_dir.join("var/lib/centreon-broker").is_dir());
    std::fs::remove_dir_all(root_dir.parent().unwrap()).unwrap();
}
