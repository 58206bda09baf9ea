//! read/write/recv/send and their vector, message and FORTIFY forms: one `data_hooks!` entry each.

use super::transfer::transfer;
use crate::plan::{Call, Payload};
use crate::real;
use chaos_engine::op::Op;
use libc::{
    c_int, c_uint, c_void, iovec, mmsghdr, msghdr, off_t, size_t, sockaddr, socklen_t, ssize_t,
};

/// Most iovecs we copy to shorten a vectored call; a cut further out is not shortened.
const IOV_STACK: usize = 64;

fn iov_total(iov: *const iovec, cnt: c_int) -> usize {
    if iov.is_null() || cnt <= 0 {
        return 0;
    }
    // SAFETY: the program's non-null array of `cnt` iovecs, which the real call reads too.
    let v = unsafe { core::slice::from_raw_parts(iov, cnt as usize) };
    v.iter()
        .fold(0usize, |acc, e| acc.saturating_add(e.iov_len))
}

/// Calls `f` with an iovec array covering at most `limit` bytes of `iov` (a stack copy cut short
/// when needed).
fn with_limited_iov<R>(
    iov: *const iovec,
    cnt: c_int,
    limit: usize,
    f: impl FnOnce(*const iovec, c_int) -> R,
) -> R {
    if limit >= iov_total(iov, cnt) {
        return f(iov, cnt);
    }
    // SAFETY: limit < the total, so the array is non-null with cnt > 0 (see `iov_total`).
    let v = unsafe { core::slice::from_raw_parts(iov, cnt as usize) };
    let mut copy = [iovec {
        iov_base: core::ptr::null_mut(),
        iov_len: 0,
    }; IOV_STACK];
    let mut left = limit;
    for (i, e) in v.iter().enumerate() {
        if i == IOV_STACK {
            return f(iov, cnt);
        }
        copy[i] = *e;
        if e.iov_len >= left {
            copy[i].iov_len = left;
            return f(copy.as_ptr(), i as c_int + 1);
        }
        left -= e.iov_len;
    }
    f(iov, cnt)
}

fn call_to(
    op: Op,
    fd: c_int,
    requested: usize,
    msg_flags: c_int,
    (dest, dest_len): (*const sockaddr, socklen_t),
    payload: Payload,
) -> Call {
    Call {
        op,
        fd,
        requested,
        msg_flags,
        dest,
        dest_len,
        payload,
    }
}

/// No destination address (send, write).
const NO_DEST: (*const sockaddr, socklen_t) = (core::ptr::null(), 0);

fn msg_dest(msg: *const msghdr) -> (*const sockaddr, socklen_t) {
    if msg.is_null() {
        return (core::ptr::null(), 0);
    }
    // SAFETY: the program's non-null header, which the real call reads too.
    let m = unsafe { &*msg };
    (m.msg_name as *const sockaddr, m.msg_namelen)
}

fn msg_total(msg: *const msghdr) -> usize {
    if msg.is_null() {
        return 0;
    }
    // SAFETY: as in `msg_dest`.
    let m = unsafe { &*msg };
    iov_total(m.msg_iov, m.msg_iovlen as c_int)
}

/// Runs `f` with `msg` itself when its iovecs cover at most `limit` bytes, else with a copy whose
/// iovecs are cut to `limit` (`with_limited_msg`).
#[inline(always)]
fn limit_msg<R>(msg: *const msghdr, limit: usize, f: impl FnOnce(*mut msghdr) -> R) -> R {
    if limit >= msg_total(msg) {
        f(msg as *mut msghdr)
    } else {
        with_limited_msg(msg, limit, f)
    }
}

/// Runs `f` with a copy of `msg` whose iovecs cover at most `limit` bytes.
fn with_limited_msg<R>(msg: *const msghdr, limit: usize, f: impl FnOnce(*mut msghdr) -> R) -> R {
    // SAFETY: called with limit < the total only, so `msg` is non-null (see `msg_total`): the
    // program's header, which the real call reads too.
    let mut copy = unsafe { *msg };
    with_limited_iov(copy.msg_iov, copy.msg_iovlen as c_int, limit, |v, c| {
        copy.msg_iov = v as *mut iovec;
        copy.msg_iovlen = c as _;
        let r = f(&mut copy);
        // recvmsg reports back through the header: hand those fields to the caller's header.
        // SAFETY: the program's non-null header, as above.
        unsafe {
            (*(msg as *mut msghdr)).msg_namelen = copy.msg_namelen;
            (*(msg as *mut msghdr)).msg_controllen = copy.msg_controllen;
            (*(msg as *mut msghdr)).msg_flags = copy.msg_flags;
        }
        r
    })
}

/// The exported data hooks, one entry each:
///
/// ```text
/// [fortify(__name_chk)] name(fd: c_int, args...) -> ret => Op(requested, msg_flags[, dest]), |lim| limited;
/// ```
///
/// Each is `transfer(Op, fd, describe, direct, real)`: `describe` builds the `Call` from
/// `requested`, `msg_flags` and `dest` (a `(*const sockaddr, socklen_t)`; none when not given),
/// `direct` is `real::name` with the hook's own arguments, and `real` is `limited`: the real call
/// moving at most `lim` bytes (messages, for the mmsg forms). The closures stay closures: `describe`
/// is only called inside `transfer`'s out-of-line slow path.
///
/// `fortify(__name_chk)` also generates glibc's FORTIFY variant (the hook's first arguments must be
/// `fd`, a buffer and `n: size_t`; `buflen: size_t` follows `n`): with `n > buflen` it is the real
/// `__name_chk`, so that glibc reports the overflow exactly as it would without us; otherwise it is
/// the same transfer as the plain hook.
macro_rules! data_hooks {
    () => {};
    (
        fortify($chk:ident) $name:ident(
            $fd:ident: c_int, $buf:ident: $bt:ty, $n:ident: size_t $(, $arg:ident: $ty:ty)*
        ) -> $ret:ty => $op:ident($($describe:tt)*), |$lim:ident| $limited:expr;
        $($rest:tt)*
    ) => {
        #[cfg_attr(not(test), unsafe(no_mangle))]
        pub unsafe extern "C" fn $name($fd: c_int, $buf: $bt, $n: size_t $(, $arg: $ty)*) -> $ret {
            data_hooks!(@transfer $name $ret, $fd, ($buf, $n $(, $arg)*),
                $op($($describe)*), |$lim| $limited)
        }

        #[cfg_attr(not(test), unsafe(no_mangle))]
        pub unsafe extern "C" fn $chk(
            $fd: c_int, $buf: $bt, $n: size_t, buflen: size_t $(, $arg: $ty)*
        ) -> $ret {
            if $n > buflen {
                // SAFETY: the program's own call, passed on as it made it: glibc reports the
                // buffer overflow exactly as it would without us.
                return unsafe { real::$chk($fd, $buf, $n, buflen $(, $arg)*) };
            }
            data_hooks!(@transfer $name $ret, $fd, ($buf, $n $(, $arg)*),
                $op($($describe)*), |$lim| $limited)
        }

        data_hooks!($($rest)*);
    };
    (
        $name:ident($fd:ident: c_int $(, $arg:ident: $ty:ty)*) -> $ret:ty
            => $op:ident($($describe:tt)*), |$lim:ident| $limited:expr;
        $($rest:tt)*
    ) => {
        #[cfg_attr(not(test), unsafe(no_mangle))]
        pub unsafe extern "C" fn $name($fd: c_int $(, $arg: $ty)*) -> $ret {
            data_hooks!(@transfer $name $ret, $fd, ($($arg),*), $op($($describe)*), |$lim| $limited)
        }

        data_hooks!($($rest)*);
    };
    (@transfer $name:ident $ret:ty, $fd:ident, ($($arg:ident),*),
        $op:ident($requested:expr, $flags:expr $(, $dest:expr)? $(; $payload:expr)?),
        |$lim:ident| $limited:expr
    ) => {
        transfer(
            Op::$op,
            $fd,
            move || call_to(
                Op::$op,
                $fd,
                $requested,
                $flags,
                data_hooks!(@dest $($dest)?),
                data_hooks!(@payload $($payload)?),
            ),
            // SAFETY: the program's own call, passed on as it made it.
            move || unsafe { real::$name($fd $(, $arg)*) } as isize,
            // SAFETY: the program's own call, moving at most `lim` of what it asked for (a shorter
            // length, or a prefix of its iovecs or messages).
            move |$lim: usize| unsafe { $limited } as isize,
        ) as $ret
    };
    (@dest $dest:expr) => {
        $dest
    };
    (@dest) => {
        (core::ptr::null(), 0)
    };
    (@payload $payload:expr) => {
        $payload
    };
    (@payload) => {
        Payload::None
    };
}

data_hooks! {
    fortify(__read_chk) read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t
        => Read(n, 0), |lim| real::read(fd, buf, lim);
    readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t
        => Readv(iov_total(iov, cnt), 0),
        |lim| with_limited_iov(iov, cnt, lim, |v, c| real::readv(fd, v, c));
    write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t
        => Write(n, 0, NO_DEST; Payload::Buf(buf as *const u8)), |lim| real::write(fd, buf, lim);
    writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t
        => Writev(iov_total(iov, cnt), 0),
        |lim| with_limited_iov(iov, cnt, lim, |v, c| real::writev(fd, v, c));
    fortify(__recv_chk) recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t
        => Recv(n, flags), |lim| real::recv(fd, buf, lim, flags);
    fortify(__recvfrom_chk) recvfrom(
        fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t
    ) -> ssize_t
        => Recvfrom(n, flags), |lim| real::recvfrom(fd, buf, lim, flags, addr, len);
    recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t
        => Recvmsg(msg_total(msg), flags),
        |lim| limit_msg(msg, lim, |m| real::recvmsg(fd, m, flags));
    recvmmsg(
        fd: c_int, msgs: *mut mmsghdr, vlen: c_uint, flags: c_int, timeout: *mut libc::timespec
    ) -> c_int
        => Recvmmsg(vlen as usize, flags),
        |lim| real::recvmmsg(fd, msgs, lim as c_uint, flags, timeout);
    send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t
        => Send(n, flags, NO_DEST; Payload::Buf(buf as *const u8)),
        |lim| real::send(fd, buf, lim, flags);
    sendto(
        fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t
    ) -> ssize_t
        => Sendto(n, flags, (addr, len); Payload::Buf(buf as *const u8)),
        |lim| real::sendto(fd, buf, lim, flags, addr, len);
    sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t
        => Sendmsg(msg_total(msg), flags, msg_dest(msg); Payload::Msg(msg)),
        |lim| limit_msg(msg, lim, |m| real::sendmsg(fd, m, flags));
    sendmmsg(fd: c_int, msgs: *mut mmsghdr, vlen: c_uint, flags: c_int) -> c_int
        => Sendmmsg(vlen as usize, flags), |lim| real::sendmmsg(fd, msgs, lim as c_uint, flags);
    pread(fd: c_int, buf: *mut c_void, n: size_t, off: off_t) -> ssize_t
        => Pread(n, 0), |lim| real::pread(fd, buf, lim, off);
    pread64(fd: c_int, buf: *mut c_void, n: size_t, off: off_t) -> ssize_t
        => Pread(n, 0), |lim| real::pread64(fd, buf, lim, off);
    pwrite(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t
        => Pwrite(n, 0, NO_DEST; Payload::At(off as u64)), |lim| real::pwrite(fd, buf, lim, off);
    pwrite64(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t
        => Pwrite(n, 0, NO_DEST; Payload::At(off as u64)), |lim| real::pwrite64(fd, buf, lim, off);
    preadv(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t) -> ssize_t
        => Preadv(iov_total(iov, cnt), 0),
        |lim| with_limited_iov(iov, cnt, lim, |v, c| real::preadv(fd, v, c, off));
    preadv64(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t) -> ssize_t
        => Preadv(iov_total(iov, cnt), 0),
        |lim| with_limited_iov(iov, cnt, lim, |v, c| real::preadv64(fd, v, c, off));
    preadv2(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t, flags: c_int) -> ssize_t
        => Preadv(iov_total(iov, cnt), 0),
        |lim| with_limited_iov(iov, cnt, lim, |v, c| real::preadv2(fd, v, c, off, flags));
    preadv64v2(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t, flags: c_int) -> ssize_t
        => Preadv(iov_total(iov, cnt), 0),
        |lim| with_limited_iov(iov, cnt, lim, |v, c| real::preadv64v2(fd, v, c, off, flags));
    pwritev(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t) -> ssize_t
        => Pwritev(iov_total(iov, cnt), 0, NO_DEST; Payload::At(off as u64)),
        |lim| with_limited_iov(iov, cnt, lim, |v, c| real::pwritev(fd, v, c, off));
    pwritev64(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t) -> ssize_t
        => Pwritev(iov_total(iov, cnt), 0, NO_DEST; Payload::At(off as u64)),
        |lim| with_limited_iov(iov, cnt, lim, |v, c| real::pwritev64(fd, v, c, off));
    pwritev2(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t, flags: c_int) -> ssize_t
        => Pwritev(iov_total(iov, cnt), 0, NO_DEST; Payload::At(off as u64)),
        |lim| with_limited_iov(iov, cnt, lim, |v, c| real::pwritev2(fd, v, c, off, flags));
    pwritev64v2(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t, flags: c_int) -> ssize_t
        => Pwritev(iov_total(iov, cnt), 0, NO_DEST; Payload::At(off as u64)),
        |lim| with_limited_iov(iov, cnt, lim, |v, c| real::pwritev64v2(fd, v, c, off, flags));
}

/// glibc's FORTIFY pread (`__pread_chk(fd, buf, n, offset, buflen)`: the buffer's size comes last,
/// unlike read's): an overflow goes to glibc as it would without us, the rest is a pread.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn __pread_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    off: off_t,
    buflen: size_t,
) -> ssize_t {
    if n > buflen {
        // SAFETY: the program's own call, passed on: glibc reports the overflow.
        return unsafe { real::__pread_chk(fd, buf, n, off, buflen) };
    }
    // SAFETY: the same call without the check, which passed.
    unsafe { pread(fd, buf, n, off) }
}

/// `__pread64_chk`, as `__pread_chk`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn __pread64_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    off: off_t,
    buflen: size_t,
) -> ssize_t {
    if n > buflen {
        // SAFETY: the program's own call, passed on: glibc reports the overflow.
        return unsafe { real::__pread64_chk(fd, buf, n, off, buflen) };
    }
    // SAFETY: the same call without the check, which passed.
    unsafe { pread64(fd, buf, n, off) }
}
