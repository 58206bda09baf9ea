//! chaos-engine: the pure logic of chaos. No hooks, no global state.
//!
//! - [`parse`] turns policy TOML into a validated [`policy::Policy`], with `file:line:col` errors:
//!   serde's raw sections, the value syntaxes (`parse::units`) and the meaning checks live there, so
//!   the model files (`policy`, `fault`, `toxic`, `inject`, `system`) never import it.
//! - [`profiles`] holds the built-in policies (`benign`, `network`, `none`).
//! - [`key`] names where a decision is made (process, connection, site), a [`key::Key`] whose text
//!   (the log's `key`) reads back with `FromStr`; [`chance`] draws at it, whatever the threads'
//!   interleaving.
//! - [`inject`] holds exact injections (fault at a decision key), what frozen policies are made of.
//! - [`event`] formats event-log lines without allocating, for the shim's hooks; [`event::schema`]
//!   holds the same lines as serde types, for reading a log back.
//! - [`grid`] places read faults on a fixed grid of stream offsets, so they do not depend on how
//!   the kernel chunked the stream.
//! - [`realise`] is the realism model: what a fault becomes given the facts about a call, or which
//!   rule of Linux's behaviour forbids it there.
//! - [`system`] holds a system under test: `[[process]]`, the seeded `[attrition]` schedule and a
//!   frozen run's `[[nemesis]]` events, which chaos-ctl executes.
//! - [`page`] is the layout of the control page, through which chaos-ctl steers a live run.
//! - [`disk`] is `[[disk]]`: what fits on a disk that fills.
//! - [`durability`] is `[durability]`: which unsynced changes a crash undoes.
//! - [`toxic`] is what Toxiproxy's toxics (latency, bandwidth, blackhole…) do to one call.
//! - [`select`] is the one selection loop: which rule fires on a call, for both backends.
//! - [`settings`] reads a run's CHAOS_* settings through a function the backend passes.
//! - [`explore`] lists the faults `chaos-ctl explore` tries at a fault point.
//! - [`refusal`] says why a rule whose draw said "fire" did not inject (counted per rule).
//! - [`hash`] is FNV-1a, the hash behind digests and name-derived keys.
//! - [`path`] makes the path a call names absolute, as the kernel resolves it, for both backends.
//! - [`quirk`] catalogues the platform quirks (macOS, BSD, old Linux, WSL1) the shim can reproduce.
//! - [`chance`] is the cheap half of a decision (does a rule fire at a key), [`process_key`] a
//!   process's share of every key.
//! - The policy's vocabulary: [`op`] (calls and groups), [`kind`] (fd kinds), [`addr`] and
//!   [`glob`] (targets, matched without allocating), [`fault`], [`signal`], [`errno`] (which errnos
//!   each call can return on Linux); [`notes`] is what `chaos-ctl validate` points out in a valid
//!   policy; [`env`] names every variable chaos reads.
//!
//! The shim (`chaos-shim`) and the CLI (`chaos-ctl`) both depend on this crate; it depends on neither.

pub mod addr;
pub mod chance;
pub mod disk;
pub mod durability;
pub mod env;
pub mod errno;
pub mod event;
pub mod explore;
pub mod fault;
pub mod glob;
pub mod grid;
pub mod hash;
pub mod inject;
pub mod key;
pub mod kind;
pub mod notes;
pub mod op;
pub mod page;
pub mod parse;
pub mod path;
pub mod policy;
pub mod process_key;
pub mod profiles;
pub mod quirk;
pub mod realise;
pub mod refusal;
pub mod select;
pub mod settings;
pub mod signal;
pub mod system;
pub mod toxic;

/// Version written into every `start` event.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
