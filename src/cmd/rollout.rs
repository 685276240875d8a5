//! `capo rollout`: bring each selected host's checkout up to date and apply it.

use capo_engine::RunMode;

use crate::cli::RolloutArgs;
use crate::error::Error;
use crate::exit::Outcome;

/// Runs the rollout; `--rev` pins the revision every host is brought to.
pub fn run(args: &RolloutArgs) -> Result<Outcome, Error> {
    let mode = RunMode::Rollout {
        rev: args.rev.clone(),
    };
    crate::run::run(&args.selection, &args.run, mode, false)
}
