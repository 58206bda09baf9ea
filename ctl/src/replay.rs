//! `chaos-ctl replay LOG [--] [CMD…]`: run CMD under the frozen policy of LOG's faults, then say
//! which of them came back (matched by decision key) and which the program never reached.

use crate::cli::{PolicyArgs, ReplayArgs, RunArgs};
use crate::events::Log;
use crate::failure::Failure;
use crate::frozen::{self, LoggedFault};
use crate::launch::{absolute, default_log_path};
use crate::output::errout;
use chaos_engine::decide::Place;
use std::collections::HashSet;
use std::ffi::OsString;
use std::path::Path;

/// The command a log's run started with (its first `start` event), when none is given.
pub fn command_or_logged(
    cmd: &[OsString],
    log: &Log,
    log_path: &Path,
) -> Result<Vec<OsString>, Failure> {
    if !cmd.is_empty() {
        return Ok(cmd.to_vec());
    }
    log.starts()
        .next()
        .and_then(|s| s.argv.clone())
        .filter(|a| !a.is_empty())
        .map(|a| a.into_iter().map(OsString::from).collect())
        .ok_or_else(|| {
            Failure::own(format!(
                "{} names no command (no `start` event with argv); give one after --",
                log_path.display()
            ))
        })
}

/// How many of `faults` the run behind `log` hit again (at the same place, see `Key::place`), and
/// the ones it did not.
pub fn compare<'a>(faults: &'a [LoggedFault], log: &Log) -> (usize, Vec<&'a LoggedFault>) {
    let hit: HashSet<Place> = frozen::places(log);
    let missed: Vec<&LoggedFault> = faults
        .iter()
        .filter(|f| !hit.contains(&f.place()))
        .collect();
    (faults.len() - missed.len(), missed)
}

pub fn replay(args: ReplayArgs) -> Result<u8, Failure> {
    let log_path = absolute(&args.log)?;
    let original = Log::read_or_fail(&log_path)?;
    original.require_start(&args.log)?;
    let faults = frozen::logged_faults(&original, &log_path)?;
    let cmd = command_or_logged(&args.cmd, &original, &log_path)?;
    let new_log = match &args.out_log {
        Some(p) => absolute(p)?,
        None => default_log_path(),
    };
    let policy_path = new_log.with_extension("frozen.toml");
    let all: Vec<&LoggedFault> = faults.iter().collect();
    let text = frozen::render(&original, &log_path, &all, faults.len());
    frozen::check(&text, "frozen policy")?;
    std::fs::write(&policy_path, text)
        .map_err(|e| Failure::own(format!("cannot write {}: {e}", policy_path.display())))?;
    if args.cmd.is_empty()
        && let Some(dir) = original.starts().next().and_then(|s| s.cwd.clone())
    {
        // The logged command is run where it ran: its relative paths mean what they meant. Every
        // path chaos-ctl itself uses from here on is absolute.
        std::env::set_current_dir(&dir).map_err(|e| {
            Failure::own(format!(
                "cannot run the logged command in its directory {dir}: {e} (give a command after --)"
            ))
        })?;
        if !args.quiet {
            errout!("chaos: replaying in {dir}");
        }
    }
    let code = crate::run::run(RunArgs {
        source: PolicyArgs {
            policy: Some(policy_path.clone()),
            profile: None,
        },
        platform: None,
        quirks: vec![],
        no_quirks: vec![],
        seed: None,
        log: Some(new_log.clone()),
        quiet: args.quiet,
        force: false,
        cmd,
    })?;
    let replayed = Log::read_or_fail(&new_log)?;
    let (reproduced, missed) = compare(&faults, &replayed);
    errout!(
        "chaos: replay reproduced {reproduced} of {} logged fault(s); policy {}",
        faults.len(),
        policy_path.display()
    );
    if !missed.is_empty() {
        errout!("chaos: never reached (the program took another path):");
        for f in &missed {
            errout!("  {}", f.describe);
        }
    }
    Ok(code)
}
