//! `capo report`: run reports read back, without contacting any host. `merge` makes the
//! parts of a sharded run into one run's report and exits as that run would have.

use capo_report::merge;

use crate::cli::{ReportCommand, ReportMergeArgs};
use crate::error::Error;
use crate::exit::{Outcome, RunEnd};
use crate::run::outputs;

/// Runs a `capo report` subcommand.
pub fn run(command: &ReportCommand) -> Result<Outcome, Error> {
    match command {
        ReportCommand::Merge(args) => run_merge(args),
        ReportCommand::Html(args) => crate::cmd::report_html::run(args),
    }
}

/// Reads every part, merges them (refusing parts of different runs before writing
/// anything), and delivers the merged report as a run delivers its own.
fn run_merge(args: &ReportMergeArgs) -> Result<Outcome, Error> {
    let parts = args
        .parts
        .iter()
        .map(|p| merge::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let report = merge::merge(&parts)?;
    let outputs_failed = outputs::send(&report, &args.output);
    Ok(Outcome::Run(RunEnd::of(
        &report,
        args.fail_on_changes,
        outputs_failed,
    )))
}
