//! The per-process table a system run prints after its fault table.

use super::replica::Replica;
use crate::account::count;
use chaos_engine::event::schema::ProcessEvent;
use std::fmt::Write;

pub fn table(replicas: &[Replica], events: &[ProcessEvent]) -> String {
    let scheduled = events
        .iter()
        .filter(|e| matches!(e.what.as_str(), "kill" | "pause") && e.at_ns.is_some())
        .count();
    let skipped = events.iter().filter(|e| e.what == "skip").count();
    let late: Vec<u64> = events.iter().filter_map(|e| e.late_ns).collect();
    let late = match late.iter().max() {
        Some(most) => format!(
            " ({} late, waiting for their state, by up to {:.2} s)",
            late.len(),
            *most as f64 / 1e9
        ),
        None => String::new(),
    };
    let mut t = format!(
        "chaos: system: {}, {} carried out{late}, {skipped} skipped\n",
        count(replicas.len(), "process", "processes"),
        count(scheduled, "scheduled event", "scheduled events"),
    );
    let w = replicas
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let _ = writeln!(
        t,
        "  {:<w$}  {:>6}  {:>8}  {:>5}  {:>4}  {:>5}  {:>10}  {:>5}  {:>3}  {:>8}",
        "process",
        "starts",
        "graceful",
        "crash",
        "wipe",
        "pause",
        "power-loss",
        "exits",
        "oom",
        "down"
    );
    for r in replicas {
        let s = &r.stats;
        let _ = writeln!(
            t,
            "  {:<w$}  {:>6}  {:>8}  {:>5}  {:>4}  {:>5}  {:>10}  {:>5}  {:>3}  {:>7.1}s",
            r.name,
            s.starts,
            s.graceful,
            s.crash,
            s.wipe,
            s.pause,
            s.power_loss,
            s.exits,
            s.oom,
            s.down.as_secs_f64()
        );
    }
    for r in replicas.iter().filter(|r| !r.limits.mechanisms.is_empty()) {
        let _ = writeln!(t, "  limits {}: {}", r.name, r.limits.mechanisms.join("; "));
    }
    t
}
