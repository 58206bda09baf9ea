//! Partitions on the seccomp backend: the shim's `hold.rs` carried out from outside the process.
//!
//! The port directory is filled as the shim fills it: a listening socket's port when the
//! process listens (the supervisor makes the listen itself on its copy, the same socket, so
//! that a port the kernel picks at listen is known), a connection's local port once it is
//! connected. Then, while a cut is in force between this process and a connection's peer:
//! - a write towards a cut peer is held: the call is answered only at the heal (then it runs),
//!   or fails with ETIMEDOUT once TCP_USER_TIMEOUT (or the retransmission timeout) has passed
//!   since it was first held, the connection reset as the kernel would end it; a blocking write
//!   also ends at its SO_SNDTIMEO, with EAGAIN;
//! - a read from a cut peer with nothing queued runs as it is (the kernel's own EAGAIN, or a
//!   blocking wait: every process of the run holds what it sends across a cut, so nothing can
//!   arrive); with data queued from before the cut, it is held until the heal (a blocking read
//!   until its SO_RCVTIMEO, then EAGAIN), so that the data stays queued;
//! - a connect across a cut (either direction) is held until the heal, or fails with ETIMEDOUT
//!   after the kernel's SYN retries (127 s).
//!
//! Where the shim answers a non-blocking call on a cut connection with EAGAIN and hides its
//! readiness, this backend cannot: Go's netpoller registrations are edge-triggered and cannot be
//! re-armed from outside, and an EAGAIN with data or room there would lose the edge for good.
//! So such a call waits in the kernel instead: the thread that made it sleeps until the heal, a
//! deadline the program set (Go's SetDeadline) ends the wait only at the heal, and a Go
//! program's other goroutines run on as usual (the runtime hands the blocked thread's work to
//! another). An HTTP client's own timeout still fires: it gives up on the request, not on the
//! thread.

use super::fdview::{FdView, ip_port};
use super::state::Supervisor;
use super::sys::{self, Answer};
use super::target::Cuts;
use chaos_engine::key::Dir;
use chaos_engine::kind::FdKind;
use std::os::fd::AsRawFd;

use chaos_engine::page::{HOLD_SLICE_NS, RETRANSMIT_TIMEOUT_NS};

/// listen() on a socket of a process partitions can cut: made on our copy (the same socket),
/// its port recorded as this process's.
pub fn listen(s: &mut Supervisor, tgid: i32, n: &libc::seccomp_notif) -> Option<Answer> {
    let cuts = s.target.cuts()?;
    let proc = s.procs.get(&tgid)?;
    let view = proc.fds.get(&(n.data.args[0] as i32))?;
    if view.kind != FdKind::Tcp {
        return None;
    }
    // SAFETY: our copy of the target's socket; the backlog as the target passed it.
    let r = unsafe { libc::listen(view.fd(), n.data.args[1] as i32) };
    if r != 0 {
        return Some(Answer::Fail(
            std::io::Error::last_os_error().raw_os_error()?,
        ));
    }
    let port = ip_port(&sys::sockname(view.fd(), false));
    if port != 0 {
        cuts.register_port(port);
    }
    Some(Answer::Return(0))
}

/// Records a connection this process opened, once it is connected, as the shim does after
/// connect: its peer then knows whom it is talking to.
pub fn note_connected(cuts: Option<&Cuts>, view: &mut FdView) {
    let Some(cuts) = cuts else { return };
    if !view.to_register || view.peer_port == 0 {
        return; // nothing to record, or not connected yet
    }
    let port = ip_port(&sys::sockname(view.fd(), false));
    if port != 0 {
        cuts.register_port(port);
        view.to_register = false;
    }
}

/// How a call across a cut waits.
pub struct Hold {
    /// Whether the cut still holds it.
    still_cut: Box<dyn Fn() -> bool + Send>,
    /// The most it waits, and how it is answered then.
    limit: Option<(u64, Answer)>,
    /// Done at the limit before answering (the connection reset of a retransmission timeout).
    at_limit: Option<std::os::fd::OwnedFd>,
}

/// A data call in `dir` on `view` while its peer may be cut off: how it waits, or None when
/// it runs as it is.
pub fn data_call(cuts: &Cuts, view: &mut FdView, dir: Dir, msg_flags: i32) -> Option<Hold> {
    if view.kind != FdKind::Tcp || view.peer_port == 0 || !cuts.cut(dir, view.peer_port) {
        if dir == Dir::Tx {
            view.held_since = None; // this direction flows: nothing of it is held
        }
        return None;
    }
    let fd = view.fd();
    let nonblocking = msg_flags & libc::MSG_DONTWAIT != 0 || sys::getfl(fd) & libc::O_NONBLOCK != 0;
    let timeout = |name| {
        (!nonblocking)
            .then(|| sys::socket_timeout_ns(fd, name))
            .flatten()
    };
    let port = view.peer_port;
    let watch = cuts.clone();
    let still_cut = Box::new(move || watch.cut(dir, port));
    match dir {
        Dir::Rx => {
            if sys::ioctl_int(fd, libc::FIONREAD) <= 0 {
                return None; // nothing of the peer's to hide: the kernel's own answer
            }
            Some(Hold {
                still_cut,
                limit: timeout(libc::SO_RCVTIMEO).map(|t| (t, Answer::Fail(libc::EAGAIN))),
                at_limit: None,
            })
        }
        Dir::Tx => {
            let since = *view.held_since.get_or_insert_with(std::time::Instant::now);
            let user_timeout =
                match sys::getsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) {
                    Some(ms) if ms > 0 => ms as u64 * 1_000_000,
                    _ => RETRANSMIT_TIMEOUT_NS,
                };
            let left = user_timeout.saturating_sub(since.elapsed().as_nanos() as u64);
            let limit = match timeout(libc::SO_SNDTIMEO) {
                Some(t) if t < left => (t, Answer::Fail(libc::EAGAIN)),
                _ => (left, Answer::Fail(libc::ETIMEDOUT)),
            };
            let reset = matches!(limit.1, Answer::Fail(libc::ETIMEDOUT))
                .then(|| view.ours.as_ref()?.try_clone().ok())
                .flatten();
            Some(Hold {
                still_cut,
                limit: Some(limit),
                at_limit: reset,
            })
        }
    }
}

/// A connect to `port` across a cut: held until the heal, or ETIMEDOUT after the SYN retries.
pub fn connect(cuts: &Cuts, port: u16) -> Option<Hold> {
    if !cuts.connect_cut(port) {
        return None;
    }
    let watch = cuts.clone();
    Some(Hold {
        still_cut: Box::new(move || watch.connect_cut(port)),
        limit: Some((
            chaos_engine::realise::SYN_TIMEOUT_NS,
            Answer::Fail(libc::ETIMEDOUT),
        )),
        at_limit: None,
    })
}

impl Supervisor {
    /// Answers `id` from another thread once `hold` ends: CONTINUE at the heal (the call then
    /// runs as it was made), its limit's answer if that comes first.
    pub fn answer_when_healed(&self, id: u64, hold: Hold) -> Answer {
        let listener = self.listener.clone();
        let started = std::time::Instant::now();
        let spawned = std::thread::Builder::new()
            .name("seccomp-cut".into())
            .spawn(move || {
                let answer = loop {
                    if !(hold.still_cut)() {
                        break Answer::Continue;
                    }
                    if let Some((ns, answer)) = hold.limit
                        && started.elapsed().as_nanos() as u64 >= ns
                    {
                        if let Some(fd) = &hold.at_limit {
                            super::breaks::reset(fd.as_raw_fd());
                        }
                        break answer;
                    }
                    // The target may die or its call be interrupted meanwhile: stop waiting.
                    if !sys::notif_valid(listener.as_raw_fd(), id) {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_nanos(HOLD_SLICE_NS));
                };
                let _ = sys::notif_send(listener.as_raw_fd(), id, answer);
            });
        match spawned {
            Ok(_) => Answer::Later,
            Err(_) => Answer::Continue,
        }
    }
}
