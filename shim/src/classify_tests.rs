//! Classification and the fd table without a loaded shim: classification into a slot, release,
//! and what a slot keeps or drops when its fd number comes back as the same connection or as
//! another file. Tests run in parallel threads of one process: each uses fd numbers of its own
//! (the kernel never gives one number to two open files) and compares ordinals, never their
//! values.

use super::*;
use crate::fdtable::{MAX_FDS, invalidate, invalidate_range};
use crate::sockaddr::endpoint_of;
use chaos_engine::parse::parse_policy;

/// Rule 0 acts on unix sockets, rule 1 on pipes.
fn policy() -> Policy {
    parse_policy(
        "[[rules]]\non = \"reads\"\nfd = \"unix\"\nfault = \"EINTR\"\n\
         [[rules]]\non = \"reads\"\nfd = \"pipe\"\nfault = \"EINTR\"\n",
        "fdtable-test.toml",
    )
    .expect("the test policy parses")
}

fn socketpair() -> (c_int, c_int) {
    let mut fds = [-1; 2];
    // SAFETY: `fds` is a local array of two ints, as socketpair writes.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
    assert_eq!(r, 0, "socketpair");
    (fds[0], fds[1])
}

fn pipe() -> (c_int, c_int) {
    let mut fds = [-1; 2];
    // SAFETY: `fds` is a local array of two ints, as pipe writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    (fds[0], fds[1])
}

fn close(fds: &[c_int]) {
    for &fd in fds {
        invalidate(fd);
        // SAFETY: an fd this test opened and nothing else uses.
        unsafe { libc::close(fd) };
    }
}

/// Puts `from`'s open file at number `to` (closing what was there), as a program's dup2 does.
fn dup_onto(from: c_int, to: c_int) {
    // SAFETY: integers; both fds are this test's.
    assert_eq!(unsafe { libc::dup2(from, to) }, to);
}

#[test]
fn classify_claims_the_slot_and_invalidate_releases_it() {
    let p = policy();
    let (a, b) = socketpair();
    let m = classify(&p, a, Role::Other);
    assert!(m.valid());
    assert_eq!(m.kind(), FdKind::Unix);
    assert!(m.stream(), "a unix SOCK_STREAM is a byte stream");
    assert_eq!(m.role(), Role::Other);
    assert_eq!(m.mask(), 0b01, "only the unix rule covers it");
    assert_eq!(
        Meta(slot(a).unwrap().meta.load(Relaxed)).0,
        m.0,
        "stored in the slot"
    );
    invalidate(a);
    assert!(!Meta(slot(a).unwrap().meta.load(Relaxed)).valid());
    close(&[a, b]);
}

#[test]
fn the_same_socket_classified_again_keeps_its_ordinal_and_state() {
    let p = policy();
    let (a, b) = socketpair();
    let first = classify(&p, a, Role::Other);
    let s = slot(a).unwrap();
    let (ordinal, conn) = (s.ordinal.load(Relaxed), s.conn.load(Relaxed));
    // A reset armed on the connection outlives its reclassification (after a connect, say),
    // and keeps every call on the slow path.
    s.reset_at.store(42, Relaxed);
    s.pos[0].store(100, Relaxed);
    let again = classify(&p, a, Role::Other);
    assert_eq!(s.ordinal.load(Relaxed), ordinal);
    assert_eq!(s.conn.load(Relaxed), conn);
    assert_eq!(s.reset_at.load(Relaxed), 42);
    assert_eq!(again.0 & !FORCE_SLOW, first.0);
    assert!(
        again.0 & FORCE_SLOW != 0,
        "an armed reset forces the slow path"
    );
    assert_eq!(
        s.pos[0].load(Relaxed),
        0,
        "positions restart with each classification"
    );
    s.reset_at.store(0, Relaxed);
    close(&[a, b]);
}

#[test]
fn a_reused_fd_number_is_a_new_connection_with_nothing_of_the_old() {
    let p = policy();
    let (a, b) = socketpair();
    classify(&p, a, Role::Other);
    let s = slot(a).unwrap();
    let (ordinal, conn) = (s.ordinal.load(Relaxed), s.conn.load(Relaxed));
    s.reset_at.store(42, Relaxed);
    s.tox_ready[0].store(7, Relaxed);
    s.tox_slice[0].store(7, Relaxed);
    s.calls[0].store(5, Relaxed);
    assert!(still_same_file(a, s));

    // Another socket of the same kind takes the number: a new ordinal, no old state.
    let (c, d) = socketpair();
    dup_onto(c, a);
    assert!(
        !still_same_file(a, s),
        "the slot no longer describes the file at the number"
    );
    let m = classify(&p, a, Role::Other);
    assert_eq!(m.kind(), FdKind::Unix);
    assert_ne!(s.ordinal.load(Relaxed), ordinal);
    assert_ne!(s.conn.load(Relaxed), conn);
    assert_eq!(s.reset_at.load(Relaxed), 0);
    assert_eq!(s.tox_ready[0].load(Relaxed), 0);
    assert_eq!(s.tox_slice[0].load(Relaxed), 0);
    assert_eq!(s.calls[0].load(Relaxed), 0);
    assert!(m.0 & FORCE_SLOW == 0, "nothing armed on the new connection");

    // A pipe takes it: another kind, another rule's mask.
    let (r, w) = pipe();
    dup_onto(r, a);
    let m = classify(&p, a, Role::Other);
    assert_eq!(m.kind(), FdKind::Pipe);
    assert_eq!(m.mask(), 0b10, "only the pipe rule covers it");
    close(&[a, b, c, d, r, w]);
}

#[test]
fn invalidate_range_releases_exactly_the_range() {
    let p = policy();
    let (a, b) = socketpair();
    let (c, d) = socketpair();
    let mut fds = [a, b, c, d];
    fds.sort();
    for fd in fds {
        classify(&p, fd, Role::Other);
    }
    // The middle two: the outer ones stay claimed.
    invalidate_range(fds[1] as u32, fds[2] as u32);
    let valid = |fd: c_int| Meta(slot(fd).unwrap().meta.load(Relaxed)).valid();
    assert!(valid(fds[0]) && valid(fds[3]));
    assert!(!valid(fds[1]) && !valid(fds[2]));
    // A range past the table's end is cut at its end, not a panic.
    invalidate_range(MAX_FDS as u32 - 1, u32::MAX);
    close(&fds);
}

#[test]
fn fds_past_the_table_have_no_slot() {
    assert!(slot(-1).is_none());
    assert!(slot(MAX_FDS as c_int).is_none());
    assert!(slot(MAX_FDS as c_int - 1).is_some());
    assert!(!classify(&policy(), -1, Role::Other).valid());
}

#[test]
fn sockaddrs_decode_by_family_and_length() {
    // SAFETY: sockaddr_in is plain data; all zeroes is valid.
    let mut sin: libc::sockaddr_in = unsafe { core::mem::zeroed() };
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    sin.sin_port = 8080u16.to_be();
    sin.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
    let sa = &sin as *const _ as *const libc::sockaddr;
    let full = core::mem::size_of::<libc::sockaddr_in>();
    // SAFETY: `sin` is `full` bytes long, and every length passed is at most that.
    let (v4, short) = unsafe { (endpoint_of(sa, full), endpoint_of(sa, full - 1)) };
    assert_eq!(v4, Endpoint::Ip("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(
        short,
        Endpoint::Unknown,
        "a truncated sockaddr_in is not read"
    );

    // SAFETY: sockaddr_in6 is plain data; all zeroes is valid.
    let mut sin6: libc::sockaddr_in6 = unsafe { core::mem::zeroed() };
    sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sin6.sin6_port = 443u16.to_be();
    sin6.sin6_addr.s6_addr[15] = 1;
    let len6 = core::mem::size_of::<libc::sockaddr_in6>();
    // SAFETY: `sin6` is `len6` bytes long.
    let v6 = unsafe { endpoint_of(&sin6 as *const _ as *const libc::sockaddr, len6) };
    assert_eq!(v6, Endpoint::Ip("[::1]:443".parse().unwrap()));

    // SAFETY: sockaddr_un is plain data; all zeroes is valid.
    let mut sun: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (i, b) in b"/run/app.sock".iter().enumerate() {
        sun.sun_path[i] = *b as libc::c_char;
    }
    let un = &sun as *const _ as *const libc::sockaddr;
    // SAFETY: `sun` is a whole sockaddr_un; both lengths are within it.
    let (path, cut) = unsafe {
        (
            endpoint_of(un, core::mem::size_of::<libc::sockaddr_un>()),
            endpoint_of(un, 2 + 4),
        )
    };
    assert_eq!(path, Endpoint::Unix(b"/run/app.sock"), "up to the NUL");
    assert_eq!(cut, Endpoint::Unix(b"/run"), "never past the length given");

    // An abstract name: the same bytes behind a leading NUL, in a sockaddr of its own.
    let mut abs_sun = sun;
    abs_sun.sun_path[0] = 0;
    let len = 2 + b"/run/app.sock".len();
    // SAFETY: `abs_sun` is a whole sockaddr_un; `len` is within it.
    let abs = unsafe { endpoint_of(&abs_sun as *const _ as *const libc::sockaddr, len) };
    assert_eq!(
        abs,
        Endpoint::Unix(b"\0run/app.sock"),
        "an abstract name keeps its NUL"
    );

    // SAFETY: a null pointer is checked before anything is read.
    let null = unsafe { endpoint_of(core::ptr::null(), 16) };
    assert_eq!(null, Endpoint::Unknown);
}
