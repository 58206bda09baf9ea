//! Calls on an open file that move no data (fsync and its kin, ftruncate, fallocate), `dup`, and
//! the in-kernel copies (sendfile, splice, copy_file_range), which count as writes on the fd they
//! write to: a short sendfile to a socket is a short write there.

use super::conn::{run_simple, simple_call};
use super::disk_io;
use super::new_fd;
use super::transfer::transfer;
use crate::durable;
use crate::plan::{Call, Payload};
use crate::real;
use crate::runtime;
use crate::sys;
use chaos_engine::op::Op;
use libc::{c_int, c_uint, loff_t, off_t, size_t, ssize_t};

/// The fd calls that return 0 or -1 with errno, one entry each: `name(fd, args) => Op;`.
macro_rules! fd_hooks {
    ($( $name:ident($fd:ident: c_int $(, $arg:ident: $ty:ty)*) => $op:ident; )*) => {
        $(
            #[cfg_attr(not(test), unsafe(no_mangle))]
            pub unsafe extern "C" fn $name($fd: c_int $(, $arg: $ty)*) -> c_int {
                let Some(rt) = runtime::get() else {
                    // SAFETY: the program's own call, passed on as it made it.
                    return unsafe { real::$name($fd $(, $arg)*) };
                };
                // SAFETY: the program's own call, passed on as it made it.
                run_simple(rt, simple_call(Op::$op, $fd), || unsafe {
                    real::$name($fd $(, $arg)*)
                })
            }
        )*
    };
}

fd_hooks! {
    sync_file_range(fd: c_int, off: off_t, n: off_t, flags: c_uint) => SyncFileRange;
}

/// fsync, fdatasync and syncfs: under `[durability]`, what they made durable (or, failing, lost)
/// is journaled after them.
macro_rules! sync_hooks {
    ($( $name:ident => $op:ident, $after:expr; )*) => {
        $(
            #[cfg_attr(not(test), unsafe(no_mangle))]
            pub unsafe extern "C" fn $name(fd: c_int) -> c_int {
                let Some(rt) = runtime::get() else {
                    // SAFETY: the program's own call, passed on as it made it.
                    return unsafe { real::$name(fd) };
                };
                let r = match crate::writeback::take(fd) {
                    // An error another fd's fsync met is this description's to report, once.
                    Some(errno) => {
                        crate::guard::guarded(|| {
                            crate::log::write_writeback(Op::$op.name(), fd, errno)
                        });
                        sys::set_errno(errno);
                        -1
                    }
                    // SAFETY: the program's own call, passed on as it made it.
                    None => run_simple(rt, simple_call(Op::$op, fd), || unsafe { real::$name(fd) }),
                };
                if durable::active() && runtime::in_own_process() {
                    let e = sys::errno();
                    crate::guard::guarded(|| $after(fd, r == 0));
                    sys::set_errno(e);
                }
                r
            }
        )*
    };
}

sync_hooks! {
    fsync => Fsync, durable::after_sync;
    fdatasync => Fdatasync, durable::after_sync;
    syncfs => Syncfs, |_, ok: bool| if ok { durable::after_syncfs() };
}

use chaos_engine::disk::allocates;

/// ftruncate and fallocate, one entry each: `name(fd, args) => Op, what it allocates;`.
macro_rules! space_hooks {
    ($( $name:ident($fd:ident: c_int $(, $arg:ident: $ty:ty)*) => $op:ident, $need:expr, $to:expr; )*) => {
        $(
            #[cfg_attr(not(test), unsafe(no_mangle))]
            pub unsafe extern "C" fn $name($fd: c_int $(, $arg: $ty)*) -> c_int {
                let Some(rt) = runtime::get() else {
                    // SAFETY: the program's own call, passed on as it made it.
                    return unsafe { real::$name($fd $(, $arg)*) };
                };
                disk_io::resize(Op::$op.name(), $fd, $need, $to, || {
                    run_simple(rt, simple_call(Op::$op, $fd), || {
                        // SAFETY: the program's own call, passed on as it made it.
                        unsafe { real::$name($fd $(, $arg)*) }
                    })
                })
            }
        )*
    };
}

space_hooks! {
    ftruncate(fd: c_int, len: off_t) => Ftruncate, None, Some(len.max(0) as u64);
    ftruncate64(fd: c_int, len: off_t) => Ftruncate, None, Some(len.max(0) as u64);
    fallocate(fd: c_int, mode: c_int, off: off_t, len: off_t)
        => Fallocate, allocates(mode, off, len), None;
    fallocate64(fd: c_int, mode: c_int, off: off_t, len: off_t)
        => Fallocate, allocates(mode, off, len), None;
}

/// posix_fallocate reports its error as the return value and leaves errno alone (posix_fallocate(3)).
fn posix_fallocate_with_rules(
    fd: c_int,
    off: off_t,
    len: off_t,
    real: impl FnOnce() -> c_int,
) -> c_int {
    let Some(rt) = runtime::get() else {
        return real();
    };
    let saved = sys::errno();
    let need = allocates(0, off, len);
    let r = disk_io::resize(Op::PosixFallocate.name(), fd, need, None, || {
        run_simple(rt, simple_call(Op::PosixFallocate, fd), || match real() {
            0 => 0,
            e => {
                sys::set_errno(e);
                -1
            }
        })
    });
    let out = if r == 0 { 0 } else { sys::errno() };
    sys::set_errno(saved);
    out
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn posix_fallocate(fd: c_int, off: off_t, len: off_t) -> c_int {
    // SAFETY: the program's own call, passed on as it made it.
    posix_fallocate_with_rules(fd, off, len, || unsafe {
        real::posix_fallocate(fd, off, len)
    })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn posix_fallocate64(fd: c_int, off: off_t, len: off_t) -> c_int {
    // SAFETY: the program's own call, passed on as it made it.
    posix_fallocate_with_rules(fd, off, len, || unsafe {
        real::posix_fallocate64(fd, off, len)
    })
}

/// `dup` (not dup2/dup3, which name the new number: out of fds, they report EBADF, not EMFILE).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    let r = match runtime::get() {
        // SAFETY: the program's own call, passed on as it made it.
        None => unsafe { real::dup(fd) },
        // SAFETY: the program's own call, passed on as it made it.
        Some(rt) => run_simple(rt, simple_call(Op::Dup, fd), || unsafe { real::dup(fd) }),
    };
    if r >= 0 {
        new_fd(r, None);
    }
    r
}

/// An in-kernel copy of `n` bytes to `fd_out`, as a write there: `real(limit)` makes it moving at
/// most `limit` bytes.
fn copy(op: Op, fd_out: c_int, n: size_t, real: impl Fn(usize) -> isize) -> isize {
    let describe = || Call {
        requested: n,
        payload: Payload::None,
        ..simple_call(op, fd_out)
    };
    transfer(op, fd_out, describe, || real(n), &real)
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn sendfile(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t {
    // SAFETY: the program's own call, copying at most `lim` of what it asked for.
    copy(Op::Sendfile, out, n, |lim| unsafe {
        real::sendfile(out, inp, off, lim)
    })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn sendfile64(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t {
    // SAFETY: the program's own call, copying at most `lim` of what it asked for.
    copy(Op::Sendfile, out, n, |lim| unsafe {
        real::sendfile64(out, inp, off, lim)
    })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn splice(
    fd_in: c_int,
    off_in: *mut loff_t,
    fd_out: c_int,
    off_out: *mut loff_t,
    n: size_t,
    flags: c_uint,
) -> ssize_t {
    // SAFETY: the program's own call, moving at most `lim` of what it asked for.
    copy(Op::Splice, fd_out, n, |lim| unsafe {
        real::splice(fd_in, off_in, fd_out, off_out, lim, flags)
    })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn copy_file_range(
    fd_in: c_int,
    off_in: *mut loff_t,
    fd_out: c_int,
    off_out: *mut loff_t,
    n: size_t,
    flags: c_uint,
) -> ssize_t {
    // SAFETY: the program's own call, copying at most `lim` of what it asked for.
    copy(Op::CopyFileRange, fd_out, n, |lim| unsafe {
        real::copy_file_range(fd_in, off_in, fd_out, off_out, lim, flags)
    })
}

/// sync(2): every filesystem's data and metadata are durable after it, so under `[durability]` it
/// journals what a syncfs does. It takes nothing and cannot fail, so it is made as the raw call.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn sync() {
    // SAFETY: sync takes no arguments and touches no memory.
    unsafe { sys::syscall!(libc::SYS_sync) };
    if durable::active() && runtime::get().is_some() && runtime::in_own_process() {
        let e = sys::errno();
        crate::guard::guarded(durable::after_syncfs);
        sys::set_errno(e);
    }
}
