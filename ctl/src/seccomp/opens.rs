//! The open family under the seccomp backend (`open`, `openat`): decided before the call is made,
//! keyed as the shim keys it (`fdless`): the connection is the hash of the absolute path with the
//! class, the site the n-th open of that path by the process (`opens#N`), so a policy frozen
//! under either backend puts its fault on the same open. A fault is an error instead of the call,
//! a delay before it, or a process fault.

use super::decide::{self, Position};
use super::events::OnCall;
use super::state::Supervisor;
use super::sys::{self, Answer};
use chaos_engine::addr::Endpoint;
use chaos_engine::inject::named_key;
use chaos_engine::key::Site;
use chaos_engine::kind::FdKind;
use chaos_engine::op::{Op, OpClass};
use chaos_engine::policy::FdFacts;
use chaos_engine::realise::realise_fdless;

/// The answer for an `open` or `openat` of process `tgid`; None runs it as it was made.
pub fn open(s: &mut Supervisor, tgid: i32, tid: i32, n: &libc::seccomp_notif) -> Option<Answer> {
    let args = n.data.args;
    let (op, dirfd, path) = match i64::from(n.data.nr) {
        #[cfg(target_arch = "x86_64")]
        libc::SYS_open => (Op::Open, libc::AT_FDCWD, args[0]),
        _ => (Op::Openat, args[0] as i32, args[1]),
    };
    let rules = s.target.rules_for(op);
    if rules == 0 && !s.target.keys_every_call() {
        return Some(Answer::Continue);
    }
    let given = sys::read_target_cstr(tgid, path)?;
    let path = absolute(tgid, dirfd, &given);
    let mask = s.target.policy.mask_for(&FdFacts {
        kind: FdKind::File,
        peer: Endpoint::Unknown,
        local: Endpoint::Unknown,
        path: Some(&path),
    });
    let proc = s.procs.get_mut(&tgid)?;
    let conn = named_key(OpClass::Opens, &path);
    let count = proc.opens.entry(conn).or_insert(0);
    let nth = *count;
    *count += 1;
    let at = Position {
        process: proc.key,
        base: proc.base,
        conn,
        site: Site::Call {
            class: OpClass::Opens,
            n: nth,
        },
        n: nth,
        requested: 0,
    };
    let mut on = OnCall::new(op, -1, tid, None, None);
    on.kind = Some(FdKind::File.name().to_string());
    on.path = Some(String::from_utf8_lossy(&path).into_owned());
    if let Some(census) = &mut s.census {
        census.reached(&mut s.log, tgid, &at, &on);
    }
    let d = decide::decide(
        &mut s.target,
        &mut proc.budget,
        op,
        at,
        rules & mask,
        |fault, _ctx, param| realise_fdless(fault, param),
    )?;
    super::calls::common(s, tgid, n, on, d, Default::default())
}

/// `given` as an absolute path, the way the shim's `abspath` makes it: joined to the working
/// directory (or `dirfd`'s) with leading `./` dropped; symlinks and `..` are left as written.
fn absolute(tgid: i32, dirfd: i32, given: &[u8]) -> Vec<u8> {
    if given.starts_with(b"/") {
        return given.to_vec();
    }
    let base = if dirfd == libc::AT_FDCWD {
        format!("/proc/{tgid}/cwd")
    } else {
        format!("/proc/{tgid}/fd/{dirfd}")
    };
    let Ok(base) = std::fs::read_link(base) else {
        return given.to_vec();
    };
    let mut rel = given;
    while let Some(rest) = rel.strip_prefix(b"./") {
        rel = rest;
    }
    if rel == b"." {
        rel = b"";
    }
    let mut out = base.into_os_string().into_encoded_bytes();
    if !out.ends_with(b"/") && !rel.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(rel);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_path_is_made_absolute_as_the_shim_makes_it() {
        let me = std::process::id() as i32;
        let cwd = std::env::current_dir().unwrap();
        let cwd = cwd.to_string_lossy();
        assert_eq!(absolute(me, libc::AT_FDCWD, b"/etc/hosts"), b"/etc/hosts");
        assert_eq!(
            absolute(me, libc::AT_FDCWD, b"./././a.cfg"),
            format!("{cwd}/a.cfg").into_bytes()
        );
        assert_eq!(absolute(me, libc::AT_FDCWD, b"."), cwd.as_bytes());
    }
}
