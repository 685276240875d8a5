//! `capo status`'s views of a run report: the table for people (a row per host, or per host
//! set past 50 hosts, then one line per state that needs attention) and the flat JSON
//! document ([`capo_schema::StatusDocument`]) for drift alarms.

use std::collections::BTreeMap;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, ContentArrangement, Table};

use capo_inventory::fold::fold_to_string;
use capo_schema::{HostReport, HostState, Report, StatusDocument, StatusHost, STATUS_SCHEMA};

use crate::sanitize;
use crate::table::{cut, Rows, View, FOLD_HOSTS};

const HEADER: [&str; 7] = [
    "HOST", "STATE", "HEAD", "BEHIND", "LAST RUN", "LOCK", "PULL",
];

/// A host set cell is cut to this many columns (keeping its count).
const MAX_HOST_SET: usize = 32;

/// The table, then per state that needs attention the hosts in it (`stale: web[03-04] (2
/// hosts)`), the revisions line, the summary by state and where the logs are.
pub fn render(report: &Report, view: &View) -> String {
    let fold = view.rows == Rows::Auto && report.hosts.len() > FOLD_HOSTS;
    let mut rows: Vec<(Vec<String>, [String; 6])> = Vec::new();
    for h in &report.hosts {
        let cells = cells(h);
        match rows.iter_mut().find(|(_, c)| fold && *c == cells) {
            Some((hosts, _)) => hosts.push(h.name.clone()),
            None => rows.push((vec![h.name.clone()], cells)),
        }
    }
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(HEADER);
    for (hosts, cells) in rows {
        let name = if hosts.len() == 1 {
            sanitize::line(&hosts[0])
        } else {
            let count = format!(" ({})", hosts.len());
            let folded = sanitize::line(&fold_to_string(&hosts));
            format!("{}{count}", cut(&folded, MAX_HOST_SET - count.len()))
        };
        table.add_row(
            std::iter::once(name)
                .chain(cells.iter().map(|c| sanitize::line(c)))
                .map(Cell::new),
        );
    }
    let mut out = table.to_string();
    out.push('\n');
    for line in attention(report) {
        out.push_str(&line);
        out.push('\n');
    }
    if let Some(line) = crate::table::revisions_line(report) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&summary_line(report));
    out.push('\n');
    out.push_str(&format!(
        "full output of every host: {}/<host>/\n",
        sanitize::line(&report.run_dir)
    ));
    out
}

/// STATE, HEAD, BEHIND, LAST RUN, LOCK, PULL of a host; a host that could not be looked at
/// shows its status and why.
fn cells(h: &HostReport) -> [String; 6] {
    let Some(s) = &h.host_state else {
        let why = h
            .error
            .as_ref()
            .map(|e| format!("{}: {}", e.kind, e.message))
            .unwrap_or_default();
        return [
            h.status.to_string(),
            "-".into(),
            "-".into(),
            cut(&why, 40),
            "-".into(),
            "-".into(),
        ];
    };
    let head = s
        .head
        .as_deref()
        .map(|h| h.chars().take(7).collect::<String>())
        .unwrap_or_else(|| "no checkout".into());
    let behind = match s.behind {
        Some(0) => "0".to_string(),
        Some(n) => n.to_string(),
        None => "?".into(),
    };
    let last = match (&s.last_run, &s.puppet) {
        (Some(r), _) => {
            let mut text = format!(
                "{} {} {}",
                ago(s.age_s),
                r.source.as_deref().unwrap_or("?"),
                r.status.as_deref().unwrap_or("?")
            );
            if let Some(step) = &r.step {
                text.push_str(&format!(" ({step})"));
            }
            text
        }
        (None, Some(p)) => format!(
            "{} puppet, {} changed, {} failed",
            ago(s.age_s),
            p.changed,
            p.failed
        ),
        (None, None) => "never".into(),
    };
    let lock = if s.lock.held { "held" } else { "free" }.to_string();
    let mut pull = match (&s.pull.scheduler, s.pull.interval_s) {
        (Some(sched), Some(i)) => format!("{sched} every {}", duration(i)),
        (Some(sched), None) => sched.clone(),
        (None, _) => "-".into(),
    };
    match (&s.pull.next, s.pull.active) {
        (Some(next), _) => pull.push_str(&format!(", next {next}")),
        (None, Some(false)) => pull.push_str(" (not running)"),
        _ => {}
    }
    [s.state.to_string(), head, behind, last, lock, pull]
}

/// `12m ago`, `3h ago`, `2d ago`.
fn ago(age: Option<u64>) -> String {
    age.map(|a| format!("{} ago", duration(a)))
        .unwrap_or_else(|| "?".into())
}

fn duration(s: u64) -> String {
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// One line per state that needs attention, worst first, with its hosts folded, and what
/// holds the lock or disabled a host when that is one thing.
fn attention(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    for state in HostState::ALL.iter().filter(|s| !s.is_healthy()) {
        let hosts: Vec<&HostReport> = report
            .hosts
            .iter()
            .filter(|h| h.host_state.as_ref().is_some_and(|s| s.state == *state))
            .collect();
        if hosts.is_empty() {
            continue;
        }
        let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
        let mut line = format!(
            "{state}: {} ({} host{})",
            sanitize::line(&fold_to_string(&names)),
            names.len(),
            if names.len() == 1 { "" } else { "s" }
        );
        let detail = match state {
            HostState::Disabled => hosts
                .iter()
                .filter_map(|h| h.disabled.as_ref())
                .map(crate::table::disabled_reason)
                .next(),
            HostState::Running => hosts
                .iter()
                .filter_map(|h| h.host_state.as_ref()?.lock.holder.clone())
                .next()
                .map(|holder| format!("held by {holder}")),
            _ => None,
        };
        if let (Some(detail), 1) = (detail, hosts.len()) {
            line.push_str(&format!(": {}", sanitize::line(&detail)));
        }
        lines.push(line);
    }
    // Pins are not a state (a pinned host is as well as any), but pull mode keeps to them.
    let mut pins: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in &report.hosts {
        if let Some(pin) = h.host_state.as_ref().and_then(|s| s.pinned.as_ref()) {
            pins.entry(pin.rev.clone())
                .or_default()
                .push(h.name.clone());
        }
    }
    for (rev, names) in pins {
        lines.push(format!(
            "pinned at {}: {} ({} host{}; a rollout without --rev unpins)",
            sanitize::line(&rev),
            sanitize::line(&fold_to_string(&names)),
            names.len(),
            if names.len() == 1 { "" } else { "s" }
        ));
    }
    lines
}

/// Counts per state, then hosts that could not be looked at: `5 hosts: 3 ok, 1 changed, 1
/// stale, 0 unreachable in 1.2s`.
pub fn summary_line(report: &Report) -> String {
    let counts = counts(report);
    let total = report.hosts.len();
    let mut parts: Vec<String> = Vec::new();
    for state in ["ok", "changed"] {
        parts.push(format!(
            "{} {state}",
            counts.get(state).copied().unwrap_or(0)
        ));
    }
    for (state, n) in &counts {
        if !matches!(state.as_str(), "ok" | "changed" | "unreachable") {
            parts.push(format!("{n} {state}"));
        }
    }
    parts.push(format!(
        "{} unreachable",
        counts.get("unreachable").copied().unwrap_or(0)
    ));
    format!(
        "{total} host{}: {} in {}",
        if total == 1 { "" } else { "s" },
        parts.join(", "),
        crate::table::seconds(report.duration_ms)
    )
}

/// Hosts per state, and per run status for hosts that could not be looked at.
fn counts(report: &Report) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for h in &report.hosts {
        let key = match &h.host_state {
            Some(s) => s.state.to_string(),
            None => h.status.to_string(),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// The flat document `capo status --format json` prints.
pub fn document(report: &Report) -> StatusDocument {
    StatusDocument {
        schema: STATUS_SCHEMA.to_string(),
        run_id: report.run_id.clone(),
        time: report.finished_at.clone(),
        summary: counts(report),
        hosts: report
            .hosts
            .iter()
            .map(|h| {
                let s = h.host_state.as_ref();
                StatusHost {
                    name: h.name.clone(),
                    state: s.map(|s| s.state),
                    error: h.error.clone(),
                    head: s.and_then(|s| s.head.clone()),
                    branch: s.and_then(|s| s.branch.clone()),
                    behind: s.and_then(|s| s.behind),
                    age_s: s.and_then(|s| s.age_s),
                    last_run: s.and_then(|s| s.last_run.clone()),
                    puppet: s.and_then(|s| s.puppet.clone()),
                    pull: s.map(|s| s.pull.clone()),
                    lock: s.map(|s| s.lock.clone()),
                    disabled: h.disabled.clone(),
                    pinned: s.and_then(|s| s.pinned.clone()),
                }
            })
            .collect(),
    }
}

/// [`document`] as pretty JSON with a final newline.
pub fn to_json(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&document(report)).map(|mut s| {
        s.push('\n');
        s
    })
}
