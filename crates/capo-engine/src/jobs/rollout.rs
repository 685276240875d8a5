//! The rollout: bring the checkout to the target, then `puppet apply` it.

use capo_ssh::Session;

use super::puppet::results;
use super::Job;
use crate::host::{HostRun, StepEnd, Verdict};
use crate::outcome::{classify_apply, puppet_hint, HostStatus};
use crate::steps;

/// Sync (`git pull --ff-only`, or fast-forward to `rev`), then the Puppetfile's modules when
/// the sync says they are stale, then apply; a failed sync or modules step means apply does
/// not run.
pub(super) struct Rollout<'a> {
    /// `--rev`: an exact commit, tag or branch; None for what `git pull` brings.
    pub rev: Option<&'a str>,
}

impl Job for Rollout<'_> {
    // It moves the checkout and applies the catalog: two runs at once would race.
    const TAKES_LOCK: bool = true;

    async fn run(&self, run: &mut HostRun, session: &Session) -> Verdict {
        let settings = run.host.settings.clone();
        let deadline = settings.command_timeout;
        let holder = run.step_lock_holder().to_string();
        let rev = self.rev;
        // The steps write the host's run record themselves (a failed sync or modules step,
        // and apply whatever its end): no round trip of its own.
        let mut run_record =
            steps::RunRecord::push(&settings, &run.opts.meta.run_id, &run.opts.holder);

        // Sync: a failed sync means apply does not run.
        let sync = match rev {
            Some(rev) => steps::sync_to_rev(&settings, rev, &holder, &run_record, deadline),
            None => steps::sync(&settings, &holder, &run_record, deadline),
        };
        // Modules or apply come next: their channel opens while the sync runs.
        let (record, end, marks) = run.run_step_then(session, &sync).await;
        run_record.after_sync(&marks);
        run.outcome.run_record_error = steps::record_error(&marks);
        run.outcome.rev_before = marks.get("rev-before").map(str::to_string);
        run.outcome.rev_after = marks.get("rev-after").map(str::to_string);
        run.outcome.target = marks
            .get("target")
            .map(str::to_string)
            .or_else(|| run.outcome.rev_after.clone().filter(|_| end.succeeded()));
        let stderr = String::from_utf8_lossy(&record.stderr_tail).into_owned();
        run.finished(record).await;
        match end {
            StepEnd::Exited(0) if marks.get("ahead").is_some() => {
                return (HostStatus::Ahead, None);
            }
            StepEnd::Exited(0) => {}
            StepEnd::Exited(_) => {
                return (
                    HostStatus::Failed,
                    Some(steps::classify_sync_failure(
                        &settings, rev, &marks, &stderr,
                    )),
                )
            }
            other => return other.verdict(&sync),
        }

        if steps::modules_stale(&marks) {
            let modules = steps::modules(&settings, &holder, &run_record, deadline);
            let (record, end, marks) = run.run_step_then(session, &modules).await;
            run.outcome.run_record_error = steps::record_error(&marks);
            let stdout = String::from_utf8_lossy(&record.stdout_tail).into_owned();
            let stderr = String::from_utf8_lossy(&record.stderr_tail).into_owned();
            run.finished(record).await;
            match end {
                StepEnd::Exited(0) => {}
                StepEnd::Exited(_) => {
                    return (
                        HostStatus::Failed,
                        Some(steps::classify_modules_failure(
                            &settings, &marks, &stdout, &stderr,
                        )),
                    )
                }
                other => return other.verdict(&modules),
            }
        }

        let apply = steps::apply(
            &settings,
            &holder,
            &run_record,
            deadline,
            run.opts.show_diff,
        );
        let (record, end, marks) = run.run_step(session, &apply).await;
        run.outcome.run_record_error = steps::record_error(&marks);
        let hint = puppet_hint(
            &String::from_utf8_lossy(&record.stderr_tail),
            &String::from_utf8_lossy(&record.stdout_tail),
        );
        let exit_code = record.exit_code;
        run.finished(record).await;
        let inline = run.inline.take();
        run.outcome.puppet = match run.remote() {
            Ok(remote) => results(session, remote, &marks, exit_code, inline).await,
            Err(_) => None,
        };
        match end {
            StepEnd::Exited(code) => classify_apply(
                code,
                hint.as_deref(),
                steps::missing_puppet(&settings, &marks).as_ref(),
            ),
            other => other.verdict(&apply),
        }
    }
}
