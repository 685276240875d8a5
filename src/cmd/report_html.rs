//! `capo report html RUN.json`: a run's JSON report as one self-contained HTML page on
//! stdout.

use crate::cli::ReportHtmlArgs;
use crate::error::Error;
use crate::exit::Outcome;

/// Reads the report (as `capo report merge` reads its parts) and prints its page; a file that
/// is missing or not a run report is a usage error (exit 2), nothing printed.
pub fn run(args: &ReportHtmlArgs) -> Result<Outcome, Error> {
    let report = capo_report::merge::read(&args.report)?.report;
    let page = capo_report::html::render(&report);
    crate::stdout::write(&page).map_err(Error::Stdout)?;
    Ok(Outcome::Done)
}
