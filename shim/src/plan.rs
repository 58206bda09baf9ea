//! What this process tells the engine about one intercepted call: where it sits (its key), and
//! what only the process can know (its clock, its `times` budget, whether it can log, the live
//! fd's facts). Which rule fires is the engine's `select`, the same loop the seccomp backend runs.

use crate::facts::LiveFacts;
use crate::fdtable::{Meta, Slot};
use crate::runtime::Runtime;
use chaos_engine::fault::Fault;
use chaos_engine::key::{Dir, Site};
use chaos_engine::kind::FdKind;
use chaos_engine::op::{Op, OpClass};
use chaos_engine::realise::{self, NotHere, RuleContext};
use chaos_engine::refusal::Reason;
use chaos_engine::select::{Backend, select};
use core::sync::atomic::Ordering::Relaxed;
use libc::c_int;

pub use chaos_engine::realise::{Action, Break, Mode};
pub use chaos_engine::select::{Choice, Position, Source};

/// The place of a call in this process, with its process key and key base loaded.
#[inline(always)]
pub fn position(conn: u64, site: Site, n: u64, requested: usize) -> Position {
    Position {
        process: crate::runtime::PROCESS_KEY.load(Relaxed),
        base: crate::runtime::KEY_BASE.load(Relaxed),
        conn,
        site,
        n,
        requested,
    }
}

/// Logs the first call that sees a new generation of the control page, with its place: where the
/// change first took effect in this process. One load when nothing changed.
#[inline(always)]
pub fn observe_control(rt: &Runtime, conn: u64, site: Site) {
    if let Some((generation, enabled)) = crate::page::new_generation() {
        control_seen(rt, (generation, enabled), conn, site);
    }
}

#[cold]
#[inline(never)]
fn control_seen(rt: &Runtime, (generation, enabled): (u64, u32), conn: u64, site: Site) {
    let place = chaos_engine::key::Place {
        process: crate::runtime::PROCESS_KEY.load(Relaxed),
        conn,
        site,
    };
    crate::log::write_control_seen(rt, generation, &place, enabled);
}

/// Logs a fault point of explore's census the first time this process reaches it. Every caller
/// checks `census::on()` first.
pub fn census_reached(op: Op, conn: u64, site: Site, target: crate::census::Target) {
    if let Some(point) = crate::census::reached(op, conn, site) {
        let key = chaos_engine::key::Key {
            process: crate::runtime::PROCESS_KEY.load(Relaxed),
            conn,
            rule: chaos_engine::key::INJECTED,
            site,
        };
        crate::log::write_point(op, &key, point.object(), point.offset, target);
    }
}

/// What only this process can tell the engine's selection: its clock and `times` budget (both
/// reset at fork), whether it can log, and the live fd's facts for the realism model.
struct Live<'a, F> {
    rt: &'a Runtime,
    realise: F,
    covers: &'a dyn Fn(&chaos_engine::policy::Rule) -> bool,
    /// Only faults that do not lie on the grid of stream offsets (`chaos_engine::grid`): a stream
    /// read's per-call faults, whose grid faults `grid_read` finds in the read's span.
    off_grid: bool,
}

impl<F: FnMut(&Fault, RuleContext, u64) -> Result<Action, NotHere>> Backend for Live<'_, F> {
    fn since_start_ns(&mut self) -> u64 {
        crate::runtime::since_start_ns()
    }
    fn take_one_of_times(&mut self, rule: usize, times: u64) -> bool {
        self.rt.injected[rule].fetch_add(1, Relaxed) < times
    }
    fn can_log(&mut self) -> bool {
        crate::log::writable()
    }
    fn realise(&mut self, fault: &Fault, ctx: RuleContext, param: u64) -> Result<Action, NotHere> {
        (self.realise)(fault, ctx, param)
    }
    fn tally(&mut self, rule: usize, outcome: Result<(), Reason>) {
        tally(rule, outcome);
    }
    fn covers(&self, rule: &chaos_engine::policy::Rule) -> bool {
        (self.covers)(rule)
    }
    fn carries_out(&self, fault: &Fault) -> bool {
        !self.off_grid || chaos_engine::grid::Placement::of(fault).is_none()
    }
}

/// The fault for a call on an fd, if any: the exact injection at its key, else the first rule
/// among `candidates` (a rule mask) that fires there. The realism model sees the live fd's
/// facts, shared by every rule tried, so each fact costs one system call at most.
pub fn decide(
    rt: &Runtime,
    call: &Call,
    slot: &Slot,
    meta: Meta,
    at: &Position,
    candidates: u32,
) -> Option<Choice> {
    decide_with(rt, call, slot, meta, at, candidates, false)
}

/// As `decide`, passing over every fault that lies on the grid of stream offsets: a stream
/// read's per-call decision (toxics), whose grid faults `grid_read` places in the read's span.
pub fn decide_off_grid(
    rt: &Runtime,
    call: &Call,
    slot: &Slot,
    meta: Meta,
    at: &Position,
    candidates: u32,
) -> Option<Choice> {
    decide_with(rt, call, slot, meta, at, candidates, true)
}

fn decide_with(
    rt: &Runtime,
    call: &Call,
    slot: &Slot,
    meta: Meta,
    at: &Position,
    candidates: u32,
    off_grid: bool,
) -> Option<Choice> {
    if crate::census::on() {
        let target = crate::census::Target::Fd {
            fd: call.fd,
            meta,
            slot,
        };
        census_reached(call.op, at.conn, at.site, target);
    }
    let mut facts = LiveFacts::new(call.fd, slot, meta);
    let shape = call.shape(meta);
    let mut live = Live {
        rt,
        realise: |fault: &Fault, ctx, param| {
            realise::realise(fault, ctx, &shape, &mut facts, param)
        },
        covers: &|_| true,
        off_grid,
    };
    select(&rt.policy, &rt.gates, at, candidates, &mut live)
}

/// The facts about one call that decisions depend on.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub op: Op,
    pub fd: c_int,
    pub requested: usize,
    /// MSG_* flags of the call (0 for read/write).
    pub msg_flags: c_int,
    /// sendto/sendmsg's destination address (null otherwise).
    pub dest: *const libc::sockaddr,
    pub dest_len: libc::socklen_t,
    /// What a send would send, for the faults that must keep a copy (`reorder`).
    pub payload: Payload,
}

/// A send's bytes, as the program passed them.
#[derive(Clone, Copy, Debug)]
pub enum Payload {
    None,
    /// One buffer of `requested` bytes (write, send, sendto).
    Buf(*const u8),
    /// A message's iovecs (sendmsg).
    Msg(*const libc::msghdr),
    /// A positioned write's file offset (pwrite, pwritev): where a disk's accounting looks.
    At(u64),
}

impl Call {
    pub fn dir(&self) -> Option<Dir> {
        self.op.dir()
    }

    /// The call as the realism model sees it.
    pub fn shape(&self, meta: Meta) -> realise::Call {
        realise::Call {
            op: self.op,
            kind: meta.kind(),
            stream: meta.stream(),
            requested: self.requested,
            msg_flags: self.msg_flags,
        }
    }
}

/// Where on the connection this call sits, advancing the slot's counters. A byte stream's data
/// calls are placed by offset; their call count matters only to `after`/`every`, so it is kept
/// only when some rule has one (`Runtime::counts_calls`).
#[inline(always)]
pub fn site_for(rt: &Runtime, call: &Call, slot: &Slot, meta: Meta) -> (Site, u64) {
    let class = call.op.class();
    let count = || slot.calls[class as usize].fetch_add(1, Relaxed) as u64;
    match call.dir() {
        Some(dir) if meta.stream() && !call.op.is_multi_message() => {
            let n = if rt.counts_calls { count() } else { 0 };
            let site = Site::Stream {
                dir,
                pos: slot.pos[dir as usize].load(Relaxed),
                attempt: slot.attempt[dir as usize].fetch_add(1, Relaxed),
            };
            (site, n)
        }
        _ => {
            let n = count();
            (Site::Call { class, n }, n)
        }
    }
}

/// The decision for a call with no fd (a name lookup, an open, a rename, a socket): the exact
/// injection at `(conn, n-th call of op's class)` if there is one, else the first of `op`'s rules
/// that `covers` the call and fires there. `action_of` turns a fault (with its parameter) into
/// what the call does, or the realism rule that forbids it here (the rule then does not fire).
pub fn decide_named(
    rt: &Runtime,
    op: Op,
    conn: u64,
    n: u64,
    covers: impl Fn(&chaos_engine::policy::Rule) -> bool,
    action_of: impl Fn(&Fault, u64) -> Result<Action, NotHere>,
) -> Option<Choice> {
    let site = Site::Call {
        class: op.class(),
        n,
    };
    let at = position(conn, site, n, 0);
    let mut live = Live {
        rt,
        realise: |fault: &Fault, _, param| action_of(fault, param),
        covers: &covers,
        off_grid: false,
    };
    select(&rt.policy, &rt.gates, &at, rt.rules_for(op), &mut live)
}

/// Whether rule `i` of this process is inside its `window` now (a blackhole lasts that long).
pub fn in_window(rt: &Runtime, i: usize) -> bool {
    rt.policy.rules[i]
        .window
        .is_none_or(|(from, to)| (from..to).contains(&crate::runtime::since_start_ns()))
}

/// Whether rule `i` still applies now (switched on, inside its window): a blackhole lasts that long.
pub fn rule_on(rt: &Runtime, i: usize) -> bool {
    crate::page::enabled() & (1 << i) != 0 && in_window(rt, i)
}

/// Counts one injection of rule `i` against its `times` in this process; false when they were
/// used up (the grid's cuts count once the read really ended at the cut: `grid_read::cut_made`).
pub fn take_one_of_times(rt: &Runtime, i: usize) -> bool {
    rt.policy.rules[i]
        .times
        .is_none_or(|times| rt.injected[i].fetch_add(1, Relaxed) < times)
}

/// Adds a drawn rule's outcome to the run's counts (the control page; nowhere without one).
#[inline]
pub(crate) fn tally(rule: usize, outcome: Result<(), Reason>) {
    if let Some(page) = crate::page::mapped() {
        page.tally(rule, outcome);
    }
}

/// The connection key for a connect() that has not created its connection yet: every connect
/// attempt of a kind in this process is numbered, so a program that retries on new sockets gets a
/// fresh decision each time.
pub fn connect_site(kind: FdKind) -> Position {
    static ATTEMPTS: [core::sync::atomic::AtomicU32; 7] =
        [const { core::sync::atomic::AtomicU32::new(0) }; 7];
    let n = ATTEMPTS[kind as usize].fetch_add(1, Relaxed) as u64;
    let conn = chaos_engine::inject::connects_key(kind);
    position(
        conn,
        Site::Call {
            class: OpClass::Connect,
            n,
        },
        n,
        0,
    )
}
