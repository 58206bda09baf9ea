//! A rule's cheap preconditions, copied out of the policy once per process so that the hot path's
//! early exit and the full selection read the same small array and cannot disagree.

use crate::chance::{PER_CONNECTION_WORDS, chance_at, chance_of_words};
use crate::key::Site;
use crate::policy::Rule;

/// What a rule's draw depends on besides the key: counts, size and probability.
#[derive(Clone, Copy, Debug)]
pub struct Gate {
    pub threshold: u64,
    pub after: u64,
    pub every: u64,
    pub min_bytes: u64,
    /// `per = "connection"`: the draw ignores the site.
    pub per_connection: bool,
    /// What the site's words are masked with for the draw: all ones, or none for a
    /// `per = "connection"` rule (`PER_CONNECTION_WORDS` are zeros). A mask, not a branch,
    /// on the hot path.
    site_mask: u64,
}

impl Gate {
    pub fn of(rule: &Rule) -> Gate {
        Gate {
            threshold: rule.threshold(),
            after: rule.after,
            every: rule.every,
            min_bytes: rule.min_bytes,
            per_connection: rule.per_connection,
            site_mask: if rule.per_connection { 0 } else { u64::MAX },
        }
    }

    /// Every rule's gate, in rule order.
    pub fn all(rules: &[Rule]) -> Vec<Gate> {
        rules.iter().map(Gate::of).collect()
    }

    /// The site words this rule draws with: the call's, or the connection's alone.
    #[inline(always)]
    pub fn words(&self, [kind, pos, attempt]: [u64; 3]) -> [u64; 3] {
        const _: () = assert!(
            PER_CONNECTION_WORDS[0] == 0
                && PER_CONNECTION_WORDS[1] == 0
                && PER_CONNECTION_WORDS[2] == 0
        );
        let m = self.site_mask;
        [kind & m, pos & m, attempt & m]
    }

    /// Whether the rule may fire on the n-th call of its connection asking for `requested` bytes,
    /// given the key's chance. (`window` and `times` are the selection's, which asks for them only
    /// once this said yes.)
    #[inline(always)]
    pub fn may_fire(&self, n: u64, requested: usize, chance: u64) -> bool {
        Rule::fires(self.threshold, chance) && self.counts_allow(n, requested)
    }

    #[inline(always)]
    fn counts_allow(&self, n: u64, requested: usize) -> bool {
        // `every` is almost always 1: skip the division (tens of cycles) on the hot path.
        n >= self.after
            && (self.every <= 1 || (n - self.after) % self.every == 0)
            && requested as u64 >= self.min_bytes
    }

    /// Rule `rule`'s two numbers at this site: the chance its parameter (a short length, a delay)
    /// is drawn from, per call, and the chance that decides whether it fires, which a
    /// `per = "connection"` rule draws once per connection.
    #[inline(always)]
    pub fn draws(&self, base: u64, conn: u64, rule: u16, site: &Site) -> (u64, u64) {
        let chance = chance_at(base, conn, rule, site);
        let fire = if self.per_connection {
            chance_of_words(base ^ conn, rule, PER_CONNECTION_WORDS)
        } else {
            chance
        };
        (chance, fire)
    }
}

/// The rules (bit i: rule i) whose draw can ever say fire: every rule but those at probability 0.
/// The shim's early exit leaves the others out before it hashes anything: their draw would
/// always say no. Their calls are counted all the same (the counting comes first), so keys,
/// `times` and the refusal counts are what they would be with the draw.
pub fn drawable(gates: &[Gate]) -> u32 {
    gates
        .iter()
        .take(32)
        .enumerate()
        .filter(|(_, g)| g.threshold != 0)
        .fold(0, |m, (i, _)| m | 1 << i)
}

/// Whether any rule among `candidates` has counts, size and chance that let it fire on the n-th
/// call of a connection (`base_conn`: the process's key base xor the connection's key) at a site
/// (its `words`) asking for `requested` bytes: the preload shim's early exit, before anything is
/// gathered. Nearly always false.
#[inline(always)]
pub fn any_may_fire(
    gates: &[Gate],
    base_conn: u64,
    words: [u64; 3],
    n: u64,
    requested: usize,
    candidates: u32,
) -> bool {
    let mut bits = candidates;
    while bits != 0 {
        let i = bits.trailing_zeros();
        bits &= bits - 1;
        if let Some(gate) = gates.get(i as usize)
            && gate.may_fire(
                n,
                requested,
                chance_of_words(base_conn, i as u16, gate.words(words)),
            )
        {
            return true;
        }
    }
    false
}
