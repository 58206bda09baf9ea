//! A system run from start to end: plan the replicas, start them and wait until they are ready,
//! then tick (reap, probe, carry out the schedule) until the workload ends, and shut down.

use super::dispatch::{Dispatcher, TICK};
use super::executor::{self, Executor};
use super::journal::{Journal, journal_event, ns};
use super::options::{Ended, SystemRun};
use super::plan::{fresh_run_dir, plan_replicas, process_tables, share_with_users, shared_env};
use super::replica::State;
use super::schedule::Due;
use super::summary;
use crate::failure::Failure;
use std::process::{Child, ExitStatus};
use std::time::Instant;

/// How supervising ended: the workload's pid and status, or the signal that stopped a run
/// without a workload.
type Finish = (Option<(i32, ExitStatus)>, Option<i32>);

pub fn run(r: &SystemRun) -> Result<Ended, Failure> {
    let run_dir = fresh_run_dir(r.log_path)?;
    let t0 = Instant::now();
    let replicas = plan_replicas(&r.policy.system.processes, &run_dir)?;
    let mut shared_env = shared_env(&replicas, &r.policy.system.processes, &run_dir);
    shared_env.extend(r.census.map(crate::launch::census_env).unwrap_or_default());
    let mut d = Dispatcher {
        run: r,
        replicas,
        journal: Journal::open(r.log_path, t0, r.progress),
        executor: Executor::new(&r.launch, shared_env),
        t0,
        control: None,
    };
    let mut names: Vec<&str> = d.replicas.iter().map(|x| x.name.as_str()).collect();
    names.push("workload");
    let control = crate::control::start(
        &run_dir,
        &names,
        r.policy,
        r.log_path,
        r.control_addr,
        r.quiet,
    )?;
    d.executor.shared_env.extend(control.env.iter().cloned());
    d.control = Some(control);
    // Crashes of the processes the replicas and the workload reap themselves.
    let _watch = crate::durability_watch::start(r.policy, r.seed, &run_dir, r.log_path);
    share_with_users(&d.replicas, r.log_path, &run_dir)?;
    if let Some(t) = r.policy_text.as_deref().and_then(process_tables) {
        d.journal.write_system(t);
    }
    crate::storage_line::write(r.policy, r.log_path);
    // Signals are recorded (and forwarded to the workload once there is one) from here on.
    crate::signals::forward_signals_to(0);
    let outcome = d.start_all().and_then(|()| d.supervise());
    d.shutdown();
    if let Some(c) = &d.control {
        crate::unlogged::append(&c.page.page(), r.log_path);
        crate::refusals::append_rule_lines(&c.page.page(), r.policy, r.log_path);
    }
    let summary = summary::table(&d.replicas, &d.journal.written);
    outcome.map(|(workload, interrupted)| Ended {
        workload,
        summary,
        interrupted,
    })
}

impl Dispatcher<'_> {
    /// Runs the workload and the schedule until the workload ends (or the duration is up, or
    /// every process has ended, without a workload).
    pub(super) fn supervise(&mut self) -> Result<Finish, Failure> {
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
                && let Some(status) = executor::workload_ended(*pid, self.run.log_path)
            {
                return Ok((Some((*pid, status)), None));
            }
            if workload.is_none() {
                if let Some(sig) = executor::interrupted() {
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
        let (child, pid) = self.executor.spawn_workload(self.run.cmd)?;
        let e = self.journal.event("workload", "start");
        self.journal.write(journal_event(e, pid, 0, None));
        Ok(Some((child, pid)))
    }
}
