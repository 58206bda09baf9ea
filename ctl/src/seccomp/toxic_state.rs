//! One connection's toxic state, kept in its fd view (`fdview`) and stepped by `toxic`: what the
//! engine's toxic functions need to know of the connection between its calls. Plain data behind
//! a lock, shared with the threads that answer held calls later.

use std::sync::{Arc, Mutex, MutexGuard};

/// One connection's toxic state, per direction where it has one (indexed by `Dir`).
pub(super) struct State {
    /// CLOCK_MONOTONIC when the supervisor first saw the connection: `reset_after` counts
    /// from here.
    pub(super) born: u64,
    /// The bucket's tokens, and when they were counted (0: never, a full burst).
    pub(super) tokens: [u64; 2],
    pub(super) tokens_at: [u64; 2],
    /// When a blackhole began in each direction (0: none is on).
    pub(super) black_since: [u64; 2],
    /// `slow_close`: when the peer's FIN, first seen with nothing before it, is readable (0: not
    /// seen yet).
    pub(super) eof_at: u64,
    /// Reads under latency: 0 no chunk seen, CHUNK_OPEN readable, else when it becomes so.
    pub(super) rx_chunk: u64,
    /// Writes under latency: when the last write was released.
    pub(super) tx_last: u64,
    /// A toxic ended the connection with a FIN both ways: reads see EOF (what was queued past
    /// the limit never arrived).
    pub(super) reads_ended: bool,
    /// `reset_after`: a timer is waiting to send the RST; it was sent.
    pub(super) reset_armed: bool,
    pub(super) reset_sent: bool,
    /// Blocking reads held until the reset: the first to wake sends it, as under the shim
    /// (the timer leaves it to them).
    pub(super) reset_waiters: u32,
    /// `slicer`: when the next slice may move (0: at once).
    pub(super) slice_at: [u64; 2],
    /// Bytes our own transfers moved on a socket without TCP's counters (a unix stream).
    pub(super) moved: [u64; 2],
}

/// The state, shared with the threads that answer the connection's calls later.
#[derive(Clone)]
pub struct Shared(Arc<Mutex<State>>);

impl Default for Shared {
    fn default() -> Shared {
        Shared(Arc::new(Mutex::new(State {
            born: now(),
            tokens: [0; 2],
            tokens_at: [0; 2],
            black_since: [0; 2],
            eof_at: 0,
            rx_chunk: 0,
            tx_last: 0,
            reads_ended: false,
            reset_armed: false,
            reset_sent: false,
            reset_waiters: 0,
            slice_at: [0; 2],
            moved: [0; 2],
        })))
    }
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(super) fn now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the kernel to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
