//! wait(2) and friends: when the program reaps a child, the shim logs how the child ended (an
//! `exit` line), since a child killed by a signal cannot log that itself. The real call is made
//! first and its result and errno are returned untouched. These hooks run inside SIGCHLD handlers
//! too: writing the line uses only raw system calls and the stack.

use crate::{log, real, runtime, sys};
use libc::{c_int, pid_t};

/// Logs `child`'s end if the call reaped one (pid > 0) and the shim is up in this process.
fn reaped(child: pid_t, wstatus: c_int) {
    if child <= 0 || runtime::get().is_none() || !runtime::in_own_process() {
        return;
    }
    let saved = sys::errno();
    log::write_exit(child, wstatus);
    // A crash of a process chaos-ctl does not reap: its undo happens before the program, back
    // from this wait, can look at the files.
    if crate::durable::active()
        && crate::durable::sigkill_loses_writes()
        && libc::WIFSIGNALED(wstatus)
        && libc::WTERMSIG(wstatus) == libc::SIGKILL
    {
        crate::guard::guarded(|| crate::durable::child_crashed(child as u64));
    }
    sys::set_errno(saved);
}

/// The caller's status pointer, or ours when it passed null (we still need the status).
fn status_slot(status: *mut c_int, local: &mut c_int) -> *mut c_int {
    if status.is_null() { local } else { status }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn wait(status: *mut c_int) -> pid_t {
    let mut local = 0;
    let slot = status_slot(status, &mut local);
    // SAFETY: the caller's pointer (valid or null, replaced by ours) as wait(2) takes it.
    let r = unsafe { real::wait(slot) };
    // SAFETY: the call succeeded, so the kernel wrote the status through `slot`.
    reaped(r, if r > 0 { unsafe { *slot } } else { 0 });
    r
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    let mut local = 0;
    let slot = status_slot(status, &mut local);
    // SAFETY: as for wait.
    let r = unsafe { real::waitpid(pid, slot, options) };
    // SAFETY: as for wait.
    reaped(r, if r > 0 { unsafe { *slot } } else { 0 });
    r
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn wait4(
    pid: pid_t,
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> pid_t {
    let mut local = 0;
    let slot = status_slot(status, &mut local);
    // SAFETY: as for wait; `usage` is the caller's, passed on.
    let r = unsafe { real::wait4(pid, slot, options, usage) };
    // SAFETY: as for wait.
    reaped(r, if r > 0 { unsafe { *slot } } else { 0 });
    r
}

/// wait3 is wait4 on any child (dash reaps its children with it).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn wait3(
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> pid_t {
    // SAFETY: as for wait4, with any child.
    unsafe { wait4(-1, status, options, usage) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn waitid(
    idtype: libc::idtype_t,
    id: libc::id_t,
    info: *mut libc::siginfo_t,
    options: c_int,
) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    let r = unsafe { real::waitid(idtype, id, info, options) };
    // WNOWAIT leaves the child to be reaped again: log it when it really is.
    if r == 0 && !info.is_null() && options & libc::WNOWAIT == 0 {
        // SAFETY: waitid succeeded, so the kernel filled *info (si_pid 0: nothing was waitable).
        let (code, pid, status) =
            unsafe { ((*info).si_code, (*info).si_pid(), (*info).si_status()) };
        let wstatus = match code {
            libc::CLD_EXITED => Some((status & 0xff) << 8),
            libc::CLD_KILLED => Some(status & 0x7f),
            libc::CLD_DUMPED => Some((status & 0x7f) | 0x80),
            _ => None,
        };
        if let Some(w) = wstatus {
            reaped(pid, w);
        }
    }
    r
}
