//! Calls so far per name, for decision keys of calls with no fd: lookups per host name, opens per
//! path. A fixed open-addressing table of atomics (no allocation, no lock); a full table shares its
//! last slot, which keeps keys deterministic, only coarser.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

const SLOTS: usize = 256;

pub struct NameCounts([(AtomicU64, AtomicU64); SLOTS]);

impl NameCounts {
    pub const fn new() -> NameCounts {
        NameCounts([const { (AtomicU64::new(0), AtomicU64::new(0)) }; SLOTS])
    }

    /// How many calls `key` (never 0: 0 marks a free slot) had before this one, counting this one.
    pub fn next(&self, key: u64) -> u64 {
        let mut i = key as usize % SLOTS;
        for _ in 0..SLOTS {
            let (k, count) = &self.0[i];
            match k.compare_exchange(0, key, Relaxed, Relaxed) {
                Ok(_) => return count.fetch_add(1, Relaxed),
                Err(found) if found == key => return count.fetch_add(1, Relaxed),
                Err(_) => i = (i + 1) % SLOTS,
            }
        }
        self.0[SLOTS - 1].1.fetch_add(1, Relaxed)
    }
}
