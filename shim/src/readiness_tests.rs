//! Readiness bookkeeping without a loaded shim, on real epoll sets: which registrations are
//! known (so that faking "not ready" is safe), what a stall hides, and that its end re-arms an
//! edge-triggered registration. Tests share the process's tables: each uses fds of its own and
//! keeps an epoll fd of its own open while it asserts on `registrations_known`.

use super::*;

fn socketpair() -> (c_int, c_int) {
    let mut fds = [-1; 2];
    // SAFETY: `fds` is a local array of two ints, as socketpair writes.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
    assert_eq!(r, 0, "socketpair");
    (fds[0], fds[1])
}

/// An epoll fd made as a program's would be, seen by `on_epoll_created`.
fn epoll() -> c_int {
    // SAFETY: an integer argument.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0, "epoll_create1");
    on_epoll_created(ep);
    ep
}

/// The program's epoll_ctl: the real call, then what the hook records.
fn add(ep: c_int, fd: c_int, events: u32) {
    let mut ev = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: `ev` lives across the call; the fds are this test's.
    let r = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    assert_eq!(r, 0, "epoll_ctl ADD");
    on_epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, events, fd as u64);
}

/// The events ready for `fd` in `ep` now (a zero-timeout wait; the shim's wake fd ignored).
fn ready(ep: c_int, fd: c_int) -> u32 {
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 8];
    // SAFETY: `evs` holds 8 events, the count passed.
    let n = unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), 8, 0) };
    evs[..n.max(0) as usize]
        .iter()
        .filter(|e| e.u64 == fd as u64)
        .fold(0, |acc, e| acc | e.events)
}

fn close(fds: &[c_int]) {
    for &fd in fds {
        forget_fd(fd);
        fdtable::invalidate(fd);
        // SAFETY: an fd this test opened and nothing else uses.
        unsafe { libc::close(fd) };
    }
}

const IN_ET: u32 = (libc::EPOLLIN | libc::EPOLLET) as u32;

#[test]
fn registrations_are_known_only_when_every_one_was_seen_and_can_be_rearmed() {
    let (ep, keep) = (epoll(), epoll());
    let (a, b) = socketpair();
    assert!(
        !registrations_known(a),
        "in a process using epoll, no registration seen"
    );
    add(ep, a, IN_ET);
    assert!(registrations_known(a));
    // EPOLLEXCLUSIVE registrations cannot be MODed (EINVAL): they cannot be re-armed.
    add(keep, b, IN_ET | libc::EPOLLEXCLUSIVE as u32);
    assert!(!registrations_known(b));
    // Closing the epoll fd takes its registrations with it.
    forget_fd(ep);
    assert!(
        !registrations_known(a),
        "the only registration went with its epoll fd"
    );
    // SAFETY: the epoll fd this test made.
    unsafe { libc::close(ep) };
    close(&[a, b, keep]);
}

#[test]
fn more_epoll_sets_than_tracked_make_the_fd_unknown() {
    let eps: Vec<c_int> = (0..=REGS_PER_FD).map(|_| epoll()).collect();
    let (a, b) = socketpair();
    for &ep in &eps[..REGS_PER_FD] {
        add(ep, a, IN_ET);
    }
    assert!(registrations_known(a));
    add(eps[REGS_PER_FD], a, IN_ET);
    assert!(!registrations_known(a), "a set we could not record");
    close(&[a, b]);
    close(&eps);
}

#[test]
fn a_stall_hides_its_direction_and_its_end_rearms_the_edge() {
    let ep = epoll();
    let (a, b) = socketpair();
    add(ep, a, IN_ET | libc::EPOLLOUT as u32);
    let slot = fdtable::slot(a).unwrap();
    let _ = ready(ep, a); // the first edges (writable) consumed
    let until = sys::now_ns(libc::CLOCK_MONOTONIC) + 60_000_000_000;
    assert!(begin_stall(a, slot, Dir::Rx, until));
    assert_eq!(stalled_now(a), 1, "rx stalled");
    let all = (libc::EPOLLIN | libc::EPOLLOUT) as u32;
    assert_eq!(
        events_to_apply(a, all),
        libc::EPOLLOUT as u32,
        "a new MOD hides rx too"
    );
    // Data arrives while rx is hidden: no readable edge reaches the program.
    // SAFETY: one byte from a local.
    assert_eq!(unsafe { libc::write(b, b"x".as_ptr().cast(), 1) }, 1);
    assert_eq!(
        ready(ep, a) & libc::EPOLLIN as u32,
        0,
        "hidden while stalled"
    );
    // The end restores the registration; the MOD re-checks readiness: the edge is owed.
    end_stall(a, slot, Dir::Rx);
    assert_eq!(stalled_now(a), 0);
    assert_eq!(events_to_apply(a, all), all);
    assert_ne!(ready(ep, a) & libc::EPOLLIN as u32, 0, "the edge re-armed");
    assert_eq!(
        slot.meta.load(Relaxed) & fdtable::FORCE_SLOW,
        0,
        "back on the fast path"
    );
    close(&[a, b, ep]);
}

#[test]
fn a_one_shot_registration_is_left_to_the_programs_rearm() {
    let ep = epoll();
    let (a, b) = socketpair();
    add(ep, a, IN_ET | libc::EPOLLONESHOT as u32);
    let slot = fdtable::slot(a).unwrap();
    let until = sys::now_ns(libc::CLOCK_MONOTONIC) + 60_000_000_000;
    assert!(begin_stall(a, slot, Dir::Rx, until));
    // SAFETY: one byte from a local.
    assert_eq!(unsafe { libc::write(b, b"x".as_ptr().cast(), 1) }, 1);
    // Not MODed by the shim: a MOD would arm it again, handing the fd to a second thread.
    assert_ne!(
        ready(ep, a) & libc::EPOLLIN as u32,
        0,
        "still armed as the program left it"
    );
    end_stall(a, slot, Dir::Rx);
    assert_eq!(
        ready(ep, a),
        0,
        "disarmed by the event; the shim did not re-arm it"
    );
    close(&[a, b, ep]);
}

#[test]
fn an_expired_stall_ends_at_the_next_wait_and_a_running_one_clamps_it() {
    let (a, b) = socketpair();
    let slot = fdtable::slot(a).unwrap();
    let now = sys::now_ns(libc::CLOCK_MONOTONIC);
    let until = now + 30_000_000_000;
    assert!(begin_stall(a, slot, Dir::Tx, until));
    let next = crate::due::expire_and_next_end(now, "test").expect("a stall is running");
    assert!(
        next <= until,
        "the wait is clamped to the stall's end at the latest"
    );
    assert_eq!(stalled_now(a), 2, "tx still stalled");
    // Past its end (still before any other test's 60 s stalls end).
    crate::due::expire_and_next_end(until + 1, "test");
    assert_eq!(slot.stall_until[Dir::Tx as usize].load(Relaxed), 0, "ended");
    assert_eq!(stalled_now(a), 0);
    close(&[a, b]);
}
