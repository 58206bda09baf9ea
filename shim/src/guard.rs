//! The re-entry guard and panic containment around the shim's own logic.
//!
//! The guard is a `const`-initialised `Cell<bool>` thread-local: no lazy init, no destructor, plain
//! TLS. It is held only while our own logic runs, never across the real call, and that logic runs
//! inside `catch_unwind` while the real call stays outside it (a forced unwind from pthread_cancel
//! must pass through the real call untouched).

use crate::sys;
use core::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    static IN_SHIM: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` as shim logic. Returns None when already inside the shim on this thread (the shim's own
/// I/O re-entering a hook) or when `f` panicked. errno is preserved either way.
#[inline(never)]
pub fn guarded<R>(f: impl FnOnce() -> R) -> Option<R> {
    let entered = IN_SHIM.try_with(|g| !g.replace(true)).unwrap_or(false);
    if !entered {
        return None;
    }
    let saved = sys::errno();
    let result = catch_unwind(AssertUnwindSafe(f)).ok();
    sys::set_errno(saved);
    let _ = IN_SHIM.try_with(|g| g.set(false));
    result
}
