//! Running the engine: its events go to the collector (the report), the progress display and
//! the `--events` log, while signals and `--confirm` questions are answered beside it.

use std::path::Path;
use std::time::Duration;

use capo_engine::{Confirm, EngineOptions, Event, Signal, Stop};
use capo_inventory::Host;
use capo_report::events::EventLog;
use capo_report::progress::Progress;
use capo_report::Collector;
use tokio::sync::{mpsc, watch};

use super::{confirm, signals};
use crate::error::Error;

/// Where a run's events go besides the report.
pub struct Watchers {
    /// The live display on stderr.
    pub progress: Progress,
    /// `--events`, while it can be written.
    pub event_log: Option<EventLog>,
    /// How long hosts in flight may finish after a first signal (`--grace`).
    pub grace: Duration,
}

/// Opens the `--events` file before the run starts, so a bad path is refused up front.
pub fn open_event_log(path: &Path) -> Result<EventLog, Error> {
    EventLog::create(path).map_err(|source| Error::EventLog {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs the engine over `hosts` to its end; returns what the events made of the run and the
/// signal that interrupted it, if one did.
pub async fn drive(
    hosts: Vec<Host>,
    options: EngineOptions,
    confirms: mpsc::Receiver<Confirm>,
    watchers: Watchers,
) -> (Collector, Option<Signal>) {
    let (stop_tx, stop_rx) = watch::channel(Stop::Run);
    let (signal_tx, mut signal_rx) = watch::channel(None::<Signal>);
    let signals = tokio::spawn(signals::watch(stop_tx, signal_tx, watchers.grace));
    let prompts = tokio::spawn(confirm::answer(confirms));
    let (tx, rx) = mpsc::channel(1024);
    let engine = tokio::spawn(capo_engine::run(hosts, options, tx, stop_rx));
    let collector = observe(rx, watchers.progress, watchers.event_log).await;
    if let Err(e) = engine.await {
        eprintln!("capo: the engine stopped unexpectedly: {e}");
    }
    signals.abort();
    prompts.abort();
    let interrupted = *signal_rx.borrow_and_update();
    (collector, interrupted)
}

/// Feeds every event to the collector, the progress display and the event log until the
/// engine closes the channel. A failing event log is dropped with a warning: the run goes on.
async fn observe(
    mut events: mpsc::Receiver<Event>,
    mut progress: Progress,
    mut event_log: Option<EventLog>,
) -> Collector {
    let mut collector = Collector::new();
    while let Some(event) = events.recv().await {
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
    collector
}
