//! The environment variables chaos reads, in one place: the shim's (which chaos-ctl sets, and
//! honours or refuses when a user sets them around it) and the ones only the tools read.

/// What the shim reads. chaos-ctl sets these for the program it runs.
pub const SHIM_VARS: [&str; 14] = [
    "CHAOS_POLICY",
    "CHAOS_POLICY_ORIGIN",
    "CHAOS_PROFILE",
    "CHAOS_SEED",
    "CHAOS_LOG",
    "CHAOS_PLATFORM",
    "CHAOS_QUIRKS",
    "CHAOS_NO_QUIRKS",
    // In a system of processes (`[[process]]`): which one this is, its start count, the
    // supervising chaos-ctl (which continues a paused process) and the stop signal.
    "CHAOS_PROCESS",
    "CHAOS_LIFE",
    "CHAOS_SUPERVISOR",
    "CHAOS_STOP_SIGNAL",
    // `chaos-ctl explore`: log every fault point the first time it is reached (the Nth time).
    "CHAOS_CENSUS",
    "CHAOS_CENSUS_NTH",
];

/// What chaos-ctl tells the processes and the workload of a system, for them and not the shim:
/// the run's directory, and `CHAOS_ADDRS_<NAME>` per process.
pub const SYSTEM_VARS: [&str; 1] = ["CHAOS_RUN"];
pub const ADDRS_PREFIX: &str = "CHAOS_ADDRS_";

/// A run's control page (read by the shim and by `chaos-ctl control`) and its HTTP endpoint, set
/// by chaos-ctl for every process of a run, and the Toxiproxy API's URL beside it
/// (`--toxiproxy-addr`, read by the seccomp supervisor); a run started inside another gets its
/// own.
pub const CONTROL_VARS: [&str; 3] = ["CHAOS_CONTROL", "CHAOS_CONTROL_URL", TOXIPROXY_URL];

/// Set with `chaos-ctl run --toxiproxy-addr`: the API's URL.
pub const TOXIPROXY_URL: &str = "CHAOS_TOXIPROXY_URL";

/// Read by chaos-ctl (CHAOS_SHIM; CHAOS_DEBUG, for the seccomp supervisor's notification counts)
/// and the test suite (CHAOS_TEST_BIN_DIR), not by the shim.
pub const TOOL_VARS: [&str; 3] = ["CHAOS_SHIM", "CHAOS_DEBUG", "CHAOS_TEST_BIN_DIR"];

/// Whether `name` is a variable some part of chaos reads.
pub fn is_known(name: &str) -> bool {
    SHIM_VARS.contains(&name)
        || TOOL_VARS.contains(&name)
        || SYSTEM_VARS.contains(&name)
        || CONTROL_VARS.contains(&name)
        || name.starts_with(ADDRS_PREFIX)
}

/// The shim variable a misspelt name most likely meant (at most 3 edits away).
pub fn nearest(name: &str) -> Option<&'static str> {
    SHIM_VARS
        .iter()
        .copied()
        .min_by_key(|known| distance(name, known))
        .filter(|known| distance(name, known) <= 3)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_name_is_a_chaos_variable() {
        for v in super::SHIM_VARS.iter().chain(&super::TOOL_VARS) {
            assert!(v.starts_with("CHAOS_") && super::is_known(v));
        }
        assert!(!super::is_known("CHAOS_POLCY"));
        assert_eq!(super::nearest("CHAOS_POLCY"), Some("CHAOS_POLICY"));
        assert_eq!(super::nearest("CHAOS_NOTHING_LIKE_IT"), None);
    }
}
