//! `last_run_report.yaml`: the full report of the last run (Psych-dumped Ruby objects).

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_saphyr::Tagged;

use crate::log::{errors, LogEntry};
use crate::{value, yaml, ParseError};

/// One resource event from `last_run_report.yaml` (`resource_statuses.*.events[]`): a property
/// Puppet changed, failed to change, or (under `--noop`) would have changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceEvent {
    /// The resource, e.g. `File[/etc/motd]`.
    pub resource: String,
    /// The property, e.g. `content`, `ensure`, `mode`; `None` for events about the whole
    /// resource (e.g. a `resource_error` when it is part of a dependency cycle).
    pub property: Option<String>,
    /// The value before the run, rendered as text (see [`parse_report`]).
    pub previous: Option<String>,
    /// The value the catalog asked for, rendered as text.
    pub desired: Option<String>,
    /// `success`, `failure`, `noop` or `audit`; empty if the report omits it.
    pub status: String,
    /// Puppet's message, e.g. `mode changed '0644' to '0600'`; empty if the report omits it.
    pub message: String,
}

/// What `parse_report` takes from the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The run's status: `changed`, `unchanged` or `failed`. Under `--noop` it is `unchanged`
    /// even with changes pending: see [`Report::noop_pending`].
    pub status: Option<String>,
    /// Whether the run was a `--noop` run.
    pub noop: Option<bool>,
    /// Whether a `--noop` run found changes it would have made.
    pub noop_pending: Option<bool>,
    /// Every resource event, in the report's order.
    pub events: Vec<ResourceEvent>,
    /// Messages of the log entries at level `err` or worse, in order: the run's failures,
    /// including those not tied to a resource (e.g. a dependency cycle).
    pub errors: Vec<String>,
    /// The run's whole log, in order. Holds the `--show_diff` diffs too: see [`crate::diffs`].
    pub logs: Vec<LogEntry>,
}

#[derive(Deserialize)]
struct RawReport {
    status: Option<String>,
    noop: Option<bool>,
    noop_pending: Option<bool>,
    // Only read to recognise a report: a document with none of these is something else.
    report_format: Option<serde::de::IgnoredAny>,
    puppet_version: Option<serde::de::IgnoredAny>,
    logs: Option<Vec<Option<RawLog>>>,
    resource_statuses: Option<Statuses>,
}

#[derive(Deserialize)]
struct RawLog {
    level: Option<String>,
    message: Option<String>,
    source: Option<String>,
    time: Option<String>,
}

#[derive(Deserialize)]
struct RawStatus {
    resource: Option<String>,
    events: Option<Vec<Option<RawEvent>>>,
}

#[derive(Deserialize)]
struct RawEvent {
    property: Option<String>,
    previous_value: Option<Tagged<Value>>,
    desired_value: Option<Tagged<Value>>,
    status: Option<String>,
    message: Option<String>,
}

/// `resource_statuses`, kept in the file's order (a map type would sort or scramble it), each
/// with its key in case the status lacks a `resource` field.
struct Statuses(Vec<(String, RawStatus)>);

impl<'de> Deserialize<'de> for Statuses {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatusesVisitor;

        impl<'de> Visitor<'de> for StatusesVisitor {
            type Value = Statuses;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of resource names to resource statuses")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Statuses, A::Error> {
                let mut statuses = Vec::new();
                while let Some((key, status)) = map.next_entry::<String, Option<RawStatus>>()? {
                    if let Some(status) = status {
                        statuses.push((key, status));
                    }
                }
                Ok(Statuses(statuses))
            }
        }

        deserializer.deserialize_map(StatusesVisitor)
    }
}

/// Parses `last_run_report.yaml`.
///
/// The Ruby tags Psych writes (`!ruby/object:Puppet::Transaction::Report`, `!ruby/sym`, …) are
/// ignored. Event values are rendered as text: symbols as their name, numbers and booleans as
/// written, arrays joined with `", "`, `!binary` base64 decoded when it is UTF-8 (kept as base64
/// otherwise), and Puppet 7's untagged base64 of a `{sha256}…` checksum decoded.
///
/// Fails on input that is not YAML, has values of the wrong type, or has none of a report's
/// top-level keys (`status`, `resource_statuses`, `report_format`, `puppet_version`, `logs`).
pub fn parse_report(yaml: &str) -> Result<Report, ParseError> {
    let raw: RawReport = yaml::from_str(yaml)?;
    if raw.status.is_none()
        && raw.resource_statuses.is_none()
        && raw.report_format.is_none()
        && raw.puppet_version.is_none()
        && raw.logs.is_none()
    {
        return Err(ParseError::NotPuppet { expected: "report" });
    }

    let logs: Vec<LogEntry> = raw
        .logs
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .filter_map(|log| {
            // An entry without a level or message says nothing; drop it rather than the report.
            Some(LogEntry {
                level: log.level?,
                message: log.message?,
                source: log.source.unwrap_or_default(),
                time: log.time,
            })
        })
        .collect();

    let mut events = Vec::new();
    for (key, status) in raw.resource_statuses.map(|s| s.0).unwrap_or_default() {
        let resource = status.resource.unwrap_or(key);
        for event in status.events.unwrap_or_default().into_iter().flatten() {
            events.push(ResourceEvent {
                resource: resource.clone(),
                property: event.property,
                previous: value::render(event.previous_value.as_ref()),
                desired: value::render(event.desired_value.as_ref()),
                status: event.status.unwrap_or_default(),
                message: event.message.unwrap_or_default(),
            });
        }
    }

    Ok(Report {
        status: raw.status,
        noop: raw.noop,
        noop_pending: raw.noop_pending,
        events,
        errors: errors(&logs),
        logs,
    })
}
