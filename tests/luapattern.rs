//! `accepted_hosts` / `accepted_services` patterns agree with the real `string.match` of Lua 5.3 and 5.4 on every case of a table.

use std::collections::BTreeSet;
use std::process::Command;

use centreon_pagerduty::luapattern::{Pattern, split};

const PATTERNS: &[&str] = &[
    "",
    ".*",
    "^srv%-db",
    "srv%-db$",
    "^db%d%d%.paris$",
    "host_%d+",
    "^host_%d+$",
    "[a-c]+",
    "[^a-c]+",
    "[%a_]+%d*",
    "%u%l+",
    "%s",
    "%S+",
    "%p",
    "%w+%.%w+",
    "%x%x",
    "%c",
    "%g+",
    "a-b",
    "a.-b",
    "a*b",
    "a?b",
    "^a?$",
    "(%a+)-(%d+)",
    "(h%a+) %1",
    "()a()",
    "%b()",
    "%b[]x",
    "%f[%a]%a+",
    "%f[%w]db",
    "[]]",
    "[a-]",
    "[%]]",
    "^$",
    "$",
    "^",
    "web%-0[1-3]",
    "WEB",
    "é",
    "[é]",
    "%.paris%.example%.com$",
    "^[^%.]+$",
    "a$b",
    "%$",
    // refused by Lua
    "abc%",
    "[a",
    "%b(",
    "%fx",
    "(a",
    "a)",
    "(a)%2",
];

const SUBJECTS: &[&str] = &[
    "",
    "srv-db-01",
    "web-srv-db",
    "db01.paris",
    "db01.paris.fr",
    "host_42",
    "xhost_",
    "abcabc",
    "ABC def",
    "a-1",
    "hello hello",
    "f(a(b)c)",
    "[x]x",
    "THE (quick) fox",
    "web-02",
    "WEB-01",
    "aab",
    "a",
    "b",
    "a$b",
    "price $5",
    "tab\there",
    "web-01.paris.example.com",
    "é-host",
    "x]-",
    "abc",
];

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// For each pattern, for each subject: "1" (matches), "0", or "E:<Lua's message>".
fn lua_verdicts(lua: &str) -> Vec<Vec<String>> {
    let list = |items: &[&str]| {
        items
            .iter()
            .map(|s| format!("\"{}\"", hex(s)))
            .collect::<Vec<_>>()
            .join(",")
    };
    let script = format!(
        r#"
local function unhex(h) return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end
local P, S = {{{}}}, {{{}}}
for _, p in ipairs(P) do
  local row = {{}}
  for _, s in ipairs(S) do
    local ok, r = pcall(string.match, unhex(s), unhex(p))
    if not ok then row[#row + 1] = "E:" .. tostring(r)
    elseif r ~= nil then row[#row + 1] = "1" else row[#row + 1] = "0" end
  end
  print(table.concat(row, "\t"))
end
"#,
        list(PATTERNS),
        list(SUBJECTS)
    );
    let out = Command::new(lua)
        .arg("-e")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("run {lua} (make deps installs it): {e}"));
    assert!(
        out.status.success(),
        "{lua}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn agree_with(lua: &str) {
    let verdicts = lua_verdicts(lua);
    assert_eq!(verdicts.len(), PATTERNS.len());
    for (p, row) in PATTERNS.iter().zip(&verdicts) {
        let lua_errors: BTreeSet<&str> = row.iter().filter_map(|v| v.strip_prefix("E:")).collect();
        match Pattern::new(p) {
            Err(e) => assert!(
                lua_errors.contains(e.0.as_str()),
                "{lua}: we refuse {p:?} with {e:?}, Lua said {lua_errors:?}"
            ),
            Ok(pattern) => {
                assert!(
                    lua_errors.is_empty(),
                    "{lua}: {p:?}: Lua refused it: {lua_errors:?}"
                );
                for (s, v) in SUBJECTS.iter().zip(row) {
                    let ours = if pattern.is_match(s) { "1" } else { "0" };
                    assert_eq!(ours, v, "{lua}: string.match({s:?}, {p:?})");
                }
            }
        }
    }
}

#[test]
fn patterns_match_as_in_lua53() {
    agree_with("lua5.3");
}

#[test]
fn patterns_match_as_in_lua54() {
    agree_with("lua5.4");
}

#[test]
fn lists_split_as_gmatch_does() {
    for lua in ["lua5.3", "lua5.4"] {
        for (text, sep) in [
            ("a,b,,c", ","),
            (" a , b", ","),
            ("a;b,c", ";,"),
            ("x|y", "|"),
        ] {
            let script = format!(
                "local t = {{}} for v in string.gmatch({text:?}, \"([^\" .. {sep:?} .. \"]+)\") do t[#t + 1] = v end print(table.concat(t, \"\\n\"))"
            );
            let out = Command::new(lua).arg("-e").arg(&script).output().unwrap();
            let text_out = String::from_utf8(out.stdout).unwrap();
            let want: Vec<&str> = text_out.lines().collect();
            assert_eq!(
                split(text, sep).unwrap(),
                want,
                "{lua}: {text:?} by {sep:?}"
            );
        }
    }
}
