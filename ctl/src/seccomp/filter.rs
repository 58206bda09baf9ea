//! The seccomp filter the launcher installs: the socket and I/O calls a run's policy can act on
//! go to chaos-ctl as user notifications, everything else runs untouched. It is inherited by
//! every thread and child of the target, so a whole Go program is covered.
//!
//! Each notified call is a round trip through the supervisor (4-5 µs), so the filter is built
//! per run from the policy (`calls_for`): a call no rule can act on is not notified at all.

use chaos_engine::op::Op;
use chaos_engine::policy::Policy;

/// Notified whatever the policy. They are rare (once per connection or program, not per byte),
/// and what the supervisor learns from them keeps keys the same whatever else is notified:
/// execve/execveat end a process's key and name the program whose `start` line is due;
/// connect and accept/accept4 are where a socket is numbered as an outgoing connection or a
/// listener (a connected socket first seen at a read would be taken as accepted); listen puts
/// a port in the run's directory for partitions; setsockopt and shutdown keep the socket state
/// the platform quirks read.
pub const ALWAYS: &[(libc::c_long, &str)] = &[
    (libc::SYS_connect, "connect"),
    (libc::SYS_accept, "accept"),
    (libc::SYS_accept4, "accept4"),
    (libc::SYS_listen, "listen"),
    (libc::SYS_setsockopt, "setsockopt"),
    (libc::SYS_shutdown, "shutdown"),
    (libc::SYS_execve, "execve"),
    (libc::SYS_execveat, "execveat"),
];

/// The data calls: where most of a program's system calls are, and where data faults land.
pub const DATA: &[(libc::c_long, &str)] = &[
    (libc::SYS_read, "read"),
    (libc::SYS_write, "write"),
    (libc::SYS_readv, "readv"),
    (libc::SYS_writev, "writev"),
    (libc::SYS_recvfrom, "recvfrom"),
    (libc::SYS_sendto, "sendto"),
    (libc::SYS_recvmsg, "recvmsg"),
    (libc::SYS_sendmsg, "sendmsg"),
    (libc::SYS_recvmmsg, "recvmmsg"),
    (libc::SYS_sendmmsg, "sendmmsg"),
];

/// The epoll waits, for rules on `epoll_wait` (an EINTR).
pub const WAITS: &[(libc::c_long, &str)] = &[
    (libc::SYS_epoll_wait, "epoll_wait"),
    (libc::SYS_epoll_pwait, "epoll_pwait"),
    (libc::SYS_epoll_pwait2, "epoll_pwait2"),
];

/// getpeername, for connections made through a Toxiproxy proxy: their peer is the proxy's
/// `listen`, where the program connected, as through Toxiproxy (`proxied`).
pub const PEER: &[(libc::c_long, &str)] = &[(libc::SYS_getpeername, "getpeername")];

/// The file calls: the opens, the calls on an open file that are not plain reads and writes,
/// sync, and the calls that change a directory's entries. openat2 is served as `openat`; preadv2 and
/// pwritev2 are not notified (glibc and Go make them only when asked for their flags).
pub const FILES: &[(libc::c_long, &str)] = &[
    (libc::SYS_open, "open"),
    (libc::SYS_openat, "openat"),
    (libc::SYS_openat2, "openat2"),
    (libc::SYS_creat, "creat"),
    (libc::SYS_pread64, "pread64"),
    (libc::SYS_pwrite64, "pwrite64"),
    (libc::SYS_preadv, "preadv"),
    (libc::SYS_pwritev, "pwritev"),
    (libc::SYS_fsync, "fsync"),
    (libc::SYS_fdatasync, "fdatasync"),
    (libc::SYS_sync_file_range, "sync_file_range"),
    (libc::SYS_syncfs, "syncfs"),
    (libc::SYS_sync, "sync"),
    (libc::SYS_ftruncate, "ftruncate"),
    (libc::SYS_fallocate, "fallocate"),
    (libc::SYS_rename, "rename"),
    (libc::SYS_renameat, "renameat"),
    (libc::SYS_renameat2, "renameat2"),
    (libc::SYS_unlink, "unlink"),
    (libc::SYS_unlinkat, "unlinkat"),
    (libc::SYS_mkdir, "mkdir"),
    (libc::SYS_mkdirat, "mkdirat"),
];

/// Every call a filter may notify: with `calls_for`'s widest answer, the filter of old.
pub fn all() -> impl Iterator<Item = &'static (libc::c_long, &'static str)> {
    ALWAYS
        .iter()
        .chain(DATA)
        .chain(WAITS)
        .chain(FILES)
        .chain(PEER)
}

/// Whether a rule needs the file calls: its `fd` covers files, and it acts on one of them or on
/// reads or writes (a `reads` rule on TCP, whose group holds pread, needs none).
fn needs_files(rule: &chaos_engine::policy::Rule) -> bool {
    rule.kinds.contains(chaos_engine::kind::FdKind::File)
        && rule
            .ops
            .iter()
            .any(|op| super::FILE_OPS.contains(&op) || op.dir().is_some())
}

/// A notified call's name, for the supervisor's debug counts.
pub fn name(nr: libc::c_long) -> &'static str {
    all().find(|(n, _)| *n == nr).map_or("?", |(_, name)| name)
}

/// The calls the filter of a run of `policy` notifies (`partitioned`: the process is in a system
/// whose control page can cut it off from the others; `proxied`: a Toxiproxy API writes proxies
/// into the run's control page).
///
/// `ALWAYS`, plus:
/// - the data calls when a rule, enabled or not, acts on an op this backend serves other than
///   connect, accept and epoll_wait. All ten together, not per op: a data call is where the
///   supervisor first sees (and numbers, in the connection key) an accepted connection, a pipe,
///   a socketpair; were only reads notified, a socket only ever written would take no number
///   and shift the numbers, hence the keys, of the sockets read. Setsockopt rules need them for
///   the same reason: their keys hold the socket's number. Connect keys count connects per kind
///   and accept keys the listener's accepts, so those rules need no data call.
/// - the data calls when the process can be partitioned: a cut holds its reads and writes.
/// - the data calls and getpeername (`PEER`) when a Toxiproxy API is on: proxies, and their
///   toxics, come while the run lives, after the filter is in place, so a connection through
///   one must be seen at each call even with no rule at all.
/// - the epoll waits when a rule acts on `epoll_wait` (their keys count waits only).
/// - the file calls (`FILES`) when a rule acts on one of them, or on reads or writes of files,
///   or the policy has `[[disk]]`s (whose files' growth is counted) or `[durability]` (whose
///   journal needs every change and sync of a covered file);
///   with them the data calls, all together for the same reason as above: the shim numbers a
///   file at its first call of any kind, a read included, and keys its reads and writes by the
///   bytes moved, which only a supervisor that sees every read and write of it can count. An
///   open is where a number closed since the last call is forgotten (`files::opening`).
///   A policy with no rule on files notifies none of them.
/// - everything when the policy has `[[inject]]` entries: a frozen policy counts every class,
///   so that its keys are the run's whatever the rules were.
///
/// Rules count enabled or not: `chaos-ctl control` (and a system's `[[nemesis]]`) switch rules
/// on while the run lives, and the filter, installed before the program starts, cannot grow.
/// Rules scoped to another process of a system have no ops here (`scope_to_process`). What the
/// control page can change besides rules (cuts) is covered by `partitioned`.
pub fn calls_for(policy: &Policy, partitioned: bool, proxied: bool) -> Vec<libc::c_long> {
    let injecting = !policy.injections.is_empty();
    let ops = || {
        policy
            .rules
            .iter()
            .flat_map(|r| r.ops.iter())
            .filter(|op| super::serves(*op))
    };
    let files = injecting
        || !policy.disks.is_empty()
        || policy.durability.is_some()
        || policy.rules.iter().any(needs_files);
    let data = injecting
        || partitioned
        || proxied
        || files
        || ops().any(|op| !matches!(op, Op::Connect | Op::Accept | Op::Accept4 | Op::EpollWait));
    let waits = injecting || ops().any(|op| op == Op::EpollWait);
    let mut calls: Vec<libc::c_long> = ALWAYS.iter().map(|(nr, _)| *nr).collect();
    if data {
        calls.extend(DATA.iter().map(|(nr, _)| *nr));
    }
    if waits {
        calls.extend(WAITS.iter().map(|(nr, _)| *nr));
    }
    if files {
        calls.extend(FILES.iter().map(|(nr, _)| *nr));
    }
    if proxied || injecting {
        calls.extend(PEER.iter().map(|(nr, _)| *nr));
    }
    calls
}

// Not close, dup2, dup3, close_range or exit_group: a notified call interrupted by a signal
// before the supervisor has received it returns EINTR to a program whose handler lacks
// SA_RESTART (kernel/seccomp.c: the wait is interruptible until it is received), and the call
// is never made. A close that fails with EINTR without closing is a state Linux never produces
// (its close always closes), and a shell that ignores close's error keeps a pipe's write end
// open and waits for its EOF for ever; an exit_group that returns would leave glibc's _exit to
// end only its own thread. The supervisor holds no copy of a target fd between calls, so it
// needs to see none of these.

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

fn arch() -> u32 {
    if cfg!(target_arch = "aarch64") {
        AUDIT_ARCH_AARCH64
    } else {
        AUDIT_ARCH_X86_64
    }
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The BPF program notifying `calls`: another architecture's calls (a 32-bit `int 0x80`) and
/// the x32 ABI are allowed, as is every call not in `calls`.
pub fn program(calls: &[libc::c_long]) -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let ret_allow = stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW);
    let ret_notify = stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_USER_NOTIF);
    let mut p = vec![
        stmt(BPF_LD | BPF_W | BPF_ABS, 4), // seccomp_data.arch
        jump(BPF_JMP | BPF_JEQ | BPF_K, arch(), 1, 0),
        ret_allow,
        stmt(BPF_LD | BPF_W | BPF_ABS, 0), // seccomp_data.nr
        jump(BPF_JMP | BPF_JGE | BPF_K, 0x4000_0000, 0, 1), // __X32_SYSCALL_BIT
        ret_allow,
    ];
    let n = calls.len();
    for (i, nr) in calls.iter().enumerate() {
        // On a match jump to the notify return after the list; otherwise test the next number.
        let to_notify = (n - i) as u8; // skips the remaining tests and the allow
        p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, *nr as u32, to_notify, 0));
    }
    p.push(ret_allow);
    p.push(ret_notify);
    p
}

/// Installs the filter notifying `calls` on the calling thread (with no_new_privs, which an
/// unprivileged process needs) and returns the listener: an fd that is close-on-exec, as the
/// kernel makes it.
pub fn install(calls: &[libc::c_long]) -> Result<i32, String> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "prctl(PR_SET_NO_NEW_PRIVS) refused: {}",
            std::io::Error::last_os_error()
        ));
    }
    let prog = program(calls);
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (5.19+): once the supervisor has received a
    // call, only a fatal signal ends the target's wait for our answer. Without it a handled
    // signal could end the wait after we acted on our copy (a short read's bytes taken from
    // the socket, a short write's sent) and the call, restarted or failed with EINTR, would
    // lose or repeat them. The price: a handled signal waits for our answer, so during a long
    // hold (a partition) its handler runs at the heal. Older kernels refuse the flag.
    let install = |flags: libc::c_ulong| {
        // SAFETY: `fprog` points at `prog`, which lives until the call returns; the kernel
        // copies it.
        unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &fprog as *const libc::sock_fprog,
            )
        }
    };
    let mut fd = install(
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
    );
    if fd < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        fd = install(libc::SECCOMP_FILTER_FLAG_NEW_LISTENER);
    }
    if fd < 0 {
        return Err(format!(
            "seccomp(SECCOMP_SET_MODE_FILTER, NEW_LISTENER) refused: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(fd as i32)
}

/// Whether this kernel can run the seccomp backend: user notifications (5.0) with CONTINUE
/// (5.5) and pidfd_getfd (5.6). `Err` says what is missing.
pub fn available() -> Result<(), String> {
    let actions = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
        .map_err(|e| format!("cannot read /proc/sys/kernel/seccomp/actions_avail ({e}): is seccomp built into this kernel?"))?;
    if !actions.split_whitespace().any(|a| a == "user_notif") {
        return Err(format!(
            "this kernel's seccomp has no user notification (SECCOMP_RET_USER_NOTIF, Linux 5.0+); it offers: {}",
            actions.trim()
        ));
    }
    let me = super::sys::pidfd_open(std::process::id() as i32)
        .map_err(|e| format!("pidfd_open failed (Linux 5.3+ needed): errno {e}"))?;
    // fd 0 may be closed; pidfd_getfd on an fd that is not open still proves the call exists.
    match super::sys::pidfd_getfd(&me, 0) {
        Err(libc::ENOSYS) => Err("pidfd_getfd is missing (Linux 5.6+ needed)".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the BPF program over one call as the kernel would (the subset of BPF it uses).
    fn verdict(p: &[libc::sock_filter], arch: u32, nr: u32) -> u32 {
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let i = p[pc];
            match i.code as u32 {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    acc = if i.k == 4 { arch } else { nr };
                    pc += 1;
                }
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    pc += 1 + if acc == i.k { i.jt } else { i.jf } as usize;
                }
                c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => {
                    pc += 1 + if acc >= i.k { i.jt } else { i.jf } as usize;
                }
                c if c == libc::BPF_RET | libc::BPF_K => return i.k,
                c => panic!("unexpected BPF code {c:#x}"),
            }
        }
    }

    #[test]
    fn notifies_exactly_the_listed_calls_of_our_architecture() {
        let widest: Vec<libc::c_long> = all().map(|(nr, _)| *nr).collect();
        let connect_only = [libc::SYS_connect, libc::SYS_execve];
        for calls in [&widest[..], &connect_only[..]] {
            let p = program(calls);
            for nr in 0..460u32 {
                let want = if calls.contains(&(nr as libc::c_long)) {
                    libc::SECCOMP_RET_USER_NOTIF
                } else {
                    libc::SECCOMP_RET_ALLOW
                };
                assert_eq!(verdict(&p, arch(), nr), want, "syscall {nr}");
                assert_eq!(
                    verdict(&p, 0x4000_0003, nr),
                    libc::SECCOMP_RET_ALLOW,
                    "other arch"
                );
            }
            assert_eq!(
                verdict(&p, arch(), 0x4000_0000 | libc::SYS_connect as u32),
                libc::SECCOMP_RET_ALLOW,
                "x32 calls pass"
            );
        }
    }

    fn policy(rules: &str) -> Policy {
        chaos_engine::parse::parse_policy(rules, "test.toml").expect("the test policy parses")
    }

    fn has(calls: &[libc::c_long], set: &[(libc::c_long, &str)]) -> bool {
        let n = set.iter().filter(|(nr, _)| calls.contains(nr)).count();
        assert!(
            n == 0 || n == set.len(),
            "all of a group or none: {calls:?}"
        );
        n == set.len()
    }

    #[test]
    fn a_connect_only_policy_notifies_no_data_call_and_no_wait() {
        let calls = calls_for(
            &policy("[[rules]]\non = [\"connect\"]\nfault = \"ECONNREFUSED\"\n"),
            false,
            false,
        );
        assert!(has(&calls, ALWAYS));
        assert!(!has(&calls, DATA), "{calls:?}");
        assert!(!has(&calls, WAITS), "{calls:?}");
        let accept = calls_for(
            &policy("[[rules]]\non = [\"accept\"]\nfault = \"ECONNABORTED\"\n"),
            false,
            false,
        );
        assert!(!has(&accept, DATA), "{accept:?}");
    }

    #[test]
    fn no_rules_notify_only_what_keeps_the_books() {
        let calls = calls_for(&policy("seed = 1\n"), false, false);
        assert_eq!(calls, ALWAYS.iter().map(|(nr, _)| *nr).collect::<Vec<_>>());
    }

    #[test]
    fn a_rule_on_one_data_op_notifies_every_data_call_but_no_wait() {
        for on in ["recv", "write", "reads", "setsockopt"] {
            let fault = if on == "setsockopt" {
                "ENOMEM"
            } else {
                "EINTR"
            };
            let calls = calls_for(
                &policy(&format!(
                    "[[rules]]\non = [\"{on}\"]\nfault = \"{fault}\"\n"
                )),
                false,
                false,
            );
            assert!(has(&calls, DATA), "{on}: {calls:?}");
            assert!(!has(&calls, WAITS), "{on}: {calls:?}");
        }
    }

    #[test]
    fn durability_alone_notifies_the_file_and_data_calls() {
        let calls = calls_for(&policy("[durability]\npath = \"/srv/*\"\n"), false, false);
        assert!(
            has(&calls, FILES),
            "its journal sees every change: {calls:?}"
        );
        assert!(has(&calls, DATA), "{calls:?}");
        assert!(!has(&calls, WAITS), "{calls:?}");
    }

    #[test]
    fn a_rule_switched_off_at_the_start_still_gets_its_calls() {
        let calls = calls_for(
            &policy("[[rules]]\non = [\"read\"]\nenabled = false\nfault = \"EINTR\"\n"),
            false,
            false,
        );
        assert!(
            has(&calls, DATA),
            "control can switch it on later: {calls:?}"
        );
    }

    #[test]
    fn waits_follow_epoll_wait_rules_and_injections_take_everything() {
        let waits = calls_for(
            &policy("[[rules]]\non = [\"epoll_wait\"]\nfault = \"EINTR\"\n"),
            false,
            false,
        );
        assert!(has(&waits, WAITS) && !has(&waits, DATA), "{waits:?}");
        let frozen = calls_for(
            &policy(
                "[[inject]]\nprocess = \"0000000000000001\"\nconn = \"tcp-out#0\"\n\
                 at = \"rx@0#0\"\nfault = \"ECONNRESET\"\n",
            ),
            false,
            false,
        );
        assert_eq!(frozen.len(), all().count(), "{frozen:?}");
    }

    #[test]
    fn file_calls_follow_rules_that_can_act_on_files() {
        for (rules, wanted) in [
            ("on = \"reads\"\nfd = \"tcp\"\nfault = \"EINTR\"", false),
            ("on = \"connect\"\nfault = \"ECONNREFUSED\"", false),
            ("on = \"fsync\"\nfd = \"file\"\nfault = \"EIO\"", true),
            (
                "on = \"opens\"\npath = \"/srv/*\"\nfault = \"EACCES\"",
                true,
            ),
            ("on = \"write\"\nfd = \"file\"\nfault = \"ENOSPC\"", true),
        ] {
            let calls = calls_for(&policy(&format!("[[rules]]\n{rules}\n")), false, false);
            assert_eq!(has(&calls, FILES), wanted, "{rules}: {calls:?}");
            if wanted {
                // A file is numbered at its first call, a read or write included.
                assert!(has(&calls, DATA), "{rules}: {calls:?}");
            }
        }
    }

    #[test]
    fn a_disk_notifies_the_file_calls_whose_growth_it_counts() {
        let calls = calls_for(
            &policy("[[disk]]\nname = \"d\"\npath = \"/srv/*\"\ncapacity = \"1MB\"\n"),
            false,
            false,
        );
        assert!(has(&calls, FILES) && has(&calls, DATA), "{calls:?}");
    }

    #[test]
    fn a_toxiproxy_api_notifies_the_data_calls_and_getpeername_with_no_rule() {
        let calls = calls_for(&policy("seed = 1\n"), false, true);
        assert!(has(&calls, DATA) && has(&calls, PEER), "{calls:?}");
        assert!(!has(&calls, WAITS) && !has(&calls, FILES), "{calls:?}");
        assert!(!has(&calls_for(&policy("seed = 1\n"), false, false), PEER));
    }

    #[test]
    fn a_process_a_partition_can_cut_has_its_data_calls_notified() {
        let calls = calls_for(&policy("seed = 1\n"), true, false);
        assert!(has(&calls, DATA) && !has(&calls, WAITS), "{calls:?}");
    }
}
