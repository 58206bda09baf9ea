//! The account of a run: every effect chaos had on the program, by kind — faults, what a
//! `[[disk]]` did, changes undone after a crash (and undos that failed), what the supervisor did
//! to a system's processes, partitions and other control changes — for the summary and `report`.
//! A count here is a count of log lines: the log is the truth of a run.

use crate::log::Log;
use std::collections::BTreeMap;

/// Process events that are chaos acting on a process (not the process's own start, exit or
/// readiness, nor a scheduled event skipped; a `wipe` line is the data side of a `kill` of kind
/// `wipe`, counted there).
const PROCESS_EFFECTS: [&str; 4] = ["kill", "pause", "oom", "restart"];

/// One row of the effects table: (effect, on what, what it did).
type Row = (&'static str, String, String);

#[derive(Default)]
pub struct Account {
    pub faults: usize,
    /// `[[disk]]` short writes and refusals, and writeback errors reported to another fd.
    pub disk: usize,
    /// Reads held to end at a grid fault's offset, the read before the fault (see
    /// `Log::injected`).
    pub held: usize,
    pub undone: usize,
    pub undo_failed: usize,
    pub process: usize,
    /// Partitions made and healed, from the schedule or by hand.
    pub partitions: usize,
    /// Rule switches and disk fills/frees made through the control page.
    pub control: usize,
    /// Effects other than faults, by row.
    pub rows: BTreeMap<Row, usize>,
}

impl Account {
    pub fn of(log: &Log) -> Account {
        let mut a = Account {
            faults: log.injected().count(),
            ..Account::default()
        };
        // A grid fault's hold cut a read short: an effect of its own, counted with the fault it
        // came before rather than as another fault.
        for h in log.holds() {
            a.held += 1;
            a.add(
                "held",
                h.op.clone(),
                format!("read held before {}", h.fault),
            );
        }
        for d in log.events.iter().filter_map(|e| e.as_disk()) {
            a.disk += 1;
            let what = match &d.errno {
                Some(errno) => format!("{} {errno}", d.what),
                None => d.what.clone(),
            };
            a.add("disk", d.disk.clone().unwrap_or_default(), what);
        }
        for w in log.events.iter().filter_map(|e| e.as_writeback()) {
            a.disk += 1;
            let what = format!("{} {}", w.what, w.errno.as_deref().unwrap_or("?"));
            a.add("writeback", w.op.clone(), what);
        }
        for d in log.events.iter().filter_map(|e| e.as_durability()) {
            let op = d.op.clone().unwrap_or_default();
            match d.what.as_str() {
                "undone" => {
                    a.undone += 1;
                    a.add("undone", op, d.why.clone().unwrap_or_default());
                }
                "undo-failed" => {
                    a.undo_failed += 1;
                    a.add("undo-failed", op, d.error.clone().unwrap_or_default());
                }
                _ => {}
            }
        }
        for p in log
            .process_events()
            .filter(|p| PROCESS_EFFECTS.contains(&p.what.as_str()))
        {
            a.process += 1;
            let what = match &p.kind {
                Some(kind) if *kind != p.what => format!("{} {kind}", p.what),
                _ => p.what.clone(),
            };
            a.add("process", p.name.clone(), what);
        }
        for c in log.control_changes() {
            let by = c.by.clone().unwrap_or_default();
            let target = c.rule.as_deref().or(c.disk.as_deref());
            let what = match target {
                Some(t) => format!("{} {t}", c.what),
                None => c.what.clone(),
            };
            if matches!(c.what.as_str(), "partition" | "heal") {
                a.partitions += 1;
                a.add("partition", by, what);
            } else {
                a.control += 1;
                a.add("control", by, what);
            }
        }
        a
    }

    fn add(&mut self, effect: &'static str, on: String, what: String) {
        let row = (
            effect,
            crate::frozen::comment(&on),
            crate::frozen::comment(&what),
        );
        *self.rows.entry(row).or_insert(0) += 1;
    }

    /// Every effect, of whatever kind.
    pub fn total(&self) -> usize {
        self.faults
            + self.held
            + self.disk
            + self.undone
            + self.undo_failed
            + self.process
            + self.partitions
            + self.control
    }

    /// `3 faults`, or `0 faults, 3 disk effects, 1 undone change` when there are other effects:
    /// the faults always, the other kinds when there were some.
    pub fn headline(&self) -> String {
        let mut parts = vec![count(self.faults, "fault", "faults")];
        for (n, one, many) in [
            (self.held, "held read", "held reads"),
            (self.disk, "disk effect", "disk effects"),
            (self.undone, "undone change", "undone changes"),
            (self.undo_failed, "failed undo", "failed undos"),
            (self.process, "process event", "process events"),
            (self.partitions, "partition change", "partition changes"),
            (self.control, "control change", "control changes"),
        ] {
            if n > 0 {
                parts.push(count(n, one, many));
            }
        }
        parts.join(", ")
    }

    /// The effects other than faults, one row per kind of effect; empty when there were none.
    pub fn table(&self) -> String {
        if self.rows.is_empty() {
            return String::new();
        }
        let w = self
            .rows
            .keys()
            .map(|k| k.1.len())
            .max()
            .unwrap_or(2)
            .max(4);
        let mut out = format!(
            "  {:<11}  {:<w$}  {:<24}  {:>6}\n",
            "effect", "on", "what", "count"
        );
        for ((effect, on, what), n) in &self.rows {
            out += &format!("  {effect:<11}  {on:<w$}  {what:<24}  {n:>6}\n");
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|((effect, on, what), n)| {
                serde_json::json!({"effect": effect, "on": on, "what": what, "count": n})
            })
            .collect();
        serde_json::json!({
            "total": self.total(),
            "faults": self.faults,
            "held": self.held,
            "disk": self.disk,
            "undone": self.undone,
            "undo_failed": self.undo_failed,
            "process": self.process,
            "partitions": self.partitions,
            "control": self.control,
            "by_effect": rows,
        })
    }
}

/// `1 fault`, `2 faults`, `0 faults`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"ev":"start","ts_ns":1,"pid":7,"ppid":1,"proc":"c2459c08352fe84d","via":"exec"}
{"ev":"fault","ts_ns":2,"pid":7,"tid":7,"proc":"c2459c08352fe84d","op":"recv","fd":5,"rule":"r","fault":"EIO"}
{"ev":"disk","ts_ns":3,"pid":7,"tid":7,"proc":"c2459c08352fe84d","disk":"data","what":"short","op":"write","fd":3,"requested":10000,"returned":5056}
{"ev":"disk","ts_ns":4,"pid":7,"tid":7,"proc":"c2459c08352fe84d","disk":"data","what":"full","op":"write","fd":3,"requested":10000,"returned":-1,"errno":"ENOSPC"}
{"ev":"disk","ts_ns":5,"pid":7,"tid":7,"proc":"c2459c08352fe84d","disk":"data","what":"full","op":"write","fd":3,"requested":10000,"returned":-1,"errno":"ENOSPC"}
{"ev":"durability","ts_ns":6,"what":"undone","process":"workload","op":"write","path":"/d/a","why":"not fsynced","range":[0,3],"old_size":0}
{"ev":"durability","ts_ns":7,"what":"undo-failed","process":"workload","op":"rename","path":"/d/a","why":"directory not fsynced","to":"/d/b","error":"Not a directory (os error 20)"}
{"ev":"process","ts_ns":8,"t_ns":1,"name":"kv#1","what":"kill","kind":"crash"}
{"ev":"process","ts_ns":9,"t_ns":2,"name":"kv#1","what":"exit","signal":"SIGKILL"}
{"ev":"control","ts_ns":10,"generation":2,"t_ns":3,"by":"cli","what":"partition","cut":[["a","b"]]}
{"ev":"control","ts_ns":11,"generation":3,"pid":7,"at":"x","what":"seen"}
{"ev":"control","ts_ns":12,"generation":4,"t_ns":4,"by":"http","what":"disable","rule":"r"}
"#;

    #[test]
    fn every_kind_of_effect_is_counted_once() {
        let a = Account::of(&Log::parse(LOG));
        assert_eq!(
            (a.faults, a.disk, a.undone, a.undo_failed, a.process),
            (1, 3, 1, 1, 1)
        );
        // A shim's `seen` line is where a change took effect, not another change.
        assert_eq!((a.partitions, a.control, a.total()), (1, 1, 9));
        assert_eq!(
            a.headline(),
            "1 fault, 3 disk effects, 1 undone change, 1 failed undo, 1 process event, \
             1 partition change, 1 control change"
        );
        let t = a.table();
        assert!(t.contains("disk         data"), "{t}");
        assert!(t.contains("full ENOSPC"), "{t}");
        assert!(t.contains("Not a directory"), "{t}");
        assert!(t.contains("kill crash"), "{t}");
        assert_eq!(a.json()["total"], 9);
    }

    #[test]
    fn a_grid_faults_hold_is_no_fault_of_its_own() {
        let log = r#"{"ev":"fault","ts_ns":2,"pid":7,"tid":7,"proc":"c2459c08352fe84d","op":"recv","fd":5,"rule":"r","fault":"ECONNRESET","effect":"held","returned":1000}
{"ev":"fault","ts_ns":3,"pid":7,"tid":7,"proc":"c2459c08352fe84d","op":"recv","fd":5,"rule":"r","fault":"ECONNRESET","returned":-1}
"#;
        let parsed = Log::parse(log);
        let a = Account::of(&parsed);
        assert_eq!((a.faults, a.held, a.total()), (1, 1, 2));
        assert_eq!(a.headline(), "1 fault, 1 held read");
        assert!(
            a.table().contains("read held before ECONNRESET"),
            "{}",
            a.table()
        );
        let by_rule = crate::report::tally(&parsed);
        assert_eq!(by_rule.values().sum::<usize>(), 1, "{by_rule:?}");
    }

    #[test]
    fn a_run_with_only_faults_says_only_faults() {
        let only = LOG.lines().take(2).collect::<Vec<_>>().join("\n");
        let a = Account::of(&Log::parse(&only));
        assert_eq!(a.headline(), "1 fault");
        assert!(a.table().is_empty());
        assert_eq!(Account::default().headline(), "0 faults");
    }
}
