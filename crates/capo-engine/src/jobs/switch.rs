//! The maintenance switch (`capo disable`, `capo enable`): writes or removes the file in the
//! host's `state_dir` that rollouts (and pull runs) honour. Takes no lock: a run under way
//! finishes; the next one is refused.

use capo_ssh::Session;

use super::Job;
use crate::host::{HostRun, StepEnd, Verdict};
use crate::outcome::{ErrorKind, HostError, HostStatus};
use crate::steps;

/// `Some((message, by))` disables the host; `None` enables it.
pub(super) struct Switch<'a> {
    pub disable: Option<(&'a str, &'a str)>,
}

impl Job for Switch<'_> {
    const TAKES_LOCK: bool = false;

    async fn run(&self, run: &mut HostRun, session: &Session) -> Verdict {
        let settings = run.host.settings.clone();
        let step = steps::disable(&settings, self.disable, settings.command_timeout);
        let (record, end, marks) = run.run_step(session, &step).await;
        run.finished(record).await;
        // After `disable`: capo's switch as written; after `enable`: Puppet's, if it still
        // disables runs.
        run.outcome.disabled = steps::disabled(&marks);
        match end {
            StepEnd::Exited(0) => (HostStatus::Ok, None),
            StepEnd::Exited(_) if marks.get("fail") == Some("write") => (
                HostStatus::Failed,
                Some(HostError::new(
                    ErrorKind::Command,
                    format!(
                        "cannot write {}/disabled as {}; set state_dir to a directory it can write, or use become",
                        marks.get("path").unwrap_or(&settings.state_dir),
                        if settings.become_method == capo_inventory::Become::Sudo {
                            settings.become_user.as_str()
                        } else {
                            settings.user.as_str()
                        }
                    ),
                )),
            ),
            other => other.verdict(&step),
        }
    }
}
