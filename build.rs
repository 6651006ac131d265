//! Build script: generates the FFI declarations for libvdeplug and links it.
//!
//! - bindgen reads `vendor/vdeplug.h` (which includes the system `<libvdeplug.h>`) and
//!   writes `$OUT_DIR/vdeplug_sys.rs`, limited to the items the crate uses;
//! - the crate links `libvdeplug` (no pkg-config file exists for it).

use std::env;
use std::path::PathBuf;

/// Debian packages that provide what this script needs.
const PACKAGES_HINT: &str =
    "install the Debian packages `libvdeplug-dev` (the libvdeplug header and \
     library) and `libclang-dev` (libclang, used by bindgen): \
     apt-get install libvdeplug-dev libclang-dev";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=vendor");
    println!("cargo:rerun-if-env-changed=LIBCLANG_PATH");
    println!("cargo:rerun-if-env-changed=BINDGEN_EXTRA_CLANG_ARGS");

    generate_bindings();

    println!("cargo:rustc-link-lib=vdeplug");
}

fn generate_bindings() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let out_file = out_dir.join("vdeplug_sys.rs");

    let builder = bindgen::Builder::default()
        .header("vendor/vdeplug.h")
        .allowlist_function("vde_open_real")
        .allowlist_function("vde_recv")
        .allowlist_function("vde_send")
        .allowlist_function("vde_datafd")
        .allowlist_function("vde_ctlfd")
        .allowlist_function("vde_close")
        .allowlist_function("vdestream_open")
        .allowlist_function("vdestream_send")
        .allowlist_function("vdestream_recv")
        .allowlist_function("vdestream_close")
        .allowlist_type("vde_open_args")
        .allowlist_type("VDECONN")
        .allowlist_type("VDESTREAM")
        .allowlist_var("LIBVDEPLUG_INTERFACE_VERSION")
        .allowlist_var("VDE_MAXMTU")
        .allowlist_var("VDE_ETHBUFSIZE")
        .allowlist_var("PACKET_LENGTH_ERROR");

    // bindgen panics (instead of returning an error) when it cannot load libclang:
    // catch that to say which package is missing, without the default panic report.
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    // AssertUnwindSafe: the builder is consumed by the closure; nothing it touched is
    // looked at after a panic.
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || builder.generate()));
    std::panic::set_hook(previous_hook);

    let bindings = match outcome {
        Ok(Ok(bindings)) => bindings,
        Ok(Err(err)) => fail(&format!(
            "bindgen could not process vendor/vdeplug.h ({}); is <libvdeplug.h> installed?",
            err.to_string().trim_end()
        )),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown error");
            fail(&format!("bindgen failed ({what}); is libclang installed?"))
        }
    };

    if let Err(err) = bindings.write_to_file(&out_file) {
        fail(&format!("cannot write {}: {err}", out_file.display()));
    }
}

fn fail(what: &str) -> ! {
    eprintln!("error: {what}");
    eprintln!("hint: {PACKAGES_HINT}");
    std::process::exit(1);
}
