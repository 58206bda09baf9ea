//! Deciding what to do with one intercepted call: which rule fires, if any, and how the fault is
//! applied so that the result is one the kernel could have produced.

use crate::facts::LiveFacts;
use crate::fdtable::{Meta, Slot};
use crate::runtime::Gate;
use crate::runtime::Runtime;
use crate::sys;
use chaos_engine::chance::{chance_at, chance_of_words, param_at};
use chaos_engine::decide::{Dir, INJECTED, Key, Site};
use chaos_engine::fault::Fault;
use chaos_engine::kind::FdKind;
use chaos_engine::op::{Op, OpClass};
use chaos_engine::realise::{self, NotHere, RuleContext};
use chaos_engine::refusal::Reason;
use core::sync::atomic::Ordering::Relaxed;
use libc::c_int;

pub use chaos_engine::realise::{Action, Break, Mode};

#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub action: Action,
    pub source: Source,
    pub key: Key,
}

/// What decided a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The policy's rule with this index, by its draw.
    Rule(usize),
    /// The policy's exact injection with this index (`[[inject]]`).
    Injection(usize),
}

impl Source {
    pub fn fault(self, rt: &Runtime) -> &Fault {
        match self {
            Source::Rule(i) => &rt.policy.rules[i].fault,
            Source::Injection(i) => &rt.policy.injections.get(i).fault,
        }
    }
}

/// The exact injection at this key, if the policy has one (no draw: it always fires, where the
/// kernel could produce it).
pub fn injected(rt: &Runtime, call: &Call, slot: &Slot, meta: Meta, at: Position) -> Option<Plan> {
    let Position { conn, site, .. } = at;
    if !rt.injecting {
        return None;
    }
    if crate::census::on() {
        let target = crate::census::Target::Fd {
            fd: call.fd,
            meta,
            slot,
        };
        crate::census::reached(call.op, conn, site, target);
    }
    let process = crate::runtime::PROCESS_KEY.load(Relaxed);
    let (i, inj) = rt.policy.injections.at(process, conn, site)?;
    let mut facts = LiveFacts::new(call.fd, slot, meta);
    // An exact injection is no rule: where Linux could not produce it, it is simply not there.
    let action = realise(
        &inj.fault,
        RuleContext::default(),
        call,
        &mut facts,
        meta,
        0,
    )
    .ok()?;
    if !crate::log::writable() {
        return None;
    }
    Some(Plan {
        action,
        source: Source::Injection(i),
        key: Key {
            process,
            conn,
            rule: INJECTED,
            site,
        },
    })
}

/// Where a call sits among its connection's calls: the key's connection and site, and the call's
/// number for `after`/`every`.
#[derive(Clone, Copy, Debug)]
pub struct Position {
    pub conn: u64,
    pub site: Site,
    pub n: u64,
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

/// Whether any rule among `candidates` has counts, size and chance that let it fire here: the
/// hot path's early exit, before anything is gathered or guarded. Nearly always false.
#[inline(always)]
pub fn any_may_fire(gates: &[Gate], at: &Position, requested: usize, candidates: u32) -> bool {
    let base_conn = crate::runtime::KEY_BASE.load(Relaxed) ^ at.conn;
    let words = at.site.words();
    let mut bits = candidates;
    while bits != 0 {
        let i = bits.trailing_zeros();
        bits &= bits - 1;
        if let Some(gate) = gates.get(i as usize)
            && gate.may_fire(
                at.n,
                requested,
                chance_of_words(base_conn, i as u16, gate.words(words)),
            )
        {
            return true;
        }
    }
    false
}

/// Runs the rules whose bits are in `candidates` in order; the first that fires wins.
pub fn choose(
    rt: &Runtime,
    call: &Call,
    slot: &Slot,
    meta: Meta,
    at: Position,
    candidates: u32,
) -> Option<Plan> {
    let Position { conn, site, n } = at;
    let process = crate::runtime::PROCESS_KEY.load(Relaxed);
    let base = crate::runtime::KEY_BASE.load(Relaxed);
    let mut facts = LiveFacts::new(call.fd, slot, meta);
    let mut bits = candidates;
    let mut now = None;
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let rule = &rt.policy.rules[i];
        let (chance, fire) = draws(rt, base, conn, i, &site);
        if !rt.gates[i].may_fire(n, call.requested, fire) {
            continue;
        }
        // Drawn to fire: from here on every way out is counted (slow path only).
        if !in_window(rt, rule, &mut now) {
            tally(i, Err(Reason::OutsideWindow));
            continue;
        }
        let key = Key {
            process,
            conn,
            rule: i as u16,
            site,
        };
        let param = param_at(chance);
        let action = match after_draw(
            rt,
            i,
            realise(&rule.fault, rule.context(), call, &mut facts, meta, param),
        ) {
            After::Fire(action) => action,
            After::Next => continue,
            After::Withhold => return None,
        };
        return Some(Plan {
            action,
            source: Source::Rule(i),
            key,
        });
    }
    None
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
) -> Option<Plan> {
    let site = Site::Call {
        class: op.class(),
        n,
    };
    let process = crate::runtime::PROCESS_KEY.load(Relaxed);
    let key = |rule: u16| Key {
        process,
        conn,
        rule,
        site,
    };
    if rt.injecting
        && let Some((i, inj)) = rt.policy.injections.at(process, conn, site)
        && let Ok(action) = action_of(&inj.fault, 0)
    {
        if !crate::log::writable() {
            return None;
        }
        return Some(Plan {
            action,
            source: Source::Injection(i),
            key: key(INJECTED),
        });
    }
    let base = crate::runtime::KEY_BASE.load(Relaxed);
    let mut bits = rt.rules_for(op);
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let rule = &rt.policy.rules[i];
        if !covers(rule) {
            continue;
        }
        // `per = "connection"`: once per name.
        let (chance, fire) = draws(rt, base, conn, i, &site);
        if !rt.gates[i].may_fire(n, 0, fire) {
            continue;
        }
        if !in_window(rt, rule, &mut None) {
            tally(i, Err(Reason::OutsideWindow));
            continue;
        }
        let action = match after_draw(rt, i, action_of(&rule.fault, param_at(chance))) {
            After::Fire(action) => action,
            After::Next => continue,
            After::Withhold => return None,
        };
        return Some(Plan {
            action,
            source: Source::Rule(i),
            key: key(i as u16),
        });
    }
    None
}

/// What becomes of rule `i` once its draw said fire and the realism model answered.
enum After {
    Fire(Action),
    /// Not here: the next rule may fire instead.
    Next,
    /// The process cannot log: no fault at all on this call.
    Withhold,
}

/// The one path from "drawn to fire" to a fault, counting every way out: refused by the model,
/// withheld for want of a log (before it uses up one of the rule's `times`: it did not happen),
/// `times` used up, or fired.
fn after_draw(rt: &Runtime, i: usize, realised: Result<Action, NotHere>) -> After {
    let action = match realised {
        Ok(action) => action,
        Err(not_here) => {
            tally(i, Err(Reason::Realism(not_here)));
            return After::Next;
        }
    };
    if !crate::log::writable() {
        tally(i, Err(Reason::LogUnwritable));
        return After::Withhold;
    }
    if !take_one_of_times(rt, i) {
        tally(i, Err(Reason::TimesUsedUp));
        return After::Next;
    }
    tally(i, Ok(()));
    After::Fire(action)
}

/// Rule `i`'s two numbers at this site: the chance its parameter (a short length, a delay) is
/// drawn from, per call, and the chance that decides whether it fires, which a
/// `per = "connection"` rule draws once per connection.
pub fn draws(rt: &Runtime, base: u64, conn: u64, i: usize, site: &Site) -> (u64, u64) {
    let chance = chance_at(base, conn, i as u16, site);
    let fire = if rt.gates[i].per_connection {
        chance_of_words(base ^ conn, i as u16, rt.gates[i].words(site.words()))
    } else {
        chance
    };
    (chance, fire)
}

/// Counts one injection of rule `i` against its `times`; false when they are used up.
pub fn take_one_of_times(rt: &Runtime, i: usize) -> bool {
    rt.policy.rules[i]
        .times
        .is_none_or(|times| rt.injected[i].fetch_add(1, Relaxed) < times)
}

/// Whether `rule`'s `window` (time since process start) includes now; `now` caches the clock
/// read for the other rules of the same call.
pub fn in_window(rt: &Runtime, rule: &chaos_engine::policy::Rule, now: &mut Option<u64>) -> bool {
    match rule.window {
        None => true,
        Some((start, end)) => {
            let t = *now.get_or_insert_with(|| sys::now_ns(libc::CLOCK_MONOTONIC) - rt.start_ns);
            (start..end).contains(&t)
        }
    }
}

/// Asks the engine's realism model what `fault` becomes on this call, with the live fd's facts,
/// or which of its rules says Linux could not have produced it (the rule then does not fire).
/// `facts` is shared by every rule tried on the call, so each fact costs one system call at most.
fn realise(
    fault: &Fault,
    ctx: RuleContext,
    call: &Call,
    facts: &mut LiveFacts,
    meta: Meta,
    param: u64,
) -> Result<Action, NotHere> {
    realise::realise(fault, ctx, &call.shape(meta), facts, param)
}

/// Adds a drawn rule's outcome to the run's counts (the control page; nowhere without one).
#[inline]
fn tally(rule: usize, outcome: Result<(), Reason>) {
    if let Some(page) = crate::control::page() {
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
    Position {
        conn,
        site: Site::Call {
            class: OpClass::Connect,
            n,
        },
        n,
    }
}
