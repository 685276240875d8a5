//! The JSON report, schema `capo.report/v1` (documented in docs/report-schema.md). Fields are
//! only ever added, never renamed or removed.

use serde::{Deserialize, Serialize};

/// The schema identifier written into every report.
pub const SCHEMA: &str = "capo.report/v1";

/// A whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Unique id of the run.
    pub run_id: String,
    /// `rollout` or `plan`.
    pub mode: String,
    /// `--rev` as given, or null (the branch tip `git pull` brings).
    #[serde(default)]
    pub target_rev: Option<String>,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC.
    pub finished_at: String,
    /// Wall time of the run.
    pub duration_ms: u64,
    /// The inventory file as given.
    pub inventory: String,
    /// The --limit expression, or null.
    pub limit: Option<String>,
    /// The signal that interrupted the run (`SIGINT`, `SIGTERM`), or null.
    #[serde(default)]
    pub interrupted: Option<String>,
    /// Why the run stopped starting hosts early (`the canary failed (web01)`, `stopped after 3
    /// failures (more than 2 allowed)`), or null.
    #[serde(default)]
    pub halted: Option<String>,
    /// Directory holding every host's full output.
    pub run_dir: String,
    /// Counts per status.
    pub summary: Summary,
    /// Every selected host, in inventory order.
    pub hosts: Vec<HostReport>,
}

/// Counts per status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Selected hosts.
    pub total: usize,
    /// Puppet changed nothing.
    pub unchanged: usize,
    /// Puppet changed something.
    pub changed: usize,
    /// A step failed.
    pub failed: usize,
    /// Could not connect.
    pub unreachable: usize,
    /// Never started (interrupted or stopped early).
    #[serde(default)]
    pub skipped: usize,
    /// Started, then cut short.
    #[serde(default)]
    pub cancelled: usize,
    /// Plan only: Puppet would change something.
    #[serde(default)]
    pub would_change: usize,
    /// Already past the target revision; left alone.
    #[serde(default)]
    pub ahead: usize,
    /// Exec only: the command exited 0.
    #[serde(default)]
    pub ok: usize,
    /// Where the fleet's checkouts are after the run: hosts grouped by HEAD, most first.
    #[serde(default)]
    pub revisions: Vec<RevisionCount>,
}

impl Summary {
    /// Counts per status of `hosts` (`revisions` left empty); an unknown status counts as
    /// failed, so nothing is ever lost from the totals.
    pub fn of(hosts: &[HostReport]) -> Summary {
        let mut summary = Summary {
            total: hosts.len(),
            ..Summary::default()
        };
        for h in hosts {
            match h.status.as_str() {
                "unchanged" => summary.unchanged += 1,
                "changed" => summary.changed += 1,
                "unreachable" => summary.unreachable += 1,
                "skipped" => summary.skipped += 1,
                "cancelled" => summary.cancelled += 1,
                "would_change" => summary.would_change += 1,
                "ahead" => summary.ahead += 1,
                "ok" => summary.ok += 1,
                _ => summary.failed += 1,
            }
        }
        summary
    }
}

/// Hosts whose checkout is at one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionCount {
    /// Full commit id.
    pub rev: String,
    /// How many hosts are there.
    pub hosts: usize,
    /// Whether these hosts are past the target (left alone).
    #[serde(default)]
    pub ahead: bool,
}

/// One host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostReport {
    /// Inventory name.
    pub name: String,
    /// Address connected to.
    pub address: String,
    /// SSH port.
    pub port: u16,
    /// unchanged | changed | failed | unreachable | skipped | cancelled | would_change | ahead.
    pub status: String,
    /// Set for every status but unchanged and changed.
    pub error: Option<ErrorReport>,
    /// Full commit id before sync.
    pub rev_before: Option<String>,
    /// Full commit id after sync.
    pub rev_after: Option<String>,
    /// Wall time on this host.
    pub duration_ms: u64,
    /// Directory with this host's full output (`<step>.stdout`, `<step>.stderr`, `<step>.cmd`).
    pub log_dir: String,
    /// SSH connection attempts made (more than 1 when retries were needed; 0 if never
    /// started). Absent in reports written before this field existed.
    #[serde(default)]
    pub connect_attempts: u32,
    /// Rollout only: `true` when the run held the host's lock, `false` when it ran unlocked
    /// (`lock = false` in the inventory); null otherwise (plan, exec, or the host ended
    /// before a step ran). Absent in reports written before this field existed.
    #[serde(default)]
    pub locked: Option<bool>,
    /// Steps in the order they ran.
    pub steps: Vec<StepReport>,
    /// The commit the host was brought to (plan: would be), as resolved on the host.
    #[serde(default)]
    pub target: Option<String>,
    /// Plan only: commits between the checkout's HEAD and the target.
    #[serde(default)]
    pub incoming: Option<IncomingReport>,
    /// Puppet's own account of the run, when it ran.
    #[serde(default)]
    pub puppet: Option<PuppetReport>,
}

/// Commits a plan found between HEAD and the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingReport {
    /// How many.
    pub count: u64,
    /// `short-sha subject` of the first few, newest first.
    pub commits: Vec<String>,
}

/// What Puppet reported, from its run summary, run report and log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PuppetReport {
    /// `puppet apply`'s exit code.
    pub exit_code: Option<i32>,
    /// Resource counts from the run summary (total, changed, failed, out_of_sync, ...).
    pub resources: Option<serde_json::Value>,
    /// Event counts from the run summary (total, success, failure, noop).
    #[serde(default)]
    pub event_counts: Option<serde_json::Value>,
    /// One entry per resource property Puppet changed, would change, or failed to change.
    pub events: Vec<EventReport>,
    /// File content diffs (`--show-diff`).
    #[serde(default)]
    pub diffs: Vec<DiffReport>,
    /// Why Puppet's results could not be read, if they could not.
    #[serde(default)]
    pub unreadable: Option<String>,
}

/// One resource event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventReport {
    /// e.g. `File[/etc/motd]`.
    pub resource: String,
    /// e.g. `content`, `ensure`, `mode`.
    pub property: Option<String>,
    /// Value before.
    pub previous: Option<String>,
    /// Value wanted.
    pub desired: Option<String>,
    /// success | failure | noop | audit.
    pub status: String,
    /// Puppet's message.
    pub message: String,
}

/// A file content diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffReport {
    /// e.g. `File[/etc/motd]`.
    pub resource: String,
    /// Unified diff.
    pub diff: String,
}

/// Why a host failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    /// connect | host_key | auth | sync | puppet | timeout | locked | lock | interrupted | internal.
    pub kind: String,
    /// One line a person can act on.
    pub message: String,
}

/// One remote step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    /// sync | apply.
    pub name: String,
    /// The command as a person would type it.
    pub command: String,
    /// Remote exit code, or null if the command did not finish.
    pub exit_code: Option<i32>,
    /// Wall time of the step.
    pub duration_ms: u64,
    /// Last bytes of stdout, decoded as lossy UTF-8 (invalid bytes become U+FFFD).
    pub stdout_tail: String,
    /// Last bytes of stderr, lossy UTF-8.
    pub stderr_tail: String,
    /// Whether the tails hold less than the whole output (the log files have all of it).
    #[serde(default)]
    pub truncated: bool,
    /// Why the step's log files are incomplete, if they are; absent when they are complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_error: Option<String>,
}
