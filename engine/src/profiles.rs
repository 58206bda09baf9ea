//! Built-in profiles: policies embedded in the binary, selectable by name.

use crate::parse::{PolicyError, parse_policy};
use crate::policy::Policy;

pub struct Profile {
    pub name: &'static str,
    pub summary: &'static str,
    pub text: &'static str,
}

pub const DEFAULT_PROFILE: &str = "benign";

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "benign",
        summary: "short reads/writes, EINTR, EAGAIN stalls, small delays on sockets and pipes: a correct program passes",
        text: include_str!("profiles/benign.toml"),
    },
    Profile {
        name: "network",
        summary: "TCP resets, refused and timed-out connects, latency: a flaky network",
        text: include_str!("profiles/network.toml"),
    },
    Profile {
        name: "none",
        summary: "no rules: the shim is loaded and logs processes but injects nothing",
        text: "# none: intercept and log, inject nothing\n",
    },
];

pub fn find(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

pub fn profile_names() -> String {
    PROFILES
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn load_profile(name: &str) -> Result<Policy, PolicyError> {
    let profile = find(name).ok_or_else(|| PolicyError {
        origin: format!("profile:{name}"),
        line: 0,
        col: 0,
        message: format!(
            "unknown profile `{name}`; expected one of {}",
            profile_names()
        ),
    })?;
    parse_policy(profile.text, &format!("profile:{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_parses() {
        for p in PROFILES {
            load_profile(p.name).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(load_profile("nope").unwrap_err().message.contains("benign"));
    }
}
