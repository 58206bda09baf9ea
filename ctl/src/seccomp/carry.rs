//! Carrying out the engine's choice for a held call, whatever the call: an error (with what it
//! does to the connection, on our copy of the fd), a delay or degraded stall answered later from
//! a thread, a connect's special forms, a process fault; and its fault line in the log. The
//! data calls' short transfers and the grid's holds are their own files' (`calls`, `files`).

use super::args::target_sockaddr;
use super::breaks::break_connection;
use super::decide::Choice;
use super::events::{self, Applied, OnCall};
use super::state::Supervisor;
use super::sys::{self, Answer};
use chaos_engine::realise::{Action, ProcessAction};
use std::os::fd::AsRawFd;

/// A call the supervisor made itself, answered with its result `answer` after the delay `ns`
/// the rules chose for it; its fault line (the delay) is written now.
pub fn made_then_delayed(
    s: &mut Supervisor,
    (tgid, id): (i32, u64),
    on: &OnCall,
    d: &Choice,
    ns: u64,
    answer: Answer,
) -> Option<Answer> {
    let applied = Applied {
        delay_ns: ns,
        ..Applied::default()
    };
    let proc = s.procs.get(&tgid)?;
    events::fault(&mut s.log, &s.target, proc, on, d, &applied);
    s.answer_later(id, ns, || {}, answer);
    Some(Answer::Later)
}

/// Carries out what every call can get: errors (with what they do to the connection), delays,
/// degraded stalls, a connect's special forms and process faults.
pub fn common(
    s: &mut Supervisor,
    tgid: i32,
    n: &libc::seccomp_notif,
    on: OnCall,
    d: Choice,
    mut applied: Applied,
) -> Option<Answer> {
    let id = n.id;
    let ours = on.ours;
    let answer = match d.action {
        Action::Fail { errno, brk } => {
            if let Some(fd) = ours {
                applied.effect = break_connection(fd, brk);
            }
            applied.errno = Some(errno);
            applied.returned = Some(-1);
            Some(Answer::Fail(errno))
        }
        Action::Delay(ns) => {
            applied.delay_ns = ns;
            s.answer_later(id, ns, || {}, Answer::Continue);
            Some(Answer::Later)
        }
        Action::Stall { ns, .. } => {
            applied.delay_ns = ns;
            applied.stall_ns = ns;
            applied.degraded = Some("edge-triggered-readiness");
            s.answer_later(id, ns, || {}, Answer::Continue);
            Some(Answer::Later)
        }
        Action::FailAfter { errno, ns } => {
            applied.after_ns = ns;
            applied.errno = Some(errno);
            applied.returned = Some(-1);
            s.answer_later(id, ns, || {}, Answer::Fail(errno));
            Some(Answer::Later)
        }
        Action::ConnectEintr => {
            // As an interrupted blocking connect leaves it: the handshake goes on.
            let fd = ours?;
            let flags = sys::getfl(fd);
            sys::setfl(fd, flags | libc::O_NONBLOCK);
            let addr = target_sockaddr(tgid, n.data.args[1], n.data.args[2] as usize);
            if let Some(a) = &addr {
                // SAFETY: our copy of the fd and our copy of the address.
                unsafe {
                    libc::connect(fd, &a.storage as *const _ as *const libc::sockaddr, a.len)
                };
            }
            sys::setfl(fd, flags);
            applied.errno = Some(libc::EINTR);
            applied.returned = Some(-1);
            Some(Answer::Fail(libc::EINTR))
        }
        Action::ConnectRefusedLater => {
            let fd = ours?;
            match refusing_address(fd) {
                Some(a) => {
                    // SAFETY: our copy of the (non-blocking) socket and our address.
                    let r = unsafe {
                        libc::connect(fd, &a.storage as *const _ as *const libc::sockaddr, a.len)
                    };
                    let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                    applied.effect = Some("refused-by-kernel");
                    if r == 0 {
                        Some(Answer::Return(0))
                    } else {
                        applied.errno = Some(e);
                        applied.returned = Some(-1);
                        Some(Answer::Fail(e))
                    }
                }
                None => Some(Answer::Continue),
            }
        }
        Action::Process(p) => {
            let proc = s.procs.get(&tgid)?;
            events::fault(&mut s.log, &s.target, proc, &on, &d, &applied);
            return process_fault(s, tgid, id, p);
        }
        // Nothing this backend does (a toxic's or a reorder's action): no effect, so no line.
        _ => return Some(Answer::Continue),
    };
    let proc = s.procs.get(&tgid)?;
    events::fault(&mut s.log, &s.target, proc, &on, &d, &applied);
    answer
}

fn process_fault(s: &Supervisor, tgid: i32, id: u64, p: ProcessAction) -> Option<Answer> {
    match p {
        ProcessAction::Crash => {
            send(tgid, libc::SIGKILL);
            Some(Answer::Later)
        }
        ProcessAction::PowerLoss => {
            // SAFETY: getpgid has no memory arguments.
            let group = unsafe { libc::getpgid(tgid) };
            if group > 0 {
                send(-group, libc::SIGKILL);
            }
            send(tgid, libc::SIGKILL);
            Some(Answer::Later)
        }
        ProcessAction::Terminate => {
            send(tgid, s.target.stop_signal);
            Some(Answer::Continue)
        }
        ProcessAction::Pause(ns) => {
            send(tgid, libc::SIGSTOP);
            s.answer_later(id, ns, move || send(tgid, libc::SIGCONT), Answer::Continue);
            Some(Answer::Later)
        }
    }
}

/// Sends `signal` to a target process (or, negative, its group): a process fault carried out.
/// Failure means the process is gone already, which is what the fault wanted.
fn send(pid: i32, signal: i32) {
    // SAFETY: kill has no memory arguments.
    unsafe { libc::kill(pid, signal) };
}

/// A loopback address of `fd`'s family that nobody listens on (a port the kernel gave us and
/// took back), for a refusal the kernel itself delivers.
fn refusing_address(fd: i32) -> Option<sys::SockAddr> {
    let family = sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)?;
    let probe = std::net::TcpListener::bind(if family == libc::AF_INET6 {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    })
    .ok()?;
    let addr = sys::sockname(probe.as_raw_fd(), false);
    drop(probe);
    (addr.len > 0).then_some(addr)
}
