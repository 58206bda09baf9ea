//! `chaos-ctl run` with a policy that declares `[[process]]`: start every replica under the shim
//! (each with its rules, `CHAOS_PROCESS`, its port and data directory), wait until each is ready,
//! run the workload, and meanwhile execute the attrition schedule (or a frozen run's `[[nemesis]]`
//! events) and restart what dies. The engine draws the schedule; this module only carries it out
//! and logs every process event (`journal.rs`).

pub(crate) mod journal;
mod limits;
mod power;
mod ready;
pub mod replica;
mod summary;

use crate::failure::Failure;
use crate::launch::{self, Launch};
use chaos_engine::fault::NsRange;
use chaos_engine::policy::Policy;
use chaos_engine::system::partition::{self, PartitionEvent};
use chaos_engine::system::template::{self, Vars};
use chaos_engine::system::{self as sys, Kind, NemesisEvent, ProcessSpec, Ready, Restart};
use journal::Journal;
use ready::Probe;
use replica::{Replica, State};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The supervisor's tick: how often it reaps, probes and looks at the schedule.
const TICK: Duration = Duration::from_millis(5);
/// How long processes get to exit on their stop signal when the run ends.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Restart delay after a process dies by itself, when there is no `[attrition]` to draw it from.
const SELF_RESTART: NsRange = NsRange {
    lo: 500_000_000,
    hi: 2_000_000_000,
};
const CPU_DUTY_PERIOD_MS: u128 = 100;

pub struct SystemRun<'a> {
    pub policy: &'a Policy,
    pub launch: Launch<'a>,
    pub log_path: &'a Path,
    pub seed: u64,
    /// The workload; empty: run until `duration` or until every process has ended.
    pub cmd: &'a [OsString],
    pub duration: Option<Duration>,
    /// `--control-addr`: serve the control endpoint there.
    pub control_addr: Option<&'a str>,
    pub quiet: bool,
    /// `--progress`: a line on stderr per process event, as it happens.
    pub progress: bool,
    /// The policy's text, whose `[[process]]` tables the log records.
    pub policy_text: Option<String>,
}

/// The `[[process]]` tables of a policy's text, as TOML of their own.
fn process_tables(text: &str) -> Option<String> {
    let table: toml::Table = text.parse().ok()?;
    let mut only = toml::Table::new();
    only.insert("process".into(), table.get("process")?.clone());
    toml::to_string(&only).ok()
}

/// How a system run ended.
pub struct Ended {
    /// The workload's pid and status, if there was one.
    pub workload: Option<(i32, ExitStatus)>,
    /// The table per process, for the summary.
    pub summary: String,
    /// A signal chaos-ctl received that ended the run without a workload.
    pub interrupted: Option<i32>,
}

/// Whether a scheduled event can be carried out yet.
enum Due {
    Now,
    /// Its replica is not up yet, or too many are down: hold the schedule.
    Wait,
    /// It never can be, for this reason.
    Skip(String),
}

/// How supervising ended: the workload's pid and status, or the signal that stopped a run
/// without a workload.
type Finish = (Option<(i32, ExitStatus)>, Option<i32>);

struct Supervisor<'a> {
    run: &'a SystemRun<'a>,
    replicas: Vec<Replica>,
    journal: Journal,
    /// CHAOS_RUN, CHAOS_ADDRS_*, CHAOS_SUPERVISOR: for every process and the workload.
    shared_env: Vec<(String, String)>,
    t0: Instant,
    /// The run's control page: the partition schedule writes its cuts there.
    control: Option<crate::control::RunControl>,
}

pub fn run(r: &SystemRun) -> Result<Ended, Failure> {
    let run_dir = fresh_run_dir(r.log_path)?;
    let t0 = Instant::now();
    let mut sup = Supervisor {
        run: r,
        replicas: plan_replicas(&r.policy.system.processes, &run_dir)?,
        journal: Journal::open(r.log_path, t0, r.progress),
        shared_env: Vec::new(),
        t0,
        control: None,
    };
    sup.shared_env = shared_env(&sup.replicas, &r.policy.system.processes, &run_dir);
    let mut names: Vec<&str> = sup.replicas.iter().map(|x| x.name.as_str()).collect();
    names.push("workload");
    let control = crate::control::start(
        &run_dir,
        &names,
        r.policy,
        r.log_path,
        r.control_addr,
        r.quiet,
    )?;
    sup.shared_env.extend(control.env.iter().cloned());
    sup.control = Some(control);
    // Crashes of the processes the replicas and the workload reap themselves.
    let _watch = crate::durability_watch::start(r.policy, r.seed, &run_dir, r.log_path);
    share_with_users(&sup.replicas, r.log_path, &run_dir)?;
    if let Some(t) = r.policy_text.as_deref().and_then(process_tables) {
        sup.journal.write_system(t);
    }
    crate::storage_line::write(r.policy, r.log_path);
    // Signals are recorded (and forwarded to the workload once there is one) from here on.
    crate::signals::forward_signals_to(0);
    let outcome = sup.start_all().and_then(|()| sup.supervise());
    sup.shutdown();
    if let Some(c) = &sup.control {
        crate::unlogged::append(&c.page.page(), r.log_path);
        crate::refusals::append_rule_lines(&c.page.page(), r.policy, r.log_path);
    }
    let summary = summary::table(&sup.replicas, &sup.journal.written);
    outcome.map(|(workload, interrupted)| Ended {
        workload,
        summary,
        interrupted,
    })
}

/// Marks a run directory as chaos-ctl's, so that the next run with the same log may empty it.
const RUN_DIR_MARK: &str = ".chaos-run";

/// `LOG.run/`, empty: a run starts from nothing (a previous run's data, output or a minimize
/// candidate's files would change what this one does). A directory of that name that chaos-ctl did
/// not make is refused rather than emptied.
pub(crate) fn fresh_run_dir(log: &Path) -> Result<PathBuf, Failure> {
    let dir = log.with_extension("run");
    let fail = |e: std::io::Error| Failure::own(format!("cannot prepare {}: {e}", dir.display()));
    if dir.exists() {
        if !dir.join(RUN_DIR_MARK).exists() {
            return Err(Failure::own(format!(
                "{} exists and is not a chaos run directory; move it or choose another --log",
                dir.display()
            )));
        }
        std::fs::remove_dir_all(&dir).map_err(fail)?;
    }
    // Owner-only: it holds the control page, and whoever reaches that can change the run.
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(fail)?;
    std::fs::write(dir.join(RUN_DIR_MARK), "").map_err(fail)?;
    Ok(dir)
}

/// Removes `LOG.run/` if chaos-ctl made it (a directory of that name it did not make is left).
pub(crate) fn remove_run_dir(log: &Path) {
    let dir = log.with_extension("run");
    if dir.join(RUN_DIR_MARK).exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Every replica with its port, address, data directory and expanded command line.
fn plan_replicas(specs: &[ProcessSpec], run_dir: &Path) -> Result<Vec<Replica>, Failure> {
    let run = run_dir.display().to_string();
    let mut ports = Vec::new();
    for spec in specs {
        for i in 0..spec.replicas {
            ports.push(match spec.port {
                Some(p) => p + i as u16,
                None => free_port()?,
            });
        }
    }
    let mut out = Vec::new();
    let mut at = 0;
    for (si, spec) in specs.iter().enumerate() {
        let mine: Vec<u16> = ports[at..at + spec.replicas as usize].to_vec();
        at += spec.replicas as usize;
        for i in 0..spec.replicas {
            let port = mine[i as usize];
            let peers: Vec<String> = mine
                .iter()
                .enumerate()
                .filter(|(j, _)| *j as u32 != i)
                .map(|(_, p)| format!("127.0.0.1:{p}"))
                .collect();
            let mut vars = Vars {
                i,
                port: Some(port),
                data: None,
                run: run.clone(),
                peers: peers.join(","),
            };
            let name = spec.replica_name(i);
            let bad =
                |what: &str, e: String| Failure::own(format!("process `{name}`: {what}: {e}"));
            if let Some(d) = &spec.data {
                vars.data = Some(template::expand(d, &vars).map_err(|e| bad("data", e))?);
            }
            let argv = spec
                .cmd
                .iter()
                .map(|a| template::expand(a, &vars))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("cmd", e))?;
            let env = spec
                .env
                .iter()
                .map(|(k, v)| Ok((k.clone(), template::expand(v, &vars)?)))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| bad("env", e))?;
            let probe = match &spec.ready {
                None => Probe::Started,
                Some(ready) => {
                    let (Ready::Tcp(t) | Ready::Unix(t) | Ready::Log(t) | Ready::Cmd(t)) = ready;
                    let text = template::expand(t, &vars).map_err(|e| bad("ready", e))?;
                    match ready {
                        Ready::Tcp(_) => Probe::Tcp(Probe::tcp_target(&text)),
                        Ready::Unix(_) => Probe::Unix(PathBuf::from(text)),
                        Ready::Log(_) => Probe::Log(regex::Regex::new(&text).map_err(|e| {
                            bad(
                                "ready",
                                format!("`log:{text}` is not a regular expression: {e}"),
                            )
                        })?),
                        Ready::Cmd(_) => Probe::Cmd(text),
                    }
                }
            };
            out.push(Replica {
                output: run_dir.join(format!("{}.out", name.replace('#', "-"))),
                name,
                spec: si,
                addr: format!("127.0.0.1:{port}"),
                data: vars.data.map(PathBuf::from),
                argv,
                env,
                probe,
                state: State::Dead {
                    restart_at: None,
                    wipe: false,
                },
                pid: 0,
                life: 0,
                stats: Default::default(),
                down_since: None,
                limits: Default::default(),
                self_deaths: 0,
                duty_stopped: false,
                killed_by_fault: false,
                ids: spec.user.as_deref().map(user_ids).transpose()?,
            });
        }
    }
    Ok(out)
}

/// The uid and gid of `user`; chaos-ctl must be root to run a process as another user.
fn user_ids(user: &str) -> Result<(libc::uid_t, libc::gid_t), Failure> {
    let name = std::ffi::CString::new(user)
        .map_err(|_| Failure::own(format!("user `{user}`: contains a NUL byte")))?;
    // SAFETY: a NUL-terminated name; getpwnam's result is read at once, before any other call.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(Failure::own(format!(
            "user `{user}`: no such user on this machine"
        )));
    }
    // SAFETY: non-null, so it points at a valid passwd record.
    let ids = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 && ids.0 != unsafe { libc::geteuid() } {
        return Err(Failure::own(format!(
            "user `{user}`: chaos-ctl must run as root to start a process as another user"
        )));
    }
    Ok(ids)
}

/// Lets the processes that run as another user (`user`) write the log, read the policy and map
/// the control page, and nobody else: the run directory becomes searchable by that user's group
/// (0710) and the page is given to that user (0600), or, when several users run processes, to
/// the first one's group (0660), as the log is.
fn share_with_users(replicas: &[Replica], log: &Path, run_dir: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let Some((uid, gid)) = replicas.iter().find_map(|r| r.ids) else {
        return Ok(());
    };
    let fail = |p: &Path, e: std::io::Error| {
        Failure::own(format!(
            "cannot share {} with the processes' user: {e}",
            p.display()
        ))
    };
    // The log: group-writable by the (first) user's group, appended to by its processes.
    std::os::unix::fs::chown(log, None, Some(gid)).map_err(|e| fail(log, e))?;
    std::fs::set_permissions(log, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| fail(log, e))?;
    if let Some(dir) = log.parent() {
        let mode = std::fs::metadata(dir)
            .map_err(|e| fail(dir, e))?
            .permissions()
            .mode();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o711))
            .map_err(|e| fail(dir, e))?;
    }
    // The directory stays ours (its other files are opened by chaos-ctl, which must not follow
    // what another user could plant there); the group may only pass through it.
    std::os::unix::fs::chown(run_dir, None, Some(gid)).map_err(|e| fail(run_dir, e))?;
    std::fs::set_permissions(run_dir, std::fs::Permissions::from_mode(0o710))
        .map_err(|e| fail(run_dir, e))?;
    let page = run_dir.join(crate::control::page::FILE);
    let one_user = replicas.iter().filter_map(|r| r.ids).all(|(u, _)| u == uid);
    let (owner, mode) = if one_user {
        (Some(uid), 0o600)
    } else {
        (None, 0o660)
    };
    std::os::unix::fs::chown(&page, owner, Some(gid)).map_err(|e| fail(&page, e))?;
    std::fs::set_permissions(&page, std::fs::Permissions::from_mode(mode))
        .map_err(|e| fail(&page, e))?;
    crate::policy_source::share_staged_read_only()
}

/// A port nobody listens on now, for a replica without `port`; kept for all its lives.
/// A port for a replica to listen on, free now and outside the kernel's ephemeral range: a port
/// the kernel hands out to outgoing connections (ours, the workload's, any process's) could be
/// taken by one of them between this check and the replica's bind (EADDRINUSE at start).
fn free_port() -> Result<u16, Failure> {
    let (ephemeral_lo, _) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut it = t.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    let lo = 10000u16.min(ephemeral_lo.saturating_sub(1000));
    let span = u32::from(ephemeral_lo.saturating_sub(lo)).max(1);
    let mut x = (std::process::id() as u64) << 32
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    for _ in 0..200 {
        x = chaos_engine::decide::splitmix(x);
        let port = lo + (x % u64::from(span)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    // A crowded machine: fall back to one the kernel picks.
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Failure::own(format!("cannot find a free port: {e}")))
}

fn shared_env(
    replicas: &[Replica],
    specs: &[ProcessSpec],
    run_dir: &Path,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("CHAOS_RUN".to_string(), run_dir.display().to_string()),
        (
            "CHAOS_SUPERVISOR".to_string(),
            std::process::id().to_string(),
        ),
    ];
    for (si, spec) in specs.iter().enumerate() {
        let addrs: Vec<&str> = replicas
            .iter()
            .filter(|r| r.spec == si)
            .map(|r| r.addr.as_str())
            .collect();
        env.push((sys::addrs_var(&spec.name), addrs.join(",")));
    }
    env
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

impl Supervisor<'_> {
    fn spec(&self, r: usize) -> &ProcessSpec {
        &self.run.policy.system.processes[self.replicas[r].spec]
    }

    /// How long a process waits before its restart: attrition's `recovery`, or SELF_RESTART.
    fn restart_range(&self) -> NsRange {
        self.run
            .policy
            .system
            .attrition
            .as_ref()
            .map_or(SELF_RESTART, |a| a.recovery)
    }

    fn interrupted() -> Option<i32> {
        match crate::signals::RECEIVED.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(sig),
        }
    }

    /// The command for `argv` under the shim, as process `name` of the system.
    fn command(&self, argv: &[OsString], name: &str, stop_signal: i32) -> std::process::Command {
        let mut cmd = launch::command(argv, &self.run.launch);
        cmd.envs(self.shared_env.iter().map(|(k, v)| (k, v)))
            .env("CHAOS_PROCESS", name)
            .env(
                "CHAOS_STOP_SIGNAL",
                chaos_engine::signal::signal_name(stop_signal),
            );
        cmd
    }

    fn start(&mut self, r: usize, what: &str) -> Result<(), Failure> {
        let spec = self.spec(r).clone();
        let rep = &self.replicas[r];
        let argv: Vec<OsString> = rep.argv.iter().map(OsString::from).collect();
        let cmd = self.command(&argv, &rep.name, spec.stop_signal);
        let now = Instant::now();
        let rep = &mut self.replicas[r];
        let pid = rep.spawn(cmd, &spec).map_err(|e| {
            Failure::own(format!(
                "cannot start process `{}` ({}): {e}",
                rep.name, rep.argv[0]
            ))
        })?;
        rep.state = State::Starting {
            deadline: now + Duration::from_nanos(spec.ready_timeout_ns),
        };
        rep.mark_down(now);
        let detail = (!rep.limits.mechanisms.is_empty()).then(|| rep.limits.mechanisms.join("; "));
        let e = self.journal.event(&rep.name, what);
        self.journal
            .write(journal_event(e, pid, rep.life - 1, detail));
        Ok(())
    }

    fn start_all(&mut self) -> Result<(), Failure> {
        for r in 0..self.replicas.len() {
            self.start(r, "start")?;
        }
        // Every process must be ready before the workload starts.
        loop {
            if let Some(sig) = Self::interrupted() {
                return Err(Failure::with(
                    crate::trial::interrupted_status(sig),
                    "interrupted while the processes were starting",
                ));
            }
            for r in 0..self.replicas.len() {
                if let Some(status) = self.reap_one(r)
                    && !self.replicas[r].killed_by_fault
                {
                    let rep = &self.replicas[r];
                    return Err(Failure::own(format!(
                        "process `{}` ended ({}) before it was ready; its output is in {}{}",
                        rep.name,
                        describe(status),
                        rep.output.display(),
                        tail(&rep.output)
                    )));
                }
                self.advance(r, Instant::now(), true)?;
            }
            if self.replicas.iter().all(Replica::is_up) {
                return Ok(());
            }
            std::thread::sleep(TICK);
        }
    }

    /// Checks a Starting replica; `initial`: a timeout fails the run (else it is logged).
    fn probe(&mut self, r: usize, initial: bool) -> Result<(), Failure> {
        let State::Starting { deadline } = self.replicas[r].state else {
            return Ok(());
        };
        let mut env = self.shared_env.clone();
        env.extend(self.replicas[r].env.iter().cloned());
        let rep = &self.replicas[r];
        if rep.probe.check(&rep.output, &env) {
            let (name, pid, life) = (rep.name.clone(), rep.pid, rep.life - 1);
            let e = self.journal.event(&name, "ready");
            self.journal.write(journal_event(e, pid, life, None));
            let rep = &mut self.replicas[r];
            rep.state = State::Up;
            rep.mark_up(Instant::now());
        } else if Instant::now() >= deadline {
            let spec = self.spec(r).clone();
            let rep = &self.replicas[r];
            if initial {
                return Err(Failure::own(format!(
                    "process `{}` was not ready after {:.1}s (ready = {}); its output is in {}{}",
                    rep.name,
                    spec.ready_timeout_ns as f64 / 1e9,
                    ready_text(spec.ready.as_ref()),
                    rep.output.display(),
                    tail(&rep.output)
                )));
            }
            let mut e = self.journal.event(&rep.name, "ready-timeout");
            e.pid = Some(rep.pid);
            self.journal.write(e);
            // Counted as up again so that the schedule goes on; its probe failing is logged.
            let rep = &mut self.replicas[r];
            rep.state = State::Up;
            rep.mark_up(Instant::now());
        }
        Ok(())
    }

    /// Reaps replica `r` if it changed state; returns its status if it ended.
    fn reap_one(&mut self, r: usize) -> Option<ExitStatus> {
        let pid = self.replicas[r].pid;
        if pid <= 0 {
            return None;
        }
        let mut st = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let got = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG | libc::WUNTRACED) };
        if got != pid {
            return None;
        }
        if !libc::WIFSTOPPED(st) {
            crate::seccomp::server::settle(pid);
        }
        let now = Instant::now();
        if libc::WIFSTOPPED(st) {
            let rep = &self.replicas[r];
            if matches!(rep.state, State::Paused { .. }) || rep.duty_stopped {
                return None; // our own SIGSTOP
            }
            // A `pause` process fault: the shim stopped its process and logged for how long.
            let paused = last_process_fault(self.run.log_path, pid, &["pause"])
                .and_then(|f| f.delay_ns)
                .unwrap_or(1_000_000_000);
            let (name, life) = (rep.name.clone(), rep.life - 1);
            let mut e = self.journal.event(&name, "pause");
            e.kind = Some("pause".into());
            e.paused_ns = Some(paused);
            e.detail = Some("process fault".into());
            self.journal.write(journal_event(e, pid, life, None));
            let rep = &mut self.replicas[r];
            rep.stats.pause += 1;
            let ready = rep.is_up();
            rep.state = State::Paused {
                until: now + Duration::from_nanos(paused),
                ready,
            };
            rep.mark_down(now);
            return None;
        }
        let status = ExitStatus::from_raw(st);
        self.on_death(r, status, now);
        Some(status)
    }

    fn on_death(&mut self, r: usize, status: ExitStatus, now: Instant) {
        crate::events::append_exit(self.run.log_path, self.replicas[r].pid, status);
        // Before anything restarts it: a crash loses what was not durable.
        let power_loss = matches!(
            self.replicas[r].state,
            State::Stopping {
                kind: Kind::PowerLoss,
                ..
            }
        );
        crate::durability::after_exit(
            self.run.policy,
            self.run.seed,
            &self.run.log_path.with_extension("run"),
            Some(&self.replicas[r].name),
            status.signal() == Some(libc::SIGKILL),
            power_loss,
            self.run.log_path,
        );
        let restart_range = self.restart_range();
        let policy_restart = self.spec(r).restart;
        let seed = self.run.seed;
        let rep = &mut self.replicas[r];
        let (pid, life) = (rep.pid, rep.life - 1);
        let oom = status.signal() == Some(libc::SIGKILL)
            && rep
                .limits
                .memory_dir
                .as_deref()
                .is_some_and(|d| limits::oom_kills(d) > 0);
        rep.pid = 0;
        rep.killed_by_fault = false;
        rep.stats.exits += 1;
        rep.mark_down(now);
        if rep.duty_stopped {
            rep.duty_stopped = false;
        }
        let mut machine_event = None;
        let mut e = self.journal.event(&rep.name, "exit");
        e.status = status.code();
        e.signal = status.signal().map(chaos_engine::signal::signal_name);
        let name = rep.name.clone();
        let next = match &rep.state {
            State::Stopping {
                kind,
                key,
                recovery,
                ..
            } => {
                e.kind = Some(kind.name().into());
                e.key = Some(key.clone());
                // A process fault elsewhere on its machine can strike while it still starts.
                rep.killed_by_fault = *kind == Kind::PowerLoss;
                State::Dead {
                    restart_at: Some(now + *recovery),
                    wipe: *kind == Kind::Wipe,
                }
            }
            _ => {
                // A death the process chose: an exit, or a process fault fired inside it (a
                // kill like the schedule's: restarted whatever `restart` says).
                // A power loss fault is the replica's crash, with its process group, and takes
                // down the rest of its machine.
                let found = last_process_fault(
                    self.run.log_path,
                    pid,
                    &["crash", "power-loss", "terminate"],
                );
                let lost_power = found
                    .as_ref()
                    .filter(|f| f.fault == "power-loss")
                    .map(|f| f.key.clone().unwrap_or_else(|| "power-loss".into()));
                let fault = found.map(|f| {
                    (
                        if f.fault == "power-loss" {
                            "crash".into()
                        } else {
                            f.fault
                        },
                        f.key,
                    )
                });
                let killed = fault.is_some();
                rep.killed_by_fault = killed;
                if let Some((fault, key)) = fault {
                    if fault == "crash" {
                        rep.stats.crash += 1;
                    } else {
                        rep.stats.graceful += 1;
                    }
                    e.kind = Some(
                        if fault == "crash" {
                            "crash"
                        } else {
                            "graceful"
                        }
                        .into(),
                    );
                    e.key = key;
                    e.detail = Some(format!("process fault `{fault}`"));
                }
                let restart = killed
                    || match policy_restart {
                        Restart::Always => true,
                        Restart::OnFailure => !status.success(),
                        Restart::Never => false,
                    };
                let delay = sys::restart_delay(seed, &name, rep.self_deaths, restart_range);
                rep.self_deaths += 1;
                machine_event = lost_power.map(|key| NemesisEvent {
                    at_ns: 0,
                    target: name.clone(),
                    kind: Kind::PowerLoss,
                    grace_ns: 0,
                    recovery_ns: delay,
                    paused_ns: 0,
                    key,
                });
                if oom {
                    rep.stats.oom += 1;
                }
                State::Dead {
                    restart_at: restart.then(|| now + Duration::from_nanos(delay)),
                    wipe: false,
                }
            }
        };
        if let State::Dead {
            restart_at: Some(at),
            ..
        } = &next
        {
            e.recovery_ns = Some(ns(at.saturating_duration_since(now)));
        }
        rep.state = next;
        self.journal.write(journal_event(e, pid, life, None));
        if oom {
            let e = self.journal.event(&name, "oom");
            self.journal.write(journal_event(e, pid, life, None));
        }
        if let Some(e) = machine_event {
            self.power_loss_of_machine(r, &e, now);
        }
    }

    /// Runs the workload and the schedule until the workload ends (or the duration is up, or
    /// every process has ended, without a workload).
    fn supervise(&mut self) -> Result<Finish, Failure> {
        let workload = self.start_workload()?;
        let started = Instant::now();
        if let Some(c) = &self.control {
            // Changes are timed from here, as the partition and attrition windows are.
            c.page
                .page()
                .set_started(crate::control::page::monotonic_ns());
        }
        let schedule = self.schedule();
        let mut schedule = schedule.into_iter().peekable();
        let mut partitions = self.partition_schedule().into_iter().peekable();
        // When the event at the head of the schedule first found its state not there yet.
        let mut held_since: Option<Instant> = None;
        let mut power_losses_asked = 0;
        loop {
            let now = Instant::now();
            if let Some((_, pid)) = &workload
                && let Ok(Some(status)) = crate::signals::reap(*pid, false)
            {
                let pid = *pid;
                crate::seccomp::server::settle(pid);
                crate::events::append_exit(self.run.log_path, pid, status);
                return Ok((Some((pid, status)), None));
            }
            if workload.is_none() {
                if let Some(sig) = Self::interrupted() {
                    return Ok((None, Some(sig)));
                }
                if self.run.duration.is_some_and(|d| now - started >= d) {
                    return Ok((None, None));
                }
                let all_over = self.replicas.iter().all(|r| {
                    matches!(
                        r.state,
                        State::Dead {
                            restart_at: None,
                            ..
                        }
                    )
                });
                if all_over {
                    return Ok((None, None));
                }
            }
            for r in 0..self.replicas.len() {
                self.reap_one(r);
                self.advance(r, now, false)?;
            }
            // Events are carried out in the planned order; one whose state is not there yet (its
            // replica still starting, too many down) holds the queue and goes late.
            while let Some(e) = schedule.peek() {
                let t = ns(now - started);
                if t < e.at_ns {
                    break;
                }
                let since = *held_since.get_or_insert(now);
                match self.due(e, now - since) {
                    Due::Wait => break,
                    Due::Now => {
                        let late = (now > since).then(|| t - e.at_ns);
                        let e = schedule.next().expect("peeked");
                        self.execute(&e, now, None, late);
                    }
                    Due::Skip(why) => {
                        let e = schedule.next().expect("peeked");
                        self.execute(&e, now, Some(why), None);
                    }
                }
                held_since = None;
            }
            while let Some(e) = partitions.next_if(|e| ns(now - started) >= e.at_ns) {
                self.cut(&e);
            }
            self.requested_power_losses(now, now - started, &mut power_losses_asked);
            self.duty_cycle(now);
            std::thread::sleep(TICK);
        }
    }

    fn start_workload(&mut self) -> Result<Option<(Child, i32)>, Failure> {
        if self.run.cmd.is_empty() {
            return Ok(None);
        }
        let cmd = self.command(self.run.cmd, "workload", libc::SIGTERM);
        let child = crate::signals::spawn_forwarding_signals(cmd, &self.run.cmd[0])?;
        let pid = child.id() as i32;
        let e = self.journal.event("workload", "start");
        self.journal.write(journal_event(e, pid, 0, None));
        Ok(Some((child, pid)))
    }

    /// The frozen events if the policy has them, else the attrition schedule's (drawn up to a
    /// day ahead: the window may be unbounded).
    fn schedule(&self) -> Vec<NemesisEvent> {
        let system = &self.run.policy.system;
        if !system.nemesis.is_empty() {
            return system.nemesis.clone();
        }
        let Some(a) = &system.attrition else {
            return Vec::new();
        };
        let targets: Vec<String> = self
            .replicas
            .iter()
            .filter(|r| {
                a.processes
                    .iter()
                    .any(|p| *p == r.name || *p == sys::base_name(&r.name))
            })
            .map(|r| r.name.clone())
            .collect();
        sys::schedule(self.run.seed, a, &targets)
            .take_while(|e| e.at_ns < 86_400_000_000_000)
            .collect()
    }

    /// The partitions of `[[partition]]` and `[partitions]`, merged in time order; each event's
    /// cut is the union of both layers at that time.
    fn partition_schedule(&self) -> Vec<PartitionEvent> {
        let system = &self.run.policy.system;
        let expand = |n: &str| system.expand_member(n);
        let fixed = partition::fixed_events(&system.partition, &expand);
        let drawn: Vec<PartitionEvent> = match &system.partitions {
            None => Vec::new(),
            Some(cfg) => {
                let nodes: Vec<String> = cfg.processes.iter().flat_map(|p| expand(p)).collect();
                partition::drawn_events(self.run.seed, cfg, &nodes)
                    .take_while(|e| e.at_ns < 86_400_000_000_000)
                    .collect()
            }
        };
        merge_layers(fixed, drawn)
    }

    /// Writes a scheduled cut (or heal) into the control page, logged as `by: schedule`.
    fn cut(&mut self, e: &PartitionEvent) {
        let Some(control) = &self.control else { return };
        let page = control.page.page();
        let index = |n: &str| page.index_of(n.as_bytes());
        let mut rows = [0u64; chaos_engine::control::MAX_PROCESSES];
        for (a, b) in &e.cut {
            if let (Some(a), Some(b)) = (index(a), index(b)) {
                rows[a] |= 1 << b;
            }
        }
        let change = if e.cut.is_empty() {
            crate::control::Change::Heal
        } else {
            crate::control::Change::Rows(Box::new(rows))
        };
        let _ = crate::control::apply(&page, &change, "schedule", Some(&e.key));
    }

    fn max_dead(&self) -> u32 {
        self.run
            .policy
            .system
            .attrition
            .as_ref()
            .map_or(u32::MAX, |a| a.max_dead)
    }

    /// Carries out one scheduled event, unless the live state forbids it (the target is not up,
    /// or `max_dead` are already down): then it is logged as skipped.
    /// Whether scheduled event `e` can be carried out now, after waiting `waited` for it. The
    /// schedule counts a replica up once restarted; live, it is up once ready, which takes as long
    /// as the program takes to start: the event waits for that rather than being dropped, so a
    /// seed carries out the same (replica, kind) sequence however fast processes start. Skipped
    /// only for what the schedule cannot know: a process that ended by itself and is not
    /// restarted, or one that did not become ready within its `ready_timeout`.
    fn due(&self, e: &NemesisEvent, waited: Duration) -> Due {
        let Some(r) = self.replicas.iter().position(|x| x.name == e.target) else {
            return Due::Skip(format!("no process {}", e.target));
        };
        let gone = |x: &Replica| {
            matches!(
                x.state,
                State::Dead {
                    restart_at: None,
                    ..
                }
            )
        };
        if gone(&self.replicas[r]) {
            return Due::Skip(format!("{} ended by itself and is not restarted", e.target));
        }
        let down = self.replicas.iter().filter(|x| !x.is_up()).count() as u32;
        let gone_count = self.replicas.iter().filter(|x| gone(x)).count() as u32;
        if gone_count >= self.max_dead() {
            return Due::Skip(format!(
                "{gone_count} process(es) ended by themselves and are not restarted (max_dead {})",
                self.max_dead()
            ));
        }
        if self.replicas[r].is_up() && down < self.max_dead() {
            return Due::Now;
        }
        let limit = Duration::from_nanos(self.spec(r).ready_timeout_ns);
        if waited >= limit {
            return Due::Skip(if self.replicas[r].is_up() {
                format!(
                    "{down} process(es) still down after {:.1} s (max_dead {})",
                    waited.as_secs_f64(),
                    self.max_dead()
                )
            } else {
                format!("{} not up after {:.1} s", e.target, waited.as_secs_f64())
            });
        }
        Due::Wait
    }

    /// Carries out scheduled event `e`, or logs it skipped with the reason; `late_ns`: how long
    /// after its planned time it waited for its state.
    fn execute(
        &mut self,
        e: &NemesisEvent,
        now: Instant,
        skip: Option<String>,
        late_ns: Option<u64>,
    ) {
        let Some(r) = self.replicas.iter().position(|x| x.name == e.target) else {
            return;
        };
        let rep = &self.replicas[r];
        let mut ev = self.journal.event(
            &e.target,
            if skip.is_some() {
                "skip"
            } else if e.kind == Kind::Pause {
                "pause"
            } else {
                "kill"
            },
        );
        ev.kind = Some(e.kind.name().into());
        ev.key = Some(e.key.clone());
        ev.at_ns = Some(e.at_ns);
        match e.kind {
            Kind::Graceful => {
                ev.grace_ns = Some(e.grace_ns);
                ev.recovery_ns = Some(e.recovery_ns);
            }
            Kind::Crash | Kind::Wipe | Kind::PowerLoss => ev.recovery_ns = Some(e.recovery_ns),
            Kind::Pause => ev.paused_ns = Some(e.paused_ns),
        }
        ev.detail = skip.clone();
        ev.late_ns = late_ns;
        let (pid, life) = (rep.pid, rep.life.saturating_sub(1));
        self.journal.write(journal_event(ev, pid, life, None));
        if skip.is_some() {
            return;
        }
        let stop_signal = self.spec(r).stop_signal;
        let rep = &mut self.replicas[r];
        rep.mark_down(now);
        let recovery = Duration::from_nanos(e.recovery_ns);
        match e.kind {
            Kind::Graceful => {
                rep.stats.graceful += 1;
                rep.signal(stop_signal);
                rep.state = State::Stopping {
                    kind: e.kind,
                    key: e.key.clone(),
                    recovery,
                    sigkill_at: Some(now + Duration::from_nanos(e.grace_ns)),
                };
            }
            Kind::Crash | Kind::Wipe | Kind::PowerLoss => {
                match e.kind {
                    Kind::Crash => rep.stats.crash += 1,
                    Kind::Wipe => rep.stats.wipe += 1,
                    _ => rep.stats.power_loss += 1,
                }
                rep.signal(libc::SIGKILL);
                rep.state = State::Stopping {
                    kind: e.kind,
                    key: e.key.clone(),
                    recovery,
                    sigkill_at: None,
                };
                if e.kind == Kind::PowerLoss {
                    self.power_loss_of_machine(r, e, now);
                }
            }
            Kind::Pause => {
                rep.stats.pause += 1;
                rep.signal(libc::SIGSTOP);
                rep.state = State::Paused {
                    until: now + Duration::from_nanos(e.paused_ns),
                    ready: true,
                };
            }
        }
    }

    /// Moves replica `r` on: SIGKILL after a grace period, SIGCONT after a pause, a restart after
    /// the recovery delay, its probe while it starts.
    /// `initial`: the processes are still starting (a ready timeout then fails the run).
    fn advance(&mut self, r: usize, now: Instant, initial: bool) -> Result<(), Failure> {
        let peers_going_down = self.machine_still_going_down(r);
        match &mut self.replicas[r].state {
            State::Stopping {
                sigkill_at: Some(at),
                ..
            } if now >= *at => {
                self.replicas[r].signal(libc::SIGKILL);
                if let State::Stopping { sigkill_at, .. } = &mut self.replicas[r].state {
                    *sigkill_at = None;
                }
            }
            State::Paused { until, ready } if now >= *until => {
                let ready = *ready;
                let timeout = Duration::from_nanos(self.spec(r).ready_timeout_ns);
                let rep = &mut self.replicas[r];
                rep.signal(libc::SIGCONT);
                if ready {
                    rep.state = State::Up;
                    rep.mark_up(now);
                } else {
                    // Stopped while it was starting: it still has to become ready.
                    rep.state = State::Starting {
                        deadline: now + timeout,
                    };
                }
                let (name, pid, life) = (rep.name.clone(), rep.pid, rep.life - 1);
                let e = self.journal.event(&name, "resume");
                self.journal.write(journal_event(e, pid, life, None));
            }
            State::Dead {
                restart_at: Some(at),
                wipe,
            } if now >= *at && !peers_going_down => {
                if *wipe {
                    let rep = &self.replicas[r];
                    let detail = match rep.wipe_data() {
                        Ok(()) => rep
                            .data
                            .as_ref()
                            .map(|d| format!("emptied {}", d.display())),
                        Err(err) => Some(format!("could not empty the data directory: {err}")),
                    };
                    let e = self.journal.event(&rep.name, "wipe");
                    self.journal
                        .write(journal_event(e, 0, rep.life - 1, detail));
                }
                self.start(r, "restart")?;
            }
            State::Starting { .. } => self.probe(r, initial)?,
            _ => {}
        }
        Ok(())
    }

    /// `cpu` limits without a cpu cgroup: stop and continue each such replica so that it runs
    /// its share of every 100 ms.
    fn duty_cycle(&mut self, now: Instant) {
        let phase = (now - self.t0).as_millis() % CPU_DUTY_PERIOD_MS;
        for rep in &mut self.replicas {
            let Some(pct) = rep.limits.duty_cycle else {
                continue;
            };
            if !rep.is_up() && !rep.duty_stopped {
                continue;
            }
            let run = phase < u128::from(pct.min(100));
            if !run && !rep.duty_stopped && rep.is_up() {
                rep.signal(libc::SIGSTOP);
                rep.duty_stopped = true;
            } else if run && rep.duty_stopped {
                rep.signal(libc::SIGCONT);
                rep.duty_stopped = false;
            }
        }
    }

    /// Ends every process: the stop signal (continuing stopped ones), SIGKILL after a grace.
    fn shutdown(&mut self) {
        for r in 0..self.replicas.len() {
            let sig = self.spec(r).stop_signal;
            let rep = &mut self.replicas[r];
            rep.signal(sig);
            rep.signal(libc::SIGCONT);
            rep.duty_stopped = false;
            // What ends now ends because the run is over: not restarted.
            rep.state = State::Dead {
                restart_at: None,
                wipe: false,
            };
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.replicas.iter().any(Replica::is_running) {
            for r in 0..self.replicas.len() {
                if self.reap_one(r).is_some() {
                    self.replicas[r].state = State::Dead {
                        restart_at: None,
                        wipe: false,
                    };
                }
            }
            if Instant::now() >= deadline {
                for rep in &self.replicas {
                    rep.signal(libc::SIGKILL);
                }
            }
            std::thread::sleep(TICK);
        }
        let now = Instant::now();
        for rep in &mut self.replicas {
            rep.mark_up(now); // closes the open down interval
            limits::release(&rep.limits.dirs);
        }
    }
}

/// Two partition layers as one schedule: at each event of either, the union of both layers' cuts.
fn merge_layers(a: Vec<PartitionEvent>, b: Vec<PartitionEvent>) -> Vec<PartitionEvent> {
    let mut all: Vec<(u64, usize, PartitionEvent)> = a
        .into_iter()
        .map(|e| (e.at_ns, 0, e))
        .chain(b.into_iter().map(|e| (e.at_ns, 1, e)))
        .collect();
    all.sort_by_key(|(t, layer, _)| (*t, *layer));
    let mut now: [Vec<(String, String)>; 2] = [Vec::new(), Vec::new()];
    all.into_iter()
        .map(|(_, layer, mut e)| {
            now[layer] = e.cut.clone();
            let mut union = now[0].clone();
            union.extend(now[1].iter().filter(|p| !now[0].contains(p)).cloned());
            e.cut = union;
            e
        })
        .collect()
}

fn journal_event(
    mut e: chaos_engine::event::schema::ProcessEvent,
    pid: i32,
    life: u32,
    detail: Option<String>,
) -> chaos_engine::event::schema::ProcessEvent {
    if pid > 0 {
        e.pid = Some(pid);
    }
    e.life = Some(life);
    if detail.is_some() {
        e.detail = detail;
    }
    e
}

/// The last process fault of one of `kinds` (`crash`, `terminate`, `pause`) that `pid` logged.
fn last_process_fault(
    log: &Path,
    pid: i32,
    kinds: &[&str],
) -> Option<chaos_engine::event::schema::Fault> {
    let log = crate::events::Log::read(log).ok()?;
    log.faults()
        .filter(|f| f.header.pid == pid && kinds.contains(&f.fault.as_str()))
        .last()
        .cloned()
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by {}", chaos_engine::signal::signal_name(s)),
        _ => "ended".into(),
    }
}

fn ready_text(r: Option<&Ready>) -> String {
    match r {
        None => "(none)".into(),
        Some(Ready::Tcp(t)) => format!("\"tcp:{t}\""),
        Some(Ready::Unix(t)) => format!("\"unix:{t}\""),
        Some(Ready::Log(t)) => format!("\"log:{t}\""),
        Some(Ready::Cmd(t)) => format!("\"cmd:{t}\""),
    }
}

/// The last lines of a process's output, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return " (it printed nothing)".into();
    }
    let from = lines.len().saturating_sub(5);
    format!(":\n    {}", lines[from..].join("\n    "))
}
