//! `last_run_summary.yaml`: the counters of the last run.

use serde::{Deserialize, Serialize};

use crate::{yaml, ParseError};

/// The contents of `last_run_summary.yaml`. Sections missing from the file (Puppet leaves some
/// out, e.g. `events.noop` outside noop runs) count as zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The `resources` section.
    pub resources: Resources,
    /// The `events` section.
    pub events: Events,
    /// `changes.total`: properties changed (0 under `--noop`).
    pub changes_total: u64,
    /// `time.total`, the catalog application time, in milliseconds (rounded).
    pub time_total_ms: Option<u64>,
    /// `version.config`: the catalog's config version (a timestamp by default, or whatever the
    /// environment's `config_version` script prints).
    pub config_version: Option<String>,
    /// `version.puppet`: Puppet's version, e.g. `7.23.0`.
    pub puppet_version: Option<String>,
    /// `time.last_run`: when the run ended, in seconds since the Unix epoch. A failed compile
    /// leaves the previous run's summary in place; this tells a stale file from a fresh one.
    pub last_run: Option<u64>,
}

impl Summary {
    /// Whether the run produced any property event (made, failed or, under `--noop`,
    /// pending); without one, the run's report lists no event either.
    pub fn has_events(&self) -> bool {
        let e = &self.events;
        e.total > 0 || e.success > 0 || e.failure > 0 || e.noop > 0
    }
}

/// The `resources` section of the summary: how many resources ended in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Resources in the catalog (including Puppet's built-in schedules and filebucket).
    pub total: u64,
    /// Resources Puppet changed.
    pub changed: u64,
    /// Resources that failed.
    pub failed: u64,
    /// Resources whose refresh failed.
    pub failed_to_restart: u64,
    /// Resources not in their desired state (changed, failed, or pending under `--noop`).
    pub out_of_sync: u64,
    /// Resources refreshed (e.g. services restarted).
    pub restarted: u64,
    /// Resources whose schedule allowed them to run.
    pub scheduled: u64,
    /// Resources skipped, e.g. because a dependency failed.
    pub skipped: u64,
    /// Changes that corrected drift from a previously applied state.
    pub corrective_change: u64,
}

/// The `events` section of the summary: property events by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Events {
    /// All events.
    pub total: u64,
    /// Changes made.
    pub success: u64,
    /// Changes that failed.
    pub failure: u64,
    /// Changes that `--noop` only reported.
    pub noop: u64,
}

/// The file as written, every section optional so a partial summary still parses.
#[derive(Deserialize)]
struct RawSummary {
    version: Option<RawVersion>,
    resources: Option<Resources>,
    events: Option<Events>,
    changes: Option<RawChanges>,
    time: Option<RawTime>,
}

#[derive(Deserialize)]
struct RawVersion {
    config: Option<String>,
    puppet: Option<String>,
}

#[derive(Deserialize)]
struct RawChanges {
    total: Option<u64>,
}

#[derive(Deserialize)]
struct RawTime {
    total: Option<f64>,
    last_run: Option<u64>,
}

/// Parses `last_run_summary.yaml`.
///
/// Fails on input that is not YAML, has values of the wrong type (e.g. a negative count), or has
/// none of the summary's sections.
pub fn parse_summary(yaml: &str) -> Result<Summary, ParseError> {
    let raw: RawSummary = yaml::from_str(yaml)?;
    if raw.version.is_none()
        && raw.resources.is_none()
        && raw.events.is_none()
        && raw.changes.is_none()
        && raw.time.is_none()
    {
        return Err(ParseError::NotPuppet {
            expected: "last run summary",
        });
    }
    let (config_version, puppet_version) = match raw.version {
        Some(v) => (v.config, v.puppet),
        None => (None, None),
    };
    let (time_total, last_run) = match raw.time {
        Some(t) => (t.total, t.last_run),
        None => (None, None),
    };
    Ok(Summary {
        resources: raw.resources.unwrap_or_default(),
        events: raw.events.unwrap_or_default(),
        changes_total: raw.changes.and_then(|c| c.total).unwrap_or(0),
        time_total_ms: time_total.and_then(seconds_to_ms),
        config_version,
        puppet_version,
        last_run,
    })
}

/// Seconds (a float in the file) to whole milliseconds; `None` for values no clock produces.
fn seconds_to_ms(secs: f64) -> Option<u64> {
    let ms = (secs * 1000.0).round();
    // The upper bound keeps the cast exact; anything near it is garbage anyway.
    (ms.is_finite() && (0.0..9.0e15).contains(&ms)).then_some(ms as u64)
}
