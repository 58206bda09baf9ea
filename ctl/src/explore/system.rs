//! Exploring a system of processes (`[[process]]`): every run is a `chaos-ctl run` of the system
//! with the workload, and its outcome is the workload's as `run` reports it, unless a process of
//! the system crashed: a server that dies of its own error path while the workload retries
//! against its restart (and passes) has still crashed.

use crate::log::Log;
use chaos_engine::policy::Policy;
use std::ffi::OsString;

/// What explore needs to know of the system.
pub struct System {
    /// Each process's program, for the preflight.
    pub programs: Vec<OsString>,
    /// The signals chaos-ctl itself ends processes with when the run is over (each process's
    /// stop signal, and SIGKILL after the grace): a death by one of them is no crash.
    stop_signals: Vec<String>,
}

impl System {
    /// The system `policy` declares, if it declares one.
    pub fn of(policy: &Policy) -> Option<System> {
        let specs = &policy.system.processes;
        if specs.is_empty() {
            return None;
        }
        let mut stop_signals: Vec<String> = specs
            .iter()
            .map(|s| chaos_engine::signal::signal_name(s.stop_signal))
            .collect();
        stop_signals.push(chaos_engine::signal::signal_name(libc::SIGKILL));
        Some(System {
            programs: specs.iter().map(|s| OsString::from(&s.cmd[0])).collect(),
            stop_signals,
        })
    }

    /// The first process of the system the run's log shows killed by a signal of its own (not
    /// by a kill the schedule or a process fault asked for, not by the end of the run):
    /// `srv#0 killed by SIGSEGV`.
    pub fn crashed(&self, log: &Log) -> Option<String> {
        log.process_events()
            .filter(|e| e.what == "exit" && e.kind.is_none() && e.name != "workload")
            .find_map(|e| {
                let sig = e.signal.as_ref()?;
                (!self.stop_signals.contains(sig)).then(|| format!("{} killed by {sig}", e.name))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "[[process]]\nname = \"srv\"\ncmd = [\"srv\", \"{port}\"]\nreplicas = 2\n";

    fn exit(name: &str, signal: &str, kind: Option<&str>) -> String {
        let kind = kind.map_or(String::new(), |k| format!(r#","kind":"{k}""#));
        format!(
            r#"{{"ev":"process","ts_ns":1,"t_ns":1,"name":"{name}","what":"exit","pid":9,"life":0,"signal":"{signal}"{kind}}}"#
        )
    }

    #[test]
    fn a_process_that_died_of_its_own_signal_crashed_and_one_stopped_at_the_end_did_not() {
        let policy = chaos_engine::parse::parse_policy(POLICY, "t").unwrap();
        let sys = System::of(&policy).unwrap();
        assert_eq!(sys.programs, [OsString::from("srv")]);
        let log = |lines: &[String]| Log::parse(&lines.join("\n"));
        let ended = log(&[
            exit("srv#0", "SIGTERM", None),
            exit("srv#1", "SIGKILL", None),
        ]);
        assert_eq!(sys.crashed(&ended), None);
        let killed = log(&[exit("srv#1", "SIGKILL", Some("crash"))]);
        assert_eq!(sys.crashed(&killed), None, "the schedule's kill");
        let crashed = log(&[
            exit("srv#0", "SIGTERM", None),
            exit("srv#1", "SIGSEGV", None),
        ]);
        assert_eq!(
            sys.crashed(&crashed).as_deref(),
            Some("srv#1 killed by SIGSEGV")
        );
        assert!(
            System::of(&chaos_engine::parse::parse_policy("seed = 1\n", "t").unwrap()).is_none()
        );
    }
}
