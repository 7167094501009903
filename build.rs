//! Link options for the shared library loaded by Centreon Broker and linked by C programs.

fn main() {
    // Never unmap the library on dlclose(): Broker closes and reopens Lua states on every
    // reload; the connector joins its threads before that, and this is the safety net.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    // The C library's SONAME, libcentreon_pagerduty.so.<major>: what a program linked with
    // -lcentreon_pagerduty records and ldconfig links (`make install` names the file
    // .so.<version>). Lua's require opens the same file by path, under any name.
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcentreon_pagerduty.so.{major}");
    // Only this file decides the options (without this line, any file of the package changed,
    // a doc or a test, would rebuild the library).
    println!("cargo:rerun-if-changed=build.rs");
}
