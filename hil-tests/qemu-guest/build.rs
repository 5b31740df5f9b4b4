//! With the `pcsc` feature: where libpcsclite.so is (POS_PCSC_LIB_DIR), since the rig
//! unpacks Debian's libpcsclite-dev instead of installing it.

fn main() {
    println!("cargo:rerun-if-env-changed=POS_PCSC_LIB_DIR");
    if std::env::var_os("CARGO_FEATURE_PCSC").is_some() {
        if let Some(dir) = std::env::var_os("POS_PCSC_LIB_DIR") {
            println!("cargo:rustc-link-search=native={}", dir.to_string_lossy());
        }
    }
}
