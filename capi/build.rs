//! Build script of the C library: the soname of the library it replaces, the C shim
//! of its variadic functions, and the exports a cdylib would otherwise hide.
//!
//! - `-soname libvdestack.so.0`: programs linked with it ask the loader for that
//!   name, as they do for the reference library;
//! - `shim.c` defines `ioctl` with its C prototype (`int ioctl(int, unsigned long,
//!   ...)`); Rust cannot define a variadic function;
//! - `exports.map` exports `ioctl`: rustc's own version script makes every symbol
//!   that is not a Rust `#[no_mangle]` item local, and the linker merges the two.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-changed=exports.map");
    cc::Build::new()
        .file("shim.c")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("vdestack_shim");
    let dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvdestack.so.0");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        dir.join("exports.map").display()
    );
}
