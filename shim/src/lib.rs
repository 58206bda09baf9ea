//! chaos-shim: the preloaded library. It exports libc's socket and I/O entry points, asks the engine
//! what to do when a rule can apply, and does it. docs/ARCHITECTURE.md follows one call through it
//! (the hot path); docs/rust-preload-risks.md has the evidence behind its rules.
//!
//! Modules, every one (a module added here gets its line), in floors: each imports only its own
//! floor and those below, and no two import each other (docs/ARCHITECTURE.md draws them):
//! - state and the kernel: `sys` (raw syscalls), `time` (ns to and from the kernel's time
//!   types), `real` (the real functions), `guard` (re-entry and panic containment), `ownfd` (the
//!   shim's own fds), `fdtable` (the lock-free fd cache, a pure table), `sockaddr` (socket
//!   addresses decoded), `page` (the shim's side of the run's control page), `census` (the fault
//!   points `chaos-ctl explore` walks: each call site once), `runtime` (process-wide state),
//!   `named_counts` (per-name counters for calls with no fd), `abspath` (paths made absolute),
//!   `failed_close` (fds whose close failed, to catch retried closes), `writeback` (fsync errors
//!   reported once per description), `sockstate` (the socket state platform quirks read);
//! - what a call is: `facts` (the realism model's facts from the live fd), `readiness` (epoll
//!   registrations and stalls), `log` (the event log), `disk` (`[[disk]]` counters), `durable`
//!   (the `[durability]` journal), `lineage` (keys of a system's descendants across exec);
//! - decisions: `plan` (this process's side of the engine's selection, and the logging of what
//!   the observers below saw), `grid_read` (a stream read's span walked for the faults on the
//!   grid of stream offsets);
//! - carrying faults out: `act` (a break, a stall, the fault's line), `hold` (partitions on live
//!   connections), `quirks` (platform quirks), `reorder` (UDP reordering), `process_fault`
//!   (crash, terminate, pause), `toxic` (Toxiproxy's toxics), `proxy` (Toxiproxy's proxies
//!   in-process: the connect redirected to `upstream`, the proxy's toxics on its data calls);
//! - `classify` (what an fd is and which rules cover it, into its slot), `due` (what falls due
//!   while a program waits);
//! - the top: `hooks` (the exported symbols) and `init` (the constructor).

// The unit tests reach the modules, not the hooks (unexported there), so most of it is unused.
#![cfg_attr(test, allow(dead_code, unused_imports))]

mod abspath;
mod act;
mod census;
mod classify;
mod disk;
mod due;
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
mod page;
mod plan;
mod process_fault;
mod proxy;
mod quirks;
mod readiness;
mod real;
mod reorder;
mod runtime;
mod sockaddr;
mod sockstate;
mod sys;
mod time;
mod toxic;
mod writeback;
