//! Processes of the run that could not write the event log (they dropped privileges before they
//! ever opened it, exec'd as a user the log does not admit, chrooted...). Such a process withholds
//! every fault it would have injected, since a fault without its line is a lie in the run's
//! account; it records here, where chaos-ctl reads it after the run, who it was, why it could not
//! log, and how many faults it withheld, so that the summary can name it.
//!
//! A small fixed table of plain atomics: an entry is claimed by a compare-exchange on its pid
//! word, so any number of processes record at once without a lock. Withheld faults of processes
//! that found the table full are counted in one overflow word.

use super::{NAME_BYTES, Page, W_UNLOGGED, W_UNLOGGED_OVERFLOW, read_bytes, write_bytes};
use core::sync::atomic::Ordering::{Relaxed, SeqCst};

/// Processes the table can name.
pub const MAX_UNLOGGED: usize = 8;
/// pid, errno, withheld faults, then the process's name (16 bytes, as in /proc/PID/comm).
pub(super) const ENTRY_WORDS: usize = 5;
const NAME_WORDS: usize = 2;

/// What a process could not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// The log: it withholds every fault it would inject.
    Log,
    /// The run's policy (exec'd as a user the run's files do not admit): it runs without chaos.
    Policy,
}

/// Marks `Unreadable::Policy` in an entry's errno word.
const POLICY_BIT: u64 = 1 << 32;

/// One process that could not write the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unlogged {
    pub pid: u32,
    pub what: Unreadable,
    /// Why it could not be opened (an errno number).
    pub errno: i32,
    /// Faults it would have injected and did not.
    pub withheld: u64,
    pub name: String,
}

/// The line that names a process exec'd as a user the run's files do not admit: chaos-ctl's
/// summary prints it from the page, and the shim prints it itself when the page is closed to it
/// too, so both say the same.
pub fn unreadable_policy_line(pid: i64, name: Option<&str>, errno: &str, tense: &str) -> String {
    let name = name.map_or(String::new(), |n| format!(" ({n})"));
    format!(
        "chaos: pid {pid}{name} could not read the run's policy ({errno}: it runs as a user the \
         run's files do not admit): it {tense} without chaos\n"
    )
}

impl Page<'_> {
    fn unlogged_entry(&self, i: usize) -> &[core::sync::atomic::AtomicU64] {
        &self.words[W_UNLOGGED + i * ENTRY_WORDS..][..ENTRY_WORDS]
    }

    /// Records that process `pid` (named `name`) cannot open `what` for `errno`, and has
    /// withheld `withheld` more faults (0 when it only says so, at its start). No allocation, no
    /// lock: callable from any hook.
    pub fn note_unlogged(
        &self,
        pid: u32,
        what: Unreadable,
        errno: i32,
        name: &[u8],
        withheld: u64,
    ) {
        let pid = u64::from(pid);
        for i in 0..MAX_UNLOGGED {
            let e = self.unlogged_entry(i);
            let mut owner = e[0].load(SeqCst);
            if owner == 0 {
                owner = match e[0].compare_exchange(0, pid, SeqCst, SeqCst) {
                    Ok(_) => {
                        write_bytes(&e[3..3 + NAME_WORDS], name);
                        pid
                    }
                    Err(theirs) => theirs,
                };
            }
            if owner == pid {
                let flag = if what == Unreadable::Policy {
                    POLICY_BIT
                } else {
                    0
                };
                e[1].store(errno as u32 as u64 | flag, Relaxed);
                e[2].fetch_add(withheld, Relaxed);
                return;
            }
        }
        self.words[W_UNLOGGED_OVERFLOW].fetch_add(withheld, Relaxed);
    }

    /// The processes that could not write the log, and how many withheld faults the table had no
    /// room to attribute.
    pub fn unlogged(&self) -> (Vec<Unlogged>, u64) {
        let mut found = Vec::new();
        for i in 0..MAX_UNLOGGED {
            let e = self.unlogged_entry(i);
            let pid = e[0].load(SeqCst);
            if pid == 0 {
                continue;
            }
            let mut buf = [0u8; NAME_BYTES];
            let n = read_bytes(&e[3..3 + NAME_WORDS], &mut buf[..NAME_WORDS * 8]);
            let why = e[1].load(Relaxed);
            found.push(Unlogged {
                pid: pid as u32,
                what: if why & POLICY_BIT != 0 {
                    Unreadable::Policy
                } else {
                    Unreadable::Log
                },
                errno: why as u32 as i32,
                withheld: e[2].load(Relaxed),
                name: String::from_utf8_lossy(&buf[..n]).into_owned(),
            });
        }
        (found, self.words[W_UNLOGGED_OVERFLOW].load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PORTS, WORDS};
    use super::*;
    use core::sync::atomic::{AtomicU8, AtomicU64};

    const EACCES: i32 = 13;

    fn page_memory() -> (Vec<AtomicU64>, Vec<AtomicU8>) {
        (
            (0..WORDS).map(|_| AtomicU64::new(9)).collect(),
            (0..PORTS).map(|_| AtomicU8::new(0)).collect(),
        )
    }

    #[test]
    fn a_process_that_cannot_log_is_named_with_its_reason_and_its_withheld_faults() {
        let (w, p) = page_memory();
        let page = Page::over(&w, &p).unwrap();
        page.init(&[], &[], 0, "/tmp/x.jsonl");
        assert_eq!(page.unlogged(), (vec![], 0), "init clears the table");
        page.note_unlogged(4242, Unreadable::Log, EACCES, b"nginx", 1);
        page.note_unlogged(4242, Unreadable::Log, EACCES, b"nginx", 1);
        page.note_unlogged(77, Unreadable::Policy, 2, b"a-name-longer-than-fifteen", 0);
        let (found, overflow) = page.unlogged();
        assert_eq!(overflow, 0);
        assert_eq!(
            found,
            vec![
                Unlogged {
                    pid: 4242,
                    what: Unreadable::Log,
                    errno: 13,
                    withheld: 2,
                    name: "nginx".into()
                },
                Unlogged {
                    pid: 77,
                    what: Unreadable::Policy,
                    errno: 2,
                    withheld: 0,
                    name: "a-name-longer-t".into()
                },
            ]
        );
    }

    #[test]
    fn withheld_faults_beyond_the_table_are_counted_not_lost() {
        let (w, p) = page_memory();
        let page = Page::over(&w, &p).unwrap();
        page.init(&[], &[], 0, "");
        for pid in 1..=MAX_UNLOGGED as u32 + 2 {
            page.note_unlogged(pid, Unreadable::Log, 13, b"w", 3);
        }
        let (found, overflow) = page.unlogged();
        assert_eq!(found.len(), MAX_UNLOGGED);
        assert!(found.iter().all(|u| u.withheld == 3));
        assert_eq!(overflow, 6);
    }
}
