//! Finding libchaos_shim.so: $CHAOS_SHIM, then next to this executable, then the install prefix.

use crate::failure::Failure;
use std::path::PathBuf;

pub const SHIM_FILE: &str = "libchaos_shim.so";

pub fn find_shim() -> Result<PathBuf, Failure> {
    // An explicit override wins, and a wrong one is an error rather than a silent fallback.
    if let Some(path) = std::env::var_os("CHAOS_SHIM").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(absolute(path))
        } else {
            Err(Failure::own(format!(
                "CHAOS_SHIM={} does not exist; point it at {SHIM_FILE} or unset it",
                path.display()
            )))
        };
    }
    let exe =
        std::env::current_exe().map_err(|e| Failure::own(format!("cannot locate myself: {e}")))?;
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let candidates = [dir.join(SHIM_FILE), dir.join("../lib").join(SHIM_FILE)];
    candidates
        .iter()
        .find(|p| p.is_file())
        .map(|p| absolute(p.clone()))
        .ok_or_else(|| {
            Failure::own(format!(
                "cannot find the shim {SHIM_FILE}: looked in {} and {}; build it with \
                 `cargo build --release` or set CHAOS_SHIM",
                candidates[0].display(),
                candidates[1].display()
            ))
        })
}

fn absolute(p: PathBuf) -> PathBuf {
    std::fs::canonicalize(&p).unwrap_or(p)
}
