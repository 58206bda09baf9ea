//! The validated policy model both backends execute: the preload shim and chaos-ctl's seccomp
//! supervisor read the same `Policy`, so a policy means the same whichever runs it. Built by
//! `parse`, never by hand.

use crate::addr::{AddrPattern, Endpoint};
use crate::fault::Fault;
use crate::glob::Glob;
use crate::kind::{FdKind, KindSet};
use crate::op::{Op, OpSet};

/// The shim's resolver hook takes it from here (the hash itself lives in `hash`).
pub use crate::hash::fnv1a;

/// Rule masks are 32-bit in the shim's fd table.
pub const MAX_RULES: usize = 32;

#[derive(Clone, Debug)]
pub struct Policy {
    pub seed: u64,
    pub rules: Vec<Rule>,
    /// Where it came from: a file path or `profile:NAME`, for messages and the `start` event.
    pub origin: String,
    /// FNV-1a of the policy text, so a log names exactly the policy that produced it.
    pub digest: u64,
    /// Platform quirks in effect (`platform`, `quirks`, `no_quirks`).
    pub quirks: crate::quirk::QuirkSet,
    /// How often race-type quirks fire when their state occurs (default 1.0).
    pub quirk_probability: f64,
    /// Exact faults at decision keys (`[[inject]]`, what `chaos-ctl freeze` writes).
    pub injections: crate::inject::Injections,
    /// As written, for `validate`'s notes and summary: `platform`, `quirks` and `no_quirks`.
    pub platform: Option<String>,
    pub quirks_on: Vec<String>,
    pub quirks_off: Vec<String>,
    /// `[[process]]`, `[attrition]`, `[[nemesis]]`: what chaos-ctl starts and hits.
    pub system: crate::system::System,
    /// `[[disk]]`: capacities that files under a glob share.
    pub disks: Vec<crate::disk::Disk>,
    /// `[durability]`: files that lose their unsynced changes when a process crashes.
    pub durability: Option<crate::durability::Durability>,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub ops: OpSet,
    /// Ops of the rule's groups (`on = "writes"`) the fault cannot act on, left out of `ops`
    /// (`validate` notes them): `drop` on `sendmmsg`, a toxic on the mmsg calls...
    pub left_out: OpSet,
    pub kinds: KindSet,
    pub peer: Option<AddrPattern>,
    pub local: Option<AddrPattern>,
    pub path: Option<Glob>,
    pub probability: f64,
    pub after: u64,
    pub every: u64,
    pub times: Option<u64>,
    /// Nanoseconds since process start, `[start, end)`.
    pub window: Option<(u64, u64)>,
    pub fault: Fault,
    /// `signal = "SIGUSR1"`: a signal whose handler the user vouches for, so EINTR (and a blocking
    /// write cut short) may be blamed on it as on the harmless ones.
    pub signal: Option<i32>,
    /// `min_bytes = 65536`: only calls asking for at least this many bytes (big transfers, which
    /// the kernel splits far more often than small ones).
    pub min_bytes: u64,
    /// `process = "kv#1"` (a glob over `CHAOS_PROCESS`): only in those processes of a system.
    pub process: Option<Glob>,
    /// `per = "connection"` (Toxiproxy's toxicity): the probability is drawn once per connection,
    /// and a connection that drew "fire" gets the fault on every matching call; `per = "call"`
    /// (the default) draws for each call.
    pub per_connection: bool,
    /// `host = "*.internal"`: `resolve` rules only, the name being looked up (for getnameinfo, the
    /// numeric address).
    pub host: Option<Glob>,
    /// `enabled = false`: the rule starts switched off, for `chaos-ctl control enable` (or the
    /// HTTP endpoint) to switch on while the run lives. Its calls are counted either way, so
    /// switching it never shifts a decision key.
    pub enabled: bool,
}

/// What the shim knows about an fd when it decides which rules can ever apply to it.
#[derive(Clone, Copy, Debug)]
pub struct FdFacts<'a> {
    pub kind: FdKind,
    pub peer: Endpoint<'a>,
    pub local: Endpoint<'a>,
    pub path: Option<&'a [u8]>,
}

impl Rule {
    /// Whether this rule's target (kind, addresses, path) covers the fd. Ops, counts and chance are
    /// decided per call.
    pub fn targets(&self, fd: &FdFacts) -> bool {
        self.kinds.contains(fd.kind)
            && self.peer.as_ref().is_none_or(|p| p.matches(&fd.peer))
            && self.local.as_ref().is_none_or(|p| p.matches(&fd.local))
            && self
                .path
                .as_ref()
                .is_none_or(|g| fd.path.is_some_and(|p| g.matches(p)))
    }

    /// The probability as a 64-bit threshold for `Draw::chance`.
    pub fn threshold(&self) -> u64 {
        if self.probability >= 1.0 {
            u64::MAX
        } else {
            (self.probability * 18_446_744_073_709_551_616.0) as u64
        }
    }

    /// Whether a draw of `chance` fires this rule: probability 1.0 always does, even at the one
    /// chance (u64::MAX) that the 2^64-scaled threshold cannot exceed.
    #[inline(always)]
    pub fn fires(threshold: u64, chance: u64) -> bool {
        chance < threshold || threshold == u64::MAX
    }

    /// What the realism model needs from the rule besides its fault.
    pub fn context(&self) -> crate::realise::RuleContext {
        crate::realise::RuleContext {
            signal: self.signal,
        }
    }

    /// `after`/`every` on the n-th (0-based) matching call of a connection.
    pub fn counts_allow(&self, n: u64) -> bool {
        // `every` is almost always 1: skip the division (tens of cycles) on the hot path.
        n >= self.after && (self.every <= 1 || (n - self.after) % self.every == 0)
    }
}

impl Policy {
    /// Narrows the rules to the ones that apply in the process `name` of a system (its
    /// `CHAOS_PROCESS`: `kv#1`, `workload`; None outside a system), in its `life`-th start (0 the
    /// first). A rule some `[[process]]` lists under `rules` applies only to the processes that list
    /// it, one with `process = GLOB` only where the glob matches, and a process fault (crash,
    /// terminate, pause) only in a process's first life — in every life it would never stay up. The
    /// others keep their place (rule indices are part of decision keys) with no ops, so they never
    /// fire.
    pub fn scope_to_process(&mut self, name: Option<&str>, life: u32) {
        let listing: Vec<&crate::system::ProcessSpec> = self.system.processes.iter().collect();
        let base = name.map(crate::system::base_name);
        let keep: Vec<bool> = self
            .rules
            .iter()
            .map(|r| {
                let listed_by: Vec<&str> = listing
                    .iter()
                    .filter(|p| p.rules.contains(&r.name))
                    .map(|p| p.name.as_str())
                    .collect();
                let by_list = listed_by.is_empty() || base.is_some_and(|b| listed_by.contains(&b));
                let by_glob = r
                    .process
                    .as_ref()
                    .is_none_or(|g| name.is_some_and(|n| g.matches(n.as_bytes())));
                let by_life = life == 0 || !r.fault.is_process_fault();
                by_list && by_glob && by_life
            })
            .collect();
        for (rule, keep) in self.rules.iter_mut().zip(keep) {
            if !keep {
                rule.ops = OpSet::default();
            }
        }
    }

    /// Bitmask of rules whose target covers this fd.
    pub fn mask_for(&self, fd: &FdFacts) -> u32 {
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.targets(fd))
            .fold(0, |m, (i, _)| m | (1 << i))
    }

    /// The rules enabled when a run starts (bit i: rule i).
    pub fn initially_enabled(&self) -> u64 {
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.enabled)
            .fold(0, |m, (i, _)| m | (1 << i))
    }

    /// The index of the rule called `name`.
    pub fn rule_index(&self, name: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.name == name)
    }

    /// Bitmask of rules that act on `op`.
    pub fn mask_for_op(&self, op: Op) -> u32 {
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.ops.contains(op))
            .fold(0, |m, (i, _)| m | (1 << i))
    }
}
