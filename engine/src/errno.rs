//! Errno names (Linux values) and which errnos each kind of call can really return on Linux.
//!
//! The allow-lists come from the Linux man pages (read(2), recv(2), send(2), connect(2), accept(2),
//! setsockopt(2), shutdown(2), close(2)) plus the pending socket errors the kernel reports through any
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
const PENDING_NET: &[&str] = &[
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
        OpClass::Reads => &[
            "EAGAIN", "EBADF", "EFAULT", "EINTR", "EINVAL", "EIO", "EISDIR", "ENOMEM", "ENOTCONN",
            "ENOTSOCK", "ENOBUFS",
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
