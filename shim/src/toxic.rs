//! Carrying out a rule's toxics on one data call (the engine's `toxic` module decides each step
//! from the connection's state kept here, in its fd-table slot):
//! - `reset_after`: a real RST once the connection is that old;
//! - `blackhole`: the call is held as a partition holds it (EAGAIN with readiness hidden, or a
//!   wait), for as long as the rule stays on, then — if timed — the connection ends;
//! - `limit_data`: the call that reaches the limit is cut to it, and the connection ends (a FIN
//!   both ways, or a real RST);
//! - `latency`: a read's chunk becomes readable that long after it arrived (first seen queued),
//!   a write that starts a burst is sent that much later;
//! - `bandwidth`: transfers paced to the rate over the connection's life, by short transfers and
//!   not-ready time;
//! - `slow_close` (reads): the peer's FIN arrives that much later: the end of the stream is not
//!   readable until then (what came before it is not delayed);
//! - `slicer`: a call moves at most one slice (a short transfer), and the next slice moves
//!   `delay` after it (not-ready time); a blocking write, which does not come back short, is held
//!   for the delays its slices take.
//!
//! Every effect is logged as the plain fault it amounts to at that key (`stall`, `short`, `delay`,
//! `reset`, `close`), with `effect` naming the toxic, so `freeze` turns a run with toxics into
//! exact injections like any other.

use crate::act::{StallOutcome, apply_break, log_fault_as, start_stall};
use crate::fdtable::{Meta, Slot};
use crate::log::Applied;
use crate::plan::{Call, Choice, Source};
use crate::runtime::Runtime;
use crate::sys;
use chaos_engine::key::Dir;
use chaos_engine::realise::{Break, Mode};
use chaos_engine::toxic::{self, Limit, Pace, Toxics};
use core::sync::atomic::Ordering::Relaxed;

/// A latency chunk that is readable now (rather than a time it becomes readable).
const CHUNK_OPEN: u64 = u64::MAX;

/// How a call under toxics ends.
enum Step {
    /// Fail with this errno.
    Fail(i32),
    /// Make the real call with at most this many bytes; then end the connection this way, if any.
    Call(usize, Option<Break>),
    /// The toxic ended the connection with a FIN both ways at this read: it sees the end.
    Eof,
}

fn now() -> u64 {
    sys::now_ns(libc::CLOCK_MONOTONIC)
}

/// How a toxic has ended a connection for a call.
pub(crate) enum Ended {
    /// Its armed reset came due: the RST is sent now, the call fails with ECONNRESET.
    ResetDue,
    /// Its data limit was reached: reads see the end of the stream.
    Eof,
}

/// For every call on a connection a toxic ended or armed a reset for (they carry FORCE_SLOW):
/// reads after the data limit see EOF; a reset that came due is sent now.
pub(crate) fn ended(slot: &Slot, call: &Call) -> Option<Ended> {
    let reset_at = slot.reset_at.load(Relaxed);
    if reset_at != 0 && now() >= reset_at && slot.reset_at.swap(0, Relaxed) != 0 {
        reset_now(call.fd, slot, ResetBy::Call(call));
        return Some(Ended::ResetDue);
    }
    if call.dir() == Some(Dir::Rx) && slot.reads_ended.load(Relaxed) != 0 {
        return Some(Ended::Eof);
    }
    None
}

/// A new connection (connected or accepted) that a `reset_after` rule covers gets its reset armed
/// now, so that it comes on time even if the program waits (in poll, epoll or a blocking read)
/// without making a call first. The rule's draw is its per-connection one.
pub fn arm_at_connect(rt: &Runtime, fd: libc::c_int, slot: &Slot, mask: u32, born: u64) {
    let base = crate::runtime::KEY_BASE.load(Relaxed);
    let conn = slot.conn.load(Relaxed);
    let mut bits = mask & crate::page::enabled();
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let rule = &rt.policy.rules[i];
        let chaos_engine::fault::Fault::Toxic(x) = rule.fault else {
            continue;
        };
        let Some(after) = x.reset_after_ns else {
            continue;
        };
        let chance = chaos_engine::chance::chance_of_words(
            base ^ conn,
            i as u16,
            chaos_engine::chance::PER_CONNECTION_WORDS,
        );
        if chaos_engine::policy::Rule::fires(rt.gates[i].threshold, chance) {
            // A process that cannot log withholds the reset here, where it is decided.
            if crate::log::writable() {
                slot.reset_by.store(armed_by(Source::Rule(i)), Relaxed);
                crate::readiness::arm_reset(fd, slot, born + after);
            }
            return;
        }
    }
}

/// `Slot::reset_by` for a reset armed by `source`: rule + 1, or the injection's (proxy toxic's)
/// index with `RESET_BY_INJECTION` (`RESET_BY_PROXY`) set (0 stays "nothing armed").
const RESET_BY_INJECTION: u32 = 1 << 31;
const RESET_BY_PROXY: u32 = 1 << 30;

fn armed_by(source: Source) -> u32 {
    match source {
        Source::Rule(i) => i as u32 + 1,
        Source::Injection(i) => RESET_BY_INJECTION | i as u32,
        Source::Proxy(i) => RESET_BY_PROXY | i as u32,
    }
}

fn armer(word: u32) -> Option<Source> {
    match word {
        0 => None,
        w if w & RESET_BY_INJECTION != 0 => {
            Some(Source::Injection((w & !RESET_BY_INJECTION) as usize))
        }
        w if w & RESET_BY_PROXY != 0 => Some(Source::Proxy((w & !RESET_BY_PROXY) as usize)),
        w => Some(Source::Rule(w as usize - 1)),
    }
}

/// Who found an armed reset due: a data call (which then fails with ECONNRESET), or a wait
/// (`poll`, `epoll_wait`, `select`) that the RST wakes.
pub enum ResetBy<'a> {
    Call(&'a Call),
    Wait(&'static str),
}

/// Sends the RST a `reset_after` armed (from a call, or a waiter that found it due), and logs it:
/// the RST is the toxic's effect, whoever happened to be the first to see it due.
pub fn reset_now(fd: libc::c_int, slot: &Slot, by: ResetBy) {
    let addrs = crate::log::Addrs::read(fd);
    apply_break(fd, Break::Rst);
    let (Some(source), Some(rt)) = (armer(slot.reset_by.swap(0, Relaxed)), crate::runtime::get())
    else {
        return;
    };
    match by {
        // A data call's decision is already shim logic (guarded).
        ResetBy::Call(call) => crate::log::write_reset_due(
            rt,
            call.op.name(),
            fd,
            slot,
            source,
            Some(call.requested),
            &addrs,
        ),
        ResetBy::Wait(name) => {
            crate::guard::guarded(|| {
                crate::log::write_reset_due(rt, name, fd, slot, source, None, &addrs)
            });
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn apply(
    rt: &Runtime,
    slot: &Slot,
    meta: Meta,
    call: &Call,
    plan: &Choice,
    toxics: Toxics,
    mode: Mode,
    real: impl Fn(usize) -> isize,
) -> isize {
    let Some(dir) = call.dir() else {
        return real(call.requested);
    };
    let d = dir as usize;
    let log = |fault: &str, r: isize, a: &Applied| {
        crate::guard::guarded(|| log_fault_as(rt, slot, meta, call, plan, fault, r, a));
    };
    let mut applied = Applied::default();
    let step = match steps(rt, slot, call, plan, toxics, mode, dir, &mut applied) {
        Ok(step) => step,
        Err(eagain_logged) => {
            if eagain_logged {
                log("stall", -1, &applied);
            }
            sys::set_errno(libc::EAGAIN);
            return -1;
        }
    };
    match step {
        Step::Eof => {
            applied.limit = slot.pos[d].load(Relaxed);
            log("close", 0, &applied);
            0
        }
        Step::Fail(errno) => {
            log("reset", -1, &applied);
            sys::set_errno(errno);
            -1
        }
        Step::Call(len, end) => {
            let r = real(len);
            let e = sys::errno();
            if r > 0 && call.msg_flags & libc::MSG_PEEK == 0 {
                slot.pos[d].fetch_add(r as u64, Relaxed);
                slot.attempt[d].store(0, Relaxed);
            }
            if toxics.bandwidth.is_some() {
                spend(slot, dir, r);
            }
            if let Some(s) = toxics.slicer
                && r > 0
                && call.msg_flags & libc::MSG_PEEK == 0
            {
                slot.tox_slice[d].store(toxic::next_slice(&s, now()), Relaxed);
            }
            if toxics.latency_ns.is_some() {
                let slept =
                    crate::guard::guarded(|| after_latency_call(slot, call, dir, r, &toxics, plan))
                        .unwrap_or(0);
                if slept > 0 {
                    applied.delay_ns += slept;
                    applied.effect = Some("latency");
                }
            }
            if let Some(delay) = toxics.slow_close_ns
                && r == 0
                && dir == Dir::Rx
                && mode != Mode::Nonblocking
                && call.requested > 0
                && slot.tox_eof_at.load(Relaxed) == 0
            {
                // A blocking read that waited for the FIN in the kernel: it arrives `delay` late.
                slot.tox_eof_at.store(now(), Relaxed);
                sys::sleep_ns(delay);
                applied.delay_ns = delay;
                applied.effect = Some("slow-close");
            }
            // The connection ends only once the stream really stands at the limit: a read
            // that found less queued than the limit leaves (or a short write) is not the end.
            let reached = r > 0
                && call.msg_flags & libc::MSG_PEEK == 0
                && toxics
                    .limit_data
                    .is_some_and(|l| slot.pos[d].load(Relaxed) >= l);
            if let Some(brk) = end.filter(|_| reached) {
                applied.addrs = Some(crate::log::Addrs::read(call.fd));
                apply_break(call.fd, brk);
                if brk == Break::ShutBoth && dir == Dir::Rx {
                    // What was queued past the limit never arrived: reads see EOF from here.
                    slot.reads_ended.store(1, Relaxed);
                    slot.meta.fetch_or(crate::fdtable::FORCE_SLOW, Relaxed);
                }
                applied.effect = Some(if brk == Break::Rst {
                    "limit-data-reset"
                } else {
                    "limit-data-close"
                });
                applied.limit = toxics.limit_data.unwrap_or(0);
                log("close", r, &applied);
            } else if len < call.requested && r == len as isize {
                // Cut by the toxic (not merely less queued than asked).
                applied.effect = applied.effect.or(Some("bandwidth"));
                log("short", r, &applied);
            } else if applied.effect == Some("blackhole-ended") {
                // A timed blackhole ended with a FIN both ways at this call.
                applied.limit = slot.pos[d].load(Relaxed);
                log("close", r, &applied);
            } else if applied.delay_ns > 0 {
                log("delay", r, &applied);
            }
            sys::set_errno(e);
            r
        }
    }
}

/// The toxics in order. Err(true): EAGAIN now, log it; Err(false): EAGAIN now, already logged
/// (or not worth a line: a blackhole's renewed hold).
#[allow(clippy::too_many_arguments)]
fn steps(
    rt: &Runtime,
    slot: &Slot,
    call: &Call,
    plan: &Choice,
    x: Toxics,
    mode: Mode,
    dir: Dir,
    applied: &mut Applied,
) -> Result<Step, bool> {
    let d = dir as usize;
    let requested = call.requested;
    if let Some(after) = x.reset_after_ns {
        let born = slot.born_ns.load(Relaxed);
        let at = born + after;
        if born != 0 {
            let t = now();
            if t >= at {
                slot.reset_at.store(0, Relaxed);
                slot.reset_by.store(0, Relaxed);
                applied.addrs = Some(crate::log::Addrs::read(call.fd));
                apply_break(call.fd, Break::Rst);
                applied.effect = Some("reset-after");
                return Ok(Step::Fail(libc::ECONNRESET));
            }
            if slot.reset_at.load(Relaxed) == 0 {
                // Waiters are told when it comes, as an RST wakes them.
                slot.reset_by.store(armed_by(plan.source), Relaxed);
                crate::readiness::arm_reset(call.fd, slot, at);
            }
            if dir == Dir::Rx
                && mode != Mode::Nonblocking
                && sys::ioctl_int(call.fd, libc::FIONREAD) <= 0
            {
                // A blocking read that would wait past the reset: it waits here, and the reset
                // ends the wait as it would in the kernel.
                let timeout = match mode {
                    Mode::Timeout(ns) => ns,
                    _ => u64::MAX,
                };
                let wait = (at - t).min(timeout);
                let ready = sys::poll_one(call.fd, libc::POLLIN, wait);
                if ready == 0 && now() >= at {
                    slot.reset_at.store(0, Relaxed);
                    slot.reset_by.store(0, Relaxed);
                    applied.addrs = Some(crate::log::Addrs::read(call.fd));
                    apply_break(call.fd, Break::Rst);
                    applied.effect = Some("reset-after");
                    applied.delay_ns = now() - t;
                    return Ok(Step::Fail(libc::ECONNRESET));
                }
            }
        }
    }
    if x.blackhole {
        let rule = match plan.source {
            Source::Rule(i) => Some(i),
            Source::Injection(_) | Source::Proxy(_) => None,
        };
        // A rule's lasts while the rule is on; a proxy's timeout while the proxy has it.
        let still = || match plan.source {
            Source::Rule(i) => crate::plan::rule_on(rt, i),
            Source::Injection(_) => true,
            Source::Proxy(_) => crate::proxy::blackhole_on(slot, dir),
        };
        if let Some(end) = blackhole(slot, call, dir, rule, &still, &x, mode, applied)? {
            return Ok(end);
        }
    }
    let mut len = requested;
    let mut end = None;
    if let Some(limit) = x.limit_data {
        let brk = ending(&x);
        match toxic::limit(limit, slot.pos[d].load(Relaxed), requested) {
            Limit::Under => {}
            Limit::Reaches(n) => {
                len = n;
                end = Some(brk);
            }
            Limit::Ended => return Ok(Step::Call(requested, None)),
        }
    }
    if let Some(delay) = x.slow_close_ns
        && dir == Dir::Rx
    {
        wait_for_fin(slot, call, delay, mode, applied)?;
    }
    if x.latency_ns.is_some() {
        let lat = chunk_latency_at(slot, plan, dir, &x);
        wait_latency(slot, call, dir, lat, mode, applied)?;
    }
    if let Some(rate) = x.bandwidth {
        len = len.min(pace(slot, call, dir, rate, len, mode, applied)?);
    }
    if let Some(s) = x.slicer {
        let n = slice(slot, call, plan, dir, &s, len, mode, applied)?;
        if n < len {
            applied.effect = Some("slicer");
            len = n;
        }
    }
    Ok(Step::Call(len, end))
}

/// How a toxic ends a connection: a real RST (`then = "reset"`) or a FIN both ways.
fn ending(x: &Toxics) -> Break {
    if x.limit_resets {
        Break::Rst
    } else {
        Break::ShutBoth
    }
}

/// This chunk's latency (latency ± jitter), drawn from the connection and the offset it starts at.
fn chunk_latency_at(slot: &Slot, plan: &Choice, dir: Dir, x: &Toxics) -> u64 {
    let param =
        chaos_engine::chance::param_at(plan.key.conn ^ slot.pos[dir as usize].load(Relaxed));
    toxic::chunk_latency(x.latency_ns.unwrap_or(0), x.jitter_ns, param)
}

/// A blackhole: Ok(None) once it is over (the rule went off), Ok(Some(end)) when a timed one
/// ends the connection, Err(_) for EAGAIN now.
#[allow(clippy::too_many_arguments)]
fn blackhole(
    slot: &Slot,
    call: &Call,
    dir: Dir,
    rule: Option<usize>,
    still: &dyn Fn() -> bool,
    x: &Toxics,
    mode: Mode,
    applied: &mut Applied,
) -> Result<Option<Step>, bool> {
    let d = dir as usize;
    let t = now();
    let first = slot.black_since[d]
        .compare_exchange(0, t, Relaxed, Relaxed)
        .is_ok();
    let since = slot.black_since[d].load(Relaxed);
    let deadline = x.reset_after_blackhole_ns.map(|r| since + r);
    let end = |applied: &mut Applied| {
        let brk = ending(x);
        applied.effect = Some("blackhole-ended");
        applied.addrs = Some(crate::log::Addrs::read(call.fd));
        apply_break(call.fd, brk);
        slot.black_since[d].store(0, Relaxed);
        match brk {
            Break::Rst => Some(Step::Fail(libc::ECONNRESET)),
            _ if dir == Dir::Rx => {
                // What the blackhole swallowed never arrives: reads see EOF from here, as after
                // the data limit (a shut socket still hands out what was queued).
                slot.reads_ended.store(1, Relaxed);
                slot.meta.fetch_or(crate::fdtable::FORCE_SLOW, Relaxed);
                Some(Step::Eof)
            }
            // Our writes fail as on a shut socket (EPIPE): the kernel says so.
            _ => Some(Step::Call(call.requested, None)),
        }
    };
    if deadline.is_some_and(|dl| t >= dl) {
        return Ok(end(applied));
    }
    applied.effect = Some("blackhole");
    match mode {
        Mode::Nonblocking if crate::readiness::registrations_known(call.fd) => {
            let until = deadline.map_or(t + crate::hold::SLICE_NS, |dl| {
                dl.min(t + crate::hold::SLICE_NS)
            });
            if crate::readiness::begin_stall(call.fd, slot, dir, until) {
                slot.held.fetch_or(1 << d, Relaxed);
                slot.hold_rule[d].store(rule.map_or(0, |i| i as u32 + 1), Relaxed);
                applied.stall_ns = until - t;
                return Err(first);
            }
            // No room to hide readiness: wait as a blocking call would.
            applied.degraded = Some("stall-table-full");
        }
        Mode::Nonblocking => applied.degraded = Some("unseen-registration"),
        _ => {}
    }
    let timeout = match mode {
        Mode::Timeout(ns) => Some(ns),
        _ => None,
    };
    let limit = match (timeout, deadline) {
        (Some(to), Some(dl)) => Some(to.min(dl.saturating_sub(t))),
        (to, dl) => to.or(dl.map(|dl| dl.saturating_sub(t))),
    };
    let waited = crate::hold::wait_out(still, limit);
    applied.delay_ns = now() - t;
    match waited {
        crate::hold::Held::Proceed => {
            slot.black_since[d].store(0, Relaxed);
            Ok(None)
        }
        crate::hold::Held::Eagain if deadline.is_some_and(|dl| now() >= dl) => Ok(end(applied)),
        crate::hold::Held::Eagain | crate::hold::Held::TimedOut => Err(true),
    }
}

/// Latency: Ok(()) when the call may go on (after any wait), Err(log) for EAGAIN now.
fn wait_latency(
    slot: &Slot,
    call: &Call,
    dir: Dir,
    lat: u64,
    mode: Mode,
    applied: &mut Applied,
) -> Result<(), bool> {
    let d = dir as usize;
    let t = now();
    let ready_at = match dir {
        Dir::Rx => match slot.tox_ready[d].load(Relaxed) {
            CHUNK_OPEN => return Ok(()),
            0 if sys::ioctl_int(call.fd, libc::FIONREAD) <= 0 => {
                // Nothing has arrived: a blocking read waits for it and is delayed after
                // (`after_latency_call`); a non-blocking one finds nothing anyway.
                return Ok(());
            }
            0 => {
                let at = t + lat;
                slot.tox_ready[d].store(at, Relaxed);
                at
            }
            at => at,
        },
        Dir::Tx => {
            let last = slot.tox_last[d].load(Relaxed);
            if !toxic::write_starts_chunk(lat, last, t) {
                slot.tox_last[d].store(t, Relaxed);
                return Ok(());
            }
            let at = t + lat;
            slot.tox_last[d].store(at, Relaxed);
            at
        }
    };
    if t >= ready_at {
        open_chunk(slot, dir, t);
        return Ok(());
    }
    applied.effect = Some("latency");
    match not_ready(slot, call, ready_at - t, mode, applied) {
        StallOutcome::Eagain => Err(true),
        StallOutcome::Proceed => {
            open_chunk(slot, dir, now());
            Ok(())
        }
    }
}

/// `slow_close`: when nothing is queued but the peer's FIN, that FIN is readable only `delay`
/// after it was first seen; Ok(()) when the call may go on, Err for EAGAIN now.
fn wait_for_fin(
    slot: &Slot,
    call: &Call,
    delay: u64,
    mode: Mode,
    applied: &mut Applied,
) -> Result<(), bool> {
    let t = now();
    let mut at = slot.tox_eof_at.load(Relaxed);
    if at == 0 {
        if sys::ioctl_int(call.fd, libc::FIONREAD) > 0 {
            return Ok(()); // data first: it is not delayed
        }
        if sys::poll_one(call.fd, libc::POLLRDHUP, 0) & libc::POLLRDHUP == 0 {
            // No FIN yet: a blocking read waits for it in the kernel and is delayed after.
            return Ok(());
        }
        at = t + delay;
        slot.tox_eof_at.store(at, Relaxed);
    }
    if t >= at {
        return Ok(());
    }
    applied.effect = Some("slow-close");
    match not_ready(slot, call, at - t, mode, applied) {
        StallOutcome::Eagain => Err(true),
        StallOutcome::Proceed => Ok(()),
    }
}

fn open_chunk(slot: &Slot, dir: Dir, t: u64) {
    match dir {
        Dir::Rx => slot.tox_ready[Dir::Rx as usize].store(CHUNK_OPEN, Relaxed),
        Dir::Tx => slot.tox_last[Dir::Tx as usize].store(t, Relaxed),
    }
}

/// After a read under latency: a blocking read that waited for its chunk delivers it `latency`
/// after it came; a read that drained what was queued closes the chunk (the next data is a new
/// one).
/// How long it held the read back (0: not at all), for the line.
fn after_latency_call(
    slot: &Slot,
    call: &Call,
    dir: Dir,
    r: isize,
    x: &Toxics,
    plan: &Choice,
) -> u64 {
    if dir != Dir::Rx || r <= 0 {
        return 0;
    }
    let d = dir as usize;
    let mut slept = 0;
    if slot.tox_ready[d].load(Relaxed) == 0 {
        // It blocked until the data came: the data "arrives" now and is readable `lat` later.
        slept = chunk_latency_at(slot, plan, dir, x);
        sys::sleep_ns(slept);
    }
    let queued = sys::ioctl_int(call.fd, libc::FIONREAD);
    slot.tox_ready[d].store(if queued > 0 { CHUNK_OPEN } else { 0 }, Relaxed);
    slept
}

/// The bucket's tokens now (refilled since its last update), kept in `tox_pos0` with the update
/// time in `tox_t0`; a fresh connection starts with a full burst.
fn tokens_now(slot: &Slot, d: usize, rate: u64) -> u64 {
    let t = now();
    let last = slot.tox_t0[d].swap(t, Relaxed);
    let tokens = if last == 0 {
        toxic::burst(rate)
    } else {
        toxic::refill(rate, slot.tox_pos0[d].load(Relaxed), t.saturating_sub(last))
    };
    slot.tox_pos0[d].store(tokens, Relaxed);
    tokens
}

/// Spends `moved` bytes of the bucket (after the call, by what it really moved).
pub fn spend(slot: &Slot, dir: Dir, moved: isize) {
    if moved > 0 {
        let d = dir as usize;
        let left = slot.tox_pos0[d].load(Relaxed).saturating_sub(moved as u64);
        slot.tox_pos0[d].store(left, Relaxed);
    }
}

/// Bandwidth: how many bytes the call may move now (after any wait), or Err for EAGAIN now.
fn pace(
    slot: &Slot,
    call: &Call,
    dir: Dir,
    rate: u64,
    len: usize,
    mode: Mode,
    applied: &mut Applied,
) -> Result<usize, bool> {
    let d = dir as usize;
    let tokens = tokens_now(slot, d, rate);
    if dir == Dir::Tx && mode != Mode::Nonblocking {
        // A blocking write does not come back short: it waits until the whole of it is within
        // the rate (the send buffer drains at the link's pace).
        let wait = toxic::wait_for_whole(rate, tokens, len);
        if wait > 0 {
            applied.effect = Some("bandwidth");
            if let StallOutcome::Eagain = not_ready(slot, call, wait, mode, applied) {
                return Err(true);
            }
            // What the wait earned is spent by this write.
            slot.tox_t0[d].store(now(), Relaxed);
            slot.tox_pos0[d].store(len as u64, Relaxed);
        }
        return Ok(len);
    }
    match toxic::pace(rate, tokens, len) {
        Pace::Go(n) => Ok(n),
        Pace::Wait(ns) => {
            applied.effect = Some("bandwidth");
            match not_ready(slot, call, ns, mode, applied) {
                StallOutcome::Eagain => Err(true),
                StallOutcome::Proceed => match toxic::pace(rate, tokens_now(slot, d, rate), len) {
                    Pace::Go(n) => Ok(n),
                    Pace::Wait(_) => Ok(1),
                },
            }
        }
    }
}

/// Slicer: how many bytes the call may move now (after any wait), or Err for EAGAIN now.
#[allow(clippy::too_many_arguments)]
fn slice(
    slot: &Slot,
    call: &Call,
    plan: &Choice,
    dir: Dir,
    s: &toxic::Slicer,
    len: usize,
    mode: Mode,
    applied: &mut Applied,
) -> Result<usize, bool> {
    let d = dir as usize;
    let next = slot.tox_slice[d].load(Relaxed);
    if dir == Dir::Tx && mode != Mode::Nonblocking {
        let wait = toxic::whole_write_wait(s, next, now(), len);
        if wait > 0 {
            applied.effect = Some("slicer");
            if let StallOutcome::Eagain = not_ready(slot, call, wait, mode, applied) {
                return Err(true);
            }
        }
        return Ok(len);
    }
    // The slice's size belongs to the stream offset it starts at, as a chunk's latency does.
    let draw = chaos_engine::chance::param_at(plan.key.conn ^ slot.pos[d].load(Relaxed));
    match toxic::slice(s, next, now(), len, draw) {
        Pace::Go(n) => Ok(n),
        Pace::Wait(ns) => {
            applied.effect = Some("slicer");
            match not_ready(slot, call, ns, mode, applied) {
                StallOutcome::Eagain => Err(true),
                StallOutcome::Proceed => Ok(len.min(toxic::slice_size(s, draw))),
            }
        }
    }
}

/// Not ready for `ns`: the stall machinery's EAGAIN with readiness hidden, or a wait.
fn not_ready(slot: &Slot, call: &Call, ns: u64, mode: Mode, applied: &mut Applied) -> StallOutcome {
    start_stall(slot, call, ns, mode, applied)
}
