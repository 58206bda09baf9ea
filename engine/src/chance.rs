//! The cheap half of a decision: whether a rule fires at a key.
//!
//! Every call on a targeted fd asks this of every rule that could act on it, and almost always
//! the answer is no, so it must cost a few dozen instructions: a murmur3-style mix of the key's
//! words, no PCG state. The part of the process and seed that never changes is folded once per
//! process (`key_base`). Only when a rule fires is the fault's parameter (short length, delay)
//! drawn, from a PCG stream seeded by the same key (`draw`).

use crate::key::{Key, Site};

/// murmur3's 64-bit finalizer: every input bit flips each output bit with probability ~1/2.
#[inline(always)]
pub fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// What a process's keys share: the seed and the process key, mixed once.
#[inline]
pub fn key_base(seed: u64, process: u64) -> u64 {
    fmix(fmix(seed ^ 0x9e37_79b9_7f4a_7c15) ^ process)
}

/// wyhash's multiply-fold: the 128-bit product of the two words, its halves xored. One `mul`.
#[inline(always)]
pub fn mum(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

const K0: u64 = 0xa076_1d64_78bd_642f;
const K1: u64 = 0xe703_7ed1_a0b4_28db;
const K2: u64 = 0x8ebc_6af0_9c88_c6e3;
const K3: u64 = 0x5899_65cc_7537_4cc3;

/// The uniform number a rule's threshold is compared with, at one key: three multiply-folds for
/// a first attempt at a position (nearly every call), four for a retry.
#[inline(always)]
pub fn chance_at(base: u64, conn: u64, rule: u16, site: &Site) -> u64 {
    chance_of_words(base ^ conn, rule, site.words())
}

/// The site words a `per = "connection"` rule draws with: the same for every call on the
/// connection, and unlike any real site's (`Site::words` starts at 1).
pub const PER_CONNECTION_WORDS: [u64; 3] = [0, 0, 0];

/// `chance_at` with the key's process and connection folded already (`base ^ conn`) and the site
/// as its three words: what the hot path has at hand.
#[inline(always)]
pub fn chance_of_words(base_conn: u64, rule: u16, [kind, pos, attempt]: [u64; 3]) -> u64 {
    let ids = mum(base_conn ^ K0, ((rule as u64) << 8 | kind) ^ K1);
    let h = mum(ids ^ K2, pos ^ K3);
    let h = if attempt == 0 {
        h
    } else {
        mum(h ^ K0, attempt ^ K1)
    };
    // A last fold with a constant evens out the high bits the threshold compares.
    mum(h ^ K2, K3)
}

/// The fault's parameter (short length, delay) once a rule fired: a PCG stream seeded by the
/// chance, which the key determines.
pub fn param_at(chance: u64) -> u64 {
    use rand_pcg::rand_core::Rng;
    let state = ((chance as u128) << 64) | fmix(chance ^ 0x2545_f491_4f6c_dd1d) as u128;
    rand_pcg::Pcg64::new(state, 0xa02b_dbf7_bb3c_0a7a).next_u64()
}

/// `chance_at` for a whole key.
pub fn chance(seed: u64, key: &Key) -> u64 {
    chance_at(key_base(seed, key.process), key.conn, key.rule, &key.site)
}

/// The numbers one decision uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draw {
    /// Compared with the rule's threshold (probability scaled to 2^64).
    pub chance: u64,
    /// For the fault's own parameter: short length, delay.
    pub param: u64,
}

pub fn draw(seed: u64, key: &Key) -> Draw {
    let chance = chance(seed, key);
    Draw {
        chance,
        param: param_at(chance),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Dir;

    fn at(pos: u64, attempt: u32) -> Site {
        Site::Stream {
            dir: Dir::Rx,
            pos,
            attempt,
        }
    }

    #[test]
    fn uniform_and_independent_between_neighbours() {
        let base = key_base(3, 42);
        let tenth = u64::MAX / 10;
        let hits: Vec<bool> = (0..100_000)
            .map(|p| chance_at(base, 7, 0, &at(p, 0)) < tenth)
            .collect();
        let n = hits.iter().filter(|h| **h).count();
        assert!((9_000..11_000).contains(&n), "{n}");
        // Two neighbouring offsets both below 10%: about 1% of pairs if independent.
        let both = hits.windows(2).filter(|w| w[0] && w[1]).count();
        assert!((700..1_300).contains(&both), "{both}");
    }

    /// Chi-square of the top 4 bits over 16 buckets, for a run of keys varying in one part.
    fn chi2(chances: impl Iterator<Item = u64>) -> f64 {
        let mut buckets = [0u32; 16];
        let mut n = 0;
        for c in chances {
            buckets[(c >> 60) as usize] += 1;
            n += 1;
        }
        let e = n as f64 / 16.0;
        buckets.iter().map(|b| (*b as f64 - e).powi(2) / e).sum()
    }

    #[test]
    fn uniform_whichever_part_of_the_key_varies() {
        // 15 degrees of freedom: chi-square above 40 happens by chance about once in 2,000.
        let base = key_base(11, 12);
        let by_pos = chi2((0..64_000).map(|p| chance_at(base, 5, 0, &at(p, 0))));
        let by_attempt = chi2((0..64_000).map(|a| chance_at(base, 5, 0, &at(100, a))));
        let by_rule =
            chi2((0..64_000u64).map(|r| chance_at(base, 5, (r % 32) as u16, &at(r / 32, 0))));
        let by_conn = chi2((0..64_000).map(|c| chance_at(base, c, 0, &at(0, 0))));
        let by_process = chi2((0..64_000).map(|p| chance_at(key_base(11, p), 5, 0, &at(0, 0))));
        for (what, x) in [
            ("pos", by_pos),
            ("attempt", by_attempt),
            ("rule", by_rule),
            ("conn", by_conn),
            ("process", by_process),
        ] {
            assert!(x < 40.0, "{what}: chi2 {x}");
        }
    }

    #[test]
    fn every_part_of_the_key_matters() {
        let base = key_base(1, 2);
        let c = chance_at(base, 3, 0, &at(10, 0));
        assert_eq!(c, chance_at(base, 3, 0, &at(10, 0)));
        assert_ne!(c, chance_at(key_base(9, 2), 3, 0, &at(10, 0)));
        assert_ne!(c, chance_at(key_base(1, 9), 3, 0, &at(10, 0)));
        assert_ne!(c, chance_at(base, 4, 0, &at(10, 0)));
        assert_ne!(c, chance_at(base, 3, 1, &at(10, 0)));
        assert_ne!(c, chance_at(base, 3, 0, &at(11, 0)));
        assert_ne!(c, chance_at(base, 3, 0, &at(10, 1)));
        let tx = Site::Stream {
            dir: Dir::Tx,
            pos: 10,
            attempt: 0,
        };
        assert_ne!(c, chance_at(base, 3, 0, &tx));
    }

    #[test]
    fn retried_attempts_draw_afresh() {
        // A retried EINTR at the same offset must not get the same answer forever.
        let base = key_base(5, 5);
        let fired = (0..1000)
            .filter(|a| chance_at(base, 1, 0, &at(0, *a)) < u64::MAX / 2)
            .count();
        assert!((400..600).contains(&fired), "{fired}");
    }

    use crate::key::tests::key;

    #[test]
    fn same_key_same_draw_and_neighbours_differ() {
        assert_eq!(draw(7, &key(10)), draw(7, &key(10)));
        assert_ne!(draw(7, &key(10)), draw(7, &key(11)));
        assert_ne!(draw(7, &key(10)), draw(8, &key(10)));
    }

    #[test]
    fn draws_are_roughly_uniform() {
        let hits = (0..100_000)
            .filter(|p| draw(3, &key(*p)).chance < u64::MAX / 10)
            .count();
        assert!((9_000..11_000).contains(&hits), "{hits}");
    }
}
