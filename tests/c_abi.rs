//! The C ABI from C: `include/centreon_pagerduty.h` against the library's exports and Rust
//! signatures, and `examples/c_example.c` (compiled with gcc, linked against the built `.so`)
//! against a local PagerDuty stand-in.

mod support;

use std::ffi::c_char;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use centreon_pagerduty::ffi::{self, cpd_connector, cpd_result};
use pd_standin::{Answer, Standin};
use support::*;

const HEADER: &str = "include/centreon_pagerduty.h";
const EXAMPLE: &str = "examples/c_example.c";
/// The library's SONAME (build.rs), which a program linked with `-lcentreon_pagerduty` needs.
const SONAME: &str = concat!("libcentreon_pagerduty.so.", env!("CARGO_PKG_VERSION_MAJOR"));

/// Runs a tool, panicking with a hint when it is missing.
fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}); apt-get install gcc g++ binutils"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Panics with the command's output unless it succeeded.
fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({:?})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The directory of the built `.so` (built once per test process).
fn lib_dir() -> &'static Path {
    library().parent().expect("library directory")
}

/// Compiles the example once per test process, exactly as its documentation says.
fn example() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = scratch("c_abi-build").join("c_example");
        // the link named by the library's SONAME, which the program records
        let soname_link = lib_dir().join(SONAME);
        let _ = std::fs::remove_file(&soname_link);
        std::os::unix::fs::symlink("libcentreon_pagerduty.so", &soname_link).unwrap();
        let out = run(Command::new("gcc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
            .arg(format!("-I{}", root().join("include").display()))
            .arg(root().join(EXAMPLE))
            .arg(format!("-L{}", lib_dir().display()))
            .arg("-lcentreon_pagerduty")
            .arg(format!("-Wl,-rpath,{}", lib_dir().display()))
            .arg("-o")
            .arg(&bin));
        let stderr = text(&out.stderr);
        assert!(
            !stderr.contains("undefined reference to `lua_"),
            "a C program cannot link libcentreon_pagerduty.so: the library needs the Lua API \
             (lua_*) at load time, which only a Lua host provides (see \
             library_needs_no_lua_at_load_time)\n{stderr}"
        );
        check("gcc examples/c_example.c", &out);
        bin
    })
}

/// Runs the example against `pd`; returns its output and the connector's log.
fn run_example(pd: &Standin) -> (Output, String) {
    let dir = scratch("c_abi-run");
    let log = dir.join("connector.log");
    let out = run(Command::new(example())
        .arg(pd.url())
        .arg(&log)
        .env("PDY_ROUTING_KEY", ROUTING_KEY)
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy"));
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !text(&out.stdout).contains(ROUTING_KEY)
            && !text(&out.stderr).contains(ROUTING_KEY)
            && !log.contains(ROUTING_KEY),
        "the routing key leaked into the output or the log"
    );
    (out, log)
}

fn describe(out: &Output, log: &str) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}\n--- log\n{log}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

const TRIGGER_SUMMARY: &str = "srv-db/Disk /var: CRITICAL - /var 97%";
const RESOLVE_SUMMARY: &str = "srv-db/Disk /var: OK - /var 40%";

#[test]
fn example_triggers_then_resolves_and_reports_errors() {
    let pd = Standin::start().expect("start the PagerDuty stand-in");
    let (out, log) = run_example(&pd);
    let all = describe(&out, &log);
    assert!(out.status.success(), "the example failed\n{all}");

    let got = pd.accepted();
    assert_eq!(
        actions(&got),
        [
            ("trigger".to_string(), "12_34".to_string()),
            ("resolve".to_string(), "12_34".to_string())
        ],
        "exactly trigger then resolve\n{all}"
    );
    assert_eq!(
        pd.count(),
        2,
        "nothing else was sent (the malformed event is skipped)"
    );
    assert_eq!(pd.open_incident_count(), 0, "the incident is resolved");
    let (trigger, resolve) = (&got[0], &got[1]);
    assert_eq!(trigger["routing_key"], ROUTING_KEY);
    assert_eq!(trigger["payload"]["summary"], TRIGGER_SUMMARY);
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["source"], "srv-db");
    assert_eq!(trigger["payload"]["component"], "Disk /var");
    assert_eq!(trigger["payload"]["group"], "linux, db");
    assert_eq!(trigger["payload"]["custom_details"]["Poller"], "Central");
    assert_eq!(resolve["payload"]["summary"], RESOLVE_SUMMARY);

    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("centreon-pagerduty {}", env!("CARGO_PKG_VERSION"))),
        "version\n{all}"
    );
    assert!(
        stdout.lines().any(|l| l.contains("message:")
            && l.contains("pdy_routing_key")
            && l.contains("32 alphanumeric")),
        "the configuration error names pdy_routing_key\n{all}"
    );
    assert!(
        stdout.lines().any(|l| l.contains("last error:")
            && l.contains("malformed event")
            && l.contains("host_id")),
        "the malformed event's message names host_id\n{all}"
    );
    assert!(
        stdout.contains("NULL connector: CPD_NULL_ARGUMENT"),
        "NULL arguments are reported\n{all}"
    );
    assert!(
        !stdout.contains("unexpected"),
        "every error case as documented\n{all}"
    );
    assert!(
        log.contains("field 'host_id' must be a positive integer"),
        "the malformed event is logged\n{all}"
    );
}

#[test]
fn example_rejected_trigger_does_not_block_the_resolve() {
    let pd = Standin::start().expect("start the PagerDuty stand-in");
    pd.push_answers([Answer::Reject("scripted rejection".to_string())]);
    let (out, log) = run_example(&pd);
    let all = describe(&out, &log);
    // a rejected event is handed over (logged, never retried): the flush completes
    assert!(out.status.success(), "the example failed\n{all}");

    let requests = pd.requests();
    let seen: Vec<(u16, String, String)> = requests
        .iter()
        .map(|r| {
            let json = r.json.as_ref().expect("JSON body");
            (
                r.status,
                json["event_action"].as_str().unwrap_or("?").to_string(),
                json["dedup_key"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (400, "trigger".to_string(), "12_34".to_string()),
            (202, "resolve".to_string(), "12_34".to_string())
        ],
        "the trigger is rejected once, not retried, and the resolve follows\n{all}"
    );
    assert_eq!(pd.accepted()[0]["payload"]["summary"], RESOLVE_SUMMARY);
    assert!(
        log.contains("PagerDuty rejected trigger 12_34") && log.contains("scripted rejection"),
        "the rejection and PagerDuty's reason are logged\n{all}"
    );
}

/// Every `cpd_` function the header declares (comments removed, then `cpd_name(`).
fn header_functions() -> Vec<String> {
    let src = std::fs::read_to_string(root().join(HEADER)).expect("read the header");
    let mut code = String::new();
    let mut rest = src.as_str();
    while let Some(start) = rest.find("/*") {
        code.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("unterminated comment");
        rest = &rest[start + end + 2..];
    }
    code.push_str(rest);
    let mut names = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("cpd_") {
        let ident: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + ident.len()..];
        if rest.trim_start().starts_with('(') && !names.contains(&ident) {
            names.push(ident);
        }
    }
    names.sort();
    names
}

/// `nm -D --defined-only` symbol names of the library.
fn exported() -> Vec<String> {
    let out = run(Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(library()));
    check("nm -D --defined-only", &out);
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect()
}

#[test]
fn header_declares_exactly_the_exported_functions() {
    let declared = header_functions();
    let mut exported: Vec<String> = exported()
        .into_iter()
        .filter(|s| s.starts_with("cpd_"))
        .collect();
    exported.sort();
    assert_eq!(declared, exported, "header declarations vs .so exports");
    assert_eq!(declared.len(), 8, "{declared:?}");
}

/// Name of every result code; the exhaustive match breaks the build when one is added.
fn result_name(r: cpd_result) -> &'static str {
    use cpd_result::*;
    match r {
        CPD_OK => "CPD_OK",
        CPD_NULL_ARGUMENT => "CPD_NULL_ARGUMENT",
        CPD_INVALID_UTF8 => "CPD_INVALID_UTF8",
        CPD_INVALID_JSON => "CPD_INVALID_JSON",
        CPD_CONFIG_ERROR => "CPD_CONFIG_ERROR",
        CPD_EVENT_ERROR => "CPD_EVENT_ERROR",
        CPD_TIMEOUT => "CPD_TIMEOUT",
        CPD_PANIC => "CPD_PANIC",
        CPD_INSUFFICIENT_SIZE => "CPD_INSUFFICIENT_SIZE",
    }
}

#[test]
fn header_matches_the_rust_signatures_and_compiles_as_c_and_cpp() {
    // The Rust side of each signature the C program below checks (fails to compile on drift).
    let _: extern "C" fn() -> *const c_char = ffi::cpd_version;
    let _: unsafe extern "C" fn(u32, *mut c_char, usize, *mut usize) -> cpd_result =
        ffi::cpd_result_message;
    let _: unsafe extern "C" fn(
        *const u8,
        usize,
        *mut c_char,
        usize,
        *mut *mut cpd_connector,
    ) -> cpd_result = ffi::cpd_connector_new;
    let _: unsafe extern "C" fn(*mut cpd_connector, *const u8, usize, *mut bool) -> cpd_result =
        ffi::cpd_connector_push_json;
    let _: unsafe extern "C" fn(*mut cpd_connector, u32, *mut bool) -> cpd_result =
        ffi::cpd_connector_flush;
    let _: unsafe extern "C" fn(*const cpd_connector) -> u64 = ffi::cpd_connector_outstanding;
    let _: unsafe extern "C" fn(
        *const cpd_connector,
        *mut c_char,
        usize,
        *mut usize,
    ) -> cpd_result = ffi::cpd_connector_last_error;
    let _: unsafe extern "C" fn(*mut cpd_connector) = ffi::cpd_connector_free;

    let all = cpd_result::ALL;
    let mut values = String::new();
    for r in all {
        values.push_str(&format!(
            "STATIC_ASSERT({0} == {1}, \"{0} is {1} in ffi.rs\");\n",
            result_name(r),
            r as i32
        ));
    }
    let check_src = format!(
        r#"#include "centreon_pagerduty.h"
#ifdef __cplusplus
#define STATIC_ASSERT static_assert
#else
#define STATIC_ASSERT _Static_assert
#endif
{values}STATIC_ASSERT(sizeof(cpd_result) == {size}, "cpd_result has the size of the Rust enum");
int main(void) {{
  const char *(*version)(void) = cpd_version;
  cpd_result (*result_message)(unsigned int, char *, size_t, size_t *) = cpd_result_message;
  cpd_result (*connector_new)(const uint8_t *, size_t, char *, size_t, cpd_connector **) =
      cpd_connector_new;
  cpd_result (*push_json)(cpd_connector *, const uint8_t *, size_t, bool *) =
      cpd_connector_push_json;
  cpd_result (*flush)(cpd_connector *, uint32_t, bool *) = cpd_connector_flush;
  uint64_t (*outstanding)(const cpd_connector *) = cpd_connector_outstanding;
  cpd_result (*last_error)(const cpd_connector *, char *, size_t, size_t *) =
      cpd_connector_last_error;
  void (*connector_free)(cpd_connector *) = cpd_connector_free;
  (void)version; (void)result_message; (void)connector_new; (void)push_json;
  (void)flush; (void)outstanding; (void)last_error; (void)connector_free;
  return 0;
}}
"#,
        size = std::mem::size_of::<cpd_result>()
    );
    let dir = scratch("c_abi-header");
    let check_c = dir.join("header_check.c");
    std::fs::write(&check_c, check_src).unwrap();
    let include = format!("-I{}", root().join("include").display());
    let warn = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"];
    for (compiler, lang, std) in [("gcc", "c", "-std=c11"), ("g++", "c++", "-std=c++11")] {
        // the header alone, then the signature check, then the example (C++ only)
        let mut files = vec![root().join(HEADER), check_c.clone()];
        if compiler == "g++" {
            files.push(root().join(EXAMPLE));
        }
        for file in files {
            let out = run(Command::new(compiler)
                .args(["-x", lang, std])
                .args(warn)
                .arg(&include)
                .arg(&file));
            check(&format!("{compiler} -x {lang} {}", file.display()), &out);
        }
    }
}

#[test]
fn library_has_no_liblua_dependency_and_no_lua_symbols() {
    let out = run(Command::new("readelf").arg("-d").arg(library()));
    check("readelf -d", &out);
    let needed: Vec<String> = text(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .map(str::to_string)
        .collect();
    assert!(!needed.is_empty(), "readelf shows NEEDED entries");
    assert!(
        needed.iter().all(|l| !l.contains("liblua")),
        "the .so must not need liblua: {needed:#?}"
    );
    let defined = exported();
    let lua: Vec<&String> = defined.iter().filter(|s| s.starts_with("lua_")).collect();
    assert!(
        lua.is_empty(),
        "the .so must not define Lua API symbols: {lua:?}"
    );
    assert!(
        defined.iter().any(|s| s == "luaopen_centreon_pagerduty"),
        "luaopen_centreon_pagerduty is exported"
    );
}

/// What a C host needs: no strong undefined reference to the Lua API, which only a Lua host
/// provides (else ld refuses to link the program and the loader refuses to load the `.so`).
#[test]
fn library_needs_no_lua_at_load_time() {
    let out = run(Command::new("nm")
        .args(["-D", "--undefined-only"])
        .arg(library()));
    check("nm -D --undefined-only", &out);
    let strong: Vec<String> = text(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            match (f.next(), f.next()) {
                (Some("U"), Some(name)) if name.starts_with("lua") => Some(name.to_string()),
                _ => None,
            }
        })
        .collect();
    assert!(
        strong.is_empty(),
        "the .so refers to {} Lua API function(s) that must be resolved at load time \
         ({}...), so a C host without Lua cannot link or load it; resolve them lazily \
         (dlsym(RTLD_DEFAULT, ...) on first use, as lua_newuserdata already is) in src/lua/sys.rs",
        strong.len(),
        strong
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
}

#[test]
fn result_message_accepts_any_number() {
    use centreon_pagerduty::ffi::cpd_result_message;
    let mut buf = [0 as std::ffi::c_char; 64];
    let mut n = 0usize;
    // SAFETY: a valid buffer and length.
    let r = unsafe { cpd_result_message(4, buf.as_mut_ptr(), buf.len(), &mut n) };
    assert_eq!(r as u32, 0);
    // SAFETY: NUL-terminated by cpd_result_message.
    let text = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap();
    assert_eq!(text, "the configuration is invalid");
    // SAFETY: as above.
    unsafe { cpd_result_message(12345, buf.as_mut_ptr(), buf.len(), &mut n) };
    let text = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap();
    assert_eq!(text, "unknown result code");
}

/// The library carries its SONAME (libcentreon_pagerduty.so.<major>), so a program linked with
/// `-lcentreon_pagerduty` needs that name (the link ldconfig and the packages make), not the
/// unversioned development link.
#[test]
fn library_has_a_soname_that_linked_programs_record() {
    let dynamic = |f: &Path| {
        let out = run(Command::new("readelf").arg("-d").arg(f));
        check("readelf -d", &out);
        text(&out.stdout)
    };
    let lib = dynamic(library());
    assert!(
        lib.contains(&format!("(SONAME)             Library soname: [{SONAME}]")),
        "{lib}"
    );
    let program = dynamic(example());
    assert!(
        program.contains(&format!("Shared library: [{SONAME}]")),
        "{program}"
    );
}
