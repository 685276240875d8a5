//! The bootstrap (`capo bootstrap`): make a new host ready for rollouts, or leave one that
//! already is alone.

use capo_ssh::Session;

use super::puppet::results;
use super::Job;
use crate::host::{HostRun, StepEnd, Verdict};
use crate::outcome::{puppet_hint, ErrorKind, HostError, HostStatus};
use crate::steps;

/// One step (`capo-bootstrap`): git and Puppet, the clone, the Puppetfile's modules and a
/// noop apply; `already` when `repo_dir` already is a checkout of `url`.
pub(super) struct Bootstrap<'a> {
    /// The URL the host clones.
    pub url: &'a str,
    /// `--rev`: the commit, tag or branch the clone is put at; None for the branch's tip.
    pub rev: Option<&'a str>,
    /// `--install`: install a missing git or Puppet.
    pub install: bool,
}

impl Job for Bootstrap<'_> {
    // Before the clone there is no git directory to hold the lock in; an existing checkout
    // is only looked at, and the noop apply writes nothing of Puppet's state but into its
    // own temporary directory, so it cannot get in a rollout's way.
    const TAKES_LOCK: bool = false;

    async fn run(&self, run: &mut HostRun, session: &Session) -> Verdict {
        let settings = run.host.settings.clone();
        let step = steps::bootstrap(
            &settings,
            self.url,
            self.rev,
            self.install,
            settings.command_timeout,
        );
        let (record, end, marks) = run.run_step(session, &step).await;
        let already = marks.get("already").is_some();
        if already {
            let head = marks.get("head").map(str::to_string);
            run.outcome.rev_before.clone_from(&head);
            run.outcome.rev_after = head;
        } else {
            run.outcome.rev_after = marks.get("rev-after").map(str::to_string);
        }
        run.outcome.target.clone_from(&run.outcome.rev_after);
        let stdout = String::from_utf8_lossy(&record.stdout_tail).into_owned();
        let stderr = String::from_utf8_lossy(&record.stderr_tail).into_owned();
        let exit_code = record.exit_code;
        run.finished(record).await;
        let applied = marks.get("results").is_some();
        if applied {
            run.outcome.puppet = match run.remote() {
                Ok(remote) => results(session, remote, &marks, exit_code, None).await,
                Err(_) => None,
            };
        }
        match end {
            StepEnd::Exited(0) if already => (HostStatus::Already, None),
            // --detailed-exitcodes: 0 or 2, it compiled (a noop run says 0 even with
            // changes pending).
            StepEnd::Exited(0 | 2) if applied => (HostStatus::Bootstrapped, None),
            StepEnd::Exited(code) if applied => {
                let short: String = run
                    .outcome
                    .rev_after
                    .as_deref()
                    .unwrap_or("?")
                    .chars()
                    .take(7)
                    .collect();
                let hint = puppet_hint(&stderr, &stdout)
                    .map(|h| format!(": {h}"))
                    .unwrap_or_default();
                // The clone is kept: once the code is fixed, a rollout takes it from there.
                (
                    HostStatus::Failed,
                    Some(HostError::new(
                        ErrorKind::Puppet,
                        format!(
                            "the noop apply of the clone failed (exit {code}){hint}; the clone stays in {} at {short}, and a rollout after a fix takes it from there",
                            settings.repo_dir
                        ),
                    )),
                )
            }
            StepEnd::Exited(_) => (
                HostStatus::Failed,
                Some(steps::classify_bootstrap_failure(
                    &settings, self.url, self.rev, &marks, &stdout, &stderr,
                )),
            ),
            other => other.verdict(&step),
        }
    }
}

/// The verdict of a host with no URL to clone (neither `--repo` nor `repo_url`): the binary
/// refuses such a run before any host is contacted, so only a bug gets here.
pub(super) fn no_url() -> Verdict {
    (
        HostStatus::Failed,
        Some(HostError::new(
            ErrorKind::Internal,
            "capo bootstrap without a URL: give --repo or set repo_url",
        )),
    )
}
