//! Command-line definitions.

use crate::failure::Failure;
use crate::preflight::Backend;
use chaos_engine::quirk::Platform;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "chaos-ctl",
    version,
    about = "Run any dynamically linked program with libc socket and I/O faults injected",
    long_about = "Run any dynamically linked program with libc socket and I/O faults injected: \
resets, refusals, EINTR, short reads and writes, latency. A seeded policy decides what fails and \
when; every injection is logged as JSON Lines.\n\nExit status of `run`: the program's own (128+N \
when killed by signal N); 125 when chaos-ctl itself fails (bad policy, refused preflight, missing \
shim, program not intercepted); 126 when the command cannot be executed; 127 when it is not found."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run CMD under the shim (default profile: benign), then summarise the faults injected
    Run(RunArgs),
    /// Check a policy file; prints its rules, or `file:line:col: message` and exits 1
    Validate {
        /// The policy (TOML)
        policy: PathBuf,
    },
    /// Summarise an event log: faults by rule, op and fault
    Report {
        /// The JSON Lines logs written by runs (`-` for stdin); several are reported in turn
        #[arg(required = true)]
        log: Vec<PathBuf>,
        /// Print the summary as JSON
        #[arg(long, conflicts_with = "html")]
        json: bool,
        /// Write the run as a timeline page (one self-contained HTML file) instead of a summary
        #[arg(long)]
        html: bool,
        /// With --html: the file to write (`-`: stdout)
        #[arg(
            long,
            short = 'o',
            value_name = "FILE",
            requires = "html",
            default_value = "-"
        )]
        output: PathBuf,
    },
    /// List the platform quirks --platform and --quirk can reproduce
    Quirks {
        #[arg(long, help = format!("Only this platform's quirks ({})", Platform::names()))]
        platform: Option<String>,
    },
    /// Re-run a program injecting exactly the faults of a log, matched by decision key
    Replay(ReplayArgs),
    /// Print a policy that injects exactly a log's faults, deterministically (a regression test)
    Freeze {
        /// The JSON Lines log of the run to freeze
        log: PathBuf,
    },
    /// Run a program under many seeds (in parallel); report and keep the failing ones
    Sweep(SweepArgs),
    /// Run every error path once: find each place CMD calls something that could fail, inject
    /// each fault Linux could produce there, one run each; report failures with a frozen repro
    Explore(ExploreArgs),
    /// Shrink a failing run's faults to a minimal set that still fails; write its frozen policy
    Minimize(MinimizeArgs),
    /// List the built-in profiles, or show one
    Profiles {
        #[command(subcommand)]
        command: Option<ProfilesCommand>,
    },
    /// Change a live run: switch rules on and off, cut and heal the network between its processes
    Control(crate::control::cli::ControlArgs),
    /// Serve Toxiproxy's HTTP API standing alone: its clients create proxies (relays) and toxics
    Toxiproxy(crate::toxiproxy::Args),
    /// Print the man page or a shell completion script (used by `make install`)
    #[command(hide = true)]
    Generate {
        #[arg(value_enum)]
        what: Generated,
    },
}

/// What `generate` prints.
#[derive(Clone, Copy, ValueEnum)]
pub enum Generated {
    Man,
    Bash,
    Zsh,
    Fish,
}

/// `chaos-ctl generate WHAT` on stdout.
pub fn generate(what: Generated) -> Result<(), Failure> {
    use clap_complete::Shell;
    let mut cmd = Cli::command();
    let mut text = Vec::new();
    let shell = match what {
        Generated::Man => {
            cmd.build();
            clap_mangen::Man::new(cmd)
                .render(&mut text)
                .map_err(|e| Failure::own(format!("man page: {e}")))?;
            return crate::output::out!("{}", String::from_utf8_lossy(&text));
        }
        Generated::Bash => Shell::Bash,
        Generated::Zsh => Shell::Zsh,
        Generated::Fish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "chaos-ctl", &mut text);
    crate::output::out!("{}", String::from_utf8_lossy(&text))
}

/// Every platform `--platform` takes, for the help text.
fn platform_help() -> String {
    format!(
        "Reproduce a platform's errno quirks: {} (see `quirks`)",
        Platform::names()
    )
}

#[derive(Subcommand)]
pub enum ProfilesCommand {
    /// List the built-in profiles
    List,
    /// Print a profile's policy (a starting point for your own)
    Show { name: String },
}

/// The program to run: what follows `--`.
fn cmd_help() -> &'static str {
    "The program and its arguments (default: the command the log's run started with)"
}

#[derive(Args)]
pub struct ReplayArgs {
    /// The log of the run to replay
    pub log: PathBuf,
    /// Which backend serves the program: preload (the shim, LD_PRELOAD), seccomp (chaos-ctl
    /// answers its system calls: static binaries, Go), or auto (preload where the loader runs the
    /// shim, seccomp otherwise)
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,

    /// Where to write the replay's own log (default: a new file in $TMPDIR)
    #[arg(long = "log", short = 'l', value_name = "FILE")]
    pub out_log: Option<PathBuf>,
    /// No summary on stderr (the replay's verdict is still printed)
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[arg(trailing_var_arg = true, value_name = "CMD", help = cmd_help())]
    pub cmd: Vec<OsString>,
}

#[derive(Args)]
pub struct ExploreArgs {
    /// A policy whose non-fault parts (seed, quirks, disks) every run keeps; its rules are
    /// dropped: explore injects one fault per run itself
    #[arg(long, short = 'p', value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// At most this many runs (the discovery run and replays not counted); what is left is
    /// reported as unexplored
    #[arg(long, default_value_t = 500)]
    pub budget: usize,
    /// Runs at a time (default: the number of CPUs)
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// A run that takes longer than this is a hang and is killed (e.g. 10s, 2m)
    #[arg(long, default_value = "30s")]
    pub timeout: String,
    /// Where runs, their logs and the failures' frozen policies are kept; an explore given the
    /// same directory again skips the runs it holds
    #[arg(long, default_value = "chaos-explore")]
    pub out: PathBuf,
    /// Write a JUnit XML report: one testcase per (point, fault)
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Only every Nth run of the first wave, starting with the Kth (1-based): shards an explore
    /// across CI jobs (each shard follows the points its own runs find)
    #[arg(long, value_name = "K/N")]
    pub partition: Option<String>,
    /// Put each fault on the Nth time a point is reached rather than the first (the third pass
    /// of a loop, the second of two retries); points reached fewer times are not tried
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub nth: u32,
    /// Which backend serves the program: preload (the shim, LD_PRELOAD), seccomp (chaos-ctl
    /// answers its system calls: static binaries, Go), or auto (preload where the loader runs the
    /// shim, seccomp otherwise)
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// The program and its arguments (with [[process]] in the policy: the workload, optional)
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    pub cmd: Vec<OsString>,
}

#[derive(Args)]
pub struct SweepArgs {
    /// Seeds to run, inclusive: A..B (e.g. 1..200)
    #[arg(long, value_name = "A..B")]
    pub seeds: String,
    /// Runs at a time (default: the number of CPUs)
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub source: PolicyArgs,
    #[arg(long, help = platform_help())]
    pub platform: Option<String>,
    /// Which backend serves the program: preload (the shim, LD_PRELOAD), seccomp (chaos-ctl
    /// answers its system calls: static binaries, Go), or auto (preload where the loader runs the
    /// shim, seccomp otherwise)
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// A run that takes longer than this fails and is killed (e.g. 30s, 2m)
    #[arg(long, default_value = "60s")]
    pub timeout: String,
    /// Run every seed even after one fails (default: stop starting new ones)
    #[arg(long)]
    pub keep_going: bool,
    /// Write a JUnit XML report: one testcase per seed
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Only every Nth seed, starting with the Kth (1-based): shards a sweep across CI jobs
    #[arg(long, value_name = "K/N")]
    pub partition: Option<String>,
    /// Where failing seeds' logs and output are kept
    #[arg(long, default_value = "chaos-sweep")]
    pub out: PathBuf,
    /// The program and its arguments
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub cmd: Vec<OsString>,
}

#[derive(Args)]
pub struct MinimizeArgs {
    /// The log of the failing run
    pub log: PathBuf,
    /// Where to write the frozen policy of the minimal set (default: LOG with .min.toml)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Runs per candidate: a candidate fails only if it fails every time, and is reported as flaky
    /// if the runs disagree
    #[arg(long, default_value_t = 2)]
    pub runs: u32,
    /// Which backend serves the program: preload (the shim, LD_PRELOAD), seccomp (chaos-ctl
    /// answers its system calls: static binaries, Go), or auto (preload where the loader runs the
    /// shim, seccomp otherwise)
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,

    /// A run that takes longer than this fails and is killed (e.g. 30s, 2m)
    #[arg(long, default_value = "60s")]
    pub timeout: String,
    #[arg(trailing_var_arg = true, value_name = "CMD", help = cmd_help())]
    pub cmd: Vec<OsString>,
}

/// Where a run's policy comes from: `--policy F` or `--profile P` (default: benign).
#[derive(Args)]
pub struct PolicyArgs {
    /// Policy file (TOML); see docs/reference.md, "Policy reference"
    #[arg(long, short = 'p', conflicts_with = "profile")]
    pub policy: Option<PathBuf>,
    /// Built-in profile: benign (default), network, none
    #[arg(long, short = 'P')]
    pub profile: Option<String>,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub source: PolicyArgs,
    /// Which backend serves the program: preload (the shim, LD_PRELOAD), seccomp (chaos-ctl
    /// answers its system calls: static binaries, Go), or auto (preload where the loader runs the
    /// shim, seccomp otherwise)
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,

    #[arg(long, help = platform_help())]
    pub platform: Option<String>,
    /// Enable one quirk by name (repeatable)
    #[arg(long = "quirk", value_name = "NAME")]
    pub quirks: Vec<String>,
    /// Leave one quirk out (repeatable)
    #[arg(long = "no-quirk", value_name = "NAME")]
    pub no_quirks: Vec<String>,
    /// Seed for every decision (overrides the policy's `seed`)
    #[arg(long, short = 's')]
    pub seed: Option<u64>,
    /// Where to write the event log (default: a new file in $TMPDIR, printed in the summary)
    #[arg(long, short = 'l')]
    pub log: Option<PathBuf>,
    /// No summary on stderr
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Run even when the preflight says the shim cannot reach the program, and do not fail a run
    /// whose program never loaded the shim
    #[arg(long)]
    pub force: bool,
    /// With a policy that declares [[process]] and no command: how long to run the processes
    /// (e.g. 30s, 2m; default: until every process has ended)
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// With a policy that declares [[process]]: a line on stderr for every process event (start,
    /// ready, kill, restart, exit...) as it happens
    #[arg(long)]
    pub progress: bool,
    /// After the run, write its timeline page (self-contained HTML, as `report --html`) here
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Serve the run's control endpoint on this loopback address (e.g. 127.0.0.1:7474; port 0
    /// picks one, printed at start): JSON over HTTP, the same changes as `chaos-ctl control`
    #[arg(long, value_name = "ADDR")]
    pub control_addr: Option<String>,
    /// Serve Toxiproxy's HTTP API on this address (e.g. 127.0.0.1:8474): its clients' proxies
    /// and toxics act on the run, each change a `control` line in its log
    #[arg(long, value_name = "ADDR")]
    pub toxiproxy_addr: Option<String>,
    /// The program and its arguments (with [[process]] in the policy: the workload, optional)
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    pub cmd: Vec<OsString>,
    /// `explore`'s census (CHAOS_CENSUS=1, CHAOS_CENSUS_NTH): the reach of each point to log, for
    /// every process of the run. No flag: only `explore` asks for it, through the environment.
    #[arg(skip)]
    pub census: Option<u32>,
}
