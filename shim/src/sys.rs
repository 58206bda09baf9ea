//! Raw system calls for the shim's own needs. They bypass libc's symbols, so they never land in our
//! own hooks, take no locks and are async-signal-safe. Every one goes through `syscall!`.

use crate::time;
use libc::c_int;

#[inline]
pub fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno, valid for as long as the thread lives.
    unsafe { *libc::__errno_location() }
}

#[inline]
pub fn set_errno(e: c_int) {
    // SAFETY: as in `errno`: a pointer to this thread's own errno.
    unsafe { *libc::__errno_location() = e }
}

/// The one way the shim makes a raw system call: `syscall!(libc::SYS_x, a, b, c)`, with at most six
/// arguments (integers, raw pointers or references; the missing ones are passed as 0). Evaluates to
/// the kernel's result: >= 0, or -errno; errno is left as it was. It must be used inside `unsafe`:
/// the kernel reads and writes through the address arguments.
macro_rules! syscall {
    ($nr:expr $(, $arg:expr)* $(,)?) => {{
        let a = $crate::sys::regs([$($crate::sys::Arg::reg($arg)),*]);
        let saved = $crate::sys::errno();
        let r = ::libc::syscall($nr, a[0], a[1], a[2], a[3], a[4], a[5]) as isize;
        let out = if r == -1 { -($crate::sys::errno() as isize) } else { r };
        $crate::sys::set_errno(saved);
        out
    }};
}
pub(crate) use syscall;

/// A system call argument, passed in one register: an integer (sign-extended, as `as usize` does)
/// or an address.
pub trait Arg {
    fn reg(self) -> usize;
}

macro_rules! int_args {
    ($($t:ty),*) => {
        $(impl Arg for $t {
            #[inline(always)]
            fn reg(self) -> usize {
                self as usize
            }
        })*
    };
}
int_args!(i32, u32, i64, u64);

impl Arg for usize {
    #[inline(always)]
    fn reg(self) -> usize {
        self
    }
}

impl<T> Arg for *const T {
    #[inline(always)]
    fn reg(self) -> usize {
        self as usize
    }
}

impl<T> Arg for *mut T {
    #[inline(always)]
    fn reg(self) -> usize {
        self as usize
    }
}

impl<T> Arg for &T {
    #[inline(always)]
    fn reg(self) -> usize {
        self as *const T as usize
    }
}

impl<T> Arg for &mut T {
    #[inline(always)]
    fn reg(self) -> usize {
        self as *mut T as usize
    }
}

/// `syscall!`'s arguments padded with zeros to the six registers.
#[doc(hidden)]
#[inline(always)]
pub fn regs<const N: usize>(args: [usize; N]) -> [usize; 6] {
    const { assert!(N <= 6, "a system call takes at most six arguments") };
    let mut all = [0; 6];
    all[..N].copy_from_slice(&args);
    all
}

pub fn write_all(fd: c_int, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: the kernel reads `bytes.len()` bytes from a live slice.
        let r = unsafe { syscall!(libc::SYS_write, fd, bytes.as_ptr(), bytes.len()) };
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
    // SAFETY: getpid takes no arguments.
    unsafe { syscall!(libc::SYS_getpid) as i32 }
}

/// This thread's name (/proc/self/comm: the executable's, unless the program renamed it) into
/// `buf`; returns its length.
pub fn comm(buf: &mut [u8; 16]) -> usize {
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included, into the buffer.
    let r = unsafe { syscall!(libc::SYS_prctl, libc::PR_GET_NAME, buf.as_mut_ptr()) };
    if r < 0 {
        return 0;
    }
    buf.iter().position(|&b| b == 0).unwrap_or(buf.len())
}

pub fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments.
    unsafe { syscall!(libc::SYS_gettid) as i32 }
}

/// The working directory into `out` (the kernel's getcwd: no allocation); its length without the
/// NUL, or None (too long, or unreachable).
pub fn getcwd(out: &mut [u8]) -> Option<usize> {
    // SAFETY: the kernel writes at most `out.len()` bytes into our buffer.
    let r = unsafe { syscall!(libc::SYS_getcwd, out.as_mut_ptr(), out.len()) };
    (r > 1).then(|| r as usize - 1)
}

pub fn getppid() -> i32 {
    // SAFETY: getppid takes no arguments.
    unsafe { syscall!(libc::SYS_getppid) as i32 }
}

pub fn close(fd: c_int) {
    // SAFETY: close takes one integer; callers close only fds they own.
    unsafe { syscall!(libc::SYS_close, fd) };
}

pub fn exit_group(code: c_int) -> ! {
    // SAFETY: exit_group takes one integer and ends every thread of the process.
    unsafe { syscall!(libc::SYS_exit_group, code) };
    // SAFETY: exit_group does not return.
    unsafe { core::hint::unreachable_unchecked() }
}

pub fn now_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // clock_gettime is a vDSO call: no lock, no syscall, async-signal-safe. Not hooked.
    // SAFETY: it writes one timespec through a pointer to a local.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    time::ns_of_timespec(&ts)
}

/// Sleeps the whole duration, resuming after signal handlers run (a delay is latency, not EINTR).
pub fn sleep_ns(ns: u64) {
    let mut req = time::timespec_of_ns(ns);
    loop {
        let mut rem = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: nanosleep reads `req` and writes `rem`, both locals.
        let r = unsafe { syscall!(libc::SYS_nanosleep, &req, &mut rem) };
        if r == -(libc::EINTR as isize) {
            req = rem;
            continue;
        }
        return;
    }
}

pub fn fstat(fd: c_int) -> Option<libc::stat> {
    // SAFETY: struct stat is plain integers, for which all zeros is a valid value.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: fstat writes one struct stat into a local.
    let r = unsafe { syscall!(libc::SYS_fstat, fd, &mut st) };
    (r == 0).then_some(st)
}

/// lstat of a NUL-terminated path (the link itself, not what it points to).
pub fn lstat(path_nul: &[u8]) -> Option<libc::stat> {
    if !path_nul.contains(&0) {
        return None;
    }
    // SAFETY: struct stat is plain integers, for which all zeros is a valid value.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: the kernel reads a NUL-terminated path from a live buffer and writes one struct stat
    // into a local.
    let r = unsafe {
        syscall!(
            libc::SYS_newfstatat,
            libc::AT_FDCWD,
            path_nul.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW
        )
    };
    (r == 0).then_some(st)
}

/// The fd's file offset (lseek(fd, 0, SEEK_CUR)).
pub fn lseek_cur(fd: c_int) -> Option<u64> {
    // SAFETY: lseek takes three integers.
    let r = unsafe { syscall!(libc::SYS_lseek, fd, 0, libc::SEEK_CUR) };
    (r >= 0).then_some(r as u64)
}

pub fn getsockopt_int(fd: c_int, level: c_int, name: c_int) -> Option<c_int> {
    let mut v: c_int = 0;
    let mut len = core::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` (an int's size) bytes into `v` and the length into
    // `len`, both locals.
    let r = unsafe { syscall!(libc::SYS_getsockopt, fd, level, name, &mut v, &mut len) };
    (r == 0).then_some(v)
}

/// SO_RCVTIMEO / SO_SNDTIMEO in ns, when set.
pub fn timeout_ns(fd: c_int, name: c_int) -> Option<u64> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = core::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` (a timeval's size) bytes into `tv` and the length
    // into `len`, both locals.
    let r = unsafe {
        syscall!(
            libc::SYS_getsockopt,
            fd,
            libc::SOL_SOCKET,
            name,
            &mut tv,
            &mut len
        )
    };
    (r == 0 && (tv.tv_sec != 0 || tv.tv_usec != 0)).then(|| time::ns_of_timeval(&tv))
}

pub fn sockname(fd: c_int, peer: bool, out: &mut libc::sockaddr_storage) -> Option<usize> {
    let mut len = core::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let nr = if peer {
        libc::SYS_getpeername
    } else {
        libc::SYS_getsockname
    };
    // SAFETY: the kernel writes at most `len` (a sockaddr_storage's size) bytes into `out` and the
    // length into `len`.
    let r = unsafe { syscall!(nr, fd, out, &mut len) };
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
    let ts = time::timespec_of_ns(timeout_ns);
    // SAFETY: ppoll reads and writes one pollfd and reads one timespec, both locals; no sigmask
    // (null), whose size is 8.
    let r = unsafe { syscall!(libc::SYS_ppoll, &mut p, 1, &ts, 0, 8) };
    if r > 0 { p.revents } else { 0 }
}

/// Bytes in a socket's send queue not yet acknowledged (SIOCOUTQ); 0 on error.
pub fn outq_bytes(fd: c_int) -> c_int {
    ioctl_int(fd, libc::TIOCOUTQ).max(0)
}

pub fn fcntl_getfl(fd: c_int) -> c_int {
    // SAFETY: F_GETFL takes no argument and touches no memory.
    unsafe { syscall!(libc::SYS_fcntl, fd, libc::F_GETFL) as c_int }
}

pub fn fcntl_setfl(fd: c_int, flags: c_int) {
    // SAFETY: F_SETFL takes an integer and touches no memory.
    unsafe { syscall!(libc::SYS_fcntl, fd, libc::F_SETFL, flags) };
}

/// Duplicates `fd` to the lowest free number >= `min`, close-on-exec.
pub fn dup_cloexec_at_least(fd: c_int, min: c_int) -> c_int {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer and touches no memory.
    unsafe { syscall!(libc::SYS_fcntl, fd, libc::F_DUPFD_CLOEXEC, min) as c_int }
}

pub fn shutdown(fd: c_int, how: c_int) {
    // SAFETY: shutdown takes two integers.
    unsafe { syscall!(libc::SYS_shutdown, fd, how) };
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
    // SAFETY: `path` is NUL-terminated (at most 10 digits after 14 bytes, in 26) and the kernel
    // writes at most `out.len()` bytes into `out`.
    let r = unsafe {
        syscall!(
            libc::SYS_readlinkat,
            libc::AT_FDCWD,
            path.as_ptr(),
            out.as_mut_ptr(),
            out.len()
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
    // SAFETY: no new action (null); the kernel writes the old one, in its own layout with an
    // 8-byte mask, into a local of that layout.
    let r = unsafe { syscall!(libc::SYS_rt_sigaction, sig, 0, &mut old, 8) };
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
    // SAFETY: no new set (null), so SIG_BLOCK changes nothing; the kernel writes the 8-byte old set
    // into a local.
    let r = unsafe { syscall!(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, 0, &mut set, 8) };
    if r == 0 { set } else { u64::MAX }
}

/// An int-valued ioctl (FIONREAD, SIOCOUTQ); -1 on error.
pub fn ioctl_int(fd: c_int, req: libc::c_ulong) -> c_int {
    let mut n: c_int = 0;
    // SAFETY: the requests used here write one int into a local.
    let r = unsafe { syscall!(libc::SYS_ioctl, fd, req, &mut n) };
    if r == 0 { n } else { -1 }
}

/// A pipe's capacity (F_GETPIPE_SZ); -1 on error.
pub fn fcntl_getpipe_sz(fd: c_int) -> c_int {
    // SAFETY: F_GETPIPE_SZ takes no argument and touches no memory.
    unsafe { syscall!(libc::SYS_fcntl, fd, libc::F_GETPIPE_SZ) as c_int }
}

/// Raises SIGPIPE on this thread, as the kernel does for EPIPE without MSG_NOSIGNAL.
pub fn raise_sigpipe() {
    // SAFETY: tgkill takes three integers.
    unsafe { syscall!(libc::SYS_tgkill, getpid(), gettid(), libc::SIGPIPE) };
}

/// Sends `sig` to this whole process (kill(2), not a thread: SIGSTOP and SIGKILL act on all).
pub fn kill_self(sig: c_int) {
    // SAFETY: kill takes two integers.
    unsafe { syscall!(libc::SYS_kill, getpid(), sig) };
}

pub fn open_log(path: &std::ffi::CStr) -> c_int {
    let flags =
        libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    // SAFETY: the kernel reads a NUL-terminated path from a live CStr.
    let r = unsafe {
        syscall!(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            0o600
        )
    };
    r as c_int
}

pub fn socket(family: c_int, ty: c_int, proto: c_int) -> c_int {
    // SAFETY: socket takes three integers.
    unsafe { syscall!(libc::SYS_socket, family, ty, proto) as c_int }
}

pub fn bind(fd: c_int, addr: &libc::sockaddr_storage, len: usize) -> bool {
    // SAFETY: the kernel reads at most `len` bytes of `addr`; callers pass at most its size.
    unsafe { syscall!(libc::SYS_bind, fd, addr, len) == 0 }
}
