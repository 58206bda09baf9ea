//! Platform quirks: errno behaviours of macOS, the BSDs, old Linux and WSL1 that a Linux program never
//! sees in Linux CI, reproduced on Linux. Catalogue and evidence: docs/platform-quirks.md
//! (entry numbers below refer to it).
//!
//! Most quirks are state-triggered: they fire whenever their state occurs, as on the real platform.
//! Race-type ones (`race: true`) depend on timing there, so here they fire with the policy's
//! `quirk_probability`, drawn from the seed. Every quirk returns the Linux value of the errno that
//! platform returns.

use crate::op::{ALL_OPS, OP_COUNT, OpClass};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Macos,
    Freebsd,
    Openbsd,
    LinuxOld,
    Wsl1,
    /// Current Linux itself: errors it really returns that a quiet CI machine almost never produces.
    Linux,
}

impl Platform {
    pub const ALL: [Platform; 6] = [
        Platform::Macos,
        Platform::Freebsd,
        Platform::Openbsd,
        Platform::LinuxOld,
        Platform::Wsl1,
        Platform::Linux,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Platform::Macos => "macos",
            Platform::Freebsd => "freebsd",
            Platform::Openbsd => "openbsd",
            Platform::LinuxOld => "linux-old",
            Platform::Wsl1 => "wsl1",
            Platform::Linux => "linux",
        }
    }

    pub fn from_name(name: &str) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn names() -> String {
        Platform::ALL.map(|p| p.name()).join(", ")
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The quirks the shim implements. The discriminant is the bit in a `QuirkSet`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Quirk {
    SetsockoptAfterShutdown,
    WriteAfterResetEpipe,
    AcceptInheritsNonblock,
    ShutdownEnotconn,
    UnixPathMax103,
    DgramSizeLimit,
    SendtoConnectedEisconn,
    IoOverIntMax,
    GetpeernameEinval,
    SockbufEnobufs,
    NoAccept4,
    NoSocketTypeFlags,
    NoReuseport,
    Wsl1SockoptGaps,
    SendResetEprototype,
    AcceptAbortedEconnaborted,
    AcceptAbortedEmptyAddress,
    UnixDgramEnobufs,
    ConnectRetry,
    UnixBacklogEconnrefused,
    MsgNosignalIgnored,
    ConnectRefusedImmediately,
    ConnectRefusedEinval,
    AcceptPendingError,
    CloseResetEconnreset,
    CloseLingerEintr,
}

pub struct QuirkInfo {
    pub quirk: Quirk,
    pub name: &'static str,
    /// Entry in docs/platform-quirks.md.
    pub entry: u8,
    pub platforms: &'static [Platform],
    pub calls: &'static str,
    pub trigger: &'static str,
    pub emulated: &'static str,
    pub linux: &'static str,
    pub references: &'static str,
    /// Only with --quirk/`quirks = [...]`: it belongs to old versions or special setups of the
    /// platform, so `--platform` alone does not turn it on.
    pub opt_in: bool,
    /// A race on the real platform: fires with the policy's `quirk_probability` (drawn from the seed).
    pub race: bool,
}

use Platform::*;

pub const QUIRKS: &[QuirkInfo] = &[
    QuirkInfo {
        quirk: Quirk::SetsockoptAfterShutdown,
        name: "setsockopt-after-shutdown",
        entry: 2,
        platforms: &[Macos],
        calls: "setsockopt (any option)",
        trigger: "the socket is fully shut down: peer reset, TIME_WAIT/CLOSED after a connection, local SHUT_RDWR, SHUT_WR then peer FIN, or the unix peer closed",
        emulated: "EINVAL, option not applied",
        linux: "succeeds",
        opt_in: false,
        race: false,
        references: "xnu sosetoptlock; falcosecurity/prempti#23, envoyproxy/envoy#1446, capnproto/capnproto#2365, rust-lang/socket2#631",
    },
    QuirkInfo {
        quirk: Quirk::WriteAfterResetEpipe,
        name: "write-after-reset-epipe",
        entry: 5,
        platforms: &[Macos, Freebsd, Openbsd],
        calls: "write, writev, send, sendto, sendmsg",
        trigger: "a send on a TCP socket the peer has reset (Linux would return ECONNRESET)",
        emulated: "EPIPE (and SIGPIPE unless MSG_NOSIGNAL); the next read returns the ECONNRESET",
        linux: "ECONNRESET first, without SIGPIPE, then EPIPE",
        opt_in: false,
        race: false,
        references: "xnu sosendcheck; python/cpython#117484, urllib3/urllib3#3246, oven-sh/bun#36422",
    },
    QuirkInfo {
        quirk: Quirk::AcceptInheritsNonblock,
        name: "accept-inherits-nonblock",
        entry: 6,
        platforms: &[Macos, Freebsd, Openbsd],
        calls: "accept",
        trigger: "accept() on a non-blocking listener",
        emulated: "the new socket is non-blocking too (its first read may fail with EAGAIN)",
        linux: "the new socket is blocking",
        opt_in: false,
        race: false,
        references: "xnu accept1; dotnet/corefx#27210, libsdl-org/SDL_net#6, ziglang/zig#14466",
    },
    QuirkInfo {
        quirk: Quirk::ShutdownEnotconn,
        name: "shutdown-enotconn",
        entry: 7,
        platforms: &[Macos, Freebsd, Openbsd],
        calls: "shutdown",
        trigger: "a listener; SHUT_RD/SHUT_RDWR after the peer's FIN (our FIN is then not sent); SHUT_WR twice; a TCP socket disconnected after a connection",
        emulated: "ENOTCONN, nothing shut (a thread in accept() is not woken)",
        linux: "0 (a listener's accept() is woken and fails EINVAL)",
        opt_in: false,
        race: false,
        references: "xnu soshutdown; tokio-rs/tokio#4665, NixOS/nix#8168, FluidSynth/fluidsynth#1837",
    },
    QuirkInfo {
        quirk: Quirk::UnixPathMax103,
        name: "unix-path-max-103",
        entry: 8,
        platforms: &[Macos, Freebsd, Openbsd],
        calls: "bind, connect, sendto",
        trigger: "an AF_UNIX path longer than 103 bytes (sun_path is 104 bytes there)",
        emulated: "EINVAL",
        linux: "fine up to 107 bytes",
        opt_in: false,
        race: false,
        references: "python/cpython#93852, tailscale/tailscale#19706, MagicStack/uvloop#463",
    },
    QuirkInfo {
        quirk: Quirk::DgramSizeLimit,
        name: "dgram-size-limit",
        entry: 9,
        platforms: &[Macos],
        calls: "send, sendto, sendmsg, write on datagram sockets",
        trigger: "a UDP datagram over 9216 bytes or a unix datagram over 2048, unless SO_SNDBUF was raised",
        emulated: "EMSGSIZE",
        linux: "UDP up to 65507 bytes; unix datagrams up to the send buffer",
        opt_in: false,
        race: false,
        references: "xnu sosendcheck (net.inet.udp.maxdgram, net.local.dgram.maxdgram); dotnet/corefx#23871, solana-labs/solana#4945",
    },
    QuirkInfo {
        quirk: Quirk::SendtoConnectedEisconn,
        name: "sendto-connected-eisconn",
        entry: 10,
        platforms: &[Macos, Freebsd, Openbsd],
        calls: "sendto, sendmsg",
        trigger: "a destination address passed on a connected datagram socket",
        emulated: "EISCONN",
        linux: "sends to the given address",
        opt_in: false,
        race: false,
        references: "xnu udp_output; curl/curl#7260, ngtcp2/ngtcp2#43, envoyproxy/envoy#38171",
    },
    QuirkInfo {
        quirk: Quirk::IoOverIntMax,
        name: "io-over-int-max",
        entry: 11,
        platforms: &[Macos, Freebsd],
        calls: "read, write, recv, send and their vector/message forms",
        trigger: "a size (or iovec sum) above INT_MAX",
        emulated: "EINVAL",
        linux: "a short transfer of at most 0x7ffff000 bytes",
        opt_in: false,
        race: false,
        references: "xnu sys_generic.c; rust-lang/rust#38590, golang.org/issue/7812, erlang/otp#6242",
    },
    QuirkInfo {
        quirk: Quirk::GetpeernameEinval,
        name: "getpeername-einval",
        entry: 16,
        platforms: &[Macos],
        calls: "getpeername",
        trigger: "the socket is fully shut down (as for setsockopt-after-shutdown)",
        emulated: "EINVAL",
        linux: "succeeds, or ENOTCONN once closed",
        opt_in: false,
        race: false,
        references: "xnu getpeername; Thomasdezeeuw/heph#336, giampaolo/pyftpdlib#143, Kludex/uvicorn#494",
    },
    QuirkInfo {
        quirk: Quirk::SockbufEnobufs,
        name: "sockbuf-enobufs",
        entry: 18,
        platforms: &[Macos, Freebsd],
        calls: "setsockopt SO_SNDBUF/SO_RCVBUF",
        trigger: "a size above the platform limit (macOS <= 14.0: 7,456,540 bytes) or below 1",
        emulated: "ENOBUFS (below 1: EINVAL), option not applied",
        linux: "silently clamped",
        opt_in: false,
        race: false,
        references: "xnu sbreserve; dotnet/corefx#27814, pebbe/zmq4#73, private-octopus/picoquic#2180",
    },
    QuirkInfo {
        quirk: Quirk::NoAccept4,
        name: "no-accept4",
        entry: 23,
        platforms: &[LinuxOld],
        calls: "accept4",
        trigger: "any call (Linux before 2.6.28)",
        emulated: "ENOSYS, nothing accepted",
        linux: "accept4 works",
        opt_in: false,
        race: false,
        references: "gdnsd/gdnsd#33, tokio-rs/mio#1466, Go internal/poll/sock_cloexec.go",
    },
    QuirkInfo {
        quirk: Quirk::NoSocketTypeFlags,
        name: "no-socket-type-flags",
        entry: 23,
        platforms: &[LinuxOld],
        calls: "socket, socketpair",
        trigger: "SOCK_NONBLOCK or SOCK_CLOEXEC in the type (Linux before 2.6.27)",
        emulated: "EINVAL",
        linux: "accepted",
        opt_in: false,
        race: false,
        references: "eudev-project/eudev#7, Go internal/poll/sock_cloexec.go",
    },
    QuirkInfo {
        quirk: Quirk::NoReuseport,
        name: "no-reuseport",
        entry: 23,
        platforms: &[LinuxOld],
        calls: "setsockopt SO_REUSEPORT",
        trigger: "any call (Linux before 3.9, e.g. RHEL/CentOS 6 whose headers define it)",
        emulated: "ENOPROTOOPT",
        linux: "supported",
        opt_in: false,
        race: false,
        references: "nanomsg/nanomsg#800, alibaba/tengine#704, varnish/hitch#122",
    },
    QuirkInfo {
        quirk: Quirk::Wsl1SockoptGaps,
        name: "wsl1-sockopt-gaps",
        entry: 24,
        platforms: &[Wsl1],
        calls: "setsockopt SO_REUSEPORT, TCP_KEEPCNT, SO_LINGER on AF_UNIX",
        trigger: "those options",
        emulated: "EINVAL",
        linux: "supported",
        opt_in: false,
        race: false,
        references: "microsoft/WSL#1419, #843, #3992; Kitura/BlueSocket#81",
    },
    QuirkInfo {
        quirk: Quirk::SendResetEprototype,
        name: "send-reset-eprototype",
        entry: 1,
        platforms: &[Macos],
        calls: "write, writev, send, sendto, sendmsg on TCP",
        trigger: "the first send that fails because the peer reset the connection (macOS 10.10-11, or any macOS with a VPN/flow-divert extension)",
        emulated: "EPROTOTYPE",
        linux: "ECONNRESET, then EPIPE",
        opt_in: true,
        race: true,
        references: "xnu tcp_usr_send; golang/go#51538, libuv/libuv#482 #3405, tokio-rs/mio#1364, apple/swift-nio#1706",
    },
    QuirkInfo {
        quirk: Quirk::AcceptAbortedEconnaborted,
        name: "accept-aborted-econnaborted",
        entry: 3,
        platforms: &[Freebsd, Openbsd],
        calls: "accept, accept4",
        trigger: "the queued connection was reset by the client before accept() took it",
        emulated: "ECONNABORTED (the dead connection is closed)",
        linux: "returns the socket; its first read fails with ECONNRESET",
        opt_in: false,
        race: true,
        references: "FreeBSD accept(2); giampaolo/pyftpdlib#105, grpc/grpc#29318, measurement-factory/squid#27",
    },
    QuirkInfo {
        quirk: Quirk::AcceptAbortedEmptyAddress,
        name: "accept-aborted-empty-address",
        entry: 3,
        platforms: &[Macos],
        calls: "accept, accept4",
        trigger: "the queued connection was reset by the client before accept() took it",
        emulated: "success with *addrlen = 0 and a dead socket (setsockopt then fails EINVAL)",
        linux: "returns the socket with its peer address",
        opt_in: false,
        race: true,
        references: "xnu accept1; cloudflare/workerd#4623, capnproto/capnproto#2365",
    },
    QuirkInfo {
        quirk: Quirk::UnixDgramEnobufs,
        name: "unix-dgram-enobufs",
        entry: 4,
        platforms: &[Macos, Freebsd],
        calls: "send, sendto, sendmsg, write on AF_UNIX datagram sockets",
        trigger: "the receiver's queue is full, even on a blocking socket",
        emulated: "ENOBUFS at once",
        linux: "a blocking send waits; a non-blocking one fails EAGAIN",
        opt_in: false,
        race: false,
        references: "wazuh/wazuh#37349, bnoordhuis/node-unix-dgram#39, quinn-rs/quinn#2293, firezone/firezone#9798",
    },
    QuirkInfo {
        quirk: Quirk::ConnectRetry,
        name: "connect-retry",
        entry: 14,
        platforms: &[Macos, Freebsd, Openbsd],
        calls: "connect",
        trigger: "a second connect() on the same socket: after EINTR, or after a failed connect",
        emulated: "after EINTR: EISCONN (blocking) or EALREADY (non-blocking, handshake under way); after a failure: EINVAL",
        linux: "after EINTR the retry waits and returns 0; after a failure the retry works",
        opt_in: false,
        race: false,
        references: "rust-lang/rust#116132, irods/irods#2948, lf-lang/reactor-c#595, dotnet/corefx#5871",
    },
    QuirkInfo {
        quirk: Quirk::UnixBacklogEconnrefused,
        name: "unix-backlog-econnrefused",
        entry: 17,
        platforms: &[Macos, Freebsd, Openbsd],
        calls: "connect on AF_UNIX stream sockets",
        trigger: "the listener's backlog is full",
        emulated: "ECONNREFUSED, as if nobody listened",
        linux: "EAGAIN (non-blocking) or waits",
        opt_in: false,
        race: false,
        references: "xnu unp_connect; curl/curl#18748, tokio-rs/mio#1560, elle-lisp/elle#975",
    },
    QuirkInfo {
        quirk: Quirk::MsgNosignalIgnored,
        name: "msg-nosignal-ignored",
        entry: 21,
        platforms: &[Macos],
        calls: "send, sendto, sendmsg",
        trigger: "EPIPE on a send that passed MSG_NOSIGNAL (portable code built against macOS < 11 headers defines it as 0)",
        emulated: "SIGPIPE is raised anyway",
        linux: "EPIPE without a signal",
        opt_in: true,
        race: false,
        references: "nim-lang/Nim#1784, irungentoo/toxcore#832, nats-io/nats.c#277",
    },
    QuirkInfo {
        quirk: Quirk::ConnectRefusedImmediately,
        name: "connect-refused-immediately",
        entry: 22,
        platforms: &[Freebsd, Wsl1],
        calls: "connect (non-blocking TCP)",
        trigger: "a refused connection to a local address",
        emulated: "ECONNREFUSED from connect() itself",
        linux: "EINPROGRESS; the refusal comes later through SO_ERROR",
        opt_in: false,
        race: false,
        references: "libuv src/unix/tcp.c; microsoft/WSL#1584, equalsraf/neovim-qt#289",
    },
    QuirkInfo {
        quirk: Quirk::ConnectRefusedEinval,
        name: "connect-refused-einval",
        entry: 22,
        platforms: &[Openbsd],
        calls: "connect (non-blocking TCP)",
        trigger: "a refused connection to a local address",
        emulated: "EINVAL from connect() itself",
        linux: "EINPROGRESS; the refusal comes later through SO_ERROR",
        opt_in: false,
        race: false,
        references: "libuv src/unix/tcp.c (\"Solaris and OpenBSD wants to report immediately\")",
    },
    QuirkInfo {
        quirk: Quirk::AcceptPendingError,
        name: "accept-pending-error",
        entry: 12,
        platforms: &[Linux],
        calls: "accept, accept4 on TCP listeners",
        trigger: "a connection is queued and the network reports an error for it (interface down, route gone, ICMP unreachable)",
        emulated: "one of ENETDOWN, EPROTO, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH; the connection stays queued, so a retry gets it",
        linux: "the same, but almost never on a quiet CI machine",
        opt_in: false,
        race: true,
        references: "man 2 accept (\"treat them like EAGAIN by retrying\"); cockpit-project/cockpit#12673, ponylang/ponyc#4052, yandex/odyssey#1508",
    },
    QuirkInfo {
        quirk: Quirk::CloseResetEconnreset,
        name: "close-reset-econnreset",
        entry: 13,
        platforms: &[Freebsd],
        calls: "close on TCP",
        trigger: "the peer reset the connection before all the data written to it was acknowledged",
        emulated: "ECONNRESET; the fd is released anyway (a retried close gets EBADF, and is logged)",
        linux: "0",
        opt_in: false,
        race: false,
        references: "FreeBSD close(2); python/cpython#74504 (FreeBSD PR 159179), dotnet/corefx#33448, mirage/capnp-rpc#302",
    },
    QuirkInfo {
        quirk: Quirk::CloseLingerEintr,
        name: "close-linger-eintr",
        entry: 13,
        platforms: &[Macos],
        calls: "close on TCP",
        trigger: "SO_LINGER with l_linger > 0, unsent data, and a signal handler without SA_RESTART: a signal lands while close sleeps",
        emulated: "EINTR; the fd is released anyway (a retried close gets EBADF, and is logged)",
        linux: "0 after the linger wait",
        opt_in: false,
        race: true,
        references: "xnu soclose_locked; wahern/cqueues#56, shellinabox/shellinabox#391, ocaml-multicore/eio#786",
    },
];

impl Quirk {
    pub fn info(self) -> &'static QuirkInfo {
        QUIRKS
            .iter()
            .find(|q| q.quirk == self)
            .expect("every quirk is catalogued")
    }
    pub fn name(self) -> &'static str {
        self.info().name
    }
    pub fn bit(self) -> u32 {
        1 << self as u32
    }
}

pub fn quirk_by_name(name: &str) -> Option<Quirk> {
    QUIRKS.iter().find(|q| q.name == name).map(|q| q.quirk)
}

pub fn quirk_names() -> String {
    QUIRKS.iter().map(|q| q.name).collect::<Vec<_>>().join(", ")
}

/// A set of quirks as a bitmask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuirkSet(pub u32);

impl QuirkSet {
    pub fn has(self, q: Quirk) -> bool {
        self.0 & q.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn of_platform(p: Platform) -> QuirkSet {
        QuirkSet(
            QUIRKS
                .iter()
                .filter(|q| q.platforms.contains(&p) && !q.opt_in)
                .fold(0, |m, q| m | q.quirk.bit()),
        )
    }
    pub fn names(self) -> Vec<&'static str> {
        QUIRKS
            .iter()
            .filter(|q| self.has(q.quirk))
            .map(|q| q.name)
            .collect()
    }
}

/// A name `resolve` does not know, and which list it came from, so a caller can point at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuirkError {
    UnknownPlatform(String),
    /// `removing`: the name was in the list of quirks to take away.
    UnknownQuirk {
        name: String,
        removing: bool,
    },
}

impl fmt::Display for QuirkError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            QuirkError::UnknownPlatform(p) => write!(
                f,
                "unknown platform `{p}`; expected one of {}",
                Platform::names()
            ),
            QuirkError::UnknownQuirk { name, .. } => write!(
                f,
                "unknown quirk `{name}`; expected one of {}",
                quirk_names()
            ),
        }
    }
}

impl std::error::Error for QuirkError {}

/// ctl's failures carry text.
impl From<QuirkError> for String {
    fn from(e: QuirkError) -> String {
        e.to_string()
    }
}

/// The quirks in effect: a platform's, plus `add`, minus `remove`. Names are checked.
pub fn resolve(
    platform: Option<&str>,
    add: &[&str],
    remove: &[&str],
) -> Result<QuirkSet, QuirkError> {
    let mut set = match platform {
        None => QuirkSet::default(),
        Some(p) => QuirkSet::of_platform(
            Platform::from_name(p).ok_or_else(|| QuirkError::UnknownPlatform(p.to_string()))?,
        ),
    };
    let lookup = |n: &str, removing: bool| {
        quirk_by_name(n).ok_or_else(|| QuirkError::UnknownQuirk {
            name: n.to_string(),
            removing,
        })
    };
    for n in add {
        set.0 |= lookup(n, false)?.bit();
    }
    for n in remove {
        set.0 &= !lookup(n, true)?.bit();
    }
    Ok(set)
}

/// Ops whose every call must take the slow path for the quirks in effect.
pub fn forced_ops(quirks: QuirkSet) -> [bool; OP_COUNT] {
    let mut forced = [false; OP_COUNT];
    for op in ALL_OPS {
        let class = op.class();
        let data = class.is_data();
        let writes = class == OpClass::Writes;
        forced[op as usize] = (data
            && (quirks.has(Quirk::IoOverIntMax) || quirks.has(Quirk::WriteAfterResetEpipe)))
            || (writes
                && [
                    Quirk::DgramSizeLimit,
                    Quirk::SendtoConnectedEisconn,
                    Quirk::UnixPathMax103,
                    Quirk::SendResetEprototype,
                    Quirk::UnixDgramEnobufs,
                    Quirk::MsgNosignalIgnored,
                    // counts the bytes written, to know whether a reset left some unacknowledged
                    Quirk::CloseResetEconnreset,
                ]
                .iter()
                .any(|q| quirks.has(*q)));
    }
    forced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_and_names_resolve() {
        let mac = resolve(Some("macos"), &[], &[]).unwrap();
        assert!(mac.has(Quirk::SetsockoptAfterShutdown));
        assert!(!mac.has(Quirk::NoAccept4));
        let less = resolve(Some("macos"), &[], &["setsockopt-after-shutdown"]).unwrap();
        assert!(!less.has(Quirk::SetsockoptAfterShutdown));
        assert!(
            !mac.has(Quirk::SendResetEprototype),
            "opt-in quirks need --quirk"
        );
        let one = resolve(None, &["no-accept4"], &[]).unwrap();
        assert_eq!(one.names(), vec!["no-accept4"]);
        let e = resolve(Some("macOS"), &[], &[]).unwrap_err();
        assert_eq!(e, QuirkError::UnknownPlatform("macOS".into()));
        assert!(e.to_string().contains("expected one of macos"), "{e}");
        let e = resolve(None, &["no-accept4"], &["nope"]).unwrap_err();
        assert_eq!(
            e,
            QuirkError::UnknownQuirk {
                name: "nope".into(),
                removing: true
            }
        );
        assert!(
            e.to_string()
                .starts_with("unknown quirk `nope`; expected one of "),
            "{e}"
        );
        for q in QUIRKS {
            assert_eq!(q.quirk.info().name, q.name);
            assert!(!q.platforms.is_empty());
        }
    }
}
