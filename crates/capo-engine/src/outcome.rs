//! What happened on a host: step records, outcomes, and how raw results map to statuses and
//! error kinds (the words themselves are [`capo_schema`]'s).

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use capo_schema::{ErrorKind, HostStatus, StepName};

/// A classified failure: a kind for machines and one line for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostError {
    /// The failure class.
    pub kind: ErrorKind,
    /// One line a person can act on.
    pub message: String,
}

impl HostError {
    /// Builds an error of `kind`, folding the message onto one line.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        HostError {
            kind,
            message: one_line(&message.into()),
        }
    }
}

/// What one remote step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    /// Which step.
    pub name: StepName,
    /// The command as a person would type it (when the step fails, the exact script sent is
    /// in the log directory).
    pub command: String,
    /// The remote exit code; `None` when the command did not finish (timeout, lost connection,
    /// killed by a signal).
    pub exit_code: Option<i32>,
    /// Wall time of the step.
    pub duration: Duration,
    /// The last bytes of stdout (capped), raw.
    pub stdout_tail: Vec<u8>,
    /// The last bytes of stderr (capped), raw.
    pub stderr_tail: Vec<u8>,
    /// Total bytes of stdout seen (the tail may hold fewer).
    pub stdout_bytes: u64,
    /// Total bytes of stderr seen.
    pub stderr_bytes: u64,
    /// Whether either tail holds less than its whole stream (the log files have all of it).
    pub truncated: bool,
    /// Why the step's log files are incomplete or missing, if they are (e.g. no space left,
    /// or too many open files).
    pub log_error: Option<String>,
    /// When the step started, from the run's start (what a timeline of the run draws).
    pub started: Duration,
}

/// Where a host's time went before its steps, for a timeline of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostTiming {
    /// When the host's task started, from the run's start.
    pub started: Duration,
    /// How long connecting and logging in took (every attempt, through any jump hosts).
    pub connect: Duration,
    /// How long taking the host's lock took (or, under `lock = false`, asking whether the
    /// host is disabled); `None` when the job takes no lock or the host ended before it.
    pub lock: Option<Duration>,
}

/// Everything the report needs about one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOutcome {
    /// The inventory name.
    pub name: String,
    /// The address connected to.
    pub address: String,
    /// The SSH port.
    pub port: u16,
    /// Final status.
    pub status: HostStatus,
    /// Set when the status is `failed` or `unreachable`.
    pub error: Option<HostError>,
    /// HEAD of the checkout before sync, if it was read.
    pub rev_before: Option<String>,
    /// HEAD of the checkout after sync, if it was read.
    pub rev_after: Option<String>,
    /// Wall time from connect to the last step.
    pub duration: Duration,
    /// Steps that ran, in order.
    pub steps: Vec<StepRecord>,
    /// Where this host's full output is.
    pub log_dir: PathBuf,
    /// SSH connection attempts made: 1 normally, more when `connect_retries` were used, 0
    /// when the host was never started.
    pub connect_attempts: u32,
    /// Rollout only: `Some(true)` when the run held the host's lock, `Some(false)` when it ran
    /// unlocked because the inventory says `lock = false`; `None` otherwise (plan, exec, or
    /// the host ended before a step ran).
    pub locked: Option<bool>,
    /// The commit the host was brought to (or, for a plan, would be), as resolved on the host.
    pub target: Option<String>,
    /// Plan only: the commits between the checkout's HEAD and the target.
    pub incoming: Option<Incoming>,
    /// What Puppet reported about its run, when it ran and its results could be read.
    pub puppet: Option<PuppetResult>,
    /// `capo check` only: what the preflight found.
    pub check: Option<capo_schema::CheckReport>,
    /// Who disabled the host, why and since when (a `disabled` host; `capo disable`).
    pub disabled: Option<capo_schema::DisabledReport>,
    /// Rollout only: why the step that writes the host's run record could not write it
    /// (`record-why=`); None when it did, or when no record was due.
    pub run_record_error: Option<String>,
    /// `capo status` only: where the host stands.
    pub host_state: Option<capo_schema::HostStateReport>,
    /// `capo pull` only: pull mode on the host afterwards.
    pub pull: Option<capo_schema::PullReport>,
    /// `capo pull unpin` only: the revision the host was pinned to (empty: it was not).
    pub unpinned: Option<String>,
    /// When the host started and how long connecting and locking took; `None` for a host
    /// never started.
    pub timing: Option<HostTiming>,
}

/// Commits a host would receive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Incoming {
    /// How many.
    pub count: u64,
    /// `short-sha subject` of the first few, newest first.
    pub commits: Vec<String>,
}

/// Puppet's own account of a run, read from its summary, report and JSON log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PuppetResult {
    /// `puppet apply`'s exit code.
    pub exit_code: Option<i32>,
    /// Counts from `last_run_summary.yaml`.
    pub summary: Option<capo_puppet::Summary>,
    /// Per-resource events from `last_run_report.yaml`.
    pub events: Vec<capo_puppet::ResourceEvent>,
    /// File content diffs (`--show-diff`).
    pub diffs: Vec<capo_puppet::FileDiff>,
    /// Why the results could not be read, if they could not.
    pub unreadable: Option<String>,
}

impl PuppetResult {
    /// Whether Puppet found resources out of sync (in a noop run: would change them). Puppet's
    /// `--detailed-exitcodes` says 0 in noop mode even with pending changes (PUP-686), so this
    /// reads the run's own summary.
    pub fn out_of_sync(&self) -> bool {
        self.summary
            .as_ref()
            .is_some_and(|s| s.events.noop > 0 || s.resources.out_of_sync > 0)
            || self.events.iter().any(|e| e.status == "noop")
    }
}

/// Maps `puppet apply --detailed-exitcodes` to a status.
///
/// 0: nothing changed; 2: changes applied; 4 or 6: some resources failed; 1: the run failed
/// (e.g. compilation); 127: the shell could not find the puppet executable.
pub fn classify_apply(
    exit_code: i32,
    output_hint: Option<&str>,
    missing_puppet: Option<&MissingPuppet>,
) -> (HostStatus, Option<HostError>) {
    let hint = output_hint.map(|h| format!(": {h}")).unwrap_or_default();
    match (exit_code, missing_puppet) {
        (127, Some(missing)) => (
            HostStatus::Failed,
            Some(HostError::new(
                ErrorKind::Puppet,
                format!(
                    "{} not found on host (PATH={}); install Puppet or set `puppet` in the inventory",
                    missing.command, missing.path
                ),
            )),
        ),
        (code, _) => classify_apply_code(code, &hint),
    }
}

/// The apply script found no puppet executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingPuppet {
    /// The `puppet` setting.
    pub command: String,
    /// The host's PATH as the step saw it.
    pub path: String,
}

fn classify_apply_code(exit_code: i32, hint: &str) -> (HostStatus, Option<HostError>) {
    match exit_code {
        0 => (HostStatus::Unchanged, None),
        2 => (HostStatus::Changed, None),
        127 => (
            HostStatus::Failed,
            Some(HostError::new(
                ErrorKind::Puppet,
                format!("puppet apply exited 127 (command not found){hint}"),
            )),
        ),
        4 | 6 => (
            HostStatus::Failed,
            Some(HostError::new(
                ErrorKind::Puppet,
                format!("puppet apply: some resources failed (exit {exit_code}){hint}"),
            )),
        ),
        code => (
            HostStatus::Failed,
            Some(HostError::new(
                ErrorKind::Puppet,
                format!("puppet apply failed (exit {code}){hint}"),
            )),
        ),
    }
}

/// The most telling line of Puppet's output: the first `Error:` line, else the last non-empty one.
pub fn puppet_hint(stderr: &str, stdout: &str) -> Option<String> {
    let first_error = stderr
        .lines()
        .chain(stdout.lines())
        .map(strip_ansi)
        .find(|l| l.trim_start().starts_with("Error:"));
    first_error
        .or_else(|| last_line(stderr).map(str::to_string))
        .map(|l| l.trim().to_string())
}

/// The last non-empty line of `text`.
pub fn last_line(text: &str) -> Option<&str> {
    text.lines().rev().map(str::trim).find(|l| !l.is_empty())
}

/// Folds whitespace runs (including newlines) into single spaces.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Drops SGR colour sequences that Puppet emits even when asked not to.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_exit_codes_map_to_statuses() {
        assert_eq!(classify_apply(0, None, None), (HostStatus::Unchanged, None));
        assert_eq!(classify_apply(2, None, None), (HostStatus::Changed, None));
        for code in [1, 4, 6] {
            let (status, err) = classify_apply(code, None, None);
            assert_eq!(status, HostStatus::Failed);
            assert_eq!(err.map(|e| e.kind), Some(ErrorKind::Puppet));
        }
        let missing = MissingPuppet {
            command: "puppet".into(),
            path: "/usr/bin:/bin".into(),
        };
        let (_, err) = classify_apply(127, None, Some(&missing));
        assert_eq!(
            err.map(|e| e.message),
            Some(
                "puppet not found on host (PATH=/usr/bin:/bin); install Puppet or set `puppet` in the inventory"
                    .into()
            )
        );
    }

    #[test]
    fn hint_prefers_the_first_error_line() {
        let stderr = "Warning: x\n\u{1b}[1;31mError: Could not parse for environment production: Syntax error at 'x'\u{1b}[0m\nError: second\n";
        assert_eq!(
            puppet_hint(stderr, "").as_deref(),
            Some("Error: Could not parse for environment production: Syntax error at 'x'")
        );
        assert_eq!(puppet_hint("a\nlast\n\n", "").as_deref(), Some("last"));
        assert_eq!(puppet_hint("", ""), None);
    }

    #[test]
    fn messages_are_folded_onto_one_line() {
        let e = HostError::new(ErrorKind::Sync, "fatal: a\n  b\n");
        assert_eq!(e.message, "fatal: a b");
    }
}
