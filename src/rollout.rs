//! `capo rollout` and `capo plan`: run the engine, turn signals into stop requests, and feed
//! the engine's events to the reporters.

use std::time::Duration;

use capo_inventory::{Host, HostKeyCheck};
use capo_report::events::EventLog;
use capo_report::progress::{Progress, Verbosity};
use capo_report::Collector;
use capo_rollout::{
    Confirm, EngineOptions, RunMeta, RunMode, Signal, Stop, StopReason, Strategy,
    DEFAULT_TAIL_BYTES,
};
use std::io::IsTerminal;
use std::path::Path;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::cli::{ExecArgs, Format, PlanArgs, RolloutArgs, RunArgs, Selection};
use crate::error::{self, Error};
use crate::exit::{Outcome, RunEnd};
use crate::select::RUN_REPORT;

pub fn rollout(args: &RolloutArgs) -> Result<Outcome, Error> {
    let mode = RunMode::Rollout {
        rev: args.rev.clone(),
    };
    run(&args.selection, &args.run, mode, false)
}

pub fn plan(args: &PlanArgs) -> Result<Outcome, Error> {
    let mode = RunMode::Plan {
        rev: args.rev.clone(),
    };
    run(&args.selection, &args.run, mode, args.fail_on_changes)
}

pub fn exec(args: &ExecArgs) -> Result<Outcome, Error> {
    let mode = RunMode::Exec {
        command: args.command.join(" "),
    };
    run(&args.selection, &args.run, mode, false)
}

fn run(
    selection: &Selection,
    args: &RunArgs,
    mode: RunMode,
    fail_on_changes: bool,
) -> Result<Outcome, Error> {
    let hosts = crate::select::for_run(selection, &args.rerun, &args.runs_dir, args.order)?;
    // Without a terminal there is nobody to answer: refuse rather than hang.
    if args.confirm && !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::ConfirmWithoutTerminal);
    }
    let strategy = Strategy {
        canary: args.canary,
        batches: args.batch.clone().map(|b| b.0).unwrap_or_default(),
        max_failures: args.max_failures,
        pause: args.pause,
    };
    warn_unchecked_host_keys(&hosts);
    let started = chrono::Utc::now();
    let run_id = new_run_id(started);
    let run_dir = args.runs_dir.join(&run_id);
    std::fs::create_dir_all(&run_dir).map_err(|source| Error::RunDir {
        path: run_dir.clone(),
        source,
    })?;
    let holder = format!(
        "capo run {run_id} from {} (pid {}), started {}",
        controller_name(),
        std::process::id(),
        started.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let meta_mode = mode.mode();
    let target_rev = match &mode {
        RunMode::Rollout { rev } | RunMode::Plan { rev } => rev.clone(),
        RunMode::Exec { .. } => None,
    };
    let (confirm_tx, confirm_rx) = mpsc::channel::<Confirm>(1);
    let (concurrency, fd_warning) = crate::limits::fit_concurrency(args.concurrency as usize);
    if let Some(warning) = fd_warning {
        eprintln!("{warning}");
    }
    let options = EngineOptions {
        strategy,
        confirm: args.confirm.then_some(confirm_tx),
        mode,
        show_diff: args.show_diff,
        stream_output: args.verbose,
        meta: RunMeta {
            run_id,
            mode: meta_mode,
            inventory: selection.inventory.clone(),
            limit: selection.limit.clone(),
            run_dir,
            target_rev,
        },
        concurrency,
        tail_bytes: DEFAULT_TAIL_BYTES,
        holder,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let grace = args.grace;
    let confirming = args.confirm;
    let verbosity = if args.quiet {
        Verbosity::Quiet
    } else if args.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let mut event_log = match &args.events {
        Some(path) => Some(EventLog::create(path).map_err(|source| Error::EventLog {
            path: path.clone(),
            source,
        })?),
        None => None,
    };
    let (collector, interrupted) = runtime.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(Stop::Run);
        let (signal_tx, mut signal_rx) = watch::channel(None::<Signal>);
        let signals = tokio::spawn(watch_signals(stop_tx, signal_tx, grace));
        let prompts = tokio::spawn(answer_confirmations(confirm_rx));
        let (tx, mut rx) = mpsc::channel(1024);
        let engine = tokio::spawn(capo_rollout::run(hosts, options, tx, stop_rx));
        let mut collector = Collector::new();
        // Bars redraw the terminal and would erase a --confirm question: use plain lines then.
        let bars = std::io::stderr().is_terminal() && !confirming;
        let mut progress = Progress::new(bars, verbosity);
        while let Some(event) = rx.recv().await {
            collector.observe(&event);
            progress.observe(&event);
            if let Some(log) = event_log.as_mut() {
                if let Err(e) = log.write(&event) {
                    eprintln!("capo: cannot write the event log: {e}; no more events go there");
                    event_log = None;
                }
            }
        }
        progress.finish();
        if let Err(e) = engine.await {
            eprintln!("capo: the rollout engine stopped unexpectedly: {e}");
        }
        signals.abort();
        prompts.abort();
        let interrupted = *signal_rx.borrow_and_update();
        (collector, interrupted)
    });

    let mut report = collector.report().ok_or(Error::NoReport)?;
    report.interrupted = interrupted;
    let mut outputs_failed = false;
    // Every run keeps its report beside its logs; `--rerun` reads it from there.
    let kept = Path::new(&report.run_dir).join(RUN_REPORT);
    if let Err(e) = capo_report::json::write_atomic(&report, &kept) {
        error::print(&e.into());
    }
    if let Some(path) = &args.report {
        if let Err(e) = capo_report::json::write_atomic(&report, path) {
            error::print(&e.into());
            outputs_failed = true;
        }
    }
    if let Some(path) = &args.junit {
        if let Err(e) = capo_report::junit::write_junit(&report, path) {
            error::print(&e.into());
            outputs_failed = true;
        }
    }
    if let Some(path) = &args.summary_md {
        if let Err(e) = capo_report::markdown::write_markdown(&report, path) {
            error::print(&e.into());
            outputs_failed = true;
        }
    }
    // GitHub Actions shows this file on the run's page; appending is what its docs ask for.
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        if let Err(e) = capo_report::markdown::append_markdown(&report, Path::new(&path)) {
            error::print(&e.into());
        }
    }
    match args.format {
        Format::Table => print!("{}", capo_report::table::render(&report)),
        Format::Json => match capo_report::json::to_string(&report) {
            Ok(text) => print!("{text}"),
            Err(e) => {
                error::print(&Error::EncodeReport(e));
                outputs_failed = true;
            }
        },
    }
    Ok(Outcome::Run(RunEnd::of(
        &report,
        fail_on_changes,
        outputs_failed,
    )))
}

/// First SIGINT/SIGTERM: start no new hosts and give hosts in flight `grace` to finish.
/// Second signal, or the grace period over: stop them now. Records which signal came first.
async fn watch_signals(
    stop: watch::Sender<Stop>,
    first_signal: watch::Sender<Option<Signal>>,
    grace: Duration,
) {
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!("capo: warning: cannot watch for SIGINT/SIGTERM; Ctrl-C will kill capo outright");
        return;
    };
    let name = tokio::select! {
        _ = int.recv() => Signal::Int,
        _ = term.recv() => Signal::Term,
    };
    let _ = first_signal.send(Some(name));
    eprintln!(
        "capo: {name}: starting no new hosts; hosts in flight have {} to finish (Ctrl-C again to stop them now)",
        capo_inventory::duration::format(grace)
    );
    let _ = stop.send(Stop::Soft {
        reason: StopReason::Signal(name),
    });
    let reason = tokio::select! {
        _ = int.recv() => StopReason::SecondSignal(Signal::Int),
        _ = term.recv() => StopReason::SecondSignal(Signal::Term),
        _ = tokio::time::sleep(grace) => StopReason::GraceExpired { signal: name, grace },
    };
    eprintln!("capo: {reason}: stopping hosts in flight");
    let _ = stop.send(Stop::Hard { reason });
    // Further signals change nothing; keep receiving them so they do not kill capo before the
    // report is written.
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
}

/// Asks on the terminal before each batch (`--confirm`). Reading stdin blocks, so it happens
/// on a blocking thread.
async fn answer_confirmations(mut asks: mpsc::Receiver<Confirm>) {
    while let Some(ask) = asks.recv().await {
        let hosts = capo_inventory::fold::fold_to_string(&ask.hosts);
        let prompt = format!(
            "capo: start batch {} ({} host{}: {})? [y/N] ",
            ask.batch + 1,
            ask.hosts.len(),
            if ask.hosts.len() == 1 { "" } else { "s" },
            capo_report::sanitize::line(&hosts)
        );
        let answer = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut err = std::io::stderr();
            let _ = write!(err, "{prompt}");
            let _ = err.flush();
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await;
        let yes = matches!(answer, Ok(Ok(line)) if matches!(line.trim(), "y" | "Y" | "yes"));
        let _ = ask.reply.send(yes);
    }
}

/// `host_key_check = "off"` is a choice to trust the network; say so once per run.
fn warn_unchecked_host_keys(hosts: &[Host]) {
    let off: Vec<&str> = hosts
        .iter()
        .filter(|h| h.settings.host_key_check == HostKeyCheck::Off)
        .map(|h| h.name.as_str())
        .collect();
    if off.is_empty() {
        return;
    }
    let shown: Vec<&str> = off.iter().take(5).copied().collect();
    let more = if off.len() > shown.len() {
        format!(" and {} more", off.len() - shown.len())
    } else {
        String::new()
    };
    eprintln!(
        "capo: warning: host key checking is off for {} host{} ({}{more}); their identity is not verified",
        off.len(),
        if off.len() == 1 { "" } else { "s" },
        capo_report::sanitize::line(&shown.join(", ")),
    );
}

/// This machine's name, for lock holder messages.
fn controller_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-controller".to_string())
}

/// `20261124T224501Z-1a2b`: sortable by time, unique enough for runs started in the same second.
fn new_run_id(now: chrono::DateTime<chrono::Utc>) -> String {
    let salt = (std::process::id() ^ now.timestamp_subsec_nanos()) & 0xffff;
    format!("{}-{salt:04x}", now.format("%Y%m%dT%H%M%SZ"))
}
