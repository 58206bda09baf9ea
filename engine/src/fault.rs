//! What a rule does when it fires (its syntax is `parse::fault`).

use crate::errno::errno_name;

/// Inclusive range of nanoseconds, e.g. `delay = "10ms..200ms"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NsRange {
    pub lo: u64,
    pub hi: u64,
}

/// How much a short read or write transfers, e.g. `short = "1..50%"` or `short = "1..512"` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShortSpec {
    Percent { lo: u8, hi: u8 },
    Bytes { lo: u64, hi: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fail the call with this errno before it does anything (EINTR included). ECONNRESET and EPIPE
    /// on a connected stream socket also break the connection for real, so later calls agree.
    Errno(i32),
    /// `{ errno = "ETIMEDOUT", after = "3s" }`: a connect that fails only after this long, the time
    /// the kernel's SYN retries take (127 s by default, shortened here explicitly).
    ErrnoAfter { errno: i32, after_ns: u64 },
    /// Send a real RST (`connect(AF_UNSPEC)` on the live TCP socket) and fail with ECONNRESET.
    Reset,
    /// Sleep, then make the real call.
    Delay(NsRange),
    /// Transfer fewer bytes than asked (stream sockets, pipes, file reads only).
    Short(ShortSpec),
    /// The fd is not ready for this long: EAGAIN (with its readiness hidden from epoll/poll/select)
    /// where the call could not block, a delay where it could.
    Stall(NsRange),
    /// A resolver failure (`resolve` ops): getaddrinfo/getnameinfo return this EAI_* code; the
    /// gethostbyname family returns no host with the matching `h_errno`.
    Resolver(i32),
    /// UDP: a sent datagram reported sent and never delivered, or a received one consumed and not
    /// delivered (the next one is returned, or EAGAIN).
    Drop,
    /// UDP sends: the datagram goes out twice.
    Duplicate,
    /// UDP sends: the datagram is held and sent after the next N sends on the socket.
    Reorder(u32),
    /// SIGKILL to the process itself (a process fault: the call never returns).
    Crash,
    /// SIGKILL to every process of its machine (its process group: all of a single run's
    /// processes, or one replica's), whose unsynced changes under `[durability]` are then undone
    /// together: the machine lost power.
    PowerLoss,
    /// The process's stop signal (its `stop_signal`, else SIGTERM) to itself, then the real call.
    Terminate,
    /// SIGSTOP the whole process for this long (chaos-ctl sends SIGCONT), then the real call.
    Pause(NsRange),
    /// Toxiproxy's toxics on a connection's data calls (`crate::toxic`).
    Toxic(crate::toxic::Toxics),
}

impl Fault {
    /// The name used in events and reports: an errno name, or `reset`, `delay`, `short`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Fault::Errno(e) | Fault::ErrnoAfter { errno: e, .. } => errno_name(*e),
            Fault::Reset => "reset",
            Fault::Delay(_) => "delay",
            Fault::Short(_) => "short",
            Fault::Stall(_) => "stall",
            Fault::Resolver(code) => resolver_name(*code),
            Fault::Drop => "drop",
            Fault::Duplicate => "duplicate",
            Fault::Reorder(_) => "reorder",
            Fault::Crash => "crash",
            Fault::PowerLoss => "power-loss",
            Fault::Terminate => "terminate",
            Fault::Pause(_) => "pause",
            Fault::Toxic(_) => "toxic",
        }
    }

    /// Crash, terminate and pause act on the process, not on the call.
    pub fn is_process_fault(&self) -> bool {
        matches!(
            self,
            Fault::Crash | Fault::PowerLoss | Fault::Terminate | Fault::Pause(_)
        )
    }
}

impl ShortSpec {
    /// Picks the shortened length for a request of `requested` bytes from a uniform draw. Always in
    /// `1..requested`; None when the request is too small to shorten.
    pub fn pick(&self, requested: usize, draw: u64) -> Option<usize> {
        if requested < 2 {
            return None;
        }
        let (lo, hi) = match *self {
            ShortSpec::Percent { lo, hi } => (
                (requested as u128 * lo as u128 / 100) as u64,
                (requested as u128 * hi as u128 / 100) as u64,
            ),
            ShortSpec::Bytes { lo, hi } => (lo, hi),
        };
        let max = requested as u64 - 1;
        // Spans wider than u64 never occur: lo..=hi is inside 1..requested.
        let lo = lo.clamp(1, max);
        let hi = hi.clamp(lo, max);
        Some((lo + draw % (hi - lo + 1)) as usize)
    }
}

impl NsRange {
    pub fn pick(&self, draw: u64) -> u64 {
        self.lo + draw % (self.hi - self.lo + 1)
    }
}

/// The resolver errors a `resolve` rule may inject, as glibc's <netdb.h> numbers them.
pub const RESOLVER_ERRORS: [(&str, i32); 3] = [
    ("EAI_AGAIN", libc::EAI_AGAIN),
    ("EAI_NONAME", libc::EAI_NONAME),
    ("EAI_FAIL", libc::EAI_FAIL),
];

pub fn resolver_name(code: i32) -> &'static str {
    RESOLVER_ERRORS
        .iter()
        .find(|(_, c)| *c == code)
        .map_or("EAI_?", |(n, _)| n)
}

/// `h_errno` for the gethostbyname family, for a getaddrinfo-style code: a temporary failure is
/// TRY_AGAIN, an unknown name HOST_NOT_FOUND, a permanent failure NO_RECOVERY (as glibc maps them).
pub fn h_errno_for(code: i32) -> i32 {
    match code {
        libc::EAI_AGAIN => 2,  // TRY_AGAIN
        libc::EAI_NONAME => 1, // HOST_NOT_FOUND
        _ => 3,                // NO_RECOVERY
    }
}

/// What gethostbyname_r and gethostbyname2_r return for a lookup that failed with `code`, as
/// glibc's nss/getXXbyYY_r.c does: 0 for a name not found (and a failure with NO_RECOVERY), with
/// `*result` NULL; EAGAIN for a temporary failure (TRY_AGAIN), with errno EAGAIN.
pub fn reentrant_return_for(code: i32) -> i32 {
    if code == libc::EAI_AGAIN {
        libc::EAGAIN
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// glibc's mapping of a resolver failure onto the gethostbyname family.
    #[test]
    fn resolver_failures_map_as_glibc_maps_them() {
        assert_eq!(h_errno_for(libc::EAI_AGAIN), 2); // TRY_AGAIN
        assert_eq!(h_errno_for(libc::EAI_NONAME), 1); // HOST_NOT_FOUND
        assert_eq!(h_errno_for(libc::EAI_FAIL), 3); // NO_RECOVERY
        assert_eq!(reentrant_return_for(libc::EAI_AGAIN), libc::EAGAIN);
        assert_eq!(reentrant_return_for(libc::EAI_NONAME), 0);
        assert_eq!(resolver_name(libc::EAI_FAIL), "EAI_FAIL");
        assert_eq!(Fault::Resolver(libc::EAI_AGAIN).kind_name(), "EAI_AGAIN");
    }

    #[test]
    fn short_picks_stay_inside_the_request() {
        let pct = ShortSpec::Percent { lo: 1, hi: 50 };
        for draw in 0..1000 {
            let n = pct.pick(100, draw).unwrap();
            assert!((1..=50).contains(&n), "{n}");
        }
        let bytes = ShortSpec::Bytes { lo: 1, hi: 512 };
        for draw in 0..1000 {
            let n = bytes.pick(10, draw).unwrap();
            assert!((1..10).contains(&n), "{n}");
        }
        assert_eq!(bytes.pick(1, 5), None);
    }
}
