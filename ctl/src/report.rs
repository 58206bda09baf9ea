//! `chaos-ctl report` and the summary printed after a run.

use crate::events::Log;
use crate::failure::Failure;
use crate::output::out;
use std::collections::BTreeMap;
use std::path::Path;

/// Fault counts keyed by (rule, op, fault).
pub fn tally(log: &Log) -> BTreeMap<(String, String, String), usize> {
    let mut counts = BTreeMap::new();
    for f in log.faults() {
        let key = (
            f.rule.clone(),
            f.op.clone(),
            // A quirk's name says more than "quirk".
            f.quirk.clone().unwrap_or_else(|| f.fault.clone()),
        );
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

pub fn table(log: &Log) -> String {
    let counts = tally(log);
    if counts.is_empty() {
        return "  (no faults injected)\n".to_string();
    }
    let w = counts.keys().map(|k| k.0.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "  {:<w$}  {:<10}  {:<12}  {:>6}\n",
        "rule", "op", "fault", "count"
    );
    for ((rule, op, fault), n) in &counts {
        out += &format!("  {rule:<w$}  {op:<10}  {fault:<12}  {n:>6}\n");
    }
    out
}

pub fn report(path: &Path, json: bool) -> Result<(), Failure> {
    let log = Log::read_or_fail(path)?;
    let processes = log.starts().count();
    let faults = log.faults().count();
    if json {
        let rows: Vec<serde_json::Value> = tally(&log)
            .into_iter()
            .map(|((rule, op, fault), count)| {
                serde_json::json!({"rule": rule, "op": op, "fault": fault, "count": count})
            })
            .collect();
        let doc = serde_json::json!({
            "processes": processes,
            "faults": faults,
            "bad_lines": log.bad_lines,
            "by_rule_op_fault": rows,
        });
        out!("{}\n", serde_json::to_string_pretty(&doc).expect("json"))?;
    } else {
        out!(
            "{}: {processes} process(es), {faults} fault(s){}\n",
            path.display(),
            if log.bad_lines > 0 {
                format!(", {} unparseable line(s)", log.bad_lines)
            } else {
                String::new()
            }
        )?;
        out!("{}", table(&log))?;
    }
    Ok(())
}
