//! Stream reads meet their faults on the engine's grid of offsets (`chaos_engine::grid`), as
//! under the preload shim, by the same walk (`chaos_engine::select::grid`): a fault belongs to
//! a byte of the stream, not to whichever read happened to start near it, so a static build gets
//! the faults, at the same keys, of its dynamic build. This file answers what only the
//! supervisor knows: the view's read offset and `rx_done`, the realism facts from our copy of
//! the fd, the process's clock and `times`. Only TCP reads have offsets here (`FdView::offsets`).

use super::budget::Budget;
use super::decide::{self, Choice, Position, Source};
use super::facts::HeldFacts;
use super::fdview::FdView;
use super::target::Target;
use chaos_engine::fault::Fault;
use chaos_engine::grid::{self, Placement};
use chaos_engine::key::Dir;
use chaos_engine::op::Op;
use chaos_engine::realise::{self, Action, NotHere, RuleContext};
use chaos_engine::refusal::Reason;
use chaos_engine::select::grid::GridRead;

pub use chaos_engine::select::grid::{Role, Span};

/// Whether a call is a stream read whose faults lie on the grid: a peek moves nothing.
pub fn applies(op: Op, view: &FdView, msg_flags: i32) -> bool {
    op.dir() == Some(Dir::Rx)
        && view.offsets
        && !op.is_multi_message()
        && msg_flags & libc::MSG_PEEK == 0
}

/// The rules among `mask` whose faults lie on the grid.
pub fn grid_rules(target: &Target, mask: u32) -> u32 {
    let mut out = 0;
    let mut bits = mask;
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        if target
            .policy
            .rules
            .get(i)
            .is_some_and(|r| Placement::of(&r.fault).is_some() && super::carries_out(&r.fault))
        {
            out |= 1 << i;
        }
    }
    out
}

/// One read being decided: what the walk needs to ask of the supervisor's state.
pub struct Read<'a> {
    pub target: &'a Target,
    pub budget: &'a mut Budget,
    pub view: &'a FdView,
    pub tid: i32,
    pub op: Op,
    pub call: realise::Call,
}

impl Read<'_> {
    /// The decision for the read at `span` among `rules` (grid rules acting on it).
    pub fn decide(&mut self, span: &Span, rules: u32) -> Option<(Choice, Role)> {
        let target = self.target;
        chaos_engine::select::grid::decide(&target.policy, &target.gates, span, true, rules, self)
    }

    fn facts(&self) -> HeldFacts<'_> {
        HeldFacts {
            view: self.view,
            tid: self.tid,
        }
    }
}

impl GridRead for Read<'_> {
    fn grid_cut(&mut self, fault: &Fault, ctx: RuleContext, len: usize) -> Result<bool, NotHere> {
        let floor = grid::cut_floor(fault);
        realise::grid_cut(ctx, &self.call, &mut self.facts(), floor, len)
    }
    fn realise(&mut self, fault: &Fault, ctx: RuleContext, param: u64) -> Result<Action, NotHere> {
        realise::realise(fault, ctx, &self.call, &mut self.facts(), param)
    }
    fn decide_at(&mut self, here: &Position, mask: u32) -> Option<Choice> {
        let (view, tid, call) = (self.view, self.tid, self.call);
        decide::choose(
            self.target,
            self.budget,
            self.op,
            *here,
            mask,
            |fault, ctx, param| {
                let mut facts = HeldFacts { view, tid };
                realise::realise(fault, ctx, &call, &mut facts, param)
            },
        )
    }
    fn since_start_ns(&mut self) -> u64 {
        self.budget.start.elapsed().as_nanos() as u64
    }
    fn times_left(&self, rule: usize, times: u64) -> bool {
        self.budget
            .injected
            .get(rule)
            .is_some_and(|used| *used < times)
    }
    /// The supervisor's log is its own, always open.
    fn can_log(&mut self) -> bool {
        true
    }
    fn tally(&mut self, rule: usize, outcome: Result<(), Reason>) {
        self.target.tally(rule, outcome);
    }
}

/// A rule's cut was made: it counts as injected, against its `times`.
pub fn cut_made(target: &Target, budget: &mut Budget, choice: &Choice) {
    if let Source::Rule(i) = choice.source {
        if let Some(used) = budget.injected.get_mut(i) {
            *used += 1;
        }
        target.tally(i, Ok(()));
    }
}
