//! Link options for the shared library loaded by Centreon Broker.

fn main() {
    // Never unmap the library on dlclose(): Broker closes and reopens Lua states on every
    // reload; the connector joins its threads before that, and this is the safety net.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    // Only this file decides the options (without this line, any file of the package changed,
    // a doc or a test, would rebuild the library).
    println!("cargo:rerun-if-changed=build.rs");
}
