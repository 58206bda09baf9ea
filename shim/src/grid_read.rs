//! Stream reads meet their faults on the engine's grid of offsets (`chaos_engine::grid`), so a
//! fault belongs to a byte of the stream, not to whichever read happened to start near it. The
//! walk of a read's span is the engine's (`chaos_engine::select::grid`), shared with the seccomp
//! supervisor; this file answers what only the shim knows: the slot's read offset and `rx_done`,
//! the live fd's realism facts, the process's clock, `times` and log.

use crate::facts::LiveFacts;
use crate::fdtable::{Meta, Slot};
use crate::plan::{self, Call, Choice, Position, Source};
use crate::runtime::{KEY_BASE, PROCESS_KEY, Runtime};
use chaos_engine::fault::Fault;
use chaos_engine::grid;
use chaos_engine::key::Dir;
use chaos_engine::kind::FdKind;
use chaos_engine::realise::{self, Action, NotHere, RuleContext};
use chaos_engine::refusal::Reason;
use chaos_engine::select::grid::{GridRead, Span};
use core::sync::atomic::Ordering::Relaxed;

pub use chaos_engine::select::grid::Role;

/// Whether this call is a byte stream's read, whose faults lie on the grid. A peek moves nothing
/// and a regular file is read where the program seeks, so neither needs the grid.
#[inline(always)]
pub fn applies(call: &Call, meta: Meta) -> bool {
    call.dir() == Some(Dir::Rx)
        && meta.stream()
        && !call.op.is_multi_message()
        && call.msg_flags & libc::MSG_PEEK == 0
        // TCP only, as under seccomp (where only TCP has offsets): a network's segmenting is what
        // varies between runs. A pipe or a unix stream returns everything queued, so a reader in
        // step with its writer starts each read where the writer's write did, in every run, and
        // keeps its per-read draws (and their rates: a grid cell of a 200-byte stream would draw
        // once where 200 one-byte reads drew 200 times).
        && meta.kind() == FdKind::Tcp
}

/// The read's span from the connection's current read offset.
#[inline(always)]
fn span(slot: &Slot, at: Position) -> Span {
    Span {
        at,
        pos: slot.pos[Dir::Rx as usize].load(Relaxed),
        done: slot.rx_done.load(Relaxed),
    }
}

/// Whether a read of `call.requested` bytes meets a grid fault among `rules` from the
/// connection's current read offset. The hot path's check: hashes only, the PCG draw of a
/// fault's offset only for a cell that fires.
#[inline]
pub fn meets_a_rule(rt: &Runtime, slot: &Slot, conn: u64, n: u64, call: &Call, rules: u32) -> bool {
    let at = Position {
        process: PROCESS_KEY.load(Relaxed),
        base: KEY_BASE.load(Relaxed),
        conn,
        site: grid::cell_site(Dir::Rx, 0),
        n,
        requested: call.requested,
    };
    chaos_engine::select::grid::first_rule(&rt.policy, &rt.gates, &span(slot, at), rules, 0)
        .is_some()
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
    let mut live = Live {
        rt,
        slot,
        call,
        meta,
        facts: LiveFacts::new(call.fd, slot, meta),
        shape: call.shape(meta),
    };
    chaos_engine::select::grid::decide(
        &rt.policy,
        &rt.gates,
        &span(slot, at),
        rt.injecting,
        rules,
        &mut live,
    )
}

/// The shim's answers to the engine's walk, for one read.
struct Live<'a> {
    rt: &'a Runtime,
    slot: &'a Slot,
    call: &'a Call,
    meta: Meta,
    facts: LiveFacts<'a>,
    shape: realise::Call,
}

impl GridRead for Live<'_> {
    fn grid_cut(&mut self, fault: &Fault, ctx: RuleContext, len: usize) -> Result<bool, NotHere> {
        realise::grid_cut(
            ctx,
            &self.shape,
            &mut self.facts,
            grid::cut_floor(fault),
            len,
        )
    }
    fn realise(&mut self, fault: &Fault, ctx: RuleContext, param: u64) -> Result<Action, NotHere> {
        realise::realise(fault, ctx, &self.shape, &mut self.facts, param)
    }
    fn decide_at(&mut self, here: &Position, mask: u32) -> Option<Choice> {
        plan::decide(self.rt, self.call, self.slot, self.meta, here, mask)
    }
    fn since_start_ns(&mut self) -> u64 {
        crate::runtime::since_start_ns()
    }
    fn times_left(&self, rule: usize, times: u64) -> bool {
        self.rt.injected[rule].load(Relaxed) < times
    }
    fn can_log(&mut self) -> bool {
        crate::log::writable()
    }
    fn tally(&mut self, rule: usize, outcome: Result<(), Reason>) {
        plan::tally(rule, outcome);
    }
}

/// A rule's cut was made: it counts as injected, against its `times`.
pub fn cut_made(rt: &Runtime, plan: &Choice) {
    if let Source::Rule(i) = plan.source {
        plan::take_one_of_times(rt, i);
        plan::tally(i, Ok(()));
    }
}
