//! What the supervisor knows of one launched program: the run's settings, read from the same
//! CHAOS_* variables the shim reads (so both backends take the same policy, seed, process name
//! and quirks the same way), and, per process under the filter, its key and its fds.

use chaos_engine::policy::Policy;
use chaos_engine::process_key;
use chaos_engine::quirk::QuirkSet;
use chaos_engine::settings::Settings;
use std::collections::HashMap;

/// The run's settings, shared by every process of the target.
pub struct Target {
    pub policy: Policy,
    pub seed: u64,
    pub log: Option<std::path::PathBuf>,
    pub quirks: QuirkSet,
    /// In a system: the process's name (`kv#1`) and life.
    pub process: Option<String>,
    pub life: u32,
    /// Per rule, the engine's precomputed draw gates.
    pub gates: Vec<chaos_engine::select::Gate>,
    /// What `terminate` sends (CHAOS_STOP_SIGNAL, else SIGTERM).
    pub stop_signal: i32,
    /// Per op, the rules that act on it, enabled or not (`Policy::mask_for_op`, computed once).
    rule_masks: [u32; chaos_engine::op::OP_COUNT],
    /// The run's control page (`CHAOS_CONTROL`), where rules are switched while the run lives.
    control: Option<std::sync::Arc<crate::control::page::Mapped>>,
    /// This process's index in the page's directory (partitions cut between named processes).
    me: Option<usize>,
    /// The rules enabled where there is no page: the policy's initial ones.
    initially: u32,
    /// The place of the last call a rule was decided on (where a change of the page first
    /// took effect, for the `seen` line).
    pub last_place: Option<chaos_engine::key::Place>,
    /// `chaos-ctl explore`'s census is on (CHAOS_CENSUS=1): every call is keyed, as under a
    /// frozen policy, and each new fault point logged.
    pub census: bool,
    /// Which reach of a point the census logs (CHAOS_CENSUS_NTH, 1: the first).
    pub census_nth: u32,
    /// The policy's `[[disk]]`s and what is in use on each.
    pub disks: super::disk::Disks,
    /// `[durability]`'s journal, as the shim writes it (`journal`).
    pub journal: Option<super::journal::Journal>,
    /// A Toxiproxy API writes proxies into the run's control page (`proxied`).
    pub toxiproxy: bool,
}

impl Target {
    pub fn from_settings(settings: &[(String, String)]) -> Result<Target, String> {
        let get = |name: &str| {
            settings
                .iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.clone())
        };
        let Settings {
            policy,
            seed,
            process,
            life,
            quirks,
            stop_signal,
            log,
            control,
        } = Settings::load(get, |path| std::fs::read_to_string(path)).map_err(|e| e.to_string())?;
        let gates = chaos_engine::select::Gate::all(&policy.rules);
        let initially = policy.initially_enabled() as u32;
        let rule_masks = chaos_engine::op::ALL_OPS.map(|op| policy.mask_for_op(op));
        let control_path = control.clone().map(std::path::PathBuf::from);
        let control = match control {
            // As the shim: a page already gone means the run is over, and nothing steers this
            // process any more; any other failure is refused.
            Some(path) if !std::path::Path::new(&path).exists() => None,
            Some(path) => Some(std::sync::Arc::new(
                crate::control::page::Mapped::open(std::path::Path::new(&path))
                    .map_err(|e| format!("CHAOS_CONTROL: {}", e.message))?,
            )),
            None => None,
        };
        let me = control
            .as_ref()
            .zip(process.as_ref())
            .and_then(|(c, name)| c.page().index_of(name.as_bytes()));
        let census = get("CHAOS_CENSUS").is_some_and(|v| v == "1");
        let census_nth = get("CHAOS_CENSUS_NTH")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1u32)
            .max(1);
        let disks = super::disk::Disks::new(&policy, control.clone());
        let journal = super::journal::Journal::new(
            &policy,
            control_path.as_deref(),
            control.as_ref(),
            process.as_deref(),
        )?;
        let toxiproxy = control.is_some() && get(crate::toxiproxy::ENV).is_some();
        Ok(Target {
            toxiproxy,
            journal,
            census,
            census_nth,
            disks,
            rule_masks,
            control,
            me,
            initially,
            last_place: None,
            policy,
            seed,
            log: log.map(Into::into),
            quirks,
            process,
            life,
            gates,
            stop_signal,
        })
    }

    /// The rules acting on `op`, enabled or not, as a mask: a call they cover is counted even
    /// while they are off, as the shim counts it, so that switching one on shifts no key.
    pub fn rules_for(&self, op: chaos_engine::op::Op) -> u32 {
        self.rule_masks[op as usize]
    }

    /// Whether every call is keyed and decided whatever the rules: a frozen policy's
    /// injections count every class, and the census looks at every call.
    pub fn keys_every_call(&self) -> bool {
        self.census || !self.policy.injections.is_empty()
    }

    /// The rules enabled now: the control page's word (one load), else the policy's initial set.
    pub fn enabled(&self) -> u32 {
        match &self.control {
            Some(page) => page.page().enabled() as u32,
            None => self.initially,
        }
    }

    /// Whether rule `i` is on (switched on, and inside its `window` counted from `start`, its
    /// process's start), as a test a thread holding a call can make again and again.
    pub fn rule_on(&self, i: usize, start: std::time::Instant) -> impl Fn() -> bool + Send + use<> {
        let control = self.control.clone();
        let initially = self.initially;
        let window = self.policy.rules.get(i).and_then(|r| r.window);
        move || {
            let enabled = match &control {
                Some(page) => page.page().enabled() as u32,
                None => initially,
            };
            let since = start.elapsed().as_nanos() as u64;
            enabled & (1 << i) != 0 && window.is_none_or(|(from, to)| (from..to).contains(&since))
        }
    }

    /// Adds a drawn rule's outcome to the run's counts, where the shims add theirs.
    pub fn tally(&self, rule: usize, outcome: Result<(), chaos_engine::refusal::Reason>) {
        if let Some(page) = &self.control {
            page.page().tally(rule, outcome);
        }
    }

    /// The control page's generation now (0 without a page: it never changes).
    pub fn generation(&self) -> u64 {
        self.control.as_ref().map_or(0, |p| p.page().generation())
    }

    /// The control page's generation and the rules it enabled, read as one pair.
    pub fn control_snapshot(&self) -> (u64, u32) {
        match &self.control {
            Some(page) => {
                let (generation, enabled) = page.page().snapshot();
                (generation, enabled as u32)
            }
            None => (0, self.initially),
        }
    }

    /// The run's control page, where a Toxiproxy API writes its proxies, when one is on.
    pub fn proxies(&self) -> Option<&std::sync::Arc<crate::control::page::Mapped>> {
        self.control.as_ref().filter(|_| self.toxiproxy)
    }

    /// The run's page and this process's place in its directory, when partitions can cut it.
    pub fn cuts(&self) -> Option<Cuts> {
        let me = self.me?;
        Some(Cuts {
            page: self.control.clone()?,
            me,
        })
    }

    /// Whether any cut is in force (one load; false outside a system).
    pub fn any_cut(&self) -> bool {
        self.me.is_some() && self.control.as_ref().is_some_and(|c| c.page().any_cut())
    }

    /// The process key of a process running `exe` with `cmdline` (NUL-separated), as the shim's
    /// constructor computes it: the same program gets the same keys under either backend.
    ///
    /// A forked child that has not exec'd gets `of_fork` instead (`Supervisor::adopt`). Where the
    /// backends still differ: in a system, a program a descendant execs gets the system
    /// process's formula here (the shim gives it `of_exec(lineage, exe)`).
    pub fn process_key(&self, exe: &str, cmdline: &[u8]) -> u64 {
        let system = self.process.as_deref().map(|name| (name, self.life));
        process_key::at_start(system, exe, cmdline, None)
    }
}

/// One process under the filter (a thread group: its threads share its fds and counters).
pub struct Proc {
    pub pid: i32,
    pub key: u64,
    /// `chance::key_base(seed, key)`.
    pub base: u64,
    pub pidfd: std::os::fd::OwnedFd,
    pub fds: HashMap<i32, super::fdview::FdView>,
    /// Connections numbered per kind and role, as the shim's `ORDINALS`.
    pub ordinals: [[u32; 4]; 7],
    /// connect() attempts per kind.
    pub connects: [u64; 7],
    /// Calls per class that have no fd or connection of their own (epoll waits).
    pub waits: u64,
    /// Calls that name a path, per name and class (`inject::named_key`), as the shim's
    /// `named_counts`.
    pub named: HashMap<u64, u64>,
    /// Per fd, a writeback error its description has still to report (`writeback`).
    pub owed: HashMap<i32, i32>,
    /// The control page's generation this process last logged having seen.
    pub seen: u64,
    /// Its own `times` budget and `window` clock.
    pub budget: super::budget::Budget,
    /// Its forks so far, for its children's keys.
    pub forks: super::forks::Forks,
    /// Its first O_DIRECT write to a file `[durability]` covers was logged as `unseen`.
    pub direct_said: bool,
}

/// Partitions as this process sees them: the shim's `control::cut_towards`/`cut_from` over
/// the same page. Cheap to clone into a thread that waits for a heal.
#[derive(Clone)]
pub struct Cuts {
    page: std::sync::Arc<crate::control::page::Mapped>,
    me: usize,
}

impl Cuts {
    /// Records `port` as this process's (it listens there, or connected from it).
    pub fn register_port(&self, port: u16) {
        self.page.page().set_port_owner(port, self.me);
    }

    /// Whether traffic in `dir` with the owner of `peer_port` is lost now.
    pub fn cut(&self, dir: chaos_engine::key::Dir, peer_port: u16) -> bool {
        self.page.page().cut_with_owner(self.me, peer_port, dir)
    }

    /// Whether a connect to `port` crosses a cut (a SYN or its SYN-ACK would be lost).
    pub fn connect_cut(&self, port: u16) -> bool {
        self.page.page().any_cut()
            && (self.cut(chaos_engine::key::Dir::Tx, port)
                || self.cut(chaos_engine::key::Dir::Rx, port))
    }
}
