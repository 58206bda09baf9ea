//! A run's log as a timeline: the data `report --html` draws (lanes, spans, marks, windows and
//! faults on the run's clock). Pure: it reads parsed events and builds a JSON value; the page
//! (`ctl/assets/timeline.js`) only draws what is here.
//!
//! Times are milliseconds since the run's first line. Faults are stored column by column, with
//! their strings in tables, so a 100,000-fault run stays a few megabytes.

use crate::log::Log;
use chaos_engine::event::schema::{Event, ProcessEvent};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// Above this many processes, those without faults get no lane of their own (they are counted).
const MAX_QUIET_LANES: usize = 30;

/// One lane: a process of a system by its name (all its lives), or any other process by its pid.
struct Lane {
    label: String,
    /// What it is: `system` (a `[[process]]` replica or the workload) or `process`.
    kind: &'static str,
    pids: Vec<i32>,
    first_ms: f64,
    last_ms: f64,
    spans: Vec<(f64, f64, &'static str)>,
}

/// Interns strings for the fault columns.
#[derive(Default)]
struct Strings {
    list: Vec<String>,
    index: HashMap<String, usize>,
}

impl Strings {
    fn id(&mut self, s: &str) -> usize {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        self.list.push(s.to_string());
        self.index.insert(s.to_string(), self.list.len() - 1);
        self.list.len() - 1
    }
}

/// The colour group a fault is drawn in.
fn category(fault: &chaos_engine::event::schema::Fault) -> &'static str {
    if fault.is_quirk() {
        return "quirk";
    }
    if fault.effect.as_deref().is_some_and(|e| {
        matches!(
            e,
            "latency" | "bandwidth" | "blackhole" | "limit_data" | "slow_close" | "reset_after"
        )
    }) {
        return "toxic";
    }
    match fault.fault.as_str() {
        "short" => "short",
        "delay" => "delay",
        "stall" => "stall",
        "reset" => "reset",
        "crash" | "terminate" | "pause" => "process",
        "drop" | "duplicate" | "reorder" => "datagram",
        "torn" => "storage",
        _ if fault.kind.as_deref() == Some("file") || fault.path.is_some() => "storage",
        _ => "errno",
    }
}

fn event_ts(e: &Event) -> Option<u64> {
    match e {
        Event::Start(s) => Some(s.header.ts_ns),
        Event::Fault(f) => Some(f.header.ts_ns),
        Event::Warning(w) => Some(w.header.ts_ns),
        Event::Exit(x) => Some(x.ts_ns),
        Event::Process(p) => Some(p.ts_ns),
        Event::System(s) => Some(s.ts_ns),
        Event::Control(c) => Some(c.ts_ns),
        Event::Disk(d) => Some(d.header.ts_ns),
        Event::Writeback(w) => Some(w.header.ts_ns),
        Event::Durability(d) => Some(d.ts_ns),
        // Written when the run ended, about the whole run: not a point on its timeline.
        Event::Unlogged(_)
        | Event::Rule(_)
        | Event::Storage(_)
        | Event::Point(_)
        | Event::Other => None,
    }
}

/// One dot on a process's lane: a fault, or another effect chaos had on the process (a `[[disk]]`
/// cutting or refusing a write, a writeback error reported, a change undone after its crash).
struct EffectRow {
    ts_ns: u64,
    pid: Option<i32>,
    cat: &'static str,
    rule: String,
    op: String,
    fault: String,
    key: String,
    /// The connection (`tcp-out#3`) or file it acted on: faults are grouped by it within a lane.
    conn: String,
    target: String,
    bytes: String,
}

fn bytes_of(requested: Option<u64>, returned: Option<i64>) -> String {
    match (requested, returned) {
        (Some(r), Some(n)) => format!("{n} of {r} bytes"),
        (Some(r), None) => format!("{r} bytes asked"),
        _ => String::new(),
    }
}

fn effect_of(e: &Event) -> Option<EffectRow> {
    Some(match e {
        Event::Fault(f) => EffectRow {
            ts_ns: f.header.ts_ns,
            pid: Some(f.header.pid),
            cat: category(f),
            rule: f.rule.clone(),
            op: f.op.clone(),
            fault: f.quirk.clone().unwrap_or_else(|| f.fault.clone()),
            key: f.key.clone().unwrap_or_default(),
            conn: f
                .conn
                .clone()
                .or_else(|| f.path.clone())
                .or_else(|| f.host.clone())
                .unwrap_or_default(),
            target: f
                .peer
                .as_deref()
                .or(f.path.as_deref())
                .or(f.host.as_deref())
                .unwrap_or("")
                .to_string(),
            bytes: bytes_of(f.requested, f.returned),
        },
        Event::Disk(d) => EffectRow {
            ts_ns: d.header.ts_ns,
            pid: Some(d.header.pid),
            cat: "disk",
            rule: format!("[[disk]] {}", d.disk.as_deref().unwrap_or("")),
            op: d.op.clone(),
            fault: d.errno.clone().unwrap_or_else(|| d.what.clone()),
            key: String::new(),
            conn: d.path.clone().unwrap_or_default(),
            target: d.path.clone().unwrap_or_default(),
            bytes: bytes_of(d.requested, d.returned),
        },
        Event::Writeback(w) => EffectRow {
            ts_ns: w.header.ts_ns,
            pid: Some(w.header.pid),
            cat: "storage",
            rule: "writeback".into(),
            op: w.op.clone(),
            fault: w.errno.clone().unwrap_or_else(|| w.what.clone()),
            key: String::new(),
            conn: w.path.clone().unwrap_or_default(),
            target: w.path.clone().unwrap_or_default(),
            bytes: String::new(),
        },
        Event::Durability(d) if d.what != "unseen" => EffectRow {
            ts_ns: d.ts_ns,
            pid: d.pid,
            cat: "storage",
            rule: "[durability]".into(),
            op: d.op.clone().unwrap_or_default(),
            fault: d.what.clone(),
            key: String::new(),
            conn: d.path.clone().unwrap_or_default(),
            target: d.path.clone().unwrap_or_default(),
            bytes: d
                .range
                .map(|[a, b]| format!("bytes {a}..{b}"))
                .or_else(|| d.error.clone())
                .unwrap_or_default(),
        },
        _ => return None,
    })
}

/// The state a system process is in after one of its events, if the event changes it.
fn state_after(p: &ProcessEvent) -> Option<&'static str> {
    Some(match p.what.as_str() {
        // The workload has no readiness probe: it is up once started.
        "start" if p.name == "workload" => "up",
        "start" | "restart" => "starting",
        "ready" | "resume" => "up",
        "pause" => "paused",
        "kill" | "exit" | "oom" | "wipe" => "down",
        _ => return None,
    })
}

/// The timeline of the runs in `logs` (several logs share one clock), with `sources` naming them.
pub fn build(logs: &[(String, Log)]) -> Value {
    let events: Vec<&Event> = logs.iter().flat_map(|(_, l)| l.events.iter()).collect();
    let t0 = events.iter().filter_map(|e| event_ts(e)).min().unwrap_or(0);
    let t_end = events
        .iter()
        .filter_map(|e| event_ts(e))
        .max()
        .unwrap_or(t0);
    let ms = |ts: u64| ts.saturating_sub(t0) as f64 / 1e6;
    let end_ms = ms(t_end);

    // Lanes: first the system's processes by name, in the order chaos-ctl started them; then
    // every other process by pid, in the order it appeared.
    let mut lanes: Vec<Lane> = Vec::new();
    let mut lane_of_name: BTreeMap<String, usize> = BTreeMap::new();
    let mut lane_of_pid: HashMap<i32, usize> = HashMap::new();
    let mut marks = Vec::new();
    for e in &events {
        let Event::Process(p) = e else { continue };
        let lane = *lane_of_name.entry(p.name.clone()).or_insert_with(|| {
            lanes.push(Lane {
                label: p.name.clone(),
                kind: "system",
                pids: Vec::new(),
                first_ms: ms(p.ts_ns),
                last_ms: ms(p.ts_ns),
                spans: Vec::new(),
            });
            lanes.len() - 1
        });
        if let Some(pid) = p.pid.filter(|&pid| pid > 0) {
            lane_of_pid.insert(pid, lane);
            if !lanes[lane].pids.contains(&pid) {
                lanes[lane].pids.push(pid);
            }
        }
        let t = ms(p.ts_ns);
        let l = &mut lanes[lane];
        if let Some(state) = state_after(p) {
            if let Some(last) = l.spans.last_mut()
                && last.1 < 0.0
            {
                last.1 = t;
            }
            l.spans.push((t, -1.0, state));
        }
        l.last_ms = t;
        if !matches!(p.what.as_str(), "ready" | "resume") {
            let mut detail = p.what.clone();
            for part in [
                p.kind.clone(),
                p.signal.clone(),
                p.status.map(|s| format!("status {s}")),
                p.key.clone(),
                p.detail.clone(),
            ]
            .into_iter()
            .flatten()
            {
                detail.push_str(&format!(" · {part}"));
            }
            marks.push(json!({"lane": lane, "t": t, "what": p.what, "detail": detail}));
        }
    }
    // Every process gets a lane when there are few; otherwise those that got faults, and the
    // program the run started (a shell script's hundreds of `basename`s would bury the rest).
    let starts: Vec<i32> = events
        .iter()
        .filter_map(|e| e.as_start())
        .map(|s| s.header.pid)
        .filter(|pid| !lane_of_pid.contains_key(pid))
        .collect();
    let faulted: std::collections::HashSet<i32> =
        events.iter().filter_map(|e| effect_of(e)?.pid).collect();
    let top_pid = logs
        .first()
        .and_then(|(_, l)| l.top())
        .map(|(s, _)| s.header.pid);
    let all_lanes = {
        let mut distinct = starts.clone();
        distinct.sort_unstable();
        distinct.dedup();
        distinct.len() <= MAX_QUIET_LANES
    };
    let mut hidden_exe: HashMap<i32, String> = HashMap::new();
    for e in &events {
        let Event::Start(s) = e else { continue };
        let pid = s.header.pid;
        if !all_lanes
            && !faulted.contains(&pid)
            && Some(pid) != top_pid
            && !lane_of_pid.contains_key(&pid)
        {
            // Counted once per process, by the last program it ran.
            let exe = s.exe.as_deref().unwrap_or("?");
            hidden_exe.insert(pid, exe.rsplit('/').next().unwrap_or(exe).to_string());
            continue;
        }
        let exe = s
            .exe
            .as_deref()
            .map(|x| x.rsplit('/').next().unwrap_or(x).to_string())
            .unwrap_or_else(|| "?".into());
        if let Some(&lane) = lane_of_pid.get(&pid) {
            if lanes[lane].kind == "process" {
                lanes[lane].label = format!("{exe} {pid}");
            }
            continue;
        }
        lanes.push(Lane {
            label: format!("{exe} {pid}"),
            kind: "process",
            pids: vec![pid],
            first_ms: ms(s.header.ts_ns),
            last_ms: end_ms,
            spans: Vec::new(),
        });
        lane_of_pid.insert(pid, lanes.len() - 1);
    }
    let mut hidden: BTreeMap<String, usize> = BTreeMap::new();
    for exe in hidden_exe.into_values() {
        *hidden.entry(exe).or_insert(0) += 1;
    }
    for e in &events {
        let Event::Exit(x) = e else { continue };
        let Some(&lane) = lane_of_pid.get(&x.pid) else {
            continue;
        };
        let how = match (&x.signal, x.status) {
            (Some(sig), _) => format!("killed by {sig}"),
            (None, Some(s)) => format!("exited {s}"),
            _ => "ended".into(),
        };
        let l = &mut lanes[lane];
        if l.kind == "process" {
            l.last_ms = ms(x.ts_ns);
        }
        marks.push(json!({"lane": lane, "t": ms(x.ts_ns), "what": "exit",
                          "detail": format!("pid {} {how}", x.pid)}));
    }
    for l in &mut lanes {
        if l.kind == "process" {
            l.spans.push((l.first_ms, l.last_ms, "up"));
        } else if let Some(last) = l.spans.last_mut()
            && last.1 < 0.0
        {
            last.1 = end_ms.max(last.0);
        }
    }

    let windows = control_windows(&events, &ms, end_ms, &lane_of_name);

    // Faults, column by column.
    let mut strings = Strings::default();
    let (mut t, mut lane, mut cat, mut rule, mut op, mut fault) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut key, mut conn, mut target, mut bytes) = (vec![], vec![], vec![], vec![]);
    let mut per_rule: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        let Some(x) = effect_of(e) else { continue };
        let Some(&l) = x.pid.and_then(|pid| lane_of_pid.get(&pid)) else {
            continue;
        };
        t.push(json!((ms(x.ts_ns) * 1000.0).round() / 1000.0));
        lane.push(l);
        cat.push(strings.id(x.cat));
        rule.push(strings.id(&x.rule));
        op.push(strings.id(&x.op));
        fault.push(strings.id(&x.fault));
        key.push(x.key);
        conn.push(strings.id(&x.conn));
        target.push(strings.id(&x.target));
        bytes.push(x.bytes);
        if let Event::Fault(f) = e {
            *per_rule.entry(f.rule.clone()).or_insert(0) += 1;
        }
    }

    let top = logs.first().and_then(|(_, l)| l.top());
    let (seed, policy) = top
        .map(|(s, _)| (s.seed, s.policy.clone()))
        .unwrap_or((None, None));
    let outcome = top
        .and_then(|(_, x)| x)
        .map(|x| match (&x.signal, x.status) {
            (Some(sig), _) => format!("killed by {sig}"),
            (None, Some(s)) => format!("exited {s}"),
            _ => "ended".into(),
        });
    let sources: Vec<&str> = logs.iter().map(|(p, _)| p.as_str()).collect();
    let command: Vec<String> = top
        .and_then(|(s, _)| s.argv.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|a| shell_quote(&a))
        .collect();
    let first = sources.first().copied().unwrap_or("LOG");
    json!({
        "meta": {
            "sources": sources,
            "seed": seed,
            "policy": policy,
            "outcome": outcome,
            "end_ms": end_ms,
            // Without a command, replay runs the logged one from where it ran.
            "replay": format!("chaos-ctl replay {}", shell_quote(first)),
            "command": command.join(" "),
            "freeze": format!("chaos-ctl freeze {} > repro.toml", shell_quote(first)),
        },
        "lanes": lanes.iter().map(|l| json!({
            "label": l.label, "kind": l.kind, "pids": l.pids,
            "spans": l.spans.iter().map(|s| json!([s.0, s.1, s.2])).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "marks": marks,
        "hidden": hidden,
        "windows": windows,
        "faults": {
            "t": t, "lane": lane, "cat": cat, "rule": rule, "op": op, "fault": fault,
            "key": key, "conn": conn, "target": target, "bytes": bytes,
        },
        "strings": strings.list,
        "rules": rules_table(&events, &per_rule),
    })
}

/// Each rule's account: its faults in the log, and, where chaos-ctl wrote its `rule` line, its
/// draws and the reasons the rest did not fire.
fn rules_table(events: &[&Event], logged: &BTreeMap<String, usize>) -> Vec<Value> {
    let mut rows: BTreeMap<String, Value> = logged
        .iter()
        .map(|(r, n)| (r.clone(), json!({"rule": r, "injected": n})))
        .collect();
    for e in events {
        let Event::Rule(r) = e else { continue };
        let row = rows
            .entry(r.rule.clone())
            .or_insert_with(|| json!({"rule": r.rule, "injected": r.injected}));
        row["drawn"] = json!(r.drawn);
        row["refused"] = json!(r.refused);
    }
    rows.into_values().collect()
}

/// Partitions, rules switched off and full disks, as windows between the change that began them
/// and the one that ended them (or the run's end).
fn control_windows(
    events: &[&Event],
    ms: &dyn Fn(u64) -> f64,
    end_ms: f64,
    lane_of_name: &BTreeMap<String, usize>,
) -> Vec<Value> {
    let mut windows = Vec::new();
    // What is in force: its id (`partition`, `rule:NAME`, `disk:NAME`) and its window so far.
    let mut open: HashMap<String, Value> = HashMap::new();
    let close = |id: &str, t: f64, windows: &mut Vec<Value>, open: &mut HashMap<String, Value>| {
        if let Some(mut w) = open.remove(id) {
            w["to"] = json!(t);
            windows.push(w);
        }
    };
    for e in events {
        let Event::Control(c) = e else { continue };
        if c.by.is_none() {
            continue; // a shim's `seen` line
        }
        let t = ms(c.ts_ns);
        match c.what.as_str() {
            "partition" | "heal" => {
                close("partition", t, &mut windows, &mut open);
                if c.what == "partition" && !c.cut.is_empty() {
                    let mut cut_lanes: Vec<usize> = c
                        .cut
                        .iter()
                        .flat_map(|[a, b]| [a, b])
                        .filter_map(|n| lane_of_name.get(n).copied())
                        .collect();
                    cut_lanes.sort_unstable();
                    cut_lanes.dedup();
                    let pairs: Vec<String> =
                        c.cut.iter().map(|[a, b]| format!("{a}→{b}")).collect();
                    let label = format!("partition {}", pairs.join(", "));
                    open.insert(
                        "partition".into(),
                        json!({"what": "partition", "from": t, "lanes": cut_lanes,
                               "label": label, "key": c.key}),
                    );
                }
            }
            "disable" | "enable" => {
                let rule = c.rule.clone().unwrap_or_default();
                let id = format!("rule:{rule}");
                close(&id, t, &mut windows, &mut open);
                if c.what == "disable" {
                    open.insert(
                        id,
                        json!({"what": "rule-off", "from": t, "lanes": [],
                               "label": format!("rule {rule} off")}),
                    );
                }
            }
            "disk-fill" | "disk-free" => {
                let disk = c.disk.clone().unwrap_or_default();
                let id = format!("disk:{disk}");
                close(&id, t, &mut windows, &mut open);
                if c.what == "disk-fill" {
                    open.insert(
                        id,
                        json!({"what": "disk-full", "from": t, "lanes": [],
                               "label": format!("disk {disk} full")}),
                    );
                }
            }
            _ => {}
        }
    }
    let ids: Vec<String> = open.keys().cloned().collect();
    for id in ids {
        close(&id, end_ms, &mut windows, &mut open);
    }
    windows.sort_by(|a, b| a["from"].as_f64().partial_cmp(&b["from"].as_f64()).unwrap());
    windows
}

/// `s` as one word for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(text: &str) -> Vec<(String, Log)> {
        vec![("run.jsonl".to_string(), Log::parse(text))]
    }

    const START: &str = r#"{"ev":"start","ts_ns":1000000000,"pid":10,"ppid":1,"proc":"00000000000000aa","via":"exec","exe":"/usr/bin/python3","argv":["python3","a b.py"],"seed":7,"policy":"p.toml"}"#;

    #[test]
    fn a_single_program_is_one_lane_with_its_faults() {
        let text = format!(
            "{START}\n{}\n{}\n",
            r#"{"ev":"fault","ts_ns":1500000000,"pid":10,"tid":10,"proc":"00000000000000aa","op":"recv","fd":3,"peer":"127.0.0.1:80","rule":"r","fault":"short","requested":100,"returned":40,"key":"k1"}"#,
            r#"{"ev":"exit","ts_ns":2000000000,"pid":10,"reaper":1,"status":0}"#
        );
        let v = build(&log(&text));
        assert_eq!(v["lanes"].as_array().unwrap().len(), 1);
        assert_eq!(v["lanes"][0]["label"], "python3 10");
        assert_eq!(v["lanes"][0]["spans"][0], json!([0.0, 1000.0, "up"]));
        assert_eq!(v["faults"]["t"], json!([500.0]));
        assert_eq!(v["faults"]["key"], json!(["k1"]));
        assert_eq!(v["faults"]["bytes"], json!(["40 of 100 bytes"]));
        assert_eq!(v["meta"]["outcome"], "exited 0");
        assert_eq!(v["meta"]["replay"], "chaos-ctl replay run.jsonl");
        assert_eq!(v["meta"]["command"], "python3 'a b.py'");
    }

    #[test]
    fn system_processes_are_lanes_by_name_with_their_states_and_partition_windows() {
        let lines = [
            r#"{"ev":"process","ts_ns":1000000000,"t_ns":0,"name":"kv#0","what":"start","pid":20,"life":0}"#,
            r#"{"ev":"process","ts_ns":1100000000,"t_ns":0,"name":"kv#0","what":"ready","pid":20}"#,
            r#"{"ev":"control","ts_ns":1200000000,"generation":2,"by":"schedule","what":"partition","cut":[["kv#0","workload"]],"key":"partition#0"}"#,
            r#"{"ev":"process","ts_ns":1300000000,"t_ns":0,"name":"kv#0","what":"kill","kind":"crash","pid":20,"signal":"SIGKILL"}"#,
            r#"{"ev":"control","ts_ns":1400000000,"generation":3,"by":"schedule","what":"heal"}"#,
            r#"{"ev":"process","ts_ns":1500000000,"t_ns":0,"name":"kv#0","what":"restart","pid":21,"life":1}"#,
        ];
        let text = format!("{START}\n{}\n", lines.join("\n"));
        let v = build(&log(&text));
        let lanes = v["lanes"].as_array().unwrap();
        assert_eq!(lanes[0]["label"], "kv#0");
        assert_eq!(lanes[0]["pids"], json!([20, 21]));
        let states: Vec<&str> = lanes[0]["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s[2].as_str().unwrap())
            .collect();
        assert_eq!(states, ["starting", "up", "down", "starting"]);
        let w = &v["windows"][0];
        assert_eq!(w["what"], "partition");
        assert_eq!(
            (w["from"].as_f64(), w["to"].as_f64()),
            (Some(200.0), Some(400.0))
        );
        assert_eq!(w["lanes"], json!([0]));
    }
}
