//! Calls by which a process gives up the right to open the event log: a change of user or groups
//! (nginx's, Apache's and dnsmasq's workers drop from root to `nobody`; sshd uses the set-res
//! forms) and chroot. The kept log fd is opened before each, while the process still may, so the
//! faults it meets later are logged (see `log`). glibc carries a set*id call to every thread of
//! the process itself (SIGSETXID), so hooking the entry point is enough.
//!
//! Not hooked: capset (a uid-0 process that drops capabilities still owns the log) and raw
//! `syscall(SYS_setuid, …)` (no libc entry point to interpose).

use crate::{log, real, runtime};
use libc::{c_char, c_int, gid_t, size_t, uid_t};

/// Opens the kept log fd, unless this is a vfork child (it shares our memory, not our fds: the
/// number it got would mean nothing to us). `guarded` keeps the program's errno.
fn before_giving_up_rights() {
    if runtime::get().is_some() && runtime::in_own_process() {
        crate::guard::guarded(log::keep_open);
    }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn setuid(uid: uid_t) -> c_int {
    before_giving_up_rights();
    // SAFETY: the program's arguments, passed on as they came.
    unsafe { real::setuid(uid) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn setgid(gid: gid_t) -> c_int {
    before_giving_up_rights();
    // SAFETY: the program's arguments, passed on as they came.
    unsafe { real::setgid(gid) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn seteuid(uid: uid_t) -> c_int {
    before_giving_up_rights();
    // SAFETY: the program's arguments, passed on as they came.
    unsafe { real::seteuid(uid) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn setegid(gid: gid_t) -> c_int {
    before_giving_up_rights();
    // SAFETY: the program's arguments, passed on as they came.
    unsafe { real::setegid(gid) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn setreuid(ruid: uid_t, euid: uid_t) -> c_int {
    before_giving_up_rights();
    // SAFETY: the program's arguments, passed on as they came.
    unsafe { real::setreuid(ruid, euid) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn setregid(rgid: gid_t, egid: gid_t) -> c_int {
    before_giving_up_rights();
    // SAFETY: the program's arguments, passed on as they came.
    unsafe { real::setregid(rgid, egid) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn setresuid(ruid: uid_t, euid: uid_t, suid: uid_t) -> c_int {
    before_giving_up_rights();
    // SAFETY: the program's arguments, passed on as they came.
    unsafe { real::setresuid(ruid, euid, suid) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn setresgid(rgid: gid_t, egid: gid_t, sgid: gid_t) -> c_int {
    before_giving_up_rights();
    // SAFETY: the program's arguments, passed on as they came.
    unsafe { real::setresgid(rgid, egid, sgid) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn setgroups(n: size_t, groups: *const gid_t) -> c_int {
    before_giving_up_rights();
    // SAFETY: the program's arguments, passed on as they came.
    unsafe { real::setgroups(n, groups) }
}

/// glibc's initgroups sets the groups through its internal setgroups, which no hook sees.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn initgroups(user: *const c_char, group: gid_t) -> c_int {
    before_giving_up_rights();
    // SAFETY: the program's arguments, passed on as they came.
    unsafe { real::initgroups(user, group) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn chroot(path: *const c_char) -> c_int {
    before_giving_up_rights();
    // SAFETY: the program's arguments, passed on as they came.
    unsafe { real::chroot(path) }
}
