//! chaos-shim: the preloaded library. It exports libc's socket and I/O entry points, asks the engine
//! what to do when a rule can apply, and does it. See the README, "Design" (the hot path), and docs/rust-preload-risks.md.
//!
//! Layout: `real` (the real functions), `init` (the constructor), `runtime` (process-wide state),
//! `fdtable` (the lock-free fd cache), `plan` (decisions and realism), `hooks` (the exported symbols),
//! `log` (the event log), `readiness` (epoll registrations and stalls), `ownfd` (the shim's own
//! fds), `failed_close` (fds whose close failed, to catch retried closes), `guard` (re-entry and panic containment), `sys` (raw syscalls).

mod abspath;
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
