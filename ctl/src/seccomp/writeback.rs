//! Linux's writeback-error reporting under seccomp, as the shim's `writeback.rs`: when a rule
//! fails an fsync or fdatasync with EIO, ENOSPC or EDQUOT, every other open file description of
//! that file in the process (errseq_t, `docs/kernel-facts.md` F4) reports the same error at its
//! next fsync or fdatasync, once. The process's fds are listed in /proc; a dup'ed fd shares the
//! failing description (kcmp), so it is not told again.

use super::state::Supervisor;
use super::sys;
use std::os::fd::AsRawFd;

/// Whether process `pid`'s fds `a` and `b` are the same open file description.
fn same_description(pid: i32, a: i32, b: i32) -> bool {
    const KCMP_FILE: libc::c_long = 0;
    // SAFETY: kcmp compares two fds of one process by number; it reads and writes no memory.
    unsafe { libc::syscall(libc::SYS_kcmp, pid, pid, KCMP_FILE, a, b) == 0 }
}

/// The rule's fsync of process `tgid`'s `fd` failed with `errno`: the other descriptions open
/// on its file have it to report.
pub fn failed(s: &mut Supervisor, tgid: i32, fd: i32, errno: i32) {
    if !matches!(errno, libc::EIO | libc::ENOSPC | libc::EDQUOT) {
        return;
    }
    let Some(proc) = s.procs.get_mut(&tgid) else {
        return;
    };
    let Some(ident) = proc.fds.get(&fd).map(|v| v.ident) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(format!("/proc/{tgid}/fd")) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(other) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if other == fd {
            continue;
        }
        let Ok(copy) = sys::pidfd_getfd(&proc.pidfd, other) else {
            continue;
        };
        if super::fdview::identity(copy.as_raw_fd()) == Some(ident)
            && !same_description(tgid, fd, other)
        {
            proc.owed.insert(other, errno);
        }
    }
}

/// The error `fd`'s next fsync or fdatasync must report, taken (reported once).
pub fn take(s: &mut Supervisor, tgid: i32, fd: i32) -> Option<i32> {
    s.procs.get_mut(&tgid)?.owed.remove(&fd)
}
