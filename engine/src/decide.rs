//! Counter-based decisions: a pure function of (seed, rule, process, connection, position).
//!
//! There is no shared random stream, so however threads interleave, the same key always draws the same
//! numbers. The key parts are mixed with splitmix64 into a 128-bit PCG state (rand_pcg), from which
//! the probability draw and the fault's parameters (short length, delay) are taken.

use crate::op::OpClass;
use core::fmt;
use rand_pcg::Pcg64;
use rand_pcg::rand_core::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    Rx,
    Tx,
}

/// Where on a connection a decision is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Site {
    /// Data calls on byte streams: the offset reached in that direction and how many calls were
    /// already made at that offset (so a retried EINTR gets a fresh draw).
    Stream { dir: Dir, pos: u64, attempt: u32 },
    /// Everything else (and datagrams): the n-th call of that class on the connection.
    Call { class: OpClass, n: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub process: u64,
    pub conn: u64,
    pub rule: u16,
    pub site: Site,
}

/// The numbers one decision uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draw {
    /// Compared with the rule's threshold (probability scaled to 2^64).
    pub chance: u64,
    /// For the fault's own parameter: short length, delay.
    pub param: u64,
}

pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Folds values into one well-mixed u64.
pub fn mix(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x243f_6a88_85a3_08d3, |h, p| splitmix(h ^ p))
}

impl Site {
    /// The site as three numbers, for hashing and ordering.
    pub fn words(&self) -> [u64; 3] {
        match *self {
            Site::Stream { dir, pos, attempt } => [1 + dir as u64, pos, attempt as u64],
            Site::Call { class, n } => [16 + class as u64, n, 0],
        }
    }
}

/// The `rule` of a key whose fault came from an exact injection, not a rule's draw.
pub const INJECTED: u16 = u16::MAX;

pub fn draw(seed: u64, key: &Key) -> Draw {
    let [s0, s1, s2] = key.site.words();
    let hi = mix(&[seed, key.process, key.conn, key.rule as u64]);
    let lo = mix(&[hi, s0, s1, s2]);
    let mut rng = Pcg64::new(((hi as u128) << 64) | lo as u128, 0xa02b_dbf7_bb3c_0a7a);
    Draw {
        chance: rng.next_u64(),
        param: rng.next_u64(),
    }
}

/// The key as it appears in the event log, e.g. `9f..-3a../r0/rx@4096#1` or `.../r2/connect#0`.
/// `replay` and `freeze` match faults by this string.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:016x}-{:016x}/", self.process, self.conn)?;
        if self.rule == INJECTED {
            f.write_str("inject/")?;
        } else {
            write!(f, "r{}/", self.rule)?;
        }
        match self.site {
            Site::Stream { dir, pos, attempt } => {
                let d = if dir == Dir::Rx { "rx" } else { "tx" };
                write!(f, "{d}@{pos}#{attempt}")
            }
            Site::Call { class, n } => write!(f, "{}#{n}", class.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pos: u64) -> Key {
        Key {
            process: 1,
            conn: 2,
            rule: 0,
            site: Site::Stream {
                dir: Dir::Rx,
                pos,
                attempt: 0,
            },
        }
    }

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

    #[test]
    fn key_text_is_stable() {
        assert_eq!(
            key(4096).to_string(),
            "0000000000000001-0000000000000002/r0/rx@4096#0"
        );
    }
}
