//! A process's key: what every decision key of the process shares, so that it must be the same
//! in every run and distinct for every process of a run. Never a pid. The preload shim and the
//! seccomp supervisor both take it from here.

use crate::hash::fnv1a;
use crate::hash::mix;

/// The key of a process at its start, running `exe` with `cmdline` (NUL-separated): its
/// program's, or in a system (`system`: its name and life) its process's; `lineage` is the key a
/// system's descendant left for the program it exec'd. Both backends take it from here.
pub fn at_start(
    system: Option<(&str, u32)>,
    exe: &str,
    cmdline: &[u8],
    lineage: Option<u64>,
) -> u64 {
    match (system, lineage) {
        (Some(_), Some(lineage)) => of_exec(lineage, exe),
        (Some((name, life)), None) => of_system_process(exe, name, life),
        (None, _) => of_program(exe, cmdline),
    }
}

/// A program started outside a system: its executable and command line.
pub fn of_program(exe: &str, cmdline: &[u8]) -> u64 {
    mix(&[fnv1a(exe.as_bytes()), fnv1a(cmdline)])
}

/// A process chaos-ctl starts as part of a system (a replica, the workload): its executable,
/// name and life, not its command line, which holds what changes from run to run (the run's
/// directory, ports chosen free). A frozen policy's keys are reached again by the same replica
/// in the same life.
pub fn of_system_process(exe: &str, name: &str, life: u32) -> u64 {
    mix(&[
        fnv1a(exe.as_bytes()),
        fnv1a(name.as_bytes()),
        u64::from(life),
    ])
}

/// A child forked by a process with key `parent`: its `ordinal`-th fork (vfork included).
pub fn of_fork(parent: u64, ordinal: u64) -> u64 {
    mix(&[parent, ordinal])
}

/// A program exec'd by a descendant of a system's process whose key was `lineage` (a forked
/// child, or a program such a child exec'd): the lineage and the new executable. Not the command
/// line, which in a system holds per-run ports and paths.
pub fn of_exec(lineage: u64, exe: &str) -> u64 {
    mix(&[lineage, fnv1a(exe.as_bytes()), 0x65786563]) // "exec": never a fork's mix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_children_of_one_shell_running_one_program_get_distinct_keys() {
        let shell = of_system_process("/usr/bin/dash", "workload", 0);
        let keys: std::collections::BTreeSet<u64> = (1..=20)
            .map(|n| of_exec(of_fork(shell, n), "/usr/bin/curl"))
            .collect();
        assert_eq!(keys.len(), 20);
        assert!(!keys.contains(&of_system_process("/usr/bin/curl", "workload", 0)));
    }

    #[test]
    fn an_exec_differs_from_a_fork_of_the_same_numbers() {
        let k = of_exec(7, "/bin/true");
        assert_ne!(k, of_fork(7, crate::hash::fnv1a(b"/bin/true")));
    }
}
