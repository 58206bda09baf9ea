//! Where a run's policy comes from (a file or a built-in profile), and the `validate` and
//! `profiles` commands.

use crate::cli::PolicyArgs;
use crate::failure::{self, Failure};
use chaos_engine::notes;
use chaos_engine::parse::parse_policy;
use chaos_engine::policy::Policy;
use chaos_engine::profiles::{self, PROFILES};
use std::path::{Path, PathBuf};

/// A policy as chaos-ctl hands it to the shim.
pub enum PolicySource {
    File(PathBuf),
    Profile(String),
}

impl PolicySource {
    /// What `--policy`/`--profile` ask for; a file path is made absolute (the program may chdir).
    pub fn from_args(args: &PolicyArgs) -> Result<PolicySource, Failure> {
        Ok(match (&args.policy, &args.profile) {
            (Some(path), _) => PolicySource::File(crate::launch::absolute(path)?),
            (None, Some(name)) => PolicySource::Profile(name.clone()),
            (None, None) => PolicySource::Profile(profiles::DEFAULT_PROFILE.to_string()),
        })
    }

    /// Loads and validates it, so a bad policy fails before the program starts.
    pub fn load(&self) -> Result<Policy, Failure> {
        match self {
            PolicySource::File(path) => load_file(path),
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

fn load_file(path: &Path) -> Result<Policy, Failure> {
    let text = read_text(path)?;
    parse_policy(&text, &path.display().to_string()).map_err(|e| Failure::own(e.to_string()))
}

/// Prints a valid policy's rules on stdout and its notes (`chaos_engine::notes`) on stderr, or its
/// error on stderr.
pub fn validate(path: &Path) -> Result<u8, Failure> {
    let text = read_text(path)?;
    match parse_policy(&text, &path.display().to_string()) {
        Ok(policy) => {
            println!(
                "{}: ok, {} rule(s), seed {}",
                path.display(),
                policy.rules.len(),
                policy.seed
            );
            for rule in &policy.rules {
                let ops: Vec<&str> = rule.ops.iter().map(|o| o.name()).collect();
                println!(
                    "  {:<24} {:<10} p={:<6} on {}",
                    rule.name,
                    rule.fault.kind_name(),
                    rule.probability,
                    ops.join(",")
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
