//! The control page file, mapped: created by a run in its directory, opened by `chaos-ctl control`
//! and the HTTP endpoint. The layout and its accessors are the engine's (`chaos_engine::page`).

use crate::failure::Failure;
use chaos_engine::page::{Page, SIZE};
use std::os::fd::AsRawFd;
use std::path::Path;

/// The file's name in a run directory.
pub const FILE: &str = "control";

/// A control page mapped shared and writable, unmapped on drop.
pub struct Mapped {
    ptr: *mut libc::c_void,
}

// SAFETY: the mapping is only accessed through atomics (`Page`), which are Sync.
unsafe impl Send for Mapped {}
// SAFETY: as above.
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Creates (or replaces) the page at `path`, sized and initialised, readable and writable by
    /// its owner only: whoever can write it can switch rules and cut traffic. A system whose
    /// processes run as another `user` shares it with them (`crate::system`, `share_with_users`).
    pub fn create(
        path: &Path,
        names: &[&str],
        rules: &[&str],
        enabled: u64,
        log: &Path,
    ) -> Result<Mapped, Failure> {
        let fail = |e: std::io::Error| {
            Failure::own(format!(
                "cannot create the control page {}: {e}",
                path.display()
            ))
        };
        let _ = std::fs::remove_file(path);
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(fail)?;
        file.set_len(SIZE as u64).map_err(fail)?;
        let mapped = Mapped::map(&file, path)?;
        mapped
            .page()
            .init(names, rules, enabled, &log.display().to_string());
        Ok(mapped)
    }

    /// Maps an existing page.
    pub fn open(path: &Path) -> Result<Mapped, Failure> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| {
                Failure::own(format!(
                    "cannot open the control page {}: {e} (is the run still going?)",
                    path.display()
                ))
            })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < SIZE as u64 {
            return Err(Failure::own(format!(
                "{} is not a chaos control page ({len} bytes, expected {SIZE})",
                path.display()
            )));
        }
        let mapped = Mapped::map(&file, path)?;
        mapped
            .page()
            .checked()
            .map_err(|e| Failure::own(format!("{}: {e}", path.display())))?;
        Ok(mapped)
    }

    fn map(file: &std::fs::File, path: &Path) -> Result<Mapped, Failure> {
        // SAFETY: a fresh shared mapping of SIZE bytes of a file at least that long; no other
        // memory is touched.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Failure::own(format!(
                "cannot map the control page {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            )));
        }
        Ok(Mapped { ptr })
    }

    pub fn page(&self) -> Page<'_> {
        // SAFETY: the mapping is SIZE bytes, page-aligned, lives as long as `self`, and is only
        // accessed atomically.
        unsafe { Page::from_mapping(self.ptr as *const u8) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; nothing borrows it past `self`.
        unsafe { libc::munmap(self.ptr, SIZE) };
    }
}

/// CLOCK_MONOTONIC now, the clock the shims compare cut times with.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
