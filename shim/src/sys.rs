//! Raw system calls for the shim's own needs. They bypass libc's symbols, so they never land in our
//! own hooks, take no locks and are async-signal-safe.

use libc::{c_int, c_long};

#[inline]
pub fn errno() -> c_int {
    unsafe { *libc::__errno_location() }
}

#[inline]
pub fn set_errno(e: c_int) {
    unsafe { *libc::__errno_location() = e }
}

/// Returns the raw result: >= 0, or -errno.
#[inline]
unsafe fn raw(nr: c_long, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    let saved = errno();
    let r = unsafe { libc::syscall(nr, a, b, c, d, e, 0usize) } as isize;
    let out = if r == -1 { -(errno() as isize) } else { r };
    set_errno(saved);
    out
}

pub fn write_all(fd: c_int, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        let r = unsafe {
            raw(
                libc::SYS_write,
                fd as usize,
                bytes.as_ptr() as usize,
                bytes.len(),
                0,
                0,
            )
        };
        if r == -(libc::EINTR as isize) {
            continue;
        }
        if r <= 0 {
            return false;
        }
        bytes = &bytes[r as usize..];
    }
    true
}

pub fn getpid() -> i32 {
    unsafe { raw(libc::SYS_getpid, 0, 0, 0, 0, 0) as i32 }
}

pub fn gettid() -> i32 {
    unsafe { raw(libc::SYS_gettid, 0, 0, 0, 0, 0) as i32 }
}

pub fn getppid() -> i32 {
    unsafe { raw(libc::SYS_getppid, 0, 0, 0, 0, 0) as i32 }
}

pub fn close(fd: c_int) {
    unsafe { raw(libc::SYS_close, fd as usize, 0, 0, 0, 0) };
}

pub fn exit_group(code: c_int) -> ! {
    unsafe {
        libc::syscall(libc::SYS_exit_group, code);
        // exit_group does not return.
        core::hint::unreachable_unchecked()
    }
}

pub fn now_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // clock_gettime is a vDSO call: no lock, no syscall, async-signal-safe. Not hooked.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps the whole duration, resuming after signal handlers run (a delay is latency, not EINTR).
pub fn sleep_ns(ns: u64) {
    let mut req = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    loop {
        let mut rem = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let r = unsafe {
            raw(
                libc::SYS_nanosleep,
                &req as *const _ as usize,
                &mut rem as *mut _ as usize,
                0,
                0,
                0,
            )
        };
        if r == -(libc::EINTR as isize) {
            req = rem;
            continue;
        }
        return;
    }
}

pub fn fstat(fd: c_int) -> Option<libc::stat> {
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    let r = unsafe {
        raw(
            libc::SYS_fstat,
            fd as usize,
            &mut st as *mut _ as usize,
            0,
            0,
            0,
        )
    };
    (r == 0).then_some(st)
}

pub fn getsockopt_int(fd: c_int, level: c_int, name: c_int) -> Option<c_int> {
    let mut v: c_int = 0;
    let mut len = core::mem::size_of::<c_int>() as libc::socklen_t;
    let r = unsafe {
        raw(
            libc::SYS_getsockopt,
            fd as usize,
            level as usize,
            name as usize,
            &mut v as *mut _ as usize,
            &mut len as *mut _ as usize,
        )
    };
    (r == 0).then_some(v)
}

/// SO_RCVTIMEO / SO_SNDTIMEO in ns, when set.
pub fn timeout_ns(fd: c_int, name: c_int) -> Option<u64> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = core::mem::size_of::<libc::timeval>() as libc::socklen_t;
    let r = unsafe {
        raw(
            libc::SYS_getsockopt,
            fd as usize,
            libc::SOL_SOCKET as usize,
            name as usize,
            &mut tv as *mut _ as usize,
            &mut len as *mut _ as usize,
        )
    };
    (r == 0 && (tv.tv_sec != 0 || tv.tv_usec != 0))
        .then(|| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1000)
}

pub fn sockname(fd: c_int, peer: bool, out: &mut libc::sockaddr_storage) -> Option<usize> {
    let mut len = core::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let nr = if peer {
        libc::SYS_getpeername
    } else {
        libc::SYS_getsockname
    };
    let r = unsafe {
        raw(
            nr,
            fd as usize,
            out as *mut _ as usize,
            &mut len as *mut _ as usize,
            0,
            0,
        )
    };
    (r == 0).then_some(len as usize)
}

/// Polls one fd for `events`, waiting at most `timeout_ns`; returns its revents (0 on timeout or
/// error). A raw ppoll: it never reaches our own poll hook.
pub fn poll_one(fd: c_int, events: i16, timeout_ns: u64) -> i16 {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    let r = unsafe {
        raw(
            libc::SYS_ppoll,
            &mut p as *mut _ as usize,
            1,
            &ts as *const _ as usize,
            0,
            8,
        )
    };
    if r > 0 { p.revents } else { 0 }
}

/// Bytes in a socket's send queue not yet acknowledged (SIOCOUTQ); 0 on error.
pub fn outq_bytes(fd: c_int) -> c_int {
    ioctl_int(fd, libc::TIOCOUTQ).max(0)
}

pub fn fcntl_getfl(fd: c_int) -> c_int {
    unsafe {
        raw(
            libc::SYS_fcntl,
            fd as usize,
            libc::F_GETFL as usize,
            0,
            0,
            0,
        ) as c_int
    }
}

pub fn fcntl_setfl(fd: c_int, flags: c_int) {
    unsafe {
        raw(
            libc::SYS_fcntl,
            fd as usize,
            libc::F_SETFL as usize,
            flags as usize,
            0,
            0,
        )
    };
}

/// Duplicates `fd` to the lowest free number >= `min`, close-on-exec.
pub fn dup_cloexec_at_least(fd: c_int, min: c_int) -> c_int {
    unsafe {
        raw(
            libc::SYS_fcntl,
            fd as usize,
            libc::F_DUPFD_CLOEXEC as usize,
            min as usize,
            0,
            0,
        ) as c_int
    }
}

pub fn shutdown(fd: c_int, how: c_int) {
    unsafe { raw(libc::SYS_shutdown, fd as usize, how as usize, 0, 0, 0) };
}

/// Reads the target of /proc/self/fd/N into `out`; returns the length.
pub fn fd_path(fd: c_int, out: &mut [u8]) -> Option<usize> {
    let mut path = *b"/proc/self/fd/\0\0\0\0\0\0\0\0\0\0\0\0";
    let mut digits = [0u8; 10];
    let (mut n, mut i) = (fd as u32, 0);
    loop {
        digits[i] = b'0' + (n % 10) as u8;
        i += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (k, d) in digits[..i].iter().rev().enumerate() {
        path[14 + k] = *d;
    }
    let r = unsafe {
        raw(
            libc::SYS_readlinkat,
            libc::AT_FDCWD as usize,
            path.as_ptr() as usize,
            out.as_mut_ptr() as usize,
            out.len(),
            0,
        )
    };
    (r > 0).then_some(r as usize)
}

/// The kernel's struct sigaction (x86_64/aarch64 layout, as rt_sigaction takes it).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// For a signal with a handler installed (not SIG_DFL or SIG_IGN): whether it has SA_RESTART.
/// None when no handler is installed.
pub fn handler_restarts(sig: c_int) -> Option<bool> {
    let mut old = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    let r = unsafe {
        raw(
            libc::SYS_rt_sigaction,
            sig as usize,
            0,
            &mut old as *mut _ as usize,
            8,
            0,
        )
    };
    let has_handler = old.handler != libc::SIG_DFL && old.handler != libc::SIG_IGN;
    (r == 0 && has_handler).then_some(old.flags & libc::SA_RESTART as u64 != 0)
}

/// Whether any signal has a handler installed without SA_RESTART (the platform quirks' test).
pub fn interrupting_handler_installed() -> bool {
    (1..=64).any(|sig| {
        sig != libc::SIGKILL && sig != libc::SIGSTOP && handler_restarts(sig) == Some(false)
    })
}

/// The calling thread's blocked signals, bit N-1 for signal N.
pub fn thread_blocked_signals() -> u64 {
    let mut set: u64 = 0;
    let r = unsafe {
        raw(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK as usize,
            0,
            &mut set as *mut u64 as usize,
            8,
            0,
        )
    };
    if r == 0 { set } else { u64::MAX }
}

/// An int-valued ioctl (FIONREAD, SIOCOUTQ); -1 on error.
pub fn ioctl_int(fd: c_int, req: libc::c_ulong) -> c_int {
    let mut n: c_int = 0;
    let r = unsafe {
        raw(
            libc::SYS_ioctl,
            fd as usize,
            req as usize,
            &mut n as *mut c_int as usize,
            0,
            0,
        )
    };
    if r == 0 { n } else { -1 }
}

/// A pipe's capacity (F_GETPIPE_SZ); -1 on error.
pub fn fcntl_getpipe_sz(fd: c_int) -> c_int {
    unsafe {
        raw(
            libc::SYS_fcntl,
            fd as usize,
            libc::F_GETPIPE_SZ as usize,
            0,
            0,
            0,
        ) as c_int
    }
}

/// Raises SIGPIPE on this thread, as the kernel does for EPIPE without MSG_NOSIGNAL.
pub fn raise_sigpipe() {
    unsafe {
        raw(
            libc::SYS_tgkill,
            getpid() as usize,
            gettid() as usize,
            libc::SIGPIPE as usize,
            0,
            0,
        )
    };
}

pub fn open_log(path: &std::ffi::CStr) -> c_int {
    let flags =
        libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    let r = unsafe {
        raw(
            libc::SYS_openat,
            libc::AT_FDCWD as usize,
            path.as_ptr() as usize,
            flags as usize,
            0o600,
            0,
        )
    };
    r as c_int
}

pub fn socket(family: c_int, ty: c_int, proto: c_int) -> c_int {
    unsafe {
        raw(
            libc::SYS_socket,
            family as usize,
            ty as usize,
            proto as usize,
            0,
            0,
        ) as c_int
    }
}

pub fn bind(fd: c_int, addr: &libc::sockaddr_storage, len: usize) -> bool {
    unsafe {
        raw(
            libc::SYS_bind,
            fd as usize,
            addr as *const _ as usize,
            len,
            0,
            0,
        ) == 0
    }
}
