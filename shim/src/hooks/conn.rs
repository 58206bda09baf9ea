//! connect, accept, setsockopt, shutdown: calls that are counted per connection, not by offset.

use super::transfer::{Decision, decide, quirk_fail};
use super::{current_meta, gate, new_fd, reclassify};
use crate::act::{StallOutcome, effect_of, log_fault, start_stall};
use crate::failed_close;
use crate::fdtable::{self, Meta, Role};
use crate::guard::guarded;
use crate::log::Applied;
use crate::plan::{self, Action, Call, Choice, Mode};
use crate::quirks;
use crate::readiness;
use crate::real;
use crate::runtime::{self, Runtime};
use crate::sockaddr::SockAddrBuf;
use crate::sys;
use chaos_engine::key::Dir;
use chaos_engine::op::Op;
use chaos_engine::policy::FdFacts;
use core::sync::atomic::Ordering::Relaxed;
use libc::{c_int, c_void, sockaddr, socklen_t};

/// Runs a call keyed by its count on the connection: fail, delay or (accept) stall around `real`.
pub(crate) fn run_simple(rt: &'static Runtime, call: Call, real: impl FnOnce() -> c_int) -> c_int {
    let Some((_, slot)) = gate(call.op, call.fd) else {
        return real();
    };
    let (meta, plan) = match guarded(|| decide(rt, slot, &call)).unwrap_or(Decision::Pass) {
        Decision::Pass
        | Decision::Track
        | Decision::Held(_)
        | Decision::Eof
        | Decision::ResetDue
        // Stream reads only: never a call without data.
        | Decision::Grid(..) => return real(),
        Decision::Stalled => {
            sys::set_errno(libc::EAGAIN);
            return -1;
        }
        Decision::Fault(meta, plan) => (meta, plan),
    };
    let mut applied = Applied::default();
    match plan.action {
        Action::Fail { errno, brk } => {
            applied.effect = effect_of(brk);
            guarded(|| log_fault(rt, slot, meta, &call, &plan, -1, &applied));
            if matches!(call.op, Op::Fsync | Op::Fdatasync) {
                // The other descriptions open on the file learn of it too, as from the kernel.
                guarded(|| crate::writeback::failed(call.fd, errno));
            }
            if call.op == Op::Close {
                // close really closes even when it reports an error: retrying it is the bug.
                real();
            }
            // A failed accept leaves the queued connection queued, as when the kernel fails early.
            sys::set_errno(errno);
            -1
        }
        Action::Stall { ns, mode } => match start_stall(slot, &call, ns, mode, &mut applied) {
            StallOutcome::Eagain => {
                guarded(|| log_fault(rt, slot, meta, &call, &plan, -1, &applied));
                sys::set_errno(libc::EAGAIN);
                -1
            }
            StallOutcome::Proceed => finish(rt, slot, meta, &call, &plan, &applied, real),
        },
        Action::Delay(ns) => {
            sys::sleep_ns(ns);
            applied.delay_ns = ns;
            finish(rt, slot, meta, &call, &plan, &applied, real)
        }
        Action::Process(p) => {
            crate::process_fault::act(rt, p, &mut applied, |a| {
                guarded(|| log_fault(rt, slot, meta, &call, &plan, -1, a));
            });
            real()
        }
        Action::Short { .. }
        | Action::ConnectEintr
        | Action::ConnectRefusedLater
        | Action::FailAfter { .. }
        | Action::Resolver(_)
        | Action::Drop
        | Action::Duplicate
        | Action::Reorder(_)
        | Action::Toxic { .. } => real(),
    }
}

/// Makes the real call after a delay and logs it with its result.
fn finish(
    rt: &Runtime,
    slot: &fdtable::Slot,
    meta: Meta,
    call: &Call,
    plan: &Choice,
    applied: &Applied,
    real: impl FnOnce() -> c_int,
) -> c_int {
    let r = real();
    let e = sys::errno();
    guarded(|| log_fault(rt, slot, meta, call, plan, r as isize, applied));
    sys::set_errno(e);
    r
}

/// A platform quirk's check before a call, as shim logic (guarded), on the fd's slot and
/// classification. None without quirks, so the common case costs one branch.
fn quirk_check(
    rt: &Runtime,
    fd: c_int,
    check: impl FnOnce(&'static fdtable::Slot, Meta) -> Option<quirks::Hit>,
) -> Option<quirks::Hit> {
    if rt.quirks.is_empty() {
        return None;
    }
    guarded(|| {
        let slot = fdtable::slot(fd)?;
        check(slot, current_meta(rt, fd, slot))
    })
    .flatten()
}

pub(crate) fn simple_call(op: Op, fd: c_int) -> Call {
    Call {
        op,
        fd,
        requested: 0,
        msg_flags: 0,
        dest: core::ptr::null(),
        dest_len: 0,
        payload: crate::plan::Payload::None,
    }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    let Some(rt) = runtime::get() else {
        // SAFETY: the program's own arguments, passed on unchanged: the real call's contract is the
        // one the program called us with.
        return unsafe { real::setsockopt(fd, level, name, val, len) };
    };
    let opt = quirks::SockOpt {
        level,
        name,
        val,
        len,
    };
    if let Some(h) = quirk_check(rt, fd, |slot, meta| {
        quirks::setsockopt(rt, fd, slot, meta, opt)
    }) {
        return quirk_fail(Op::Setsockopt.name(), fd, 0, h) as c_int;
    }
    // SAFETY: the program's own arguments, passed on unchanged: the real call's contract is the one
    // the program called us with.
    let r = run_simple(rt, simple_call(Op::Setsockopt, fd), || unsafe {
        real::setsockopt(fd, level, name, val, len)
    });
    if r == 0
        && let Some(slot) = fdtable::slot(fd)
    {
        quirks::after_setsockopt(slot, opt);
    }
    r
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    let Some(rt) = runtime::get() else {
        // SAFETY: integer arguments, the program's own, passed on unchanged.
        return unsafe { real::shutdown(fd, how) };
    };
    if let Some(h) = quirk_check(rt, fd, |slot, meta| {
        quirks::shutdown(rt, fd, slot, meta, how)
    }) {
        // Nothing is shut: the platform returns before touching the socket.
        return quirk_fail(Op::Shutdown.name(), fd, 0, h) as c_int;
    }
    let slot = fdtable::slot(fd);
    // SAFETY: integer arguments, the program's own, passed on unchanged.
    let r = run_simple(rt, simple_call(Op::Shutdown, fd), || unsafe {
        real::shutdown(fd, how)
    });
    if r == 0
        && let Some(slot) = slot
    {
        quirks::after_shutdown(slot, how);
    }
    r
}

/// Shared by close and the fd-lifecycle hooks.
pub(crate) fn close_with_rules(fd: c_int) -> c_int {
    let Some(rt) = runtime::get() else {
        // SAFETY: close takes an integer; the close hook has already kept the program off the
        // shim's own fds.
        return unsafe { real::close(fd) };
    };
    let own = runtime::in_own_process();
    // The platform's close error is decided on the socket's state before it is gone.
    let quirk = own
        .then(|| quirk_check(rt, fd, |slot, meta| quirks::close(rt, fd, slot, meta)))
        .flatten();
    let retry_of_failed = own && failed_close::take(fd);
    if own && crate::reorder::HELD_NOW.load(Relaxed) != 0 {
        // Datagrams this socket still holds go out before it closes.
        crate::reorder::flush(fd);
    }
    // ext4 flushes a file truncated to zero when it is closed (auto_da_alloc): the journal
    // needs the close of a file under `[durability]` to know it.
    if own
        && crate::durable::active()
        && fdtable::slot(fd).is_some_and(|slot| {
            let meta = Meta(slot.meta.load(Relaxed));
            meta.valid() && meta.0 & fdtable::DURABLE != 0
        })
    {
        guarded(|| crate::durable::closing(fd));
    }
    let r = run_simple(rt, simple_call(Op::Close, fd), || {
        // Forget the fd *before* closing it: once it is closed, another thread's accept or socket
        // may get the same number at once, and forgetting afterwards would wipe that new entry.
        if own {
            fdtable::invalidate(fd);
            readiness::forget_fd(fd);
        }
        // SAFETY: close takes an integer; the close hook has already kept the program off the
        // shim's own fds.
        unsafe { real::close(fd) }
    });
    let e = sys::errno();
    if retry_of_failed && r == -1 && e == libc::EBADF {
        guarded(|| crate::log::write_warning("close", fd, failed_close::RETRIED));
    }
    if let (0, Some(h)) = (r, quirk) {
        failed_close::mark(fd);
        return quirk_fail("close", fd, 0, h) as c_int;
    }
    if own && r == -1 && e != libc::EBADF {
        failed_close::mark(fd);
    }
    sys::set_errno(e);
    r
}

fn accept_common(
    op: Op,
    fd: c_int,
    addr_len: *mut socklen_t,
    real: impl FnOnce() -> c_int,
) -> c_int {
    let Some(rt) = runtime::get() else {
        return real();
    };
    if op == Op::Accept4
        && let Some(h) = quirks::accept4(rt)
    {
        return quirk_fail(op.name(), fd, 0, h) as c_int;
    }
    if let Some(h) = quirk_check(rt, fd, |slot, meta| {
        quirks::accept_pending_error(rt, fd, slot, meta)
    }) {
        return quirk_fail(op.name(), fd, 0, h) as c_int;
    }
    if gate(op, fd).is_some() && !accept_counts(fd) {
        // The kernel's own answer now, uncounted (see accept_is_counted). Not the real call:
        // a connection arriving after the look would be accepted uncounted, and every later
        // accept's key would depend on that race. It stays queued for the next accept, and
        // its arrival is an edge of its own for an edge-triggered epoll.
        sys::set_errno(libc::EAGAIN);
        return -1;
    }
    let r = run_simple(rt, simple_call(op, fd), real);
    if r >= 0 {
        let e = sys::errno();
        new_fd(r, Some(Role::In));
        match quirks::aborted_accept(rt, r) {
            Some(quirks::Aborted::Fail(h)) => {
                // BSD closes the dead connection and reports it.
                // SAFETY: `r` is the connection the real accept just returned, not yet handed to
                // the program: ours to close.
                unsafe { real::close(r) };
                fdtable::invalidate(r);
                readiness::forget_fd(r);
                return quirk_fail(op.name(), fd, 0, h) as c_int;
            }
            Some(quirks::Aborted::EmptyAddress) => {
                if !addr_len.is_null() {
                    // SAFETY: `addr_len` is the program's non-null socklen_t, which the real accept
                    // has just written too.
                    unsafe { *addr_len = 0 };
                }
                let q = chaos_engine::quirk::Quirk::AcceptAbortedEmptyAddress;
                guarded(|| crate::log::write_quirk(op.name(), r, q, None));
            }
            None => {}
        }
        if let Some(q) = quirks::after_accept(rt, fd, r, op == Op::Accept) {
            guarded(|| crate::log::write_quirk(op.name(), r, q, None));
        }
        sys::set_errno(e);
    }
    r
}

/// Whether this accept on `fd` is counted and may be faulted: not when the socket is a
/// non-blocking listener with nothing pending (a listener polls readable exactly when a
/// connection is queued; a zero-timeout poll looks without consuming anything, edge-triggered
/// epoll included). A socket that is not listening is left to the kernel (EINVAL).
fn accept_counts(fd: c_int) -> bool {
    let e = sys::errno();
    let nonblocking = sys::fcntl_getfl(fd) & libc::O_NONBLOCK != 0;
    let listening = || sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN) == Some(1);
    let counted = !nonblocking
        || !listening()
        || chaos_engine::key::accept_is_counted(
            nonblocking,
            sys::poll_one(fd, libc::POLLIN, 0) & libc::POLLIN != 0,
        );
    sys::set_errno(e);
    counted
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    if let Some(rt) = runtime::get()
        && let Some(h) = quirks::check_address(rt, addr, len)
    {
        return quirk_fail("bind", fd, 0, h) as c_int;
    }
    // SAFETY: the program's own arguments, passed on unchanged: the real call's contract is the one
    // the program called us with.
    unsafe { real::bind(fd, addr, len) }
}

/// listen() itself is never faulted; a process partitions can cut records the port in the run's
/// directory, so that its peers know who they are connected to.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    // SAFETY: integer arguments, the program's own, passed on unchanged.
    let r = unsafe { real::listen(fd, backlog) };
    if r == 0 && crate::page::partitionable() {
        let e = sys::errno();
        guarded(|| register_local_port(fd));
        sys::set_errno(e);
    }
    r
}

/// Records the port `fd` is bound to as this process's, in the run's directory. TCP only: the
/// directory is of TCP ports (a UDP port of the same number is another port).
fn register_local_port(fd: c_int) {
    if sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE) != Some(libc::SOCK_STREAM) {
        return;
    }
    if let chaos_engine::addr::Endpoint::Ip(sa) = SockAddrBuf::read(fd, false).endpoint() {
        crate::page::register_port(sa.port());
    }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    if let Some(rt) = runtime::get()
        && !rt.quirks.is_empty()
        && let Some(slot) = fdtable::slot(fd)
    {
        let hit = guarded(|| {
            let meta = current_meta(rt, fd, slot);
            quirks::getpeername(rt, fd, slot, meta)
        });
        if let Some(h) = hit.flatten() {
            return quirk_fail("getpeername", fd, 0, h) as c_int;
        }
    }
    // SAFETY: the program's own arguments, passed on unchanged: the real call's contract is the one
    // the program called us with.
    let r = unsafe { real::getpeername(fd, addr, len) };
    // Through a Toxiproxy proxy the peer is the proxy's `listen`, where the program connected.
    // SAFETY: the program's own buffer and length, filled as the kernel just did.
    if r == 0 && runtime::get().is_some() && unsafe { crate::proxy::peer(fd, addr, len) } {
        return 0;
    }
    r
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: the program's own arguments, passed on unchanged: the real call's contract is the one
    // the program called us with.
    accept_common(Op::Accept, fd, len, || unsafe {
        real::accept(fd, addr, len)
    })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: the program's own arguments, passed on unchanged: the real call's contract is the one
    // the program called us with.
    accept_common(Op::Accept4, fd, len, || unsafe {
        real::accept4(fd, addr, len, flags)
    })
}

/// What a connect() decision needs: the socket's kind and the rules whose target covers the address
/// being connected to. Every connect of the kind is counted, whichever address it goes to, so that
/// keys are the same under a frozen policy.
fn decide_connect(
    rt: &Runtime,
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> Option<Choice> {
    // Connects are counted while the rules on them are switched off too: switching one on must
    // not shift the keys of later connects.
    if rt.rule_masks[Op::Connect as usize] == 0 && !rt.injecting {
        return None;
    }
    let candidates_for_op = rt.rules_for(Op::Connect);
    let slot = fdtable::slot(fd)?;
    // An unclassified socket is only looked at here, not classified: it is classified (and takes
    // its connection ordinal) after the connect succeeds, whether or not anything looked at the
    // connect, so a frozen policy (which looks at every connect) numbers connections as the run it
    // was frozen from did. Connect keys use the kind only (`connect_site`).
    let meta = match Meta(slot.meta.load(Relaxed)) {
        m if m.valid() => m,
        _ => crate::classify::peek_outgoing(fd)?,
    };
    if !meta.valid() {
        return None;
    }
    // SAFETY: the program passed `len` bytes at `addr` to connect().
    if crate::page::is_control_endpoint(&unsafe {
        crate::sockaddr::endpoint_of(addr, len as usize)
    }) {
        return None;
    }
    let call = simple_call(Op::Connect, fd);
    let at = plan::connect_site(meta.kind());
    crate::plan::observe_control(rt, at.conn, at.site);
    // Which rules cover this address is worth asking only when some rule acts on connects.
    let candidates = match candidates_for_op {
        0 => 0,
        ops => {
            let local = SockAddrBuf::read(fd, false);
            let facts = FdFacts {
                kind: meta.kind(),
                // SAFETY: the program passed `len` bytes at `addr` to connect().
                peer: unsafe { crate::sockaddr::endpoint_of(addr, len as usize) },
                local: local.endpoint(),
                path: None,
            };
            rt.policy.mask_for(&facts) & ops
        }
    };
    plan::decide(rt, &call, slot, meta, &at, candidates).filter(|_| runtime::in_own_process())
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let Some(rt) = runtime::get() else {
        // SAFETY: the program's own arguments, passed on unchanged: the real call's contract is the
        // one the program called us with.
        return unsafe { real::connect(fd, addr, len) };
    };
    // SAFETY: sockaddr_storage is plain data; all zeroes is a valid (AF_UNSPEC) value.
    let mut upstream: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
    // SAFETY: the program passed `len` readable bytes at `addr` to connect().
    let redirected = guarded(|| unsafe { crate::proxy::redirect(fd, addr, len, &mut upstream) });
    if let Some((proxy, up_len)) = redirected.flatten() {
        // SAFETY: as above; marked before the connect, so that its classification sees it.
        unsafe { crate::proxy::mark(fd, proxy, addr, len) };
        let r = connect_to(rt, fd, &upstream as *const _ as *const sockaddr, up_len);
        let e = sys::errno();
        // EINTR and EINPROGRESS leave the connection going on in the background.
        if r != 0
            && !matches!(
                e,
                libc::EINPROGRESS | libc::EINTR | libc::EALREADY | libc::EISCONN
            )
        {
            crate::proxy::unmark(fd);
        }
        sys::set_errno(e);
        return r;
    }
    connect_to(rt, fd, addr, len)
}

/// connect() to `addr`, as the program's or as a proxy redirected it.
fn connect_to(rt: &'static Runtime, fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    if rt.quirks.is_empty() {
        return connect_with_rules(rt, fd, addr, len);
    }
    if let Some(h) = quirks::check_address(rt, addr, len) {
        return quirk_fail(Op::Connect.name(), fd, 0, h) as c_int;
    }
    if let Some(h) = guarded(|| quirks::connect_retry(rt, fd)).flatten() {
        return quirk_fail(Op::Connect.name(), fd, 0, h) as c_int;
    }
    // Syscalls only, and a cancellation point: outside the guard.
    let (r, hit) = match quirks::unix_connect(rt, fd, addr, len) {
        Some((r, hit)) => (r, hit),
        None => (connect_with_rules(rt, fd, addr, len), None),
    };
    if let Some(h) = hit {
        return quirk_fail(Op::Connect.name(), fd, 0, h) as c_int;
    }
    let e = sys::errno();
    guarded(|| quirks::after_connect(fd, r, e));
    if r == -1
        && e == libc::EINPROGRESS
        && let Some(h) = quirks::connect_refused_now(rt, fd, addr, len)
    {
        return quirk_fail(Op::Connect.name(), fd, 0, h) as c_int;
    }
    sys::set_errno(e);
    r
}

/// connect() with the policy's rules applied.
fn connect_with_rules(
    rt: &'static Runtime,
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> c_int {
    if crate::page::any_cut()
        && let chaos_engine::addr::Endpoint::Ip(sa) =
            // SAFETY: the program passed `len` bytes at `addr` to connect().
            unsafe { crate::sockaddr::endpoint_of(addr, len as usize) }
        && crate::hold::connect_cut(sa.port())
    {
        return connect_across_cut(fd, addr, len, sa.port());
    }
    let Some(plan) = guarded(|| decide_connect(rt, fd, addr, len)).flatten() else {
        // SAFETY: the program's own arguments, passed on unchanged: the real call's contract is the
        // one the program called us with.
        let r = unsafe { real::connect(fd, addr, len) };
        after_connect(fd, r, sys::errno());
        return r;
    };
    let call = simple_call(Op::Connect, fd);
    let slot = fdtable::slot(fd).expect("decided fds have slots");
    // As decide_connect saw it: classified, or looked at only.
    let meta = match Meta(slot.meta.load(Relaxed)) {
        m if m.valid() => m,
        _ => guarded(|| crate::classify::peek_outgoing(fd))
            .flatten()
            .unwrap_or(Meta(0)),
    };
    let mut applied = Applied::default();
    let log = |r: c_int, applied: &Applied| {
        guarded(|| log_fault(rt, slot, meta, &call, &plan, r as isize, applied));
    };
    match plan.action {
        Action::Fail { errno, .. } => {
            log(-1, &applied);
            sys::set_errno(errno);
            -1
        }
        Action::ConnectEintr => {
            // Start the connection in the background exactly as an interrupted blocking connect
            // leaves it; a retry then gets what Linux gives (waits and returns 0, or the error).
            let flags = sys::fcntl_getfl(fd);
            sys::fcntl_setfl(fd, flags | libc::O_NONBLOCK);
            // SAFETY: the program's own arguments, passed on unchanged: the real call's contract is
            // the one the program called us with.
            let r = unsafe { real::connect(fd, addr, len) };
            let e = sys::errno();
            sys::fcntl_setfl(fd, flags);
            after_connect(fd, r, e);
            if r == -1 && e == libc::EINPROGRESS {
                log(-1, &applied);
                sys::set_errno(libc::EINTR);
                return -1;
            }
            // It finished (or failed) at once: a blocking connect would have returned that.
            sys::set_errno(e);
            r
        }
        Action::Stall {
            ns,
            mode: Mode::Nonblocking,
        } => {
            // The handshake's completion is what stalls: hide writability until it is over.
            // SAFETY: the program's own arguments, passed on unchanged: the real call's contract is
            // the one the program called us with.
            let r = unsafe { real::connect(fd, addr, len) };
            let e = sys::errno();
            after_connect(fd, r, e);
            if r == -1 && e == libc::EINPROGRESS {
                // No EAGAIN is faked here, only EPOLLOUT masked in the registrations we see
                // (usually added right after this returns), so an unseen one cannot hang: no
                // registration check.
                applied.stall_ns = ns;
                let until = sys::now_ns(libc::CLOCK_MONOTONIC) + ns;
                if !readiness::begin_stall(fd, slot, Dir::Tx, until) {
                    applied.degraded = Some("stall-table-full");
                }
                log(r, &applied);
            }
            sys::set_errno(e);
            r
        }
        Action::Stall { ns, .. } | Action::Delay(ns) => {
            sys::sleep_ns(ns);
            applied.delay_ns = ns;
            // SAFETY: the program's own arguments, passed on unchanged: the real call's contract is
            // the one the program called us with.
            let r = unsafe { real::connect(fd, addr, len) };
            let e = sys::errno();
            log(r, &applied);
            after_connect(fd, r, e);
            sys::set_errno(e);
            r
        }
        Action::FailAfter { errno, ns } => {
            // The kernel retries its SYN for this long before giving up; the socket is left
            // unconnected, as after a real timeout.
            sys::sleep_ns(ns);
            applied.after_ns = ns;
            log(-1, &applied);
            sys::set_errno(errno);
            -1
        }
        Action::ConnectRefusedLater => {
            // Really connect towards a local port nobody listens on: the kernel answers
            // EINPROGRESS, and its RST makes POLLOUT|POLLERR and SO_ERROR = ECONNREFUSED.
            let r = match refusing_address(fd) {
                // SAFETY: `refuser` is a sockaddr of `refuser.len` bytes on our stack; `fd` is the
                // program's socket, as in the call being interposed.
                Some(refuser) => unsafe {
                    real::connect(
                        fd,
                        &refuser.storage as *const _ as *const sockaddr,
                        refuser.len as socklen_t,
                    )
                },
                // SAFETY: the program's own arguments, passed through unchanged.
                None => unsafe { real::connect(fd, addr, len) },
            };
            let e = sys::errno();
            after_connect(fd, r, e);
            applied.effect = Some("refused-by-kernel");
            log(r, &applied);
            sys::set_errno(e);
            r
        }
        Action::Process(p) => {
            crate::process_fault::act(rt, p, &mut applied, |a| log(-1, a));
            // SAFETY: the program's own arguments, passed on unchanged: the real call's contract is
            // the one the program called us with.
            let r = unsafe { real::connect(fd, addr, len) };
            after_connect(fd, r, sys::errno());
            r
        }
        // Never decided for a connect (parse keeps resolver faults on resolve rules).
        Action::Short { .. }
        | Action::Resolver(_)
        | Action::Drop
        | Action::Duplicate
        | Action::Reorder(_)
        | Action::Toxic { .. } => {
            // SAFETY: the program's own arguments, passed on unchanged: the real call's contract is
            // the one the program called us with.
            let r = unsafe { real::connect(fd, addr, len) };
            after_connect(fd, r, sys::errno());
            r
        }
    }
}

/// A loopback address of `fd`'s family with no socket bound to it: a port taken from the kernel
/// (bind to port 0) and given back at once. Whoever connects there gets an RST.
fn refusing_address(fd: c_int) -> Option<SockAddrBuf> {
    let family = sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)?;
    let mut addr = SockAddrBuf {
        // SAFETY: sockaddr_storage is plain data; all zeroes is a valid (AF_UNSPEC) value.
        storage: unsafe { core::mem::zeroed() },
        len: 0,
    };
    match family {
        libc::AF_INET => {
            // SAFETY: sockaddr_storage is large and aligned enough for every sockaddr type.
            let sin = unsafe { &mut *(&mut addr.storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
            addr.len = core::mem::size_of::<libc::sockaddr_in>();
        }
        libc::AF_INET6 => {
            // SAFETY: sockaddr_storage is large and aligned enough for every sockaddr type.
            let sin6 = unsafe { &mut *(&mut addr.storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr[15] = 1;
            addr.len = core::mem::size_of::<libc::sockaddr_in6>();
        }
        _ => return None,
    }
    let probe = sys::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
    if probe < 0 {
        return None;
    }
    let bound = sys::bind(probe, &addr.storage, addr.len) && {
        // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
        let mut got: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
        match sys::sockname(probe, false, &mut got) {
            Some(n) => {
                addr.storage = got;
                addr.len = n;
                true
            }
            None => false,
        }
    };
    sys::close(probe);
    bound.then_some(addr)
}

/// A connect to a process a partition cuts us from: the handshake cannot complete until the heal.
/// A blocking connect waits for it (until SO_SNDTIMEO, then EINPROGRESS with the connection
/// going on in the background, as Linux does; or until the kernel's SYN retries are spent, then
/// ETIMEDOUT). A non-blocking one is started and reported in progress, its writability hidden
/// while the cut lasts.
fn connect_across_cut(fd: c_int, addr: *const sockaddr, len: socklen_t, port: u16) -> c_int {
    let nonblocking = sys::fcntl_getfl(fd) & libc::O_NONBLOCK != 0;
    if !nonblocking {
        let timeout = sys::timeout_ns(fd, libc::SO_SNDTIMEO);
        let limit = timeout.unwrap_or(crate::hold::SYN_TIMEOUT_NS);
        if let crate::hold::Held::Proceed =
            crate::hold::wait_out(|| crate::hold::connect_cut(port), Some(limit))
        {
            // SAFETY: the program's own arguments, passed on unchanged: the real call's contract is
            // the one the program called us with.
            let r = unsafe { real::connect(fd, addr, len) };
            after_connect(fd, r, sys::errno());
            return r;
        }
        if timeout.is_none() {
            sys::set_errno(libc::ETIMEDOUT);
            return -1;
        }
    }
    // Started in the background; "in progress" until the heal.
    let flags = sys::fcntl_getfl(fd);
    if !nonblocking {
        sys::fcntl_setfl(fd, flags | libc::O_NONBLOCK);
    }
    // SAFETY: the program's own arguments, passed on unchanged: the real call's contract is the one
    // the program called us with.
    let r = unsafe { real::connect(fd, addr, len) };
    let e = sys::errno();
    if !nonblocking {
        sys::fcntl_setfl(fd, flags);
    }
    after_connect(fd, r, e);
    if r == -1 && e != libc::EINPROGRESS {
        sys::set_errno(e);
        return -1;
    }
    guarded(|| {
        if let Some(slot) = fdtable::slot(fd) {
            slot.peer_port.store(u32::from(port), Relaxed);
            let until = sys::now_ns(libc::CLOCK_MONOTONIC) + crate::hold::SLICE_NS;
            if crate::readiness::begin_stall(fd, slot, chaos_engine::key::Dir::Tx, until) {
                slot.held
                    .fetch_or(1 << chaos_engine::key::Dir::Tx as u32, Relaxed);
            }
        }
    });
    sys::set_errno(libc::EINPROGRESS);
    -1
}

/// A connect that succeeded or is under way makes the fd a new outbound connection, unless it
/// already is one: a retry after EINTR, or the completion of a non-blocking connect, continues the
/// same connection and must keep its key.
fn after_connect(fd: c_int, r: c_int, e: c_int) {
    if r != 0 && e != libc::EINPROGRESS {
        return;
    }
    quirks::note_connected(fd);
    if crate::page::partitionable() {
        guarded(|| register_local_port(fd));
    }
    let same = fdtable::slot(fd).is_some_and(|slot| {
        let meta = Meta(slot.meta.load(Relaxed));
        meta.valid() && meta.role() == Role::Out
    });
    if !same {
        let saved = sys::errno();
        reclassify(fd, Some(Role::Out));
        sys::set_errno(saved);
    }
    sys::set_errno(e);
}
