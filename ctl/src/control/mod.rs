//! Runtime control of a live run: switching rules on and off and cutting the network between its
//! processes, through the control page every shim of the run maps. Front ends: `chaos-ctl control
//! …` (any process of the run finds the page through `$CHAOS_CONTROL`), the HTTP endpoint
//! (`--control-addr`), and the supervisor's partition schedule. Each change is logged as a
//! `control` line with the run's time.

pub mod cli;
pub mod http;
pub mod page;

use crate::failure::Failure;
use chaos_engine::event::schema::{ControlLine, Event};
use chaos_engine::page::{MAX_PROCESSES, Page};
use serde::Serialize;
use std::io::Write;

/// A name (a rule, a process) the run does not have.
pub const UNKNOWN_NAME: u8 = 2;

/// One change to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Enable(String),
    Disable(String),
    /// Groups of names (replicas, process names standing for all their replicas, `workload`).
    Partition {
        between: Vec<Vec<String>>,
        one_way: bool,
    },
    Heal,
    /// `disk NAME fill|free`: others take every free byte of the disk, or give them back.
    Disk {
        name: String,
        full: bool,
    },
    /// A whole cut matrix (the partition schedule's, already resolved to directory indices).
    Rows(Box<[u64; MAX_PROCESSES]>),
    /// `power-loss NAME`: the supervisor kills the replica (or every replica of a process) and
    /// undoes its unsynced changes before the restart.
    PowerLoss(String),
}

/// The run's state as `status` shows it.
#[derive(Serialize, Debug)]
pub struct Status {
    pub generation: u64,
    pub rules: Vec<RuleStatus>,
    pub processes: Vec<ProcessStatus>,
    /// The directed pairs cut now, `[from, to]`.
    pub cut: Vec<[String; 2]>,
    pub disks: Vec<DiskStatus>,
}

#[derive(Serialize, Debug)]
pub struct DiskStatus {
    pub name: String,
    pub capacity: u64,
    /// Bytes the run's files hold, and bytes others took (`fill`).
    pub used: u64,
    pub others: u64,
}

#[derive(Serialize, Debug)]
pub struct RuleStatus {
    pub name: String,
    pub enabled: bool,
}

#[derive(Serialize, Debug)]
pub struct ProcessStatus {
    pub name: String,
    /// The TCP ports its shim registered (listening, or connected from).
    pub ports: Vec<u16>,
}

pub fn status(page: &Page) -> Status {
    let enabled = page.enabled();
    let names: Vec<String> = (0..page.process_count()).map(|i| page.name(i)).collect();
    Status {
        generation: page.generation(),
        rules: page
            .rule_names()
            .into_iter()
            .enumerate()
            .map(|(i, name)| RuleStatus {
                name,
                enabled: enabled & (1 << i) != 0,
            })
            .collect(),
        processes: names
            .iter()
            .enumerate()
            .map(|(i, name)| ProcessStatus {
                name: name.clone(),
                ports: page.ports_of(i),
            })
            .collect(),
        cut: cut_pairs(page, &names),
        disks: (0..page.disk_count())
            .map(|i| {
                let (used, others) = page.disk_words(i);
                DiskStatus {
                    name: page.disk_name(i),
                    capacity: page.disk_capacity(i),
                    used: used.load(std::sync::atomic::Ordering::Relaxed),
                    others: others.load(std::sync::atomic::Ordering::Relaxed),
                }
            })
            .collect(),
    }
}

fn cut_pairs(page: &Page, names: &[String]) -> Vec<[String; 2]> {
    let mut pairs = Vec::new();
    for (a, na) in names.iter().enumerate() {
        for (b, nb) in names.iter().enumerate() {
            if page.cut(a, b) {
                pairs.push([na.clone(), nb.clone()]);
            }
        }
    }
    pairs
}

/// The directory indices a partition member stands for: a replica or `workload` by its name, a
/// process by all its replicas (`kv` → `kv#0`, `kv#1`…).
fn members(page: &Page, name: &str) -> Result<Vec<usize>, Failure> {
    let names: Vec<String> = (0..page.process_count()).map(|i| page.name(i)).collect();
    let found: Vec<usize> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| *n == name || chaos_engine::system::base_name(n) == name)
        .map(|(i, _)| i)
        .collect();
    if found.is_empty() {
        return Err(Failure::with(
            UNKNOWN_NAME,
            format!(
                "no process `{name}` in this run; expected one of {}",
                if names.is_empty() {
                    "(none: this run has no [[process]] entries)".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }
    Ok(found)
}

/// The replicas a power loss of `name` hits: refused without `[durability]` (nothing would be
/// undone: it would be a plain crash) and for the workload, which chaos-ctl does not restart.
fn power_loss_targets(page: &Page, name: &str) -> Result<Vec<usize>, Failure> {
    if !page.has_durability() {
        return Err(Failure::with(
            crate::failure::USAGE,
            format!(
                "cannot power-loss `{name}`: this run's policy has no [durability], so a power                  loss would undo nothing; add [durability] with the paths the process writes, or                  kill it as a crash"
            ),
        ));
    }
    let replicas: Vec<String> = (0..page.process_count())
        .map(|i| page.name(i))
        .filter(|n| n != "workload")
        .collect();
    if name == "workload" {
        return Err(Failure::with(
            UNKNOWN_NAME,
            format!(
                "no replica `workload`: the workload is not restarted, so it has no power loss;                  expected one of {}",
                replicas.join(", ")
            ),
        ));
    }
    members(page, name)
}

/// Applies `change` to the page and logs it; `by` says who asked (`cli`, `http`, `schedule`).
/// Returns the line logged.
pub fn apply(
    page: &Page,
    change: &Change,
    by: &str,
    key: Option<&str>,
) -> Result<ControlLine, Failure> {
    let now = page::monotonic_ns();
    let mut disk = None;
    let mut process = None;
    let (what, rule) = match change {
        Change::Enable(name) | Change::Disable(name) => {
            let rules = page.rule_names();
            let Some(i) = rules.iter().position(|r| r == name) else {
                return Err(Failure::with(
                    UNKNOWN_NAME,
                    format!(
                        "no rule `{name}` in this run's policy; expected one of {}",
                        if rules.is_empty() {
                            "(none)".to_string()
                        } else {
                            rules.join(", ")
                        }
                    ),
                ));
            };
            let on = matches!(change, Change::Enable(_));
            page.set_enabled(i, on);
            (if on { "enable" } else { "disable" }, Some(name.clone()))
        }
        Change::Partition { between, one_way } => {
            if between.len() < 2 || between.iter().any(Vec::is_empty) {
                return Err(Failure::with(
                    crate::failure::USAGE,
                    "a partition takes two or more non-empty groups of processes",
                ));
            }
            // Each replica in one group only, as the policy's `between` is checked: one in two
            // groups would be cut from itself.
            let mut groups: Vec<Vec<usize>> = Vec::new();
            for g in between {
                let mut idx = Vec::new();
                for n in g {
                    for i in members(page, n)? {
                        if groups.iter().chain([&idx]).any(|g| g.contains(&i)) {
                            return Err(Failure::with(
                                crate::failure::USAGE,
                                format!(
                                    "`{}` is in more than one group of the partition; each \
                                     process may be in one group only",
                                    page.name(i)
                                ),
                            ));
                        }
                        idx.push(i);
                    }
                }
                groups.push(idx);
            }
            let rows = chaos_engine::page::rows_between(&groups, *one_way);
            page.set_cuts(&rows, now);
            ("partition", None)
        }
        Change::Heal => {
            page.set_cuts(&[0; MAX_PROCESSES], now);
            ("heal", None)
        }
        Change::Rows(rows) => {
            page.set_cuts(rows, now);
            ("partition", None)
        }
        Change::Disk { name, full } => {
            let Some(i) = page.disk_index(name) else {
                let disks: Vec<String> =
                    (0..page.disk_count()).map(|i| page.disk_name(i)).collect();
                return Err(Failure::with(
                    UNKNOWN_NAME,
                    format!(
                        "no disk `{name}` in this run's policy; expected one of {}",
                        if disks.is_empty() {
                            "(none: the policy has no [[disk]])".to_string()
                        } else {
                            disks.join(", ")
                        }
                    ),
                ));
            };
            page.set_disk_full(i, *full);
            disk = Some(name.clone());
            (if *full { "disk-fill" } else { "disk-free" }, None)
        }
        Change::PowerLoss(name) => {
            for i in power_loss_targets(page, name)? {
                page.request_power_loss(i);
            }
            process = Some(name.clone());
            ("power-loss", None)
        }
    };
    let names: Vec<String> = (0..page.process_count()).map(|i| page.name(i)).collect();
    let line = ControlLine {
        ts_ns: crate::system::journal::now_ns(),
        generation: page.generation(),
        t_ns: Some(now.saturating_sub(page.started())),
        by: Some(by.to_string()),
        what: what.to_string(),
        rule,
        disk,
        process,
        cut: cut_pairs(page, &names),
        key: key.map(str::to_string),
        pid: None,
        tid: None,
        proc: None,
        at: None,
        enabled: None,
    };
    append(&page.log_path(), &line);
    Ok(line)
}

/// Appends a control line to the run's log (O_APPEND, one write: whole among the shims' lines).
fn append(log: &str, line: &ControlLine) {
    if log.is_empty() {
        return;
    }
    if let (Ok(mut f), Ok(mut text)) = (
        std::fs::OpenOptions::new().append(true).open(log),
        serde_json::to_string(&Event::Control(line.clone())),
    ) {
        text.push('\n');
        let _ = f.write_all(text.as_bytes());
    }
}

/// A run's control: its page, and the environment that points every process of the run at it.
pub struct RunControl {
    pub page: std::sync::Arc<page::Mapped>,
    /// `CHAOS_CONTROL` (and `CHAOS_CONTROL_URL` with an endpoint).
    pub env: Vec<(String, String)>,
}

/// Creates the run's control page in `run_dir` for the processes `names` (directory order) and
/// the policy's rules, and serves it on `control_addr` if given.
pub fn start(
    run_dir: &std::path::Path,
    names: &[&str],
    policy: &chaos_engine::policy::Policy,
    log: &std::path::Path,
    control_addr: Option<&str>,
    quiet: bool,
) -> Result<RunControl, Failure> {
    let rules: Vec<&str> = policy.rules.iter().map(|r| r.name.as_str()).collect();
    crate::durability::prepare(policy, run_dir)?;
    let path = run_dir.join(page::FILE);
    let mapped = page::Mapped::create(&path, names, &rules, policy.initially_enabled(), log)?;
    let disks: Vec<(&str, u64, u64)> = policy
        .disks
        .iter()
        .map(|d| {
            let used = chaos_engine::disk::bytes_in_use(&d.path);
            (d.name.as_str(), d.capacity, used)
        })
        .collect();
    mapped.page().init_disks(&disks);
    mapped.page().set_durability(policy.durability.is_some());
    mapped.page().set_started(page::monotonic_ns());
    let mapped = std::sync::Arc::new(mapped);
    let mut env = vec![("CHAOS_CONTROL".to_string(), path.display().to_string())];
    if let Some(addr) = control_addr {
        let bound = http::serve(addr, mapped.clone())?;
        mapped.page().set_control_port(bound.port());
        if !quiet {
            crate::output::errout!("chaos: control endpoint http://{bound}");
        }
        env.push(("CHAOS_CONTROL_URL".to_string(), format!("http://{bound}")));
    }
    Ok(RunControl { page: mapped, env })
}
