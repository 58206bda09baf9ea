//! Reading the event log back.

use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub ev: String,
    #[serde(default)]
    pub pid: i64,
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub op: Option<String>,
    #[serde(default)]
    pub fault: Option<String>,
    #[serde(default)]
    pub quirk: Option<String>,
    #[serde(default)]
    pub fd: Option<i64>,
    /// A warning's text.
    #[serde(default)]
    pub what: Option<String>,
    /// The process key (every event).
    #[serde(default)]
    pub proc: Option<String>,
    /// Faults: the decision key, the connection name, what the fault did.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub conn: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub peer: Option<String>,
    #[serde(default)]
    pub returned: Option<i64>,
    #[serde(default)]
    pub delay_ns: Option<u64>,
    #[serde(default)]
    pub stall_ns: Option<u64>,
    /// `start` lines: what ran, and under which policy.
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub policy_digest: Option<String>,
    #[serde(default)]
    pub quirks: Option<Vec<String>>,
    #[serde(default)]
    pub quirk_probability: Option<String>,
}

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

    pub fn starts(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| e.ev == "start")
    }

    pub fn faults(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| e.ev == "fault")
    }

    /// Bugs the shim saw the program make (e.g. a close retried after a failed close).
    pub fn warnings(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| e.ev == "warning")
    }
}
