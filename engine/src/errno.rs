//! Errno names (Linux values) and which errnos each kind of call can really return on Linux.
//!
//! The allow-lists come from the Linux man pages (read(2), recv(2), send(2), connect(2), accept(2),
//! setsockopt(2), shutdown(2), close(2); open(2), pread(2), fsync(2), fallocate(2), rename(2), unlink(2),
//! mkdir(2), sendfile(2), splice(2), copy_file_range(2), pipe(2), dup(2)) plus the pending socket errors the kernel reports through any
//! data call (ECONNRESET, ETIMEDOUT, EHOSTUNREACH...). A rule naming an errno outside its ops' lists is
//! rejected unless it says `any_errno = true`.

use crate::op::OpClass;

macro_rules! errno_table {
    ($($name:ident),* $(,)?) => {
        /// Every errno a policy may name, with its Linux value.
        pub const ERRNOS: &[(&str, i32)] = &[$((stringify!($name), libc::$name)),*];
    };
}

errno_table!(
    EPERM,
    ENOENT,
    EINTR,
    EIO,
    ENXIO,
    EBADF,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    EFBIG,
    ENOSPC,
    ESPIPE,
    EROFS,
    EPIPE,
    EDQUOT,
    ENOSYS,
    ENOTSOCK,
    EDESTADDRREQ,
    EMSGSIZE,
    EPROTOTYPE,
    ENOPROTOOPT,
    EPROTONOSUPPORT,
    EOPNOTSUPP,
    EAFNOSUPPORT,
    EADDRINUSE,
    EADDRNOTAVAIL,
    ENETDOWN,
    ENETUNREACH,
    ENETRESET,
    ECONNABORTED,
    ECONNRESET,
    ENOBUFS,
    EISCONN,
    ENOTCONN,
    ETIMEDOUT,
    ECONNREFUSED,
    EHOSTDOWN,
    EHOSTUNREACH,
    EALREADY,
    EINPROGRESS,
    EPROTO,
    ENONET,
    EREMOTEIO,
    ECANCELED,
    ELOOP,
    ENAMETOOLONG,
    ETXTBSY,
    EOVERFLOW,
    EMLINK,
    ENOTEMPTY,
    EXDEV,
);

pub fn errno_value(name: &str) -> Option<i32> {
    if name == "EWOULDBLOCK" {
        return Some(libc::EWOULDBLOCK);
    }
    ERRNOS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

pub fn errno_name(value: i32) -> &'static str {
    ERRNOS
        .iter()
        .find(|(_, v)| *v == value)
        .map(|(n, _)| *n)
        .unwrap_or("E?")
}

/// Errors a socket can have pending (from an RST, ICMP or timeout) and hand to any data call.
pub(crate) const PENDING_NET: &[&str] = &[
    "ECONNRESET",
    "ETIMEDOUT",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "ENETDOWN",
    "EHOSTDOWN",
    "ECONNREFUSED",
    "EPROTO",
];

fn own_list(class: OpClass) -> &'static [&'static str] {
    match class {
        // pread(2)/preadv(2) add ESPIPE, ENXIO and EOVERFLOW for a file's offset.
        OpClass::Reads => &[
            "EAGAIN",
            "EBADF",
            "EFAULT",
            "EINTR",
            "EINVAL",
            "EIO",
            "EISDIR",
            "ENOMEM",
            "ENOTCONN",
            "ENOTSOCK",
            "ENOBUFS",
            "ESPIPE",
            "ENXIO",
            "EOVERFLOW",
        ],
        OpClass::Writes => &[
            "EAGAIN",
            "EBADF",
            "EFAULT",
            "EINTR",
            "EINVAL",
            "EIO",
            "ENOMEM",
            "ENOTCONN",
            "ENOTSOCK",
            "ENOBUFS",
            "EPIPE",
            "EDESTADDRREQ",
            "EDQUOT",
            "EFBIG",
            "ENOSPC",
            "EMSGSIZE",
            "EISCONN",
            "EOPNOTSUPP",
            "EPERM",
            "EACCES",
            // pwrite(2), sendfile(2), splice(2), copy_file_range(2).
            "ESPIPE",
            "ENXIO",
            "EOVERFLOW",
            "ETXTBSY",
            "EXDEV",
        ],
        OpClass::Connect => &[
            "EACCES",
            "EPERM",
            "EADDRINUSE",
            "EADDRNOTAVAIL",
            "EAFNOSUPPORT",
            "EAGAIN",
            "EBADF",
            "ECONNREFUSED",
            "EFAULT",
            "EINTR",
            "ENETUNREACH",
            "EHOSTUNREACH",
            "ENETDOWN",
            "ENOTSOCK",
            "EPROTOTYPE",
            "ETIMEDOUT",
            "ENOENT",
            "ECONNRESET",
            "ENOBUFS",
        ],
        OpClass::Accept => &[
            "EAGAIN",
            "EBADF",
            "ECONNABORTED",
            "EFAULT",
            "EINTR",
            "EINVAL",
            "EMFILE",
            "ENFILE",
            "ENOBUFS",
            "ENOMEM",
            "ENOTSOCK",
            "EOPNOTSUPP",
            "EPROTO",
            "EPERM",
            // accept(2): "Linux accept() passes already-pending network errors on the new socket".
            "ENETDOWN",
            "ENOPROTOOPT",
            "EHOSTDOWN",
            "ENONET",
            "EHOSTUNREACH",
            "ENETUNREACH",
        ],
        OpClass::Setsockopt => &[
            "EBADF",
            "EFAULT",
            "EINVAL",
            "ENOPROTOOPT",
            "ENOTSOCK",
            "ENOMEM",
            "ENOBUFS",
            "EPERM",
        ],
        OpClass::Shutdown => &["EBADF", "EINVAL", "ENOTCONN", "ENOTSOCK"],
        OpClass::Close => &["EBADF", "EINTR", "EIO", "ENOSPC", "EDQUOT"],
        // Resolvers report EAI_* codes, not errno values (see `Fault::Resolver`).
        OpClass::Resolve => &[],
        // open(2).
        OpClass::Opens => &[
            "EACCES",
            "EBADF",
            "EDQUOT",
            "EEXIST",
            "EFAULT",
            "EFBIG",
            "EINVAL",
            "EISDIR",
            "ELOOP",
            "EMFILE",
            "ENAMETOOLONG",
            "ENFILE",
            "ENOENT",
            "ENOMEM",
            "ENOSPC",
            "ENOTDIR",
            "EOPNOTSUPP",
            "EOVERFLOW",
            "EPERM",
            "EROFS",
            "ETXTBSY",
            "EAGAIN",
            "EIO",
        ],
        // fsync(2), sync_file_range(2), syncfs(2): writeback errors surface here.
        OpClass::Syncs => &[
            "EBADF", "EIO", "ENOSPC", "EDQUOT", "EINVAL", "ESPIPE", "ENOMEM",
        ],
        // ftruncate(2), fallocate(2), posix_fallocate(3).
        OpClass::Space => &[
            "EBADF",
            "EFBIG",
            "EINTR",
            "EINVAL",
            "EIO",
            "ENODEV",
            "ENOSPC",
            "EDQUOT",
            "ENOSYS",
            "EOPNOTSUPP",
            "EPERM",
            "EROFS",
            "ESPIPE",
            "ETXTBSY",
        ],
        // rename(2), unlink(2), mkdir(2).
        OpClass::Entries => &[
            "EACCES",
            "EBADF",
            "EBUSY",
            "EDQUOT",
            "EEXIST",
            "EFAULT",
            "EINVAL",
            "EISDIR",
            "ELOOP",
            "EMLINK",
            "ENAMETOOLONG",
            "ENOENT",
            "ENOMEM",
            "ENOSPC",
            "ENOTDIR",
            "ENOTEMPTY",
            "EPERM",
            "EROFS",
            "EXDEV",
            "EIO",
        ],
        // socket(2), pipe(2), dup(2): out of fds or memory.
        OpClass::NewFds => &[
            "EMFILE",
            "ENFILE",
            "ENOMEM",
            "ENOBUFS",
            "EACCES",
            "EAFNOSUPPORT",
            "EINVAL",
            "EPROTONOSUPPORT",
            "EFAULT",
            "EBADF",
        ],
        // epoll_wait(2): a signal handler ran while it waited; the rest are the caller's bugs.
        OpClass::Waits => &["EINTR", "EBADF", "EFAULT", "EINVAL"],
    }
}

/// Ops whose own man page allows less than their class: `dup` never reports ENFILE (it makes no
/// new open file), no fd-making call but socket reports ENOBUFS or EACCES, and only rename moves
/// across devices. (dup2 and dup3 are
/// not the `dup` op: the kernel turns their EMFILE into EBADF, fs/file.c ksys_dup3.)
fn op_list(op: crate::op::Op) -> Option<&'static [&'static str]> {
    use crate::op::Op;
    match op {
        Op::Dup => Some(&["EBADF", "EMFILE"]),
        Op::Pipe => Some(&["EFAULT", "EINVAL", "EMFILE", "ENFILE"]),
        // unlink(2) and mkdir(2) name one entry: no cross-device move, no target to replace.
        Op::Unlink => Some(&[
            "EACCES",
            "EBADF",
            "EBUSY",
            "EFAULT",
            "EINVAL",
            "EIO",
            "EISDIR",
            "ELOOP",
            "ENAMETOOLONG",
            "ENOENT",
            "ENOMEM",
            "ENOTDIR",
            "EPERM",
            "EROFS",
        ]),
        Op::Mkdir => Some(&[
            "EACCES",
            "EBADF",
            "EDQUOT",
            "EEXIST",
            "EFAULT",
            "EINVAL",
            "ELOOP",
            "EMLINK",
            "ENAMETOOLONG",
            "ENOENT",
            "ENOMEM",
            "ENOSPC",
            "ENOTDIR",
            "EPERM",
            "EROFS",
        ]),
        _ => None,
    }
}

/// Can `op` return `errno` on Linux? Its class's list, narrowed where the op's own is shorter.
pub fn op_can_return(op: crate::op::Op, errno: i32) -> bool {
    can_return(op.class(), errno)
        && op_list(op).is_none_or(|names| names.iter().any(|n| errno_value(n) == Some(errno)))
}

/// What `op` can return, for error messages.
pub fn op_allowed_names(op: crate::op::Op) -> Vec<&'static str> {
    match op_list(op) {
        Some(names) => names.to_vec(),
        None => allowed_names(op.class()),
    }
}

/// Can a call of this class return `errno` on Linux?
pub fn can_return(class: OpClass, errno: i32) -> bool {
    let named = |names: &[&str]| names.iter().any(|n| errno_value(n) == Some(errno));
    named(own_list(class)) || (class.is_data() && named(PENDING_NET))
}

/// The names a class can return, for error messages.
pub fn allowed_names(class: OpClass) -> Vec<&'static str> {
    let mut names: Vec<&str> = own_list(class).to_vec();
    if class.is_data() {
        names.extend_from_slice(PENDING_NET);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_values_and_realism() {
        assert_eq!(errno_value("ECONNRESET"), Some(104));
        assert_eq!(errno_value("EWOULDBLOCK"), Some(11));
        assert_eq!(errno_value("ENOTANERRNO"), None);
        assert_eq!(errno_name(32), "EPIPE");
        assert!(can_return(OpClass::Reads, libc::ECONNRESET));
        assert!(!can_return(OpClass::Reads, libc::ENOENT));
        assert!(!can_return(OpClass::Reads, libc::EPIPE));
        assert!(can_return(OpClass::Writes, libc::EPIPE));
        assert!(can_return(OpClass::Connect, libc::ECONNREFUSED));
        assert!(!can_return(OpClass::Close, libc::ECONNRESET));
    }
}
