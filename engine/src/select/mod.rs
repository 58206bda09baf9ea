//! Which rule, if any, fires on one call, and what its fault becomes there: the one selection
//! loop both backends run (the preload shim's hooks, the seccomp supervisor's notifications).
//!
//! The backend supplies the call's place, the rules its target lets act (a mask), and what only
//! it can know through [`Backend`]: the clock since the process started, the process's `times`
//! budget, whether the process can log, the realism answer from the live fd, and where the
//! outcome of a draw is counted. Everything else — the order rules are tried in, injections
//! before rules, the draws, and why a drawn rule did not fire — is decided here only, so a
//! policy means the same under either backend.

mod gate;
pub mod grid;
#[cfg(test)]
mod tests;

pub use gate::{Gate, any_may_fire, drawable};

use crate::chance::param_at;
use crate::fault::Fault;
use crate::key::{INJECTED, Key, Site};
use crate::policy::{Policy, Rule};
use crate::realise::{Action, NotHere, RuleContext};
use crate::refusal::Reason;

/// Where a call sits: its process (the key and `chance::key_base(seed, key)`), its connection and
/// site (the rest of its key), its number among its connection's calls of its class (for
/// `after`/`every`) and the bytes it asks for (for `min_bytes`).
#[derive(Clone, Copy, Debug)]
pub struct Position {
    pub process: u64,
    pub base: u64,
    pub conn: u64,
    pub site: Site,
    pub n: u64,
    pub requested: usize,
}

impl Position {
    pub fn key(&self, rule: u16) -> Key {
        Key {
            process: self.process,
            conn: self.conn,
            rule,
            site: self.site,
        }
    }
}

/// What decided a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The policy's rule with this index, by its draw.
    Rule(usize),
    /// The exact injection with this index (`[[inject]]`).
    Injection(usize),
    /// A Toxiproxy proxy's toxics (the control page's toxic entry that acted first), applied
    /// in-process to a connection made through the proxy (`crate::page::proxies`).
    Proxy(usize),
}

/// What a proxy's toxics are, as a fault: their effects are logged by what they amount to.
static PROXY_TOXICS: Fault = Fault::Toxic(crate::toxic::Toxics {
    latency_ns: None,
    jitter_ns: 0,
    bandwidth: None,
    blackhole: false,
    reset_after_blackhole_ns: None,
    limit_data: None,
    limit_resets: false,
    reset_after_ns: None,
    slow_close_ns: None,
    slicer: None,
});

impl Source {
    pub fn fault(self, policy: &Policy) -> &Fault {
        match self {
            Source::Rule(i) => &policy.rules[i].fault,
            Source::Injection(i) => &policy.injections.get(i).fault,
            Source::Proxy(_) => &PROXY_TOXICS,
        }
    }

    /// The `rule` of its decision key.
    pub fn key_rule(self) -> u16 {
        match self {
            Source::Rule(i) => i as u16,
            Source::Injection(_) => crate::key::INJECTED,
            Source::Proxy(_) => crate::key::PROXY,
        }
    }
}

/// The fault a call gets: what it does, what decided it, and the key it is logged at.
#[derive(Clone, Copy, Debug)]
pub struct Choice {
    pub action: Action,
    pub source: Source,
    pub key: Key,
}

/// What only the backend can answer about the call's process and fd.
pub trait Backend {
    /// Nanoseconds since this process started (its exec, or its fork). Asked at most once per
    /// call, and only when a rule with a `window` was drawn to fire.
    fn since_start_ns(&mut self) -> u64;
    /// Counts one injection of rule `rule` against its `times` in this process; false when
    /// `times` were used up already.
    fn take_one_of_times(&mut self, rule: usize, times: u64) -> bool;
    /// Whether the process can write its log: a fault is never injected without its line.
    fn can_log(&mut self) -> bool;
    /// What `fault` becomes on this call, or the realism rule that says Linux could not have
    /// produced it here.
    fn realise(&mut self, fault: &Fault, ctx: RuleContext, param: u64) -> Result<Action, NotHere>;
    /// Adds the outcome of a draw that said "fire" to the run's counts.
    fn tally(&mut self, rule: usize, outcome: Result<(), Reason>);
    /// Whether the backend can carry `fault` out at all (seccomp cannot reach inside the
    /// process for some). A fault it cannot is skipped before any draw, uncounted.
    fn carries_out(&self, _fault: &Fault) -> bool {
        true
    }
    /// Whether `rule` covers this call, for calls whose target the fd table cannot tell (a name
    /// lookup, an open): skipped before any draw when it does not.
    fn covers(&self, _rule: &Rule) -> bool {
        true
    }
}

/// The exact injection at this place if the policy has one that Linux could produce here, else
/// the first rule among `candidates` (a rule mask, lowest index first) whose draw fires and that
/// survives its window, the realism model, the log and its `times`. Every draw that said "fire"
/// is tallied with its outcome.
pub fn select(
    policy: &Policy,
    gates: &[Gate],
    at: &Position,
    candidates: u32,
    backend: &mut impl Backend,
) -> Option<Choice> {
    if let Some(choice) = injected(policy, at, backend) {
        return Some(choice);
    }
    let mut now = None;
    let mut bits = candidates;
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let (Some(rule), Some(gate)) = (policy.rules.get(i), gates.get(i)) else {
            continue;
        };
        if !backend.carries_out(&rule.fault) || !backend.covers(rule) {
            continue;
        }
        let (chance, fire) = gate.draws(at.base, at.conn, i as u16, &at.site);
        if !gate.may_fire(at.n, at.requested, fire) {
            continue;
        }
        // Drawn to fire: from here on every way out is counted.
        if let Some((from, to)) = rule.window {
            let t = *now.get_or_insert_with(|| backend.since_start_ns());
            if !(from..to).contains(&t) {
                backend.tally(i, Err(Reason::OutsideWindow));
                continue;
            }
        }
        let action = match backend.realise(&rule.fault, rule.context(), param_at(chance)) {
            Ok(action) => action,
            Err(not_here) => {
                backend.tally(i, Err(Reason::Realism(not_here)));
                continue;
            }
        };
        // Before `times`: a fault withheld for want of a log did not happen, so it uses none.
        if !backend.can_log() {
            backend.tally(i, Err(Reason::LogUnwritable));
            return None;
        }
        if let Some(times) = rule.times
            && !backend.take_one_of_times(i, times)
        {
            backend.tally(i, Err(Reason::TimesUsedUp));
            continue;
        }
        backend.tally(i, Ok(()));
        return Some(Choice {
            action,
            source: Source::Rule(i),
            key: at.key(i as u16),
        });
    }
    None
}

/// The exact injection at this key: no draw, it always fires where the kernel could produce it
/// and the process can log it; where not, it is simply not there (and the rules are tried).
fn injected(policy: &Policy, at: &Position, backend: &mut impl Backend) -> Option<Choice> {
    if policy.injections.is_empty() {
        return None;
    }
    let (i, inj) = policy.injections.at(at.process, at.conn, at.site)?;
    if !backend.carries_out(&inj.fault) {
        return None;
    }
    let action = backend
        .realise(&inj.fault, RuleContext::default(), 0)
        .ok()?;
    if !backend.can_log() {
        return None;
    }
    Some(Choice {
        action,
        source: Source::Injection(i),
        key: at.key(INJECTED),
    })
}
