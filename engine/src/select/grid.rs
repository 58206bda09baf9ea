//! A stream read's faults on the grid of offsets (`crate::grid`): the one walk both backends run
//! (the preload shim's read hooks, the seccomp supervisor's TCP reads), so a read meets the same
//! fault, at the same key, under either.
//!
//! The read's span `[pos, pos + requested)` is walked cell by cell; the first fault owed in it
//! (an exact injection first, then the rules in order) decides: a cut or a hold ends the read at
//! the fault's offset, a fault at the read's start is chosen as on any call, keyed by its offset.
//! What only the backend knows — the connection's read offset, the realism answer from the live
//! fd, the process's clock, `times` and log — it answers through [`GridRead`].

use super::{Choice, Gate, Position, Source};
use crate::chance::{chance_of_words, param_at};
use crate::fault::Fault;
use crate::grid::{self, Placement, Step};
use crate::key::{Dir, INJECTED, Site};
use crate::policy::{Policy, Rule};
use crate::realise::{Action, NotHere, RuleContext};
use crate::refusal::Reason;

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

/// What only the backend can answer about the read being decided.
pub trait GridRead {
    /// Whether this read can be held to end `len` bytes on (`realise::grid_cut` on the live fd,
    /// with `grid::cut_floor(fault)`); Ok says whether the call is non-blocking.
    fn grid_cut(&mut self, fault: &Fault, ctx: RuleContext, len: usize) -> Result<bool, NotHere>;
    /// What `fault` becomes on this call (`realise::realise` on the live fd).
    fn realise(&mut self, fault: &Fault, ctx: RuleContext, param: u64) -> Result<Action, NotHere>;
    /// The fault at `here` (a grid offset) chosen as on any call: `select` among `mask`.
    fn decide_at(&mut self, here: &Position, mask: u32) -> Option<Choice>;
    /// Nanoseconds since this process started.
    fn since_start_ns(&mut self) -> u64;
    /// Whether rule `rule` has injections left under `times` (without taking one).
    fn times_left(&self, rule: usize, times: u64) -> bool;
    /// Whether the process can write its log.
    fn can_log(&mut self) -> bool;
    /// Adds the outcome of a draw that said "fire" to the run's counts.
    fn tally(&mut self, rule: usize, outcome: Result<(), Reason>);
}

/// The read: where it is (`at`: process, key base, connection, `n`, bytes asked for), the
/// connection's read offset `pos`, and `done`, one past the last `At` fault delivered on it.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub at: Position,
    pub pos: u64,
    pub done: u64,
}

/// The first grid fault among `rules` (a rule mask), at `from` or after, that the read meets:
/// (rule, offset). The hot path's check (`from` = `pos`): hashes only, the draw of a fault's
/// offset only for a cell that fires.
#[inline]
pub fn first_rule(
    policy: &Policy,
    gates: &[Gate],
    span: &Span,
    rules: u32,
    from: u64,
) -> Option<(usize, u64)> {
    let Span { at, pos, done } = *span;
    let base_conn = at.base ^ at.conn;
    let mut best: Option<(usize, u64)> = None;
    let mut bits = rules;
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let (Some(gate), Some(rule)) = (gates.get(i), policy.rules.get(i)) else {
            continue;
        };
        let Some(placement) = Placement::of(&rule.fault) else {
            continue;
        };
        // Only a fault before the best one so far could win.
        let len = best.map_or(at.requested as u64, |(_, c)| c - pos);
        let found = grid::first_owed(placement, pos, len, done, |start| {
            let words = grid::cell_site(Dir::Rx, start).words();
            // As `Gate::draws`: a `per = "connection"` rule fires by the connection's draw, its
            // parameter is the cell's.
            let fire = chance_of_words(base_conn, i as u16, gate.words(words));
            gate.may_fire(at.n, at.requested, fire)
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

/// The decision for a grid read among `rules` (grid rules acting on it); `injecting`: whether
/// the policy's exact injections are looked at.
pub fn decide(
    policy: &Policy,
    gates: &[Gate],
    span: &Span,
    injecting: bool,
    rules: u32,
    backend: &mut impl GridRead,
) -> Option<(Choice, Role)> {
    let Span { at, pos, done } = *span;
    let len = at.requested as u64;
    // A fault the model refuses here is passed; the next one in the read's span may still be met.
    let mut from = pos;
    loop {
        let injection = if injecting {
            policy.injections.first_on_stream(
                at.process,
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
            _ => first_rule(policy, gates, span, rules, from),
        };
        let (decided, c) = match (injection, rule) {
            (Some((j, _, c)), r) if r.is_none_or(|(_, rc)| c <= rc) => {
                (injection_at(policy, span, j, c, backend), c)
            }
            (_, Some((i, c))) => (rule_at(policy, span, i, c, backend), c),
            _ => return None,
        };
        if decided.is_some() {
            return decided;
        }
        from = c + 1;
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

fn rule_at(
    policy: &Policy,
    span: &Span,
    i: usize,
    c: u64,
    backend: &mut impl GridRead,
) -> Option<(Choice, Role)> {
    let rule = &policy.rules[i];
    let here = Position {
        site: offset_site(c),
        ..span.at
    };
    let placement = Placement::of(&rule.fault)?;
    // The fault at its offset is chosen as any call's, at a site whose draw is its cell's (an
    // `At` fault's offset is its cell's first byte).
    let Step::Hold(len) = grid::step(span.pos, c) else {
        return backend.decide_at(&here, 1 << i).map(|p| (p, Role::At(c)));
    };
    let cut = backend.grid_cut(&rule.fault, rule.context(), len);
    if let Some((from, to)) = rule.window
        && !(from..to).contains(&backend.since_start_ns())
    {
        backend.tally(i, Err(Reason::OutsideWindow));
        return None;
    }
    let choice = |action| Choice {
        action,
        source: Source::Rule(i),
        key: here.key(i as u16),
    };
    match placement {
        Placement::Cut => {
            // Counted (and `times` taken) once the read did end at the cut (the backend's
            // `cut_made`): with less queued it ends sooner by itself, and the cut is still ahead.
            let refused = match cut {
                Err(not_here) => Some(Reason::Realism(not_here)),
                Ok(_) if !backend.can_log() => Some(Reason::LogUnwritable),
                Ok(_) if !times_left(rule, i, backend) => Some(Reason::TimesUsedUp),
                Ok(_) => None,
            };
            if let Some(reason) = refused {
                backend.tally(i, Err(reason));
                return None;
            }
            let nonblocking = cut.ok()?;
            Some((choice(Action::Short { len, nonblocking }), Role::Cut))
        }
        Placement::At => match cut {
            // No cut can hold this read short of the offset: it is the read that reaches the
            // offset first, and gets the fault.
            Err(_) => backend.decide_at(&here, 1 << i).map(|p| (p, Role::At(c))),
            Ok(nonblocking) => {
                // The hold is part of the fault: only where the fault could follow it, with
                // `times` left and a log to say so.
                let param = param_at(chance_of_words(
                    span.at.base ^ span.at.conn,
                    i as u16,
                    here.site.words(),
                ));
                if let Err(not_here) = backend.realise(&rule.fault, rule.context(), param) {
                    backend.tally(i, Err(Reason::Realism(not_here)));
                    return None;
                }
                (times_left(rule, i, backend) && backend.can_log())
                    .then(|| (choice(Action::Short { len, nonblocking }), Role::Hold))
            }
        },
    }
}

fn injection_at(
    policy: &Policy,
    span: &Span,
    j: usize,
    c: u64,
    backend: &mut impl GridRead,
) -> Option<(Choice, Role)> {
    let fault = &policy.injections.get(j).fault;
    let here = Position {
        site: offset_site(c),
        ..span.at
    };
    let Step::Hold(len) = grid::step(span.pos, c) else {
        return backend.decide_at(&here, 0).map(|p| (p, Role::At(c)));
    };
    let cut = backend.grid_cut(fault, RuleContext::default(), len);
    let role = match (Placement::of(fault)?, cut) {
        (Placement::At, Err(_)) => return backend.decide_at(&here, 0).map(|p| (p, Role::At(c))),
        (Placement::Cut, Err(_)) => return None,
        (Placement::Cut, Ok(_)) => Role::Cut,
        (Placement::At, Ok(_)) => Role::Hold,
    };
    let nonblocking = cut.ok()?;
    backend.can_log().then(|| {
        let plan = Choice {
            action: Action::Short { len, nonblocking },
            source: Source::Injection(j),
            key: here.key(INJECTED),
        };
        (plan, role)
    })
}

/// Whether rule `i` has injections left under its `times`, if it has any.
fn times_left(rule: &Rule, i: usize, backend: &impl GridRead) -> bool {
    rule.times.is_none_or(|t| backend.times_left(i, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::CELL;
    use crate::parse::parse_policy;

    /// A backend whose realism answers a test sets; the choice at an offset is a marker fault.
    struct Fake {
        cut: Result<bool, NotHere>,
        tallies: Vec<(usize, Result<(), Reason>)>,
    }

    impl GridRead for Fake {
        fn grid_cut(&mut self, _: &Fault, _: RuleContext, _: usize) -> Result<bool, NotHere> {
            self.cut
        }
        fn realise(&mut self, _: &Fault, _: RuleContext, _: u64) -> Result<Action, NotHere> {
            Ok(Action::Delay(1))
        }
        fn decide_at(&mut self, here: &Position, mask: u32) -> Option<Choice> {
            Some(Choice {
                action: Action::Delay(2),
                source: Source::Rule(mask.trailing_zeros() as usize),
                key: here.key(0),
            })
        }
        fn since_start_ns(&mut self) -> u64 {
            0
        }
        fn times_left(&self, _: usize, _: u64) -> bool {
            true
        }
        fn can_log(&mut self) -> bool {
            true
        }
        fn tally(&mut self, rule: usize, outcome: Result<(), Reason>) {
            self.tallies.push((rule, outcome));
        }
    }

    fn span(pos: u64, done: u64, requested: usize) -> Span {
        Span {
            at: Position {
                process: 1,
                base: 2,
                conn: 3,
                site: crate::grid::cell_site(Dir::Rx, 0),
                n: 0,
                requested,
            },
            pos,
            done,
        }
    }

    fn walk(text: &str, span: &Span, cut: Result<bool, NotHere>) -> Option<(Choice, Role)> {
        let p = parse_policy(text, "t.toml").expect("test policy parses");
        let gates = Gate::all(&p.rules);
        let mut b = Fake {
            cut,
            tallies: Vec::new(),
        };
        decide(&p, &gates, span, true, 1, &mut b)
    }

    const RESET: &str = "[[rules]]\non = \"reads\"\nfault = \"ECONNRESET\"\n";
    const SHORT: &str = "[[rules]]\non = \"reads\"\nfault = { short = \"1..50%\" }\n";

    #[test]
    fn a_fault_at_a_cell_holds_the_read_that_would_cross_it_and_the_next_read_gets_it() {
        let (c, role) = walk(RESET, &span(100, 0, 2 * CELL as usize), Ok(false)).unwrap();
        assert_eq!(role, Role::Hold);
        assert!(matches!(c.action, Action::Short { len, .. } if len as u64 == CELL - 100));
        let (_, role) = walk(RESET, &span(CELL, 0, 100), Ok(false)).unwrap();
        assert_eq!(role, Role::At(CELL));
        // Delivered once: the retry at the same offset is not faulted again.
        assert!(walk(RESET, &span(CELL, CELL + 1, 100), Ok(false)).is_none());
        // Where no cut may hold the read, the read reaching the offset gets it.
        let (_, role) = walk(
            RESET,
            &span(100, 0, 2 * CELL as usize),
            Err(NotHere::SplitsAWrite),
        )
        .unwrap();
        assert_eq!(role, Role::At(CELL));
    }

    #[test]
    fn a_cut_refused_here_is_passed_and_a_read_starting_at_it_is_not_cut() {
        let (c, role) = walk(SHORT, &span(0, 0, CELL as usize), Ok(true)).unwrap();
        assert_eq!(role, Role::Cut);
        let Site::Stream { pos: at, .. } = c.key.site else {
            panic!("{c:?}");
        };
        assert!(matches!(c.action, Action::Short { len, nonblocking: true } if len as u64 == at));
        // Starting at the cut: a natural boundary; this cell's cut is behind it.
        assert!(walk(SHORT, &span(at, 0, (CELL - at) as usize), Ok(true)).is_none());
        assert!(
            walk(
                SHORT,
                &span(0, 0, CELL as usize),
                Err(NotHere::BelowSegment)
            )
            .is_none()
        );
    }
}
