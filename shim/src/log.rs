//! The event log: one JSON line per `write(2)` on an O_APPEND fd, so processes and threads never
//! interleave inside a line and a SIGKILL loses nothing already written.
//!
//! The program must not see our fds (a child auditing what it inherited, `close_range` checks): the
//! `start` line is written through an fd opened and closed at once, and the fd kept for faults is
//! opened by the first event that needs it, close-on-exec and moved above `ownfd::FLOOR`.
//!
//! Every fault is logged or not injected. A process about to give up the right to open the log
//! (setuid, chroot: `hooks::creds`) opens the kept fd first, and its forks inherit it. A process
//! that still cannot write the log (exec'd after a privilege drop: a close-on-exec fd cannot
//! survive exec, and handing one across would show the program an fd of ours) withholds every
//! fault (`writable`) and says so in the control page, where chaos-ctl finds it for the summary.

use crate::fdtable::{Meta, Slot};
use crate::ownfd;
use crate::runtime::{PROCESS_KEY, Runtime};
use crate::sockaddr::SockAddrBuf;
use crate::sys;
use chaos_engine::addr::Endpoint;
use chaos_engine::errno::errno_name;
use chaos_engine::event::LineBuf;
use chaos_engine::key::Key;
use chaos_engine::kind::FdKind;
use chaos_engine::op::Op;
use chaos_engine::page::Unreadable;
use chaos_engine::select::Source;
use core::sync::atomic::{AtomicPtr, Ordering::Relaxed};
use libc::c_int;
use std::io::ErrorKind;

/// The log's path, set once by the constructor (null: no log). Leaked on purpose: hooks read it.
static PATH: AtomicPtr<libc::c_char> = AtomicPtr::new(core::ptr::null_mut());

/// Checks that the log can be opened (the constructor reports it if not) and remembers its path.
/// A log that exists but this process may not open (it runs as a user the run's log does not
/// admit: exec'd after a privilege drop) is not an error: the process runs log-less, injecting
/// nothing, and is named in the control page at once.
pub fn open(path: &str) -> Result<(), String> {
    let cpath =
        std::ffi::CString::new(path).map_err(|_| "CHAOS_LOG contains a NUL byte".to_string())?;
    let fd = sys::open_log(&cpath);
    if fd < 0 {
        let why = std::io::Error::from_raw_os_error(-fd);
        // Only under chaos-ctl (a control page), whose summary names the process: used
        // directly, a log the user cannot open is their mistake, refused as ever.
        let someone_elses = matches!(-fd, libc::EACCES | libc::EPERM)
            && match std::fs::symlink_metadata(path) {
                Ok(m) => m.is_file(),
                Err(e) => e.kind() == ErrorKind::PermissionDenied,
            };
        if !(someone_elses && crate::page::note_unreadable(Unreadable::Log, -fd, 0)) {
            return Err(format!(
                "cannot open the event log {path}: {why} (it must not be a symlink)"
            ));
        }
    } else {
        sys::close(fd);
    }
    PATH.store(cpath.into_raw(), Relaxed);
    Ok(())
}

/// Opens the kept fd now, while this process still may: called just before it gives up the
/// right to (a set*id call, chroot).
pub fn keep_open() {
    if path().is_some() {
        let _ = kept_fd();
    }
}

/// Whether the line of a fault about to be carried out can be written. Call it once per fault,
/// at the point of carrying it out: false means the fault is withheld (the call goes through
/// untouched), and it is counted against this process, with the reason, in the control page.
/// Without a log (CHAOS_LOG unset) there is nothing to lose, and faults go ahead.
pub fn writable() -> bool {
    if path().is_none() {
        return true;
    }
    let fd = kept_fd();
    if fd >= 0 {
        return true;
    }
    if fd != NOT_OURS {
        crate::page::note_unreadable(Unreadable::Log, -fd, 1);
    }
    false
}

fn path() -> Option<&'static core::ffi::CStr> {
    let p = PATH.load(Relaxed);
    // SAFETY: a CString leaked by `open` and never freed.
    (!p.is_null()).then(|| unsafe { core::ffi::CStr::from_ptr(p) })
}

/// What `kept_fd` says in a vfork child: it shares our memory but not our fds, so a number it
/// opened would mean nothing to us (a plain fork is a process of its own: `init::in_fork_child`).
const NOT_OURS: c_int = -libc::ECHILD;

/// The kept log fd, opening it on first use; -errno when it cannot be opened. Two threads racing
/// here both open; one keeps its fd.
fn kept_fd() -> c_int {
    let fd = ownfd::LOG.load(Relaxed);
    if fd >= 0 {
        return fd;
    }
    let Some(path) = path() else {
        return -libc::EBADF;
    };
    if !crate::runtime::in_own_process() {
        return NOT_OURS;
    }
    let opened = sys::open_log(path);
    if opened < 0 {
        return opened;
    }
    let high = ownfd::move_high(opened);
    match ownfd::LOG.compare_exchange(-1, high, Relaxed, Relaxed) {
        Ok(_) => high,
        Err(theirs) => {
            sys::close(high);
            theirs
        }
    }
}

/// Writes one line through an fd of its own, closed at once: for `start` lines, which every
/// process writes whether or not it ever injects anything. A fork of a process that kept the
/// log open uses that fd: it may have dropped the right to open the log since.
fn emit_once(line: &mut LineBuf) {
    let kept = ownfd::LOG.load(Relaxed);
    if kept >= 0 {
        sys::write_all(kept, line.finish());
        return;
    }
    let Some(path) = path() else { return };
    let fd = sys::open_log(path);
    if fd >= 0 {
        sys::write_all(fd, line.finish());
        sys::close(fd);
    }
}

/// Opens a line with the fields every event of this thread shares.
fn begin_event(line: &mut LineBuf, ev: &str) {
    line.begin();
    line.field_str("ev", ev.as_bytes());
    line.field_num("ts_ns", sys::now_ns(libc::CLOCK_REALTIME));
    line.field_num("pid", sys::getpid());
    line.field_num("tid", sys::gettid());
    line.field_display("proc", format_args!("{:016x}", PROCESS_KEY.load(Relaxed)));
}

fn emit(line: &mut LineBuf) {
    let fd = kept_fd();
    if fd >= 0 {
        sys::write_all(fd, line.finish());
    }
}

fn field_endpoint(line: &mut LineBuf, key: &str, ep: Endpoint) {
    match ep {
        Endpoint::Ip(sa) => line.field_display(key, sa),
        Endpoint::Unix([0, name @ ..]) => {
            // An abstract name: `@` for the kernel's leading NUL, on the stack (no allocation).
            let mut text = [0u8; 109];
            let n = name.len().min(text.len() - 1);
            text[0] = b'@';
            text[1..=n].copy_from_slice(&name[..n]);
            line.field_str(key, &text[..=n]);
        }
        Endpoint::Unix(path) if !path.is_empty() => line.field_str(key, path),
        Endpoint::Unix(_) => {} // unnamed (socketpair, unbound client)
        Endpoint::Unknown => {}
    }
}

pub fn write_start(rt: &Runtime, via: &str) {
    let mut line = LineBuf::new();
    line.begin();
    line.field_str("ev", b"start");
    line.field_num("ts_ns", sys::now_ns(libc::CLOCK_REALTIME));
    line.field_num("pid", sys::getpid());
    line.field_num("ppid", sys::getppid());
    line.field_display("proc", format_args!("{:016x}", PROCESS_KEY.load(Relaxed)));
    line.field_str("via", via.as_bytes());
    if let Some(name) = &rt.process {
        line.field_str("process", name.as_bytes());
        line.field_num("life", rt.life);
    }
    line.field_str("exe", rt.exe.as_bytes());
    // Where it ran, so that `replay` without a command runs it from there again.
    let mut cwd = [0u8; 1024];
    if let Some(n) = sys::getcwd(&mut cwd) {
        line.field_str("cwd", &cwd[..n]);
    }
    // A long command line must not push the fields after it out of the line: argv stops while
    // there is still room for them (escaped at worst 6 bytes a byte), and says how many it left out.
    let reserve = 512
        + 6 * rt.policy.origin.len()
        + rt.quirks.names().iter().map(|n| n.len() + 3).sum::<usize>();
    line.key("argv");
    line.push(b"[");
    let mut written = 0;
    for arg in &rt.argv {
        let mark = line.len();
        if written > 0 {
            line.push(b",");
        }
        line.json_string(arg.as_bytes());
        if line.overflowed() || line.room() < reserve {
            line.cut_to(mark);
            break;
        }
        written += 1;
    }
    line.push(b"]");
    line.commit();
    if written < rt.argv.len() {
        line.field_num("argv_truncated", rt.argv.len() - written);
    }
    line.field_num("seed", rt.seed);
    line.field_str("policy", rt.policy.origin.as_bytes());
    line.field_display("policy_digest", format_args!("{:016x}", rt.policy.digest));
    line.field_num("rules", rt.policy.rules.len());
    line.field_num("injections", rt.policy.injections.len());
    line.key("quirks");
    line.push(b"[");
    for (i, name) in rt.quirks.names().iter().enumerate() {
        if i > 0 {
            line.push(b",");
        }
        line.json_string(name.as_bytes());
    }
    line.push(b"]");
    line.commit();
    line.field_display("quirk_probability", rt.policy.quirk_probability);
    line.field_num("missing_symbols", crate::real::MISSING.load(Relaxed));
    line.field_str("shim_version", chaos_engine::VERSION.as_bytes());
    emit_once(&mut line);
}

/// A platform quirk fired: `{"ev":"fault","fault":"quirk","quirk":NAME,...}`.
pub fn write_quirk(op: &str, fd: c_int, quirk: chaos_engine::quirk::Quirk, errno: Option<c_int>) {
    let mut line = LineBuf::new();
    begin_event(&mut line, "fault");
    line.field_str("op", op.as_bytes());
    line.field_num("fd", fd);
    if let Some(slot) = crate::fdtable::slot(fd) {
        let meta = Meta(slot.meta.load(Relaxed));
        if meta.valid() {
            line.field_str("kind", meta.kind().name().as_bytes());
        }
    }
    let peer = SockAddrBuf::read(fd, true);
    field_endpoint(&mut line, "peer", peer.endpoint());
    let local = SockAddrBuf::read(fd, false);
    field_endpoint(&mut line, "local", local.endpoint());
    line.field_str("rule", b"quirk");
    line.field_str("fault", b"quirk");
    line.field_str("quirk", quirk.name().as_bytes());
    if let Some(e) = errno {
        line.field_str("errno", errno_name(e).as_bytes());
    }
    emit(&mut line);
}

/// `rule` and `rule_index`, or `inject` and `inject_index`.
fn field_source(line: &mut LineBuf, rt: &Runtime, source: Source) {
    match source {
        Source::Rule(i) => {
            line.field_str("rule", rt.policy.rules[i].name.as_bytes());
            line.field_num("rule_index", i);
        }
        Source::Injection(i) => {
            line.field_str("rule", b"inject");
            line.field_num("inject_index", i);
        }
        Source::Proxy(_) => line.field_str("rule", b"toxiproxy"),
    }
}

/// A fault on name resolution: `{"ev":"fault","op":"getaddrinfo","fd":-1,"host":…}`.
pub fn write_resolve(rt: &Runtime, op: Op, host: &[u8], source: Source, key: &Key, delay_ns: u64) {
    let mut line = LineBuf::new();
    begin_event(&mut line, "fault");
    line.field_str("op", op.name().as_bytes());
    line.field_num("fd", -1);
    line.field_str("host", host);
    field_source(&mut line, rt, source);
    line.field_str("fault", source.fault(&rt.policy).kind_name().as_bytes());
    line.field_num("delay_ns", delay_ns);
    line.field_display("key", key);
    emit(&mut line);
}

/// What a fault on a call with no fd yet (open, rename, unlink, mkdir, socket, pipe) says.
pub struct FdlessRecord<'a> {
    pub op: Op,
    /// The kind of fd the call makes or names (`file` for paths, `tcp` for a TCP socket...).
    pub kind: FdKind,
    pub path: Option<&'a [u8]>,
    pub source: Source,
    pub key: &'a Key,
    pub errno: Option<c_int>,
}

/// `{"ev":"fault","op":"open","fd":-1,"kind":"file","path":…}`.
pub fn write_fdless(rt: &Runtime, rec: &FdlessRecord, applied: &Applied) {
    let mut line = LineBuf::new();
    begin_event(&mut line, "fault");
    line.field_str("op", rec.op.name().as_bytes());
    line.field_num("fd", -1);
    line.field_str("kind", rec.kind.name().as_bytes());
    if let Some(path) = rec.path {
        line.field_str("path", path);
    }
    field_source(&mut line, rt, rec.source);
    line.field_str("fault", rec.source.fault(&rt.policy).kind_name().as_bytes());
    if let Some(e) = rec.errno {
        line.field_str("errno", errno_name(e).as_bytes());
        line.field_num("returned", -1);
    }
    line.field_num("delay_ns", applied.delay_ns);
    if let Some(effect) = applied.effect {
        line.field_str("effect", effect.as_bytes());
    }
    if let Some(why) = applied.degraded {
        line.field_str("degraded", why.as_bytes());
    }
    line.field_display("key", rec.key);
    emit(&mut line);
}

/// A `[[disk]]` refused a write (`full`: ENOSPC) or cut it where its space ended (`short`):
/// `{"ev":"disk","disk":"data","what":"short","op":"write","fd":3,"path":…,"requested","returned"}`.
pub fn write_disk(
    rt: &Runtime,
    disk: usize,
    op: &str,
    fd: c_int,
    what: &str,
    requested: u64,
    returned: i64,
) {
    let mut line = LineBuf::new();
    begin_event(&mut line, "disk");
    if let Some(d) = rt.policy.disks.get(disk) {
        line.field_str("disk", d.name.as_bytes());
    }
    line.field_str("what", what.as_bytes());
    line.field_str("op", op.as_bytes());
    line.field_num("fd", fd);
    let mut buf = [0u8; 512];
    if let Some(n) = sys::fd_path(fd, &mut buf) {
        line.field_str("path", &buf[..n]);
    }
    line.field_num("requested", requested);
    line.field_num("returned", returned);
    if what == "full" {
        line.field_str("errno", b"ENOSPC");
    }
    emit(&mut line);
}

/// An fsync reporting a writeback error another fd's fsync met (`writeback`):
/// `{"ev":"writeback","what":"reported","op":"fsync","fd":4,"path":…,"errno":"EIO"}`.
pub fn write_writeback(op: &str, fd: c_int, errno: c_int) {
    let mut line = LineBuf::new();
    begin_event(&mut line, "writeback");
    line.field_str("what", b"reported");
    line.field_str("op", op.as_bytes());
    line.field_num("fd", fd);
    let mut buf = [0u8; 512];
    if let Some(n) = sys::fd_path(fd, &mut buf) {
        line.field_str("path", &buf[..n]);
    }
    line.field_str("errno", errno_name(errno).as_bytes());
    emit(&mut line);
}

/// A write `[durability]` does not journal (`O_DIRECT`):
/// `{"ev":"durability","what":"unseen","fd":4,"path":…,"why":"O_DIRECT"}`.
pub fn write_durability_unseen(fd: c_int, path: &[u8], why: &str) {
    let mut line = LineBuf::new();
    begin_event(&mut line, "durability");
    line.field_str("what", b"unseen");
    line.field_num("fd", fd);
    line.field_str("path", path);
    line.field_str("why", why.as_bytes());
    emit(&mut line);
}

/// Something the program did that is a bug on every platform: `{"ev":"warning",...}`.
pub fn write_warning(op: &str, fd: c_int, what: &str) {
    let mut line = LineBuf::new();
    begin_event(&mut line, "warning");
    line.field_str("op", op.as_bytes());
    line.field_num("fd", fd);
    line.field_str("what", what.as_bytes());
    emit(&mut line);
}

/// A socket's two addresses, read before a reset (connect(AF_UNSPEC)) dissolves them, so that
/// the line of the reset still says which connection it ended.
pub struct Addrs {
    pub peer: SockAddrBuf,
    pub local: SockAddrBuf,
}

impl Addrs {
    pub fn read(fd: c_int) -> Addrs {
        Addrs {
            peer: SockAddrBuf::read(fd, true),
            local: SockAddrBuf::read(fd, false),
        }
    }
}

/// What applying a plan actually did, for the event.
#[derive(Default)]
pub struct Applied {
    /// The socket's addresses as they were before this fault ended the connection.
    pub addrs: Option<Addrs>,
    pub delay_ns: u64,
    pub stall_ns: u64,
    /// How long a connect waited before it failed (the emulated SYN retries).
    pub after_ns: u64,
    /// The event was written before the real call, so it has no `returned`.
    pub before_call: bool,
    pub effect: Option<&'static str>,
    /// Why the fault was weakened (to a delay) instead of applied as written.
    pub degraded: Option<&'static str>,
    /// A data limit that ended the connection (bytes in that direction), for `freeze`.
    pub limit: u64,
    /// A datagram held for reordering: how many sends overtake it.
    pub held_for: u32,
}

/// Everything one fault event says.
pub struct FaultRecord<'a> {
    pub op: Op,
    pub fd: c_int,
    pub meta: Meta,
    pub slot: &'a Slot,
    pub source: Source,
    pub fault: &'a str,
    pub errno: Option<c_int>,
    pub requested: usize,
    pub returned: isize,
    pub key: &'a Key,
    /// Delays, stall length, side effects and degradations.
    pub applied: &'a Applied,
}

/// `kind`, `conn` and the fd's addresses (or path), as every fault line on an fd has them.
/// `addrs`: the socket's addresses read before a reset dissolved them (else read now).
fn field_fd(line: &mut LineBuf, op: Op, fd: c_int, meta: Meta, slot: &Slot, addrs: Option<&Addrs>) {
    let kind = meta.kind();
    line.field_str("kind", kind.name().as_bytes());
    if op == Op::Connect {
        // A connect is keyed by its kind's count of connect attempts, not by a connection.
        line.field_display("conn", format_args!("{}-connects", kind.name()));
    } else {
        line.field_display(
            "conn",
            format_args!(
                "{}-{}#{}",
                kind.name(),
                meta.role().name(),
                slot.ordinal.load(Relaxed)
            ),
        );
    }
    if kind.is_socket() {
        let now;
        let addrs = match addrs {
            Some(a) => a,
            None => {
                now = Addrs::read(fd);
                &now
            }
        };
        field_endpoint(line, "peer", addrs.peer.endpoint());
        field_endpoint(line, "local", addrs.local.endpoint());
    } else if kind == FdKind::File {
        let mut buf = [0u8; 512];
        if let Some(n) = sys::fd_path(fd, &mut buf) {
            line.field_str("path", &buf[..n]);
        }
    }
}

/// A `reset_after` toxic's RST, sent by whoever found it due: the data call `op` (which fails
/// with ECONNRESET; `requested` is its length) or a wait named `op` (which the RST wakes).
/// Keyed at the connection's read position, where a replay's next read meets the reset.
pub fn write_reset_due(
    rt: &Runtime,
    op: &str,
    fd: c_int,
    slot: &Slot,
    source: Source,
    requested: Option<usize>,
    addrs: &Addrs,
) {
    let meta = Meta(slot.meta.load(Relaxed));
    let rx = chaos_engine::key::Dir::Rx as usize;
    let key = Key {
        process: PROCESS_KEY.load(Relaxed),
        conn: slot.conn.load(Relaxed),
        rule: source.key_rule(),
        site: chaos_engine::key::Site::Stream {
            dir: chaos_engine::key::Dir::Rx,
            pos: slot.pos[rx].load(Relaxed),
            attempt: slot.attempt[rx].load(Relaxed),
        },
    };
    let mut line = LineBuf::new();
    begin_event(&mut line, "fault");
    line.field_str("op", op.as_bytes());
    line.field_num("fd", fd);
    field_fd(&mut line, Op::Recv, fd, meta, slot, Some(addrs));
    field_source(&mut line, rt, source);
    line.field_str("fault", b"reset");
    line.field_str("errno", b"ECONNRESET");
    if let Some(n) = requested {
        line.field_num("requested", n);
        line.field_num("returned", -1);
    }
    line.field_num("delay_ns", 0);
    line.field_str("effect", b"reset-after");
    line.field_display("key", key);
    emit(&mut line);
}

/// A connection made through a Toxiproxy proxy that was then disabled or deleted, ended as
/// Toxiproxy ends it (`crate::proxy`): `{"ev":"fault",…,"rule":"toxiproxy","fault":"close",
/// "effect":"proxy-disabled"}`. It has no key: it follows the API's change, not a draw.
pub fn write_proxy_closed(
    rt: &Runtime,
    by: crate::proxy::By,
    fd: c_int,
    meta: Meta,
    slot: &Slot,
    addrs: &Addrs,
) {
    let mut line = LineBuf::new();
    begin_event(&mut line, "fault");
    let (op, requested) = match by {
        crate::proxy::By::Call(op, n) => (op.name(), Some(n)),
        crate::proxy::By::Wait(name) => (name, None),
    };
    line.field_str("op", op.as_bytes());
    line.field_num("fd", fd);
    field_fd(&mut line, Op::Recv, fd, meta, slot, Some(addrs));
    field_source(&mut line, rt, Source::Proxy(0));
    line.field_str("fault", b"close");
    if let Some(n) = requested {
        line.field_num("requested", n);
    }
    line.field_num("delay_ns", 0);
    line.field_str("effect", b"proxy-disabled");
    emit(&mut line);
}

pub fn write_fault(rt: &Runtime, rec: &FaultRecord) {
    let mut line = LineBuf::new();
    begin_event(&mut line, "fault");
    line.field_str("op", rec.op.name().as_bytes());
    line.field_num("fd", rec.fd);
    field_fd(
        &mut line,
        rec.op,
        rec.fd,
        rec.meta,
        rec.slot,
        rec.applied.addrs.as_ref(),
    );
    field_source(&mut line, rt, rec.source);
    line.field_str("fault", rec.fault.as_bytes());
    if let Some(e) = rec.errno {
        line.field_str("errno", errno_name(e).as_bytes());
    }
    line.field_num("requested", rec.requested);
    if !rec.applied.before_call {
        line.field_num("returned", rec.returned);
    }
    line.field_num("delay_ns", rec.applied.delay_ns);
    if rec.applied.after_ns > 0 {
        line.field_num("after_ns", rec.applied.after_ns);
    }
    if rec.applied.stall_ns > 0 {
        line.field_num("stall_ns", rec.applied.stall_ns);
    }
    if let Some(effect) = rec.applied.effect {
        line.field_str("effect", effect.as_bytes());
    }
    if rec.applied.held_for > 0 {
        line.field_num("held_for", rec.applied.held_for);
    }
    if rec.applied.limit > 0 {
        line.field_num("limit", rec.applied.limit);
    }
    if let Some(why) = rec.applied.degraded {
        line.field_str("degraded", why.as_bytes());
    }
    line.field_display("key", rec.key);
    emit(&mut line);
}

/// A child this process reaped ended: `{"ev":"exit","pid":CHILD,"reaper":US,...}`. Written by the
/// parent because a process killed by a signal cannot write it itself. `wstatus` is wait(2)'s.
pub fn write_exit(child: i32, wstatus: c_int) {
    let exited = libc::WIFEXITED(wstatus);
    if !exited && !libc::WIFSIGNALED(wstatus) {
        return; // stopped or continued: not an end
    }
    let mut line = LineBuf::new();
    line.begin();
    line.field_str("ev", b"exit");
    line.field_num("ts_ns", sys::now_ns(libc::CLOCK_REALTIME));
    line.field_num("pid", child);
    line.field_num("reaper", sys::getpid());
    if exited {
        line.field_num("status", libc::WEXITSTATUS(wstatus));
    } else {
        let sig = libc::WTERMSIG(wstatus);
        match chaos_engine::signal::static_name(sig) {
            Some(name) => line.field_str("signal", name.as_bytes()),
            None if sig >= 34 => {
                line.field_display("signal", format_args!("SIGRTMIN+{}", sig - 34))
            }
            None => line.field_display("signal", format_args!("signal {sig}")),
        }
        if libc::WCOREDUMP(wstatus) {
            line.key("core_dumped");
            line.push(b"true");
            line.commit();
        }
    }
    emit(&mut line);
}

/// `{"ev":"control","what":"seen",...}`: the first call of this process under a new generation of
/// the control page, at `place`, with the rules enabled from then on.
pub fn write_control_seen(
    rt: &Runtime,
    generation: u64,
    place: &chaos_engine::key::Place,
    enabled: u32,
) {
    let mut line = LineBuf::new();
    begin_event(&mut line, "control");
    line.field_num("generation", generation);
    line.field_str("what", b"seen");
    line.field_display("at", place);
    line.key("enabled");
    line.push(b"[");
    let mut first = true;
    for (i, rule) in rt.policy.rules.iter().enumerate() {
        if enabled & (1 << i) != 0 && !rule.ops.is_empty() {
            if !first {
                line.push(b",");
            }
            first = false;
            line.json_string(rule.name.as_bytes());
        }
    }
    line.push(b"]");
    line.commit();
    emit(&mut line);
}

/// A fault point explore's census found (`census.rs`): `{"ev":"point","op":…,"kind":…,
/// "object":…,"offset":…,"key":…}`, with what the call acts on as a fault line names it.
pub fn write_point(op: Op, key: &Key, object: &[u8], offset: u64, target: crate::census::Target) {
    let mut line = LineBuf::new();
    begin_event(&mut line, "point");
    line.field_str("op", op.name().as_bytes());
    match target {
        crate::census::Target::Fd { fd, meta, slot } => {
            line.field_num("fd", fd);
            field_fd(&mut line, op, fd, meta, slot, None);
        }
        crate::census::Target::Named { kind, path } => {
            line.field_num("fd", -1);
            line.field_str("kind", kind.name().as_bytes());
            if let Some(path) = path {
                line.field_str("path", path);
            }
        }
    }
    line.field_str("object", object);
    line.field_num("offset", offset);
    line.field_display("key", key);
    emit(&mut line);
}
