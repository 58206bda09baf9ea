//! The realism rules, one test each: what a fault becomes in a given state, and where it is refused.

use super::*;
use crate::fault::{NsRange, ShortSpec};
use crate::realise::unix_skb_size;

/// A state to realise faults in. Defaults: a connected, blocking, idle TCP socket with a 16 KB
/// send buffer, nothing queued, no signal handlers.
#[derive(Clone, Copy)]
struct State {
    nonblocking: bool,
    timeout: Option<u64>,
    link: Link,
    shut: Shut,
    ready: Ready,
    queued_in: u64,
    queued_out: u64,
    send_buffer: u64,
    handler: Option<(i32, bool)>, // (signal, SA_RESTART)
    blocked: bool,
}

impl Default for State {
    fn default() -> State {
        State {
            nonblocking: false,
            timeout: None,
            link: Link::Connected,
            shut: Shut::default(),
            ready: Ready {
                readable: false,
                writable: true,
            },
            queued_in: 0,
            queued_out: 0,
            send_buffer: 16384,
            handler: None,
            blocked: false,
        }
    }
}

impl Facts for State {
    fn nonblocking(&mut self) -> bool {
        self.nonblocking
    }
    fn timeout_ns(&mut self, _: Dir) -> Option<u64> {
        self.timeout
    }
    fn link(&mut self) -> Link {
        self.link
    }
    fn shut(&mut self) -> Shut {
        self.shut
    }
    fn ready(&mut self) -> Ready {
        self.ready
    }
    fn queued_in(&mut self) -> u64 {
        self.queued_in
    }
    fn queued_out(&mut self) -> u64 {
        self.queued_out
    }
    fn send_buffer(&mut self) -> u64 {
        self.send_buffer
    }
    fn deliverable(&mut self, signals: &[i32]) -> Deliverable {
        match self.handler {
            Some((sig, restart)) if signals.contains(&sig) && !self.blocked => Deliverable {
                any: true,
                interrupting: !restart,
            },
            _ => Deliverable::default(),
        }
    }
}

fn call(op: Op, kind: FdKind, requested: usize) -> Call {
    Call {
        op,
        kind,
        stream: !matches!(kind, FdKind::Udp),
        requested,
        msg_flags: 0,
    }
}

fn go(fault: Fault, c: Call, mut s: State) -> Result<Action, NotHere> {
    realise(&fault, RuleContext::default(), &c, &mut s, 12345)
}

const SHORT: Fault = Fault::Short(ShortSpec::Percent { lo: 1, hi: 90 });
const STALL: Fault = Fault::Stall(NsRange { lo: 1000, hi: 1000 });
const EINTR: Fault = Fault::Errno(libc::EINTR);

fn sigchld(restart: bool) -> Option<(i32, bool)> {
    Some((libc::SIGCHLD, restart))
}

// ---- 1. not connected, listening, shut down --------------------------------------------------

#[test]
fn data_calls_on_an_unconnected_or_listening_socket_get_nothing_but_latency() {
    for link in [Link::NotConnected, Link::Listening] {
        for kind in [FdKind::Tcp, FdKind::Unix] {
            let s = State {
                link,
                nonblocking: true,
                handler: sigchld(false),
                ..State::default()
            };
            for op in [Op::Recv, Op::Read, Op::Send] {
                let c = call(op, kind, 100);
                for f in [SHORT, STALL, EINTR, Fault::Errno(libc::EAGAIN)] {
                    assert_eq!(
                        go(f, c, s),
                        Err(NotHere::NotConnected),
                        "{f:?} {op:?} {kind:?}"
                    );
                }
                assert!(matches!(
                    go(Fault::Delay(NsRange { lo: 1, hi: 1 }), c, s),
                    Ok(Action::Delay(1))
                ));
            }
        }
    }
}

#[test]
fn unconnected_datagram_sockets_still_transfer() {
    let s = State {
        link: Link::NotConnected,
        nonblocking: true,
        ..State::default()
    };
    let c = call(Op::Recvfrom, FdKind::Udp, 100);
    assert!(matches!(go(STALL, c, s), Ok(Action::Stall { .. })));
}

#[test]
fn a_shut_direction_passes_through() {
    let s = State {
        shut: Shut {
            cant_recv: false,
            cant_send: true,
        },
        nonblocking: true,
        queued_out: 10,
        ..State::default()
    };
    assert_eq!(
        go(STALL, call(Op::Send, FdKind::Unix, 10), s),
        Err(NotHere::ShutDown)
    );
    assert!(go(STALL, call(Op::Recv, FdKind::Unix, 10), s).is_ok());
}

// ---- 2. EAGAIN on a write means the buffer is full --------------------------------------------

#[test]
fn a_small_write_to_an_empty_socket_is_never_refused() {
    for kind in [FdKind::Unix, FdKind::Tcp, FdKind::Pipe] {
        let s = State {
            nonblocking: true,
            ..State::default()
        };
        let c = call(Op::Write, kind, 1);
        assert_eq!(go(STALL, c, s), Err(NotHere::BufferNotFull), "{kind:?}");
        assert_eq!(
            go(Fault::Errno(libc::EAGAIN), c, s),
            Err(NotHere::BufferNotFull)
        );
    }
}

#[test]
fn eagain_on_a_write_where_the_reader_has_unread_data_or_the_write_is_too_big() {
    let unread = State {
        nonblocking: true,
        queued_out: 1,
        ..State::default()
    };
    assert!(matches!(
        go(STALL, call(Op::Write, FdKind::Unix, 1), unread),
        Ok(Action::Stall {
            mode: Mode::Nonblocking,
            ..
        })
    ));
    let empty = State {
        nonblocking: true,
        ..State::default()
    };
    assert!(go(STALL, call(Op::Write, FdKind::Tcp, 20000), empty).is_ok());
}

#[test]
fn a_blocking_write_may_always_wait_longer() {
    // A stall on a blocking write is a delay: nothing the program sees changes.
    assert!(matches!(
        go(STALL, call(Op::Write, FdKind::Pipe, 1), State::default()),
        Ok(Action::Stall {
            mode: Mode::Blocking,
            ..
        })
    ));
}

#[test]
fn a_send_timeout_stall_needs_a_full_buffer_too() {
    let s = State {
        timeout: Some(1_000_000),
        ..State::default()
    };
    assert_eq!(
        go(STALL, call(Op::Send, FdKind::Tcp, 28), s),
        Err(NotHere::BufferNotFull)
    );
}

#[test]
fn short_nonblocking_writes_follow_the_same_rule() {
    let empty = State {
        nonblocking: true,
        ..State::default()
    };
    assert_eq!(
        go(SHORT, call(Op::Send, FdKind::Tcp, 28), empty),
        Err(NotHere::BufferNotFull)
    );
    let busy = State {
        queued_out: 500,
        ..empty
    };
    assert!(matches!(
        go(SHORT, call(Op::Send, FdKind::Tcp, 28), busy),
        Ok(Action::Short {
            nonblocking: true,
            ..
        })
    ));
}

// ---- 3. blocking writes are not short without a reason ----------------------------------------

#[test]
fn a_blocking_write_that_fits_is_never_short() {
    let s = State {
        handler: sigchld(true),
        ..State::default()
    };
    assert_eq!(
        go(SHORT, call(Op::Send, FdKind::Tcp, 28), s),
        Err(NotHere::BlockingWriteNotInterrupted)
    );
    assert_eq!(
        go(SHORT, call(Op::Send, FdKind::Unix, 28), s),
        Err(NotHere::WithinOneSkb)
    );
}

#[test]
fn a_blocking_write_larger_than_the_room_is_short_only_with_a_signal_or_timeout() {
    let big = call(Op::Write, FdKind::Pipe, 4_000_000);
    let pipe = State {
        send_buffer: 65536,
        queued_out: 1000,
        ..State::default()
    };
    assert_eq!(
        go(SHORT, big, pipe),
        Err(NotHere::BlockingWriteNotInterrupted)
    );
    let with_handler = State {
        handler: sigchld(true),
        ..pipe
    };
    for param in 0..50 {
        match realise(
            &SHORT,
            RuleContext::default(),
            &big,
            &mut with_handler.clone(),
            param,
        ) {
            // It filled the 15 free pages there were before it waited, and pipe_write fills whole
            // pages: a multiple of 4096.
            Ok(Action::Short { len, .. }) => {
                assert!((61440..4_000_000).contains(&len), "{len}");
                assert_eq!(len % 4096, 0, "{len}");
            }
            other => panic!("{other:?}"),
        }
    }
    let blocked = State {
        blocked: true,
        ..with_handler
    };
    assert_eq!(
        go(SHORT, big, blocked),
        Err(NotHere::BlockingWriteNotInterrupted)
    );
    let stop_handler = State {
        handler: Some((libc::SIGTERM, false)),
        ..pipe
    };
    assert_eq!(
        go(SHORT, big, stop_handler),
        Err(NotHere::BlockingWriteNotInterrupted)
    );
    let timeout = State {
        timeout: Some(1),
        ..pipe
    };
    assert!(go(SHORT, call(Op::Send, FdKind::Tcp, 4_000_000), timeout).is_ok());
}

#[test]
fn a_unix_stream_send_is_cut_only_between_skbs() {
    let s = State {
        handler: sigchld(true),
        queued_out: 200_000,
        send_buffer: 212_992,
        ..State::default()
    };
    // Waiting for room, but 28 bytes are one skb: all or nothing.
    assert_eq!(
        go(SHORT, call(Op::Send, FdKind::Unix, 28), s),
        Err(NotHere::WithinOneSkb)
    );
    let skb = unix_skb_size(212_992);
    assert_eq!(skb, 4096 - 320 + 32768);
    for param in 0..100 {
        let c = call(Op::Send, FdKind::Unix, 1_000_000);
        match realise(&SHORT, RuleContext::default(), &c, &mut s.clone(), param) {
            Ok(Action::Short { len, .. }) => assert_eq!(len % skb, 0, "{len}"),
            other => panic!("{other:?}"),
        }
    }
}

// ---- 4. EINTR means a handler ran while the call waited --------------------------------------

#[test]
fn eintr_needs_an_unblocked_harmless_handler_without_sa_restart() {
    let waits = call(Op::Read, FdKind::Pipe, 100);
    let none = State::default();
    assert_eq!(go(EINTR, waits, none), Err(NotHere::NoDeliverableSignal));
    let ok = State {
        handler: sigchld(false),
        ..none
    };
    assert!(matches!(
        go(EINTR, waits, ok),
        Ok(Action::Fail {
            errno: libc::EINTR,
            ..
        })
    ));
    let blocked = State {
        blocked: true,
        ..ok
    };
    assert_eq!(go(EINTR, waits, blocked), Err(NotHere::NoDeliverableSignal));
    let restart = State {
        handler: sigchld(true),
        ..none
    };
    assert_eq!(go(EINTR, waits, restart), Err(NotHere::Restarted));
    for stop in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGALRM] {
        let s = State {
            handler: Some((stop, false)),
            ..none
        };
        assert_eq!(go(EINTR, waits, s), Err(NotHere::NoDeliverableSignal));
    }
}

#[test]
fn a_rule_may_name_the_signal_whose_handler_is_harmless() {
    let s = State {
        handler: Some((libc::SIGUSR1, false)),
        ..State::default()
    };
    let c = call(Op::Read, FdKind::Pipe, 100);
    assert_eq!(go(EINTR, c, s), Err(NotHere::NoDeliverableSignal));
    let named = RuleContext {
        signal: Some(libc::SIGUSR1),
    };
    assert!(realise(&EINTR, named, &c, &mut s.clone(), 0).is_ok());
}

#[test]
fn eintr_only_while_the_call_would_wait() {
    let base = State {
        handler: sigchld(false),
        ..State::default()
    };
    let data_queued = State {
        ready: Ready {
            readable: true,
            writable: true,
        },
        ..base
    };
    assert_eq!(
        go(EINTR, call(Op::Read, FdKind::Pipe, 10), data_queued),
        Err(NotHere::WouldNotWait)
    );
    assert_eq!(
        go(EINTR, call(Op::Write, FdKind::Pipe, 10), base),
        Err(NotHere::WouldNotWait),
        "room to write"
    );
    let full = State {
        ready: Ready::default(),
        ..base
    };
    assert!(go(EINTR, call(Op::Write, FdKind::Pipe, 10), full).is_ok());
    assert_eq!(
        go(EINTR, call(Op::Accept, FdKind::Tcp, 0), data_queued),
        Err(NotHere::WouldNotWait),
        "a connection is pending"
    );
    let nonblocking = State {
        nonblocking: true,
        ..base
    };
    assert_eq!(
        go(EINTR, call(Op::Read, FdKind::Pipe, 10), nonblocking),
        Err(NotHere::WouldNotWait)
    );
    assert_eq!(
        go(EINTR, call(Op::Connect, FdKind::Unix, 0), base),
        Err(NotHere::WouldNotWait)
    );
    assert_eq!(
        go(EINTR, call(Op::Connect, FdKind::Tcp, 0), base),
        Ok(Action::ConnectEintr)
    );
    for op in [Op::Close, Op::Shutdown, Op::Setsockopt] {
        assert_eq!(
            go(EINTR, call(op, FdKind::Tcp, 0), base),
            Err(NotHere::WouldNotWait),
            "{op:?} on a socket never sleeps interruptibly"
        );
    }
}

#[test]
fn socket_timeouts_make_restarting_handlers_interrupt() {
    let s = State {
        handler: sigchld(true),
        timeout: Some(5_000_000),
        ..State::default()
    };
    assert!(go(EINTR, call(Op::Recv, FdKind::Tcp, 10), s).is_ok());
    // inet_stream_connect: sock_intr_errno(timeo) with SO_SNDTIMEO set is EINTR, not a restart.
    assert_eq!(
        go(EINTR, call(Op::Connect, FdKind::Tcp, 0), s),
        Ok(Action::ConnectEintr)
    );
    let no_timeout = State { timeout: None, ..s };
    assert_eq!(
        go(EINTR, call(Op::Connect, FdKind::Tcp, 0), no_timeout),
        Err(NotHere::Restarted)
    );
}

// ---- 5. short reads never split what Linux delivers whole ------------------------------------

#[test]
fn reads_on_pipes_and_unix_streams_are_never_shortened() {
    let s = State {
        queued_in: 4096,
        ..State::default()
    };
    for kind in [FdKind::Pipe, FdKind::Unix] {
        assert_eq!(
            go(SHORT, call(Op::Read, kind, 4096), s),
            Err(NotHere::SplitsAWrite)
        );
    }
}

#[test]
fn datagrams_and_small_pipe_writes_stay_whole() {
    let s = State::default();
    let dgram = Call {
        stream: false,
        ..call(Op::Recv, FdKind::Unix, 100)
    };
    assert_eq!(go(SHORT, dgram, s), Err(NotHere::WholeMessages));
    assert_eq!(
        go(SHORT, call(Op::Write, FdKind::Pipe, libc::PIPE_BUF), s),
        Err(NotHere::AtomicPipeWrite)
    );
    assert_eq!(
        go(SHORT, call(Op::Sendmmsg, FdKind::Tcp, 4), s),
        Err(NotHere::WholeMessages)
    );
}

// ---- 6. after the peer's FIN everything is already here ---------------------------------------

#[test]
fn no_short_read_or_stall_after_the_peers_fin() {
    let s = State {
        shut: Shut {
            cant_recv: true,
            cant_send: false,
        },
        queued_in: 10_000,
        nonblocking: true,
        ..State::default()
    };
    let c = call(Op::Recv, FdKind::Tcp, 65536);
    assert_eq!(go(SHORT, c, s), Err(NotHere::ShutDown));
    assert_eq!(go(STALL, c, s), Err(NotHere::ShutDown));
    // A reset can still follow a FIN.
    assert!(go(Fault::Errno(libc::ECONNRESET), c, s).is_ok());
}

#[test]
fn a_pipe_whose_writers_are_gone_is_read_whole() {
    let s = State {
        shut: Shut {
            cant_recv: true,
            cant_send: false,
        },
        nonblocking: true,
        ..State::default()
    };
    assert_eq!(
        go(STALL, call(Op::Read, FdKind::Pipe, 100), s),
        Err(NotHere::ShutDown)
    );
}

// ---- 7. a short TCP read is a segment boundary -----------------------------------------------

#[test]
fn a_short_tcp_read_is_never_below_a_segment() {
    let small = State {
        queued_in: 31,
        ..State::default()
    };
    assert_eq!(
        go(SHORT, call(Op::Recv, FdKind::Tcp, 4096), small),
        Err(NotHere::BelowSegment)
    );
    let big = State {
        queued_in: 200_000,
        ..State::default()
    };
    for param in 0..200 {
        let c = call(Op::Recv, FdKind::Tcp, 200_000);
        match realise(&SHORT, RuleContext::default(), &c, &mut big.clone(), param) {
            Ok(Action::Short { len, .. }) => assert!((536..200_000).contains(&len), "{len}"),
            other => panic!("{other:?}"),
        }
    }
    // The short is taken from what is there: 1000 queued, 4096 asked -> at most 999.
    let some = State {
        queued_in: 1000,
        ..State::default()
    };
    for param in 0..200 {
        let c = call(Op::Recv, FdKind::Tcp, 4096);
        match realise(&SHORT, RuleContext::default(), &c, &mut some.clone(), param) {
            Ok(Action::Short { len, .. }) => assert!((536..1000).contains(&len), "{len}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_waitall_read_is_short_only_when_interrupted() {
    let s = State {
        queued_in: 100_000,
        ..State::default()
    };
    let waitall = Call {
        msg_flags: libc::MSG_WAITALL,
        ..call(Op::Recv, FdKind::Tcp, 200_000)
    };
    assert_eq!(go(SHORT, waitall, s), Err(NotHere::WaitAllNotInterrupted));
    let handler = State {
        handler: sigchld(true),
        ..s
    };
    assert!(go(SHORT, waitall, handler).is_ok());
}

#[test]
fn explicit_byte_lengths_go_below_a_segment() {
    let s = State {
        queued_in: 31,
        ..State::default()
    };
    let f = Fault::Short(ShortSpec::Bytes { lo: 5, hi: 5 });
    assert_eq!(
        go(f, call(Op::Recv, FdKind::Tcp, 4096), s),
        Ok(Action::Short {
            len: 5,
            nonblocking: false
        })
    );
}

// ---- 8. connect errors the Linux way ---------------------------------------------------------

#[test]
fn a_nonblocking_connect_learns_of_refusal_later() {
    let nb = State {
        nonblocking: true,
        link: Link::NotConnected,
        ..State::default()
    };
    let c = call(Op::Connect, FdKind::Tcp, 0);
    assert_eq!(
        go(Fault::Errno(libc::ECONNREFUSED), c, nb),
        Ok(Action::ConnectRefusedLater)
    );
    assert_eq!(
        go(Fault::Errno(libc::ETIMEDOUT), c, nb),
        Err(NotHere::TimeoutNeedsBlockingConnect)
    );
    let blocking = State {
        link: Link::NotConnected,
        ..State::default()
    };
    assert_eq!(
        go(Fault::Errno(libc::ECONNREFUSED), c, blocking),
        Ok(Action::Fail {
            errno: libc::ECONNREFUSED,
            brk: Break::None
        })
    );
}

#[test]
fn a_connect_times_out_after_the_syn_retries_or_the_rules_wait() {
    let s = State {
        link: Link::NotConnected,
        ..State::default()
    };
    let c = call(Op::Connect, FdKind::Tcp, 0);
    assert_eq!(
        go(Fault::Errno(libc::ETIMEDOUT), c, s),
        Ok(Action::FailAfter {
            errno: libc::ETIMEDOUT,
            ns: SYN_TIMEOUT_NS
        })
    );
    let after = Fault::ErrnoAfter {
        errno: libc::ETIMEDOUT,
        after_ns: 3_000_000_000,
    };
    assert_eq!(
        go(after, c, s),
        Ok(Action::FailAfter {
            errno: libc::ETIMEDOUT,
            ns: 3_000_000_000
        })
    );
    let sndtimeo = State {
        timeout: Some(1_000_000_000),
        ..s
    };
    assert_eq!(
        go(after, c, sndtimeo),
        Err(NotHere::TimeoutNeedsBlockingConnect)
    );
}

// ---- resets and breaks ---------------------------------------------------------------------

#[test]
fn a_reset_needs_a_connected_tcp_socket() {
    let c = call(Op::Recv, FdKind::Tcp, 10);
    assert_eq!(
        go(Fault::Reset, c, State::default()),
        Ok(Action::Fail {
            errno: libc::ECONNRESET,
            brk: Break::Rst
        })
    );
    let unconnected = State {
        link: Link::NotConnected,
        ..State::default()
    };
    assert_eq!(go(Fault::Reset, c, unconnected), Err(NotHere::NoConnection));
    assert_eq!(
        go(Fault::Errno(libc::ECONNRESET), c, unconnected),
        Err(NotHere::NotConnected)
    );
}

#[test]
fn every_rule_names_its_kernel_source() {
    for rule in NotHere::ALL {
        assert!(!rule.name().is_empty());
        assert!(rule.kernel_source().len() > 10, "{rule:?}");
    }
}

#[test]
fn every_rule_explains_itself_and_says_what_would_let_a_fault_fire() {
    let mut hints = std::collections::HashSet::new();
    for rule in NotHere::ALL {
        assert!(rule.why().len() > 10, "{rule:?} has no explanation");
        assert!(rule.hint().len() > 10, "{rule:?} has no hint");
        assert!(
            hints.insert(rule.hint()),
            "{rule:?} repeats another rule's hint"
        );
        assert_eq!(NotHere::from_name(rule.name()), Some(rule));
    }
    assert_eq!(NotHere::from_name("no-such-rule"), None);
}

#[test]
fn only_datagrams_are_lost_or_duplicated() {
    let udp = call(Op::Sendto, FdKind::Udp, 100);
    assert_eq!(go(Fault::Drop, udp, State::default()), Ok(Action::Drop));
    assert_eq!(
        go(Fault::Duplicate, udp, State::default()),
        Ok(Action::Duplicate)
    );
    let recv = call(Op::Recvfrom, FdKind::Udp, 100);
    assert_eq!(go(Fault::Drop, recv, State::default()), Ok(Action::Drop));
    for kind in [FdKind::Tcp, FdKind::Unix, FdKind::Pipe] {
        let c = call(Op::Send, kind, 100);
        assert_eq!(
            go(Fault::Drop, c, State::default()),
            Err(NotHere::NotADatagram)
        );
        assert_eq!(
            go(Fault::Duplicate, c, State::default()),
            Err(NotHere::NotADatagram)
        );
    }
    let mmsg = call(Op::Sendmmsg, FdKind::Udp, 4);
    assert_eq!(
        go(Fault::Drop, mmsg, State::default()),
        Err(NotHere::NotADatagram)
    );
}

#[test]
fn calls_with_no_fd_fail_or_wait_but_are_never_interrupted() {
    use crate::realise::{ProcessAction, realise_fdless};
    assert_eq!(
        realise_fdless(&Fault::Errno(libc::EMFILE), 0),
        Ok(Action::Fail {
            errno: libc::EMFILE,
            brk: Break::None
        })
    );
    // An open of a regular file sleeps uninterruptibly (kernel-facts F3).
    assert_eq!(
        realise_fdless(&Fault::Errno(libc::EINTR), 0),
        Err(NotHere::WouldNotWait)
    );
    assert_eq!(
        realise_fdless(&Fault::Crash, 0),
        Ok(Action::Process(ProcessAction::Crash))
    );
    // Nothing to cut short or reset.
    assert_eq!(realise_fdless(&Fault::Reset, 0), Err(NotHere::NoFd));
}

#[test]
fn file_syncs_fail_but_never_with_eintr() {
    let fsync = call(Op::Fsync, FdKind::File, 0);
    assert_eq!(
        go(Fault::Errno(libc::EIO), fsync, State::default()),
        Ok(Action::Fail {
            errno: libc::EIO,
            brk: Break::None
        })
    );
    assert_eq!(
        go(Fault::Errno(libc::EINTR), fsync, State::default()),
        Err(NotHere::WouldNotWait)
    );
    // A regular file's write is short only when space runs out, which the disk state decides.
    let pwrite = call(Op::Pwrite, FdKind::File, 4096);
    assert_eq!(
        go(
            Fault::Short(ShortSpec::Percent { lo: 10, hi: 50 }),
            pwrite,
            State::default()
        ),
        Err(NotHere::FileWrite)
    );
}

#[test]
fn an_epoll_wait_gets_eintr_only_when_it_would_sleep_with_a_handler_to_run() {
    use super::{Action, Deliverable, NotHere, RuleContext, realise_wait};
    let eintr = Fault::Errno(libc::EINTR);
    let handler = |_: &[i32]| Deliverable {
        any: true,
        interrupting: false, // SA_RESTART: epoll_wait is never restarted anyway
    };
    let none = |_: &[i32]| Deliverable::default();
    assert!(matches!(
        realise_wait(&eintr, RuleContext::default(), true, handler, 0),
        Ok(Action::Fail {
            errno: libc::EINTR,
            ..
        })
    ));
    assert_eq!(
        realise_wait(&eintr, RuleContext::default(), false, handler, 0).err(),
        Some(NotHere::WouldNotWait),
        "a zero timeout or a ready event returns before signals are looked at"
    );
    assert_eq!(
        realise_wait(&eintr, RuleContext::default(), true, none, 0).err(),
        Some(NotHere::NoDeliverableSignal)
    );
    assert!(matches!(
        realise_wait(
            &Fault::Errno(libc::EBADF),
            RuleContext::default(),
            false,
            none,
            0
        ),
        Ok(Action::Fail {
            errno: libc::EBADF,
            ..
        })
    ));
}

// ---- the grid's cuts follow a short read's rules, except its length --------------------------

#[test]
fn a_grid_cut_is_a_short_tcp_read_before_the_fin() {
    let cut =
        |c: Call, mut s: State| grid_cut(RuleContext::default(), &c, &mut s, MIN_SEGMENT, 1000);
    let tcp = call(Op::Recv, FdKind::Tcp, 4096);
    assert_eq!(cut(tcp, State::default()), Ok(false));
    let nonblocking = State {
        nonblocking: true,
        ..State::default()
    };
    assert_eq!(cut(tcp, nonblocking), Ok(true));
    // A read that would return one small segment is never split, whatever the grid says; an
    // explicit byte length goes further, as for any short read.
    let little = State {
        queued_in: 31,
        ..State::default()
    };
    assert_eq!(cut(tcp, little), Err(NotHere::BelowSegment));
    assert_eq!(
        grid_cut(RuleContext::default(), &tcp, &mut little.clone(), 1, 20),
        Ok(false)
    );
    // Nothing queued: the read waits for what comes, which may be one small segment, so the cut
    // leaves it a segment at least.
    let waiting = State::default();
    assert_eq!(
        grid_cut(
            RuleContext::default(),
            &tcp,
            &mut waiting.clone(),
            MIN_SEGMENT,
            30
        ),
        Err(NotHere::BelowSegment)
    );
    let plenty = State {
        queued_in: 100_000,
        ..State::default()
    };
    assert_eq!(cut(tcp, plenty), Ok(false));
    for kind in [FdKind::Pipe, FdKind::Unix] {
        assert_eq!(
            cut(call(Op::Read, kind, 4096), State::default()),
            Err(NotHere::SplitsAWrite)
        );
    }
    let fin = State {
        shut: Shut {
            cant_recv: true,
            cant_send: false,
        },
        queued_in: 10_000,
        ..State::default()
    };
    assert_eq!(cut(tcp, fin), Err(NotHere::ShutDown));
    let waitall = Call {
        msg_flags: libc::MSG_WAITALL,
        ..tcp
    };
    assert_eq!(
        cut(waitall, State::default()),
        Err(NotHere::WaitAllNotInterrupted)
    );
    assert_eq!(
        cut(call(Op::Send, FdKind::Tcp, 4096), State::default()),
        Err(NotHere::WholeMessages)
    );
}
