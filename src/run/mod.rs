//! The run every host-touching command shares (`rollout`, `plan`, `exec`): select the hosts,
//! check what can be checked before touching any, run the engine, deliver the report.

mod become_pass;
mod confirm;
mod drive;
mod host_keys;
pub mod options;
pub mod outputs;
mod passphrases;
mod prompt;
mod signals;

use std::io::IsTerminal;

use capo_engine::{Confirm, RunMode};
use capo_report::progress::{Progress, Verbosity};
use tokio::sync::mpsc;

use crate::cli::{RunArgs, Selection};
use crate::error::{self, Error};
use crate::exit::{Outcome, RunEnd};

/// Runs `mode` on the hosts `selection` and `args` choose. Every usage error is found before
/// a host is contacted or a file is written (except the run directory, made before the
/// `--events` file is opened).
pub fn run(
    selection: &Selection,
    args: &RunArgs,
    mode: RunMode,
    fail_on_changes: bool,
) -> Result<Outcome, Error> {
    let started = chrono::Utc::now();
    let run_id = options::new_run_id(started);
    let mut selected = crate::select::for_run(selection, args, mode.mode(), &run_id)?;
    confirm::require_terminal(args.confirm)?;
    host_keys::warn_unchecked(&selected.hosts);
    // Asked once, before anything is written or any host contacted.
    let become_password = become_pass::ask(args.ask_become_pass, &selected.hosts)?;
    let (confirm_tx, confirm_rx) = mpsc::channel::<Confirm>(1);
    let run = options::RunId {
        id: run_id,
        started,
    };
    let mut options = options::build(
        selection,
        args,
        mode,
        run,
        args.confirm.then_some(confirm_tx),
    )?;
    // Held until the run is in the history: no prune removes a run in progress.
    let _running = match crate::history::hold_run(&options.meta.run_dir) {
        Ok(lock) => Some(lock),
        Err(e) => {
            error::print(&e.into());
            None
        }
    };
    options.become_password = become_password;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    // Before the live display starts and before any host is contacted.
    options.ssh = passphrases::unlock(&selected.hosts, &runtime)?;
    let event_log = args
        .events
        .as_deref()
        .map(drive::open_event_log)
        .transpose()?;
    // The display starts drawing once made: only after the last check that can refuse the run.
    let watchers = drive::Watchers {
        event_log,
        progress: progress(args),
        grace: args.grace,
    };
    let hosts = std::mem::take(&mut selected.hosts);
    let (collector, interrupted) =
        runtime.block_on(drive::drive(hosts, options, confirm_rx, watchers));
    let mut report = collector.report().ok_or(Error::NoReport)?;
    report.interrupted = interrupted;
    selected.stamp(&mut report);
    let outputs_failed = outputs::deliver(&report, args);
    let end = RunEnd::of(&report, fail_on_changes, outputs_failed);
    let outcome = Ok(Outcome::Run(end));
    outputs::record(&report, args, selected.rerun, crate::exit::code(&outcome));
    outcome
}

/// The live display on stderr: bars on a terminal, plain lines otherwise. Bars redraw the
/// terminal and would erase a `--confirm` question, so plain lines then too.
fn progress(args: &RunArgs) -> Progress {
    let verbosity = if args.quiet {
        Verbosity::Quiet
    } else if args.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let bars = std::io::stderr().is_terminal() && !args.confirm;
    Progress::new(bars, verbosity)
}
