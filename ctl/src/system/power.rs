//! Power losses asked for while the run lives (`chaos-ctl control power-loss`, the HTTP
//! endpoint): the control page holds the request, the supervisor carries it out like a
//! scheduled `power-loss` event, so it is logged, counted, undone and frozen the same way.

use super::dispatch::Dispatcher;
use super::journal::{journal_event, ns};
use super::replica::State;
use chaos_engine::system::{self as sys, Kind, NemesisEvent};
use std::time::{Duration, Instant};

impl Dispatcher<'_> {
    /// The other replicas on replica `r`'s machine (`[[process]] machine`): none without one.
    pub(super) fn machine_peers(&self, r: usize) -> Vec<usize> {
        let Some(machine) = self.spec(r).machine.as_deref() else {
            return Vec::new();
        };
        (0..self.replicas.len())
            .filter(|&p| p != r && self.spec(p).machine.as_deref() == Some(machine))
            .collect()
    }

    /// A power loss of replica `r` (event `e`, already carried out on it) takes down every
    /// running replica of its machine at once: each is killed the same way and logged as a
    /// `kill` of the same key without `at_ns` (so `freeze` repeats only the one event, which
    /// brings them down again).
    pub(super) fn power_loss_of_machine(&mut self, r: usize, e: &NemesisEvent, now: Instant) {
        let machine = self.spec(r).machine.clone().unwrap_or_default();
        for p in self.machine_peers(r) {
            let rep = &self.replicas[p];
            if !rep.is_running() || matches!(rep.state, State::Stopping { .. } | State::Dead { .. })
            {
                continue;
            }
            let mut ev = self.journal.event(&rep.name, "kill");
            ev.kind = Some(Kind::PowerLoss.name().into());
            ev.key = Some(e.key.clone());
            ev.recovery_ns = Some(e.recovery_ns);
            let (pid, life) = (rep.pid, rep.life.saturating_sub(1));
            let detail = format!("machine `{machine}` lost power with {}", e.target);
            self.journal
                .write(journal_event(ev, pid, life, Some(detail)));
            let rep = &mut self.replicas[p];
            rep.mark_down(now);
            rep.stats.power_loss += 1;
            rep.signal(libc::SIGKILL);
            rep.state = State::Stopping {
                kind: Kind::PowerLoss,
                key: e.key.clone(),
                recovery: Duration::from_nanos(e.recovery_ns),
                sigkill_at: None,
            };
        }
    }

    /// Whether replica `r` must wait to restart: a machine peer that lost power with it has not
    /// been reaped (and undone) yet, and it could read what that peer left unsynced.
    pub(super) fn machine_still_going_down(&self, r: usize) -> bool {
        self.machine_peers(r).into_iter().any(|p| {
            matches!(
                self.replicas[p].state,
                State::Stopping {
                    kind: Kind::PowerLoss,
                    ..
                }
            )
        })
    }

    /// Carries out the power losses asked for since the last tick. `since_start`: the run's
    /// time, which the event's `at_ns` holds so that `freeze` repeats it as a `[[nemesis]]`
    /// entry; `asked`: how many came before, numbering their keys (`control#0`…).
    pub(super) fn requested_power_losses(
        &mut self,
        now: Instant,
        since_start: Duration,
        asked: &mut u64,
    ) {
        let Some(control) = &self.control else { return };
        let bits = control.page.page().take_power_losses();
        if bits == 0 {
            return;
        }
        let range = self.restart_range();
        // The page's process order is the replicas' (the workload comes last).
        for r in (0..self.replicas.len()).filter(|&r| r < 64 && bits & (1 << r) != 0) {
            let name = self.replicas[r].name.clone();
            let e = NemesisEvent {
                at_ns: ns(since_start),
                target: name.clone(),
                kind: Kind::PowerLoss,
                grace_ns: 0,
                recovery_ns: sys::restart_delay(
                    self.run.seed,
                    &format!("{name}/control"),
                    *asked,
                    range,
                ),
                paused_ns: 0,
                key: format!("control#{asked}"),
            };
            *asked += 1;
            let rep = &self.replicas[r];
            let down = !rep.is_running()
                || matches!(rep.state, State::Stopping { .. } | State::Dead { .. });
            let skip = down.then(|| format!("{name} is down: no power to lose"));
            self.execute(&e, now, skip, None);
        }
    }
}
