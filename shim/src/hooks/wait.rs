//! epoll, poll and select: registrations are recorded, stalled directions are hidden, timeouts are
//! clamped to the next stall's end, and the shim's own wake events never reach the program.
//! With no stall in progress, poll/select go straight to the real call and epoll_wait only drops
//! wake events from its result.

use super::new_fd;
use crate::readiness::{self, ACTIVE, WAKE_DATA};
use crate::real;
use crate::runtime;
use crate::sys;
use crate::time;
use chaos_engine::key::Dir;
use core::sync::atomic::Ordering::Relaxed;
use libc::{c_int, epoll_event, fd_set, nfds_t, pollfd, sigset_t, size_t, timespec, timeval};

fn now() -> u64 {
    sys::now_ns(libc::CLOCK_MONOTONIC)
}

/// The shared loop of every wait: clamp to the next stall end, call, and go round again when a
/// stall change (not the program's own events) ended the wait early. `call(wait_ns)` returns the
/// number of events for the program (after filtering), or -1.
///
/// With no stall in progress the first call is made as is; only a wait cut short by the shim's wake
/// event (a stall began meanwhile) goes round the loop. The entry time is taken from the coarse
/// clock (a few ns in the vDSO) and only for finite timeouts.
/// `name` is the wait's family (`epoll_wait`, `poll`, `select`), for the line of a reset it
/// finds due.
fn wait_loop(
    name: &'static str,
    timeout: Option<u64>,
    mut call: impl FnMut(Option<u64>) -> c_int,
) -> c_int {
    let entered = match timeout {
        Some(t) if t > 0 => sys::now_ns(libc::CLOCK_MONOTONIC_COARSE),
        _ => 0,
    };
    if ACTIVE.load(Relaxed) == 0 {
        let n = call(timeout);
        if n != 0 || timeout == Some(0) || !WOKEN.with(|w| w.replace(false)) {
            return n;
        }
    }
    let deadline = timeout.map(|t| entered.saturating_add(t));
    let watch = crate::proxy::watch_slice();
    loop {
        let t = now();
        let next_end = if ACTIVE.load(Relaxed) > 0 {
            crate::due::expire_and_next_end(t, name)
        } else {
            None
        };
        if watch.is_some() {
            crate::guard::guarded(|| crate::proxy::sweep(name));
        }
        // Connections through a proxy: the wait wakes each slice to see a proxy disabled.
        let next_end = match watch {
            Some(slice) => Some(next_end.map_or(t + slice, |e| e.min(t + slice))),
            None => next_end,
        };
        let remaining = deadline.map(|d| d.saturating_sub(t));
        let wait = match (remaining, next_end) {
            (r, Some(end)) => Some(r.unwrap_or(u64::MAX).min(end.saturating_sub(t))),
            (r, None) => r,
        };
        let n = call(wait);
        if n != 0 || timeout == Some(0) || deadline.is_some_and(|d| now() >= d) {
            return n;
        }
    }
}

thread_local! {
    /// Set when the last epoll result on this thread held only the shim's wake event: the wait
    /// ended for our sake, not the program's, and must go on.
    static WOKEN: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

// ---- epoll --------------------------------------------------------------------------------------

fn created(epfd: c_int) -> c_int {
    if epfd >= 0 && runtime::get().is_some() && runtime::in_own_process() {
        let saved = sys::errno();
        new_fd(epfd, None);
        readiness::on_epoll_created(epfd);
        sys::set_errno(saved);
    }
    epfd
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn epoll_create(size: c_int) -> c_int {
    // SAFETY: the program's own call, passed on as it made it.
    created(unsafe { real::epoll_create(size) })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn epoll_create1(flags: c_int) -> c_int {
    // SAFETY: the program's own call, passed on as it made it.
    created(unsafe { real::epoll_create1(flags) })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut epoll_event,
) -> c_int {
    if runtime::get().is_none() {
        // SAFETY: the program's own call, passed on as it made it.
        return unsafe { real::epoll_ctl(epfd, op, fd, ev) };
    }
    let (events, data) = if ev.is_null() {
        (0, 0)
    } else {
        // SAFETY: a non-null event the program passes in; epoll_ctl reads it too.
        let e = unsafe { ev.read_unaligned() };
        (e.events, e.u64)
    };
    let apply = if ev.is_null() || ACTIVE.load(Relaxed) == 0 {
        events
    } else {
        readiness::events_to_apply(fd, events)
    };
    let r = if apply == events {
        // SAFETY: the program's own call, passed on as it made it.
        unsafe { real::epoll_ctl(epfd, op, fd, ev) }
    } else {
        let mut masked = epoll_event {
            events: apply,
            u64: data,
        };
        // SAFETY: the program's call with its event replaced by a local one.
        unsafe { real::epoll_ctl(epfd, op, fd, &mut masked) }
    };
    if r == 0 {
        let saved = sys::errno();
        readiness::on_epoll_ctl(epfd, op, fd, events, data);
        sys::set_errno(saved);
    }
    r
}

/// Removes the shim's wake events from a result; returns how many are left.
fn drop_wake_events(evs: *mut epoll_event, n: c_int) -> c_int {
    let mut kept = 0;
    for i in 0..n.max(0) as usize {
        // SAFETY: i < n, and the kernel just wrote n events into the program's `evs`.
        let e = unsafe { evs.add(i).read_unaligned() };
        if e.u64 != WAKE_DATA {
            if kept != i {
                // SAFETY: kept < i < n: inside the same array.
                unsafe { evs.add(kept).write_unaligned(e) };
            }
            kept += 1;
        }
    }
    kept as c_int
}

fn epoll_common(
    epfd: c_int,
    evs: *mut epoll_event,
    timeout: Option<u64>,
    mut call: impl FnMut(Option<u64>) -> c_int,
) -> c_int {
    if runtime::get().is_none() {
        return call(timeout);
    }
    if let Some(errno) = super::fdless::wait_fault(epfd, timeout != Some(0)) {
        crate::sys::set_errno(errno);
        return -1;
    }
    readiness::note_waited(epfd);
    wait_loop("epoll_wait", timeout, |wait| {
        let n = call(wait);
        if n <= 0 {
            return n;
        }
        let kept = drop_wake_events(evs, n);
        if kept == 0 {
            WOKEN.with(|w| w.set(true));
        }
        kept
    })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    evs: *mut epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    // SAFETY: the program's own call, its timeout clamped.
    epoll_common(epfd, evs, time::timeout_of_ms(timeout), |wait| unsafe {
        real::epoll_wait(epfd, evs, max, time::ms_of_timeout(wait))
    })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    evs: *mut epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: the program's own call, its timeout clamped.
    epoll_common(epfd, evs, time::timeout_of_ms(timeout), |wait| unsafe {
        real::epoll_pwait(epfd, evs, max, time::ms_of_timeout(wait), mask)
    })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn epoll_pwait2(
    epfd: c_int,
    evs: *mut epoll_event,
    max: c_int,
    ts: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: the program's timeout: null or a timespec, as epoll_pwait2 reads it.
    let timeout = time::timeout_of_timespec(unsafe { ts.as_ref() });
    epoll_common(epfd, evs, timeout, |wait| {
        let clamped = wait.map(time::timespec_of_ns);
        let p = clamped
            .as_ref()
            .map_or(core::ptr::null(), |t| t as *const timespec);
        // SAFETY: the program's own call, its timeout replaced by a local one (or null).
        unsafe { real::epoll_pwait2(epfd, evs, max, p, mask) }
    })
}

// ---- poll ---------------------------------------------------------------------------------------

fn poll_bits(dirs: u32) -> i16 {
    let mut bits = 0;
    if dirs & (1 << Dir::Rx as u32) != 0 {
        bits |= libc::POLLIN | libc::POLLRDNORM;
    }
    if dirs & (1 << Dir::Tx as u32) != 0 {
        bits |= libc::POLLOUT | libc::POLLWRNORM;
    }
    bits
}

/// Most pollfd entries masked at once; further stalled entries stay visible (and may spin).
const POLL_MASKED_MAX: usize = 64;

fn poll_common(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: Option<u64>,
    mut call: impl FnMut(Option<u64>) -> c_int,
) -> c_int {
    if runtime::get().is_none() || ACTIVE.load(Relaxed) == 0 {
        return call(timeout);
    }
    wait_loop("poll", timeout, |wait| {
        let mut saved = [(0usize, 0i16); POLL_MASKED_MAX];
        let mut count = 0;
        for i in 0..n as usize {
            // SAFETY: i < n: one of the program's n pollfds, which poll reads and writes too.
            let p = unsafe { &mut *fds.add(i) };
            let hide = poll_bits(readiness::stalled_now(p.fd)) & p.events;
            if hide != 0 && count < POLL_MASKED_MAX {
                saved[count] = (i, p.events);
                count += 1;
                p.events &= !hide;
            }
        }
        let r = call(wait);
        let e = sys::errno();
        for &(i, events) in &saved[..count] {
            // SAFETY: i < n, as above.
            unsafe { (*fds.add(i)).events = events };
        }
        sys::set_errno(e);
        r
    })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    // SAFETY: the program's own call, its timeout clamped.
    poll_common(fds, n, time::timeout_of_ms(timeout), |wait| unsafe {
        real::poll(fds, n, time::ms_of_timeout(wait))
    })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: c_int,
    fdslen: size_t,
) -> c_int {
    if (n as usize).saturating_mul(core::mem::size_of::<pollfd>()) > fdslen {
        // SAFETY: the program's own call, passed on as it made it: glibc reports the overflow.
        return unsafe { real::__poll_chk(fds, n, timeout, fdslen) };
    }
    // SAFETY: the program's own call, its timeout clamped.
    poll_common(fds, n, time::timeout_of_ms(timeout), |wait| unsafe {
        real::poll(fds, n, time::ms_of_timeout(wait))
    })
}

fn ppoll_with(fds: *mut pollfd, n: nfds_t, wait: Option<u64>, mask: *const sigset_t) -> c_int {
    let clamped = wait.map(time::timespec_of_ns);
    let p = clamped
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const timespec);
    // SAFETY: the program's own call, its timeout replaced by a local one (or null).
    unsafe { real::ppoll(fds, n, p, mask) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    ts: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: the program's timeout: null or a timespec, as ppoll reads it.
    let timeout = time::timeout_of_timespec(unsafe { ts.as_ref() });
    poll_common(fds, n, timeout, |wait| ppoll_with(fds, n, wait, mask))
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn __ppoll_chk(
    fds: *mut pollfd,
    n: nfds_t,
    ts: *const timespec,
    mask: *const sigset_t,
    fdslen: size_t,
) -> c_int {
    if (n as usize).saturating_mul(core::mem::size_of::<pollfd>()) > fdslen {
        // SAFETY: the program's own call, passed on as it made it: glibc reports the overflow.
        return unsafe { real::__ppoll_chk(fds, n, ts, mask, fdslen) };
    }
    // SAFETY: the program's timeout: null or a timespec, as ppoll reads it.
    let timeout = time::timeout_of_timespec(unsafe { ts.as_ref() });
    poll_common(fds, n, timeout, |wait| ppoll_with(fds, n, wait, mask))
}

// ---- select -------------------------------------------------------------------------------------

/// Clears the bits of fds stalled in `dir` from a copy of `set`.
fn masked(set: *mut fd_set, n: c_int, dir: Dir) -> Option<fd_set> {
    if set.is_null() {
        return None;
    }
    // SAFETY: a non-null fd_set of the program's, which select reads too.
    let mut copy = unsafe { *set };
    for fd in 0..n.clamp(0, libc::FD_SETSIZE as c_int) {
        // SAFETY: fd is in 0..FD_SETSIZE and `copy` a local fd_set.
        if unsafe { libc::FD_ISSET(fd, &copy) }
            && readiness::stalled_now(fd) & (1 << dir as u32) != 0
        {
            // SAFETY: as for FD_ISSET.
            unsafe { libc::FD_CLR(fd, &mut copy) };
        }
    }
    Some(copy)
}

fn select_common(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    timeout: Option<u64>,
    mut call: impl FnMut(*mut fd_set, *mut fd_set, *mut fd_set, Option<u64>) -> c_int,
) -> c_int {
    if runtime::get().is_none() || ACTIVE.load(Relaxed) == 0 {
        return call(r, w, e, timeout);
    }
    // SAFETY: each set is null (not read) or one of the program's, which select reads too.
    let (orig_r, orig_w, orig_e) = unsafe {
        (
            (!r.is_null()).then(|| *r),
            (!w.is_null()).then(|| *w),
            (!e.is_null()).then(|| *e),
        )
    };
    wait_loop("select", timeout, |wait| {
        // Each round starts from the program's sets: select overwrites them.
        // SAFETY: each set written is non-null (it was read above), the program's own.
        unsafe {
            if let Some(s) = orig_r {
                *r = s;
            }
            if let Some(s) = orig_w {
                *w = s;
            }
            if let Some(s) = orig_e {
                *e = s;
            }
        }
        let mut rc = masked(r, n, Dir::Rx);
        let mut wc = masked(w, n, Dir::Tx);
        let ptr = |c: &mut Option<fd_set>| {
            c.as_mut()
                .map_or(core::ptr::null_mut(), |s| s as *mut fd_set)
        };
        let res = call(ptr(&mut rc), ptr(&mut wc), e, wait);
        let err = sys::errno();
        if res >= 0 {
            // SAFETY: a masked copy exists only for a non-null set of the program's.
            unsafe {
                if let Some(s) = rc {
                    *r = s;
                }
                if let Some(s) = wc {
                    *w = s;
                }
            }
        }
        sys::set_errno(err);
        res
    })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    tv: *mut timeval,
) -> c_int {
    if runtime::get().is_none() || ACTIVE.load(Relaxed) == 0 {
        // SAFETY: the program's own call with its own timeval, which Linux updates with the time
        // not slept, as the program may expect.
        return unsafe { real::select(n, r, w, e, tv) };
    }
    // SAFETY: the program's timeout: null or a timeval, as select reads it.
    let timeout = time::timeout_of_timeval(unsafe { tv.as_ref() });
    let entered = timeout.map(|_| sys::now_ns(libc::CLOCK_MONOTONIC));
    let res = select_common(n, r, w, e, timeout, |r, w, e, wait| {
        let mut t = wait.map(time::timeval_of_ns);
        let p = t
            .as_mut()
            .map_or(core::ptr::null_mut(), |t| t as *mut timeval);
        // SAFETY: the program's call with (masked copies of) its sets and a local timeout.
        unsafe { real::select(n, r, w, e, p) }
    });
    // The local timeouts were the kernel's to update: give the program the time not slept.
    if let (Some(t), Some(start)) = (timeout, entered) {
        let err = sys::errno();
        let slept = sys::now_ns(libc::CLOCK_MONOTONIC).saturating_sub(start);
        // SAFETY: non-null (it had a timeout), the program's timeval, which select writes.
        unsafe { *tv = time::timeval_of_ns(t.saturating_sub(slept)) };
        sys::set_errno(err);
    }
    res
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn pselect(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    ts: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: the program's timeout: null or a timespec, as pselect reads it.
    let timeout = time::timeout_of_timespec(unsafe { ts.as_ref() });
    select_common(n, r, w, e, timeout, |r, w, e, wait| {
        let clamped = wait.map(time::timespec_of_ns);
        let p = clamped
            .as_ref()
            .map_or(core::ptr::null(), |t| t as *const timespec);
        // SAFETY: the program's call with (masked copies of) its sets and a local timeout.
        unsafe { real::pselect(n, r, w, e, p, mask) }
    })
}
