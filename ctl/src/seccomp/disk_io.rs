//! ftruncate and fallocate of a file on a `[[disk]]` or under `[durability]`, as the shim's
//! `disk_io::resize`: an allocation that does not fit on a disk fails ENOSPC before any rule (a
//! `disk` line says so); otherwise the rules decide, and the call is made by the supervisor on
//! its copy of the fd, so that what the kernel then allocated is counted (`disk`), and a
//! journaled change whose call failed is voided (`journal`).

use super::carry;
use super::disk::allocated;
use super::events::{self, Applied, OnCall};
use super::file_choice::decide_simple;
use super::state::Supervisor;
use super::sys::Answer;
use chaos_engine::disk::allocates;
use chaos_engine::op::Op;
use chaos_engine::realise::Action;

/// The answer for ftruncate or fallocate (`op`) of a file on disk `disk`, or covered by
/// `[durability]`, or both.
pub fn resize(
    s: &mut Supervisor,
    tgid: i32,
    tid: i32,
    n: &libc::seccomp_notif,
    op: Op,
    disk: Option<usize>,
) -> Option<Answer> {
    let args = n.data.args;
    let fd = args[0] as i32;
    let view = s.procs.get(&tgid)?.fds.get(&fd)?;
    let ours = view.fd();
    let on = OnCall::new(op, fd, tid, Some(view), Some(0));
    let need = match op {
        Op::Fallocate => allocates(args[1] as i32, args[2] as i64, args[3] as i64),
        _ => None,
    };
    let before = match (need, disk) {
        (_, None) => 0,
        (Some((offset, len)), Some(disk)) => {
            let (fits, before) = s.target.disks.before_allocate(disk, ours, offset, len);
            if !fits {
                let proc = s.procs.get(&tgid)?;
                events::disk(&mut s.log, &s.target, proc, &on, (disk, "full"), len, -1);
                return Some(Answer::Fail(libc::ENOSPC));
            }
            before
        }
        (None, Some(_)) => {
            s.target.disks.settle();
            allocated(ours).map_or(0, |(blocks, _)| blocks)
        }
    };
    let mut delay = None;
    if let Some(d) = decide_simple(s, tgid, tid, op, fd) {
        match d.action {
            Action::Delay(ns) => {
                let applied = Applied {
                    delay_ns: ns,
                    ..Applied::default()
                };
                let proc = s.procs.get(&tgid)?;
                events::fault(&mut s.log, &s.target, proc, &on, &d, &applied);
                delay = Some(ns);
            }
            _ => return carry::common(s, tgid, n, on, d, Applied::default()),
        }
    }
    if !super::sys::notif_valid(std::os::fd::AsRawFd::as_raw_fd(&*s.listener), n.id) {
        return Some(Answer::Continue);
    }
    let durable = s.procs.get(&tgid)?.fds.get(&fd)?.durable;
    let seq = match &s.target.journal {
        Some(journal) if durable => std::fs::read_link(format!("/proc/self/fd/{ours}"))
            .ok()
            .map(|path| {
                let path = path.into_os_string().into_encoded_bytes();
                let new_len = (op == Op::Ftruncate).then_some(args[1]);
                journal.before_resize(tgid, ours, &path, new_len)
            }),
        _ => None,
    };
    // SAFETY: our copy of the fd, and the program's own integer arguments.
    let r = unsafe {
        match op {
            Op::Fallocate => libc::fallocate(
                ours,
                args[1] as i32,
                args[2] as libc::off_t,
                args[3] as libc::off_t,
            ),
            _ => libc::ftruncate(ours, args[1] as libc::off_t),
        }
    };
    let answer = if r == 0 {
        Answer::Return(0)
    } else {
        Answer::Fail(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    };
    if let (Some(seq), Some(journal), false) = (seq, &s.target.journal, r == 0) {
        journal.void(tgid, seq);
    }
    if let Some(disk) = disk {
        s.target.disks.after_change(disk, ours, before);
    }
    match delay {
        // Made now, answered after the delay, as a delayed write on a disk is.
        Some(ns) => {
            s.answer_later(n.id, ns, || {}, answer);
            Some(Answer::Later)
        }
        None => Some(answer),
    }
}
