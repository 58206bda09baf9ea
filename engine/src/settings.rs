//! A run's settings as both backends take them from the CHAOS_* variables: the policy (a file or a
//! built-in profile, scoped to the process of a system), the seed, the quirks, the stop signal, and
//! the process key that follows. The engine reads no environment and no file itself: the preload
//! shim passes its own getenv at init, the seccomp supervisor the variables it launched with.

use crate::parse::{self, PolicyError};
use crate::policy::Policy;
use crate::process_key;
use crate::profiles;
use crate::quirk::{self, QuirkSet};
use std::fmt;

/// What the CHAOS_* variables say.
pub struct Settings {
    /// The policy, narrowed to this process's rules (`Policy::scope_to_process`).
    pub policy: Policy,
    /// CHAOS_SEED, else the policy's.
    pub seed: u64,
    /// In a system: the process's name (`kv#1`, CHAOS_PROCESS) and start count (CHAOS_LIFE).
    pub process: Option<String>,
    pub life: u32,
    /// The policy's quirks plus CHAOS_PLATFORM and CHAOS_QUIRKS, minus CHAOS_NO_QUIRKS.
    pub quirks: QuirkSet,
    /// What `terminate` sends (CHAOS_STOP_SIGNAL, else SIGTERM).
    pub stop_signal: i32,
    /// CHAOS_LOG and CHAOS_CONTROL, as given.
    pub log: Option<String>,
    pub control: Option<String>,
}

/// Why the settings cannot be used: the policy's own error (it names its file, line and column),
/// or a variable's.
#[derive(Debug)]
pub enum SettingsError {
    Policy(PolicyError),
    Variable(String),
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            SettingsError::Policy(e) => write!(f, "{e}"),
            SettingsError::Variable(m) => f.write_str(m),
        }
    }
}

impl Settings {
    /// Reads the settings through `var` (a variable's value; None, or empty, when unset) and
    /// `read` (a file's text).
    pub fn load(
        var: impl Fn(&str) -> Option<String>,
        read: impl Fn(&str) -> std::io::Result<String>,
    ) -> Result<Settings, SettingsError> {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let bad = SettingsError::Variable;
        let mut policy = match var("CHAOS_POLICY") {
            Some(path) => {
                let text = read(&path)
                    .map_err(|e| bad(format!("cannot read policy {path} (CHAOS_POLICY): {e}")))?;
                // chaos-ctl hands over a private copy of what it validated and names the original.
                let origin = var("CHAOS_POLICY_ORIGIN").unwrap_or(path);
                parse::parse_policy(&text, &origin).map_err(SettingsError::Policy)?
            }
            None => {
                let name = var("CHAOS_PROFILE").unwrap_or_else(|| profiles::DEFAULT_PROFILE.into());
                profiles::load_profile(&name)
                    .map_err(|e| bad(format!("CHAOS_PROFILE: {}", e.message)))?
            }
        };
        let process = var("CHAOS_PROCESS");
        let life = match var("CHAOS_LIFE") {
            Some(s) => s
                .parse()
                .map_err(|_| bad(format!("CHAOS_LIFE must be an unsigned integer, got `{s}`")))?,
            None => 0,
        };
        policy.scope_to_process(process.as_deref(), life);
        let seed = match var("CHAOS_SEED") {
            Some(s) => s
                .parse()
                .map_err(|_| bad(format!("CHAOS_SEED must be an unsigned integer, got `{s}`")))?,
            None => policy.seed,
        };
        let quirks = quirks(policy.quirks, &var)?;
        let stop_signal = match var("CHAOS_STOP_SIGNAL") {
            Some(s) => crate::signal::parse_signal(&s)
                .map_err(|e| bad(format!("CHAOS_STOP_SIGNAL: {e}")))?,
            None => libc::SIGTERM,
        };
        Ok(Settings {
            policy,
            seed,
            process,
            life,
            quirks,
            stop_signal,
            log: var("CHAOS_LOG"),
            control: var("CHAOS_CONTROL"),
        })
    }

    /// The key of a process running `exe` with `cmdline` (NUL-separated): its program's, or in
    /// a system its process's; `lineage` is the key a system's descendant left for the program
    /// it exec'd (the shim finds it in the control page).
    pub fn process_key(&self, exe: &str, cmdline: &[u8], lineage: Option<u64>) -> u64 {
        let system = self.process.as_deref().map(|name| (name, self.life));
        process_key::at_start(system, exe, cmdline, lineage)
    }
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `policy`'s quirks plus CHAOS_PLATFORM and CHAOS_QUIRKS, minus CHAOS_NO_QUIRKS (comma lists).
fn quirks(
    policy: QuirkSet,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<QuirkSet, SettingsError> {
    let list = |name: &str| -> Vec<String> {
        var(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect()
    };
    let (add, remove) = (list("CHAOS_QUIRKS"), list("CHAOS_NO_QUIRKS"));
    let from_env = quirk::resolve(var("CHAOS_PLATFORM").as_deref(), &refs(&add), &[])
        .map_err(|e| SettingsError::Variable(format!("CHAOS_PLATFORM/CHAOS_QUIRKS: {e}")))?;
    let without = quirk::resolve(None, &refs(&remove), &[])
        .map_err(|e| SettingsError::Variable(format!("CHAOS_NO_QUIRKS: {e}")))?;
    Ok(QuirkSet((policy.0 | from_env.0) & !without.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)], files: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let files: HashMap<String, String> = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load(
            |name| vars.get(name).cloned(),
            |path| {
                files.get(path).cloned().ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "No such file")
                })
            },
        )
    }

    const POLICY: &str = "seed = 5\n[[rules]]\non = [\"connect\"]\nfault = \"ECONNREFUSED\"\n\
        [[rules]]\non = [\"connect\"]\nprocess = \"kv#*\"\nfault = \"ETIMEDOUT\"\n";

    #[test]
    fn nothing_set_is_the_default_profile_with_its_seed() {
        let s = load(&[], &[]).unwrap();
        let default = profiles::load_profile(profiles::DEFAULT_PROFILE).unwrap();
        assert_eq!(s.policy.rules.len(), default.rules.len());
        assert_eq!(s.seed, default.seed);
        assert_eq!(s.stop_signal, libc::SIGTERM);
        assert!(s.process.is_none() && s.log.is_none() && s.control.is_none());
    }

    #[test]
    fn a_policy_file_its_seed_override_and_a_systems_scope() {
        let s = load(&[("CHAOS_POLICY", "/p.toml")], &[("/p.toml", POLICY)]).unwrap();
        assert_eq!(s.seed, 5);
        assert!(
            s.policy.rules[1].ops.is_empty(),
            "a system's rule is scoped away"
        );
        let s = load(
            &[
                ("CHAOS_POLICY", "/p.toml"),
                ("CHAOS_SEED", "9"),
                ("CHAOS_PROCESS", "kv#1"),
                ("CHAOS_LIFE", "2"),
                ("CHAOS_STOP_SIGNAL", "SIGINT"),
                ("CHAOS_LOG", "/run.jsonl"),
            ],
            &[("/p.toml", POLICY)],
        )
        .unwrap();
        assert_eq!((s.seed, s.life, s.stop_signal), (9, 2, libc::SIGINT));
        assert_eq!(s.process.as_deref(), Some("kv#1"));
        assert!(!s.policy.rules[1].ops.is_empty());
        assert_eq!(s.log.as_deref(), Some("/run.jsonl"));
    }

    #[test]
    fn the_process_key_follows_the_program_the_system_and_the_lineage() {
        let plain = load(&[], &[]).unwrap();
        assert_eq!(
            plain.process_key("/bin/x", b"x\0a\0", Some(3)),
            process_key::of_program("/bin/x", b"x\0a\0")
        );
        let sys = load(&[("CHAOS_PROCESS", "kv#1"), ("CHAOS_LIFE", "1")], &[]).unwrap();
        assert_eq!(
            sys.process_key("/bin/x", b"x\0", None),
            process_key::of_system_process("/bin/x", "kv#1", 1)
        );
        assert_eq!(
            sys.process_key("/bin/x", b"x\0", Some(3)),
            process_key::of_exec(3, "/bin/x")
        );
    }

    #[test]
    fn bad_values_say_which_variable_and_what_was_expected() {
        let message = |vars: &[(&str, &str)]| match load(vars, &[]) {
            Err(SettingsError::Variable(m)) => m,
            other => panic!("expected a variable's error, got {:?}", other.map(|_| ())),
        };
        assert_eq!(
            message(&[("CHAOS_SEED", "x")]),
            "CHAOS_SEED must be an unsigned integer, got `x`"
        );
        assert_eq!(
            message(&[("CHAOS_LIFE", "-1")]),
            "CHAOS_LIFE must be an unsigned integer, got `-1`"
        );
        assert!(
            message(&[("CHAOS_POLICY", "/none.toml")])
                .starts_with("cannot read policy /none.toml (CHAOS_POLICY): No such file")
        );
        assert!(message(&[("CHAOS_PROFILE", "nope")]).starts_with("CHAOS_PROFILE: "));
        assert!(message(&[("CHAOS_QUIRKS", "nope")]).starts_with("CHAOS_PLATFORM/CHAOS_QUIRKS: "));
        assert!(message(&[("CHAOS_STOP_SIGNAL", "SIGNOPE")]).starts_with("CHAOS_STOP_SIGNAL: "));
        match load(
            &[("CHAOS_POLICY", "/bad.toml")],
            &[("/bad.toml", "seed = \"x\"")],
        ) {
            Err(SettingsError::Policy(e)) => assert!(e.to_string().contains("/bad.toml")),
            other => panic!("expected the policy's error, got {:?}", other.map(|_| ())),
        }
    }
}
