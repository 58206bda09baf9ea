//! The schedule, carried out: the attrition draw or a frozen run's `[[nemesis]]` events, each when
//! its state is there (`due`), and the partition layers written into the control page.

use super::dispatch::Dispatcher;
use super::journal::journal_event;
use super::replica::{Replica, State};
use chaos_engine::system::partition::{self, PartitionEvent};
use chaos_engine::system::{self as sys, Kind, NemesisEvent};
use std::time::{Duration, Instant};

/// Whether a scheduled event can be carried out yet.
pub(super) enum Due {
    Now,
    /// Its replica is not up yet, or too many are down: hold the schedule.
    Wait,
    /// It never can be, for this reason.
    Skip(String),
}

impl Dispatcher<'_> {
    /// The frozen events if the policy has them, else the attrition schedule's (drawn up to a
    /// day ahead: the window may be unbounded).
    pub(super) fn schedule(&self) -> Vec<NemesisEvent> {
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
    pub(super) fn partition_schedule(&self) -> Vec<PartitionEvent> {
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
    pub(super) fn cut(&mut self, e: &PartitionEvent) {
        let Some(control) = &self.control else { return };
        let page = control.page.page();
        let index = |n: &str| page.index_of(n.as_bytes());
        let mut rows = [0u64; chaos_engine::page::MAX_PROCESSES];
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

    pub(super) fn max_dead(&self) -> u32 {
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
    pub(super) fn due(&self, e: &NemesisEvent, waited: Duration) -> Due {
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
    pub(super) fn execute(
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
