//! The constructor: resolve real functions, load the policy, open the log, publish the runtime.
//!
//! It runs from `.init_array` when ld.so loads the shim, before `main` and before any thread of the
//! program exists. It may allocate; hooks may not. An unusable policy or log ends the process with
//! status 125 and one line on stderr: a program never runs without the chaos it was asked for.

use crate::guard::guarded;
use crate::runtime::{self, FORKS, PID, PROCESS_KEY, Runtime};
use crate::{log, real, sys};
use chaos_engine::settings::{Settings, SettingsError};
use core::sync::atomic::Ordering::Relaxed;
use std::ffi::OsString;

// Not in the unit tests' binary: they test modules, with no runtime published.
#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = chaos_shim_init;

extern "C" fn chaos_shim_init() {
    // Guarded so that the I/O we do here (reading the policy) passes through our own hooks untouched.
    guarded(|| {
        real::resolve_all();
        // SAFETY: getauxval reads the auxiliary vector ld.so set up; AT_SECURE is a valid type.
        if unsafe { libc::getauxval(libc::AT_SECURE) } != 0 {
            return; // setuid/setgid/capabilities: do nothing at all.
        }
        std::panic::set_hook(Box::new(|_| {})); // only the shim's own std: the program's is separate
        warn_unknown_vars();
        if let Err(message) = init() {
            sys::write_all(2, format!("{message}\n").as_bytes());
            sys::exit_group(125);
        }
    });
}

/// A misspelt variable (`CHAOS_POLCY`) would otherwise be ignored without a word: one line on
/// stderr names it and the nearest known name.
fn warn_unknown_vars() {
    let unknown: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("CHAOS_") && !chaos_engine::env::is_known(k))
        .collect();
    if unknown.is_empty() {
        return;
    }
    let described: Vec<String> = unknown
        .iter()
        .map(|k| match chaos_engine::env::nearest(k) {
            Some(n) => format!("{k} (did you mean {n}?)"),
            None => k.clone(),
        })
        .collect();
    sys::write_all(
        2,
        format!(
            "chaos: warning: unknown variable {} ignored; known: {}\n",
            described.join(", "),
            chaos_engine::env::SHIM_VARS.join(" ")
        )
        .as_bytes(),
    );
}

fn env(name: &str) -> Option<String> {
    std::env::var_os(name)
        .map(OsString::into_string)
        .and_then(Result::ok)
        .filter(|s| !s.is_empty())
}

/// Why CHAOS_POLICY cannot be read for lack of permission, if that is so.
fn policy_denied() -> Option<i32> {
    let path = env("CHAOS_POLICY")?;
    match std::fs::File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => e.raw_os_error(),
        _ => None,
    }
}

/// A process exec'd as a user the run's files do not admit (a server's worker that dropped
/// privileges, then exec'd a helper) can neither read the run's policy nor write its log: it
/// runs without chaos (no runtime is published, so every hook passes through), and says so in
/// the control page for chaos-ctl's summary. False without a page to say it in: then it is the
/// user's mistake, refused as ever.
///
/// The control page is its owner's alone (0600), so such a process usually cannot open it either:
/// then the run's processes cannot hear of it, and it says so on its own stderr (where the shim
/// reports what stops it from starting), in the words chaos-ctl's summary would use.
fn inert_as_another_user(errno: i32) -> Result<bool, String> {
    let control = env("CHAOS_CONTROL");
    if control.is_some() && crate::page::page_denied(control.as_deref()) {
        let mut name = [0u8; 16];
        let n = crate::sys::comm(&mut name);
        let line = chaos_engine::page::unreadable_policy_line(
            crate::sys::getpid().into(),
            Some(&String::from_utf8_lossy(&name[..n])),
            chaos_engine::errno::errno_name(errno),
            "runs",
        );
        crate::sys::write_all(2, line.as_bytes());
        return Ok(true);
    }
    crate::page::init(control.as_deref(), None, 0)?;
    Ok(crate::page::note_unreadable(
        chaos_engine::page::Unreadable::Policy,
        errno,
        0,
    ))
}

fn init() -> Result<(), String> {
    if let Some(errno) = policy_denied()
        && inert_as_another_user(errno)?
    {
        return Ok(());
    }
    let settings =
        Settings::load(env, |path| std::fs::read_to_string(path)).map_err(|e| match e {
            SettingsError::Policy(e) => e.to_string(),
            SettingsError::Variable(m) => format!("chaos: {m}"),
        })?;
    let exe = std::fs::read_link("/proc/self/exe")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cmdline = std::fs::read("/proc/self/cmdline").unwrap_or_default();
    let argv = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    PID.store(sys::getpid(), Relaxed);
    runtime::set_started();
    crate::page::init(
        settings.control.as_deref(),
        settings.process.as_deref(),
        settings.policy.initially_enabled(),
    )?;
    // After the page is mapped: a descendant of a system's process finds its lineage there.
    let lineage = crate::lineage::inherited(settings.process.as_deref());
    let key = settings.process_key(&exe, &cmdline, lineage);
    let Settings {
        policy,
        seed,
        process,
        life,
        quirks,
        stop_signal,
        log: log_path,
        control: _,
    } = settings;
    runtime::set_process_key(key, seed);
    crate::disk::init(&policy.disks);
    crate::durable::init(&policy, process.as_deref())?;
    crate::census::init(env("CHAOS_CENSUS").is_some_and(|v| v == "1"), &exe);
    let mut rt = Runtime::new(policy, seed, exe, argv, quirks);
    rt.process = process;
    rt.life = life;
    rt.stop_signal = stop_signal;
    rt.supervisor = env("CHAOS_SUPERVISOR")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if let Some(path) = log_path {
        log::open(&path).map_err(|e| format!("chaos: {e}"))?;
    }
    // SAFETY: both handlers are `extern "C"` functions that live as long as the process.
    unsafe { libc::pthread_atfork(Some(before_fork), None, Some(in_fork_child)) };
    log::write_start(&rt, "exec");
    runtime::publish(rt);
    Ok(())
}

extern "C" fn before_fork() {
    FORKS.fetch_add(1, Relaxed);
}

/// A forked child is a new process: new key (from the parent's and the fork ordinal, so it is the
/// same in every run), its own `times` budget and `window` clock, and its own `start` line.
extern "C" fn in_fork_child() {
    let parent = PROCESS_KEY.load(Relaxed);
    let child = chaos_engine::process_key::of_fork(parent, FORKS.load(Relaxed));
    PID.store(sys::getpid(), Relaxed);
    runtime::set_started();
    crate::lineage::forked();
    if let Some(rt) = runtime::get() {
        runtime::set_process_key(child, rt.seed);
        for n in &rt.injected {
            n.store(0, Relaxed);
        }
        guarded(|| log::write_start(rt, "fork"));
    }
}
