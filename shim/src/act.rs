//! Carrying out a decided fault on an fd, whichever hook or toxic decided it: break the
//! connection as the kernel would (a real RST, a shutdown), put a stall into effect, and log the
//! fault with the errno it amounted to.

use crate::fdtable::{Meta, Slot};
use crate::log::{self, Applied, FaultRecord};
use crate::plan::{Action, Break, Call, Choice, Mode};
use crate::readiness;
use crate::runtime::Runtime;
use crate::sys;
use chaos_engine::key::Dir;
use libc::c_int;

/// How a call goes on once its stall is in effect.
pub(crate) enum StallOutcome {
    /// Fail this call with EAGAIN.
    Eagain,
    /// Make the real call (after the sleep already taken).
    Proceed,
}

/// Puts a decided stall into effect for a data call (or accept, whose "direction" is rx).
pub(crate) fn start_stall(
    slot: &Slot,
    call: &Call,
    ns: u64,
    mode: Mode,
    applied: &mut Applied,
) -> StallOutcome {
    let dir = call.dir().unwrap_or(Dir::Rx);
    applied.stall_ns = ns;
    match mode {
        Mode::Blocking => {
            sys::sleep_ns(ns);
            applied.delay_ns = ns;
            StallOutcome::Proceed
        }
        Mode::Timeout(timeout) => {
            // The call waits up to its timeout; a longer stall makes it time out with EAGAIN.
            let waited = ns.min(timeout);
            sys::sleep_ns(waited);
            applied.delay_ns = waited;
            if ns >= timeout {
                StallOutcome::Eagain
            } else {
                StallOutcome::Proceed
            }
        }
        Mode::Nonblocking => {
            let known = readiness::registrations_known(call.fd);
            let started = known
                && (ns == 0 || {
                    let until = sys::now_ns(libc::CLOCK_MONOTONIC) + ns;
                    readiness::begin_stall(call.fd, slot, dir, until)
                });
            if !started {
                sys::sleep_ns(ns);
                applied.delay_ns = ns;
                applied.degraded = Some(if known {
                    "stall-table-full"
                } else {
                    "unseen-registration"
                });
                return StallOutcome::Proceed;
            }
            if ns == 0 {
                // One call's EAGAIN: the readiness it consumed is re-armed right away.
                readiness::rearm(call.fd);
            }
            StallOutcome::Eagain
        }
    }
}

/// Ends the connection the way `brk` says, with the real calls, so the peer sees what it would see.
pub(crate) fn apply_break(fd: c_int, brk: Break) {
    match brk {
        Break::None => {}
        Break::Rst => {
            let unspec = libc::sockaddr {
                sa_family: libc::AF_UNSPEC as libc::sa_family_t,
                sa_data: [0; 14],
            };
            // The real connect, not our hook: dissolving the association sends an RST.
            // SAFETY: `unspec` is a whole sockaddr on our stack, and the length passed is its size.
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

/// The `effect` a fault line names for a break.
pub(crate) fn effect_of(brk: Break) -> Option<&'static str> {
    match brk {
        Break::None => None,
        Break::Rst => Some("rst-sent"),
        Break::ShutBoth => Some("shutdown-both"),
        Break::ShutWrite => Some("shutdown-write"),
    }
}

/// Logs a fault carried out on a call, named as its rule or injection names it.
pub(crate) fn log_fault(
    rt: &Runtime,
    slot: &Slot,
    meta: Meta,
    call: &Call,
    plan: &Choice,
    returned: isize,
    applied: &Applied,
) {
    let fault = plan.source.fault(&rt.policy).kind_name();
    log_fault_as(rt, slot, meta, call, plan, fault, returned, applied);
}

/// As `log_fault`, naming the fault by what it amounted to (a toxic's `stall`, `short`…).
#[allow(clippy::too_many_arguments)]
pub(crate) fn log_fault_as(
    rt: &Runtime,
    slot: &Slot,
    meta: Meta,
    call: &Call,
    plan: &Choice,
    fault: &str,
    returned: isize,
    applied: &Applied,
) {
    let errno = match plan.action {
        Action::Fail { errno, .. } | Action::FailAfter { errno, .. } => Some(errno),
        Action::ConnectRefusedLater => Some(libc::EINPROGRESS),
        Action::ConnectEintr => Some(libc::EINTR),
        Action::Stall { .. } | Action::Toxic { .. }
            if returned < 0 && applied.degraded.is_none() && applied.stall_ns > 0 =>
        {
            Some(libc::EAGAIN)
        }
        Action::Toxic { .. } if returned < 0 && fault == "reset" => Some(libc::ECONNRESET),
        _ => None,
    };
    log::write_fault(
        rt,
        &FaultRecord {
            op: call.op,
            fd: call.fd,
            meta,
            slot,
            source: plan.source,
            fault,
            errno,
            requested: call.requested,
            returned,
            key: &plan.key,
            applied,
        },
    );
}
