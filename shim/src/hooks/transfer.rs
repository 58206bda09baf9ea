//! The shared path of every data call (read/write/send/recv and their vector and message forms):
//! decide, apply the fault, make the real call, advance the stream position, log.

use super::{current_meta, gate};
use crate::act::{StallOutcome, apply_break, effect_of, log_fault, start_stall};
use crate::fdtable::{self, FORCE_SLOW, Meta, Slot};
use crate::grid_read;
use crate::guard::guarded;
use crate::log::{self, Applied};
use crate::plan::{self, Action, Break, Call, Choice};
use crate::quirks;
use crate::readiness;
use crate::runtime::{self, Runtime};
use crate::sys;
use chaos_engine::key::Dir;
use chaos_engine::op::Op;
use core::sync::atomic::Ordering::Relaxed;
use libc::c_int;

/// A delay standing in for a short transfer where faking one could hang an event loop.
const SHORT_FALLBACK_NS: u64 = 500_000;

/// What the slow path decided for one call.
pub(crate) enum Decision {
    /// No rule covers this fd for this op.
    Pass,
    /// The fd is in a stall in this call's direction: fail with EAGAIN, nothing else.
    Stalled,
    /// A partition cuts this call's direction of the connection (`hold`).
    Held(Dir),
    /// A toxic ended the connection for reads: return 0 (EOF).
    Eof,
    /// A toxic's armed reset came due: the RST is sent, the call fails with ECONNRESET.
    ResetDue,
    /// Covered, but no rule fired: make the call and keep the stream position.
    Track,
    Fault(Meta, Choice),
    /// A stream read meets a fault on the grid of offsets (`crate::grid_read`).
    Grid(Meta, Choice, grid_read::Role),
}

/// Runs a data call on `fd`. `direct()` is the unmodified real call (the fast path). On the slow
/// path, `describe()` builds the call's description (summing iovecs costs a loop, so it is not done
/// up front) and `real(limit)` makes the real call transferring at most `limit` bytes (or messages,
/// for the mmsg forms). Separate closures so the fast path materialises nothing.
#[inline(always)]
pub(crate) fn transfer(
    op: Op,
    fd: c_int,
    describe: impl FnOnce() -> Call,
    direct: impl FnOnce() -> isize,
    real: impl Fn(usize) -> isize,
) -> isize {
    match gate(op, fd) {
        None => direct(),
        Some((rt, slot)) => targeted(rt, slot, describe, real),
    }
}

/// A call on an fd some rule targets (or not classified yet). Kept out of line so that the hooks'
/// fast path stays two loads and a branch; `describe` is called in here, so each hook's copy knows
/// its op at compile time.
#[inline(never)]
fn targeted(
    rt: &'static Runtime,
    slot: &'static Slot,
    describe: impl FnOnce() -> Call,
    real: impl Fn(usize) -> isize,
) -> isize {
    let call = describe();
    let storage = fdtable::DISK | fdtable::DURABLE;
    if Meta(slot.meta.load(Relaxed)).0 & storage != 0 && call.dir() == Some(Dir::Tx) {
        return crate::hooks::disk_io::write(rt, slot, call, |rt, slot, call, lim| {
            counted_and_made(rt, slot, call, &|n| real(n.min(lim)))
        });
    }
    counted_and_made(rt, slot, call, &real)
}

/// The rest of `targeted`: count the call, decide if a rule may fire, make it.
#[inline(always)]
fn counted_and_made(
    rt: &'static Runtime,
    slot: &'static Slot,
    call: Call,
    real: &dyn Fn(usize) -> isize,
) -> isize {
    match counted(rt, slot, &call) {
        Counted::Only => {
            let r = real(call.requested);
            advance(slot, &call, r);
            r
        }
        Counted::MayFire(at) => transfer_slow(rt, slot, call, Some(at), real),
        Counted::NotYet => transfer_slow(rt, slot, call, None, real),
    }
}

/// What the common path found out about a call on a targeted fd.
enum Counted {
    /// Counted, and no rule can fire here: make the call.
    Only,
    /// Counted at this position, and some rule may fire: decide in full.
    MayFire(plan::Position),
    /// Not counted: quirks, injections, a stall or an unclassified fd need the full path.
    NotYet,
}

/// The common case on a targeted fd: no quirk, no injection, no stall, and no rule acting on this
/// op may fire at this position (counts, size, chance). Then only the connection's counters move,
/// exactly as the full decision moves them (every call on a targeted fd is counted, whichever
/// rules act on its op, so that keys are the same under a frozen policy). Pure arithmetic and
/// atomics: no guard, no system call, errno untouched.
#[inline(always)]
fn counted(rt: &Runtime, slot: &Slot, call: &Call) -> Counted {
    let meta = Meta(slot.meta.load(Relaxed));
    if rt.always_slow || !meta.valid() || meta.0 & FORCE_SLOW != 0 {
        return Counted::NotYet;
    }
    if meta.0 & (fdtable::PEERED | fdtable::PROXIED) != 0 && looks_at_page(meta, slot) {
        return Counted::NotYet;
    }
    let (site, n) = plan::site_for(rt, call, slot, meta);
    crate::plan::observe_control(rt, slot.conn.load(Relaxed), site);
    // A rule at probability 0 is counted above like any other, and never drawn for.
    let candidates = meta.mask() & rt.rules_for(call.op) & rt.drawable;
    if candidates == 0 {
        return Counted::Only;
    }
    let conn = slot.conn.load(Relaxed);
    let base = crate::runtime::KEY_BASE.load(Relaxed);
    let (words, requested) = (site.words(), call.requested);
    let any = |mask| {
        chaos_engine::select::any_may_fire(&rt.gates, base ^ conn, words, n, requested, mask)
    };
    let may_fire = if grid_read::applies(call, meta) {
        // Grid rules fire where the read's span meets one of their cells' faults; the others
        // (toxics) at the read's start, as on any call.
        any(candidates & !rt.grid_rules)
            || grid_read::meets_a_rule(rt, slot, conn, n, call, candidates & rt.grid_rules)
    } else {
        any(candidates)
    };
    if may_fire {
        Counted::MayFire(plan::position(conn, site, n, requested))
    } else {
        Counted::Only
    }
}

/// A connection the page may say something about now: a cut in force (partitions), or its
/// proxy's toxics or end (Toxiproxy). Out of line: most connections are neither.
#[inline(never)]
fn looks_at_page(meta: Meta, slot: &Slot) -> bool {
    (meta.0 & fdtable::PEERED != 0 && crate::page::any_cut())
        || (meta.0 & fdtable::PROXIED != 0 && crate::proxy::needs_look(slot))
}

#[inline(never)]
fn transfer_slow(
    rt: &'static Runtime,
    slot: &'static Slot,
    call: Call,
    counted_at: Option<plan::Position>,
    real: impl Fn(usize) -> isize,
) -> isize {
    if rt.quirks.is_empty() {
        return transfer_rules(rt, slot, call, counted_at, real);
    }
    // Platform quirks come first: the platform's kernel refuses before anything else happens.
    let meta = guarded(|| current_meta(rt, call.fd, slot));
    let Some(meta) = meta else {
        return transfer_rules(rt, slot, call, None, real);
    };
    if let Some(h) = guarded(|| quirks::before_data(rt, slot, meta, &call)).flatten() {
        return quirk_fail(call.op.name(), call.fd, call.msg_flags, h);
    }
    // unix-dgram-enobufs: the send must not block; a full receiver is reported, not waited for.
    let nonblock_for_call = quirks::unix_dgram_enobufs(rt, meta, &call)
        .then(|| sys::fcntl_getfl(call.fd))
        .filter(|flags| *flags >= 0 && flags & libc::O_NONBLOCK == 0);
    if let Some(flags) = nonblock_for_call {
        sys::fcntl_setfl(call.fd, flags | libc::O_NONBLOCK);
    }
    let r = transfer_rules(rt, slot, call, None, real);
    let e = sys::errno();
    if let Some(flags) = nonblock_for_call {
        sys::fcntl_setfl(call.fd, flags);
    }
    if let Some(h) = guarded(|| quirks::after_data(rt, slot, meta, &call, r, e)).flatten() {
        return quirk_fail(call.op.name(), call.fd, call.msg_flags, h);
    }
    sys::set_errno(e);
    r
}

/// Fails a call the way a platform quirk says, logging it (and raising SIGPIPE for EPIPE on a send
/// without MSG_NOSIGNAL, as BSD kernels do).
pub(crate) fn quirk_fail(op: &str, fd: c_int, msg_flags: c_int, h: quirks::Hit) -> isize {
    guarded(|| log::write_quirk(op, fd, h.quirk, Some(h.errno)));
    let nosignal_ignored = h.quirk == chaos_engine::quirk::Quirk::MsgNosignalIgnored;
    if h.errno == libc::EPIPE && (msg_flags & libc::MSG_NOSIGNAL == 0 || nosignal_ignored) {
        sys::raise_sigpipe();
    }
    sys::set_errno(h.errno);
    -1
}

/// The rule-driven part of a data call. `counted_at`: where `counted` already counted it.
fn transfer_rules(
    rt: &'static Runtime,
    slot: &'static Slot,
    call: Call,
    counted_at: Option<plan::Position>,
    real: impl Fn(usize) -> isize,
) -> isize {
    let decided = guarded(|| match counted_at {
        Some(at) => decide_at(rt, slot, &call, at),
        None => decide(rt, slot, &call),
    });
    let (meta, plan) = match decided.unwrap_or(Decision::Pass) {
        Decision::Pass => return real(call.requested),
        Decision::Stalled => {
            sys::set_errno(libc::EAGAIN);
            return -1;
        }
        Decision::Eof => return 0,
        Decision::ResetDue => {
            sys::set_errno(libc::ECONNRESET);
            return -1;
        }
        Decision::Held(dir) => match crate::hold::hold(call.fd, slot, dir, call.msg_flags) {
            crate::hold::Held::Eagain => {
                sys::set_errno(libc::EAGAIN);
                return -1;
            }
            crate::hold::Held::Proceed => {
                let r = real(call.requested);
                advance(slot, &call, r);
                return r;
            }
            crate::hold::Held::TimedOut => {
                // The retransmission timeout ends the connection: the peer learns with an RST
                // (what our gone socket answers it after the heal; its reads are held until then).
                apply_break(call.fd, Break::Rst);
                sys::set_errno(libc::ETIMEDOUT);
                return -1;
            }
        },
        Decision::Track => {
            let r = real(call.requested);
            advance(slot, &call, r); // atomics only: no guard needed, errno untouched
            return r;
        }
        Decision::Fault(meta, plan) => (meta, plan),
        Decision::Grid(meta, plan, grid_read::Role::At(c)) => {
            // A cell fires once: the retry at this offset (after an EINTR, an EAGAIN) is not
            // faulted again by it.
            slot.rx_done.store(c + 1, Relaxed);
            (meta, plan)
        }
        Decision::Grid(meta, plan, role) => {
            return held_read(rt, slot, meta, &call, &plan, role, &real);
        }
    };
    let mut applied = Applied::default();
    let limit = match plan.action {
        Action::Fail { errno, brk } => {
            guarded(|| {
                if brk != Break::None {
                    applied.addrs = Some(log::Addrs::read(call.fd));
                }
                apply_break(call.fd, brk);
                applied.effect = effect_of(brk);
                log_fault(rt, slot, meta, &call, &plan, -1, &applied);
            });
            if errno == libc::EPIPE && call.msg_flags & libc::MSG_NOSIGNAL == 0 {
                sys::raise_sigpipe();
            }
            sys::set_errno(errno);
            return -1;
        }
        Action::Stall { ns, mode } => {
            match start_stall(slot, &call, ns, mode, &mut applied) {
                StallOutcome::Eagain => {
                    guarded(|| log_fault(rt, slot, meta, &call, &plan, -1, &applied));
                    sys::set_errno(libc::EAGAIN);
                    return -1;
                }
                StallOutcome::Proceed => {}
            }
            call.requested
        }
        Action::Delay(ns) => {
            sys::sleep_ns(ns);
            applied.delay_ns = ns;
            // Logged before the call: its result may let the program (and its peer) finish and
            // exit before a line written afterwards, and a fault must never go unlogged.
            applied.before_call = true;
            guarded(|| log_fault(rt, slot, meta, &call, &plan, -1, &applied));
            call.requested
        }
        Action::Short { len, nonblocking } => {
            if nonblocking && !readiness::registrations_known(call.fd) {
                // An edge-triggered loop we cannot re-arm would take the short transfer as
                // "drained" and wait forever: delay instead.
                sys::sleep_ns(SHORT_FALLBACK_NS);
                applied.delay_ns = SHORT_FALLBACK_NS;
                applied.degraded = Some("unseen-registration");
                call.requested
            } else {
                len
            }
        }
        Action::Process(p) => {
            crate::process_fault::act(rt, p, &mut applied, |a| {
                guarded(|| log_fault(rt, slot, meta, &call, &plan, -1, a));
            });
            call.requested
        }
        // connect-only actions never come out of the model for a data call.
        Action::Drop if call.dir() == Some(chaos_engine::key::Dir::Tx) => {
            // Handed to the network and lost there: the send succeeded.
            applied.effect = Some("dropped");
            let sent = call.requested as isize;
            guarded(|| log_fault(rt, slot, meta, &call, &plan, sent, &applied));
            return sent;
        }
        Action::Drop => {
            // This datagram never arrived: consume it, then receive as if it had not been sent
            // (the next one, a wait, or EAGAIN).
            let first = real(call.requested);
            if first < 0 {
                return first; // nothing was queued: nothing to lose
            }
            applied.effect = Some("dropped");
            applied.before_call = true;
            guarded(|| log_fault(rt, slot, meta, &call, &plan, first, &applied));
            call.requested
        }
        Action::Duplicate => {
            let r = real(call.requested);
            if r >= 0 {
                let e = sys::errno();
                real(call.requested);
                sys::set_errno(e);
                applied.effect = Some("duplicated");
                guarded(|| log_fault(rt, slot, meta, &call, &plan, r, &applied));
            }
            return r;
        }
        Action::Reorder(after) => {
            if crate::reorder::hold(&call, after) {
                // Handed to the network, which will deliver it late: the send succeeded.
                applied.effect = Some("reordered");
                applied.held_for = after;
                let sent = call.requested as isize;
                guarded(|| log_fault(rt, slot, meta, &call, &plan, sent, &applied));
                return sent;
            }
            applied.degraded = Some("reorder-pool-full");
            call.requested
        }
        Action::Toxic { toxics, mode } => {
            return crate::toxic::apply(rt, slot, meta, &call, &plan, toxics, mode, real);
        }
        Action::ConnectEintr
        | Action::ConnectRefusedLater
        | Action::FailAfter { .. }
        | Action::Resolver(_) => call.requested,
    };
    let r = real(limit);
    let e = sys::errno();
    guarded(|| {
        advance(slot, &call, r);
        if matches!(plan.action, Action::Short { .. }) && applied.degraded.is_none() {
            // Data or buffer space is still there: make sure an edge-triggered waiter hears of it.
            readiness::rearm(call.fd);
        }
        if !applied.before_call {
            log_fault(rt, slot, meta, &call, &plan, r, &applied);
        }
    });
    sys::set_errno(e);
    r
}

/// The slow path's decision, shared with the non-data calls.
pub(crate) fn decide(rt: &Runtime, slot: &Slot, call: &Call) -> Decision {
    let meta = current_meta(rt, call.fd, slot);
    if let Some(dir) = stall_dir(call)
        && readiness::still_stalled(call.fd, slot, dir)
    {
        return Decision::Stalled;
    }
    match crate::toxic::ended(slot, call) {
        Some(crate::toxic::Ended::ResetDue) => return Decision::ResetDue,
        Some(crate::toxic::Ended::Eof) => return Decision::Eof,
        None => {}
    }
    if !meta.valid() {
        return Decision::Pass;
    }
    if meta.0 & fdtable::PEERED != 0
        && crate::page::any_cut()
        && let Some(dir) = stall_dir(call)
        && crate::hold::is_cut(slot, dir)
    {
        // Not counted (nothing reached the kernel), but a change of the page is seen here.
        let site = match call.dir() {
            Some(d) if meta.stream() => chaos_engine::key::Site::Stream {
                dir: d,
                pos: slot.pos[d as usize].load(Relaxed),
                attempt: slot.attempt[d as usize].load(Relaxed),
            },
            _ => chaos_engine::key::Site::Call {
                class: call.op.class(),
                n: slot.calls[call.op.class() as usize].load(Relaxed) as u64,
            },
        };
        crate::plan::observe_control(rt, slot.conn.load(Relaxed), site);
        return Decision::Held(dir);
    }
    if meta.mask() == 0 && !rt.injecting && meta.0 & fdtable::PROXIED == 0 {
        // Here only because quirks force the slow path: keep the stream positions, which
        // close-reset-econnreset compares with what the peer acknowledged.
        return Decision::Track;
    }
    // Every call on a targeted fd is counted, whichever rules act on its op, so that keys are the
    // same under a frozen policy.
    let (site, n) = plan::site_for(rt, call, slot, meta);
    crate::plan::observe_control(rt, slot.conn.load(Relaxed), site);
    let at = plan::position(slot.conn.load(Relaxed), site, n, call.requested);
    decide_at(rt, slot, call, at)
}

/// The decision for a call already counted at `at`.
fn decide_at(rt: &Runtime, slot: &Slot, call: &Call, at: plan::Position) -> Decision {
    let meta = Meta(slot.meta.load(Relaxed));
    if meta.0 & fdtable::PROXIED != 0 {
        match crate::proxy::decide(slot, meta, call, &at) {
            Some(crate::proxy::Verdict::Toxics(plan)) => return Decision::Fault(meta, plan),
            Some(crate::proxy::Verdict::Ended(Dir::Rx)) => return Decision::Eof,
            Some(crate::proxy::Verdict::Ended(Dir::Tx)) => return Decision::Pass,
            None => {}
        }
    }
    let candidates = meta.mask() & rt.rules_for(call.op);
    if grid_read::applies(call, meta) {
        return decide_grid(rt, slot, call, meta, at, candidates);
    }
    match plan::decide(rt, call, slot, meta, &at, candidates)
        .filter(|_| crate::classify::still_same_file(call.fd, slot) && runtime::in_own_process())
    {
        Some(plan) => Decision::Fault(meta, plan),
        None => Decision::Track,
    }
}

/// The decision for a stream read: a per-call fault (a toxic's, an exact injection of one) at
/// the read's start as on any call, else what the read's span meets on the grid.
fn decide_grid(
    rt: &Runtime,
    slot: &Slot,
    call: &Call,
    meta: Meta,
    at: plan::Position,
    candidates: u32,
) -> Decision {
    let per_call = candidates & !rt.grid_rules;
    // Faults that lie on the grid (an exact injection of one at the read's start) are the grid's.
    let chosen = plan::decide_off_grid(rt, call, slot, meta, &at, per_call);
    let decided = match chosen {
        Some(plan) => Some((plan, None)),
        None => grid_read::decide(rt, slot, call, meta, at, candidates & rt.grid_rules)
            .map(|(plan, role)| (plan, Some(role))),
    };
    match decided
        .filter(|_| crate::classify::still_same_file(call.fd, slot) && runtime::in_own_process())
    {
        Some((plan, None)) => Decision::Fault(meta, plan),
        Some((plan, Some(role))) => Decision::Grid(meta, plan, role),
        None => Decision::Track,
    }
}

/// A stream read held to end at a grid offset: a `short`'s cut, or the hold before a fault the
/// next read gets. Logged only when the read did end there (with less queued it ended sooner by
/// itself, and the offset is still ahead).
fn held_read(
    rt: &Runtime,
    slot: &Slot,
    meta: Meta,
    call: &Call,
    plan: &Choice,
    role: grid_read::Role,
    real: &impl Fn(usize) -> isize,
) -> isize {
    let Action::Short { len, nonblocking } = plan.action else {
        return real(call.requested);
    };
    let mut applied = Applied::default();
    if nonblocking && !readiness::registrations_known(call.fd) {
        // As for any short read: an edge-triggered loop we cannot re-arm would take it as
        // "drained" and wait forever. The offset is passed.
        sys::sleep_ns(SHORT_FALLBACK_NS);
        applied.delay_ns = SHORT_FALLBACK_NS;
        applied.degraded = Some("unseen-registration");
        applied.before_call = true;
        guarded(|| log_fault(rt, slot, meta, call, plan, -1, &applied));
        let r = real(call.requested);
        advance(slot, call, r);
        return r;
    }
    let r = real(len);
    let e = sys::errno();
    guarded(|| {
        advance(slot, call, r);
        if r == len as isize {
            readiness::rearm(call.fd);
            match role {
                grid_read::Role::Hold => applied.effect = Some("held"),
                _ => grid_read::cut_made(rt, plan),
            }
            log_fault(rt, slot, meta, call, plan, r, &applied);
        }
    });
    sys::set_errno(e);
    r
}

/// The direction a call waits on when its fd is stalled: reads and accept wait to read, writes to
/// write.
fn stall_dir(call: &Call) -> Option<Dir> {
    match call.op.class() {
        chaos_engine::op::OpClass::Accept => Some(Dir::Rx),
        _ => call.dir(),
    }
}

/// Moves the stream position past what the call transferred.
#[inline(always)]
fn advance(slot: &Slot, call: &Call, r: isize) {
    let Some(dir) = call.dir() else { return };
    if dir == Dir::Tx && r >= 0 && crate::reorder::HELD_NOW.load(Relaxed) != 0 {
        // A datagram held for reordering goes out after its turn of sends.
        crate::reorder::sent_one(call.fd);
    }
    if r > 0 && call.msg_flags & libc::MSG_PEEK == 0 && !call.op.is_multi_message() {
        slot.pos[dir as usize].fetch_add(r as u64, Relaxed);
        slot.attempt[dir as usize].store(0, Relaxed);
    }
}
