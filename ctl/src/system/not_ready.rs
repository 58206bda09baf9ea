//! What an error says about a process that ended or timed out before it was ready.

use chaos_engine::system::Ready;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

pub(super) fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by {}", chaos_engine::signal::signal_name(s)),
        _ => "ended".into(),
    }
}

pub(super) fn ready_text(r: Option<&Ready>) -> String {
    match r {
        None => "(none)".into(),
        Some(Ready::Tcp(t)) => format!("\"tcp:{t}\""),
        Some(Ready::Unix(t)) => format!("\"unix:{t}\""),
        Some(Ready::Log(t)) => format!("\"log:{t}\""),
        Some(Ready::Cmd(t)) => format!("\"cmd:{t}\""),
    }
}

/// The last lines of a process's output, for an error message.
pub(super) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return " (it printed nothing)".into();
    }
    let from = lines.len().saturating_sub(5);
    format!(":\n    {}", lines[from..].join("\n    "))
}
