//! The calls that change what a file under a `[[disk]]` or `[durability]` holds, around their real
//! call. On a disk: a write that needs more space than is free is cut where the free space ends,
//! and with none left fails ENOSPC (kernel-facts F1); fallocate that does not fit fails ENOSPC;
//! after each, the disk's bytes in use follow what the kernel allocated; unlink, rename and
//! truncating opens free what the file held. Each refusal or cut is logged as a `disk` event.
//! Under `[durability]` the change is journaled first (`crate::durable`).

use super::current_meta;
use crate::disk;
use crate::durable;
use crate::fdtable::{self, DISK, DURABLE, Meta, Slot};
use crate::guard::guarded;
use crate::log;
use crate::plan::{Call, Payload};
use crate::runtime::{self, Runtime};
use crate::sys;
use core::sync::atomic::Ordering::Relaxed;
use libc::c_int;

/// `fd`'s meta, classifying the fd first if it is new.
fn meta_of(rt: &Runtime, fd: c_int, slot: &Slot) -> Meta {
    let meta = Meta(slot.meta.load(Relaxed));
    if meta.valid() {
        return meta;
    }
    guarded(|| current_meta(rt, fd, slot)).unwrap_or(meta)
}

/// The disk a file with this meta is on.
fn disk_of(meta: Meta, slot: &Slot) -> Option<usize> {
    if meta.0 & DISK == 0 {
        return None;
    }
    disk::of_slot(slot)
}

/// A write to a file on a disk: `go(rt, slot, call, limit)` makes it (the rules' path) with at
/// most `limit` bytes. Out of line: the data hooks' common path stays small.
#[cold]
#[inline(never)]
pub(crate) fn write(
    rt: &'static Runtime,
    slot: &'static Slot,
    call: Call,
    go: impl FnOnce(&'static Runtime, &'static Slot, Call, usize) -> isize,
) -> isize {
    let meta = meta_of(rt, call.fd, slot);
    let pos = match call.payload {
        Payload::At(offset) => Some(offset),
        _ => None,
    };
    let asked = call.requested as u64;
    if meta.0 & DURABLE == 0 {
        return write_counted(rt, slot, call, meta, pos, asked, go);
    }
    guarded(|| durable::before_write(call.fd, pos, asked));
    let r = write_counted(rt, slot, call, meta, pos, asked, go);
    // A write that wrote nothing changed nothing a crash could undo.
    let e = sys::errno();
    guarded(|| durable::landed(r > 0));
    sys::set_errno(e);
    r
}

/// The write, within the disk's space if the file is on one.
fn write_counted(
    rt: &'static Runtime,
    slot: &'static Slot,
    call: Call,
    meta: Meta,
    pos: Option<u64>,
    asked: u64,
    go: impl FnOnce(&'static Runtime, &'static Slot, Call, usize) -> isize,
) -> isize {
    let Some(i) = disk_of(meta, slot) else {
        return go(rt, slot, call, usize::MAX);
    };
    let (fits, before) =
        guarded(|| disk::before_write(i, call.fd, pos, asked)).unwrap_or((asked, 0));
    // A disk's refusal is an effect like any fault: where its line cannot be written the write
    // goes through whole, and the disk holds more than its capacity (an overrun the summary
    // explains) rather than an ENOSPC nobody can see.
    let fits = if fits < asked && !guarded(log::writable).unwrap_or(true) {
        asked
    } else {
        fits
    };
    if fits == 0 && asked > 0 {
        guarded(|| log::write_disk(rt, i, call.op.name(), call.fd, "full", asked, -1));
        sys::set_errno(libc::ENOSPC);
        return -1;
    }
    let limit = fits as usize;
    let r = go(
        rt,
        slot,
        Call {
            requested: limit.min(call.requested),
            ..call
        },
        limit,
    );
    let e = sys::errno();
    guarded(|| disk::after_change(i, call.fd, before));
    if fits < asked {
        guarded(|| log::write_disk(rt, i, call.op.name(), call.fd, "short", asked, r as i64));
    }
    sys::set_errno(e);
    r
}

/// ftruncate, fallocate, posix_fallocate on a file on a disk or under `[durability]`: `need` is
/// the range an allocation asks for (None: a truncation, which never needs space: growing one
/// makes a hole, F2), `truncate_to` a truncation's length. `call()` returns 0 or -1 with errno.
pub(crate) fn resize(
    op: &str,
    fd: c_int,
    need: Option<(u64, u64)>,
    truncate_to: Option<u64>,
    call: impl FnOnce() -> c_int,
) -> c_int {
    let (Some(rt), Some(slot)) = (runtime::get(), fdtable::slot(fd)) else {
        return call();
    };
    if !(disk::any() || durable::active()) || !runtime::in_own_process() {
        return call();
    }
    let meta = meta_of(rt, fd, slot);
    if meta.0 & DURABLE == 0 {
        return resize_counted(rt, op, fd, slot, meta, need, call);
    }
    guarded(|| durable::before_resize(fd, truncate_to));
    let r = resize_counted(rt, op, fd, slot, meta, need, call);
    let e = sys::errno();
    guarded(|| durable::landed(r == 0));
    sys::set_errno(e);
    r
}

/// The resize, within the disk's space if the file is on one.
fn resize_counted(
    rt: &'static Runtime,
    op: &str,
    fd: c_int,
    slot: &'static Slot,
    meta: Meta,
    need: Option<(u64, u64)>,
    call: impl FnOnce() -> c_int,
) -> c_int {
    let Some(i) = disk_of(meta, slot) else {
        return call();
    };
    let before = match need {
        Some((offset, len)) => {
            let (fits, before) =
                guarded(|| disk::before_allocate(i, fd, offset, len)).unwrap_or((true, 0));
            if !fits && guarded(log::writable).unwrap_or(true) {
                guarded(|| log::write_disk(rt, i, op, fd, "full", len, -1));
                sys::set_errno(libc::ENOSPC);
                return -1;
            }
            before
        }
        None => guarded(|| disk::before_resize(fd)).unwrap_or(0),
    };
    let r = call();
    let e = sys::errno();
    guarded(|| disk::after_change(i, fd, before));
    sys::set_errno(e);
    r
}

/// What a path's file holds before a call that may free it, on the disk it is on.
pub(crate) struct Held {
    disk: usize,
    bytes: u64,
}

impl Held {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// Before unlink, a rename over a file, or an open with O_TRUNC of `path` (absolute).
pub(crate) fn held(path: Option<&[u8]>) -> Option<Held> {
    if !disk::any() || !runtime::in_own_process() {
        return None;
    }
    let rt = runtime::get()?;
    let path = path?;
    let disk = disk::of_path(rt, path)?;
    let bytes = guarded(|| disk::held_by_path(path))?;
    Some(Held { disk, bytes })
}

/// The call that freed it succeeded.
pub(crate) fn freed(held: Option<Held>) {
    if let Some(h) = held {
        disk::release(h.disk, h.bytes);
    }
}

/// A rename moved a file from `old`'s disk to `new`'s (either may be none).
pub(crate) fn moved(old: Option<&[u8]>, new: Option<&[u8]>, bytes: u64) {
    let Some(rt) = runtime::get() else { return };
    let from = old.and_then(|p| disk::of_path(rt, p));
    let to = new.and_then(|p| disk::of_path(rt, p));
    if from != to {
        if let Some(d) = from {
            disk::release(d, bytes);
        }
        if let Some(d) = to {
            disk::add(d, bytes);
        }
    }
}
