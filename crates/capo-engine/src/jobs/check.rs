//! The preflight (`capo check`): how capo reached the host, and whether a rollout could run
//! there now. No lock is taken and nothing on the host changes.

use capo_inventory::Become;
use capo_schema::{
    BecomeReport, CheckReport, HostKeyReport, HostKeyTrust, IdentityReport, IdentitySource,
    LockReport, LockState, PuppetfileReport, RepoReport, RepoState,
};
use capo_ssh::{LoginIdentity, Session};

use super::Job;
use crate::host::{HostRun, StepEnd, Verdict};
use crate::outcome::HostStatus;
use crate::steps::{self, Marks};

/// Looks at the host over its connection: the identity and host key the connection used,
/// then the `capo-check` step (through `become`, as every step) for the rest.
pub(super) struct Check;

impl Job for Check {
    // It only looks; the lock is looked at by the step itself, without being held.
    const TAKES_LOCK: bool = false;

    async fn run(&self, run: &mut HostRun, session: &Session) -> Verdict {
        let settings = run.host.settings.clone();
        let mut report = run.outcome.check.take().unwrap_or_default();
        report.identity = Some(identity(session.identity()));
        report.host_key = session.host_key().map(|k| HostKeyReport {
            key_type: k.key_type,
            fingerprint: k.fingerprint,
            trust: match k.trust {
                capo_ssh::HostKeyTrust::Known => HostKeyTrust::KnownHosts,
                capo_ssh::HostKeyTrust::Recorded => HostKeyTrust::AcceptedNew,
                capo_ssh::HostKeyTrust::Certificate => HostKeyTrust::Certificate,
                capo_ssh::HostKeyTrust::Unchecked => HostKeyTrust::Unchecked,
            },
        });

        let step = steps::check(&settings, settings.command_timeout);
        let (record, end, marks) = run.run_step(session, &step).await;
        run.finished(record).await;
        if let Some(b) = report.become_.as_mut() {
            b.works = !matches!(end, StepEnd::Refused(_)) && marks.get("user").is_some();
        }
        let verdict = match end {
            StepEnd::Exited(0) => {
                found(&mut report, &settings.repo_dir, &marks);
                run.outcome.disabled = steps::disabled(&marks);
                match steps::check_problem(&settings, &marks) {
                    Some(error) => (HostStatus::Failed, Some(error)),
                    // A rollout would leave it alone.
                    None if run.outcome.disabled.is_some() => (HostStatus::Disabled, None),
                    None => (HostStatus::Ok, None),
                }
            }
            other => other.verdict(&step),
        };
        run.outcome.check = Some(report);
        verdict
    }
}

/// What a check knows before it connects: the login user, the jump hosts on the way and
/// `become` as the inventory sets it.
pub(super) fn before_connect(run: &HostRun) -> CheckReport {
    let s = &run.host.settings;
    CheckReport {
        user: s.user.clone(),
        jump: crate::connector::jump_path(&run.host),
        become_: (s.become_method == Become::Sudo).then(|| BecomeReport {
            method: s.become_method.as_str().to_string(),
            user: s.become_user.clone(),
            works: false,
        }),
        ..CheckReport::default()
    }
}

fn identity(id: &LoginIdentity) -> IdentityReport {
    match id {
        LoginIdentity::Agent {
            socket,
            comment,
            fingerprint,
            certificate,
        } => IdentityReport {
            source: IdentitySource::Agent,
            path: socket.display().to_string(),
            comment: Some(comment.clone()),
            fingerprint: fingerprint.clone(),
            certificate: *certificate,
        },
        LoginIdentity::File { path, fingerprint } => IdentityReport {
            source: IdentitySource::File,
            path: path.display().to_string(),
            comment: None,
            fingerprint: fingerprint.clone(),
            certificate: false,
        },
    }
}

/// Fills in what the check step's markers say.
fn found(report: &mut CheckReport, repo_dir: &str, marks: &Marks) {
    let version = |key| {
        marks
            .get(key)
            .filter(|v| *v != "missing")
            .map(str::to_string)
    };
    report.runs_as = marks.get("user").map(str::to_string);
    report.git = version("git");
    report.puppet = version("puppet");
    let state = match marks.get("repo") {
        Some("checkout") => RepoState::Checkout,
        Some("missing") => RepoState::Missing,
        Some("not-a-checkout") => RepoState::NotACheckout,
        _ => RepoState::Unknown,
    };
    report.repo = Some(RepoReport {
        dir: repo_dir.to_string(),
        state,
        head: marks.get("head").map(str::to_string),
        branch: marks.get("branch").map(str::to_string),
    });
    report.puppetfile = marks
        .get("puppetfile")
        .filter(|p| *p != "none")
        .map(|installer| PuppetfileReport {
            installer: installer.to_string(),
            installed: marks.get("installer") == Some("present"),
        });
    let lock = match marks.get("lock") {
        Some("free") => Some(LockState::Free),
        Some("held") => Some(LockState::Held),
        Some("busy") => Some(LockState::Busy),
        Some("off") => Some(LockState::Off),
        Some("unavailable") => Some(LockState::Unavailable),
        _ => None,
    };
    report.lock = lock.map(|state| LockReport {
        state,
        holder: marks.get("holder").map(str::to_string),
    });
}
