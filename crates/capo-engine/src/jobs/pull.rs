//! Pull mode's installation (`capo pull install`, `capo pull remove`): its job, the scripts
//! the job runs, and its timer or cron file, written on the host or removed from it. No lock:
//! a pull run under way finishes with the files it started with.

use capo_schema::PullReport;
use capo_ssh::Session;

use super::Job;
use crate::host::{HostRun, StepEnd, Verdict};
use crate::options::PullAction;
use crate::outcome::{ErrorKind, HostError, HostStatus};
use crate::steps;

/// Installs or removes pull mode.
pub(super) struct Pull<'a> {
    pub action: &'a PullAction,
}

impl Job for Pull<'_> {
    const TAKES_LOCK: bool = false;

    async fn run(&self, run: &mut HostRun, session: &Session) -> Verdict {
        let settings = run.host.settings.clone();
        let deadline = settings.command_timeout;
        let step = match self.action {
            PullAction::Install {
                schedule,
                scheduler,
                only_if_changed,
            } => {
                // No --deadline: the host's own command_timeout.
                let mut schedule = *schedule;
                if schedule.deadline.is_zero() {
                    schedule.deadline = settings.command_timeout;
                }
                steps::pull_install(
                    &settings,
                    &run.host.name,
                    &schedule,
                    scheduler,
                    *only_if_changed,
                    deadline,
                )
            }
            PullAction::Remove => steps::pull_remove(deadline),
            PullAction::Unpin => steps::pull_unpin(&settings, deadline),
        };
        let (record, end, marks) = run.run_step(session, &step).await;
        run.finished(record).await;
        let count = |key| marks.get(key).and_then(|n| n.parse::<u64>().ok());
        match end {
            StepEnd::Exited(0) if *self.action == PullAction::Unpin => {
                run.outcome.unpinned = marks.all("unpinned").last().map(str::to_string);
                (HostStatus::Ok, None)
            }
            StepEnd::Exited(0) => {
                run.outcome.pull = Some(match self.action {
                    PullAction::Install { schedule, .. } => PullReport {
                        installed: true,
                        scheduler: marks.get("scheduler").map(str::to_string),
                        interval_s: Some(schedule.interval.as_secs()),
                        changed: count("changed"),
                        active: Some(marks.get("active") == Some("yes")),
                        next: None,
                    },
                    PullAction::Remove | PullAction::Unpin => PullReport {
                        installed: false,
                        changed: count("removed"),
                        ..PullReport::default()
                    },
                });
                (HostStatus::Ok, None)
            }
            StepEnd::Exited(_) if marks.get("fail") == Some("write") => (
                HostStatus::Failed,
                Some(HostError::new(
                    ErrorKind::Command,
                    format!(
                        "cannot write {}; pull mode is installed as root (become)",
                        marks.get("path").unwrap_or("?")
                    ),
                )),
            ),
            other => other.verdict(&step),
        }
    }
}
