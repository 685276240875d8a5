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

/// The report's resource events alone, as [`parse_report`] would list them, but faster.
///
/// Most of a report is the status of every resource in the catalog, and most resources have
/// no event; on a fleet the YAML parser's time per host adds up. So the text is cut down
/// first: the top-level `logs` and `metrics` sections and every resource status whose
/// `events` list is empty (`events: []`, as Puppet writes it) go. The cut works on lines
/// and indentation only; should the rest not parse, the whole report is parsed instead.
pub fn parse_report_events(yaml: &str) -> Result<Vec<ResourceEvent>, ParseError> {
    match parse_report(&without_quiet_parts(yaml)) {
        Ok(report) => Ok(report.events),
        Err(_) => parse_report(yaml).map(|r| r.events),
    }
}

/// `yaml` without `logs`, `metrics` and the resource statuses that have no events.
fn without_quiet_parts(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len() / 2);
    // The current top-level section, and the lines of the current resource status.
    let mut section = "";
    let mut status: Vec<&str> = Vec::new();
    let flush = |status: &mut Vec<&str>, out: &mut String| {
        if !status.contains(&"    events: []") {
            for l in status.iter() {
                out.push_str(l);
                out.push('\n');
            }
        }
        status.clear();
    };
    for line in yaml.lines() {
        let top = !line.starts_with([' ', '-', '#']) && !line.is_empty();
        if top {
            flush(&mut status, &mut out);
            section = line.split(':').next().unwrap_or("");
        }
        match section {
            "logs" | "metrics" => {}
            "resource_statuses" if !top => {
                // A status begins with its key, indented by exactly two spaces.
                let key = line.starts_with("  ") && !line[2..].starts_with([' ', '-']);
                if key {
                    flush(&mut status, &mut out);
                }
                status.push(line);
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    flush(&mut status, &mut out);
    out
}

#[cfg(test)]
mod quick_tests {
    use super::*;

    #[test]
    fn the_cut_report_parses_alone_and_keeps_every_event() {
        for text in [
            include_str!("../tests/fixtures/changed/last_run_report.yaml"),
            include_str!("../tests/fixtures/failed/last_run_report.yaml"),
            include_str!("../tests/fixtures/noop_pending/last_run_report.yaml"),
        ] {
            let cut = without_quiet_parts(text);
            assert!(
                cut.len() * 2 < text.len(),
                "{} of {} bytes left",
                cut.len(),
                text.len()
            );
            assert!(!cut.contains("\nmetrics:") && !cut.contains("\nlogs:"));
            let full = parse_report(text).expect("full report parses");
            let quick = parse_report(&cut).expect("cut report parses on its own");
            assert!(!full.events.is_empty());
            assert_eq!(quick.events, full.events);
            assert_eq!(quick.status, full.status);
        }
    }
}
