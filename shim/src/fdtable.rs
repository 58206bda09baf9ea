//! The lock-free fd cache: one slot of atomics per fd number.
//!
//! A slot holds what the fd is (kind, role, connection key) and the bitmask of rules whose target
//! covers it, so the common case in a hook is two loads and a branch. It is a cache: hooks that create
//! or destroy fds (socket, accept, connect, close, dup2...) invalidate it, and an unknown fd is
//! classified once (fstat, getsockopt, getsockname/getpeername) on its first hooked call.

use crate::sys;
use chaos_engine::addr::{Endpoint, ipv4, ipv6};
use chaos_engine::inject::conn_key;
use chaos_engine::kind::FdKind;
use chaos_engine::op::CLASS_COUNT;
use chaos_engine::policy::{FdFacts, Policy};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use libc::c_int;

/// fds at or above this number are passed through untouched.
pub const MAX_FDS: usize = 65536;

const VALID: u64 = 1 << 63;
const STREAM: u64 = 1 << 35;
/// Set while the fd is stalled: every hooked call on it takes the slow path, whatever its rules.
pub const FORCE_SLOW: u64 = 1 << 62;
/// A TCP connection of a process that partitions can cut (it is in a run's directory): its data
/// calls take the targeted path, which looks at the cut matrix while any cut is in force.
pub const PEERED: u64 = 1 << 61;
/// A regular file under a `[[disk]]`: its writes, truncations and allocations are accounted.
pub const DISK: u64 = 1 << 60;
/// A regular file under `[durability]`: its changes are journaled until a sync makes them durable.
pub const DURABLE: u64 = 1 << 59;

/// How the connection came to be; part of the connection key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// We connect()ed it.
    Out = 0,
    /// accept() returned it.
    In = 1,
    Listen = 2,
    /// Anything else: unconnected sockets, pipes, files, inherited fds.
    Other = 3,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Out => "out",
            Role::In => "in",
            Role::Listen => "listen",
            Role::Other => "fd",
        }
    }
    fn from_bits(b: u64) -> Role {
        match b & 3 {
            0 => Role::Out,
            1 => Role::In,
            2 => Role::Listen,
            _ => Role::Other,
        }
    }
}

/// A decoded slot meta word.
#[derive(Clone, Copy, Debug)]
pub struct Meta(pub u64);

impl Meta {
    #[inline(always)]
    pub fn valid(self) -> bool {
        self.0 & VALID != 0
    }
    #[inline(always)]
    pub fn mask(self) -> u32 {
        self.0 as u32
    }
    pub fn kind(self) -> FdKind {
        FdKind::from_bits(((self.0 >> 32) & 7) as u8)
    }
    /// A byte stream: TCP, unix SOCK_STREAM, pipe, regular file.
    pub fn stream(self) -> bool {
        self.0 & STREAM != 0
    }
    pub fn role(self) -> Role {
        Role::from_bits(self.0 >> 36)
    }
    fn pack(mask: u32, kind: FdKind, stream: bool, role: Role) -> u64 {
        VALID
            | mask as u64
            | ((kind as u64) << 32)
            | if stream { STREAM } else { 0 }
            | ((role as u64) << 36)
    }
}

pub struct Slot {
    pub meta: AtomicU64,
    pub ino: AtomicU64,
    pub conn: AtomicU64,
    pub ordinal: AtomicU32,
    /// Bytes moved so far, [rx, tx].
    pub pos: [AtomicU64; 2],
    /// Calls made at the current offset, [rx, tx].
    pub attempt: [AtomicU32; 2],
    /// One past the read offset of the last grid fault delivered (`chaos_engine::grid`): a cell
    /// fires once, so the retry after an injected EINTR or EAGAIN is not faulted again.
    pub rx_done: AtomicU64,
    /// Calls per op class on this connection, for `after`/`every` and non-stream keys.
    pub calls: [AtomicU32; CLASS_COUNT],
    /// CLOCK_MONOTONIC ns until which [rx, tx] is stalled; 0 when not stalled.
    pub stall_until: [AtomicU64; 2],
    /// What platform quirks need to remember about the socket (`sockstate` bits). Kept across
    /// reclassification; cleared for a fresh fd.
    pub qstate: AtomicU32,
    /// SO_SNDBUF the program asked for (0: never set), for datagram size limits.
    pub sndbuf: AtomicU32,
    /// Race-type quirk draws made on this fd: the position in their decision keys.
    pub quirk_draws: AtomicU32,
    /// A TCP connection's peer port (0: none), by which partitions know who is at the other end.
    pub peer_port: AtomicU32,
    /// Directions (bit 0 rx, bit 1 tx) whose stall is a hold (a partition's, or a blackhole's),
    /// renewed while it lasts.
    pub held: AtomicU32,
    /// Per direction: 0 for a partition's hold, rule + 1 for a blackhole's.
    pub hold_rule: [AtomicU32; 2],
    /// When a cut first held this connection's writes back (0: nothing unacknowledged), and when
    /// that data times out (TCP_USER_TIMEOUT, or the retransmission timeout).
    pub unacked_since: AtomicU64,
    pub unacked_deadline: AtomicU64,
    /// CLOCK_MONOTONIC when the connection was made (for `reset_after`).
    pub born_ns: AtomicU64,
    /// Toxics' state per direction: when a blackhole began, when the latency chunk is readable
    /// (or u64::MAX: open), when the last write was released, and where the rate's clock started
    /// (time and stream position).
    pub black_since: [AtomicU64; 2],
    pub tox_ready: [AtomicU64; 2],
    pub tox_last: [AtomicU64; 2],
    pub tox_t0: [AtomicU64; 2],
    pub tox_pos0: [AtomicU64; 2],
    /// `slow_close`: when the peer's FIN, first seen queued, becomes visible (0: not seen yet).
    pub tox_eof_at: AtomicU64,
    /// A toxic ended the connection for our reads (`limit_data`, `then = "close"`): they return
    /// 0 from then on, as after the peer's FIN, whatever is still queued (the data past the limit
    /// never arrived). Set with FORCE_SLOW, so every read comes to see it.
    pub reads_ended: AtomicU32,
    /// CLOCK_MONOTONIC when a `reset_after` toxic resets the connection (0: none armed): waiters
    /// are woken for it, as the kernel wakes them on an RST.
    pub reset_at: AtomicU64,
    /// What armed that reset, for its log line: rule + 1, or `RESET_BY_INJECTION | index`.
    pub reset_by: AtomicU32,
    /// The `[[disk]]` the file is on, + 1 (0: none).
    pub disk: AtomicU32,
    /// A writeback error this description has yet to report at its next fsync (`writeback`).
    pub wb_err: AtomicU32,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            meta: AtomicU64::new(0),
            ino: AtomicU64::new(0),
            conn: AtomicU64::new(0),
            ordinal: AtomicU32::new(0),
            pos: [const { AtomicU64::new(0) }; 2],
            attempt: [const { AtomicU32::new(0) }; 2],
            rx_done: AtomicU64::new(0),
            calls: [const { AtomicU32::new(0) }; CLASS_COUNT],
            stall_until: [const { AtomicU64::new(0) }; 2],
            qstate: AtomicU32::new(0),
            sndbuf: AtomicU32::new(0),
            quirk_draws: AtomicU32::new(0),
            peer_port: AtomicU32::new(0),
            held: AtomicU32::new(0),
            hold_rule: [const { AtomicU32::new(0) }; 2],
            unacked_since: AtomicU64::new(0),
            unacked_deadline: AtomicU64::new(0),
            born_ns: AtomicU64::new(0),
            black_since: [const { AtomicU64::new(0) }; 2],
            tox_ready: [const { AtomicU64::new(0) }; 2],
            tox_last: [const { AtomicU64::new(0) }; 2],
            tox_t0: [const { AtomicU64::new(0) }; 2],
            tox_pos0: [const { AtomicU64::new(0) }; 2],
            tox_eof_at: AtomicU64::new(0),
            reads_ended: AtomicU32::new(0),
            reset_at: AtomicU64::new(0),
            reset_by: AtomicU32::new(0),
            disk: AtomicU32::new(0),
            wb_err: AtomicU32::new(0),
        }
    }
}

static TABLE: [Slot; MAX_FDS] = [const { Slot::new() }; MAX_FDS];

/// Connections opened so far in this process, per kind and role: the ordinal in the connection key.
static ORDINALS: [[AtomicU32; 4]; 7] = [const { [const { AtomicU32::new(0) }; 4] }; 7];

#[inline(always)]
pub fn slot(fd: c_int) -> Option<&'static Slot> {
    TABLE.get(usize::try_from(fd).ok()?)
}

pub fn invalidate(fd: c_int) {
    if let Some(s) = slot(fd) {
        s.meta.store(0, Relaxed);
    }
}

pub fn invalidate_range(first: u32, last: u32) {
    let last = (last as usize).min(MAX_FDS - 1);
    for slot in TABLE.iter().take(last + 1).skip(first as usize) {
        slot.meta.store(0, Relaxed);
    }
}

/// A sockaddr read from the kernel, kept on the caller's stack.
pub struct SockAddrBuf {
    pub storage: libc::sockaddr_storage,
    pub len: usize,
}

impl SockAddrBuf {
    pub fn read(fd: c_int, peer: bool) -> SockAddrBuf {
        // SAFETY: sockaddr_storage is plain data; all zeroes is a valid (AF_UNSPEC) value.
        let mut storage: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
        let len = sys::sockname(fd, peer, &mut storage).unwrap_or(0);
        SockAddrBuf { storage, len }
    }

    pub fn endpoint(&self) -> Endpoint<'_> {
        // SAFETY: `len` is what the kernel reported (0 on failure), and no address it reports
        // is longer than a sockaddr_storage, so all `len` bytes are inside `storage`; the
        // endpoint borrows `self`.
        unsafe { endpoint_of(&self.storage as *const _ as *const libc::sockaddr, self.len) }
    }
}

/// Decodes a sockaddr without copying: IPv4, IPv6, unix paths (abstract names shown with `@`).
///
/// # Safety
/// `sa` must point to at least `len` readable bytes.
pub unsafe fn endpoint_of<'a>(sa: *const libc::sockaddr, len: usize) -> Endpoint<'a> {
    if sa.is_null() || len < 2 {
        return Endpoint::Unknown;
    }
    // SAFETY: `sa` is non-null with at least 2 readable bytes (the contract), enough for the family.
    match unsafe { (*sa).sa_family } as c_int {
        libc::AF_INET if len >= core::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says sockaddr_in and `len` covers one (the guard above);
            // sockaddr_in needs no more alignment than a sockaddr.
            let a = unsafe { &*(sa as *const libc::sockaddr_in) };
            ipv4(a.sin_addr.s_addr.to_ne_bytes(), u16::from_be(a.sin_port))
        }
        libc::AF_INET6 if len >= core::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says sockaddr_in6 and `len` covers one (the guard above).
            let a = unsafe { &*(sa as *const libc::sockaddr_in6) };
            ipv6(a.sin6_addr.s6_addr, u16::from_be(a.sin6_port))
        }
        libc::AF_UNIX => {
            let un = sa as *const libc::sockaddr_un;
            let path_len = len.saturating_sub(2).min(108);
            // SAFETY: sun_path starts 2 bytes in and `path_len` is `len - 2` capped at its 108
            // bytes, so every byte of the slice is within the `len` readable ones.
            let path = unsafe {
                core::slice::from_raw_parts((*un).sun_path.as_ptr() as *const u8, path_len)
            };
            // Pathname sockets are NUL-terminated; abstract ones keep their leading NUL (the engine
            // matches it against `@` patterns, the log writes it `@`).
            let path = match path.iter().position(|b| *b == 0) {
                Some(0) if path.len() > 1 => path,
                Some(end) => &path[..end],
                None => path,
            };
            Endpoint::Unix(path)
        }
        _ => Endpoint::Unknown,
    }
}

/// What an open file is: its kind, and whether it is a byte stream.
fn kind_of(fd: c_int, st: &libc::stat) -> (FdKind, bool) {
    FdKind::classify(st.st_mode, || {
        (
            sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN).unwrap_or(-1),
            sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE).unwrap_or(-1),
        )
    })
}

/// How a not-yet-classified socket would classify as an outgoing connection, without classifying
/// it: no ordinal is taken and nothing is stored, so whether a connect() is looked at (a rule on
/// connect, a frozen policy) never shifts the numbering of connections. `None` if it is gone.
pub fn peek_outgoing(fd: c_int) -> Option<Meta> {
    let st = sys::fstat(fd)?;
    let (kind, stream) = kind_of(fd, &st);
    Some(Meta(Meta::pack(0, kind, stream, Role::Out)))
}

/// Classifies `fd`, stores the result in its slot and returns the new meta. Never allocates.
pub fn classify(policy: &Policy, fd: c_int, role_hint: Role) -> Meta {
    let Some(slot) = slot(fd) else {
        return Meta(0);
    };
    let Some(st) = sys::fstat(fd) else {
        slot.meta.store(0, Relaxed);
        return Meta(0);
    };
    let (kind, stream) = kind_of(fd, &st);
    let (peer, local) = if kind.is_socket() {
        (SockAddrBuf::read(fd, true), SockAddrBuf::read(fd, false))
    } else {
        let empty = || SockAddrBuf {
            // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
            storage: unsafe { core::mem::zeroed() },
            len: 0,
        };
        (empty(), empty())
    };
    let mut path_buf = [0u8; 512];
    let path = if kind == FdKind::File {
        sys::fd_path(fd, &mut path_buf).map(|n| &path_buf[..n])
    } else {
        None
    };
    let facts = FdFacts {
        kind,
        peer: peer.endpoint(),
        local: local.endpoint(),
        path,
    };
    let disk = match (path, crate::runtime::get()) {
        (Some(p), Some(rt)) if crate::disk::any() => crate::disk::of_path(rt, p),
        _ => None,
    };
    slot.disk.store(disk.map_or(0, |d| d as u32 + 1), Relaxed);
    let durable = match (path, crate::runtime::get()) {
        (Some(p), Some(rt)) if crate::durable::active() => crate::durable::covers(rt, p),
        _ => false,
    };
    let mask = if crate::control::is_control_endpoint(&facts.peer) {
        0
    } else {
        policy.mask_for(&facts)
    };
    let role = match role_hint {
        Role::Other
            if kind.is_socket()
                && sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN) == Some(1) =>
        {
            Role::Listen
        }
        r => r,
    };
    // The same open socket classified again as the same kind and role (after its connect, or
    // once a frozen policy made an earlier call classify it) is the same connection: its ordinal
    // stays, so keys do not depend on how many times it was classified.
    let old = slot.ordinal.load(Relaxed);
    let same = kind.is_socket()
        && slot.ino.load(Relaxed) == st.st_ino
        && st.st_ino != 0
        && slot.conn.load(Relaxed) == conn_key(kind, role as u8, old);
    let ordinal = if same {
        old
    } else {
        ORDINALS[kind as usize][role as usize].fetch_add(1, Relaxed)
    };
    slot.ino.store(st.st_ino, Relaxed);
    slot.conn
        .store(conn_key(kind, role as u8, ordinal), Relaxed);
    slot.ordinal.store(ordinal, Relaxed);
    for p in &slot.pos {
        p.store(0, Relaxed);
    }
    for a in &slot.attempt {
        a.store(0, Relaxed);
    }
    slot.rx_done.store(0, Relaxed);
    for c in &slot.calls {
        c.store(0, Relaxed);
    }
    if !same {
        // A new connection: its toxics start from nothing.
        for w in slot
            .black_since
            .iter()
            .chain(&slot.tox_ready)
            .chain(&slot.tox_last)
            .chain(&slot.tox_t0)
            .chain(&slot.tox_pos0)
        {
            w.store(0, Relaxed);
        }
        slot.reads_ended.store(0, Relaxed);
        slot.reset_at.store(0, Relaxed);
        slot.reset_by.store(0, Relaxed);
        slot.unacked_since.store(0, Relaxed);
        slot.tox_eof_at.store(0, Relaxed);
        let born = match role {
            Role::Out | Role::In => crate::sys::now_ns(libc::CLOCK_MONOTONIC),
            _ => 0,
        };
        slot.born_ns.store(born, Relaxed);
    }
    let stalled = slot.stall_until.iter().any(|u| u.load(Relaxed) != 0)
        || slot.reads_ended.load(Relaxed) != 0
        || slot.reset_at.load(Relaxed) != 0;
    let peer_port = match facts.peer {
        Endpoint::Ip(sa) if kind == FdKind::Tcp => sa.port(),
        _ => 0,
    };
    slot.peer_port.store(u32::from(peer_port), Relaxed);
    let peered = peer_port != 0 && crate::control::partitionable();
    let meta = Meta::pack(mask, kind, stream, role)
        | if stalled { FORCE_SLOW } else { 0 }
        | if peered { PEERED } else { 0 }
        | if disk.is_some() { DISK } else { 0 }
        | if durable { DURABLE } else { 0 };
    slot.meta.store(meta, Relaxed);
    let born = slot.born_ns.load(Relaxed);
    if !same
        && born != 0
        && mask != 0
        && let Some(rt) = crate::runtime::get()
    {
        crate::toxic::arm_at_connect(rt, fd, slot, mask, born);
    }
    Meta(slot.meta.load(Relaxed))
}

/// Whether the slot still describes the open file behind `fd` (fds closed by glibc internally, e.g.
/// fclose, never pass our close hook). Checked before a fault is applied.
pub fn still_same_file(fd: c_int, slot: &Slot) -> bool {
    sys::fstat(fd).is_some_and(|st| st.st_ino == slot.ino.load(Relaxed))
}

#[cfg(test)]
#[path = "fdtable_tests.rs"]
mod tests;
