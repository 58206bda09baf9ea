//! Stream reads meet their faults on the engine's grid of offsets (`chaos_engine::grid`), as
//! under the preload shim (`shim/src/grid_read.rs`, whose walk this one follows step for step):
//! a fault belongs to a byte of the stream, not to whichever read happened to start near it, so
//! a static build gets the faults, at the same keys, of its dynamic build.
//!
//! The read's span `[pos, pos + requested)` is walked cell by cell; the first fault owed in it
//! (an exact injection first, then the rules in order) decides: a cut or a hold ends the read at
//! the fault's offset, a fault at the read's start is chosen as on any call (`decide::decide`),
//! keyed by its offset. Only TCP reads have offsets here (`FdView::offsets`).

use super::decide::{self, Budget, Choice, Position, Source};
use super::facts::HeldFacts;
use super::fdview::FdView;
use super::target::Target;
use chaos_engine::chance::{chance_of_words, param_at};
use chaos_engine::decide::{Dir, INJECTED, Site};
use chaos_engine::fault::Fault;
use chaos_engine::grid::{self, Placement, Step};
use chaos_engine::op::Op;
use chaos_engine::realise::{self, Action, NotHere, RuleContext};
use chaos_engine::refusal::Reason;

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
    pub target: &'a mut Target,
    pub budget: &'a mut Budget,
    pub view: &'a FdView,
    pub tid: i32,
    pub op: Op,
    pub call: realise::Call,
    /// The read's place, counted at its start (process, connection, `n`, bytes asked for).
    pub at: Position,
    /// The connection's read offset, and one past the last `At` fault delivered on it.
    pub pos: u64,
    pub done: u64,
}

impl Read<'_> {
    /// The decision for this read among `rules` (grid rules acting on it).
    pub fn decide(&mut self, rules: u32) -> Option<(Choice, Role)> {
        let (pos, len) = (self.pos, self.at.requested as u64);
        let mut from = pos;
        loop {
            let done = self.done;
            let injection = self
                .target
                .policy
                .injections
                .first_on_stream(
                    self.at.process,
                    self.at.conn,
                    Dir::Rx,
                    (from, pos.saturating_add(len)),
                    |inj, c| {
                        Placement::of(&inj.fault).is_some_and(|p| grid::owed(p, pos, len, done, c))
                    },
                )
                .map(|(j, _, c)| (j, c));
            let rule = match rules {
                0 => None,
                _ => self.first_rule(rules, from),
            };
            let (decided, c) = match (injection, rule) {
                (Some((j, c)), r) if r.is_none_or(|(_, rc)| c <= rc) => {
                    (self.injection_at(j, c), c)
                }
                (_, Some((i, c))) => (self.rule_at(i, c), c),
                _ => return None,
            };
            if decided.is_some() {
                return decided;
            }
            from = c + 1;
        }
    }

    /// The first grid fault among `rules`, at `from` or after, in the read's span.
    fn first_rule(&self, rules: u32, from: u64) -> Option<(usize, u64)> {
        let (pos, done) = (self.pos, self.done);
        let base_conn = self.at.base ^ self.at.conn;
        let mut best: Option<(usize, u64)> = None;
        let mut bits = rules;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let (Some(gate), Some(rule)) =
                (self.target.gates.get(i), self.target.policy.rules.get(i))
            else {
                continue;
            };
            let Some(placement) = Placement::of(&rule.fault) else {
                continue;
            };
            // Only a fault before the best one so far could win.
            let len = best.map_or(self.at.requested as u64, |(_, c)| c - pos);
            let found = grid::first_owed(placement, pos, len, done, |start| {
                let words = grid::cell_site(Dir::Rx, start).words();
                let fire = chance_of_words(base_conn, i as u16, gate.words(words));
                gate.may_fire(self.at.n, self.at.requested, fire)
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

    fn here(&self, c: u64) -> Position {
        Position {
            site: offset_site(c),
            ..self.at
        }
    }

    /// The fault at offset `c` chosen as any call's (an injection's with `mask` 0).
    fn at_offset(&mut self, c: u64, mask: u32) -> Option<(Choice, Role)> {
        let here = self.here(c);
        let (view, tid, call) = (self.view, self.tid, self.call);
        decide::decide(
            self.target,
            self.budget,
            self.op,
            here,
            mask,
            |fault, ctx, param| {
                let mut facts = HeldFacts { view, tid };
                realise::realise(fault, ctx, &call, &mut facts, param)
            },
        )
        .map(|choice| (choice, Role::At(c)))
    }

    /// Whether this read can be held to end at a grid offset; Ok says whether it is non-blocking.
    fn cut_here(&self, fault: &Fault, ctx: RuleContext, len: usize) -> Result<bool, NotHere> {
        let mut facts = HeldFacts {
            view: self.view,
            tid: self.tid,
        };
        realise::grid_cut(ctx, &self.call, &mut facts, grid::cut_floor(fault), len)
    }

    fn rule_at(&mut self, i: usize, c: u64) -> Option<(Choice, Role)> {
        let rule = self.target.policy.rules[i].clone();
        let placement = Placement::of(&rule.fault)?;
        let Step::Hold(len) = grid::step(self.pos, c) else {
            return self.at_offset(c, 1 << i);
        };
        let cut = self.cut_here(&rule.fault, rule.context(), len);
        if let Some((from, to)) = rule.window
            && !(from..to).contains(&(self.budget.start.elapsed().as_nanos() as u64))
        {
            self.target.tally(i, Err(Reason::OutsideWindow));
            return None;
        }
        let choice = |action| Choice {
            action,
            source: Source::Rule(i),
            key: self.here(c).key(i as u16),
        };
        match placement {
            Placement::Cut => {
                // Counted (and `times` taken) once the read did end at the cut (`cut_made`).
                let refused = match cut {
                    Err(not_here) => Some(Reason::Realism(not_here)),
                    Ok(_) if !self.times_left(i) => Some(Reason::TimesUsedUp),
                    Ok(_) => None,
                };
                if let Some(reason) = refused {
                    self.target.tally(i, Err(reason));
                    return None;
                }
                let nonblocking = cut.ok()?;
                Some((choice(Action::Short { len, nonblocking }), Role::Cut))
            }
            Placement::At => match cut {
                // No cut can hold this read short of the offset: it gets the fault.
                Err(_) => self.at_offset(c, 1 << i),
                Ok(nonblocking) => {
                    // The hold is part of the fault: only where the fault could follow it.
                    let param = param_at(chance_of_words(
                        self.at.base ^ self.at.conn,
                        i as u16,
                        offset_site(c).words(),
                    ));
                    let mut facts = HeldFacts {
                        view: self.view,
                        tid: self.tid,
                    };
                    if let Err(not_here) =
                        realise::realise(&rule.fault, rule.context(), &self.call, &mut facts, param)
                    {
                        self.target.tally(i, Err(Reason::Realism(not_here)));
                        return None;
                    }
                    self.times_left(i)
                        .then(|| (choice(Action::Short { len, nonblocking }), Role::Hold))
                }
            },
        }
    }

    fn injection_at(&mut self, j: usize, c: u64) -> Option<(Choice, Role)> {
        let fault = self.target.policy.injections.get(j).fault;
        let Step::Hold(len) = grid::step(self.pos, c) else {
            return self.at_offset(c, 0);
        };
        let cut = self.cut_here(&fault, RuleContext::default(), len);
        let role = match (Placement::of(&fault)?, cut) {
            (Placement::At, Err(_)) => return self.at_offset(c, 0),
            (Placement::Cut, Err(_)) => return None,
            (Placement::Cut, Ok(_)) => Role::Cut,
            (Placement::At, Ok(_)) => Role::Hold,
        };
        let nonblocking = cut.ok()?;
        let choice = Choice {
            action: Action::Short { len, nonblocking },
            source: Source::Injection(j),
            key: self.here(c).key(INJECTED),
        };
        Some((choice, role))
    }

    /// Whether rule `i` has injections left under its `times` in this process (without taking one).
    fn times_left(&self, i: usize) -> bool {
        self.target.policy.rules[i]
            .times
            .is_none_or(|t| self.budget.injected.get(i).is_some_and(|used| *used < t))
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

/// A rule's cut was made: it counts as injected, against its `times`.
pub fn cut_made(target: &Target, budget: &mut Budget, choice: &Choice) {
    if let Source::Rule(i) = choice.source {
        if let Some(used) = budget.injected.get_mut(i) {
            *used += 1;
        }
        target.tally(i, Ok(()));
    }
}
