//! Where a run's policy comes from (a file or a built-in profile), and the `validate` and
//! `profiles` commands.

use crate::cli::PolicyArgs;
use crate::failure::{self, Failure};
use chaos_engine::notes;
use chaos_engine::parse::parse_policy;
use chaos_engine::policy::Policy;
use chaos_engine::profiles::{self, PROFILES};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A policy as chaos-ctl hands it to the shim.
pub enum PolicySource {
    File(PathBuf),
    Profile(String),
}

impl PolicySource {
    /// What `--policy`/`--profile` ask for; a file path is made absolute (the program may chdir).
    pub fn from_args(args: &PolicyArgs) -> Result<PolicySource, Failure> {
        Ok(match (&args.policy, &args.profile) {
            (Some(path), _) => PolicySource::File(crate::paths::absolute(path)?),
            (None, Some(name)) => PolicySource::Profile(name.clone()),
            (None, None) => PolicySource::Profile(profiles::DEFAULT_PROFILE.to_string()),
        })
    }

    /// Loads and validates it, so a bad policy fails before the program starts.
    /// A file is read once, here, and the shim is handed exactly these bytes (see `staged`):
    /// `/dev/stdin` or `<(…)` cannot be read a second time.
    pub fn load(&self) -> Result<Policy, Failure> {
        match self {
            PolicySource::File(path) => {
                let text = read_text(path)?;
                let policy = parse_policy(&text, &path.display().to_string())
                    .map_err(|e| Failure::own(e.to_string()))?;
                stage(path, &text)?;
                Ok(policy)
            }
            PolicySource::Profile(name) => {
                profiles::load_profile(name).map_err(|e| Failure::own(e.message))
            }
        }
    }
}

fn read_text(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::own(format!("cannot read policy {}: {e}", path.display())))
}

/// Private copies of the policies `load` validated: (the path the user gave, the copy).
static STAGED: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());
/// This process's directory for them (0700), removed at exit.
static STAGE_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

fn stage_dir() -> Result<PathBuf, Failure> {
    let mut dir = STAGE_DIR.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = &*dir {
        return Ok(d.clone());
    }
    use std::os::unix::fs::DirBuilderExt;
    remove_orphaned_stage_dirs();
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut last = None;
    for n in 0..100 {
        let d = std::env::temp_dir().join(format!("chaos-ctl-{}-{ns}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&d) {
            Ok(()) => {
                // SAFETY: an `extern "C"` function that lives as long as the process.
                unsafe { libc::atexit(remove_staged_at_exit) };
                *dir = Some(d.clone());
                return Ok(d);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Failure::own(format!(
        "cannot create a private directory in {}: {}",
        std::env::temp_dir().display(),
        last.map_or_else(String::new, |e| e.to_string())
    )))
}

/// The directories of chaos-ctl processes that were killed (SIGKILL skips the exit-time cleanup):
/// `chaos-ctl-PID-…` whose PID is gone.
fn remove_orphaned_stage_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("chaos-ctl-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0 && sys_errno() == libc::ESRCH;
        let ours = entry.metadata().is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            // SAFETY: getuid cannot fail and touches no memory.
            m.is_dir() && m.uid() == unsafe { libc::getuid() }
        });
        if gone && ours {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn sys_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Writes `text` to a private 0600 file and remembers it as what the shim reads for `path`.
fn stage(path: &Path, text: &str) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = stage_dir()?;
    let mut staged = STAGED.lock().unwrap_or_else(|e| e.into_inner());
    let copy = dir.join(format!("policy-{}.toml", staged.len()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&copy)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Failure::own(format!("cannot write {}: {e}", copy.display())))?;
    staged.retain(|(p, _)| p != path);
    staged.push((path.to_path_buf(), copy));
    Ok(())
}

/// The file the shim should read for the policy file `path`: the private copy `load` made of the
/// bytes it validated, or `path` itself for a file chaos-ctl wrote and never loaded (`minimize`'s
/// candidates).
pub fn staged(path: &Path) -> Option<PathBuf> {
    let staged = STAGED.lock().unwrap_or_else(|e| e.into_inner());
    staged
        .iter()
        .find(|(p, _)| p == path)
        .map(|(_, c)| c.clone())
}

/// Lets other users read the private copies (a `[[process]]` with `user` runs as one): the
/// directory becomes traversable and the copies readable, still writable by chaos-ctl only.
pub fn share_staged_read_only() -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let set = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Failure::own(format!("cannot make {} readable: {e}", p.display())))
    };
    if let Some(d) = &*STAGE_DIR.lock().unwrap_or_else(|e| e.into_inner()) {
        set(d, 0o711)?;
    }
    for (_, copy) in STAGED.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        set(copy, 0o644)?;
    }
    Ok(())
}

/// Removes the private copies (also done at exit; call it before ending the process otherwise).
pub fn remove_staged() {
    STAGED.lock().unwrap_or_else(|e| e.into_inner()).clear();
    if let Some(dir) = STAGE_DIR.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

extern "C" fn remove_staged_at_exit() {
    remove_staged();
}

/// Prints a valid policy's rules on stdout and its notes (`chaos_engine::notes`) on stderr, or its
/// error on stderr.
/// `-` reads the policy from stdin.
pub fn validate(path: &Path) -> Result<u8, Failure> {
    let (text, origin) = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
            .map_err(|e| Failure::own(format!("cannot read the policy from stdin: {e}")))?;
        (text, "stdin".to_string())
    } else {
        (read_text(path)?, path.display().to_string())
    };
    match parse_policy(&text, &origin) {
        Ok(policy) => {
            println!(
                "{origin}: ok, {}",
                chaos_engine::notes::policy_summary(&policy)
            );
            for rule in &policy.rules {
                let ops: Vec<&str> = rule.ops.iter().map(|o| o.name()).collect();
                println!(
                    "  {:<24} {:<10} p={:<6} on {}{}",
                    rule.name,
                    rule.fault.kind_name(),
                    rule.probability,
                    ops.join(","),
                    if rule.enabled {
                        ""
                    } else {
                        " (off at start: `chaos-ctl control enable` switches it on)"
                    }
                );
            }
            let lines = notes::fault_lines(&text);
            for note in notes::policy_notes(&policy) {
                let line = lines.get(note.rule).copied().flatten();
                eprintln!("{}", note.render(&policy, line));
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(failure::INVALID_POLICY)
        }
    }
}

pub fn list_profiles() -> Result<(), Failure> {
    for p in PROFILES {
        let default = if p.name == profiles::DEFAULT_PROFILE {
            " (default)"
        } else {
            ""
        };
        println!("{:<8} {}{default}", p.name, p.summary);
    }
    Ok(())
}

pub fn show_profile(name: &str) -> Result<(), Failure> {
    let p = profiles::find(name).ok_or_else(|| {
        Failure::own(format!(
            "unknown profile `{name}`; expected one of {}",
            profiles::profile_names()
        ))
    })?;
    print!("{}", p.text);
    Ok(())
}
