//! The notification loop for one launched program: every call the filter hands us is answered
//! here, at once (CONTINUE when no rule fires), or later from a short-lived thread when a fault
//! delays it. Processes under the filter are followed by their pidfds: when one exits, our copies
//! of its fds are closed at once, so that its connections close as they would without us.

use super::calls;
use super::events::{self, Log};
use super::sys::{self, Answer};
use super::target::{Proc, Target};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};

pub struct Supervisor {
    pub listener: std::sync::Arc<OwnedFd>,
    pub target: Target,
    pub log: Log,
    pub procs: HashMap<i32, Proc>,
    /// Thread id to process id.
    tgids: HashMap<i32, i32>,
}

pub fn supervise(listener: OwnedFd, target: Target) {
    let log = Log::open(&target);
    let mut s = Supervisor {
        listener: std::sync::Arc::new(listener),
        target,
        log,
        procs: HashMap::new(),
        tgids: HashMap::new(),
    };
    let fd = s.listener.as_raw_fd();
    // The launcher's own wait for the go-ahead is the first call we see: let it run.
    if let Ok(n) = sys::notif_recv(fd) {
        let _ = sys::notif_send(fd, n.id, Answer::Continue);
    }
    loop {
        let mut polls: Vec<libc::pollfd> = std::iter::once(fd)
            .chain(s.procs.values().map(|p| p.pidfd.as_raw_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
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
            s.procs
                .retain(|_, p| !exited.contains(&p.pidfd.as_raw_fd()));
            s.tgids.retain(|_, tgid| s.procs.contains_key(tgid));
        }
        let ev = polls[0].revents;
        if ev & libc::POLLIN != 0 {
            match sys::notif_recv(fd) {
                Ok(n) => {
                    let answer = s.handle(&n);
                    let _ = sys::notif_send(fd, n.id, answer);
                }
                // The caller died between the poll and the receive.
                Err(libc::ENOENT | libc::EINTR) => {}
                Err(_) => break,
            }
        } else if ev & (libc::POLLHUP | libc::POLLERR) != 0 {
            break; // every process under the filter is gone
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
        calls::handle(self, tgid, tid, n).unwrap_or(Answer::Continue)
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
        let Ok(pidfd) = sys::pidfd_open(tgid) else {
            return false;
        };
        let exe = std::fs::read_link(format!("/proc/{tgid}/exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{tgid}/cmdline")).unwrap_or_default();
        let argv = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let key = self.target.process_key(&exe, &cmdline);
        let proc = Proc {
            pid: tgid,
            key,
            base: chaos_engine::chance::key_base(self.target.seed, key),
            pidfd,
            fds: HashMap::new(),
            ordinals: [[0; 4]; 7],
            connects: [0; 7],
            waits: 0,
        };
        events::start(&mut self.log, &self.target, &proc, &exe, argv);
        self.procs.insert(tgid, proc);
        true
    }

    /// Forgets a process whose exec is under way: after it, it is a new program with a new key.
    pub fn forget(&mut self, tgid: i32) {
        self.procs.remove(&tgid);
        self.tgids.retain(|_, t| *t != tgid);
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
