//! The attrition schedule (moonpool's `Attrition`, Jepsen's kill/pause nemeses): a pure function of
//! the seed and the config, so the same seed gives the same (time, replica, kind, grace, recovery)
//! sequence in every run. chaos-ctl executes it; it checks `max_dead` against the live state too,
//! because how long a restarted process takes to become ready is not the schedule's to know.

use crate::fault::NsRange;
use rand_pcg::Pcg64;
use rand_pcg::rand_core::Rng;

/// What an attrition event does to a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The stop signal, SIGKILL after the grace period if still alive; restart after recovery.
    Graceful,
    /// SIGKILL to the process group; restart after recovery.
    Crash,
    /// As crash, and the replica's data directory is emptied before the restart.
    Wipe,
    /// SIGSTOP for the paused time, then SIGCONT.
    Pause,
    /// As crash, and under `[durability]` its unsynced changes are undone before the restart,
    /// whatever `crash` says: the machine lost power, not just the process.
    PowerLoss,
}

impl Kind {
    // Power loss last: a schedule drawn without it does not move when its weight is 0.
    pub const ALL: [Kind; 5] = [
        Kind::Graceful,
        Kind::Crash,
        Kind::Wipe,
        Kind::Pause,
        Kind::PowerLoss,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Graceful => "graceful",
            Kind::Crash => "crash",
            Kind::Wipe => "wipe",
            Kind::Pause => "pause",
            Kind::PowerLoss => "power-loss",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// `[attrition]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Attrition {
    /// Process names (every replica) or replica names (`kv#1`) that may be hit.
    pub processes: Vec<String>,
    /// Never more than this many dead or paused at once.
    pub max_dead: u32,
    /// Graceful, crash, wipe, pause, power-loss; not all zero.
    pub weights: [f64; 5],
    pub interval: NsRange,
    pub recovery: NsRange,
    pub grace: NsRange,
    pub paused: NsRange,
    /// Since the workload started: `[start, end)`.
    pub window: (u64, u64),
}

/// One process event: what `[attrition]` draws, and what a frozen policy's `[[nemesis]]` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NemesisEvent {
    /// Since the workload started.
    pub at_ns: u64,
    /// The replica (`kv#1`).
    pub target: String,
    pub kind: Kind,
    /// Graceful: how long after the stop signal SIGKILL follows.
    pub grace_ns: u64,
    /// Dead to restarted (not for pause).
    pub recovery_ns: u64,
    /// Pause: how long it stays stopped.
    pub paused_ns: u64,
    /// Its place in the schedule, logged with every process event it causes: `attrition#3`
    /// (the fourth drawn event) or `nemesis#3` (a frozen policy's fourth).
    pub key: String,
}

impl NemesisEvent {
    /// How long the schedule counts the replica as down: until it has been restarted (or
    /// continued). Its start-up time comes on top, which chaos-ctl checks live.
    pub fn down_ns(&self) -> u64 {
        match self.kind {
            Kind::Pause => self.paused_ns,
            Kind::Graceful => self.grace_ns.saturating_add(self.recovery_ns),
            Kind::Crash | Kind::Wipe | Kind::PowerLoss => self.recovery_ns,
        }
    }
}

/// The events of `[attrition]` in time order, drawn lazily (the window may be unbounded).
pub struct Schedule<'a> {
    cfg: &'a Attrition,
    targets: Vec<String>,
    rng: Pcg64,
    t: u64,
    drawn: u64,
    /// Per target: when the schedule counts it up again.
    down_until: Vec<u64>,
}

/// The schedule for `targets` (replica names, already narrowed to `cfg.processes`).
pub fn schedule<'a>(seed: u64, cfg: &'a Attrition, targets: &[String]) -> Schedule<'a> {
    // Its own stream: the attrition schedule does not move when rules are added.
    let state = (u128::from(seed) << 64) | u128::from(crate::hash::fnv1a(b"attrition"));
    Schedule {
        cfg,
        targets: targets.to_vec(),
        rng: Pcg64::new(state, 0x5851_f42d_4c95_7f2d),
        t: cfg.window.0,
        drawn: 0,
        down_until: vec![0; targets.len()],
    }
}

impl Schedule<'_> {
    fn pick(&mut self, r: NsRange) -> u64 {
        r.pick(self.rng.next_u64())
    }

    /// A uniform number in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Iterator for Schedule<'_> {
    type Item = NemesisEvent;

    fn next(&mut self) -> Option<NemesisEvent> {
        let total: f64 = self.cfg.weights.iter().sum();
        if self.targets.is_empty() || total <= 0.0 || self.cfg.max_dead == 0 {
            return None;
        }
        loop {
            // An interval of 0 would never advance time.
            self.t = self
                .t
                .saturating_add(self.pick(self.cfg.interval).max(1_000_000));
            if self.t >= self.cfg.window.1 {
                return None;
            }
            let t = self.t;
            let up: Vec<usize> = (0..self.targets.len())
                .filter(|&i| self.down_until[i] <= t)
                .collect();
            let dead = self.targets.len() - up.len();
            // The draws are made either way, so a skipped slot does not shift later ones.
            let u_kind = self.unit();
            let u_target = self.rng.next_u64();
            let grace = self.pick(self.cfg.grace);
            let recovery = self.pick(self.cfg.recovery);
            let paused = self.pick(self.cfg.paused);
            if dead as u32 >= self.cfg.max_dead || up.is_empty() {
                continue;
            }
            let mut acc = 0.0;
            let mut kind = Kind::Crash;
            for (k, w) in Kind::ALL.into_iter().zip(self.cfg.weights) {
                acc += w / total;
                if w > 0.0 {
                    kind = k;
                }
                if w > 0.0 && u_kind < acc {
                    break;
                }
            }
            let target = up[(u_target % up.len() as u64) as usize];
            let event = NemesisEvent {
                at_ns: t,
                target: self.targets[target].clone(),
                kind,
                grace_ns: if kind == Kind::Graceful { grace } else { 0 },
                recovery_ns: if kind == Kind::Pause { 0 } else { recovery },
                paused_ns: if kind == Kind::Pause { paused } else { 0 },
                key: format!("attrition#{}", self.drawn),
            };
            self.drawn += 1;
            self.down_until[target] = t.saturating_add(event.down_ns());
            return Some(event);
        }
    }
}

/// How long after its `n`-th death by itself (an exit, a crash from a process fault) `replica` is
/// restarted: drawn from `range`, the same for the same seed, replica and n.
pub fn restart_delay(seed: u64, replica: &str, n: u64, range: NsRange) -> u64 {
    let state = (u128::from(seed) << 64) | u128::from(crate::hash::fnv1a(replica.as_bytes()) ^ n);
    range.pick(Pcg64::new(state, 0x2545_f491_4f6c_dd1d).next_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_dead: u32) -> Attrition {
        let r = |lo: u64, hi: u64| NsRange {
            lo: lo * 1_000_000,
            hi: hi * 1_000_000,
        };
        Attrition {
            processes: vec!["kv".into()],
            max_dead,
            weights: [0.3, 0.5, 0.2, 0.1, 0.0],
            interval: r(1000, 5000),
            recovery: r(1000, 10_000),
            grace: r(2000, 5000),
            paused: r(500, 3000),
            window: (2_000_000_000, 600_000_000_000),
        }
    }

    fn targets() -> Vec<String> {
        (0..3).map(|i| format!("kv#{i}")).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let c = cfg(1);
        let a: Vec<_> = schedule(3, &c, &targets()).collect();
        let b: Vec<_> = schedule(3, &c, &targets()).collect();
        let other: Vec<_> = schedule(4, &c, &targets()).collect();
        assert!(a.len() > 20, "{}", a.len());
        assert_eq!(a, b);
        assert_ne!(a, other);
    }

    /// Replaying the schedule's own down times, never more than `max_dead` are down at once.
    #[test]
    fn max_dead_holds_at_every_instant() {
        for max_dead in 1..=3 {
            let c = cfg(max_dead);
            for seed in 0..50 {
                let events: Vec<_> = schedule(seed, &c, &targets()).collect();
                for e in &events {
                    let down = events
                        .iter()
                        .filter(|o| o.at_ns <= e.at_ns && e.at_ns < o.at_ns + o.down_ns())
                        .count();
                    assert!(
                        down as u32 <= max_dead,
                        "seed {seed}: {down} down at {}",
                        e.at_ns
                    );
                    assert!(e.at_ns >= c.window.0 && e.at_ns < c.window.1);
                }
                if max_dead == 1 {
                    // A replica is never hit while it is still down.
                    for (i, e) in events.iter().enumerate() {
                        for o in &events[..i] {
                            assert!(
                                o.target != e.target || o.at_ns + o.down_ns() <= e.at_ns,
                                "seed {seed}: {o:?} then {e:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn weights_decide_the_kinds() {
        let mut c = cfg(3);
        c.weights = [0.0, 1.0, 0.0, 0.0, 0.0];
        assert!(schedule(1, &c, &targets()).all(|e| e.kind == Kind::Crash && e.grace_ns == 0));
        c.weights = [0.0, 0.0, 0.0, 1.0, 0.0];
        assert!(schedule(1, &c, &targets()).all(|e| e.kind == Kind::Pause && e.recovery_ns == 0));
        c.weights = [0.0, 0.0, 0.0, 0.0, 1.0];
        assert!(
            schedule(1, &c, &targets())
                .all(|e| e.kind == Kind::PowerLoss && e.recovery_ns > 0 && e.grace_ns == 0)
        );
        c.weights = [1.0; 5];
        let kinds: std::collections::HashSet<Kind> =
            schedule(1, &c, &targets()).map(|e| e.kind).collect();
        assert_eq!(kinds.len(), 5);
        c.weights = [0.0; 5];
        assert_eq!(schedule(1, &c, &targets()).count(), 0);
    }

    #[test]
    fn restart_delays_are_drawn_per_replica_and_death() {
        let r = NsRange {
            lo: 1,
            hi: 1_000_000_000,
        };
        assert_eq!(
            restart_delay(1, "kv#0", 0, r),
            restart_delay(1, "kv#0", 0, r)
        );
        assert_ne!(
            restart_delay(1, "kv#0", 0, r),
            restart_delay(1, "kv#0", 1, r)
        );
        assert_ne!(
            restart_delay(1, "kv#0", 0, r),
            restart_delay(1, "kv#1", 0, r)
        );
        assert!((1..=1_000_000_000).contains(&restart_delay(7, "x", 3, r)));
    }

    #[test]
    fn keys_number_the_events() {
        let c = cfg(1);
        let keys: Vec<String> = schedule(9, &c, &targets()).take(3).map(|e| e.key).collect();
        assert_eq!(keys, ["attrition#0", "attrition#1", "attrition#2"]);
    }
}
