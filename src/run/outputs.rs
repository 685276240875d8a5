//! Where a finished run's report goes: its run directory and the run history (for `capo
//! runs` and `--rerun`), the files the operator asked for, GitHub's step summary, and stdout.
//! `capo runs show` writes the same files and prints the same way from a stored report
//! ([`show`]), so the list of outputs lives here once (over [`OutputArgs`]).

use std::path::Path;

use capo_report::Report;

use crate::cli::{ChangesView, Format, OutputArgs, RunArgs, TableRows};
use crate::error::{self, Error};
use crate::history::{self, RerunOf, RunEntry, RUN_REPORT};

/// Writes and prints `report` everywhere it goes; returns whether something the operator
/// asked for (a `--report`, `--junit`, `--summary-md` or `--html` file, or stdout) was not written,
/// which fails the run. Every failure is printed as it happens.
pub fn deliver(report: &Report, args: &RunArgs) -> bool {
    keep(report);
    send(report, &args.output)
}

/// Writes and prints `report` as [`deliver`] does, but keeps it nowhere: `capo report merge`,
/// whose parts each kept their own. Returns whether an output was not written.
pub fn send(report: &Report, outputs: &OutputArgs) -> bool {
    let mut failed = write_files(report, outputs);
    step_summary(report);
    if let Err(e) = print(report, outputs) {
        error::print(&e);
        failed = true;
    }
    failed
}

/// Writes and prints a stored report as its run did (`capo runs show`), without the step
/// summary: showing a run again is not a run. Returns whether an output was not written.
pub fn show(report: &Report, outputs: &OutputArgs) -> bool {
    let mut failed = write_files(report, outputs);
    if let Err(e) = print(report, outputs) {
        error::print(&e);
        failed = true;
    }
    failed
}

/// The `--report`, `--junit`, `--summary-md` and `--html` files; returns whether one was not
/// written.
fn write_files(report: &Report, outputs: &OutputArgs) -> bool {
    let mut failed = false;
    for result in [
        outputs
            .report
            .as_deref()
            .map(|p| capo_report::json::write_atomic(report, p).map_err(Error::from)),
        outputs
            .junit
            .as_deref()
            .map(|p| capo_report::junit::write_junit(report, p).map_err(Error::from)),
        outputs
            .summary_md
            .as_deref()
            .map(|p| capo_report::markdown::write_markdown(report, p).map_err(Error::from)),
        outputs
            .html
            .as_deref()
            .map(|p| capo_report::html::write_html(report, p).map_err(Error::from)),
    ]
    .into_iter()
    .flatten()
    {
        if let Err(e) = result {
            error::print(&e);
            failed = true;
        }
    }
    failed
}

/// Adds the finished run to the run history (`exit` its exit status, `rerun` whose hosts it
/// took), then keeps the newest `--keep-runs` runs. Not asked for, so a failure is only a
/// warning.
pub fn record(report: &Report, args: &RunArgs, rerun: Option<RerunOf>, exit: u8) {
    let inventory = history::inventory_key(Path::new(&report.inventory));
    let entry = RunEntry::of(report, inventory, rerun, Some(exit));
    if let Err(e) = history::append(&args.runs_dir, &entry) {
        error::print(&e.into());
    }
    if args.keep_runs > 0 {
        if let Err(e) = history::prune(&args.runs_dir, args.keep_runs, Some(&report.run_id)) {
            error::print(&e.into());
        }
    }
}

/// Every run keeps its report beside its logs; `--rerun` and `capo runs show` read it there. Not asked for,
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
fn print(report: &Report, args: &OutputArgs) -> Result<(), Error> {
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
            crate::stdout::write(&capo_report::table::render(report, &view))
                .map_err(Error::Stdout)?;
        }
        // What a drift alarm reads: one flat entry per host (`--report` has the run report).
        Format::Json if report.mode == capo_engine::Mode::Status => {
            let text = capo_report::status::to_json(report).map_err(Error::EncodeReport)?;
            crate::stdout::write(&text).map_err(Error::Stdout)?;
        }
        Format::Json => {
            let text = capo_report::json::to_string(report).map_err(Error::EncodeReport)?;
            crate::stdout::write(&text).map_err(Error::Stdout)?;
        }
    }
    Ok(())
}
