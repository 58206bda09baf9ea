//! Linux's writeback-error reporting (`errseq_t`, since 4.13; `docs/kernel-facts.md` F4): an
//! error that fsync reports is reported once to every open file description that was open on the
//! file when it happened, then never again. When a rule fails an fsync with EIO or ENOSPC, the
//! other descriptions open on that file in this process are marked, and their next fsync or
//! fdatasync reports the same error once. dup'ed fds share their description (`kcmp`), so they
//! are not told twice.

use crate::fdtable::{self, MAX_FDS, Meta};
use crate::sys::{self, syscall};
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
use libc::c_int;

/// Set once any error was spread: until then the sync hooks check nothing.
static ANY: AtomicBool = AtomicBool::new(false);

/// Whether `a` and `b` are the same open file description.
fn same_description(a: c_int, b: c_int) -> bool {
    const KCMP_FILE: usize = 0;
    let pid = sys::getpid() as usize;
    // SAFETY: kcmp compares two of our own fds; it reads and writes no memory.
    unsafe { syscall!(libc::SYS_kcmp, pid, pid, KCMP_FILE, a as usize, b as usize) == 0 }
}

/// An fsync of `fd` failed with `errno` (a rule's): every other description open on its file now
/// has that error to report.
pub fn failed(fd: c_int, errno: c_int) {
    if !matches!(errno, libc::EIO | libc::ENOSPC | libc::EDQUOT) {
        return;
    }
    let Some(st) = sys::fstat(fd) else { return };
    for other in 0..MAX_FDS as c_int {
        if other == fd {
            continue;
        }
        let Some(slot) = fdtable::slot(other) else {
            break;
        };
        if !Meta(slot.meta.load(Relaxed)).valid() || slot.ino.load(Relaxed) != st.st_ino {
            continue;
        }
        if sys::fstat(other).is_some_and(|o| o.st_ino == st.st_ino && o.st_dev == st.st_dev)
            && !same_description(fd, other)
        {
            slot.wb_err.store(errno as u32, Relaxed);
            ANY.store(true, Relaxed);
        }
    }
}

/// The error `fd`'s next fsync must report, taken (reported once).
#[inline(always)]
pub fn take(fd: c_int) -> Option<c_int> {
    if !ANY.load(Relaxed) {
        return None;
    }
    let e = fdtable::slot(fd)?.wb_err.swap(0, Relaxed);
    (e != 0).then_some(e as c_int)
}
