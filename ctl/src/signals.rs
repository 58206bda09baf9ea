//! Signals meant for the program: it runs in a process group of its own, and chaos-ctl forwards
//! what it receives, so that every signal meant for the program arrives once.
//!
//! Signals reach a program three ways: sent to chaos-ctl alone (`kill -QUIT PID`, a CI runner's
//! timeout), to chaos-ctl's whole process group (`kill -INT -PGID`, a harness killing its child's
//! group), or from the terminal (Ctrl-C goes to the terminal's foreground group). Nothing in the
//! siginfo tells the first two apart, so a program sharing chaos-ctl's group would get a group-wide
//! signal twice if chaos-ctl forwarded it, and one sent to chaos-ctl alone never if it did not. In
//! a group of its own the program gets exactly what chaos-ctl forwards: every signal, once.
//!
//! The terminal follows the program, as a shell hands it to a job: when chaos-ctl is the terminal's
//! foreground group, the program's group becomes it (Ctrl-C then reaches the program alone, and it
//! can read the terminal), and chaos-ctl takes it back when the program stops (Ctrl-Z: chaos-ctl
//! stops too, so the shell sees the job stopped) or ends. chaos-ctl dying by SIGKILL takes the
//! program with it (PR_SET_PDEATHSIG), as it did when a group-wide SIGKILL reached both.

use crate::failure::{self, Failure};
use std::io::ErrorKind;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// chaos-ctl handed the terminal to the program (and must take it back).
static HANDED: AtomicBool = AtomicBool::new(false);
/// The program's process group (its pid), once spawned.
static PROGRAM: AtomicI32 = AtomicI32::new(0);

/// Whether chaos-ctl's own group is the foreground group of the terminal on stdin.
fn we_are_foreground() -> bool {
    // SAFETY: isatty, tcgetpgrp and getpgrp take no memory arguments.
    unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() }
}

/// Makes `pgid` the terminal's foreground group. SIGTTOU is blocked around the call: a process of a
/// background group that calls tcsetpgrp would otherwise be stopped by it (termios(3)).
fn set_terminal_group(pgid: libc::pid_t) {
    // SAFETY: sigset_t is plain data (zeroed, then filled); tcsetpgrp takes no memory arguments;
    // only async-signal-safe calls, so this is also fine between fork and exec.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTTOU);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        libc::tcsetpgrp(0, pgid);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}

/// Puts the program `cmd` will start in a process group of its own, with the terminal if chaos-ctl
/// has it, and dying with chaos-ctl. The child does its half between fork and exec (so it never
/// reads the terminal before it owns it); the parent does the same after the spawn (`adopted`),
/// as shells do, whichever runs first.
pub fn isolate(cmd: &mut Command) {
    let take_terminal = we_are_foreground();
    HANDED.store(take_terminal, Ordering::SeqCst);
    // SAFETY: getppid, getpid, prctl, setpgid, tcsetpgrp, sigprocmask are async-signal-safe, as
    // code between fork and exec must be.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || {
            libc::setpgid(0, 0);
            if take_terminal {
                set_terminal_group(libc::getpid());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // chaos-ctl died before the prctl: nothing would ever kill us.
            if libc::getppid() != parent {
                libc::_exit(125);
            }
            Ok(())
        });
    }
}

/// The parent's half of `isolate`, once the child's pid is known.
pub fn adopted(pid: libc::pid_t) {
    // SAFETY: setpgid takes no memory arguments; EACCES after the child's exec is harmless (the
    // child did it itself).
    unsafe { libc::setpgid(pid, pid) };
    PROGRAM.store(pid, Ordering::SeqCst);
    if HANDED.load(Ordering::SeqCst) {
        set_terminal_group(pid);
    }
}

/// Gives the terminal back to chaos-ctl's group, if the program still has it (after a `bg` the
/// shell owns it, and it must not be taken from the shell).
pub fn reclaim() {
    let program = PROGRAM.load(Ordering::SeqCst);
    // SAFETY: tcgetpgrp and getpgrp take no memory arguments.
    if HANDED.swap(false, Ordering::SeqCst) && unsafe { libc::tcgetpgrp(0) } == program {
        // SAFETY: as above.
        set_terminal_group(unsafe { libc::getpgrp() });
    }
}

/// Waits for the program `pid` (blocking, or not with `hang = false`) and returns its status
/// once it has ended. A program stopped by the terminal (Ctrl-Z, SIGTTIN) stops chaos-ctl too, so
/// the shell regains the terminal; when the shell continues chaos-ctl, the program gets the
/// terminal back and is continued.
pub fn reap(pid: libc::pid_t, hang: bool) -> std::io::Result<Option<ExitStatus>> {
    loop {
        let mut st = 0;
        let flags = libc::WUNTRACED | if hang { 0 } else { libc::WNOHANG };
        // SAFETY: waitpid on our own child with a valid status pointer.
        let got = unsafe { libc::waitpid(pid, &mut st, flags) };
        if got < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if got == 0 {
            return Ok(None);
        }
        if !libc::WIFSTOPPED(st) {
            reclaim();
            return Ok(Some(ExitStatus::from_raw(st)));
        }
        let by_terminal = matches!(
            libc::WSTOPSIG(st),
            libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
        );
        if by_terminal && HANDED.load(Ordering::SeqCst) {
            // SAFETY: getpgrp, raise and kill take no memory arguments.
            unsafe {
                if libc::tcgetpgrp(0) == pid {
                    set_terminal_group(libc::getpgrp());
                }
                libc::raise(libc::SIGSTOP);
                // Continued by the shell (fg or bg): the program goes on as well.
                if we_are_foreground() {
                    set_terminal_group(pid);
                }
                libc::kill(-pid, libc::SIGCONT);
            }
        }
        if !hang {
            return Ok(None);
        }
    }
}

static CHILD: AtomicI32 = AtomicI32::new(0);
/// The last forwarded signal chaos-ctl received (0: none): a system run shuts its processes down
/// on it.
pub static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// Ends chaos-ctl by `sig` with its default action; returns only if that does not kill (then the
/// caller's 128+N exit stands).
pub fn reraise(sig: i32) {
    // SAFETY: plain signal calls on our own process, with valid (zeroed, then filled) arguments.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
}

extern "C" fn forward(sig: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // The program has a process group of its own (`foreground`): no terminal's or group-wide
    // signal reaches it but through us, so every one is forwarded, once.
    RECEIVED.store(sig, Ordering::SeqCst);
    let child = CHILD.load(Ordering::SeqCst);
    if child > 0 {
        // SAFETY: kill is async-signal-safe and takes no memory arguments.
        unsafe { libc::kill(child, sig) };
    }
}

const FORWARDED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

fn hold_forwarded_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data (zeroed, then filled by sigemptyset); the calls get valid
    // pointers to our locals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

fn release_signals(old: libc::sigset_t) {
    // SAFETY: a valid sigset from hold_forwarded_signals.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
}

/// The program has been reaped: signals from now on are only recorded (`RECEIVED`).
pub fn forget_child() {
    CHILD.store(0, Ordering::SeqCst);
}

pub fn forward_signals_to(pid: i32) {
    CHILD.store(pid, Ordering::SeqCst);
    for sig in FORWARDED {
        // SAFETY: a zeroed sigaction is valid; `forward` has the SA_SIGINFO handler signature and
        // only touches atomics and kill, which are async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Spawns the program chaos-ctl waits for, forwarding signals to it (see `forward`). Signals
/// sent to us between the spawn and the handler's installation must not kill us: they are held
/// until the child is known, then forwarded. The child gets the original mask back before exec
/// (std does not reset it).
pub fn spawn_forwarding_signals(
    mut cmd: std::process::Command,
    argv0: &std::ffi::OsStr,
) -> Result<std::process::Child, Failure> {
    let held = hold_forwarded_signals();
    // SAFETY: the closure only calls pthread_sigmask, which is async-signal-safe, as code between
    // fork and exec must be.
    unsafe {
        cmd.pre_exec(move || {
            libc::pthread_sigmask(libc::SIG_SETMASK, &held, std::ptr::null_mut());
            Ok(())
        });
    }
    isolate(&mut cmd);
    let spawned = cmd.spawn();
    if let Ok(child) = &spawned {
        adopted(child.id() as i32);
        forward_signals_to(child.id() as i32);
    }
    release_signals(held);
    spawned.map_err(|e| {
        let code = match e.kind() {
            ErrorKind::NotFound => failure::NOT_FOUND,
            _ => failure::CANNOT_EXECUTE,
        };
        Failure::with(code, format!("{}: {e}", argv0.to_string_lossy()))
    })
}
