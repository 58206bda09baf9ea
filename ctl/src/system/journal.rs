//! The process events of a system run, appended to the run's log as `"ev":"process"` lines (and
//! an `exit` line for every process chaos-ctl reaps), with O_APPEND as the shim writes, so they
//! interleave whole with the processes' own lines.

use chaos_engine::event::schema::{Event, ProcessEvent};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Journal {
    file: Option<std::fs::File>,
    t0: Instant,
    /// Every event written, in order, for the summary.
    pub written: Vec<ProcessEvent>,
    /// Also say each event on stderr (`run --progress`).
    progress: bool,
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Journal {
    pub fn open(log: &Path, t0: Instant, progress: bool) -> Journal {
        Journal {
            file: std::fs::OpenOptions::new().append(true).open(log).ok(),
            t0,
            written: Vec::new(),
            progress,
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
            late_ns: None,
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
        if self.progress {
            let _ = std::io::stderr().write_all(progress_line(&e).as_bytes());
        }
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

/// `run --progress`'s line for one event: when, who, what, and the details that say why.
pub fn progress_line(e: &ProcessEvent) -> String {
    let mut line = format!(
        "chaos: {:>8.3}s {:<10} {}",
        e.t_ns as f64 / 1e9,
        e.name,
        e.what
    );
    let parts = [
        e.kind.clone(),
        e.pid.map(|p| format!("pid {p}")),
        e.status.map(|s| format!("status {s}")),
        e.signal.clone(),
        e.key.clone(),
        e.detail.clone(),
    ];
    for part in parts.into_iter().flatten() {
        line.push_str(&format!(" {part}"));
    }
    line.push('\n');
    line
}

/// A process event with its pid (when there is one), life and detail.
pub fn journal_event(
    mut e: chaos_engine::event::schema::ProcessEvent,
    pid: i32,
    life: u32,
    detail: Option<String>,
) -> chaos_engine::event::schema::ProcessEvent {
    if pid > 0 {
        e.pid = Some(pid);
    }
    e.life = Some(life);
    if detail.is_some() {
        e.detail = detail;
    }
    e
}

pub fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_progress_line_says_when_who_what_and_why() {
        let mut j = super::Journal::open(
            std::path::Path::new("/nonexistent/x"),
            std::time::Instant::now(),
            false,
        );
        let mut e = j.event("kv#1", "kill");
        e.t_ns = 2_500_000_000;
        e.kind = Some("crash".into());
        e.pid = Some(42);
        e.signal = Some("SIGKILL".into());
        e.key = Some("attrition#3".into());
        assert_eq!(
            super::progress_line(&e),
            "chaos:    2.500s kv#1       kill crash pid 42 SIGKILL attrition#3\n"
        );
        j.write(e);
        assert_eq!(j.written.len(), 1);
    }
}
