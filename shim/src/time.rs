//! Every conversion of the shim between nanoseconds and the kernel's time types (timespec, timeval,
//! milliseconds). Values from the kernel are taken as they are (they are never negative); a
//! program's timeouts count negative parts as 0, and a missing one (null, or negative
//! milliseconds) is None: no limit. No allocation, no system call.

use libc::{c_int, timespec, timeval};

const NS_PER_SEC: u64 = 1_000_000_000;
const NS_PER_MS: u64 = 1_000_000;
const NS_PER_US: u64 = 1_000;

/// A timespec from the kernel (a clock reading) in ns.
#[inline]
pub fn ns_of_timespec(ts: &timespec) -> u64 {
    ts.tv_sec as u64 * NS_PER_SEC + ts.tv_nsec as u64
}

/// A timeval from the kernel (SO_RCVTIMEO, SO_SNDTIMEO) in ns.
#[inline]
pub fn ns_of_timeval(tv: &timeval) -> u64 {
    tv.tv_sec as u64 * NS_PER_SEC + tv.tv_usec as u64 * NS_PER_US
}

/// `ns` as a timespec (sleeps, ppoll, pselect, epoll_pwait2).
#[inline]
pub fn timespec_of_ns(ns: u64) -> timespec {
    timespec {
        tv_sec: (ns / NS_PER_SEC) as libc::time_t,
        tv_nsec: (ns % NS_PER_SEC) as libc::c_long,
    }
}

/// `ns` as a timeval (select), rounded down to whole microseconds.
#[inline]
pub fn timeval_of_ns(ns: u64) -> timeval {
    timeval {
        tv_sec: (ns / NS_PER_SEC) as libc::time_t,
        tv_usec: ((ns % NS_PER_SEC) / NS_PER_US) as libc::suseconds_t,
    }
}

/// A timespec of `ms` milliseconds, for `ms >= 0` (poll's timeout for ppoll).
#[inline]
pub fn timespec_of_ms(ms: c_int) -> timespec {
    timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    }
}

/// A timeval as a timespec (select's timeout for pselect6), field by field.
#[inline]
pub fn timespec_of_timeval(tv: &timeval) -> timespec {
    timespec {
        tv_sec: tv.tv_sec,
        tv_nsec: tv.tv_usec * 1000,
    }
}

/// A program's timeout in milliseconds (epoll_wait, poll) in ns; negative: None.
#[inline]
pub fn timeout_of_ms(ms: c_int) -> Option<u64> {
    (ms >= 0).then(|| ms as u64 * NS_PER_MS)
}

/// A program's timespec timeout (ppoll, pselect, epoll_pwait2) in ns, negative parts as 0; null:
/// None.
#[inline]
pub fn timeout_of_timespec(ts: Option<&timespec>) -> Option<u64> {
    ts.map(|ts| ts.tv_sec.max(0) as u64 * NS_PER_SEC + ts.tv_nsec.max(0) as u64)
}

/// A program's timeval timeout (select) in ns, negative parts as 0; null: None.
#[inline]
pub fn timeout_of_timeval(tv: Option<&timeval>) -> Option<u64> {
    tv.map(|tv| tv.tv_sec.max(0) as u64 * NS_PER_SEC + tv.tv_usec.max(0) as u64 * NS_PER_US)
}

/// A timeout in ns as milliseconds (epoll_wait, poll): None is -1 (no limit); rounded up so that a
/// clamped wait never returns before the stall has ended, and at most c_int::MAX.
#[inline]
pub fn ms_of_timeout(ns: Option<u64>) -> c_int {
    match ns {
        None => -1,
        Some(ns) => ns.div_ceil(NS_PER_MS).min(c_int::MAX as u64) as c_int,
    }
}
