//! `chaos-ctl run` with a policy that declares `[[process]]`: start every replica under the shim
//! (each with its rules, `CHAOS_PROCESS`, its port and data directory), wait until each is ready,
//! run the workload, and meanwhile execute the attrition schedule (or a frozen run's `[[nemesis]]`
//! events) and restart what dies. The engine draws the schedule; this module only carries it out
//! and logs every process event (`journal.rs`).
//!
//! As nextest's runner is built: `runner.rs` plans (`plan.rs`) and ticks; the dispatcher
//! (`dispatch.rs`) owns every replica's state and reacts to what happens (`death.rs`, the
//! schedule in `schedule.rs`, power losses in `power.rs`); the executor (`executor.rs`) spawns
//! and reports what it observed of a process as a typed event (`Observed`).

mod death;
mod dispatch;
mod executor;
pub(crate) mod journal;
mod limits;
mod not_ready;
mod options;
mod plan;
mod power;
mod ready;
pub mod replica;
mod runner;
mod schedule;
mod summary;

pub use options::SystemRun;
pub(crate) use plan::{fresh_run_dir, remove_run_dir};
pub use runner::run;
