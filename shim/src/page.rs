//! The shim's side of the control page (`$CHAOS_CONTROL`): mapped once by the constructor, then
//! read with plain atomic loads. What it answers:
//! - which rules are enabled now (`enabled`, one load of one word: `Runtime::rules_for`);
//! - whether traffic between this process and a peer is cut (`cut_towards`, `cut_from`);
//! - who owns a TCP port (the directory the shims fill in as they listen and connect).
//!
//! Without a page (plain LD_PRELOAD use, sweeps) the rules enabled are the policy's initial ones
//! and nothing is ever cut. The mapping has no fd (closed right after mmap), so the program sees
//! nothing of ours.

use chaos_engine::page::{Page, SIZE, Unreadable};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering::Relaxed};

/// The policy's initially enabled rules, read where there is no page.
static DEFAULT_ENABLED: AtomicU64 = AtomicU64::new(u64::MAX);
/// The word the enabled rules are read from: DEFAULT_ENABLED, or the page's.
static ENABLED: AtomicPtr<AtomicU64> =
    AtomicPtr::new(&DEFAULT_ENABLED as *const AtomicU64 as *mut AtomicU64);
/// The mapped page (null: none).
static PAGE: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
/// This process's directory index + 1 (0: not in the directory, so never cut).
static SELF_INDEX: AtomicU32 = AtomicU32::new(0);
/// The last generation this process logged having seen.
static SEEN: AtomicU64 = AtomicU64::new(0);
/// The word the generation is read from: NO_GENERATION (never changes), or the page's.
static NO_GENERATION: AtomicU64 = AtomicU64::new(0);
static GENERATION: AtomicPtr<AtomicU64> =
    AtomicPtr::new(&NO_GENERATION as *const AtomicU64 as *mut AtomicU64);

/// The rules enabled now (bit i: rule i).
#[inline(always)]
pub fn enabled() -> u32 {
    // SAFETY: ENABLED always points at DEFAULT_ENABLED or into the page, mapped for the process's
    // life.
    unsafe { (*ENABLED.load(Relaxed)).load(Relaxed) as u32 }
}

/// The page, if this process has one.
#[inline(always)]
pub fn mapped() -> Option<Page<'static>> {
    let p = PAGE.load(Relaxed);
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is a MAP_SHARED mapping of SIZE bytes, never unmapped, accessed only through
    // atomics.
    Some(unsafe { Page::from_mapping(p) })
}

/// Maps `$CHAOS_CONTROL` (constructor only). `name`: this process's CHAOS_PROCESS.
pub fn init(path: Option<&str>, name: Option<&str>, initially: u64) -> Result<(), String> {
    DEFAULT_ENABLED.store(initially, Relaxed);
    let Some(path) = path else { return Ok(()) };
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // The run is over (a process that outlived it, exec'ing later): there is nothing left
            // to steer it, and nothing to say (every exec of such a process would repeat it). Its
            // rules, which do not depend on the page, stay as the policy starts them.
            return Ok(());
        }
        Err(e) => {
            return Err(format!(
                "chaos: cannot open the control page {path} (CHAOS_CONTROL): {e}"
            ));
        }
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len < SIZE as u64 {
        return Err(format!(
            "chaos: CHAOS_CONTROL {path} is not a control page ({len} bytes)"
        ));
    }
    use std::os::fd::AsRawFd;
    // SAFETY: a fresh shared mapping of SIZE bytes of a file that long; the fd is closed when
    // `file` drops, the mapping stays.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!(
            "chaos: cannot map the control page {path}: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the mapping just made, SIZE bytes, kept for the process's life.
    let page = unsafe { Page::from_mapping(p as *const u8) }
        .checked()
        .map_err(|e| format!("chaos: CHAOS_CONTROL {path}: {e}"))?;
    if let Some(i) = name.and_then(|n| page.index_of(n.as_bytes())) {
        SELF_INDEX.store(i as u32 + 1, Relaxed);
    }
    SEEN.store(page.generation(), Relaxed);
    ENABLED.store(
        page.enabled_word() as *const AtomicU64 as *mut AtomicU64,
        Relaxed,
    );
    GENERATION.store(
        page.generation_word() as *const AtomicU64 as *mut AtomicU64,
        Relaxed,
    );
    PAGE.store(p as *mut u8, Relaxed);
    Ok(())
}

/// Whether the control page at `path` exists but is closed to this process (another user's).
pub fn page_denied(path: Option<&str>) -> bool {
    let Some(path) = path else { return false };
    matches!(
        std::fs::OpenOptions::new().read(true).write(true).open(path),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied
    )
}

/// Records in the page that this process cannot open `what` of the run's (`errno`) and withheld
/// `withheld` more faults, for chaos-ctl's summary. Only syscalls and atomics: hooks call it.
/// False without a page (nobody would hear of it).
pub fn note_unreadable(what: Unreadable, errno: i32, withheld: u64) -> bool {
    let Some(page) = mapped() else { return false };
    let mut name = [0u8; 16];
    let n = crate::sys::comm(&mut name);
    page.note_unlogged(
        crate::sys::getpid() as u32,
        what,
        errno,
        &name[..n],
        withheld,
    );
    true
}

/// This process's directory index.
#[inline(always)]
pub fn self_index() -> Option<usize> {
    match SELF_INDEX.load(Relaxed) {
        0 => None,
        n => Some(n as usize - 1),
    }
}

/// Whether this process takes part in partitions: it is in a run's directory.
#[inline(always)]
pub fn partitionable() -> bool {
    SELF_INDEX.load(Relaxed) != 0
}

/// Whether any cut is in force in the run (one load).
#[inline(always)]
pub fn any_cut() -> bool {
    partitionable() && mapped().is_some_and(|p| p.any_cut())
}

/// Records that this process owns `port` (it listens there or connected from it).
pub fn register_port(port: u16) {
    if let (Some(page), Some(me)) = (mapped(), self_index()) {
        page.set_port_owner(port, me);
    }
}

/// Whether what this process sends to the owner of `peer_port` is lost now.
pub fn cut_towards(peer_port: u16) -> bool {
    cut_with(peer_port, chaos_engine::key::Dir::Tx)
}

/// Whether what the owner of `peer_port` sends to this process is lost now.
pub fn cut_from(peer_port: u16) -> bool {
    cut_with(peer_port, chaos_engine::key::Dir::Rx)
}

fn cut_with(peer_port: u16, dir: chaos_engine::key::Dir) -> bool {
    match (mapped(), self_index()) {
        (Some(page), Some(me)) => page.cut_with_owner(me, peer_port, dir),
        _ => false,
    }
}

/// The page's generation and the rules it enabled, the first time a call of this process sees
/// it change (claimed: the caller logs where the change first took effect here). One load when
/// nothing changed.
#[inline(always)]
pub fn new_generation() -> Option<(u64, u32)> {
    // SAFETY: GENERATION points at NO_GENERATION or into the page, mapped for the process's life.
    let word = unsafe { &*GENERATION.load(Relaxed) };
    if chaos_engine::page::generation_of(word.load(Relaxed)) == SEEN.load(Relaxed) {
        return None;
    }
    // SAFETY: ENABLED points at DEFAULT_ENABLED or into the page, mapped for the process's life.
    let on = unsafe { &*ENABLED.load(Relaxed) };
    // The generation and what it enabled as one pair: two plain loads could straddle a change.
    let (g, on) = chaos_engine::page::snapshot(word, on);
    (SEEN.swap(g, Relaxed) != g).then_some((g, on as u32))
}

/// Whether `ep` is the run's control endpoint (chaos-ctl's own HTTP server on loopback): never a
/// target, so that a test steering the run through it is not refused by its own rules.
pub fn is_control_endpoint(ep: &chaos_engine::addr::Endpoint) -> bool {
    match (ep, mapped().and_then(|p| p.control_port())) {
        (chaos_engine::addr::Endpoint::Ip(sa), Some(port)) => {
            sa.port() == port && sa.ip().is_loopback()
        }
        _ => false,
    }
}
