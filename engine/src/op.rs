//! The calls the shim intercepts, as the policy names them, and the groups a rule may name instead.

/// One intercepted libc entry point. FORTIFY variants (`__read_chk`...) report as their plain op.
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
}

pub const OP_COUNT: usize = 21;
pub const CLASS_COUNT: usize = 8;

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
        }
    }

    pub fn from_name(name: &str) -> Option<Op> {
        ALL_OPS.iter().copied().find(|op| op.name() == name)
    }

    pub fn class(self) -> OpClass {
        match self {
            Op::Read | Op::Readv | Op::Recv | Op::Recvfrom | Op::Recvmsg | Op::Recvmmsg => {
                OpClass::Reads
            }
            Op::Write | Op::Writev | Op::Send | Op::Sendto | Op::Sendmsg | Op::Sendmmsg => {
                OpClass::Writes
            }
            Op::Connect => OpClass::Connect,
            Op::Accept | Op::Accept4 => OpClass::Accept,
            Op::Setsockopt => OpClass::Setsockopt,
            Op::Shutdown => OpClass::Shutdown,
            Op::Close => OpClass::Close,
            Op::Getaddrinfo | Op::Gethostbyname | Op::Getnameinfo => OpClass::Resolve,
        }
    }

    /// The direction data moves in: reads receive, writes send; None for every other op.
    pub fn dir(self) -> Option<crate::decide::Dir> {
        match self.class() {
            OpClass::Reads => Some(crate::decide::Dir::Rx),
            OpClass::Writes => Some(crate::decide::Dir::Tx),
            _ => None,
        }
    }

    /// `mmsg` calls move several datagrams at once; they never get short I/O.
    pub fn is_multi_message(self) -> bool {
        matches!(self, Op::Recvmmsg | Op::Sendmmsg)
    }

    pub fn bit(self) -> u32 {
        1 << (self as u32)
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
        }
    }

    pub fn from_name(name: &str) -> Option<OpClass> {
        OpClass::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn is_data(self) -> bool {
        matches!(self, OpClass::Reads | OpClass::Writes)
    }
}

/// A set of ops as a bitmask (bit = `Op as u32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OpSet(pub u32);

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

    /// Resolves a name from a policy's `on` list: an op, or a group (`reads`, `writes`, `connect`,
    /// `accept`, `close`, `setsockopt`, `shutdown`, `all`). `connect`, `close`... are both.
    pub fn from_name(name: &str) -> Option<OpSet> {
        let mut set = OpSet::default();
        match name {
            // Every call on an fd: name resolution is named on its own.
            "all" => ALL_OPS
                .iter()
                .filter(|op| op.class() != OpClass::Resolve)
                .for_each(|op| set.insert(*op)),
            "reads" | "writes" | "accept" | "resolve" => {
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
getnameinfo, or a group: reads, writes, accept, resolve, all (every call on an fd)";

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
}
