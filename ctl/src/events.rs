//! Reading the event log back, into the engine's schema (`chaos_engine::event::schema`).

use chaos_engine::event::schema::{Event, Fault, Start, Warning};
use std::path::Path;

pub struct Log {
    pub events: Vec<Event>,
    /// Lines that did not parse (should be none: lines are written whole).
    pub bad_lines: usize,
}

impl Log {
    pub fn read(path: &Path) -> std::io::Result<Log> {
        let text = std::fs::read_to_string(path)?;
        let mut events = Vec::new();
        let mut bad_lines = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Event>(line) {
                Ok(e) => events.push(e),
                Err(_) => bad_lines += 1,
            }
        }
        Ok(Log { events, bad_lines })
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

    pub fn starts(&self) -> impl Iterator<Item = &Start> {
        self.events.iter().filter_map(Event::as_start)
    }

    /// Injected faults and the platform quirks that fired.
    pub fn faults(&self) -> impl Iterator<Item = &Fault> {
        self.events.iter().filter_map(Event::as_fault)
    }

    /// Bugs the shim saw the program make (e.g. a close retried after a failed close).
    pub fn warnings(&self) -> impl Iterator<Item = &Warning> {
        self.events.iter().filter_map(Event::as_warning)
    }
}
