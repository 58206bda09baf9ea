//! `chaos-ctl replay LOG [--] [CMD…]`: run CMD under the frozen policy of LOG's faults, then say
//! which of them came back (matched by decision key) and which the program never reached.

use crate::cli::{PolicyArgs, ReplayArgs, RunArgs};
use crate::failure::Failure;
use crate::frozen::{self, LoggedFault};
use crate::launch::default_log_path;
use crate::log::Log;
use crate::output::errout;
use crate::paths::absolute;
use chaos_engine::key::Place;
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
    if log.system().is_some()
        && !log
            .starts()
            .any(|s| s.process.as_deref() == Some("workload"))
    {
        // A system run without a workload: the processes come from the frozen policy.
        return Ok(Vec::new());
    }
    // A start line cut short left arguments out: running what is left would run another
    // command, and its faults would not come back.
    if let Some((s, _)) = log.top()
        && (s.argv_truncated.is_some_and(|n| n > 0) || (s.header.truncated && s.argv.is_some()))
    {
        return Err(Failure::own(format!(
            "the command line logged in {} was truncated: its `start` line outgrew the log's \
             {}-byte lines ({}); give the command after --, e.g. `chaos-ctl replay {} -- CMD \
             [ARGS…]`",
            log_path.display(),
            chaos_engine::event::LINE_MAX,
            match s.argv_truncated {
                Some(n) => format!(
                    "{} left out",
                    crate::account::count(n, "argument", "arguments")
                ),
                None => "cut before it could say how many arguments it left out".to_string(),
            },
            log_path.display()
        )));
    }
    log.top()
        .and_then(|(s, _)| s.argv.clone())
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
    let nemesis = frozen::logged_nemesis(&original);
    let text = frozen::render(
        &original,
        &log_path,
        &all,
        faults.len(),
        &nemesis.iter().collect::<Vec<_>>(),
    );
    frozen::check(&text, "frozen policy")?;
    std::fs::write(&policy_path, text)
        .map_err(|e| Failure::own(format!("cannot write {}: {e}", policy_path.display())))?;
    if args.cmd.is_empty()
        && let Some(dir) = original.top().and_then(|(s, _)| s.cwd.clone())
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
    let ran = crate::run::run_program(RunArgs {
        source: PolicyArgs {
            policy: Some(policy_path.clone()),
            profile: None,
        },
        platform: None,
        quirks: vec![],
        no_quirks: vec![],
        seed: None,
        // A system run without a workload lasted until its last process event: so does its replay.
        duration: cmd.is_empty().then(|| {
            let last = original.process_events().map(|e| e.t_ns).max().unwrap_or(0);
            format!("{}ns", last.max(1))
        }),
        log: Some(new_log.clone()),
        census: None,
        quiet: args.quiet,
        force: false,
        control_addr: None,
        toxiproxy_addr: None,
        html: None,
        progress: false,
        backend: args.backend,
        cmd,
    })?;
    let replayed = Log::read_or_fail(&new_log)?;
    let (reproduced, missed) = compare(&faults, &replayed);
    errout!(
        "chaos: replay reproduced {reproduced} of {}; policy {}",
        crate::account::count(faults.len(), "logged fault", "logged faults"),
        policy_path.display()
    );
    if !missed.is_empty() {
        match changed_process(&original, &replayed, reproduced) {
            Some(why) => errout!("chaos: {why}"),
            None => errout!("chaos: never reached (the program took another path):"),
        }
        for f in &missed {
            errout!("  {}", f.describe);
        }
    }
    errout!("chaos: {}", verdict(&original, &replayed));
    if let Some(sig) = ran.reraise {
        crate::policy_source::remove_staged();
        crate::signals::reraise(sig);
    }
    Ok(ran.code)
}

/// Whether the run ended as the logged one did: the failure reproduced or it did not.
pub fn verdict(original: &Log, replayed: &Log) -> String {
    let then = original.top().and_then(|(_, x)| x);
    let now = replayed.top().and_then(|(_, x)| x);
    match (then, now) {
        (Some(a), Some(b)) if a.same_ending(b) && a.status == Some(0) => {
            format!(
                "the program ended as logged ({}): there was no failure to reproduce",
                b.describe()
            )
        }
        (Some(a), Some(b)) if a.same_ending(b) => {
            format!(
                "the failure reproduced: {} then, {} now",
                a.describe(),
                b.describe()
            )
        }
        (Some(a), Some(b)) => format!(
            "the failure did not reproduce: {} then, {} now",
            a.describe(),
            b.describe()
        ),
        (None, Some(b)) => format!(
            "the log does not say how the program ended (no `exit` line: an older chaos-ctl, or \
             the run was cut short); now: {}",
            b.describe()
        ),
        (_, None) => "the replayed program's end was not logged".to_string(),
    }
}

/// When no logged fault came back because the program is not the one logged: a different argv
/// (or executable) gives a different process key, and every decision key starts with it.
fn changed_process(original: &Log, replayed: &Log, reproduced: usize) -> Option<String> {
    let (a, _) = original.top()?;
    let (b, _) = replayed.top()?;
    if reproduced > 0 || a.header.proc == b.header.proc {
        return None;
    }
    let argv = |s: &chaos_engine::event::schema::Start| {
        crate::frozen::comment(&format!("{:?}", s.argv.clone().unwrap_or_default()))
    };
    Some(format!(
        "no logged key was reached because the process key changed ({} then, {} now): the \
         command line or executable differs (logged {}, now {}), and every decision key starts with the \
         process key; replay with the logged command (give none after --) to reach them:",
        a.header.proc,
        b.header.proc,
        argv(a),
        argv(b)
    ))
}
