//! Process faults (`fault = "crash" | "terminate" | { pause = … }`): fired at a decision key like
//! any fault, they act on the whole process. The fault line is written first: a process that dies
//! or stops must already have logged why.

use crate::log::Applied;
use crate::runtime::Runtime;
use crate::sys;
use chaos_engine::realise::ProcessAction;

/// Acts on `action`, calling `log` with what was applied just before acting. Returns only when the
/// call should go on (terminate with a handler, a pause that ended).
pub fn act(rt: &Runtime, action: ProcessAction, applied: &mut Applied, log: impl FnOnce(&Applied)) {
    applied.before_call = true;
    match action {
        ProcessAction::Crash => {
            applied.effect = Some("sigkill-self");
            // The change this call was about to make never happens: nothing to undo.
            crate::durable::landed(false);
            log(applied);
            sys::kill_self(libc::SIGKILL);
            // SIGKILL to ourselves is delivered before kill returns to user space; if it somehow
            // were not, the call must not go on as if nothing happened.
            loop {
                sys::kill_self(libc::SIGKILL);
            }
        }
        ProcessAction::PowerLoss => {
            applied.effect = Some("sigkill-group");
            crate::durable::landed(false);
            log(applied);
            // Its process group is the machine: a single run's program and everything it
            // started, or one replica. chaos-ctl, outside it, undoes their changes together.
            // SAFETY: kill takes two integers.
            unsafe { sys::syscall!(libc::SYS_kill, 0, libc::SIGKILL) };
            loop {
                sys::kill_self(libc::SIGKILL);
            }
        }
        ProcessAction::Terminate => {
            applied.effect = Some("stop-signal-self");
            log(applied);
            // The program's handler (if any) runs; its default action ends the process.
            sys::kill_self(rt.stop_signal);
        }
        ProcessAction::Pause(ns) => {
            applied.delay_ns = ns;
            if rt.supervisor > 0 && sys::getppid() == rt.supervisor {
                // The whole process stops; chaos-ctl, our parent, sees it stopped, reads `delay_ns`
                // from this line and sends SIGCONT when the pause is over.
                applied.effect = Some("sigstop-self");
                log(applied);
                sys::kill_self(libc::SIGSTOP);
            } else {
                // Nobody would continue us: only this thread waits.
                applied.degraded = Some("not-supervised");
                log(applied);
                sys::sleep_ns(ns);
            }
        }
    }
}
