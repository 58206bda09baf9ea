//! Whether a fault fits a rule's calls: what Linux could return or do on them, so a policy cannot
//! ask for a fault the program could never see.

use crate::errno::{allowed_names, can_return, errno_name, op_allowed_names, op_can_return};
use crate::fault::Fault;
use crate::kind::{FdKind, KindSet};
use crate::op::{Op, OpClass, OpSet};
use std::fmt;

/// A fault the rule's calls could never see on Linux, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FitError {
    /// Calls of this class move no data: an errno, a delay or a process fault only.
    MovesNoData(OpClass),
    /// An EAI_* error on calls that are not name resolution.
    ResolverOffResolve,
    /// Name resolution with a fault other than EAI_* or a delay.
    ResolveFault,
    ClassCannotReturn {
        class: OpClass,
        errno: i32,
    },
    OpCannotReturn {
        op: Op,
        errno: i32,
    },
    /// A timeout `after` on a call other than connect.
    AfterNotConnect(Op),
    /// drop, duplicate or reorder on fds that are not all UDP.
    DatagramNeedsUdp,
    /// drop, duplicate or reorder (`fault`: which) on a call that moves no single datagram.
    DatagramOp {
        fault: &'static str,
        op: Op,
    },
    ToxicOp(Op),
    StallOp(Op),
    ShortOp(Op),
    ResetOp(Op),
    ResetNeedsTcp,
    /// The fault (its kind name) acts on none of the rule's ops.
    NoOpLeft(&'static str),
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            FitError::MovesNoData(class) => write!(
                f,
                "{} move no data: they can fail with an errno, be delayed ({{ delay = \"…\" }}) or \
                 hit the process (\"crash\", \"terminate\", {{ pause = \"…\" }})",
                class.name()
            ),
            FitError::ResolverOffResolve => f.write_str(
                "EAI_* errors are what name resolution returns: use them with `on = \"resolve\"`",
            ),
            FitError::ResolveFault => f.write_str(
                "name resolution can fail with \"EAI_AGAIN\", \"EAI_NONAME\" or \"EAI_FAIL\", or be \
                 delayed ({ delay = \"…\" })",
            ),
            FitError::ClassCannotReturn { class, errno } => write!(
                f,
                "{} cannot return {} on Linux; it can return {} (or set any_errno = true)",
                class.name(),
                errno_name(errno),
                allowed_names(class).join(", ")
            ),
            FitError::OpCannotReturn { op, errno } => write!(
                f,
                "{} cannot return {} on Linux; it can return {} (or set any_errno = true)",
                op.name(),
                errno_name(errno),
                op_allowed_names(op).join(", ")
            ),
            FitError::AfterNotConnect(op) => write!(
                f,
                "a timeout with `after` is what connect reports after its SYN retries; it does not \
                 apply to {}",
                op.name()
            ),
            FitError::DatagramNeedsUdp => f.write_str(
                "\"drop\", \"duplicate\" and reorder lose, repeat or reorder datagrams: they \
                 need fd = \"udp\"",
            ),
            FitError::DatagramOp { fault, op } => write!(
                f,
                "{fault} does not apply to {}: drop applies to single-datagram sends and receives, \
                 duplicate and reorder to sends",
                op.name()
            ),
            FitError::ToxicOp(op) => write!(
                f,
                "toxics (latency, bandwidth, blackhole, limit_data, reset_after) act on a \
                 connection's reads and writes, not on {}",
                op.name()
            ),
            FitError::StallOp(op) => write!(
                f,
                "`stall` applies to reads, writes, accept and connect, not to {}",
                op.name()
            ),
            FitError::ShortOp(op) => write!(
                f,
                "`short` applies to reads and writes only, not to {}",
                op.name()
            ),
            FitError::ResetOp(op) => write!(
                f,
                "`reset` applies to reads and writes on TCP, not to {}; use an errno such as \
                 ECONNREFUSED for {}",
                op.name(),
                op.name()
            ),
            FitError::ResetNeedsTcp => {
                f.write_str("`reset` needs TCP sockets, but `fd` excludes tcp")
            }
            FitError::NoOpLeft(fault) => write!(f, "{fault} acts on none of the rule's ops"),
        }
    }
}

impl std::error::Error for FitError {}

/// The rule's ops the fault can act on, and the ops of its groups it cannot (left out). An op
/// named on its own that the fault cannot act on is an error, as is a rule left with no op.
/// Whether a fault fits is a property of each op alone (every check below is "some op ..." or
/// about the fd kinds), so an op fits when the rule with that op alone would.
pub(super) fn fitting_ops(
    fault: &Fault,
    ops: OpSet,
    named: OpSet,
    kinds: KindSet,
    any_errno: bool,
) -> Result<(OpSet, OpSet), FitError> {
    let mut left_out = OpSet::default();
    for op in ops.iter() {
        let alone = OpSet(op.bit());
        if let Err(why) = check_fault_fits(fault, alone, kinds, any_errno) {
            if named.contains(op) {
                return Err(why);
            }
            left_out.insert(op);
        }
    }
    let kept = OpSet(ops.0 & !left_out.0);
    if kept.is_empty() {
        // Nothing left: say why in the words of the whole rule.
        check_fault_fits(fault, ops, kinds, any_errno)?;
        return Err(FitError::NoOpLeft(fault.kind_name()));
    }
    check_fault_fits(fault, kept, kinds, any_errno)?;
    Ok((kept, left_out))
}

/// Rejects faults the rule's calls could never produce on Linux.
fn check_fault_fits(
    fault: &Fault,
    ops: OpSet,
    kinds: KindSet,
    any_errno: bool,
) -> Result<(), FitError> {
    let classes: Vec<OpClass> = {
        let mut v: Vec<OpClass> = ops.iter().map(|o| o.class()).collect();
        v.dedup();
        v
    };
    let resolving = classes.contains(&OpClass::Resolve);
    let moves_no_data = classes.iter().find(|c| {
        matches!(
            c,
            OpClass::Opens
                | OpClass::Syncs
                | OpClass::Space
                | OpClass::Entries
                | OpClass::NewFds
                | OpClass::Waits
        )
    });
    if let Some(class) = moves_no_data
        && !matches!(
            fault,
            Fault::Errno(_)
                | Fault::Delay(_)
                | Fault::Crash
                | Fault::PowerLoss
                | Fault::Terminate
                | Fault::Pause(_)
        )
    {
        return Err(FitError::MovesNoData(*class));
    }
    match fault {
        Fault::Resolver(_) if !resolving => Err(FitError::ResolverOffResolve),
        Fault::Resolver(_) => Ok(()),
        Fault::Delay(_) if resolving => Ok(()),
        _ if resolving => Err(FitError::ResolveFault),
        Fault::Errno(e) if !any_errno => {
            for class in classes {
                if !can_return(class, *e) {
                    return Err(FitError::ClassCannotReturn { class, errno: *e });
                }
            }
            for op in ops.iter() {
                if !op_can_return(op, *e) {
                    return Err(FitError::OpCannotReturn { op, errno: *e });
                }
            }
            Ok(())
        }
        Fault::ErrnoAfter { .. } => match ops.iter().find(|o| o.class() != OpClass::Connect) {
            Some(op) => Err(FitError::AfterNotConnect(op)),
            None => Ok(()),
        },
        Fault::Errno(_) | Fault::Delay(_) => Ok(()),
        Fault::Drop | Fault::Duplicate | Fault::Reorder(_)
            if kinds.0 & !KindSet::from_name("udp").unwrap().0 != 0 =>
        {
            Err(FitError::DatagramNeedsUdp)
        }
        Fault::Drop | Fault::Duplicate | Fault::Reorder(_) => match ops.iter().find(|o| {
            o.is_multi_message()
                || !o.class().is_data()
                || (*fault != Fault::Drop && o.class() != OpClass::Writes)
        }) {
            Some(op) => Err(FitError::DatagramOp {
                fault: fault.kind_name(),
                op,
            }),
            None => Ok(()),
        },
        // The mmsg calls move several datagrams at once: a connection's stream has no place
        // for them, and the shim passes them through.
        Fault::Toxic(_) => match ops
            .iter()
            .find(|o| !o.class().is_data() || o.is_multi_message())
        {
            Some(op) => Err(FitError::ToxicOp(op)),
            None => Ok(()),
        },
        // A process can be killed or stopped at any call.
        Fault::Crash | Fault::PowerLoss | Fault::Terminate | Fault::Pause(_) => Ok(()),
        Fault::Stall(_) => match ops.iter().find(|o| {
            !matches!(
                o.class(),
                OpClass::Reads | OpClass::Writes | OpClass::Accept | OpClass::Connect
            )
        }) {
            Some(op) => Err(FitError::StallOp(op)),
            None => Ok(()),
        },
        Fault::Short(_) => match ops.iter().find(|o| !o.class().is_data()) {
            Some(op) => Err(FitError::ShortOp(op)),
            None => Ok(()),
        },
        Fault::Reset => {
            if let Some(op) = ops.iter().find(|o| !o.class().is_data()) {
                return Err(FitError::ResetOp(op));
            }
            if !kinds.contains(FdKind::Tcp) {
                return Err(FitError::ResetNeedsTcp);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(fault: Fault, on: &str, fd: &str) -> Result<(OpSet, OpSet), FitError> {
        let ops = OpSet::from_name(on).unwrap();
        fitting_ops(&fault, ops, ops, KindSet::from_name(fd).unwrap(), false)
    }

    #[test]
    fn a_misfit_says_which_call_and_why() {
        assert_eq!(
            fit(Fault::Reset, "connect", "tcp"),
            Err(FitError::ResetOp(Op::Connect))
        );
        assert_eq!(
            fit(Fault::Reset, "recv", "udp"),
            Err(FitError::ResetNeedsTcp)
        );
        let e = fit(Fault::Errno(libc::EPIPE), "read", "tcp").unwrap_err();
        assert!(
            matches!(e, FitError::ClassCannotReturn { errno, .. } if errno == libc::EPIPE),
            "{e:?}"
        );
        assert!(
            e.to_string().contains("cannot return EPIPE on Linux"),
            "{e}"
        );
        assert_eq!(
            fit(Fault::Drop, "send", "udp").map(|(k, _)| k.is_empty()),
            Ok(false)
        );
    }
}
