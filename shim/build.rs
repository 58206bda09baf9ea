//! Says whether the shim is built with frame pointers (`.cargo/config.toml` asks for them; a
//! RUSTFLAGS of one's own replaces that): explore's census walks the shim's frames only then, and
//! otherwise names points by their decision key, as it does for interpreters.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(frame_pointers)");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags
        .split('\x1f')
        .any(|f| f.ends_with("force-frame-pointers=yes") || f.ends_with("force-frame-pointers"))
    {
        println!("cargo::rustc-cfg=frame_pointers");
    }
}
