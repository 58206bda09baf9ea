//! Processes of a run that could not write the event log (a worker exec'd as `nobody`, a process
//! that chrooted before it ever opened the log): they withheld every fault rather than inject one
//! without its line, and said so in the control page. After the run chaos-ctl turns that table
//! into `unlogged` lines in the log, so that the summary and `report` name them and say why.

use crate::log::Log;
use chaos_engine::event::schema::{Event, UnloggedLine};
use chaos_engine::page::{Page, Unreadable};
use std::io::Write;
use std::path::Path;

/// Appends an `unlogged` line for each process the page names, and one for the withheld faults
/// it had no room to attribute. Call it once every process of the run has ended, before the page
/// is removed. A log that cannot be appended to loses only these lines.
pub fn append(page: &Page, log_path: &Path) {
    let (found, overflow) = page.unlogged();
    if found.is_empty() && overflow == 0 {
        return;
    }
    let log = Log::read(log_path).ok();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut lines = String::new();
    for u in &found {
        let pid = u.pid as i32;
        let named = log.as_ref().and_then(|l| command_name(l, pid));
        let line = UnloggedLine {
            ts_ns: now,
            pid: Some(pid),
            // Its thread name is what it was when it said so; its last `start` line may be
            // of the program it exec'd from (it could write none of its own).
            name: (!u.name.is_empty()).then(|| u.name.clone()).or(named),
            what: Some(
                match u.what {
                    Unreadable::Log => "log",
                    Unreadable::Policy => "policy",
                }
                .to_string(),
            ),
            errno: Some(chaos_engine::errno::errno_name(u.errno).to_string()),
            withheld: u.withheld,
        };
        push(&mut lines, line);
    }
    if overflow > 0 {
        let line = UnloggedLine {
            ts_ns: now,
            pid: None,
            name: None,
            what: None,
            errno: None,
            withheld: overflow,
        };
        push(&mut lines, line);
    }
    let _ = std::fs::OpenOptions::new()
        .append(true)
        .open(log_path)
        .and_then(|mut f| f.write_all(lines.as_bytes()));
}

fn push(lines: &mut String, line: UnloggedLine) {
    if let Ok(text) = serde_json::to_string(&Event::Unlogged(line)) {
        lines.push_str(&text);
        lines.push('\n');
    }
}

/// The command a process ran, from its last `start` line.
fn command_name(log: &Log, pid: i32) -> Option<String> {
    let start = log.starts().filter(|s| s.header.pid == pid).last()?;
    let first = start
        .argv
        .as_ref()
        .and_then(|a| a.first())
        .or(start.exe.as_ref())?;
    Some(first.rsplit('/').next().unwrap_or(first).to_string())
}

/// The summary's lines: `chaos: pid 4242 (nginx) could not write the log (EACCES): 90 fault(s)
/// withheld`.
pub fn describe(log: &Log) -> String {
    let mut out = String::new();
    for u in log.unlogged() {
        let faults = match u.withheld {
            1 => "1 fault withheld".to_string(),
            n => format!("{n} faults withheld"),
        };
        match u.pid {
            Some(pid) => {
                let why = u.errno.as_deref().unwrap_or("unknown error");
                out.push_str(&if u.what.as_deref() == Some("policy") {
                    chaos_engine::page::unreadable_policy_line(
                        pid.into(),
                        u.name.as_deref(),
                        why,
                        "ran",
                    )
                } else {
                    let name = u
                        .name
                        .as_deref()
                        .map_or(String::new(), |n| format!(" ({n})"));
                    format!(
                        "chaos: pid {pid}{name} could not write the log ({why}): {faults}, not \
                         injected\n"
                    )
                });
            }
            None => out.push_str(&format!(
                "chaos: more processes could not write the log than the run can name: {faults}\n"
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_each_process_with_its_reason() {
        let log = Log::parse(
            "{\"ev\":\"unlogged\",\"ts_ns\":1,\"pid\":4242,\"name\":\"nginx\",\"errno\":\"EACCES\",\"withheld\":90}\n\
             {\"ev\":\"unlogged\",\"ts_ns\":1,\"pid\":7,\"what\":\"policy\",\"errno\":\"EACCES\",\"withheld\":0}\n\
             {\"ev\":\"unlogged\",\"ts_ns\":1,\"withheld\":1}\n",
        );
        assert_eq!(log.bad_lines, 0);
        let text = describe(&log);
        assert!(
            text.contains("pid 4242 (nginx) could not write the log (EACCES): 90 faults withheld"),
            "{text}"
        );
        assert!(
            text.contains("pid 7 could not read the run's policy (EACCES"),
            "{text}"
        );
        assert!(text.contains("can name: 1 fault withheld"), "{text}");
    }
}
