//! Frozen policies: a log's faults as `[[inject]]` entries, each an exact fault at its decision key
//! (process, connection, site), with no probabilities. `freeze` prints one; `replay` and `minimize`
//! run them.

use crate::failure::Failure;
use crate::log::Log;
use chaos_engine::event::schema::Fault;
use chaos_engine::key::{Key, Place, Site};
use chaos_engine::op::OpClass;
use chaos_engine::parse::inject::{parse_conn, parse_process};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

/// One fault of a log, as a frozen policy replays it.
#[derive(Clone, Debug)]
pub struct LoggedFault {
    /// The logged decision key. Its place (the key without the rule) is what a replay must hit
    /// again.
    pub key: Key,
    /// The connection as `tcp-out#3` or `tcp-connects` when that names the key's connection,
    /// otherwise its 16 hex digits.
    pub conn: String,
    pub op: String,
    /// The fault as a TOML value.
    pub fault: String,
    /// One line for people: what happened, where, under which rule.
    pub describe: String,
}

impl LoggedFault {
    pub fn place(&self) -> Place {
        self.key.place()
    }
}

/// Faults a frozen policy can carry: every fault with a key, except platform quirks (those come
/// back by themselves under the same quirk settings).
pub fn replayable(f: &Fault) -> bool {
    f.key.is_some() && !f.is_quirk()
}

/// The distinct places of a log's replayable faults. A fault whose key does not parse has none,
/// so it counts as not reproduced.
pub fn places(log: &Log) -> HashSet<Place> {
    log.faults()
        .filter(|f| replayable(f))
        .filter_map(|f| f.parsed_key()?.ok())
        .map(|k| k.place())
        .collect()
}

/// The exact fault a logged event describes, as a TOML value.
fn fault_value(f: &Fault) -> String {
    match f.fault.as_str() {
        "reset" => "\"reset\"".to_string(),
        "delay" => format!("{{ delay = \"{}ns\" }}", f.delay_ns.unwrap_or(0)),
        // What the shortened call returned is at most the length it was cut to; replaying that
        // length gives the same transfer.
        "short" => format!("{{ short = \"{}\" }}", f.returned.unwrap_or(1).max(1)),
        "pause" => format!("{{ pause = \"{}ns\" }}", f.delay_ns.unwrap_or(0)),
        "stall" => match f.stall_ns {
            Some(ns) if ns > 0 => format!("{{ stall = \"{ns}ns\" }}"),
            _ => "\"EAGAIN\"".to_string(),
        },
        "reorder" => format!("{{ reorder = {} }}", f.held_for.unwrap_or(1).max(1)),
        // A toxic's data limit ended the connection at this call: the same limit, here.
        "close" => format!(
            "{{ limit_data = \"{}\", then = \"{}\" }}",
            f.limit.unwrap_or(0).max(1),
            if f.effect.as_deref() == Some("limit-data-reset") {
                "reset"
            } else {
                "close"
            }
        ),
        errno => quoted(errno),
    }
}

/// The connection as its readable name when that name maps to the key's connection hash.
fn conn_text(f: &Fault, key: &Key) -> String {
    let named = match key.site {
        Site::Call {
            class: OpClass::Connect,
            ..
        } => f.kind.as_ref().map(|k| format!("{k}-connects")),
        _ => f.conn.clone(),
    };
    match named {
        Some(name) if parse_conn(&name).ok() == Some(key.conn) => name,
        _ => format!("{:016x}", key.conn),
    }
}

/// A log's replayable faults in the order they happened, one per place. A fault whose key does
/// not parse fails the whole: a frozen policy without it would not be the run's.
pub fn logged_faults(log: &Log, log_path: &Path) -> Result<Vec<LoggedFault>, Failure> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    // A grid fault's hold (`effect = "held"`: the read before it, held to end at its offset) is
    // at the fault's own place: the fault's line says what to inject there (a stall's length, a
    // delay's), the hold's only when the run ended before the fault came.
    let mut lines: Vec<_> = log.faults().filter(|f| replayable(f)).collect();
    lines.sort_by_key(|f| f.effect.as_deref() == Some("held"));
    for f in lines {
        let Some(key) = f.parsed_key() else { continue };
        let key = key.map_err(|e| {
            Failure::own(format!(
                "{}: a fault's decision key does not parse: {e}",
                log_path.display()
            ))
        })?;
        if !seen.insert(key.place()) {
            continue;
        }
        let conn = conn_text(f, &key);
        let peer = f
            .peer
            .as_deref()
            .map(|p| format!(" to {p}"))
            .unwrap_or_default();
        let fault = fault_value(f);
        // A lookup has no fd: it is named by the host it resolved; an open, rename, unlink or
        // mkdir by the path it named.
        let on = match (&f.host, &f.path) {
            (Some(h), _) => format!("of {} ({conn})", comment(h)),
            (None, Some(p)) if f.fd < 0 => format!("of {} ({conn})", comment(p)),
            _ => format!("on {} ({conn}{peer})", f.conn.as_deref().unwrap_or("?")),
        };
        out.push(LoggedFault {
            describe: format!(
                "{} {on} at {}: {fault}, from rule \"{}\"",
                f.op, key.site, f.rule
            ),
            key,
            conn,
            op: f.op.clone(),
            fault,
        });
    }
    Ok(out)
}

/// `s` as a TOML string value, escaped by the `toml` crate.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// `s` made safe for a `#` comment: line breaks and other control characters (which would end
/// the comment, or which TOML does not allow in one) are written as escapes (`\n`, `\u{7}`).
pub fn comment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The frozen policy text for `faults` (a selection of the log's), with comments saying where they
/// came from.
/// `nemesis`: the process events to repeat (a system run's; empty otherwise).
pub fn render(
    log: &Log,
    log_path: &Path,
    faults: &[&LoggedFault],
    total: usize,
    nemesis: &[&LoggedNemesis],
) -> String {
    let first = log.starts().next();
    let mut commands: HashMap<u64, String> = HashMap::new();
    for s in log.starts() {
        if let (Ok(p), Some(argv)) = (parse_process(&s.header.proc), s.argv.as_ref()) {
            commands.entry(p).or_insert_with(|| argv.join(" "));
        }
    }
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Frozen by `chaos-ctl freeze` from {}.",
        comment(&log_path.display().to_string())
    );
    if let Some(s) = first {
        let _ = writeln!(
            t,
            "# The original run: seed {}, policy {} (digest {}).",
            s.seed.unwrap_or(0),
            comment(s.policy.as_deref().unwrap_or("?")),
            comment(s.policy_digest.as_deref().unwrap_or("?"))
        );
    }
    let _ = writeln!(
        t,
        "# {} of the {total} logged fault(s). Each [[inject]] fires whenever the program reaches its\n\
         # decision key (process, connection, site on it): no probabilities, the same every run.\n\
         # Run it: chaos-ctl run --policy THIS_FILE -- CMD\n\
         #     or: CHAOS_POLICY=THIS_FILE LD_PRELOAD=/path/to/libchaos_shim.so CMD\n",
        faults.len()
    );
    if let Some(s) = first {
        // Race-type quirks draw from the seed; the rest of the policy no longer does.
        let _ = writeln!(t, "seed = {}", s.seed.unwrap_or(1));
        let quirks = s.quirks.clone().unwrap_or_default();
        if !quirks.is_empty() {
            let names: Vec<String> = quirks.iter().map(|q| quoted(q)).collect();
            let _ = writeln!(t, "quirks = [{}]", names.join(", "));
            if let Some(p) = s
                .quirk_probability
                .as_deref()
                .and_then(|p| p.parse::<f64>().ok())
                && p < 1.0
            {
                let _ = writeln!(t, "quirk_probability = {p:?}");
            }
        }
    }
    t.push_str(&system_sections(log, nemesis));
    if let Some(tables) = log.storage() {
        t.push_str("\n# The run's disks and what a crash keeps, as it had them.\n");
        t.push_str(tables);
    }
    for (i, f) in faults.iter().enumerate() {
        let process = format!("{:016x}", f.key.process);
        let cmd = commands.get(&f.key.process).map(String::as_str);
        let _ = write!(
            t,
            "\n# {}. {}\n#    in process {process}{}\n[[inject]]\nprocess = {}\nconn = {}\nat = {}\n",
            i + 1,
            comment(&f.describe),
            cmd.map(|c| format!(" ({})", comment(c)))
                .unwrap_or_default(),
            quoted(&process),
            quoted(&f.conn),
            quoted(&f.key.site.to_string()),
        );
        if !f.op.is_empty() {
            let _ = writeln!(t, "on = {}", quoted(&f.op));
        }
        let _ = writeln!(t, "fault = {}", f.fault);
    }
    t
}

/// One process event a system run carried out (a kill or pause from its schedule), as the exact
/// `[[nemesis]]` entry that repeats it.
pub struct LoggedNemesis {
    pub toml: String,
    /// One line for people: `crash of kv#1 at 2.50 s (attrition#3)`.
    pub describe: String,
}

/// The events a system run carried out, in order (skipped ones are left out).
pub fn logged_nemesis(log: &Log) -> Vec<LoggedNemesis> {
    log.process_events()
        .filter(|e| matches!(e.what.as_str(), "kill" | "pause") && e.at_ns.is_some())
        .map(|e| {
            let mut entry = toml::Table::new();
            let dur = |ns: u64| toml::Value::String(format!("{ns}ns"));
            let at = e.at_ns.unwrap_or(0);
            entry.insert("at".into(), dur(at));
            entry.insert("process".into(), e.name.clone().into());
            entry.insert("kind".into(), e.kind.clone().unwrap_or_default().into());
            for (k, v) in [
                ("grace", e.grace_ns),
                ("recovery", e.recovery_ns),
                ("paused", e.paused_ns),
            ] {
                if let Some(ns) = v {
                    entry.insert(k.into(), dur(ns));
                }
            }
            let mut doc = toml::Table::new();
            doc.insert("nemesis".into(), toml::Value::Array(vec![entry.into()]));
            LoggedNemesis {
                toml: toml::to_string(&doc).unwrap_or_default(),
                describe: format!(
                    "{} of {} at {:.2} s ({})",
                    e.kind.as_deref().unwrap_or("?"),
                    comment(&e.name),
                    at as f64 / 1e9,
                    comment(e.key.as_deref().unwrap_or(""))
                ),
            }
        })
        .collect()
}

/// A system run's `[[process]]` tables (without `rules`: the rules became injections) and the
/// chosen process events as exact `[[nemesis]]` entries, so a replay starts the same processes
/// and repeats that schedule.
fn system_sections(log: &Log, nemesis: &[&LoggedNemesis]) -> String {
    let Some(processes) = log.system() else {
        return String::new();
    };
    let mut t = String::from(
        "\n# The system under test, as the original run started it; its attrition schedule is\n\
         # replaced by the events that were carried out, at the same times since the workload began.\n",
    );
    match processes.parse::<toml::Table>() {
        Ok(mut table) => {
            if let Some(toml::Value::Array(list)) = table.get_mut("process") {
                for p in list.iter_mut() {
                    if let toml::Value::Table(p) = p {
                        p.remove("rules");
                    }
                }
            }
            t.push_str(&toml::to_string(&table).unwrap_or_default());
        }
        Err(_) => t.push_str(processes),
    }
    for n in nemesis {
        let _ = write!(t, "\n# {}\n{}", comment(&n.describe), n.toml);
    }
    t.push_str(&logged_partitions(log));
    t
}

/// Every cut the run had (scheduled, or made with `chaos-ctl control` or over HTTP), as an exact
/// `[[partition]]` of directed pairs over the time it lasted, so a replay cuts the same traffic at
/// the same times since the workload began.
fn logged_partitions(log: &Log) -> String {
    let changes: Vec<_> = log
        .control_changes()
        .filter(|c| c.what == "partition" || c.what == "heal")
        .collect();
    let mut t = String::new();
    for (i, c) in changes.iter().enumerate() {
        if c.what != "partition" || c.cut.is_empty() {
            continue;
        }
        let start = c.t_ns.unwrap_or(0);
        // Until the next change, or (cut to the end) a day, longer than any run.
        let end = changes
            .get(i + 1)
            .and_then(|n| n.t_ns)
            .unwrap_or(86_400_000_000_000)
            .max(start + 1);
        let mut entry = toml::Table::new();
        entry.insert(
            "cut".into(),
            toml::Value::Array(
                c.cut
                    .iter()
                    .map(|[a, b]| toml::Value::Array(vec![a.clone().into(), b.clone().into()]))
                    .collect(),
            ),
        );
        entry.insert(
            "window".into(),
            toml::Value::Array(vec![format!("{start}ns").into(), format!("{end}ns").into()]),
        );
        let mut doc = toml::Table::new();
        doc.insert("partition".into(), toml::Value::Array(vec![entry.into()]));
        let by = c.by.as_deref().unwrap_or("?");
        let _ = write!(
            t,
            "\n# a partition made by {by}{} at {:.2} s\n{}",
            c.key
                .as_deref()
                .map(|k| format!(" ({k})"))
                .unwrap_or_default(),
            start as f64 / 1e9,
            toml::to_string(&doc).unwrap_or_default()
        );
    }
    t
}

/// Checks a rendered policy with the same parser the shim uses.
pub fn check(text: &str, origin: &str) -> Result<(), Failure> {
    chaos_engine::parse::parse_policy(text, origin)
        .map(drop)
        .map_err(|e| {
            Failure::own(format!(
                "the frozen policy does not parse ({e}); please report this"
            ))
        })
}

/// `chaos-ctl freeze LOG`: the frozen policy on stdout.
pub fn freeze(log_path: &Path) -> Result<u8, Failure> {
    let log = Log::read_or_fail(log_path)?;
    log.require_start(log_path)?;
    let faults = logged_faults(&log, log_path)?;
    let all: Vec<&LoggedFault> = faults.iter().collect();
    let nemesis = logged_nemesis(&log);
    let text = render(
        &log,
        log_path,
        &all,
        faults.len(),
        &nemesis.iter().collect::<Vec<_>>(),
    );
    check(&text, "frozen policy")?;
    crate::output::out!("{text}")?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chaos_engine::event::schema::Event;

    fn log(lines: &[&str]) -> Log {
        Log {
            events: lines
                .iter()
                .map(|l| serde_json::from_str::<Event>(l).unwrap())
                .collect(),
            bad_lines: 0,
        }
    }

    const START: &str = r#"{"ev":"start","ts_ns":1,"pid":7,"ppid":1,"proc":"c2459c08352fe84d","via":"exec","exe":"/usr/bin/python3","argv":["python3","d.py"],"seed":3,"policy":"/tmp/d.toml","policy_digest":"0123456789abcdef","rules":2,"injections":0,"quirks":[],"quirk_probability":"1","missing_symbols":0,"shim_version":"0.1.0"}"#;
    const CONNECT: &str = r#"{"ev":"fault","ts_ns":2,"pid":7,"tid":7,"proc":"c2459c08352fe84d","op":"connect","fd":4,"kind":"tcp","conn":"tcp-fd#0","peer":"127.0.0.1:52975","rule":"slow-connect","rule_index":0,"fault":"delay","requested":0,"returned":0,"delay_ns":1000000,"key":"c2459c08352fe84d-eb20210d5326475e/r0/connect#0"}"#;
    const RESET: &str = r#"{"ev":"fault","ts_ns":3,"pid":7,"tid":7,"proc":"c2459c08352fe84d","op":"recv","fd":5,"kind":"tcp","conn":"tcp-in#0","rule":"reset","rule_index":1,"fault":"reset","errno":"ECONNRESET","requested":10,"returned":-1,"delay_ns":0,"effect":"rst-sent","key":"c2459c08352fe84d-23da8bd2d98171d8/r1/rx@0#0"}"#;
    /// The same place as RESET, drawn by another rule.
    const RESET_AGAIN: &str = r#"{"ev":"fault","ts_ns":4,"pid":7,"tid":7,"proc":"c2459c08352fe84d","op":"recv","fd":5,"kind":"tcp","conn":"tcp-in#0","rule":"other","rule_index":2,"fault":"reset","requested":10,"returned":-1,"delay_ns":0,"key":"c2459c08352fe84d-23da8bd2d98171d8/r2/rx@0#0"}"#;
    const QUIRK: &str = r#"{"ev":"fault","ts_ns":5,"pid":7,"tid":7,"proc":"c2459c08352fe84d","op":"shutdown","fd":3,"kind":"unix","rule":"quirk","fault":"quirk","quirk":"shutdown-enotconn","errno":"ENOTCONN"}"#;

    #[test]
    fn a_logs_faults_freeze_by_place_with_readable_connections() {
        let log = log(&[START, CONNECT, RESET, RESET_AGAIN, QUIRK]);
        let faults = logged_faults(&log, Path::new("d.jsonl")).unwrap();
        assert_eq!(faults.len(), 2, "{faults:?}");
        // connect#N keys count the connects of a kind: named KIND-connects.
        assert_eq!(faults[0].conn, "tcp-connects");
        assert_eq!(faults[0].fault, "{ delay = \"1000000ns\" }");
        assert_eq!(faults[1].conn, "tcp-in#0");
        assert_eq!(faults[1].fault, "\"reset\"");
        assert_eq!(
            faults[1].describe,
            "recv on tcp-in#0 (tcp-in#0) at rx@0#0: \"reset\", from rule \"reset\""
        );
        assert_eq!(places(&log).len(), 2);

        let all: Vec<&LoggedFault> = faults.iter().collect();
        let text = render(&log, Path::new("d.jsonl"), &all, faults.len(), &[]);
        check(&text, "test").unwrap();
        assert!(
            text.contains(
                "process = \"c2459c08352fe84d\"\nconn = \"tcp-in#0\"\nat = \"rx@0#0\"\non = \"recv\"\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("in process c2459c08352fe84d (python3 d.py)"),
            "{text}"
        );
    }

    /// A grid fault's hold, then the fault itself at the same offset.
    const HELD: &str = r#"{"ev":"fault","ts_ns":6,"pid":7,"tid":7,"proc":"c2459c08352fe84d","op":"recv","fd":5,"kind":"tcp","conn":"tcp-in#0","rule":"stall","rule_index":0,"fault":"stall","requested":65536,"returned":1000,"delay_ns":0,"effect":"held","key":"c2459c08352fe84d-23da8bd2d98171d8/r0/rx@16384#0"}"#;
    const STALLED: &str = r#"{"ev":"fault","ts_ns":7,"pid":7,"tid":7,"proc":"c2459c08352fe84d","op":"recv","fd":5,"kind":"tcp","conn":"tcp-in#0","rule":"stall","rule_index":0,"fault":"stall","errno":"EAGAIN","requested":65536,"returned":-1,"delay_ns":0,"stall_ns":5000000,"key":"c2459c08352fe84d-23da8bd2d98171d8/r0/rx@16384#0"}"#;

    #[test]
    fn a_grid_faults_hold_freezes_as_the_fault_that_followed_it() {
        let faults = logged_faults(&log(&[START, HELD, STALLED]), Path::new("d.jsonl")).unwrap();
        assert_eq!(faults.len(), 1, "{faults:?}");
        assert_eq!(faults[0].fault, "{ stall = \"5000000ns\" }");
        // A run that ended between the hold and its fault still freezes the fault there.
        let faults = logged_faults(&log(&[START, HELD]), Path::new("d.jsonl")).unwrap();
        assert_eq!(faults.len(), 1, "{faults:?}");
        assert_eq!(faults[0].key.site.to_string(), "rx@16384#0");
    }

    #[test]
    fn a_fault_whose_key_does_not_parse_is_not_frozen_silently() {
        let bad = RESET.replace("/r1/rx@0#0", "/r1/rx@zero#0");
        let log = log(&[START, &bad]);
        let e = logged_faults(&log, Path::new("d.jsonl")).unwrap_err();
        let msg = e.message;
        assert!(
            msg.contains("d.jsonl") && msg.contains("the stream offset"),
            "{msg}"
        );
        assert!(places(&log).is_empty());
    }
}
