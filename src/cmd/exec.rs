//! `capo exec`: an ad-hoc command on the hosts, no lock and no Puppet.

use capo_engine::RunMode;

use crate::cli::ExecArgs;
use crate::error::Error;
use crate::exit::Outcome;

/// Runs the command; its words are joined with spaces for `sh -c`, as `ssh host CMD...` does.
pub fn run(args: &ExecArgs) -> Result<Outcome, Error> {
    let mode = RunMode::Exec {
        command: args.command.join(" "),
    };
    crate::run::run(&args.selection, &args.run, mode, false)
}
