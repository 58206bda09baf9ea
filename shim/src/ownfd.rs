//! The fds the shim itself holds (the event log, the epoll wake eventfd). A program that closes every
//! fd it did not open, or dup2()s over one of ours, must not take them away.

use crate::sys;
use core::sync::atomic::{AtomicI32, Ordering::Relaxed};
use libc::c_int;

/// Our fds live at or above this number, out of the way of numbers programs expect to get.
pub const FLOOR: c_int = 1000;

pub static LOG: AtomicI32 = AtomicI32::new(-1);
pub static WAKE: AtomicI32 = AtomicI32::new(-1);

const ALL: [&AtomicI32; 2] = [&LOG, &WAKE];

/// Moves `fd` to the lowest free number at or above FLOOR, close-on-exec; returns the new number.
pub fn move_high(fd: c_int) -> c_int {
    let high = sys::dup_cloexec_at_least(fd, FLOOR);
    if high >= 0 {
        sys::close(fd);
        high
    } else {
        fd
    }
}

pub fn is_own(fd: c_int) -> bool {
    fd >= 0 && ALL.iter().any(|own| own.load(Relaxed) == fd)
}

/// The program is about to make `fd` refer to something else (dup2/dup3): move ours away first.
pub fn relocate_if_own(fd: c_int) {
    for own in ALL {
        let cur = own.load(Relaxed);
        if cur == fd && cur >= 0 {
            own.store(sys::dup_cloexec_at_least(cur, cur + 1), Relaxed);
        }
    }
}

/// Our fds inside `first..=last`, ascending.
pub fn within(first: u32, last: u32) -> [Option<u32>; 2] {
    let mut found = [None, None];
    for (slot, own) in found.iter_mut().zip(ALL) {
        let fd = own.load(Relaxed);
        if fd >= 0 && (first..=last).contains(&(fd as u32)) {
            *slot = Some(fd as u32);
        }
    }
    if let [Some(a), Some(b)] = found
        && a > b
    {
        found = [Some(b), Some(a)];
    }
    found
}
