//! The facts about one call that the realism rules depend on, and the trait through which the
//! shim (or the seccomp backend) supplies them.
//!
//! Every fact costs a system call to learn, so the model asks for each one only when a rule needs
//! it, and only after the rule's draw has already said "fire": a call on which nothing fires pays
//! for none of them. Implementations cache what they fetched for the rest of the call.

use crate::key::Dir;
use crate::kind::FdKind;
use crate::op::{Op, OpClass};

/// What the call is, as the hook saw it: no system call needed to know any of this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    pub op: Op,
    pub kind: FdKind,
    /// A byte stream: TCP, unix SOCK_STREAM, a pipe, a regular file.
    pub stream: bool,
    /// Bytes asked for (messages, for the mmsg forms).
    pub requested: usize,
    /// The call's MSG_* flags (0 for read/write).
    pub msg_flags: i32,
}

impl Call {
    pub fn dir(&self) -> Option<Dir> {
        self.op.dir()
    }

    /// The direction the call waits on: accept waits to read.
    pub fn wait_dir(&self) -> Option<Dir> {
        match self.op.class() {
            OpClass::Accept => Some(Dir::Rx),
            OpClass::Connect => Some(Dir::Tx),
            _ => self.dir(),
        }
    }

    pub fn is_data(&self) -> bool {
        self.dir().is_some()
    }

    /// A connection-oriented socket, whose data calls need a connection.
    pub fn connection_oriented(&self) -> bool {
        self.stream && matches!(self.kind, FdKind::Tcp | FdKind::Unix)
    }

    pub fn dontwait(&self) -> bool {
        self.msg_flags & libc::MSG_DONTWAIT != 0
    }
}

/// Whether a stream socket has a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// getpeername succeeds: data can flow.
    Connected,
    /// Never connected, or its connection is gone (getpeername: ENOTCONN).
    NotConnected,
    /// listen() was called on it (SO_ACCEPTCONN).
    Listening,
}

/// Which directions can no longer carry data: the shim's record of shutdown() plus what the
/// kernel shows (TCP state, POLLRDHUP/POLLHUP, a pipe's other end closed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shut {
    /// Our SHUT_RD, or the peer's FIN (or close) has arrived: everything it sent is queued.
    pub cant_recv: bool,
    /// Our SHUT_WR, or the connection is gone: a send fails with EPIPE.
    pub cant_send: bool,
}

impl Shut {
    /// Both directions are gone (BSD's "disconnected").
    pub fn full(self) -> bool {
        self.cant_recv && self.cant_send
    }
}

/// A zero-timeout poll of the fd.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// POLLIN: a read (or accept) would not wait.
    pub readable: bool,
    /// POLLOUT: a write would find room.
    pub writable: bool,
}

impl Ready {
    pub fn would_wait(self, dir: Dir) -> bool {
        match dir {
            Dir::Rx => !self.readable,
            Dir::Tx => !self.writable,
        }
    }
}

/// Signals that could interrupt the calling thread now: a handler installed (not SIG_DFL or
/// SIG_IGN) and the signal not blocked in this thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deliverable {
    /// At least one such signal.
    pub any: bool,
    /// At least one such signal whose handler lacks SA_RESTART.
    pub interrupting: bool,
}

/// Facts about the fd and the calling thread, fetched on demand.
pub trait Facts {
    /// O_NONBLOCK on the open file (MSG_DONTWAIT is already in the `Call`).
    fn nonblocking(&mut self) -> bool;
    /// SO_RCVTIMEO (Rx) / SO_SNDTIMEO (Tx) in ns, when set on a socket.
    fn timeout_ns(&mut self, dir: Dir) -> Option<u64>;
    /// Stream sockets only.
    fn link(&mut self) -> Link;
    fn shut(&mut self) -> Shut;
    fn ready(&mut self) -> Ready;
    /// Bytes waiting to be read (FIONREAD / SIOCINQ).
    fn queued_in(&mut self) -> u64;
    /// Bytes we sent that the other side has not consumed (SIOCOUTQ; a pipe's FIONREAD).
    fn queued_out(&mut self) -> u64;
    /// The send buffer (SO_SNDBUF; a pipe's F_GETPIPE_SZ).
    fn send_buffer(&mut self) -> u64;
    /// Which of `signals` could interrupt the calling thread.
    fn deliverable(&mut self, signals: &[i32]) -> Deliverable;
}
