//! An ad-hoc command (`capo exec`): no lock, no checkout, no Puppet.

use capo_ssh::Session;

use super::Job;
use crate::host::{HostRun, StepEnd, Verdict};
use crate::outcome::{ErrorKind, HostError, HostStatus};
use crate::steps;

/// Runs `command` by `sh -c` on the host: `ok` on exit 0, `failed` otherwise.
pub(super) struct Exec<'a> {
    /// The remote command line.
    pub command: &'a str,
}

impl Job for Exec<'_> {
    // What the command does is the operator's business; capo takes no lock for it.
    const TAKES_LOCK: bool = false;

    async fn run(&self, run: &mut HostRun, session: &Session) -> Verdict {
        let step = steps::exec(self.command, run.host.settings.command_timeout);
        let (record, end, _) = run.run_step(session, &step).await;
        run.finished(record).await;
        match end {
            StepEnd::Exited(0) => (HostStatus::Ok, None),
            StepEnd::Exited(code) => (
                HostStatus::Failed,
                Some(HostError::new(
                    ErrorKind::Command,
                    format!("command exited {code}"),
                )),
            ),
            other => other.verdict(&step),
        }
    }
}
