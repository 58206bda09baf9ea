//! What a supervisor holds for one launched program: its target, its log, the processes it
//! follows and the execs it let run. The notification loop (`supervisor`) and the handlers
//! (`calls`, `partition`) share it; the loop owns it.

use super::events::Log;
use super::target::{Proc, Target};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::time::Instant;

pub struct Supervisor {
    pub listener: std::sync::Arc<OwnedFd>,
    pub target: Target,
    pub log: Log,
    pub procs: HashMap<i32, Proc>,
    /// Thread id to process id.
    pub(super) tgids: HashMap<i32, i32>,
    /// Processes whose exec we let run and that have made no call since: if one exits without
    /// making any, its `start` line is written from what its exec asked for.
    pub(super) pending: HashMap<i32, Exec>,
    /// Bumped whenever `procs` or `pending` gains or loses a process (the poll set follows).
    pub(super) generation: usize,
    pub(super) counts: Counts,
    /// explore's census, when it is on.
    pub census: Option<super::census::Census>,
}

/// An exec we let run: the program and arguments it asked for.
pub(super) struct Exec {
    pub(super) pidfd: OwnedFd,
    pub(super) exe: String,
    pub(super) cmdline: Vec<u8>,
    /// Its parent and cwd at the exec: by the time it is logged it may be reaped.
    pub(super) lineage: (i32, Option<String>),
    /// When the exec was let run: the new program's start, for `window`.
    pub(super) at: Instant,
}

/// How many calls of each kind the filter handed over, for `CHAOS_DEBUG` (in chaos-ctl's own
/// environment): what a policy costs under this backend is its notifications.
pub(super) struct Counts(Vec<(libc::c_long, u64)>);

impl Counts {
    /// Every call a filter may notify, those this one does not included (they stay at 0).
    pub(super) fn new() -> Counts {
        Counts(super::filter::all().map(|(nr, _)| (*nr, 0)).collect())
    }

    pub(super) fn add(&mut self, nr: i32) {
        if let Some(c) = self
            .0
            .iter_mut()
            .find(|(n, _)| *n == libc::c_long::from(nr))
        {
            c.1 += 1;
        }
    }

    pub(super) fn report(&self) {
        if std::env::var_os("CHAOS_DEBUG").is_none_or(|v| v.is_empty()) {
            return;
        }
        let counts: Vec<String> = self
            .0
            .iter()
            .map(|(nr, n)| format!("{}={n}", super::filter::name(*nr)))
            .collect();
        eprintln!("chaos: debug: seccomp notifications: {}", counts.join(" "));
    }
}
