//! `chaos-ctl run`: validate, preflight, launch under the shim, forward signals, wait, summarise.

use crate::cli::RunArgs;
use crate::events::Log;
use crate::failure::{self, Failure};
use crate::launch::{self, Launch, absolute, create_log, default_log_path};
use crate::policy_source::PolicySource;
use crate::{preflight, report, shim_path};
use chaos_engine::quirk;
use std::io::ErrorKind;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

pub fn run(args: RunArgs) -> Result<u8, Failure> {
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
    let program = preflight::resolve_command(&args.cmd[0])?;
    for refusal in preflight::check(&program) {
        if args.force {
            eprintln!(
                "chaos-ctl: warning: {} (running anyway: --force)",
                refusal.0
            );
        } else {
            return Err(Failure::own(format!(
                "{} (use --force to run it anyway)",
                refusal.0
            )));
        }
    }
    let log_path = match &args.log {
        Some(p) => absolute(p)?,
        None => default_log_path(),
    };
    create_log(&log_path)?;

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
        },
    );

    // Signals sent to us between the spawn and the handler's installation must not kill us: hold
    // them until the child is known, then forward whatever arrived. The child gets the original mask
    // back before exec (std does not reset it).
    let held = hold_forwarded_signals();
    unsafe {
        cmd.pre_exec(move || {
            libc::pthread_sigmask(libc::SIG_SETMASK, &held, std::ptr::null_mut());
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    if let Ok(child) = &spawned {
        forward_signals_to(child.id() as i32);
    }
    release_signals(held);
    let mut child = spawned.map_err(|e| {
        let code = match e.kind() {
            ErrorKind::NotFound => failure::NOT_FOUND,
            _ => failure::CANNOT_EXECUTE,
        };
        Failure::with(code, format!("{}: {e}", args.cmd[0].to_string_lossy()))
    })?;
    let status = child
        .wait()
        .map_err(|e| Failure::own(format!("waiting for the program: {e}")))?;
    CHILD.store(0, Ordering::SeqCst);
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        _ => failure::OWN,
    };

    let log = Log::read_or_fail(&log_path)?;
    let seed = args.seed.unwrap_or(policy.seed);
    if !args.quiet {
        summarise(&log, &log_path, seed, &policy.origin);
        if !quirks.is_empty() {
            eprintln!("chaos: quirks {}", quirks.names().join(", "));
        }
    }
    let intercepted = log
        .starts()
        .any(|s| i64::from(s.header.pid) == i64::from(child.id()));
    if !intercepted {
        let msg = format!(
            "{} never loaded the shim (no `start` event from pid {}): nothing was injected",
            program.display(),
            child.id()
        );
        if args.force {
            eprintln!("chaos-ctl: warning: {msg}");
        } else {
            return Err(Failure::own(format!(
                "{msg} (use --force to accept such runs)"
            )));
        }
    }
    Ok(code)
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // A terminal's Ctrl-C already reaches the child (same process group, si_code SI_KERNEL);
    // forward only signals sent to us in particular (kill, CI runners' timeouts).
    let from_kernel = !info.is_null() && unsafe { (*info).si_code } > 0;
    let child = CHILD.load(Ordering::SeqCst);
    if child > 0 && !from_kernel {
        unsafe { libc::kill(child, sig) };
    }
}

const FORWARDED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

fn hold_forwarded_signals() -> libc::sigset_t {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

fn release_signals(old: libc::sigset_t) {
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
}

fn forward_signals_to(pid: i32) {
    CHILD.store(pid, Ordering::SeqCst);
    for sig in FORWARDED {
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn summarise(log: &Log, log_path: &Path, seed: u64, origin: &str) {
    let processes = log.starts().count();
    let faults = log.faults().count();
    eprintln!("chaos: {faults} fault(s) in {processes} process(es); policy {origin}, seed {seed}");
    eprint!("{}", report::table(log));
    for w in log.warnings() {
        eprintln!(
            "chaos: program bug: pid {} {}({}): {}",
            w.header.pid, w.op, w.fd, w.what
        );
    }
    if log.bad_lines > 0 {
        eprintln!("chaos: warning: {} unparseable log line(s)", log.bad_lines);
    }
    eprintln!("chaos: log {}", log_path.display());
}
