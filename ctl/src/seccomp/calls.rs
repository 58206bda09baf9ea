//! One held call: what it is (its op, fd and arguments, read out of the target's registers and
//! memory), what the engine decides for it, and how the decision is carried out.
//!
//! Faults are carried out on our copy of the fd, never by blocking the supervisor: an error is
//! the answer itself (the call is not made); a delay answers CONTINUE from a thread after
//! sleeping; a short read or write is made by us, non-blocking, on our copy with the smaller
//! length, the bytes moved with process_vm_readv/writev, and answered with the count (when
//! nothing could move at once the call runs as it is); a reset is connect(AF_UNSPEC) on our
//! copy, then the error. An EAGAIN stall cannot be carried out: the target's epoll registration
//! is edge-triggered (Go's netpoller) and we cannot re-arm it from outside, so a lost edge would
//! hang it. Stalls become delays of the same length here, logged as `degraded`.

use super::args;
use super::carry;
use super::decide::{self, Position};
use super::events::{self, Applied, OnCall};
use super::facts::shut_state;
use super::fdview::{FdView, Role};
use super::grid;
use super::state::Supervisor;
use super::sys::{self, Answer};
use chaos_engine::fault::Fault;
use chaos_engine::inject::{connects_key, named_key};
use chaos_engine::key::Site;
use chaos_engine::kind::FdKind;
use chaos_engine::op::{Op, OpClass};
use chaos_engine::quirk::Quirk;
use chaos_engine::realise::{self, Action, RuleContext};
use std::os::fd::AsRawFd;

/// The op a data system call is, as the policy names it: glibc's recv and send are recvfrom and
/// sendto with no address, and are reported as the shim reports them.
fn data_op(nr: i64, args: &[u64; 6]) -> Option<Op> {
    Some(match nr {
        libc::SYS_read => Op::Read,
        libc::SYS_readv => Op::Readv,
        libc::SYS_recvfrom if args[4] == 0 => Op::Recv,
        libc::SYS_recvfrom => Op::Recvfrom,
        libc::SYS_recvmsg => Op::Recvmsg,
        libc::SYS_recvmmsg => Op::Recvmmsg,
        libc::SYS_write => Op::Write,
        libc::SYS_writev => Op::Writev,
        libc::SYS_sendto if args[4] == 0 => Op::Send,
        libc::SYS_sendto => Op::Sendto,
        libc::SYS_sendmsg => Op::Sendmsg,
        libc::SYS_sendmmsg => Op::Sendmmsg,
        _ => return None,
    })
}

/// An exec: after it the process is a new program with a new key, adopted again at its first
/// call. Answered before adopting, so the launcher's own exec adopts nothing.
pub fn before_adopting(s: &mut Supervisor, tgid: i32, n: &libc::seccomp_notif) -> Option<Answer> {
    let args = n.data.args;
    match i64::from(n.data.nr) {
        libc::SYS_execve => {
            s.forget(tgid);
            s.note_exec(tgid, args[0], args[1]);
        }
        libc::SYS_execveat => {
            s.forget(tgid);
            // A path relative to a directory fd other than the cwd is not resolved: its start
            // line, if it makes no call, names the path as given.
            s.note_exec(tgid, args[1], args[2]);
        }
        _ => return None,
    }
    Some(Answer::Continue)
}

/// The answer for a call of an adopted process; None runs it as it was made.
pub fn handle(s: &mut Supervisor, tgid: i32, tid: i32, n: &libc::seccomp_notif) -> Option<Answer> {
    let nr = i64::from(n.data.nr);
    let args = n.data.args;
    let fd = args[0] as i32;
    if let Some(call) = super::names::named_call(nr, &args) {
        return super::paths::named(s, tgid, tid, n, call);
    }
    if nr == libc::SYS_sync {
        return Some(super::journaled::sync_all(s, tgid, n));
    }
    let proc = s.procs.get_mut(&tgid)?;
    match nr {
        libc::SYS_epoll_wait | libc::SYS_epoll_pwait | libc::SYS_epoll_pwait2 => {
            return wait(s, tgid, tid, n);
        }
        _ => {}
    }
    if fd < 0 {
        return Some(Answer::Continue);
    }
    // Our copy of the target's fd for this call; the view kept from earlier calls is this fd's
    // if the number still means the same file (it may have been closed and reused since).
    let hint = if nr == libc::SYS_connect {
        Role::Out
    } else {
        Role::Other
    };
    let Ok(ours) = sys::pidfd_getfd(&proc.pidfd, fd) else {
        proc.fds.remove(&fd);
        return Some(Answer::Continue); // not open: the kernel's own EBADF
    };
    // A socket first seen before its connect or listen (at a setsockopt) is numbered again as
    // what it became, as the shim classifies it again.
    let is_accept = matches!(nr, libc::SYS_accept | libc::SYS_accept4);
    let ident = super::fdview::identity(ours.as_raw_fd());
    match proc.fds.get_mut(&fd) {
        Some(v)
            if Some(v.ident) == ident
                && (hint != Role::Out || v.role == Role::Out)
                && (!is_accept || v.role == Role::Listen) =>
        {
            v.ours = Some(ours);
        }
        _ => {
            let view = FdView::new(ours, &mut proc.ordinals, &s.target.policy, hint)?;
            proc.fds.insert(fd, view);
        }
    }
    match nr {
        libc::SYS_listen => Some(super::partition::listen(s, tgid, n).unwrap_or(Answer::Continue)),
        libc::SYS_connect => connect(s, tgid, tid, n),
        libc::SYS_accept | libc::SYS_accept4 => accept(s, tgid, tid, n),
        libc::SYS_setsockopt => setsockopt(s, tgid, tid, n),
        libc::SYS_getpeername => super::proxied::peer(s, tgid, n),
        libc::SYS_shutdown => {
            let view = s.procs.get_mut(&tgid)?.fds.get_mut(&fd)?;
            view.shut |= match args[1] as i32 {
                libc::SHUT_RD => 1,
                libc::SHUT_WR => 2,
                _ => 3,
            };
            Some(Answer::Continue)
        }
        _ => match data_op(nr, &args) {
            Some(op) if super::files::is_file(s, tgid, fd) => {
                super::files::on_fd(s, tgid, tid, n, op)
            }
            Some(op) => data(s, tgid, tid, n, op),
            None => match super::files::fd_op(nr) {
                Some(op) => super::files::on_fd(s, tgid, tid, n, op),
                None => Some(Answer::Continue),
            },
        },
    }
}

/// The call as the realism model sees it.
fn shape(op: Op, view: &FdView, requested: usize, msg_flags: i32) -> realise::Call {
    realise::Call {
        op,
        kind: view.kind,
        stream: view.stream,
        requested,
        msg_flags,
    }
}

fn data(
    s: &mut Supervisor,
    tgid: i32,
    tid: i32,
    n: &libc::seccomp_notif,
    op: Op,
) -> Option<Answer> {
    let args = n.data.args;
    let fd = args[0] as i32;
    let flags = args::msg_flags(op, &args);
    let proc = s.procs.get_mut(&tgid)?;
    let view = proc.fds.get_mut(&fd)?;
    view.refresh_mask(&s.target.policy);
    if view.to_register {
        super::partition::note_connected(s.target.cuts().as_ref(), view);
    }
    if s.target.any_cut() {
        if let (Some(dir), Some(cuts)) = (op.dir(), s.target.cuts())
            && let Some(hold) = super::partition::data_call(&cuts, view, dir, flags)
        {
            return Some(s.answer_when_healed(n.id, hold));
        }
    } else if op.dir() == Some(chaos_engine::key::Dir::Tx) {
        view.held_since = None; // healed: what was held has gone out
    }
    if view.proxy.is_some()
        && let Some(answer) = super::proxied::data(s, tgid, tid, n, op)
    {
        return Some(answer);
    }
    let proc = s.procs.get_mut(&tgid)?;
    let view = proc.fds.get_mut(&fd)?;
    let class = op.class();
    let rules = s.target.rules_for(op) & view.mask;
    if rules == 0 && !s.target.keys_every_call() {
        return Some(Answer::Continue);
    }
    let requested = if op.is_multi_message() {
        args[2] as usize
    } else {
        let bufs = args::buffers(tgid, op, &args)?;
        bufs.iter().map(|b| b.1).sum()
    };
    let count = view.calls[class as usize];
    view.calls[class as usize] += 1;
    let site = match op.dir() {
        Some(dir) if view.offsets && !op.is_multi_message() => {
            let (pos, attempt) = view.stream_site(dir);
            Site::Stream { dir, pos, attempt }
        }
        _ => Site::Call { class, n: count },
    };
    let at = Position {
        process: proc.key,
        base: proc.base,
        conn: view.conn,
        site,
        n: count,
        requested,
    };
    if let Some(census) = &mut s.census {
        census.reached(&mut s.log, (tgid, tid), (op, &at), || {
            OnCall::new(op, fd, tid, Some(&*view), Some(requested as u64))
        });
    }
    let call = shape(op, view, requested, flags);
    if let Site::Stream { pos, .. } = site
        && grid::applies(op, view, flags)
    {
        // Toxics stay per call on a stream read, decided at its start as the shim does.
        let per_call = rules & !grid::grid_rules(&s.target, rules);
        let view: &FdView = view;
        if per_call != 0
            && let Some(d) = decide::decide_off_grid(
                &mut s.target,
                &mut proc.budget,
                (op, at, per_call),
                (view, tid),
                &call,
            )
        {
            let on = OnCall::new(op, fd, tid, Some(view), Some(requested as u64));
            if let Action::Toxic { toxics, mode } = d.action {
                return super::toxic::carry(s, tgid, n, op, on, &d, toxics, mode);
            }
            return carry::common(s, tgid, n, on, d, Applied::default());
        }
        return grid_read(s, tgid, tid, n, op, (at, call, pos), rules);
    }
    let view: &FdView = view;
    let decision = decide::decide_on_fd(
        &mut s.target,
        &mut proc.budget,
        (op, at, rules),
        (view, tid),
        &call,
    )?;
    let d = decision;
    let on = OnCall::new(op, fd, tid, Some(view), Some(requested as u64));
    let mut applied = Applied::default();
    let answer = match d.action {
        Action::Short { len, .. } => match short(tgid, s.listener.as_raw_fd(), n, op, view, len) {
            Some(k) => {
                applied.returned = Some(k as i64);
                Answer::Return(k as i64)
            }
            // Nothing could move without waiting: the call runs as it is, and no fault happened.
            None => return Some(Answer::Continue),
        },
        Action::Drop if op.dir() == Some(chaos_engine::key::Dir::Tx) => {
            applied.returned = Some(requested as i64);
            Answer::Return(requested as i64)
        }
        Action::Drop => {
            // A datagram lost on the way in: consume one, then the call reads the next.
            let mut buf = vec![0u8; 65536];
            // SAFETY: our buffer and our copy of the fd; MSG_DONTWAIT never blocks us.
            unsafe {
                libc::recv(
                    view.fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            Answer::Continue
        }
        Action::Duplicate => {
            if let Some(bytes) = args::gather(tgid, op, &args, requested) {
                // SAFETY: our buffer and our copy of the fd; the destination is the target's
                // own, read from its registers (a connected socket has none).
                unsafe {
                    libc::send(
                        view.fd(),
                        bytes.as_ptr() as *const libc::c_void,
                        bytes.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
            }
            Answer::Continue
        }
        Action::Toxic { toxics, mode } => {
            return super::toxic::carry(s, tgid, n, op, on, &d, toxics, mode);
        }
        _ => return carry::common(s, tgid, n, on, d, applied),
    };
    let proc = s.procs.get(&tgid)?;
    events::fault(&mut s.log, &s.target, proc, &on, &d, &applied);
    Some(answer)
}

/// A stream read, decided on the grid of offsets (`grid`): a cut or a hold is a short read we
/// make ourselves, logged only when the read did end at the offset (with less queued it ended
/// sooner by itself, and the offset is still ahead); a fault at the read's start is carried out
/// as on any call.
fn grid_read(
    s: &mut Supervisor,
    tgid: i32,
    tid: i32,
    n: &libc::seccomp_notif,
    op: Op,
    (at, call, pos): (Position, realise::Call, u64),
    rules: u32,
) -> Option<Answer> {
    let fd = n.data.args[0] as i32;
    let proc = s.procs.get_mut(&tgid)?;
    let view = proc.fds.get(&fd)?;
    // Toxics, the faults that stay per call on a stream read, were decided at its start
    // (`data`): the grid's rules are all there is to decide here.
    let rules = grid::grid_rules(&s.target, rules & s.target.enabled());
    let mut read = grid::Read {
        target: &s.target,
        budget: &mut proc.budget,
        view,
        tid,
        op,
        call,
    };
    let span = grid::Span {
        at,
        pos,
        done: view.rx_done,
    };
    let decided = read.decide(&span, rules);
    s.target.last_place = Some(at.key(0).place());
    let (d, role) = decided?;
    let on = OnCall::new(op, fd, tid, Some(view), Some(at.requested as u64));
    let mut applied = Applied::default();
    let len = match (role, d.action) {
        (grid::Role::At(c), _) => {
            if let Some(v) = proc.fds.get_mut(&fd) {
                v.rx_done = c + 1;
            }
            return carry::common(s, tgid, n, on, d, applied);
        }
        (_, Action::Short { len, .. }) => len,
        _ => return Some(Answer::Continue),
    };
    // Nothing could move without waiting: the call runs as it is, and no fault happened.
    let k = short(tgid, s.listener.as_raw_fd(), n, op, view, len)?;
    if k == len {
        match role {
            grid::Role::Hold => {
                applied.effect = Some("held");
                // The stall the next read gets is a delay here (see `common`): its hold says so.
                if matches!(d.source.fault(&s.target.policy), Fault::Stall(_)) {
                    applied.degraded = Some("edge-triggered-readiness");
                }
            }
            _ => grid::cut_made(&s.target, &mut proc.budget, &d),
        }
        applied.returned = Some(k as i64);
        events::fault(&mut s.log, &s.target, proc, &on, &d, &applied);
    }
    Some(Answer::Return(k as i64))
}

/// A short transfer of at most `len` bytes made on our copy without waiting; the count moved,
/// or None when nothing could move at once (or the call's memory could not be read).
fn short(
    pid: i32,
    listener: i32,
    n: &libc::seccomp_notif,
    op: Op,
    view: &FdView,
    len: usize,
) -> Option<usize> {
    let args = n.data.args;
    if matches!(op, Op::Recvmsg | Op::Sendmsg) {
        // Control messages cannot be carried across: only plain messages are shortened.
        let m: libc::msghdr = sys::read_target_value(pid, args[1])?;
        if m.msg_controllen != 0 {
            return None;
        }
    }
    let dontwait = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    let socket = view.kind.is_socket();
    let nonblocking = sys::getfl(view.fd()) & libc::O_NONBLOCK != 0;
    if !socket && !nonblocking {
        return None; // a pipe or file read cannot be made without possibly waiting
    }
    match op.dir()? {
        chaos_engine::key::Dir::Tx => {
            let bytes = args::gather(pid, op, &args, len)?;
            if !sys::notif_valid(listener, n.id) {
                return None;
            }
            let flags = if socket {
                dontwait | (args::msg_flags(op, &args) & libc::MSG_MORE)
            } else {
                0
            };
            // SAFETY: our buffer and our copy of the fd; non-blocking.
            let k = unsafe {
                if socket {
                    libc::send(
                        view.fd(),
                        bytes.as_ptr() as *const libc::c_void,
                        bytes.len(),
                        flags,
                    )
                } else {
                    libc::write(
                        view.fd(),
                        bytes.as_ptr() as *const libc::c_void,
                        bytes.len(),
                    )
                }
            };
            (k > 0).then_some(k as usize)
        }
        chaos_engine::key::Dir::Rx => {
            let bufs = args::buffers(pid, op, &args)?;
            let mut tmp = vec![0u8; len];
            if !sys::notif_valid(listener, n.id) {
                return None;
            }
            let peek = args::msg_flags(op, &args) & libc::MSG_PEEK;
            // SAFETY: our buffer and our copy of the fd; non-blocking.
            let k = unsafe {
                if socket {
                    libc::recv(
                        view.fd(),
                        tmp.as_mut_ptr() as *mut libc::c_void,
                        len,
                        dontwait | peek,
                    )
                } else {
                    libc::read(view.fd(), tmp.as_mut_ptr() as *mut libc::c_void, len)
                }
            };
            if k <= 0 {
                return None;
            }
            let k = k as usize;
            let mut done = 0;
            for (addr, blen) in bufs {
                let take = blen.min(k - done);
                if !sys::write_target(pid, addr, &tmp[done..done + take]) {
                    break;
                }
                done += take;
                if done == k {
                    break;
                }
            }
            args::fill_reply_fields(pid, op, &args);
            Some(done)
        }
    }
}

fn connect(s: &mut Supervisor, tgid: i32, tid: i32, n: &libc::seccomp_notif) -> Option<Answer> {
    let args = n.data.args;
    let fd = args[0] as i32;
    if s.target.any_cut()
        && let Some(cuts) = s.target.cuts()
        && let Some(dest) = args::target_sockaddr(tgid, args[1], args[2] as usize)
        && let chaos_engine::addr::Endpoint::Ip(sa) = dest.endpoint()
        && let Some(hold) = super::partition::connect(&cuts, sa.port())
    {
        return Some(s.answer_when_healed(n.id, hold));
    }
    let proxies = s.target.proxies().is_some();
    if s.target.rules_for(Op::Connect) == 0 && !s.target.keys_every_call() && !proxies {
        return Some(Answer::Continue);
    }
    let dest = args::target_sockaddr(tgid, args[1], args[2] as usize)?;
    if dest.storage.ss_family as i32 == libc::AF_UNSPEC {
        return Some(Answer::Continue); // a disconnect, not a connection
    }
    // A Toxiproxy proxy's `listen`: the connect goes to its upstream, after the rules had their
    // say (as under the shim, a rule's fault is the connect's).
    let redirect = |s: &mut Supervisor| {
        let a = proxies
            .then(|| super::proxied::connect(s, tgid, n, &dest))
            .flatten();
        Some(a.unwrap_or(Answer::Continue))
    };
    if s.target.rules_for(Op::Connect) == 0 && !s.target.keys_every_call() {
        return redirect(s);
    }
    let policy = &s.target.policy;
    let proc = s.procs.get_mut(&tgid)?;
    let view = proc.fds.get(&fd)?;
    let kind = view.kind;
    let attempt = proc.connects[kind as usize];
    proc.connects[kind as usize] += 1;
    let local = sys::sockname(view.fd(), false);
    let mask = policy.mask_for(&chaos_engine::policy::FdFacts {
        kind,
        // A proxy's connect is the upstream's, as under the shim: rules target where it goes.
        peer: super::proxied::upstream(&s.target, &dest).unwrap_or(dest.endpoint()),
        local: local.endpoint(),
        path: None,
    });
    let at = Position {
        process: proc.key,
        base: proc.base,
        conn: connects_key(kind),
        site: Site::Call {
            class: OpClass::Connect,
            n: attempt,
        },
        n: attempt,
        requested: 0,
    };
    if let Some(census) = &mut s.census {
        census.reached(&mut s.log, (tgid, tid), (Op::Connect, &at), || {
            OnCall::new(Op::Connect, fd, tid, Some(view), None)
        });
    }
    let call = shape(Op::Connect, view, 0, 0);
    let Some(d) = decide::decide_on_fd(
        &mut s.target,
        &mut proc.budget,
        (Op::Connect, at, mask),
        (view, tid),
        &call,
    ) else {
        return redirect(s);
    };
    let on = OnCall::new(Op::Connect, fd, tid, Some(view), None);
    carry::common(s, tgid, n, on, d, Applied::default())
}

fn accept(s: &mut Supervisor, tgid: i32, tid: i32, n: &libc::seccomp_notif) -> Option<Answer> {
    let fd = n.data.args[0] as i32;
    let op = if i64::from(n.data.nr) == libc::SYS_accept4 {
        Op::Accept4
    } else {
        Op::Accept
    };
    let proc = s.procs.get_mut(&tgid)?;
    let view = proc.fds.get_mut(&fd)?;
    let rules = s.target.rules_for(op) & view.mask;
    if rules == 0 && !s.target.keys_every_call() {
        return Some(Answer::Continue);
    }
    // Our copy shares the listener's file description: its flags, and its queue. Nothing
    // pending on a non-blocking listener: the kernel's own EAGAIN, uncounted (see
    // accept_is_counted), answered by us rather than by letting the call run, since a
    // connection arriving meanwhile would then be accepted uncounted. It stays queued, and
    // its arrival is an edge of its own for Go's netpoller.
    let nonblocking = sys::getfl(view.fd()) & libc::O_NONBLOCK != 0;
    let pending = nonblocking && sys::poll_one(view.fd(), libc::POLLIN) & libc::POLLIN != 0;
    if view.role == Role::Listen && !chaos_engine::key::accept_is_counted(nonblocking, pending) {
        return Some(Answer::Fail(libc::EAGAIN));
    }
    let count = view.calls[OpClass::Accept as usize];
    view.calls[OpClass::Accept as usize] += 1;
    let at = Position {
        process: proc.key,
        base: proc.base,
        conn: view.conn,
        site: Site::Call {
            class: OpClass::Accept,
            n: count,
        },
        n: count,
        requested: 0,
    };
    if let Some(census) = &mut s.census {
        census.reached(&mut s.log, (tgid, tid), (op, &at), || {
            OnCall::new(op, fd, tid, Some(&*view), None)
        });
    }
    let view: &FdView = view;
    let call = shape(op, view, 0, 0);
    let d = decide::decide_on_fd(
        &mut s.target,
        &mut proc.budget,
        (op, at, rules),
        (view, tid),
        &call,
    )?;
    let on = OnCall::new(op, fd, tid, Some(view), None);
    carry::common(s, tgid, n, on, d, Applied::default())
}

fn setsockopt(s: &mut Supervisor, tgid: i32, tid: i32, n: &libc::seccomp_notif) -> Option<Answer> {
    let fd = n.data.args[0] as i32;
    let proc = s.procs.get_mut(&tgid)?;
    let view = proc.fds.get_mut(&fd)?;
    view.refresh_mask(&s.target.policy);
    if view.to_register {
        super::partition::note_connected(s.target.cuts().as_ref(), view);
    }
    if s.target.quirks.has(Quirk::SetsockoptAfterShutdown)
        && matches!(view.kind, FdKind::Tcp | FdKind::Unix)
        && shut_state(view).full()
    {
        let on = OnCall::new(Op::Setsockopt, fd, tid, Some(view), None);
        let proc = s.procs.get(&tgid)?;
        events::quirk(
            &mut s.log,
            proc,
            &on,
            Quirk::SetsockoptAfterShutdown,
            libc::EINVAL,
        );
        return Some(Answer::Fail(libc::EINVAL));
    }
    let rules = s.target.rules_for(Op::Setsockopt) & view.mask;
    if rules == 0 && !s.target.keys_every_call() {
        return Some(Answer::Continue);
    }
    let count = view.calls[OpClass::Setsockopt as usize];
    view.calls[OpClass::Setsockopt as usize] += 1;
    let at = Position {
        process: proc.key,
        base: proc.base,
        conn: view.conn,
        site: Site::Call {
            class: OpClass::Setsockopt,
            n: count,
        },
        n: count,
        requested: 0,
    };
    if let Some(census) = &mut s.census {
        census.reached(&mut s.log, (tgid, tid), (Op::Setsockopt, &at), || {
            OnCall::new(Op::Setsockopt, fd, tid, Some(&*view), None)
        });
    }
    let view: &FdView = view;
    let call = shape(Op::Setsockopt, view, 0, 0);
    let d = decide::decide_on_fd(
        &mut s.target,
        &mut proc.budget,
        (Op::Setsockopt, at, rules),
        (view, tid),
        &call,
    )?;
    let on = OnCall::new(Op::Setsockopt, fd, tid, Some(view), None);
    carry::common(s, tgid, n, on, d, Applied::default())
}

/// An epoll wait: decided only when it has a timeout (not zero), EINTR only when it would sleep
/// (no event ready), keyed by its count
/// among the process's blocking waits, as the shim keys it.
fn wait(s: &mut Supervisor, tgid: i32, tid: i32, n: &libc::seccomp_notif) -> Option<Answer> {
    let args = n.data.args;
    let rules = s.target.rules_for(Op::EpollWait);
    if rules == 0 && !s.target.keys_every_call() {
        return Some(Answer::Continue);
    }
    let timed = if i64::from(n.data.nr) == libc::SYS_epoll_pwait2 {
        args[3] == 0
            || sys::read_target_value::<libc::timespec>(tgid, args[3])
                .is_none_or(|t| t.tv_sec != 0 || t.tv_nsec != 0)
    } else {
        args[3] as i32 != 0
    };
    if !timed {
        return Some(Answer::Continue);
    }
    let proc = s.procs.get_mut(&tgid)?;
    // It sleeps only when none of its events is ready (an epoll fd polls readable then).
    let blocks = sys::pidfd_getfd(&proc.pidfd, args[0] as i32)
        .is_ok_and(|epfd| sys::poll_one(epfd.as_raw_fd(), libc::POLLIN) == 0);
    let count = proc.waits;
    proc.waits += 1;
    let at = Position {
        process: proc.key,
        base: proc.base,
        conn: named_key(OpClass::Waits, Op::EpollWait.name().as_bytes()),
        site: Site::Call {
            class: OpClass::Waits,
            n: count,
        },
        n: count,
        requested: 0,
    };
    if let Some(census) = &mut s.census {
        census.reached(&mut s.log, (tgid, tid), (Op::EpollWait, &at), || {
            OnCall::new(Op::EpollWait, -1, tid, None, None)
        });
    }
    let d = decide::decide(
        &mut s.target,
        &mut proc.budget,
        Op::EpollWait,
        at,
        rules,
        |fault: &Fault, _ctx: RuleContext, param| {
            realise::realise_wait(
                fault,
                RuleContext::default(),
                blocks,
                |signals| super::facts::deliverable(tid, signals),
                param,
            )
        },
    )?;
    let on = OnCall::new(Op::EpollWait, -1, tid, None, None);
    carry::common(s, tgid, n, on, d, Applied::default())
}
