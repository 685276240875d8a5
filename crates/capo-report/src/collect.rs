//! Builds the [`Report`] from the engine's events.

use std::collections::HashMap;
use std::time::Duration;

use capo_engine::{Event, HostOutcome, PuppetResult, RunMeta, StepRecord};
use capo_schema::{
    DiffReport, ErrorKind, ErrorReport, EventReport, HaltReason, HostReport, HostStatus,
    HostTiming, IncomingReport, PuppetReport, Report, RevisionCount, StepReport, Summary, SCHEMA,
};
use chrono::{DateTime, SecondsFormat, Utc};

/// Subscribes to events and, once the run has finished, yields the report.
#[derive(Debug, Default)]
pub struct Collector {
    meta: Option<RunMeta>,
    order: Vec<String>,
    started_at: Option<DateTime<Utc>>,
    finished: Option<(DateTime<Utc>, Duration)>,
    halted: Option<HaltReason>,
    outcomes: HashMap<String, HostOutcome>,
}

impl Collector {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in one event.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                meta,
                hosts,
                started_at,
            } => {
                self.meta = Some(meta.clone());
                self.order = hosts.clone();
                self.started_at = Some(*started_at);
            }
            Event::HostFinished { outcome } => {
                self.outcomes
                    .insert(outcome.name.clone(), (**outcome).clone());
            }
            Event::RunFinished {
                finished_at,
                duration,
                halted,
            } => {
                self.finished = Some((*finished_at, *duration));
                self.halted = halted.clone();
            }
            Event::HostStarted { .. }
            | Event::StepStarted { .. }
            | Event::StepFinished { .. }
            | Event::BatchStarted { .. }
            | Event::BatchFinished { .. }
            | Event::Output { .. } => {}
        }
    }

    /// The outcomes seen so far, in inventory order.
    pub fn outcomes(&self) -> impl Iterator<Item = &HostOutcome> {
        self.order.iter().filter_map(|n| self.outcomes.get(n))
    }

    /// The report, or None if the run never started.
    pub fn report(&self) -> Option<Report> {
        let meta = self.meta.as_ref()?;
        let started_at = self.started_at.unwrap_or_else(Utc::now);
        let (finished_at, duration) = self.finished.unwrap_or_else(|| {
            let now = Utc::now();
            (now, (now - started_at).to_std().unwrap_or_default())
        });
        // Every selected host is in the report, even one the engine never finished (it died).
        let hosts: Vec<HostReport> = self
            .order
            .iter()
            .map(|name| match self.outcomes.get(name) {
                Some(o) => host_report(o),
                None => lost_host(name, &meta.run_dir),
            })
            .collect();
        let mut summary = Summary::of(&hosts);
        summary.revisions = revisions(&hosts);
        Some(Report {
            schema: SCHEMA.to_string(),
            run_id: meta.run_id.clone(),
            mode: meta.mode,
            target_rev: meta.target_rev.clone(),
            started_at: started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            finished_at: finished_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            duration_ms: millis(duration),
            inventory: meta.inventory.display().to_string(),
            limit: meta.limit.clone(),
            interrupted: None,
            halted: self.halted.as_ref().map(ToString::to_string),
            run_dir: meta.run_dir.display().to_string(),
            summary,
            hosts,
            shard: None,
            seed: None,
            parts: Vec::new(),
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn lost_host(name: &str, run_dir: &std::path::Path) -> HostReport {
    HostReport {
        error: Some(ErrorReport {
            kind: ErrorKind::Internal,
            message: "capo stopped before this host reported a result".to_string(),
        }),
        log_dir: run_dir.display().to_string(),
        ..HostReport::new(name, HostStatus::Failed)
    }
}

/// Hosts grouped by the commit their checkout is at after the run, most first; hosts whose
/// revision is unknown (unreachable, no checkout) are not counted.
pub(crate) fn revisions(hosts: &[HostReport]) -> Vec<RevisionCount> {
    let mut counts: Vec<RevisionCount> = Vec::new();
    for h in hosts {
        let Some(rev) = h.rev_after.as_ref().or(h.rev_before.as_ref()) else {
            continue;
        };
        let ahead = h.status == HostStatus::Ahead;
        match counts
            .iter_mut()
            .find(|c| &c.rev == rev && c.ahead == ahead)
        {
            Some(c) => c.hosts += 1,
            None => counts.push(RevisionCount {
                rev: rev.clone(),
                hosts: 1,
                ahead,
            }),
        }
    }
    // Stable: equal counts keep first-seen (inventory) order.
    counts.sort_by_key(|c| std::cmp::Reverse(c.hosts));
    counts
}

fn puppet_report(p: &PuppetResult) -> PuppetReport {
    PuppetReport {
        exit_code: p.exit_code,
        resources: p
            .summary
            .as_ref()
            .and_then(|s| serde_json::to_value(&s.resources).ok()),
        event_counts: p
            .summary
            .as_ref()
            .and_then(|s| serde_json::to_value(&s.events).ok()),
        config_version: p.summary.as_ref().and_then(|s| s.config_version.clone()),
        events: p
            .events
            .iter()
            .map(|e| EventReport {
                resource: e.resource.clone(),
                property: e.property.clone(),
                previous: e.previous.clone(),
                desired: e.desired.clone(),
                status: e.status.clone(),
                message: e.message.clone(),
            })
            .collect(),
        diffs: p
            .diffs
            .iter()
            .map(|d| DiffReport {
                resource: d.resource.clone(),
                diff: d.diff.clone(),
            })
            .collect(),
        unreadable: p.unreadable.clone(),
    }
}

fn host_report(o: &HostOutcome) -> HostReport {
    HostReport {
        name: o.name.clone(),
        address: o.address.clone(),
        port: o.port,
        status: o.status,
        error: o.error.as_ref().map(|e| ErrorReport {
            kind: e.kind,
            message: e.message.clone(),
        }),
        rev_before: o.rev_before.clone(),
        rev_after: o.rev_after.clone(),
        duration_ms: millis(o.duration),
        log_dir: o.log_dir.display().to_string(),
        connect_attempts: o.connect_attempts,
        locked: o.locked,
        steps: o.steps.iter().map(step_report).collect(),
        target: o.target.clone(),
        incoming: o.incoming.as_ref().map(|i| IncomingReport {
            count: i.count,
            commits: i.commits.clone(),
        }),
        puppet: o.puppet.as_ref().map(puppet_report),
        check: o.check.clone(),
        disabled: o.disabled.clone(),
        run_record_error: o.run_record_error.clone(),
        host_state: o.host_state.clone(),
        pull: o.pull.clone(),
        unpinned: o.unpinned.clone(),
        position: None,
        timing: o.timing.map(|t| HostTiming {
            started_ms: millis(t.started),
            connect_ms: millis(t.connect),
            lock_ms: t.lock.map(millis),
        }),
    }
}

fn step_report(s: &StepRecord) -> StepReport {
    StepReport {
        name: s.name,
        command: s.command.clone(),
        exit_code: s.exit_code,
        duration_ms: millis(s.duration),
        stdout_tail: String::from_utf8_lossy(&s.stdout_tail).into_owned(),
        stderr_tail: String::from_utf8_lossy(&s.stderr_tail).into_owned(),
        truncated: s.truncated,
        log_error: s.log_error.clone(),
        started_ms: Some(millis(s.started)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capo_engine::{HostTiming as Timing, Mode, StepName};

    fn outcome(name: &str, timing: Option<Timing>, steps: Vec<StepRecord>) -> HostOutcome {
        HostOutcome {
            name: name.into(),
            address: "10.0.0.1".into(),
            port: 22,
            status: HostStatus::Changed,
            error: None,
            rev_before: None,
            rev_after: None,
            duration: Duration::from_millis(900),
            steps,
            log_dir: "d".into(),
            connect_attempts: 1,
            locked: Some(true),
            target: None,
            incoming: None,
            puppet: None,
            check: None,
            disabled: None,
            run_record_error: None,
            host_state: None,
            pull: None,
            unpinned: None,
            timing,
        }
    }

    fn step(name: StepName, started: u64, duration: u64) -> StepRecord {
        StepRecord {
            name,
            command: String::new(),
            exit_code: Some(0),
            duration: Duration::from_millis(duration),
            stdout_tail: Vec::new(),
            stderr_tail: Vec::new(),
            stdout_bytes: 0,
            stderr_bytes: 0,
            truncated: false,
            log_error: None,
            started: Duration::from_millis(started),
        }
    }

    #[test]
    fn the_hosts_timing_and_each_steps_start_go_into_the_report() {
        let ms = Duration::from_millis;
        let mut c = Collector::new();
        c.observe(&Event::RunStarted {
            meta: RunMeta {
                run_id: "r1".into(),
                mode: Mode::Rollout,
                inventory: "i.toml".into(),
                limit: None,
                run_dir: "runs/r1".into(),
                target_rev: None,
            },
            hosts: vec!["a".into(), "b".into()],
            started_at: Utc::now(),
        });
        let timing = Timing {
            started: ms(120),
            connect: ms(35),
            lock: Some(ms(4)),
        };
        let steps = vec![
            step(StepName::Sync, 160, 300),
            step(StepName::Apply, 461, 500),
        ];
        c.observe(&Event::HostFinished {
            outcome: Box::new(outcome("a", Some(timing), steps)),
        });
        c.observe(&Event::HostFinished {
            outcome: Box::new(outcome("b", None, Vec::new())),
        });
        let report = c.report().expect("a report");
        assert_eq!(
            report.hosts[0].timing,
            Some(HostTiming {
                started_ms: 120,
                connect_ms: 35,
                lock_ms: Some(4)
            })
        );
        let starts: Vec<Option<u64>> = report.hosts[0].steps.iter().map(|s| s.started_ms).collect();
        assert_eq!(starts, [Some(160), Some(461)]);
        // A host never started has none, and the JSON leaves the field out.
        assert_eq!(report.hosts[1].timing, None);
        let json = serde_json::to_value(&report.hosts[1]).expect("serialises");
        assert!(json.get("timing").is_none(), "{json}");
    }
}
