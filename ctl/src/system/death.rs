//! What a process's end means: a scheduled kill, a process fault fired inside it (crash,
//! terminate, power loss, pause) or an exit of its own; whether and when it restarts.

use super::dispatch::Dispatcher;
use super::journal::{journal_event, ns};
use super::limits;
use super::replica::State;
use chaos_engine::system::{self as sys, Kind, NemesisEvent, Restart};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

impl Dispatcher<'_> {
    /// Replica `r` stopped: by us (a pause, the CPU duty cycle), or by a `pause` process fault,
    /// which is logged and counted as a pause.
    pub(super) fn on_stopped(&mut self, r: usize, now: Instant) {
        let pid = self.replicas[r].pid;
        let rep = &self.replicas[r];
        if matches!(rep.state, State::Paused { .. }) || rep.duty_stopped {
            return; // our own SIGSTOP
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
    }

    pub(super) fn on_death(&mut self, r: usize, status: ExitStatus, now: Instant) {
        crate::log::append_exit(self.run.log_path, self.replicas[r].pid, status);
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
}

/// The last process fault of one of `kinds` (`crash`, `terminate`, `pause`) that `pid` logged.
fn last_process_fault(
    log: &Path,
    pid: i32,
    kinds: &[&str],
) -> Option<chaos_engine::event::schema::Fault> {
    let log = crate::log::Log::read(log).ok()?;
    log.faults()
        .filter(|f| f.header.pid == pid && kinds.contains(&f.fault.as_str()))
        .last()
        .cloned()
}
