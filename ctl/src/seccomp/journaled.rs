//! `[durability]`'s calls under seccomp: what the shim journals around a call, journaled by the
//! supervisor around the same call (`journal` writes it). A change is journaled only if the call
//! makes it, and a sync only with its result, but CONTINUE tells the supervisor nothing of how a
//! call ended; so a call that changes a covered file, or syncs, is made by the supervisor itself
//! and its result is the answer: writes and resizes on its copy of the fd (`files`, `disk_io`),
//! fsync, fdatasync and syncfs here on that copy (the same open file description, so the same
//! writeback error state), renames and unlinks here through the target's own directory fds (or
//! its working directory) with the names as the target gave them, and an open that creates a
//! covered file here too, the new fd then installed in the target (`SECCOMP_IOCTL_NOTIF_ADDFD`).
//! What the shim records without a result (a truncating open's old content) is recorded before
//! the call runs, as there.

use super::carry;
use super::decide::Choice;
use super::events::{self, Applied, OnCall};
use super::names::Named;
use super::state::Supervisor;
use super::sys::{self, Answer};
use chaos_engine::op::Op;
use chaos_engine::realise::Action;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// After process `tgid`'s fsync or fdatasync of `fd` ended (`ok`: it succeeded).
pub fn synced(s: &Supervisor, tgid: i32, fd: i32, ok: bool) {
    let Some(journal) = &s.target.journal else {
        return;
    };
    if let Some(view) = s.procs.get(&tgid).and_then(|p| p.fds.get(&fd)) {
        journal.after_sync(tgid, view.fd(), ok);
    }
}

/// An fsync, fdatasync or syncfs (`op`) under `[durability]`, after the rules chose `d`: made
/// by us on our copy so that the journal says whether it succeeded. A failure a rule gives is
/// journaled as one.
pub fn sync(
    s: &mut Supervisor,
    tgid: i32,
    n: &libc::seccomp_notif,
    op: Op,
    on: OnCall,
    d: Option<Choice>,
) -> Option<Answer> {
    let fd = n.data.args[0] as i32;
    let delay = match d.as_ref().map(|d| d.action) {
        None => None,
        Some(Action::Delay(ns)) => Some(ns),
        Some(Action::Fail { .. }) => {
            let answer = carry::common(s, tgid, n, on, d?, Applied::default());
            if op != Op::Syncfs {
                synced(s, tgid, fd, false);
            }
            return answer;
        }
        Some(_) => return carry::common(s, tgid, n, on, d?, Applied::default()),
    };
    if !sys::notif_valid(s.listener.as_raw_fd(), n.id) {
        return Some(Answer::Continue);
    }
    let ours = s.procs.get(&tgid)?.fds.get(&fd)?.fd();
    // SAFETY: our copy of the target's fd; no memory arguments.
    let r = unsafe {
        match op {
            Op::Fsync => libc::fsync(ours),
            Op::Fdatasync => libc::fdatasync(ours),
            _ => libc::syncfs(ours),
        }
    };
    let answer = if r == 0 {
        Answer::Return(0)
    } else {
        Answer::Fail(errno())
    };
    match (op, &s.target.journal) {
        (Op::Syncfs, Some(journal)) if r == 0 => journal.after_syncfs(tgid),
        (Op::Syncfs, _) => {}
        _ => synced(s, tgid, fd, r == 0),
    }
    later(s, tgid, n, (on, d, delay), answer)
}

/// An O_DIRECT write to a covered file, which is not journaled: the process's first is logged
/// as `unseen`, as the shim logs it.
pub fn direct_unseen(s: &mut Supervisor, tgid: i32, tid: i32, fd: i32) {
    let Some(proc) = s.procs.get_mut(&tgid) else {
        return;
    };
    let Some(ours) = proc.fds.get(&fd).map(super::fdview::FdView::fd) else {
        return;
    };
    if std::mem::replace(&mut proc.direct_said, true) {
        return;
    }
    let Ok(path) = std::fs::read_link(format!("/proc/self/fd/{ours}")) else {
        return;
    };
    let proc = &s.procs[&tgid];
    let path = path.to_string_lossy();
    events::durability_unseen(&mut s.log, proc, (tid, fd), &path, "O_DIRECT");
}

/// sync(2): every filesystem's changes are durable after it, so under `[durability]` it is
/// journaled as a syncfs, once made (by us: it takes nothing and cannot fail).
pub fn sync_all(s: &mut Supervisor, tgid: i32, n: &libc::seccomp_notif) -> Answer {
    let Some(journal) = &s.target.journal else {
        return Answer::Continue;
    };
    if !sys::notif_valid(s.listener.as_raw_fd(), n.id) {
        return Answer::Continue;
    }
    // SAFETY: sync takes no arguments.
    unsafe { libc::sync() };
    journal.after_syncfs(tgid);
    Answer::Return(0)
}

/// `answer` now, or after the delay the rules chose (its fault line written now).
fn later(
    s: &mut Supervisor,
    tgid: i32,
    n: &libc::seccomp_notif,
    (on, d, delay): (OnCall, Option<Choice>, Option<u64>),
    answer: Answer,
) -> Option<Answer> {
    let (Some(d), Some(ns)) = (d, delay) else {
        return Some(answer);
    };
    carry::made_then_delayed(s, (tgid, n.id), &on, &d, ns, answer)
}

/// A change a named call makes to what `[durability]` covers.
pub enum Change {
    /// An open with O_TRUNC of an existing covered file.
    Truncating,
    /// An open with O_CREAT of a covered file that does not exist.
    Create,
    /// A rename to `to` (absolute), from or to a covered name.
    Rename { to: Vec<u8> },
    /// An unlink of a covered name.
    Unlink,
}

/// openat2's `struct open_how` (libc's cannot be built: it is non-exhaustive).
#[repr(C)]
#[derive(Clone, Copy)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// The open flags and mode of a notified open (`creat` is an open with O_CREAT|O_WRONLY|O_TRUNC).
fn open_how(pid: i32, n: &libc::seccomp_notif) -> Option<OpenHow> {
    let args = n.data.args;
    let how = |flags: u64, mode: u64| OpenHow {
        flags,
        mode,
        resolve: 0,
    };
    Some(match i64::from(n.data.nr) {
        libc::SYS_creat => how(
            (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64,
            args[1],
        ),
        libc::SYS_open => how(args[1], args[2]),
        libc::SYS_openat => how(args[2], args[3]),
        _ => sys::read_target_value::<OpenHow>(pid, args[2])?,
    })
}

/// What process `pid`'s named call `call` on `path` changes that `[durability]` journals.
pub fn change_of(
    s: &Supervisor,
    pid: i32,
    tid: i32,
    n: &libc::seccomp_notif,
    call: &Named,
    path: &[u8],
) -> Option<Change> {
    let journal = s.target.journal.as_ref()?;
    let exists = || std::fs::symlink_metadata(as_path(path)).is_ok();
    match call.op {
        Op::Open | Op::Openat | Op::Creat if journal.covers(path) => {
            let flags = open_how(pid, n)?.flags as i32;
            match (
                flags & libc::O_CREAT != 0,
                flags & libc::O_TRUNC != 0,
                exists(),
            ) {
                (true, _, false) => Some(Change::Create),
                (_, true, true) => Some(Change::Truncating),
                _ => None,
            }
        }
        Op::Rename => {
            let to = super::names::rename_target(tid, n)?;
            (journal.covers(path) || journal.covers(&to)).then_some(Change::Rename { to })
        }
        Op::Unlink if journal.covers(path) => Some(Change::Unlink),
        _ => None,
    }
}

/// Carries out a named call that makes `change` to `path`, after the rules chose `d` (none, a
/// delay, or a fault that stops it, which then changes nothing).
pub fn named(
    s: &mut Supervisor,
    tgid: i32,
    n: &libc::seccomp_notif,
    (on, d): (OnCall, Option<Choice>),
    (path, change): (&[u8], Change),
) -> Option<Answer> {
    let delay = match d.as_ref().map(|d| d.action) {
        None => None,
        Some(Action::Delay(ns)) => Some(ns),
        Some(_) => return carry::common(s, tgid, n, on, d?, Applied::default()),
    };
    let journal = s.target.journal.as_ref()?;
    let answer = match change {
        Change::Truncating => {
            journal.before_truncating_open(tgid, path);
            Answer::Continue
        }
        Change::Create => create(s, tgid, n, path, delay.is_none())?,
        Change::Rename { to } => {
            let kept = journal.stash(tgid, &to);
            let r = rename(s, tgid, n);
            let journal = s.target.journal.as_ref()?;
            match r {
                Ok(()) => journal.renamed(tgid, path, &to, kept),
                Err(_) => journal.drop_stash(kept),
            }
            r.map_or_else(Answer::Fail, |()| Answer::Return(0))
        }
        Change::Unlink => {
            let kept = journal.stash(tgid, path);
            let r = unlink(s, tgid, n);
            let journal = s.target.journal.as_ref()?;
            match r {
                Ok(()) => journal.unlinked(tgid, path, kept),
                Err(_) => journal.drop_stash(kept),
            }
            r.map_or_else(Answer::Fail, |()| Answer::Return(0))
        }
    };
    later(s, tgid, n, (on, d, delay), answer)
}

/// A directory fd of ours for process `tgid`'s `dirfd`: the working directory of its thread
/// `tid` for AT_FDCWD, else our copy of its fd.
fn their_dir(s: &Supervisor, (tgid, tid): (i32, i32), dirfd: i32) -> Option<OwnedFd> {
    if dirfd == libc::AT_FDCWD {
        let cwd = CString::new(format!("/proc/{tid}/cwd")).ok()?;
        // SAFETY: a NUL-terminated path of ours; a non-negative result is a new fd we own.
        let fd = unsafe {
            libc::open(
                cwd.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        // SAFETY: as above.
        return (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) });
    }
    sys::pidfd_getfd(&s.procs.get(&tgid)?.pidfd, dirfd).ok()
}

/// A name the target passed at `addr`, as it gave it (relative names resolve against the
/// directory fd we pass with it).
fn name_at(pid: i32, addr: u64) -> Option<CString> {
    CString::new(sys::read_target_cstr(pid, addr)?).ok()
}

/// The target's rename, made by us: Err(errno) as the kernel gave it.
fn rename(s: &Supervisor, tgid: i32, n: &libc::seccomp_notif) -> Result<(), i32> {
    let (pid, args) = (n.pid as i32, n.data.args);
    let (od, op, nd, np, flags) = match i64::from(n.data.nr) {
        libc::SYS_rename => (libc::AT_FDCWD, args[0], libc::AT_FDCWD, args[1], 0),
        libc::SYS_renameat => (args[0] as i32, args[1], args[2] as i32, args[3], 0),
        _ => (args[0] as i32, args[1], args[2] as i32, args[3], args[4]),
    };
    let at = (tgid, pid);
    let (Some(old_dir), Some(new_dir)) = (their_dir(s, at, od), their_dir(s, at, nd)) else {
        return Err(libc::EBADF);
    };
    let (Some(old), Some(new)) = (name_at(pid, op), name_at(pid, np)) else {
        return Err(libc::EFAULT);
    };
    // SAFETY: our directory fds and NUL-terminated names.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            old_dir.as_raw_fd(),
            old.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            flags as libc::c_uint,
        )
    };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

/// The target's unlink, made by us.
fn unlink(s: &Supervisor, tgid: i32, n: &libc::seccomp_notif) -> Result<(), i32> {
    let (pid, args) = (n.pid as i32, n.data.args);
    let (dirfd, at, flags) = match i64::from(n.data.nr) {
        libc::SYS_unlink => (libc::AT_FDCWD, args[0], 0),
        _ => (args[0] as i32, args[1], args[2] as i32),
    };
    let dir = their_dir(s, (tgid, pid), dirfd).ok_or(libc::EBADF)?;
    let name = name_at(pid, at).ok_or(libc::EFAULT)?;
    // SAFETY: our directory fd and a NUL-terminated name.
    let r = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

/// The target's open that creates the covered file `path`, made by us and installed in the
/// target; journaled as a create when it made the file. `send`: answered with the new fd in the
/// same step (else the caller answers, after a delay).
fn create(
    s: &Supervisor,
    tgid: i32,
    n: &libc::seccomp_notif,
    path: &[u8],
    send: bool,
) -> Option<Answer> {
    let (pid, args) = (n.pid as i32, n.data.args);
    let how = open_how(pid, n)?;
    let (dirfd, at) = match i64::from(n.data.nr) {
        libc::SYS_open | libc::SYS_creat => (libc::AT_FDCWD, args[0]),
        _ => (args[0] as i32, args[1]),
    };
    let Some(dir) = their_dir(s, (tgid, pid), dirfd) else {
        return Some(Answer::Fail(libc::EBADF));
    };
    let name = name_at(pid, at)?;
    // The mode as the target's umask leaves it: the kernel applies ours. (A directory with a
    // default ACL, which ignores umasks, is not followed.)
    let umask = proc_status(pid, "Umask:").and_then(|u| u32::from_str_radix(&u, 8).ok());
    let mode = (how.mode as u32) & 0o7777 & !umask.unwrap_or(0o022);
    let fd = if i64::from(n.data.nr) == libc::SYS_openat2 {
        let mut ours = how;
        ours.flags |= libc::O_CLOEXEC as u64;
        // SAFETY: our directory fd, a NUL-terminated name and our struct of the size passed.
        unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                name.as_ptr(),
                &ours as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            ) as i32
        }
    } else {
        let flags = how.flags as i32 | libc::O_CLOEXEC;
        // SAFETY: our directory fd and a NUL-terminated name.
        unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode) }
    };
    if fd < 0 {
        return Some(Answer::Fail(errno()));
    }
    // SAFETY: a fresh fd nobody else owns.
    let file = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = sys::fstat(fd)?;
    if st.st_mode & 0o7777 != mode {
        // SAFETY: our fd; no memory arguments.
        unsafe { libc::fchmod(fd, mode) };
    }
    owned_as_target(pid, fd, &st);
    let cloexec = how.flags & libc::O_CLOEXEC as u64 != 0;
    let installed = sys::notif_addfd(
        s.listener.as_raw_fd(),
        n.id,
        file.as_raw_fd(),
        cloexec,
        send,
    );
    if let Some(journal) = &s.target.journal
        && installed.is_ok()
    {
        journal.created(tgid, path, st.st_ino);
    }
    Some(match installed {
        Ok(_) if send => Answer::Later,
        Ok(newfd) => Answer::Return(i64::from(newfd)),
        // The target is gone, or out of fds (EMFILE): the file we made is its open's doing all
        // the same (Linux's open fails EMFILE before creating; this is the rare difference).
        Err(e) => Answer::Fail(e),
    })
}

/// A file we created for the target belongs to the target's fs uid and gid when its uid is not
/// ours (a system's `user`): a chown, which needs the privilege that running it as that user
/// needed. (The same uid keeps the group the kernel gave, a setgid directory's included.)
fn owned_as_target(pid: i32, fd: i32, st: &libc::stat) {
    let fs = |line: &str| {
        proc_status(pid, line)?
            .split_whitespace()
            .nth(3)?
            .parse::<u32>()
            .ok()
    };
    let (Some(uid), Some(gid)) = (fs("Uid:"), fs("Gid:")) else {
        return;
    };
    if uid != st.st_uid {
        // SAFETY: our fd; no memory arguments.
        unsafe { libc::fchown(fd, uid, gid) };
    }
}

/// The value of `field` in /proc/PID/status.
fn proc_status(pid: i32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_string())
}

fn as_path(bytes: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    std::path::PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}
