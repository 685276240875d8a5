//! `capo plan`: what a rollout would change on each host, changing nothing.

use capo_engine::RunMode;

use crate::cli::PlanArgs;
use crate::error::Error;
use crate::exit::Outcome;

/// Runs the plan; `--fail-on-changes` makes would-be changes exit 3, for drift checks in CI.
pub fn run(args: &PlanArgs) -> Result<Outcome, Error> {
    let mode = RunMode::Plan {
        rev: args.rev.clone(),
    };
    crate::run::run(&args.selection, &args.run, mode, args.fail_on_changes)
}
