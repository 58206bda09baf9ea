//! Readiness bookkeeping: what the program registered with epoll, which fds are stalled, and how
//! waiters are kept from seeing (or missing) readiness.
//!
//! Event loops that register edge-triggered (tokio/mio, nginx) treat EAGAIN, and often a short read
//! or write, as "drained, wait for the next edge". When the shim fakes one of those while data or
//! buffer space is really there, no new edge would ever come. So:
//! - a stall hides the stalled direction from epoll by `EPOLL_CTL_MOD` with that direction masked,
//!   and at its end restores the program's events with another MOD, which re-arms the edge (the
//!   kernel re-checks readiness and wakes waiters);
//! - a fake short read/write re-arms right away (MOD with the same events);
//! - waiters already blocked when a stall begins are woken through a shim-owned eventfd added to
//!   every epoll set (its events never reach the program) so they come back with a timeout clamped
//!   to the stall's end;
//! - poll/select are stateless: the stalled direction is masked in the call and the timeout clamped.
//!
//! EPOLLONESHOT registrations are never MODed by the shim while disarmed (that would hand the fd to
//! a second thread); the program's own re-arm passes through here and is masked while stalled.
//! Registrations the shim never saw (inherited epoll fds, io_uring) or cannot re-arm (EPOLLEXCLUSIVE)
//! make the fd "unseen": EAGAIN and short I/O degrade to delays there.
//!
//! Everything is fixed tables of atomics: no lock, no allocation.

use crate::fdtable::{self, MAX_FDS, Slot};
use crate::ownfd;
use crate::real;
use crate::sys;
use chaos_engine::key::Dir;
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering::Relaxed, Ordering::SeqCst,
};
use libc::c_int;

/// The epoll data of the shim's wake eventfd; filtered out of every result.
pub const WAKE_DATA: u64 = 0xc4a0_5c4a_05c4_a05c;

const REGS_PER_FD: usize = 2;

/// One (epfd, fd) registration as the program made it.
struct Reg {
    epfd: AtomicI32,
    events: AtomicU32,
    data: AtomicU64,
    /// Direction bits (`dir_events`) currently masked out by the shim.
    hidden: AtomicU32,
}

struct FdRegs {
    regs: [Reg; REGS_PER_FD],
    /// Registered in more epoll sets than we track: treated as unseen.
    overflow: AtomicBool,
}

impl FdRegs {
    const fn new() -> FdRegs {
        FdRegs {
            regs: [const {
                Reg {
                    epfd: AtomicI32::new(-1),
                    events: AtomicU32::new(0),
                    data: AtomicU64::new(0),
                    hidden: AtomicU32::new(0),
                }
            }; REGS_PER_FD],
            overflow: AtomicBool::new(false),
        }
    }
}

static REGS: [FdRegs; MAX_FDS] = [const { FdRegs::new() }; MAX_FDS];

/// Per epoll fd, the highest fd number ever registered in it (-1: none), so that closing it clears
/// its registrations from that many entries instead of all MAX_FDS.
static EPFD_HIGHEST: [AtomicI32; MAX_FDS] = [const { AtomicI32::new(-1) }; MAX_FDS];

/// epoll fds created through our hooks (bitmap by fd number).
static KNOWN_EPFD: [AtomicU64; MAX_FDS / 64] = [const { AtomicU64::new(0) }; MAX_FDS / 64];

/// Epoll fds created through our hooks and still open. (Python's `selectors` creates one and closes it
/// at import, just to see whether epoll works: that must not count as using epoll.)
static LIVE_EPFDS: AtomicU32 = AtomicU32::new(0);
/// A wait on an epoll fd we never saw created (inherited across exec, dup'd): its registrations are
/// unknown for good.
static UNSEEN_EPFD: AtomicBool = AtomicBool::new(false);

/// Whether an fd with no registration we saw could be in an epoll set.
fn uses_epoll() -> bool {
    LIVE_EPFDS.load(Relaxed) > 0 || UNSEEN_EPFD.load(Relaxed)
}

/// fds with a stall in progress, for waiters to clamp their timeouts and end expired stalls.
const STALL_SLOTS: usize = 256;
static STALLED: [AtomicI32; STALL_SLOTS] = [const { AtomicI32::new(-1) }; STALL_SLOTS];
/// How many entries of STALLED are in use, plus one in a process with connections through a
/// Toxiproxy proxy (`proxy::mark`: its waits look at the proxies); 0 keeps every wait on its fast
/// path.
pub static ACTIVE: AtomicU32 = AtomicU32::new(0);

pub fn dir_events(dir: Dir) -> u32 {
    match dir {
        Dir::Rx => (libc::EPOLLIN | libc::EPOLLRDNORM) as u32,
        Dir::Tx => (libc::EPOLLOUT | libc::EPOLLWRNORM) as u32,
    }
}

fn all_dirs(hidden_dirs: u32) -> u32 {
    let mut bits = 0;
    if hidden_dirs & 1 != 0 {
        bits |= dir_events(Dir::Rx);
    }
    if hidden_dirs & 2 != 0 {
        bits |= dir_events(Dir::Tx);
    }
    bits
}

fn dir_bit(dir: Dir) -> u32 {
    1 << dir as u32
}

fn regs(fd: c_int) -> Option<&'static FdRegs> {
    REGS.get(usize::try_from(fd).ok()?)
}

fn epfd_bit(epfd: c_int) -> Option<(&'static AtomicU64, u64)> {
    let i = usize::try_from(epfd).ok()?;
    Some((KNOWN_EPFD.get(i / 64)?, 1u64 << (i % 64)))
}

// ---- wake fd ----------------------------------------------------------------------------------

/// Creates the wake eventfd the first time a stall needs it, and puts it into every epoll set the
/// program made so far (later ones get it in `on_epoll_created`). Until then the program has no fd
/// of ours. Either side of a race adds it: `on_epoll_created` publishes the epfd before it reads
/// WAKE, this publishes WAKE before it reads the epfds (both SeqCst); a double add is EEXIST.
fn ensure_wake_fd() -> c_int {
    let fd = ownfd::WAKE.load(SeqCst);
    if fd >= 0 {
        return fd;
    }
    // SAFETY: eventfd2 takes two integers and has no memory arguments.
    let made = unsafe {
        sys::syscall!(
            libc::SYS_eventfd2,
            0,
            libc::EFD_CLOEXEC | libc::EFD_NONBLOCK
        )
    } as c_int;
    if made < 0 {
        return -1;
    }
    let high = ownfd::move_high(made);
    if let Err(theirs) = ownfd::WAKE.compare_exchange(-1, high, SeqCst, SeqCst) {
        sys::close(high);
        return theirs;
    }
    let events = (libc::EPOLLIN | libc::EPOLLET) as u32;
    for (w, word) in KNOWN_EPFD.iter().enumerate() {
        let mut bits = word.load(SeqCst);
        while bits != 0 {
            let epfd = (w * 64 + bits.trailing_zeros() as usize) as c_int;
            bits &= bits - 1;
            ctl(epfd, libc::EPOLL_CTL_ADD, high, events, WAKE_DATA);
        }
    }
    high
}

/// Wakes every epoll waiter of this process so it re-evaluates stalls and timeouts.
fn wake_waiters() {
    let fd = ownfd::WAKE.load(Relaxed);
    if fd >= 0 {
        let one: u64 = 1;
        sys::write_all(fd, &one.to_ne_bytes());
    }
}

impl Reg {
    /// Re-applies this registration of `fd` with the `hidden` event bits masked out. The MOD also
    /// makes the kernel re-check readiness and wake waiters: it is how edges are re-armed.
    fn apply(&self, fd: c_int, hidden: u32) {
        let epfd = self.epfd.load(Relaxed);
        if epfd >= 0 {
            let events = self.events.load(Relaxed);
            ctl(
                epfd,
                libc::EPOLL_CTL_MOD,
                fd,
                events & !hidden,
                self.data.load(Relaxed),
            );
        }
    }

    fn oneshot(&self) -> bool {
        self.events.load(Relaxed) & libc::EPOLLONESHOT as u32 != 0
    }
}

fn ctl(epfd: c_int, op: c_int, fd: c_int, events: u32, data: u64) -> c_int {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ev` lives on our stack for the call; the fds are the program's, as it registered them.
    unsafe { real::epoll_ctl(epfd, op, fd, &mut ev) }
}

// ---- epoll registrations ------------------------------------------------------------------------

/// A new epoll fd: remember it and put our wake eventfd in it.
pub fn on_epoll_created(epfd: c_int) {
    if let Some((word, bit)) = epfd_bit(epfd)
        && word.fetch_or(bit, SeqCst) & bit == 0
    {
        LIVE_EPFDS.fetch_add(1, Relaxed);
    }
    let wake = ownfd::WAKE.load(SeqCst);
    if wake >= 0 {
        let events = (libc::EPOLLIN | libc::EPOLLET) as u32;
        ctl(epfd, libc::EPOLL_CTL_ADD, wake, events, WAKE_DATA);
    }
}

/// A wait on an epoll fd we did not see created (inherited across exec, or made by io_uring).
pub fn note_waited(epfd: c_int) {
    if let Some((word, bit)) = epfd_bit(epfd)
        && word.load(Relaxed) & bit == 0
    {
        UNSEEN_EPFD.store(true, Relaxed);
    }
}

/// The events the real epoll_ctl should get for `fd`: the program's, minus stalled directions.
pub fn events_to_apply(fd: c_int, events: u32) -> u32 {
    match fdtable::slot(fd) {
        Some(slot) => events & !all_dirs(stalled_dirs(slot)),
        None => events,
    }
}

/// Records a successful epoll_ctl the program made.
pub fn on_epoll_ctl(epfd: c_int, op: c_int, fd: c_int, events: u32, data: u64) {
    let Some(fr) = regs(fd) else { return };
    let hidden = events & all_dirs(fdtable::slot(fd).map_or(0, stalled_dirs));
    match op {
        libc::EPOLL_CTL_ADD => {
            if let Some(highest) = EPFD_HIGHEST.get(epfd as usize) {
                highest.fetch_max(fd, Relaxed);
            }
            let free = fr.regs.iter().find(|r| {
                r.epfd.load(Relaxed) == epfd
                    || r.epfd.compare_exchange(-1, epfd, SeqCst, Relaxed).is_ok()
            });
            match free {
                Some(r) => {
                    r.events.store(events, Relaxed);
                    r.data.store(data, Relaxed);
                    r.hidden.store(hidden, Relaxed);
                }
                None => fr.overflow.store(true, Relaxed),
            }
        }
        libc::EPOLL_CTL_MOD => {
            if let Some(r) = fr.regs.iter().find(|r| r.epfd.load(Relaxed) == epfd) {
                r.events.store(events, Relaxed);
                r.data.store(data, Relaxed);
                r.hidden.store(hidden, Relaxed);
            }
        }
        libc::EPOLL_CTL_DEL => {
            for r in &fr.regs {
                if r.epfd.load(Relaxed) == epfd {
                    r.epfd.store(-1, Relaxed);
                }
            }
        }
        _ => {}
    }
}

/// `fd` was closed: its registrations and stalls are gone with it. An epoll fd's registrations in
/// other fds' entries are cleared too.
pub fn forget_fd(fd: c_int) {
    if let Some(slot) = fdtable::slot(fd) {
        slot.reset_at.store(0, Relaxed);
        slot.reads_ended.store(0, Relaxed);
    }
    if let Some(fr) = regs(fd) {
        for r in &fr.regs {
            r.epfd.store(-1, Relaxed);
        }
        fr.overflow.store(false, Relaxed);
    }
    if let Some(slot) = fdtable::slot(fd) {
        for dir in [Dir::Rx, Dir::Tx] {
            if slot.stall_until[dir as usize].swap(0, Relaxed) != 0 {
                unlist(fd, slot);
            }
        }
    }
    if let Some((word, bit)) = epfd_bit(fd)
        && word.fetch_and(!bit, Relaxed) & bit != 0
    {
        LIVE_EPFDS.fetch_sub(1, Relaxed);
        let highest = EPFD_HIGHEST[fd as usize].swap(-1, Relaxed);
        if let Ok(highest) = usize::try_from(highest) {
            for fr in &REGS[..=highest.min(MAX_FDS - 1)] {
                for r in &fr.regs {
                    let _ = r.epfd.compare_exchange(fd, -1, Relaxed, Relaxed);
                }
            }
        }
    }
}

/// Whether faking "not ready" on `fd` is safe: either the process does not use epoll, or every
/// epoll registration of the fd is one we saw and can re-arm.
pub fn registrations_known(fd: c_int) -> bool {
    if !uses_epoll() {
        return true;
    }
    let Some(fr) = regs(fd) else { return false };
    if fr.overflow.load(Relaxed) {
        return false;
    }
    let mut any = false;
    for r in &fr.regs {
        if r.epfd.load(Relaxed) >= 0 {
            any = true;
            if r.events.load(Relaxed) & libc::EPOLLEXCLUSIVE as u32 != 0 {
                return false;
            }
        }
    }
    any
}

/// Re-applies each registration of `fd` (minus hidden directions). MOD re-checks readiness, so an
/// edge-triggered waiter gets the event a fake short transfer or EAGAIN would otherwise have eaten.
/// One-shot registrations are left to the program's own re-arm.
pub fn rearm(fd: c_int) {
    let Some(fr) = regs(fd) else { return };
    let hidden = all_dirs(fdtable::slot(fd).map_or(0, stalled_dirs));
    for r in fr.regs.iter().filter(|r| !r.oneshot()) {
        r.apply(fd, hidden);
    }
}

// ---- stalls -------------------------------------------------------------------------------------

fn stalled_dirs(slot: &Slot) -> u32 {
    let now = sys::now_ns(libc::CLOCK_MONOTONIC);
    let mut dirs = 0;
    for dir in [Dir::Rx, Dir::Tx] {
        let until = slot.stall_until[dir as usize].load(Relaxed);
        if until != 0 && until > now {
            dirs |= dir_bit(dir);
        }
    }
    dirs
}

pub fn unlist(fd: c_int, slot: &Slot) {
    if slot.stall_until.iter().any(|u| u.load(Relaxed) != 0) || slot.reset_at.load(Relaxed) != 0 {
        return; // the other direction is still stalled, or a reset is armed
    }
    if let Some(e) = STALLED.iter().find(|e| e.load(Relaxed) == fd)
        && e.compare_exchange(fd, -1, SeqCst, Relaxed).is_ok()
    {
        ACTIVE.fetch_sub(1, SeqCst);
    }
    if slot.reads_ended.load(Relaxed) == 0 {
        slot.meta.fetch_and(!fdtable::FORCE_SLOW, Relaxed);
    }
}

/// Lists `fd` so that waiters clamp their timeouts to `at` (CLOCK_MONOTONIC) and the first wait
/// after it resets the connection (`toxic::reset_now`): an RST wakes waiters on Linux, so a
/// program parked in epoll_wait hears of a `reset_after` on time. False when the table is full.
pub fn arm_reset(fd: c_int, slot: &Slot, at: u64) -> bool {
    let listed = STALLED.iter().any(|e| e.load(Relaxed) == fd)
        || STALLED.iter().any(|e| {
            e.compare_exchange(-1, fd, SeqCst, Relaxed)
                .map(|_| ACTIVE.fetch_add(1, SeqCst))
                .is_ok()
        });
    if listed {
        slot.reset_at.store(at, Relaxed);
        slot.meta.fetch_or(fdtable::FORCE_SLOW, Relaxed);
        ensure_wake_fd();
        wake_waiters();
    }
    listed
}

/// Starts a stall of `fd` in `dir` until `until` (CLOCK_MONOTONIC ns). False when the stall table is
/// full (the caller degrades to a delay).
pub fn begin_stall(fd: c_int, slot: &Slot, dir: Dir, until: u64) -> bool {
    let listed = STALLED.iter().any(|e| e.load(Relaxed) == fd)
        || STALLED.iter().any(|e| {
            e.compare_exchange(-1, fd, SeqCst, Relaxed)
                .map(|_| ACTIVE.fetch_add(1, SeqCst))
                .is_ok()
        });
    if !listed {
        return false;
    }
    slot.stall_until[dir as usize].store(until, Relaxed);
    slot.meta.fetch_or(fdtable::FORCE_SLOW, Relaxed);
    let bits = dir_events(dir);
    if let Some(fr) = regs(fd) {
        for r in fr
            .regs
            .iter()
            .filter(|r| r.epfd.load(Relaxed) >= 0 && !r.oneshot())
        {
            let hide = r.events.load(Relaxed) & bits;
            if hide != 0 {
                r.apply(fd, r.hidden.fetch_or(hide, Relaxed) | hide);
            }
        }
    }
    ensure_wake_fd();
    wake_waiters();
    true
}

/// Ends the stall of `fd` in `dir`: restore (and so re-arm) every registration we masked.
pub fn end_stall(fd: c_int, slot: &Slot, dir: Dir) {
    if slot.stall_until[dir as usize].swap(0, Relaxed) == 0 {
        return;
    }
    let bits = dir_events(dir);
    if let Some(fr) = regs(fd) {
        for r in &fr.regs {
            let was = r.hidden.fetch_and(!bits, Relaxed);
            if was & bits != 0 {
                r.apply(fd, was & !bits);
            }
        }
    }
    unlist(fd, slot);
}

/// For a data call on `fd`: Some(()) while `dir` is stalled (the call must fail with EAGAIN); ends
/// an expired stall on the way.
pub fn still_stalled(fd: c_int, slot: &Slot, dir: Dir) -> bool {
    let until = slot.stall_until[dir as usize].load(Relaxed);
    if until == 0 {
        return false;
    }
    if sys::now_ns(libc::CLOCK_MONOTONIC) < until {
        return true;
    }
    end_stall(fd, slot, dir);
    false
}

/// The fds with a stall (or an armed reset) in progress, for waiters to end what fell due
/// (`due`).
pub fn stalled_fds() -> impl Iterator<Item = c_int> {
    STALLED
        .iter()
        .map(|e| e.load(Relaxed))
        .filter(|fd| *fd >= 0)
}

/// Which directions of `fd` are stalled right now (bit 0 rx, bit 1 tx), for poll/select masking.
pub fn stalled_now(fd: c_int) -> u32 {
    fdtable::slot(fd).map_or(0, stalled_dirs)
}

#[cfg(test)]
#[path = "readiness_tests.rs"]
mod tests;
