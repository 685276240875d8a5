//! The `capo` binary: parses the command line and wires the libraries together.

mod cli;
mod hosts;
mod limits;
mod rollout;
mod select;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// Exit status for bad usage or a bad inventory (clap uses 2 for usage errors too).
pub const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Hosts(args) => hosts::run(&args),
        Command::Rollout(args) => rollout::rollout(&args),
        Command::Plan(args) => rollout::plan(&args),
        Command::Exec(args) => rollout::exec(&args),
    }
}
