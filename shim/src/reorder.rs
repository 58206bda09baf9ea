//! UDP reordering (`{ reorder = 3 }`): a datagram is held and sent after the next N sends on the
//! same socket, as a network that delivers out of order would. The send reports success at once
//! (the datagram was handed to the network). Held datagrams live in a fixed pool of static
//! buffers (no allocation; the pages are touched only when used); a datagram that does not fit,
//! or a full pool, is sent at once instead (`degraded`). A socket closed with datagrams still held
//! sends them first, so nothing is lost that the policy did not say to lose.

use crate::plan::{Call, Payload};
use crate::real;
use crate::sys;
use core::cell::UnsafeCell;
use core::sync::atomic::Ordering::Release;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering::Acquire, Ordering::Relaxed};
use libc::c_int;

/// Datagrams held at once, per process.
const SLOTS: usize = 16;
/// The largest datagram held (larger ones are sent at once): what fits a 9000-byte jumbo frame.
pub const MAX_HELD: usize = 9000;

const FREE: u32 = 0;
const FILLING: u32 = 1;
const HELD: u32 = 2;
const SENDING: u32 = 3;

struct Held {
    state: AtomicU32,
    fd: AtomicI32,
    /// Sends on the fd still to go before this one is released.
    left: AtomicU32,
    len: AtomicUsize,
    dest_len: AtomicU32,
    dest: UnsafeCell<libc::sockaddr_storage>,
    buf: UnsafeCell<[u8; MAX_HELD]>,
}

// SAFETY: `dest` and `buf` are written only by the thread that moved `state` FREE → FILLING and
// read only by the one that moved it HELD → SENDING; the state's Acquire/Release orders them.
unsafe impl Sync for Held {}

static POOL: [Held; SLOTS] = [const {
    Held {
        state: AtomicU32::new(FREE),
        fd: AtomicI32::new(-1),
        left: AtomicU32::new(0),
        len: AtomicUsize::new(0),
        dest_len: AtomicU32::new(0),
        // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
        dest: UnsafeCell::new(unsafe { core::mem::zeroed() }),
        buf: UnsafeCell::new([0; MAX_HELD]),
    }
}; SLOTS];

/// Datagrams held now: 0 keeps every send's check to one load.
pub static HELD_NOW: AtomicU32 = AtomicU32::new(0);

/// Holds the datagram `call` would send, to go after the next `after` sends on its fd. False when
/// it cannot be held (too large, the pool full, no payload we can read): it is then sent at once.
pub fn hold(call: &Call, after: u32) -> bool {
    if call.requested > MAX_HELD {
        return false;
    }
    let Some(slot) = POOL.iter().find(|h| {
        h.state
            .compare_exchange(FREE, FILLING, Acquire, Relaxed)
            .is_ok()
    }) else {
        return false;
    };
    // SAFETY: this thread owns the slot (FILLING) until it stores HELD or FREE.
    let buf = unsafe { &mut *slot.buf.get() };
    let Some(len) = copy_payload(call, buf) else {
        slot.state.store(FREE, Release);
        return false;
    };
    let dest_len = (call.dest_len as usize).min(core::mem::size_of::<libc::sockaddr_storage>());
    if !call.dest.is_null() && dest_len > 0 {
        // SAFETY: the program passed `dest_len` bytes at `dest` to the send; the slot is ours.
        unsafe {
            core::ptr::copy_nonoverlapping(
                call.dest as *const u8,
                slot.dest.get() as *mut u8,
                dest_len,
            );
        }
        slot.dest_len.store(dest_len as u32, Relaxed);
    } else {
        slot.dest_len.store(0, Relaxed);
    }
    slot.fd.store(call.fd, Relaxed);
    slot.len.store(len, Relaxed);
    slot.left.store(after.max(1), Relaxed);
    HELD_NOW.fetch_add(1, Relaxed);
    slot.state.store(HELD, Release);
    true
}

/// Copies the datagram's bytes (one buffer, or a message's iovecs gathered) into `buf`.
fn copy_payload(call: &Call, buf: &mut [u8; MAX_HELD]) -> Option<usize> {
    match call.payload {
        Payload::None | Payload::At(_) => None,
        Payload::Buf(p) => {
            // SAFETY: the program passed `requested` readable bytes at `p` (<= MAX_HELD, checked).
            unsafe { core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), call.requested) };
            Some(call.requested)
        }
        Payload::Msg(m) if !m.is_null() => {
            // SAFETY: the program's message header and its iovecs, which the send reads too.
            let m = unsafe { &*m };
            if m.msg_iov.is_null() {
                return Some(0);
            }
            // SAFETY: as above: `msg_iovlen` iovecs at `msg_iov`.
            let iov = unsafe { core::slice::from_raw_parts(m.msg_iov, m.msg_iovlen) };
            let mut n = 0;
            for v in iov {
                if n + v.iov_len > MAX_HELD {
                    return None;
                }
                // SAFETY: `iov_len` readable bytes at `iov_base`, into our buffer's free part.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        v.iov_base as *const u8,
                        buf.as_mut_ptr().add(n),
                        v.iov_len,
                    )
                };
                n += v.iov_len;
            }
            Some(n)
        }
        Payload::Msg(_) => None,
    }
}

/// One datagram was sent on `fd`: held ones whose turn has come go now. errno is kept.
pub fn sent_one(fd: c_int) {
    for slot in &POOL {
        if slot.state.load(Acquire) == HELD
            && slot.fd.load(Relaxed) == fd
            && slot.left.fetch_sub(1, Relaxed) == 1
        {
            release(slot);
        }
    }
}

/// `fd` is being closed: what it still holds is sent first.
pub fn flush(fd: c_int) {
    for slot in &POOL {
        if slot.state.load(Acquire) == HELD && slot.fd.load(Relaxed) == fd {
            release(slot);
        }
    }
}

fn release(slot: &Held) {
    if slot
        .state
        .compare_exchange(HELD, SENDING, Acquire, Relaxed)
        .is_err()
    {
        return;
    }
    let e = sys::errno();
    let dest_len = slot.dest_len.load(Relaxed);
    let dest = if dest_len == 0 {
        core::ptr::null()
    } else {
        slot.dest.get() as *const libc::sockaddr
    };
    // SAFETY: the slot is ours (SENDING); its buffer holds `len` bytes and `dest` `dest_len`.
    unsafe {
        real::sendto(
            slot.fd.load(Relaxed),
            slot.buf.get() as *const libc::c_void,
            slot.len.load(Relaxed),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            dest,
            dest_len,
        )
    };
    sys::set_errno(e);
    HELD_NOW.fetch_sub(1, Relaxed);
    slot.state.store(FREE, Release);
}
