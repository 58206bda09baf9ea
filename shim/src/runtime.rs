//! Process-wide state, built once by the constructor and read-only afterwards (apart from atomics).

use chaos_engine::op::{ALL_OPS, CLASS_COUNT, OP_COUNT, OpClass};
use chaos_engine::policy::Policy;
use core::ptr;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, Ordering::Acquire, Ordering::Relaxed};

pub struct Runtime {
    pub policy: Policy,
    pub seed: u64,
    /// Per op, the fast-path gate: every rule's bit plus FORCE_SLOW (u64::MAX where quirks or
    /// injections need every call). A hook whose fd's meta word shares no bit with this is passed
    /// straight through. A call on an fd that some rule acting on an op *of the same class* targets
    /// takes the slow path, whichever op of the class it is (a rule on `recv` counts the fd's `read`s
    /// too), so the per-connection counters in decision keys count every call of that class; a
    /// frozen policy (which checks every call) then finds the same keys. Counters are per class
    /// (the call count per class, the stream position per direction), and a class no rule acts on
    /// has no key in any log, so its calls need no counting.
    pub op_masks: [u64; OP_COUNT],
    /// Per op, the rules that act on it.
    pub rule_masks: [u32; OP_COUNT],
    /// Per op class, the rules that act on some op of it, enabled or not: calls with no fd are
    /// counted whenever this is non-zero, so switching a rule never shifts a key.
    pub class_rules: [u32; CLASS_COUNT],
    /// The policy has exact injections (`[[inject]]`): every call is looked up.
    pub injecting: bool,
    /// Quirks or injections: no data call takes the counted-only path (one load for both).
    pub always_slow: bool,
    /// Per rule, what the hot path checks before it draws (copied out of `policy.rules`, so the
    /// checks touch one small array).
    pub gates: Vec<chaos_engine::select::Gate>,
    /// The rules whose draw can ever fire (all but those at probability 0): the hot path draws
    /// for no other (`chaos_engine::select::drawable`).
    pub drawable: u32,
    /// Some rule has `after` or `every`: byte streams' data calls are counted too (their keys use
    /// offsets, not counts).
    pub counts_calls: bool,
    /// The rules whose faults lie on the grid of stream offsets when they act on a stream's reads
    /// (`chaos_engine::grid`): all but toxics.
    pub grid_rules: u32,
    /// Injections so far per rule in this process, for `times` (zeroed in a forked child).
    pub injected: Vec<AtomicU64>,
    pub exe: String,
    pub argv: Vec<String>,
    /// Platform quirks in effect (the policy's, plus CHAOS_PLATFORM/CHAOS_QUIRKS).
    pub quirks: chaos_engine::quirk::QuirkSet,
    /// In a system: this process's name (`kv#1`, CHAOS_PROCESS) and start count (CHAOS_LIFE).
    pub process: Option<String>,
    pub life: u32,
    /// What `terminate` sends (CHAOS_STOP_SIGNAL, else SIGTERM).
    pub stop_signal: i32,
    /// The chaos-ctl that supervises this process (CHAOS_SUPERVISOR): only when it is our parent
    /// can a `pause` stop the whole process, since it is what sends the SIGCONT.
    pub supervisor: i32,
}

/// Null until the constructor has finished: hooks then pass everything through.
static RUNTIME: AtomicPtr<Runtime> = AtomicPtr::new(ptr::null_mut());

/// Deterministic identity of this process: from exe and argv, or from the parent's key and the fork
/// ordinal. Never the pid, so it is the same in every run.
pub static PROCESS_KEY: AtomicU64 = AtomicU64::new(0);
/// `chance::key_base(seed, PROCESS_KEY)`: what every decision key of this process shares, mixed
/// once (set with PROCESS_KEY).
pub static KEY_BASE: AtomicU64 = AtomicU64::new(0);
/// Our pid as last recorded (constructor, fork child handler). A hook running where getpid() differs
/// is in a vfork child or a raw clone sharing our memory and must not touch shared state.
pub static PID: AtomicI32 = AtomicI32::new(0);
/// CLOCK_MONOTONIC when this process started (its exec, or its fork), for `window`.
pub static START_NS: AtomicU64 = AtomicU64::new(0);
/// Forks made by this process so far; the child's key mixes it in.
pub static FORKS: AtomicU64 = AtomicU64::new(0);

#[inline(always)]
pub fn get() -> Option<&'static Runtime> {
    let p = RUNTIME.load(Acquire);
    if p.is_null() {
        None
    } else {
        // SAFETY: a non-null pointer here comes from `publish`: a leaked Box, never freed or
        // written again, and the Acquire load sees the Runtime the Release store published.
        Some(unsafe { &*p })
    }
}

pub fn publish(rt: Runtime) {
    RUNTIME.store(
        Box::into_raw(Box::new(rt)),
        core::sync::atomic::Ordering::Release,
    );
}

impl Runtime {
    /// The rules that act on `op` and are enabled now (the control page can switch them while
    /// the run lives), as a rule mask. Which calls are counted does not depend on this, so
    /// switching a rule never shifts a key.
    #[inline(always)]
    pub fn rules_for(&self, op: chaos_engine::op::Op) -> u32 {
        self.rule_masks[op as usize] & crate::page::enabled()
    }

    pub fn new(
        policy: Policy,
        seed: u64,
        exe: String,
        argv: Vec<String>,
        quirks: chaos_engine::quirk::QuirkSet,
    ) -> Runtime {
        let mut op_masks = [0u64; OP_COUNT];
        let mut rule_masks = [0u32; OP_COUNT];
        let forced = chaos_engine::quirk::forced_ops(quirks);
        // The census looks at every call, as injections do (keys are the same either way).
        let injecting = !policy.injections.is_empty() || crate::census::on();
        let class_rules = |class| {
            ALL_OPS
                .iter()
                .filter(|op| op.class() == class)
                .fold(0u32, |m, op| m | policy.mask_for_op(*op))
        };
        for op in ALL_OPS {
            rule_masks[op as usize] = policy.mask_for_op(op);
            // A process partitions can cut looks at its TCP connections' data calls (only while
            // a cut is in force does that cost more than the targeted path's counting).
            let peered = if crate::page::partitionable() && op.dir().is_some() {
                crate::fdtable::PEERED
            } else {
                0
            };
            // Connections made through a Toxiproxy proxy carry out its toxics on their data calls
            // (only those fds have the bit, so no other fd's fast path changes).
            let proxied = if crate::page::mapped().is_some() && op.dir().is_some() {
                crate::fdtable::PROXIED
            } else {
                0
            };
            // Files under a `[[disk]]` are accounted as they grow and shrink, and those under
            // `[durability]` journaled.
            let storage = if matches!(op.class(), OpClass::Writes | OpClass::Space) {
                (if policy.disks.is_empty() {
                    0
                } else {
                    crate::fdtable::DISK
                }) | (if policy.durability.is_none() {
                    0
                } else {
                    crate::fdtable::DURABLE
                })
            } else {
                0
            };
            op_masks[op as usize] = if forced[op as usize] || injecting {
                u64::MAX // every call of this op is checked for quirks or injections
            } else {
                class_rules(op.class()) as u64
                    | crate::fdtable::FORCE_SLOW
                    | peered
                    | storage
                    | proxied
            };
        }
        let class_rules = OpClass::ALL.map(class_rules);
        let gates = chaos_engine::select::Gate::all(&policy.rules);
        let drawable = chaos_engine::select::drawable(&gates);
        let counts_calls = policy.rules.iter().any(|r| r.after > 0 || r.every > 1);
        let injected = policy.rules.iter().map(|_| AtomicU64::new(0)).collect();
        let grid_rules = policy
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| chaos_engine::grid::Placement::of(&r.fault).is_some())
            .fold(0u32, |m, (i, _)| {
                m | 1u32.checked_shl(i as u32).unwrap_or(0)
            });
        Runtime {
            policy,
            seed,
            op_masks,
            rule_masks,
            class_rules,
            injecting,
            always_slow: injecting || !quirks.is_empty(),
            gates,
            drawable,
            counts_calls,
            grid_rules,
            injected,
            exe,
            argv,
            quirks,
            process: None,
            life: 0,
            stop_signal: libc::SIGTERM,
            supervisor: 0,
        }
    }
}

/// Records this process's key (constructor, fork child) and what its decisions share.
pub fn set_process_key(key: u64, seed: u64) {
    PROCESS_KEY.store(key, Relaxed);
    KEY_BASE.store(chaos_engine::chance::key_base(seed, key), Relaxed);
}

/// Marks now as this process's start, for `window` (constructor, fork child).
pub fn set_started() {
    START_NS.store(crate::sys::now_ns(libc::CLOCK_MONOTONIC), Relaxed);
}

/// Nanoseconds since this process started: what a rule's `window` is measured in.
pub fn since_start_ns() -> u64 {
    crate::sys::now_ns(libc::CLOCK_MONOTONIC).saturating_sub(START_NS.load(Relaxed))
}

/// True when this code runs in the process the runtime was built for (not a vfork child).
pub fn in_own_process() -> bool {
    crate::sys::getpid() == PID.load(Relaxed)
}
