//! The lock-free fd cache: one slot of atomics per fd number, and nothing else.
//!
//! A slot holds what the fd is (kind, role, connection key) and the bitmask of rules whose target
//! covers it, so the common case in a hook is two loads and a branch. It is a cache: hooks that create
//! or destroy fds (socket, accept, connect, close, dup2...) invalidate it, and `classify` fills a
//! slot once (fstat, getsockopt, getsockname/getpeername) on the fd's first hooked call. The table
//! knows no policy, page or toxic: it is the state the layers above read and write.

use chaos_engine::kind::FdKind;
use chaos_engine::op::CLASS_COUNT;
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
/// A TCP connection made through a Toxiproxy proxy (`crate::proxy`): its data calls take the
/// targeted path, which applies the proxy's toxics.
pub const PROXIED: u64 = 1 << 58;

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
    pub(crate) fn pack(mask: u32, kind: FdKind, stream: bool, role: Role) -> u64 {
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
    /// `slicer`: when the next slice may move, per direction (0: at once).
    pub tox_slice: [AtomicU64; 2],
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
    /// The Toxiproxy proxy the connection was made through (`crate::proxy`): its slot + 1 in
    /// the low 16 bits (0: none), the length of the address the program connected to above.
    pub proxy: AtomicU32,
    /// That address, as the program passed it (what getpeername reports).
    pub proxy_peer: [AtomicU64; 4],
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
            tox_slice: [const { AtomicU64::new(0) }; 2],
            tox_eof_at: AtomicU64::new(0),
            reads_ended: AtomicU32::new(0),
            reset_at: AtomicU64::new(0),
            reset_by: AtomicU32::new(0),
            disk: AtomicU32::new(0),
            wb_err: AtomicU32::new(0),
            proxy: AtomicU32::new(0),
            proxy_peer: [const { AtomicU64::new(0) }; 4],
        }
    }
}

static TABLE: [Slot; MAX_FDS] = [const { Slot::new() }; MAX_FDS];

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
