//! The environment chaos-ctl hands a program: LD_PRELOAD with the shim first, and the CHAOS_*
//! variables for the policy, seed, log and quirks. Those the caller had set are read by `run` as
//! defaults for its flags (`run_args_from_env`) and refused by `sweep` and `minimize`; the
//! program gets exactly what the run was given. Shared by `run`, `replay`, `sweep` and `minimize`.

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
    /// Which backend serves the program (`auto` is resolved per program, by its preflight).
    pub backend: Backend,
}

use crate::preflight::Backend;
use chaos_engine::env::SHIM_VARS as CHAOS_VARS;

/// `argv` as a Command with the backend's environment set: under the preload backend the
/// program itself with LD_PRELOAD; under seccomp the launcher (`chaos-ctl __seccomp-exec`),
/// which passes the same CHAOS_* variables to chaos-ctl's supervisor and execs the program
/// without them.
pub fn command(argv: &[OsString], l: &Launch) -> Command {
    let seccomp = crate::preflight::resolve_backend(&argv[0], l.backend) == Backend::Seccomp;
    let mut cmd = if seccomp {
        let me = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("chaos-ctl"));
        let mut cmd = Command::new(me);
        cmd.arg(crate::seccomp::LAUNCH_ARG).arg("--").args(argv);
        // A server that cannot start leaves the variable empty: the launcher then refuses
        // to run the program, saying why (nothing runs without its chaos).
        match crate::seccomp::server::name() {
            Ok(name) => cmd.env(crate::seccomp::launcher::SERVER_VAR, name),
            Err(e) => cmd
                .env(crate::seccomp::launcher::SERVER_VAR, "")
                .env("CHAOS_SECCOMP_ERROR", e),
        };
        cmd
    } else {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd
    };
    for var in CHAOS_VARS.iter().chain(&chaos_engine::env::CONTROL_VARS) {
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
        // The private copy of the bytes chaos-ctl validated; the start line names the original.
        PolicySource::File(path) => match crate::policy_source::staged(path) {
            Some(copy) => cmd
                .env("CHAOS_POLICY", copy)
                .env("CHAOS_POLICY_ORIGIN", path),
            None => cmd.env("CHAOS_POLICY", path),
        },
        PolicySource::Profile(name) => cmd.env("CHAOS_PROFILE", name),
    };
    if let Some(seed) = l.seed {
        cmd.env("CHAOS_SEED", seed.to_string());
    }
    cmd.env("CHAOS_LOG", l.log);
    if !seccomp {
        cmd.env("LD_PRELOAD", preload_value(l.shim));
    }
    cmd
}

/// One run of a sweep or minimize. A policy with `[[process]]` needs a supervisor to start its
/// processes: the run is then `chaos-ctl run` itself (this executable, the same shim), which
/// writes the trial's log, starts and stops the system and exits with the workload's status.
pub fn trial_command(argv: &[OsString], l: &Launch, system: bool) -> Command {
    if !system {
        return command(argv, l);
    }
    let me = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("chaos-ctl"));
    let mut cmd = Command::new(me);
    cmd.args(["run", "-q", "--log"]).arg(l.log);
    match l.source {
        PolicySource::File(path) => {
            let copy = crate::policy_source::staged(path).unwrap_or_else(|| path.clone());
            cmd.arg("--policy").arg(copy);
        }
        PolicySource::Profile(name) => {
            cmd.arg("--profile").arg(name);
        }
    }
    if let Some(seed) = l.seed {
        cmd.arg("--seed").arg(seed.to_string());
    }
    if let Some(p) = l.platform {
        cmd.arg("--platform").arg(p);
    }
    for q in l.quirks {
        cmd.arg("--quirk").arg(q);
    }
    for q in l.no_quirks {
        cmd.arg("--no-quirk").arg(q);
    }
    cmd.arg("--backend").arg(l.backend.name());
    cmd.arg("--").args(argv).env("CHAOS_SHIM", l.shim);
    cmd
}

/// The variables that turn `explore`'s census on for a program: log the `nth` reach of each
/// fault point.
pub fn census_env(nth: u32) -> Vec<(String, String)> {
    let mut env = vec![("CHAOS_CENSUS".to_string(), "1".to_string())];
    if nth > 1 {
        env.push(("CHAOS_CENSUS_NTH".to_string(), nth.to_string()));
    }
    env
}

fn env_text(name: &str) -> Result<Option<String>, Failure> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v
            .into_string()
            .map(Some)
            .map_err(|_| Failure::own(format!("{name} is not valid UTF-8"))),
    }
}

/// `run` honours the CHAOS_* variables the shim reads, as if given as flags; a flag wins over its
/// variable. Returns where the seed came from, for the summary (`""`: the policy's `seed`).
pub fn run_args_from_env(args: &mut crate::cli::RunArgs) -> Result<&'static str, Failure> {
    let src = &mut args.source;
    if src.policy.is_none() && src.profile.is_none() {
        match (env_text("CHAOS_POLICY")?, env_text("CHAOS_PROFILE")?) {
            (Some(_), Some(_)) => {
                return Err(Failure::own(
                    "CHAOS_POLICY and CHAOS_PROFILE are both set; unset one (or give --policy \
                     or --profile)",
                ));
            }
            (Some(p), None) => src.policy = Some(PathBuf::from(p)),
            (None, Some(n)) => src.profile = Some(n),
            (None, None) => {}
        }
    }
    if args.platform.is_none() {
        args.platform = env_text("CHAOS_PLATFORM")?;
    }
    let list = |name: &str| -> Result<Vec<String>, Failure> {
        Ok(env_text(name)?
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect())
    };
    if args.quirks.is_empty() {
        args.quirks = list("CHAOS_QUIRKS")?;
    }
    if args.no_quirks.is_empty() {
        args.no_quirks = list("CHAOS_NO_QUIRKS")?;
    }
    if args.log.is_none() {
        args.log = env_text("CHAOS_LOG")?.map(PathBuf::from);
    }
    // `explore` runs a system as `chaos-ctl run` with its census on: every process of the system
    // must get it, not only this one (`launch::command` gives a program none of the caller's).
    if env_text("CHAOS_CENSUS")?.as_deref() == Some("1") {
        let nth = env_text("CHAOS_CENSUS_NTH")?;
        args.census = Some(match nth {
            Some(n) => n.trim().parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                Failure::own(format!(
                    "CHAOS_CENSUS_NTH must be a count of at least 1, got `{n}`"
                ))
            })?,
            None => 1,
        });
    }
    if args.seed.is_some() {
        return Ok(" (--seed)");
    }
    match env_text("CHAOS_SEED")? {
        Some(s) => {
            args.seed = Some(s.trim().parse().map_err(|_| {
                Failure::own(format!("CHAOS_SEED must be an unsigned integer, got `{s}`"))
            })?);
            Ok(" (CHAOS_SEED)")
        }
        None => Ok(""),
    }
}

/// `sweep` and `minimize` take everything from their flags: a CHAOS_* variable the shim would read
/// is refused rather than dropped (CHAOS_SEED around a sweep of many seeds means nothing).
fn refuse_shim_env() -> Result<(), Failure> {
    let set: Vec<&str> = CHAOS_VARS
        .into_iter()
        .filter(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
        .collect();
    if set.is_empty() {
        return Ok(());
    }
    Err(Failure::own(format!(
        "{} set in the environment: `sweep` and `minimize` take the policy, seeds, platform and \
         logs from their flags only (--policy/--profile, --seeds, --platform, --out); unset {}",
        set.join(", "),
        if set.len() == 1 { "it" } else { "them" }
    )))
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

/// A fresh log path, unique per process and time, in `$TMPDIR/chaos-logs/` (created 0700), so
/// logs collect in one place and `rm -rf "${TMPDIR:-/tmp}/chaos-logs"` clears them. When that
/// directory cannot be used (it is a symlink, another user's, or cannot be created), `$TMPDIR`.
pub fn default_log_path() -> PathBuf {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let name = format!("chaos-{ms}-{}.jsonl", std::process::id());
    let tmp = std::env::temp_dir();
    match log_dir(&tmp) {
        Some(dir) => dir.join(name),
        None => tmp.join(name),
    }
}

/// The name of the directory under `$TMPDIR` that holds the default logs.
pub const LOG_DIR_NAME: &str = "chaos-logs";

/// `TMP/chaos-logs`, created 0700 if missing; `None` unless it is a real directory of ours.
fn log_dir(tmp: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let dir = tmp.join(LOG_DIR_NAME);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    // SAFETY: getuid cannot fail.
    let ours = meta.uid() == unsafe { libc::getuid() };
    (meta.file_type().is_dir() && ours).then_some(dir)
}

/// Creates (or empties) the log, 0600. It must be a regular file or not exist yet: a device
/// (`/dev/null`, `/dev/full`), a FIFO, a directory or a symlink is refused before anything runs.
pub fn create_log(path: &Path) -> Result<(), Failure> {
    let refuse = |why: &str| {
        Failure::own(format!(
            "cannot use {} as the event log: {why}; give a regular file or a path that does not \
             exist yet",
            path.display()
        ))
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        let kind = meta.file_type();
        if kind.is_symlink() {
            return Err(Failure::own(format!(
                "refusing to write the event log {} through a symlink",
                path.display()
            )));
        }
        if !kind.is_file() {
            return Err(refuse(&format!("it is {}", file_kind(&kind))));
        }
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            Failure::own(format!(
                "cannot create the event log {}: {e}",
                path.display()
            ))
        })?;
    // Replaced between the check and the open: check what was opened.
    match file.metadata() {
        Ok(meta) if meta.file_type().is_file() => Ok(()),
        Ok(meta) => Err(refuse(&format!("it is {}", file_kind(&meta.file_type())))),
        Err(e) => Err(refuse(&e.to_string())),
    }
}

fn file_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

/// The preflight for unattended runs (`sweep`, `minimize`): any refusal is an error, since a run
/// the shim cannot reach would pass without chaos. CHAOS_* variables are refused too.
pub fn preflight(program: &OsString, backend: Backend) -> Result<(), Failure> {
    refuse_shim_env()?;
    let path = crate::preflight::resolve_command(program)?;
    match crate::preflight::choose(&path, backend)
        .1
        .into_iter()
        .next()
    {
        Some(refusal) => Err(Failure::own(refusal.0)),
        None => Ok(()),
    }
}

/// Whether a run's log shows that the program loaded the shim.
pub fn intercepted(log: &Path) -> bool {
    crate::log::Log::read(log).is_ok_and(|l| l.starts().next().is_some())
}

/// A duration argument such as `30s` or `2m`.
pub fn duration_arg(text: &str, flag: &str) -> Result<std::time::Duration, Failure> {
    chaos_engine::parse::units::parse_duration(text)
        .map(std::time::Duration::from_nanos)
        .map_err(|e| Failure::own(format!("{flag}: {e}")))
}
