//! A socket's shutdown state as BSD kernels track it ("can't receive more", "can't send more"),
//! rebuilt on Linux without side effects: TCP_INFO's state for TCP, POLLRDHUP/POLLHUP for unix
//! sockets, plus the shutdowns and connections the shim recorded. Never SO_ERROR (reading it clears
//! the pending error) and never MSG_PEEK (it returns buffered data instead of EOF).

use crate::fdtable::Slot;
use crate::sys::syscall;
use chaos_engine::kind::FdKind;
use core::sync::atomic::Ordering::Relaxed;
use libc::c_int;

/// Bits of `Slot::qstate`.
pub const SHUT_RD: u32 = 1;
pub const SHUT_WR: u32 = 2;
/// connect() succeeded or began, or accept() returned it.
pub const CONNECTED: u32 = 4;
/// An ECONNRESET converted to EPIPE on a send, still owed to the next read.
pub const PENDING_RESET: u32 = 8;
/// A send on this socket already failed once (send-reset-eprototype fires on the first only).
pub const SEND_FAILED: u32 = 16;
/// The last connect() was interrupted (EINTR).
pub const CONNECT_INTERRUPTED: u32 = 32;
/// A connect() failed (refused, timed out, unreachable).
pub const CONNECT_FAILED: u32 = 64;
/// SO_LINGER is on with a positive time: close() sleeps while data is unsent.
pub const LINGERING: u32 = 128;
/// A listener's last accept() got an injected pending error; the next one gets the connection.
pub const ACCEPT_ERROR_GIVEN: u32 = 256;

pub use chaos_engine::realise::Shut;

/// Linux TCP states (include/net/tcp_states.h).
const TCP_FIN_WAIT1: u8 = 4;
const TCP_FIN_WAIT2: u8 = 5;
const TCP_TIME_WAIT: u8 = 6;
const TCP_CLOSE: u8 = 7;
pub const TCP_CLOSE_STATE: u8 = TCP_CLOSE;
const TCP_CLOSE_WAIT: u8 = 8;
const TCP_LAST_ACK: u8 = 9;
const TCP_CLOSING: u8 = 11;

pub fn tcp_state(fd: c_int) -> Option<u8> {
    tcp_info_bytes::<8>(fd).map(|info| info[0])
}

/// What the quirks read from struct tcp_info.
pub struct TcpInfo {
    pub state: u8,
    /// tcpi_bytes_acked (Linux 4.2+): bytes the peer acknowledged, plus one for our SYN.
    pub bytes_acked: u64,
}

/// Offset of tcpi_bytes_acked: 8 bytes of u8 fields, 24 u32s, then tcpi_pacing_rate and
/// tcpi_max_pacing_rate.
const BYTES_ACKED_AT: usize = 8 + 24 * 4 + 2 * 8;

pub fn tcp_info(fd: c_int) -> Option<TcpInfo> {
    let info = tcp_info_bytes::<{ BYTES_ACKED_AT + 8 }>(fd)?;
    let acked: [u8; 8] = info[BYTES_ACKED_AT..].try_into().ok()?;
    Some(TcpInfo {
        state: info[0],
        bytes_acked: u64::from_ne_bytes(acked),
    })
}

/// struct tcp_info's first N bytes (the kernel fills what it has; older kernels leave the rest 0).
fn tcp_info_bytes<const N: usize>(fd: c_int) -> Option<[u8; N]> {
    let mut info = [0u8; N];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` (N) bytes into `info` and the length into `len`,
    // both locals.
    let r = unsafe {
        syscall!(
            libc::SYS_getsockopt,
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr(),
            &mut len
        )
    };
    (r == 0).then_some(info)
}

fn unix_hangup(fd: c_int) -> (bool, bool) {
    let revents = crate::sys::poll_one(fd, libc::POLLRDHUP, 0);
    (revents & libc::POLLHUP != 0, revents & libc::POLLRDHUP != 0)
}

pub fn shut_state(fd: c_int, kind: FdKind, slot: &Slot) -> Shut {
    let recorded = slot.qstate.load(Relaxed);
    let mut shut = Shut {
        cant_recv: recorded & SHUT_RD != 0,
        cant_send: recorded & SHUT_WR != 0,
    };
    match kind {
        FdKind::Tcp => match tcp_state(fd) {
            Some(TCP_CLOSE_WAIT) => shut.cant_recv = true,
            Some(TCP_FIN_WAIT1 | TCP_FIN_WAIT2) => shut.cant_send = true,
            Some(TCP_CLOSING | TCP_LAST_ACK | TCP_TIME_WAIT) => {
                shut.cant_recv = true;
                shut.cant_send = true;
            }
            // A fresh socket is CLOSE too: only one that was connected is disconnected.
            Some(TCP_CLOSE) if recorded & CONNECTED != 0 => {
                shut.cant_recv = true;
                shut.cant_send = true;
            }
            _ => {}
        },
        FdKind::Unix => {
            // The peer closed: BSD's unp_disconnect marks both directions.
            let (hup, rdhup) = unix_hangup(fd);
            if hup {
                shut.cant_recv = true;
                shut.cant_send = true;
            } else if rdhup {
                shut.cant_recv = true;
            }
        }
        _ => {}
    }
    shut
}

pub const TCP_SYN_SENT: u8 = 2;

pub fn tcp_disconnected_after_connect(fd: c_int, slot: &Slot) -> bool {
    slot.qstate.load(Relaxed) & CONNECTED != 0 && tcp_state(fd) == Some(TCP_CLOSE)
}
