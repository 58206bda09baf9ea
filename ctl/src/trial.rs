//! One unattended run for `sweep` and `minimize`: output to a file, its own process group, a hard
//! deadline after which the whole group is killed. Passing means exit status 0.

use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The first SIGINT or SIGTERM that reached a sweep or minimize, or 0.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_interrupt(sig: libc::c_int) {
    // Async-signal-safe: one atomic store. The run loops poll it.
    let _ = INTERRUPTED.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// From now on, SIGINT and SIGTERM only set a flag (`interrupted`): the runs in progress are killed
/// (their process groups), and the command reports what it has and exits 128+N. The handler is
/// one-shot, so a second signal kills chaos-ctl at once, as it did before.
pub fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: an all-zero sigaction is valid plain data; the handler only stores to an atomic
        // (async-signal-safe).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The signal that interrupted the command, if one did.
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// The exit status after an interruption by `sig`: 130 for SIGINT, 143 for SIGTERM.
pub fn interrupted_status(sig: i32) -> u8 {
    128 + sig as u8
}

/// `--timeout`: a duration such as `30s` or `2m`, or bare seconds (`10`) as timeout(1) takes them.
pub fn timeout_arg(text: &str) -> Result<Duration, crate::failure::Failure> {
    let t = text.trim();
    let d = if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        crate::launch::duration_arg(&format!("{t}s"), "--timeout")?
    } else {
        crate::launch::duration_arg(t, "--timeout")?
    };
    // A trial given no time at all would be "timed out" whatever the program does.
    if d.is_zero() {
        return Err(crate::failure::Failure::own(format!(
            "--timeout `{text}`: expected a duration above zero (e.g. 30s, 2m)"
        )));
    }
    Ok(d)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Exited with this nonzero status (130 is an exit status, whatever shells make of it).
    Exited(i32),
    /// Killed by this signal.
    Killed(i32),
    TimedOut,
    /// Killed by chaos-ctl because the sweep or minimize was interrupted (SIGINT/SIGTERM).
    Interrupted,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        *self == Outcome::Passed
    }

    pub fn describe(&self) -> String {
        match self {
            Outcome::Passed => "passed".into(),
            Outcome::Exited(code) => format!("exit {code}"),
            Outcome::Killed(sig) => format!("killed by {}", signal_name(*sig)),
            Outcome::TimedOut => "timed out".into(),
            Outcome::Interrupted => "interrupted".into(),
        }
    }
}

use chaos_engine::signal::signal_name;

pub struct Finished {
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// Runs `cmd` to completion or `timeout`, its stdout and stderr going to `output`. Whatever the
/// program left running in its process group is killed afterwards, and the whole group is killed
/// at once when chaos-ctl is interrupted (`catch_interrupts`).
pub fn run(mut cmd: Command, output: &Path, timeout: Duration) -> std::io::Result<Finished> {
    let out = File::create(output)?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let group = child.id() as i32;
    // SAFETY: kill takes integers; `group` is the group of a child we spawned and have not yet
    // reaped, so it is still ours.
    let kill_group = || unsafe {
        libc::kill(-group, libc::SIGKILL);
    };
    // The run's log, to append the program's `exit` line to once it is reaped.
    let log = cmd
        .get_envs()
        .find(|(k, _)| *k == "CHAOS_LOG")
        .and_then(|(_, v)| v.map(std::path::PathBuf::from));
    let outcome = loop {
        if let Some(status) = child.try_wait()? {
            if let Some(log) = &log {
                crate::log::append_exit(log, group, status);
            }
            break match (status.code(), status.signal()) {
                (Some(0), _) => Outcome::Passed,
                (Some(c), _) => Outcome::Exited(c),
                (None, Some(sig)) => Outcome::Killed(sig),
                _ => Outcome::Exited(-1),
            };
        }
        if start.elapsed() >= timeout {
            kill_group();
            if let (Ok(status), Some(log)) = (child.wait(), &log) {
                crate::log::append_exit(log, group, status);
            }
            break Outcome::TimedOut;
        }
        if interrupted().is_some() {
            kill_group();
            if let (Ok(status), Some(log)) = (child.wait(), &log) {
                crate::log::append_exit(log, group, status);
            }
            break Outcome::Interrupted;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    kill_group();
    Ok(Finished {
        outcome,
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::Outcome;

    #[test]
    fn exit_statuses_are_not_signals() {
        assert_eq!(Outcome::Exited(130).describe(), "exit 130");
        assert_eq!(Outcome::Killed(libc::SIGINT).describe(), "killed by SIGINT");
        assert_eq!(
            Outcome::Killed(libc::SIGSEGV).describe(),
            "killed by SIGSEGV"
        );
    }

    #[test]
    fn bare_seconds_are_a_timeout() {
        assert_eq!(super::timeout_arg("10").unwrap().as_secs(), 10);
        assert_eq!(super::timeout_arg("1.5").unwrap().as_millis(), 1500);
        assert_eq!(super::timeout_arg("2m").unwrap().as_secs(), 120);
        assert!(super::timeout_arg("ten").is_err());
        for zero in ["0", "0s", "0.0", "0ms"] {
            let e = super::timeout_arg(zero).unwrap_err();
            assert!(e.message.contains("above zero"), "{zero}: {}", e.message);
        }
    }
}
