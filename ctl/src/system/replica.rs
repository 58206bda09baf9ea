//! One replica of a `[[process]]`: its expanded command line, environment, data directory and
//! probe, and its life as the supervisor sees it.

use super::limits::{self, Prepared};
use super::ready::Probe;
use chaos_engine::system::{Kind, ProcessSpec};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where a replica is in its life.
#[derive(Debug)]
pub enum State {
    /// Started, not yet ready (`deadline`: its ready_timeout).
    Starting {
        deadline: Instant,
    },
    Up,
    /// A kill is under way: the stop signal was sent; SIGKILL follows at `sigkill_at`.
    Stopping {
        kind: Kind,
        key: String,
        recovery: Duration,
        sigkill_at: Option<Instant>,
    },
    /// Stopped by SIGSTOP until `until` (by the schedule, or by a process fault in it).
    Paused {
        until: Instant,
        /// It was ready when stopped (else it goes back to starting when continued).
        ready: bool,
    },
    /// Dead; restarted at `restart_at` (None: not restarted).
    Dead {
        restart_at: Option<Instant>,
        wipe: bool,
    },
}

/// Counts for the summary.
#[derive(Default, Debug)]
pub struct Stats {
    pub starts: u32,
    pub graceful: u32,
    pub crash: u32,
    pub wipe: u32,
    pub pause: u32,
    pub power_loss: u32,
    pub exits: u32,
    pub oom: u32,
    pub down: Duration,
}

pub struct Replica {
    pub name: String,
    pub spec: usize,
    pub addr: String,
    pub data: Option<PathBuf>,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub probe: Probe,
    /// stdout and stderr, appended across lives.
    pub output: PathBuf,
    pub state: State,
    pub pid: i32,
    /// The next start's life number.
    pub life: u32,
    pub stats: Stats,
    /// Since when it has been down (not Up), for `max_dead` and the summary.
    pub down_since: Option<Instant>,
    pub limits: Prepared,
    /// Deaths it chose itself (exits, process faults), numbering the drawn restart delays.
    pub self_deaths: u64,
    /// Duty cycling (cpu limit without a cgroup): stopped by it right now.
    pub duty_stopped: bool,
    /// Its last death came from a process fault fired inside it, or a power loss of its machine
    /// (so it is restarted, even while the system is still starting).
    pub killed_by_fault: bool,
    /// `user`: the uid and gid it runs as.
    pub ids: Option<(libc::uid_t, libc::gid_t)>,
}

impl Replica {
    pub fn is_up(&self) -> bool {
        matches!(self.state, State::Up)
    }

    pub fn is_running(&self) -> bool {
        self.pid > 0
    }

    pub fn mark_down(&mut self, now: Instant) {
        if self.down_since.is_none() {
            self.down_since = Some(now);
        }
    }

    pub fn mark_up(&mut self, now: Instant) {
        if let Some(since) = self.down_since.take() {
            self.stats.down += now - since;
        }
    }

    /// Signals the replica's whole process group (it leads one).
    pub fn signal(&self, sig: i32) {
        if self.pid > 0 {
            // SAFETY: kill takes two integers.
            unsafe { libc::kill(-self.pid, sig) };
        }
    }

    /// Empties the data directory (a wipe), keeping the directory itself.
    pub fn wipe_data(&self) -> std::io::Result<()> {
        let Some(dir) = &self.data else {
            return Ok(());
        };
        if dir.exists() {
            for entry in std::fs::read_dir(dir)? {
                let p = entry?.path();
                if p.is_dir() && !p.is_symlink() {
                    std::fs::remove_dir_all(&p)?;
                } else {
                    std::fs::remove_file(&p)?;
                }
            }
        }
        std::fs::create_dir_all(dir)
    }

    /// Starts the next life: its own process group, output appended to `output`, limits applied
    /// in the child. `base`: the command with the shim's environment already set.
    pub fn spawn(&mut self, mut base: Command, spec: &ProcessSpec) -> std::io::Result<i32> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.output)?;
        if let Some(d) = &self.data {
            std::fs::create_dir_all(d)?;
            if let Some((uid, gid)) = self.ids {
                // Its own data: servers such as PostgreSQL insist on owning it, mode 0700.
                std::os::unix::fs::chown(d, Some(uid), Some(gid))?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        limits::release(&self.limits.dirs);
        self.limits = limits::prepare(&self.name, self.life, &spec.limits);
        let rlimits = self.limits.rlimits.clone();
        let join = self.limits.join.clone();
        let ids = self.ids;
        base.envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("CHAOS_LIFE", self.life.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0);
        // SAFETY: only async-signal-safe calls on data prepared before the fork.
        unsafe {
            base.pre_exec(move || {
                limits::apply_in_child(&rlimits, &join);
                if let Some((uid, gid)) = ids {
                    // Groups first: setuid gives up the right to change them.
                    if libc::setgroups(1, &gid) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = base.spawn()?;
        // Reaped with waitpid by the supervisor; the handle is not needed.
        let pid = child.id() as i32;
        std::mem::forget(child);
        self.pid = pid;
        self.life += 1;
        self.stats.starts += 1;
        Ok(pid)
    }
}
