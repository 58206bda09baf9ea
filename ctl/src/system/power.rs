//! Power losses asked for while the run lives (`chaos-ctl control power-loss`, the HTTP
//! endpoint): the control page holds the request, the supervisor carries it out like a
//! scheduled `power-loss` event, so it is logged, counted, undone and frozen the same way.

use super::replica::State;
use super::{SELF_RESTART, Supervisor, ns};
use chaos_engine::system::{self as sys, Kind, NemesisEvent};
use std::time::{Duration, Instant};

impl Supervisor<'_> {
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
        let range = self
            .run
            .policy
            .system
            .attrition
            .as_ref()
            .map_or(SELF_RESTART, |a| a.recovery);
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
