//! fd numbers whose close() just failed. Linux (like FreeBSD and macOS) releases the fd even when
//! close reports an error, so closing the same number again is a bug: it gets EBADF at best, and at
//! worst closes an fd another thread has just been given. The shim logs the EBADF case as a warning.

use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::Relaxed;
use libc::c_int;

/// What the warning says.
pub const RETRIED: &str = "close retried after a close that failed; the fd was already released";

const WORDS: usize = crate::fdtable::MAX_FDS / 64;
static FAILED: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];

fn bit(fd: c_int) -> Option<(&'static AtomicU64, u64)> {
    let fd = usize::try_from(fd).ok()?;
    Some((FAILED.get(fd / 64)?, 1 << (fd % 64)))
}

/// close(fd) failed but released the fd.
pub fn mark(fd: c_int) {
    if let Some((word, b)) = bit(fd) {
        word.fetch_or(b, Relaxed);
    }
}

/// Whether the last close of `fd` failed; forgets it either way.
pub fn take(fd: c_int) -> bool {
    bit(fd).is_some_and(|(word, b)| word.fetch_and(!b, Relaxed) & b != 0)
}
