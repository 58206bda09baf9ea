//! `chaos-ctl report` and the summary printed after a run.

use crate::account::count;
use crate::failure::Failure;
use crate::log::Log;
use crate::output::{errout, out};
use std::collections::BTreeMap;
use std::path::Path;

/// Fault counts keyed by (rule, op, fault).
pub fn tally(log: &Log) -> BTreeMap<(String, String, String), usize> {
    let mut counts = BTreeMap::new();
    for f in log.injected() {
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
    // A rule name may hold a newline: keep the table one line a row.
    let mut counts: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for ((rule, op, fault), n) in tally(log) {
        *counts
            .entry((crate::frozen::comment(&rule), op, fault))
            .or_insert(0) += n;
    }
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

/// One line per bug the program made that the shim saw, as `run`'s summary prints them.
pub fn warning_lines(log: &Log) -> String {
    log.warnings()
        .map(|w| {
            format!(
                "chaos: program bug: pid {} {}({}): {}\n",
                w.header.pid,
                w.op,
                w.fd,
                crate::frozen::comment(&w.what)
            )
        })
        .collect()
}

/// `chaos-ctl report LOG...` (`-` for stdin): for each log in turn (`chaos-sweep/*.jsonl`), the
/// run's policy and seed, its faults by rule, op and fault, and the program bugs the shim saw.
/// `--json` prints an array of them when there are several. A file that is not a chaos log is named on stderr and makes the exit 125,
/// after the others are reported.
pub fn report_all(paths: &[&Path], json: bool) -> Result<(), Failure> {
    let mut docs = Vec::new();
    let mut printed = false;
    let mut failed = None;
    for path in paths {
        match Log::read_chaos_log(path) {
            Ok(log) if json => docs.push(json_doc(path, &log)),
            Ok(log) => {
                out!("{}{}", if printed { "\n" } else { "" }, text(path, &log))?;
                printed = true;
            }
            Err(e) if paths.len() == 1 => return Err(e),
            Err(e) => {
                errout!("chaos-ctl: {}", e.message);
                failed = Some(e.code);
            }
        }
    }
    if json && !docs.is_empty() {
        let doc = if paths.len() == 1 {
            docs.remove(0)
        } else {
            serde_json::Value::Array(docs)
        };
        out!("{}\n", serde_json::to_string_pretty(&doc).expect("json"))?;
    }
    match failed {
        Some(code) => Err(Failure::quiet(code)),
        None => Ok(()),
    }
}

fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "stdin".to_string()
    } else {
        path.display().to_string()
    }
}

fn json_doc(path: &Path, log: &Log) -> serde_json::Value {
    let account = crate::account::Account::of(log);
    let first = log.starts().next();
    let rows: Vec<serde_json::Value> = tally(log)
        .into_iter()
        .map(|((rule, op, fault), count)| {
            serde_json::json!({"rule": rule, "op": op, "fault": fault, "count": count})
        })
        .collect();
    let warnings: Vec<serde_json::Value> = log
        .warnings()
        .map(|w| serde_json::json!({"pid": w.header.pid, "op": w.op, "fd": w.fd, "what": w.what}))
        .collect();
    serde_json::json!({
        "log": display_name(path),
        "seed": first.and_then(|s| s.seed),
        "policy": first.and_then(|s| s.policy.clone()),
        "policy_digest": first.and_then(|s| s.policy_digest.clone()),
        "processes": log.starts().count(),
        "faults": log.injected().count(),
        "effects": account.json(),
        "bad_lines": log.bad_lines,
        "by_rule_op_fault": rows,
        "warnings": warnings,
        "rules": crate::refusals::json(log),
        "exits": log.exits().collect::<Vec<_>>(),
        "unlogged": log.unlogged().collect::<Vec<_>>(),
    })
}

fn text(path: &Path, log: &Log) -> String {
    let first = log.starts().next();
    let mut t = format!(
        "{}: {}, {}{}\n",
        display_name(path),
        count(log.starts().count(), "process", "processes"),
        crate::account::Account::of(log).headline(),
        if log.bad_lines > 0 {
            format!(
                ", {}",
                count(log.bad_lines, "unparseable line", "unparseable lines")
            )
        } else {
            String::new()
        }
    );
    t += &format!(
        "  policy {}{}, seed {}\n",
        crate::frozen::comment(first.and_then(|s| s.policy.as_deref()).unwrap_or("?")),
        first
            .and_then(|s| s.policy_digest.as_deref())
            .map(|d| format!(" (digest {d})"))
            .unwrap_or_default(),
        first
            .and_then(|s| s.seed)
            .map_or("?".to_string(), |s| s.to_string())
    );
    t += &table(log);
    t += &crate::account::Account::of(log).table();
    t += &crate::refusals::report_lines(log);
    t += &warning_lines(log);
    t += &crate::unlogged::describe(log);
    t += &exit_lines(log);
    t
}

/// How each process ended: `  pid 41 (python3) exit 1`, the program the run started first.
pub fn exit_lines(log: &Log) -> String {
    let name = |pid: i32| {
        log.starts()
            .filter(|s| s.header.pid == pid)
            .last()
            .and_then(|s| s.argv.as_ref()?.first().cloned())
            .map(|a| format!(" ({})", crate::frozen::comment(&a)))
            .unwrap_or_default()
    };
    let mut exits: Vec<_> = log.exits().collect();
    let top = log.top().map(|(s, _)| s.header.pid);
    exits.sort_by_key(|x| (Some(x.pid) != top, x.ts_ns));
    exits
        .iter()
        .map(|x| format!("  pid {}{} {}\n", x.pid, name(x.pid), x.describe()))
        .collect()
}
