//! The path a call names, made absolute the way the kernel resolves it (against the working
//! directory, or `openat`'s directory fd), on the stack: `path` globs match what the program meant,
//! whichever directory it was in. Symlinks and `..` are left as written (resolving them would take
//! system calls per component; the glob sees the name the program gave).

use crate::sys;
use libc::{c_char, c_int};

/// PATH_MAX: the longest path the kernel accepts.
const MAX: usize = 4096;

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
/// directory) with leading `./` dropped. None for a null path; a path whose base cannot be read
/// (a closed dirfd: the call will fail with EBADF anyway) or that would not fit is kept as given.
pub fn absolute(dirfd: c_int, path: *const c_char) -> Option<AbsPath> {
    let given = c_bytes(path)?;
    let mut out = AbsPath {
        buf: [0; MAX],
        len: 0,
    };
    let mut rel = given;
    if !given.starts_with(b"/") {
        let base = if dirfd == libc::AT_FDCWD {
            sys::getcwd(&mut out.buf)
        } else {
            sys::fd_path(dirfd, &mut out.buf)
        };
        match base {
            Some(n) if n < MAX => out.len = n,
            _ => out.len = 0,
        }
        while let Some(rest) = rel.strip_prefix(b"./") {
            rel = rest;
        }
        if rel == b"." {
            rel = b"";
        }
        if out.len > 0 && out.buf[out.len - 1] != b'/' && !rel.is_empty() && out.len < MAX {
            out.buf[out.len] = b'/';
            out.len += 1;
        }
        if out.len == 0 {
            rel = given;
        }
    }
    if out.len + rel.len() > MAX {
        out.len = 0;
        rel = &given[..given.len().min(MAX)];
    }
    out.buf[out.len..out.len + rel.len()].copy_from_slice(rel);
    out.len += rel.len();
    Some(out)
}
