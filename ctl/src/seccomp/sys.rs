//! The system calls the seccomp backend makes on the target's behalf: notifications, pidfds,
//! the target's memory, and facts about our copies of its fds. Thin wrappers, one call each.

use libc::{c_int, c_void};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `pidfd_open(pid, 0)`.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, i32> {
    // SAFETY: no memory arguments; a non-negative result is a new fd we own.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(last_errno());
    }
    // SAFETY: `r` is a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// `pidfd_getfd`: our own copy of the target's fd (the same open file description).
pub fn pidfd_getfd(pidfd: &OwnedFd, fd: i32) -> Result<OwnedFd, i32> {
    // SAFETY: no memory arguments; a non-negative result is a new fd we own.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if r < 0 {
        return Err(last_errno());
    }
    // SAFETY: `r` is a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// Reads `len` bytes of the target's memory at `addr` into `buf` (all or nothing).
pub fn read_target(pid: i32, addr: u64, buf: &mut [u8]) -> bool {
    if buf.is_empty() {
        return true;
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut c_void,
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` covers our own buffer; the remote range is only read by the kernel, which
    // checks it against the target's address space.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    n == buf.len() as isize
}

/// Writes `buf` into the target's memory at `addr` (all or nothing).
pub fn write_target(pid: i32, addr: u64, buf: &[u8]) -> bool {
    if buf.is_empty() {
        return true;
    }
    let local = libc::iovec {
        iov_base: buf.as_ptr() as *mut c_void,
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` is our buffer, only read; the kernel checks the remote range.
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    n == buf.len() as isize
}

/// A NUL-terminated string of the target's at `addr` (without its NUL; at most 64 KiB), read a
/// page at a time so that a string ending just before an unmapped page is still read.
pub fn read_target_cstr(pid: i32, addr: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < 65536 {
        let chunk = (4096 - (at % 4096)) as usize;
        let mut buf = vec![0u8; chunk];
        if !read_target(pid, at, &mut buf) {
            return None;
        }
        if let Some(end) = buf.iter().position(|b| *b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Some(out);
        }
        out.extend_from_slice(&buf);
        at += chunk as u64;
    }
    Some(out)
}

/// Reads a plain-old-data value of the target's (an iovec, a msghdr) at `addr`.
pub fn read_target_value<T: Copy>(pid: i32, addr: u64) -> Option<T> {
    let mut v = std::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: the slice covers exactly the value's bytes, which we own.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, std::mem::size_of::<T>())
    };
    // SAFETY: every T read here is a C struct of integers and pointers: any bytes are a value.
    read_target(pid, addr, bytes).then(|| unsafe { v.assume_init() })
}

/// Blocks for the next notification.
pub fn notif_recv(listener: RawFd) -> Result<libc::seccomp_notif, i32> {
    // SAFETY: zeroed is the state the kernel requires before RECV.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: RECV fills the struct we pass, of the size its request code names.
    let r = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n) };
    if r < 0 { Err(last_errno()) } else { Ok(n) }
}

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (uapi/linux/seccomp.h; not in the libc crate).
const SYNC_WAKE_UP: u64 = 1;

/// Asks the kernel (6.6+) to hand each notification and each answer over on the current CPU:
/// the target's thread and ours take turns on one CPU instead of waking each other across
/// CPUs, which costs an inter-processor interrupt each way (most of the round trip on a VM).
/// Older kernels refuse it (EINVAL); the backend works without it, only slower.
pub fn notif_sync_wake_up(listener: RawFd) -> bool {
    // SAFETY: SET_FLAGS takes the flags themselves as its argument, not a pointer to them.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS, SYNC_WAKE_UP) == 0 }
}

/// Answers notification `id`: `Ok(val)` as the call's return, `Err(errno)` as its failure, or
/// (`continue_call`) lets the kernel run the call itself.
pub fn notif_send(listener: RawFd, id: u64, answer: Answer) -> Result<(), i32> {
    let mut resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: 0,
        flags: 0,
    };
    match answer {
        Answer::Later => return Ok(()),
        Answer::Continue => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        Answer::Return(v) => resp.val = v,
        Answer::Fail(errno) => resp.error = -errno,
    }
    // SAFETY: SEND reads the struct we pass, of the size its request code names.
    let r = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    if r < 0 { Err(last_errno()) } else { Ok(()) }
}

/// Whether notification `id` is still pending (its thread has not been killed or interrupted):
/// checked after reading the target's memory, before acting on what was read.
pub fn notif_valid(listener: RawFd, id: u64) -> bool {
    let mut id = id;
    // SAFETY: ID_VALID reads one u64.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &mut id) == 0 }
}

/// How a notification is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Answered later, from another thread (a delay), or never (the process was killed).
    Later,
    Continue,
    Return(i64),
    Fail(i32),
}

pub fn fstat(fd: RawFd) -> Option<libc::stat> {
    // SAFETY: zeroed is a valid stat; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is ours.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st)
}

pub fn getsockopt_int(fd: RawFd, level: c_int, name: c_int) -> Option<c_int> {
    let mut v: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are ours and sized as the option is.
    let r = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            &mut v as *mut c_int as *mut c_void,
            &mut len,
        )
    };
    (r == 0).then_some(v)
}

pub fn ioctl_int(fd: RawFd, req: libc::Ioctl) -> i64 {
    let mut v: c_int = 0;
    // SAFETY: the FIONREAD family writes one int.
    if unsafe { libc::ioctl(fd, req, &mut v) } < 0 {
        return -1;
    }
    i64::from(v)
}

pub fn tcp_info(fd: RawFd) -> Option<libc::tcp_info> {
    // SAFETY: zeroed is a valid tcp_info; the kernel fills what it has.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` are ours.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut libc::tcp_info as *mut c_void,
            &mut len,
        )
    };
    (r == 0).then_some(info)
}

/// SO_RCVTIMEO or SO_SNDTIMEO (`name`) of `fd` in ns (None: no timeout set).
pub fn socket_timeout_ns(fd: RawFd, name: c_int) -> Option<u64> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `tv` and `len` are ours, sized as the option is.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            &mut tv as *mut libc::timeval as *mut libc::c_void,
            &mut len,
        )
    };
    let ns = tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1000;
    (r == 0 && ns > 0).then_some(ns)
}

pub fn poll_one(fd: RawFd, events: i16) -> i16 {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one pollfd of ours, no wait.
    if unsafe { libc::poll(&mut p, 1, 0) } == 1 {
        p.revents
    } else {
        0
    }
}

pub fn getfl(fd: RawFd) -> c_int {
    // SAFETY: no memory arguments.
    unsafe { libc::fcntl(fd, libc::F_GETFL) }
}

pub fn setfl(fd: RawFd, flags: c_int) {
    // SAFETY: no memory arguments.
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
}

/// A socket address of ours, as the kernel returned it.
pub struct SockAddr {
    pub storage: libc::sockaddr_storage,
    pub len: libc::socklen_t,
}

pub fn sockname(fd: RawFd, peer: bool) -> SockAddr {
    // SAFETY: zeroed is a valid sockaddr_storage.
    let mut a = SockAddr {
        // SAFETY: sockaddr_storage is plain data; all zeroes is a valid (AF_UNSPEC) value.
        storage: unsafe { std::mem::zeroed() },
        len: std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
    };
    let p = &mut a.storage as *mut libc::sockaddr_storage as *mut libc::sockaddr;
    // SAFETY: the storage and its length are ours.
    let r = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut a.len)
        } else {
            libc::getsockname(fd, p, &mut a.len)
        }
    };
    if r != 0 {
        a.len = 0;
    }
    a
}

impl SockAddr {
    pub fn endpoint(&self) -> chaos_engine::addr::Endpoint<'_> {
        use chaos_engine::addr::Endpoint;
        use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
        if self.len == 0 {
            return Endpoint::Unknown;
        }
        match self.storage.ss_family as c_int {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a sockaddr_in for this family.
                let sin = unsafe { &*(&self.storage as *const _ as *const libc::sockaddr_in) };
                Endpoint::Ip(SocketAddr::from((
                    Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the kernel wrote a sockaddr_in6 for this family.
                let sin = unsafe { &*(&self.storage as *const _ as *const libc::sockaddr_in6) };
                Endpoint::Ip(SocketAddr::from((
                    Ipv6Addr::from(sin.sin6_addr.s6_addr),
                    u16::from_be(sin.sin6_port),
                )))
            }
            libc::AF_UNIX => {
                // SAFETY: the kernel wrote a sockaddr_un for this family.
                let sun = unsafe { &*(&self.storage as *const _ as *const libc::sockaddr_un) };
                let n = (self.len as usize)
                    .saturating_sub(2)
                    .min(sun.sun_path.len());
                // SAFETY: c_char and u8 have the same layout.
                let path =
                    unsafe { std::slice::from_raw_parts(sun.sun_path.as_ptr() as *const u8, n) };
                let path = match path.iter().position(|b| *b == 0) {
                    Some(0) => path, // abstract: the engine names it with `@`
                    Some(end) => &path[..end],
                    None => path,
                };
                Endpoint::Unix(path)
            }
            _ => Endpoint::Unknown,
        }
    }
}

/// `tid`'s thread group (its process), from /proc.
pub fn tgid_of(tid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The signals `tid` blocks, ignores and catches (a handler installed), from /proc.
pub fn signal_masks(tid: i32) -> Option<(u64, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    };
    Some((field("SigBlk:")?, field("SigIgn:")?, field("SigCgt:")?))
}

/// CLOCK_BOOTTIME now, in ns: the clock /proc's `starttime` counts in.
pub fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the kernel to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `SECCOMP_IOCTL_NOTIF_ADDFD`: installs a copy of our `src` in the target of notification `id`
/// at its lowest free number (close-on-exec if `cloexec`); with `send`, answers the call with
/// that number in the same step (Linux 5.14), so no signal can leave the fd installed and the
/// call failed. The number in the target.
pub fn notif_addfd(
    listener: RawFd,
    id: u64,
    src: RawFd,
    cloexec: bool,
    send: bool,
) -> Result<i32, i32> {
    let mut add = libc::seccomp_notif_addfd {
        id,
        flags: if send {
            libc::SECCOMP_ADDFD_FLAG_SEND as u32
        } else {
            0
        },
        srcfd: src as u32,
        newfd: 0,
        newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
    };
    // SAFETY: ADDFD reads the struct we pass, of the size its request code names.
    let r = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_ADDFD, &mut add) };
    if r < 0 { Err(last_errno()) } else { Ok(r) }
}
