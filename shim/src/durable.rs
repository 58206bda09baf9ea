//! `[durability]` in the shim: for files under the glob, a journal of what is not durable yet,
//! written before the change lands (the old bytes of a range about to be overwritten or truncated
//! away, the old size, a create, a rename, an unlink with the file kept aside) and of every sync
//! that makes changes durable. chaos-ctl reads the journals after a crash and undoes what no sync
//! covered (`chaos_engine::durability`). Journal lines go to `DIR/PID.journal`, old bytes to
//! `DIR/PID.blob`, kept files to `DIR/PID.stash-SEQ`, each through an fd opened and closed at
//! once with raw system calls, so the program never sees one of ours.

use crate::sys::{self, syscall};
use chaos_engine::durability::{Detail, format_record};
use chaos_engine::event::LineBuf;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering::Relaxed};
use libc::c_int;

/// The journal directory, NUL-terminated (leaked at init; null: no `[durability]`).
static DIR: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
static DIR_LEN: AtomicU64 = AtomicU64::new(0);
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// `crash = "process"`: a SIGKILL loses nothing (the page cache survives); only a power loss does.
static PROCESS_CRASH: AtomicBool = AtomicBool::new(false);
/// Where this process's next old bytes go in its blob.
static BLOB_END: AtomicU64 = AtomicU64::new(0);
/// The pid BLOB_END counts for (a forked child starts its own blob).
static BLOB_PID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The journal record of the change this thread is about to make, until it is made (0:
    /// none). A change that fails, or that a crash fault stops before it is made, is voided, so no
    /// undo of it is logged. Const-initialised, no destructor: plain TLS, safe in any hook.
    static IN_FLIGHT: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// The change whose record was journaled last by this thread was made (`made`), or not.
pub fn landed(made: bool) {
    let seq = IN_FLIGHT.try_with(|c| c.replace(0)).unwrap_or(0);
    if !made && seq != 0 {
        record("void", b"", 0, seq, Detail::Plain);
    }
}

fn in_flight(seq: u64) {
    let _ = IN_FLIGHT.try_with(|c| c.set(seq));
}

/// At init (may allocate): the journal directory for this process, under the run's directory
/// (the control page's), made if needed. `[durability]` without chaos-ctl is refused: nothing
/// would undo the journal, so the run would not have the crashes it asked for.
pub fn init(policy: &chaos_engine::policy::Policy, process: Option<&str>) -> Result<(), String> {
    if policy.durability.is_none() {
        return Ok(());
    }
    let Some(page) = std::env::var_os("CHAOS_CONTROL").filter(|p| !p.is_empty()) else {
        return Err(
            "chaos: [durability] needs `chaos-ctl run`, which undoes a crashed \
                    process's unsynced changes (no CHAOS_CONTROL in the environment)"
                .into(),
        );
    };
    let run = std::path::Path::new(&page)
        .parent()
        .ok_or("chaos: CHAOS_CONTROL has no directory")?;
    let dir = run
        .join("durability")
        .join(chaos_engine::durability::dir_name(process));
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("chaos: cannot make {}: {e}", dir.display()))?;
    let mut bytes = dir.into_os_string().into_encoded_bytes();
    DIR_LEN.store(bytes.len() as u64, Relaxed);
    bytes.push(0);
    DIR.store(Box::leak(bytes.into_boxed_slice()).as_mut_ptr(), Relaxed);
    PROCESS_CRASH.store(
        policy
            .durability
            .as_ref()
            .is_some_and(|d| d.crash == chaos_engine::durability::Crash::Process),
        Relaxed,
    );
    ACTIVE.store(true, Relaxed);
    Ok(())
}

/// Whether a covered process killed by SIGKILL loses what it left unsynced (`crash =
/// "power-loss"`, the default), so that its reaper must have it undone.
pub fn sigkill_loses_writes() -> bool {
    !PROCESS_CRASH.load(Relaxed)
}

#[inline(always)]
pub fn active() -> bool {
    ACTIVE.load(Relaxed)
}

pub fn covers(rt: &crate::runtime::Runtime, path: &[u8]) -> bool {
    rt.policy
        .durability
        .as_ref()
        .is_some_and(|d| d.path.matches(path))
}

/// `DIR/PID<suffix><n>` NUL-terminated into `out`; None if it does not fit.
fn file_path<'a>(out: &'a mut [u8; 4200], suffix: &[u8], n: Option<u64>) -> Option<&'a [u8]> {
    pid_file_path(out, sys::getpid() as u64, suffix, n)
}

/// `DIR/<pid><suffix><n>` NUL-terminated into `out`; None if it does not fit.
fn pid_file_path<'a>(
    out: &'a mut [u8; 4200],
    pid: u64,
    suffix: &[u8],
    n: Option<u64>,
) -> Option<&'a [u8]> {
    let dir = DIR.load(Relaxed);
    if dir.is_null() {
        return None;
    }
    let len = DIR_LEN.load(Relaxed) as usize;
    // SAFETY: DIR points at the leaked `len + 1` bytes of the directory path.
    let dir = unsafe { core::slice::from_raw_parts(dir, len) };
    let mut at = 0;
    let mut put = |bytes: &[u8], out: &mut [u8; 4200]| -> Option<()> {
        out.get_mut(at..at + bytes.len())?.copy_from_slice(bytes);
        at += bytes.len();
        Some(())
    };
    put(dir, out)?;
    put(b"/", out)?;
    let mut digits = [0u8; 20];
    put(decimal(pid, &mut digits), out)?;
    put(suffix, out)?;
    if let Some(n) = n {
        let mut digits = [0u8; 20];
        put(decimal(n, &mut digits), out)?;
    }
    put(b"\0", out)?;
    Some(&out[..at])
}

fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn open_raw(path: &[u8], flags: c_int) -> c_int {
    // SAFETY: the kernel reads a NUL-terminated path from a live buffer.
    unsafe {
        syscall!(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags | libc::O_CLOEXEC,
            0o600
        ) as c_int
    }
}

/// The next sequence number, shared by every process of the run.
fn next_seq() -> u64 {
    crate::page::mapped().map_or(0, |p| p.durable_seq_word().fetch_add(1, Relaxed) + 1)
}

/// A journal line (`chaos_engine::durability::format_record`, the format the supervisor writes
/// too), appended to this process's journal.
fn record(op: &str, path: &[u8], ino: u64, seq: u64, detail: Detail<'_>) {
    let mut line = LineBuf::new();
    let bytes = format_record(&mut line, seq, op, path, ino, detail);
    let mut buf = [0u8; 4200];
    let Some(journal) = file_path(&mut buf, b".journal", None) else {
        return;
    };
    let fd = open_raw(journal, libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT);
    if fd >= 0 {
        sys::write_all(fd, bytes);
        sys::close(fd);
    }
}

/// Copies `[off, off + len)` of `fd` into this process's blob; where it starts there. A file the
/// program opened write-only is read through a read-only open of its own (`/proc/self/fd/N`,
/// closed at once): the old bytes must not depend on the program's open mode.
fn save(fd: c_int, off: u64, len: u64) -> Option<u64> {
    if sys::fcntl_getfl(fd) & libc::O_ACCMODE == libc::O_WRONLY {
        let mut proc_path = [0u8; 48];
        let mut at = 0;
        for part in [
            &b"/proc/self/fd/"[..],
            decimal(fd as u64, &mut [0u8; 20]),
            b"\0",
        ] {
            proc_path[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        let readable = open_raw(&proc_path[..at], libc::O_RDONLY);
        if readable < 0 {
            return None;
        }
        let saved = save_from(readable, off, len);
        sys::close(readable);
        return saved;
    }
    save_from(fd, off, len)
}

fn save_from(fd: c_int, off: u64, len: u64) -> Option<u64> {
    let pid = sys::getpid() as u64;
    if BLOB_PID.swap(pid, Relaxed) != pid {
        BLOB_END.store(0, Relaxed);
    }
    let at = BLOB_END.fetch_add(len, Relaxed);
    let mut buf = [0u8; 4200];
    let blob = open_raw(
        file_path(&mut buf, b".blob", None)?,
        libc::O_WRONLY | libc::O_CREAT,
    );
    if blob < 0 {
        return None;
    }
    let mut chunk = [0u8; 4096];
    let mut done = 0;
    while done < len {
        let want = (len - done).min(chunk.len() as u64) as usize;
        // SAFETY: pread/pwrite move at most `want` bytes through a local buffer.
        let n = unsafe { syscall!(libc::SYS_pread64, fd, chunk.as_mut_ptr(), want, off + done) };
        if n <= 0 {
            break;
        }
        // SAFETY: as above.
        unsafe {
            syscall!(
                libc::SYS_pwrite64,
                blob,
                chunk.as_ptr(),
                n as usize,
                at + done
            )
        };
        done += n as u64;
    }
    sys::close(blob);
    Some(at)
}

/// The open file's path and inode, if `[durability]` covers it.
fn covered_fd(fd: c_int, path: &mut [u8; 4096]) -> Option<(usize, libc::stat)> {
    let rt = crate::runtime::get()?;
    let st = sys::fstat(fd)?;
    let n = sys::fd_path(fd, path)?;
    covers(rt, &path[..n]).then_some((n, st))
}

/// Before a write of `len` bytes to `fd` at `pos` (None: its offset, or the end for O_APPEND):
/// the old bytes it overwrites and the old size. O_SYNC/O_DSYNC writes are durable when they
/// return and are not journaled; O_DIRECT ones bypass what a crash loses.
pub fn before_write(fd: c_int, pos: Option<u64>, len: u64) {
    let flags = sys::fcntl_getfl(fd);
    if flags & libc::O_DSYNC != 0 {
        return;
    }
    let mut path = [0u8; 4096];
    let Some((n, st)) = covered_fd(fd, &mut path) else {
        return;
    };
    if flags & libc::O_DIRECT != 0 {
        // Straight to the device, past the page cache a crash empties: not journaled, and said
        // so once per process.
        static SAID: AtomicBool = AtomicBool::new(false);
        if !SAID.swap(true, Relaxed) {
            crate::log::write_durability_unseen(fd, &path[..n], "O_DIRECT");
        }
        return;
    }
    let size = st.st_size as u64;
    let off = crate::disk::write_offset(fd, pos, size);
    let saved = off.saturating_add(len).min(size).saturating_sub(off);
    let blob = if saved > 0 {
        save(fd, off, saved)
    } else {
        Some(0)
    };
    let seq = next_seq();
    let detail = Detail::Write {
        old_size: size,
        off,
        len: saved,
        wrote: len,
        blob: blob.unwrap_or(0),
    };
    record("write", &path[..n], st.st_ino, seq, detail);
    in_flight(seq);
}

/// Before a change of size (ftruncate to `new_len`, or an allocation that may grow the file:
/// None): what a shrink cuts away, and the old size.
pub fn before_resize(fd: c_int, new_len: Option<u64>) {
    let mut path = [0u8; 4096];
    let Some((n, st)) = covered_fd(fd, &mut path) else {
        return;
    };
    let size = st.st_size as u64;
    let off = new_len.unwrap_or(size).min(size);
    let cut = size - off;
    let blob = if cut > 0 { save(fd, off, cut) } else { Some(0) };
    let seq = next_seq();
    let detail = Detail::Truncate {
        old_size: size,
        off,
        len: cut,
        blob: blob.unwrap_or(0),
    };
    record("truncate", &path[..n], st.st_ino, seq, detail);
    in_flight(seq);
}

/// After fsync/fdatasync (`ok`: it succeeded): the file's changes so far are durable, or, when it
/// failed, lost whatever later syncs say; a directory's fsync makes its entries durable.
pub fn after_sync(fd: c_int, ok: bool) {
    let Some(rt) = crate::runtime::get() else {
        return;
    };
    let Some(st) = sys::fstat(fd) else { return };
    let mut path = [0u8; 4096];
    let Some(n) = sys::fd_path(fd, &mut path) else {
        return;
    };
    let path = &path[..n];
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR if ok => record("dirsync", path, st.st_ino, next_seq(), Detail::Plain),
        libc::S_IFREG if covers(rt, path) => {
            let op = if ok { "sync" } else { "syncfail" };
            record(op, path, st.st_ino, next_seq(), Detail::Plain);
        }
        _ => {}
    }
}

/// Before the close of a covered file: on ext4 the close of a file truncated to zero flushes
/// what was written to it since (auto_da_alloc, `docs/kernel-facts.md` F13).
pub fn closing(fd: c_int) {
    let mut path = [0u8; 4096];
    if let Some((n, st)) = covered_fd(fd, &mut path)
        && st.st_mode & libc::S_IFMT == libc::S_IFREG
    {
        record("close", &path[..n], st.st_ino, next_seq(), Detail::Plain);
    }
}

/// After a successful syncfs: everything is durable.
pub fn after_syncfs() {
    record("syncfs", b"", 0, next_seq(), Detail::Plain);
}

/// A file at `path` (absolute, covered) that an open with O_CREAT made: `existed` was checked
/// before the open.
pub fn created(path: &[u8], fd: c_int) {
    if let Some(st) = sys::fstat(fd) {
        record("create", path, st.st_ino, next_seq(), Detail::Plain);
    }
}

/// Before `truncate(path, len)` of a covered file: what a shrink cuts away, and the old size, read
/// through a read-only open of our own.
pub fn before_path_truncate(path: &[u8], len: u64) {
    if let Some((fd, _)) = open_regular(path) {
        before_resize(fd, Some(len));
        sys::close(fd);
    }
}

/// A read-only fd of our own on the regular file at `path`, and its stat; None for anything
/// else (missing, a directory, a path too long). The caller closes it.
fn open_regular(path: &[u8]) -> Option<(c_int, libc::stat)> {
    let mut nul = [0u8; 4097];
    if path.len() >= nul.len() {
        return None;
    }
    nul[..path.len()].copy_from_slice(path);
    let fd = open_raw(&nul, libc::O_RDONLY);
    if fd < 0 {
        return None;
    }
    match sys::fstat(fd) {
        Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => Some((fd, st)),
        _ => {
            sys::close(fd);
            None
        }
    }
}

/// Before an open with O_TRUNC of an existing covered file: its whole content and size.
pub fn before_truncating_open(path: &[u8]) {
    let Some((fd, st)) = open_regular(path) else {
        return;
    };
    let size = st.st_size as u64;
    let blob = save(fd, 0, size);
    let detail = Detail::Truncate {
        old_size: size,
        off: 0,
        len: size,
        blob: blob.unwrap_or(0),
    };
    record("truncate", path, st.st_ino, next_seq(), detail);
    sys::close(fd);
}

/// A file kept aside before an unlink or a rename over it, so that an undo can bring it back:
/// a hard link in the journal directory (the sequence number names it).
pub struct Stash {
    seq: u64,
    path: [u8; 4200],
    len: usize,
}

impl Stash {
    fn bytes(&self) -> &[u8] {
        &self.path[..self.len.saturating_sub(1)]
    }
}

/// Keeps `path` (NUL-less, absolute) aside if it is a regular file.
pub fn stash(path: &[u8]) -> Option<Stash> {
    let mut nul = [0u8; 4097];
    if path.len() >= nul.len() {
        return None;
    }
    nul[..path.len()].copy_from_slice(path);
    let st = sys::lstat(&nul)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    let seq = next_seq();
    let mut out = Stash {
        seq,
        path: [0; 4200],
        len: 0,
    };
    let mut buf = [0u8; 4200];
    let stash = file_path(&mut buf, b".stash-", Some(seq))?;
    out.path[..stash.len()].copy_from_slice(stash);
    out.len = stash.len();
    // SAFETY: both paths are NUL-terminated local buffers.
    let r = unsafe {
        syscall!(
            libc::SYS_linkat,
            libc::AT_FDCWD,
            nul.as_ptr(),
            libc::AT_FDCWD,
            out.path.as_ptr(),
            0
        )
    };
    (r == 0).then_some(out)
}

/// The call the stash was for failed: nothing to bring back.
pub fn drop_stash(stash: Option<Stash>) {
    if let Some(s) = stash {
        // SAFETY: a NUL-terminated local path.
        unsafe { syscall!(libc::SYS_unlinkat, libc::AT_FDCWD, s.path.as_ptr(), 0) };
    }
}

/// An unlink of `path` succeeded.
pub fn unlinked(path: &[u8], stash: Option<Stash>) {
    let Some(s) = stash else { return };
    record(
        "unlink",
        path,
        0,
        s.seq,
        Detail::Unlink { stash: s.bytes() },
    );
}

/// A rename of `from` to `to` succeeded; `replaced` kept the file it replaced. The inode is the
/// renamed file's: on ext4 a rename over a file flushes that file's data (auto_da_alloc).
pub fn renamed(from: &[u8], to: &[u8], replaced: Option<Stash>) {
    let mut nul = [0u8; 4097];
    let ino = (to.len() < nul.len())
        .then(|| {
            nul[..to.len()].copy_from_slice(to);
            sys::lstat(&nul)
        })
        .flatten()
        .map_or(0, |st| st.st_ino);
    let detail = Detail::Rename {
        to,
        stash: replaced.as_ref().map(Stash::bytes),
    };
    record("rename", from, ino, next_seq(), detail);
}

/// How long a reaper waits for chaos-ctl to undo a crashed child (it is gone, or stuck: the
/// program goes on rather than hang).
const UNDO_WAIT_NS: u64 = 30_000_000_000;
const UNDO_POLL_NS: u64 = 2_000_000;

/// This process reaped `child`, killed by SIGKILL: if it journaled changes, ask chaos-ctl to
/// undo what it left unsynced (a `CHILD.crashed` file next to its journal) and wait until that
/// is done (chaos-ctl removes the file), so that the program, back from its wait, reads the files
/// as the crash left them. Raw system calls and the stack only: this runs in SIGCHLD handlers.
pub fn child_crashed(child: u64) {
    let mut journal = [0u8; 4200];
    let Some(journal) = pid_file_path(&mut journal, child, b".journal", None) else {
        return;
    };
    if sys::lstat(journal).is_none() {
        return;
    }
    let mut request = [0u8; 4200];
    let Some(request) = pid_file_path(&mut request, child, b".crashed", None) else {
        return;
    };
    let fd = open_raw(request, libc::O_WRONLY | libc::O_CREAT);
    if fd < 0 {
        return;
    }
    sys::close(fd);
    let mut waited = 0;
    while sys::lstat(request).is_some() && waited < UNDO_WAIT_NS {
        sys::sleep_ns(UNDO_POLL_NS);
        waited += UNDO_POLL_NS;
    }
}
