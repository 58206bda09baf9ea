//! `chaos-ctl run`: validate, preflight, launch under the shim, forward signals, wait, summarise.

use crate::account::count;
use crate::cli::RunArgs;
use crate::failure::{self, Failure};
use crate::launch::{self, Launch, create_log, default_log_path};
use crate::log::Log;
use crate::paths::absolute;
use crate::policy_source::PolicySource;
use crate::{preflight, report, shim_path};
use chaos_engine::quirk;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

/// What a finished run left: the status to exit with and the signal that killed the program.
pub struct Ran {
    pub code: u8,
    /// The program was killed by this signal (and did load the shim, or `--force` was given):
    /// the caller ends by re-raising it, after its own report.
    pub reraise: Option<i32>,
}

pub fn run(args: RunArgs) -> Result<u8, Failure> {
    let ran = run_program(args)?;
    if let Some(sig) = ran.reraise {
        // Die the way the program died, as strace and timeout(1) do, so that a shell loop around
        // chaos-ctl stops on Ctrl-C. Exit-time cleanup does not run on a signal: do it first.
        crate::policy_source::remove_staged();
        crate::signals::reraise(sig);
    }
    Ok(ran.code)
}

pub fn run_program(mut args: RunArgs) -> Result<Ran, Failure> {
    let seed_from = launch::run_args_from_env(&mut args)?;
    let source = PolicySource::from_args(&args.source)?;
    let policy = source.load()?;
    // Checked here so a misspelt quirk fails before the program starts, not inside it.
    fn names(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let added = quirk::resolve(args.platform.as_deref(), &names(&args.quirks), &[])
        .map_err(Failure::own)?;
    let removed = quirk::resolve(None, &names(&args.no_quirks), &[]).map_err(Failure::own)?;
    let quirks = quirk::QuirkSet((policy.quirks.0 | added.0) & !removed.0);
    let shim = shim_path::find_shim()?;
    if let Some(html) = &args.html {
        check_html_path(html)?;
    }
    if args.progress && policy.system.is_empty() {
        return Err(Failure::with(
            failure::USAGE,
            "--progress reports a system's process events: it needs a policy with [[process]] \
             entries",
        ));
    }
    if policy.system.is_empty() && args.cmd.is_empty() {
        return Err(Failure::with(
            failure::USAGE,
            "no command given; expected `chaos-ctl run [OPTIONS] -- CMD [ARGS…]` (only a policy \
             with [[process]] entries runs without one)",
        ));
    }
    if !policy.system.is_empty() {
        for spec in &policy.system.processes {
            preflight_or_force(
                &std::ffi::OsString::from(&spec.cmd[0]),
                args.backend,
                &policy,
                args.force,
            )?;
        }
        if let Some(w) = args.cmd.first() {
            preflight_or_force(w, args.backend, &policy, args.force)?;
        }
        return run_system(&args, &policy, &shim, &source, seed_from, quirks);
    }
    if args.duration.is_some() {
        return Err(Failure::with(
            failure::USAGE,
            "--duration is for a system run (a policy with [[process]]) without a workload; \
             with a command, the run lasts as long as the command (to bound it, use \
             `timeout DURATION chaos-ctl run …`)",
        ));
    }
    let program = preflight::resolve_command(&args.cmd[0])?;
    preflight_or_force(&args.cmd[0], args.backend, &policy, args.force)?;
    let log_path = match &args.log {
        Some(p) => absolute(p)?,
        None => default_log_path(),
    };
    create_log(&log_path)?;
    let run_dir = crate::system::fresh_run_dir(&log_path).inspect_err(|_| discard(&log_path))?;
    let control = crate::control::start(
        &run_dir,
        &["workload"],
        &policy,
        &log_path,
        args.control_addr.as_deref(),
        args.quiet,
    )
    .inspect_err(|_| discard(&log_path))?;
    let mut toxiproxy_env = None;
    if let Some(addr) = args.toxiproxy_addr.as_deref() {
        let bound = crate::toxiproxy::serve(
            "--toxiproxy-addr",
            addr,
            args.seed.unwrap_or(policy.seed),
            Some(log_path.clone()),
            Some((control.page.clone(), !policy.injections.is_empty())),
        )
        .inspect_err(|_| discard(&log_path))?;
        if !args.quiet {
            crate::output::errout!("chaos: toxiproxy API http://{bound}");
        }
        // The seccomp backend's filter, built before the program starts, must then notify the
        // calls a proxy made later acts on.
        toxiproxy_env = Some((crate::toxiproxy::ENV, format!("http://{bound}")));
    }

    let mut cmd = launch::command(
        &args.cmd,
        &Launch {
            shim: &shim,
            source: &source,
            seed: args.seed,
            log: &log_path,
            platform: args.platform.as_deref(),
            quirks: &args.quirks,
            no_quirks: &args.no_quirks,
            backend: args.backend,
        },
    );
    cmd.envs(control.env.iter().map(|(k, v)| (k, v)));
    cmd.envs(toxiproxy_env);
    cmd.envs(args.census.map(launch::census_env).unwrap_or_default());

    // The run has started: its log says which storage it emulates, for `freeze`.
    crate::storage_line::write(&policy, &log_path);
    // Crashes of the processes the program reaps itself are undone as they happen.
    let watch = crate::durability_watch::start(
        &policy,
        args.seed.unwrap_or(policy.seed),
        &run_dir,
        &log_path,
    );
    let child = crate::signals::spawn_forwarding_signals(cmd, &args.cmd[0])
        .inspect_err(|_| discard(&log_path))?;
    let status = crate::signals::reap(child.id() as i32, true)
        .ok()
        .flatten()
        .ok_or_else(|| Failure::own("waiting for the program failed".to_string()))?;
    crate::signals::forget_child();
    crate::seccomp::live::settle(child.id() as i32);
    let crashed = status.signal() == Some(libc::SIGKILL);
    let seed = args.seed.unwrap_or(policy.seed);
    drop(watch);
    crate::durability::after_exit(&policy, seed, &run_dir, None, crashed, false, &log_path);
    crate::unlogged::append(&control.page.page(), &log_path);
    crate::refusals::append_rule_lines(&control.page.page(), &policy, &log_path);
    // A single program's run directory holds only its control page, which means nothing once the
    // run is over: one run leaves one file, its log.
    drop(control);
    let _ = std::fs::remove_dir_all(&run_dir);
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        _ => failure::OWN,
    };

    // The program cannot log its own death by a signal: chaos-ctl, its reaper, does.
    crate::log::append_exit(&log_path, child.id() as i32, status);
    let log = Log::read_or_fail(&log_path)?;
    write_html(&args, &log_path);
    let seed = args.seed.unwrap_or(policy.seed);
    if !args.quiet {
        summarise(&log, &log_path, seed, seed_from, &policy.origin);
        if !quirks.is_empty() {
            say(&format!("chaos: quirks {}\n", quirks.names().join(", ")));
        }
    }
    let intercepted = log
        .starts()
        .any(|s| i64::from(s.header.pid) == i64::from(child.id()));
    let reraise = status.signal().filter(|_| intercepted || args.force);
    if reraise.is_some() {
        return Ok(Ran { code, reraise });
    }
    if !intercepted {
        let msg = format!(
            "{} never loaded the shim (no `start` event from pid {}): nothing was injected",
            program.display(),
            child.id()
        );
        if args.force {
            say(&format!("chaos-ctl: warning: {msg}\n"));
        } else {
            return Err(Failure::own(format!(
                "{msg} (use --force to accept such runs)"
            )));
        }
    }
    Ok(Ran {
        code,
        reraise: None,
    })
}

/// The preflight of one program: a refusal is an error unless `--force`.
fn preflight_or_force(
    cmd: &std::ffi::OsStr,
    backend: preflight::Backend,
    policy: &chaos_engine::policy::Policy,
    force: bool,
) -> Result<(), Failure> {
    let program = preflight::resolve_command(cmd)?;
    let (chosen, mut refusals) = preflight::choose(&program, backend);
    if chosen == preflight::Backend::Seccomp {
        refusals.extend(crate::seccomp::unsupported(policy).into_iter().map(|why| {
            preflight::Refusal(format!(
                "{} runs under the seccomp backend, and its policy's {why}",
                program.display()
            ))
        }));
    }
    for refusal in refusals {
        if force {
            say(&format!(
                "chaos-ctl: warning: {} (running anyway: --force)\n",
                refusal.0
            ));
        } else {
            return Err(Failure::own(format!(
                "{} (use --force to run it anyway)",
                refusal.0
            )));
        }
    }
    Ok(())
}

/// A run of a system of processes (`[[process]]` in the policy): see `crate::system`.
fn run_system(
    args: &RunArgs,
    policy: &chaos_engine::policy::Policy,
    shim: &Path,
    source: &PolicySource,
    seed_from: &str,
    quirks: quirk::QuirkSet,
) -> Result<Ran, Failure> {
    let log_path = match &args.log {
        Some(p) => absolute(p)?,
        None => default_log_path(),
    };
    let duration = args
        .duration
        .as_deref()
        .map(|d| launch::duration_arg(d, "--duration"))
        .transpose()?;
    if duration.is_some() && !args.cmd.is_empty() {
        return Err(Failure::with(
            failure::USAGE,
            "--duration is for a system run without a workload; with a command, the run lasts \
             as long as the command",
        ));
    }
    create_log(&log_path)?;
    let seed = args.seed.unwrap_or(policy.seed);
    let ended = crate::system::run(&crate::system::SystemRun {
        policy,
        launch: Launch {
            shim,
            source,
            seed: args.seed,
            log: &log_path,
            platform: args.platform.as_deref(),
            quirks: &args.quirks,
            no_quirks: &args.no_quirks,
            backend: args.backend,
        },
        log_path: &log_path,
        seed,
        cmd: &args.cmd,
        duration,
        control_addr: args.control_addr.as_deref(),
        quiet: args.quiet,
        progress: args.progress,
        policy_text: match source {
            PolicySource::File(p) => {
                let copy = crate::policy_source::staged(p).unwrap_or_else(|| p.clone());
                std::fs::read_to_string(copy).ok()
            }
            PolicySource::Profile(_) => None,
        },
        census: args.census,
    })
    .inspect_err(|_| discard(&log_path))?;
    let log = Log::read_or_fail(&log_path)?;
    write_html(args, &log_path);
    if !args.quiet {
        summarise(&log, &log_path, seed, seed_from, &policy.origin);
        if !quirks.is_empty() {
            say(&format!("chaos: quirks {}\n", quirks.names().join(", ")));
        }
        say(&ended.summary);
    }
    if let Some(sig) = ended.interrupted {
        return Ok(Ran {
            code: crate::trial::interrupted_status(sig),
            reraise: None,
        });
    }
    let Some((pid, status)) = ended.workload else {
        return Ok(Ran {
            code: 0,
            reraise: None,
        });
    };
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        _ => failure::OWN,
    };
    let intercepted = log.starts().any(|s| s.header.pid == pid);
    if !intercepted && !args.force {
        return Err(Failure::own(format!(
            "the workload {} never loaded the shim (no `start` event from pid {pid}): nothing was \
             injected in it (use --force to accept such runs)",
            args.cmd[0].to_string_lossy()
        )));
    }
    Ok(Ran {
        code,
        reraise: status.signal().filter(|_| intercepted || args.force),
    })
}

/// A run refused before anything ran leaves nothing behind: its log, while it is still empty,
/// and its run directory. A log something was written to is the account of what did run.
fn discard(log_path: &Path) {
    if std::fs::metadata(log_path).is_ok_and(|m| m.len() == 0) {
        let _ = std::fs::remove_file(log_path);
        crate::system::remove_run_dir(log_path);
    }
}

/// `--html FILE` must be writable before the run starts, not found unwritable after it.
fn check_html_path(path: &Path) -> Result<(), Failure> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(drop)
        .map_err(|e| {
            Failure::with(
                failure::USAGE,
                format!("--html {}: cannot write there: {e}", path.display()),
            )
        })
}

/// The run's timeline page, if `--html` asked for one.
fn write_html(args: &RunArgs, log_path: &Path) {
    if let Some(html) = &args.html
        && let Err(e) = crate::report_html::write(&[log_path], html)
    {
        say(&format!("chaos-ctl: warning: {}\n", e.message));
    }
}

/// Writes to stderr, ignoring errors: a closed or full stderr (`2>/dev/full`, a reader that went
/// away) must not cost the program's exit status.
fn say(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

fn summarise(log: &Log, log_path: &Path, seed: u64, seed_from: &str, origin: &str) {
    let account = crate::account::Account::of(log);
    let mut out = headline(log, &account, seed, seed_from, origin);
    out.push_str(&report::table(log));
    out.push_str(&account.table());
    // A built-in profile's rules are meant to fire only where they can: explaining each of their
    // refusals in every run would bury the rest (`report` still shows their accounts).
    if !origin.starts_with("profile:") {
        out.push_str(&crate::refusals::summary_lines(log));
    }
    out.push_str(&ending(log));
    out.push_str(&report::warning_lines(log));
    out.push_str(&crate::unlogged::describe(log));
    if log.bad_lines > 0 {
        out.push_str(&format!(
            "chaos: warning: {}\n",
            count(
                log.bad_lines,
                "unparseable log line",
                "unparseable log lines"
            )
        ));
    }
    out.push_str(&format!("chaos: log {}\n", log_path.display()));
    say(&out);
}

/// `chaos: 3 faults, 1 disk effect in 2 processes; policy …, seed …`: every effect, counted.
fn headline(
    log: &Log,
    account: &crate::account::Account,
    seed: u64,
    seed_from: &str,
    origin: &str,
) -> String {
    format!(
        "chaos: {} in {}; policy {origin}, seed {seed}{seed_from}\n",
        account.headline(),
        count(log.starts().count(), "process", "processes"),
    )
}

/// How the program the run started ended, when a signal ended it: an exit status of 137 says
/// less than `killed by SIGKILL`.
fn ending(log: &Log) -> String {
    match log.top() {
        Some((_, Some(exit))) if exit.signal.is_some() => format!(
            "chaos: the program was {}{}\n",
            exit.describe(),
            if exit.core_dumped {
                " (core dumped)"
            } else {
                ""
            }
        ),
        _ => String::new(),
    }
}
