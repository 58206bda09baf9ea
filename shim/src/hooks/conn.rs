//! connect, accept, setsockopt, shutdown: calls that are counted per connection, not by offset.

use super::transfer::{decide, effect_of, log_fault};
use super::{current_meta, gate, new_fd};
use crate::fdtable::{self, Meta, Role, SockAddrBuf};
use crate::guard::guarded;
use crate::plan::{self, Action, Call, Plan};
use crate::real;
use crate::runtime::{self, Runtime};
use crate::sys;
use chaos_engine::op::Op;
use chaos_engine::policy::FdFacts;
use core::sync::atomic::Ordering::Relaxed;
use libc::{c_int, c_void, sockaddr, socklen_t};

/// The data path's decision, for calls keyed by their count on the connection.
fn decide_simple(rt: &Runtime, call: &Call) -> Option<(Meta, Plan)> {
    let slot = fdtable::slot(call.fd)?;
    let (meta, plan) = decide(rt, slot, call)?;
    Some((meta, plan?))
}

/// Applies a decided Fail or Delay around `real`; other actions do not occur for these calls.
fn run_simple(rt: &'static Runtime, call: Call, real: impl FnOnce() -> c_int) -> c_int {
    let decision = match gate(call.op, call.fd) {
        None => None,
        Some(_) => guarded(|| decide_simple(rt, &call)).flatten(),
    };
    let Some((meta, plan)) = decision else {
        return real();
    };
    let slot = fdtable::slot(call.fd).expect("decided fds have slots");
    match plan.action {
        Action::Fail { errno, brk } => {
            guarded(|| log_fault(rt, slot, meta, &call, &plan, -1, 0, effect_of(brk)));
            if call.op == Op::Close {
                // close really closes even when it reports an error: retrying it is the bug.
                real();
            }
            sys::set_errno(errno);
            -1
        }
        Action::Delay(ns) => {
            sys::sleep_ns(ns);
            let r = real();
            let e = sys::errno();
            guarded(|| log_fault(rt, slot, meta, &call, &plan, r as isize, ns, None));
            sys::set_errno(e);
            r
        }
        Action::Short(_) | Action::ConnectEintr => real(),
    }
}

fn simple_call(op: Op, fd: c_int) -> Call {
    Call {
        op,
        fd,
        requested: 0,
        msg_flags: 0,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    let Some(rt) = runtime::get() else {
        return unsafe { real::setsockopt(fd, level, name, val, len) };
    };
    run_simple(rt, simple_call(Op::Setsockopt, fd), || unsafe {
        real::setsockopt(fd, level, name, val, len)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    let Some(rt) = runtime::get() else {
        return unsafe { real::shutdown(fd, how) };
    };
    run_simple(rt, simple_call(Op::Shutdown, fd), || unsafe {
        real::shutdown(fd, how)
    })
}

/// Shared by close and the fd-lifecycle hooks.
pub(crate) fn close_with_rules(fd: c_int) -> c_int {
    let Some(rt) = runtime::get() else {
        return unsafe { real::close(fd) };
    };
    run_simple(rt, simple_call(Op::Close, fd), || {
        let r = unsafe { real::close(fd) };
        if runtime::in_own_process() {
            fdtable::invalidate(fd);
        }
        r
    })
}

fn accept_common(op: Op, fd: c_int, real: impl FnOnce() -> c_int) -> c_int {
    let r = match runtime::get() {
        None => real(),
        // A failed accept leaves the queued connection queued, as when the kernel fails it early.
        Some(rt) => run_simple(rt, simple_call(op, fd), real),
    };
    new_fd(r, Some(Role::In));
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    accept_common(Op::Accept, fd, || unsafe { real::accept(fd, addr, len) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    accept_common(Op::Accept4, fd, || unsafe {
        real::accept4(fd, addr, len, flags)
    })
}

/// What a connect() decision needs: the socket's kind and the rules whose target covers the address
/// being connected to.
fn decide_connect(rt: &Runtime, fd: c_int, addr: *const sockaddr, len: socklen_t) -> Option<Plan> {
    let candidates_for_op = rt.op_masks[Op::Connect as usize];
    if candidates_for_op == 0 {
        return None;
    }
    let slot = fdtable::slot(fd)?;
    let meta = current_meta(rt, fd, slot);
    if !meta.valid() {
        return None;
    }
    let local = SockAddrBuf::read(fd, false);
    let facts = FdFacts {
        kind: meta.kind(),
        peer: unsafe { fdtable::endpoint_of(addr, len as usize) },
        local: local.endpoint(),
        path: None,
    };
    let candidates = rt.policy.mask_for(&facts) & candidates_for_op;
    if candidates == 0 {
        return None;
    }
    let call = simple_call(Op::Connect, fd);
    let (conn, site, n) = plan::connect_site(meta.kind());
    plan::choose(rt, &call, meta, conn, site, n, candidates).filter(|_| runtime::in_own_process())
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let Some(rt) = runtime::get() else {
        return unsafe { real::connect(fd, addr, len) };
    };
    let plan = guarded(|| decide_connect(rt, fd, addr, len)).flatten();
    let mut delay = 0;
    if let Some(plan) = &plan {
        let call = simple_call(Op::Connect, fd);
        let slot = fdtable::slot(fd).expect("decided fds have slots");
        let meta = Meta(slot.meta.load(Relaxed));
        match plan.action {
            Action::Fail { errno, .. } => {
                guarded(|| log_fault(rt, slot, meta, &call, plan, -1, 0, None));
                sys::set_errno(errno);
                return -1;
            }
            Action::ConnectEintr => {
                // Start the connection in the background exactly as an interrupted blocking connect
                // leaves it; a retry then gets what Linux gives (waits and returns 0, or the error).
                let flags = sys::fcntl_getfl(fd);
                sys::fcntl_setfl(fd, flags | libc::O_NONBLOCK);
                let r = unsafe { real::connect(fd, addr, len) };
                let e = sys::errno();
                sys::fcntl_setfl(fd, flags);
                if r == -1 && e == libc::EINPROGRESS {
                    guarded(|| log_fault(rt, slot, meta, &call, plan, -1, 0, None));
                    new_fd(fd, Some(Role::Out));
                    sys::set_errno(libc::EINTR);
                    return -1;
                }
                // It finished (or failed) at once: a blocking connect would have returned that.
                sys::set_errno(e);
                after_connect(fd, r, e);
                return r;
            }
            Action::Delay(ns) => {
                sys::sleep_ns(ns);
                delay = ns;
            }
            Action::Short(_) => {}
        }
    }
    let r = unsafe { real::connect(fd, addr, len) };
    let e = sys::errno();
    if let Some(plan) = &plan
        && delay > 0
    {
        let call = simple_call(Op::Connect, fd);
        let slot = fdtable::slot(fd).expect("decided fds have slots");
        let meta = Meta(slot.meta.load(Relaxed));
        guarded(|| log_fault(rt, slot, meta, &call, plan, r as isize, delay, None));
    }
    after_connect(fd, r, e);
    sys::set_errno(e);
    r
}

/// A connect that succeeded or is under way makes the fd a new outbound connection, unless it
/// already is one: a retry after EINTR, or the completion of a non-blocking connect, continues the
/// same connection and must keep its key.
fn after_connect(fd: c_int, r: c_int, e: c_int) {
    if r != 0 && e != libc::EINPROGRESS {
        return;
    }
    let same = fdtable::slot(fd).is_some_and(|slot| {
        let meta = Meta(slot.meta.load(Relaxed));
        meta.valid() && meta.role() == Role::Out
    });
    if !same {
        let saved = sys::errno();
        new_fd(fd, Some(Role::Out));
        sys::set_errno(saved);
    }
}
