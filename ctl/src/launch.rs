//! The environment chaos-ctl hands a program: LD_PRELOAD with the shim first, and the CHAOS_*
//! variables for the policy, seed, log and quirks (any the caller had set are dropped, so a run is
//! exactly what its arguments say). Shared by `run`, `replay`, `sweep` and `minimize`.

use crate::failure::Failure;
use crate::policy_source::PolicySource;
use std::ffi::OsString;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What one run under the shim is given.
pub struct Launch<'a> {
    pub shim: &'a Path,
    pub source: &'a PolicySource,
    pub seed: Option<u64>,
    pub log: &'a Path,
    pub platform: Option<&'a str>,
    pub quirks: &'a [String],
    pub no_quirks: &'a [String],
}

const CHAOS_VARS: [&str; 7] = [
    "CHAOS_POLICY",
    "CHAOS_PROFILE",
    "CHAOS_SEED",
    "CHAOS_LOG",
    "CHAOS_PLATFORM",
    "CHAOS_QUIRKS",
    "CHAOS_NO_QUIRKS",
];

/// `argv` as a Command with the shim's environment set.
pub fn command(argv: &[OsString], l: &Launch) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    for var in CHAOS_VARS {
        cmd.env_remove(var);
    }
    if let Some(p) = l.platform {
        cmd.env("CHAOS_PLATFORM", p);
    }
    if !l.quirks.is_empty() {
        cmd.env("CHAOS_QUIRKS", l.quirks.join(","));
    }
    if !l.no_quirks.is_empty() {
        cmd.env("CHAOS_NO_QUIRKS", l.no_quirks.join(","));
    }
    match l.source {
        PolicySource::File(path) => cmd.env("CHAOS_POLICY", path),
        PolicySource::Profile(name) => cmd.env("CHAOS_PROFILE", name),
    };
    if let Some(seed) = l.seed {
        cmd.env("CHAOS_SEED", seed.to_string());
    }
    cmd.env("CHAOS_LOG", l.log);
    cmd.env("LD_PRELOAD", preload_value(l.shim));
    cmd
}

/// The shim goes first; whatever the user already preloads stays after it.
fn preload_value(shim: &Path) -> OsString {
    let mut value = shim.as_os_str().to_os_string();
    if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        value.push(":");
        value.push(existing);
    }
    value
}

pub fn absolute(p: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(p).map_err(|e| Failure::own(format!("{}: {e}", p.display())))
}

/// A fresh log path in $TMPDIR, unique per process and time.
pub fn default_log_path() -> PathBuf {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("chaos-{ns}-{}.jsonl", std::process::id()))
}

/// Creates (or empties) the log, 0600, refusing to follow a symlink.
pub fn create_log(path: &Path) -> Result<(), Failure> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map(drop)
        .map_err(|e| {
            Failure::own(format!(
                "cannot create the event log {}: {e}",
                path.display()
            ))
        })
}

/// The preflight for unattended runs (`sweep`, `minimize`): any refusal is an error, since a run
/// the shim cannot reach would pass without chaos.
pub fn preflight(program: &OsString) -> Result<(), Failure> {
    let path = crate::preflight::resolve_command(program)?;
    match crate::preflight::check(&path).into_iter().next() {
        Some(refusal) => Err(Failure::own(refusal.0)),
        None => Ok(()),
    }
}

/// Whether a run's log shows that the program loaded the shim.
pub fn intercepted(log: &Path) -> bool {
    crate::events::Log::read(log).is_ok_and(|l| l.starts().next().is_some())
}

/// A duration argument such as `30s` or `2m`.
pub fn duration_arg(text: &str, flag: &str) -> Result<std::time::Duration, Failure> {
    chaos_engine::fault::parse_duration(text)
        .map(std::time::Duration::from_nanos)
        .map_err(|e| Failure::own(format!("{flag}: {e}")))
}
