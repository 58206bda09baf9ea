//! One explore run: CMD under a policy with the census on, its outcome, and what it found. A run's
//! result is kept in `--out` as JSON, so a second explore with the same `--out` skips it.

use super::points::{self, Point};
use super::system::System;
use crate::failure::Failure;
use crate::launch::{self, Launch};
use crate::log::Log;
use crate::policy_source::PolicySource;
use crate::preflight::Backend;
use crate::trial::{self, Outcome};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a run came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    /// Exited nonzero.
    Fail,
    /// Killed by a signal.
    Crash,
    /// Ran past --timeout.
    Hang,
    /// The realism model refused the fault at that place (or the place was not reached): the
    /// program's outcome says nothing about the fault.
    NotPossibleHere,
    /// Killed because explore was interrupted.
    Interrupted,
}

impl Verdict {
    pub fn failed(&self) -> bool {
        matches!(self, Verdict::Fail | Verdict::Crash | Verdict::Hang)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Crash => "crash",
            Verdict::Hang => "hang",
            Verdict::NotPossibleHere => "not possible here",
            Verdict::Interrupted => "interrupted",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    /// The point's id and the fault tried there ("" and "" for the discovery run).
    pub point: String,
    pub fault: String,
    pub verdict: Verdict,
    /// `exit 1`, `killed by SIGSEGV`, `timed out`, `passed`.
    pub outcome: String,
    pub seconds: f64,
    /// The last lines of the program's output.
    pub tail: String,
    /// Every point the run's census logged (the frontier takes the new ones).
    pub points: Vec<Point>,
    /// The run's policy and log, in --out.
    pub policy: PathBuf,
    pub log: PathBuf,
}

/// What every run of one explore shares.
pub struct Setup<'a> {
    /// The program, or a system's workload (empty: the system runs until its processes end).
    pub cmd: &'a [OsString],
    /// The system of processes the policy declares, if it does: each run is then `chaos-ctl run`
    /// of it.
    pub system: Option<&'a System>,
    pub shim: &'a Path,
    pub out: &'a Path,
    pub base: &'a str,
    pub timeout: Duration,
    pub backend: Backend,
    /// Which reach of a point its fault is put on (`--nth`, 1: the first).
    pub nth: u32,
}

impl Setup<'_> {
    /// What is explored, for messages: the program, or the system.
    pub fn what(&self) -> String {
        match (self.cmd.first(), self.system) {
            (Some(cmd), None) => cmd.to_string_lossy().into_owned(),
            (Some(cmd), Some(_)) => format!("the system with workload {}", cmd.to_string_lossy()),
            (None, _) => "the system".to_string(),
        }
    }
}

/// A stable name for the run of `fault` at the `nth` reach of `point`: the same in every
/// explore, so `--out` can be resumed (and an explore with another `--nth` makes its own runs).
pub fn run_name(point: &str, fault: &str, nth: u32) -> String {
    let text = match nth {
        1 => format!("{point}\n{fault}"),
        n => format!("{point}\n{fault}\n{n}"),
    };
    format!("{:016x}", chaos_engine::policy::fnv1a(text.as_bytes()))
}

/// The discovery run's name: its census logs the keys of the `nth` reaches.
pub fn discovery_name(nth: u32) -> String {
    match nth {
        1 => "discover".to_string(),
        n => format!("discover-{n}"),
    }
}

/// Runs CMD with `policy` (the census on), or returns the result an earlier explore kept for the
/// same `name`.
pub fn run(
    setup: &Setup,
    name: &str,
    target: Option<(&Point, &str)>,
) -> Result<RunResult, Failure> {
    let dir = setup.out.join("runs");
    let saved = dir.join(format!("{name}.json"));
    if let Ok(text) = std::fs::read_to_string(&saved)
        && let Ok(r) = serde_json::from_str::<RunResult>(&text)
        && r.verdict != Verdict::Interrupted
    {
        return Ok(r);
    }
    let cannot =
        |e: std::io::Error| Failure::own(format!("cannot write to {}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(cannot)?;
    let policy = dir.join(format!("{name}.toml"));
    let text = match target {
        Some((point, fault)) => points::policy_with(setup.base, point, fault),
        None => setup.base.to_string(),
    };
    std::fs::write(&policy, &text).map_err(cannot)?;
    let log = dir.join(format!("{name}.jsonl"));
    let output = dir.join(format!("{name}.out"));
    let (outcome, seconds) = run_policy(setup, &policy, &log, &output, true)?;
    let events = read_log(&log);
    if events.starts().next().is_none() && outcome != Outcome::Interrupted {
        return Err(Failure::own(format!(
            "{} was not intercepted (no `start` event in {}): neither the shim nor the seccomp \
             backend reached it",
            setup.what(),
            log.display()
        )));
    }
    let fired = target.is_none_or(|(p, _)| points::fired(&events, p));
    let (verdict, described) = judge(setup, &outcome, &events);
    let verdict = match (&outcome, fired) {
        (Outcome::Interrupted, _) => Verdict::Interrupted,
        (_, false) => Verdict::NotPossibleHere,
        (_, true) => verdict,
    };
    let result = RunResult {
        point: target.map(|(p, _)| p.id.clone()).unwrap_or_default(),
        fault: target.map(|(_, f)| f.to_string()).unwrap_or_default(),
        verdict,
        outcome: described,
        seconds,
        tail: crate::sweep::tail(&output, 20),
        points: points::points_of(&events, &output, &log.with_extension("run"))
            .into_iter()
            // What a program writes to its output after a fault (an error message, a
            // traceback) differs with the fault: an interpreter's writes there, named by their
            // offset in the output, would be new points in every run. The discovery run's are
            // explored; a fault run's are not taken.
            .filter(|p| target.is_none() || !p.id.contains(points::OUTPUT))
            .collect(),
        policy,
        log,
    };
    if setup.system.is_some() && !result.verdict.failed() {
        // A system run's directory (data, each process's output) is kept as evidence of a
        // failure only: hundreds of passing runs would fill `--out`.
        crate::system::remove_run_dir(&result.log);
    }
    if result.verdict != Verdict::Interrupted {
        let json = serde_json::to_string(&result).expect("serialisable");
        std::fs::write(&saved, json).map_err(cannot)?;
    }
    Ok(result)
}

/// A run's log, or none (a run killed before its first line).
pub fn read_log(log: &Path) -> Log {
    Log::read(log).unwrap_or(Log {
        events: Vec::new(),
        bad_lines: 0,
    })
}

/// What a run came to and how to say it: the program's (or the workload's) outcome, or in a
/// system whose workload ended by itself the crash of one of its processes.
pub fn judge(setup: &Setup, outcome: &Outcome, log: &Log) -> (Verdict, String) {
    if let Some(system) = setup.system
        && matches!(outcome, Outcome::Passed | Outcome::Exited(_))
        && let Some(crash) = system.crashed(log)
    {
        return (Verdict::Crash, crash);
    }
    (verdict_of(outcome), outcome.describe())
}

pub fn verdict_of(o: &Outcome) -> Verdict {
    match o {
        Outcome::Passed => Verdict::Pass,
        Outcome::Exited(_) => Verdict::Fail,
        Outcome::Killed(_) => Verdict::Crash,
        Outcome::TimedOut => Verdict::Hang,
        Outcome::Interrupted => Verdict::Interrupted,
    }
}

/// CMD under the policy file `policy`, its log to `log` and output to `output`.
pub fn run_policy(
    setup: &Setup,
    policy: &Path,
    log: &Path,
    output: &Path,
    census: bool,
) -> Result<(Outcome, f64), Failure> {
    launch::create_log(log)?;
    let source = PolicySource::File(policy.to_path_buf());
    // A system needs its supervisor: the run is `chaos-ctl run` of it, as a sweep's is.
    let mut cmd = launch::trial_command(
        setup.cmd,
        &Launch {
            shim: setup.shim,
            source: &source,
            seed: None,
            log,
            platform: None,
            quirks: &[],
            no_quirks: &[],
            backend: setup.backend,
        },
        setup.system.is_some(),
    );
    if census {
        // Under a system's `chaos-ctl run`, which hands it on to every process and the workload.
        cmd.envs(launch::census_env(setup.nth));
    }
    let done = trial::run(cmd, output, setup.timeout)
        .map_err(|e| Failure::own(format!("{}: {e}", setup.what())))?;
    Ok((done.outcome, done.elapsed.as_secs_f64()))
}
