//! The engine's choice for a call on a regular file that moves no data (fsync and its kin,
//! ftruncate, fallocate), counted on its fd as the shim counts it; and the shape of a file call
//! as the realism model sees it.

use super::decide::{Choice, Position, decide_on_fd};
use super::events::OnCall;
use super::fdview::FdView;
use super::state::Supervisor;
use chaos_engine::key::Site;
use chaos_engine::op::Op;
use chaos_engine::realise;

/// The engine's choice for a call on a file that moves no data, counted on its fd.
pub fn decide_simple(s: &mut Supervisor, tgid: i32, tid: i32, op: Op, fd: i32) -> Option<Choice> {
    let proc = s.procs.get_mut(&tgid)?;
    let view = proc.fds.get_mut(&fd)?;
    let rules = s.target.rules_for(op) & view.mask;
    if rules == 0 && !s.target.keys_every_call() {
        return None;
    }
    let class = op.class();
    let count = view.calls[class as usize];
    view.calls[class as usize] += 1;
    let at = Position {
        process: proc.key,
        base: proc.base,
        conn: view.conn,
        site: Site::Call { class, n: count },
        n: count,
        requested: 0,
    };
    let view: &FdView = view;
    if let Some(census) = &mut s.census {
        census.reached(&mut s.log, (tgid, tid), (op, &at), || {
            OnCall::new(op, fd, tid, Some(view), Some(0))
        });
    }
    let call = shape(op, view, 0);
    decide_on_fd(
        &mut s.target,
        &mut proc.budget,
        (op, at, rules),
        (view, tid),
        &call,
    )
}

pub fn shape(op: Op, view: &FdView, requested: usize) -> realise::Call {
    realise::Call {
        op,
        kind: view.kind,
        stream: view.stream,
        requested,
        msg_flags: 0,
    }
}
