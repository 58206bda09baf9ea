//! Lineage across exec: the process key a forked child of a system's process had, kept for the
//! program it execs. An exec discards everything of the shim's but the environment (which the
//! program sees) and the fds (which it sees too), so the key crosses it here: the fork child
//! leaves `(pid, ppid) → key`, the exec'd program's constructor takes it and derives its own key
//! from it. Without it every child a workload shell execs with the same executable would have
//! the same key, and so the same faults.
//!
//! A fixed table of plain atomics indexed by pid: the writer is a fork child (async-signal-safe:
//! stores only), the reader the exec'd program's constructor. An entry is the tag
//! `pid << 32 | ppid` and the key. The ppid guards against a reused pid: an entry left by a child
//! that never exec'd is taken only by a process with the same pid *and* the same parent. Two
//! live children whose pids share a slot (SLOTS apart) overwrite one another; the loser derives
//! its key as if it had no lineage, as a program exec'd without a fork does.

use super::{Page, W_LINEAGE};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// Entries in the table (a power of two; pids are spread by `pid % SLOTS`).
pub const SLOTS: usize = 1024;
pub(super) const ENTRY_WORDS: usize = 2;

fn tag(pid: u32, ppid: u32) -> u64 {
    (u64::from(pid) << 32) | u64::from(ppid)
}

impl Page<'_> {
    fn lineage_entry(&self, pid: u32) -> &[core::sync::atomic::AtomicU64] {
        let slot = pid as usize % SLOTS;
        &self.words[W_LINEAGE + slot * ENTRY_WORDS..][..ENTRY_WORDS]
    }

    /// Leaves `key` for the program process `pid` (child of `ppid`) may exec. Stores only: a
    /// fork child calls it from the atfork handler.
    pub fn leave_lineage(&self, pid: u32, ppid: u32, key: u64) {
        let e = self.lineage_entry(pid);
        // The tag is cleared first and set last, so a reader never pairs it with another's key.
        e[0].store(0, Relaxed);
        e[1].store(key, Relaxed);
        e[0].store(tag(pid, ppid), Release);
    }

    /// Whether a key waits for process `pid` (child of `ppid`). Loads only.
    pub fn has_lineage(&self, pid: u32, ppid: u32) -> bool {
        pid != 0 && self.lineage_entry(pid)[0].load(Acquire) == tag(pid, ppid)
    }

    /// The key left for process `pid` (child of `ppid`), taken out of the table: a later exec of
    /// the same process (with no fork in between) finds none.
    pub fn take_lineage(&self, pid: u32, ppid: u32) -> Option<u64> {
        let e = self.lineage_entry(pid);
        let t = tag(pid, ppid);
        if pid == 0 || e[0].load(Acquire) != t {
            return None;
        }
        let key = e[1].load(Relaxed);
        // Still ours after the key was read: nobody overwrote the entry in between.
        e[0].compare_exchange(t, 0, Acquire, Relaxed).ok()?;
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PORTS, Page, WORDS};
    use super::SLOTS;
    use core::sync::atomic::{AtomicU8, AtomicU64};

    fn memory() -> (Vec<AtomicU64>, Vec<AtomicU8>) {
        (
            (0..WORDS).map(|_| AtomicU64::new(0)).collect(),
            (0..PORTS).map(|_| AtomicU8::new(0)).collect(),
        )
    }

    #[test]
    fn a_key_left_by_a_fork_child_is_taken_once_by_its_exec() {
        let (w, p) = memory();
        let page = Page::over(&w, &p).unwrap();
        page.leave_lineage(4242, 17, 0xfeed);
        assert!(page.has_lineage(4242, 17));
        assert_eq!(page.take_lineage(4242, 17), Some(0xfeed));
        assert!(!page.has_lineage(4242, 17));
        assert_eq!(
            page.take_lineage(4242, 17),
            None,
            "a second exec has no fork before it"
        );
    }

    #[test]
    fn a_reused_pid_with_another_parent_finds_nothing() {
        let (w, p) = memory();
        let page = Page::over(&w, &p).unwrap();
        page.leave_lineage(4242, 17, 0xfeed);
        assert_eq!(page.take_lineage(4242, 1), None);
        assert_eq!(page.take_lineage(4242 + SLOTS as u32, 17), None);
        assert_eq!(
            page.take_lineage(4242, 17),
            Some(0xfeed),
            "still there for its own"
        );
    }

    #[test]
    fn children_in_different_slots_keep_their_own_keys() {
        let (w, p) = memory();
        let page = Page::over(&w, &p).unwrap();
        for pid in 100..100 + SLOTS as u32 {
            page.leave_lineage(pid, 7, u64::from(pid) * 3);
        }
        for pid in 100..100 + SLOTS as u32 {
            assert_eq!(page.take_lineage(pid, 7), Some(u64::from(pid) * 3));
        }
    }
}
