//! The real libc functions behind our hooks, resolved once with `dlsym(RTLD_NEXT)` in the constructor.
//!
//! We do not use redhook: it resolves lazily on the first call (dlsym can allocate and has deadlocked
//! jemalloc users), panics on a missing symbol, runs the real call inside `catch_unwind` and calls it
//! a second time after a panic, and neither guards re-entry nor preserves errno. This table is filled
//! before any hook makes a decision; until then (other libraries' constructors run before ours) each
//! function falls back to the raw system call. A symbol that cannot be found keeps the fallback and is
//! counted in `MISSING`, never a panic.

use crate::sys::{self, syscall};
use crate::time;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use libc::{
    c_char, c_int, c_uint, c_void, epoll_event, fd_set, iovec, loff_t, mmsghdr, msghdr, nfds_t,
    off_t, pollfd, sigset_t, size_t, sockaddr, socklen_t, ssize_t, timespec, timeval,
};

pub static MISSING: AtomicUsize = AtomicUsize::new(0);

macro_rules! real_functions {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty => $fallback:expr; )*) => {
        mod ptr {
            use core::sync::atomic::AtomicUsize;
            $( #[allow(non_upper_case_globals)] pub static $name: AtomicUsize = AtomicUsize::new(0); )*
        }

        /// Resolves every real function. Runs in the constructor only.
        pub fn resolve_all() {
            $( resolve(&ptr::$name, concat!(stringify!($name), "\0")); )*
        }

        $(
            #[inline(always)]
            #[allow(clippy::missing_safety_doc)]
            pub unsafe fn $name($($arg: $ty),*) -> $ret {
                /// The raw system call, out of line: it runs only before the constructor, and
                /// inlined it would take registers from every hook's fast path.
                #[cold]
                #[inline(never)]
                unsafe extern "C" fn fallback($($arg: $ty),*) -> $ret {
                    // SAFETY: the raw system call with the caller's arguments, as the real
                    // function would make it.
                    #[allow(unused_unsafe)]
                    unsafe { $fallback }
                }
                let p = ptr::$name.load(Relaxed);
                if p == 0 {
                    // SAFETY: the caller's contract is the real function's.
                    return unsafe { fallback($($arg),*) };
                }
                // SAFETY: `p` is what dlsym found for this very name: a function of this C
                // signature.
                let f: unsafe extern "C" fn($($ty),*) -> $ret = unsafe { core::mem::transmute(p) };
                // SAFETY: the caller's contract is the real function's.
                unsafe { f($($arg),*) }
            }
        )*
    };
}

fn resolve(slot: &AtomicUsize, name: &str) {
    // SAFETY: `name` is NUL-terminated (the macro appends the NUL).
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) };
    if p.is_null() {
        MISSING.fetch_add(1, Relaxed);
    } else {
        slot.store(p as usize, Relaxed);
    }
}

/// The raw system call with libc's convention: -1 with errno set on failure.
///
/// # Safety
/// The arguments must be valid for the system call, as for the libc function it stands in for.
unsafe fn sys(nr: libc::c_long, args: [usize; 6]) -> isize {
    let [a, b, c, d, e, f] = args;
    // SAFETY: the caller's arguments, valid for this system call (this function's contract).
    let r = unsafe { syscall!(nr, a, b, c, d, e, f) };
    if r < 0 {
        sys::set_errno(-r as c_int);
        return -1;
    }
    r
}

const NULL: usize = 0;
/// The kernel's sigset size for the *pwait/ppoll/pselect6 system calls.
const SIGSET: usize = 8;

/// poll as ppoll.
///
/// # Safety
/// As for poll: `fds` holds `n` pollfds.
unsafe fn poll_fallback(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    let ts = time::timespec_of_ms(timeout);
    let tsp = if timeout < 0 {
        NULL
    } else {
        &ts as *const _ as usize
    };
    // SAFETY: the caller's pollfds (this function's contract) and a local timeout or null.
    unsafe {
        sys(
            libc::SYS_ppoll,
            [fds as usize, n as usize, tsp, NULL, SIGSET, 0],
        ) as c_int
    }
}

/// select as pselect6.
///
/// # Safety
/// As for select: each set and `tv` null or valid.
unsafe fn select_fallback(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    tv: *mut timeval,
) -> c_int {
    let ts = if tv.is_null() {
        None
    } else {
        // SAFETY: non-null, so valid (this function's contract).
        Some(time::timespec_of_timeval(unsafe { &*tv }))
    };
    let tsp = ts.as_ref().map_or(NULL, |t| t as *const _ as usize);
    // SAFETY: the caller's sets (this function's contract) and a local timeout or null.
    unsafe {
        sys(
            libc::SYS_pselect6,
            [n as usize, r as usize, w as usize, e as usize, tsp, NULL],
        ) as c_int
    }
}

/// The `_r` lookups' fallback: no host, NO_RECOVERY, ENOSYS.
///
/// # Safety
/// `result` and `h_errnop` are null or valid, as for gethostbyname_r.
unsafe fn no_host(result: *mut *mut libc::hostent, h_errnop: *mut c_int) -> c_int {
    // SAFETY: the caller's out-pointers (this function's contract).
    unsafe {
        if !result.is_null() {
            *result = core::ptr::null_mut();
        }
        if !h_errnop.is_null() {
            *h_errnop = 3; // NO_RECOVERY
        }
    }
    libc::ENOSYS
}

real_functions! {
    read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t
        => sys(libc::SYS_read, [fd as usize, buf as usize, n, 0, 0, 0]);
    readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t
        => sys(libc::SYS_readv, [fd as usize, iov as usize, cnt as usize, 0, 0, 0]);
    write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t
        => sys(libc::SYS_write, [fd as usize, buf as usize, n, 0, 0, 0]);
    writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t
        => sys(libc::SYS_writev, [fd as usize, iov as usize, cnt as usize, 0, 0, 0]);
    recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t
        => sys(libc::SYS_recvfrom, [fd as usize, buf as usize, n, flags as usize, NULL, NULL]);
    recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t
        => sys(libc::SYS_recvfrom, [fd as usize, buf as usize, n, flags as usize, addr as usize, len as usize]);
    recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t
        => sys(libc::SYS_recvmsg, [fd as usize, msg as usize, flags as usize, 0, 0, 0]);
    recvmmsg(fd: c_int, msgs: *mut mmsghdr, vlen: c_uint, flags: c_int, timeout: *mut timespec) -> c_int
        => sys(libc::SYS_recvmmsg, [fd as usize, msgs as usize, vlen as usize, flags as usize, timeout as usize, 0]) as c_int;
    send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t
        => sys(libc::SYS_sendto, [fd as usize, buf as usize, n, flags as usize, NULL, 0]);
    sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> ssize_t
        => sys(libc::SYS_sendto, [fd as usize, buf as usize, n, flags as usize, addr as usize, len as usize]);
    sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t
        => sys(libc::SYS_sendmsg, [fd as usize, msg as usize, flags as usize, 0, 0, 0]);
    sendmmsg(fd: c_int, msgs: *mut mmsghdr, vlen: c_uint, flags: c_int) -> c_int
        => sys(libc::SYS_sendmmsg, [fd as usize, msgs as usize, vlen as usize, flags as usize, 0, 0]) as c_int;
    connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int
        => sys(libc::SYS_connect, [fd as usize, addr as usize, len as usize, 0, 0, 0]) as c_int;
    accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int
        => sys(libc::SYS_accept4, [fd as usize, addr as usize, len as usize, 0, 0, 0]) as c_int;
    accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int
        => sys(libc::SYS_accept4, [fd as usize, addr as usize, len as usize, flags as usize, 0, 0]) as c_int;
    setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int
        => sys(libc::SYS_setsockopt, [fd as usize, level as usize, name as usize, val as usize, len as usize, 0]) as c_int;
    shutdown(fd: c_int, how: c_int) -> c_int
        => sys(libc::SYS_shutdown, [fd as usize, how as usize, 0, 0, 0, 0]) as c_int;
    close(fd: c_int) -> c_int
        => sys(libc::SYS_close, [fd as usize, 0, 0, 0, 0, 0]) as c_int;
    close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int
        => sys(libc::SYS_close_range, [first as usize, last as usize, flags as usize, 0, 0, 0]) as c_int;
    dup2(old: c_int, new: c_int) -> c_int
        => if old == new { old } else { sys(libc::SYS_dup3, [old as usize, new as usize, 0, 0, 0, 0]) as c_int };
    dup3(old: c_int, new: c_int, flags: c_int) -> c_int
        => sys(libc::SYS_dup3, [old as usize, new as usize, flags as usize, 0, 0, 0]) as c_int;
    socket(domain: c_int, ty: c_int, proto: c_int) -> c_int
        => sys(libc::SYS_socket, [domain as usize, ty as usize, proto as usize, 0, 0, 0]) as c_int;
    socketpair(domain: c_int, ty: c_int, proto: c_int, fds: *mut c_int) -> c_int
        => sys(libc::SYS_socketpair, [domain as usize, ty as usize, proto as usize, fds as usize, 0, 0]) as c_int;
    pipe(fds: *mut c_int) -> c_int
        => sys(libc::SYS_pipe2, [fds as usize, 0, 0, 0, 0, 0]) as c_int;
    pipe2(fds: *mut c_int, flags: c_int) -> c_int
        => sys(libc::SYS_pipe2, [fds as usize, flags as usize, 0, 0, 0, 0]) as c_int;
    __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t
        => { let _ = buflen; sys(libc::SYS_read, [fd as usize, buf as usize, n, 0, 0, 0]) };
    __recv_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int) -> ssize_t
        => { let _ = buflen; sys(libc::SYS_recvfrom, [fd as usize, buf as usize, n, flags as usize, NULL, NULL]) };
    __recvfrom_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t
        => { let _ = buflen; sys(libc::SYS_recvfrom, [fd as usize, buf as usize, n, flags as usize, addr as usize, len as usize]) };
    bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int
        => sys(libc::SYS_bind, [fd as usize, addr as usize, len as usize, 0, 0, 0]) as c_int;
    listen(fd: c_int, backlog: c_int) -> c_int
        => sys(libc::SYS_listen, [fd as usize, backlog as usize, 0, 0, 0, 0]) as c_int;
    getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int
        => sys(libc::SYS_getpeername, [fd as usize, addr as usize, len as usize, 0, 0, 0]) as c_int;
    epoll_create(size: c_int) -> c_int
        => { let _ = size; sys(libc::SYS_epoll_create1, [0, 0, 0, 0, 0, 0]) as c_int };
    epoll_create1(flags: c_int) -> c_int
        => sys(libc::SYS_epoll_create1, [flags as usize, 0, 0, 0, 0, 0]) as c_int;
    epoll_ctl(epfd: c_int, op: c_int, fd: c_int, ev: *mut epoll_event) -> c_int
        => sys(libc::SYS_epoll_ctl, [epfd as usize, op as usize, fd as usize, ev as usize, 0, 0]) as c_int;
    epoll_wait(epfd: c_int, evs: *mut epoll_event, max: c_int, timeout: c_int) -> c_int
        => sys(libc::SYS_epoll_pwait, [epfd as usize, evs as usize, max as usize, timeout as usize, NULL, SIGSET]) as c_int;
    epoll_pwait(epfd: c_int, evs: *mut epoll_event, max: c_int, timeout: c_int, mask: *const sigset_t) -> c_int
        => sys(libc::SYS_epoll_pwait, [epfd as usize, evs as usize, max as usize, timeout as usize, mask as usize, SIGSET]) as c_int;
    epoll_pwait2(epfd: c_int, evs: *mut epoll_event, max: c_int, ts: *const timespec, mask: *const sigset_t) -> c_int
        => sys(441, [epfd as usize, evs as usize, max as usize, ts as usize, mask as usize, SIGSET]) as c_int;
    poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int
        => poll_fallback(fds, n, timeout);
    ppoll(fds: *mut pollfd, n: nfds_t, ts: *const timespec, mask: *const sigset_t) -> c_int
        => sys(libc::SYS_ppoll, [fds as usize, n as usize, ts as usize, mask as usize, SIGSET, 0]) as c_int;
    __poll_chk(fds: *mut pollfd, n: nfds_t, timeout: c_int, fdslen: size_t) -> c_int
        => { let _ = fdslen; poll_fallback(fds, n, timeout) };
    __ppoll_chk(fds: *mut pollfd, n: nfds_t, ts: *const timespec, mask: *const sigset_t, fdslen: size_t) -> c_int
        => { let _ = fdslen; sys(libc::SYS_ppoll, [fds as usize, n as usize, ts as usize, mask as usize, SIGSET, 0]) as c_int };
    select(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, tv: *mut timeval) -> c_int
        => select_fallback(n, r, w, e, tv);
    // Before the constructor has resolved them, lookups report a system error (there is no raw
    // system call to fall back on); nothing resolves names that early in practice.
    getaddrinfo(node: *const libc::c_char, service: *const libc::c_char, hints: *const libc::addrinfo, res: *mut *mut libc::addrinfo) -> c_int
        => { let _ = (node, service, hints, res); sys::set_errno(libc::ENOSYS); libc::EAI_SYSTEM };
    getnameinfo(addr: *const sockaddr, len: socklen_t, host: *mut libc::c_char, hostlen: socklen_t, serv: *mut libc::c_char, servlen: socklen_t, flags: c_int) -> c_int
        => { let _ = (addr, len, host, hostlen, serv, servlen, flags); sys::set_errno(libc::ENOSYS); libc::EAI_SYSTEM };
    gethostbyname(name: *const libc::c_char) -> *mut libc::hostent
        => { let _ = name; core::ptr::null_mut() };
    gethostbyname2(name: *const libc::c_char, af: c_int) -> *mut libc::hostent
        => { let _ = (name, af); core::ptr::null_mut() };
    gethostbyname_r(name: *const libc::c_char, ret: *mut libc::hostent, buf: *mut libc::c_char, buflen: size_t, result: *mut *mut libc::hostent, h_errnop: *mut c_int) -> c_int
        => { let _ = (name, ret, buf, buflen); no_host(result, h_errnop) };
    gethostbyname2_r(name: *const libc::c_char, af: c_int, ret: *mut libc::hostent, buf: *mut libc::c_char, buflen: size_t, result: *mut *mut libc::hostent, h_errnop: *mut c_int) -> c_int
        => { let _ = (name, af, ret, buf, buflen); no_host(result, h_errnop) };
    wait(status: *mut c_int) -> libc::pid_t
        => sys(libc::SYS_wait4, [usize::MAX, status as usize, 0, NULL, 0, 0]) as libc::pid_t;
    waitpid(pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t
        => sys(libc::SYS_wait4, [pid as usize, status as usize, options as usize, NULL, 0, 0]) as libc::pid_t;
    wait4(pid: libc::pid_t, status: *mut c_int, options: c_int, usage: *mut libc::rusage) -> libc::pid_t
        => sys(libc::SYS_wait4, [pid as usize, status as usize, options as usize, usage as usize, 0, 0]) as libc::pid_t;
    waitid(idtype: libc::idtype_t, id: libc::id_t, info: *mut libc::siginfo_t, options: c_int) -> c_int
        => sys(libc::SYS_waitid, [idtype as usize, id as usize, info as usize, options as usize, NULL, 0]) as c_int;
    // File calls. The fallbacks use the *at and 64-bit system calls every architecture has.
    open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int
        => sys(libc::SYS_openat, [libc::AT_FDCWD as usize, path as usize, flags as usize, mode as usize, 0, 0]) as c_int;
    open64(path: *const c_char, flags: c_int, mode: c_uint) -> c_int
        => sys(libc::SYS_openat, [libc::AT_FDCWD as usize, path as usize, flags as usize, mode as usize, 0, 0]) as c_int;
    openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int
        => sys(libc::SYS_openat, [dirfd as usize, path as usize, flags as usize, mode as usize, 0, 0]) as c_int;
    openat64(dirfd: c_int, path: *const c_char, flags: c_int, mode: c_uint) -> c_int
        => sys(libc::SYS_openat, [dirfd as usize, path as usize, flags as usize, mode as usize, 0, 0]) as c_int;
    __open_2(path: *const c_char, flags: c_int) -> c_int
        => sys(libc::SYS_openat, [libc::AT_FDCWD as usize, path as usize, flags as usize, 0, 0, 0]) as c_int;
    __open64_2(path: *const c_char, flags: c_int) -> c_int
        => sys(libc::SYS_openat, [libc::AT_FDCWD as usize, path as usize, flags as usize, 0, 0, 0]) as c_int;
    __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int
        => sys(libc::SYS_openat, [dirfd as usize, path as usize, flags as usize, 0, 0, 0]) as c_int;
    __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int
        => sys(libc::SYS_openat, [dirfd as usize, path as usize, flags as usize, 0, 0, 0]) as c_int;
    creat(path: *const c_char, mode: c_uint) -> c_int
        => sys(libc::SYS_openat, [libc::AT_FDCWD as usize, path as usize, (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as usize, mode as usize, 0, 0]) as c_int;
    creat64(path: *const c_char, mode: c_uint) -> c_int
        => sys(libc::SYS_openat, [libc::AT_FDCWD as usize, path as usize, (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as usize, mode as usize, 0, 0]) as c_int;
    pread(fd: c_int, buf: *mut c_void, n: size_t, off: off_t) -> ssize_t
        => sys(libc::SYS_pread64, [fd as usize, buf as usize, n, off as usize, 0, 0]);
    pread64(fd: c_int, buf: *mut c_void, n: size_t, off: off_t) -> ssize_t
        => sys(libc::SYS_pread64, [fd as usize, buf as usize, n, off as usize, 0, 0]);
    __pread_chk(fd: c_int, buf: *mut c_void, n: size_t, off: off_t, buflen: size_t) -> ssize_t
        => { let _ = buflen; sys(libc::SYS_pread64, [fd as usize, buf as usize, n, off as usize, 0, 0]) };
    __pread64_chk(fd: c_int, buf: *mut c_void, n: size_t, off: off_t, buflen: size_t) -> ssize_t
        => { let _ = buflen; sys(libc::SYS_pread64, [fd as usize, buf as usize, n, off as usize, 0, 0]) };
    pwrite(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t
        => sys(libc::SYS_pwrite64, [fd as usize, buf as usize, n, off as usize, 0, 0]);
    pwrite64(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t
        => sys(libc::SYS_pwrite64, [fd as usize, buf as usize, n, off as usize, 0, 0]);
    preadv(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t) -> ssize_t
        => sys(libc::SYS_preadv, [fd as usize, iov as usize, cnt as usize, off as usize, 0, 0]);
    preadv64(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t) -> ssize_t
        => sys(libc::SYS_preadv, [fd as usize, iov as usize, cnt as usize, off as usize, 0, 0]);
    preadv2(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t, flags: c_int) -> ssize_t
        => sys(libc::SYS_preadv2, [fd as usize, iov as usize, cnt as usize, off as usize, 0, flags as usize]);
    preadv64v2(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t, flags: c_int) -> ssize_t
        => sys(libc::SYS_preadv2, [fd as usize, iov as usize, cnt as usize, off as usize, 0, flags as usize]);
    pwritev(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t) -> ssize_t
        => sys(libc::SYS_pwritev, [fd as usize, iov as usize, cnt as usize, off as usize, 0, 0]);
    pwritev64(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t) -> ssize_t
        => sys(libc::SYS_pwritev, [fd as usize, iov as usize, cnt as usize, off as usize, 0, 0]);
    pwritev2(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t, flags: c_int) -> ssize_t
        => sys(libc::SYS_pwritev2, [fd as usize, iov as usize, cnt as usize, off as usize, 0, flags as usize]);
    pwritev64v2(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t, flags: c_int) -> ssize_t
        => sys(libc::SYS_pwritev2, [fd as usize, iov as usize, cnt as usize, off as usize, 0, flags as usize]);
    sendfile(out: c_int, inp: c_int, off: *mut off_t, count: size_t) -> ssize_t
        => sys(libc::SYS_sendfile, [out as usize, inp as usize, off as usize, count, 0, 0]);
    sendfile64(out: c_int, inp: c_int, off: *mut off_t, count: size_t) -> ssize_t
        => sys(libc::SYS_sendfile, [out as usize, inp as usize, off as usize, count, 0, 0]);
    splice(fd_in: c_int, off_in: *mut loff_t, fd_out: c_int, off_out: *mut loff_t, len: size_t, flags: c_uint) -> ssize_t
        => sys(libc::SYS_splice, [fd_in as usize, off_in as usize, fd_out as usize, off_out as usize, len, flags as usize]);
    copy_file_range(fd_in: c_int, off_in: *mut loff_t, fd_out: c_int, off_out: *mut loff_t, len: size_t, flags: c_uint) -> ssize_t
        => sys(libc::SYS_copy_file_range, [fd_in as usize, off_in as usize, fd_out as usize, off_out as usize, len, flags as usize]);
    fsync(fd: c_int) -> c_int
        => sys(libc::SYS_fsync, [fd as usize, 0, 0, 0, 0, 0]) as c_int;
    fdatasync(fd: c_int) -> c_int
        => sys(libc::SYS_fdatasync, [fd as usize, 0, 0, 0, 0, 0]) as c_int;
    sync_file_range(fd: c_int, off: off_t, n: off_t, flags: c_uint) -> c_int
        => sys(libc::SYS_sync_file_range, [fd as usize, off as usize, n as usize, flags as usize, 0, 0]) as c_int;
    syncfs(fd: c_int) -> c_int
        => sys(libc::SYS_syncfs, [fd as usize, 0, 0, 0, 0, 0]) as c_int;
    truncate(path: *const c_char, len: off_t) -> c_int
        => sys(libc::SYS_truncate, [path as usize, len as usize, 0, 0, 0, 0]) as c_int;
    truncate64(path: *const c_char, len: off_t) -> c_int
        => sys(libc::SYS_truncate, [path as usize, len as usize, 0, 0, 0, 0]) as c_int;
    ftruncate(fd: c_int, len: off_t) -> c_int
        => sys(libc::SYS_ftruncate, [fd as usize, len as usize, 0, 0, 0, 0]) as c_int;
    ftruncate64(fd: c_int, len: off_t) -> c_int
        => sys(libc::SYS_ftruncate, [fd as usize, len as usize, 0, 0, 0, 0]) as c_int;
    fallocate(fd: c_int, mode: c_int, off: off_t, len: off_t) -> c_int
        => sys(libc::SYS_fallocate, [fd as usize, mode as usize, off as usize, len as usize, 0, 0]) as c_int;
    fallocate64(fd: c_int, mode: c_int, off: off_t, len: off_t) -> c_int
        => sys(libc::SYS_fallocate, [fd as usize, mode as usize, off as usize, len as usize, 0, 0]) as c_int;
    // posix_fallocate returns the error number and leaves errno alone.
    posix_fallocate(fd: c_int, off: off_t, len: off_t) -> c_int
        => { let saved = sys::errno(); let r = sys(libc::SYS_fallocate, [fd as usize, 0, off as usize, len as usize, 0, 0]); let e = sys::errno(); sys::set_errno(saved); if r < 0 { e } else { 0 } };
    posix_fallocate64(fd: c_int, off: off_t, len: off_t) -> c_int
        => { let saved = sys::errno(); let r = sys(libc::SYS_fallocate, [fd as usize, 0, off as usize, len as usize, 0, 0]); let e = sys::errno(); sys::set_errno(saved); if r < 0 { e } else { 0 } };
    rename(old: *const c_char, new: *const c_char) -> c_int
        => sys(libc::SYS_renameat2, [libc::AT_FDCWD as usize, old as usize, libc::AT_FDCWD as usize, new as usize, 0, 0]) as c_int;
    renameat(olddir: c_int, old: *const c_char, newdir: c_int, new: *const c_char) -> c_int
        => sys(libc::SYS_renameat2, [olddir as usize, old as usize, newdir as usize, new as usize, 0, 0]) as c_int;
    renameat2(olddir: c_int, old: *const c_char, newdir: c_int, new: *const c_char, flags: c_uint) -> c_int
        => sys(libc::SYS_renameat2, [olddir as usize, old as usize, newdir as usize, new as usize, flags as usize, 0]) as c_int;
    unlink(path: *const c_char) -> c_int
        => sys(libc::SYS_unlinkat, [libc::AT_FDCWD as usize, path as usize, 0, 0, 0, 0]) as c_int;
    unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int
        => sys(libc::SYS_unlinkat, [dirfd as usize, path as usize, flags as usize, 0, 0, 0]) as c_int;
    mkdir(path: *const c_char, mode: libc::mode_t) -> c_int
        => sys(libc::SYS_mkdirat, [libc::AT_FDCWD as usize, path as usize, mode as usize, 0, 0, 0]) as c_int;
    mkdirat(dirfd: c_int, path: *const c_char, mode: libc::mode_t) -> c_int
        => sys(libc::SYS_mkdirat, [dirfd as usize, path as usize, mode as usize, 0, 0, 0]) as c_int;
    dup(fd: c_int) -> c_int
        => sys(libc::SYS_fcntl, [fd as usize, libc::F_DUPFD as usize, 0, 0, 0, 0]) as c_int;
    pselect(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, ts: *const timespec, mask: *const sigset_t) -> c_int
        => { let _ = mask; sys(libc::SYS_pselect6, [n as usize, r as usize, w as usize, e as usize, ts as usize, NULL]) as c_int };
    // Before the constructor the raw calls change this thread's credentials only (glibc's own
    // broadcast them to every thread); no thread of the program exists that early.
    setuid(uid: libc::uid_t) -> c_int
        => sys(libc::SYS_setuid, [uid as usize, 0, 0, 0, 0, 0]) as c_int;
    setgid(gid: libc::gid_t) -> c_int
        => sys(libc::SYS_setgid, [gid as usize, 0, 0, 0, 0, 0]) as c_int;
    seteuid(uid: libc::uid_t) -> c_int
        => sys(libc::SYS_setresuid, [usize::MAX, uid as usize, usize::MAX, 0, 0, 0]) as c_int;
    setegid(gid: libc::gid_t) -> c_int
        => sys(libc::SYS_setresgid, [usize::MAX, gid as usize, usize::MAX, 0, 0, 0]) as c_int;
    setreuid(ruid: libc::uid_t, euid: libc::uid_t) -> c_int
        => sys(libc::SYS_setreuid, [ruid as usize, euid as usize, 0, 0, 0, 0]) as c_int;
    setregid(rgid: libc::gid_t, egid: libc::gid_t) -> c_int
        => sys(libc::SYS_setregid, [rgid as usize, egid as usize, 0, 0, 0, 0]) as c_int;
    setresuid(ruid: libc::uid_t, euid: libc::uid_t, suid: libc::uid_t) -> c_int
        => sys(libc::SYS_setresuid, [ruid as usize, euid as usize, suid as usize, 0, 0, 0]) as c_int;
    setresgid(rgid: libc::gid_t, egid: libc::gid_t, sgid: libc::gid_t) -> c_int
        => sys(libc::SYS_setresgid, [rgid as usize, egid as usize, sgid as usize, 0, 0, 0]) as c_int;
    setgroups(n: size_t, groups: *const libc::gid_t) -> c_int
        => sys(libc::SYS_setgroups, [n, groups as usize, 0, 0, 0, 0]) as c_int;
    // initgroups reads the group database: no system call to fall back on.
    initgroups(user: *const c_char, group: libc::gid_t) -> c_int
        => { let _ = (user, group); sys::set_errno(libc::ENOSYS); -1 };
    chroot(path: *const c_char) -> c_int
        => sys(libc::SYS_chroot, [path as usize, 0, 0, 0, 0, 0]) as c_int;
    execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int
        => sys(libc::SYS_execve, [path as usize, argv as usize, envp as usize, 0, 0, 0]) as c_int;
    // The PATH-searching and environ-taking forms have no one system call to fall back on; no
    // program execs before the constructors have run.
    execv(path: *const c_char, argv: *const *const c_char) -> c_int
        => { let _ = (path, argv); sys::set_errno(libc::ENOSYS); -1 };
    execvp(file: *const c_char, argv: *const *const c_char) -> c_int
        => { let _ = (file, argv); sys::set_errno(libc::ENOSYS); -1 };
    execvpe(file: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int
        => { let _ = (file, argv, envp); sys::set_errno(libc::ENOSYS); -1 };
}
