//! The event log's lines as serde types: what the shim writes (shim/src/log.rs formats them with
//! [`LineBuf`](super::LineBuf), field by field, in the order of the fields here), what `chaos-ctl`
//! reads back and what the integration tests check. Field reference: docs/reference.md, "The
//! event log".
//!
//! Unknown fields are ignored, so an older reader still reads a newer shim's log; the tests check
//! the other way round, that every field the shim writes is one of these (serialising a parsed
//! line back loses no field).
//!
//! A line that outgrew [`LINE_MAX`](super::LINE_MAX) lost its last fields and says
//! `"truncated":true`; the fields a line can lose that way are `Option`s.

use crate::key::{Key, ParseKeyError};
use serde::{Deserialize, Serialize};

/// One line of the log, by its `ev`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "lowercase")]
pub enum Event {
    /// Every process that loads the shim, or is forked from one that did, writes one.
    Start(Start),
    /// Every injected fault, and every platform quirk that fired (`fault` and `rule` are then
    /// `quirk`; see [`Fault::is_quirk`]).
    Fault(Fault),
    /// A bug the program made that the shim saw (a close retried after a close that failed).
    Warning(Warning),
    /// A process ended: written by whoever reaped it (the shim in its parent, or chaos-ctl for
    /// the program it started), since a process killed by a signal cannot say so itself.
    Exit(Exit),
    /// What chaos-ctl did to, or saw of, a process of a system (`[[process]]`).
    Process(ProcessEvent),
    /// The system a run started (chaos-ctl writes it first): its `[[process]]` tables, so that
    /// `freeze` can write a policy that starts the same processes.
    System(SystemLine),
    /// The run's `[[disk]]` and `[durability]` tables (chaos-ctl writes it first), so that
    /// `freeze` can write a policy whose replay recreates the disks and the crash semantics.
    Storage(StorageLine),
    /// A change made through the control page (by chaos-ctl: `chaos-ctl control`, the HTTP
    /// endpoint, the partition schedule), or where a process first saw one (by the shim).
    Control(ControlLine),
    /// A process that could not write the log, and so injected nothing (chaos-ctl writes it after
    /// the run, from the control page).
    Unlogged(UnloggedLine),
    /// What a `[[disk]]` did to a write: cut it short where its space ended, or refused it.
    Disk(DiskLine),
    /// An fsync that reported a writeback error another fd's fsync met.
    Writeback(WritebackLine),
    /// `[durability]`: a change undone after a crash (by chaos-ctl), an undo that failed, or a
    /// write the shim could not journal.
    Durability(DurabilityLine),
    /// One rule's account at the end of a run (chaos-ctl writes it from the control page's
    /// counts, summed over every process): its draws that said "fire", its injections, and why
    /// the rest did not fire.
    Rule(RuleLine),
    /// A fault point `chaos-ctl explore`'s census found (CHAOS_CENSUS=1), the first time the
    /// process reached it.
    Point(PointLine),
    /// A line of a kind this reader does not know (from a newer shim).
    #[serde(other)]
    Other,
}

/// The fields every line starts with (`ev` aside).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// CLOCK_REALTIME when the line was written.
    pub ts_ns: u64,
    pub pid: i32,
    /// The writing thread; `start` lines have `ppid` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    /// The process key: 16 hex digits, the first part of every decision key of the process.
    pub proc: String,
    /// The line outgrew `LINE_MAX` and lost its last fields.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub truncated: bool,
}

/// `{"ev":"start",...}`: what ran, and under which policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    #[serde(flatten)]
    pub header: Header,
    pub ppid: i32,
    /// `exec` (the shim was loaded) or `fork` (a forked child).
    pub via: String,
    /// In a system of processes: which one (`kv#1`, `workload`) and its start count (0 first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub life: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// The working directory the process started in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// How many argv elements did not fit in the line (left out, not cut).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv_truncated: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The policy's origin: a path, `profile:NAME` or `CHAOS_POLICY_TEXT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// 16 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<String>,
    /// How many rules and exact injections the policy has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injections: Option<u64>,
    /// The platform quirks enabled, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quirks: Option<Vec<String>>,
    /// A number as a string (`"1"`, `"0.25"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quirk_probability: Option<String>,
    /// libc symbols the shim could not resolve (their hooks pass nothing through).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_symbols: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shim_version: Option<String>,
    /// `seccomp` when chaos-ctl's notification supervisor, not the shim, serves the process
    /// (absent: the preload backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
}

/// `{"ev":"fault",...}`: one injected fault, or one platform quirk (which has no connection, key,
/// byte counts or delays).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(flatten)]
    pub header: Header,
    /// The call, as the policy names it (`recv`, `connect`...).
    pub op: String,
    pub fd: i32,
    /// The fd's kind: `tcp`, `udp`, `unix`, `pipe`, `file`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The connection's name: `tcp-out#3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<String>,
    /// A socket's addresses (`127.0.0.1:6379`, a unix path), or a file's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The name being resolved (`resolve` ops; fd is -1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The rule's name; `inject` for a frozen policy's injection, `quirk` for a quirk.
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inject_index: Option<u64>,
    /// `short`, `delay`, `stall`, `reset`, `quirk` or an errno name.
    pub fault: String,
    /// A quirk's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quirk: Option<String>,
    /// The errno the call failed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    /// Bytes asked for (messages for mmsg calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<u64>,
    /// What the call returned: bytes transferred, -1 when it failed. None for a fault logged
    /// before the call was made (a delay of a data call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned: Option<i64>,
    /// How long the call was delayed (0 for faults that are not delays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ns: Option<u64>,
    /// How long a connect waited before failing (`{ errno = ..., after = ... }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ns: Option<u64>,
    /// A stall's length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_ns: Option<u64>,
    /// What else happened: `rst-sent`, `shutdown-both`, `shutdown-write`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// A datagram held for reordering: how many later sends overtook it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_for: Option<u32>,
    /// A toxic's data limit that ended the connection (bytes in that direction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Why the fault was applied as a delay instead: `unseen-registration`, `stall-table-full`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
    /// The decision key, as [`Key`]'s `Display` writes it; see [`Fault::parsed_key`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `seccomp` for a fault the seccomp backend injected (absent: the preload backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
}

/// `{"ev":"warning",...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    #[serde(flatten)]
    pub header: Header,
    pub op: String,
    pub fd: i32,
    pub what: String,
}

/// `{"ev":"point",...}`: where a call that could fail was first reached. `object` and `offset`
/// name the call site (the return address into the program, as a file and an offset in it: the
/// same in every run); `key` is the decision key it was first reached at (rule `inject`), where
/// an `[[inject]]` entry puts a fault on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointLine {
    #[serde(flatten)]
    pub header: Header,
    pub op: String,
    pub fd: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub offset: u64,
    pub key: String,
}

/// `{"ev":"system",...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemLine {
    pub ts_ns: u64,
    /// The policy's `[[process]]` tables as TOML.
    pub processes: String,
}

/// `{"ev":"rule",...}`: what became of one rule's draws over the whole run. Only rules drawn at
/// least once have a line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleLine {
    pub ts_ns: u64,
    /// The rule's name.
    pub rule: String,
    /// Calls on which the rule's draw (with its `after`/`every`/`min_bytes`) said "fire".
    pub drawn: u64,
    /// Of those, the faults injected.
    pub injected: u64,
    /// The rest by reason: a realism rule's name (docs/reference.md, "Realism"), `times-used-up` or
    /// `outside-window`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub refused: std::collections::BTreeMap<String, u64>,
}

/// `{"ev":"storage",...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageLine {
    pub ts_ns: u64,
    /// The policy's `[[disk]]` and `[durability]` tables as TOML.
    pub tables: String,
}

/// `{"ev":"control",...}`. chaos-ctl writes one per change, with `by`, `what` and the run's time;
/// every shim writes one when a call of its first sees a new generation, with `pid` and `at`, the
/// place (`PROCESS-CONN/SITE`) where the change first took effect in that process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlLine {
    pub ts_ns: u64,
    /// The page's generation after the change.
    pub generation: u64,
    /// Since the run started (chaos-ctl's lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t_ns: Option<u64>,
    /// `cli`, `http`, `schedule` (chaos-ctl's lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// `enable`, `disable`, `partition`, `heal`, `disk-fill`, `disk-free`, `power-loss`; `seen`
    /// for a shim's line.
    pub what: String,
    /// The rule switched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The disk filled or freed (`disk-fill`, `disk-free`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<String>,
    /// The process a `power-loss` was asked for (a replica, or a process standing for all its
    /// replicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// The directed pairs cut from then on (`partition`), as `[from, to]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cut: Vec<[String; 2]>,
    /// A scheduled partition's key (`partition#2`, `partitions#5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The shim's lines: its pid, and the place where it first saw the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The shim's lines: the thread whose call saw it (the seccomp backend leaves it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    /// The shim's and the seccomp backend's lines: the process key of the process that saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The shim's lines: the rules enabled in that process from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Vec<String>>,
}

/// `{"ev":"process",...}`: one process-level event of a system, written by chaos-ctl.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessEvent {
    /// CLOCK_REALTIME when it happened.
    pub ts_ns: u64,
    /// Since the run started (chaos-ctl began starting the processes).
    pub t_ns: u64,
    /// The replica (`kv#1`) or `workload`.
    pub name: String,
    /// `start`, `ready`, `kill`, `exit`, `restart`, `pause`, `resume`, `wipe`, `oom`, `skip`.
    pub what: String,
    /// For kills and pauses: `graceful`, `crash`, `wipe`, `pause`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Its start count (0 the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub life: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// The attrition event's key (`attrition#3`, `nemesis#3`), or the decision key of the process
    /// fault that did it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The drawn durations of a kill: grace, recovery, pause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_ns: Option<u64>,
    /// When the scheduled event was due, since the workload started (kills from the schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ns: Option<u64>,
    /// How long after `at_ns` it was carried out, when it waited for the state the schedule
    /// assumed (its replica ready, few enough down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_ns: Option<u64>,
    /// Free text: why an event was skipped, which mechanism a limit used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `{"ev":"unlogged","pid":4242,"name":"nginx","errno":"EACCES","withheld":90}`: a process that
/// could not write the log (it dropped privileges before it ever opened it, or was exec'd as a
/// user the log does not admit) and withheld that many faults, since a fault is never injected
/// without its line. Without `pid`: faults withheld by processes too many to name one by one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnloggedLine {
    /// CLOCK_REALTIME when chaos-ctl wrote the line.
    pub ts_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Its name: its command's, from its `start` line, or its thread name (/proc/PID/comm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What it could not open: `log` (it withheld its faults) or `policy` (exec'd as a user the
    /// run's files do not admit, it ran without chaos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
    /// Why it could not be opened (`EACCES`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    pub withheld: u64,
}

/// `{"ev":"disk",...}`, written by the shim (shim/src/log.rs, `write_disk`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskLine {
    #[serde(flatten)]
    pub header: Header,
    /// The `[[disk]]`'s name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<String>,
    /// `short` (cut where the space ended) or `full` (refused with ENOSPC).
    pub what: String,
    pub op: String,
    pub fd: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
}

/// `{"ev":"writeback","what":"reported",...}`, written by the shim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WritebackLine {
    #[serde(flatten)]
    pub header: Header,
    pub what: String,
    pub op: String,
    pub fd: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
}

/// `{"ev":"durability",...}`: chaos-ctl's `undone` and `undo-failed` lines (with `process`, `op`,
/// `why`, and `error` for a failure), or the shim's `unseen` (with its header, `fd` and `why`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurabilityLine {
    pub ts_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc: Option<String>,
    /// `undone`, `undo-failed` or `unseen`.
    pub what: String,
    /// The process of the run whose change it was (`workload`, `kv#1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Why it was not durable (`not fsynced`), or why a write was not journaled (`O_DIRECT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The bytes undone, `[from, to)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[u64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_kept: Option<u64>,
    /// Why the undo failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `{"ev":"exit",...}`: how a process ended. Exactly one of `status` and `signal` is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// CLOCK_REALTIME when the process was reaped.
    pub ts_ns: u64,
    /// The process that ended.
    pub pid: i32,
    /// Its process key, when the writer knows it (chaos-ctl takes it from the `start` line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc: Option<String>,
    /// Who reaped it and wrote this line: its parent, or chaos-ctl.
    pub reaper: i32,
    /// The exit status, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    /// The signal that killed it (`SIGKILL`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub core_dumped: bool,
}

impl Exit {
    /// `exit 3` or `killed by SIGKILL`, for summaries.
    pub fn describe(&self) -> String {
        match (&self.status, &self.signal) {
            (Some(s), _) => format!("exit {s}"),
            (None, Some(sig)) => format!("killed by {sig}"),
            (None, None) => "ended".to_string(),
        }
    }

    /// The same ending: same status, or same signal.
    pub fn same_ending(&self, other: &Exit) -> bool {
        self.status == other.status && self.signal == other.signal
    }
}

/// What `Fault::fault` and `Fault::rule` say for a platform quirk.
pub const QUIRK: &str = "quirk";

impl Fault {
    /// The decision key, parsed; None when the line has none (quirks).
    pub fn parsed_key(&self) -> Option<Result<Key, ParseKeyError>> {
        self.key.as_deref().map(str::parse)
    }

    /// A platform quirk, not an injected fault: it comes back by itself under the same quirk
    /// settings, so frozen policies leave it out.
    pub fn is_quirk(&self) -> bool {
        self.fault == QUIRK
    }
}

impl Event {
    /// When the line was written (CLOCK_REALTIME); None for a line of an unknown kind. Every
    /// known kind has one, so a run's timeline can start at its first line whatever that is.
    pub fn ts_ns(&self) -> Option<u64> {
        match self {
            Event::Start(Start { header, .. })
            | Event::Fault(Fault { header, .. })
            | Event::Warning(Warning { header, .. })
            | Event::Point(PointLine { header, .. })
            | Event::Disk(DiskLine { header, .. })
            | Event::Writeback(WritebackLine { header, .. }) => Some(header.ts_ns),
            Event::Exit(x) => Some(x.ts_ns),
            Event::Process(x) => Some(x.ts_ns),
            Event::System(x) => Some(x.ts_ns),
            Event::Storage(x) => Some(x.ts_ns),
            Event::Control(x) => Some(x.ts_ns),
            Event::Unlogged(x) => Some(x.ts_ns),
            Event::Durability(x) => Some(x.ts_ns),
            Event::Rule(x) => Some(x.ts_ns),
            Event::Other => None,
        }
    }

    /// None for a line of an unknown kind.
    pub fn header(&self) -> Option<&Header> {
        match self {
            Event::Start(s) => Some(&s.header),
            Event::Fault(f) => Some(&f.header),
            Event::Warning(w) => Some(&w.header),
            Event::Point(p) => Some(&p.header),
            Event::Exit(_)
            | Event::Process(_)
            | Event::System(_)
            | Event::Storage(_)
            | Event::Control(_)
            | Event::Unlogged(_)
            | Event::Durability(_)
            | Event::Rule(_)
            | Event::Other => None,
            Event::Disk(d) => Some(&d.header),
            Event::Writeback(w) => Some(&w.header),
        }
    }

    pub fn as_start(&self) -> Option<&Start> {
        match self {
            Event::Start(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_fault(&self) -> Option<&Fault> {
        match self {
            Event::Fault(f) => Some(f),
            _ => None,
        }
    }

    pub fn as_unlogged(&self) -> Option<&UnloggedLine> {
        match self {
            Event::Unlogged(u) => Some(u),
            _ => None,
        }
    }

    pub fn as_warning(&self) -> Option<&Warning> {
        match self {
            Event::Warning(w) => Some(w),
            _ => None,
        }
    }

    pub fn as_process(&self) -> Option<&ProcessEvent> {
        match self {
            Event::Process(p) => Some(p),
            _ => None,
        }
    }

    pub fn as_system(&self) -> Option<&SystemLine> {
        match self {
            Event::System(x) => Some(x),
            _ => None,
        }
    }

    pub fn as_storage(&self) -> Option<&StorageLine> {
        match self {
            Event::Storage(x) => Some(x),
            _ => None,
        }
    }

    pub fn as_control(&self) -> Option<&ControlLine> {
        match self {
            Event::Control(x) => Some(x),
            _ => None,
        }
    }

    pub fn as_disk(&self) -> Option<&DiskLine> {
        match self {
            Event::Disk(x) => Some(x),
            _ => None,
        }
    }

    pub fn as_writeback(&self) -> Option<&WritebackLine> {
        match self {
            Event::Writeback(x) => Some(x),
            _ => None,
        }
    }

    pub fn as_durability(&self) -> Option<&DurabilityLine> {
        match self {
            Event::Durability(x) => Some(x),
            _ => None,
        }
    }

    pub fn as_rule(&self) -> Option<&RuleLine> {
        match self {
            Event::Rule(x) => Some(x),
            _ => None,
        }
    }

    pub fn as_point(&self) -> Option<&PointLine> {
        match self {
            Event::Point(x) => Some(x),
            _ => None,
        }
    }

    pub fn as_exit(&self) -> Option<&Exit> {
        match self {
            Event::Exit(x) => Some(x),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LineBuf;
    use crate::key::{Dir, INJECTED, Site};
    use serde_json::Value;

    /// Lines exactly as the shim wrote them (copied from real logs of `chaos-ctl run` and
    /// `replay`), except the last two: a real line given the fields only rare paths write.
    const LINES: &[&str] = &[
        r#"{"ev":"start","ts_ns":1796161632039091718,"pid":4925,"ppid":4924,"proc":"0562e8b0e99580be","via":"exec","exe":"/usr/bin/env","argv":["/usr/bin/env","bash","/root/.pyenv/shims/python3","examples/roundtrip.py"],"seed":1,"policy":"profile:benign","policy_digest":"dced843ba45318e9","rules":7,"injections":0,"quirks":[],"quirk_probability":"1","missing_symbols":0,"shim_version":"0.1.0"}"#,
        r#"{"ev":"fault","ts_ns":1796161632378312114,"pid":4925,"tid":4966,"proc":"3e041e18399f6061","op":"recv","fd":4,"kind":"tcp","conn":"tcp-in#0","peer":"127.0.0.1:54060","local":"127.0.0.1:34691","rule":"benign-short-big-read","rule_index":1,"fault":"short","requested":65536,"returned":47905,"delay_ns":0,"key":"3e041e18399f6061-23da8bd2d98171d8/r1/rx@0#0"}"#,
        r#"{"ev":"fault","ts_ns":1796161632196332136,"pid":4961,"tid":4961,"proc":"2bd4cabc00203a9e","op":"read","fd":3,"kind":"pipe","conn":"pipe-fd#1","rule":"benign-stall","rule_index":5,"fault":"stall","requested":4096,"returned":18,"delay_ns":759289,"stall_ns":759289,"key":"2bd4cabc00203a9e-d527a517571626f9/r5/rx@0#0"}"#,
        r#"{"ev":"fault","ts_ns":1796161653032026703,"pid":5215,"tid":5215,"proc":"c1c809e42a5837e9","op":"send","fd":4,"kind":"tcp","conn":"tcp-out#0","peer":"127.0.0.1:55593","local":"127.0.0.1:54818","rule":"slow-send","rule_index":1,"fault":"delay","requested":10,"delay_ns":1000,"key":"c1c809e42a5837e9-ea23449128f3064a/r1/tx@0#0"}"#,
        r#"{"ev":"fault","ts_ns":1796161643493647766,"pid":5135,"tid":5135,"proc":"c2459c08352fe84d","op":"write","fd":1,"kind":"file","conn":"file-fd#59","path":"/tmp/bash_jobs.0/cec45b11cb2b/stdout","rule":"file-write","rule_index":3,"fault":"ENOSPC","errno":"ENOSPC","requested":3,"returned":-1,"delay_ns":0,"key":"c2459c08352fe84d-83478e83fba3b31a/r3/tx@0#0"}"#,
        r#"{"ev":"fault","ts_ns":1796161822774699152,"pid":6284,"tid":6284,"proc":"01b98b3a7e59a0c4","op":"connect","fd":3,"kind":"tcp","conn":"tcp-fd#0","local":"0.0.0.0:0","rule":"rule-1","rule_index":0,"fault":"ETIMEDOUT","errno":"ETIMEDOUT","requested":0,"returned":-1,"delay_ns":0,"after_ns":30000000,"key":"01b98b3a7e59a0c4-eb20210d5326475e/r0/connect#0"}"#,
        r#"{"ev":"fault","ts_ns":1796161657190415576,"pid":5276,"tid":5276,"proc":"c2459c08352fe84d","op":"recv","fd":5,"kind":"tcp","conn":"tcp-in#0","local":"127.0.0.1:51493","rule":"inject","inject_index":1,"fault":"reset","errno":"ECONNRESET","requested":10,"returned":-1,"delay_ns":0,"effect":"rst-sent","key":"c2459c08352fe84d-23da8bd2d98171d8/inject/rx@0#0"}"#,
        r#"{"ev":"fault","ts_ns":1796161638980443689,"pid":5064,"tid":5064,"proc":"82475e0b622611c3","op":"shutdown","fd":3,"kind":"unix","rule":"quirk","fault":"quirk","quirk":"shutdown-enotconn","errno":"ENOTCONN"}"#,
        r#"{"ev":"warning","ts_ns":1796161653031826988,"pid":5215,"tid":5215,"proc":"c1c809e42a5837e9","op":"close","fd":5,"what":"close retried after a close that failed; the fd was already released"}"#,
        r#"{"ev":"fault","ts_ns":1796161632394196925,"pid":4925,"tid":4966,"proc":"3e041e18399f6061","op":"send","fd":4,"kind":"tcp","conn":"tcp-in#0","peer":"127.0.0.1:54060","local":"127.0.0.1:34691","rule":"benign-stall","rule_index":5,"fault":"stall","requested":20961,"returned":20961,"delay_ns":4256297,"degraded":"stall-table-full","key":"3e041e18399f6061-23da8bd2d98171d8/r5/tx@1454722#0"}"#,
        r#"{"ev":"start","ts_ns":1796161632039091718,"pid":4925,"ppid":4924,"proc":"0562e8b0e99580be","via":"exec","exe":"/usr/bin/env","argv":["/usr/bin/env","bash"],"truncated":true}"#,
        r#"{"ev":"exit","ts_ns":1796161632039091800,"pid":4926,"reaper":4925,"signal":"SIGKILL"}"#,
        r#"{"ev":"exit","ts_ns":1796161632039091900,"pid":4925,"proc":"0562e8b0e99580be","reaper":4924,"status":3}"#,
        r#"{"ev":"process","ts_ns":1796161632039092000,"t_ns":2500000000,"name":"kv#1","what":"kill","kind":"graceful","pid":4930,"life":0,"key":"attrition#0","grace_ns":2000000000,"recovery_ns":1000000000,"at_ns":2000000000}"#,
        r#"{"ev":"disk","ts_ns":1796161632039093000,"pid":4931,"tid":4931,"proc":"0562e8b0e99580be","disk":"data","what":"full","op":"write","fd":3,"path":"/srv/data/app.log","requested":10000,"returned":-1,"errno":"ENOSPC"}"#,
        r#"{"ev":"writeback","ts_ns":1796161632039094000,"pid":4931,"tid":4931,"proc":"0562e8b0e99580be","what":"reported","op":"fsync","fd":4,"path":"/srv/data/app.log","errno":"EIO"}"#,
        r#"{"ev":"durability","ts_ns":1796161632039095000,"what":"undone","process":"workload","op":"write","path":"/srv/data/app.log","why":"not fsynced","range":[0,13],"old_size":0}"#,
        r#"{"ev":"durability","ts_ns":1796161632039096000,"what":"undo-failed","process":"kv#0","op":"rename","path":"/srv/data/a","why":"directory not fsynced","to":"/srv/data/b","error":"Not a directory (os error 20)"}"#,
        r#"{"ev":"durability","ts_ns":1796161632039097000,"pid":4931,"tid":4931,"proc":"0562e8b0e99580be","what":"unseen","fd":4,"path":"/srv/data/direct","why":"O_DIRECT"}"#,
        r#"{"ev":"rule","ts_ns":1796161632039093000,"rule":"short-send","drawn":96,"injected":0,"refused":{"blocking-write-not-interrupted":96}}"#,
    ];

    /// Lines of the kinds `LINES` lacks, exactly as a real run wrote them: a system with a
    /// `[[disk]]`, `[durability]`, a rule switched off and a power loss by `chaos-ctl control`
    /// (chaos-ctl's `system`, `storage`, `process` and `control` lines, the shim's `control`
    /// `seen`), a census run's `point`s, a seccomp run's `start`, and chaos-ctl's `unlogged`.
    const MORE_LINES: &[&str] = &[
        r#"{"ev":"system","ts_ns":1796541142315391162,"processes":"[[process]]\ncmd = [\"sh\", \"-c\", \"echo ready; echo x | cat; exec sleep 60\"]\nname = \"sleeper\"\nready = \"log:^ready\"\n"}"#,
        r#"{"ev":"storage","ts_ns":1796541142315419951,"tables":"[[disk]]\ncapacity = \"4096\"\nname = \"small\"\npath = \"/tmp/schema-work/real/data/*\"\n\n[durability]\ncrash = \"process\"\nmodel = \"ext4\"\npath = \"/tmp/schema-work/real/dur/*\"\n"}"#,
        r#"{"ev":"process","ts_ns":1796541142316384413,"t_ns":1994043,"name":"sleeper","what":"start","pid":13255,"life":0}"#,
        r#"{"ev":"start","ts_ns":1796541142317868023,"pid":13255,"ppid":13250,"proc":"d4e4160e58476559","via":"exec","process":"sleeper","life":0,"exe":"/usr/bin/dash","cwd":"/tmp/schema-work/real","argv":["sh","-c","echo ready; echo x | cat; exec sleep 60"],"seed":1,"policy":"/tmp/schema-work/real/p.toml","policy_digest":"ba79ea583a603c88","rules":2,"injections":0,"quirks":[],"quirk_probability":"1","missing_symbols":0,"shim_version":"0.1.0"}"#,
        r#"{"ev":"control","ts_ns":1796541142373345416,"generation":1,"t_ns":43660030,"by":"cli","what":"disable","rule":"slow-pipe"}"#,
        r#"{"ev":"control","ts_ns":1796541142373926402,"pid":13258,"tid":13258,"proc":"3ddaded2effac613","generation":1,"what":"seen","at":"3ddaded2effac613-20d819ba7ce3ed7e/close#0","enabled":["short-file"]}"#,
        r#"{"ev":"control","ts_ns":1796541142378265519,"generation":1,"t_ns":48585763,"by":"cli","what":"power-loss","process":"sleeper"}"#,
        r#"{"ev":"process","ts_ns":1796541142394556787,"t_ns":80166455,"name":"sleeper","what":"exit","kind":"power-loss","pid":13255,"life":0,"signal":"SIGKILL","key":"control#0","recovery_ns":525200451}"#,
        r#"{"ev":"point","ts_ns":1796541153580967262,"pid":13511,"tid":13511,"proc":"7a3f7d561a69df63","op":"pipe","fd":-1,"kind":"pipe","object":"","offset":0,"key":"7a3f7d561a69df63-7cf4c4cdc66de42d/inject/newfds#0"}"#,
        r#"{"ev":"point","ts_ns":1796541153583853948,"pid":13511,"tid":13511,"proc":"7a3f7d561a69df63","op":"close","fd":4,"kind":"pipe","conn":"pipe-fd#0","object":"","offset":0,"key":"7a3f7d561a69df63-7898ab805177af25/inject/close#0"}"#,
        r#"{"ev":"start","ts_ns":1796541149364946430,"pid":13431,"proc":"7a3f7d561a69df63","ppid":13429,"via":"exec","exe":"/usr/bin/dash","argv":["sh","-c","echo hi | cat"],"cwd":"/tmp/schema-work/real","seed":1,"policy":"profile:benign","policy_digest":"ba8a528fd0e73855","rules":8,"injections":0,"quirks":[],"quirk_probability":"1","shim_version":"0.1.0","backend":"seccomp"}"#,
        r#"{"ev":"unlogged","ts_ns":1796522026471903942,"pid":24761,"name":"privdrop","what":"log","errno":"EACCES","withheld":5}"#,
    ];

    /// Every kind of line has a real line above: a kind added to `Event` fails to compile here
    /// until one is.
    #[test]
    fn every_kind_of_line_has_a_real_line_that_parses() {
        let mut seen = std::collections::BTreeSet::new();
        for line in LINES.iter().chain(MORE_LINES) {
            let e: Event = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let kind = match e {
                Event::Start(_) => "start",
                Event::Fault(_) => "fault",
                Event::Warning(_) => "warning",
                Event::Exit(_) => "exit",
                Event::Process(_) => "process",
                Event::System(_) => "system",
                Event::Storage(_) => "storage",
                Event::Control(_) => "control",
                Event::Unlogged(_) => "unlogged",
                Event::Disk(_) => "disk",
                Event::Writeback(_) => "writeback",
                Event::Durability(_) => "durability",
                Event::Rule(_) => "rule",
                Event::Point(_) => "point",
                Event::Other => panic!("a line of ours read as an unknown kind: {line}"),
            };
            assert!(e.ts_ns().is_some(), "{line}");
            seen.insert(kind);
        }
        assert_eq!(seen.len(), 14, "a real line of each kind: {seen:?}");
    }

    #[test]
    fn the_lines_of_a_system_run_parse_into_the_schema() {
        let events: Vec<Event> = MORE_LINES
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert!(
            events[0]
                .as_system()
                .unwrap()
                .processes
                .contains("[[process]]")
        );
        assert!(
            events[1]
                .as_storage()
                .unwrap()
                .tables
                .contains("[durability]")
        );
        let start = events[2].as_process().unwrap();
        assert_eq!((start.what.as_str(), start.life), ("start", Some(0)));
        let replica = events[3].as_start().unwrap();
        assert_eq!(
            (replica.process.as_deref(), replica.life),
            (Some("sleeper"), Some(0))
        );
        assert_eq!(replica.cwd.as_deref(), Some("/tmp/schema-work/real"));
        let by_cli = events[4].as_control().unwrap();
        assert_eq!(
            (by_cli.by.as_deref(), by_cli.rule.as_deref(), by_cli.pid),
            (Some("cli"), Some("slow-pipe"), None)
        );
        let seen = events[5].as_control().unwrap();
        assert_eq!((seen.pid, seen.tid), (Some(13258), Some(13258)));
        assert_eq!(seen.proc.as_deref(), Some("3ddaded2effac613"));
        assert_eq!(seen.enabled, Some(vec!["short-file".to_string()]));
        assert!(seen.at.as_deref().unwrap().ends_with("/close#0"));
        assert_eq!(
            events[6].as_control().unwrap().process.as_deref(),
            Some("sleeper")
        );
        let exit = events[7].as_process().unwrap();
        assert_eq!(
            (exit.signal.as_deref(), exit.key.as_deref()),
            (Some("SIGKILL"), Some("control#0"))
        );
        let point = events[8].as_point().unwrap();
        assert_eq!((point.op.as_str(), point.fd), ("pipe", -1));
        assert_eq!(point.conn, None);
        assert_eq!(
            events[10].as_start().unwrap().backend.as_deref(),
            Some("seccomp")
        );
        let unlogged = events[11].as_unlogged().unwrap();
        assert_eq!(
            (unlogged.pid, unlogged.withheld, unlogged.errno.as_deref()),
            (Some(24761), 5, Some("EACCES"))
        );
    }

    #[test]
    fn the_shims_lines_parse_into_the_schema() {
        let events: Vec<Event> = LINES
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();

        let start = events[0].as_start().unwrap();
        assert_eq!(start.header.pid, 4925);
        assert_eq!(start.header.tid, None);
        assert_eq!(start.header.proc, "0562e8b0e99580be");
        assert_eq!(start.ppid, 4924);
        assert_eq!(start.via, "exec");
        assert_eq!(start.argv.as_ref().unwrap()[3], "examples/roundtrip.py");
        assert_eq!(start.seed, Some(1));
        assert_eq!(start.policy.as_deref(), Some("profile:benign"));
        assert_eq!(start.quirks.as_deref(), Some(&[][..]));
        assert_eq!(start.quirk_probability.as_deref(), Some("1"));
        assert!(!start.header.truncated);

        let short = events[1].as_fault().unwrap();
        assert_eq!(short.header.tid, Some(4966));
        assert_eq!(
            (short.op.as_str(), short.fd, short.fault.as_str()),
            ("recv", 4, "short")
        );
        assert_eq!(short.conn.as_deref(), Some("tcp-in#0"));
        assert_eq!(
            (short.requested, short.returned),
            (Some(65536), Some(47905))
        );
        assert_eq!(short.rule_index, Some(1));
        let key = short.parsed_key().unwrap().unwrap();
        assert_eq!(key.rule, 1);
        assert_eq!(
            key.site,
            Site::Stream {
                dir: Dir::Rx,
                pos: 0,
                attempt: 0
            }
        );
        assert_eq!(key.to_string(), *short.key.as_ref().unwrap());

        assert_eq!(events[2].as_fault().unwrap().stall_ns, Some(759_289));
        let delay = events[3].as_fault().unwrap();
        assert_eq!((delay.returned, delay.delay_ns), (None, Some(1000)));
        assert_eq!(
            events[4].as_fault().unwrap().path.as_deref(),
            Some("/tmp/bash_jobs.0/cec45b11cb2b/stdout")
        );
        assert_eq!(events[5].as_fault().unwrap().after_ns, Some(30_000_000));

        let injected = events[6].as_fault().unwrap();
        assert_eq!(
            (injected.rule.as_str(), injected.inject_index),
            ("inject", Some(1))
        );
        assert_eq!(injected.effect.as_deref(), Some("rst-sent"));
        assert_eq!(injected.parsed_key().unwrap().unwrap().rule, INJECTED);

        let quirk = events[7].as_fault().unwrap();
        assert!(quirk.is_quirk() && !short.is_quirk());
        assert_eq!(quirk.quirk.as_deref(), Some("shutdown-enotconn"));
        assert_eq!(quirk.errno.as_deref(), Some("ENOTCONN"));
        assert!(quirk.parsed_key().is_none() && quirk.conn.is_none());

        let warning = events[8].as_warning().unwrap();
        assert_eq!((warning.op.as_str(), warning.fd), ("close", 5));
        assert!(warning.what.starts_with("close retried"));

        assert_eq!(
            events[9].as_fault().unwrap().degraded.as_deref(),
            Some("stall-table-full")
        );
        let cut = events[10].as_start().unwrap();
        assert!(cut.header.truncated && cut.seed.is_none());

        let killed = events[11].as_exit().unwrap();
        assert_eq!((killed.pid, killed.reaper), (4926, 4925));
        assert_eq!(killed.describe(), "killed by SIGKILL");
        let exited = events[12].as_exit().unwrap();
        assert_eq!(exited.describe(), "exit 3");
        assert!(!exited.same_ending(killed) && exited.same_ending(exited));
        let kill = events[13].as_process().unwrap();
        assert_eq!((kill.name.as_str(), kill.what.as_str()), ("kv#1", "kill"));
        assert_eq!(kill.key.as_deref(), Some("attrition#0"));
        let full = events[14].as_disk().unwrap();
        assert_eq!((full.what.as_str(), full.returned), ("full", Some(-1)));
        assert_eq!(full.disk.as_deref(), Some("data"));
        assert_eq!(
            events[15].as_writeback().unwrap().errno.as_deref(),
            Some("EIO")
        );
        let undone = events[16].as_durability().unwrap();
        assert_eq!(
            (undone.what.as_str(), undone.range),
            ("undone", Some([0, 13]))
        );
        let failed = events[17].as_durability().unwrap();
        assert_eq!(failed.what, "undo-failed");
        assert!(failed.error.as_deref().unwrap().contains("Not a directory"));
        assert_eq!(events[18].as_durability().unwrap().pid, Some(4931));
    }

    /// The set of fields of a line, and serialising its parse back gives the same line.
    #[test]
    fn every_field_the_shim_writes_is_known() {
        for line in LINES.iter().chain(MORE_LINES) {
            let raw: Value = serde_json::from_str(line).unwrap();
            let event: Event = serde_json::from_str(line).unwrap();
            let back = serde_json::to_value(&event).unwrap();
            let keys = |v: &Value| {
                let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
                k.sort();
                k
            };
            assert_eq!(keys(&back), keys(&raw), "fields lost or added: {line}");
            assert_eq!(back, raw, "{line}");
        }
    }

    #[test]
    fn a_rule_line_carries_its_counts_by_reason() {
        let line = LINES.last().unwrap();
        let e: Event = serde_json::from_str(line).unwrap();
        let r = e.as_rule().unwrap();
        assert_eq!(
            (r.rule.as_str(), r.drawn, r.injected),
            ("short-send", 96, 0)
        );
        assert_eq!(r.refused["blocking-write-not-interrupted"], 96);
        assert!(e.header().is_none() && e.as_fault().is_none());
    }

    #[test]
    fn unknown_fields_and_kinds_are_read_over() {
        let newer = r#"{"ev":"fault","ts_ns":1,"pid":2,"tid":2,"proc":"0000000000000001","op":"recv","fd":4,"rule":"r","fault":"EIO","shiny":[1,2]}"#;
        let f: Event = serde_json::from_str(newer).unwrap();
        assert_eq!(f.as_fault().unwrap().fault, "EIO");
        let other: Event = serde_json::from_str(r#"{"ev":"heartbeat","ts_ns":1,"pid":2}"#).unwrap();
        assert_eq!(other, Event::Other);
        assert!(other.header().is_none());
        // Not a line of ours: the header is missing.
        assert!(serde_json::from_str::<Event>(r#"{"ev":"fault"}"#).is_err());
    }

    /// A bad key is reported with what was expected, not dropped.
    #[test]
    fn a_malformed_key_says_why() {
        let line = r#"{"ev":"fault","ts_ns":1,"pid":2,"tid":2,"proc":"0000000000000001","op":"recv","fd":4,"rule":"r","fault":"EIO","key":"0000000000000001-0000000000000002/r0/up@0#0"}"#;
        let f: Event = serde_json::from_str(line).unwrap();
        let e = f.as_fault().unwrap().parsed_key().unwrap().unwrap_err();
        assert!(e.to_string().contains("expected `rx` or `tx`"), "{e}");
    }

    /// A line formatted with `LineBuf` as the shim's writer does reads back into the schema.
    #[test]
    fn a_linebuf_line_reads_back() {
        let key = Key {
            process: 0x3d77_538f_4f44_f7a1,
            conn: 0x322c_491d_ea8e_590c,
            rule: 0,
            site: Site::Stream {
                dir: Dir::Rx,
                pos: 1000,
                attempt: 0,
            },
        };
        let mut b = LineBuf::new();
        b.begin();
        b.field_str("ev", b"fault");
        b.field_num("ts_ns", 1_795_335_157_288_616_658u64);
        b.field_num("pid", 4255);
        b.field_num("tid", 4255);
        b.field_display("proc", format_args!("{:016x}", key.process));
        b.field_str("op", b"recv");
        b.field_num("fd", 4);
        b.field_str("rule", b"reset-redis\"quoted\"");
        b.field_str("fault", b"reset");
        b.field_num("returned", -1);
        b.field_display("key", key);
        let line = std::str::from_utf8(b.finish()).unwrap().to_string();
        let f = serde_json::from_str::<Event>(&line).unwrap();
        let f = f.as_fault().unwrap();
        assert_eq!(f.rule, "reset-redis\"quoted\"");
        assert_eq!(f.returned, Some(-1));
        assert_eq!(f.parsed_key().unwrap().unwrap(), key);
    }
}
