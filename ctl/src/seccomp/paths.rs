//! The calls decided before there is an fd: the opens, rename, unlink and mkdir, matched by the
//! path they name and keyed as the shim keys them (`shim/src/hooks/fdless.rs`): the connection
//! is the absolute name's hash with the call's class, the site the n-th such call on that name
//! in the process. The path is read out of the target's memory and made absolute by the
//! engine's rule (`chaos_engine::path`) against the calling thread's working directory or the
//! directory fd, as /proc/TID shows them. A fault is an error before the call is made, a delay
//! before it, or a process fault.
//!
//! The system call is the op: glibc's `open()` is the openat system call, so a rule on `open`
//! sees a static glibc program's opens only through the `opens` group (musl's `open()` is open).

use super::carry;
use super::decide::{self, Position};
use super::events::{Applied, OnCall};
use super::names::{Named, absolute, rename_target};
use super::state::Supervisor;
use super::sys::{self, Answer};
use chaos_engine::addr::Endpoint;
use chaos_engine::inject::named_key;
use chaos_engine::key::Site;
use chaos_engine::kind::FdKind;
use chaos_engine::op::Op;
use chaos_engine::policy::FdFacts;
use chaos_engine::realise::realise_fdless;

/// An open is where the file numbers the process closed since its last notified call are
/// forgotten: close is not notified (see `filter`), and the shim numbers every file it opens
/// afresh, even the same file again at the same number. (A socket or pipe reusing a number has
/// an inode of its own, so its view is replaced at its first call.)
fn forget_closed(s: &mut Supervisor, tgid: i32) {
    if let Some(proc) = s.procs.get_mut(&tgid) {
        // A description opened after the error was seen does not report it.
        proc.owed.retain(|fd, _| {
            std::path::Path::new(&format!("/proc/{tgid}/fd/{fd}"))
                .symlink_metadata()
                .is_ok()
        });
        proc.fds.retain(|fd, v| {
            v.kind != FdKind::File
                || std::path::Path::new(&format!("/proc/{tgid}/fd/{fd}"))
                    .symlink_metadata()
                    .is_ok()
        });
    }
}

/// The answer for a named call of an adopted process.
pub fn named(
    s: &mut Supervisor,
    tgid: i32,
    tid: i32,
    n: &libc::seccomp_notif,
    call: Named,
) -> Option<Answer> {
    let op = call.op;
    if matches!(op, Op::Open | Op::Openat | Op::Creat) {
        forget_closed(s, tgid);
    }
    let disks = s.target.disks.any();
    let every = s.target.keys_every_call();
    let durable = s.target.journal.is_some();
    if s.target.rules_for(op) == 0 && !every && !disks && !durable {
        return Some(Answer::Continue);
    }
    let given = sys::read_target_cstr(tgid, call.path)?;
    let path = absolute(tid, call.dirfd, &given);
    if disks {
        on_disks(s, tid, n, &call, &path);
    }
    let change = super::journaled::change_of(s, tgid, tid, n, &call, &path);
    let mut on = OnCall::new(op, -1, tid, None, None);
    on.kind = Some(FdKind::File.name().to_string());
    on.path = Some(String::from_utf8_lossy(&path).into_owned());
    if s.target.rules_for(op) == 0 && !every {
        return match change {
            Some(c) => super::journaled::named(s, tgid, n, (on, None), (&path, c)),
            None => Some(Answer::Continue),
        };
    }
    let mask = s.target.policy.mask_for(&FdFacts {
        kind: FdKind::File,
        peer: Endpoint::Unknown,
        local: Endpoint::Unknown,
        path: Some(&path),
    });
    let class = op.class();
    let conn = named_key(class, &path);
    let proc = s.procs.get_mut(&tgid)?;
    let count = proc.named.entry(conn).or_insert(0);
    let nth = *count;
    *count += 1;
    let at = Position {
        process: proc.key,
        base: proc.base,
        conn,
        site: Site::Call { class, n: nth },
        n: nth,
        requested: 0,
    };
    if let Some(census) = &mut s.census {
        census.reached(&mut s.log, (tgid, tid), (on.op, &at), || &on);
    }
    let d = decide::decide(
        &mut s.target,
        &mut proc.budget,
        op,
        at,
        mask,
        |fault, _ctx, param| realise_fdless(fault, param),
    );
    match change {
        Some(c) => super::journaled::named(s, tgid, n, (on, d), (&path, c)),
        None => carry::common(s, tgid, n, on, d?, Applied::default()),
    }
}

/// What an unlink, a rename or a truncating open may free on a `[[disk]]`, watched until it
/// has run (`disk::Disks::settle`).
fn on_disks(s: &mut Supervisor, tid: i32, n: &libc::seccomp_notif, call: &Named, path: &[u8]) {
    let args = n.data.args;
    let nr = i64::from(n.data.nr);
    match call.op {
        Op::Unlink => s.target.disks.unlinking(path),
        Op::Rename => {
            if let Some(new) = rename_target(tid, n) {
                s.target.disks.renaming(path, &new);
            }
        }
        Op::Open | Op::Openat | Op::Creat => {
            let flags = match nr {
                libc::SYS_creat => libc::O_TRUNC as u64,
                libc::SYS_open => args[1],
                libc::SYS_openat => args[2],
                // openat2's flags are the first field of its `struct open_how`.
                _ => sys::read_target_value::<u64>(n.pid as i32, args[2]).unwrap_or(0),
            };
            if flags & libc::O_TRUNC as u64 != 0 {
                s.target.disks.truncating(path);
            }
        }
        _ => {}
    }
}
