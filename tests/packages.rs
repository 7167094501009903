//! `make packages`: the DEB's control fields, owners, modes and files (those of `make install` plus the docs), the DEB extracted with `dpkg -x` running in the Broker emulator, its postinst, and each RPM's requires, files and binaries (`rpm -qp`).

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
    assert!(depends.contains("libc6 (>= "), "Depends: {depends}");
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
    let root_dir = dir.join("root");
    output(Command::new("dpkg").arg("-x").arg(&deb).arg(&root_dir));
    run_installed(&dir, &root_dir);

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
    for _ in 0..2 {
        postinst("configure");
        for (d, mode) in [
            ("var/lib/centreon-broker", 0o775),
            ("var/log/centreon-broker", 0o755),
        ] {
            let m = std::fs::metadata(fake.join(d))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(m & 0o7777, mode, "{d}");
        }
    }
}

#[test]
fn rpms_require_their_lua_abi_and_hold_the_install_layout() {
    // the DEB's binaries, which ran above: the RPMs must carry the same bytes
    let deb_root = scratch("rpm-ref").join("root");
    output(Command::new("dpkg").arg("-x").arg(deb()).arg(&deb_root));
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
        assert!(
            requires.iter().any(|r| r.starts_with("libc.so.6(GLIBC_")),
            "{dist}: the glibc the binaries need: {requires:?}"
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
