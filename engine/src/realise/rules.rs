//! The realism rules: each a precondition a fault must meet, with the kernel behaviour it mirrors.
//! `realise` answers `Err(NotHere::X)` when rule X says Linux could not have produced the fault in
//! the fd's state; the rule then does not fire on that call (and the call is counted as usual).
//!
//! docs/kernel-facts.md holds the kernel source excerpts these rules rest on.

/// Why a fault could not have happened here. Each variant is one rule of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotHere {
    /// A data call on a stream socket that is not connected (or is listening) fails at once with
    /// ENOTCONN (or EPIPE): it never waits, never transfers part of anything.
    NotConnected,
    /// The direction is shut (our shutdown, a reset, or the peer's FIN for reads): the call returns
    /// 0 / EPIPE at once. After a FIN, everything the peer sent is already queued.
    ShutDown,
    /// EAGAIN and short non-blocking writes mean the send buffer is full: only where the other
    /// side has unread data from us, or the write is larger than the room there is.
    BufferNotFull,
    /// A blocking write waits for room; it returns a partial count only when it needed to wait
    /// (larger than the room) and a signal handler or SO_SNDTIMEO ended the wait.
    BlockingWriteNotInterrupted,
    /// A read with MSG_WAITALL waits until it has the whole length: it comes back short only when a
    /// signal handler or SO_RCVTIMEO ends the wait.
    WaitAllNotInterrupted,
    /// EINTR needs a signal that is not blocked in the calling thread, whose handler is installed
    /// and harmless (default action: ignore; or the one the rule names).
    NoDeliverableSignal,
    /// EINTR with SA_RESTART: the kernel restarts the call (sockets with a timeout excepted).
    Restarted,
    /// EINTR only interrupts a wait: a read with data queued, a write with room, an accept with a
    /// pending connection, a non-blocking call, a unix connect, a regular file never wait.
    WouldNotWait,
    /// Reads on pipes and unix stream sockets return everything queued up to the length asked
    /// (fs/pipe.c pipe_read; af_unix.c glues skbs): a shorter read would split a write, whose
    /// boundaries the reader cannot see.
    SplitsAWrite,
    /// A TCP read ends at a segment boundary: never shorter than min(asked, queued, 536).
    BelowSegment,
    /// Datagrams and mmsg calls move whole messages.
    WholeMessages,
    /// A unix stream send queues whole skbs (about 36 KB each with default buffers): a send that
    /// fits in one is all or nothing, and a longer one is cut only between skbs.
    WithinOneSkb,
    /// A pipe write of at most PIPE_BUF bytes is atomic.
    AtomicPipeWrite,
    /// Regular-file writes are not short on local filesystems.
    FileWrite,
    /// Too small to shorten (under 2 bytes).
    TooSmall,
    /// EAGAIN only where the call could not block (O_NONBLOCK, MSG_DONTWAIT).
    CouldBlock,
    /// A reset needs a connected TCP socket.
    NoConnection,
    /// A non-blocking connect's ETIMEDOUT reaches the program through SO_ERROR after the SYN
    /// retries; the shim cannot make the kernel report that on the program's socket.
    TimeoutNeedsBlockingConnect,
    /// Only datagrams (UDP) are lost or duplicated on the way: a stream's bytes arrive once, in
    /// order, or the connection fails.
    NotADatagram,
    /// Toxics are a link's behaviour: they act on connected byte-stream sockets (TCP, unix
    /// stream), not on datagrams, pipes or files.
    NotAStream,
    /// A call with no fd yet (open, rename, socket...) can fail or be slow, nothing else: it
    /// moves no data and has no connection to break.
    NoFd,
}

impl NotHere {
    pub const ALL: [NotHere; 21] = [
        NotHere::NotConnected,
        NotHere::ShutDown,
        NotHere::BufferNotFull,
        NotHere::BlockingWriteNotInterrupted,
        NotHere::WaitAllNotInterrupted,
        NotHere::NoDeliverableSignal,
        NotHere::Restarted,
        NotHere::WouldNotWait,
        NotHere::SplitsAWrite,
        NotHere::BelowSegment,
        NotHere::WholeMessages,
        NotHere::WithinOneSkb,
        NotHere::AtomicPipeWrite,
        NotHere::FileWrite,
        NotHere::TooSmall,
        NotHere::CouldBlock,
        NotHere::NoConnection,
        NotHere::TimeoutNeedsBlockingConnect,
        NotHere::NotADatagram,
        NotHere::NotAStream,
        NotHere::NoFd,
    ];

    /// A short name for logs and messages.
    pub fn name(self) -> &'static str {
        match self {
            NotHere::NotConnected => "not-connected",
            NotHere::ShutDown => "shut-down",
            NotHere::BufferNotFull => "buffer-not-full",
            NotHere::BlockingWriteNotInterrupted => "blocking-write-not-interrupted",
            NotHere::WaitAllNotInterrupted => "waitall-not-interrupted",
            NotHere::NoDeliverableSignal => "no-deliverable-signal",
            NotHere::Restarted => "restarted",
            NotHere::WouldNotWait => "would-not-wait",
            NotHere::SplitsAWrite => "splits-a-write",
            NotHere::BelowSegment => "below-segment",
            NotHere::WholeMessages => "whole-messages",
            NotHere::WithinOneSkb => "within-one-skb",
            NotHere::AtomicPipeWrite => "atomic-pipe-write",
            NotHere::FileWrite => "file-write",
            NotHere::TooSmall => "too-small",
            NotHere::CouldBlock => "could-block",
            NotHere::NoConnection => "no-connection",
            NotHere::TimeoutNeedsBlockingConnect => "timeout-needs-blocking-connect",
            NotHere::NotADatagram => "not-a-datagram",
            NotHere::NotAStream => "not-a-stream",
            NotHere::NoFd => "no-fd",
        }
    }

    /// The rule's own name back (`name`'s inverse), for reading counts from a log.
    pub fn from_name(name: &str) -> Option<NotHere> {
        NotHere::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Why Linux could not do it, in a few plain words (the summary's explanation of a refusal).
    pub fn why(self) -> &'static str {
        match self {
            NotHere::NotConnected => "a data call on an unconnected socket fails at once",
            NotHere::ShutDown => "a shut direction returns at once",
            NotHere::BufferNotFull => {
                "a non-blocking write fails or is short only when the send buffer is full"
            }
            NotHere::BlockingWriteNotInterrupted => "a blocking send with room is never short",
            NotHere::WaitAllNotInterrupted => "a MSG_WAITALL read waits for the whole length",
            NotHere::NoDeliverableSignal => {
                "EINTR needs a harmless signal handler the calling thread does not block"
            }
            NotHere::Restarted => "a handler installed with SA_RESTART restarts the call",
            NotHere::WouldNotWait => "a signal interrupts only a call that waits",
            NotHere::SplitsAWrite => "pipe and unix stream reads return everything queued",
            NotHere::BelowSegment => "a TCP read never ends inside a segment",
            NotHere::WholeMessages => "datagrams and mmsg calls move whole messages",
            NotHere::WithinOneSkb => "a unix stream send of at most one skb is all or nothing",
            NotHere::AtomicPipeWrite => "a pipe write of at most PIPE_BUF bytes is atomic",
            NotHere::FileWrite => "local regular-file writes are never short",
            NotHere::TooSmall => "a transfer under 2 bytes cannot be split",
            NotHere::CouldBlock => "EAGAIN comes at once only where the call cannot block",
            NotHere::NoConnection => "a reset needs a connected TCP socket",
            NotHere::TimeoutNeedsBlockingConnect => {
                "a connect times out with ETIMEDOUT only when it blocks"
            }
            NotHere::NotADatagram => "only datagrams are lost, duplicated or reordered",
            NotHere::NotAStream => "toxics act on connected stream sockets only",
            NotHere::NoFd => {
                "a call without an fd (open, rename, socket...) can only fail or be slow"
            }
        }
    }

    /// What would let a rule refused by this one fire: the summary's advice.
    pub fn hint(self) -> &'static str {
        match self {
            NotHere::NotConnected => "aim the rule at calls made after connect or accept",
            NotHere::ShutDown => "use an errno fault (e.g. ECONNRESET), or act before the shutdown",
            NotHere::BufferNotFull => {
                "write faster than the peer reads, or use `stall` or a delay instead"
            }
            NotHere::BlockingWriteNotInterrupted => {
                "use a non-blocking socket, larger writes, SO_SNDTIMEO, or `signal = ...` naming a handler the program installs"
            }
            NotHere::WaitAllNotInterrupted => {
                "set SO_RCVTIMEO, or `signal = ...` naming a handler the program installs"
            }
            NotHere::NoDeliverableSignal => {
                "install a SIGCHLD/SIGWINCH/SIGURG/SIGCONT handler, or name the program's own handler with `signal = ...`"
            }
            NotHere::Restarted => {
                "install the handler without SA_RESTART, or set a socket timeout (SO_RCVTIMEO or SO_SNDTIMEO)"
            }
            NotHere::WouldNotWait => {
                "use `stall` or a delay, which apply to calls that do not wait"
            }
            NotHere::SplitsAWrite => "shorten TCP reads or pipe writes instead",
            NotHere::BelowSegment => "use a byte range (`short = \"1..100\"`) or larger reads",
            NotHere::WholeMessages => "use `drop`, `duplicate` or an errno on datagrams",
            NotHere::WithinOneSkb => "shorten sends larger than 36544 bytes, or TCP sends",
            NotHere::AtomicPipeWrite => "shorten pipe writes larger than 4096 bytes",
            NotHere::FileWrite => "use ENOSPC/EIO, or a `[[disk]]` that fills",
            NotHere::TooSmall => "set `min_bytes = 2` or more to skip 1-byte transfers",
            NotHere::CouldBlock => {
                "use `stall`, which waits on a blocking fd, or a non-blocking fd"
            }
            NotHere::NoConnection => "aim `reset` at connected TCP sockets (`fd = \"tcp\"`)",
            NotHere::TimeoutNeedsBlockingConnect => {
                "use ECONNREFUSED or a delay on non-blocking connects"
            }
            NotHere::NotADatagram => {
                "aim the rule at `fd = \"udp\"`, or use a reset or errno on streams"
            }
            NotHere::NotAStream => "aim toxics at TCP or unix stream sockets",
            NotHere::NoFd => "use an errno, a delay or a process fault on these calls",
        }
    }

    /// Where in Linux the behaviour this rule mirrors lives.
    pub fn kernel_source(self) -> &'static str {
        match self {
            NotHere::NotConnected => {
                "tcp_recvmsg_locked: TCP_LISTEN -> -ENOTCONN; sk_stream_wait_connect; unix_stream_read_generic / unix_stream_sendmsg: no peer -> ENOTCONN/EPIPE"
            }
            NotHere::ShutDown => {
                "tcp_recvmsg_locked: RCV_SHUTDOWN returns what is queued, then 0; tcp_data_queue queues the FIN after all in-order data"
            }
            NotHere::BufferNotFull => {
                "sk_stream_wait_memory / sock_alloc_send_pskb / pipe_write: EAGAIN only when sk_wmem or the pipe's slots are used up"
            }
            NotHere::BlockingWriteNotInterrupted => {
                "tcp_sendmsg_locked, unix_stream_sendmsg, pipe_write: a blocking write loops until done; a partial count comes from signal_pending or the send timeout"
            }
            NotHere::WaitAllNotInterrupted => {
                "tcp_recvmsg_locked: with MSG_WAITALL target = len; it returns early only on signal_pending, timeo == 0, an error or RCV_SHUTDOWN"
            }
            NotHere::NoDeliverableSignal => {
                "complete_signal/wants_signal: a signal blocked in a thread is not delivered to it"
            }
            NotHere::Restarted => {
                "handle_signal: -ERESTARTSYS with SA_RESTART restarts; sock_intr_errno gives -EINTR for sockets with a timeout"
            }
            NotHere::WouldNotWait => {
                "pipe_read/tcp_recvmsg/inet_csk_accept only sleep when nothing is there; signal_pending is checked while sleeping"
            }
            NotHere::SplitsAWrite => {
                "pipe_read copies across buffers until the request is met; unix_stream_read_generic continues to the next skb except at SCM_RIGHTS or changed credentials"
            }
            NotHere::BelowSegment => {
                "tcp_recvmsg copies every queued skb up to len; 536 is the minimum IPv4 MSS (RFC 879)"
            }
            NotHere::WholeMessages => "udp_recvmsg / unix_dgram_recvmsg: one datagram per call",
            NotHere::WithinOneSkb => {
                "unix_stream_sendmsg: size = min(len, (sk_sndbuf >> 1) - 64, SKB_MAX_HEAD(0) + UNIX_SKB_FRAGS_SZ) per skb; sock_alloc_send_pskb waits for the whole skb"
            }
            NotHere::AtomicPipeWrite => {
                "pipe_write: writes of at most PIPE_BUF bytes are atomic (pipe(7))"
            }
            NotHere::FileWrite => {
                "generic_perform_write writes all it can; a short count means ENOSPC/EFBIG"
            }
            NotHere::TooSmall => "a 1-byte transfer cannot be split",
            NotHere::CouldBlock => {
                "sock_rcvtimeo/sock_sndtimeo: EAGAIN only with a zero timeout (O_NONBLOCK, MSG_DONTWAIT)"
            }
            NotHere::NoConnection => {
                "tcp_disconnect sends an RST only on a synchronized connection"
            }
            NotHere::TimeoutNeedsBlockingConnect => {
                "tcp_write_timeout in SYN_SENT sets sk_err = ETIMEDOUT, reported via SO_ERROR"
            }
            NotHere::NotADatagram => {
                "udp_sendmsg hands each datagram to IP, which may lose or duplicate it (RFC 768: no delivery guarantee); TCP retransmits and orders"
            }
            NotHere::NotAStream => {
                "latency and rate are a link's: tcp_sendmsg/tcp_recvmsg move a byte stream over it; pipes and files have no link"
            }
            NotHere::NoFd => {
                "do_sys_open, do_renameat2, do_unlinkat, __sys_socket return an fd or an error; they move no data"
            }
        }
    }
}

/// The minimum MSS an IPv4 path may have (RFC 879, RFC 1122): TCP splits a stream this finely
/// only when the receiver's window is nearly closed.
pub const MIN_SEGMENT: usize = 536;

/// Linux's SYN retry timeout with the default tcp_syn_retries = 6: 1+2+4+8+16+32+64 seconds.
pub const SYN_TIMEOUT_NS: u64 = 127_000_000_000;

/// Signals whose handler, run at any moment, cannot change what a correct program does: their
/// default action is to be ignored, so a handler for them is informational (a reaper, a resize).
/// A handler for SIGTERM, SIGINT, SIGHUP, SIGALRM... means "stop" or "time is up": a fake EINTR
/// for one of those would tell the program something that did not happen.
pub const HARMLESS_SIGNALS: [i32; 4] = [libc::SIGCHLD, libc::SIGWINCH, libc::SIGURG, libc::SIGCONT];

/// The signals that may interrupt a call under a rule: the harmless ones plus the one the rule
/// names (`signal = "SIGUSR1"`), when the user knows what their handler does.
pub fn candidate_signals(named: Option<i32>) -> ([i32; 5], usize) {
    let mut out = [0; 5];
    out[..4].copy_from_slice(&HARMLESS_SIGNALS);
    match named {
        Some(s) if !HARMLESS_SIGNALS.contains(&s) => {
            out[4] = s;
            (out, 5)
        }
        _ => (out, 4),
    }
}
