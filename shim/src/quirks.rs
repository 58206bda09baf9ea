//! Applying platform quirks (chaos_engine::quirk) in the hooks. Each check reads the socket's state
//! without side effects (`sockstate`), returns the errno the platform would, and the hook logs it with
//! the quirk's name.

use crate::fdtable::{self, Meta, Slot};
use crate::plan::Call;
use crate::runtime::Runtime;
use crate::sockaddr::SockAddrBuf;
use crate::sockstate::{
    self, ACCEPT_ERROR_GIVEN, CONNECT_FAILED, CONNECT_INTERRUPTED, CONNECTED, LINGERING,
    PENDING_RESET, SEND_FAILED, SHUT_RD, SHUT_WR,
};
use crate::sys;
use chaos_engine::chance::draw;
use chaos_engine::key::Dir;
use chaos_engine::key::{Key, Site};
use chaos_engine::kind::FdKind;
use chaos_engine::op::OpClass;
use chaos_engine::quirk::Quirk;
use core::sync::atomic::Ordering::Relaxed;
use libc::{c_int, c_void, sockaddr, socklen_t};

/// A quirk that fired: the errno to fail with.
#[derive(Clone, Copy, Debug)]
pub struct Hit {
    pub quirk: Quirk,
    pub errno: c_int,
}

/// None when the quirk's line could not be logged: then the platform behaves as Linux does.
fn hit(quirk: Quirk, errno: c_int) -> Option<Hit> {
    crate::log::writable().then_some(Hit { quirk, errno })
}

/// macOS `kern.ipc.maxsockbuf` (8 MiB) scaled as sbreserve does (x 2048/2304), before macOS 14.4.
const MAC_SOCKBUF_MAX: i64 = 8 * 1024 * 1024 * 2048 / 2304;
const UDP_MAXDGRAM: usize = 9216;
const UNIX_MAXDGRAM: usize = 2048;
const UNIX_PATH_MAX: usize = 103;

/// The path in a sockaddr_un, if it is a pathname (not abstract) unix address.
fn unix_path_len(addr: *const sockaddr, len: socklen_t) -> Option<usize> {
    if addr.is_null()
        || (len as usize) < 2
        // SAFETY: non-null, and the program's `len` (at least 2) bytes cover the family.
        || unsafe { (*addr).sa_family } as c_int != libc::AF_UNIX
    {
        return None;
    }
    let un = addr as *const libc::sockaddr_un;
    let max = (len as usize - 2).min(108);
    // SAFETY: sun_path starts 2 bytes in and `max` is `len - 2`, so the slice stays within the
    // program's `len` bytes.
    let path = unsafe { core::slice::from_raw_parts((*un).sun_path.as_ptr() as *const u8, max) };
    match path.first() {
        None | Some(0) => None, // unnamed or abstract
        Some(_) => Some(path.iter().position(|b| *b == 0).unwrap_or(max)),
    }
}

/// bind, connect, sendto to a unix path longer than the platform's sun_path holds.
pub fn check_address(rt: &Runtime, addr: *const sockaddr, len: socklen_t) -> Option<Hit> {
    if rt.quirks.has(Quirk::UnixPathMax103)
        && unix_path_len(addr, len).is_some_and(|n| n > UNIX_PATH_MAX)
    {
        return hit(Quirk::UnixPathMax103, libc::EINVAL);
    }
    None
}

/// Before a data call.
pub fn before_data(rt: &Runtime, slot: &Slot, meta: Meta, call: &Call) -> Option<Hit> {
    let q = rt.quirks;
    if q.has(Quirk::IoOverIntMax)
        && !call.op.is_multi_message()
        && call.requested > i32::MAX as usize
    {
        return hit(Quirk::IoOverIntMax, libc::EINVAL);
    }
    let kind = meta.kind();
    match call.dir() {
        Some(Dir::Rx)
            if q.has(Quirk::WriteAfterResetEpipe)
                && slot.qstate.load(Relaxed) & PENDING_RESET != 0
                && slot.qstate.fetch_and(!PENDING_RESET, Relaxed) & PENDING_RESET != 0 =>
        {
            return hit(Quirk::WriteAfterResetEpipe, libc::ECONNRESET);
        }
        Some(Dir::Tx) => {
            let datagram = matches!(kind, FdKind::Udp | FdKind::Unix) && !meta.stream();
            if !call.dest.is_null() {
                if let Some(h) = check_address(rt, call.dest, call.dest_len) {
                    return Some(h);
                }
                if q.has(Quirk::SendtoConnectedEisconn)
                    && datagram
                    && SockAddrBuf::read(call.fd, true).len > 0
                {
                    return hit(Quirk::SendtoConnectedEisconn, libc::EISCONN);
                }
            }
            if q.has(Quirk::DgramSizeLimit) && datagram && !call.op.is_multi_message() {
                let default = if kind == FdKind::Udp {
                    UDP_MAXDGRAM
                } else {
                    UNIX_MAXDGRAM
                };
                let limit = default.max(slot.sndbuf.load(Relaxed) as usize);
                if call.requested > limit {
                    return hit(Quirk::DgramSizeLimit, libc::EMSGSIZE);
                }
            }
        }
        _ => {}
    }
    None
}

/// Whether a race-type quirk fires this time: `quirk_probability`, drawn from the seed like a rule's,
/// keyed by the fd's connection and its count of such draws.
fn race_fires(rt: &Runtime, slot: &Slot, quirk: Quirk) -> bool {
    let n = slot.quirk_draws.fetch_add(1, Relaxed);
    let p = rt.policy.quirk_probability;
    if p >= 1.0 {
        return true;
    }
    let key = Key {
        process: crate::runtime::PROCESS_KEY.load(Relaxed),
        conn: slot.conn.load(Relaxed),
        rule: 0x8000 | quirk as u16,
        site: Site::Call {
            class: OpClass::Writes,
            n: n as u64,
        },
    };
    (draw(rt.seed, &key).chance as f64) < p * 18_446_744_073_709_551_616.0
}

/// Whether a datagram send on an AF_UNIX socket must not block (unix-dgram-enobufs).
pub fn unix_dgram_enobufs(rt: &Runtime, meta: Meta, call: &Call) -> bool {
    rt.quirks.has(Quirk::UnixDgramEnobufs)
        && call.dir() == Some(Dir::Tx)
        && meta.kind() == FdKind::Unix
        && !meta.stream()
}

/// After a data call returned `r` with `errno`: what the platform would have reported instead.
pub fn after_data(
    rt: &Runtime,
    slot: &Slot,
    meta: Meta,
    call: &Call,
    r: isize,
    errno: c_int,
) -> Option<Hit> {
    let tx = call.dir() == Some(Dir::Tx);
    if tx && r == -1 && errno == libc::EAGAIN && unix_dgram_enobufs(rt, meta, call) {
        return hit(Quirk::UnixDgramEnobufs, libc::ENOBUFS);
    }
    if rt.quirks.has(Quirk::SendResetEprototype)
        && tx
        && r == -1
        && (errno == libc::ECONNRESET || errno == libc::EPIPE)
        && meta.kind() == FdKind::Tcp
        && slot.qstate.fetch_or(SEND_FAILED, Relaxed) & SEND_FAILED == 0
        && race_fires(rt, slot, Quirk::SendResetEprototype)
    {
        return hit(Quirk::SendResetEprototype, libc::EPROTOTYPE);
    }
    if rt.quirks.has(Quirk::MsgNosignalIgnored)
        && tx
        && r == -1
        && errno == libc::EPIPE
        && call.msg_flags & libc::MSG_NOSIGNAL != 0
    {
        return hit(Quirk::MsgNosignalIgnored, libc::EPIPE);
    }
    if rt.quirks.has(Quirk::WriteAfterResetEpipe)
        && call.dir() == Some(Dir::Tx)
        && r == -1
        && errno == libc::ECONNRESET
        && meta.kind() == FdKind::Tcp
    {
        // BSD checks "can't send more" before the pending error: EPIPE now, ECONNRESET on the next read.
        slot.qstate.fetch_or(PENDING_RESET, Relaxed);
        return hit(Quirk::WriteAfterResetEpipe, libc::EPIPE);
    }
    None
}

/// A setsockopt call's arguments.
#[derive(Clone, Copy)]
pub struct SockOpt {
    pub level: c_int,
    pub name: c_int,
    pub val: *const c_void,
    pub len: socklen_t,
}

impl SockOpt {
    fn int_value(&self) -> Option<c_int> {
        (!self.val.is_null() && self.len as usize >= core::mem::size_of::<c_int>())
            // SAFETY: the program's non-null option value of at least an int's size; read
            // unaligned, as the kernel copies it (a char buffer may hold it anywhere).
            .then(|| unsafe { core::ptr::read_unaligned(self.val as *const c_int) })
    }
}

pub fn setsockopt(rt: &Runtime, fd: c_int, slot: &Slot, meta: Meta, opt: SockOpt) -> Option<Hit> {
    let (level, name) = (opt.level, opt.name);
    let q = rt.quirks;
    let kind = meta.kind();
    let sol = level == libc::SOL_SOCKET;
    if q.has(Quirk::NoReuseport) && sol && name == libc::SO_REUSEPORT {
        return hit(Quirk::NoReuseport, libc::ENOPROTOOPT);
    }
    if q.has(Quirk::Wsl1SockoptGaps)
        && ((sol && name == libc::SO_REUSEPORT)
            || (level == libc::IPPROTO_TCP && name == libc::TCP_KEEPCNT)
            || (sol && name == libc::SO_LINGER && kind == FdKind::Unix))
    {
        return hit(Quirk::Wsl1SockoptGaps, libc::EINVAL);
    }
    if q.has(Quirk::SetsockoptAfterShutdown)
        && matches!(kind, FdKind::Tcp | FdKind::Unix)
        && sockstate::shut_state(fd, kind, slot).full()
    {
        return hit(Quirk::SetsockoptAfterShutdown, libc::EINVAL);
    }
    if q.has(Quirk::SockbufEnobufs)
        && sol
        && (name == libc::SO_SNDBUF || name == libc::SO_RCVBUF)
        && let Some(v) = opt.int_value()
    {
        let v = v as i64;
        if v < 1 {
            return hit(Quirk::SockbufEnobufs, libc::EINVAL);
        }
        if v > MAC_SOCKBUF_MAX {
            return hit(Quirk::SockbufEnobufs, libc::ENOBUFS);
        }
    }
    None
}

/// Records what a successful setsockopt set that quirks depend on.
pub fn after_setsockopt(slot: &Slot, opt: SockOpt) {
    if opt.level == libc::SOL_SOCKET
        && opt.name == libc::SO_SNDBUF
        && let Some(v) = opt.int_value()
    {
        slot.sndbuf.store(v.max(0) as u32, Relaxed);
    }
    if opt.level == libc::SOL_SOCKET
        && opt.name == libc::SO_LINGER
        && !opt.val.is_null()
        && opt.len as usize >= core::mem::size_of::<libc::linger>()
    {
        // SAFETY: the program's non-null value of at least a linger's size (checked above),
        // read unaligned as the kernel copies it.
        let l = unsafe { core::ptr::read_unaligned(opt.val as *const libc::linger) };
        if l.l_onoff != 0 && l.l_linger > 0 {
            slot.qstate.fetch_or(LINGERING, Relaxed);
        } else {
            slot.qstate.fetch_and(!LINGERING, Relaxed);
        }
    }
}

pub fn shutdown(rt: &Runtime, fd: c_int, slot: &Slot, meta: Meta, how: c_int) -> Option<Hit> {
    if !rt.quirks.has(Quirk::ShutdownEnotconn) || !matches!(meta.kind(), FdKind::Tcp | FdKind::Unix)
    {
        return None;
    }
    let enotconn = || hit(Quirk::ShutdownEnotconn, libc::ENOTCONN);
    if sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN) == Some(1) {
        return enotconn();
    }
    if meta.kind() == FdKind::Tcp && sockstate::tcp_disconnected_after_connect(fd, slot) {
        return enotconn();
    }
    let shut = sockstate::shut_state(fd, meta.kind(), slot);
    let wants_rd = how == libc::SHUT_RD || how == libc::SHUT_RDWR;
    if wants_rd && shut.cant_recv {
        return enotconn(); // and the write side is left open: our FIN is never sent
    }
    if how == libc::SHUT_WR && slot.qstate.load(Relaxed) & SHUT_WR != 0 {
        return enotconn();
    }
    None
}

pub fn after_shutdown(slot: &Slot, how: c_int) {
    let bits = match how {
        libc::SHUT_RD => SHUT_RD,
        libc::SHUT_WR => SHUT_WR,
        _ => SHUT_RD | SHUT_WR,
    };
    slot.qstate.fetch_or(bits, Relaxed);
}

pub fn getpeername(rt: &Runtime, fd: c_int, slot: &Slot, meta: Meta) -> Option<Hit> {
    if rt.quirks.has(Quirk::GetpeernameEinval)
        && matches!(meta.kind(), FdKind::Tcp | FdKind::Unix)
        && sockstate::shut_state(fd, meta.kind(), slot).full()
    {
        return hit(Quirk::GetpeernameEinval, libc::EINVAL);
    }
    None
}

/// What happens to a connection the client reset while it sat in the accept queue.
pub enum Aborted {
    /// BSD: the dead connection is closed and accept fails ECONNABORTED.
    Fail(Hit),
    /// macOS: the dead socket is returned with an empty address.
    EmptyAddress,
}

pub fn aborted_accept(rt: &Runtime, new_fd: c_int) -> Option<Aborted> {
    let q = rt.quirks;
    if !(q.has(Quirk::AcceptAbortedEconnaborted) || q.has(Quirk::AcceptAbortedEmptyAddress)) {
        return None;
    }
    let slot = fdtable::slot(new_fd)?;
    if sockstate::tcp_state(new_fd) != Some(sockstate::TCP_CLOSE_STATE) {
        return None;
    }
    if q.has(Quirk::AcceptAbortedEconnaborted)
        && race_fires(rt, slot, Quirk::AcceptAbortedEconnaborted)
    {
        return hit(Quirk::AcceptAbortedEconnaborted, libc::ECONNABORTED).map(Aborted::Fail);
    }
    if q.has(Quirk::AcceptAbortedEmptyAddress)
        && race_fires(rt, slot, Quirk::AcceptAbortedEmptyAddress)
        && crate::log::writable()
    {
        return Some(Aborted::EmptyAddress);
    }
    None
}

/// Before connect(): a retry on a socket whose last connect was interrupted or failed.
pub fn connect_retry(rt: &Runtime, fd: c_int) -> Option<Hit> {
    if !rt.quirks.has(Quirk::ConnectRetry) {
        return None;
    }
    let slot = fdtable::slot(fd)?;
    let state = slot.qstate.load(Relaxed);
    let tcp = sockstate::tcp_state(fd);
    if state & CONNECT_FAILED != 0
        || (state & CONNECTED != 0 && tcp == Some(sockstate::TCP_CLOSE_STATE))
    {
        return hit(Quirk::ConnectRetry, libc::EINVAL);
    }
    if state & CONNECT_INTERRUPTED != 0 {
        let nonblocking = sys::fcntl_getfl(fd) & libc::O_NONBLOCK != 0;
        let errno = if nonblocking && tcp == Some(sockstate::TCP_SYN_SENT) {
            libc::EALREADY
        } else {
            libc::EISCONN
        };
        return hit(Quirk::ConnectRetry, errno);
    }
    None
}

/// Records how a connect() ended, for connect-retry.
pub fn after_connect(fd: c_int, r: c_int, errno: c_int) {
    let Some(slot) = fdtable::slot(fd) else {
        return;
    };
    if r == 0 || errno == libc::EINPROGRESS {
        slot.qstate
            .fetch_and(!(CONNECT_INTERRUPTED | CONNECT_FAILED), Relaxed);
        slot.qstate.fetch_or(CONNECTED, Relaxed);
    } else if errno == libc::EINTR {
        slot.qstate
            .fetch_or(CONNECT_INTERRUPTED | CONNECTED, Relaxed);
    } else if matches!(
        errno,
        libc::ECONNREFUSED
            | libc::ETIMEDOUT
            | libc::ENETUNREACH
            | libc::EHOSTUNREACH
            | libc::ECONNRESET
    ) {
        slot.qstate.fetch_or(CONNECT_FAILED, Relaxed);
    }
}

fn is_loopback(addr: *const sockaddr, len: socklen_t) -> bool {
    // SAFETY: the program passed `len` bytes at `addr` to connect() or bind().
    matches!(unsafe { crate::sockaddr::endpoint_of(addr, len as usize) },
        chaos_engine::addr::Endpoint::Ip(sa) if sa.ip().is_loopback())
}

/// After a non-blocking TCP connect to a local address returned EINPROGRESS: platforms that report a
/// refusal at once. Waits up to 1 ms for the handshake's outcome; never reads SO_ERROR.
pub fn connect_refused_now(
    rt: &Runtime,
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> Option<Hit> {
    let q = rt.quirks;
    let (quirk, errno) = if q.has(Quirk::ConnectRefusedImmediately) {
        (Quirk::ConnectRefusedImmediately, libc::ECONNREFUSED)
    } else if q.has(Quirk::ConnectRefusedEinval) {
        (Quirk::ConnectRefusedEinval, libc::EINVAL)
    } else {
        return None;
    };
    if !is_loopback(addr, len) {
        return None;
    }
    sys::poll_one(fd, libc::POLLOUT, 1_000_000);
    if sockstate::tcp_state(fd) == Some(sockstate::TCP_CLOSE_STATE) {
        return hit(quirk, errno);
    }
    None
}

/// A unix stream connect to a listener whose backlog is full: refused instead of EAGAIN or waiting.
/// Makes the real connect non-blocking for the one call. None: the quirk does not apply.
pub fn unix_connect(
    rt: &Runtime,
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> Option<(c_int, Option<Hit>)> {
    if !rt.quirks.has(Quirk::UnixBacklogEconnrefused)
        || addr.is_null()
        || (len as usize) < 2
        // SAFETY: non-null, and the program's `len` (at least 2) bytes cover the family.
        || unsafe { (*addr).sa_family } as c_int != libc::AF_UNIX
        || sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE) != Some(libc::SOCK_STREAM)
    {
        return None;
    }
    let flags = sys::fcntl_getfl(fd);
    sys::fcntl_setfl(fd, flags | libc::O_NONBLOCK);
    // SAFETY: the program's own connect() arguments, passed on unchanged.
    let r = unsafe { crate::real::connect(fd, addr, len) };
    let e = sys::errno();
    sys::fcntl_setfl(fd, flags);
    if r == -1 && e == libc::EAGAIN {
        if let Some(h) = hit(Quirk::UnixBacklogEconnrefused, libc::ECONNREFUSED) {
            return Some((-1, Some(h)));
        }
        // Withheld (it could not be logged): the connect Linux makes, which waits for room.
        // Nothing was queued by the attempt that found the backlog full.
        // SAFETY: the program's arguments, as the caller got them.
        let r = unsafe { crate::real::connect(fd, addr, len) };
        return Some((r, None));
    }
    sys::set_errno(e);
    Some((r, None))
}

/// After accept() returned `new_fd` from `listener`.
pub fn after_accept(
    rt: &Runtime,
    listener: c_int,
    new_fd: c_int,
    plain_accept: bool,
) -> Option<Quirk> {
    if let Some(slot) = fdtable::slot(new_fd) {
        slot.qstate.fetch_or(CONNECTED, Relaxed);
    }
    if plain_accept && rt.quirks.has(Quirk::AcceptInheritsNonblock) {
        let lflags = sys::fcntl_getfl(listener);
        if lflags >= 0 && lflags & libc::O_NONBLOCK != 0 && crate::log::writable() {
            let flags = sys::fcntl_getfl(new_fd);
            sys::fcntl_setfl(new_fd, flags | libc::O_NONBLOCK);
            return Some(Quirk::AcceptInheritsNonblock);
        }
    }
    None
}

pub fn socket_type(rt: &Runtime, ty: c_int) -> Option<Hit> {
    if rt.quirks.has(Quirk::NoSocketTypeFlags)
        && ty & (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0
    {
        return hit(Quirk::NoSocketTypeFlags, libc::EINVAL);
    }
    None
}

/// Linux errors accept(2) passes on from a queued connection's network ("treat them like EAGAIN").
const ACCEPT_PENDING_ERRORS: [c_int; 8] = [
    libc::ENETDOWN,
    libc::EPROTO,
    libc::ENOPROTOOPT,
    libc::EHOSTDOWN,
    libc::ENONET,
    libc::EHOSTUNREACH,
    libc::EOPNOTSUPP,
    libc::ENETUNREACH,
];

/// Before accept() on a TCP listener: a pending network error for the queued connection. Only when
/// a connection is queued (a blocking accept with none would wait, not fail), and at most once in a
/// row, so a retry gets the connection as the man page promises.
pub fn accept_pending_error(rt: &Runtime, listener: c_int, slot: &Slot, meta: Meta) -> Option<Hit> {
    if !rt.quirks.has(Quirk::AcceptPendingError) || meta.kind() != FdKind::Tcp {
        return None;
    }
    if slot.qstate.fetch_and(!ACCEPT_ERROR_GIVEN, Relaxed) & ACCEPT_ERROR_GIVEN != 0 {
        return None;
    }
    if sys::poll_one(listener, libc::POLLIN, 0) & libc::POLLIN == 0
        || !race_fires(rt, slot, Quirk::AcceptPendingError)
    {
        return None;
    }
    slot.qstate.fetch_or(ACCEPT_ERROR_GIVEN, Relaxed);
    let n = slot.quirk_draws.load(Relaxed) as usize;
    hit(
        Quirk::AcceptPendingError,
        ACCEPT_PENDING_ERRORS[n % ACCEPT_PENDING_ERRORS.len()],
    )
}

/// Before close() on a TCP socket: the error the platform's close would report after releasing it.
pub fn close(rt: &Runtime, fd: c_int, slot: &Slot, meta: Meta) -> Option<Hit> {
    let q = rt.quirks;
    if !(q.has(Quirk::CloseResetEconnreset) || q.has(Quirk::CloseLingerEintr))
        || meta.kind() != FdKind::Tcp
    {
        return None;
    }
    let state = slot.qstate.load(Relaxed);
    if q.has(Quirk::CloseResetEconnreset)
        && state & CONNECTED != 0
        && let Some(info) = sockstate::tcp_info(fd)
        && info.state == sockstate::TCP_CLOSE_STATE
    {
        // Linux purges the send queue on a reset, so "unsent data" is what this process wrote
        // beyond what the peer acknowledged (an active open's count includes its SYN).
        let syn = u64::from(meta.role() == fdtable::Role::Out);
        let written = slot.pos[1].load(Relaxed);
        if written + syn > info.bytes_acked {
            return hit(Quirk::CloseResetEconnreset, libc::ECONNRESET);
        }
    }
    if q.has(Quirk::CloseLingerEintr)
        && state & LINGERING != 0
        && sys::outq_bytes(fd) > 0
        && sys::interrupting_handler_installed()
        && race_fires(rt, slot, Quirk::CloseLingerEintr)
    {
        return hit(Quirk::CloseLingerEintr, libc::EINTR);
    }
    None
}

pub fn accept4(rt: &Runtime) -> Option<Hit> {
    if rt.quirks.has(Quirk::NoAccept4) {
        return hit(Quirk::NoAccept4, libc::ENOSYS);
    }
    None
}

pub fn note_connected(fd: c_int) {
    if let Some(slot) = fdtable::slot(fd) {
        slot.qstate.fetch_or(CONNECTED, Relaxed);
    }
}
