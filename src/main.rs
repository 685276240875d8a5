//! The `capo` binary: parses the command line, runs the subcommand, and turns how it ended
//! into the exit status, in one place.

mod cli;
mod cmd;
mod error;
mod exit;
mod history;
mod limits;
mod run;
mod select;
mod stdout;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Hosts(args) => cmd::hosts::run(&args),
        Command::Rollout(args) => cmd::rollout::run(&args),
        Command::Plan(args) => cmd::plan::run(&args),
        Command::Exec(args) => cmd::exec::run(&args),
        Command::Check(args) => cmd::check::run(&args),
        Command::Disable(args) => cmd::disable::run(&args),
        Command::Enable(args) => cmd::enable::run(&args),
        Command::Bootstrap(args) => cmd::bootstrap::run(&args),
        Command::Status(args) => cmd::status::run(&args),
        Command::Pull(command) => cmd::pull::run(&command),
        Command::Report(command) => cmd::report::run(&command),
        Command::Runs(command) => cmd::runs::run(&command),
    };
    if let Err(e) = &result {
        error::print(e);
    }
    ExitCode::from(exit::code(&result))
}
