//! The dispatcher: owns the run's state (every replica's, the journal, the control page) and
//! moves it on. It decides; the executor (`executor.rs`) spawns, and what it observes comes back
//! here (`reap_one`), as do deaths (`death.rs`) and scheduled events (`schedule.rs`).

use super::executor::{self, Executor, Observed};
use super::journal::{Journal, journal_event};
use super::limits;
use super::not_ready::{describe, ready_text, tail};
use super::options::SystemRun;
use super::replica::{Replica, State};
use crate::failure::Failure;
use chaos_engine::fault::NsRange;
use chaos_engine::system::ProcessSpec;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// The supervisor's tick: how often it reaps, probes and looks at the schedule.
pub(super) const TICK: Duration = Duration::from_millis(5);
/// How long processes get to exit on their stop signal when the run ends.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Restart delay after a process dies by itself, when there is no `[attrition]` to draw it from.
const SELF_RESTART: NsRange = NsRange {
    lo: 500_000_000,
    hi: 2_000_000_000,
};
const CPU_DUTY_PERIOD_MS: u128 = 100;

/// A system run's live state; `runner.rs` ticks it, the executor carries out what it decides.
pub(super) struct Dispatcher<'a> {
    pub(super) run: &'a SystemRun<'a>,
    pub(super) replicas: Vec<Replica>,
    pub(super) journal: Journal,
    pub(super) executor: Executor<'a>,
    pub(super) t0: Instant,
    /// The run's control page: the partition schedule writes its cuts there.
    pub(super) control: Option<crate::control::RunControl>,
}

impl Dispatcher<'_> {
    pub(super) fn spec(&self, r: usize) -> &ProcessSpec {
        &self.run.policy.system.processes[self.replicas[r].spec]
    }

    /// How long a process waits before its restart: attrition's `recovery`, or SELF_RESTART.
    pub(super) fn restart_range(&self) -> NsRange {
        self.run
            .policy
            .system
            .attrition
            .as_ref()
            .map_or(SELF_RESTART, |a| a.recovery)
    }

    /// Starts replica `r` (`what`: "start" or "restart"): Starting until its probe passes.
    pub(super) fn start(&mut self, r: usize, what: &str) -> Result<(), Failure> {
        let spec = self.spec(r).clone();
        let now = Instant::now();
        let pid = self.executor.spawn(&mut self.replicas[r], &spec)?;
        let rep = &mut self.replicas[r];
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

    pub(super) fn start_all(&mut self) -> Result<(), Failure> {
        for r in 0..self.replicas.len() {
            self.start(r, "start")?;
        }
        // Every process must be ready before the workload starts.
        loop {
            if let Some(sig) = executor::interrupted() {
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
    pub(super) fn probe(&mut self, r: usize, initial: bool) -> Result<(), Failure> {
        let State::Starting { deadline } = self.replicas[r].state else {
            return Ok(());
        };
        let mut env = self.executor.shared_env.clone();
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
    pub(super) fn reap_one(&mut self, r: usize) -> Option<ExitStatus> {
        match executor::observe(self.replicas[r].pid)? {
            Observed::Stopped => {
                self.on_stopped(r, Instant::now());
                None
            }
            Observed::Exited(status) => {
                self.on_death(r, status, Instant::now());
                Some(status)
            }
        }
    }

    /// Moves replica `r` on: SIGKILL after a grace period, SIGCONT after a pause, a restart after
    /// the recovery delay, its probe while it starts.
    /// `initial`: the processes are still starting (a ready timeout then fails the run).
    pub(super) fn advance(&mut self, r: usize, now: Instant, initial: bool) -> Result<(), Failure> {
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
    pub(super) fn duty_cycle(&mut self, now: Instant) {
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
    pub(super) fn shutdown(&mut self) {
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
