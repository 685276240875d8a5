//! `capo rollout`: runs the engine and feeds its events to the reporters.

use std::process::ExitCode;

use capo_report::Collector;
use capo_rollout::{EngineOptions, Mode, RunMeta, DEFAULT_TAIL_BYTES};
use tokio::sync::mpsc;

use crate::cli::{Format, RolloutArgs};
use crate::hosts::select;

pub fn run(args: &RolloutArgs) -> ExitCode {
    let (_inventory, hosts) = match select(&args.selection) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let run_id = new_run_id();
    let run_dir = args.runs_dir.join(&run_id);
    if let Err(e) = std::fs::create_dir_all(&run_dir) {
        eprintln!(
            "capo: cannot create run directory {}: {e}",
            run_dir.display()
        );
        return ExitCode::FAILURE;
    }
    let options = EngineOptions {
        meta: RunMeta {
            run_id,
            mode: Mode::Rollout,
            inventory: args.selection.inventory.clone(),
            limit: args.selection.limit.clone(),
            run_dir,
        },
        concurrency: args.concurrency as usize,
        tail_bytes: DEFAULT_TAIL_BYTES,
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("capo: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let collector = runtime.block_on(async move {
        let (tx, mut rx) = mpsc::channel(1024);
        let engine = tokio::spawn(capo_rollout::run(hosts, options, tx));
        let mut collector = Collector::new();
        while let Some(event) = rx.recv().await {
            collector.observe(&event);
        }
        if let Err(e) = engine.await {
            eprintln!("capo: the rollout engine stopped unexpectedly: {e}");
        }
        collector
    });

    let Some(report) = collector.report() else {
        eprintln!("capo: the run produced no report");
        return ExitCode::FAILURE;
    };
    let mut code = if report.summary.failed + report.summary.unreachable > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    };
    if let Some(path) = &args.report {
        if let Err(e) = capo_report::json::write_atomic(&report, path) {
            eprintln!("capo: {e}");
            code = ExitCode::FAILURE;
        }
    }
    match args.format {
        Format::Table => print!("{}", capo_report::table::render(&report)),
        Format::Json => match capo_report::json::to_string(&report) {
            Ok(text) => print!("{text}"),
            Err(e) => {
                eprintln!("capo: cannot encode report: {e}");
                code = ExitCode::FAILURE;
            }
        },
    }
    code
}

/// `20261124T224501Z-1a2b`: sortable by time, unique enough for runs started in the same second.
fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let salt = (std::process::id() ^ now.timestamp_subsec_nanos()) & 0xffff;
    format!("{}-{salt:04x}", now.format("%Y%m%dT%H%M%SZ"))
}
