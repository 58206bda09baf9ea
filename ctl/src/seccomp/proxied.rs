//! Toxiproxy's proxies for a program under this backend, as the shim's `proxy.rs` makes them in
//! process (the control page's table, `chaos_engine::page::proxies`): no relay hop for a static
//! or Go program either.
//!
//! - connect to an enabled proxy's `listen`: the supervisor connects the same socket to
//!   `upstream` by calling connect on its copy (the same open file description, so the
//!   program's O_NONBLOCK and socket options hold), and answers with that call's result:
//!   EINPROGRESS for a non-blocking socket, a blocking one's result from a thread (the loop is
//!   not held). The program's memory is not written: its sockaddr still says `listen`. A
//!   disabled proxy's connect runs unchanged, to the relay's closed listener, and the refusal is
//!   the kernel's.
//! - getpeername on such a socket says `listen`, written into the program's buffer as the kernel
//!   fills one, as through Toxiproxy (Go asks right after connect, net/fd_unix.go).
//! - its data calls carry out the proxy's toxics for their direction, read from the page at
//!   each call, with the supervisor's toxic machinery (`toxic`), at the shim's keys and with the
//!   shim's per-connection toxicity draws; a disabled or deleted proxy ends its connections
//!   (both directions shut on our copy) at their next notified call.

use super::args;
use super::breaks::break_connection;
use super::decide::{Choice, Source};
use super::events::{Applied, OnCall};
use super::facts::HeldFacts;
use super::fdview::Through;
use super::state::Supervisor;
use super::sys::{self, Answer};
use chaos_engine::addr::Endpoint;
use chaos_engine::fault::Fault;
use chaos_engine::key::{Dir, Key, PROXY, Site};
use chaos_engine::kind::FdKind;
use chaos_engine::op::Op;
use chaos_engine::page::proxies::{Redirect, toxicity_draw};
use chaos_engine::realise::{self, Action, Break, RuleContext};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

/// The answer to a connect to a proxy's `listen`, made to its upstream; None when `dest` is no
/// enabled proxy's (or not reachable from this socket), and the connect is the program's.
pub fn connect(
    s: &mut Supervisor,
    tgid: i32,
    n: &libc::seccomp_notif,
    dest: &sys::SockAddr,
) -> Option<Answer> {
    let mapped = s.target.proxies()?.clone();
    let page = mapped.page();
    if !page.any_proxy() {
        return None;
    }
    let Endpoint::Ip(to) = dest.endpoint() else {
        return None;
    };
    let Some(Redirect::To(proxy, upstream)) = page.redirect(&to) else {
        return None;
    };
    let fd = n.data.args[0] as i32;
    let view = s.procs.get_mut(&tgid)?.fds.get_mut(&fd)?;
    if view.kind != FdKind::Tcp || !view.stream {
        return None;
    }
    let (storage, len) = sockaddr_of(&upstream, to.is_ipv6())?;
    if to.is_ipv6()
        && upstream.is_ipv4()
        && sys::getsockopt_int(view.fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) == Some(1)
    {
        return None; // an IPv6-only socket cannot reach it by its mapped address
    }
    let ours = view.ours.as_ref()?.try_clone().ok()?;
    // SAFETY: `dest.storage` holds `dest.len` initialised bytes (at most its size).
    let listen = unsafe {
        std::slice::from_raw_parts(
            &dest.storage as *const _ as *const u8,
            (dest.len as usize).min(std::mem::size_of::<libc::sockaddr_storage>()),
        )
    }
    .to_vec();
    view.proxy = Some(Through {
        proxy,
        listen,
        ended: false,
    });
    if sys::getfl(ours.as_raw_fd()) & libc::O_NONBLOCK != 0 {
        let answer = connect_ours(&ours, &storage, len);
        if let Answer::Fail(e) = answer
            && !goes_on(e)
        {
            view.proxy = None;
        }
        return Some(answer);
    }
    // A blocking connect waits for the handshake: from a thread, so that the loop goes on.
    let listener = s.listener.clone();
    let id = n.id;
    let spawned = std::thread::Builder::new()
        .name("seccomp-proxy-connect".into())
        .spawn(move || {
            let answer = connect_ours(&ours, &storage, len);
            if sys::notif_valid(listener.as_raw_fd(), id) {
                let _ = sys::notif_send(listener.as_raw_fd(), id, answer);
            }
        });
    match spawned {
        Ok(_) => Some(Answer::Later),
        Err(_) => {
            view.proxy = None;
            None
        }
    }
}

/// Where a connect to `dest` goes if it is an enabled proxy's `listen`: its upstream.
pub fn upstream(target: &super::target::Target, dest: &sys::SockAddr) -> Option<Endpoint<'static>> {
    let page = target.proxies()?.page();
    let Endpoint::Ip(to) = dest.endpoint() else {
        return None;
    };
    match page.redirect(&to)? {
        Redirect::To(_, up) => Some(Endpoint::Ip(up)),
        Redirect::Refused => None,
    }
}

/// Whether a connect that failed with `e` leaves the connection going on in the background.
fn goes_on(e: i32) -> bool {
    matches!(
        e,
        libc::EINPROGRESS | libc::EINTR | libc::EALREADY | libc::EISCONN
    )
}

fn connect_ours(fd: &OwnedFd, storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Answer {
    // SAFETY: our copy of the socket, and an address of ours `len` bytes long.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            storage as *const _ as *const libc::sockaddr,
            len,
        )
    };
    if r == 0 {
        Answer::Return(0)
    } else {
        Answer::Fail(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    }
}

/// `a` as a sockaddr of the family `v6` says: an IPv4 upstream becomes v4-mapped in an IPv6
/// socket; an IPv4 socket cannot reach an IPv6 upstream (None: its connect goes to the relay).
fn sockaddr_of(a: &SocketAddr, v6: bool) -> Option<(libc::sockaddr_storage, libc::socklen_t)> {
    // SAFETY: sockaddr_storage is plain data; all zeroes is a valid (AF_UNSPEC) value.
    let mut out: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let port = a.port().to_be();
    if v6 {
        let ip = match a.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(ip) => ip,
        };
        // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
        let s = unsafe { &mut *(&mut out as *mut _ as *mut libc::sockaddr_in6) };
        s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        s.sin6_port = port;
        s.sin6_addr.s6_addr = ip.octets();
        Some((out, std::mem::size_of::<libc::sockaddr_in6>() as _))
    } else {
        let IpAddr::V4(ip) = a.ip() else {
            return None;
        };
        // SAFETY: as above.
        let s = unsafe { &mut *(&mut out as *mut _ as *mut libc::sockaddr_in) };
        s.sin_family = libc::AF_INET as libc::sa_family_t;
        s.sin_port = port;
        s.sin_addr.s_addr = u32::from_ne_bytes(ip.octets());
        Some((out, std::mem::size_of::<libc::sockaddr_in>() as _))
    }
}

/// getpeername on a connection made through a proxy: `listen`, into the program's buffer as
/// the kernel fills one (cut to the room given, the full length reported). None lets the call
/// run: not a proxy's connection, or not connected yet (the kernel's own ENOTCONN).
pub fn peer(s: &Supervisor, tgid: i32, n: &libc::seccomp_notif) -> Option<Answer> {
    let args = n.data.args;
    let view = s.procs.get(&tgid)?.fds.get(&(args[0] as i32))?;
    let through = view.proxy.as_ref().filter(|t| !t.ended)?;
    if args[1] == 0 || args[2] == 0 || sys::sockname(view.fd(), true).len == 0 {
        return None;
    }
    let room: u32 = sys::read_target_value(tgid, args[2])?;
    let k = (room as usize).min(through.listen.len());
    let full = (through.listen.len() as u32).to_ne_bytes();
    if !sys::write_target(tgid, args[1], &through.listen[..k])
        || !sys::write_target(tgid, args[2], &full)
    {
        return None; // the kernel's EFAULT
    }
    Some(Answer::Return(0))
}

/// A data call on a connection made through a proxy: its end if the proxy was disabled or
/// deleted, else its toxics for the call's direction. None: not a proxy's connection, or no
/// toxic acts on it (the policy's rules then decide).
pub fn data(
    s: &mut Supervisor,
    tgid: i32,
    tid: i32,
    n: &libc::seccomp_notif,
    op: Op,
) -> Option<Answer> {
    let args = n.data.args;
    let fd = args[0] as i32;
    let dir = op.dir()?;
    let mapped = s.target.proxies()?.clone();
    let proc = s.procs.get_mut(&tgid)?;
    let view = proc.fds.get_mut(&fd)?;
    let through = view.proxy.as_ref()?;
    if through.ended {
        return Some(ended(tgid, op, &args, dir));
    }
    let page = mapped.page();
    let p = through.proxy;
    if page.proxy_quiet(p) {
        return None;
    }
    if !page.proxy_enabled(p) {
        break_connection(view.fd(), Break::ShutBoth);
        if let Some(t) = view.proxy.as_mut() {
            t.ended = true;
        }
        let requested = requested(tgid, op, &args);
        let on = OnCall::new(op, fd, tid, Some(&*view), requested);
        let key = Key {
            process: proc.key,
            conn: view.conn,
            rule: PROXY,
            site: Site::Call {
                class: op.class(),
                n: view.calls[op.class() as usize],
            },
        };
        let d = Choice {
            action: Action::Delay(0),
            source: Source::Proxy(0),
            key,
        };
        let applied = Applied {
            effect: Some("proxy-disabled"),
            ..Applied::default()
        };
        let mut line = super::events::fault_line(&s.target, proc, &on, &d, &applied);
        line.fault = "close".into();
        line.key = None;
        s.log.emit_fault(line);
        return Some(ended(tgid, op, &args, dir));
    }
    let base_conn = proc.base ^ view.conn;
    let (toxics, first) =
        page.toxics_for(p, dir == Dir::Tx, |entry| toxicity_draw(base_conn, entry))?;
    let requested = requested(tgid, op, &args)?;
    let class = op.class();
    let site = if view.offsets && !op.is_multi_message() {
        let (pos, attempt) = view.stream_site(dir);
        Site::Stream { dir, pos, attempt }
    } else {
        Site::Call {
            class,
            n: view.calls[class as usize],
        }
    };
    let key = Key {
        process: proc.key,
        conn: view.conn,
        rule: PROXY,
        site,
    };
    let call = realise::Call {
        op,
        kind: view.kind,
        stream: view.stream,
        requested: requested as usize,
        msg_flags: args::msg_flags(op, &args),
    };
    let param = chaos_engine::chance::chance_of_words(base_conn, PROXY, site.words());
    let view: &super::fdview::FdView = view;
    let mut facts = HeldFacts { view, tid };
    let action = realise::realise(
        &Fault::Toxic(toxics),
        RuleContext::default(),
        &call,
        &mut facts,
        param,
    )
    .ok()?;
    let Action::Toxic { toxics, mode } = action else {
        return None;
    };
    let on = OnCall::new(op, fd, tid, Some(view), Some(requested));
    // Where the page's change first took effect in this process, for its `seen` line.
    s.target.last_place = Some(key.place());
    let d = Choice {
        action,
        source: Source::Proxy(first),
        key,
    };
    super::toxic::carry(s, tgid, n, op, on, &d, toxics, mode)
}

/// What a data call on an ended connection gets: the end of the stream, or the kernel's EPIPE
/// on the shut socket.
fn ended(tgid: i32, op: Op, args: &[u64; 6], dir: Dir) -> Answer {
    match dir {
        Dir::Rx => {
            super::args::fill_reply_fields(tgid, op, args);
            Answer::Return(0)
        }
        Dir::Tx => Answer::Continue,
    }
}

/// The bytes a data call asks to move (messages, for the multi-message calls).
fn requested(tgid: i32, op: Op, args: &[u64; 6]) -> Option<u64> {
    if op.is_multi_message() {
        return Some(args[2]);
    }
    let bufs = args::buffers(tgid, op, args)?;
    Some(bufs.iter().map(|b| b.1 as u64).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_is_written_in_the_sockets_family() {
        let (s, len) = sockaddr_of(&"127.0.0.1:6379".parse().unwrap(), false).unwrap();
        let a = sys::SockAddr { storage: s, len };
        assert_eq!(
            a.endpoint(),
            Endpoint::Ip("127.0.0.1:6379".parse().unwrap())
        );
        let (s, len) = sockaddr_of(&"127.0.0.1:6379".parse().unwrap(), true).unwrap();
        let a = sys::SockAddr { storage: s, len };
        assert_eq!(
            a.endpoint(),
            Endpoint::Ip("[::ffff:127.0.0.1]:6379".parse().unwrap()),
            "an IPv6 socket reaches an IPv4 upstream by its mapped address"
        );
        assert!(
            sockaddr_of(&"[::1]:6379".parse().unwrap(), false).is_none(),
            "an IPv4 socket cannot reach an IPv6 upstream: its connect goes to the relay"
        );
    }
}
