//! The exported libc symbols. Each hook takes the fast path (two loads and a branch) unless a rule
//! can apply to its fd, and keeps the real call outside every guard and `catch_unwind`.

mod conn;
mod creds;
mod data;
pub(crate) mod disk_io;
mod exec;
mod fdless;
mod fdlife;
mod files;
mod reap;
mod resolve;
pub(crate) mod transfer;
mod wait;

use crate::fdtable::{self, Meta, Role, Slot};
use crate::runtime::{self, Runtime};
use chaos_engine::op::Op;
use core::sync::atomic::Ordering::Relaxed;
use libc::c_int;

/// The fast path: Some only when the runtime is up and a rule for `op` may cover `fd` (or the fd has
/// not been classified yet).
#[inline(always)]
pub(crate) fn gate(op: Op, fd: c_int) -> Option<(&'static Runtime, &'static Slot)> {
    let rt = runtime::get()?;
    let slot = fdtable::slot(fd)?;
    let meta = Meta(slot.meta.load(Relaxed));
    // op_masks carry FORCE_SLOW too, so a stalled fd never takes the fast path.
    if meta.valid() && meta.0 & rt.op_masks[op as usize] == 0 {
        return None;
    }
    Some((rt, slot))
}

/// The slot's meta, classifying the fd first if needed. Shim logic only (inside `guarded`).
pub(crate) fn current_meta(rt: &Runtime, fd: c_int, slot: &Slot) -> Meta {
    let meta = Meta(slot.meta.load(Relaxed));
    if meta.valid() {
        meta
    } else {
        crate::classify::classify(&rt.policy, fd, Role::Other)
    }
}

/// A hook produced a new fd (socket, accept, pipe, dup...): forget everything the number meant
/// before, including stalls and epoll registrations a close we never saw (glibc-internal) left
/// behind. Sockets we know the role of are classified now; the rest lazily on first use.
pub(crate) fn new_fd(fd: c_int, role: Option<Role>) {
    if fd < 0 || !runtime::in_own_process() {
        return;
    }
    crate::readiness::forget_fd(fd);
    if let Some(slot) = fdtable::slot(fd) {
        slot.qstate.store(0, Relaxed);
        slot.sndbuf.store(0, Relaxed);
        slot.quirk_draws.store(0, Relaxed);
        slot.wb_err.store(0, Relaxed);
        slot.proxy.store(0, Relaxed);
    }
    reclassify(fd, role);
}

/// The same fd changed what it is (a socket got connected): drop the cached classification but keep
/// its epoll registrations.
pub(crate) fn reclassify(fd: c_int, role: Option<Role>) {
    if fd < 0 || !runtime::in_own_process() {
        return;
    }
    fdtable::invalidate(fd);
    if let (Some(role), Some(rt)) = (role, runtime::get())
        && (!rt.policy.rules.is_empty()
            || rt.injecting
            || crate::page::partitionable()
            || crate::disk::any()
            || crate::durable::active()
            // Under a run (its page), connections are keyed as their connect made them
            // (`tcp-out#N`) even without rules: a Toxiproxy proxy's toxics may act on them, and a
            // frozen policy replaying those (with injections, so classified here) must find
            // the same ordinals.
            || crate::page::mapped().is_some())
    {
        crate::guard::guarded(|| crate::classify::classify(&rt.policy, fd, role));
    }
}
