//! Deciding what to do with one intercepted call: which rule fires, if any, and how the fault is
//! applied so that the result is one the kernel could have produced.

use crate::fdtable::{self, Meta, Slot};
use crate::runtime::Runtime;
use crate::sys;
use chaos_engine::decide::{Dir, INJECTED, Key, Site, draw};
use chaos_engine::fault::Fault;
use chaos_engine::kind::FdKind;
use chaos_engine::op::{Op, OpClass};
use core::sync::atomic::Ordering::Relaxed;
use libc::c_int;

/// What the hook will do instead of (or around) the real call.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    /// Fail before doing anything, after breaking the connection as described.
    Fail { errno: c_int, brk: Break },
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

#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub action: Action,
    pub source: Source,
    pub key: Key,
}

/// What decided a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The policy's rule with this index, by its draw.
    Rule(usize),
    /// The policy's exact injection with this index (`[[inject]]`).
    Injection(usize),
}

impl Source {
    pub fn fault(self, rt: &Runtime) -> &Fault {
        match self {
            Source::Rule(i) => &rt.policy.rules[i].fault,
            Source::Injection(i) => &rt.policy.injections.get(i).fault,
        }
    }
}

/// The exact injection at this key, if the policy has one (no draw: it always fires, where the
/// kernel could produce it).
pub fn injected(rt: &Runtime, call: &Call, meta: Meta, conn: u64, site: Site) -> Option<Plan> {
    if !rt.injecting {
        return None;
    }
    let process = crate::runtime::PROCESS_KEY.load(Relaxed);
    let (i, inj) = rt.policy.injections.at(process, conn, site)?;
    let action = realise(&inj.fault, call, meta, 0)?;
    Some(Plan {
        action,
        source: Source::Injection(i),
        key: Key {
            process,
            conn,
            rule: INJECTED,
            site,
        },
    })
}

/// The facts about one call that decisions depend on.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub op: Op,
    pub fd: c_int,
    pub requested: usize,
    /// MSG_* flags of the call (0 for read/write).
    pub msg_flags: c_int,
    /// sendto/sendmsg's destination address (null otherwise).
    pub dest: *const libc::sockaddr,
    pub dest_len: libc::socklen_t,
}

impl Call {
    pub fn dir(&self) -> Option<Dir> {
        match self.op.class() {
            OpClass::Reads => Some(Dir::Rx),
            OpClass::Writes => Some(Dir::Tx),
            _ => None,
        }
    }
}

/// Where on the connection this call sits, advancing the slot's counters.
pub fn site_for(call: &Call, slot: &Slot, meta: Meta) -> (Site, u64) {
    let class = call.op.class();
    let n = slot.calls[class as usize].fetch_add(1, Relaxed) as u64;
    let site = match call.dir() {
        Some(dir) if meta.stream() && !call.op.is_multi_message() => Site::Stream {
            dir,
            pos: slot.pos[dir as usize].load(Relaxed),
            attempt: slot.attempt[dir as usize].fetch_add(1, Relaxed),
        },
        _ => Site::Call { class, n },
    };
    (site, n)
}

/// Runs the rules whose bits are in `candidates` in order; the first that fires wins.
pub fn choose(
    rt: &Runtime,
    call: &Call,
    meta: Meta,
    conn: u64,
    site: Site,
    n: u64,
    candidates: u32,
) -> Option<Plan> {
    let process = crate::runtime::PROCESS_KEY.load(Relaxed);
    let mut bits = candidates;
    let mut now = None;
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let rule = &rt.policy.rules[i];
        if !rule.counts_allow(n) {
            continue;
        }
        if let Some((start, end)) = rule.window {
            let t = *now.get_or_insert_with(|| sys::now_ns(libc::CLOCK_MONOTONIC) - rt.start_ns);
            if t < start || t >= end {
                continue;
            }
        }
        let key = Key {
            process,
            conn,
            rule: i as u16,
            site,
        };
        let d = draw(rt.seed, &key);
        if d.chance >= rt.thresholds[i] && rt.thresholds[i] != u64::MAX {
            continue;
        }
        let Some(action) = realise(&rule.fault, call, meta, d.param) else {
            continue;
        };
        if let Some(times) = rule.times
            && rt.injected[i].fetch_add(1, Relaxed) >= times
        {
            continue;
        }
        return Some(Plan {
            action,
            source: Source::Rule(i),
            key,
        });
    }
    None
}

/// Turns a rule's fault into an action for this call, or None where the kernel could not have
/// produced it here (the rule then does not fire).
fn realise(fault: &Fault, call: &Call, meta: Meta, param: u64) -> Option<Action> {
    let kind = meta.kind();
    let dir = call.dir();
    match *fault {
        Fault::Delay(range) => Some(Action::Delay(range.pick(param))),
        Fault::Short(spec) => {
            let shortable = meta.stream()
                && !call.op.is_multi_message()
                && !(kind == FdKind::File && dir == Some(Dir::Tx))
                // Pipe writes of at most PIPE_BUF bytes are atomic.
                && !(kind == FdKind::Pipe && dir == Some(Dir::Tx) && call.requested <= libc::PIPE_BUF);
            if !shortable {
                return None;
            }
            let len = spec.pick(call.requested, param)?;
            Some(Action::Short {
                len,
                nonblocking: mode(call, kind) == Mode::Nonblocking,
            })
        }
        Fault::Stall(range) => Some(Action::Stall {
            ns: range.pick(param),
            mode: mode(call, kind),
        }),
        Fault::Errno(libc::EAGAIN) if call.op != Op::Connect => {
            // A plain EAGAIN is a one-call stall, and only where the call could not block.
            let m = mode(call, kind);
            (m == Mode::Nonblocking).then_some(Action::Stall { ns: 0, mode: m })
        }
        Fault::Reset => {
            let connected = kind == FdKind::Tcp && peer_known(call.fd);
            connected.then_some(Action::Fail {
                errno: libc::ECONNRESET,
                brk: Break::Rst,
            })
        }
        Fault::Errno(libc::EINTR) => {
            if !could_be_interrupted(call, kind) {
                return None;
            }
            Some(if call.op == Op::Connect {
                Action::ConnectEintr
            } else {
                Action::Fail {
                    errno: libc::EINTR,
                    brk: Break::None,
                }
            })
        }
        Fault::Errno(errno) => {
            let brk = match (errno, call.op.class(), kind) {
                (libc::ECONNRESET, OpClass::Reads | OpClass::Writes, FdKind::Tcp)
                    if peer_known(call.fd) =>
                {
                    Break::Rst
                }
                (libc::ECONNRESET, OpClass::Reads | OpClass::Writes, FdKind::Unix)
                    if meta.stream() =>
                {
                    Break::ShutBoth
                }
                (libc::EPIPE, OpClass::Writes, FdKind::Tcp | FdKind::Unix) if meta.stream() => {
                    Break::ShutWrite
                }
                _ => Break::None,
            };
            Some(Action::Fail { errno, brk })
        }
    }
}

/// How this call would behave if the fd were not ready.
pub fn mode(call: &Call, kind: FdKind) -> Mode {
    if call.msg_flags & libc::MSG_DONTWAIT != 0 || sys::fcntl_getfl(call.fd) & libc::O_NONBLOCK != 0
    {
        return Mode::Nonblocking;
    }
    if kind.is_socket() {
        let name = match call.dir() {
            Some(Dir::Tx) => libc::SO_SNDTIMEO,
            _ => libc::SO_RCVTIMEO,
        };
        if let Some(ns) = sys::timeout_ns(call.fd, name) {
            return Mode::Timeout(ns);
        }
    }
    Mode::Blocking
}

fn peer_known(fd: c_int) -> bool {
    fdtable::SockAddrBuf::read(fd, true).len > 0
}

/// EINTR needs a call that can block (no O_NONBLOCK, no MSG_DONTWAIT, not a regular file) and a
/// signal handler that would interrupt it: installed without SA_RESTART, or any handler when the
/// socket has a timeout (signal(7): such calls are never restarted).
fn could_be_interrupted(call: &Call, kind: FdKind) -> bool {
    if kind == FdKind::File || call.msg_flags & libc::MSG_DONTWAIT != 0 {
        return false;
    }
    if call.op != Op::Close && sys::fcntl_getfl(call.fd) & libc::O_NONBLOCK != 0 {
        return false;
    }
    let timeout = kind.is_socket()
        && match call.dir() {
            Some(Dir::Rx) => sys::has_timeout(call.fd, libc::SO_RCVTIMEO),
            Some(Dir::Tx) => sys::has_timeout(call.fd, libc::SO_SNDTIMEO),
            None => false,
        };
    sys::interrupting_handler_installed(timeout)
}

/// The connection key for a connect() that has not created its connection yet: every connect
/// attempt of a kind in this process is numbered, so a program that retries on new sockets gets a
/// fresh decision each time.
pub fn connect_site(kind: FdKind) -> (u64, Site, u64) {
    static ATTEMPTS: [core::sync::atomic::AtomicU32; 7] =
        [const { core::sync::atomic::AtomicU32::new(0) }; 7];
    let n = ATTEMPTS[kind as usize].fetch_add(1, Relaxed) as u64;
    let conn = chaos_engine::inject::connects_key(kind);
    (
        conn,
        Site::Call {
            class: OpClass::Connect,
            n,
        },
        n,
    )
}
