//! Steps that work with an exact target revision: `rollout --rev` (fast-forward to it, never
//! backwards) and `plan` (a dry run of it in a temporary copy), and reading a run's results.

use std::time::Duration;

use capo_inventory::Settings;
use capo_scripts::{Call, Script, EOF_MARK};

use super::{apply_command, lit, puppet_args, render_display, RunRecord, Step};
use crate::outcome::StepName;
use capo_scripts::join;

/// `rollout --rev` (`capo-sync-rev`): fetch, then fast-forward the checkout to the target. A
/// checkout already there does nothing; one already past it is left alone (`ahead`); one
/// that has diverged from it fails. capo never moves a checkout backwards.
///
/// With a `record` (not [`RunRecord::default`]), a sync that fails writes the run record.
pub fn sync_to_rev(
    settings: &Settings,
    rev: &str,
    holder: &str,
    record: &RunRecord,
    deadline: Duration,
) -> Step {
    let mut args = vec![
        settings.repo_dir.as_str(),
        &settings.remote,
        rev,
        holder,
        settings.puppetfile.as_str(),
    ];
    if !record.state_dir.is_empty() {
        args.extend(record.sync_args());
    }
    let call = Call::step(Script::SyncRev, args, deadline);
    let display = format!(
        "{} && {}",
        join(["git", "fetch", &settings.remote]),
        join(["git", "merge", "--ff-only", rev])
    );
    Step::new(StepName::Sync, display, call)
}

/// `plan` (`capo-plan`): fetch, resolve the target, list the incoming commits, materialize
/// the target in a temporary directory with `git archive` (nothing is written to the
/// checkout or its git directory), and run `puppet apply --noop` there with every piece of
/// Puppet state pointed into that directory. The directory is removed by [`collect`]
/// afterwards.
pub fn plan(settings: &Settings, rev: Option<&str>, deadline: Duration, show_diff: bool) -> Step {
    let command = apply_command(settings, &[lit("--noop")]);
    let mut args = vec![
        settings.repo_dir.clone(),
        settings.remote.clone(),
        settings.branch.clone(),
        rev.unwrap_or_default().to_string(),
        settings.puppetfile.as_str().to_string(),
    ];
    args.extend(puppet_args(settings, show_diff));
    Step::new(
        StepName::Plan,
        render_display(&command, "<target>"),
        Call::step(Script::Plan, args, deadline),
    )
}

/// Files a run left in its results directory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    /// `last_run_summary.yaml` of the run.
    pub summary: String,
    /// `last_run_report.yaml` of the run.
    pub report: String,
    /// Puppet's log as JSON lines.
    pub log: String,
}

/// Prints the results directory's files and removes the directory (`capo-collect`). `dir`
/// comes from the host; it is only used when it looks like one capo made.
pub fn collect(dir: &str) -> Option<String> {
    collect_call(dir).map(|call| call.command_line())
}

/// [`collect`] as a call, for the runner to send as the host's commands go (maybe through
/// sudo).
pub fn collect_call(dir: &str) -> Option<Call> {
    let name = dir.rsplit('/').next().unwrap_or("");
    let ours = dir.starts_with('/')
        && (name.starts_with("capo-run.") || name.starts_with("capo-plan."))
        && !dir.contains(['\n', '\0']);
    ours.then(|| Call::plain(Script::Collect, [dir]))
}

/// Splits [`collect`]'s output back into files.
pub fn split_collected(output: &str) -> Collected {
    let mut collected = Collected::default();
    let mut rest = output;
    for slot in [
        &mut collected.summary,
        &mut collected.report,
        &mut collected.log,
    ] {
        let Some(at) = rest.find(&format!("\n{EOF_MARK}")) else {
            break;
        };
        *slot = rest[..at].to_string();
        rest = rest[at + 1..]
            .split_once('\n')
            .map(|(_, after)| after)
            .unwrap_or("");
    }
    collected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_only_touches_directories_capo_made() {
        assert!(collect("/tmp/capo-plan.AbC123").is_some());
        assert!(collect("/var/tmp/capo-run.x").is_some());
        assert!(collect("/").is_none());
        assert!(collect("/home/me").is_none());
        assert!(collect("relative/capo-run.x").is_none());
    }

    #[test]
    fn collected_files_are_split_back() {
        let out = "a: 1\n\n::capo:eof=summary.yaml\n--- r\n\n::capo:eof=report.yaml\n{}\n\n::capo:eof=log.jsonl\n";
        let c = split_collected(out);
        assert_eq!(c.summary, "a: 1\n");
        assert_eq!(c.report, "--- r\n");
        assert_eq!(c.log, "{}\n");
    }
}
