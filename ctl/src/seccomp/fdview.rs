//! The supervisor's view of one target fd: our copy of it (`pidfd_getfd`: the same open file
//! description, so its flags, queues and TCP state are the target's), its kind, role and
//! connection key, and the counters its decision keys use.
//!
//! The supervisor sees each call before it runs but, when it lets the kernel run it, not what it
//! returned; so a TCP stream's offsets come from the socket itself: bytes read so far are
//! `tcpi_bytes_received` less what is still queued (SIOCINQ), bytes written are
//! `tcpi_bytes_acked` plus what is still unacknowledged or unsent (SIOCOUTQ). That is exactly the
//! count the shim keeps, because both start at the connection's start.

use super::sys;
use chaos_engine::inject::conn_key;
use chaos_engine::key::Dir;
use chaos_engine::kind::FdKind;
use chaos_engine::op::CLASS_COUNT;
use chaos_engine::policy::{FdFacts, Policy};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The shim's roles, in its order (`inject::ROLE_NAMES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Out = 0,
    In = 1,
    Listen = 2,
    Other = 3,
}

impl Role {
    pub fn name(self) -> &'static str {
        chaos_engine::inject::ROLE_NAMES[self as usize]
    }
}

pub struct FdView {
    /// Our copy of the fd, only while one of its calls is being handled: a copy kept between
    /// calls would keep the file open after the target closes it (a connection the peer never
    /// sees end, a pipe whose reader never sees EOF), and the target's close cannot safely be
    /// watched (see `filter`).
    pub ours: Option<OwnedFd>,
    /// The open file's identity (st_dev, st_ino), to know the number still means this file at
    /// the next call: the target may close it and get the number again for another.
    pub ident: (u64, u64),
    pub kind: FdKind,
    /// A byte stream (TCP, unix stream, pipe, file), for the realism model.
    pub stream: bool,
    /// Data calls are keyed by stream offset: TCP only on this backend (see the module comment);
    /// the others by their count.
    pub offsets: bool,
    /// The rule mask was computed with the peer known (a connect's socket has none until the
    /// connection is made).
    pub mask_final: bool,
    pub role: Role,
    pub ordinal: u32,
    pub conn: u64,
    /// The rules whose target (kind, addresses) covers this fd.
    pub mask: u32,
    /// shutdown() calls seen: bit 0 SHUT_RD, bit 1 SHUT_WR.
    pub shut: u8,
    /// Per direction: the offset of the last data call and how many calls were made there.
    last_pos: [u64; 2],
    /// One past the offset of the last grid fault a read got here (`grid::Role::At`): a cell
    /// fires once, so the retry at that offset is not faulted again by it.
    pub rx_done: u64,
    attempts: [u32; 2],
    /// A file's bytes read (Rx) and written (Tx) through it so far: its stream offsets, as the
    /// shim counts them (`files`).
    pub moved: [u64; 2],
    /// The `[[disk]]` a file is on.
    pub disk: Option<usize>,
    /// A regular file `[durability]` covers: its changes are journaled (`journaled`).
    pub durable: bool,
    /// Calls per op class, for `after`/`every` and for the call-counted sites.
    pub calls: [u64; CLASS_COUNT],
    /// A TCP connection's peer port, once known (0: none yet): whom a partition may cut it from.
    pub peer_port: u16,
    /// A TCP connection it opened whose local port is not yet in the run's port directory
    /// (recorded at its first call once connected).
    pub to_register: bool,
    /// When a partition first held a write on it that has not gone out since (for
    /// TCP_USER_TIMEOUT and the retransmission timeout).
    pub held_since: Option<std::time::Instant>,
    /// Its toxics' state (`toxic`), shared with a thread answering one of its calls later.
    pub tox: super::toxic_state::Shared,
    /// The Toxiproxy proxy it was connected through (`proxied`).
    pub proxy: Option<Through>,
}

/// The port of a TCP endpoint (0 for anything else).
pub fn ip_port(a: &sys::SockAddr) -> u16 {
    match a.endpoint() {
        chaos_engine::addr::Endpoint::Ip(sa) => sa.port(),
        _ => 0,
    }
}

/// An open file's (st_dev, st_ino): sockets and pipes get an inode of their own each, never
/// reused while the number could be.
pub fn identity(fd: RawFd) -> Option<(u64, u64)> {
    let st = sys::fstat(fd)?;
    Some((st.st_dev, st.st_ino))
}

pub fn kind_of(fd: RawFd) -> Option<(FdKind, bool)> {
    let st = sys::fstat(fd)?;
    Some(FdKind::classify(st.st_mode, || {
        (
            sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN).unwrap_or(-1),
            sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE).unwrap_or(-1),
        )
    }))
}

impl FdView {
    /// Classifies our copy of a target fd, numbering it as a new connection of its kind and role
    /// from the process's `ordinals` (`hint`: Out for a connect; otherwise a connected stream socket we did not see connect
    /// is taken as accepted).
    pub fn new(
        ours: OwnedFd,
        ordinals: &mut [[u32; 4]; 7],
        policy: &Policy,
        hint: Role,
    ) -> Option<FdView> {
        let fd = ours.as_raw_fd();
        let ident = identity(fd)?;
        let (kind, stream) = kind_of(fd)?;
        let listening = kind.is_socket()
            && sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN) == Some(1);
        let peer = sys::sockname(fd, true);
        let local = sys::sockname(fd, false);
        let role = if listening {
            Role::Listen
        } else if hint == Role::Out {
            Role::Out
        } else if stream && kind.is_socket() && peer.len > 0 {
            Role::In
        } else {
            Role::Other
        };
        let path = if kind == FdKind::File {
            std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .ok()
                .map(|p| p.into_os_string().into_encoded_bytes())
        } else {
            None
        };
        let mask = policy.mask_for(&FdFacts {
            kind,
            peer: peer.endpoint(),
            local: local.endpoint(),
            path: path.as_deref(),
        });
        let disk = path.as_deref().and_then(|p| {
            let disks = &policy.disks[..policy.disks.len().min(chaos_engine::disk::MAX_DISKS)];
            disks.iter().position(|d| d.path.matches(p))
        });
        let durable = kind == FdKind::File
            && path.as_deref().is_some_and(|p| {
                policy
                    .durability
                    .as_ref()
                    .is_some_and(|d| d.path.matches(p))
            });
        let ordinal = ordinals[kind as usize][role as usize];
        ordinals[kind as usize][role as usize] += 1;
        Some(FdView {
            ours: Some(ours),
            ident,
            kind,
            stream,
            offsets: stream && kind == FdKind::Tcp,
            mask_final: !kind.is_socket() || peer.len > 0 || listening,
            role,
            ordinal,
            conn: conn_key(kind, role as u8, ordinal),
            mask,
            shut: 0,
            last_pos: [u64::MAX; 2],
            rx_done: 0,
            attempts: [0; 2],
            moved: [0; 2],
            disk,
            durable,
            calls: [0; CLASS_COUNT],
            peer_port: if kind == FdKind::Tcp {
                ip_port(&peer)
            } else {
                0
            },
            to_register: kind == FdKind::Tcp && role == Role::Out,
            held_since: None,
            tox: super::toxic_state::Shared::default(),
            proxy: None,
        })
    }

    /// Recomputes the rule mask once the peer is known (rules may target peers).
    pub fn refresh_mask(&mut self, policy: &Policy) {
        if self.mask_final {
            return;
        }
        let fd = self.fd();
        let peer = sys::sockname(fd, true);
        if peer.len == 0 {
            return;
        }
        let local = sys::sockname(fd, false);
        self.mask = policy.mask_for(&FdFacts {
            kind: self.kind,
            peer: peer.endpoint(),
            local: local.endpoint(),
            path: None,
        });
        self.mask_final = true;
        if self.kind == FdKind::Tcp {
            self.peer_port = ip_port(&peer);
        }
    }

    /// Our copy's number (-1 between calls, which every call made on it fails with EBADF).
    pub fn fd(&self) -> RawFd {
        self.ours.as_ref().map_or(-1, |o| o.as_raw_fd())
    }

    /// The connection's name in the log (`tcp-out#3`).
    pub fn conn_name(&self) -> String {
        format!("{}-{}#{}", self.kind.name(), self.role.name(), self.ordinal)
    }

    /// The stream offset in `dir` now, and the attempt number of a call made there.
    pub fn stream_site(&mut self, dir: Dir) -> (u64, u32) {
        let pos = tcp_offset(self.fd(), dir, self.role == Role::Out);
        self.site_at(dir, pos)
    }

    /// A file's offset in `dir` (the bytes moved through it), and the attempt number there.
    pub fn file_site(&mut self, dir: Dir) -> (u64, u32) {
        self.site_at(dir, self.moved[dir as usize])
    }

    fn site_at(&mut self, dir: Dir, pos: u64) -> (u64, u32) {
        let d = dir as usize;
        if pos != self.last_pos[d] {
            self.last_pos[d] = pos;
            self.attempts[d] = 0;
        }
        let attempt = self.attempts[d];
        self.attempts[d] += 1;
        (pos, attempt)
    }
}

/// Bytes the target has read (Rx) or written (Tx) on this TCP connection so far.
/// `active`: we connected it, so the peer's ack of our SYN counts one byte in tcpi_bytes_acked
/// (tcp_snd_una_update on the SYN-ACK) that is not data.
///
/// The kernel's counter and the queue's size are two reads, and data (or an ack) arriving
/// between them counts in one and not the other: a read position taken that way falls short by
/// what arrived, and a limit meant to cut the stream there lets a read run past it. The program
/// is held, so only arrivals move them: the counter is read again around the queue's size until
/// it did not move (a few tries; a stream that never pauses keeps the last pair).
pub fn tcp_offset(fd: RawFd, dir: Dir, active: bool) -> u64 {
    let Some(mut info) = sys::tcp_info(fd) else {
        return 0;
    };
    let counter = |i: &libc::tcp_info| match dir {
        Dir::Rx => i.tcpi_bytes_received,
        Dir::Tx => i.tcpi_bytes_acked,
    };
    let mut queued = 0;
    for _ in 0..8 {
        queued = match dir {
            Dir::Rx => sys::ioctl_int(fd, libc::FIONREAD),
            Dir::Tx => sys::ioctl_int(fd, libc::TIOCOUTQ),
        }
        .max(0) as u64;
        let Some(again) = sys::tcp_info(fd) else {
            break;
        };
        let settled = counter(&again) == counter(&info);
        info = again;
        if settled {
            break;
        }
    }
    match dir {
        Dir::Rx => {
            // A FIN received counts one byte in tcpi_bytes_received (tcp_rcv_nxt_update) that
            // SIOCINQ does not report (tcp_inq): it is not data.
            let fin = u64::from(matches!(
                info.tcpi_state,
                TCP_CLOSE_WAIT | TCP_LAST_ACK | TCP_CLOSING | TCP_TIME_WAIT
            ));
            info.tcpi_bytes_received
                .saturating_sub(queued)
                .saturating_sub(fin)
        }
        Dir::Tx => {
            let syn = u64::from(active && info.tcpi_bytes_acked > 0);
            info.tcpi_bytes_acked - syn + queued
        }
    }
}

const TCP_TIME_WAIT: u8 = 6;
const TCP_CLOSE_WAIT: u8 = 8;
const TCP_LAST_ACK: u8 = 9;
const TCP_CLOSING: u8 = 11;

/// A connection made through a Toxiproxy proxy (`proxied`), in its fd view.
pub struct Through {
    /// The proxy's slot in the page's table: no other proxy gets it while its connections may
    /// live (`toxiproxy::inproc`), so the slot alone names the proxy.
    pub proxy: usize,
    /// The address the program connected to, as it passed it: what getpeername says.
    pub listen: Vec<u8>,
    /// The proxy was disabled or deleted and the connection ended: reads see the end of the
    /// stream (what was still queued never came through the proxy), writes fail as on a shut
    /// socket.
    pub ended: bool,
}
