//! Keys of a system's descendants. chaos-ctl starts each replica and the workload with
//! CHAOS_PROCESS, which every child inherits: without a lineage, every program a workload shell
//! runs with the same executable would get the same key (exe, name, life), so the same faults.
//! A forked child already gets its own key (`init::in_fork_child`); this carries it across the
//! exec that follows, through the control page's lineage table, since nothing of ours may be
//! visible to the program (no variable, no fd). The exec'd program's key is then
//! `process_key::of_exec(lineage, exe)`.
//!
//! A vfork child (dash runs simple commands so, CPython's subprocess too) runs no atfork handler:
//! its key is made here, at its exec, from the parent's key and the parent's fork count, which it
//! shares (the parent is suspended until the exec). The process chaos-ctl started keeps its key
//! across an exec of its own (`sh -c 'exec server'`), so frozen policies still match it.
//!
//! Not covered: posix_spawn and glibc's internal execs (execl*, fexecve, system, popen), which
//! call the kernel without an interposable exec; such a program keeps the system process's
//! formula.

use crate::runtime::{self, FORKS, PROCESS_KEY};
use crate::sys;
use chaos_engine::process_key;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// This process descends from a system's process (a fork child, or a program exec'd with a
/// lineage), rather than being the process chaos-ctl started.
static DESCENDANT: AtomicBool = AtomicBool::new(false);

/// A forked child is a descendant (atfork child handler: a store only).
pub fn forked() {
    DESCENDANT.store(true, Relaxed);
}

/// The key a system's descendant left for this program at its exec, if any (constructor only,
/// after the control page is mapped): the engine's `Settings::process_key` makes the key.
pub fn inherited(process: Option<&str>) -> Option<u64> {
    process?;
    let (pid, ppid) = (sys::getpid() as u32, sys::getppid() as u32);
    let lineage = crate::page::mapped().and_then(|p| p.take_lineage(pid, ppid))?;
    DESCENDANT.store(true, Relaxed);
    Some(lineage)
}

/// Leaves this process's lineage for the program it is about to exec. Called by the exec hooks,
/// possibly in a vfork child: loads, stores and getpid/getppid only (async-signal-safe, no
/// allocation, errno untouched).
pub fn before_exec() {
    let Some(rt) = runtime::get() else { return };
    // Outside a system a program's key is its exe and command line, with no page needed.
    if rt.process.is_none() {
        return;
    }
    let Some(page) = crate::page::mapped() else {
        return;
    };
    let (pid, ppid) = (sys::getpid() as u32, sys::getppid() as u32);
    let lineage = if runtime::in_own_process() {
        if !DESCENDANT.load(Relaxed) {
            return;
        }
        PROCESS_KEY.load(Relaxed)
    } else {
        // A vfork child. A shell tries each PATH entry in turn: only the first attempt counts a
        // fork, or the parent's later children would shift.
        if page.has_lineage(pid, ppid) {
            return;
        }
        process_key::of_fork(PROCESS_KEY.load(Relaxed), FORKS.fetch_add(1, Relaxed) + 1)
    };
    page.leave_lineage(pid, ppid, lineage);
}
