//! `capo check`'s one step (`capo-check`), and what its findings mean for a rollout.

use std::time::Duration;

use capo_inventory::Settings;
use capo_scripts::{Call, Marks, Script};

use super::{lock_error, locked_error, no_installer, no_repo_dir, not_a_repo, Step};
use crate::outcome::{classify_apply, ErrorKind, HostError, MissingPuppet, StepName};

/// The check step (`capo-check`): who capo's steps run as, git's and Puppet's versions,
/// what is at `repo_dir`, the Puppetfile's installer and the lock, changing nothing; see
/// `check.sh` for its markers.
pub fn check(settings: &Settings, deadline: Duration) -> Step {
    let lock = if settings.lock { "1" } else { "0" };
    let call = Call::step(
        Script::Check,
        [
            settings.repo_dir.as_str(),
            &settings.puppet,
            settings.puppetfile.as_str(),
            lock,
            &settings.state_dir,
        ],
        deadline,
    );
    Step::new(StepName::Check, "capo check".to_string(), call)
}

/// The command that installs `package` with the host's package manager `pkg` (as the check
/// and modules scripts name it: apt, dnf, yum, zypper or apk).
pub fn install_command(pkg: Option<&str>, package: &str) -> String {
    match pkg {
        Some("apt") => format!("apt-get install {package}"),
        Some("apk") => format!("apk add {package}"),
        Some(pkg @ ("dnf" | "yum" | "zypper")) => format!("{pkg} install {package}"),
        _ => format!("install {package}"),
    }
}

/// The first thing the check's markers show that would stop a rollout on the host, in the
/// order a rollout meets them (git and the checkout, the lock, the Puppetfile's installer,
/// Puppet), with the error the rollout would end with; None when nothing would.
pub fn check_problem(settings: &Settings, marks: &Marks) -> Option<HostError> {
    let dir = &settings.repo_dir;
    let pkg = marks.get("pkg");
    let path = marks.get("search-path").unwrap_or("?");
    if marks.get("git") == Some("missing") {
        return Some(HostError::new(
            ErrorKind::Sync,
            format!(
                "git not found on host (PATH={path}); install it ({})",
                install_command(pkg, "git")
            ),
        ));
    }
    match marks.get("repo") {
        Some("checkout") => {}
        Some("missing") => return Some(HostError::new(ErrorKind::Sync, no_repo_dir(dir))),
        Some("not-a-checkout") => {
            let why = marks.get("why").unwrap_or("");
            let message = if why.contains("dubious ownership") {
                format!(
                    "git refuses repo_dir {dir}: it belongs to another user than {} (git's safe.directory); run capo's steps as its owner (become) or trust it with git config --global --add safe.directory {dir}",
                    marks.get("user").unwrap_or("the remote user")
                )
            } else if why.is_empty() {
                not_a_repo(dir)
            } else {
                format!("{} ({why})", not_a_repo(dir))
            };
            return Some(HostError::new(ErrorKind::Sync, message));
        }
        other => {
            return Some(HostError::new(
                ErrorKind::Internal,
                format!(
                    "capo-check said nothing usable about repo_dir {dir} ({})",
                    other.unwrap_or("no answer")
                ),
            ))
        }
    }
    match marks.get("lock") {
        Some("held" | "busy") => return Some(locked_error(marks)),
        Some("unavailable") => return Some(lock_error(marks, "")),
        _ => {}
    }
    if marks.get("installer") == Some("missing") {
        let installer = marks
            .get("puppetfile")
            .unwrap_or(settings.puppetfile.as_str());
        return Some(HostError::new(
            ErrorKind::Modules,
            no_installer(installer, pkg),
        ));
    }
    if marks.get("puppet") == Some("missing") {
        let missing = MissingPuppet {
            command: settings.puppet.clone(),
            path: path.to_string(),
        };
        return classify_apply(127, None, Some(&missing)).1;
    }
    None
}
