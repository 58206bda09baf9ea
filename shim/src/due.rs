//! What falls due while a program waits in poll, epoll or select: stalls that end, a partition's
//! or a blackhole's hold that renews while it lasts, a toxic's armed reset. The waiters ask here
//! how long they may sleep; `readiness` keeps the stalls, `hold` and `toxic` say whether a hold
//! lasts and send the reset.

use crate::fdtable;
use crate::{hold, readiness, toxic};
use chaos_engine::key::Dir;
use core::sync::atomic::Ordering::Relaxed;

/// Ends expired stalls and returns the earliest end of those still running (CLOCK_MONOTONIC ns).
pub fn expire_and_next_end(now: u64, waiter: &'static str) -> Option<u64> {
    let mut next: Option<u64> = None;
    for fd in readiness::stalled_fds() {
        let Some(slot) = fdtable::slot(fd) else {
            continue;
        };
        let reset_at = slot.reset_at.load(Relaxed);
        if reset_at != 0 {
            if reset_at <= now {
                if slot.reset_at.swap(0, Relaxed) != 0 {
                    toxic::reset_now(fd, slot, toxic::ResetBy::Wait(waiter));
                    readiness::unlist(fd, slot);
                }
            } else {
                next = Some(next.map_or(reset_at, |n| n.min(reset_at)));
            }
        }
        for dir in [Dir::Rx, Dir::Tx] {
            let until = slot.stall_until[dir as usize].load(Relaxed);
            if until == 0 {
                continue;
            }
            if until <= now && hold::renews(slot, dir) {
                // A partition's hold: the cut lasts, so the fd stays hidden another slice.
                let until = now + hold::SLICE_NS;
                slot.stall_until[dir as usize].store(until, Relaxed);
                next = Some(next.map_or(until, |n| n.min(until)));
            } else if until <= now {
                readiness::end_stall(fd, slot, dir);
            } else {
                next = Some(next.map_or(until, |n| n.min(until)));
            }
        }
    }
    next
}
