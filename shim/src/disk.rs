//! `[[disk]]` in the shim: the bytes in use of each disk, shared by every process of the run
//! through the control page (this process's own counters when no chaos-ctl made one), checked
//! before a file under the disk grows and brought back to what the kernel allocated after.
//! What fits is the engine's (`chaos_engine::disk`); here are the facts (fstat) and the counters.

use crate::fdtable::Slot;
use crate::sys;
use chaos_engine::disk::{MAX_DISKS, allocate_needs, write_fits};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use libc::c_int;

/// Counters for a process with no control page: used, taken by others, capacity.
static LOCAL: [[AtomicU64; 3]; MAX_DISKS] =
    [const { [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)] }; MAX_DISKS];

/// Set at init: how many disks the policy has (0: nothing here ever runs).
static COUNT: AtomicU64 = AtomicU64::new(0);

/// At init (may allocate): the policy's disks; without a page, this process counts from what
/// their files hold now.
pub fn init(disks: &[chaos_engine::disk::Disk]) {
    let page_has = crate::page::mapped().is_some_and(|p| p.disk_count() == disks.len());
    if !page_has {
        for (i, d) in disks.iter().take(MAX_DISKS).enumerate() {
            LOCAL[i][0].store(chaos_engine::disk::bytes_in_use(&d.path), Relaxed);
            LOCAL[i][2].store(d.capacity, Relaxed);
        }
    }
    COUNT.store(disks.len().min(MAX_DISKS) as u64, Relaxed);
}

pub fn any() -> bool {
    COUNT.load(Relaxed) != 0
}

/// Disk `i`'s (used, taken by others) words and its capacity.
fn counters(i: usize) -> (&'static AtomicU64, &'static AtomicU64, u64) {
    match crate::page::mapped() {
        Some(p) if p.disk_count() > i => {
            let (used, others) = p.disk_words(i);
            (used, others, p.disk_capacity(i))
        }
        _ => (&LOCAL[i][0], &LOCAL[i][1], LOCAL[i][2].load(Relaxed)),
    }
}

/// The disk a path is on, if a `[[disk]]` glob matches it.
pub fn of_path(rt: &crate::runtime::Runtime, path: &[u8]) -> Option<usize> {
    rt.policy
        .disks
        .iter()
        .take(MAX_DISKS)
        .position(|d| d.path.matches(path))
}

/// The disk an fd's file is on (cached in its slot by classification).
pub fn of_slot(slot: &Slot) -> Option<usize> {
    match slot.disk.load(Relaxed) {
        0 => None,
        n => Some(n as usize - 1),
    }
}

fn free(i: usize) -> u64 {
    let (used, others, capacity) = counters(i);
    capacity.saturating_sub(used.load(Relaxed).saturating_add(others.load(Relaxed)))
}

/// Bytes the kernel allocated to the open file, and its size.
fn allocated(fd: c_int) -> Option<(u64, u64)> {
    let st = sys::fstat(fd)?;
    Some((st.st_blocks as u64 * 512, st.st_size as u64))
}

/// Adds what the kernel allocated since `before` (negative when the file shrank).
fn settle(i: usize, before: u64, after: u64) {
    let (used, _, _) = counters(i);
    if after >= before {
        used.fetch_add(after - before, Relaxed);
    } else {
        let freed = before - after;
        let _ = used.fetch_update(Relaxed, Relaxed, |u| Some(u.saturating_sub(freed)));
    }
}

/// Counts what a file brought onto the disk holds (a rename from elsewhere).
pub fn add(i: usize, bytes: u64) {
    settle(i, 0, bytes);
}

/// Frees what a file that goes away held (unlink of its last name, truncation by open).
pub fn release(i: usize, bytes: u64) {
    settle(i, bytes, 0);
}

/// Where a write to `fd` of `len` bytes starts: the end for O_APPEND, else its offset (`pos` for
/// pwrite and its kin).
pub fn write_offset(fd: c_int, pos: Option<u64>, size: u64) -> u64 {
    if let Some(p) = pos {
        return p;
    }
    if sys::fcntl_getfl(fd) & libc::O_APPEND != 0 {
        return size;
    }
    sys::lseek_cur(fd).unwrap_or(size)
}

/// A write to a file on disk `i`: how much of `len` fits (0: ENOSPC), and the allocation before,
/// for `after_write`.
pub fn before_write(i: usize, fd: c_int, pos: Option<u64>, len: u64) -> (u64, u64) {
    let Some((blocks, size)) = allocated(fd) else {
        return (len, 0);
    };
    let offset = write_offset(fd, pos, size);
    (write_fits(offset, len, size, free(i)), blocks)
}

/// Brings disk `i`'s bytes in use to what the kernel now holds for `fd`.
pub fn after_change(i: usize, fd: c_int, before: u64) {
    if let Some((after, _)) = allocated(fd) {
        settle(i, before, after);
    }
}

/// Before fallocate/posix_fallocate of `[offset, offset + len)`: whether it fits, and the
/// allocation before.
pub fn before_allocate(i: usize, fd: c_int, offset: u64, len: u64) -> (bool, u64) {
    match allocated(fd) {
        Some((blocks, size)) => (allocate_needs(offset, len, size) <= free(i), blocks),
        None => (true, 0),
    }
}

/// The allocation before a call that can only shrink or keep a file's blocks (ftruncate).
pub fn before_resize(fd: c_int) -> u64 {
    allocated(fd).map_or(0, |(b, _)| b)
}

/// What a path's file holds, if it is a regular file with one name (an unlink or a rename over
/// it frees that).
pub fn held_by_path(path: &[u8]) -> u64 {
    let mut buf = [0u8; 4097];
    if path.len() >= buf.len() {
        return 0;
    }
    buf[..path.len()].copy_from_slice(path);
    match sys::lstat(&buf) {
        Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_nlink == 1 => {
            st.st_blocks as u64 * 512
        }
        _ => 0,
    }
}
