//! A process's own `times` budget and `window` clock, which the engine's selection asks of the
//! seccomp backend (`decide`).

use std::time::Instant;

/// One process's own `times` budget and `window` clock. A process is one program in one
/// process: a forked child and an exec'd program each start a fresh one, as under the shim.
pub struct Budget {
    /// When the process started: its exec, or its fork.
    pub start: Instant,
    /// Per rule, injections so far in this process.
    pub injected: Vec<u64>,
}

impl Budget {
    pub fn new(rules: usize, start: Instant) -> Budget {
        Budget {
            start,
            injected: vec![0; rules],
        }
    }
}
