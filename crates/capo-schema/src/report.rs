//! The JSON report, schema `capo.report/v1` (documented in docs/report-schema.md). Fields are
//! only ever added, never renamed or removed. Statuses, kinds, steps and modes are the
//! crate's enums, which serialise to the same strings the schema documents.

use serde::{Deserialize, Serialize};

use crate::{
    DisabledBy, ErrorKind, HostKeyTrust, HostState, HostStatus, IdentitySource, LockState, Mode,
    RepoState, Signal, StepName,
};

/// The schema identifier written into every report.
pub const SCHEMA: &str = "capo.report/v1";

/// A whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Unique id of the run.
    pub run_id: String,
    /// Which command produced the run.
    pub mode: Mode,
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
    /// The signal that interrupted the run, or null.
    #[serde(default)]
    pub interrupted: Option<Signal>,
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
    /// `--shard K/N`: which part of the selection this run took. Absent when unsharded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardReport>,
    /// `--order shuffle`: the seed the host order was shuffled with (`--seed`, else the run
    /// id); the same seed and hosts give the same order. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// `capo report merge` only: the runs merged into this report, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartReport>,
}

/// Which part of the selection a sharded run took (`--shard K/N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardReport {
    /// K: this part, from 1.
    pub index: u32,
    /// N: how many parts.
    pub count: u32,
    /// Hosts the inventory and `--limit` selected before sharding (every part's total).
    pub selected: usize,
}

/// One run merged into a report (`capo report merge`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartReport {
    /// The part's run id.
    pub run_id: String,
    /// Its shard, if it was one.
    #[serde(default)]
    pub shard: Option<ShardReport>,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC.
    pub finished_at: String,
    /// Where its hosts' output is.
    pub run_dir: String,
    /// How many hosts it had.
    pub hosts: usize,
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
    /// Disabled (`capo disable`, `puppet agent --disable`); left alone.
    #[serde(default)]
    pub disabled: usize,
    /// Bootstrap only: cloned and proven to compile.
    #[serde(default)]
    pub bootstrapped: usize,
    /// Bootstrap only: already a checkout of the repo; left alone.
    #[serde(default)]
    pub already: usize,
    /// Where the fleet's checkouts are after the run: hosts grouped by HEAD, most first.
    #[serde(default)]
    pub revisions: Vec<RevisionCount>,
}

impl Summary {
    /// Counts per status of `hosts` (`revisions` left empty).
    pub fn of(hosts: &[HostReport]) -> Summary {
        let mut summary = Summary {
            total: hosts.len(),
            ..Summary::default()
        };
        for h in hosts {
            *summary.slot(h.status) += 1;
        }
        summary
    }

    /// How many hosts ended with `status`.
    pub fn count(&self, status: HostStatus) -> usize {
        match status {
            HostStatus::Unchanged => self.unchanged,
            HostStatus::Changed => self.changed,
            HostStatus::Failed => self.failed,
            HostStatus::Unreachable => self.unreachable,
            HostStatus::Skipped => self.skipped,
            HostStatus::Cancelled => self.cancelled,
            HostStatus::WouldChange => self.would_change,
            HostStatus::Ahead => self.ahead,
            HostStatus::Ok => self.ok,
            HostStatus::Disabled => self.disabled,
            HostStatus::Bootstrapped => self.bootstrapped,
            HostStatus::Already => self.already,
        }
    }

    /// How many hosts ended with a status for which `which` holds, e.g.
    /// `summary.count_where(HostStatus::is_failure)`.
    pub fn count_where(&self, which: impl Fn(HostStatus) -> bool) -> usize {
        HostStatus::ALL
            .iter()
            .filter(|s| which(**s))
            .map(|s| self.count(*s))
            .sum()
    }

    fn slot(&mut self, status: HostStatus) -> &mut usize {
        match status {
            HostStatus::Unchanged => &mut self.unchanged,
            HostStatus::Changed => &mut self.changed,
            HostStatus::Failed => &mut self.failed,
            HostStatus::Unreachable => &mut self.unreachable,
            HostStatus::Skipped => &mut self.skipped,
            HostStatus::Cancelled => &mut self.cancelled,
            HostStatus::WouldChange => &mut self.would_change,
            HostStatus::Ahead => &mut self.ahead,
            HostStatus::Ok => &mut self.ok,
            HostStatus::Disabled => &mut self.disabled,
            HostStatus::Bootstrapped => &mut self.bootstrapped,
            HostStatus::Already => &mut self.already,
        }
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
    /// Final status.
    pub status: HostStatus,
    /// Set when the status is `failed`, `unreachable`, `skipped` or `cancelled`.
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
    /// `capo check` only: what the preflight found. Absent in other runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckReport>,
    /// Who disabled the host, why and since when: set for a `disabled` host, and by `capo
    /// disable`. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<DisabledReport>,
    /// Rollout only: why this run's record (`last_run.json` in the host's `state_dir`)
    /// could not be written there; absent when it was, or when the run writes none. It
    /// never changes the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_record_error: Option<String>,
    /// `capo pull install` / `remove` only: pull mode on the host afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<PullReport>,
    /// `capo pull unpin` only: the revision the host was pinned to; empty when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpinned: Option<String>,
    /// `capo status` only: where the host stands. Absent in other runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_state: Option<HostStateReport>,
    /// Sharded runs only: the host's place (from 0) in the whole selection, in inventory
    /// order, before sharding; `capo report merge` puts hosts back in that order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// When the host started, from the run's start, and how long connecting and taking
    /// the lock took. Absent for a host never started, and in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<HostTiming>,
}

impl HostReport {
    /// A host entry with only its name and status known: every other field empty, as for a
    /// host that never started.
    pub fn new(name: impl Into<String>, status: HostStatus) -> HostReport {
        HostReport {
            name: name.into(),
            address: String::new(),
            port: 0,
            status,
            error: None,
            rev_before: None,
            rev_after: None,
            duration_ms: 0,
            log_dir: String::new(),
            connect_attempts: 0,
            locked: None,
            steps: Vec::new(),
            target: None,
            incoming: None,
            puppet: None,
            check: None,
            disabled: None,
            run_record_error: None,
            pull: None,
            unpinned: None,
            host_state: None,
            position: None,
            timing: None,
        }
    }
}

/// Where a host's time went before its steps: what a timeline of the run draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostTiming {
    /// When the host's task started, in milliseconds from the run's start.
    pub started_ms: u64,
    /// How long connecting and logging in took (every attempt, through any jump hosts).
    pub connect_ms: u64,
    /// How long taking the host's lock took (under `lock = false`, asking whether the host is
    /// disabled); absent when the run takes none, or the host ended before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_ms: Option<u64>,
}

/// Where a host stands (`capo status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStateReport {
    /// The first that applies, in triage order.
    pub state: HostState,
    /// The checkout's HEAD (full commit id); null when there is no checkout.
    pub head: Option<String>,
    /// The branch checked out; null when detached.
    pub branch: Option<String>,
    /// Commits on the remote branch (as last fetched on the host; `--fetch` fetches first)
    /// that HEAD lacks; null when the host has no remote-tracking branch.
    pub behind: Option<u64>,
    /// capo's last run record on the host (written by push and pull runs alike).
    pub last_run: Option<LastRunReport>,
    /// Puppet's own last run summary (`last_run_summary.yaml`), for runs capo did not make.
    pub puppet: Option<PuppetSummaryReport>,
    /// Pull mode's schedule on the host.
    pub pull: PullReport,
    /// capo's lock: held now, and by whom.
    pub lock: LockHeld,
    /// Seconds since the last run ended (capo's record, else Puppet's summary), by the
    /// host's clock.
    pub age_s: Option<u64>,
    /// Where `capo rollout --rev` pinned the host (pull mode keeps to it), if it did.
    #[serde(default)]
    pub pinned: Option<PinReport>,
}

/// A host's pin: `capo rollout --rev REV` leaves it; a rollout without `--rev` ends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinReport {
    /// The revision as given.
    pub rev: String,
    /// The commit it resolved to.
    pub commit: Option<String>,
    /// The run that pinned it (its holder line).
    pub by: Option<String>,
    /// Since when, RFC 3339 UTC.
    pub since: Option<String>,
}

/// capo's last run record on a host (`last_run.json`, schema `capo.run/v1`; see
/// docs/run-record.md): the fields `capo status` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRunReport {
    /// When it ended, RFC 3339 UTC.
    pub time: Option<String>,
    /// `push` or `pull`.
    pub source: Option<String>,
    /// `changed`, `unchanged` or `failed`.
    pub status: Option<String>,
    /// The step that failed.
    pub step: Option<String>,
    /// The commit it applied (HEAD after it).
    pub rev: Option<String>,
    /// Resources it changed.
    pub changed: Option<u64>,
    /// Resources that failed.
    pub failed: Option<u64>,
    /// The push run's id.
    pub run_id: Option<String>,
    /// Why the record could not be read, when it could not.
    pub unreadable: Option<String>,
}

/// Puppet's own last run summary on a host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PuppetSummaryReport {
    /// When it ran, RFC 3339 UTC.
    pub time: Option<String>,
    /// Its config version.
    pub config_version: Option<String>,
    /// Resources changed.
    pub changed: u64,
    /// Resources failed.
    pub failed: u64,
}

/// Pull mode on a host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullReport {
    /// Whether its schedule is installed.
    pub installed: bool,
    /// `systemd` or `cron`, when installed.
    pub scheduler: Option<String>,
    /// The systemd timer's interval, in seconds.
    pub interval_s: Option<u64>,
    /// `capo pull install` / `remove` only: files it wrote or removed (0: nothing to do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<u64>,
    /// Whether the timer is active (started), or a cron daemon runs to read the cron file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// `capo status`, systemd only: when the timer fires next, as systemd says it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// capo's lock, as `capo status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHeld {
    /// Whether a run holds it (or a step of one still runs).
    pub held: bool,
    /// Who: the holder's line.
    pub holder: Option<String>,
}

/// A host's maintenance switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisabledReport {
    /// `capo` or `puppet`.
    pub source: DisabledBy,
    /// The message given (`-m`, or `puppet agent --disable`'s).
    pub message: String,
    /// Who: `user@controller` for capo; the lock file's owner for Puppet.
    pub by: Option<String>,
    /// Since when, RFC 3339 UTC.
    pub since: Option<String>,
}

/// What `capo check` found on one host: how capo reached it and whether a rollout could
/// run there now. Fields it could not learn (the host unreachable, sudo refused) are null.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The user capo logged in as.
    pub user: String,
    /// The jump hosts the connection went through, first hop first (`user@host:port`);
    /// empty when it was direct.
    pub jump: Vec<String>,
    /// The identity the server accepted.
    pub identity: Option<IdentityReport>,
    /// The host key the server presented and why capo trusted it.
    pub host_key: Option<HostKeyReport>,
    /// `become` when the inventory sets one: how, as whom, and whether it worked.
    #[serde(rename = "become")]
    pub become_: Option<BecomeReport>,
    /// Who capo's steps run as on the host (after `become`).
    pub runs_as: Option<String>,
    /// `git --version`'s number; null when git is not installed (or not learnt).
    pub git: Option<String>,
    /// `puppet --version`; null when Puppet is not installed (or not learnt).
    pub puppet: Option<String>,
    /// What is at `repo_dir`.
    pub repo: Option<RepoReport>,
    /// The checkout's Puppetfile and its installer, when it has one and `puppetfile` is not
    /// `ignore`.
    pub puppetfile: Option<PuppetfileReport>,
    /// capo's lock on the host.
    pub lock: Option<LockReport>,
}

/// The identity a server accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityReport {
    /// `agent` or `file`.
    pub source: IdentitySource,
    /// The identity file, or the agent's socket.
    pub path: String,
    /// The agent's comment for the key (`ssh-add -l`); null for a file.
    pub comment: Option<String>,
    /// `SHA256:...` of the public key.
    pub fingerprint: String,
    /// Whether the agent offered it as a certificate.
    pub certificate: bool,
}

/// A host key and why it was trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKeyReport {
    /// Its algorithm, e.g. `ssh-ed25519`.
    #[serde(rename = "type")]
    pub key_type: String,
    /// `SHA256:...` (of the certified key, for a certificate).
    pub fingerprint: String,
    /// Why capo trusted it.
    pub trust: HostKeyTrust,
}

/// `become` as the inventory sets it, and whether it worked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BecomeReport {
    /// `sudo`.
    pub method: String,
    /// `become_user`.
    pub user: String,
    /// Whether sudo ran capo's command (false: it refused; the host's error says why).
    pub works: bool,
}

/// What is at `repo_dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoReport {
    /// The path, as the inventory sets it.
    pub dir: String,
    /// What is there.
    pub state: RepoState,
    /// HEAD's full commit id, for a checkout.
    pub head: Option<String>,
    /// The branch checked out; null when HEAD is detached (or not a checkout).
    pub branch: Option<String>,
}

/// A checkout's Puppetfile installer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PuppetfileReport {
    /// `r10k` or `g10k` (the `puppetfile` setting).
    pub installer: String,
    /// Whether it is installed on the host.
    pub installed: bool,
}

/// capo's lock on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockReport {
    /// Its state.
    pub state: LockState,
    /// Who holds it (`held`), or whose step still runs (`busy`).
    pub holder: Option<String>,
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
    /// The run's config version from the run summary (`version.config`): the commit Puppet
    /// applied, unless the repo's `environment.conf` sets its own `config_version`.
    #[serde(default)]
    pub config_version: Option<String>,
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
    /// The failure class.
    pub kind: ErrorKind,
    /// One line a person can act on.
    pub message: String,
}

/// One remote step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    /// Which step.
    pub name: StepName,
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
    /// When the step started, in milliseconds from the run's start; absent in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(status: HostStatus) -> HostReport {
        HostReport {
            port: 22,
            connect_attempts: 1,
            ..HostReport::new(status.to_string(), status)
        }
    }

    #[test]
    fn typed_fields_write_the_documented_strings() {
        let text = r#"{
  "schema": "capo.report/v1",
  "run_id": "r1",
  "mode": "plan",
  "target_rev": null,
  "started_at": "2026-11-24T22:45:01.123Z",
  "finished_at": "2026-11-24T22:45:09.456Z",
  "duration_ms": 8333,
  "inventory": "inventory.toml",
  "limit": null,
  "interrupted": "SIGTERM",
  "halted": null,
  "run_dir": ".capo/runs/r1",
  "summary": {
    "total": 1,
    "unchanged": 0,
    "changed": 0,
    "failed": 0,
    "unreachable": 0,
    "skipped": 0,
    "cancelled": 1,
    "would_change": 0,
    "ahead": 0,
    "ok": 0,
    "disabled": 0,
    "bootstrapped": 0,
    "already": 0,
    "revisions": []
  },
  "hosts": [
    {
      "name": "web01",
      "address": "10.0.0.1",
      "port": 22,
      "status": "cancelled",
      "error": {
        "kind": "host_key",
        "message": "m"
      },
      "rev_before": null,
      "rev_after": null,
      "duration_ms": 5,
      "log_dir": ".capo/runs/r1/web01",
      "connect_attempts": 1,
      "locked": null,
      "steps": [
        {
          "name": "plan",
          "command": "puppet apply --noop",
          "exit_code": null,
          "duration_ms": 4,
          "stdout_tail": "",
          "stderr_tail": "",
          "truncated": false
        }
      ],
      "target": null,
      "incoming": null,
      "puppet": null
    }
  ]
}"#;
        let report: Report = serde_json::from_str(text).expect("a report");
        assert_eq!(report.mode, Mode::Plan);
        assert_eq!(report.interrupted, Some(Signal::Term));
        assert_eq!(report.hosts[0].status, HostStatus::Cancelled);
        assert_eq!(report.hosts[0].steps[0].name, StepName::Plan);
        let written = serde_json::to_string_pretty(&report).expect("serialises");
        assert_eq!(written, text);
    }

    #[test]
    fn the_summary_counts_each_status_in_its_own_field() {
        let hosts: Vec<HostReport> = HostStatus::ALL.iter().map(|s| host(*s)).collect();
        let summary = Summary::of(&hosts);
        assert_eq!(summary.total, HostStatus::ALL.len());
        let json = serde_json::to_value(&summary).expect("serialises");
        for s in HostStatus::ALL.iter().copied() {
            assert_eq!(summary.count(s), 1, "{s}");
            // The count's field is named as the status is spelled.
            assert_eq!(json[s.as_str()], 1, "{s}");
        }
        assert_eq!(summary.count_where(HostStatus::is_failure), 3);
        assert_eq!(summary.count_where(HostStatus::fails_run), 4);
    }
}
