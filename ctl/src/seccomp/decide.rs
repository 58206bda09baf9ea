//! What the supervisor tells the engine about a held call: the process's `times` budget and
//! `window` clock, the fd's facts as its view holds them, and where outcomes are counted. Which
//! rule fires is the engine's `select`, the same loop the preload shim runs.

use super::budget::Budget;
use super::facts::HeldFacts;
use super::fdview::FdView;
use super::target::Target;
use chaos_engine::fault::Fault;
use chaos_engine::op::Op;
use chaos_engine::realise::{self, Action, NotHere, RuleContext};
use chaos_engine::refusal::Reason;
use chaos_engine::select::{Backend, select};

pub use chaos_engine::select::{Choice, Position, Source};

struct Held<'a, F> {
    target: &'a Target,
    budget: &'a mut Budget,
    realise: F,
    /// A stream read's decision at its start: the grid's faults are the grid's.
    off_grid: bool,
}

impl<F: FnMut(&Fault, RuleContext, u64) -> Result<Action, NotHere>> Backend for Held<'_, F> {
    fn since_start_ns(&mut self) -> u64 {
        self.budget.start.elapsed().as_nanos() as u64
    }
    fn take_one_of_times(&mut self, rule: usize, times: u64) -> bool {
        let Some(used) = self.budget.injected.get_mut(rule) else {
            return false;
        };
        if *used >= times {
            return false;
        }
        *used += 1;
        true
    }
    /// The supervisor's log is its own, always open.
    fn can_log(&mut self) -> bool {
        true
    }
    fn realise(&mut self, fault: &Fault, ctx: RuleContext, param: u64) -> Result<Action, NotHere> {
        (self.realise)(fault, ctx, param)
    }
    fn tally(&mut self, rule: usize, outcome: Result<(), Reason>) {
        self.target.tally(rule, outcome);
    }
    fn carries_out(&self, fault: &Fault) -> bool {
        super::carries_out(fault)
            && !(self.off_grid && chaos_engine::grid::Placement::of(fault).is_some())
    }
}

/// The exact injection at this place, else the first rule among `candidates` (a rule mask) that
/// acts on `op`, is switched on, and fires here; `realise` turns a fault into what Linux could do
/// on this call, from the supervisor's view of the fd.
pub fn decide(
    target: &mut Target,
    budget: &mut Budget,
    op: Op,
    at: Position,
    candidates: u32,
    realise: impl FnMut(&Fault, RuleContext, u64) -> Result<Action, NotHere>,
) -> Option<Choice> {
    let choice = choose_with(target, budget, (op, at, candidates), false, realise);
    // Where a change of the control page first took effect: a call the rules were asked about.
    if !matches!(
        choice,
        Some(Choice {
            source: Source::Injection(_),
            ..
        })
    ) {
        target.last_place = Some(at.key(0).place());
    }
    choice
}

/// As `decide`, without noting the place for the control page (a grid read notes its start).
pub fn choose(
    target: &Target,
    budget: &mut Budget,
    op: Op,
    at: Position,
    candidates: u32,
    realise: impl FnMut(&Fault, RuleContext, u64) -> Result<Action, NotHere>,
) -> Option<Choice> {
    choose_with(target, budget, (op, at, candidates), false, realise)
}

fn choose_with(
    target: &Target,
    budget: &mut Budget,
    (op, at, candidates): (Op, Position, u32),
    off_grid: bool,
    realise: impl FnMut(&Fault, RuleContext, u64) -> Result<Action, NotHere>,
) -> Option<Choice> {
    let candidates = candidates & target.rules_for(op) & target.enabled();
    let mut held = Held {
        target,
        budget,
        realise,
        off_grid,
    };
    select(&target.policy, &target.gates, &at, candidates, &mut held)
}

/// The engine's choice for a call on a target fd: the realism model asks the supervisor's view
/// of that fd (`view`, as thread `tid` sees it) about the call `call`.
pub fn decide_on_fd(
    target: &mut Target,
    budget: &mut Budget,
    (op, at, candidates): (Op, Position, u32),
    (view, tid): (&FdView, i32),
    call: &realise::Call,
) -> Option<Choice> {
    decide(target, budget, op, at, candidates, |fault, ctx, param| {
        let mut facts = HeldFacts { view, tid };
        realise::realise(fault, ctx, call, &mut facts, param)
    })
}

/// As `decide_on_fd`, passing over every fault that lies on the grid of stream offsets: a stream
/// read's per-call decision at its start (toxics), as the shim's `decide_off_grid`.
pub fn decide_off_grid(
    target: &mut Target,
    budget: &mut Budget,
    (op, at, candidates): (Op, Position, u32),
    (view, tid): (&FdView, i32),
    call: &realise::Call,
) -> Option<Choice> {
    let choice = choose_with(
        target,
        budget,
        (op, at, candidates),
        true,
        |fault, ctx, param| {
            let mut facts = HeldFacts { view, tid };
            realise::realise(fault, ctx, call, &mut facts, param)
        },
    );
    target.last_place = Some(at.key(0).place());
    choice
}
