//! The plan: `puppet apply --noop` on the target in a temporary copy of the checkout.

use capo_ssh::Session;

use super::puppet::results;
use super::Job;
use crate::host::{HostRun, StepEnd, Verdict};
use crate::outcome::{classify_apply, puppet_hint, HostStatus, Incoming, PuppetResult};
use crate::steps;

/// A dry run in one step: what would arrive (commits) and what Puppet would change.
pub(super) struct Plan<'a> {
    /// `--rev`; None for the remote branch `git pull` would bring.
    pub rev: Option<&'a str>,
}

impl Job for Plan<'_> {
    // It works in a temporary copy and changes nothing on the host, so it needs no lock.
    const TAKES_LOCK: bool = false;

    async fn run(&self, run: &mut HostRun, session: &Session) -> Verdict {
        let settings = run.host.settings.clone();
        let step = steps::plan(
            &settings,
            self.rev,
            settings.command_timeout,
            run.opts.show_diff,
        );
        let (record, end, marks) = run.run_step(session, &step).await;
        run.outcome.rev_before = marks.get("rev-before").map(str::to_string);
        run.outcome.rev_after = marks.get("rev-after").map(str::to_string);
        run.outcome.target = marks.get("target").map(str::to_string);
        if let Some(count) = marks.get("incoming-count").and_then(|c| c.parse().ok()) {
            run.outcome.incoming = Some(Incoming {
                count,
                commits: marks.all("incoming").map(str::to_string).collect(),
            });
        }
        let hint = puppet_hint(
            &String::from_utf8_lossy(&record.stderr_tail),
            &String::from_utf8_lossy(&record.stdout_tail),
        );
        let stdout = String::from_utf8_lossy(&record.stdout_tail).into_owned();
        let stderr = String::from_utf8_lossy(&record.stderr_tail).into_owned();
        let exit_code = record.exit_code;
        run.finished(record).await;
        let inline = run.inline.take();
        let puppet = match run.remote() {
            Ok(remote) => results(session, remote, &marks, exit_code, inline).await,
            Err(_) => None,
        };
        let out_of_sync = puppet.as_ref().is_some_and(PuppetResult::out_of_sync);
        run.outcome.puppet = puppet;
        let missing = steps::missing_puppet(&settings, &marks);
        match end {
            StepEnd::Exited(0) if marks.get("ahead").is_some() => (HostStatus::Ahead, None),
            // Puppet did not run: the target's modules could not be put in its copy.
            StepEnd::Exited(code) if code != 0 && steps::modules_failed(&marks) => (
                HostStatus::Failed,
                Some(steps::classify_modules_failure(
                    &settings, &marks, &stdout, &stderr,
                )),
            ),
            // Other failures before Puppet ran are about getting to the target.
            StepEnd::Exited(code)
                if code != 0 && missing.is_none() && marks.get("fail").is_some() =>
            {
                (
                    HostStatus::Failed,
                    Some(steps::classify_sync_failure(
                        &settings, self.rev, &marks, &stderr,
                    )),
                )
            }
            StepEnd::Exited(0 | 2) if out_of_sync => (HostStatus::WouldChange, None),
            StepEnd::Exited(0 | 2) => (HostStatus::Unchanged, None),
            StepEnd::Exited(code) => classify_apply(code, hint.as_deref(), missing.as_ref()),
            other => other.verdict(&step),
        }
    }
}
