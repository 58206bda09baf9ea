//! The executor: spawns processes and says what became of them. It holds no state of the run:
//! the dispatcher decides, calls it, and reacts to what it reports (`Observed`).

use super::replica::Replica;
use crate::failure::Failure;
use crate::launch::{self, Launch};
use chaos_engine::system::ProcessSpec;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::Ordering;

/// What waitpid saw of a replica's process.
pub enum Observed {
    /// Stopped by a signal (ours, or a `pause` process fault).
    Stopped,
    Exited(ExitStatus),
}

pub struct Executor<'a> {
    launch: &'a Launch<'a>,
    /// CHAOS_RUN, CHAOS_ADDRS_*, CHAOS_SUPERVISOR, the control page's: for every process and the
    /// workload.
    pub shared_env: Vec<(String, String)>,
}

impl<'a> Executor<'a> {
    pub fn new(launch: &'a Launch<'a>, shared_env: Vec<(String, String)>) -> Executor<'a> {
        Executor { launch, shared_env }
    }

    /// The command for `argv` under the shim, as process `name` of the system.
    pub fn command(&self, argv: &[OsString], name: &str, stop_signal: i32) -> Command {
        let mut cmd = launch::command(argv, self.launch);
        cmd.envs(self.shared_env.iter().map(|(k, v)| (k, v)))
            .env("CHAOS_PROCESS", name)
            .env(
                "CHAOS_STOP_SIGNAL",
                chaos_engine::signal::signal_name(stop_signal),
            );
        cmd
    }

    /// Starts replica `rep` (one more life), its command under the shim; returns its pid.
    pub fn spawn(&self, rep: &mut Replica, spec: &ProcessSpec) -> Result<i32, Failure> {
        let argv: Vec<OsString> = rep.argv.iter().map(OsString::from).collect();
        let cmd = self.command(&argv, &rep.name, spec.stop_signal);
        rep.spawn(cmd, spec).map_err(|e| {
            Failure::own(format!(
                "cannot start process `{}` ({}): {e}",
                rep.name, rep.argv[0]
            ))
        })
    }

    /// Starts the workload, its signals forwarded to it.
    pub fn spawn_workload(&self, argv: &[OsString]) -> Result<(Child, i32), Failure> {
        let cmd = self.command(argv, "workload", libc::SIGTERM);
        let child = crate::signals::spawn_forwarding_signals(cmd, &argv[0])?;
        let pid = child.id() as i32;
        Ok((child, pid))
    }
}

/// What became of process `pid` since the last look, if anything.
pub fn observe(pid: i32) -> Option<Observed> {
    if pid <= 0 {
        return None;
    }
    let mut st = 0;
    // SAFETY: waitpid on our own child with a valid status pointer.
    let got = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG | libc::WUNTRACED) };
    if got != pid {
        return None;
    }
    if libc::WIFSTOPPED(st) {
        return Some(Observed::Stopped);
    }
    crate::seccomp::live::settle(pid);
    Some(Observed::Exited(ExitStatus::from_raw(st)))
}

/// The workload's status once it has ended (its exit logged).
pub fn workload_ended(pid: i32, log: &std::path::Path) -> Option<ExitStatus> {
    let status = crate::signals::reap(pid, false).ok()??;
    crate::seccomp::live::settle(pid);
    crate::log::append_exit(log, pid, status);
    Some(status)
}

/// The signal chaos-ctl received, if one did.
pub fn interrupted() -> Option<i32> {
    match crate::signals::RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}
