//! A system under test: named processes chaos-ctl starts, supervises and hits (`[[process]]`), the
//! attrition schedule that kills, pauses and restarts them (`[attrition]`), and exact process events
//! from a frozen run (`[[nemesis]]`). Pure configuration, as turmoil's: chaos-ctl runs it
//! (`ctl/src/system/`), the shim only reads which rules apply to it (`Policy::scope_to_process`).

pub mod attrition;
pub mod partition;
pub mod template;

pub use attrition::{Attrition, Kind, NemesisEvent, restart_delay, schedule};

/// The processes, attrition and frozen nemesis events of a policy; empty for a plain policy.
#[derive(Clone, Debug, Default)]
pub struct System {
    pub processes: Vec<ProcessSpec>,
    pub attrition: Option<Attrition>,
    /// Exact events (`[[nemesis]]`, what `freeze` writes): when present, they are the schedule and
    /// `[attrition]` draws nothing.
    pub nemesis: Vec<NemesisEvent>,
    /// `[[partition]]`: fixed cuts between groups of processes.
    pub partition: Vec<partition::FixedPartition>,
    /// `[partitions]`: seeded cuts in Jepsen's shapes.
    pub partitions: Option<partition::Partitions>,
}

impl System {
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }

    /// Every replica's name (`kv#0`, `kv#1`…, or `kv` for a single one), in declaration order.
    pub fn replica_names(&self) -> Vec<String> {
        self.processes
            .iter()
            .flat_map(|p| (0..p.replicas).map(move |i| p.replica_name(i)))
            .collect()
    }

    /// A partition member's replicas: a process name stands for all of them; a replica name and
    /// `workload` for themselves.
    pub fn expand_member(&self, name: &str) -> Vec<String> {
        match self.process(name) {
            Some(p) => (0..p.replicas).map(|i| p.replica_name(i)).collect(),
            None => vec![name.to_string()],
        }
    }

    pub fn process(&self, name: &str) -> Option<&ProcessSpec> {
        self.processes.iter().find(|p| p.name == name)
    }
}

/// When a process that exited by itself is started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

/// How chaos-ctl knows a process is ready for the workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ready {
    /// `tcp:{port}` or `tcp:HOST:PORT`: a TCP connect succeeds.
    Tcp(String),
    /// `unix:PATH`: a connect to the unix socket succeeds.
    Unix(String),
    /// `log:REGEX`: a line of its stdout or stderr matches.
    Log(String),
    /// `cmd:…`: this shell command exits 0 (run with `sh -c`).
    Cmd(String),
}

/// `limits = { nofile = 256, memory = "256M", cpu = "50%" }`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub nofile: Option<u64>,
    /// Bytes.
    pub memory: Option<u64>,
    /// Percent of one CPU (1..=100 per CPU; 150 means one and a half).
    pub cpu_percent: Option<u32>,
}

/// One `[[process]]`.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    pub name: String,
    /// Templates (`{i}`, `{port}`, `{data}`, `{run}`, `{peers}`).
    pub cmd: Vec<String>,
    pub replicas: u32,
    /// Replica i listens on `port + i`; None: chaos-ctl picks a free port per replica.
    pub port: Option<u16>,
    /// The replica's data directory (a template): created, and emptied by a wipe.
    pub data: Option<String>,
    pub ready: Option<Ready>,
    pub ready_timeout_ns: u64,
    pub env: Vec<(String, String)>,
    /// What a graceful kill sends.
    pub stop_signal: i32,
    /// Rules that apply only to the processes listing them.
    pub rules: Vec<String>,
    pub restart: Restart,
    pub limits: Limits,
    /// `user = "postgres"`: run as this user (chaos-ctl must be root), for servers that refuse
    /// to run as root.
    pub user: Option<String>,
    /// `machine = "m1"`: the processes sharing a disk, which a power loss takes down together.
    pub machine: Option<String>,
}

impl ProcessSpec {
    /// `kv#1`; a process of one replica is just `kv`.
    pub fn replica_name(&self, i: u32) -> String {
        if self.replicas == 1 {
            self.name.clone()
        } else {
            format!("{}#{i}", self.name)
        }
    }
}

/// The name a replica name belongs to: `kv` for `kv#1`.
pub fn base_name(replica: &str) -> &str {
    replica.split_once('#').map_or(replica, |(b, _)| b)
}

/// The variable naming a process's addresses for the workload: `CHAOS_ADDRS_KV` for `kv`
/// (upper-cased, anything but letters and digits becoming `_`).
pub fn addrs_var(name: &str) -> String {
    let mut v = String::from("CHAOS_ADDRS_");
    v.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    v
}

#[cfg(test)]
mod tests;
