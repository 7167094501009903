//! The documentation stays true to the code: every parameter the library honours is in docs/configuration.md, and every local link of the README and docs/ points at a file that exists.

use centreon_pagerduty::config::{ParamStatus, known_parameters};

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_honoured_parameter_is_documented() {
    let doc = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    let missing: Vec<&str> = known_parameters()
        .iter()
        .filter(|p| p.status == ParamStatus::Supported)
        .map(|p| p.name)
        .filter(|name| !doc.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/configuration.md: {missing:?}"
    );
}

#[test]
fn local_links_resolve() {
    let mut files = vec![root().join("README.md")];
    for e in std::fs::read_dir(root().join("docs")).unwrap() {
        files.push(e.unwrap().path());
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let dir = file.parent().unwrap();
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let target = &rest[..rest.find(')').unwrap()];
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            let path = target.split('#').next().unwrap();
            assert!(
                dir.join(path).exists(),
                "{}: link to {target} is broken",
                file.display()
            );
        }
    }
}
