//! Calls on an open regular file, keyed as the shim keys them: reads and writes (plain,
//! positional and vectored) by the file's stream offset in their direction, the bytes moved
//! through that fd so far (`FdView::moved`); fsync and its kin, ftruncate and fallocate by their
//! count on the fd.
//!
//! The supervisor sees a call before it runs, not what it returned, so for a call it lets run
//! it counts what a regular file gives (`expected`): a write moves all it asks (a write to a
//! regular file is not cut short but by a full disk or a signal, which the shim's count would
//! see and ours not); a read moves up to the end of the file from where it reads. A short read
//! the realism model allows is made by us on our copy of the fd (the same open file description,
//! so the same offset), the bytes moved with process_vm_writev; a regular file never blocks.

use super::args;
use super::carry;
use super::decide::Position;
use super::decide::decide_on_fd;
use super::events::{self, Applied, OnCall};
use super::fdview::FdView;
use super::file_choice::{decide_simple, shape};
use super::state::Supervisor;
use super::sys::{self, Answer};
use chaos_engine::key::{Dir, Site};
use chaos_engine::kind::FdKind;
use chaos_engine::op::Op;
use chaos_engine::realise::Action;

/// The op of a notified call on an fd that only files have (None: not one).
pub fn fd_op(nr: i64) -> Option<Op> {
    Some(match nr {
        libc::SYS_pread64 => Op::Pread,
        libc::SYS_pwrite64 => Op::Pwrite,
        libc::SYS_preadv => Op::Preadv,
        libc::SYS_pwritev => Op::Pwritev,
        libc::SYS_fsync => Op::Fsync,
        libc::SYS_fdatasync => Op::Fdatasync,
        libc::SYS_sync_file_range => Op::SyncFileRange,
        libc::SYS_syncfs => Op::Syncfs,
        libc::SYS_ftruncate => Op::Ftruncate,
        libc::SYS_fallocate => Op::Fallocate,
        _ => return None,
    })
}

/// Whether process `tgid`'s `fd` is a regular file, as its view holds it.
pub fn is_file(s: &Supervisor, tgid: i32, fd: i32) -> bool {
    s.procs
        .get(&tgid)
        .and_then(|p| p.fds.get(&fd))
        .is_some_and(|v| v.kind == FdKind::File)
}

/// The positional calls' offset: pread64 and pwrite64 take it whole; preadv and pwritev as
/// low and high halves, of which a 64-bit kernel uses the low (`pos_from_hilo`).
fn explicit_offset(op: Op, args: &[u64; 6]) -> Option<i64> {
    matches!(op, Op::Pread | Op::Pwrite | Op::Preadv | Op::Pwritev).then_some(args[3] as i64)
}

/// The answer for a call on a file fd: `op` is a data op (read, write and their kin) or one of
/// `fd_op`'s.
pub fn on_fd(
    s: &mut Supervisor,
    tgid: i32,
    tid: i32,
    n: &libc::seccomp_notif,
    op: Op,
) -> Option<Answer> {
    if op.dir().is_some() {
        return data(s, tgid, tid, n, op);
    }
    let fd = n.data.args[0] as i32;
    let view = s.procs.get(&tgid)?.fds.get(&fd)?;
    let journaled = view.durable && s.target.journal.is_some();
    if (view.disk.is_some() || journaled) && matches!(op, Op::Ftruncate | Op::Fallocate) {
        return super::disk_io::resize(s, tgid, tid, n, op, view.disk);
    }
    let syncs = matches!(op, Op::Fsync | Op::Fdatasync);
    if syncs && let Some(errno) = super::writeback::take(s, tgid, fd) {
        // An error another description's fsync met is this one's to report, once.
        let on = OnCall::new(op, fd, tid, s.procs.get(&tgid)?.fds.get(&fd), None);
        events::writeback(&mut s.log, s.procs.get(&tgid)?, &on, errno);
        super::journaled::synced(s, tgid, fd, false);
        return Some(Answer::Fail(errno));
    }
    let d = decide_simple(s, tgid, tid, op, fd);
    if let (true, Some(Action::Fail { errno, .. })) = (syncs, d.as_ref().map(|d| d.action)) {
        super::writeback::failed(s, tgid, fd, errno);
    }
    let on = OnCall::new(op, fd, tid, s.procs.get(&tgid)?.fds.get(&fd), Some(0));
    if s.target.journal.is_some() && matches!(op, Op::Fsync | Op::Fdatasync | Op::Syncfs) {
        return super::journaled::sync(s, tgid, n, op, on, d);
    }
    carry::common(s, tgid, n, on, d?, Applied::default())
}

/// A read or write of a regular file.
fn data(
    s: &mut Supervisor,
    tgid: i32,
    tid: i32,
    n: &libc::seccomp_notif,
    op: Op,
) -> Option<Answer> {
    let args = n.data.args;
    let fd = args[0] as i32;
    let dir = op.dir()?;
    let view = s.procs.get(&tgid)?.fds.get(&fd)?;
    if view.kind != FdKind::File {
        return Some(Answer::Continue); // a positional call on a pipe or socket: ESPIPE
    }
    let disk = view.disk.filter(|_| dir == Dir::Tx);
    // A write to a file `[durability]` covers is journaled, then made by us, so that we know
    // whether it landed (CONTINUE would not tell us). As by the shim, O_SYNC/O_DSYNC writes
    // (durable as they return) and O_DIRECT ones (past the page cache a crash empties) are not
    // journaled, so they run as they are.
    let covered = dir == Dir::Tx && view.durable && s.target.journal.is_some();
    let flags = if covered { sys::getfl(view.fd()) } else { 0 };
    let journaled = covered && flags & (libc::O_DSYNC | libc::O_DIRECT) == 0;
    if covered && flags & libc::O_DSYNC == 0 && flags & libc::O_DIRECT != 0 {
        super::journaled::direct_unseen(s, tgid, tid, fd);
    }
    let view = s.procs.get(&tgid)?.fds.get(&fd)?;
    let rules = s.target.rules_for(op) & view.mask;
    let decided = rules != 0 || s.target.keys_every_call();
    if !decided && disk.is_none() && !journaled {
        return Some(Answer::Continue);
    }
    let bufs = args::buffers(tgid, op, &args)?;
    let asked: usize = bufs.iter().map(|b| b.1).sum();
    // The disk first, as the shim: a write that finds no space is refused before any rule.
    let write = match disk {
        Some(i) => {
            let pos = explicit_offset(op, &args).map(|o| o.max(0) as u64);
            let (fits, before) = s.target.disks.before_write(i, view.fd(), pos, asked as u64);
            if fits == 0 && asked > 0 {
                let on = OnCall::new(op, fd, tid, Some(view), Some(asked as u64));
                let proc = s.procs.get(&tgid)?;
                events::disk(
                    &mut s.log,
                    &s.target,
                    proc,
                    &on,
                    (i, "full"),
                    asked as u64,
                    -1,
                );
                return Some(Answer::Fail(libc::ENOSPC));
            }
            Some(DiskWrite {
                disk: i,
                before,
                limit: fits as usize,
                asked,
            })
        }
        None => None,
    };
    let requested = write.as_ref().map_or(asked, |w| w.limit.min(asked));
    let proc = s.procs.get_mut(&tgid)?;
    let view = proc.fds.get_mut(&fd)?;
    let class = op.class();
    let count = view.calls[class as usize];
    view.calls[class as usize] += 1;
    let (pos, attempt) = view.file_site(dir);
    let at = Position {
        process: proc.key,
        base: proc.base,
        conn: view.conn,
        site: Site::Stream { dir, pos, attempt },
        n: count,
        requested,
    };
    if let Some(census) = &mut s.census {
        census.reached(&mut s.log, (tgid, tid), (op, &at), || {
            OnCall::new(op, fd, tid, Some(&*view), Some(requested as u64))
        });
    }
    let call = shape(op, view, requested);
    let runs = expected(view, op, &args, requested as u64);
    let chosen = if decided {
        let view: &FdView = view;
        decide_on_fd(
            &mut s.target,
            &mut proc.budget,
            (op, at, rules),
            (view, tid),
            &call,
        )
    } else {
        None
    };
    let on = OnCall::new(op, fd, tid, Some(view), Some(requested as u64));
    let made_here = write.is_some() || journaled;
    let pos = explicit_offset(op, &args).map(|o| o.max(0) as u64);
    let mut ours = Ours {
        op,
        bufs: &bufs,
        write,
        journaled: journaled.then_some((pos, asked as u64)),
    };
    let Some(d) = chosen else {
        if made_here {
            let limit = write.map_or(asked, |w| w.limit);
            return Some(answer_of(ours.make(s, tgid, n, &on, limit)));
        }
        view.moved[dir as usize] += runs;
        return Some(Answer::Continue);
    };
    match d.action {
        Action::Short { len, .. } => {
            let listener = std::os::fd::AsRawFd::as_raw_fd(&*s.listener);
            let k = if dir == Dir::Tx {
                let limit = write.map_or(len, |w| len.min(w.limit));
                ours.make(s, tgid, n, &on, limit)
            } else {
                let k = transfer(tgid, listener, n, op, view, &bufs, len);
                if let Ok(k) = k {
                    view.moved[dir as usize] += k as u64;
                }
                k
            };
            // Nothing moved (the call went away, its memory could not be read): it runs as it
            // is, and no fault happened.
            let k = k.ok()?;
            let applied = Applied {
                returned: Some(k as i64),
                ..Applied::default()
            };
            let proc = s.procs.get(&tgid)?;
            events::fault(&mut s.log, &s.target, proc, &on, &d, &applied);
            Some(Answer::Return(k as i64))
        }
        Action::Fail { .. } => carry::common(s, tgid, n, on, d, Applied::default()),
        Action::Delay(ns) if made_here => {
            // Made now, answered after the delay: the disk's count and the journal are settled
            // before any other call of the program can look at them.
            let limit = write.map_or(asked, |w| w.limit);
            let answer = answer_of(ours.make(s, tgid, n, &on, limit));
            carry::made_then_delayed(s, (tgid, n.id), &on, &d, ns, answer)
        }
        _ => {
            view.moved[dir as usize] += runs;
            carry::common(s, tgid, n, on, d, Applied::default())
        }
    }
}

/// The answer for a write we made: its count, the kernel's error, or (nothing could be made
/// here) the call as it is.
fn answer_of(made: Result<usize, Option<i32>>) -> Answer {
    match made {
        Ok(k) => Answer::Return(k as i64),
        Err(Some(errno)) => Answer::Fail(errno),
        Err(None) => Answer::Continue,
    }
}

/// A write the supervisor makes itself on its copy of the fd: one on a `[[disk]]` (whose
/// allocation it counts) or one `[durability]` journals first (`journaled`: its explicit
/// position and the length the program asked for, which the shim's journal records too).
struct Ours<'a> {
    op: Op,
    bufs: &'a [(u64, usize)],
    write: Option<DiskWrite>,
    journaled: Option<(Option<u64>, u64)>,
}

impl Ours<'_> {
    /// Makes the write with at most `len` bytes: the count written, the kernel's error, or
    /// Err(None) when it could not be made here. A journaled change that did not land is
    /// voided.
    fn make(
        &mut self,
        s: &mut Supervisor,
        tgid: i32,
        n: &libc::seccomp_notif,
        on: &OnCall,
        len: usize,
    ) -> Result<usize, Option<i32>> {
        let seq = match (self.journaled, &s.target.journal) {
            (Some((pos, asked)), Some(journal)) => {
                let view = s.procs.get(&tgid).and_then(|p| p.fds.get(&on.fd));
                let ours = view.map_or(-1, FdView::fd);
                std::fs::read_link(format!("/proc/self/fd/{ours}"))
                    .ok()
                    .and_then(|path| {
                        let path = path.into_os_string().into_encoded_bytes();
                        journal.before_write(tgid, ours, &path, pos, asked)
                    })
            }
            _ => None,
        };
        let k = match self.write {
            Some(w) => made(s, tgid, n, self.op, on, self.bufs, w, len),
            None => {
                let listener = std::os::fd::AsRawFd::as_raw_fd(&*s.listener);
                let view = s
                    .procs
                    .get_mut(&tgid)
                    .and_then(|p| p.fds.get_mut(&on.fd))
                    .ok_or(None)?;
                let k = transfer(tgid, listener, n, self.op, view, self.bufs, len);
                if let Ok(k) = k {
                    view.moved[Dir::Tx as usize] += k as u64;
                }
                k
            }
        };
        // A write that wrote nothing changed nothing a crash could undo.
        if let (Some(seq), Some(journal)) = (seq, &s.target.journal)
            && !matches!(k, Ok(1..))
        {
            journal.void(tgid, seq);
        }
        k
    }
}

/// A write to a file on a `[[disk]]`: the disk it is on, its allocation before, how much of
/// what it asks for fits.
#[derive(Clone, Copy)]
struct DiskWrite {
    disk: usize,
    before: u64,
    limit: usize,
    asked: usize,
}

/// Makes a write to a file on a disk with at most `len` bytes, counts what it allocated and
/// logs the disk's cut: the count written, the kernel's error, or Err(None) when it could not
/// be made here (the call then runs as it is).
#[allow(clippy::too_many_arguments)]
fn made(
    s: &mut Supervisor,
    tgid: i32,
    n: &libc::seccomp_notif,
    op: Op,
    on: &OnCall,
    bufs: &[(u64, usize)],
    w: DiskWrite,
    len: usize,
) -> Result<usize, Option<i32>> {
    let listener = std::os::fd::AsRawFd::as_raw_fd(&*s.listener);
    let view = s
        .procs
        .get_mut(&tgid)
        .and_then(|p| p.fds.get_mut(&on.fd))
        .ok_or(None)?;
    let k = transfer(tgid, listener, n, op, view, bufs, len);
    s.target.disks.after_change(w.disk, view.fd(), w.before);
    let k = k?;
    view.moved[Dir::Tx as usize] += k as u64;
    if w.limit < w.asked {
        let proc = s.procs.get(&tgid).ok_or(None)?;
        let what = (w.disk, "short");
        events::disk(
            &mut s.log,
            &s.target,
            proc,
            on,
            what,
            w.asked as u64,
            k as i64,
        );
    }
    Ok(k)
}

/// What a read or write of a regular file that runs as it was made moves (see the module
/// comment): all of a write, a read up to the end of the file; nothing through a description
/// not open for that direction (EBADF).
fn expected(view: &FdView, op: Op, args: &[u64; 6], requested: u64) -> u64 {
    let fd = view.fd();
    let mode = sys::getfl(fd) & libc::O_ACCMODE;
    match op.dir() {
        Some(Dir::Tx) if mode != libc::O_RDONLY => requested,
        Some(Dir::Rx) if mode != libc::O_WRONLY => {
            let size = sys::fstat(fd).map_or(0, |st| st.st_size.max(0) as u64);
            let from = explicit_offset(op, args).unwrap_or_else(|| {
                // SAFETY: no memory arguments; SEEK_CUR by 0 only reads the offset.
                unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) }
            });
            requested.min(size.saturating_sub(from.max(0) as u64))
        }
        _ => 0,
    }
}

/// A page: an O_DIRECT write's buffer keeps its offset within one here (every block size
/// divides it).
const PAGE: usize = 4096;

/// Makes the call ourselves on our copy with at most `len` bytes: the count moved, the
/// kernel's error, or Err(None) when nothing could be made here (the call is no longer waiting,
/// its memory cannot be read).
pub fn transfer(
    pid: i32,
    listener: i32,
    n: &libc::seccomp_notif,
    op: Op,
    view: &FdView,
    bufs: &[(u64, usize)],
    len: usize,
) -> Result<usize, Option<i32>> {
    let args = n.data.args;
    let fd = view.fd();
    let at = explicit_offset(op, &args);
    let errno = || std::io::Error::last_os_error().raw_os_error();
    match op.dir().ok_or(None)? {
        Dir::Tx => {
            let mut bytes = args::gather(pid, op, &args, len).ok_or(None)?;
            if !sys::notif_valid(listener, n.id) {
                return Err(None);
            }
            let (mut from, count) = (0, bytes.len());
            if sys::getfl(fd) & libc::O_DIRECT != 0
                && let Some(&(addr, _)) = bufs.first()
            {
                // O_DIRECT checks the buffer's alignment: ours is placed as the program's was
                // within a page, so it is refused or taken as the program's would be.
                let mut aligned = vec![0u8; count + 2 * PAGE];
                from = aligned.as_ptr().align_offset(PAGE) + (addr as usize % PAGE);
                aligned[from..from + count].copy_from_slice(&bytes);
                bytes = aligned;
            }
            let bytes = &bytes[from..from + count];
            let ptr = bytes.as_ptr() as *const libc::c_void;
            // SAFETY: our buffer, of the length passed, and our copy of the fd.
            let k = unsafe {
                match at {
                    Some(off) => libc::pwrite(fd, ptr, bytes.len(), off),
                    None => libc::write(fd, ptr, bytes.len()),
                }
            };
            if k < 0 { Err(errno()) } else { Ok(k as usize) }
        }
        Dir::Rx => {
            let mut tmp = vec![0u8; len];
            if !sys::notif_valid(listener, n.id) {
                return Err(None);
            }
            let ptr = tmp.as_mut_ptr() as *mut libc::c_void;
            // SAFETY: our buffer, of the length passed, and our copy of the fd.
            let k = unsafe {
                match at {
                    Some(off) => libc::pread(fd, ptr, len, off),
                    None => libc::read(fd, ptr, len),
                }
            };
            if k < 0 {
                return Err(None);
            }
            let k = k as usize;
            let mut done = 0;
            for &(addr, blen) in bufs {
                let take = blen.min(k - done);
                if !sys::write_target(pid, addr, &tmp[done..done + take]) {
                    break;
                }
                done += take;
                if done == k {
                    break;
                }
            }
            Ok(done)
        }
    }
}
