//! chaos-shim: the preloaded library. It exports libc's socket and I/O entry points, asks the engine
//! what to do when a rule can apply, and does it. docs/ARCHITECTURE.md follows one call through it
//! (the hot path); docs/rust-preload-risks.md has the evidence behind its rules.
//!
//! Modules, every one (a module added here gets its line):
//! - start and state: `init` (the constructor), `real` (the real functions), `runtime`
//!   (process-wide state), `guard` (re-entry and panic containment), `sys` (raw syscalls),
//!   `time` (ns to and from the kernel's time types);
//! - the calls: `hooks` (the exported symbols), `fdtable` (the lock-free fd cache), `plan` (this
//!   process's side of the engine's selection), `grid_read` (a stream read's span walked for the
//!   faults on the grid of stream offsets), `facts` (the realism model's facts from the live fd), `named_counts` (per-name
//!   counters for calls with no fd), `abspath` (paths made absolute);
//! - carrying faults out: `readiness` (epoll registrations and stalls), `hold` (partitions on live
//!   connections), `toxic` (Toxiproxy's toxics), `reorder` (UDP reordering), `process_fault`
//!   (crash, terminate, pause), `quirks` and `sockstate` (platform quirks and the socket state
//!   they read);
//! - storage: `disk` (`[[disk]]` counters), `durable` (the `[durability]` journal), `writeback`
//!   (fsync errors reported once per description);
//! - the run: `log` (the event log), `ownfd` (the shim's own fds), `failed_close` (fds whose close
//!   failed, to catch retried closes), `control` (the control page), `lineage` (keys of a system's
//!   descendants across exec), `census` (the fault points `chaos-ctl explore` walks: each call
//!   site once, with its key).

// The unit tests reach the modules, not the hooks (unexported there), so most of it is unused.
#![cfg_attr(test, allow(dead_code, unused_imports))]

mod abspath;
mod census;
mod control;
mod disk;
mod durable;
mod facts;
mod failed_close;
mod fdtable;
mod grid_read;
mod guard;
mod hold;
mod hooks;
mod init;
mod lineage;
mod log;
mod named_counts;
mod ownfd;
mod plan;
mod process_fault;
mod quirks;
mod readiness;
mod real;
mod reorder;
mod runtime;
mod sockstate;
mod sys;
mod time;
mod toxic;
mod writeback;
