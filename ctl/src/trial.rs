//! One unattended run for `sweep` and `minimize`: output to a file, its own process group, a hard
//! deadline after which the whole group is killed. Passing means exit status 0.

use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Nonzero exit status, or 128+N when killed by signal N.
    Failed(i32),
    TimedOut,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        *self == Outcome::Passed
    }

    pub fn describe(&self) -> String {
        match self {
            Outcome::Passed => "passed".into(),
            Outcome::Failed(code) if *code > 128 => format!("killed by signal {}", code - 128),
            Outcome::Failed(code) => format!("exit {code}"),
            Outcome::TimedOut => "timed out".into(),
        }
    }
}

pub struct Finished {
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// Runs `cmd` to completion or `timeout`, its stdout and stderr going to `output`. Whatever the
/// program left running in its process group is killed afterwards.
pub fn run(mut cmd: Command, output: &Path, timeout: Duration) -> std::io::Result<Finished> {
    let out = File::create(output)?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let group = child.id() as i32;
    let kill_group = || unsafe {
        libc::kill(-group, libc::SIGKILL);
    };
    let outcome = loop {
        if let Some(status) = child.try_wait()? {
            break match (status.code(), status.signal()) {
                (Some(0), _) => Outcome::Passed,
                (Some(c), _) => Outcome::Failed(c),
                (None, Some(sig)) => Outcome::Failed(128 + sig),
                _ => Outcome::Failed(-1),
            };
        }
        if start.elapsed() >= timeout {
            kill_group();
            let _ = child.wait();
            break Outcome::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    kill_group();
    Ok(Finished {
        outcome,
        elapsed: start.elapsed(),
    })
}
