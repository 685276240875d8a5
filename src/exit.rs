//! capo's exit statuses, and the one place that decides which one a command ends with.
//!
//! Scripts and CI jobs branch on these numbers, so each means one thing: 0 the run did what
//! was asked, 1 a host (or an output file) failed, 2 the command line or the inventory is
//! wrong and nothing ran, 3 a plan found changes under `--fail-on-changes`, 130 a signal
//! stopped the run.

use capo_engine::schema::{Report, Summary};
use capo_engine::HostStatus;

use crate::error::Error;

/// Every host did what was asked.
pub const SUCCESS: u8 = 0;
/// A host failed or was never started, the run halted, or an output file was not written.
pub const FAILURE: u8 = 1;
/// Bad usage or a bad inventory; no host was contacted (clap uses 2 for usage errors too).
pub const USAGE: u8 = 2;
/// `capo plan --fail-on-changes`: a host would change and none failed.
pub const WOULD_CHANGE: u8 = 3;
/// A run ended by SIGINT or SIGTERM, as shells report a SIGINT death.
pub const INTERRUPTED: u8 = 130;

/// How a command that did not fail outright ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A command that runs nothing on hosts (`capo hosts`) did its work.
    Done,
    /// A run on hosts ended.
    Run(RunEnd),
}

/// What of a finished run decides its exit status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunEnd {
    /// Counts per host status.
    pub summary: Summary,
    /// A signal stopped the run.
    pub interrupted: bool,
    /// The engine stopped starting hosts (canary, failure budget, batch not confirmed).
    pub halted: bool,
    /// `--fail-on-changes` was given.
    pub fail_on_changes: bool,
    /// A `--report`, `--junit`, `--summary-md` or `--html` file, or the report on stdout, could not be
    /// written.
    pub outputs_failed: bool,
    /// `capo status`: hosts looked at that are not `ok` or `changed`.
    pub unhealthy: usize,
}

impl RunEnd {
    /// The end of the run `report` tells of.
    pub fn of(report: &Report, fail_on_changes: bool, outputs_failed: bool) -> RunEnd {
        RunEnd {
            summary: report.summary.clone(),
            interrupted: report.interrupted.is_some(),
            halted: report.halted.is_some(),
            fail_on_changes,
            outputs_failed,
            unhealthy: report
                .hosts
                .iter()
                .filter(|h| h.host_state.as_ref().is_some_and(|s| !s.state.is_healthy()))
                .count(),
        }
    }
}

/// The exit status of a command that returned `result`.
///
/// A run's output files come first: a CI job that asked for `--report` and did not get it
/// must not pass, whatever the hosts did. Then an interruption, whatever the hosts did
/// before it; then hosts that fail the run ([`HostStatus::fails_run`]), a halt, or (`capo
/// status`) hosts that need attention; then
/// would-be changes when asked to fail on them.
pub fn code(result: &Result<Outcome, Error>) -> u8 {
    let end = match result {
        Err(e) => return e.exit_code(),
        Ok(Outcome::Done) => return SUCCESS,
        Ok(Outcome::Run(end)) => end,
    };
    if end.outputs_failed {
        FAILURE
    } else if end.interrupted {
        INTERRUPTED
    } else if end.summary.count_where(HostStatus::fails_run) > 0 || end.halted || end.unhealthy > 0
    {
        FAILURE
    } else if end.fail_on_changes && end.summary.would_change > 0 {
        WOULD_CHANGE
    } else {
        SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(statuses: &[(HostStatus, usize)]) -> RunEnd {
        let mut summary = Summary::default();
        for (status, n) in statuses {
            let slot = match status {
                HostStatus::Unchanged => &mut summary.unchanged,
                HostStatus::Changed => &mut summary.changed,
                HostStatus::Failed => &mut summary.failed,
                HostStatus::Unreachable => &mut summary.unreachable,
                HostStatus::Skipped => &mut summary.skipped,
                HostStatus::Cancelled => &mut summary.cancelled,
                HostStatus::WouldChange => &mut summary.would_change,
                HostStatus::Ahead => &mut summary.ahead,
                HostStatus::Ok => &mut summary.ok,
                HostStatus::Disabled => &mut summary.disabled,
                HostStatus::Bootstrapped => &mut summary.bootstrapped,
                HostStatus::Already => &mut summary.already,
            };
            *slot += n;
            summary.total += n;
        }
        RunEnd {
            summary,
            ..RunEnd::default()
        }
    }

    #[test]
    fn each_outcome_maps_to_its_exit_status() {
        use HostStatus::{
            Ahead, Cancelled, Changed, Failed, Skipped, Unchanged, Unreachable, WouldChange,
        };
        let with = |mut e: RunEnd, f: fn(&mut RunEnd)| {
            f(&mut e);
            e
        };
        let cases: Vec<(&str, RunEnd, u8)> = vec![
            ("all changed", end(&[(Changed, 2), (Unchanged, 1)]), 0),
            ("exec ok", end(&[(HostStatus::Ok, 3)]), 0),
            (
                "bootstrapped and already",
                end(&[(HostStatus::Bootstrapped, 2), (HostStatus::Already, 1)]),
                0,
            ),
            (
                "bootstrap with a failed host",
                end(&[(HostStatus::Bootstrapped, 1), (Failed, 1)]),
                1,
            ),
            ("ahead is not a failure", end(&[(Ahead, 2)]), 0),
            (
                "a disabled host is left alone on purpose",
                end(&[(Changed, 1), (HostStatus::Disabled, 1)]),
                0,
            ),
            ("no hosts", end(&[]), 0),
            (
                "status: a host that needs attention",
                with(end(&[(HostStatus::Ok, 2)]), |e| e.unhealthy = 1),
                1,
            ),
            ("a failed host", end(&[(Changed, 2), (Failed, 1)]), 1),
            ("an unreachable host", end(&[(Unreachable, 1)]), 1),
            ("a cancelled host", end(&[(Cancelled, 1)]), 1),
            ("a skipped host fails the run", end(&[(Skipped, 1)]), 1),
            (
                "halted with nothing failed",
                with(end(&[(Changed, 1)]), |e| e.halted = true),
                1,
            ),
            ("plan would change", end(&[(WouldChange, 2)]), 0),
            (
                "plan would change, --fail-on-changes",
                with(end(&[(WouldChange, 2)]), |e| e.fail_on_changes = true),
                3,
            ),
            (
                "--fail-on-changes, nothing would change",
                with(end(&[(Unchanged, 2)]), |e| e.fail_on_changes = true),
                0,
            ),
            (
                "--fail-on-changes, a host failed",
                with(end(&[(WouldChange, 1), (Failed, 1)]), |e| {
                    e.fail_on_changes = true
                }),
                1,
            ),
            (
                "interrupted",
                with(end(&[(Changed, 1), (Skipped, 2)]), |e| e.interrupted = true),
                130,
            ),
            (
                "interrupted, would change",
                with(end(&[(WouldChange, 1)]), |e| {
                    e.interrupted = true;
                    e.fail_on_changes = true;
                }),
                130,
            ),
            (
                "an output not written",
                with(end(&[(Changed, 1)]), |e| e.outputs_failed = true),
                1,
            ),
            (
                "an output not written, interrupted",
                with(end(&[(Skipped, 1)]), |e| {
                    e.outputs_failed = true;
                    e.interrupted = true;
                }),
                1,
            ),
        ];
        for (name, run_end, want) in cases {
            assert_eq!(code(&Ok(Outcome::Run(run_end))), want, "{name}");
        }
    }

    #[test]
    fn a_command_without_a_run_exits_0() {
        assert_eq!(code(&Ok(Outcome::Done)), SUCCESS);
    }

    #[test]
    fn errors_exit_2_for_usage_and_1_for_the_rest() {
        let io = || std::io::Error::other("boom");
        let cases: Vec<(Error, u8)> = vec![
            (Error::ConfirmWithoutTerminal, USAGE),
            (Error::Rerun(crate::select::RerunError::NoneSelected), USAGE),
            (
                Error::NoRepoUrl {
                    hosts: "web[01-02]".into(),
                },
                USAGE,
            ),
            (
                Error::EventLog {
                    path: "e.jsonl".into(),
                    source: io(),
                },
                USAGE,
            ),
            (
                Error::RunDir {
                    path: ".capo/runs/r1".into(),
                    source: io(),
                },
                FAILURE,
            ),
            (Error::Runtime(io()), FAILURE),
            (Error::NoReport, FAILURE),
            (
                Error::Runs(crate::history::HistoryError::NoRun {
                    id: "2025".into(),
                    dir: ".capo/runs".into(),
                }),
                USAGE,
            ),
            (
                Error::Runs(crate::history::HistoryError::Io {
                    path: ".capo/runs/index.jsonl".into(),
                    source: io(),
                }),
                FAILURE,
            ),
        ];
        for (error, want) in cases {
            let text = error.to_string();
            assert_eq!(code(&Err(error)), want, "{text}");
        }
    }

    #[test]
    fn usage_errors_keep_their_wording() {
        assert_eq!(
            Error::ConfirmWithoutTerminal.to_string(),
            "--confirm needs a terminal (stdin and stderr); run without --confirm in CI"
        );
        assert_eq!(
            Error::Rerun(crate::select::RerunError::NoneSelected).to_string(),
            "--rerun: none of those hosts is selected by this inventory and --limit"
        );
    }
}
