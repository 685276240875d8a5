//! SIGINT and SIGTERM, turned into the engine's typed stop requests.

use std::time::Duration;

use capo_engine::{Signal, Stop, StopReason};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// First SIGINT/SIGTERM: start no new hosts and give hosts in flight `grace` to finish.
/// Second signal, or the grace period over: stop them now. Records which signal came first,
/// which makes the run exit 130.
pub async fn watch(
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
