//! What a system run is asked to do, and how it ended.

use crate::launch::Launch;
use chaos_engine::policy::Policy;
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

pub struct SystemRun<'a> {
    pub policy: &'a Policy,
    pub launch: Launch<'a>,
    pub log_path: &'a Path,
    pub seed: u64,
    /// The workload; empty: run until `duration` or until every process has ended.
    pub cmd: &'a [OsString],
    pub duration: Option<Duration>,
    /// `--control-addr`: serve the control endpoint there.
    pub control_addr: Option<&'a str>,
    pub quiet: bool,
    /// `--progress`: a line on stderr per process event, as it happens.
    pub progress: bool,
    /// The policy's text, whose `[[process]]` tables the log records.
    pub policy_text: Option<String>,
    /// `explore`'s census, for every process and the workload: the reach of each point to log.
    pub census: Option<u32>,
}

/// How a system run ended.
pub struct Ended {
    /// The workload's pid and status, if there was one.
    pub workload: Option<(i32, ExitStatus)>,
    /// The table per process, for the summary.
    pub summary: String,
    /// A signal chaos-ctl received that ended the run without a workload.
    pub interrupted: Option<i32>,
}
