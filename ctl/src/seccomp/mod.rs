//! The seccomp backend: for programs the shim cannot reach (static binaries, Go programs, other
//! libcs). A launcher installs a `SECCOMP_RET_USER_NOTIF` filter for the socket and I/O calls and
//! execs the program; chaos-ctl's supervisor answers each call with the same engine, policy,
//! keys and log format as the shim. See docs/seccomp-backend.md.
//!
//! - `filter`: the BPF program and its installation; `launcher`: `chaos-ctl __seccomp-exec`.
//! - `server`: where launchers hand over their listeners; `live`: which launched programs still
//!   have a supervisor at work; `supervisor`: the notification loop, over `state` (what it holds).
//! - `target`: the run's settings and each process's state; `fdview`: our copy of one fd;
//!   `budget`: a process's `times` and `window` clock; `forks`: a forked child's key.
//! - `calls`: one held call, decoded and dispatched; `args`: its arguments in the target's
//!   memory; `carry`: the engine's choice carried out; `files`: calls on a regular file, with
//!   `file_choice` for those that move no data;
//!   `paths`: calls that name a path (opens, rename, unlink, mkdir), with `names`: what such
//!   a call names, made absolute; `disk` and `disk_io`:
//!   `[[disk]]` capacity; `writeback`: an fsync error every description reports; `journal`:
//!   `[durability]`'s journal, as the shim writes it, and `journaled`: the calls it journals,
//!   made by the supervisor so that it knows their results; `decide`: the engine's choice of
//!   rule;
//!   `breaks`: resets and shutdowns on our copy; `partition`: cuts between the processes of a
//!   system, held from outside; `grid`: stream reads' faults on the grid of offsets; `facts`:
//!   the realism model's facts; `toxic`: Toxiproxy's toxics, held and made from outside, over
//!   `toxic_state`: a connection's toxic state;
//!   `proxied`: connections to a Toxiproxy proxy's `listen` made to its upstream, with its
//!   toxics;
//!   `events`: the log lines; `sys`: the system calls.
//! - `census`: `chaos-ctl explore`'s fault points, each a call site found on the held thread's
//!   stack; `symbols`: an object's function names, to tell a runtime's frames from the program's.

mod args;
mod breaks;
mod budget;
mod calls;
mod carry;
mod census;
mod decide;
mod disk;
mod disk_io;
mod events;
mod facts;
mod fdview;
mod file_choice;
mod files;
pub mod filter;
mod forks;
mod grid;
mod journal;
mod journaled;
pub mod launcher;
pub mod live;
mod names;
mod partition;
mod paths;
mod proxied;
pub mod server;
mod state;
mod supervisor;
mod symbols;
mod sys;
mod target;
mod toxic;
mod toxic_state;
mod writeback;

pub use filter::available;

/// The name of the launcher's hidden subcommand.
pub const LAUNCH_ARG: &str = "__seccomp-exec";

use chaos_engine::fault::Fault;
use chaos_engine::op::Op;
use chaos_engine::policy::Policy;

/// The file ops this backend decides besides read, write, readv and writev (`files`).
pub const FILE_OPS: [Op; 16] = [
    Op::Pread,
    Op::Preadv,
    Op::Pwrite,
    Op::Pwritev,
    Op::Open,
    Op::Openat,
    Op::Creat,
    Op::Fsync,
    Op::Fdatasync,
    Op::SyncFileRange,
    Op::Syncfs,
    Op::Ftruncate,
    Op::Fallocate,
    Op::Rename,
    Op::Unlink,
    Op::Mkdir,
];

/// The socket ops this backend decides: the data calls, connect, accept, setsockopt and epoll
/// waits (see `filter::all`). glibc's recv and send arrive as recvfrom and sendto.
pub const SOCKET_OPS: [Op; 17] = [
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
    Op::EpollWait,
];

/// Whether this backend decides `op`: a socket op or a file op.
pub fn serves(op: Op) -> bool {
    SOCKET_OPS.contains(&op) || FILE_OPS.contains(&op)
}

/// Whether this backend can carry `fault` out from outside the process. A rule or injection
/// whose fault it cannot is never drawn (under `--force`): a line for it would be a lie.
pub fn carries_out(fault: &Fault) -> bool {
    not_carried(fault).is_none()
}

/// Why this backend cannot carry `fault` out, if it cannot.
fn not_carried(fault: &Fault) -> Option<&'static str> {
    match fault {
        Fault::Reorder(_) => Some(
            "a held datagram is sent when its socket closes, and this backend does not see \
             close (see docs/seccomp-backend.md, \"Signals\"): it would be lost, not reordered",
        ),
        _ => None,
    }
}

/// What in `policy` this backend would not carry out, one line each: a rule none of whose ops
/// it sees, or a fault it cannot apply from outside the process. A run is refused rather than
/// run without the chaos it asked for.
pub fn unsupported(policy: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    for rule in &policy.rules {
        if rule.ops.is_empty() {
            continue; // scoped away from this process
        }
        if !rule.ops.iter().any(serves) {
            let ops: Vec<&str> = rule.ops.iter().map(Op::name).collect();
            out.push(format!(
                "rule `{}` acts on {} only, which the seccomp backend does not see (it sees \
                 the socket data calls, connect, accept, setsockopt, epoll_wait and the file \
                 calls: {})",
                rule.name,
                ops.join(", "),
                FILE_OPS.map(Op::name).join(", ")
            ));
        }
        if let Some(why) = not_carried(&rule.fault) {
            out.push(format!(
                "rule `{}`: {}: {why}, and under --force the rule injects nothing",
                rule.name,
                rule.fault.kind_name()
            ));
        }
    }
    out
}
