//! The `capo` binary: parses the command line, runs the subcommand, and turns how it ended
//! into the exit status, in one place.

mod cli;
mod error;
mod exit;
mod hosts;
mod limits;
mod rollout;
mod select;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Hosts(args) => hosts::run(&args),
        Command::Rollout(args) => rollout::rollout(&args),
        Command::Plan(args) => rollout::plan(&args),
        Command::Exec(args) => rollout::exec(&args),
    };
    if let Err(e) = &result {
        error::print(e);
    }
    ExitCode::from(exit::code(&result))
}
