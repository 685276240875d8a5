//! The HTML report: one self-contained page (`capo report html RUN.json`, `--html FILE`) with
//! the summary, a status grid of every host with the hosts folded by host set, a timeline of
//! each host's connect, lock and steps, where the time went, the folded changes and
//! problems, and the diffs collapsed.
//!
//! Self-contained and offline: the CSS and the script are inline, the charts are drawn on
//! canvases by that script from JSON embedded in the page, and the page has no `src` or
//! `href` but to itself. Its Content-Security-Policy says so too: nothing may be fetched,
//! and only the page's own script (by its hash) may run.
//!
//! Everything from hosts (names, messages, resource titles, diffs, output) is made inert as
//! on the terminal ([`sanitize`]) and then HTML-escaped; the embedded JSON has `<`, `>` and
//! `&` escaped as `\u003c`..., so no text can end its `<script>` element. The script only
//! puts host text into `textContent` and canvases.
//!
//! It stays usable at 10,000 hosts: every list of hosts is folded into host sets, long lists
//! are capped, the grid and the timeline are drawn from about 100 bytes of JSON per host
//! (past a few hundred hosts the timeline draws every host as a thin line, with the slowest
//! named in a table).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;
use capo_inventory::fold::fold_to_string;
use capo_schema::{HostReport, HostStatus, Mode, Report, StepName, StepReport};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::grouped::{self, Group};
use crate::json::WriteError;
use crate::sanitize;
use crate::table;

/// Rows of the host-set table, and entries of each folded list, shown before `... and N
/// more`: past that a page only gets longer, not more useful (the JSON report has all).
pub const MAX_ROWS: usize = 500;

/// Characters of a folded host set shown in full before the rest is collapsed.
const MAX_SET_CHARS: usize = 400;

/// Bytes of a step's output tail shown under a problem.
const MAX_TAIL: usize = 4 * 1024;

/// Bytes of one diff shown.
const MAX_DIFF: usize = 32 * 1024;

/// Distinct diffs shown.
const MAX_DIFFS: usize = 100;

/// The slowest hosts named in the table under the timeline.
pub const SLOWEST: usize = 10;

/// The page's stylesheet.
const CSS: &str = include_str!("html.css");

/// The page's script: draws the grid and the timeline from the embedded JSON.
const JS: &str = include_str!("html.js");

/// Timeline phases before a host's steps.
const PHASES: [&str; 2] = ["connect", "lock"];

/// Colours of the timeline's phases: connect, lock, then one per step name in
/// [`StepName::ALL`] order (cycled if there are more).
const PHASE_COLORS: [&str; 12] = [
    "#9aa5b1", "#d4b106", "#4c78a8", "#b279a2", "#f58518", "#72b7b2", "#54a24b", "#eeca3b",
    "#9d755d", "#e45756", "#bab0ac", "#ff9da6",
];

/// The colour a status is shown in, on the grid, the counts and the pills.
pub fn status_color(status: HostStatus) -> &'static str {
    match status {
        HostStatus::Unchanged => "#3a9d5d",
        HostStatus::Changed => "#2f6fde",
        HostStatus::Failed => "#d93b3b",
        HostStatus::Unreachable => "#8e44ad",
        HostStatus::Cancelled => "#e67e22",
        HostStatus::Skipped => "#a0a4ab",
        HostStatus::WouldChange => "#4aa3df",
        HostStatus::Ahead => "#16a3a3",
        HostStatus::Ok => "#2e8b57",
        HostStatus::Disabled => "#6b6f76",
        HostStatus::Bootstrapped => "#27ae60",
        HostStatus::Already => "#7fb77e",
    }
}

/// Writes [`render`]'s page atomically (a temporary file beside `path`, synced, then renamed
/// over it).
pub fn write_html(report: &Report, path: &Path) -> Result<(), WriteError> {
    crate::atomic::write(path, render(report).as_bytes()).map_err(|source| WriteError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The whole page.
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024 + report.hosts.len() * 160);
    let title = format!("capo {}: {}", report.mode, verdict(report));
    let script_hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(JS));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src data:; \
         base-uri 'none'; form-action 'none'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"capo\">\n\
         <title>{} ({})</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
        esc(&title),
        esc(&report.run_id)
    );
    summary(&mut out, report, &title);
    grid(&mut out, report);
    timeline(&mut out, report);
    match report.mode {
        Mode::Exec => outputs(&mut out, report),
        Mode::Plan => incoming(&mut out, report),
        _ => {}
    }
    changes(&mut out, report);
    problems(&mut out, report);
    out.push_str("<div id=\"tip\"></div>\n<script type=\"application/json\" id=\"capo-data\">");
    out.push_str(&script_json(&data(report)));
    out.push_str("</script>\n<script>");
    out.push_str(JS);
    out.push_str("</script>\n</body>\n</html>\n");
    out
}

/// `F of N hosts failed`, `S of N hosts skipped`, `all N hosts ok` or `interrupted by
/// SIGINT`, with ` (halted)` when the run stopped starting hosts early.
fn verdict(report: &Report) -> String {
    if let Some(signal) = &report.interrupted {
        return format!("interrupted by {signal}");
    }
    let s = &report.summary;
    let hosts = if s.total == 1 { "host" } else { "hosts" };
    let failed = s.count_where(HostStatus::is_failure);
    let mut verdict = if failed > 0 {
        format!("{failed} of {} {hosts} failed", s.total)
    } else if s.skipped > 0 {
        format!("{} of {} {hosts} skipped", s.skipped, s.total)
    } else {
        format!("all {} {hosts} ok", s.total)
    };
    if report.halted.is_some() {
        verdict.push_str(" (halted)");
    }
    verdict
}

/// The heading, the counts per status, the summary and revisions lines, and the run's facts.
fn summary(out: &mut String, report: &Report, title: &str) {
    let _ = write!(
        out,
        "<h1>{}</h1>\n<p class=\"summary-line\">{}</p>\n<ul class=\"counts\" id=\"counts\">\n\
         <li class=\"count total\"><span class=\"w\">hosts</span> <span class=\"n\">{}</span></li>\n",
        esc(title),
        esc(&table::summary_line(report)),
        report.summary.total
    );
    let mut statuses: Vec<HostStatus> = HostStatus::ALL.to_vec();
    statuses.sort_by_key(|s| s.severity());
    for status in statuses {
        let n = report.summary.count(status);
        if n > 0 {
            let _ = writeln!(
                out,
                "<li class=\"count\" data-status=\"{status}\" style=\"--c:{}\"><span class=\"w\">{status}</span> <span class=\"n\">{n}</span></li>",
                status_color(status)
            );
        }
    }
    out.push_str("</ul>\n<dl class=\"meta\">\n");
    let mut fact = |name: &str, value: &str| {
        let _ = writeln!(out, "<dt>{name}</dt><dd>{}</dd>", esc(value));
    };
    if let Some(line) = table::revisions_line(report) {
        fact("revisions", line.trim_start_matches("revisions: "));
    }
    fact("run", &report.run_id);
    fact("mode", report.mode.as_str());
    fact(
        "target",
        report
            .target_rev
            .as_deref()
            .unwrap_or("the tip of each host's branch"),
    );
    fact(
        "time",
        &format!(
            "{} to {} ({})",
            report.started_at,
            report.finished_at,
            ms(report.duration_ms)
        ),
    );
    fact("inventory", &report.inventory);
    if let Some(limit) = &report.limit {
        fact("limit", limit);
    }
    if let Some(shard) = &report.shard {
        fact(
            "shard",
            &format!(
                "{}/{} of {} selected hosts",
                shard.index, shard.count, shard.selected
            ),
        );
    }
    if let Some(seed) = &report.seed {
        fact("seed", seed);
    }
    if !report.parts.is_empty() {
        let parts: Vec<String> = report
            .parts
            .iter()
            .map(|p| format!("{} ({} hosts)", p.run_id, p.hosts))
            .collect();
        fact("merged from", &parts.join(", "));
    }
    if let Some(halted) = &report.halted {
        fact("halted", halted);
    }
    if let Some(signal) = &report.interrupted {
        fact("interrupted", signal.as_str());
    }
    fact("logs", &report.run_dir);
    out.push_str("</dl>\n");
}

/// A duration for people: `850 ms`, `12.3 s`, `4m 05s`.
fn ms(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{}m {:02}s", ms / 60_000, ms % 60_000 / 1000),
    }
}

/// Past this, a host is a straggler: 1.5 times the median host's time, and at least a
/// second more (so that a fleet of equal hosts, or one of sub-second runs, has none). `None`
/// when no host ran.
fn straggler_threshold(durations: &mut [u64]) -> Option<u64> {
    if durations.is_empty() {
        return None;
    }
    durations.sort_unstable();
    let median = durations[(durations.len() - 1) / 2];
    Some((median + median / 2).max(median + 1000))
}

/// One row of the host-set table: hosts that share status, revision and reason.
struct Row<'a> {
    hosts: Vec<&'a str>,
    status: HostStatus,
    revision: String,
    reason: String,
    max_ms: u64,
}

/// What a host's row says beside its status: the error (its own name in it as `<host>`, as
/// the problems fold it, so that Puppet's errors naming the node fold too), why it was left
/// alone, or that it ran unlocked.
fn reason(h: &HostReport) -> String {
    match (&h.error, &h.disabled, h.locked) {
        (Some(e), _, _) => grouped::without_host(&format!("{}: {}", e.kind, e.message), &h.name),
        (None, Some(d), _) => table::disabled_reason(d),
        (None, None, Some(false)) => "ran unlocked (lock = false)".to_string(),
        (None, None, _) => String::new(),
    }
}

/// Hosts folded into rows that share status, revision and reason, worst first.
fn rows(report: &Report) -> Vec<Row<'_>> {
    let mut rows: Vec<Row<'_>> = Vec::new();
    let mut index: HashMap<(HostStatus, String, String), usize> = HashMap::new();
    for h in &report.hosts {
        let key = (
            h.status,
            table::host_revision_and_config(report, h),
            reason(h),
        );
        match index.get(&key) {
            Some(&at) => {
                rows[at].hosts.push(&h.name);
                rows[at].max_ms = rows[at].max_ms.max(h.duration_ms);
            }
            None => {
                index.insert(key.clone(), rows.len());
                let (status, revision, reason) = key;
                rows.push(Row {
                    hosts: vec![&h.name],
                    status,
                    revision,
                    reason,
                    max_ms: h.duration_ms,
                });
            }
        }
    }
    // Stable: within a status, first-seen (report) order.
    rows.sort_by_key(|r| r.status.severity());
    rows
}

/// The status grid (a canvas the script draws, a cell per host) and the host-set table.
fn grid(out: &mut String, report: &Report) {
    out.push_str("<h2>Hosts</h2>\n<div class=\"legend\">");
    let mut statuses: Vec<HostStatus> = HostStatus::ALL
        .iter()
        .copied()
        .filter(|s| report.summary.count(*s) > 0)
        .collect();
    statuses.sort_by_key(|s| s.severity());
    for s in &statuses {
        let _ = write!(
            out,
            "<span><i class=\"dot\" style=\"--c:{}\"></i>{s} {}</span>",
            status_color(*s),
            report.summary.count(*s)
        );
    }
    out.push_str(
        "</div>\n<div class=\"tools\"><label>hosts containing <input id=\"filter\" \
         type=\"search\" placeholder=\"web01\" size=\"18\"></label></div>\n\
         <div class=\"canvas-box\"><canvas id=\"grid\" aria-label=\"a cell per host, \
         coloured by status\"></canvas></div>\n\
         <noscript><p class=\"noscript\">The grid and the timeline need JavaScript; the \
         tables do not.</p></noscript>\n",
    );
    let rows = rows(report);
    out.push_str(
        "<table class=\"sets\">\n<thead><tr><th>host set</th><th class=\"num\">hosts</th>\
         <th>status</th><th>revision</th><th class=\"num\">duration</th><th>reason</th></tr>\
         </thead>\n<tbody>\n",
    );
    for row in rows.iter().take(MAX_ROWS) {
        let n = row.hosts.len();
        let duration = if n == 1 {
            ms(row.max_ms)
        } else {
            format!("max {}", ms(row.max_ms))
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{n}</td><td>{}</td>\
             <td class=\"rev\">{}</td><td class=\"num\">{duration}</td><td>{}</td></tr>",
            host_set(&row.hosts),
            pill(row.status),
            esc(&row.revision),
            esc(&row.reason)
        );
    }
    out.push_str("</tbody>\n</table>\n");
    more(out, rows.len(), "rows");
}

/// A folded host set, escaped, as an element; a long one shows its start and collapses the
/// whole (a `<details>`: not inside a `<p>`, `<span>` or `<summary>`).
fn host_set<S: AsRef<str>>(hosts: &[S]) -> String {
    let folded = sanitize::line(&fold_to_string(hosts));
    if folded.chars().count() <= MAX_SET_CHARS {
        return format!("<span class=\"set\">{}</span>", esc_raw(&folded));
    }
    let cut: String = folded.chars().take(MAX_SET_CHARS).collect();
    format!(
        "<details class=\"set\"><summary>{}&hellip;</summary>{}</details>",
        esc_raw(&cut),
        esc_raw(&folded)
    )
}

/// A folded host set, escaped, cut to its start when long: for inside a line.
fn host_set_inline<S: AsRef<str>>(hosts: &[S]) -> String {
    let folded = sanitize::line(&fold_to_string(hosts));
    let mut cut: String = folded.chars().take(MAX_SET_CHARS).collect();
    if cut.len() < folded.len() {
        cut.push('\u{2026}');
    }
    format!("<span class=\"set\">{}</span>", esc_raw(&cut))
}

/// A status as a coloured pill.
fn pill(status: HostStatus) -> String {
    format!(
        "<span class=\"pill\" style=\"--c:{}\">{status}</span>",
        status_color(status)
    )
}

/// `... and N more ROWS` past [`MAX_ROWS`].
fn more(out: &mut String, total: usize, what: &str) {
    if total > MAX_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"more\">... and {} more {what} (the JSON report has every one)</p>",
            total - MAX_ROWS
        );
    }
}

/// One bar of the timeline: a phase (index into the phase names), its start and length.
type Span = (usize, u64, u64);

/// A host's bars: connect and lock from its timing, then its steps. Reports without timing
/// (older ones) lay the steps end to end from the run's start; `None` for a host that never
/// ran.
fn spans(h: &HostReport) -> Option<(u64, Vec<Span>)> {
    if h.timing.is_none() && h.steps.is_empty() {
        return None;
    }
    let started = h.timing.map_or(0, |t| t.started_ms);
    let mut spans = Vec::with_capacity(2 + h.steps.len());
    let mut at = started;
    if let Some(t) = h.timing {
        spans.push((0, at, t.connect_ms));
        at += t.connect_ms;
        if let Some(lock) = t.lock_ms {
            spans.push((1, at, lock));
            at += lock;
        }
    }
    for s in &h.steps {
        let start = s.started_ms.unwrap_or(at);
        spans.push((phase_index(s.name), start, s.duration_ms));
        at = start + s.duration_ms;
    }
    Some((started, spans))
}

fn phase_index(step: StepName) -> usize {
    PHASES.len() + StepName::ALL.iter().position(|s| *s == step).unwrap_or(0)
}

fn phase_names() -> Vec<&'static str> {
    PHASES
        .iter()
        .copied()
        .chain(StepName::ALL.iter().map(|s| s.as_str()))
        .collect()
}

fn phase_color(index: usize) -> &'static str {
    PHASE_COLORS[index % PHASE_COLORS.len()]
}

/// The timeline's canvas, its legend, where the time went per phase, and the slowest hosts.
fn timeline(out: &mut String, report: &Report) {
    let ran: Vec<(&HostReport, u64, Vec<Span>)> = report
        .hosts
        .iter()
        .filter_map(|h| spans(h).map(|(start, s)| (h, start, s)))
        .collect();
    out.push_str("<h2>Timeline</h2>\n");
    if ran.is_empty() {
        out.push_str("<p class=\"note\">No host ran.</p>\n");
        return;
    }
    if report.hosts.iter().all(|h| h.timing.is_none()) {
        out.push_str(
            "<p class=\"note\">This report has no timing (written by an older capo): each \
             host's steps are laid end to end from the run's start.</p>\n",
        );
    }
    let names = phase_names();
    let mut used = vec![false; names.len()];
    for (_, _, spans) in &ran {
        for s in spans {
            used[s.0] = true;
        }
    }
    out.push_str("<div class=\"legend\">");
    for (i, name) in names.iter().enumerate().filter(|(i, _)| used[*i]) {
        let _ = write!(
            out,
            "<span><i class=\"dot\" style=\"--c:{}\"></i>{name}</span>",
            phase_color(i)
        );
    }
    let mut durations: Vec<u64> = ran.iter().map(|(h, _, _)| h.duration_ms).collect();
    let threshold = straggler_threshold(&mut durations).unwrap_or(u64::MAX);
    let stragglers = durations.iter().filter(|d| **d > threshold).count();
    let _ = writeln!(
        out,
        "<span><i class=\"dot\" style=\"--c:#d93b3b\"></i>a straggler's end (over {})</span></div>",
        ms(threshold)
    );
    out.push_str(
        "<div class=\"tools\"><label>order <select id=\"tl-sort\">\
         <option value=\"start\">by start</option><option value=\"slowest\">slowest first</option>\
         <option value=\"report\">as in the report</option></select></label></div>\n\
         <div class=\"canvas-box\"><canvas id=\"timeline\" aria-label=\"a bar per host: \
         connect, lock and each step\"></canvas></div>\n",
    );

    // Where the time went: per phase, across the hosts that went through it.
    out.push_str(
        "<h3>Where the time went</h3>\n<table class=\"phases\">\n<thead><tr><th>phase</th>\
         <th class=\"num\">hosts</th><th class=\"num\">median</th><th class=\"num\">p95</th>\
         <th class=\"num\">max</th><th>slowest</th></tr></thead>\n<tbody>\n",
    );
    let mut per_phase: Vec<Vec<(u64, &str)>> = vec![Vec::new(); names.len()];
    let mut totals: Vec<(u64, &str)> = Vec::with_capacity(ran.len());
    for (h, _, spans) in &ran {
        for s in spans {
            per_phase[s.0].push((s.2, &h.name));
        }
        totals.push((h.duration_ms, &h.name));
    }
    let mut phase_row = |label: String, mut values: Vec<(u64, &str)>| {
        if values.is_empty() {
            return;
        }
        values.sort_unstable_by_key(|v| v.0);
        let pick = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize].0;
        let (max, who) = values[values.len() - 1];
        let _ = writeln!(
            out,
            "<tr><td>{label}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"mono\">{}</td></tr>",
            values.len(),
            ms(pick(0.5)),
            ms(pick(0.95)),
            ms(max),
            esc(who)
        );
    };
    for (i, values) in per_phase.into_iter().enumerate() {
        let label = format!(
            "<i class=\"dot\" style=\"--c:{}\"></i>{}",
            phase_color(i),
            names[i]
        );
        phase_row(label, values);
    }
    phase_row("<b>whole host</b>".to_string(), totals);
    out.push_str("</tbody>\n</table>\n");

    // The stragglers, by name.
    let mut slowest: Vec<&(&HostReport, u64, Vec<Span>)> = ran.iter().collect();
    slowest.sort_by_key(|(h, _, _)| std::cmp::Reverse(h.duration_ms));
    let _ = writeln!(
        out,
        "<h3>Slowest hosts</h3>\n<p class=\"note\" id=\"stragglers\">{stragglers} straggler{} \
         (hosts that took over {}: half again the median host's time, and at least 1 s more)</p>\n\
         <table class=\"slow\">\n<thead><tr><th>host</th><th>status</th>\
         <th class=\"num\">started</th><th class=\"num\">duration</th><th>where the time went</th>\
         </tr></thead>\n<tbody>",
        if stragglers == 1 { "" } else { "s" },
        ms(threshold)
    );
    for (h, start, spans) in slowest.iter().take(SLOWEST) {
        let parts: Vec<String> = spans
            .iter()
            .map(|s| format!("{} {}", names[s.0], ms(s.2)))
            .collect();
        let _ = writeln!(
            out,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"num\">+{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&h.name),
            pill(h.status),
            ms(*start),
            ms(h.duration_ms),
            parts.join(", ")
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

/// A list of folded groups under a heading, capped at [`MAX_ROWS`].
fn groups(out: &mut String, title: &str, groups: &[Group], kind_first: bool) {
    if groups.is_empty() {
        return;
    }
    let _ = writeln!(out, "<h2>{}</h2>\n<ul class=\"groups\">", esc(title));
    for g in groups.iter().take(MAX_ROWS) {
        let n = g.hosts.len();
        let what = match g.what.split_once(": ").filter(|_| kind_first) {
            Some((kind, message)) => format!(
                "<span class=\"kind\">{}</span>: {}",
                esc(kind),
                esc(message)
            ),
            None => esc(&g.what),
        };
        let _ = writeln!(
            out,
            "<li>{what} <span class=\"hosts\">on</span> {} <span class=\"hosts\">({n} host{})</span></li>",
            host_set(&g.hosts),
            if n == 1 { "" } else { "s" }
        );
    }
    out.push_str("</ul>\n");
    more(out, groups.len(), "lines");
}

/// The folded resource changes, then each distinct diff once, collapsed.
fn changes(out: &mut String, report: &Report) {
    let title = if matches!(report.mode, Mode::Plan | Mode::Bootstrap) {
        "Would change"
    } else {
        "Changes"
    };
    groups(out, title, &grouped::changes(report), false);
    let diffs = grouped::diffs(report);
    if diffs.is_empty() {
        return;
    }
    let _ = writeln!(out, "<h3>Diffs ({})</h3>", diffs.len());
    for (resource, diff, hosts) in diffs.iter().take(MAX_DIFFS) {
        let n = hosts.len();
        let _ = writeln!(
            out,
            "<details><summary><span class=\"mono\">{}</span> <span class=\"hosts\">on</span> {} <span class=\"hosts\">({n} host{})</span></summary><pre>{}</pre></details>",
            esc(resource),
            host_set_inline(hosts),
            if n == 1 { "" } else { "s" },
            diff_lines(&tail_of(diff, MAX_DIFF, false))
        );
    }
    if diffs.len() > MAX_DIFFS {
        let _ = writeln!(
            out,
            "<p class=\"more\">... and {} more diffs</p>",
            diffs.len() - MAX_DIFFS
        );
    }
}

/// A unified diff, escaped, its added, removed and hunk lines coloured.
fn diff_lines(diff: &str) -> String {
    let mut out = String::with_capacity(diff.len() + diff.len() / 4);
    for line in diff.split_inclusive('\n') {
        let class = if line.starts_with("+++") || line.starts_with("---") {
            None
        } else if line.starts_with('+') {
            Some("d-add")
        } else if line.starts_with('-') {
            Some("d-del")
        } else if line.starts_with("@@") {
            Some("d-hunk")
        } else {
            None
        };
        match class {
            Some(c) => {
                let _ = write!(out, "<span class=\"{c}\">{}</span>", esc_block(line));
            }
            None => out.push_str(&esc_block(line)),
        }
    }
    out
}

/// The folded problems, each with the output of the step that failed on its first host,
/// collapsed.
fn problems(out: &mut String, report: &Report) {
    let failures = grouped::failures(report);
    if failures.is_empty() {
        return;
    }
    let by_name: HashMap<&str, &HostReport> =
        report.hosts.iter().map(|h| (h.name.as_str(), h)).collect();
    let _ = writeln!(out, "<h2>Problems</h2>\n<ul class=\"groups\">");
    for g in failures.iter().take(MAX_ROWS) {
        let n = g.hosts.len();
        let (kind, message) = g.what.split_once(": ").unwrap_or(("", &g.what));
        let _ = write!(
            out,
            "<li><span class=\"kind\">{}</span>: {} <span class=\"hosts\">on</span> {} <span class=\"hosts\">({n} host{})</span>",
            esc(kind),
            esc(message),
            host_set(&g.hosts),
            if n == 1 { "" } else { "s" }
        );
        let first = g.hosts.first().and_then(|n| by_name.get(n.as_str()));
        if let Some((host, step)) = first.and_then(|h| failed_step(h).map(|s| (h, s))) {
            let text = format!("{}{}", step.stdout_tail, step.stderr_tail);
            if !text.trim().is_empty() {
                let _ = write!(
                    out,
                    "<details><summary>output of {} on {}</summary><pre>{}</pre></details>",
                    step.name,
                    esc(&host.name),
                    esc_block(&tail_of(&text, MAX_TAIL, true))
                );
            }
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n");
    more(out, failures.len(), "problems");
}

/// The step whose output explains a host's failure: the last that ran.
fn failed_step(h: &HostReport) -> Option<&StepReport> {
    h.steps.last()
}

/// At most `max` bytes of `text` (its end when `end`, else its start), cut on a character
/// boundary, saying how much was left out.
fn tail_of(text: &str, max: usize, end: bool) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    if end {
        let mut at = text.len() - max;
        while !text.is_char_boundary(at) {
            at += 1;
        }
        format!("[... {at} bytes before]\n{}", &text[at..])
    } else {
        let mut at = max;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        format!("{}\n[... {} bytes more]", &text[..at], text.len() - at)
    }
}

/// Exec: the gathered outputs, each under its folded host set, collapsed.
fn outputs(out: &mut String, report: &Report) {
    let outputs = grouped::outputs(report);
    if outputs.is_empty() {
        return;
    }
    let _ = writeln!(out, "<h2>Output</h2>");
    for (text, code, hosts) in outputs.iter().take(MAX_ROWS) {
        let n = hosts.len();
        let code = match code {
            Some(0) => String::new(),
            Some(c) => format!(", exit {c}"),
            None => ", did not finish".to_string(),
        };
        let _ = writeln!(
            out,
            "<details><summary>{} ({n} host{}{code})</summary><pre>{}</pre></details>",
            host_set_inline(hosts),
            if n == 1 { "" } else { "s" },
            esc_block(&tail_of(text, MAX_TAIL, true))
        );
    }
    more(out, outputs.len(), "outputs");
}

/// Plan: the incoming commits, grouped by identical list.
fn incoming(out: &mut String, report: &Report) {
    let incoming = grouped::incoming(report);
    if incoming.is_empty() {
        return;
    }
    let _ = writeln!(out, "<h2>Incoming commits</h2>");
    for (commits, count, hosts) in incoming.iter().take(MAX_ROWS) {
        let n = hosts.len();
        let _ = writeln!(
            out,
            "<div>{count} incoming commit{} on {} ({n} host{})</div><pre>{}</pre>",
            if *count == 1 { "" } else { "s" },
            host_set(hosts),
            if n == 1 { "" } else { "s" },
            esc_block(&commits.join("\n"))
        );
    }
    more(out, incoming.len(), "lists");
}

/// What the script draws from.
#[derive(Serialize)]
struct Data<'a> {
    /// Status words; a host's status is an index into these.
    statuses: Vec<&'static str>,
    /// Their colours.
    colors: Vec<&'static str>,
    /// Phase names (connect, lock, the steps); a bar's phase is an index into these.
    phases: Vec<&'static str>,
    /// Their colours.
    phase_colors: Vec<&'static str>,
    /// The run's length, in ms.
    duration: u64,
    /// Hosts that took longer than this (ms) are stragglers; null when no host ran.
    straggler_ms: Option<u64>,
    /// `[name, status, started ms or null, duration ms, [phase, start, ms, ...]]` per host,
    /// in report order.
    hosts: Vec<HostData<'a>>,
}

/// One host for the script: name, status index, started (ms, null if it never ran),
/// duration (ms), and its bars flattened as `phase, start, ms` triples.
type HostData<'a> = (&'a str, usize, Option<u64>, u64, Vec<u64>);

fn data(report: &Report) -> Data<'_> {
    let phases = phase_names();
    let status_index = |s: HostStatus| HostStatus::ALL.iter().position(|x| *x == s).unwrap_or(0);
    let hosts = report
        .hosts
        .iter()
        .map(|h| {
            let (started, flat) = match spans(h) {
                Some((started, spans)) => (
                    Some(started),
                    spans
                        .into_iter()
                        .flat_map(|(p, at, ms)| [p as u64, at, ms])
                        .collect(),
                ),
                None => (None, Vec::new()),
            };
            (
                h.name.as_str(),
                status_index(h.status),
                started,
                h.duration_ms,
                flat,
            )
        })
        .collect();
    Data {
        statuses: HostStatus::ALL.iter().map(|s| s.as_str()).collect(),
        colors: HostStatus::ALL.iter().map(|s| status_color(*s)).collect(),
        phase_colors: (0..phases.len()).map(phase_color).collect(),
        phases,
        duration: report.duration_ms,
        straggler_ms: straggler_threshold(
            &mut report
                .hosts
                .iter()
                .filter(|h| spans(h).is_some())
                .map(|h| h.duration_ms)
                .collect::<Vec<_>>(),
        ),
        hosts,
    }
}

/// JSON for inside a `<script>` element: `<`, `>` and `&` (and the line separators JavaScript
/// once did not allow in strings) written as `\uXXXX`, which JSON reads back the same, so
/// no text can close the element or open a comment in it.
fn script_json(value: &impl Serialize) -> String {
    // Our own types always serialise; `null` draws an empty page rather than panicking.
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".to_string());
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// One line of text from anywhere, inert ([`sanitize::line`]) and HTML-escaped.
fn esc(text: &str) -> String {
    esc_raw(&sanitize::line(text))
}

/// Multi-line text (output, a diff) for a `<pre>`, inert and HTML-escaped.
fn esc_block(text: &str) -> String {
    esc_raw(&sanitize::block(text))
}

/// HTML-escapes `text` for an element's content or a quoted attribute value.
fn esc_raw(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Every `src`, `href`, `action`, `srcset`, `poster` or `formaction` value in the markup of
/// `html` that points away from the page (anything but `#...` and `data:`), in order. Text,
/// comments and the contents of `<script>` and `<style>` are not markup and are skipped, so
/// an escaped `&lt;img src=http://...&gt;` from a host does not count; this is how the tests
/// check a page (also one a browser serialised after its scripts ran) fetches nothing.
pub fn external_references(html: &str) -> Vec<String> {
    const ATTRS: [&str; 6] = ["src", "href", "action", "srcset", "poster", "formaction"];
    let mut found = Vec::new();
    let bytes = html.as_bytes();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let start = i + off;
        let rest = &html[start..];
        if rest.starts_with("<!--") {
            i = rest.find("-->").map_or(html.len(), |e| start + e + 3);
            continue;
        }
        let Some(first) = bytes.get(start + 1) else {
            break;
        };
        if !first.is_ascii_alphabetic() {
            i = start + 1;
            continue;
        }
        let (attrs, end) = tag_attributes(html, start + 1);
        let name: String = html[start + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        for (attr, value) in attrs {
            if ATTRS.contains(&attr.as_str()) {
                let v = value.trim();
                if !(v.starts_with('#') || v.to_ascii_lowercase().starts_with("data:")) {
                    found.push(format!("{attr}={value}"));
                }
            }
        }
        i = end;
        // Raw text elements: their contents are not markup.
        if name == "script" || name == "style" {
            let close = format!("</{name}");
            i = html[i..]
                .to_ascii_lowercase()
                .find(&close)
                .map_or(html.len(), |e| i + e);
        }
    }
    found
}

/// The attributes of the tag whose name starts at `at`, lower-cased names with their values,
/// and where the tag ends.
fn tag_attributes(html: &str, at: usize) -> (Vec<(String, String)>, usize) {
    let bytes = html.as_bytes();
    let mut i = at;
    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
        i += 1;
    }
    let mut attrs = Vec::new();
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return (attrs, bytes.len());
        }
        if bytes[i] == b'>' {
            return (attrs, i + 1);
        }
        let name_start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
        {
            i += 1;
        }
        let name = html[name_start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if bytes.get(i) == Some(&b'=') {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            match bytes.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    let end = html[i + 1..]
                        .find(q as char)
                        .map_or(bytes.len(), |e| i + 1 + e);
                    value = html[i + 1..end].to_string();
                    i = (end + 1).min(bytes.len());
                }
                _ => {
                    let s = i;
                    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                        i += 1;
                    }
                    value = html[s..i].to_string();
                }
            }
        }
        attrs.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capo_schema::{
        DiffReport, ErrorKind, ErrorReport, EventReport, HostTiming, PuppetReport, Summary, SCHEMA,
    };

    fn step(name: StepName, started: u64, ms: u64) -> StepReport {
        StepReport {
            name,
            command: String::new(),
            exit_code: Some(0),
            duration_ms: ms,
            stdout_tail: String::new(),
            stderr_tail: String::new(),
            truncated: false,
            log_error: None,
            started_ms: Some(started),
        }
    }

    fn host(name: &str, status: HostStatus, started: u64) -> HostReport {
        HostReport {
            address: "127.0.0.1".into(),
            port: 22,
            connect_attempts: 1,
            duration_ms: 1500,
            rev_before: Some("3f2a1c9aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into()),
            rev_after: Some("77b0e41bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into()),
            timing: Some(HostTiming {
                started_ms: started,
                connect_ms: 40,
                lock_ms: Some(5),
            }),
            steps: vec![
                step(StepName::Sync, started + 45, 300),
                step(StepName::Apply, started + 345, 1100),
            ],
            ..HostReport::new(name, status)
        }
    }

    fn report(hosts: Vec<HostReport>) -> Report {
        let summary = Summary::of(&hosts);
        Report {
            schema: SCHEMA.into(),
            run_id: "20261203T101500Z-ab12".into(),
            mode: Mode::Rollout,
            target_rev: None,
            started_at: "2026-12-03T10:15:00.000Z".into(),
            finished_at: "2026-12-03T10:15:04.000Z".into(),
            duration_ms: 4000,
            inventory: "inventory.toml".into(),
            limit: None,
            interrupted: None,
            halted: None,
            run_dir: ".capo/runs/20261203T101500Z-ab12".into(),
            summary,
            hosts,
            shard: None,
            seed: None,
            parts: Vec::new(),
        }
    }

    fn failed(mut h: HostReport, kind: ErrorKind, message: &str) -> HostReport {
        h.error = Some(ErrorReport {
            kind,
            message: message.into(),
        });
        h
    }

    fn changed_motd(mut h: HostReport, title: &str) -> HostReport {
        h.puppet = Some(PuppetReport {
            exit_code: Some(2),
            resources: None,
            event_counts: None,
            config_version: None,
            events: vec![EventReport {
                resource: title.into(),
                property: Some("content".into()),
                previous: None,
                desired: None,
                status: "success".into(),
                message: "content changed".into(),
            }],
            diffs: vec![DiffReport {
                resource: title.into(),
                diff: "--- a\n+++ b\n@@ -1 +1 @@\n-old </pre><b>x</b>\n+new\n".into(),
            }],
            unreadable: None,
        });
        h
    }

    const HOSTILE: &str = "File[</script><script>alert(1)</script>]";
    const IMG: &str = "oops <img src=http://attacker.example/x.png onerror=alert(1)>";

    fn mixed() -> Report {
        let mut hosts = vec![
            changed_motd(host("web01", HostStatus::Changed, 0), HOSTILE),
            changed_motd(host("web02", HostStatus::Changed, 10), HOSTILE),
            failed(
                host("web03", HostStatus::Failed, 20),
                ErrorKind::Puppet,
                IMG,
            ),
            failed(
                HostReport {
                    steps: Vec::new(),
                    timing: Some(HostTiming {
                        started_ms: 30,
                        connect_ms: 3000,
                        lock_ms: None,
                    }),
                    ..host("db1", HostStatus::Unreachable, 30)
                },
                ErrorKind::Connect,
                "connection refused (127.0.0.1:2201)",
            ),
            failed(
                HostReport::new("web05", HostStatus::Skipped),
                ErrorKind::Interrupted,
                "not started: interrupted",
            ),
        ];
        hosts[2].steps[1].stderr_tail = "Error: <b>boom</b> on node web03\n".into();
        report(hosts)
    }

    #[test]
    fn text_from_hosts_stays_text() {
        let page = render(&mixed());
        // Only the page's own two scripts open and close.
        assert_eq!(page.matches("<script").count(), 2, "{page}");
        assert_eq!(page.matches("</script").count(), 2, "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<b>boom"), "{page}");
        assert!(!page.contains("<b>x"), "{page}");
        // Shown, escaped, in the problems and the changes.
        assert!(
            page.contains("oops &lt;img src=http://attacker.example/x.png onerror=alert(1)&gt;")
        );
        assert!(page.contains("File[&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;]"));
        assert!(page.contains("Error: &lt;b&gt;boom&lt;/b&gt; on node web03"));
        assert!(
            page.contains("<span class=\"d-del\">-old &lt;/pre&gt;&lt;b&gt;x&lt;/b&gt;\n</span>")
        );
        assert_eq!(external_references(&page), Vec::<String>::new());
    }

    #[test]
    fn a_hostile_host_name_cannot_close_the_data_script() {
        let name = "</script><script>alert(document.domain)</script><!--";
        let page = render(&report(vec![host(name, HostStatus::Changed, 0)]));
        assert_eq!(page.matches("<script").count(), 2);
        assert_eq!(page.matches("</script").count(), 2);
        assert!(!page.contains("<!--"));
        // The JSON still holds the name exactly.
        let start = page.find("id=\"capo-data\">").expect("data") + "id=\"capo-data\">".len();
        let end = start + page[start..].find("</script>").expect("end");
        let data: serde_json::Value = serde_json::from_str(&page[start..end]).expect("JSON");
        assert_eq!(data["hosts"][0][0], name);
    }

    #[test]
    fn the_page_points_nowhere_but_itself() {
        let page = render(&mixed());
        assert_eq!(external_references(&page), Vec::<String>::new());
        assert!(page.contains("default-src 'none'"));
        // The policy lets exactly the page's own script run.
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(JS));
        assert!(page.contains(&format!("script-src 'sha256-{hash}'")));
        assert!(page.contains(&format!("<script>{JS}</script>")));
        // The check finds what it is for, and only in markup.
        let bad = "<p>x</p><img alt=x src=\"http://a.example/i.png\"><a href='https://b.example'>b</a>\
                   <link rel=stylesheet href=//c.example/s.css><a href=\"#top\">t</a>\
                   <img src=\"data:image/png;base64,AA\"><p>&lt;img src=http://text&gt;</p>\
                   <script>if (a<b) { x = '<img src=http://in-script>'; }</script><!-- <a href=http://comment> -->";
        assert_eq!(
            external_references(bad),
            [
                "src=http://a.example/i.png",
                "href=https://b.example",
                "href=//c.example/s.css"
            ]
        );
    }

    #[test]
    fn the_page_has_the_summary_grid_timeline_changes_and_problems() {
        let page = render(&mixed());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(
            page.contains("<h1>capo rollout: 2 of 5 hosts failed</h1>"),
            "{page}"
        );
        for (status, n) in [
            ("changed", 2),
            ("failed", 1),
            ("unreachable", 1),
            ("skipped", 1),
        ] {
            assert!(
                page.contains(&format!(
                    "data-status=\"{status}\" style=\"--c:{}\"><span class=\"w\">{status}</span> <span class=\"n\">{n}</span>",
                    status_color(status.parse().expect("status"))
                )),
                "{status}"
            );
        }
        assert!(!page.contains("data-status=\"unchanged\""));
        // The host-set table folds the two changed hosts.
        assert!(page.contains(
            "<td><span class=\"set\">web[01-02]</span></td><td class=\"num\">2</td><td><span class=\"pill\""
        ));
        assert!(page.contains("<canvas id=\"grid\""));
        assert!(page.contains("<canvas id=\"timeline\""));
        // Where the time went: connect on 4 hosts (the skipped one never ran), slowest db1.
        assert!(page.contains("connect</td><td class=\"num\">4</td><td class=\"num\">40 ms</td><td class=\"num\">3.0 s</td><td class=\"num\">3.0 s</td><td class=\"mono\">db1</td>"), "{page}");
        // Changes folded, the diff collapsed.
        assert!(page.contains("content changed <span class=\"hosts\">on</span> <span class=\"set\">web[01-02]</span> <span class=\"hosts\">(2 hosts)"));
        assert!(page.contains("<details><summary><span class=\"mono\">File["));
        // Problems with kind, message and the failed step's output, collapsed.
        assert!(page.contains("<span class=\"kind\">connect</span>: connection refused (127.0.0.1:2201) <span class=\"hosts\">on</span> <span class=\"set\">db1</span> <span class=\"hosts\">(1 host)"));
        assert!(page.contains("<details><summary>output of apply on web03</summary>"));
    }

    #[test]
    fn the_embedded_data_places_each_host_on_the_timeline() {
        let r = mixed();
        let d = data(&r);
        let json: serde_json::Value =
            serde_json::from_str(&script_json(&d)).expect("the escaped JSON is JSON");
        let web01 = &json["hosts"][0];
        assert_eq!(web01[0], "web01");
        assert_eq!(
            json["statuses"][web01[1].as_u64().expect("index") as usize],
            "changed"
        );
        assert_eq!(web01[2], 0);
        let sync = phase_index(StepName::Sync) as u64;
        let apply = phase_index(StepName::Apply) as u64;
        assert_eq!(
            web01[4],
            serde_json::json!([0, 0, 40, 1, 40, 5, sync, 45, 300, apply, 345, 1100])
        );
        // The skipped host is in the grid but not on the timeline.
        assert_eq!(json["hosts"][4][2], serde_json::Value::Null);
        assert_eq!(json["phases"][0], "connect");
        assert_eq!(json["phases"][sync as usize], "sync");
    }

    #[test]
    fn a_report_without_timing_lays_steps_end_to_end() {
        let mut h = host("old01", HostStatus::Changed, 0);
        h.timing = None;
        for s in &mut h.steps {
            s.started_ms = None;
        }
        let (start, spans) = spans(&h).expect("it ran");
        assert_eq!(start, 0);
        let sync = phase_index(StepName::Sync);
        let apply = phase_index(StepName::Apply);
        assert_eq!(spans, [(sync, 0, 300), (apply, 300, 1100)]);
        assert!(render(&report(vec![h])).contains("This report has no timing"));
    }

    #[test]
    fn long_host_sets_collapse_and_long_outputs_are_cut() {
        let names: Vec<String> = (0..400).map(|i| format!("n{}x{i}", i * 7)).collect();
        let set = host_set(&names);
        assert!(
            set.starts_with("<details class=\"set\"><summary>n0x0,n7x1,"),
            "{set}"
        );
        assert!(set.ends_with(",n2793x399</details>"), "{set}");
        let inline = host_set_inline(&names);
        assert!(inline.ends_with("\u{2026}</span>"), "{inline}");
        assert_eq!(
            host_set(&["web01", "web02"]),
            "<span class=\"set\">web[01-02]</span>"
        );
        let text = "é".repeat(3000);
        let cut = tail_of(&text, 101, true);
        assert!(cut.starts_with("[... 5900 bytes before]\n"), "{cut}");
        assert!(cut.ends_with('é'));
        let cut = tail_of(&text, 101, false);
        assert!(cut.ends_with("\n[... 5900 bytes more]"), "{cut}");
    }

    #[test]
    fn durations_read_as_people_say_them_and_stragglers_stand_out() {
        assert_eq!(
            [ms(0), ms(999), ms(1000), ms(12_345), ms(245_000)],
            ["0 ms", "999 ms", "1.0 s", "12.3 s", "4m 05s"]
        );
        let mut even = vec![1000; 10];
        assert_eq!(straggler_threshold(&mut even), Some(2000));
        let mut slow = vec![20_000, 20_500, 21_000, 45_000];
        // Half again the median (20.5 s).
        assert_eq!(straggler_threshold(&mut slow), Some(30_750));
        assert_eq!(straggler_threshold(&mut []), None);
        let mut hosts: Vec<HostReport> = (0..9)
            .map(|i| host(&format!("web{i:02}"), HostStatus::Changed, i * 10))
            .collect();
        hosts[4].duration_ms = 9000;
        let page = render(&report(hosts));
        assert!(
            page.contains(
                "<p class=\"note\" id=\"stragglers\">1 straggler (hosts that took over 2.5 s"
            ),
            "{page}"
        );
    }

    /// A simulated run of `n` hosts as a big fleet's rollout looks: 200 at a time, most
    /// changed with the same three resources and one diff, every 97th failing with Puppet's
    /// error naming the node, every 500th unreachable, a slow rack, the last hosts cancelled.
    pub(crate) fn fleet(n: usize) -> Report {
        // A fixed pseudo-random sequence (an LCG), so the page is the same every time.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |range: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % range
        };
        let mut wave_end = vec![0u64; 200];
        let hosts: Vec<HostReport> = (0..n)
            .map(|i| {
                let name = format!("web{:05}", i + 1);
                let slot = i % 200;
                let started = wave_end[slot];
                let connect = 30 + next(40);
                let lock = 3 + next(5);
                let sync = 250 + next(300);
                let slow_rack = (4000..4040).contains(&i);
                let apply = if slow_rack { 25_000 } else { 8_000 } + next(4000);
                let mut h = host(&name, HostStatus::Changed, started);
                h.timing = Some(HostTiming {
                    started_ms: started,
                    connect_ms: connect,
                    lock_ms: Some(lock),
                });
                h.steps = vec![
                    step(StepName::Sync, started + connect + lock, sync),
                    step(StepName::Apply, started + connect + lock + sync, apply),
                ];
                h.steps[1].stdout_tail = format!(
                    "Notice: Compiled catalog for {name} in environment production in 1.92 seconds\n\
                     Notice: /Stage[main]/Motd/File[/etc/motd]/content: content changed\n\
                     Notice: Applied catalog in 3.10 seconds\n"
                );
                h.duration_ms = connect + lock + sync + apply;
                if i % 500 == 499 {
                    h = failed(
                        HostReport {
                            steps: Vec::new(),
                            duration_ms: 10_000,
                            timing: Some(HostTiming {
                                started_ms: started,
                                connect_ms: 10_000,
                                lock_ms: None,
                            }),
                            rev_after: None,
                            ..host(&name, HostStatus::Unreachable, started)
                        },
                        ErrorKind::Connect,
                        "connection timed out after 10s",
                    );
                } else if i % 97 == 96 {
                    h.status = HostStatus::Failed;
                    h.steps[1].stderr_tail = format!(
                        "Error: Could not find class ::nginx::vhost for {name} on node {name}\n"
                    );
                    h = failed(
                        h,
                        ErrorKind::Puppet,
                        &format!("puppet apply exited 1: Error: Could not find class ::nginx::vhost for {name} on node {name}"),
                    );
                } else if i >= n - 30 {
                    h.status = HostStatus::Cancelled;
                    h = failed(h, ErrorKind::Interrupted, "apply cut short: interrupted by SIGINT");
                } else {
                    h = changed_motd(h, "File[/etc/motd]");
                    if let Some(p) = &mut h.puppet {
                        for (resource, property) in
                            [("Package[nginx]", "ensure"), ("Service[nginx]", "ensure")]
                        {
                            p.events.push(EventReport {
                                resource: resource.into(),
                                property: Some(property.into()),
                                previous: Some("stopped".into()),
                                desired: Some("running".into()),
                                status: "success".into(),
                                message: "changed".into(),
                            });
                        }
                    }
                }
                wave_end[slot] = started + h.duration_ms;
                h
            })
            .collect();
        let mut r = report(hosts);
        r.duration_ms = wave_end.iter().copied().max().unwrap_or(0) + 50;
        r
    }

    #[test]
    fn ten_thousand_hosts_make_a_page_of_a_few_megabytes() {
        let r = fleet(10_000);
        let started = std::time::Instant::now();
        let page = render(&r);
        let took = started.elapsed();
        // About 150 bytes a host (JSON for the grid and the timeline: name, status, five
        // bars); the folded lists cost next to nothing. 4 MB keeps it quick to open and
        // small enough to attach to a CI run, with room to spare.
        let bound = 4 * 1024 * 1024;
        eprintln!(
            "10000 hosts: {} bytes ({} per host), rendered in {took:?}",
            page.len(),
            page.len() / 10_000
        );
        assert!(page.len() < bound, "{} bytes", page.len());
        assert_eq!(external_references(&page), Vec::<String>::new());
        // Folded: one row for the changed hosts, one per failure (each names its node, so
        // they differ), and the problems fold the node names away.
        assert!(page.contains("<h1>capo rollout: "));
        let failed = r.summary.failed;
        assert!(failed > 90, "{failed}");
        assert!(page.contains(
            "Could not find class ::nginx::vhost for &lt;host&gt; on node &lt;host&gt; <span class=\"hosts\">on</span> <details class=\"set\"><summary>web[00097,00194,"
        ), "the {failed} failures fold into one problem");
        assert!(page.contains("File[/etc/motd] content changed <span class=\"hosts\">"));
        // The slow rack is named among the slowest hosts.
        assert!(page.contains("<tr><td class=\"mono\">web040"), "slow rack");
        if let Some(path) = std::env::var_os("CAPO_HTML_SAMPLE") {
            std::fs::write(&path, &page).expect("write the sample page");
        }
    }
}
