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

/// What a package must hold, path -> permissions: the `make install` tree (with its modes;
/// `lib` as given) and the docs, 0644.
fn expected(lib: &str, extra_docs: &[&str]) -> BTreeMap<String, String> {
    let (_, installed) = built();
    let mut want = BTreeMap::new();
    for f in files_under(installed) {
        let mode = std::fs::metadata(installed.join(&f))
            .unwrap()
            .permissions()
            .mode();
        want.insert(
            f.replacen("usr/lib/", &format!("usr/{lib}/"), 1),
            perms(mode & 0o7777),
        );
    }
    let doc = format!("usr/share/doc/{NAME}");
    let mut docs = vec![
        format!("{doc}/README.md"),
        format!("{doc}/examples/format_file.json"),
        format!("{doc}/examples/c_example.c"),
    ];
    for f in files_under(&root().join("docs")) {
        if f.ends_with(".md") {
            docs.push(format!("{doc}/docs/{f}"));
        }
    }
    docs.extend(extra_docs.iter().map(|d| format!("{doc}/{d}")));
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
        assert_eq!(cols.len(), 6, "{line}");
        assert!(["0/0", "root/root"].contains(&cols[1]), "{line}");
        let path = cols[5].trim_start_matches("./").trim_end_matches('/');
        if cols[0].starts_with('d') {
            assert_eq!(cols[0], "drwxr-xr-x", "{line}");
        } else {
            files.insert(path.to_string(), cols[0].to_string());
        }
    }
    assert_eq!(files, expected("lib", &["copyright"]));

    // dpkg -x: the bridge and library, where Broker finds them, run in the emulator
    let dir = scratch("deb");
    run_installed(&dir, &unpacked(&deb));

    // the postinst creates the default outbox and log directories when missing, only on
    // configure, and leaves them alone once they exist
    let control = dir.join("control");
    output(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let fake = dir.join("fake-root");
    let postinst = |arg: &str| {
        output(
            Command::new("sh")
                .arg(control.join("postinst"))
                .arg(arg)
                .env("DPKG_ROOT", &fake),
        )
    };
    postinst("abort-upgrade");
    assert!(!fake.exists());
    // and the shared outbox of pagerduty-event: the system group pagerduty-event (created in
    // the root's /etc/group), /var/lib/pagerduty-event root:pagerduty-event 2770; a directory
    // made 0700 by an earlier pagerduty-event run as root is given that group and mode
    std::fs::create_dir_all(fake.join("etc")).unwrap();
    std::fs::write(fake.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::create_dir_all(fake.join("var/lib/pagerduty-event")).unwrap();
    std::fs::set_permissions(
        fake.join("var/lib/pagerduty-event"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    for _ in 0..2 {
        postinst("configure");
        for (d, mode) in [
            ("var/lib/centreon-broker", 0o775),
            ("var/log/centreon-broker", 0o755),
            ("var/lib/pagerduty-event", 0o2770),
        ] {
            let m = std::fs::metadata(fake.join(d))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(m & 0o7777, mode, "{d}");
        }
        let groups = std::fs::read_to_string(fake.join("etc/group")).unwrap();
        let ours: Vec<&str> = groups
            .lines()
            .filter(|l| l.starts_with("pagerduty-event:"))
            .collect();
        assert_eq!(ours.len(), 1, "{groups}");
        let gid: u32 = ours[0].split(':').nth(2).unwrap().parse().unwrap();
        let spool = std::fs::metadata(fake.join("var/lib/pagerduty-event")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((spool.uid(), spool.gid()), (0, gid), "{groups}");
    }
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
        assert!(
            q("%{POSTIN}").contains("/var/lib/centreon-broker"),
            "{dist}: %post is packaging/scripts/postinst"
        );

        let mut files = BTreeMap::new();
        for line in
            q("[%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} %{FILEDIGESTS} %{FILENAMES}\n]")
                .lines()
        {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cols.len(), 4, "{line}");
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
        assert_eq!(files, expected("lib64", &[]), "{dist}");
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
        let elves: Vec<String> = files_under(&root)
            .into_iter()
            .filter(|f| std::fs::read(root.join(f)).unwrap().starts_with(b"\x7fELF"))
            .collect();
        assert_eq!(elves.len(), 3, "{}: {elves:?}", pkg.display());
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
/// DEB installs with `dpkg -i` (its dependencies met, its postinst run) and the installed
/// bridge initialises in `lua5.3`, and `pagerduty-event` runs. Opt-in: needs root, debootstrap
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
    chroot(&["dpkg", "-i", "/tmp/package.deb"]);
    assert!(root_dir.join("var/lib/centreon-broker").is_dir());
    let out = chroot(&["lua5.3", "/tmp/check.lua"]);
    assert!(out.contains("init ok on Lua 5.3"), "{out}");
    let version = chroot(&["pagerduty-event", "--version"]);
    assert!(version.contains(VERSION), "{version}");
    std::fs::remove_dir_all(root_dir.parent().unwrap()).unwrap();
}
