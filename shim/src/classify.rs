//! Classification: what an fd is (fstat, getsockopt, its addresses and path), which rules' targets
//! cover it, and what its slot in the fd table starts from. Run once per fd, on its first hooked
//! call or when a hook makes it (socket, accept, connect); the table itself is `fdtable`.

use crate::fdtable::{DISK, DURABLE, FORCE_SLOW, Meta, PEERED, PROXIED, Role, Slot, slot};
use crate::sockaddr::SockAddrBuf;
use crate::sys;
use chaos_engine::addr::Endpoint;
use chaos_engine::inject::conn_key;
use chaos_engine::kind::FdKind;
use chaos_engine::policy::{FdFacts, Policy};
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use libc::c_int;

/// Connections opened so far in this process, per kind and role: the ordinal in the connection key.
static ORDINALS: [[AtomicU32; 4]; 7] = [const { [const { AtomicU32::new(0) }; 4] }; 7];

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
    let mask = if crate::page::is_control_endpoint(&facts.peer) {
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
            .chain(&slot.tox_slice)
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
    let peered = peer_port != 0 && crate::page::partitionable();
    let meta = Meta::pack(mask, kind, stream, role)
        | if stalled { FORCE_SLOW } else { 0 }
        | if peered { PEERED } else { 0 }
        | if disk.is_some() { DISK } else { 0 }
        | if durable { DURABLE } else { 0 }
        | if crate::proxy::proxied(slot) {
            PROXIED
        } else {
            0
        };
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
#[path = "classify_tests.rs"]
mod tests;
