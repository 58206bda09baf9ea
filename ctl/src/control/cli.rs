//! `chaos-ctl control …`: changes a live run from any shell or any process of it.

use super::page::{FILE, Mapped};
use super::{Change, Status, apply, status};
use crate::failure::{self, Failure};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args)]
pub struct ControlArgs {
    /// The run's directory (`LOG.run`); default: the page named by $CHAOS_CONTROL, which every
    /// process of a run has in its environment
    #[arg(long, value_name = "DIR")]
    pub run: Option<PathBuf>,
    #[command(subcommand)]
    pub what: ControlCommand,
}

#[derive(Subcommand)]
pub enum ControlCommand {
    /// Switch a rule on (one that starts with `enabled = false`, or one disabled before)
    Enable { rule: String },
    /// Switch a rule off: it stops firing at once in every process of the run
    Disable { rule: String },
    /// Cut the network between groups of processes (each a comma-separated list of replicas
    /// like kv#0, process names standing for all their replicas, or `workload`)
    Partition {
        /// Two or more groups, e.g. `kv#0 kv#1,kv#2`
        #[arg(required = true, num_args = 2..)]
        groups: Vec<String>,
        /// Cut only the traffic from the first group to the others
        #[arg(long)]
        one_way: bool,
    },
    /// Remove every cut: held data flows again
    Heal,
    /// Fill a `[[disk]]` (others take every free byte: the next write that needs space fails
    /// ENOSPC) or free it again
    Disk {
        name: String,
        #[arg(value_enum)]
        action: DiskAction,
    },
    /// Kill a replica (or every replica of a process) as a power loss: its unsynced changes
    /// under [durability] are undone before it is restarted
    PowerLoss { name: String },
    /// Show the rules, the processes with their ports, and the cuts in force
    Status {
        /// As JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DiskAction {
    Fill,
    Free,
}

/// The control page of the run `--run` names, or `$CHAOS_CONTROL`'s.
fn page_path(run: Option<PathBuf>) -> Result<PathBuf, Failure> {
    if let Some(dir) = run {
        return Ok(dir.join(FILE));
    }
    match std::env::var_os("CHAOS_CONTROL") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err(Failure::with(
            failure::USAGE,
            "no run to control: give --run DIR (the run's LOG.run directory), or run this from a \
             process of the run, where $CHAOS_CONTROL names its control page",
        )),
    }
}

pub fn control(args: ControlArgs) -> Result<u8, Failure> {
    let mapped = Mapped::open(&page_path(args.run)?)?;
    let page = mapped.page();
    let change = match args.what {
        ControlCommand::Status { json } => {
            let s = status(&page);
            let text = if json {
                serde_json::to_string_pretty(&s).expect("status serialises") + "\n"
            } else {
                status_text(&s)
            };
            crate::output::out!("{text}")?;
            return Ok(0);
        }
        ControlCommand::Enable { rule } => Change::Enable(rule),
        ControlCommand::Disable { rule } => Change::Disable(rule),
        ControlCommand::Partition { groups, one_way } => Change::Partition {
            between: groups
                .iter()
                .map(|g| {
                    g.split(',')
                        .filter(|n| !n.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .collect(),
            one_way,
        },
        ControlCommand::Heal => Change::Heal,
        ControlCommand::PowerLoss { name } => Change::PowerLoss(name),
        ControlCommand::Disk { name, action } => Change::Disk {
            name,
            full: matches!(action, DiskAction::Fill),
        },
    };
    let line = apply(&page, &change, "cli", None)?;
    crate::output::out!(
        "chaos: {}{} (generation {})\n",
        line.what,
        line.rule
            .or(line.disk)
            .or(line.process)
            .map(|r| format!(" {r}"))
            .unwrap_or_default(),
        line.generation
    )?;
    Ok(0)
}

fn status_text(s: &Status) -> String {
    let mut t = format!("generation {}\nrules:\n", s.generation);
    if s.rules.is_empty() {
        t.push_str("  (none)\n");
    }
    for r in &s.rules {
        t.push_str(&format!(
            "  {:<24} {}\n",
            r.name,
            if r.enabled { "enabled" } else { "disabled" }
        ));
    }
    if !s.processes.is_empty() {
        t.push_str("processes:\n");
        for p in &s.processes {
            let ports: Vec<String> = p.ports.iter().map(u16::to_string).collect();
            t.push_str(&format!("  {:<24} ports {}\n", p.name, ports.join(",")));
        }
    }
    for d in &s.disks {
        t.push_str(&format!(
            "disk {:<19} {} of {} bytes in use, {} taken by others\n",
            d.name, d.used, d.capacity, d.others
        ));
    }
    if s.cut.is_empty() {
        t.push_str("cuts: none\n");
    } else {
        t.push_str("cuts:\n");
        for [a, b] in &s.cut {
            t.push_str(&format!("  {a} -> {b}\n"));
        }
    }
    t
}
