//! What a call that names a path names: which call it is and where its name is in the target's
//! memory (`named_call`), and the name made absolute as the shim would match it (the engine's
//! rule, `chaos_engine::path`, against the thread's working directory or the directory fd, as
//! /proc/TID shows them). Shared by the decision on a named call (`paths`) and its journal
//! (`journaled`).

use super::sys;
use chaos_engine::op::Op;
use chaos_engine::path::{MAX, absolute_into};

/// A call that names a path: its op, and where the path is (a directory fd, `AT_FDCWD` for the
/// working directory, and the address of the name).
pub struct Named {
    pub op: Op,
    pub dirfd: i32,
    pub path: u64,
}

/// The named call a notified system call is, if it is one.
pub fn named_call(nr: i64, args: &[u64; 6]) -> Option<Named> {
    let cwd = |op| Named {
        op,
        dirfd: libc::AT_FDCWD,
        path: args[0],
    };
    let at = |op| Named {
        op,
        dirfd: args[0] as i32,
        path: args[1],
    };
    Some(match nr {
        libc::SYS_open => cwd(Op::Open),
        libc::SYS_creat => cwd(Op::Creat),
        libc::SYS_rename => cwd(Op::Rename),
        libc::SYS_unlink => cwd(Op::Unlink),
        libc::SYS_mkdir => cwd(Op::Mkdir),
        libc::SYS_openat | libc::SYS_openat2 => at(Op::Openat),
        libc::SYS_renameat | libc::SYS_renameat2 => at(Op::Rename),
        libc::SYS_unlinkat => at(Op::Unlink),
        libc::SYS_mkdirat => at(Op::Mkdir),
        _ => return None,
    })
}

/// `path` as the absolute name the shim would match: relative ones joined to thread `tid`'s
/// working directory or to `dirfd`'s directory.
pub fn absolute(tid: i32, dirfd: i32, given: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; MAX];
    let base = if given.starts_with(b"/") {
        None
    } else {
        let link = if dirfd == libc::AT_FDCWD {
            format!("/proc/{tid}/cwd")
        } else {
            format!("/proc/{tid}/fd/{dirfd}")
        };
        std::fs::read_link(link).ok().and_then(|p| {
            let b = p.into_os_string().into_encoded_bytes();
            (b.len() < MAX).then(|| {
                out[..b.len()].copy_from_slice(&b);
                b.len()
            })
        })
    };
    let n = absolute_into(&mut out, base, given);
    out.truncate(n);
    out
}

/// A rename's new name, absolute (`tid`: the thread that made it).
pub fn rename_target(tid: i32, n: &libc::seccomp_notif) -> Option<Vec<u8>> {
    let args = n.data.args;
    let (dirfd, at) = match i64::from(n.data.nr) {
        libc::SYS_rename => (libc::AT_FDCWD, args[1]),
        _ => (args[2] as i32, args[3]),
    };
    let given = sys::read_target_cstr(n.pid as i32, at)?;
    Some(absolute(tid, dirfd, &given))
}
