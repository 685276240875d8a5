//! The scheduler: hosts in batches (the canary first), at most `concurrency` at a time, the
//! failure budget, the pause and `--confirm` between batches, and the controller's stop. It
//! knows nothing of what runs on a host: each host is one task of the per-host runner, and
//! what comes back is its outcome.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use capo_inventory::Host;
use capo_schema::HaltReason;
use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::connector::Connector;
use crate::event::Event;
use crate::host::{internal_failure, not_started, run_host, skipped};
use crate::options::{wait_for_stop, Confirm, EngineOptions, Stop};
use crate::outcome::{HostError, HostOutcome};
use crate::strategy;

/// Runs over `hosts` (in the given order) batch by batch and sends every event to `events`.
///
/// Every host ends with exactly one `HostFinished`, then `RunFinished` is sent last, also when
/// `stop` asks to end early, the canary fails or the failure budget runs out. A closed event
/// channel does not stop the run: the hosts' work matters more than its display.
pub async fn run(
    hosts: Vec<Host>,
    options: EngineOptions,
    events: mpsc::Sender<Event>,
    stop: watch::Receiver<Stop>,
) {
    let started = Instant::now();
    let opts = Arc::new(options);
    let emit = Emitter(events);
    emit.send(Event::RunStarted {
        meta: opts.meta.clone(),
        hosts: hosts.iter().map(|h| h.name.clone()).collect(),
        started_at: Utc::now(),
    })
    .await;

    let total = hosts.len();
    let plan = strategy::plan(total, &opts.strategy);
    let allowed = opts.strategy.max_failures.map(|b| b.allowed(total));
    let mut dispatch = Dispatch {
        opts: opts.clone(),
        connector: Arc::new(Connector::new(opts.ssh.clone())),
        emit: emit.clone(),
        stop,
        stop_open: true,
        failures: 0,
        allowed,
        halted: None,
        started,
    };
    let mut remaining: VecDeque<Host> = hosts.into();
    for (index, range) in plan.into_iter().enumerate() {
        let batch: Vec<Host> = remaining
            .drain(..range.len().min(remaining.len()))
            .collect();
        if index > 0 && dispatch.halted.is_none() {
            dispatch.between_batches(index, &batch).await;
        }
        let names: Vec<String> = batch.iter().map(|h| h.name.clone()).collect();
        if let Some(error) = dispatch.why_not_start() {
            for host in &batch {
                dispatch
                    .finish(skipped(host, &opts.meta.run_dir, error.clone()))
                    .await;
            }
            continue;
        }
        emit.send(Event::BatchStarted {
            index,
            hosts: names.clone(),
        })
        .await;
        let failed = dispatch.run_batch(batch).await;
        emit.send(Event::BatchFinished { index }).await;
        if index == 0 && opts.strategy.canary > 0 && !failed.is_empty() {
            dispatch
                .halted
                .get_or_insert(HaltReason::CanaryFailed { hosts: failed });
        }
    }
    // Every host is done with its jump hosts: say goodbye to them properly.
    dispatch.connector.close().await;

    emit.send(Event::RunFinished {
        finished_at: Utc::now(),
        duration: started.elapsed(),
        halted: dispatch.halted.clone(),
    })
    .await;
}

/// The state of a run between and within batches.
struct Dispatch {
    opts: Arc<EngineOptions>,
    /// What every host's connection shares (files read once, unlocked keys, the agent; later
    /// bastions).
    connector: Arc<Connector>,
    emit: Emitter,
    stop: watch::Receiver<Stop>,
    stop_open: bool,
    /// Hosts so far whose status counts against the failure budget.
    failures: usize,
    /// The failure budget, in hosts.
    allowed: Option<usize>,
    /// Why the run stopped starting hosts (canary, budget, declined), if it did.
    halted: Option<HaltReason>,
    /// When the run started: every host's timing counts from here.
    started: Instant,
}

impl Dispatch {
    /// Why no new host may start now, if so, as the error of a host not started: a stop the
    /// controller asked for interrupts the run, a halt of the engine's own aborts it.
    fn why_not_start(&self) -> Option<HostError> {
        let stop = self.stop.borrow().reason();
        match (stop, &self.halted) {
            (Some(reason), _) => Some(not_started(reason.error_kind(), &reason)),
            (None, Some(halt)) => Some(not_started(halt.error_kind(), halt)),
            (None, None) => None,
        }
    }

    async fn finish(&mut self, outcome: HostOutcome) {
        if outcome.status.counts_against_budget() {
            self.failures += 1;
            if let Some(allowed) = self.allowed {
                if self.failures > allowed && self.halted.is_none() {
                    self.halted = Some(HaltReason::FailureBudget {
                        failures: self.failures,
                        allowed,
                    });
                }
            }
        }
        self.emit
            .send(Event::HostFinished {
                outcome: Box::new(outcome),
            })
            .await;
    }

    /// The pause and the operator's confirmation before a batch; either may halt the run.
    async fn between_batches(&mut self, index: usize, batch: &[Host]) {
        let pause = self.opts.strategy.pause;
        if !pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = wait_for_stop(&mut self.stop) => return,
            }
        }
        if let Some(confirm) = &self.opts.confirm {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let asked = confirm
                .send(Confirm {
                    batch: index,
                    hosts: batch.iter().map(|h| h.name.clone()).collect(),
                    reply,
                })
                .await;
            let go = match asked {
                Ok(()) => tokio::select! {
                    a = answer => a.unwrap_or(false),
                    _ = wait_for_stop(&mut self.stop) => return,
                },
                Err(_) => false,
            };
            if !go {
                self.halted
                    .get_or_insert(HaltReason::NotConfirmed { batch: index });
            }
        }
    }

    /// Runs one batch to its end; returns the names of the hosts that failed in it.
    async fn run_batch(&mut self, batch: Vec<Host>) -> Vec<String> {
        let opts = self.opts.clone();
        let concurrency = opts.concurrency.max(1);
        let mut pending: VecDeque<Host> = batch.into();
        let mut running: JoinSet<HostOutcome> = JoinSet::new();
        // Kept so a host whose task panicked still gets a status.
        let mut names: HashMap<tokio::task::Id, Host> = HashMap::new();
        let mut failed = Vec::new();
        loop {
            if let Some(error) = self.why_not_start().filter(|_| !pending.is_empty()) {
                while let Some(host) = pending.pop_front() {
                    self.finish(skipped(&host, &opts.meta.run_dir, error.clone()))
                        .await;
                }
            }
            // Hosts start in order; the next one starts as soon as a slot frees up.
            while running.len() < concurrency {
                let Some(host) = pending.pop_front() else {
                    break;
                };
                self.emit
                    .send(Event::HostStarted {
                        host: host.name.clone(),
                    })
                    .await;
                let task = run_host(
                    host.clone(),
                    opts.clone(),
                    self.connector.clone(),
                    self.emit.clone(),
                    self.stop.clone(),
                    self.started,
                );
                let handle = running.spawn(task);
                names.insert(handle.id(), host);
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                joined = running.join_next_with_id() => {
                    let outcome = match joined {
                        Some(Ok((id, outcome))) => {
                            names.remove(&id);
                            outcome
                        }
                        Some(Err(err)) => {
                            let host = names.remove(&err.id());
                            internal_failure(host, &opts.meta.run_dir, &err.to_string())
                        }
                        None => continue,
                    };
                    if outcome.status.is_failure() {
                        failed.push(outcome.name.clone());
                    }
                    self.finish(outcome).await;
                }
                changed = self.stop.changed(), if self.stop_open => {
                    // A dropped sender means nobody can ask us to stop any more.
                    self.stop_open = changed.is_ok();
                }
            }
        }
        failed
    }
}

/// Where the engine's events go.
#[derive(Clone)]
pub(super) struct Emitter(mpsc::Sender<Event>);

impl Emitter {
    /// Sends `event`, ignoring a receiver that went away.
    pub(super) async fn send(&self, event: Event) {
        // A reporter that went away must not stop the rollout; its loss is the binary's to report.
        let _ = self.0.send(event).await;
    }
}
