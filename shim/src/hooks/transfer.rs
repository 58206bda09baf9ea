//! The shared path of every data call (read/write/send/recv and their vector and message forms):
//! decide, apply the fault, make the real call, advance the stream position, log.

use super::{current_meta, gate};
use crate::fdtable::{self, Meta, Slot};
use crate::guard::guarded;
use crate::log::{self, FaultRecord};
use crate::plan::{self, Action, Break, Call, Plan};
use crate::runtime::{self, Runtime};
use crate::sys;
use core::sync::atomic::Ordering::Relaxed;
use libc::c_int;

/// Runs a data call. `real(limit)` makes the real call transferring at most `limit` bytes (or
/// messages, for the mmsg forms).
#[inline(always)]
pub(crate) fn transfer(call: Call, real: impl FnOnce(usize) -> isize) -> isize {
    match gate(call.op, call.fd) {
        None => real(call.requested),
        Some((rt, slot)) => transfer_slow(rt, slot, call, real),
    }
}

#[inline(never)]
fn transfer_slow(
    rt: &'static Runtime,
    slot: &'static Slot,
    call: Call,
    real: impl FnOnce(usize) -> isize,
) -> isize {
    let decision = guarded(|| decide(rt, slot, &call)).flatten();
    let Some((meta, plan)) = decision else {
        return real(call.requested);
    };
    let Some(plan) = plan else {
        // A rule covers this fd but none fired: still keep the stream position exact.
        let r = real(call.requested);
        advance(slot, &call, r); // atomics only: no guard needed, errno untouched
        return r;
    };
    let (limit, delay) = match plan.action {
        Action::Fail { errno, brk } => {
            guarded(|| {
                apply_break(call.fd, brk);
                log_fault(rt, slot, meta, &call, &plan, -1, 0, effect_of(brk));
            });
            if errno == libc::EPIPE && call.msg_flags & libc::MSG_NOSIGNAL == 0 {
                sys::raise_sigpipe();
            }
            sys::set_errno(errno);
            return -1;
        }
        Action::Delay(ns) => {
            sys::sleep_ns(ns);
            (call.requested, ns)
        }
        Action::Short(n) => (n, 0),
        Action::ConnectEintr => (call.requested, 0),
    };
    let r = real(limit);
    let e = sys::errno();
    guarded(|| {
        advance(slot, &call, r);
        log_fault(rt, slot, meta, &call, &plan, r, delay, None);
    });
    sys::set_errno(e);
    r
}

/// Some((meta, plan)) when the fd is covered by a rule for this op; None to pass straight through.
pub(crate) fn decide(rt: &Runtime, slot: &Slot, call: &Call) -> Option<(Meta, Option<Plan>)> {
    let meta = current_meta(rt, call.fd, slot);
    let candidates = meta.mask() & rt.op_masks[call.op as usize];
    if !meta.valid() || candidates == 0 {
        return None;
    }
    let (site, n) = plan::site_for(call, slot, meta);
    let conn = slot.conn.load(Relaxed);
    let plan = plan::choose(rt, call, meta, conn, site, n, candidates)
        .filter(|_| fdtable::still_same_file(call.fd, slot) && runtime::in_own_process());
    Some((meta, plan))
}

/// Moves the stream position past what the call transferred.
#[inline(always)]
fn advance(slot: &Slot, call: &Call, r: isize) {
    let Some(dir) = call.dir() else { return };
    if r > 0 && call.msg_flags & libc::MSG_PEEK == 0 && !call.op.is_multi_message() {
        slot.pos[dir as usize].fetch_add(r as u64, Relaxed);
        slot.attempt[dir as usize].store(0, Relaxed);
    }
}

pub(crate) fn apply_break(fd: c_int, brk: Break) {
    match brk {
        Break::None => {}
        Break::Rst => {
            let unspec = libc::sockaddr {
                sa_family: libc::AF_UNSPEC as libc::sa_family_t,
                sa_data: [0; 14],
            };
            // The real connect, not our hook: dissolving the association sends an RST.
            unsafe {
                crate::real::connect(
                    fd,
                    &unspec,
                    core::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
                )
            };
        }
        Break::ShutBoth => sys::shutdown(fd, libc::SHUT_RDWR),
        Break::ShutWrite => sys::shutdown(fd, libc::SHUT_WR),
    }
}

pub(crate) fn effect_of(brk: Break) -> Option<&'static str> {
    match brk {
        Break::None => None,
        Break::Rst => Some("rst-sent"),
        Break::ShutBoth => Some("shutdown-both"),
        Break::ShutWrite => Some("shutdown-write"),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn log_fault(
    rt: &Runtime,
    slot: &Slot,
    meta: Meta,
    call: &Call,
    plan: &Plan,
    returned: isize,
    delay_ns: u64,
    effect: Option<&str>,
) {
    let rule = &rt.policy.rules[plan.rule];
    let errno = match plan.action {
        Action::Fail { errno, .. } => Some(errno),
        Action::ConnectEintr => Some(libc::EINTR),
        _ => None,
    };
    let fault = rule.fault.kind_name();
    log::write_fault(
        rt,
        &FaultRecord {
            op: call.op,
            fd: call.fd,
            meta,
            slot,
            rule: plan.rule,
            fault,
            errno,
            requested: call.requested,
            returned,
            delay_ns,
            key: &plan.key,
            effect,
        },
    );
}
