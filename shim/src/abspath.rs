//! The path a call names, made absolute the way the kernel resolves it (against the working
//! directory, or `openat`'s directory fd), on the stack: the base is read here, the joining is the
//! engine's (`chaos_engine::path`), shared with the seccomp backend.

use crate::sys;
use libc::{c_char, c_int};

use chaos_engine::path::MAX;

pub struct AbsPath {
    buf: [u8; MAX],
    len: usize,
}

impl AbsPath {
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The bytes of a C string argument (None for null).
pub fn c_bytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the caller passed a NUL-terminated path, as every call taking one requires.
    Some(unsafe { core::ffi::CStr::from_ptr(p) }.to_bytes())
}

/// `path` as an absolute path, relative ones joined to `dirfd`'s directory (`AT_FDCWD`: the working
/// directory) by the engine's rule (`chaos_engine::path`), which the seccomp backend follows too.
/// None for a null path; a path whose base cannot be read (a closed dirfd: the call will fail
/// with EBADF anyway) or that would not fit is kept as given.
pub fn absolute(dirfd: c_int, path: *const c_char) -> Option<AbsPath> {
    let given = c_bytes(path)?;
    let mut out = AbsPath {
        buf: [0; MAX],
        len: 0,
    };
    let base = if given.starts_with(b"/") {
        None
    } else if dirfd == libc::AT_FDCWD {
        sys::getcwd(&mut out.buf)
    } else {
        sys::fd_path(dirfd, &mut out.buf)
    };
    out.len = chaos_engine::path::absolute_into(&mut out.buf, base, given);
    Some(out)
}
