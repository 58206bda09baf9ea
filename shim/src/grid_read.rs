//! Stream reads meet their faults on the engine's grid of offsets (`chaos_engine::grid`), so a
//! fault belongs to a byte of the stream, not to whichever read happened to start near it.
//!
//! The read's span `[pos, pos + requested)` is walked cell by cell; the first fault owed in it
//! (an exact injection first, then the rules in order) decides: a cut or a hold ends the read at
//! the fault's offset, a fault at the read's start is chosen as on any call (`plan::decide`), keyed by its offset.

use crate::facts::LiveFacts;
use crate::fdtable::{Meta, Slot};
use crate::plan::{self, Action, Call, Choice, Position, Source};
use crate::runtime::{KEY_BASE, PROCESS_KEY, Runtime};
use chaos_engine::chance::{chance_of_words, param_at};
use chaos_engine::grid::{self, Placement, Step};
use chaos_engine::key::{Dir, INJECTED, Key, Site};
use chaos_engine::kind::FdKind;
use chaos_engine::realise::{self, NotHere};
use chaos_engine::refusal::Reason;
use core::sync::atomic::Ordering::Relaxed;

/// What a grid fault does to the read that meets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A `short`: the read ends at the fault's offset.
    Cut,
    /// The read is held to end at the offset of a fault that the next read gets.
    Hold,
    /// The read gets the fault at this offset (it starts there, or no cut could hold it).
    At(u64),
}

/// Whether this call is a byte stream's read, whose faults lie on the grid. A peek moves nothing
/// and a regular file is read where the program seeks, so neither needs the grid.
#[inline(always)]
pub fn applies(call: &Call, meta: Meta) -> bool {
    call.dir() == Some(Dir::Rx)
        && meta.stream()
        && !call.op.is_multi_message()
        && call.msg_flags & libc::MSG_PEEK == 0
        && matches!(meta.kind(), FdKind::Tcp | FdKind::Unix | FdKind::Pipe)
}

/// The first grid fault among `rules`, at `from` or after, that a read of `call.requested` bytes
/// meets from the connection's current read offset: (rule, offset). The hot path's check
/// (`from` 0): hashes only, the PCG draw of a fault's offset only for a cell that fires.
#[inline]
pub fn first_rule(
    rt: &Runtime,
    slot: &Slot,
    conn: u64,
    n: u64,
    call: &Call,
    (rules, from): (u32, u64),
) -> Option<(usize, u64)> {
    let pos = slot.pos[Dir::Rx as usize].load(Relaxed);
    let done = slot.rx_done.load(Relaxed);
    let base_conn = KEY_BASE.load(Relaxed) ^ conn;
    let mut best: Option<(usize, u64)> = None;
    let mut bits = rules;
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let (Some(gate), Some(rule)) = (rt.gates.get(i), rt.policy.rules.get(i)) else {
            continue;
        };
        let Some(placement) = Placement::of(&rule.fault) else {
            continue;
        };
        // Only a fault before the best one so far could win.
        let len = best.map_or(call.requested as u64, |(_, c)| c - pos);
        let found = grid::first_owed(placement, pos, len, done, |start| {
            let words = grid::cell_site(Dir::Rx, start).words();
            // As `plan::draws`: a `per = "connection"` rule fires by the connection's draw, its
            // parameter is the cell's.
            let fire = chance_of_words(base_conn, i as u16, gate.words(words));
            gate.may_fire(n, call.requested, fire)
                .then(|| {
                    let chance = chance_of_words(base_conn, i as u16, words);
                    grid::offset_in(&rule.fault, start, param_at(chance))
                })
                .filter(|c| *c >= from)
        });
        if let Some(c) = found {
            best = Some((i, c));
        }
    }
    best
}

/// The decision for a grid read counted at `at`, among `rules` (grid rules acting on it).
pub fn decide(
    rt: &Runtime,
    slot: &Slot,
    call: &Call,
    meta: Meta,
    at: Position,
    rules: u32,
) -> Option<(Choice, Role)> {
    let pos = slot.pos[Dir::Rx as usize].load(Relaxed);
    let done = slot.rx_done.load(Relaxed);
    let len = call.requested as u64;
    // A fault the model refuses here is passed; the next one in the read's span may still be met.
    let mut from = pos;
    loop {
        let injection = if rt.injecting {
            rt.policy.injections.first_on_stream(
                PROCESS_KEY.load(Relaxed),
                at.conn,
                Dir::Rx,
                (from, pos.saturating_add(len)),
                |inj, c| {
                    Placement::of(&inj.fault).is_some_and(|p| grid::owed(p, pos, len, done, c))
                },
            )
        } else {
            None
        };
        let rule = match rules {
            0 => None,
            _ => first_rule(rt, slot, at.conn, at.n, call, (rules, from)),
        };
        let (decided, c) = match (injection, rule) {
            (Some((j, _, c)), r) if r.is_none_or(|(_, rc)| c <= rc) => {
                (injection_at(rt, call, slot, meta, at, j, pos, c), c)
            }
            (_, Some((i, c))) => (rule_at(rt, call, slot, meta, at, i, pos, c), c),
            _ => return None,
        };
        if decided.is_some() {
            return decided;
        }
        from = c + 1;
    }
}

fn key(rule: u16, conn: u64, c: u64) -> Key {
    Key {
        process: PROCESS_KEY.load(Relaxed),
        conn,
        rule,
        site: offset_site(c),
    }
}

/// The key's site of a grid fault: its offset.
fn offset_site(c: u64) -> Site {
    Site::Stream {
        dir: Dir::Rx,
        pos: c,
        attempt: 0,
    }
}

/// Whether this read can be held to end at a grid offset (see `realise::grid_cut`); Ok says
/// whether it is non-blocking.
fn cut_here(
    fault: &chaos_engine::fault::Fault,
    ctx: realise::RuleContext,
    call: &Call,
    facts: &mut LiveFacts,
    meta: Meta,
    len: usize,
) -> Result<bool, NotHere> {
    realise::grid_cut(ctx, &call.shape(meta), facts, grid::cut_floor(fault), len)
}

#[allow(clippy::too_many_arguments)]
fn rule_at(
    rt: &Runtime,
    call: &Call,
    slot: &Slot,
    meta: Meta,
    at: Position,
    i: usize,
    pos: u64,
    c: u64,
) -> Option<(Choice, Role)> {
    let rule = &rt.policy.rules[i];
    let here = Position {
        site: offset_site(c),
        ..at
    };
    let placement = Placement::of(&rule.fault)?;
    // The fault at its offset is chosen as any call's, at a site whose draw is its cell's (an
    // `At` fault's offset is its cell's first byte).
    let at_offset = || plan::decide(rt, call, slot, meta, &here, 1 << i).map(|p| (p, Role::At(c)));
    let Step::Hold(len) = grid::step(pos, c) else {
        return at_offset();
    };
    let mut facts = LiveFacts::new(call.fd, slot, meta);
    let cut = cut_here(&rule.fault, rule.context(), call, &mut facts, meta, len);
    if !plan::in_window(rt, i) {
        plan::tally(i, Err(Reason::OutsideWindow));
        return None;
    }
    let plan_of = |action| Choice {
        action,
        source: Source::Rule(i),
        key: key(i as u16, at.conn, c),
    };
    match placement {
        Placement::Cut => {
            // Counted (and `times` taken) once the read did end at the cut (`cut_made`): with
            // less queued it ends sooner by itself, and the cut is still ahead.
            let refused = match cut {
                Err(not_here) => Some(Reason::Realism(not_here)),
                Ok(_) if !crate::log::writable() => Some(Reason::LogUnwritable),
                Ok(_) if !times_left(rt, i) => Some(Reason::TimesUsedUp),
                Ok(_) => None,
            };
            if let Some(reason) = refused {
                plan::tally(i, Err(reason));
                return None;
            }
            let nonblocking = cut.ok()?;
            Some((plan_of(Action::Short { len, nonblocking }), Role::Cut))
        }
        Placement::At => match cut {
            // No cut can hold this read short of the offset: it is the read that reaches the
            // offset first, and gets the fault.
            Err(_) => at_offset(),
            Ok(nonblocking) => {
                // The hold is part of the fault: only where the fault could follow it, with
                // `times` left and a log to say so.
                let param = param_at(chance_of_words(
                    KEY_BASE.load(Relaxed) ^ at.conn,
                    i as u16,
                    here.site.words(),
                ));
                let shape = call.shape(meta);
                if let Err(not_here) =
                    realise::realise(&rule.fault, rule.context(), &shape, &mut facts, param)
                {
                    plan::tally(i, Err(Reason::Realism(not_here)));
                    return None;
                }
                (times_left(rt, i) && crate::log::writable())
                    .then(|| (plan_of(Action::Short { len, nonblocking }), Role::Hold))
            }
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn injection_at(
    rt: &Runtime,
    call: &Call,
    slot: &Slot,
    meta: Meta,
    at: Position,
    j: usize,
    pos: u64,
    c: u64,
) -> Option<(Choice, Role)> {
    let fault = &rt.policy.injections.get(j).fault;
    let here = Position {
        site: offset_site(c),
        ..at
    };
    let at_offset = || plan::decide(rt, call, slot, meta, &here, 0).map(|p| (p, Role::At(c)));
    let Step::Hold(len) = grid::step(pos, c) else {
        return at_offset();
    };
    let mut facts = LiveFacts::new(call.fd, slot, meta);
    let cut = cut_here(
        fault,
        realise::RuleContext::default(),
        call,
        &mut facts,
        meta,
        len,
    );
    let role = match (Placement::of(fault)?, cut) {
        (Placement::At, Err(_)) => return at_offset(),
        (Placement::Cut, Err(_)) => return None,
        (Placement::Cut, Ok(_)) => Role::Cut,
        (Placement::At, Ok(_)) => Role::Hold,
    };
    let nonblocking = cut.ok()?;
    crate::log::writable().then(|| {
        let plan = Choice {
            action: Action::Short { len, nonblocking },
            source: Source::Injection(j),
            key: key(INJECTED, at.conn, c),
        };
        (plan, role)
    })
}

/// Whether rule `i` has injections left under its `times` (without taking one).
fn times_left(rt: &Runtime, i: usize) -> bool {
    rt.policy.rules[i]
        .times
        .is_none_or(|t| rt.injected[i].load(Relaxed) < t)
}

/// A rule's cut was made: it counts as injected, against its `times`.
pub fn cut_made(rt: &Runtime, plan: &Choice) {
    if let Source::Rule(i) = plan.source {
        plan::take_one_of_times(rt, i);
        plan::tally(i, Ok(()));
    }
}
