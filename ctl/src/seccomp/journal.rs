//! `[durability]` under seccomp: the journal the shim writes (`shim/src/durable.rs`), written by
//! the supervisor for the processes it holds, in the same files (`DIR/PID.journal`,
//! `DIR/PID.blob`, `DIR/PID.stash-SEQ`, PID the target's), in the same line format
//! (`chaos_engine::durability::format_record`) and with sequence numbers from the same word of
//! the control page, so the undo after a crash (`crate::durability`) is the same code whichever
//! backend wrote it. The old bytes are read through our copy of the target's fd (the same open
//! file description), or a read-only open of ours when that copy is write-only.

use chaos_engine::durability::{Detail, format_record};
use chaos_engine::event::LineBuf;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

pub struct Journal {
    /// `RUN/durability/NAME`: the directory the shims of this process name journal into.
    dir: PathBuf,
    glob: chaos_engine::glob::Glob,
    page: std::sync::Arc<crate::control::page::Mapped>,
}

/// A file kept aside (a hard link in the journal directory) before an unlink or a rename over
/// it, so that an undo can bring it back; its sequence number names it.
pub struct Stash {
    seq: u64,
    path: PathBuf,
}

impl Journal {
    /// The journal of a target run under `policy` whose control page is at `control` (`name`:
    /// its process name in a system). None without `[durability]`, or when the page is gone
    /// (the run is over: nothing will undo anything). As the shim, `[durability]` without a
    /// page named is refused: nothing would undo the journal, so the run would not have the
    /// crashes it asked for.
    pub fn new(
        policy: &chaos_engine::policy::Policy,
        control: Option<&std::path::Path>,
        page: Option<&std::sync::Arc<crate::control::page::Mapped>>,
        name: Option<&str>,
    ) -> Result<Option<Journal>, String> {
        let Some(durability) = &policy.durability else {
            return Ok(None);
        };
        let Some(control) = control else {
            return Err(
                "[durability] needs `chaos-ctl run`, which undoes a crashed process's \
                        unsynced changes (no CHAOS_CONTROL in the environment)"
                    .into(),
            );
        };
        let Some(page) = page else {
            return Ok(None);
        };
        let run = control.parent().ok_or("CHAOS_CONTROL has no directory")?;
        let dir = run
            .join("durability")
            .join(chaos_engine::durability::dir_name(name));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        Ok(Some(Journal {
            dir,
            glob: durability.path.clone(),
            page: page.clone(),
        }))
    }

    /// Whether `[durability]` covers the file at `path` (absolute).
    pub fn covers(&self, path: &[u8]) -> bool {
        self.glob.matches(path)
    }

    fn file(&self, pid: i32, suffix: &str) -> PathBuf {
        self.dir.join(format!("{pid}{suffix}"))
    }

    /// The next sequence number, shared with every shim of the run.
    fn next_seq(&self) -> u64 {
        self.page
            .page()
            .durable_seq_word()
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    fn record(&self, pid: i32, seq: u64, op: &str, path: &[u8], ino: u64, detail: Detail<'_>) {
        let mut line = LineBuf::new();
        let bytes = format_record(&mut line, seq, op, path, ino, detail);
        // One write to an O_APPEND file, as the shim appends: a line is whole or absent.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(self.file(pid, ".journal"))
        {
            let _ = f.write_all(bytes);
        }
    }

    /// Copies `[off, off + len)` of `fd` (ours) into process `pid`'s blob; where it starts there.
    fn save(&self, pid: i32, fd: RawFd, off: u64, len: u64) -> Option<u64> {
        let readable;
        let from = if super::sys::getfl(fd) & libc::O_ACCMODE == libc::O_WRONLY {
            // The old bytes must not depend on the program's open mode.
            readable = std::fs::File::open(format!("/proc/self/fd/{fd}")).ok()?;
            readable.as_raw_fd()
        } else {
            fd
        };
        let blob = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.file(pid, ".blob"))
            .ok()?;
        let at = blob.metadata().ok()?.len();
        let mut chunk = vec![0u8; len.min(1 << 20) as usize];
        let mut done = 0;
        while done < len {
            let want = (len - done).min(chunk.len() as u64) as usize;
            // SAFETY: our buffer, of at least `want` bytes, and our own fd.
            let n = unsafe {
                libc::pread(
                    from,
                    chunk.as_mut_ptr() as *mut libc::c_void,
                    want,
                    (off + done) as libc::off_t,
                )
            };
            if n <= 0 {
                break;
            }
            blob.write_all_at(&chunk[..n as usize], at + done).ok()?;
            done += n as u64;
        }
        Some(at)
    }

    /// Before a write of `len` bytes to process `pid`'s file (`fd`, our copy, at `path`) at `pos`
    /// (None: its offset, or the end for O_APPEND): the old bytes it overwrites and the old
    /// size. The record's sequence number, to void it if the write then fails; None when
    /// nothing is journaled: O_SYNC/O_DSYNC writes are durable when they return, O_DIRECT
    /// ones bypass the page cache a crash empties (as the shim, `shim/src/durable.rs`).
    pub fn before_write(
        &self,
        pid: i32,
        fd: RawFd,
        path: &[u8],
        pos: Option<u64>,
        len: u64,
    ) -> Option<u64> {
        let flags = super::sys::getfl(fd);
        if flags & (libc::O_DSYNC | libc::O_DIRECT) != 0 {
            return None;
        }
        let st = super::sys::fstat(fd)?;
        let size = st.st_size.max(0) as u64;
        let off = if flags & libc::O_APPEND != 0 {
            size
        } else {
            pos.unwrap_or_else(|| {
                // SAFETY: no memory arguments; SEEK_CUR by 0 only reads the shared offset.
                unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) }.max(0) as u64
            })
        };
        let saved = off.saturating_add(len).min(size).saturating_sub(off);
        let blob = if saved > 0 {
            self.save(pid, fd, off, saved)
        } else {
            Some(0)
        };
        let seq = self.next_seq();
        let detail = Detail::Write {
            old_size: size,
            off,
            len: saved,
            wrote: len,
            blob: blob.unwrap_or(0),
        };
        self.record(pid, seq, "write", path, st.st_ino, detail);
        Some(seq)
    }

    /// Before a change of size (ftruncate to `new_len`, or an allocation that may grow the
    /// file: None): what a shrink cuts away, and the old size.
    pub fn before_resize(&self, pid: i32, fd: RawFd, path: &[u8], new_len: Option<u64>) -> u64 {
        let size = super::sys::fstat(fd).map_or(0, |st| st.st_size.max(0) as u64);
        let ino = super::sys::fstat(fd).map_or(0, |st| st.st_ino);
        let off = new_len.unwrap_or(size).min(size);
        let cut = size - off;
        let blob = if cut > 0 {
            self.save(pid, fd, off, cut)
        } else {
            Some(0)
        };
        let seq = self.next_seq();
        let detail = Detail::Truncate {
            old_size: size,
            off,
            len: cut,
            blob: blob.unwrap_or(0),
        };
        self.record(pid, seq, "truncate", path, ino, detail);
        seq
    }

    /// The change journaled at `seq` was never made (its call failed).
    pub fn void(&self, pid: i32, seq: u64) {
        self.record(pid, seq, "void", b"", 0, Detail::Plain);
    }

    /// After an fsync or fdatasync of `fd` (ours) that succeeded (`ok`) or failed: a covered
    /// file's changes so far are durable or lost; a directory's entries are durable.
    pub fn after_sync(&self, pid: i32, fd: RawFd, ok: bool) {
        let Some(st) = super::sys::fstat(fd) else {
            return;
        };
        let Ok(path) = std::fs::read_link(format!("/proc/self/fd/{fd}")) else {
            return;
        };
        let path = path.into_os_string().into_encoded_bytes();
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR if ok => {
                let seq = self.next_seq();
                self.record(pid, seq, "dirsync", &path, st.st_ino, Detail::Plain);
            }
            libc::S_IFREG if self.covers(&path) => {
                let op = if ok { "sync" } else { "syncfail" };
                let seq = self.next_seq();
                self.record(pid, seq, op, &path, st.st_ino, Detail::Plain);
            }
            _ => {}
        }
    }

    /// After a successful syncfs or sync: everything is durable.
    pub fn after_syncfs(&self, pid: i32) {
        let seq = self.next_seq();
        self.record(pid, seq, "syncfs", b"", 0, Detail::Plain);
    }

    /// An open with O_CREAT made the file at `path` (absolute, covered), inode `ino`.
    pub fn created(&self, pid: i32, path: &[u8], ino: u64) {
        let seq = self.next_seq();
        self.record(pid, seq, "create", path, ino, Detail::Plain);
    }

    /// Before an open with O_TRUNC of the existing covered file at `path`: its whole content and
    /// size, read through a read-only open of ours.
    pub fn before_truncating_open(&self, pid: i32, path: &[u8]) {
        let Ok(file) = std::fs::File::open(as_path(path)) else {
            return;
        };
        let Ok(meta) = file.metadata() else { return };
        if !meta.is_file() {
            return;
        }
        let size = meta.len();
        let blob = self.save(pid, file.as_raw_fd(), 0, size);
        let seq = self.next_seq();
        let detail = Detail::Truncate {
            old_size: size,
            off: 0,
            len: size,
            blob: blob.unwrap_or(0),
        };
        self.record(pid, seq, "truncate", path, meta.ino(), detail);
    }

    /// Keeps the regular file at `path` (absolute) aside, for process `pid`'s unlink or rename
    /// over it: a hard link in the journal directory.
    pub fn stash(&self, pid: i32, path: &[u8]) -> Option<Stash> {
        let path = as_path(path);
        if !std::fs::symlink_metadata(&path).ok()?.is_file() {
            return None;
        }
        let seq = self.next_seq();
        let kept = self.file(pid, &format!(".stash-{seq}"));
        std::fs::hard_link(&path, &kept).ok()?;
        Some(Stash { seq, path: kept })
    }

    /// The call the stash was for failed: nothing to bring back.
    pub fn drop_stash(&self, stash: Option<Stash>) {
        if let Some(s) = stash {
            let _ = std::fs::remove_file(s.path);
        }
    }

    /// Process `pid`'s unlink of `path` succeeded.
    pub fn unlinked(&self, pid: i32, path: &[u8], stash: Option<Stash>) {
        let Some(s) = stash else { return };
        let kept = s.path.into_os_string().into_encoded_bytes();
        self.record(
            pid,
            s.seq,
            "unlink",
            path,
            0,
            Detail::Unlink { stash: &kept },
        );
    }

    /// Process `pid`'s rename of `from` to `to` succeeded; `replaced` kept the file it replaced.
    /// The inode is the renamed file's (on ext4 a rename over a file flushes its data).
    pub fn renamed(&self, pid: i32, from: &[u8], to: &[u8], replaced: Option<Stash>) {
        let ino = std::fs::symlink_metadata(as_path(to)).map_or(0, |m| m.ino());
        let kept = replaced.map(|s| s.path.into_os_string().into_encoded_bytes());
        let seq = self.next_seq();
        let detail = Detail::Rename {
            to,
            stash: kept.as_deref(),
        };
        self.record(pid, seq, "rename", from, ino, detail);
    }
}

fn as_path(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_without_a_control_page_is_refused_as_the_shim_refuses_it() {
        let policy = chaos_engine::parse::parse_policy("[durability]\npath = \"/d/*\"\n", "t")
            .expect("the test policy parses");
        let refused = Journal::new(&policy, None, None, None).err();
        assert!(refused.is_some_and(|e| e.contains("chaos-ctl run")));
        let none = chaos_engine::parse::parse_policy("seed = 1\n", "t").unwrap();
        assert!(Journal::new(&none, None, None, None).unwrap().is_none());
    }
}
