//! chaos-ctl: run a program under the chaos shim, validate policies, report on event logs.

mod account;
mod cli;
mod control;
mod durability;
mod durability_watch;
mod explore;
mod failure;
mod frozen;
mod junit;
mod launch;
mod log;
mod minimize;
mod output;
mod paths;
mod policy_source;
mod preflight;
mod quirks;
mod refusals;
mod replay;
mod report;
mod report_html;
mod run;
mod seccomp;
mod shim_path;
mod signals;
mod storage_line;
mod sweep;
mod system;
mod timeline;
mod toxiproxy;
mod trial;
mod unlogged;

use clap::Parser;
use cli::{Cli, Command, ProfilesCommand};
use failure::Failure;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    // The seccomp backend's launcher: nothing of chaos-ctl's own runs before it (see
    // seccomp/launcher.rs).
    let mut argv = std::env::args_os();
    if argv.nth(1).is_some_and(|a| a == seccomp::LAUNCH_ARG) {
        let mut rest: Vec<_> = argv.collect();
        if rest.first().is_some_and(|a| a == "--") {
            rest.remove(0);
        }
        seccomp::launcher::main(rest);
    }
    output::install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let printed = e.print();
            if e.use_stderr() {
                return ExitCode::from(failure::USAGE);
            }
            // --help or --version on stdout.
            return match printed.and_then(|_| std::io::Write::flush(&mut std::io::stdout())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let f = output::write_failure(e);
                    if !f.message.is_empty() {
                        output::errout!("chaos-ctl: {}", f.message);
                    }
                    ExitCode::from(f.code)
                }
            };
        }
    };
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Validate { policy } => policy_source::validate(&policy),
        Command::Report {
            log,
            json,
            html,
            output,
        } => {
            let logs: Vec<&std::path::Path> = log.iter().map(PathBuf::as_path).collect();
            if html {
                report_html::write(&logs, &output).map(|_| 0)
            } else {
                report::report_all(&logs, json).map(|_| 0)
            }
        }
        Command::Quirks { platform } => quirks::list(platform.as_deref()).map(|_| 0),
        Command::Replay(args) => replay::replay(args),
        Command::Freeze { log } => frozen::freeze(&log),
        Command::Sweep(args) => sweep::sweep(args),
        Command::Explore(args) => explore::explore(args),
        Command::Minimize(args) => minimize::minimize(args),
        Command::Profiles { command } => match command {
            None | Some(ProfilesCommand::List) => policy_source::list_profiles().map(|_| 0),
            Some(ProfilesCommand::Show { name }) => policy_source::show_profile(&name).map(|_| 0),
        },
        Command::Control(args) => control::cli::control(args),
        Command::Toxiproxy(args) => toxiproxy::standalone(args),
        Command::Generate { what } => cli::generate(what).map(|_| 0),
    };
    // `validate` and `profiles` (policy_source.rs) still print with `println!`: the panic hook
    // turns their write errors into the same quiet exits.
    // Whatever is still buffered for stdout must reach it before the status is decided.
    let result = result.and_then(|code| output::flush().map(|_| code));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure { code, message }) => {
            if !message.is_empty() {
                output::errout!("chaos-ctl: {message}");
            }
            ExitCode::from(code)
        }
    }
}
