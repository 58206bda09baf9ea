//! Calls decided before there is an fd: the open family, rename, unlink and mkdir (matched by the
//! path they name, made absolute), and socket and pipe (by their count). Their decision key's
//! connection is the name's hash with the call's class, its site the n-th such call on that name
//! (`opens#N`), so a frozen policy finds it again however threads interleave. A fault is an error
//! before the call is made, a delay before it, or a process fault (`crash` at the third open of
//! a WAL is a crash at a logical point).

use super::disk_io;
use crate::abspath::{self, AbsPath};
use crate::durable;
use crate::guard::guarded;
use crate::log::{self, Applied};
use crate::named_counts::NameCounts;
use crate::plan::Choice;
use crate::real;
use crate::runtime::{self, Runtime};
use crate::sys;
use chaos_engine::addr::Endpoint;
use chaos_engine::inject::named_key;
use chaos_engine::key::Site;
use chaos_engine::kind::FdKind;
use chaos_engine::op::Op;
use chaos_engine::policy::FdFacts;
use chaos_engine::realise::{Action, NotHere, realise_fdless};
use libc::{c_char, c_int, c_uint};

static COUNTS: NameCounts = NameCounts::new();

/// What a call with no fd names: the kind of fd it would make (or work on) and its path.
pub(crate) struct Target<'a> {
    pub kind: FdKind,
    pub path: Option<&'a [u8]>,
}

/// Whether some rule acts on `op`'s class at all: the one check every fd-less hook makes first,
/// before any path is made absolute.
#[inline(always)]
pub(crate) fn watched(op: Op) -> Option<&'static Runtime> {
    let rt = runtime::get()?;
    (rt.class_rules[op.class() as usize] != 0 || rt.injecting).then_some(rt)
}

fn decide(
    rt: &Runtime,
    op: Op,
    target: &Target,
    action_of: &dyn Fn(&chaos_engine::fault::Fault, u64) -> Result<Action, NotHere>,
) -> Option<Choice> {
    let class = op.class();
    let name = target.path.unwrap_or(op.name().as_bytes());
    let conn = named_key(class, name);
    let n = COUNTS.next(conn);
    crate::plan::observe_control(rt, conn, Site::Call { class, n });
    if crate::census::on() {
        let (kind, path) = (target.kind, target.path);
        let named = crate::census::Target::Named { kind, path };
        crate::plan::census_reached(op, conn, Site::Call { class, n }, named);
    }
    let facts = FdFacts {
        kind: target.kind,
        peer: Endpoint::Unknown,
        local: Endpoint::Unknown,
        path: target.path,
    };
    crate::plan::decide_named(rt, op, conn, n, |rule| rule.targets(&facts), action_of)
}

/// The decision for one fd-less call, carried out and logged: Some(errno) when the call must fail
/// without being made; None when it goes on (after a delay or a pause, if one fired).
pub(crate) fn fault_for(rt: &'static Runtime, op: Op, target: &Target) -> Option<c_int> {
    fault_with(rt, op, target, &|fault, param| realise_fdless(fault, param))
}

/// An epoll wait's rules (`epoll_wait`, class `waits`): Some(EINTR) to fail it. Only a wait
/// with a timeout is counted and decided (`timed`: its timeout is not zero), so a busy loop of
/// zero-timeout polls shifts no key; it sleeps only when no event of `epfd` is ready.
pub(crate) fn wait_fault(epfd: c_int, timed: bool) -> Option<c_int> {
    let rt = watched(Op::EpollWait)?;
    if !timed {
        return None;
    }
    // An epoll fd polls readable while events are ready.
    let blocks = sys::poll_one(epfd, libc::POLLIN, 0) == 0;
    let target = Target {
        kind: FdKind::Other,
        path: None,
    };
    fault_with(rt, Op::EpollWait, &target, &|fault, param| {
        chaos_engine::realise::realise_wait(
            fault,
            chaos_engine::realise::RuleContext::default(),
            blocks,
            crate::facts::deliverable,
            param,
        )
    })
}

fn fault_with(
    rt: &'static Runtime,
    op: Op,
    target: &Target,
    action_of: &dyn Fn(&chaos_engine::fault::Fault, u64) -> Result<Action, NotHere>,
) -> Option<c_int> {
    if !runtime::in_own_process() {
        return None;
    }
    let plan = guarded(|| decide(rt, op, target, action_of)).flatten()?;
    let saved = sys::errno();
    let mut applied = Applied::default();
    let log = |errno: Option<c_int>, applied: &Applied| {
        let rec = log::FdlessRecord {
            op,
            kind: target.kind,
            path: target.path,
            source: plan.source,
            key: &plan.key,
            errno,
        };
        guarded(|| log::write_fdless(rt, &rec, applied));
    };
    let failed = match plan.action {
        Action::Fail { errno, .. } => {
            log(Some(errno), &applied);
            Some(errno)
        }
        Action::Delay(ns) => {
            sys::sleep_ns(ns);
            applied.delay_ns = ns;
            log(None, &applied);
            None
        }
        Action::Process(p) => {
            crate::process_fault::act(rt, p, &mut applied, |a| log(None, a));
            None
        }
        _ => None,
    };
    sys::set_errno(saved);
    failed
}

/// The path a call names, made absolute only when a rule's class or a disk needs it.
fn absolute_if(needed: bool, dirfd: c_int, path: *const c_char) -> Option<AbsPath> {
    if needed {
        abspath::absolute(dirfd, path)
    } else {
        None
    }
}

/// A path call's rules: Some(errno) to fail it.
fn path_fault(op: Op, rt: Option<&'static Runtime>, abs: Option<&AbsPath>) -> Option<c_int> {
    let target = Target {
        kind: FdKind::File,
        path: abs.map(AbsPath::bytes),
    };
    fault_for(rt?, op, &target)
}

/// Fails the call with `errno` as libc does: -1 and errno set.
fn fail(errno: c_int) -> c_int {
    sys::set_errno(errno);
    -1
}

/// An open that made an fd: whatever the number meant before is forgotten, and a file under a
/// `[[disk]]` or `[durability]` is classified now, so its first write is accounted.
fn opened(fd: c_int) -> c_int {
    // Classified now when its first write must be accounted or journaled, or when an fsync rule
    // may have to find every fd open on its file (`writeback`).
    let syncs = runtime::get()
        .is_some_and(|rt| rt.class_rules[chaos_engine::op::OpClass::Syncs as usize] != 0);
    let storage = crate::disk::any() || durable::active() || syncs;
    let role = storage.then_some(crate::fdtable::Role::Other);
    super::new_fd(fd, role);
    fd
}

/// The open family: the rules, then (O_TRUNC on a disk) what the truncated file held is freed.
fn open_with_rules(
    op: Op,
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    real: impl FnOnce() -> c_int,
) -> c_int {
    let rt = watched(op);
    let truncating = flags & libc::O_TRUNC != 0 && crate::disk::any();
    let journaled = flags & (libc::O_CREAT | libc::O_TRUNC) != 0 && durable::active();
    let abs = absolute_if(rt.is_some() || truncating || journaled, dirfd, path);
    if let Some(errno) = path_fault(op, rt, abs.as_ref()) {
        return fail(errno);
    }
    let held = truncating
        .then(|| disk_io::held(abs.as_ref().map(AbsPath::bytes)))
        .flatten();
    let durable_path = abs
        .as_ref()
        .map(AbsPath::bytes)
        .filter(|p| journaled && runtime::get().is_some_and(|rt| durable::covers(rt, p)));
    // Whether the open creates the file, and what a truncation throws away, are known only
    // before it.
    let existed = durable_path.map(|p| guarded(|| exists(p)).unwrap_or(true));
    if let (Some(p), Some(true)) = (durable_path, existed)
        && flags & libc::O_TRUNC != 0
    {
        guarded(|| durable::before_truncating_open(p));
    }
    let fd = real();
    if fd >= 0 {
        disk_io::freed(held);
        if let (Some(p), Some(false)) = (durable_path, existed) {
            guarded(|| durable::created(p, fd));
        }
    }
    opened(fd)
}

/// Whether an absolute path names something now.
fn exists(path: &[u8]) -> bool {
    let mut nul = [0u8; 4097];
    if path.len() >= nul.len() {
        return true;
    }
    nul[..path.len()].copy_from_slice(path);
    sys::lstat(&nul).is_some()
}

/// The open family, one entry each: `name(args) => Op, dirfd, path, flags`.
macro_rules! open_hooks {
    ($( $name:ident($($arg:ident: $ty:ty),*) => $op:ident, $dirfd:expr, $path:ident, $flags:expr; )*) => {
        $(
            #[cfg_attr(not(test), unsafe(no_mangle))]
            pub unsafe extern "C" fn $name($($arg: $ty),*) -> c_int {
                open_with_rules(Op::$op, $dirfd, $path, $flags, || {
                    // SAFETY: the program's own call, passed on as it made it (a mode the
                    // program did not pass is a register the real open ignores without
                    // O_CREAT/O_TMPFILE).
                    unsafe { real::$name($($arg),*) }
                })
            }
        )*
    };
}

const CREAT: c_int = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;

open_hooks! {
    open(path: *const c_char, flags: c_int, mode: c_uint) => Open, libc::AT_FDCWD, path, flags;
    open64(path: *const c_char, flags: c_int, mode: c_uint) => Open, libc::AT_FDCWD, path, flags;
    __open_2(path: *const c_char, flags: c_int) => Open, libc::AT_FDCWD, path, flags;
    __open64_2(path: *const c_char, flags: c_int) => Open, libc::AT_FDCWD, path, flags;
    openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: c_uint) => Openat, dirfd, path, flags;
    openat64(dirfd: c_int, path: *const c_char, flags: c_int, mode: c_uint) => Openat, dirfd, path, flags;
    __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) => Openat, dirfd, path, flags;
    __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) => Openat, dirfd, path, flags;
    creat(path: *const c_char, mode: c_uint) => Creat, libc::AT_FDCWD, path, CREAT;
    creat64(path: *const c_char, mode: c_uint) => Creat, libc::AT_FDCWD, path, CREAT;
}

/// unlink and rename: the rules on the (old) name, then on a disk what the call freed or moved.
/// `new` is rename's target (None for unlink).
fn entry_with_rules(
    op: Op,
    (dirfd, path): (c_int, *const c_char),
    new: Option<(c_int, *const c_char)>,
    real: impl FnOnce() -> c_int,
) -> c_int {
    let rt = watched(op);
    let disks = crate::disk::any();
    let abs = absolute_if(rt.is_some() || disks || durable::active(), dirfd, path);
    if let Some(errno) = path_fault(op, rt, abs.as_ref()) {
        return fail(errno);
    }
    if !disks && !durable::active() {
        return real();
    }
    let abs_new = new.and_then(|(d, p)| abspath::absolute(d, p));
    let old = abs.as_ref().map(AbsPath::bytes);
    let target = abs_new.as_ref().map(AbsPath::bytes);
    // unlink frees the file; rename frees the file it replaces and moves its own.
    let (freed, moving) = match new {
        None => (disk_io::held(old), None),
        Some(_) => (disk_io::held(target), disk_io::held(old)),
    };
    // Under `[durability]` the file an unlink or a rename removes is kept aside first, so that a
    // crash before its directory is synced can bring it back.
    let covered = |p: Option<&[u8]>| {
        p.is_some_and(|p| {
            durable::active() && runtime::get().is_some_and(|rt| durable::covers(rt, p))
        })
    };
    let journaled = covered(old) || covered(target);
    let kept = if journaled {
        guarded(|| durable::stash(if new.is_some() { target? } else { old? })).flatten()
    } else {
        None
    };
    let r = real();
    if r == 0 {
        disk_io::freed(freed);
        if let Some(m) = moving {
            disk_io::moved(old, target, m.bytes());
        }
        if journaled {
            let e = sys::errno();
            guarded(|| match (old, target) {
                (Some(from), Some(to)) => durable::renamed(from, to, kept),
                (Some(path), None) => durable::unlinked(path, kept),
                _ => durable::drop_stash(kept),
            });
            sys::set_errno(e);
        }
    } else {
        let e = sys::errno();
        guarded(|| durable::drop_stash(kept));
        sys::set_errno(e);
    }
    r
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    entry_with_rules(Op::Unlink, (libc::AT_FDCWD, path), None, || {
        // SAFETY: the program's own call, passed on as it made it.
        unsafe { real::unlink(path) }
    })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    entry_with_rules(Op::Unlink, (dirfd, path), None, || {
        // SAFETY: the program's own call, passed on as it made it.
        unsafe { real::unlinkat(dirfd, path, flags) }
    })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn rename(old: *const c_char, new: *const c_char) -> c_int {
    let at = libc::AT_FDCWD;
    entry_with_rules(Op::Rename, (at, old), Some((at, new)), || {
        // SAFETY: the program's own call, passed on as it made it.
        unsafe { real::rename(old, new) }
    })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn renameat(
    olddir: c_int,
    old: *const c_char,
    newdir: c_int,
    new: *const c_char,
) -> c_int {
    entry_with_rules(Op::Rename, (olddir, old), Some((newdir, new)), || {
        // SAFETY: the program's own call, passed on as it made it.
        unsafe { real::renameat(olddir, old, newdir, new) }
    })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn renameat2(
    olddir: c_int,
    old: *const c_char,
    newdir: c_int,
    new: *const c_char,
    flags: c_uint,
) -> c_int {
    entry_with_rules(Op::Rename, (olddir, old), Some((newdir, new)), || {
        // SAFETY: the program's own call, passed on as it made it.
        unsafe { real::renameat2(olddir, old, newdir, new, flags) }
    })
}

/// truncate(path): under `[durability]` what it cuts away and the old size are journaled first,
/// as for ftruncate.
fn truncate_path(path: *const c_char, len: libc::off_t, real: impl FnOnce() -> c_int) -> c_int {
    if durable::active() && runtime::in_own_process() {
        let abs = absolute_if(true, libc::AT_FDCWD, path);
        let covered = abs
            .as_ref()
            .map(AbsPath::bytes)
            .filter(|p| runtime::get().is_some_and(|rt| durable::covers(rt, p)));
        if let Some(p) = covered
            && len >= 0
        {
            let e = sys::errno();
            guarded(|| durable::before_path_truncate(p, len as u64));
            sys::set_errno(e);
            let r = real();
            let e = sys::errno();
            guarded(|| durable::landed(r == 0));
            sys::set_errno(e);
            return r;
        }
    }
    real()
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn truncate(path: *const c_char, len: libc::off_t) -> c_int {
    // SAFETY: the program's own call, passed on as it made it.
    truncate_path(path, len, || unsafe { real::truncate(path, len) })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn truncate64(path: *const c_char, len: libc::off_t) -> c_int {
    // SAFETY: the program's own call, passed on as it made it.
    truncate_path(path, len, || unsafe { real::truncate64(path, len) })
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn mkdir(path: *const c_char, mode: libc::mode_t) -> c_int {
    let rt = watched(Op::Mkdir);
    let abs = absolute_if(rt.is_some(), libc::AT_FDCWD, path);
    if let Some(errno) = path_fault(Op::Mkdir, rt, abs.as_ref()) {
        return fail(errno);
    }
    // SAFETY: the program's own call, passed on as it made it.
    unsafe { real::mkdir(path, mode) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn mkdirat(dirfd: c_int, path: *const c_char, mode: libc::mode_t) -> c_int {
    let rt = watched(Op::Mkdir);
    let abs = absolute_if(rt.is_some(), dirfd, path);
    if let Some(errno) = path_fault(Op::Mkdir, rt, abs.as_ref()) {
        return fail(errno);
    }
    // SAFETY: the program's own call, passed on as it made it.
    unsafe { real::mkdirat(dirfd, path, mode) }
}

/// socket()'s check, by the kind of socket it would make.
pub(crate) fn socket_fault(domain: c_int, ty: c_int) -> Option<c_int> {
    let rt = watched(Op::Socket)?;
    let ty = ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
    let kind = match (domain, ty) {
        (libc::AF_INET | libc::AF_INET6, libc::SOCK_STREAM) => FdKind::Tcp,
        (libc::AF_INET | libc::AF_INET6, libc::SOCK_DGRAM) => FdKind::Udp,
        (libc::AF_UNIX, _) => FdKind::Unix,
        _ => FdKind::OtherSocket,
    };
    fault_for(rt, Op::Socket, &Target { kind, path: None })
}

/// pipe()'s check.
pub(crate) fn pipe_fault() -> Option<c_int> {
    let rt = watched(Op::Pipe)?;
    let target = Target {
        kind: FdKind::Pipe,
        path: None,
    };
    fault_for(rt, Op::Pipe, &target)
}
