//! `capo enable`: removes what `capo disable` wrote, so rollouts and pull runs go on. Puppet's
//! own switch (`puppet agent --disable`) is Puppet's: the report still shows a host it
//! disables.

use capo_engine::RunMode;

use crate::cli::EnableArgs;
use crate::error::Error;
use crate::exit::Outcome;

/// Enables the selected hosts again.
pub fn run(args: &EnableArgs) -> Result<Outcome, Error> {
    crate::run::run(&args.selection, &args.run, RunMode::Enable, false)
}
