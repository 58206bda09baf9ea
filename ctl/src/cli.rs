//! Command-line definitions.

use clap::{Args, Parser, Subcommand};
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
        /// The JSON Lines log written by a run
        log: PathBuf,
        /// Print the summary as JSON
        #[arg(long)]
        json: bool,
    },
    /// List the platform quirks --platform and --quirk can reproduce
    Quirks {
        /// Only this platform's quirks (macos, freebsd, openbsd, linux-old, wsl1)
        #[arg(long)]
        platform: Option<String>,
    },
    /// List the built-in profiles, or show one
    Profiles {
        #[command(subcommand)]
        command: Option<ProfilesCommand>,
    },
}

#[derive(Subcommand)]
pub enum ProfilesCommand {
    /// List the built-in profiles
    List,
    /// Print a profile's policy (a starting point for your own)
    Show { name: String },
}

#[derive(Args)]
pub struct RunArgs {
    /// Policy file (TOML); see README "Policy reference"
    #[arg(long, short = 'p', conflicts_with = "profile")]
    pub policy: Option<PathBuf>,
    /// Built-in profile: benign (default), network, none
    #[arg(long, short = 'P')]
    pub profile: Option<String>,
    /// Reproduce a platform's errno quirks: macos, freebsd, openbsd, linux-old, wsl1 (see `quirks`)
    #[arg(long)]
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
    /// The program and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub cmd: Vec<OsString>,
}
