//! Whether a fault fits a rule's calls: what Linux could return or do on them, so a policy cannot
//! ask for a fault the program could never see.

use crate::errno::{allowed_names, can_return, errno_name, op_allowed_names, op_can_return};
use crate::fault::Fault;
use crate::kind::{FdKind, KindSet};
use crate::op::{OpClass, OpSet};

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
) -> Result<(OpSet, OpSet), String> {
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
        return Err(format!(
            "{} acts on none of the rule's ops",
            fault.kind_name()
        ));
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
) -> Result<(), String> {
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
        return Err(format!(
            "{} move no data: they can fail with an errno, be delayed ({{ delay = \"…\" }}) or \
             hit the process (\"crash\", \"terminate\", {{ pause = \"…\" }})",
            class.name()
        ));
    }
    match fault {
        Fault::Resolver(_) if !resolving => Err(
            "EAI_* errors are what name resolution returns: use them with `on = \"resolve\"`"
                .into(),
        ),
        Fault::Resolver(_) => Ok(()),
        Fault::Delay(_) if resolving => Ok(()),
        _ if resolving => Err(
            "name resolution can fail with \"EAI_AGAIN\", \"EAI_NONAME\" or \"EAI_FAIL\", or be \
             delayed ({ delay = \"…\" })"
                .into(),
        ),
        Fault::Errno(e) if !any_errno => {
            for class in classes {
                if !can_return(class, *e) {
                    return Err(format!(
                        "{} cannot return {} on Linux; it can return {} (or set any_errno = true)",
                        class.name(),
                        errno_name(*e),
                        allowed_names(class).join(", ")
                    ));
                }
            }
            for op in ops.iter() {
                if !op_can_return(op, *e) {
                    return Err(format!(
                        "{} cannot return {} on Linux; it can return {} (or set any_errno = true)",
                        op.name(),
                        errno_name(*e),
                        op_allowed_names(op).join(", ")
                    ));
                }
            }
            Ok(())
        }
        Fault::ErrnoAfter { .. } => match ops.iter().find(|o| o.class() != OpClass::Connect) {
            Some(op) => Err(format!(
                "a timeout with `after` is what connect reports after its SYN retries; it does not \
                 apply to {}",
                op.name()
            )),
            None => Ok(()),
        },
        Fault::Errno(_) | Fault::Delay(_) => Ok(()),
        Fault::Drop | Fault::Duplicate | Fault::Reorder(_)
            if kinds.0 & !KindSet::from_name("udp").unwrap().0 != 0 =>
        {
            Err(
                "\"drop\", \"duplicate\" and reorder lose, repeat or reorder datagrams: they \
                 need fd = \"udp\""
                    .into(),
            )
        }
        Fault::Drop | Fault::Duplicate | Fault::Reorder(_) => match ops.iter().find(|o| {
            o.is_multi_message()
                || !o.class().is_data()
                || (*fault != Fault::Drop && o.class() != OpClass::Writes)
        }) {
            Some(op) => Err(format!(
                "{} does not apply to {}: drop applies to single-datagram sends and receives, \
                 duplicate and reorder to sends",
                fault.kind_name(),
                op.name()
            )),
            None => Ok(()),
        },
        // The mmsg calls move several datagrams at once: a connection's stream has no place
        // for them, and the shim passes them through.
        Fault::Toxic(_) => match ops
            .iter()
            .find(|o| !o.class().is_data() || o.is_multi_message())
        {
            Some(op) => Err(format!(
                "toxics (latency, bandwidth, blackhole, limit_data, reset_after) act on a \
                 connection's reads and writes, not on {}",
                op.name()
            )),
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
            Some(op) => Err(format!(
                "`stall` applies to reads, writes, accept and connect, not to {}",
                op.name()
            )),
            None => Ok(()),
        },
        Fault::Short(_) => match ops.iter().find(|o| !o.class().is_data()) {
            Some(op) => Err(format!(
                "`short` applies to reads and writes only, not to {}",
                op.name()
            )),
            None => Ok(()),
        },
        Fault::Reset => {
            if let Some(op) = ops.iter().find(|o| !o.class().is_data()) {
                return Err(format!(
                    "`reset` applies to reads and writes on TCP, not to {}; use an errno such as \
                     ECONNREFUSED for {}",
                    op.name(),
                    op.name()
                ));
            }
            if !kinds.contains(FdKind::Tcp) {
                return Err("`reset` needs TCP sockets, but `fd` excludes tcp".into());
            }
            Ok(())
        }
    }
}
