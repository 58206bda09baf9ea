//! What kind of file an fd is, as far as targeting and realism care.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FdKind {
    Tcp = 0,
    Udp = 1,
    Unix = 2,
    Pipe = 3,
    File = 4,
    /// Any other socket (netlink, raw, packet...).
    OtherSocket = 5,
    /// tty, eventfd, epoll, /dev/null...
    Other = 6,
}

impl FdKind {
    pub const ALL: [FdKind; 7] = [
        FdKind::Tcp,
        FdKind::Udp,
        FdKind::Unix,
        FdKind::Pipe,
        FdKind::File,
        FdKind::OtherSocket,
        FdKind::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FdKind::Tcp => "tcp",
            FdKind::Udp => "udp",
            FdKind::Unix => "unix",
            FdKind::Pipe => "pipe",
            FdKind::File => "file",
            FdKind::OtherSocket => "socket",
            FdKind::Other => "other",
        }
    }

    pub fn from_bits(bits: u8) -> FdKind {
        FdKind::ALL
            .get(bits as usize)
            .copied()
            .unwrap_or(FdKind::Other)
    }

    pub fn is_socket(self) -> bool {
        matches!(
            self,
            FdKind::Tcp | FdKind::Udp | FdKind::Unix | FdKind::OtherSocket
        )
    }

    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The kind of an fd from its `st_mode` and, for a socket, its SO_DOMAIN and SO_TYPE
    /// (`domain_type` is asked only for sockets), and whether it is a byte stream.
    pub fn classify(mode: u32, domain_type: impl FnOnce() -> (i32, i32)) -> (FdKind, bool) {
        match mode & libc::S_IFMT {
            libc::S_IFSOCK => match domain_type() {
                (libc::AF_INET | libc::AF_INET6, libc::SOCK_STREAM) => (FdKind::Tcp, true),
                (libc::AF_INET | libc::AF_INET6, libc::SOCK_DGRAM) => (FdKind::Udp, false),
                (libc::AF_UNIX, t) => (FdKind::Unix, t == libc::SOCK_STREAM),
                _ => (FdKind::OtherSocket, false),
            },
            libc::S_IFIFO => (FdKind::Pipe, true),
            libc::S_IFREG => (FdKind::File, true),
            _ => (FdKind::Other, false),
        }
    }
}

/// The `fd = "..."` selector of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindSet(pub u8);

impl KindSet {
    pub const SOCKET: KindSet = KindSet(
        (1 << FdKind::Tcp as u8)
            | (1 << FdKind::Udp as u8)
            | (1 << FdKind::Unix as u8)
            | (1 << FdKind::OtherSocket as u8),
    );

    pub const ANY: KindSet = KindSet(0x7f);

    pub fn contains(self, kind: FdKind) -> bool {
        self.0 & kind.bit() != 0
    }

    pub fn from_name(name: &str) -> Option<KindSet> {
        Some(match name {
            "socket" => KindSet::SOCKET,
            "any" => KindSet::ANY,
            "tcp" => KindSet(FdKind::Tcp.bit()),
            "udp" => KindSet(FdKind::Udp.bit()),
            "unix" => KindSet(FdKind::Unix.bit()),
            "pipe" => KindSet(FdKind::Pipe.bit()),
            "file" => KindSet(FdKind::File.bit()),
            _ => return None,
        })
    }
}

pub const KIND_NAMES_HELP: &str = "tcp, udp, unix, pipe, file, socket, any";
