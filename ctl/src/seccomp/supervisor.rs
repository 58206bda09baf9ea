//! The notification loop for one launched program: every call the filter hands us is answered
//! here, at once (CONTINUE when no rule fires), or later from a short-lived thread when a fault
//! delays it. Processes under the filter are followed by their pidfds, and forgotten when they
//! exit. No copy of a target fd outlives the call it was taken for.

use super::calls;
use super::events::{self, Log};
use super::state::{Counts, Exec, Supervisor};
use super::sys::{self, Answer};
use super::target::{Proc, Target};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

/// How a process we adopt came to be: when it started (its exec, or its fork), and for a forked
/// child that has not exec'd, its key and its place among its parent's forks.
struct Birth {
    at: Instant,
    fork: Option<(u64, u64)>,
}

/// Supervises the target whose filter notifies `calls` (`filter::calls_for`).
pub fn supervise(listener: OwnedFd, target: Target, calls: &[libc::c_long]) {
    let log = Log::open(&target);
    let mut s = Supervisor {
        listener: std::sync::Arc::new(listener),
        target,
        log,
        procs: HashMap::new(),
        tgids: HashMap::new(),
        pending: HashMap::new(),
        generation: 0,
        counts: Counts::new(),
        census: None,
    };
    if s.target.census {
        s.census = Some(super::census::Census::new(s.target.census_nth));
    }
    let fd = s.listener.as_raw_fd();
    sys::notif_sync_wake_up(fd);
    // The launcher's own wait for the go-ahead, a read, is the first call we see when reads
    // are notified: let it run.
    if calls.contains(&libc::SYS_read)
        && let Ok(n) = sys::notif_recv(fd)
    {
        let _ = sys::notif_send(fd, n.id, Answer::Continue);
    }
    // The fds polled: the listener, then each process's pidfd. Rebuilt only when the set of
    // processes changes, not on every call.
    let mut polls: Vec<libc::pollfd> = Vec::new();
    let mut watched = usize::MAX;
    loop {
        if watched != s.generation {
            polls.clear();
            polls.extend(
                std::iter::once(fd)
                    .chain(s.procs.values().map(|p| p.pidfd.as_raw_fd()))
                    .chain(s.pending.values().map(|p| p.pidfd.as_raw_fd()))
                    .map(|fd| libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    }),
            );
            watched = s.generation;
        }
        // SAFETY: `polls` is ours, of the length passed.
        let r = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, 1000) };
        if r < 0 {
            continue;
        }
        let exited: Vec<i32> = polls[1..]
            .iter()
            .filter(|p| p.revents != 0)
            .map(|p| p.fd)
            .collect();
        if !exited.is_empty() {
            for tgid in s.watched_by(|pidfd| exited.contains(&pidfd)) {
                s.exited(tgid);
            }
        }
        let ev = polls[0].revents;
        if ev & libc::POLLIN != 0 {
            match sys::notif_recv(fd) {
                Ok(n) => {
                    s.counts.add(n.data.nr);
                    let answer = s.handle(&n);
                    let _ = sys::notif_send(fd, n.id, answer);
                }
                // The caller died between the poll and the receive.
                Err(libc::ENOENT | libc::EINTR) => {}
                Err(_) => break,
            }
        } else if ev & (libc::POLLHUP | libc::POLLERR) != 0 {
            // Every process under the filter is gone; the last may have ended after this poll
            // looked at its pidfd.
            for tgid in s.watched_by(|_| true) {
                s.exited(tgid);
            }
            break;
        }
    }
}

impl Supervisor {
    /// The answer for one notification. Whatever we cannot look at (a thread already gone,
    /// memory we cannot read) runs as the program made it.
    fn handle(&mut self, n: &libc::seccomp_notif) -> Answer {
        let tid = n.pid as i32;
        let Some(tgid) = self.tgid(tid) else {
            return Answer::Continue;
        };
        if let Some(answer) = calls::before_adopting(self, tgid, n) {
            return answer;
        }
        if !self.procs.contains_key(&tgid) && !self.adopt(tgid) {
            return Answer::Continue;
        }
        self.target.last_place = None;
        let answer = calls::handle(self, tgid, tid, n).unwrap_or(Answer::Continue);
        self.log_change_seen(tgid);
        // Our copy of the call's fd goes now, before the call itself runs: nothing of ours
        // keeps the target's file open past its own close.
        if let Some(view) = self
            .procs
            .get_mut(&tgid)
            .and_then(|p| p.fds.get_mut(&(n.data.args[0] as i32)))
        {
            view.ours = None;
        }
        answer
    }

    /// Logs where a change of the control page first took effect in process `tgid`: at the
    /// first call after it that a rule was decided on (the shim's `control::observe`).
    fn log_change_seen(&mut self, tgid: i32) {
        let Some(at) = self.target.last_place else {
            return;
        };
        let (generation, enabled) = self.target.control_snapshot();
        if let Some(proc) = self.procs.get_mut(&tgid)
            && proc.seen != generation
        {
            proc.seen = generation;
            let proc = &self.procs[&tgid];
            let seen = (generation, enabled);
            events::control_seen(&mut self.log, &self.target, proc, seen, &at);
        }
    }

    fn tgid(&mut self, tid: i32) -> Option<i32> {
        if let Some(t) = self.tgids.get(&tid) {
            return Some(*t);
        }
        let t = sys::tgid_of(tid)?;
        self.tgids.insert(tid, t);
        Some(t)
    }

    /// A process we have not seen yet (the target after its exec, or a child it started): its
    /// key from its exe and command line, as the shim computes it, and its `start` line.
    fn adopt(&mut self, tgid: i32) -> bool {
        // An exec'd program started at its exec; a forked child that has not exec'd, at its fork
        // (the supervisor sees no fork: the kernel's record of the process's start says when).
        let (start, forked) = match self.pending.remove(&tgid) {
            Some(exec) => (exec.at, false),
            None => (forked_at(tgid).unwrap_or_else(Instant::now), true),
        };
        let Ok(pidfd) = sys::pidfd_open(tgid) else {
            return false;
        };
        let exe = std::fs::read_link(format!("/proc/{tgid}/exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{tgid}/cmdline")).unwrap_or_default();
        let lineage = events::lineage(tgid);
        if forked {
            self.adopt_parent(lineage.0, 16);
        }
        // A child of a process we follow that has made no exec is that process forked: the
        // shim's key for it, from its parent's key and fork count.
        let fork = match self.procs.get_mut(&lineage.0) {
            Some(parent) if forked => {
                let n = parent
                    .forks
                    .ordinal_of(tgid, &super::forks::children_of(lineage.0));
                Some((chaos_engine::process_key::of_fork(parent.key, n), n))
            }
            _ => None,
        };
        self.adopt_as(
            tgid,
            pidfd,
            exe,
            cmdline,
            lineage,
            Birth { at: start, fork },
        );
        true
    }

    /// A forked child's first call can reach us before any of its parent's: the parent (exec'd
    /// and not adopted yet, or itself forked and not seen yet) is adopted first, so the child's
    /// key derives from its parent's, as the shim's does, and never repeats its parent's own.
    /// `depth` bounds the walk up a chain of forks that made no call.
    fn adopt_parent(&mut self, parent: i32, depth: u8) {
        if self.procs.contains_key(&parent) || depth == 0 || parent <= 1 {
            return;
        }
        if !self.pending.contains_key(&parent) {
            // Followed only if it descends from a process we follow.
            let grandparent = events::lineage(parent).0;
            self.adopt_parent(grandparent, depth - 1);
            if !self.procs.contains_key(&grandparent) {
                return;
            }
        }
        self.adopt(parent);
    }

    /// Records process `tgid` running `exe` with `cmdline` (NUL-terminated arguments).
    fn adopt_as(
        &mut self,
        tgid: i32,
        pidfd: OwnedFd,
        exe: String,
        cmdline: Vec<u8>,
        lineage: (i32, Option<String>),
        Birth { at: start, fork }: Birth,
    ) {
        let argv = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let key = match fork {
            Some((key, _)) => key,
            None => self.target.process_key(&exe, &cmdline),
        };
        let proc = Proc {
            pid: tgid,
            key,
            base: chaos_engine::chance::key_base(self.target.seed, key),
            pidfd,
            fds: HashMap::new(),
            ordinals: [[0; 4]; 7],
            connects: [0; 7],
            waits: 0,
            named: HashMap::new(),
            owed: HashMap::new(),
            seen: self.target.generation(),
            budget: super::budget::Budget::new(self.target.policy.rules.len(), start),
            forks: super::forks::Forks::new(fork.map_or(0, |(_, n)| n)),
            direct_said: false,
        };
        let via = if fork.is_some() { "fork" } else { "exec" };
        events::start(&mut self.log, &self.target, &proc, &exe, argv, lineage, via);
        self.procs.insert(tgid, proc);
        self.generation += 1;
    }

    /// Notes an exec we let run. The exec'd program is adopted at its first call, from /proc;
    /// one that makes none (a static `true`) is still logged when it exits, with the program
    /// and arguments its exec named, so that every program run under the backend has its
    /// `start` line.
    pub fn note_exec(&mut self, tgid: i32, path: u64, argv: u64) {
        let Ok(pidfd) = sys::pidfd_open(tgid) else {
            return;
        };
        let Some(path) = sys::read_target_cstr(tgid, path) else {
            return;
        };
        let path = String::from_utf8_lossy(&path).into_owned();
        // An exec of what is not an executable file fails (a shell tries each PATH entry in
        // turn): no program will run, so there is nothing to log should the process end.
        use std::os::unix::fs::PermissionsExt;
        let full = std::path::Path::new(&format!("/proc/{tgid}/cwd")).join(&path);
        if !std::fs::metadata(&full)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        {
            return;
        }
        let exe = std::fs::canonicalize(&full)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or(path);
        let mut cmdline = Vec::new();
        for i in 0..4096u64 {
            let Some(arg) = sys::read_target_value::<u64>(tgid, argv + 8 * i) else {
                break;
            };
            if arg == 0 {
                break;
            }
            let Some(text) = sys::read_target_cstr(tgid, arg) else {
                break;
            };
            cmdline.extend_from_slice(&text);
            cmdline.push(0);
        }
        self.pending.insert(
            tgid,
            Exec {
                pidfd,
                exe,
                cmdline,
                lineage: events::lineage(tgid),
                at: Instant::now(),
            },
        );
        self.generation += 1;
    }

    /// The processes followed (adopted, or exec'd and not yet seen since) whose pidfd `which`.
    fn watched_by(&self, which: impl Fn(i32) -> bool) -> Vec<i32> {
        let procs = self.procs.iter().map(|(t, p)| (*t, p.pidfd.as_raw_fd()));
        let pending = self.pending.iter().map(|(t, e)| (*t, e.pidfd.as_raw_fd()));
        procs
            .chain(pending)
            .filter(|(_, pidfd)| which(*pidfd))
            .map(|(tgid, _)| tgid)
            .collect()
    }

    /// Process `tgid` has ended. One that made no call we see since its exec is logged now,
    /// with the program and arguments its exec named.
    fn exited(&mut self, tgid: i32) {
        if let Some(e) = self.pending.remove(&tgid) {
            let birth = Birth {
                at: e.at,
                fork: None,
            };
            self.adopt_as(tgid, e.pidfd, e.exe, e.cmdline, e.lineage, birth);
        }
        self.procs.remove(&tgid);
        self.tgids.retain(|_, t| *t != tgid);
        self.generation += 1;
        // Before chaos-ctl, told the program has ended, can print its summary and exit.
        if self.procs.is_empty() && self.pending.is_empty() {
            self.counts.report();
        }
        super::live::ended(tgid);
    }

    /// Forgets a process whose exec is under way: after it, it is a new program with a new key.
    pub fn forget(&mut self, tgid: i32) {
        self.procs.remove(&tgid);
        self.tgids.retain(|_, t| *t != tgid);
        self.generation += 1;
    }

    /// Answers `id` from another thread after `ns` (a delay, a pause, a connect's SYN retries).
    pub fn answer_later(
        &self,
        id: u64,
        ns: u64,
        before: impl FnOnce() + Send + 'static,
        answer: Answer,
    ) {
        let listener = self.listener.clone();
        let spawned = std::thread::Builder::new()
            .name("seccomp-delay".into())
            .spawn(move || {
                std::thread::sleep(std::time::Duration::from_nanos(ns));
                before();
                let _ = sys::notif_send(listener.as_raw_fd(), id, answer);
            });
        if spawned.is_err() {
            let _ = sys::notif_send(self.listener.as_raw_fd(), id, answer);
        }
    }
}

/// When process `tgid` was created, as an `Instant`: its `starttime` in /proc (clock ticks since
/// boot, CLOCK_BOOTTIME's count) taken back from now.
fn forked_at(tgid: i32) -> Option<Instant> {
    let stat = std::fs::read_to_string(format!("/proc/{tgid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces, so count from its `)`; starttime is
    // field 22, the 20th after comm.
    let ticks: u64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    // SAFETY: sysconf reads a constant of the system.
    let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    let started_ns = ticks.checked_mul(1_000_000_000)? / per_second.max(1);
    let age_ns = sys::boottime_ns().checked_sub(started_ns)?;
    Instant::now().checked_sub(std::time::Duration::from_nanos(age_ns))
}
