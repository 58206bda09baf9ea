//! The seccomp filter the launcher installs: the socket and I/O calls go to chaos-ctl as user
//! notifications, everything else runs untouched. It is inherited by every thread and child of
//! the target, so a whole Go program is covered.

/// The calls we are told about. The data, connect and accept calls are where faults land; close,
/// dup2/dup3, close_range and execve tell us when our copy of an fd stops being the target's (a
/// copy we kept would hold the connection open after the target closed it).
pub const NOTIFIED: &[libc::c_long] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_recvmmsg,
    libc::SYS_sendmmsg,
    libc::SYS_connect,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_listen,
    libc::SYS_setsockopt,
    libc::SYS_shutdown,
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
];

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

/// The BPF program: another architecture's calls (a 32-bit `int 0x80`) and the x32 ABI are
/// allowed, as is every call not in `NOTIFIED`.
pub fn program() -> Vec<libc::sock_filter> {
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
    let n = NOTIFIED.len();
    for (i, nr) in NOTIFIED.iter().enumerate() {
        // On a match jump to the notify return after the list; otherwise test the next number.
        let to_notify = (n - i) as u8; // skips the remaining tests and the allow
        p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, *nr as u32, to_notify, 0));
    }
    p.push(ret_allow);
    p.push(ret_notify);
    p
}

/// Installs the filter on the calling thread (with no_new_privs, which an unprivileged process
/// needs) and returns the listener: an fd that is close-on-exec, as the kernel makes it.
pub fn install() -> Result<i32, String> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "prctl(PR_SET_NO_NEW_PRIVS) refused: {}",
            std::io::Error::last_os_error()
        ));
    }
    let prog = program();
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
    fn verdict(arch: u32, nr: u32) -> u32 {
        let p = program();
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
        for nr in 0..460u32 {
            let listed = NOTIFIED.contains(&(nr as libc::c_long));
            let want = if listed {
                libc::SECCOMP_RET_USER_NOTIF
            } else {
                libc::SECCOMP_RET_ALLOW
            };
            assert_eq!(verdict(arch(), nr), want, "syscall {nr}");
            assert_eq!(
                verdict(0x4000_0003, nr),
                libc::SECCOMP_RET_ALLOW,
                "other arch"
            );
        }
        assert_eq!(
            verdict(arch(), 0x4000_0000 | libc::SYS_read as u32),
            libc::SECCOMP_RET_ALLOW,
            "x32 calls pass"
        );
    }
}
