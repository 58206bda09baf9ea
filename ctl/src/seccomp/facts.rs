//! The realism model's facts (`chaos_engine::realise::Facts`) for a call the supervisor holds:
//! asked of our copy of the fd (the same open file description as the target's) and of the
//! calling thread's /proc status, each only when the model asks.

use super::fdview::{FdView, Role};
use super::sys;
use chaos_engine::key::Dir;
use chaos_engine::kind::FdKind;
use chaos_engine::realise::{Deliverable, Facts, Link, Ready, Shut};

pub struct HeldFacts<'a> {
    pub view: &'a FdView,
    /// The calling thread.
    pub tid: i32,
}

const TCP_FIN_WAIT1: u8 = 4;
const TCP_FIN_WAIT2: u8 = 5;
const TCP_TIME_WAIT: u8 = 6;
const TCP_CLOSE: u8 = 7;
const TCP_CLOSE_WAIT: u8 = 8;
const TCP_LAST_ACK: u8 = 9;
const TCP_CLOSING: u8 = 11;

/// Both directions' state of a socket, as the shim's `sockstate::shut_state` reads it.
pub fn shut_state(view: &FdView) -> Shut {
    let fd = view.fd();
    let mut shut = Shut {
        cant_recv: view.shut & 1 != 0,
        cant_send: view.shut & 2 != 0,
    };
    match view.kind {
        FdKind::Tcp => match sys::tcp_info(fd).map(|i| i.tcpi_state) {
            Some(TCP_CLOSE_WAIT) => shut.cant_recv = true,
            Some(TCP_FIN_WAIT1 | TCP_FIN_WAIT2) => shut.cant_send = true,
            Some(TCP_CLOSING | TCP_LAST_ACK | TCP_TIME_WAIT) => {
                shut.cant_recv = true;
                shut.cant_send = true;
            }
            // A fresh socket is CLOSE too: only a connected one is disconnected.
            Some(TCP_CLOSE) if matches!(view.role, Role::Out | Role::In) => {
                shut.cant_recv = true;
                shut.cant_send = true;
            }
            _ => {}
        },
        FdKind::Unix => {
            let revents = sys::poll_one(fd, libc::POLLRDHUP);
            if revents & libc::POLLHUP != 0 {
                shut.cant_recv = true;
                shut.cant_send = true;
            } else if revents & libc::POLLRDHUP != 0 {
                shut.cant_recv = true;
            }
        }
        FdKind::Pipe => {
            let revents = sys::poll_one(fd, 0);
            shut.cant_recv = revents & libc::POLLHUP != 0;
            shut.cant_send = revents & libc::POLLERR != 0;
        }
        _ => {}
    }
    shut
}

impl Facts for HeldFacts<'_> {
    fn nonblocking(&mut self) -> bool {
        sys::getfl(self.view.fd()) & libc::O_NONBLOCK != 0
    }

    fn timeout_ns(&mut self, dir: Dir) -> Option<u64> {
        if !self.view.kind.is_socket() {
            return None;
        }
        let name = match dir {
            Dir::Rx => libc::SO_RCVTIMEO,
            Dir::Tx => libc::SO_SNDTIMEO,
        };
        sys::socket_timeout_ns(self.view.fd(), name)
    }

    fn link(&mut self) -> Link {
        if self.view.role == Role::Listen {
            Link::Listening
        } else if sys::sockname(self.view.fd(), true).len > 0 {
            Link::Connected
        } else {
            Link::NotConnected
        }
    }

    fn shut(&mut self) -> Shut {
        shut_state(self.view)
    }

    fn ready(&mut self) -> Ready {
        let revents = sys::poll_one(self.view.fd(), libc::POLLIN | libc::POLLOUT);
        let done = libc::POLLHUP | libc::POLLERR;
        Ready {
            readable: revents & (libc::POLLIN | done) != 0,
            writable: revents & (libc::POLLOUT | done) != 0,
        }
    }

    fn queued_in(&mut self) -> u64 {
        sys::ioctl_int(self.view.fd(), libc::FIONREAD).max(0) as u64
    }

    fn queued_out(&mut self) -> u64 {
        let req = if self.view.kind == FdKind::Pipe {
            libc::FIONREAD
        } else {
            libc::TIOCOUTQ
        };
        sys::ioctl_int(self.view.fd(), req).max(0) as u64
    }

    fn send_buffer(&mut self) -> u64 {
        let fd = self.view.fd();
        let n = if self.view.kind == FdKind::Pipe {
            // SAFETY: no memory arguments.
            unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) }
        } else {
            sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF).unwrap_or(0)
        };
        n.max(0) as u64
    }

    fn deliverable(&mut self, signals: &[i32]) -> Deliverable {
        deliverable(self.tid, signals)
    }
}

/// Which of `signals` have a handler and are not blocked in thread `tid`. /proc does not say
/// whether a handler has SA_RESTART, so every handler is taken to have it: the model then never
/// interrupts a call the kernel would have restarted (it only loses EINTRs Linux could give).
pub fn deliverable(tid: i32, signals: &[i32]) -> Deliverable {
    let mut d = Deliverable::default();
    let Some((blocked, _ignored, caught)) = sys::signal_masks(tid) else {
        return d;
    };
    for &sig in signals {
        let bit = 1u64 << (sig - 1);
        if blocked & bit == 0 && caught & bit != 0 {
            d.any = true;
        }
    }
    d
}
