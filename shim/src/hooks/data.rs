//! read/write/recv/send and their vector, message and FORTIFY forms.

use super::transfer::transfer;
use crate::plan::Call;
use crate::real;
use chaos_engine::op::Op;
use libc::{c_int, c_uint, c_void, iovec, mmsghdr, msghdr, size_t, sockaddr, socklen_t, ssize_t};

/// Most iovecs we copy to shorten a vectored call; a cut further out is not shortened.
const IOV_STACK: usize = 64;

fn iov_total(iov: *const iovec, cnt: c_int) -> usize {
    if iov.is_null() || cnt <= 0 {
        return 0;
    }
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

fn call(op: Op, fd: c_int, requested: usize, msg_flags: c_int) -> Call {
    call_to(op, fd, requested, msg_flags, core::ptr::null(), 0)
}

fn call_to(
    op: Op,
    fd: c_int,
    requested: usize,
    msg_flags: c_int,
    dest: *const sockaddr,
    dest_len: socklen_t,
) -> Call {
    Call {
        op,
        fd,
        requested,
        msg_flags,
        dest,
        dest_len,
    }
}

fn msg_dest(msg: *const msghdr) -> (*const sockaddr, socklen_t) {
    if msg.is_null() {
        return (core::ptr::null(), 0);
    }
    let m = unsafe { &*msg };
    (m.msg_name as *const sockaddr, m.msg_namelen)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    transfer(
        Op::Read,
        fd,
        move || call(Op::Read, fd, n, 0),
        move || unsafe { real::read(fd, buf, n) },
        move |lim| unsafe { real::read(fd, buf, lim) },
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
) -> ssize_t {
    if n > buflen {
        // Let glibc report the buffer overflow exactly as it would without us.
        return unsafe { real::__read_chk(fd, buf, n, buflen) };
    }
    transfer(
        Op::Read,
        fd,
        move || call(Op::Read, fd, n, 0),
        move || unsafe { real::read(fd, buf, n) },
        move |lim| unsafe { real::read(fd, buf, lim) },
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    transfer(
        Op::Readv,
        fd,
        move || call(Op::Readv, fd, iov_total(iov, cnt), 0),
        move || unsafe { real::readv(fd, iov, cnt) },
        move |lim| with_limited_iov(iov, cnt, lim, |v, c| unsafe { real::readv(fd, v, c) }),
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    transfer(
        Op::Write,
        fd,
        move || call(Op::Write, fd, n, 0),
        move || unsafe { real::write(fd, buf, n) },
        move |lim| unsafe { real::write(fd, buf, lim) },
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    transfer(
        Op::Writev,
        fd,
        move || call(Op::Writev, fd, iov_total(iov, cnt), 0),
        move || unsafe { real::writev(fd, iov, cnt) },
        move |lim| with_limited_iov(iov, cnt, lim, |v, c| unsafe { real::writev(fd, v, c) }),
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    transfer(
        Op::Recv,
        fd,
        move || call(Op::Recv, fd, n, flags),
        move || unsafe { real::recv(fd, buf, n, flags) },
        move |lim| unsafe { real::recv(fd, buf, lim, flags) },
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    if n > buflen {
        return unsafe { real::__recv_chk(fd, buf, n, buflen, flags) };
    }
    transfer(
        Op::Recv,
        fd,
        move || call(Op::Recv, fd, n, flags),
        move || unsafe { real::recv(fd, buf, n, flags) },
        move |lim| unsafe { real::recv(fd, buf, lim, flags) },
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    transfer(
        Op::Recvfrom,
        fd,
        move || call(Op::Recvfrom, fd, n, flags),
        move || unsafe { real::recvfrom(fd, buf, n, flags, addr, len) },
        move |lim| unsafe { real::recvfrom(fd, buf, lim, flags, addr, len) },
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    if n > buflen {
        return unsafe { real::__recvfrom_chk(fd, buf, n, buflen, flags, addr, len) };
    }
    transfer(
        Op::Recvfrom,
        fd,
        move || call(Op::Recvfrom, fd, n, flags),
        move || unsafe { real::recvfrom(fd, buf, n, flags, addr, len) },
        move |lim| unsafe { real::recvfrom(fd, buf, lim, flags, addr, len) },
    )
}

/// Runs `f` with a copy of `msg` whose iovecs cover at most `limit` bytes.
fn with_limited_msg<R>(msg: *const msghdr, limit: usize, f: impl FnOnce(*mut msghdr) -> R) -> R {
    let mut copy = unsafe { *msg };
    with_limited_iov(copy.msg_iov, copy.msg_iovlen as c_int, limit, |v, c| {
        copy.msg_iov = v as *mut iovec;
        copy.msg_iovlen = c as _;
        let r = f(&mut copy);
        // recvmsg reports back through the header: hand those fields to the caller's header.
        unsafe {
            (*(msg as *mut msghdr)).msg_namelen = copy.msg_namelen;
            (*(msg as *mut msghdr)).msg_controllen = copy.msg_controllen;
            (*(msg as *mut msghdr)).msg_flags = copy.msg_flags;
        }
        r
    })
}

fn msg_total(msg: *const msghdr) -> usize {
    if msg.is_null() {
        return 0;
    }
    let m = unsafe { &*msg };
    iov_total(m.msg_iov, m.msg_iovlen as c_int)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    transfer(
        Op::Recvmsg,
        fd,
        move || call(Op::Recvmsg, fd, msg_total(msg), flags),
        move || unsafe { real::recvmsg(fd, msg, flags) },
        move |lim| {
            if lim >= msg_total(msg) {
                unsafe { real::recvmsg(fd, msg, flags) }
            } else {
                with_limited_msg(msg, lim, |m| unsafe { real::recvmsg(fd, m, flags) })
            }
        },
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    transfer(
        Op::Sendmsg,
        fd,
        move || {
            let (dest, dest_len) = msg_dest(msg);
            call_to(Op::Sendmsg, fd, msg_total(msg), flags, dest, dest_len)
        },
        move || unsafe { real::sendmsg(fd, msg, flags) },
        move |lim| {
            if lim >= msg_total(msg) {
                unsafe { real::sendmsg(fd, msg, flags) }
            } else {
                with_limited_msg(msg, lim, |m| unsafe { real::sendmsg(fd, m, flags) })
            }
        },
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    msgs: *mut mmsghdr,
    vlen: c_uint,
    flags: c_int,
    timeout: *mut libc::timespec,
) -> c_int {
    transfer(
        Op::Recvmmsg,
        fd,
        move || call(Op::Recvmmsg, fd, vlen as usize, flags),
        move || unsafe { real::recvmmsg(fd, msgs, vlen, flags, timeout) as isize },
        move |lim| unsafe { real::recvmmsg(fd, msgs, lim as c_uint, flags, timeout) as isize },
    ) as c_int
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    transfer(
        Op::Send,
        fd,
        move || call(Op::Send, fd, n, flags),
        move || unsafe { real::send(fd, buf, n, flags) },
        move |lim| unsafe { real::send(fd, buf, lim, flags) },
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    transfer(
        Op::Sendto,
        fd,
        move || call_to(Op::Sendto, fd, n, flags, addr, len),
        move || unsafe { real::sendto(fd, buf, n, flags, addr, len) },
        move |lim| unsafe { real::sendto(fd, buf, lim, flags, addr, len) },
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmmsg(
    fd: c_int,
    msgs: *mut mmsghdr,
    vlen: c_uint,
    flags: c_int,
) -> c_int {
    transfer(
        Op::Sendmmsg,
        fd,
        move || call(Op::Sendmmsg, fd, vlen as usize, flags),
        move || unsafe { real::sendmmsg(fd, msgs, vlen, flags) as isize },
        move |lim| unsafe { real::sendmmsg(fd, msgs, lim as c_uint, flags) as isize },
    ) as c_int
}
