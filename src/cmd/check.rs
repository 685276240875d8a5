//! `capo check`: the preflight before a rollout. Connects and authenticates to every
//! selected host, runs nothing that changes it, and reports per host how capo got in (the
//! identity, the host key, the jump hosts), whether `become` works, git's and Puppet's
//! versions, the checkout and the lock.

use capo_engine::RunMode;

use crate::cli::CheckArgs;
use crate::error::Error;
use crate::exit::Outcome;

/// Runs the check; a host that a rollout could not run on now fails it.
pub fn run(args: &CheckArgs) -> Result<Outcome, Error> {
    crate::run::run(&args.selection, &args.run, RunMode::Check, false)
}
