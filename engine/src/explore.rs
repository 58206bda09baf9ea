//! What `chaos-ctl explore` tries at a fault point: each fault the call could get from Linux, as
//! the TOML value of an `[[inject]]` entry's `fault`. This is the candidate list; the realism
//! model still has the last word at the place itself (a fault it refuses there does not fire,
//! and explore reports it as "not possible here").

use crate::errno::{PENDING_NET, op_allowed_names};
use crate::kind::FdKind;
use crate::op::{Op, OpClass};

/// Network errors a data call can return only on a socket (a pipe or a file never has a peer
/// that resets it): those a socket can have pending, and the two of a connection that never was
/// or was aborted.
fn socket_only(name: &str) -> bool {
    PENDING_NET.contains(&name) || matches!(name, "ENOTCONN" | "ECONNABORTED")
}

/// Errnos that say the caller passed something wrong (a bad fd or buffer, a call that makes no
/// sense on that fd): Linux returns them for a program's mistake, never to a valid call because
/// of the world around it, so injecting one at a call that worked would be a fault Linux could
/// not produce there.
const CALLER_ERRORS: &[&str] = &[
    "EBADF",
    "EFAULT",
    "EINVAL",
    "ENOTSOCK",
    "EISDIR",
    "ESPIPE",
    "EDESTADDRREQ",
    "EISCONN",
    "EAFNOSUPPORT",
    "EPROTOTYPE",
    "EOPNOTSUPP",
    "EXDEV",
    "ETXTBSY",
    "EOVERFLOW",
    "ENXIO",
    "EMSGSIZE",
];

/// The faults to try at a point where `op` acts on an fd of `kind`, in a fixed order (errnos as
/// the engine's per-call tables list them, then a short transfer, a stall and a reset where the
/// call moves data): the same list every time, so two explores make the same runs.
pub fn faults_for(op: Op, kind: FdKind) -> Vec<String> {
    let mut faults: Vec<String> = op_allowed_names(op)
        .into_iter()
        .filter(|name| kind.is_socket() || !socket_only(name))
        // A write gets EPIPE when nobody can read what it writes: a pipe or a socket has a
        // reader that can go; a regular file has none.
        .filter(|name| *name != "EPIPE" || kind.is_socket() || kind == FdKind::Pipe)
        .filter(|name| !CALLER_ERRORS.contains(name))
        .map(|name| format!("\"{name}\""))
        .collect();
    faults.dedup();
    let data = matches!(op.class(), OpClass::Reads | OpClass::Writes) && op.dir().is_some();
    if data && kind != FdKind::Udp {
        faults.push("{ short = \"1\" }".to_string());
    }
    if data {
        faults.push("{ stall = \"20ms\" }".to_string());
    }
    if kind == FdKind::Tcp && (data || op == Op::Connect) {
        faults.push("\"reset\"".to_string());
    }
    faults
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_write_gets_disk_errors_not_network_ones() {
        let f = faults_for(Op::Write, FdKind::File);
        assert!(f.contains(&"\"ENOSPC\"".to_string()), "{f:?}");
        assert!(!f.contains(&"\"ECONNRESET\"".to_string()), "{f:?}");
        assert!(f.contains(&"{ short = \"1\" }".to_string()), "{f:?}");
        assert!(!f.contains(&"\"reset\"".to_string()), "{f:?}");
        assert!(!f.contains(&"\"EPIPE\"".to_string()), "{f:?}");
        let pipe = faults_for(Op::Write, FdKind::Pipe);
        assert!(pipe.contains(&"\"EPIPE\"".to_string()), "{pipe:?}");
    }

    #[test]
    fn a_tcp_read_gets_resets_and_eintr() {
        let f = faults_for(Op::Recv, FdKind::Tcp);
        for want in [
            "\"ECONNRESET\"",
            "\"EINTR\"",
            "\"reset\"",
            "{ stall = \"20ms\" }",
        ] {
            assert!(f.contains(&want.to_string()), "{want} in {f:?}");
        }
    }

    #[test]
    fn a_call_that_worked_never_gets_a_callers_mistake() {
        for (op, kind) in [
            (Op::Recv, FdKind::Tcp),
            (Op::Write, FdKind::Pipe),
            (Op::Open, FdKind::File),
            (Op::Connect, FdKind::Tcp),
        ] {
            let f = faults_for(op, kind);
            for bad in ["\"EBADF\"", "\"EFAULT\"", "\"EINVAL\"", "\"ENOTSOCK\""] {
                assert!(!f.contains(&bad.to_string()), "{op:?}: {bad} in {f:?}");
            }
        }
    }

    #[test]
    fn an_open_gets_its_own_errnos_only() {
        let f = faults_for(Op::Open, FdKind::File);
        assert!(f.contains(&"\"EACCES\"".to_string()), "{f:?}");
        assert!(!f.iter().any(|x| x.contains("short") || x.contains("stall")));
        // Every fault is one the parser takes for the op.
        for fault in &f {
            let text = format!(
                "[[inject]]\nprocess = \"0000000000000001\"\nconn = \"0000000000000002\"\n\
                 at = \"opens#0\"\non = \"open\"\nfault = {fault}\n"
            );
            crate::parse::parse_policy(&text, "t").unwrap_or_else(|e| panic!("{fault}: {e}"));
        }
    }
}
