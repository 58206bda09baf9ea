//! The process events of a system run, appended to the run's log as `"ev":"process"` lines (and
//! an `exit` line for every process chaos-ctl reaps), with O_APPEND as the shim writes, so they
//! interleave whole with the processes' own lines.

use chaos_engine::event::schema::{Event, ProcessEvent};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

pub struct Journal {
    file: Option<std::fs::File>,
    t0: Instant,
    /// Every event written, in order, for the summary.
    pub written: Vec<ProcessEvent>,
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Journal {
    pub fn open(log: &Path, t0: Instant) -> Journal {
        Journal {
            file: std::fs::OpenOptions::new().append(true).open(log).ok(),
            t0,
            written: Vec::new(),
        }
    }

    /// An event with only its name and `what`; fill the rest with struct update syntax.
    pub fn event(&self, name: &str, what: &str) -> ProcessEvent {
        ProcessEvent {
            ts_ns: now_ns(),
            t_ns: self.t0.elapsed().as_nanos() as u64,
            name: name.to_string(),
            what: what.to_string(),
            kind: None,
            pid: None,
            life: None,
            status: None,
            signal: None,
            key: None,
            grace_ns: None,
            recovery_ns: None,
            paused_ns: None,
            at_ns: None,
            detail: None,
        }
    }

    /// The `system` line: the run's `[[process]]` tables.
    pub fn write_system(&mut self, processes: String) {
        let event = Event::System(chaos_engine::event::schema::SystemLine {
            ts_ns: now_ns(),
            processes,
        });
        if let (Some(f), Ok(mut line)) = (&mut self.file, serde_json::to_string(&event)) {
            line.push('\n');
            let _ = f.write_all(line.as_bytes());
        }
    }

    pub fn write(&mut self, e: ProcessEvent) {
        let event = Event::Process(e);
        if let (Some(f), Ok(mut line)) = (&mut self.file, serde_json::to_string(&event)) {
            line.push('\n');
            let _ = f.write_all(line.as_bytes());
        }
        if let Event::Process(e) = event {
            self.written.push(e);
        }
    }
}
