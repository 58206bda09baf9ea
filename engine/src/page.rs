//! The control page: the fixed-layout shared file (`$CHAOS_RUN/control`, named by `$CHAOS_CONTROL`)
//! through which a run is steered while it lives. chaos-ctl creates it and writes the rule switches
//! and the partition matrix (`chaos-ctl control …`, the HTTP endpoint, the `[[partition]]`
//! schedule); every shim maps it and reads them with plain atomic loads. The only part shims write
//! is the port directory: which process of the system owns a port (it listened there, or connected
//! from it), so that the two ends of a loopback connection know each other by name.
//!
//! The layout is plain atomics, no locks: a reader never waits and a writer never blocks a call.
//! Every change bumps `generation`, so a shim notices it with one load and logs where it first took
//! effect. This module is the layout and its accessors, over any memory (a mapped file in the shim
//! and chaos-ctl, a vector in tests).

use core::sync::atomic::{
    AtomicU8, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::SeqCst,
};

mod lineage;
pub mod proxies;
mod unlogged;
pub use unlogged::{Unlogged, Unreadable, unreadable_policy_line};

/// The first word of a control page of this layout (the digit changes with the layout).
pub const MAGIC: u64 = u64::from_le_bytes(*b"CHAOSCP8");
/// How long a writer waits for another before taking the page over as a dead writer's (about a
/// second of spin hints; a live writer holds it for a few stores).
const WRITER_SPINS: u32 = 1 << 24;
/// How often a reader retries a snapshot torn by a writer before taking what it read.
const READER_TRIES: u32 = 1024;

/// The generation in generation word `raw` (see `Page::change`).
#[inline(always)]
pub fn generation_of(raw: u64) -> u64 {
    raw >> 1
}

/// The generation and the rules it enabled, from the page's two words (a reader that keeps
/// pointers to them, as the shim does): retried while a writer is at work or finished between
/// the loads. No lock, no allocation; bounded, so a hook never waits on a stuck writer.
pub fn snapshot(generation: &AtomicU64, enabled: &AtomicU64) -> (u64, u64) {
    snapshot_around(generation, enabled, || {})
}

/// `snapshot`, with `between` run between the generation's load and the rules' (where a reader
/// can be preempted), so that a test can make a change there.
#[inline(always)]
fn snapshot_around(
    generation: &AtomicU64,
    enabled: &AtomicU64,
    mut between: impl FnMut(),
) -> (u64, u64) {
    let mut raw = generation.load(Acquire);
    for _ in 0..READER_TRIES {
        if raw & 1 == 0 {
            between();
            let on = enabled.load(Acquire);
            let again = generation.load(Acquire);
            if again == raw {
                return (generation_of(raw), on);
            }
            raw = again;
        } else {
            core::hint::spin_loop();
            raw = generation.load(Acquire);
        }
    }
    // A writer that died mid-change: what is in force now is what calls are decided with.
    (generation_of(raw), enabled.load(Acquire))
}

/// Processes a page can name (replicas and the workload); a cut row is a 64-bit mask.
pub const MAX_PROCESSES: usize = 64;
/// A process name's bytes in the directory (`kv#12`, `workload`).
pub const NAME_BYTES: usize = 32;
const NAME_WORDS: usize = NAME_BYTES / 8;
/// The run's log path, so that `chaos-ctl control` logs its changes where the run logs.
pub const LOG_PATH_BYTES: usize = 4096;

const W_MAGIC: usize = 0;
const W_GENERATION: usize = 1;
const W_ENABLED: usize = 2;
const W_PROCESSES: usize = 3;
/// Non-zero while any cut is in force: shims check this one word before anything else.
const W_ANY_CUT: usize = 4;
/// Row `a`: bit `b` set when traffic from process `a` to process `b` is cut.
const W_CUT: usize = 8;
/// Row `a`: CLOCK_MONOTONIC ns when its current cut began (0: none), for timeouts.
const W_CUT_SINCE: usize = W_CUT + MAX_PROCESSES;
const W_NAMES: usize = W_CUT_SINCE + MAX_PROCESSES;
/// The policy's rule names, for `control enable NAME` from any process of the run.
const W_RULES: usize = W_NAMES + MAX_PROCESSES * NAME_WORDS;
/// Rules a page can switch (the policy's limit).
pub const MAX_RULES: usize = 64;
const W_RULE_COUNT: usize = 5;
/// CLOCK_MONOTONIC ns when the run started, for the `t_ns` of changes made from outside.
const W_STARTED: usize = 6;
/// The control endpoint's TCP port (0: none): connections to it are chaos-ctl's, never faulted.
const W_CONTROL_PORT: usize = 7;
const W_LOG: usize = W_RULES + MAX_RULES * NAME_WORDS;
/// `[[disk]]`s: how many, then per disk its name, capacity, bytes in use (written by every shim
/// of the run as its files grow and shrink) and bytes taken by others (`control disk NAME fill`).
const W_DISK_COUNT: usize = W_LOG + LOG_PATH_BYTES / 8;
const W_DISKS: usize = W_DISK_COUNT + 1;
const DISK_WORDS: usize = NAME_WORDS + 3;
/// `[durability]`: the journals' sequence counter, one order for every process of the run.
const W_DURABLE_SEQ: usize = W_DISKS + crate::disk::MAX_DISKS * DISK_WORDS;
/// Processes that could not write the log and so withheld their faults (see `unlogged`): how
/// many withheld faults found no free entry, then the entries.
const W_UNLOGGED_OVERFLOW: usize = W_DURABLE_SEQ + 1;
const W_UNLOGGED: usize = W_UNLOGGED_OVERFLOW + 1;
/// Per rule: draws that said "fire", injections, then one counter per `refusal::Reason`. Every
/// process of the run adds to them (only on a drawn rule's path), chaos-ctl reads them at the end.
const W_TALLIES: usize = W_UNLOGGED + unlogged::MAX_UNLOGGED * unlogged::ENTRY_WORDS;
const TALLY_WORDS: usize = 2 + crate::refusal::REASONS;
/// Process keys left by fork children for the programs they exec (see `lineage`).
const W_LINEAGE: usize = W_TALLIES + MAX_RULES * TALLY_WORDS;
/// 1 when the run's policy has `[durability]` (a power loss then undoes something).
const W_DURABILITY: usize = W_LINEAGE + lineage::SLOTS * lineage::ENTRY_WORDS;
/// Power losses asked for (`chaos-ctl control power-loss`), bit i: process i; the supervisor
/// takes them, since only it can kill, undo and restart a replica.
const W_POWER_LOSS: usize = W_DURABILITY + 1;
/// Toxiproxy's proxies (`proxies`): how many, then the proxies, then their toxics.
const W_PROXY_COUNT: usize = W_POWER_LOSS + 1;
const W_PROXIES: usize = W_PROXY_COUNT + 1;
const W_PROXY_TOXICS: usize = W_PROXIES + proxies::MAX_PROXIES * proxies::PROXY_WORDS;
/// The words before the port directory.
pub const WORDS: usize = W_PROXY_TOXICS + proxies::MAX_TOXICS * proxies::TOXIC_WORDS;
/// The port directory: one byte per TCP port, the owner's index + 1 (0: nobody of ours).
pub const PORTS: usize = 65536;
/// How long a call held by a cut waits before the page is looked at again: a heal is seen
/// within this (by the shim's holds and the seccomp supervisor's alike).
pub const HOLD_SLICE_NS: u64 = 20_000_000;

/// How long Linux keeps retransmitting unacknowledged data before it ends the connection with
/// ETIMEDOUT: tcp_retries2 = 15 tries, about 924.6 s with the minimum RTO of 200 ms, unless the
/// socket sets TCP_USER_TIMEOUT. A write a cut holds longer than that fails so.
pub const RETRANSMIT_TIMEOUT_NS: u64 = 924_600_000_000;

/// The file's size: the words, then the port bytes, rounded to pages.
pub const SIZE: usize = (WORDS * 8 + PORTS).div_ceil(4096) * 4096;

/// A view of a control page's memory.
#[derive(Clone, Copy)]
pub struct Page<'a> {
    words: &'a [AtomicU64],
    ports: &'a [AtomicU8],
}

/// Why memory is not a control page.
#[derive(Debug, PartialEq, Eq)]
pub enum PageError {
    TooSmall,
    NotAPage,
}

impl core::fmt::Display for PageError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        f.write_str(match self {
            PageError::TooSmall => "too small to be a control page",
            PageError::NotAPage => "not a chaos control page (wrong magic)",
        })
    }
}

impl<'a> Page<'a> {
    /// A view over `words` (at least WORDS) and `ports` (at least PORTS), not checked for the magic
    /// (for a page being created).
    pub fn over(words: &'a [AtomicU64], ports: &'a [AtomicU8]) -> Result<Page<'a>, PageError> {
        if words.len() < WORDS || ports.len() < PORTS {
            return Err(PageError::TooSmall);
        }
        Ok(Page { words, ports })
    }

    /// A view over a mapping of the page file (SIZE bytes), not checked for the magic.
    ///
    /// # Safety
    /// `base` must point at SIZE readable and writable bytes, aligned to 8, that stay mapped for
    /// `'a` and are only ever accessed through atomics.
    pub unsafe fn from_mapping(base: *const u8) -> Page<'a> {
        // SAFETY: the caller's contract: WORDS u64s, then PORTS bytes, inside SIZE mapped bytes.
        let (words, ports) = unsafe {
            (
                core::slice::from_raw_parts(base as *const AtomicU64, WORDS),
                core::slice::from_raw_parts(base.add(WORDS * 8) as *const AtomicU8, PORTS),
            )
        };
        Page { words, ports }
    }

    /// A view over an existing page: the magic must be there.
    pub fn open(words: &'a [AtomicU64], ports: &'a [AtomicU8]) -> Result<Page<'a>, PageError> {
        Page::over(words, ports)?.checked()
    }

    /// This view, if the memory holds a page (the magic is there).
    pub fn checked(self) -> Result<Page<'a>, PageError> {
        if self.words[W_MAGIC].load(SeqCst) != MAGIC {
            return Err(PageError::NotAPage);
        }
        Ok(self)
    }

    /// Writes a fresh page: the process names (in directory order), the rules enabled at start, and
    /// the log path. The magic goes last, so a reader never sees a half-written page as valid.
    pub fn init(&self, names: &[&str], rules: &[&str], enabled: u64, log_path: &str) {
        for w in self.words {
            w.store(0, Relaxed);
        }
        for p in self.ports {
            p.store(0, Relaxed);
        }
        let count = names.len().min(MAX_PROCESSES);
        for (i, name) in names.iter().take(count).enumerate() {
            write_bytes(
                &self.words[W_NAMES + i * NAME_WORDS..][..NAME_WORDS],
                name.as_bytes(),
            );
        }
        let rule_count = rules.len().min(MAX_RULES);
        for (i, rule) in rules.iter().take(rule_count).enumerate() {
            write_bytes(
                &self.words[W_RULES + i * NAME_WORDS..][..NAME_WORDS],
                rule.as_bytes(),
            );
        }
        self.words[W_RULE_COUNT].store(rule_count as u64, Relaxed);
        write_bytes(
            &self.words[W_LOG..W_LOG + LOG_PATH_BYTES / 8],
            log_path.as_bytes(),
        );
        self.words[W_PROCESSES].store(count as u64, Relaxed);
        self.words[W_ENABLED].store(enabled, Relaxed);
        self.words[W_MAGIC].store(MAGIC, SeqCst);
    }

    /// Declares the run's disks: name, capacity and bytes in use at the start.
    pub fn init_disks(&self, disks: &[(&str, u64, u64)]) {
        let count = disks.len().min(crate::disk::MAX_DISKS);
        for (i, (name, capacity, used)) in disks.iter().take(count).enumerate() {
            let at = W_DISKS + i * DISK_WORDS;
            write_bytes(&self.words[at..at + NAME_WORDS], name.as_bytes());
            self.words[at + NAME_WORDS].store(*capacity, Relaxed);
            self.words[at + NAME_WORDS + 1].store(*used, Relaxed);
            self.words[at + NAME_WORDS + 2].store(0, Relaxed);
        }
        self.words[W_DISK_COUNT].store(count as u64, SeqCst);
    }

    pub fn disk_count(&self) -> usize {
        (self.words[W_DISK_COUNT].load(Relaxed) as usize).min(crate::disk::MAX_DISKS)
    }

    pub fn disk_name(&self, i: usize) -> String {
        let at = W_DISKS + i * DISK_WORDS;
        let mut buf = [0u8; NAME_BYTES];
        let n = read_bytes(&self.words[at..at + NAME_WORDS], &mut buf);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    pub fn disk_index(&self, name: &str) -> Option<usize> {
        (0..self.disk_count()).find(|i| self.disk_name(*i) == name)
    }

    pub fn disk_capacity(&self, i: usize) -> u64 {
        self.words[W_DISKS + i * DISK_WORDS + NAME_WORDS].load(Relaxed)
    }

    /// Disk `i`'s bytes in use and bytes taken by others, for readers that keep pointers to them.
    pub fn disk_words(&self, i: usize) -> (&'a AtomicU64, &'a AtomicU64) {
        let at = W_DISKS + i * DISK_WORDS + NAME_WORDS;
        (&self.words[at + 1], &self.words[at + 2])
    }

    /// `control disk NAME fill`: others take every free byte; `free`: they give it all back.
    pub fn set_disk_full(&self, i: usize, full: bool) {
        let (used, others) = self.disk_words(i);
        let taken = if full {
            self.disk_capacity(i).saturating_sub(used.load(Relaxed))
        } else {
            0
        };
        self.bump_after(|| others.store(taken, SeqCst));
    }

    /// The word `[durability]` journal records take their sequence numbers from.
    pub fn durable_seq_word(&self) -> &'a AtomicU64 {
        &self.words[W_DURABLE_SEQ]
    }

    /// Counts one draw of rule `rule` that said "fire": injected (`Ok`) or not, and why not.
    /// Two relaxed adds, no allocation: the shim calls it from its hooks.
    #[inline]
    pub fn tally(&self, rule: usize, outcome: Result<(), crate::refusal::Reason>) {
        if rule >= MAX_RULES {
            return;
        }
        let at = W_TALLIES + rule * TALLY_WORDS;
        self.words[at].fetch_add(1, Relaxed);
        let slot = match outcome {
            Ok(()) => 1,
            Err(reason) => 2 + reason.index(),
        };
        self.words[at + slot].fetch_add(1, Relaxed);
    }

    /// Rule `rule`'s counts so far, summed over every process of the run.
    pub fn tally_of(&self, rule: usize) -> crate::refusal::Tally {
        let mut t = crate::refusal::Tally::default();
        if rule >= MAX_RULES {
            return t;
        }
        let at = W_TALLIES + rule * TALLY_WORDS;
        t.drawn = self.words[at].load(SeqCst);
        t.injected = self.words[at + 1].load(SeqCst);
        for (i, n) in t.refused.iter_mut().enumerate() {
            *n = self.words[at + 2 + i].load(SeqCst);
        }
        t
    }

    pub fn set_durability(&self, on: bool) {
        self.words[W_DURABILITY].store(u64::from(on), Relaxed);
    }

    pub fn has_durability(&self) -> bool {
        self.words[W_DURABILITY].load(Relaxed) != 0
    }

    /// Asks the supervisor for a power loss of process `i`. No new generation: the shims have
    /// nothing to see; the supervisor's process line says when it happened.
    pub fn request_power_loss(&self, i: usize) {
        if i < MAX_PROCESSES {
            self.words[W_POWER_LOSS].fetch_or(1 << i, SeqCst);
        }
    }

    /// The power losses asked for since the last call (bit i: process i).
    pub fn take_power_losses(&self) -> u64 {
        self.words[W_POWER_LOSS].swap(0, SeqCst)
    }

    pub fn set_started(&self, monotonic_ns: u64) {
        self.words[W_STARTED].store(monotonic_ns, Relaxed);
    }

    pub fn set_control_port(&self, port: u16) {
        self.words[W_CONTROL_PORT].store(u64::from(port), Relaxed);
    }

    /// The control endpoint's port, if the run serves one.
    #[inline(always)]
    pub fn control_port(&self) -> Option<u16> {
        match self.words[W_CONTROL_PORT].load(Relaxed) {
            0 => None,
            p => Some(p as u16),
        }
    }

    pub fn started(&self) -> u64 {
        self.words[W_STARTED].load(Relaxed)
    }

    /// Bumped by every change.
    #[inline(always)]
    pub fn generation(&self) -> u64 {
        self.words[W_GENERATION].load(Relaxed) >> 1
    }

    /// The generation and the rules it enabled, as one consistent pair (see `snapshot`).
    pub fn snapshot(&self) -> (u64, u64) {
        snapshot(&self.words[W_GENERATION], &self.words[W_ENABLED])
    }

    /// The word holding the generation (twice it, plus one while a change is under way: read it
    /// through `generation_of` or `snapshot`), for a reader that keeps a pointer to it.
    pub fn generation_word(&self) -> &'a AtomicU64 {
        &self.words[W_GENERATION]
    }

    /// The word holding the enabled rules (bit i: rule i), for a reader that keeps a pointer to it.
    pub fn enabled_word(&self) -> &'a AtomicU64 {
        &self.words[W_ENABLED]
    }

    pub fn enabled(&self) -> u64 {
        self.words[W_ENABLED].load(Relaxed)
    }

    /// Switches rule `rule` on or off; returns whether that changed anything.
    pub fn set_enabled(&self, rule: usize, on: bool) -> bool {
        let bit = 1u64 << rule;
        self.change(|| {
            let before = if on {
                self.words[W_ENABLED].fetch_or(bit, SeqCst)
            } else {
                self.words[W_ENABLED].fetch_and(!bit, SeqCst)
            };
            (before & bit != 0) != on
        })
    }

    /// A change that always counts as one.
    fn bump_after(&self, f: impl FnOnce()) {
        self.change(|| {
            f();
            true
        });
    }

    /// Makes the change `f` (which says whether it changed anything) as the one writer of the
    /// page, a new generation if it did. The generation word is a seqlock: odd while a writer is
    /// at work, so that a reader never pairs a generation with what the next one enabled (a
    /// process that logged "seen generation 1, nothing enabled" while generation 1 enabled a
    /// rule was caught doing exactly that, preempted between its two loads).
    fn change(&self, f: impl FnOnce() -> bool) -> bool {
        let word = &self.words[W_GENERATION];
        let mut spins = 0u32;
        let held = loop {
            let raw = word.load(SeqCst);
            if raw & 1 == 0 {
                if word.compare_exchange(raw, raw + 1, SeqCst, SeqCst).is_ok() {
                    break raw;
                }
            } else if spins >= WRITER_SPINS {
                // Its writer died between its two stores (killed mid-change): take over.
                break raw - 1;
            }
            spins += 1;
            core::hint::spin_loop();
        };
        let changed = f();
        word.store(if changed { held + 2 } else { held }, SeqCst);
        changed
    }

    pub fn process_count(&self) -> usize {
        (self.words[W_PROCESSES].load(Relaxed) as usize).min(MAX_PROCESSES)
    }

    /// Process `i`'s name, into `buf` (no allocation: the shim reads it).
    pub fn name_into<'b>(&self, i: usize, buf: &'b mut [u8; NAME_BYTES]) -> &'b [u8] {
        let n = read_bytes(&self.words[W_NAMES + i * NAME_WORDS..][..NAME_WORDS], buf);
        &buf[..n]
    }

    pub fn name(&self, i: usize) -> String {
        let mut buf = [0u8; NAME_BYTES];
        String::from_utf8_lossy(self.name_into(i, &mut buf)).into_owned()
    }

    /// The directory index of the process called `name`.
    pub fn index_of(&self, name: &[u8]) -> Option<usize> {
        let mut buf = [0u8; NAME_BYTES];
        (0..self.process_count()).find(|i| self.name_into(*i, &mut buf) == name)
    }

    /// The policy's rule names, in index order (names longer than NAME_BYTES - 1 are cut).
    pub fn rule_names(&self) -> Vec<String> {
        let count = (self.words[W_RULE_COUNT].load(Relaxed) as usize).min(MAX_RULES);
        (0..count)
            .map(|i| {
                let mut buf = [0u8; NAME_BYTES];
                let n = read_bytes(
                    &self.words[W_RULES + i * NAME_WORDS..][..NAME_WORDS],
                    &mut buf,
                );
                String::from_utf8_lossy(&buf[..n]).into_owned()
            })
            .collect()
    }

    pub fn log_path(&self) -> String {
        let mut buf = [0u8; LOG_PATH_BYTES];
        let n = read_bytes(&self.words[W_LOG..W_LOG + LOG_PATH_BYTES / 8], &mut buf);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Whether any cut is in force (one load: the shim's first check).
    #[inline(always)]
    pub fn any_cut(&self) -> bool {
        self.words[W_ANY_CUT].load(Relaxed) != 0
    }

    /// Whether traffic from process `from` to process `to` is cut.
    #[inline(always)]
    pub fn cut(&self, from: usize, to: usize) -> bool {
        from < MAX_PROCESSES
            && to < MAX_PROCESSES
            && self.words[W_CUT + from].load(Relaxed) & (1 << to) != 0
    }

    /// Since when (CLOCK_MONOTONIC ns) `from`'s current cut has been in force; 0 if none.
    pub fn cut_since(&self, from: usize) -> u64 {
        self.words
            .get(W_CUT_SINCE + from)
            .map_or(0, |w| w.load(Relaxed))
    }

    /// The cut matrix, row by row.
    pub fn cuts(&self) -> [u64; MAX_PROCESSES] {
        core::array::from_fn(|a| self.words[W_CUT + a].load(Relaxed))
    }

    /// Replaces the whole matrix (`rows[a]` bit `b`: a → b cut) at `now` (CLOCK_MONOTONIC ns).
    /// Rows that were already cut keep their start time.
    pub fn set_cuts(&self, rows: &[u64; MAX_PROCESSES], now: u64) {
        self.bump_after(|| {
            for (a, row) in rows.iter().enumerate() {
                let before = self.words[W_CUT + a].swap(*row, SeqCst);
                let since = &self.words[W_CUT_SINCE + a];
                match (before, *row) {
                    (_, 0) => since.store(0, SeqCst),
                    (0, _) => since.store(now.max(1), SeqCst),
                    _ => {}
                }
            }
            let any = rows.iter().any(|r| *r != 0);
            self.words[W_ANY_CUT].store(any as u64, SeqCst);
        });
    }

    /// Who owns `port` (listens on it, or connected from it): a directory index.
    #[inline(always)]
    pub fn port_owner(&self, port: u16) -> Option<usize> {
        match self.ports[port as usize].load(Relaxed) {
            0 => None,
            n => Some(n as usize - 1),
        }
    }

    /// Whether traffic between process `me` and the owner of TCP `port` is cut in `dir`
    /// (`Tx`: from `me` to it; `Rx`: from it to `me`). Never for a port of `me`'s own or of
    /// nobody's (a program outside the run).
    #[inline(always)]
    pub fn cut_with_owner(&self, me: usize, port: u16, dir: crate::key::Dir) -> bool {
        self.port_owner(port).is_some_and(|peer| {
            peer != me
                && match dir {
                    crate::key::Dir::Tx => self.cut(me, peer),
                    crate::key::Dir::Rx => self.cut(peer, me),
                }
        })
    }

    pub fn set_port_owner(&self, port: u16, index: usize) {
        if index < MAX_PROCESSES {
            self.ports[port as usize].store(index as u8 + 1, Relaxed);
        }
    }

    /// The ports each process owns, for `status`.
    pub fn ports_of(&self, index: usize) -> Vec<u16> {
        (0..PORTS)
            .filter(|p| self.port_owner(*p as u16) == Some(index))
            .map(|p| p as u16)
            .collect()
    }
}

fn write_bytes(words: &[AtomicU64], bytes: &[u8]) {
    let bytes = &bytes[..bytes.len().min(words.len() * 8 - 1)];
    for (i, w) in words.iter().enumerate() {
        let mut chunk = [0u8; 8];
        for (j, c) in chunk.iter_mut().enumerate() {
            *c = bytes.get(i * 8 + j).copied().unwrap_or(0);
        }
        w.store(u64::from_le_bytes(chunk), Relaxed);
    }
}

/// The NUL-terminated bytes in `words`, copied into `buf`; returns their length.
fn read_bytes(words: &[AtomicU64], buf: &mut [u8]) -> usize {
    let mut n = 0;
    for w in words {
        for b in w.load(Relaxed).to_le_bytes() {
            if b == 0 || n == buf.len() {
                return n;
            }
            buf[n] = b;
            n += 1;
        }
    }
    n
}

/// The cut rows for `groups` (directory indices): traffic between members of different groups is
/// cut both ways, or with `one_way` only from the first group to the others.
pub fn rows_between(groups: &[Vec<usize>], one_way: bool) -> [u64; MAX_PROCESSES] {
    let mut rows = [0u64; MAX_PROCESSES];
    for (gi, g) in groups.iter().enumerate() {
        for (hi, h) in groups.iter().enumerate() {
            if gi == hi || (one_way && gi != 0) {
                continue;
            }
            for a in g.iter().filter(|a| **a < MAX_PROCESSES) {
                for b in h.iter().filter(|b| **b < MAX_PROCESSES) {
                    rows[*a] |= 1 << b;
                }
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> (Vec<AtomicU64>, Vec<AtomicU8>) {
        (
            (0..WORDS).map(|_| AtomicU64::new(7)).collect(),
            (0..PORTS).map(|_| AtomicU8::new(3)).collect(),
        )
    }

    /// A reader preempted between its two loads while a rule is switched on does not pair the
    /// old generation with the new rules: it reads again and gets the new generation.
    #[test]
    fn a_snapshot_never_pairs_a_generation_with_another_ones_rules() {
        let (w, p) = memory();
        let page = Page::over(&w, &p).unwrap();
        page.init(&[], &["r"], 0, "");
        assert_eq!(page.snapshot(), (0, 0));
        let mut changes = 0;
        let got = snapshot_around(&w[W_GENERATION], &w[W_ENABLED], || {
            if changes == 0 {
                assert!(page.set_enabled(0, true));
            }
            changes += 1;
        });
        assert_eq!(got, (1, 1), "generation 1 is the one that enabled rule 0");
        assert_eq!(changes, 2, "read once more after the change");
        assert!(!page.set_enabled(0, true), "no change, no new generation");
        assert_eq!(page.generation(), 1);
    }

    /// While a writer is at work (the word odd), a reader waits for it rather than read half a
    /// change.
    #[test]
    fn a_change_in_progress_is_waited_for() {
        let (w, p) = memory();
        let page = Page::over(&w, &p).unwrap();
        page.init(&[], &["r"], 0, "");
        w[W_GENERATION].store(1, SeqCst); // a writer holds it, mid-change
        let mut tries = 0;
        let got = snapshot_around(&w[W_GENERATION], &w[W_ENABLED], || tries += 1);
        assert_eq!(tries, 0, "nothing read while the change was under way");
        assert_eq!(got, (0, 0));
        w[W_GENERATION].store(2, SeqCst); // it finished: generation 1
        assert_eq!(page.snapshot(), (1, 0));
    }

    #[test]
    fn disks_fill_for_others_and_free_again() {
        let (w, p) = memory();
        let page = Page::over(&w, &p).unwrap();
        page.init(&[], &[], 0, "");
        assert_eq!(page.disk_count(), 0);
        page.init_disks(&[("data", 65536, 20480), ("logs", 4096, 0)]);
        assert_eq!(page.disk_count(), 2);
        assert_eq!(page.disk_index("logs"), Some(1));
        assert_eq!(page.disk_index("nope"), None);
        let (used, others) = page.disk_words(0);
        assert_eq!((used.load(Relaxed), others.load(Relaxed)), (20480, 0));
        let g = page.generation();
        page.set_disk_full(0, true);
        assert_eq!(others.load(Relaxed), 65536 - 20480);
        assert!(page.generation() > g);
        page.set_disk_full(0, false);
        assert_eq!(others.load(Relaxed), 0);
    }

    #[test]
    fn a_fresh_page_names_its_processes_and_holds_its_switches() {
        let (w, p) = memory();
        assert_eq!(Page::open(&w, &p).err(), Some(PageError::NotAPage));
        let page = Page::over(&w, &p).unwrap();
        page.init(
            &["kv#0", "kv#1", "workload"],
            &["db-down", "slow", "lossy"],
            0b101,
            "/tmp/run.jsonl",
        );
        let page = Page::open(&w, &p).unwrap();
        assert_eq!(page.process_count(), 3);
        assert_eq!(page.name(1), "kv#1");
        assert_eq!(page.index_of(b"workload"), Some(2));
        assert_eq!(page.index_of(b"kv#2"), None);
        assert_eq!(page.log_path(), "/tmp/run.jsonl");
        assert_eq!(page.rule_names(), vec!["db-down", "slow", "lossy"]);
        assert_eq!(page.enabled(), 0b101);
        assert_eq!(page.generation(), 0);
        assert!(!page.any_cut());
        assert_eq!(
            page.port_owner(8080),
            None,
            "init clears the port directory"
        );

        assert!(page.set_enabled(1, true));
        assert!(!page.set_enabled(1, true), "no change, no new generation");
        assert!(page.set_enabled(0, false));
        assert_eq!(page.enabled(), 0b110);
        assert_eq!(page.generation(), 2);
    }

    #[test]
    fn power_losses_are_taken_once() {
        let (w, p) = memory();
        let page = Page::over(&w, &p).unwrap();
        page.init(&["kv#0", "kv#1", "workload"], &[], 0, "");
        assert!(!page.has_durability());
        page.set_durability(true);
        assert!(page.has_durability());
        assert_eq!(page.take_power_losses(), 0);
        page.request_power_loss(1);
        page.request_power_loss(0);
        assert_eq!(page.take_power_losses(), 0b11);
        assert_eq!(page.take_power_losses(), 0);
    }

    #[test]
    fn cuts_are_directed_and_heal_as_a_whole() {
        let (w, p) = memory();
        let page = Page::over(&w, &p).unwrap();
        page.init(&["a", "b", "c"], &[], 0, "");
        page.set_cuts(&rows_between(&[vec![0], vec![1, 2]], false), 100);
        assert!(page.any_cut());
        assert!(page.cut(0, 1) && page.cut(1, 0) && page.cut(2, 0));
        assert!(!page.cut(1, 2) && !page.cut(0, 0));
        assert_eq!(page.cut_since(0), 100);

        page.set_cuts(&rows_between(&[vec![0], vec![1, 2]], true), 200);
        assert!(
            page.cut(0, 1) && page.cut(0, 2),
            "one way: from the first group"
        );
        assert!(!page.cut(1, 0) && !page.cut(2, 0));
        assert_eq!(
            page.cut_since(0),
            100,
            "a row cut all along keeps its start"
        );
        assert_eq!(page.cut_since(1), 0);

        page.set_cuts(&[0; MAX_PROCESSES], 300);
        assert!(!page.any_cut() && !page.cut(0, 1));
        assert_eq!(page.generation(), 3);
    }

    #[test]
    fn the_port_directory_names_owners() {
        let (w, p) = memory();
        let page = Page::over(&w, &p).unwrap();
        page.init(&["kv#0", "kv#1"], &[], 0, "");
        page.set_port_owner(41000, 1);
        page.set_port_owner(41001, 0);
        page.set_port_owner(41002, MAX_PROCESSES); // out of range: ignored
        assert_eq!(page.port_owner(41000), Some(1));
        assert_eq!(page.port_owner(41002), None);
        assert_eq!(page.ports_of(1), vec![41000]);
    }

    #[test]
    fn a_cut_with_a_ports_owner_follows_the_direction_and_spares_strangers() {
        use crate::key::Dir;
        let (w, p) = memory();
        let page = Page::over(&w, &p).unwrap();
        page.init(&["a", "b"], &[], 0, "");
        page.set_port_owner(41000, 1); // b's
        page.set_port_owner(41001, 0); // a's own
        page.set_cuts(&rows_between(&[vec![0], vec![1]], true), 100); // a -> b only
        assert!(
            page.cut_with_owner(0, 41000, Dir::Tx),
            "what a sends to b is lost"
        );
        assert!(
            !page.cut_with_owner(0, 41000, Dir::Rx),
            "what b sends to a flows"
        );
        assert!(
            page.cut_with_owner(1, 41001, Dir::Rx),
            "b hears nothing from a"
        );
        assert!(
            !page.cut_with_owner(0, 41001, Dir::Tx),
            "a's own port is never cut"
        );
        assert!(
            !page.cut_with_owner(0, 42000, Dir::Tx),
            "nobody's port is never cut"
        );
    }

    #[test]
    fn tallies_count_draws_by_outcome_per_rule_and_start_at_zero() {
        use crate::realise::NotHere;
        use crate::refusal::Reason;
        let (w, p) = memory();
        let page = Page::over(&w, &p).unwrap();
        page.init(&[], &["a", "b"], 0b11, "");
        assert_eq!(
            page.tally_of(0),
            Default::default(),
            "init clears the tallies"
        );
        let blocking = Reason::Realism(NotHere::BlockingWriteNotInterrupted);
        for _ in 0..3 {
            page.tally(1, Err(blocking));
        }
        page.tally(1, Ok(()));
        page.tally(1, Err(Reason::TimesUsedUp));
        page.tally(MAX_RULES - 1, Err(Reason::OutsideWindow));
        page.tally(MAX_RULES, Ok(())); // out of range: ignored
        let t = page.tally_of(1);
        assert_eq!((t.drawn, t.injected), (5, 1));
        assert_eq!(t.refused[blocking.index()], 3);
        assert_eq!(t.refused[Reason::TimesUsedUp.index()], 1);
        assert_eq!(t.dominant(), Some((blocking, 3)));
        assert_eq!(page.tally_of(0).drawn, 0, "rules do not share counters");
        assert_eq!(page.tally_of(MAX_RULES - 1).drawn, 1, "the last rule fits");
        assert_eq!(page.tally_of(MAX_RULES), Default::default());
        assert_eq!(
            page.port_owner(0),
            None,
            "the last rule's counters stop before the ports"
        );
    }

    #[test]
    fn tallies_from_two_mappings_of_one_page_add_up() {
        let (w, p) = memory();
        Page::over(&w, &p).unwrap().init(&[], &["a"], 1, "");
        let parent = Page::open(&w, &p).unwrap();
        let child = Page::open(&w, &p).unwrap();
        std::thread::scope(|s| {
            for page in [parent, child] {
                s.spawn(move || {
                    for _ in 0..1000 {
                        page.tally(0, Ok(()));
                    }
                });
            }
        });
        assert_eq!(parent.tally_of(0).injected, 2000);
    }

    #[test]
    fn long_names_are_cut_to_fit_and_the_page_is_page_sized() {
        let (w, p) = memory();
        let page = Page::over(&w, &p).unwrap();
        let long = "x".repeat(100);
        page.init(&[&long], &[], 0, "");
        assert_eq!(page.name(0).len(), NAME_BYTES - 1);
        const { assert!(SIZE % 4096 == 0 && SIZE >= WORDS * 8 + PORTS) };
        assert_eq!(
            Page::over(&w[..10], &p).err(),
            Some(PageError::TooSmall),
            "short memory is refused"
        );
    }
}
