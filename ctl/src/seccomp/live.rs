//! Which launched programs still have a supervisor at work: chaos-ctl waits for one to be done
//! with a program's end (`settle`) before it reads the log.

use std::sync::{Condvar, Mutex};

/// The programs launched under the backend whose end their supervisor has not yet dealt
/// with, by pid; `settle` waits on it.
static LIVE: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static SETTLED: Condvar = Condvar::new();

/// Waits (up to 5 s) until the supervisor of the program launched as `pid` has dealt with its
/// end, once it has been reaped: the last lines of the process must be in the log (the
/// `start` line of one that made no call the filter sees is written at its exit) before
/// chaos-ctl logs the exit and reads the log. Returns at once for a pid the seccomp backend
/// did not launch.
pub fn settle(pid: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    while live.contains(&pid) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        live = SETTLED
            .wait_timeout(live, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Says that process `pid` has ended and its supervisor is done with it.
pub fn ended(pid: i32) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    if live.contains(&pid) {
        live.retain(|p| *p != pid);
        SETTLED.notify_all();
    }
}

/// Keeps the launched program `pid` live until its supervisor ends, whatever it saw.
pub struct Live(i32);

impl Live {
    pub fn new(pid: i32) -> Live {
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
        Live(pid)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        ended(self.0);
    }
}
