//! The constructor: resolve real functions, load the policy, open the log, publish the runtime.
//!
//! It runs from `.init_array` when ld.so loads the shim, before `main` and before any thread of the
//! program exists. It may allocate; hooks may not. An unusable policy or log ends the process with
//! status 125 and one line on stderr: a program never runs without the chaos it was asked for.

use crate::guard::guarded;
use crate::runtime::{self, FORKS, PID, PROCESS_KEY, Runtime};
use crate::{log, real, sys};
use chaos_engine::policy::Policy;
use chaos_engine::quirk::{self, QuirkSet};
use chaos_engine::{parse, profiles};
use core::sync::atomic::Ordering::Relaxed;
use std::ffi::OsString;

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

fn load_policy() -> Result<Policy, String> {
    if let Some(path) = env("CHAOS_POLICY") {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("chaos: cannot read policy {path} (CHAOS_POLICY): {e}"))?;
        // chaos-ctl hands over a private copy of what it validated and names the original here.
        let origin = env("CHAOS_POLICY_ORIGIN").unwrap_or(path);
        return parse::parse_policy(&text, &origin).map_err(|e| e.to_string());
    }
    let name = env("CHAOS_PROFILE").unwrap_or_else(|| profiles::DEFAULT_PROFILE.to_string());
    profiles::load_profile(&name).map_err(|e| format!("chaos: CHAOS_PROFILE: {}", e.message))
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
    if control.is_some() && crate::control::page_denied(control.as_deref()) {
        let mut name = [0u8; 16];
        let n = crate::sys::comm(&mut name);
        let line = chaos_engine::control::unreadable_policy_line(
            crate::sys::getpid().into(),
            Some(&String::from_utf8_lossy(&name[..n])),
            chaos_engine::errno::errno_name(errno),
            "runs",
        );
        crate::sys::write_all(2, line.as_bytes());
        return Ok(true);
    }
    crate::control::init(control.as_deref(), None, 0)?;
    Ok(crate::control::note_unreadable(
        chaos_engine::control::Unreadable::Policy,
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
    let mut policy = load_policy()?;
    // A process of a system gets only its rules (see `Policy::scope_to_process`).
    let process = env("CHAOS_PROCESS");
    let life = match env("CHAOS_LIFE") {
        Some(s) => s
            .parse::<u32>()
            .map_err(|_| format!("chaos: CHAOS_LIFE must be an unsigned integer, got `{s}`"))?,
        None => 0,
    };
    policy.scope_to_process(process.as_deref(), life);
    let seed = match env("CHAOS_SEED") {
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| format!("chaos: CHAOS_SEED must be an unsigned integer, got `{s}`"))?,
        None => policy.seed,
    };
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
    crate::control::init(
        env("CHAOS_CONTROL").as_deref(),
        process.as_deref(),
        policy.initially_enabled(),
    )?;
    // After the page is mapped: a descendant of a system's process finds its lineage there.
    let key = crate::lineage::key_at_start(&exe, &cmdline, process.as_deref(), life);
    runtime::set_process_key(key, seed);
    crate::disk::init(&policy.disks);
    crate::durable::init(&policy, process.as_deref())?;
    crate::census::init(env("CHAOS_CENSUS").is_some_and(|v| v == "1"), &exe);
    let quirks = quirks_from_env(policy.quirks)?;
    let mut rt = Runtime::new(policy, seed, exe, argv, quirks);
    rt.process = process;
    rt.life = life;
    if let Some(s) = env("CHAOS_STOP_SIGNAL") {
        rt.stop_signal = chaos_engine::signal::parse_signal(&s)
            .map_err(|e| format!("chaos: CHAOS_STOP_SIGNAL: {e}"))?;
    }
    rt.supervisor = env("CHAOS_SUPERVISOR")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if let Some(path) = env("CHAOS_LOG") {
        log::open(&path).map_err(|e| format!("chaos: {e}"))?;
    }
    // SAFETY: both handlers are `extern "C"` functions that live as long as the process.
    unsafe { libc::pthread_atfork(Some(before_fork), None, Some(in_fork_child)) };
    log::write_start(&rt, "exec");
    runtime::publish(rt);
    Ok(())
}

/// The policy's quirks plus CHAOS_PLATFORM and CHAOS_QUIRKS, minus CHAOS_NO_QUIRKS (comma lists).
fn names(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn quirks_from_env(policy: QuirkSet) -> Result<QuirkSet, String> {
    let list = |name| env(name).unwrap_or_default();
    let (add, remove) = (list("CHAOS_QUIRKS"), list("CHAOS_NO_QUIRKS"));
    let split = |s: &str| {
        s.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let (add, remove) = (split(&add), split(&remove));
    let platform = env("CHAOS_PLATFORM");
    let from_env = quirk::resolve(platform.as_deref(), &names(&add), &[])
        .map_err(|e| format!("chaos: CHAOS_PLATFORM/CHAOS_QUIRKS: {e}"))?;
    let without = quirk::resolve(None, &names(&remove), &[])
        .map_err(|e| format!("chaos: CHAOS_NO_QUIRKS: {e}"))?;
    Ok(QuirkSet((policy.0 | from_env.0) & !without.0))
}

extern "C" fn before_fork() {
    FORKS.fetch_add(1, Relaxed);
}

/// A forked child is a new process: new key (from the parent's and the fork ordinal, so it is the
/// same in every run), its own `times` budget, and its own `start` line.
extern "C" fn in_fork_child() {
    let parent = PROCESS_KEY.load(Relaxed);
    let child = chaos_engine::process_key::of_fork(parent, FORKS.load(Relaxed));
    PID.store(sys::getpid(), Relaxed);
    crate::lineage::forked();
    if let Some(rt) = runtime::get() {
        runtime::set_process_key(child, rt.seed);
        for n in &rt.injected {
            n.store(0, Relaxed);
        }
        guarded(|| log::write_start(rt, "fork"));
    }
}
