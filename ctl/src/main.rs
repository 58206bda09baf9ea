//! chaos-ctl: run a program under the chaos shim, validate policies, report on event logs.

mod cli;
mod events;
mod failure;
mod frozen;
mod junit;
mod launch;
mod minimize;
mod policy_source;
mod preflight;
mod quirks;
mod replay;
mod report;
mod run;
mod shim_path;
mod sweep;
mod trial;

use clap::Parser;
use cli::{Cli, Command, ProfilesCommand};
use failure::Failure;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { failure::USAGE } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Validate { policy } => policy_source::validate(&policy),
        Command::Report { log, json } => report::report(&log, json).map(|_| 0),
        Command::Quirks { platform } => quirks::list(platform.as_deref()).map(|_| 0),
        Command::Replay(args) => replay::replay(args),
        Command::Freeze { log } => frozen::freeze(&log),
        Command::Sweep(args) => sweep::sweep(args),
        Command::Minimize(args) => minimize::minimize(args),
        Command::Profiles { command } => match command {
            None | Some(ProfilesCommand::List) => policy_source::list_profiles().map(|_| 0),
            Some(ProfilesCommand::Show { name }) => policy_source::show_profile(&name).map(|_| 0),
        },
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure { code, message }) => {
            eprintln!("chaos-ctl: {message}");
            ExitCode::from(code)
        }
    }
}
