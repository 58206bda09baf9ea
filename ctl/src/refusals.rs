//! The account of each rule's draws: at the end of a run chaos-ctl reads the counts every process
//! added to the control page and appends one `rule` line per rule that was drawn; the summary and
//! `report` explain from those lines the rules that were drawn but never injected (which realism
//! rule refused them, and what would let them fire).

use crate::log::Log;
use chaos_engine::event::schema::{Event, RuleLine};
use chaos_engine::page::{MAX_RULES, Page};
use chaos_engine::policy::Policy;
use chaos_engine::refusal::Reason;
use std::collections::BTreeMap;
use std::path::Path;

/// Appends a `rule` line for every rule of `policy` drawn at least once during the run, with the
/// counts summed over every process that mapped `page`. A log that cannot be appended to loses
/// only these lines.
pub fn append_rule_lines(page: &Page, policy: &Policy, log_path: &Path) {
    use std::io::Write;
    let ts_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut text = String::new();
    for (i, rule) in policy.rules.iter().enumerate().take(MAX_RULES) {
        let t = page.tally_of(i);
        if t.drawn == 0 {
            continue;
        }
        let line = Event::Rule(RuleLine {
            ts_ns,
            rule: rule.name.clone(),
            drawn: t.drawn,
            injected: t.injected,
            refused: t
                .reasons()
                .map(|(r, n)| (r.name().to_string(), n))
                .collect(),
        });
        if let Ok(l) = serde_json::to_string(&line) {
            text.push_str(&l);
            text.push('\n');
        }
    }
    if text.is_empty() {
        return;
    }
    // One write to an O_APPEND file, as every line of the log is written.
    let _ = std::fs::OpenOptions::new()
        .append(true)
        .open(log_path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
}

/// Each rule's account in the log, by name (lines for the same rule, from logs joined together,
/// are added up).
pub fn accounts(log: &Log) -> BTreeMap<String, RuleLine> {
    let mut by_name: BTreeMap<String, RuleLine> = BTreeMap::new();
    for r in log.rule_lines() {
        let a = by_name.entry(r.rule.clone()).or_insert_with(|| RuleLine {
            ts_ns: r.ts_ns,
            rule: r.rule.clone(),
            drawn: 0,
            injected: 0,
            refused: BTreeMap::new(),
        });
        a.drawn += r.drawn;
        a.injected += r.injected;
        for (why, n) in &r.refused {
            *a.refused.entry(why.clone()).or_insert(0) += n;
        }
    }
    by_name
}

/// The reason that refused most of a rule's draws, with its count.
fn dominant(a: &RuleLine) -> Option<(&str, u64)> {
    a.refused
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(why, n)| (why.as_str(), *n))
}

/// The summary's lines: one per rule that was drawn but never injected, with the reason that
/// refused it most and what would let it fire. E.g. `chaos: rule short-send: 96 drawn, 0 injected
/// — a blocking send with room is never short (blocking-write-not-interrupted); use …`.
pub fn summary_lines(log: &Log) -> String {
    let mut out = String::new();
    for a in accounts(log).values() {
        if a.injected > 0 {
            continue;
        }
        let Some((why, _)) = dominant(a) else {
            continue;
        };
        let rule = crate::frozen::comment(&a.rule);
        let explained = match Reason::from_name(why) {
            Some(r) => format!("{} ({why}); {}", r.why(), r.hint()),
            // A newer chaos's reason: its name is all this one knows.
            None => format!("refused by `{why}`"),
        };
        out.push_str(&format!(
            "chaos: rule {rule}: {} drawn, 0 injected — {explained}\n",
            a.drawn
        ));
    }
    out
}

/// `report`'s lines: every rule drawn, with its injections and refusals by reason.
pub fn report_lines(log: &Log) -> String {
    let accounts = accounts(log);
    if accounts.is_empty() {
        return String::new();
    }
    let mut out = "  rules drawn to fire:\n".to_string();
    for a in accounts.values() {
        let refused: Vec<String> = a
            .refused
            .iter()
            .map(|(why, n)| format!("{why} {n}"))
            .collect();
        out.push_str(&format!(
            "    {}: {} drawn, {} injected{}\n",
            crate::frozen::comment(&a.rule),
            a.drawn,
            a.injected,
            if refused.is_empty() {
                String::new()
            } else {
                format!(", refused: {}", refused.join(", "))
            }
        ));
    }
    out
}

/// `report --json`'s `rules`: the accounts as they are in the log.
pub fn json(log: &Log) -> serde_json::Value {
    serde_json::Value::Array(
        accounts(log)
            .into_values()
            .map(|a| {
                serde_json::json!({
                    "rule": a.rule,
                    "drawn": a.drawn,
                    "injected": a.injected,
                    "refused": a.refused,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: &[&str]) -> Log {
        Log::parse(&lines.join("\n"))
    }

    #[test]
    fn a_rule_never_injected_is_explained_by_its_main_reason_with_a_hint() {
        let l = log(&[
            r#"{"ev":"rule","ts_ns":1,"rule":"short-send","drawn":96,"injected":0,"refused":{"blocking-write-not-interrupted":90,"times-used-up":6}}"#,
            r#"{"ev":"rule","ts_ns":1,"rule":"works","drawn":5,"injected":5}"#,
        ]);
        let s = summary_lines(&l);
        assert_eq!(s.lines().count(), 1, "{s}");
        assert!(
            s.starts_with("chaos: rule short-send: 96 drawn, 0 injected — a blocking send with room is never short (blocking-write-not-interrupted); use a non-blocking socket"),
            "{s}"
        );
        let r = report_lines(&l);
        assert!(r.contains("short-send: 96 drawn, 0 injected, refused: blocking-write-not-interrupted 90, times-used-up 6"), "{r}");
        assert!(r.contains("works: 5 drawn, 5 injected\n"), "{r}");
    }

    #[test]
    fn lines_for_one_rule_add_up_and_unknown_reasons_are_named() {
        let l = log(&[
            r#"{"ev":"rule","ts_ns":1,"rule":"r","drawn":2,"injected":0,"refused":{"from-the-future":2}}"#,
            r#"{"ev":"rule","ts_ns":2,"rule":"r","drawn":3,"injected":0,"refused":{"from-the-future":3}}"#,
        ]);
        assert_eq!(accounts(&l)["r"].drawn, 5);
        assert_eq!(
            summary_lines(&l),
            "chaos: rule r: 5 drawn, 0 injected — refused by `from-the-future`\n"
        );
        assert_eq!(json(&l)[0]["refused"]["from-the-future"], 5);
    }
}
