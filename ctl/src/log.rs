//! The run's event log as chaos-ctl handles it: read back into the engine's schema
//! (`chaos_engine::event::schema`), and the `exit` lines it appends for the processes it reaps.
//! (The seccomp backend's writer of fault lines is `seccomp/events.rs`.)

use chaos_engine::event::schema::{Event, Exit, Fault, ProcessEvent, Start, Warning};
use std::path::Path;

pub struct Log {
    pub events: Vec<Event>,
    /// Lines that did not parse (should be none: lines are written whole).
    pub bad_lines: usize,
}

impl Log {
    pub fn read(path: &Path) -> std::io::Result<Log> {
        Ok(Log::parse(&std::fs::read_to_string(path)?))
    }

    /// A log's text, line by line.
    pub fn parse(text: &str) -> Log {
        let mut events = Vec::new();
        let mut bad_lines = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Event>(line) {
                Ok(e) => events.push(e),
                Err(_) => bad_lines += 1,
            }
        }
        Log { events, bad_lines }
    }

    /// `read`, failing with a message that names the file.
    pub fn read_or_fail(path: &Path) -> Result<Log, crate::failure::Failure> {
        Log::read(path).map_err(|e| {
            crate::failure::Failure::own(format!(
                "cannot read the event log {}: {e}",
                path.display()
            ))
        })
    }

    /// A chaos event log the user named, `-` for stdin: fails, naming the file, when it cannot be
    /// read or is not a chaos log (no `start` event, as in a text file or an empty one).
    pub fn read_chaos_log(path: &Path) -> Result<Log, crate::failure::Failure> {
        let log = if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text).map_err(
                |e| {
                    crate::failure::Failure::own(format!(
                        "cannot read the event log from stdin: {e}"
                    ))
                },
            )?;
            Log::parse(&text)
        } else {
            Log::read_or_fail(path)?
        };
        log.require_start(path)?;
        Ok(log)
    }

    /// Fails unless the log has a `start` event (every process under the shim writes one).
    pub fn require_start(&self, path: &Path) -> Result<(), crate::failure::Failure> {
        if self.starts().next().is_some() {
            return Ok(());
        }
        let name = if path.as_os_str() == "-" {
            "stdin".to_string()
        } else {
            path.display().to_string()
        };
        Err(crate::failure::Failure::own(format!(
            "{name} has no `start` event: not a chaos event log{}",
            if self.events.is_empty() && self.bad_lines == 0 {
                " (it is empty)"
            } else {
                ""
            }
        )))
    }

    pub fn starts(&self) -> impl Iterator<Item = &Start> {
        self.events.iter().filter_map(Event::as_start)
    }

    /// Injected faults and the platform quirks that fired.
    pub fn faults(&self) -> impl Iterator<Item = &Fault> {
        self.events.iter().filter_map(Event::as_fault)
    }

    /// The faults injected: every fault line but a grid fault's hold (`"effect":"held"`: the read
    /// before a fault held to end at its offset), which is part of that fault, not another one.
    pub fn injected(&self) -> impl Iterator<Item = &Fault> {
        self.faults().filter(|f| !is_hold(f))
    }

    /// The reads held to end at a grid fault's offset (see `injected`).
    pub fn holds(&self) -> impl Iterator<Item = &Fault> {
        self.faults().filter(|f| is_hold(f))
    }

    /// Bugs the shim saw the program make (e.g. a close retried after a failed close).
    pub fn warnings(&self) -> impl Iterator<Item = &Warning> {
        self.events.iter().filter_map(Event::as_warning)
    }

    /// Processes that could not write the log and withheld their faults.
    pub fn unlogged(&self) -> impl Iterator<Item = &chaos_engine::event::schema::UnloggedLine> {
        self.events.iter().filter_map(Event::as_unlogged)
    }

    /// Each rule's account of its draws (chaos-ctl's `rule` lines at the end of a run).
    pub fn rule_lines(&self) -> impl Iterator<Item = &chaos_engine::event::schema::RuleLine> {
        self.events.iter().filter_map(Event::as_rule)
    }

    /// How processes ended, as their reapers logged it.
    pub fn exits(&self) -> impl Iterator<Item = &Exit> {
        self.events.iter().filter_map(Event::as_exit)
    }

    /// The `[[process]]` tables of a system run, as TOML.
    pub fn system(&self) -> Option<&str> {
        self.events
            .iter()
            .find_map(Event::as_system)
            .map(|s| s.processes.as_str())
    }

    /// The run's `[[disk]]` and `[durability]` tables, as TOML.
    pub fn storage(&self) -> Option<&str> {
        self.events
            .iter()
            .find_map(Event::as_storage)
            .map(|s| s.tables.as_str())
    }

    /// The changes chaos-ctl made through the control page (not the shims' `seen` lines).
    pub fn control_changes(
        &self,
    ) -> impl Iterator<Item = &chaos_engine::event::schema::ControlLine> {
        self.events
            .iter()
            .filter_map(Event::as_control)
            .filter(|c| c.by.is_some())
    }

    /// What chaos-ctl did to and saw of a system's processes.
    pub fn process_events(&self) -> impl Iterator<Item = &ProcessEvent> {
        self.events.iter().filter_map(Event::as_process)
    }

    /// The program the run started — the workload of a system, else the first `start` line —
    /// and how it ended if that was logged.
    pub fn top(&self) -> Option<(&Start, Option<&Exit>)> {
        let start = self
            .starts()
            .find(|s| s.process.as_deref() == Some("workload") && s.via == "exec")
            .or_else(|| self.starts().next())?;
        let exit = self.exits().find(|x| x.pid == start.header.pid);
        Some((start, exit))
    }
}

/// Appends the `exit` line for a program chaos-ctl reaped (O_APPEND, as the shim writes), with
/// its process key from its `start` line. A log that cannot be read or appended to loses only
/// this line.
pub fn append_exit(log_path: &Path, pid: i32, status: std::process::ExitStatus) {
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    let proc = Log::read(log_path).ok().and_then(|log| {
        log.starts()
            .find(|s| s.header.pid == pid)
            .map(|s| s.header.proc.clone())
    });
    let exit = Event::Exit(Exit {
        ts_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        pid,
        proc,
        reaper: std::process::id() as i32,
        status: status.code(),
        signal: status.signal().map(chaos_engine::signal::signal_name),
        core_dumped: status.core_dumped(),
    });
    if let Ok(mut line) = serde_json::to_string(&exit) {
        line.push('\n');
        let _ = std::fs::OpenOptions::new()
            .append(true)
            .open(log_path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
    }
}

/// Whether a fault line is a grid fault's hold rather than a fault of its own.
pub fn is_hold(f: &Fault) -> bool {
    f.effect.as_deref() == Some("held")
}
