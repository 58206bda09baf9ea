//! Name resolution (`on = "resolve"`): getaddrinfo, getnameinfo and the gethostbyname family.
//! No fd: a rule matches the name looked up (`host`), and the decision key's connection is that
//! name's hash, its site the n-th lookup of it (`resolve#N`), so a frozen policy finds it again.
//! A fault answers as glibc would for a resolver that timed out or found nothing: the EAI_* code,
//! or no host with `h_errno` (TRY_AGAIN, HOST_NOT_FOUND, NO_RECOVERY) for the old calls.

use crate::guard::guarded;
use crate::log;
use crate::plan::Choice;
use crate::real;
use crate::runtime::{self, Runtime};
use crate::sys;
use chaos_engine::fault::{Fault, h_errno_for, reentrant_return_for};
use chaos_engine::op::{Op, OpClass};
use chaos_engine::policy::fnv1a;
use chaos_engine::realise::Action;
use libc::{c_char, c_int};

/// Lookups so far per name.
static COUNTS: crate::named_counts::NameCounts = crate::named_counts::NameCounts::new();

/// What to do with a lookup of `host` by `op`, if anything. Every lookup is counted when some
/// rule acts on some resolve op, enabled or not, whichever op it is: a frozen policy (which looks
/// at all of them) then finds the same keys, and switching a rule on never shifts one.
fn decide(rt: &Runtime, op: Op, host: &[u8]) -> Option<Choice> {
    if rt.class_rules[OpClass::Resolve as usize] == 0 && !rt.injecting {
        return None;
    }
    // Never 0: 0 marks a free slot of the table.
    let conn = fnv1a(host) | 1;
    let n = COUNTS.next(conn);
    crate::plan::decide_named(
        rt,
        op,
        conn,
        n,
        |rule| rule.host.as_ref().is_none_or(|g| g.matches(host)),
        |fault, param| match *fault {
            Fault::Resolver(code) => Ok(Action::Resolver(code)),
            Fault::Delay(range) => Ok(Action::Delay(range.pick(param))),
            // A lookup has no fd: the validator lets nothing else reach it.
            _ => Err(chaos_engine::realise::NotHere::NoFd),
        },
    )
}

/// The decision for a lookup, with its fault logged; Some(code) when the lookup must fail.
/// A delay is slept here and the real lookup then made by the caller.
fn fault_for(op: Op, host: &[u8]) -> Option<c_int> {
    let rt = runtime::get()?;
    if !runtime::in_own_process() {
        return None;
    }
    let plan = guarded(|| decide(rt, op, host)).flatten()?;
    let saved = sys::errno();
    let failed = match plan.action {
        Action::Resolver(code) => {
            guarded(|| log::write_resolve(rt, op, host, plan.source, &plan.key, 0));
            Some(code)
        }
        Action::Delay(ns) => {
            sys::sleep_ns(ns);
            guarded(|| log::write_resolve(rt, op, host, plan.source, &plan.key, ns));
            None
        }
        _ => None,
    };
    sys::set_errno(saved);
    failed
}

/// The bytes of a C string argument (empty for null).
fn name_of<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return b"";
    }
    // SAFETY: the caller passed a NUL-terminated name, as these functions require.
    unsafe { core::ffi::CStr::from_ptr(p) }.to_bytes()
}

fn set_h_errno(code: c_int) {
    unsafe extern "C" {
        fn __h_errno_location() -> *mut c_int;
    }
    // SAFETY: glibc's thread-local h_errno, always valid in the calling thread.
    unsafe { *__h_errno_location() = h_errno_for(code) };
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    // A null node is a lookup of the local service only: no name, nothing to fail.
    if !node.is_null()
        && let Some(code) = fault_for(Op::Getaddrinfo, name_of(node))
    {
        return code;
    }
    // SAFETY: the caller's arguments, passed on.
    unsafe { real::getaddrinfo(node, service, hints, res) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn getnameinfo(
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
    host: *mut c_char,
    hostlen: libc::socklen_t,
    serv: *mut c_char,
    servlen: libc::socklen_t,
    flags: c_int,
) -> c_int {
    // Matched by the numeric address, the name the program is asking about.
    let mut text = [0u8; 64];
    let n = numeric(addr, len, &mut text);
    if !host.is_null()
        && n > 0
        && let Some(code) = fault_for(Op::Getnameinfo, &text[..n])
    {
        return code;
    }
    // SAFETY: the caller's arguments, passed on.
    unsafe { real::getnameinfo(addr, len, host, hostlen, serv, servlen, flags) }
}

/// An IPv4 or IPv6 socket address as text (`127.0.0.1`, `::1`); 0 for anything else.
fn numeric(addr: *const libc::sockaddr, len: libc::socklen_t, out: &mut [u8; 64]) -> usize {
    use core::fmt::Write;
    struct Buf<'a>(&'a mut [u8; 64], usize);
    impl Write for Buf<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.1 + s.len();
            if end > self.0.len() {
                return Err(core::fmt::Error);
            }
            self.0[self.1..end].copy_from_slice(s.as_bytes());
            self.1 = end;
            Ok(())
        }
    }
    if addr.is_null() {
        return 0;
    }
    let mut b = Buf(out, 0);
    // SAFETY: the caller's sockaddr of `len` bytes; its family says which type it is, checked
    // against the length before the cast.
    let ok = unsafe {
        match (*addr).sa_family as c_int {
            libc::AF_INET if len as usize >= core::mem::size_of::<libc::sockaddr_in>() => {
                let sin = &*(addr as *const libc::sockaddr_in);
                let ip = core::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                write!(b, "{ip}").is_ok()
            }
            libc::AF_INET6 if len as usize >= core::mem::size_of::<libc::sockaddr_in6>() => {
                let sin6 = &*(addr as *const libc::sockaddr_in6);
                let ip = core::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                write!(b, "{ip}").is_ok()
            }
            _ => false,
        }
    };
    if ok { b.1 } else { 0 }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut libc::hostent {
    if let Some(code) = fault_for(Op::Gethostbyname, name_of(name)) {
        set_h_errno(code);
        return core::ptr::null_mut();
    }
    // SAFETY: the caller's argument, passed on.
    unsafe { real::gethostbyname(name) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn gethostbyname2(name: *const c_char, af: c_int) -> *mut libc::hostent {
    if let Some(code) = fault_for(Op::Gethostbyname, name_of(name)) {
        set_h_errno(code);
        return core::ptr::null_mut();
    }
    // SAFETY: the caller's arguments, passed on.
    unsafe { real::gethostbyname2(name, af) }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn gethostbyname_r(
    name: *const c_char,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    buflen: libc::size_t,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
) -> c_int {
    // SAFETY: the caller's arguments, passed on as gethostbyname_r takes them.
    unsafe {
        reentrant(name, result, h_errnop, || {
            real::gethostbyname_r(name, ret, buf, buflen, result, h_errnop)
        })
    }
}

#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn gethostbyname2_r(
    name: *const c_char,
    af: c_int,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    buflen: libc::size_t,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
) -> c_int {
    // SAFETY: the caller's arguments, passed on as gethostbyname2_r takes them.
    unsafe {
        reentrant(name, result, h_errnop, || {
            real::gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop)
        })
    }
}

/// A `_r` lookup: its failure (no result, `h_errno` in the caller's slot, glibc's return value),
/// or the real call.
///
/// # Safety
/// `result` and `h_errnop` are null or valid, as for gethostbyname_r.
unsafe fn reentrant(
    name: *const c_char,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
    real: impl FnOnce() -> c_int,
) -> c_int {
    let Some(code) = fault_for(Op::Gethostbyname, name_of(name)) else {
        return real();
    };
    // SAFETY: the caller's out-pointers (this function's contract).
    unsafe {
        if !result.is_null() {
            *result = core::ptr::null_mut();
        }
        if !h_errnop.is_null() {
            *h_errnop = h_errno_for(code);
        }
    }
    let r = reentrant_return_for(code);
    if r != 0 {
        sys::set_errno(r);
    }
    r
}
