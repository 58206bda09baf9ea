//! Which rule fires on a held call, and what it becomes: the shim's `plan::choose` and
//! `plan::decide_named`, with the same keys, draws, gates and realism model, over the
//! supervisor's view instead of the shim's fd table.

use super::target::Target;
use chaos_engine::chance::{PER_CONNECTION_WORDS, chance_at, chance_of_words, param_at};
use chaos_engine::decide::{INJECTED, Key, Site};
use chaos_engine::fault::Fault;
use chaos_engine::op::Op;
use chaos_engine::policy::{Policy, Rule};
use chaos_engine::realise::{Action, NotHere, RuleContext};
use chaos_engine::refusal::Reason;

/// What decided a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Rule(usize),
    Injection(usize),
}

impl Source {
    pub fn fault(self, policy: &Policy) -> &Fault {
        match self {
            Source::Rule(i) => &policy.rules[i].fault,
            Source::Injection(i) => &policy.injections.get(i).fault,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Decision {
    pub action: Action,
    pub source: Source,
    pub key: Key,
}

/// Where a call sits: its process, connection, site, and its number among its connection's
/// calls of its class (for `after`/`every`).
#[derive(Clone, Copy, Debug)]
pub struct Place {
    pub process: u64,
    pub base: u64,
    pub conn: u64,
    pub site: Site,
    pub n: u64,
}

/// The exact injection at this place, else the first rule among `candidates` (a rule mask) that
/// fires here and that `realise` turns into something Linux could do here. Every draw that said
/// "fire" is counted in the control page with its outcome, as the shim counts it.
pub fn decide(
    target: &mut Target,
    op: Op,
    at: Place,
    requested: usize,
    candidates: u32,
    mut realise: impl FnMut(&Fault, RuleContext, u64) -> Result<Action, NotHere>,
) -> Option<Decision> {
    let key = |rule: u16| Key {
        process: at.process,
        conn: at.conn,
        rule,
        site: at.site,
    };
    let policy = &target.policy;
    if !policy.injections.is_empty()
        && let Some((i, inj)) = policy.injections.at(at.process, at.conn, at.site)
        && super::carries_out(&inj.fault)
        && let Ok(action) = realise(&inj.fault, RuleContext::default(), 0)
    {
        return Some(Decision {
            action,
            source: Source::Injection(i),
            key: key(INJECTED),
        });
    }
    target.last_place = Some(chaos_engine::decide::Place {
        process: at.process,
        conn: at.conn,
        site: at.site,
    });
    let mut bits = candidates & target.rules_for(op) & target.enabled();
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let rule = &target.policy.rules[i];
        if !super::carries_out(&rule.fault) {
            continue;
        }
        let chance = chance_at(at.base, at.conn, i as u16, &at.site);
        let fire = if rule.per_connection {
            chance_of_words(at.base ^ at.conn, i as u16, PER_CONNECTION_WORDS)
        } else {
            chance
        };
        if !Rule::fires(rule.threshold(), fire)
            || !rule.counts_allow(at.n)
            || (requested as u64) < rule.min_bytes
        {
            continue;
        }
        if !in_window(rule, target.start) {
            target.tally(i, Err(Reason::OutsideWindow));
            continue;
        }
        let action = match realise(&rule.fault, rule.context(), param_at(chance)) {
            Ok(action) => action,
            Err(not_here) => {
                target.tally(i, Err(Reason::Realism(not_here)));
                continue;
            }
        };
        if let Some(times) = rule.times {
            if target.injected[i] >= times {
                target.tally(i, Err(Reason::TimesUsedUp));
                continue;
            }
            target.injected[i] += 1;
        }
        target.tally(i, Ok(()));
        return Some(Decision {
            action,
            source: Source::Rule(i),
            key: key(i as u16),
        });
    }
    None
}

fn in_window(rule: &Rule, start: std::time::Instant) -> bool {
    match rule.window {
        None => true,
        Some((from, to)) => (from..to).contains(&(start.elapsed().as_nanos() as u64)),
    }
}
