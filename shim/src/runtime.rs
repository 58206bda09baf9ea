//! Process-wide state, built once by the constructor and read-only afterwards (apart from atomics).

use chaos_engine::op::{ALL_OPS, OP_COUNT};
use chaos_engine::policy::Policy;
use core::ptr;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, Ordering::Acquire, Ordering::Relaxed};

pub struct Runtime {
    pub policy: Policy,
    pub seed: u64,
    /// Per op, the rules that act on it (low 32 bits) plus FORCE_SLOW: a hook whose fd's meta word
    /// shares no bit with this is passed straight through.
    pub op_masks: [u64; OP_COUNT],
    pub thresholds: Vec<u64>,
    /// Injections so far per rule, for `times`.
    pub injected: Vec<AtomicU64>,
    /// CLOCK_MONOTONIC at process start, for `window`.
    pub start_ns: u64,
    pub exe: String,
    pub argv: Vec<String>,
    /// Platform quirks in effect (the policy's, plus CHAOS_PLATFORM/CHAOS_QUIRKS).
    pub quirks: chaos_engine::quirk::QuirkSet,
}

/// Null until the constructor has finished: hooks then pass everything through.
static RUNTIME: AtomicPtr<Runtime> = AtomicPtr::new(ptr::null_mut());

/// Deterministic identity of this process: from exe and argv, or from the parent's key and the fork
/// ordinal. Never the pid, so it is the same in every run.
pub static PROCESS_KEY: AtomicU64 = AtomicU64::new(0);
/// Our pid as last recorded (constructor, fork child handler). A hook running where getpid() differs
/// is in a vfork child or a raw clone sharing our memory and must not touch shared state.
pub static PID: AtomicI32 = AtomicI32::new(0);
/// Forks made by this process so far; the child's key mixes it in.
pub static FORKS: AtomicU64 = AtomicU64::new(0);

#[inline(always)]
pub fn get() -> Option<&'static Runtime> {
    let p = RUNTIME.load(Acquire);
    if p.is_null() {
        None
    } else {
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
    /// The rules that act on `op`, as a rule mask.
    #[inline(always)]
    pub fn rules_for(&self, op: chaos_engine::op::Op) -> u32 {
        self.op_masks[op as usize] as u32
    }

    pub fn new(
        policy: Policy,
        seed: u64,
        exe: String,
        argv: Vec<String>,
        quirks: chaos_engine::quirk::QuirkSet,
    ) -> Runtime {
        let mut op_masks = [0u64; OP_COUNT];
        let forced = crate::quirks::forced_ops(quirks);
        for op in ALL_OPS {
            op_masks[op as usize] = if forced[op as usize] {
                u64::MAX // every call of this op is checked for quirks
            } else {
                policy.mask_for_op(op) as u64 | crate::fdtable::FORCE_SLOW
            };
        }
        let thresholds = policy.rules.iter().map(|r| r.threshold()).collect();
        let injected = policy.rules.iter().map(|_| AtomicU64::new(0)).collect();
        Runtime {
            policy,
            seed,
            op_masks,
            thresholds,
            injected,
            start_ns: crate::sys::now_ns(libc::CLOCK_MONOTONIC),
            exe,
            argv,
            quirks,
        }
    }
}

/// True when this code runs in the process the runtime was built for (not a vfork child).
pub fn in_own_process() -> bool {
    crate::sys::getpid() == PID.load(Relaxed)
}
