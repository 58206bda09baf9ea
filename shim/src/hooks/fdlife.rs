//! Calls that create, replace or destroy fds. They keep the fd cache honest and keep the program from
//! closing or overwriting the shim's log fd.

use super::conn::close_with_rules;
use super::new_fd;
use crate::fdtable;
use crate::ownfd;
use crate::real;
use crate::runtime;
use libc::{c_int, c_uint};

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if ownfd::is_own(fd) && runtime::in_own_process() {
        // Programs that close every fd they did not open would cut the log; report success and keep
        // it (the program never got this number from the kernel, so it cannot be confused by it).
        return 0;
    }
    close_with_rules(fd)
}

/// close_range/closefrom, but never over the shim's own fds.
fn close_range_sparing_own(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    let own = runtime::in_own_process();
    let cloexec_only = flags & libc::CLOSE_RANGE_CLOEXEC as c_int != 0;
    // Forgotten before the real close, for the same reason as in close().
    if own && !cloexec_only {
        fdtable::invalidate_range(first, last);
        for fd in first..=last.min(fdtable::MAX_FDS as c_uint - 1) {
            crate::readiness::forget_fd(fd as c_int);
        }
    }
    if own && !cloexec_only {
        // Close the stretches between our fds; the first error is the result.
        let mut start = first;
        let mut r = 0;
        for fd in ownfd::within(first, last).into_iter().flatten() {
            if fd > start && r == 0 {
                // SAFETY: close_range takes plain integers; the range [start, fd) holds none of
                // our own fds (`fd` is the next one of ours in the range).
                r = unsafe { real::close_range(start, fd - 1, flags) };
            }
            start = fd + 1;
        }
        if start <= last && r == 0 {
            // SAFETY: plain integers; `start` is past the last of our fds in the range.
            r = unsafe { real::close_range(start, last, flags) };
        }
        r
    } else {
        // SAFETY: plain integers, the program's own. Nothing of ours to spare: a vfork child
        // closes only its copy of the fd table, and CLOSE_RANGE_CLOEXEC closes nothing now.
        unsafe { real::close_range(first, last, flags) }
    }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    close_range_sparing_own(first, last, flags)
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn closefrom(low: c_int) {
    let saved = crate::sys::errno();
    close_range_sparing_own(low.max(0) as c_uint, c_uint::MAX, 0);
    crate::sys::set_errno(saved);
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if runtime::in_own_process() {
        ownfd::relocate_if_own(new);
    }
    // SAFETY: integer arguments, the program's own; `new` is no longer one of our fds.
    let r = unsafe { real::dup2(old, new) };
    if r >= 0 && old != new {
        new_fd(r, None);
    }
    r
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if runtime::in_own_process() {
        ownfd::relocate_if_own(new);
    }
    // SAFETY: integer arguments, the program's own; `new` is no longer one of our fds.
    let r = unsafe { real::dup3(old, new, flags) };
    new_fd(r, None);
    r
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    if let Some(rt) = runtime::get()
        && let Some(h) = crate::quirks::socket_type(rt, ty)
    {
        return super::transfer::quirk_fail("socket", -1, 0, h) as c_int;
    }
    if let Some(errno) = super::fdless::socket_fault(domain, ty) {
        crate::sys::set_errno(errno);
        return -1;
    }
    // SAFETY: integer arguments, passed on as the program gave them.
    let r = unsafe { real::socket(domain, ty, proto) };
    new_fd(r, None);
    r
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn socketpair(
    domain: c_int,
    ty: c_int,
    proto: c_int,
    fds: *mut c_int,
) -> c_int {
    if let Some(rt) = runtime::get()
        && let Some(h) = crate::quirks::socket_type(rt, ty)
    {
        return super::transfer::quirk_fail("socketpair", -1, 0, h) as c_int;
    }
    // SAFETY: the program's arguments as it gave them; `fds` is its array of two, as for libc.
    let r = unsafe { real::socketpair(domain, ty, proto, fds) };
    if r == 0 {
        // SAFETY: on success the kernel wrote both entries of the program's array of two.
        unsafe {
            new_fd(*fds, None);
            new_fd(*fds.add(1), None);
        }
    }
    r
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn pipe(fds: *mut c_int) -> c_int {
    if let Some(errno) = super::fdless::pipe_fault() {
        crate::sys::set_errno(errno);
        return -1;
    }
    // SAFETY: `fds` is the program's array of two, as libc's contract requires.
    let r = unsafe { real::pipe(fds) };
    if r == 0 {
        // SAFETY: on success the kernel wrote both entries of the program's array of two.
        unsafe {
            new_fd(*fds, None);
            new_fd(*fds.add(1), None);
        }
    }
    r
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    if let Some(errno) = super::fdless::pipe_fault() {
        crate::sys::set_errno(errno);
        return -1;
    }
    // SAFETY: `fds` is the program's array of two, as libc's contract requires.
    let r = unsafe { real::pipe2(fds, flags) };
    if r == 0 {
        // SAFETY: on success the kernel wrote both entries of the program's array of two.
        unsafe {
            new_fd(*fds, None);
            new_fd(*fds.add(1), None);
        }
    }
    r
}
