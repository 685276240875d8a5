//! Where a finished run's report goes: its run directory (for `--rerun`), the files the
//! operator asked for, GitHub's step summary, and stdout.

use std::path::Path;

use capo_report::Report;

use crate::cli::{ChangesView, Format, RunArgs, TableRows};
use crate::error::{self, Error};
use crate::select::RUN_REPORT;

/// Where a report goes besides the run directory: the files asked for and stdout. Runs and
/// `capo report merge` fill it from their own flags.
#[derive(Debug, Clone, Copy)]
pub struct Outputs<'a> {
    /// `--report`.
    pub report: Option<&'a Path>,
    /// `--junit`.
    pub junit: Option<&'a Path>,
    /// `--summary-md`.
    pub summary_md: Option<&'a Path>,
    /// `--format`.
    pub format: Format,
    /// `--changes`.
    pub changes: ChangesView,
    /// `--table`.
    pub table: TableRows,
}

impl<'a> Outputs<'a> {
    /// A run's outputs.
    pub fn of_run(args: &'a RunArgs) -> Outputs<'a> {
        Outputs {
            report: args.report.as_deref(),
            junit: args.junit.as_deref(),
            summary_md: args.summary_md.as_deref(),
            format: args.format,
            changes: args.changes,
            table: args.table,
        }
    }
}

/// Keeps `report` in its run directory, then [`send`]s it.
pub fn deliver(report: &Report, args: &RunArgs) -> bool {
    keep(report);
    send(report, &Outputs::of_run(args))
}

/// Writes and prints `report` everywhere `args` asks, and to GitHub's step summary; returns
/// whether something the operator asked for (a `--report`, `--junit` or `--summary-md` file,
/// or stdout) was not written, which fails the run. Every failure is printed as it happens.
pub fn send(report: &Report, args: &Outputs<'_>) -> bool {
    let mut failed = false;
    for result in [
        args.report
            .map(|p| capo_report::json::write_atomic(report, p).map_err(Error::from)),
        args.junit
            .map(|p| capo_report::junit::write_junit(report, p).map_err(Error::from)),
        args.summary_md
            .map(|p| capo_report::markdown::write_markdown(report, p).map_err(Error::from)),
    ]
    .into_iter()
    .flatten()
    {
        if let Err(e) = result {
            error::print(&e);
            failed = true;
        }
    }
    step_summary(report);
    if let Err(e) = print(report, args) {
        error::print(&e);
        failed = true;
    }
    failed
}

/// Every run keeps its report beside its logs; `--rerun` reads it from there. Not asked for,
/// so a failure is only a warning.
fn keep(report: &Report) {
    let kept = Path::new(&report.run_dir).join(RUN_REPORT);
    if let Err(e) = capo_report::json::write_atomic(report, &kept) {
        error::print(&e.into());
    }
}

/// GitHub Actions shows `$GITHUB_STEP_SUMMARY` on the run's page; appending is what its docs
/// ask for. Set by the environment, not the operator, so a failure is only a warning.
fn step_summary(report: &Report) {
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        if let Err(e) = capo_report::markdown::append_markdown(report, Path::new(&path)) {
            error::print(&e.into());
        }
    }
}

/// The report on stdout, as `--format` (and for the table `--changes` and `--table`) asks.
fn print(report: &Report, args: &Outputs<'_>) -> Result<(), Error> {
    match args.format {
        Format::Table => {
            let view = capo_report::table::View {
                width: capo_report::table::terminal_width(),
                changes: match args.changes {
                    ChangesView::Short => capo_report::grouped::ChangesView::Short,
                    ChangesView::All => capo_report::grouped::ChangesView::All,
                },
                rows: match args.table {
                    TableRows::Auto => capo_report::table::Rows::Auto,
                    TableRows::Full => capo_report::table::Rows::Full,
                },
            };
            print!("{}", capo_report::table::render(report, &view));
        }
        // What a drift alarm reads: one flat entry per host (`--report` has the run report).
        Format::Json if report.mode == capo_engine::Mode::Status => {
            let text = capo_report::status::to_json(report).map_err(Error::EncodeReport)?;
            print!("{text}");
        }
        Format::Json => {
            let text = capo_report::json::to_string(report).map_err(Error::EncodeReport)?;
            print!("{text}");
        }
    }
    Ok(())
}
