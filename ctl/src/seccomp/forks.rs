//! A forked child's key under seccomp: the shim's `of_fork(parent, n)`, where n is the parent's
//! fork count at the fork. The supervisor is not told of forks (a notified clone that a signal
//! interrupts would fail with EINTR, which a fork never does), so it counts them from what the
//! kernel lists: a task's `children` file names its live and unreaped children in the order
//! they were created.
//!
//! Exact while the parent's earlier children are still listed or were seen before they went;
//! a child that was created, reaped and never seen (it made no call the filter notifies) before
//! the next one was seen is not counted, and later siblings' keys shift by one.

use std::collections::HashMap;

/// What the supervisor remembers of one process's forks.
#[derive(Default)]
pub struct Forks {
    /// The fork count this process inherited: a forked child continues its parent's count, as
    /// the shim's counter is copied into the child (0 for a freshly exec'd program).
    pub inherited: u64,
    /// Children already given an ordinal.
    pub seen: HashMap<i32, u64>,
}

impl Forks {
    pub fn new(inherited: u64) -> Forks {
        Forks {
            inherited,
            seen: HashMap::new(),
        }
    }

    /// The ordinal of `child`, given the parent's children as the kernel lists them now (in
    /// creation order), and remembers it.
    pub fn ordinal_of(&mut self, child: i32, listed: &[i32]) -> u64 {
        if let Some(n) = self.seen.get(&child) {
            return *n;
        }
        let n = self.ordinal(child, listed);
        self.seen.insert(child, n);
        n
    }

    fn ordinal(&self, child: i32, listed: &[i32]) -> u64 {
        let Some(pos) = listed.iter().position(|p| *p == child) else {
            // Not listed (already reaped, or forked by a thread we did not read): after all
            // the others.
            return self.inherited + self.seen.len() as u64 + 1;
        };
        // The nearest earlier sibling with an ordinal anchors the count.
        if let Some((j, n)) = listed[..pos]
            .iter()
            .enumerate()
            .rev()
            .find_map(|(j, p)| self.seen.get(p).map(|n| (j, *n)))
        {
            return n + (pos - j) as u64;
        }
        // None: every child seen and no longer listed came before it.
        let gone = self.seen.keys().filter(|p| !listed.contains(p)).count() as u64;
        self.inherited + gone + pos as u64 + 1
    }
}

/// The children of process `pid` (all its threads'), in creation order per thread.
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        let path = task.path().join("children");
        if let Ok(text) = std::fs::read_to_string(path) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_numbered_in_creation_order_whatever_order_they_are_seen_in() {
        let mut f = Forks::new(0);
        assert_eq!(f.ordinal_of(12, &[10, 11, 12]), 3);
        assert_eq!(f.ordinal_of(10, &[10, 11, 12]), 1);
        assert_eq!(f.ordinal_of(11, &[10, 11, 12]), 2);
        assert_eq!(f.ordinal_of(12, &[]), 3, "an ordinal is kept");
    }

    #[test]
    fn reaped_children_seen_before_still_count() {
        let mut f = Forks::new(0);
        assert_eq!(f.ordinal_of(10, &[10]), 1);
        assert_eq!(f.ordinal_of(11, &[10, 11]), 2);
        // 10 and 11 reaped; 12 and 13 forked since.
        assert_eq!(f.ordinal_of(13, &[12, 13]), 4);
        assert_eq!(f.ordinal_of(12, &[12, 13]), 3);
    }

    #[test]
    fn a_forked_child_continues_its_parents_count() {
        let mut f = Forks::new(2);
        assert_eq!(f.ordinal_of(20, &[20]), 3);
    }
}
