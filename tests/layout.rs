//! The code's shape, checked: src/'s top-level modules import only from lower layers (the
//! pipeline's order, so no cycle and no arrow against the flow), no source file over 800
//! non-test lines, no non-test function over 100 lines.
//!
//! A non-test line is one outside an item marked `#[cfg(test)]` and outside a `tests.rs` file.
//! `ALLOWED` lists the violations still being worked on, each with the size it must not exceed;
//! an entry that no longer applies fails the test too, so the list only shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// src/'s top-level modules by layer, lowest first: a module may import only from a lower
/// layer. Utilities; the log and statistics; then the pipeline, Broker event -> decision ->
/// payload -> outbox -> delivery (a later stage uses what an earlier one produced; `http` is
/// what delivery sends with); `config` composes every part's options; `connector` drives one
/// output; the Lua module, the C ABI and the command line sit on top.
const LAYERS: &[&[&str]] = &[
    &["params", "files", "timefmt", "luapattern"],
    &["log", "stats"],
    &["event"],
    &["decision"],
    &["payload"],
    &["outbox", "http"],
    &["delivery"],
    &["config"],
    &["connector"],
    &["lua", "ffi", "cli"],
];

const MAX_FILE_LINES: usize = 800;
const MAX_FN_LINES: usize = 100;

/// Violations not fixed yet: ("file", path, lines), ("fn", "path::name", lines),
/// ("upward", "a -> b", 0) (an import not to a lower layer) or ("cycle", "a b c", 0) (the
/// modules of one cycle, sorted).
const ALLOWED: &[(&str, &str, usize)] = &[];

/// The source as tokens that matter here: every character outside comments, string and char
/// literals (those are blanked, newlines kept so that line numbers hold).
fn code_only(src: &str) -> Vec<char> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::with_capacity(c.len());
    let mut i = 0;
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied().unwrap_or('\0');
        if ch == '/' && next == '/' {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if ch == '/' && next == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push(' ');
                    out.push(' ');
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push(' ');
                    out.push(' ');
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
        } else if ch == 'r' && (next == '"' || next == '#') && !ident_char(c.get(i.wrapping_sub(1)))
        {
            // raw string r"..." or r#"..."#
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(ch);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.extend(c[i..j].iter().map(|&x| blank(x)));
            i = j;
        } else if ch == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                if c[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            j = (j + 1).min(c.len());
            out.extend(c[i..j].iter().map(|&x| blank(x)));
            i = j;
        } else if ch == '\'' {
            // a char literal ('x', '\n', '\u{..}') or a lifetime ('a)
            let end = if next == '\\' {
                (i + 2..c.len()).find(|&j| c[j] == '\'').map(|j| j + 1)
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 3)
            } else {
                None
            };
            match end {
                Some(j) => {
                    out.extend(c[i..j].iter().map(|&x| blank(x)));
                    i = j;
                }
                None => {
                    out.push(ch);
                    i += 1;
                }
            }
        } else {
            out.push(ch);
            i += 1;
        }
    }
    out
}

fn ident_char(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// The index just after the brace that closes the one at `open`.
fn matching_brace(code: &[char], open: usize) -> usize {
    let mut depth = 0;
    for (i, &ch) in code.iter().enumerate().skip(open) {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

fn line_of(code: &[char], at: usize) -> usize {
    code[..at.min(code.len())]
        .iter()
        .filter(|&&c| c == '\n')
        .count()
        + 1
}

/// The code with every `#[cfg(test)]` item blanked out (its lines kept, empty).
fn without_tests(code: &[char]) -> Vec<char> {
    let mut out = code.to_vec();
    let text: String = code.iter().collect();
    let mut from = 0;
    while let Some(pos) = text[from..].find("#[cfg(test)]") {
        let start = from + pos;
        // byte offset == char offset here: `code_only` output is ASCII outside identifiers, and
        // identifiers in this crate are ASCII
        let rest = &code[start..];
        let brace = rest.iter().position(|&c| c == '{');
        let semi = rest.iter().position(|&c| c == ';');
        let end = match (brace, semi) {
            (Some(b), Some(s)) if s < b => start + s + 1,
            (Some(b), _) => matching_brace(code, start + b),
            (None, Some(s)) => start + s + 1,
            (None, None) => code.len(),
        };
        for c in &mut out[start..end] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        from = end;
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

struct Source {
    /// `src/...` relative path.
    name: String,
    /// The top-level module it belongs to (`lib` for src/lib.rs, `bin` for src/bin).
    module: String,
    /// Non-test code only (comments and literals blanked).
    code: Vec<char>,
    /// Non-blank lines of the file outside test items, comments included.
    lines: usize,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "tests.rs"))
        .map(|p| {
            let name = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let first = name.trim_start_matches("src/").split('/').next().unwrap();
            let module = first.trim_end_matches(".rs").to_string();
            let text = fs::read_to_string(&p).unwrap();
            let all = code_only(&text);
            let code = without_tests(&all);
            let lines = non_test_lines(&text, &all, &code);
            Source {
                name,
                module,
                code,
                lines,
            }
        })
        .collect()
}

/// The non-blank lines of `text` that are not inside a test item: lines whose code `without_tests`
/// blanked are test lines, unless they had no code to begin with (then the line is a test line
/// only if it lies between two test lines, like a comment inside a test module).
fn non_test_lines(text: &str, all: &[char], code: &[char]) -> usize {
    let split = |c: &[char]| -> Vec<bool> {
        let s: String = c.iter().collect();
        s.split('\n').map(|l| !l.trim().is_empty()).collect()
    };
    let (had_code, kept_code) = (split(all), split(code));
    let test: Vec<bool> = had_code
        .iter()
        .zip(&kept_code)
        .map(|(h, k)| *h && !*k)
        .collect();
    let mut count = 0;
    let mut last_test = false;
    for (i, line) in text.split('\n').enumerate() {
        let is_test = if test.get(i).copied().unwrap_or(false) {
            true
        } else if had_code.get(i).copied().unwrap_or(false) {
            false
        } else {
            // a comment or blank line: inside a test item when the next code line is a test line
            // and the last one was too
            last_test
                && (i + 1..test.len())
                    .find(|&j| had_code[j])
                    .is_some_and(|j| test[j])
        };
        if had_code.get(i).copied().unwrap_or(false) {
            last_test = is_test;
        }
        if !is_test && !line.trim().is_empty() {
            count += 1;
        }
    }
    count
}

/// Every non-test function: ("file::name", lines from `fn` to its closing brace).
fn functions(src: &Source) -> Vec<(String, usize)> {
    let code = &src.code;
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 < code.len() {
        let is_fn = code[i] == 'f'
            && code[i + 1] == 'n'
            && code[i + 2].is_whitespace()
            && !ident_char(i.checked_sub(1).and_then(|p| code.get(p)));
        if !is_fn {
            i += 1;
            continue;
        }
        let name: String = code[i + 3..]
            .iter()
            .skip_while(|c| c.is_whitespace())
            .take_while(|c| c.is_alphanumeric() || **c == '_')
            .collect();
        let rest = &code[i..];
        let brace = rest.iter().position(|&c| c == '{');
        let semi = rest.iter().position(|&c| c == ';');
        match (brace, semi) {
            (Some(b), s) if s.is_none_or(|s| b < s) => {
                let end = matching_brace(code, i + b);
                let lines = line_of(code, end) - line_of(code, i) + 1;
                out.push((format!("{}::{name}", src.name), lines));
            }
            _ => {}
        }
        i += 3;
    }
    out
}

/// The top-level modules a source refers to through `crate::` paths.
fn imports(src: &Source) -> BTreeSet<String> {
    let text: String = src.code.iter().collect();
    let mut out = BTreeSet::new();
    for (pos, _) in text.match_indices("crate::") {
        let before = pos.checked_sub(1).and_then(|p| src.code.get(p));
        if ident_char(before) || before == Some(&'$') {
            continue; // `$crate::`, `centreon_pagerduty_crate::`...
        }
        let m: String = text[pos + 7..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // a module, not an item of the crate root (`crate::VERSION`)
        if m.starts_with(|c: char| c.is_ascii_lowercase()) && m != src.module {
            out.insert(m);
        }
    }
    out
}

/// The cycles of the graph: its strongly connected components of two or more modules.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for n in graph.get(&m).into_iter().flatten() {
                if seen.insert(n.clone()) {
                    todo.push(n.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut out: BTreeSet<Vec<String>> = BTreeSet::new();
    for (m, r) in &reaches {
        if !r.contains(*m) {
            continue;
        }
        let scc: Vec<String> = r
            .iter()
            .filter(|n| reaches.get(n).is_some_and(|rn| rn.contains(*m)))
            .cloned()
            .collect();
        if scc.len() > 1 {
            out.insert(scc);
        }
    }
    out.into_iter().collect()
}

/// Every violation: (kind, what, size).
fn violations() -> Vec<(String, String, usize)> {
    let sources = sources();
    let mut found = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for src in &sources {
        if src.lines > MAX_FILE_LINES {
            found.push(("file".into(), src.name.clone(), src.lines));
        }
        for (name, lines) in functions(src) {
            if lines > MAX_FN_LINES {
                found.push(("fn".into(), name, lines));
            }
        }
        if src.module != "lib" && src.module != "bin" {
            graph
                .entry(src.module.clone())
                .or_default()
                .extend(imports(src));
        }
    }
    let layer = |m: &str| LAYERS.iter().position(|l| l.contains(&m));
    for (m, deps) in &graph {
        let Some(own) = layer(m) else {
            found.push(("unlayered".into(), m.clone(), 0));
            continue;
        };
        for d in deps {
            if layer(d).is_none_or(|l| l >= own) {
                found.push(("upward".into(), format!("{m} -> {d}"), 0));
            }
        }
    }
    for cycle in cycles(&graph) {
        let edges: Vec<String> = cycle
            .iter()
            .flat_map(|m| {
                graph[m]
                    .iter()
                    .filter(|n| cycle.contains(n))
                    .map(move |n| format!("{m} -> {n}"))
            })
            .collect();
        eprintln!("cycle {}: {}", cycle.join(" "), edges.join(", "));
        found.push(("cycle".into(), cycle.join(" "), 0));
    }
    found
}

/// Whether the allowed entry `allowed` covers the violation `found`: the same file or function,
/// or, for a cycle, one among the allowed cycle's modules (a cycle that shrinks stays allowed).
fn covers(kind: &str, allowed: &str, found: &str) -> bool {
    if kind == "cycle" {
        let allowed: BTreeSet<&str> = allowed.split(' ').collect();
        found.split(' ').all(|m| allowed.contains(m))
    } else {
        allowed == found
    }
}

#[test]
fn the_code_keeps_its_shape() {
    let found = violations();
    let mut problems = Vec::new();
    for (kind, what, size) in &found {
        match ALLOWED
            .iter()
            .find(|(k, w, _)| k == kind && covers(kind, w, what))
        {
            None => problems.push(format!("new {kind}: {what} ({size})")),
            Some((_, _, max)) if size > max => {
                problems.push(format!("{kind} grew: {what} ({size}, allowed {max})"))
            }
            Some(_) => {}
        }
    }
    for (kind, what, _) in ALLOWED {
        if !found
            .iter()
            .any(|(k, w, _)| k == kind && covers(kind, what, w))
        {
            problems.push(format!("fixed, remove from ALLOWED: {kind} {what}"));
        }
    }
    assert!(
        problems.is_empty(),
        "limits: files {MAX_FILE_LINES} non-test lines, functions {MAX_FN_LINES} lines, imports \
         only from lower layers (LAYERS), no import cycle between src/'s top-level modules\n{}",
        problems.join("\n")
    );
}

/// The Lua bridge's code lines (not blank, not a comment).
fn lua_code_lines(src: &str) -> usize {
    src.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .count()
}

/// Issue 32: the bridge is plumbing, at most 150 code lines; what it does is decided in Rust.
#[test]
fn the_lua_bridge_stays_plumbing() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lua-bridge/pagerduty.lua");
    let lines = lua_code_lines(&fs::read_to_string(path).unwrap());
    assert!(
        lines <= 150,
        "lua-bridge/pagerduty.lua has {lines} code lines (at most 150)"
    );
    assert_eq!(
        lua_code_lines("-- a\n\nlocal x = 1 -- b\n  -- c\nreturn x\n"),
        2
    );
}

#[test]
fn the_checker_sees_what_it_must() {
    let text = "/// doc\nfn a() {\n let s = \"}\"; let c = '}'; // }\n}\n\n#[cfg(test)]\nmod tests {\n // note\n fn b() {\n }\n}\n";
    let all = code_only(text);
    let code = without_tests(&all);
    let src = Source {
        name: "x.rs".into(),
        module: "x".into(),
        lines: non_test_lines(text, &all, &code),
        code,
    };
    assert_eq!(functions(&src), vec![("x.rs::a".to_string(), 3)]);
    assert_eq!(src.lines, 4);
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert(
        "b".to_string(),
        BTreeSet::from(["a".to_string(), "c".to_string()]),
    );
    g.insert("c".to_string(), BTreeSet::new());
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".to_string()]]);
    let src = Source {
        name: "src/y.rs".into(),
        module: "y".into(),
        code: code_only("use crate::a::B;\nfn f() { crate::c::d(); $crate::z(); }\n"),
        lines: 2,
    };
    assert_eq!(
        imports(&src),
        BTreeSet::from(["a".to_string(), "c".to_string()])
    );
}
