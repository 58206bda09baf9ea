//! Partitions on live connections. A cut between two processes of a run is enforced by the shims
//! at both ends of each TCP connection between them, so it holds however the connection is used:
//! - the sender holds a cut direction: its writes find the emulated buffer full (EAGAIN where the
//!   call could not block, with writability hidden from epoll/poll as in a stall; a wait where it
//!   could, until the heal or the socket's send timeout);
//! - the receiver hides a cut direction: its reads find nothing (likewise), and data already
//!   queued in its kernel buffer stays there, to be read after the heal;
//! - a connect towards a cut peer does not complete until the heal (a blocking connect waits, up
//!   to SO_SNDTIMEO or the kernel's SYN retry time; a non-blocking one stays "in progress", its
//!   writability hidden).
//!
//! Every process of the run is known by name in the control page's directory, keyed by the TCP
//! ports its shim registered (listening, or connected from), so this works with every replica on
//! 127.0.0.1. A held direction is a stall that renews itself while the cut lasts (`SLICE_NS` at a
//! time), so heal is seen within a slice.

use crate::fdtable::Slot;
use crate::page;
use chaos_engine::key::Dir;
use core::sync::atomic::Ordering::Relaxed;

/// How long one hold lasts before the cut is looked at again.
pub use chaos_engine::page::HOLD_SLICE_NS as SLICE_NS;
/// Linux's retransmission timeout, for writes a cut holds.
use chaos_engine::page::RETRANSMIT_TIMEOUT_NS;
/// How long Linux keeps retrying a SYN (a blocking connect across a cut fails then).
pub use chaos_engine::realise::SYN_TIMEOUT_NS;

/// Whether `dir` of the connection in `slot` is cut now.
#[inline(always)]
pub fn is_cut(slot: &Slot, dir: Dir) -> bool {
    let port = slot.peer_port.load(Relaxed) as u16;
    port != 0
        && match dir {
            Dir::Rx => page::cut_from(port),
            Dir::Tx => page::cut_towards(port),
        }
}

/// Whether a connect to `port` crosses a cut (either direction: a SYN or its SYN-ACK is lost).
pub fn connect_cut(port: u16) -> bool {
    page::any_cut() && (page::cut_towards(port) || page::cut_from(port))
}

/// What a held call does: fail with EAGAIN now (non-blocking, the hold's stall begun), make the
/// real call (after waiting out the cut), or fail with ETIMEDOUT (unacknowledged data outlived
/// the retransmission timeout: the connection is gone).
pub enum Held {
    Eagain,
    Proceed,
    TimedOut,
}

fn dir_bit(dir: Dir) -> u32 {
    1 << dir as u32
}

/// When the data a cut holds back on this connection times out: TCP_USER_TIMEOUT after it was
/// first held (or the default retransmission timeout), counted from the start of the current cut.
fn unacked_deadline(fd: libc::c_int, slot: &Slot, now: u64) -> u64 {
    let cut_began = crate::page::mapped()
        .zip(crate::page::self_index())
        .map_or(0, |(p, me)| p.cut_since(me));
    let since = slot.unacked_since.load(Relaxed);
    let since = if since == 0 || since < cut_began {
        slot.unacked_since.store(now, Relaxed);
        now
    } else {
        since
    };
    let timeout = match crate::sys::getsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) {
        Some(ms) if ms > 0 => ms as u64 * 1_000_000,
        _ => RETRANSMIT_TIMEOUT_NS,
    };
    let deadline = since.saturating_add(timeout);
    slot.unacked_deadline.store(deadline, Relaxed);
    deadline
}

/// Holds a data call in `dir` on a cut connection: a non-blocking call fails with EAGAIN and its
/// readiness is hidden for a slice (renewed while the cut lasts); a blocking one waits until the
/// heal, or until its socket timeout (then EAGAIN, as a timed-out blocking call). Where the
/// process's epoll registrations of the fd are unknown, faking EAGAIN could lose an edge for
/// good, so the call waits instead. A write held longer than the retransmission timeout (or
/// TCP_USER_TIMEOUT) ends the connection with ETIMEDOUT, as the kernel would; an idle
/// connection, or one only reading, survives any cut, as on Linux.
pub fn hold(fd: libc::c_int, slot: &Slot, dir: Dir, msg_flags: libc::c_int) -> Held {
    let now = crate::sys::now_ns(libc::CLOCK_MONOTONIC);
    let deadline = match dir {
        Dir::Tx => unacked_deadline(fd, slot, now),
        Dir::Rx => u64::MAX,
    };
    if now >= deadline {
        return Held::TimedOut;
    }
    let nonblocking =
        msg_flags & libc::MSG_DONTWAIT != 0 || crate::sys::fcntl_getfl(fd) & libc::O_NONBLOCK != 0;
    if nonblocking && crate::readiness::registrations_known(fd) {
        let until = (now + SLICE_NS).min(deadline);
        if crate::readiness::begin_stall(fd, slot, dir, until) {
            slot.held.fetch_or(dir_bit(dir), Relaxed);
            return Held::Eagain;
        }
    }
    let timeout = if nonblocking {
        None
    } else {
        let name = match dir {
            Dir::Rx => libc::SO_RCVTIMEO,
            Dir::Tx => libc::SO_SNDTIMEO,
        };
        crate::sys::timeout_ns(fd, name)
    };
    let limit = match (timeout, deadline) {
        (t, u64::MAX) => t,
        (Some(t), d) => Some(t.min(d - now)),
        (None, d) => Some(d - now),
    };
    match wait_out(|| is_cut(slot, dir), limit) {
        Held::Eagain if crate::sys::now_ns(libc::CLOCK_MONOTONIC) >= deadline => Held::TimedOut,
        held => {
            if let Held::Proceed = held {
                slot.unacked_since.store(0, Relaxed);
            }
            held
        }
    }
}

/// Sleeps in slices while `cut()` holds, up to `timeout`.
pub fn wait_out(cut: impl Fn() -> bool, timeout: Option<u64>) -> Held {
    let start = crate::sys::now_ns(libc::CLOCK_MONOTONIC);
    while cut() {
        let waited = crate::sys::now_ns(libc::CLOCK_MONOTONIC) - start;
        if timeout.is_some_and(|t| waited >= t) {
            return Held::Eagain;
        }
        let left = timeout.map_or(SLICE_NS, |t| (t - waited).min(SLICE_NS));
        crate::sys::sleep_ns(left.max(1));
    }
    Held::Proceed
}

/// For the stall table: whether an expiring stall of `dir` is a hold whose cut still lasts (then
/// it is renewed instead of ended).
pub fn renews(slot: &Slot, dir: Dir) -> bool {
    let d = dir as usize;
    if slot.held.load(Relaxed) & dir_bit(dir) == 0 {
        return false;
    }
    let rule = slot.hold_rule[d].load(Relaxed);
    let (lasts, rule_off) = match rule {
        // A write's hold ends at its retransmission deadline: the next call times out.
        0 if dir == Dir::Tx => (
            is_cut(slot, dir)
                && crate::sys::now_ns(libc::CLOCK_MONOTONIC)
                    < slot.unacked_deadline.load(Relaxed).max(1),
            false,
        ),
        0 => (is_cut(slot, dir), false),
        // A blackhole lasts while its rule is on and, if timed, until its end (the next call then
        // ends the connection).
        rule => match crate::runtime::get() {
            None => (false, false),
            Some(rt) => {
                let i = rule as usize - 1;
                let on = crate::plan::rule_on(rt, i);
                let since = slot.black_since[d].load(Relaxed);
                let timed_out = match &rt.policy.rules[i].fault {
                    chaos_engine::fault::Fault::Toxic(x) => {
                        x.reset_after_blackhole_ns.is_some_and(|r| {
                            since != 0 && crate::sys::now_ns(libc::CLOCK_MONOTONIC) >= since + r
                        })
                    }
                    _ => false,
                };
                (on && !timed_out, !on)
            }
        },
    };
    if lasts {
        return true;
    }
    slot.held.fetch_and(!dir_bit(dir), Relaxed);
    slot.hold_rule[d].store(0, Relaxed);
    if rule_off {
        // The blackhole is over: a later one begins anew.
        slot.black_since[d].store(0, Relaxed);
    }
    false
}
