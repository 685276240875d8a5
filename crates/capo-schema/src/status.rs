//! The document `capo status --format json` prints (schema `capo.status/v1`): one flat entry
//! per host, for drift alarms and dashboards. It is a view of the run report's hosts (their
//! `host_state`), built by capo-report; `--report` still writes the run report itself.

use serde::{Deserialize, Serialize};

use crate::{
    DisabledReport, ErrorReport, HostState, LastRunReport, LockHeld, PinReport, PullReport,
    PuppetSummaryReport,
};

/// The schema identifier of [`StatusDocument`].
pub const STATUS_SCHEMA: &str = "capo.status/v1";

/// Where every selected host stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDocument {
    /// Always [`STATUS_SCHEMA`].
    pub schema: String,
    /// The run that looked (its directory holds each host's output).
    pub run_id: String,
    /// When the look ended, RFC 3339 UTC.
    pub time: String,
    /// Hosts per state (and `unreachable`, `failed` for hosts that could not be looked at).
    pub summary: std::collections::BTreeMap<String, usize>,
    /// Every selected host, in inventory order.
    pub hosts: Vec<StatusHost>,
}

/// One host's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusHost {
    /// Inventory name.
    pub name: String,
    /// Where it stands; null when it could not be looked at (see `error`).
    pub state: Option<HostState>,
    /// Why it could not be looked at.
    pub error: Option<ErrorReport>,
    /// The checkout's HEAD.
    pub head: Option<String>,
    /// The branch checked out.
    pub branch: Option<String>,
    /// Commits on the remote branch that HEAD lacks.
    pub behind: Option<u64>,
    /// Seconds since the last run ended.
    pub age_s: Option<u64>,
    /// capo's last run record.
    pub last_run: Option<LastRunReport>,
    /// Puppet's own last run summary.
    pub puppet: Option<PuppetSummaryReport>,
    /// Pull mode's schedule.
    pub pull: Option<PullReport>,
    /// capo's lock.
    pub lock: Option<LockHeld>,
    /// The maintenance switch, when set.
    pub disabled: Option<DisabledReport>,
    /// Where `capo rollout --rev` pinned it, if it did.
    pub pinned: Option<PinReport>,
}
