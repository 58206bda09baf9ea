//! `[[disk]]` under seccomp, as the shim counts it (`shim/src/disk.rs`): each disk's bytes in
//! use, shared with every process of the run through the control page (counted here when there
//! is none), checked before a file on the disk grows and brought back to what the kernel
//! allocated after. What fits is the engine's (`chaos_engine::disk`); here are the facts, taken
//! on our copy of the fd.
//!
//! A write or resize of a file on a disk is made by the supervisor on its copy, so that the
//! allocation after it is known. What an unlink, a rename over a file or a truncating open
//! frees is known only once the call has run, which the supervisor does not see: it is settled
//! at the next call on a disk (`settle`), when the name no longer holds that file.

use crate::control::page::Mapped;
use chaos_engine::disk::{MAX_DISKS, allocate_needs, bytes_in_use, write_fits};
use chaos_engine::policy::Policy;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

/// A change to a name whose effect on a disk is known once it has run.
struct Pending {
    /// The name, and the file it named before the call.
    path: std::path::PathBuf,
    ino: u64,
    bytes: u64,
    what: Change,
}

enum Change {
    /// Unlinked, or renamed over: `disk` gets its bytes back once the name holds another file
    /// or none.
    Gone { disk: usize },
    /// Renamed to `path` from a name on disk `from`: its bytes move once `path` holds it.
    Moved {
        from: Option<usize>,
        to: Option<usize>,
    },
    /// Opened with O_TRUNC: `disk` gets back what it held if it holds less.
    Truncated { disk: usize },
}

pub struct Disks {
    /// The run's page, when it holds the policy's disks.
    page: Option<Arc<Mapped>>,
    /// (used, capacity) per disk, when there is no page.
    local: Vec<(u64, u64)>,
    globs: Vec<chaos_engine::glob::Glob>,
    pub names: Vec<String>,
    pending: Vec<Pending>,
}

/// Bytes the kernel allocated to an open file, and its size.
pub fn allocated(fd: i32) -> Option<(u64, u64)> {
    let st = super::sys::fstat(fd)?;
    Some((st.st_blocks as u64 * 512, st.st_size.max(0) as u64))
}

impl Disks {
    pub fn new(policy: &Policy, page: Option<Arc<Mapped>>) -> Disks {
        let disks = &policy.disks[..policy.disks.len().min(MAX_DISKS)];
        let page = page.filter(|p| p.page().disk_count() == disks.len());
        let local = if page.is_some() {
            Vec::new()
        } else {
            disks
                .iter()
                .map(|d| (bytes_in_use(&d.path), d.capacity))
                .collect()
        };
        Disks {
            page,
            local,
            globs: disks.iter().map(|d| d.path.clone()).collect(),
            names: disks.iter().map(|d| d.name.clone()).collect(),
            pending: Vec::new(),
        }
    }

    pub fn any(&self) -> bool {
        !self.globs.is_empty()
    }

    /// The disk a path is on, if a `[[disk]]` glob matches it.
    pub fn of_path(&self, path: &[u8]) -> Option<usize> {
        self.globs.iter().position(|g| g.matches(path))
    }

    fn free(&self, i: usize) -> u64 {
        match &self.page {
            Some(p) => {
                let page = p.page();
                let (used, others) = page.disk_words(i);
                let taken = used
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .saturating_add(others.load(std::sync::atomic::Ordering::Relaxed));
                page.disk_capacity(i).saturating_sub(taken)
            }
            None => self.local.get(i).map_or(0, |(u, c)| c.saturating_sub(*u)),
        }
    }

    /// Adds what the kernel allocated since `before` (takes it back when the file shrank).
    fn settle_bytes(&mut self, i: usize, before: u64, after: u64) {
        match &self.page {
            Some(p) => {
                let page = p.page();
                let (used, _) = page.disk_words(i);
                let relaxed = std::sync::atomic::Ordering::Relaxed;
                if after >= before {
                    used.fetch_add(after - before, relaxed);
                } else {
                    let freed = before - after;
                    let _ = used.fetch_update(relaxed, relaxed, |u| Some(u.saturating_sub(freed)));
                }
            }
            None => {
                if let Some((used, _)) = self.local.get_mut(i) {
                    *used = (*used + after).saturating_sub(before);
                }
            }
        }
    }

    /// A write of `len` bytes to `fd` (at `pos` for the positional calls) on disk `i`: how much
    /// of it fits (0: ENOSPC), and the allocation before, for `after_change`.
    pub fn before_write(&mut self, i: usize, fd: i32, pos: Option<u64>, len: u64) -> (u64, u64) {
        self.settle();
        let Some((blocks, size)) = allocated(fd) else {
            return (len, 0);
        };
        let offset = pos.unwrap_or_else(|| {
            if super::sys::getfl(fd) & libc::O_APPEND != 0 {
                size
            } else {
                // SAFETY: no memory arguments; SEEK_CUR by 0 only reads the offset.
                let at = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
                if at < 0 { size } else { at as u64 }
            }
        });
        (write_fits(offset, len, size, self.free(i)), blocks)
    }

    /// A fallocate of `[offset, offset + len)` on disk `i`: whether it fits, and the allocation
    /// before.
    pub fn before_allocate(&mut self, i: usize, fd: i32, offset: u64, len: u64) -> (bool, u64) {
        self.settle();
        match allocated(fd) {
            Some((blocks, size)) => (allocate_needs(offset, len, size) <= self.free(i), blocks),
            None => (true, 0),
        }
    }

    /// Brings disk `i`'s bytes in use to what the kernel now holds for `fd`.
    pub fn after_change(&mut self, i: usize, fd: i32, before: u64) {
        if let Some((after, _)) = allocated(fd) {
            self.settle_bytes(i, before, after);
        }
    }

    /// What a regular file with one name holds (an unlink or a rename over it frees that).
    fn held(path: &std::path::Path) -> Option<(u64, u64)> {
        let m = path.symlink_metadata().ok()?;
        (m.is_file() && m.nlink() == 1).then(|| (m.ino(), m.blocks() * 512))
    }

    fn watch(&mut self, path: &[u8], what: impl FnOnce(Option<usize>) -> Option<Change>) {
        let path = to_path(path);
        let Some((ino, bytes)) = Disks::held(&path) else {
            return;
        };
        if self.pending.iter().any(|p| p.ino == ino && p.path == path) {
            return;
        }
        if let Some(what) = what(self.of_path(path.as_os_str().as_encoded_bytes())) {
            self.pending.push(Pending {
                path,
                ino,
                bytes,
                what,
            });
        }
    }

    /// Before an unlink of `path` (absolute).
    pub fn unlinking(&mut self, path: &[u8]) {
        self.settle();
        self.watch(path, |d| Some(Change::Gone { disk: d? }));
    }

    /// Before a rename of `old` to `new` (absolute): what `new` held is freed, and `old`'s file
    /// moves between disks.
    pub fn renaming(&mut self, old: &[u8], new: &[u8]) {
        self.settle();
        self.watch(new, |d| Some(Change::Gone { disk: d? }));
        let to = self.of_path(new);
        let path = to_path(new);
        let from = self.of_path(old);
        if from == to {
            return;
        }
        let old_path = to_path(old);
        if let Some((ino, bytes)) = Disks::held(&old_path) {
            self.pending.push(Pending {
                path,
                ino,
                bytes,
                what: Change::Moved { from, to },
            });
        }
    }

    /// Before an open of `path` (absolute) with O_TRUNC.
    pub fn truncating(&mut self, path: &[u8]) {
        self.settle();
        self.watch(path, |d| Some(Change::Truncated { disk: d? }));
    }

    /// Settles what the calls watched have done by now; the rest stays watched.
    pub fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        for p in pending {
            let now = p.path.symlink_metadata().ok();
            let same = now.as_ref().is_some_and(|m| m.ino() == p.ino);
            match p.what {
                Change::Gone { disk } if !same => self.settle_bytes(disk, p.bytes, 0),
                Change::Moved { from, to } if same => {
                    if let Some(d) = from {
                        self.settle_bytes(d, p.bytes, 0);
                    }
                    if let Some(d) = to {
                        self.settle_bytes(d, 0, p.bytes);
                    }
                }
                // Looked at once, at the next call on a disk: an open that failed, or cut
                // nothing, is forgotten rather than settled against a later shrink that
                // `after_change` counts.
                Change::Truncated { disk } => {
                    let held = now.filter(|_| same).map_or(p.bytes, |m| m.blocks() * 512);
                    if held < p.bytes {
                        self.settle_bytes(disk, p.bytes, held);
                    }
                }
                _ => self.pending.push(p),
            }
        }
    }
}

fn to_path(b: &[u8]) -> std::path::PathBuf {
    std::path::PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b))
}
