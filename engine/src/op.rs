//! The calls the shim intercepts, as the policy names them, and the groups a rule may name instead.

/// One intercepted libc entry point. FORTIFY variants (`__read_chk`...) and the 64-bit aliases
/// (`pread64`, `open64`...) report as their plain op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Op {
    Read,
    Readv,
    Recv,
    Recvfrom,
    Recvmsg,
    Recvmmsg,
    Write,
    Writev,
    Send,
    Sendto,
    Sendmsg,
    Sendmmsg,
    Connect,
    Accept,
    Accept4,
    Setsockopt,
    Shutdown,
    Close,
    /// Name resolution (`resolve`): getaddrinfo; gethostbyname, gethostbyname2 and their `_r`
    /// forms; getnameinfo. No fd: rules match `host` instead of `peer`.
    Getaddrinfo,
    Gethostbyname,
    Getnameinfo,
    /// Positioned and vectored file I/O: reads and writes at an explicit offset.
    Pread,
    Preadv,
    Pwrite,
    Pwritev,
    /// Copies between two fds inside the kernel; they count as writes on the fd written to.
    Sendfile,
    Splice,
    CopyFileRange,
    /// `open`, `open64`, `__open_2`; `openat`...; `creat`: no fd yet, rules match `path`.
    Open,
    Openat,
    Creat,
    Fsync,
    Fdatasync,
    SyncFileRange,
    Syncfs,
    Ftruncate,
    Fallocate,
    PosixFallocate,
    /// Directory entries (`rename`/`renameat`/`renameat2`, `unlink`/`unlinkat`, `mkdir`/`mkdirat`):
    /// no fd, rules match `path` (for rename, the old name).
    Rename,
    Unlink,
    Mkdir,
    /// Calls that make fds without a path (`socket`; `pipe`, `pipe2`; `dup`, `dup2`, `dup3`), for
    /// EMFILE/ENFILE.
    Socket,
    Pipe,
    Dup,
    /// `epoll_wait`, `epoll_pwait`, `epoll_pwait2` with a timeout that is not zero: a wait a signal
    /// can interrupt. Keyed by its count in the process, like `socket`.
    EpollWait,
}

/// Ops that behave alike for realism rules, errno validation and per-connection call counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpClass {
    Reads,
    Writes,
    Connect,
    Accept,
    Setsockopt,
    Shutdown,
    Close,
    Resolve,
    /// The open family.
    Opens,
    /// fsync, fdatasync, sync_file_range, syncfs.
    Syncs,
    /// ftruncate, fallocate, posix_fallocate: calls that change the space a file takes.
    Space,
    /// rename, unlink, mkdir: directory entries.
    Entries,
    /// socket, pipe, dup: new fds from no path.
    NewFds,
    /// epoll_wait: waiting for readiness.
    Waits,
}

pub const OP_COUNT: usize = 45;
pub const CLASS_COUNT: usize = 14;

pub const ALL_OPS: [Op; OP_COUNT] = [
    Op::Read,
    Op::Readv,
    Op::Recv,
    Op::Recvfrom,
    Op::Recvmsg,
    Op::Recvmmsg,
    Op::Write,
    Op::Writev,
    Op::Send,
    Op::Sendto,
    Op::Sendmsg,
    Op::Sendmmsg,
    Op::Connect,
    Op::Accept,
    Op::Accept4,
    Op::Setsockopt,
    Op::Shutdown,
    Op::Close,
    Op::Getaddrinfo,
    Op::Gethostbyname,
    Op::Getnameinfo,
    Op::Pread,
    Op::Preadv,
    Op::Pwrite,
    Op::Pwritev,
    Op::Sendfile,
    Op::Splice,
    Op::CopyFileRange,
    Op::Open,
    Op::Openat,
    Op::Creat,
    Op::Fsync,
    Op::Fdatasync,
    Op::SyncFileRange,
    Op::Syncfs,
    Op::Ftruncate,
    Op::Fallocate,
    Op::PosixFallocate,
    Op::Rename,
    Op::Unlink,
    Op::Mkdir,
    Op::Socket,
    Op::Pipe,
    Op::Dup,
    Op::EpollWait,
];

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Readv => "readv",
            Op::Recv => "recv",
            Op::Recvfrom => "recvfrom",
            Op::Recvmsg => "recvmsg",
            Op::Recvmmsg => "recvmmsg",
            Op::Write => "write",
            Op::Writev => "writev",
            Op::Send => "send",
            Op::Sendto => "sendto",
            Op::Sendmsg => "sendmsg",
            Op::Sendmmsg => "sendmmsg",
            Op::Connect => "connect",
            Op::Accept => "accept",
            Op::Accept4 => "accept4",
            Op::Setsockopt => "setsockopt",
            Op::Shutdown => "shutdown",
            Op::Close => "close",
            Op::Getaddrinfo => "getaddrinfo",
            Op::Gethostbyname => "gethostbyname",
            Op::Getnameinfo => "getnameinfo",
            Op::Pread => "pread",
            Op::Preadv => "preadv",
            Op::Pwrite => "pwrite",
            Op::Pwritev => "pwritev",
            Op::Sendfile => "sendfile",
            Op::Splice => "splice",
            Op::CopyFileRange => "copy_file_range",
            Op::Open => "open",
            Op::Openat => "openat",
            Op::Creat => "creat",
            Op::Fsync => "fsync",
            Op::Fdatasync => "fdatasync",
            Op::SyncFileRange => "sync_file_range",
            Op::Syncfs => "syncfs",
            Op::Ftruncate => "ftruncate",
            Op::Fallocate => "fallocate",
            Op::PosixFallocate => "posix_fallocate",
            Op::Rename => "rename",
            Op::Unlink => "unlink",
            Op::Mkdir => "mkdir",
            Op::Socket => "socket",
            Op::Pipe => "pipe",
            Op::Dup => "dup",
            Op::EpollWait => "epoll_wait",
        }
    }

    pub fn from_name(name: &str) -> Option<Op> {
        ALL_OPS.iter().copied().find(|op| op.name() == name)
    }

    pub fn class(self) -> OpClass {
        match self {
            Op::Read
            | Op::Readv
            | Op::Recv
            | Op::Recvfrom
            | Op::Recvmsg
            | Op::Recvmmsg
            | Op::Pread
            | Op::Preadv => OpClass::Reads,
            Op::Write
            | Op::Writev
            | Op::Send
            | Op::Sendto
            | Op::Sendmsg
            | Op::Sendmmsg
            | Op::Pwrite
            | Op::Pwritev
            | Op::Sendfile
            | Op::Splice
            | Op::CopyFileRange => OpClass::Writes,
            Op::Connect => OpClass::Connect,
            Op::Accept | Op::Accept4 => OpClass::Accept,
            Op::Setsockopt => OpClass::Setsockopt,
            Op::Shutdown => OpClass::Shutdown,
            Op::Close => OpClass::Close,
            Op::Getaddrinfo | Op::Gethostbyname | Op::Getnameinfo => OpClass::Resolve,
            Op::Open | Op::Openat | Op::Creat => OpClass::Opens,
            Op::Fsync | Op::Fdatasync | Op::SyncFileRange | Op::Syncfs => OpClass::Syncs,
            Op::Ftruncate | Op::Fallocate | Op::PosixFallocate => OpClass::Space,
            Op::Rename | Op::Unlink | Op::Mkdir => OpClass::Entries,
            Op::Socket | Op::Pipe | Op::Dup => OpClass::NewFds,
            Op::EpollWait => OpClass::Waits,
        }
    }

    /// The direction data moves in: reads receive, writes send; None for every other op.
    pub fn dir(self) -> Option<Dir> {
        match self.class() {
            OpClass::Reads => Some(Dir::Rx),
            OpClass::Writes => Some(Dir::Tx),
            _ => None,
        }
    }

    /// `mmsg` calls move several datagrams at once; they never get short I/O.
    pub fn is_multi_message(self) -> bool {
        matches!(self, Op::Recvmmsg | Op::Sendmmsg)
    }

    /// Calls decided before there is an fd to classify: by the path they name (opens, entries)
    /// or by their count in the process (socket, pipe).
    pub fn has_no_fd(self) -> bool {
        matches!(
            self.class(),
            OpClass::Resolve | OpClass::Opens | OpClass::Entries
        ) || matches!(self, Op::Socket | Op::Pipe | Op::EpollWait)
    }

    /// What a rule naming this op targets when it says no `fd`: sockets for the socket-era calls,
    /// files for the file calls, pipes for `pipe`, any fd for `dup`.
    pub fn natural_kinds(self) -> crate::kind::KindSet {
        use crate::kind::{FdKind, KindSet};
        match self {
            Op::Pread | Op::Preadv | Op::Pwrite | Op::Pwritev | Op::CopyFileRange => {
                KindSet(FdKind::File.bit())
            }
            Op::Pipe => KindSet(FdKind::Pipe.bit()),
            Op::Dup | Op::EpollWait => KindSet::ANY,
            _ => match self.class() {
                OpClass::Opens | OpClass::Syncs | OpClass::Space | OpClass::Entries => {
                    KindSet(FdKind::File.bit())
                }
                _ => KindSet::SOCKET,
            },
        }
    }

    pub fn bit(self) -> u64 {
        1 << (self as u64)
    }
}

impl OpClass {
    pub const ALL: [OpClass; CLASS_COUNT] = [
        OpClass::Reads,
        OpClass::Writes,
        OpClass::Connect,
        OpClass::Accept,
        OpClass::Setsockopt,
        OpClass::Shutdown,
        OpClass::Close,
        OpClass::Resolve,
        OpClass::Opens,
        OpClass::Syncs,
        OpClass::Space,
        OpClass::Entries,
        OpClass::NewFds,
        OpClass::Waits,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OpClass::Reads => "reads",
            OpClass::Writes => "writes",
            OpClass::Connect => "connect",
            OpClass::Accept => "accept",
            OpClass::Setsockopt => "setsockopt",
            OpClass::Shutdown => "shutdown",
            OpClass::Close => "close",
            OpClass::Resolve => "resolve",
            OpClass::Opens => "opens",
            OpClass::Syncs => "syncs",
            OpClass::Space => "space",
            OpClass::Entries => "entries",
            OpClass::NewFds => "newfds",
            OpClass::Waits => "waits",
        }
    }

    pub fn from_name(name: &str) -> Option<OpClass> {
        OpClass::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn is_data(self) -> bool {
        matches!(self, OpClass::Reads | OpClass::Writes)
    }
}

/// A set of ops as a bitmask (bit = `Op as u64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OpSet(pub u64);

impl OpSet {
    pub fn contains(self, op: Op) -> bool {
        self.0 & op.bit() != 0
    }
    pub fn insert(&mut self, op: Op) {
        self.0 |= op.bit();
    }
    pub fn iter(self) -> impl Iterator<Item = Op> {
        ALL_OPS.into_iter().filter(move |op| self.contains(*op))
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The `fd` kinds a rule on these ops targets when it names none: sockets as soon as one op
    /// is a socket-era call (so `on = "reads"` means what it always meant), else what the ops
    /// themselves work on (files for `opens`, `syncs`, `pread`...).
    pub fn default_kinds(self) -> crate::kind::KindSet {
        use crate::kind::KindSet;
        if self.iter().any(|op| op.natural_kinds() == KindSet::SOCKET) {
            KindSet::SOCKET
        } else {
            KindSet(self.iter().fold(0, |m, op| m | op.natural_kinds().0))
        }
    }

    /// Resolves a name from a policy's `on` list: an op, or a group (`reads`, `writes`, `connect`,
    /// `accept`, `close`, `setsockopt`, `shutdown`, `opens`, `syncs`, `space`, `entries`,
    /// `newfds`, `all`). `connect`, `close`... are both.
    pub fn from_name(name: &str) -> Option<OpSet> {
        let mut set = OpSet::default();
        match name {
            // Every call on an fd: name resolution and fd-less calls are named on their own.
            "all" => ALL_OPS
                .iter()
                .filter(|op| !op.has_no_fd())
                .for_each(|op| set.insert(*op)),
            "reads" | "writes" | "accept" | "resolve" | "opens" | "syncs" | "space" | "entries"
            | "newfds" | "waits" => {
                for op in ALL_OPS {
                    if op.class().name() == name {
                        set.insert(op);
                    }
                }
            }
            _ => set.insert(Op::from_name(name)?),
        }
        Some(set)
    }
}

pub const OP_NAMES_HELP: &str = "read, readv, recv, recvfrom, recvmsg, recvmmsg, write, writev, send, sendto, \
sendmsg, sendmmsg, connect, accept, accept4, setsockopt, shutdown, close, getaddrinfo, gethostbyname, \
getnameinfo, pread, preadv, pwrite, pwritev, sendfile, splice, copy_file_range, open, openat, creat, \
fsync, fdatasync, sync_file_range, syncfs, ftruncate, fallocate, posix_fallocate, rename, unlink, mkdir, \
socket, pipe, dup, epoll_wait, or a group: reads, writes, accept, resolve, opens, syncs, space \
(ftruncate, fallocate), entries (rename, unlink, mkdir), newfds (socket, pipe, dup), waits \
(epoll_wait), all (every call on an fd)";

/// A data call's direction: what the program receives (`rx`) or sends (`tx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    Rx,
    Tx,
}

impl Dir {
    /// `rx` or `tx`, as in a site's text.
    pub fn name(self) -> &'static str {
        match self {
            Dir::Rx => "rx",
            Dir::Tx => "tx",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_groups_expand() {
        for op in ALL_OPS {
            assert_eq!(Op::from_name(op.name()), Some(op));
        }
        let reads = OpSet::from_name("reads").unwrap();
        assert!(reads.contains(Op::Recv) && reads.contains(Op::Readv));
        assert!(!reads.contains(Op::Send));
        let accept = OpSet::from_name("accept").unwrap();
        assert!(accept.contains(Op::Accept) && accept.contains(Op::Accept4));
        assert_eq!(OpSet::from_name("recieve"), None);
        let resolve = OpSet::from_name("resolve").unwrap();
        assert!(resolve.contains(Op::Getaddrinfo) && resolve.contains(Op::Getnameinfo));
        assert!(!OpSet::from_name("all").unwrap().contains(Op::Getaddrinfo));
        for class in OpClass::ALL {
            assert_eq!(OpClass::from_name(class.name()), Some(class));
        }
        assert_eq!(OpClass::from_name("read"), None);
    }

    #[test]
    fn file_calls_join_the_data_groups_and_have_groups_of_their_own() {
        let reads = OpSet::from_name("reads").unwrap();
        assert!(reads.contains(Op::Pread) && reads.contains(Op::Preadv));
        let writes = OpSet::from_name("writes").unwrap();
        assert!(writes.contains(Op::Pwritev) && writes.contains(Op::Sendfile));
        let opens = OpSet::from_name("opens").unwrap();
        assert_eq!(opens.iter().count(), 3);
        let syncs = OpSet::from_name("syncs").unwrap();
        assert!(syncs.contains(Op::Fsync) && syncs.contains(Op::Syncfs));
        // `all` is every call on an fd: not open, rename or socket, which have none yet.
        let all = OpSet::from_name("all").unwrap();
        assert!(all.contains(Op::Fsync) && !all.contains(Op::Open) && !all.contains(Op::Socket));
        assert_eq!(ALL_OPS.len(), OP_COUNT);
        assert!(ALL_OPS.iter().enumerate().all(|(i, op)| *op as usize == i));
    }

    #[test]
    fn a_rule_without_fd_targets_what_its_ops_work_on() {
        use crate::kind::{FdKind, KindSet};
        let kinds = |name: &str| OpSet::from_name(name).unwrap().default_kinds();
        assert_eq!(kinds("reads"), KindSet::SOCKET);
        assert_eq!(kinds("fsync"), KindSet(FdKind::File.bit()));
        assert_eq!(kinds("opens"), KindSet(FdKind::File.bit()));
        assert_eq!(kinds("pipe"), KindSet(FdKind::Pipe.bit()));
        assert_eq!(kinds("sendfile"), KindSet::SOCKET);
    }
}
