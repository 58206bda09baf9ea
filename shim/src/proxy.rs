//! Toxiproxy's proxies, in-process: a connect to an enabled proxy's `listen` address (the control
//! page's table, `chaos_engine::page::proxies`) connects the socket to its `upstream` instead, and
//! the fd remembers the proxy; its data calls then carry out the proxy's toxics for their
//! direction with the toxic machinery rules use (`crate::toxic`), read from the page per call.
//! There is no relay in between: the bytes go from the program's socket to the upstream's.
//!
//! - A disabled proxy is not redirected to: its connect goes to `listen` unchanged, where the
//!   relay's listener is closed, so the kernel refuses it as it would Toxiproxy's.
//! - A connection whose proxy is disabled or deleted is ended as Toxiproxy ends its connections:
//!   both directions shut (the upstream sees a FIN, reads see the end), at its next data call, or
//!   within a slice of a wait (poll, epoll, select) it is in. A read blocked in the kernel
//!   without a wait sees it only when data or the upstream's FIN wakes it.
//! - getpeername tells the program the address it connected to (`listen`), as with Toxiproxy.
//!
//! Only fds that went through a proxy pay for any of this: their meta carries `PROXIED`, which
//! sends their data calls to the targeted path; every other fd's fast path is unchanged.

use crate::fdtable::{FORCE_SLOW, Meta, PROXIED, Slot};
use crate::plan::{Call, Choice, Position, Source};
use chaos_engine::addr::Endpoint;
use chaos_engine::fault::Fault;
use chaos_engine::key::{Dir, Key, PROXY};
use chaos_engine::page::proxies::Redirect;
use core::net::{IpAddr, SocketAddr};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use libc::{c_int, sockaddr, socklen_t};

/// Where a connect to `addr` goes instead: the proxy's slot and its upstream written into `out`
/// (in the socket's family), with its length. None: not a proxy's address (or one this socket
/// cannot reach directly: a TCP socket only, and an IPv4 socket cannot reach an IPv6 upstream),
/// and the connect goes where the program said.
///
/// # Safety
/// `addr` must point at `len` readable bytes (connect's contract).
pub unsafe fn redirect(
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
    out: &mut libc::sockaddr_storage,
) -> Option<(usize, socklen_t)> {
    let page = crate::page::mapped().filter(|p| p.any_proxy())?;
    // SAFETY: the caller's contract.
    let Endpoint::Ip(to) = (unsafe { crate::sockaddr::endpoint_of(addr, len as usize) }) else {
        return None;
    };
    let Some(Redirect::To(proxy, upstream)) = page.redirect(&to) else {
        return None;
    };
    if crate::sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE) != Some(libc::SOCK_STREAM) {
        return None;
    }
    let len = write_sockaddr(&upstream, to.is_ipv6(), out)?;
    Some((proxy, len))
}

/// `a` as a sockaddr of the family `v6` says, into `out`: an IPv4 address becomes v4-mapped in
/// an IPv6 socket.
fn write_sockaddr(a: &SocketAddr, v6: bool, out: &mut libc::sockaddr_storage) -> Option<socklen_t> {
    let port = a.port().to_be();
    if v6 {
        let ip = match a.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(ip) => ip,
        };
        // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
        let s = unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in6) };
        s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        s.sin6_port = port;
        s.sin6_addr.s6_addr = ip.octets();
        Some(core::mem::size_of::<libc::sockaddr_in6>() as socklen_t)
    } else {
        let IpAddr::V4(ip) = a.ip() else {
            return None;
        };
        // SAFETY: as above.
        let s = unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in) };
        s.sin_family = libc::AF_INET as libc::sa_family_t;
        s.sin_port = port;
        s.sin_addr.s_addr = u32::from_ne_bytes(ip.octets());
        Some(core::mem::size_of::<libc::sockaddr_in>() as socklen_t)
    }
}

/// Remembers that `fd` connects through proxy `proxy`, and the address the program asked for
/// (what getpeername says). Before the real connect, so that the classification after it sees it.
///
/// # Safety
/// `addr` must point at `len` readable bytes.
pub unsafe fn mark(fd: c_int, proxy: usize, addr: *const sockaddr, len: socklen_t) {
    let Some(slot) = crate::fdtable::slot(fd) else {
        return;
    };
    let mut bytes = [0u8; 32];
    let n = (len as usize).min(bytes.len());
    // SAFETY: `n` is at most the `len` readable bytes at `addr`.
    unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, bytes.as_mut_ptr(), n) };
    for (w, chunk) in slot.proxy_peer.iter().zip(bytes.chunks(8)) {
        w.store(
            u64::from_ne_bytes(chunk.try_into().expect("8 bytes")),
            Relaxed,
        );
    }
    slot.proxy
        .store(((n as u32) << 16) | (proxy as u32 + 1), Relaxed);
    if !WATCHING.swap(true, Relaxed) {
        // From now on this process's waits take their slow loop, which looks at the proxies
        // (`watch_slice`): counted as one more user of it, so that the waits' fast path stays
        // the one load it is for every other process.
        crate::readiness::ACTIVE.fetch_add(1, core::sync::atomic::Ordering::SeqCst);
    }
}

/// Forgets the proxy of `fd` (its connect failed).
pub fn unmark(fd: c_int) {
    if let Some(slot) = crate::fdtable::slot(fd) {
        slot.proxy.store(0, Relaxed);
    }
}

/// The proxy a slot's connection went through.
#[inline(always)]
fn proxy_of(slot: &Slot) -> Option<usize> {
    match slot.proxy.load(Relaxed) & 0xffff {
        0 => None,
        p => Some(p as usize - 1),
    }
}

/// Whether a call on a proxied connection must look at its proxy: it has toxics, or it was
/// disabled or deleted. Two loads: an enabled proxy without toxics costs its connections no more
/// than a targeted fd's counting.
#[inline(always)]
pub fn needs_look(slot: &Slot) -> bool {
    match (proxy_of(slot), crate::page::mapped()) {
        (Some(p), Some(page)) => !page.proxy_quiet(p),
        _ => false,
    }
}

/// Whether the fd's connection went through a proxy (for the classification's `PROXIED`).
pub fn proxied(slot: &Slot) -> bool {
    proxy_of(slot).is_some()
}

/// getpeername on a proxied fd: the address the program connected to, into its buffer as the
/// kernel fills one (cut to the room given, the full length reported). False when the fd did
/// not go through a proxy.
///
/// # Safety
/// `addr` and `len` as getpeername's caller passed them.
pub unsafe fn peer(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> bool {
    let Some(slot) = crate::fdtable::slot(fd) else {
        return false;
    };
    let word = slot.proxy.load(Relaxed);
    if word & 0xffff == 0 || addr.is_null() || len.is_null() {
        return false;
    }
    let n = (word >> 16) as usize;
    let mut bytes = [0u8; 32];
    for (chunk, w) in bytes.chunks_mut(8).zip(&slot.proxy_peer) {
        chunk.copy_from_slice(&w.load(Relaxed).to_ne_bytes());
    }
    // SAFETY: the caller's buffer of `*len` bytes; we write at most that many.
    unsafe {
        let room = (*len as usize).min(n);
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, room);
        *len = n as socklen_t;
    }
    true
}

/// What a proxy does to a data call on a connection made through it.
// Returned by value on the hot path, where boxing the large variant would allocate.
#[allow(clippy::large_enum_variant)]
pub enum Verdict {
    /// Its toxics for the call's direction, as a fault to carry out.
    Toxics(Choice),
    /// It was disabled or deleted: the connection is ended; reads see the end of the stream,
    /// writes go on to fail as on a shut socket.
    Ended(Dir),
}

/// What a data call on a proxied connection gets from its proxy: None when the fd is not a
/// proxy's or no toxic acts on this direction of it (the policy's rules then decide).
pub fn decide(slot: &Slot, meta: Meta, call: &Call, at: &Position) -> Option<Verdict> {
    let proxy = proxy_of(slot)?;
    let page = crate::page::mapped()?;
    let dir = call.dir()?;
    if !page.proxy_enabled(proxy) {
        end(call.fd, slot, By::Call(call.op, call.requested));
        return Some(Verdict::Ended(dir));
    }
    let base_conn = at.base ^ at.conn;
    let draw = |entry: usize| chaos_engine::page::proxies::toxicity_draw(base_conn, entry);
    let (toxics, first) = page.toxics_for(proxy, dir == Dir::Tx, draw)?;
    let mut facts = crate::facts::LiveFacts::new(call.fd, slot, meta);
    let ctx = chaos_engine::realise::RuleContext { signal: None };
    let param = chaos_engine::chance::chance_of_words(base_conn, PROXY, at.site.words());
    let action = chaos_engine::realise::realise(
        &Fault::Toxic(toxics),
        ctx,
        &call.shape(meta),
        &mut facts,
        param,
    )
    .ok()?;
    let key = Key {
        process: at.process,
        conn: at.conn,
        rule: PROXY,
        site: at.site,
    };
    Some(Verdict::Toxics(Choice {
        action,
        source: Source::Proxy(first),
        key,
    }))
}

/// Whether the proxy of a connection still holds its `dir` in a timeout toxic's blackhole (the
/// toxic removed, or the proxy gone, lets the data flow again).
pub fn blackhole_on(slot: &Slot, dir: Dir) -> bool {
    let (Some(proxy), Some(page)) = (proxy_of(slot), crate::page::mapped()) else {
        return false;
    };
    // The toxicity draw was made when the blackhole began: any timeout toxic left holds on.
    page.toxics_for(proxy, dir == Dir::Tx, |_| 0)
        .is_some_and(|(x, _)| x.blackhole)
}

/// The proxy was disabled or deleted: Toxiproxy closes its connections, so both directions are
/// shut here (the upstream sees a FIN, as from the proxy), once, and logged; reads see the end of
/// the stream from now on (what was still queued never came through the proxy), writes fail as
/// on a shut socket. `by`: the call or wait that found it.
fn end(fd: c_int, slot: &Slot, by: By) {
    if slot.proxy.swap(0, Relaxed) & 0xffff == 0 {
        return;
    }
    let addrs = crate::log::Addrs::read(fd);
    crate::act::apply_break(fd, chaos_engine::realise::Break::ShutBoth);
    slot.reads_ended.store(1, Relaxed);
    let meta = Meta(slot.meta.fetch_or(FORCE_SLOW, Relaxed));
    slot.meta.fetch_and(!PROXIED, Relaxed);
    if let Some(rt) = crate::runtime::get() {
        let by = match by {
            By::Call(op, n) => (op.name(), Some(n)),
            By::Wait(name) => (name, None),
        };
        crate::log::write_proxy_closed(rt, by, fd, meta, slot, &addrs);
    }
}

/// Who found a connection's proxy gone.
#[derive(Clone, Copy)]
pub(crate) enum By {
    Call(chaos_engine::op::Op, usize),
    Wait(&'static str),
}

/// Set once this process has made a connection through a proxy: only then do its waits look at
/// the proxies (`watch_slice`).
static WATCHING: AtomicBool = AtomicBool::new(false);
/// The page generation the last sweep looked at.
static SWEPT: AtomicU64 = AtomicU64::new(0);

/// How long a wait may sleep before it looks at the proxies again (None: it need not): a
/// process with connections through a proxy learns of a disabled proxy within a hold's slice,
/// as a heal is seen.
#[inline(always)]
pub fn watch_slice() -> Option<u64> {
    (WATCHING.load(Relaxed) && crate::page::mapped().is_some_and(|p| p.any_proxy()))
        .then_some(crate::hold::SLICE_NS)
}

/// From a wait: when the page changed since the last look, ends every connection of this
/// process whose proxy is no longer enabled, so the wait sees the end of its stream as it would
/// see Toxiproxy's FIN. Walks the fd table only on a change.
pub fn sweep(waiter: &'static str) {
    let Some(page) = crate::page::mapped() else {
        return;
    };
    let g = page.generation();
    if SWEPT.swap(g, Relaxed) == g {
        return;
    }
    for fd in 0..crate::fdtable::MAX_FDS as c_int {
        let Some(slot) = crate::fdtable::slot(fd) else {
            break;
        };
        if let Some(p) = proxy_of(slot)
            && !page.proxy_enabled(p)
        {
            end(fd, slot, By::Wait(waiter));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(a: &str, v6: bool) -> Option<(libc::sockaddr_storage, socklen_t)> {
        // SAFETY: sockaddr_storage is plain data; all zeroes is a valid (AF_UNSPEC) value.
        let mut out: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
        let len = write_sockaddr(&a.parse().unwrap(), v6, &mut out)?;
        Some((out, len))
    }

    #[test]
    fn an_upstream_is_written_in_the_sockets_family() {
        let (out, len) = written("127.0.0.1:6379", false).unwrap();
        // SAFETY: `len` bytes were written at `out`, which outlives the endpoint.
        let ep =
            unsafe { crate::sockaddr::endpoint_of(&out as *const _ as *const _, len as usize) };
        assert_eq!(ep, Endpoint::Ip("127.0.0.1:6379".parse().unwrap()));
        // An IPv6 socket reaches an IPv4 upstream by its mapped address.
        let (out, len) = written("127.0.0.1:6379", true).unwrap();
        // SAFETY: as above.
        let ep =
            unsafe { crate::sockaddr::endpoint_of(&out as *const _ as *const _, len as usize) };
        assert_eq!(ep, Endpoint::Ip("[::ffff:127.0.0.1]:6379".parse().unwrap()));
        assert!(
            written("[::1]:6379", false).is_none(),
            "an IPv4 socket cannot reach an IPv6 upstream: the connect goes to the relay"
        );
    }
}
