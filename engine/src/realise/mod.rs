//! The realism model: given a rule's fault and the facts about one call, what the call does — or
//! that Linux could not have produced that fault there, and the rule does not fire.
//!
//! The shim gathers the facts (a `Facts` implementation that makes a system call only when a rule
//! asks) and carries out the `Action`; every decision about what is possible is made here, so it is
//! unit-tested without loading a shim, and the seccomp backend answers the same way.

mod facts;
mod rules;
#[cfg(test)]
mod tests;

pub use facts::{Call, Deliverable, Facts, Link, Ready, Shut};
pub use rules::{HARMLESS_SIGNALS, MIN_SEGMENT, NotHere, SYN_TIMEOUT_NS, candidate_signals};

use crate::fault::{Fault, ShortSpec};
use crate::key::Dir;
use crate::kind::FdKind;
use crate::op::{Op, OpClass};

/// What the hook does instead of (or around) the real call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fail before doing anything, after breaking the connection as described.
    Fail { errno: i32, brk: Break },
    /// Sleep, then make the real call.
    Delay(u64),
    /// Make the real call with this smaller length.
    Short { len: usize, nonblocking: bool },
    /// Not ready for `ns` (0: this one call): EAGAIN with readiness hidden, or the blocking
    /// equivalent (see `Mode`).
    Stall { ns: u64, mode: Mode },
    /// connect() only: start the connection non-blocking, as an interrupted blocking connect leaves
    /// it, then report EINTR.
    ConnectEintr,
    /// Non-blocking connect() only: connect for real to a local port nobody listens on, so the
    /// kernel itself answers EINPROGRESS and then reports ECONNREFUSED through POLLERR and SO_ERROR.
    ConnectRefusedLater,
    /// Blocking connect() only: wait this long (the kernel's SYN retries), then fail.
    FailAfter { errno: i32, ns: u64 },
    /// A process fault: the shim logs it, then acts on the whole process.
    Process(ProcessAction),
    /// A datagram lost: a send reports success without sending; a receive consumes one and
    /// returns the next.
    Drop,
    /// A datagram sent twice.
    Duplicate,
    /// A datagram held, sent after the next N sends on the socket.
    Reorder(u32),
    /// Name resolution fails with this EAI_* code (`h_errno` for the gethostbyname family).
    Resolver(i32),
    /// Toxics on a connected stream socket's data call: the shim steps them with the
    /// connection's state (`crate::toxic`), in this mode.
    Toxic {
        toxics: crate::toxic::Toxics,
        mode: Mode,
    },
}

/// What a process fault does (Linux can kill or stop a process at any instruction, so the model
/// never forbids one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessAction {
    /// SIGKILL itself.
    Crash,
    /// SIGKILL its whole process group (its machine lost power).
    PowerLoss,
    /// Its stop signal to itself, then the call goes on.
    Terminate,
    /// SIGSTOP itself for this long (continued by chaos-ctl), then the call goes on.
    Pause(u64),
}

/// How an injected error leaves the connection, so later calls agree with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Break {
    None,
    /// connect(AF_UNSPEC) on a live TCP socket: a real RST to the peer.
    Rst,
    /// A unix stream socket has no RST; shutting both directions is the closest real state.
    ShutBoth,
    /// EPIPE: our side can no longer send.
    ShutWrite,
}

/// Whether the call could block, which decides what "not ready" looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// O_NONBLOCK or MSG_DONTWAIT: EAGAIN.
    Nonblocking,
    /// A blocking socket with SO_RCVTIMEO/SO_SNDTIMEO of this many ns: it waits at most that long,
    /// then fails with EAGAIN.
    Timeout(u64),
    /// It would simply wait: a delay.
    Blocking,
}

/// What a rule contributes besides its fault.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleContext {
    /// `signal = "SIGUSR1"`: this signal's handler may interrupt calls too.
    pub signal: Option<i32>,
}

/// Turns a fault into an action for this call, or says which rule of the model forbids it here.
/// `param` is the decision's second random number (the short length, the delay).
pub fn realise(
    fault: &Fault,
    ctx: RuleContext,
    call: &Call,
    facts: &mut impl Facts,
    param: u64,
) -> Result<Action, NotHere> {
    match *fault {
        // Latency can happen anywhere: the call still returns what the kernel says.
        Fault::Delay(range) => Ok(Action::Delay(range.pick(param))),
        // A resolver can always time out or find nothing: it has no state the model could
        // contradict.
        Fault::Resolver(code) => Ok(Action::Resolver(code)),
        Fault::Drop | Fault::Duplicate | Fault::Reorder(_)
            if call.kind != FdKind::Udp || call.op.is_multi_message() =>
        {
            Err(NotHere::NotADatagram)
        }
        Fault::Drop => Ok(Action::Drop),
        Fault::Duplicate => Ok(Action::Duplicate),
        Fault::Reorder(n) => Ok(Action::Reorder(n)),
        Fault::Crash => Ok(Action::Process(ProcessAction::Crash)),
        Fault::PowerLoss => Ok(Action::Process(ProcessAction::PowerLoss)),
        Fault::Terminate => Ok(Action::Process(ProcessAction::Terminate)),
        Fault::Pause(range) => Ok(Action::Process(ProcessAction::Pause(range.pick(param)))),
        Fault::Short(spec) => short(spec, ctx, call, facts, param),
        Fault::Toxic(toxics) => {
            // A link's behaviour: on a connected byte stream, in a direction still open; latency
            // alone also on UDP (a datagram becomes readable that long after it came).
            let stream_socket =
                call.kind == FdKind::Tcp || (call.kind == FdKind::Unix && call.stream);
            let latency_only = toxics
                == crate::toxic::Toxics {
                    latency_ns: toxics.latency_ns,
                    jitter_ns: toxics.jitter_ns,
                    ..Default::default()
                };
            let datagram_latency = call.kind == FdKind::Udp && latency_only;
            if (!stream_socket && !datagram_latency) || call.op.is_multi_message() {
                return Err(NotHere::NotAStream);
            }
            // A peer's FIN does not stop them on reads: on the emulated link it comes after the
            // data still in flight, so what is queued is still delivered at the link's pace.
            match transfers_data(call, facts) {
                Err(NotHere::ShutDown) if call.dir() == Some(Dir::Rx) => {}
                r => r?,
            }
            Ok(Action::Toxic {
                toxics,
                mode: mode(call, facts),
            })
        }
        Fault::Stall(range) => stall(range.pick(param), call, facts),
        Fault::Errno(libc::EAGAIN) if call.op != Op::Connect => {
            // A plain EAGAIN is a one-call stall, and only where the call could not block.
            match stall(0, call, facts)? {
                a @ Action::Stall {
                    mode: Mode::Nonblocking,
                    ..
                } => Ok(a),
                _ => Err(NotHere::CouldBlock),
            }
        }
        Fault::Reset => {
            if call.kind == FdKind::Tcp && facts.link() == Link::Connected {
                Ok(Action::Fail {
                    errno: libc::ECONNRESET,
                    brk: Break::Rst,
                })
            } else {
                Err(NotHere::NoConnection)
            }
        }
        Fault::Errno(libc::EINTR) => eintr(ctx, call, facts),
        Fault::Errno(errno) => errno_fault(errno, None, call, facts),
        Fault::ErrnoAfter { errno, after_ns } => errno_fault(errno, Some(after_ns), call, facts),
    }
}

/// What a fault becomes on a call that has no fd yet (open, rename, unlink, mkdir, socket, pipe):
/// an error, a delay or a process fault. No EINTR: on a local filesystem a path lookup, an open
/// of a regular file and a directory change sleep uninterruptibly, and socket/pipe never sleep
/// (only a FIFO's open, a lease break or a network filesystem would be interrupted).
pub fn realise_fdless(fault: &Fault, param: u64) -> Result<Action, NotHere> {
    match *fault {
        Fault::Errno(libc::EINTR) => Err(NotHere::WouldNotWait),
        Fault::Errno(errno) => Ok(Action::Fail {
            errno,
            brk: Break::None,
        }),
        Fault::Delay(range) => Ok(Action::Delay(range.pick(param))),
        Fault::Crash => Ok(Action::Process(ProcessAction::Crash)),
        Fault::PowerLoss => Ok(Action::Process(ProcessAction::PowerLoss)),
        Fault::Terminate => Ok(Action::Process(ProcessAction::Terminate)),
        Fault::Pause(range) => Ok(Action::Process(ProcessAction::Pause(range.pick(param)))),
        _ => Err(NotHere::NoFd),
    }
}

/// What a fault becomes on an epoll wait. EINTR where the wait would sleep (`blocks`: its
/// timeout is not zero, since ep_poll returns at once for a zero timeout before it looks at
/// signals, and no event is ready, since ready events are returned before any signal check)
/// and a harmless (or the rule's named) signal has a handler and is unblocked in the calling
/// thread. SA_RESTART
/// does not matter: epoll_wait is never restarted after a handler (signal(7)). A delay is a
/// wait that took longer; no other fault means anything for a wait.
pub fn realise_wait(
    fault: &Fault,
    ctx: RuleContext,
    blocks: bool,
    deliverable: impl FnOnce(&[i32]) -> Deliverable,
    param: u64,
) -> Result<Action, NotHere> {
    match *fault {
        Fault::Errno(libc::EINTR) => {
            if !blocks {
                return Err(NotHere::WouldNotWait);
            }
            let (signals, n) = rules::candidate_signals(ctx.signal);
            if !deliverable(&signals[..n]).any {
                return Err(NotHere::NoDeliverableSignal);
            }
            Ok(Action::Fail {
                errno: libc::EINTR,
                brk: Break::None,
            })
        }
        _ => realise_fdless(fault, param),
    }
}

/// Rule "not connected" and "shut down": a data call on a connection-oriented socket transfers
/// nothing, and waits for nothing, unless there is a connection open in its direction.
fn transfers_data(call: &Call, facts: &mut impl Facts) -> Result<(), NotHere> {
    let Some(dir) = call.dir() else {
        return Ok(());
    };
    if call.connection_oriented() && facts.link() != Link::Connected {
        return Err(NotHere::NotConnected);
    }
    if call.connection_oriented() || call.kind == FdKind::Pipe {
        let shut = facts.shut();
        let closed = match dir {
            Dir::Rx => shut.cant_recv,
            Dir::Tx => shut.cant_send,
        };
        if closed {
            return Err(NotHere::ShutDown);
        }
    }
    Ok(())
}

/// How this call would behave if the fd were not ready.
pub fn mode(call: &Call, facts: &mut impl Facts) -> Mode {
    if call.dontwait() || facts.nonblocking() {
        return Mode::Nonblocking;
    }
    if call.kind.is_socket()
        && let Some(ns) = facts.timeout_ns(call.dir().unwrap_or(Dir::Rx))
    {
        return Mode::Timeout(ns);
    }
    Mode::Blocking
}

/// Rule "buffer not full": the kernel says EAGAIN to a write (or accepts only part of it without
/// waiting) when the send buffer has no room: possible only while the other side has unread data
/// from us, or when the write is larger than the room there is at all.
fn send_buffer_could_be_full(call: &Call, facts: &mut impl Facts) -> Result<(), NotHere> {
    let unread = facts.queued_out();
    if unread > 0 || call.requested as u64 > room(facts, unread) {
        Ok(())
    } else {
        Err(NotHere::BufferNotFull)
    }
}

/// The most the send buffer could take now (an upper bound on the payload: SO_SNDBUF counts the
/// kernel's overhead too).
fn room(facts: &mut impl Facts, unread: u64) -> u64 {
    facts.send_buffer().saturating_sub(unread)
}

fn stall(ns: u64, call: &Call, facts: &mut impl Facts) -> Result<Action, NotHere> {
    transfers_data(call, facts)?;
    let m = mode(call, facts);
    if call.dir() == Some(Dir::Tx) && m != Mode::Blocking {
        // Not ready to write means no room: the EAGAIN (or send timeout) must be one a full buffer
        // explains. A blocking write only waits longer, which any write may.
        send_buffer_could_be_full(call, facts)?;
    }
    Ok(Action::Stall { ns, mode: m })
}

fn short(
    spec: ShortSpec,
    ctx: RuleContext,
    call: &Call,
    facts: &mut impl Facts,
    param: u64,
) -> Result<Action, NotHere> {
    let dir = call.dir().ok_or(NotHere::WholeMessages)?;
    if !call.stream || call.op.is_multi_message() {
        return Err(NotHere::WholeMessages);
    }
    if call.requested < 2 {
        return Err(NotHere::TooSmall);
    }
    transfers_data(call, facts)?;
    let nonblocking = mode(call, facts) == Mode::Nonblocking;
    let len = match (dir, call.kind) {
        (Dir::Rx, FdKind::Pipe | FdKind::Unix) => return Err(NotHere::SplitsAWrite),
        (Dir::Rx, FdKind::Tcp) => {
            if call.msg_flags & libc::MSG_WAITALL != 0 {
                // tcp_recvmsg waits for the whole length; only a signal or SO_RCVTIMEO (or EOF,
                // which is real) ends it early.
                let (signals, n) = candidate_signals(ctx.signal);
                if !facts.deliverable(&signals[..n]).any && facts.timeout_ns(Dir::Rx).is_none() {
                    return Err(NotHere::WaitAllNotInterrupted);
                }
            }
            tcp_read_length(spec, call, facts, param)?
        }
        (Dir::Rx, _) => spec.pick(call.requested, param).ok_or(NotHere::TooSmall)?,
        (Dir::Tx, FdKind::File) => return Err(NotHere::FileWrite),
        (Dir::Tx, FdKind::Pipe) if call.requested <= libc::PIPE_BUF => {
            return Err(NotHere::AtomicPipeWrite);
        }
        (Dir::Tx, _) => write_length(spec, ctx, call, facts, nonblocking, param)?,
    };
    Ok(Action::Short { len, nonblocking })
}

/// Whether a stream read may be held to end at a grid offset (`crate::grid`): a cut, so a short
/// read, under the rules of a short TCP read except its length, which the grid fixes. Only TCP
/// (a pipe or unix read returns what whole writes queued), connected, before the peer's FIN
/// (then everything it sent is queued and a read returns all of it), and not a MSG_WAITALL read
/// no signal or timeout could end early; and, as for any short TCP read, not where what the read
/// would return is one segment at most, nor shorter than one (`floor`: `MIN_SEGMENT`, or 1 for a
/// byte-length spec, the user's explicit choice); `len` is what the cut leaves the read. Ok says
/// whether the call is non-blocking.
pub fn grid_cut(
    ctx: RuleContext,
    call: &Call,
    facts: &mut impl Facts,
    floor: usize,
    len: usize,
) -> Result<bool, NotHere> {
    if call.dir() != Some(Dir::Rx) || !call.stream || call.op.is_multi_message() {
        return Err(NotHere::WholeMessages);
    }
    if call.kind != FdKind::Tcp {
        return Err(NotHere::SplitsAWrite);
    }
    transfers_data(call, facts)?;
    if call.msg_flags & libc::MSG_WAITALL != 0 {
        let (signals, n) = candidate_signals(ctx.signal);
        if !facts.deliverable(&signals[..n]).any && facts.timeout_ns(Dir::Rx).is_none() {
            return Err(NotHere::WaitAllNotInterrupted);
        }
    }
    // With nothing queued the read waits for the next arrival, a segment starting where the read
    // does: the cut leaves it a segment at least. With data queued, where its segments began is
    // unknown (an earlier read may have ended inside one): only a queue of one small segment at
    // most is never split.
    let queued = facts.queued_in() as usize;
    let short_of_a_segment = match queued {
        0 => call.requested <= floor || len < floor,
        q => call.requested.min(q) <= floor,
    };
    if short_of_a_segment {
        return Err(NotHere::BelowSegment);
    }
    Ok(mode(call, facts) == Mode::Nonblocking)
}

/// Rule "segment boundary": a TCP read returns every queued byte up to its length, so it comes
/// back short only where a segment ended; no segment is smaller than 536 bytes unless the window
/// closes. Byte-length specs (`short = "1..10"`) are the user's explicit choice and go further.
fn tcp_read_length(
    spec: ShortSpec,
    call: &Call,
    facts: &mut impl Facts,
    param: u64,
) -> Result<usize, NotHere> {
    let queued = facts.queued_in() as usize;
    // With nothing queued the read waits for the next arrival, which may be a whole segment.
    let avail = if queued > 0 {
        call.requested.min(queued)
    } else {
        call.requested
    };
    if avail < 2 {
        return Err(NotHere::TooSmall);
    }
    let floor = match spec {
        ShortSpec::Percent { .. } => MIN_SEGMENT,
        ShortSpec::Bytes { .. } => 1,
    };
    if avail <= floor {
        return Err(NotHere::BelowSegment);
    }
    let picked = spec.pick(avail, param).ok_or(NotHere::TooSmall)?;
    Ok(picked.clamp(floor, avail - 1))
}

/// Rules "buffer not full" (non-blocking) and "blocking write not interrupted" (blocking).
fn write_length(
    spec: ShortSpec,
    ctx: RuleContext,
    call: &Call,
    facts: &mut impl Facts,
    nonblocking: bool,
    param: u64,
) -> Result<usize, NotHere> {
    let picked = spec.pick(call.requested, param).ok_or(NotHere::TooSmall)?;
    // Where a partial write can end: between unix skbs, at a pipe page (pipe_write copies whole
    // pages once the merge into the last one is done), anywhere in a TCP stream.
    let unit = match call.kind {
        FdKind::Unix => unix_skb_size(facts.send_buffer()),
        FdKind::Pipe => PIPE_PAGE,
        _ => 1,
    };
    if call.kind == FdKind::Unix && call.requested <= unit {
        return Err(NotHere::WithinOneSkb);
    }
    let whole = |len: usize| (len / unit).max(1) * unit;
    if nonblocking {
        send_buffer_could_be_full(call, facts)?;
    } else {
        let unread = facts.queued_out();
        let room = room(facts, unread);
        if call.requested as u64 <= room {
            return Err(NotHere::BlockingWriteNotInterrupted);
        }
        let (signals, n) = candidate_signals(ctx.signal);
        let ended_by_signal = facts.deliverable(&signals[..n]).any;
        if !ended_by_signal && facts.timeout_ns(Dir::Tx).is_none() {
            return Err(NotHere::BlockingWriteNotInterrupted);
        }
        if call.kind == FdKind::Pipe {
            // It filled the room there was before it waited: a pipe write returns at least that.
            let len = whole(picked.max(room as usize));
            return if len < call.requested {
                Ok(len)
            } else {
                Err(NotHere::BlockingWriteNotInterrupted)
            };
        }
    }
    let len = whole(picked);
    if len >= call.requested {
        return Err(NotHere::WithinOneSkb);
    }
    Ok(len)
}

/// A pipe buffer's page: pipe_write fills whole pages, so a partial pipe write is a multiple of it
/// (when nothing merged into a partly filled last page).
const PIPE_PAGE: usize = 4096;

/// The most one unix stream skb carries (af_unix.c unix_stream_sendmsg): half the send buffer less
/// 64 bytes, and at most one head page plus 32 KB of fragments.
pub fn unix_skb_size(sndbuf: u64) -> usize {
    const HEAD: usize = 4096 - 320; // SKB_MAX_HEAD(0): a page less skb_shared_info
    const FRAGS: usize = 32768; // UNIX_SKB_FRAGS_SZ
    ((sndbuf as usize / 2).saturating_sub(64)).clamp(1, HEAD + FRAGS)
}

/// Rule "EINTR means a handler ran": a harmless (or named) signal, deliverable to this thread,
/// that the kernel would not restart the call for, arriving while the call waits.
fn eintr(ctx: RuleContext, call: &Call, facts: &mut impl Facts) -> Result<Action, NotHere> {
    transfers_data(call, facts)?;
    if call.kind == FdKind::File || call.dontwait() {
        return Err(NotHere::WouldNotWait);
    }
    let class = call.op.class();
    if facts.nonblocking() {
        return Err(NotHere::WouldNotWait);
    }
    match class {
        // A unix connect completes or fails at once unless the listener's backlog is full.
        OpClass::Connect if call.kind != FdKind::Tcp => return Err(NotHere::WouldNotWait),
        OpClass::Resolve => return Err(NotHere::WouldNotWait),
        OpClass::Connect => {}
        OpClass::Reads | OpClass::Writes | OpClass::Accept => {
            let dir = call.wait_dir().unwrap_or(Dir::Rx);
            if !facts.ready().would_wait(dir) {
                return Err(NotHere::WouldNotWait);
            }
        }
        // close, shutdown and setsockopt never sleep interruptibly on a socket or pipe:
        // sock_close and pipe_release cannot fail, lock_sock waits uninterruptibly. close(2)'s
        // EINTR comes from a filesystem's flush (NFS), and regular files never get here.
        OpClass::Close | OpClass::Shutdown | OpClass::Setsockopt => {
            return Err(NotHere::WouldNotWait);
        }
        // A path or a regular file never waits interruptibly on a local filesystem (only a FIFO's
        // open, a lock or a network filesystem does), and socket/pipe/dup never wait at all.
        OpClass::Opens | OpClass::Syncs | OpClass::Space | OpClass::Entries | OpClass::NewFds => {
            return Err(NotHere::WouldNotWait);
        }
        // Waits are decided by `realise_wait`, not on an fd.
        OpClass::Waits => {
            return Err(NotHere::WouldNotWait);
        }
    }
    let (signals, n) = candidate_signals(ctx.signal);
    let d = facts.deliverable(&signals[..n]);
    if !d.any {
        return Err(NotHere::NoDeliverableSignal);
    }
    let timeout = call.kind.is_socket()
        && matches!(
            class,
            OpClass::Reads | OpClass::Writes | OpClass::Accept | OpClass::Connect
        )
        && facts
            .timeout_ns(call.wait_dir().unwrap_or(Dir::Rx))
            .is_some();
    if !d.interrupting && !timeout {
        return Err(NotHere::Restarted);
    }
    Ok(if call.op == Op::Connect {
        Action::ConnectEintr
    } else {
        Action::Fail {
            errno: libc::EINTR,
            brk: Break::None,
        }
    })
}

fn errno_fault(
    errno: i32,
    after_ns: Option<u64>,
    call: &Call,
    facts: &mut impl Facts,
) -> Result<Action, NotHere> {
    if call.op == Op::Connect && call.kind == FdKind::Tcp {
        return connect_error(errno, after_ns, call, facts);
    }
    // A never-connected socket's data calls fail with ENOTCONN/EPIPE, never with another error.
    transfers_data(call, facts).or_else(|e| match e {
        // A reset or broken pipe on a shut direction is still what a dead connection reports.
        NotHere::ShutDown => Ok(()),
        e => Err(e),
    })?;
    let data = matches!(call.op.class(), OpClass::Reads | OpClass::Writes);
    let brk = match (errno, call.kind) {
        (libc::ECONNRESET, FdKind::Tcp) if data && facts.link() == Link::Connected => Break::Rst,
        (libc::ECONNRESET, FdKind::Unix) if data && call.stream => Break::ShutBoth,
        (libc::EPIPE, FdKind::Tcp | FdKind::Unix)
            if call.op.class() == OpClass::Writes && call.stream =>
        {
            Break::ShutWrite
        }
        _ => Break::None,
    };
    Ok(Action::Fail { errno, brk })
}

/// Rule "a non-blocking connect reports errors the Linux way": EINPROGRESS first, the error later
/// through POLLERR and SO_ERROR; a timeout only after the SYN retries.
fn connect_error(
    errno: i32,
    after_ns: Option<u64>,
    call: &Call,
    facts: &mut impl Facts,
) -> Result<Action, NotHere> {
    let nonblocking = facts.nonblocking();
    match errno {
        libc::ECONNREFUSED if nonblocking => Ok(Action::ConnectRefusedLater),
        libc::ETIMEDOUT if nonblocking => Err(NotHere::TimeoutNeedsBlockingConnect),
        libc::ETIMEDOUT => {
            let ns = after_ns.unwrap_or(SYN_TIMEOUT_NS);
            // SO_SNDTIMEO bounds a blocking connect, which then returns EINPROGRESS, not
            // ETIMEDOUT: only a timeout the socket's own limit lets through is reachable.
            match facts.timeout_ns(Dir::Tx) {
                Some(limit) if limit <= ns => Err(NotHere::TimeoutNeedsBlockingConnect),
                _ => Ok(Action::FailAfter { errno, ns }),
            }
        }
        _ => {
            let _ = call;
            Ok(Action::Fail {
                errno,
                brk: Break::None,
            })
        }
    }
}
