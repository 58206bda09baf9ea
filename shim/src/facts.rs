//! The shim's side of the realism model: `chaos_engine::realise::Facts` answered with raw system
//! calls on the live fd, each made only when the model asks and remembered for the rest of the call.
//! Nothing here has side effects on the fd (no SO_ERROR read, no MSG_PEEK).

use crate::fdtable::{Meta, Role, Slot};
use crate::sockaddr::SockAddrBuf;
use crate::sockstate;
use crate::sys;
use chaos_engine::key::Dir;
use chaos_engine::kind::FdKind;
use chaos_engine::realise::{Deliverable, Facts, Link, Ready, Shut};
use libc::c_int;

pub struct LiveFacts<'a> {
    fd: c_int,
    slot: &'a Slot,
    meta: Meta,
    nonblocking: Option<bool>,
    link: Option<Link>,
    shut: Option<Shut>,
    ready: Option<Ready>,
    queued_out: Option<u64>,
    send_buffer: Option<u64>,
}

impl<'a> LiveFacts<'a> {
    pub fn new(fd: c_int, slot: &'a Slot, meta: Meta) -> LiveFacts<'a> {
        LiveFacts {
            fd,
            slot,
            meta,
            nonblocking: None,
            link: None,
            shut: None,
            ready: None,
            queued_out: None,
            send_buffer: None,
        }
    }

    fn kind(&self) -> FdKind {
        self.meta.kind()
    }
}

/// A cached fact: computed once per call.
fn once<T: Copy>(cell: &mut Option<T>, f: impl FnOnce() -> T) -> T {
    *cell.get_or_insert_with(f)
}

impl Facts for LiveFacts<'_> {
    fn nonblocking(&mut self) -> bool {
        let fd = self.fd;
        once(&mut self.nonblocking, || {
            sys::fcntl_getfl(fd) & libc::O_NONBLOCK != 0
        })
    }

    fn timeout_ns(&mut self, dir: Dir) -> Option<u64> {
        if !self.kind().is_socket() {
            return None;
        }
        let name = match dir {
            Dir::Rx => libc::SO_RCVTIMEO,
            Dir::Tx => libc::SO_SNDTIMEO,
        };
        sys::timeout_ns(self.fd, name)
    }

    fn link(&mut self) -> Link {
        let (fd, role) = (self.fd, self.meta.role());
        once(&mut self.link, || {
            if role == Role::Listen
                || sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN) == Some(1)
            {
                Link::Listening
            } else if SockAddrBuf::read(fd, true).len > 0 {
                Link::Connected
            } else {
                Link::NotConnected
            }
        })
    }

    fn shut(&mut self) -> Shut {
        let (fd, kind, slot) = (self.fd, self.kind(), self.slot);
        once(&mut self.shut, || match kind {
            FdKind::Pipe => {
                // The read end sees POLLHUP once every writer is gone; the write end POLLERR once
                // every reader is.
                let revents = sys::poll_one(fd, 0, 0);
                Shut {
                    cant_recv: revents & libc::POLLHUP != 0,
                    cant_send: revents & libc::POLLERR != 0,
                }
            }
            _ => sockstate::shut_state(fd, kind, slot),
        })
    }

    fn ready(&mut self) -> Ready {
        let fd = self.fd;
        once(&mut self.ready, || {
            let revents = sys::poll_one(fd, libc::POLLIN | libc::POLLOUT, 0);
            // A hang-up or error makes the call return at once too.
            let done = libc::POLLHUP | libc::POLLERR;
            Ready {
                readable: revents & (libc::POLLIN | done) != 0,
                writable: revents & (libc::POLLOUT | done) != 0,
            }
        })
    }

    fn queued_in(&mut self) -> u64 {
        sys::ioctl_int(self.fd, libc::FIONREAD).max(0) as u64
    }

    fn queued_out(&mut self) -> u64 {
        let (fd, kind) = (self.fd, self.kind());
        once(&mut self.queued_out, || {
            // A pipe has one buffer: what is in it is what we wrote and the reader has not read.
            let req = if kind == FdKind::Pipe {
                libc::FIONREAD
            } else {
                libc::TIOCOUTQ
            };
            sys::ioctl_int(fd, req).max(0) as u64
        })
    }

    fn send_buffer(&mut self) -> u64 {
        let (fd, kind) = (self.fd, self.kind());
        once(&mut self.send_buffer, || {
            let n = if kind == FdKind::Pipe {
                sys::fcntl_getpipe_sz(fd)
            } else {
                sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF).unwrap_or(0)
            };
            n.max(0) as u64
        })
    }

    fn deliverable(&mut self, signals: &[i32]) -> Deliverable {
        deliverable(signals)
    }
}

/// Which of `signals` could interrupt the calling thread: a handler installed and not blocked.
pub fn deliverable(signals: &[i32]) -> Deliverable {
    {
        let blocked = sys::thread_blocked_signals();
        let mut d = Deliverable::default();
        for &sig in signals {
            if blocked & (1u64 << (sig - 1)) != 0 {
                continue;
            }
            if let Some(restart) = sys::handler_restarts(sig) {
                d.any = true;
                d.interrupting |= !restart;
            }
        }
        d
    }
}
