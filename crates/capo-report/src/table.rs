//! The terminal table and summary line for people.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, ContentArrangement, Table};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use capo_inventory::fold::fold_to_string;
use capo_schema::{HostReport, HostStatus, Mode, Report};

use crate::grouped::ChangesView;
use crate::sanitize;

/// What the table and the summary line say about hosts a rollout ran without their lock.
const UNLOCKED: &str = "ran unlocked (lock = false)";

/// The table's width when neither the terminal nor `COLUMNS` says.
pub const DEFAULT_WIDTH: usize = 120;

/// The table's columns.
const HEADER: [&str; 5] = ["HOST", "STATUS", "REVISION", "DURATION", "REASON"];

/// The REASON column is never cut narrower than this, even if the table then overflows.
const MIN_REASON: usize = 12;

/// A folded row's host set is never cut narrower than this.
const MIN_HOST_SET: usize = 24;

/// A config version shown in the REVISION cell is cut to at most this many columns, so that a
/// long one (another repo's full sha, a `git describe`) does not take the reasons' room.
const MAX_CONFIG: usize = 24;

/// What the REVISION cell adds around a config version: ` (config ` and `)`.
const CONFIG_FRAME: usize = " (config )".len();

/// The shortest commit id git abbreviates to: a config version this long or longer that starts
/// the applied commit is taken for that commit (`git rev-parse --short HEAD`).
const MIN_SHORT_SHA: usize = 4;

/// How the table is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// The table's width in columns; a longer reason is cut with `…`.
    pub width: usize,
    /// How much of the changes list to show.
    pub changes: ChangesView,
    /// One row per host, or past [`FOLD_HOSTS`] hosts, one per host set.
    pub rows: Rows,
}

/// Whether the table has a row per host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Rows {
    /// Past [`FOLD_HOSTS`] hosts, hosts that share status, revision change, config version
    /// and reason fold into one row per host set; a failed, unreachable or cancelled host
    /// keeps its own row.
    #[default]
    Auto,
    /// One row per host.
    Full,
}

/// Past this many hosts, [`Rows::Auto`] folds the table.
pub const FOLD_HOSTS: usize = 50;

impl Default for View {
    fn default() -> Self {
        View {
            width: DEFAULT_WIDTH,
            changes: ChangesView::Short,
            rows: Rows::Auto,
        }
    }
}

/// The width to lay the table out in: the terminal's when stdout is one, else `COLUMNS`,
/// else [`DEFAULT_WIDTH`].
pub fn terminal_width() -> usize {
    // comfy-table asks the terminal only when stdout is one.
    if let Some(w) = Table::new().width().filter(|w| *w > 0) {
        return w as usize;
    }
    columns(std::env::var("COLUMNS").ok().as_deref())
}

/// `COLUMNS` as a width, or [`DEFAULT_WIDTH`] when it is unset or not a positive number.
fn columns(value: Option<&str>) -> usize {
    value
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| *w > 0)
        .unwrap_or(DEFAULT_WIDTH)
}

/// `text` cut to at most `width` terminal columns, ending in `…` when it was cut.
pub fn cut(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// Renders the per-host table, the summary line and where the logs are. For `exec`, the
/// gathered outputs replace the table.
pub fn render(report: &Report, view: &View) -> String {
    if report.mode == Mode::Check {
        return crate::check::render(report, view);
    }
    if report.mode == Mode::Status {
        return crate::status::render(report, view);
    }
    if report.mode == Mode::Exec {
        let mut out = crate::grouped::render_outputs(report);
        out.push_str(&crate::grouped::render(report, view.changes));
        out.push_str(&summary_line(report));
        out.push('\n');
        out.push_str(&logs_lines(report, "host"));
        return out;
    }
    let fold = view.rows == Rows::Auto && report.hosts.len() > FOLD_HOSTS;
    let mut rows: Vec<Row> = Vec::new();
    for h in &report.hosts {
        let reason = match (&h.error, h.locked, &h.disabled) {
            (Some(e), _, _) => format!("{}: {}", e.kind, e.message),
            (None, _, Some(d)) => disabled_reason(d),
            (None, Some(false), None) => UNLOCKED.to_string(),
            (None, _, None) => bootstrap_reason(h),
        };
        let cells = RowCells {
            status: h.status.as_str().to_string(),
            revision: host_revision(report, h),
            // Kept whole here so that hosts whose config versions differ only past the cut
            // still get rows of their own.
            config: config_version(report, h).map(sanitize::line),
            reason: sanitize::line(&reason),
        };
        let joins = fold && !h.status.is_failure();
        match rows.iter_mut().find(|r| joins && r.cells == cells) {
            Some(row) => {
                row.hosts.push(h.name.clone());
                row.ms = row.ms.max(h.duration_ms);
            }
            None => rows.push(Row {
                hosts: vec![h.name.clone()],
                cells,
                ms: h.duration_ms,
            }),
        }
    }
    let rows: Vec<Line> = rows
        .into_iter()
        .map(|row| {
            let (name, duration) = if row.hosts.len() == 1 {
                (sanitize::line(&row.hosts[0]), seconds(row.ms))
            } else {
                (
                    host_set(&row.hosts, view.width),
                    format!("max {}", seconds(row.ms)),
                )
            };
            let c = row.cells;
            Line {
                cells: [name, c.status, c.revision, duration, c.reason],
                config: c.config,
                hosts: row.hosts,
            }
        })
        .collect();
    let mut out = host_table(rows, view.width);
    out.push('\n');
    out.push_str(&crate::grouped::render(report, view.changes));
    out.push_str(&summary_line(report));
    out.push('\n');
    if let Some(line) = revisions_line(report) {
        out.push_str(&line);
        out.push('\n');
    }
    if let Some(line) = run_record_line(report) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&logs_lines(report, "step"));
    out
}

/// `warning: no run record written on 2 hosts (first: web02: WHY)`: one line for every host
/// whose steps could not write the run record into its `state_dir`; None when all could.
pub fn run_record_line(report: &Report) -> Option<String> {
    let missing: Vec<(&str, &str)> = report
        .hosts
        .iter()
        .filter_map(|h| Some((h.name.as_str(), h.run_record_error.as_deref()?)))
        .collect();
    let (host, why) = missing.first()?;
    Some(format!(
        "warning: no run record written on {} host{} (first: {}: {})",
        missing.len(),
        if missing.len() == 1 { "" } else { "s" },
        sanitize::line(host),
        sanitize::line(why)
    ))
}

/// One row of the table before layout: its hosts (more than one when folded), what they
/// share, and the slowest one's duration.
struct Row {
    hosts: Vec<String>,
    cells: RowCells,
    ms: u64,
}

/// What hosts must share to fold into one row.
#[derive(PartialEq, Eq)]
struct RowCells {
    status: String,
    revision: String,
    /// A config version that is not the applied commit ([`config_version`]).
    config: Option<String>,
    reason: String,
}

/// A row ready for layout: HOST, STATUS, REVISION, DURATION and REASON, and the config
/// version that joins the REVISION cell once the table knows how much room it has.
struct Line {
    cells: [String; 5],
    config: Option<String>,
    /// The row's hosts, to cut a folded row's host set again when the table needs room.
    hosts: Vec<String>,
}

/// A folded row's host set, in range notation; when that takes more than a third of `width`
/// (names that do not fold into ranges), cut with `…` and followed by the host count.
fn host_set(hosts: &[String], width: usize) -> String {
    host_set_in(hosts, (width / 3).max(MIN_HOST_SET))
}

/// A folded row's host set in at most `room` columns (unless the count alone takes more).
fn host_set_in(hosts: &[String], room: usize) -> String {
    let folded = sanitize::line(&fold_to_string(hosts));
    if folded.width() <= room {
        return folded;
    }
    let count = format!(" ({} hosts)", hosts.len());
    format!("{}{count}", cut(&folded, room.saturating_sub(count.len())))
}

/// The table of `rows` in at most `width` columns. What gives way when it does not fit, in
/// this order: the reasons, cut down to [`MIN_REASON`] (the full text is in `problems:`, the
/// report and the logs); folded host sets, cut down to [`MIN_HOST_SET`] (they keep their host
/// count); config versions, cut from [`MAX_CONFIG`] down to a bare `…` that still says there
/// is one (they are nowhere else on the terminal, so they go last).
fn host_table(mut rows: Vec<Line>, width: usize) -> String {
    // Each column has a border and one space either side; the last border closes the row.
    let frame = 1 + 3 * HEADER.len();
    let column = |rows: &[Line], i: usize| {
        rows.iter()
            .map(|r| r.cells[i].width())
            .chain([HEADER[i].width()])
            .max()
            .unwrap_or(0)
    };
    let revision_wanted = rows
        .iter()
        .map(|r| {
            let config = r
                .config
                .as_ref()
                .map_or(0, |c| CONFIG_FRAME + c.width().min(MAX_CONFIG));
            r.cells[2].width() + config
        })
        .chain([HEADER[2].width()])
        .max()
        .unwrap_or(0);
    let wanted = frame
        + [0, 1, 3].iter().map(|i| column(&rows, *i)).sum::<usize>()
        + revision_wanted
        + MIN_REASON;
    if wanted > width {
        let room = column(&rows, 0)
            .saturating_sub(wanted - width)
            .max(MIN_HOST_SET);
        for row in rows.iter_mut().filter(|r| r.hosts.len() > 1) {
            if row.cells[0].width() > room {
                row.cells[0] = host_set_in(&row.hosts, room);
            }
        }
    }
    let fixed: usize = [0, 1, 3].iter().map(|i| column(&rows, *i)).sum();
    let revision_room = width.saturating_sub(frame + fixed + MIN_REASON);
    for row in &mut rows {
        if let Some(config) = row.config.take() {
            let room = revision_room
                .saturating_sub(row.cells[2].width() + CONFIG_FRAME)
                .clamp(1, MAX_CONFIG);
            row.cells[2] = with_config(&row.cells[2], &cut(&config, room));
        }
    }
    let reason = width
        .saturating_sub(frame + fixed + column(&rows, 2))
        .max(MIN_REASON);
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(HEADER);
    for row in &mut rows {
        row.cells[4] = cut(&row.cells[4], reason);
        table.add_row(row.cells.iter().map(Cell::new));
    }
    table.to_string()
}

/// `disabled by capo: kernel upgrade (alice@ctl, since 2026-12-03T12:00:00Z)`.
pub fn disabled_reason(d: &capo_schema::DisabledReport) -> String {
    let mut who: Vec<String> = Vec::new();
    if let Some(by) = d.by.as_deref().filter(|b| !b.is_empty()) {
        who.push(by.to_string());
    }
    if let Some(since) = d.since.as_deref().filter(|s| !s.is_empty()) {
        who.push(format!("since {since}"));
    }
    let message = if d.message.is_empty() {
        "(no message)"
    } else {
        d.message.as_str()
    };
    if who.is_empty() {
        format!("disabled by {}: {message}", d.source)
    } else {
        format!("disabled by {}: {message} ({})", d.source, who.join(", "))
    }
}

/// Where the logs are, and a warning when some could not be written in full (a full disk,
/// too few file descriptors): the tails in the report are then all there is.
fn logs_lines(report: &Report, of: &str) -> String {
    let mut out = if report.parts.is_empty() {
        format!(
            "full output of every {of}: {}/<host>/\n",
            sanitize::line(&report.run_dir)
        )
    } else {
        // A merged report: each part's hosts are under that part's run directory, on
        // whichever machine ran it.
        let mut lines = format!(
            "merged from {} parts; full output of every {of}:\n",
            report.parts.len()
        );
        for part in &report.parts {
            let shard = part
                .shard
                .map(|s| format!("shard {}/{}, ", s.index, s.count))
                .unwrap_or_default();
            lines.push_str(&format!(
                "  {}{} host{}: {}/<host>/\n",
                shard,
                part.hosts,
                if part.hosts == 1 { "" } else { "s" },
                sanitize::line(&part.run_dir)
            ));
        }
        lines
    };
    let broken: Vec<(&str, &str)> = report
        .hosts
        .iter()
        .filter_map(|h| {
            h.steps
                .iter()
                .find_map(|s| s.log_error.as_deref())
                .map(|e| (h.name.as_str(), e))
        })
        .collect();
    if let Some((host, error)) = broken.first() {
        out.push_str(&format!(
            "warning: logs incomplete for {} host{} (first: {}: {})\n",
            broken.len(),
            if broken.len() == 1 { "" } else { "s" },
            sanitize::line(host),
            sanitize::line(error)
        ));
    }
    out
}

/// `5 hosts: 3 changed, 1 unchanged, 1 failed, 0 unreachable in 4.2s`, with skipped and
/// cancelled counts only when there are any, and the signal if the run was interrupted.
pub fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    let mut hosts = format!("{} host{}", s.total, if s.total == 1 { "" } else { "s" });
    // A shard's job log should say it saw only part of the fleet, and a merge how many
    // parts it joined.
    if let Some(shard) = report.shard {
        hosts.push_str(&format!(
            " (shard {}/{} of {} selected)",
            shard.index, shard.count, shard.selected
        ));
    } else if !report.parts.is_empty() {
        hosts.push_str(&format!(" (merged from {} parts)", report.parts.len()));
    }
    let mut line = if report.mode == Mode::Bootstrap {
        format!(
            "{hosts}: {} bootstrapped, {} already, {} failed, {} unreachable",
            s.bootstrapped, s.already, s.failed, s.unreachable
        )
    } else if matches!(
        report.mode,
        Mode::Exec | Mode::Check | Mode::Disable | Mode::Enable | Mode::Pull
    ) {
        format!(
            "{hosts}: {} ok, {} failed, {} unreachable",
            s.ok, s.failed, s.unreachable
        )
    } else {
        format!(
            "{hosts}: {} changed, {} unchanged, {} failed, {} unreachable",
            s.changed, s.unchanged, s.failed, s.unreachable
        )
    };
    let extra = [
        (s.would_change, "would change"),
        (s.ahead, "ahead"),
        (s.disabled, "disabled"),
        (s.skipped, "skipped"),
        (s.cancelled, "cancelled"),
    ];
    for (count, what) in extra {
        if count > 0 {
            line.push_str(&format!(", {count} {what}"));
        }
    }
    line.push_str(&format!(" in {}", seconds(report.duration_ms)));
    let unlocked = report
        .hosts
        .iter()
        .filter(|h| h.locked == Some(false))
        .count();
    if unlocked > 0 {
        line.push_str(&format!("; {unlocked} {UNLOCKED}"));
    }
    if let Some(signal) = &report.interrupted {
        line.push_str(&format!(" (interrupted by {signal})"));
    }
    if let Some(why) = &report.halted {
        line.push_str(&format!("; {}", sanitize::line(why)));
    }
    line
}

/// What a bootstrapped host's row says: `bootstrapped at 3f2a1c9`, `already bootstrapped at
/// 3f2a1c9`; nothing for other statuses.
fn bootstrap_reason(h: &HostReport) -> String {
    let at = h
        .rev_after
        .as_deref()
        .map(|r| format!(" at {}", r.chars().take(7).collect::<String>()))
        .unwrap_or_default();
    match (h.status, &h.pull) {
        (HostStatus::Bootstrapped, _) => format!("bootstrapped{at}"),
        (HostStatus::Already, _) => format!("already bootstrapped{at}"),
        (_, Some(p)) => pull_reason(p),
        _ => match h.unpinned.as_deref() {
            Some("") => "not pinned".to_string(),
            Some(rev) => format!("unpinned (was pinned at {rev})"),
            None => String::new(),
        },
    }
}

/// What `capo pull install` or `remove` did on a host: `installed: cron every 30m (9 files
/// written)`, `installed: systemd every 30m (unchanged; timer not started)`, `removed (9
/// files)`, `not installed`.
fn pull_reason(p: &capo_schema::PullReport) -> String {
    let files = |n: u64| {
        if n == 1 {
            "1 file".to_string()
        } else {
            format!("{n} files")
        }
    };
    if !p.installed {
        return match p.changed {
            Some(0) | None => "not installed".to_string(),
            Some(n) => format!("removed ({})", files(n)),
        };
    }
    let every = p
        .interval_s
        .map(|s| {
            format!(
                " every {}",
                capo_inventory::duration::format(std::time::Duration::from_secs(s))
            )
        })
        .unwrap_or_default();
    let changed = match p.changed {
        Some(0) => "unchanged".to_string(),
        Some(n) => format!("{} written", files(n)),
        None => String::new(),
    };
    let inactive = match (p.active, p.scheduler.as_deref()) {
        (Some(false), Some("systemd")) => "; timer not started (systemd does not run here)",
        (Some(false), _) => "; no cron daemon runs here",
        _ => "",
    };
    format!(
        "installed: {}{every} ({changed}{inactive})",
        p.scheduler.as_deref().unwrap_or("?")
    )
}

/// `revisions: 48 at 3f2a1c9, 2 ahead at 77b0e41`, with `(converged)` when every host whose
/// revision is known is at one commit; None when no revision is known.
pub fn revisions_line(report: &Report) -> Option<String> {
    let revs = &report.summary.revisions;
    if revs.is_empty() {
        return None;
    }
    let parts: Vec<String> = revs
        .iter()
        .map(|r| {
            format!(
                "{}{} at {}",
                r.hosts,
                if r.ahead { " ahead" } else { "" },
                sanitize::line(&r.rev.chars().take(7).collect::<String>())
            )
        })
        .collect();
    let known: usize = revs.iter().map(|r| r.hosts).sum();
    let unknown = report.summary.total.saturating_sub(known);
    let mut parts = parts;
    if unknown > 0 {
        parts.push(format!("{unknown} unknown"));
    }
    let converged = if revs.len() == 1 && !revs[0].ahead && unknown == 0 {
        " (converged)"
    } else {
        ""
    };
    Some(format!("revisions: {}{converged}", parts.join(", ")))
}

/// A host's revision cell: where its checkout went, or for a plan, which moves nothing, where
/// it would go.
pub fn host_revision(report: &Report, host: &HostReport) -> String {
    revision(host.rev_before.as_deref(), applied(report, host))
}

/// The commit a host applied (plan: would apply), which capo gives Puppet as its config
/// version unless the repo's `environment.conf` sets its own.
fn applied<'a>(report: &Report, host: &'a HostReport) -> Option<&'a str> {
    if report.mode == Mode::Plan {
        host.target.as_deref().or(host.rev_after.as_deref())
    } else {
        host.rev_after.as_deref()
    }
}

/// Puppet's config version for `host` when it says something the revision does not: when the
/// repo's `environment.conf` sets its own `config_version` (`2024.12`, a build number). None
/// when Puppet did not run or recorded the applied commit, in full or as a short id of at
/// least [`MIN_SHORT_SHA`] hex digits.
pub fn config_version<'a>(report: &Report, host: &'a HostReport) -> Option<&'a str> {
    let config = host.puppet.as_ref()?.config_version.as_deref()?.trim();
    if config.is_empty() {
        return None;
    }
    match applied(report, host) {
        Some(commit) if names_commit(config, commit) => None,
        _ => Some(config),
    }
}

/// Whether `config` is `commit`, or a short id of it.
fn names_commit(config: &str, commit: &str) -> bool {
    let short = config.len() >= MIN_SHORT_SHA && config.bytes().all(|b| b.is_ascii_hexdigit());
    config.eq_ignore_ascii_case(commit)
        || (short
            && commit
                .get(..config.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(config)))
}

/// A host's revision cell with its config version when that differs from the commit
/// ([`config_version`]): `3f2a1c9 -> 77b0e41 (config 2024.12)`. Not cut: for the Markdown
/// summary, which caps cells itself.
pub fn host_revision_and_config(report: &Report, host: &HostReport) -> String {
    let revision = host_revision(report, host);
    match config_version(report, host) {
        Some(config) => with_config(&revision, &sanitize::line(config)),
        None => revision,
    }
}

/// `revision (config CONFIG)`.
fn with_config(revision: &str, config: &str) -> String {
    format!("{revision} (config {config})")
}

/// `3f2a1c9 -> 77b0e41`, or one short id when the revision did not move.
pub fn revision(before: Option<&str>, after: Option<&str>) -> String {
    let short = |r: &str| sanitize::line(&r.chars().take(7).collect::<String>());
    match (before, after) {
        (Some(b), Some(a)) if b == a => short(a),
        (Some(b), Some(a)) => format!("{} -> {}", short(b), short(a)),
        (None, Some(a)) => format!("-> {}", short(a)),
        (Some(b), None) => short(b),
        (None, None) => "-".to_string(),
    }
}

/// Milliseconds as seconds with one decimal.
pub fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_and_a_merge_say_so_in_the_summary_line() {
        let mut report = rollout(&[("web01", "changed", None), ("web02", "changed", None)]);
        report.summary = capo_schema::Summary::of(&report.hosts);
        report.shard = Some(capo_schema::ShardReport {
            index: 2,
            count: 3,
            selected: 7,
        });
        assert!(
            summary_line(&report).starts_with("2 hosts (shard 2/3 of 7 selected): 2 changed, "),
            "{}",
            summary_line(&report)
        );
        report.shard = None;
        report.parts = vec![
            capo_schema::PartReport {
                run_id: "r1".into(),
                shard: None,
                started_at: String::new(),
                finished_at: String::new(),
                run_dir: "runs/r1".into(),
                hosts: 2,
            };
            3
        ];
        assert!(
            summary_line(&report).starts_with("2 hosts (merged from 3 parts): 2 changed, "),
            "{}",
            summary_line(&report)
        );
    }

    #[test]
    fn revisions_are_short() {
        assert_eq!(
            revision(Some("3f2a1c9aaaa"), Some("77b0e41bbbb")),
            "3f2a1c9 -> 77b0e41"
        );
        assert_eq!(
            revision(Some("3f2a1c9aaaa"), Some("3f2a1c9aaaa")),
            "3f2a1c9"
        );
        assert_eq!(revision(None, None), "-");
    }

    #[test]
    fn hosts_without_a_run_record_are_warned_about_in_one_line() {
        let host = |name: &str, why: Option<&str>| {
            serde_json::json!({"name": name, "address": "10.0.0.1", "port": 22,
                "status": "changed", "error": null, "rev_before": "a", "rev_after": "b",
                "duration_ms": 1, "log_dir": "", "steps": [], "run_record_error": why})
        };
        let report = |hosts: Vec<serde_json::Value>| -> Report {
            let v = serde_json::json!({"schema": crate::SCHEMA, "run_id": "r1",
                "mode": "rollout", "started_at": "", "finished_at": "", "duration_ms": 1,
                "inventory": "inv.toml", "run_dir": "runs/r1",
                "summary": capo_schema::Summary::default(), "hosts": hosts});
            serde_json::from_value(v).expect("a report")
        };
        assert_eq!(run_record_line(&report(vec![host("web01", None)])), None);
        let why = "cannot write /var/lib/capo as deploy: mkdir: cannot create directory '/var/lib/capo': Permission denied";
        let two = report(vec![
            host("web01", None),
            host("web02", Some(why)),
            host("web03", Some("x")),
        ]);
        assert_eq!(
            run_record_line(&two).as_deref(),
            Some(
                format!("warning: no run record written on 2 hosts (first: web02: {why})").as_str()
            )
        );
        assert!(render(&two, &View::default()).contains(&format!(
            "\nwarning: no run record written on 2 hosts (first: web02: {why})\nfull output"
        )));
    }

    #[test]
    fn logs_that_could_not_be_written_are_warned_about() {
        let step = |error: Option<&str>| {
            serde_json::json!({"name": "apply", "command": "puppet apply", "exit_code": 0,
                "duration_ms": 1, "stdout_tail": "", "stderr_tail": "", "log_error": error})
        };
        let host = |name: &str, error: Option<&str>| {
            serde_json::json!({"name": name, "address": "10.0.0.1", "port": 22,
                "status": "unchanged", "error": null, "rev_before": null, "rev_after": null,
                "duration_ms": 1, "log_dir": format!("runs/r1/{name}"), "steps": [step(error)]})
        };
        let report = |hosts: Vec<serde_json::Value>| -> Report {
            let v = serde_json::json!({"schema": crate::SCHEMA, "run_id": "r1",
                "mode": "rollout", "started_at": "", "finished_at": "", "duration_ms": 1,
                "inventory": "inv.toml", "run_dir": "runs/r1",
                "summary": capo_schema::Summary::default(), "hosts": hosts});
            serde_json::from_value(v).expect("a report")
        };
        let fine = report(vec![host("web01", None)]);
        assert_eq!(
            logs_lines(&fine, "step"),
            "full output of every step: runs/r1/<host>/\n"
        );
        let full = "runs/r1/web02/apply.stdout: No space left on device (os error 28)";
        let broken = report(vec![
            host("web01", None),
            host("web02", Some(full)),
            host("web03", Some("x")),
        ]);
        assert_eq!(
            logs_lines(&broken, "step"),
            format!(
                "full output of every step: runs/r1/<host>/\n\
                 warning: logs incomplete for 2 hosts (first: web02: {full})\n"
            )
        );
    }

    /// A rollout report of `hosts`, each `(name, status, error message)`.
    fn rollout(hosts: &[(&str, &str, Option<&str>)]) -> Report {
        let hosts: Vec<serde_json::Value> = hosts
            .iter()
            .map(|(name, status, error)| {
                serde_json::json!({"name": name, "address": "10.0.0.1", "port": 22,
                    "status": status,
                    "error": error.map(|m| serde_json::json!({"kind": "puppet", "message": m})),
                    "rev_before": "3f2a1c9aaaa", "rev_after": "77b0e41bbbb",
                    "duration_ms": 1234, "log_dir": format!("runs/r1/{name}"), "steps": []})
            })
            .collect();
        let v = serde_json::json!({"schema": crate::SCHEMA, "run_id": "r1",
            "mode": "rollout", "started_at": "", "finished_at": "", "duration_ms": 1,
            "inventory": "inv.toml", "run_dir": "runs/r1",
            "summary": capo_schema::Summary::default(), "hosts": hosts});
        serde_json::from_value(v).expect("a report")
    }

    #[test]
    fn columns_come_from_the_environment_else_120() {
        assert_eq!(columns(Some("100")), 100);
        assert_eq!(columns(Some(" 80 ")), 80);
        assert_eq!(columns(Some("0")), 120);
        assert_eq!(columns(Some("wide")), 120);
        assert_eq!(columns(None), 120);
    }

    #[test]
    fn cutting_keeps_the_width_and_marks_the_cut() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("exactly10!", 10), "exactly10!");
        assert_eq!(cut("a bit too long", 10), "a bit too…");
        // Wide characters count two columns.
        assert_eq!(cut("日本語のテキスト", 7), "日本語…");
    }

    #[test]
    fn a_long_reason_is_cut_to_the_width() {
        let long = format!("Evaluation Error: {}", "x".repeat(700));
        let report = rollout(&[
            ("web01", "changed", None),
            ("web02", "failed", Some(long.as_str())),
        ]);
        let view = View {
            width: 70,
            ..View::default()
        };
        let out = render(&report, &view);
        let table: Vec<&str> = out.lines().take_while(|l| !l.is_empty()).collect();
        assert_eq!(
            table,
            [
                "┌───────┬─────────┬────────────────────┬──────────┬──────────────────┐",
                "│ HOST  ┆ STATUS  ┆ REVISION           ┆ DURATION ┆ REASON           │",
                "╞═══════╪═════════╪════════════════════╪══════════╪══════════════════╡",
                "│ web01 ┆ changed ┆ 3f2a1c9 -> 77b0e41 ┆ 1.2s     ┆                  │",
                "│ web02 ┆ failed  ┆ 3f2a1c9 -> 77b0e41 ┆ 1.2s     ┆ puppet: Evaluat… │",
                "└───────┴─────────┴────────────────────┴──────────┴──────────────────┘",
            ]
        );
        for line in &table {
            assert_eq!(line.width(), 70, "{line}");
        }
        // Too narrow to fit: the reason keeps a readable minimum.
        let narrow = render(
            &report,
            &View {
                width: 40,
                ..View::default()
            },
        );
        assert!(narrow.contains("┆ puppet: Eva… │"), "{narrow}");
        // The full message is still in problems:.
        assert!(out.contains(&long), "{out}");
    }

    #[test]
    fn many_hosts_fold_into_host_sets_but_problems_keep_their_rows() {
        let mut hosts: Vec<(String, &str, Option<&str>)> = Vec::new();
        for i in 1..=60 {
            let (status, error) = match i {
                7 | 9 => ("failed", Some("exit 1")),
                56.. => ("unchanged", None),
                _ => ("changed", None),
            };
            hosts.push((format!("web{i:03}"), status, error));
        }
        let hosts: Vec<(&str, &str, Option<&str>)> =
            hosts.iter().map(|(n, s, e)| (n.as_str(), *s, *e)).collect();
        let report = rollout(&hosts);
        let table = |rows| {
            let out = render(
                &report,
                &View {
                    rows,
                    ..View::default()
                },
            );
            out.lines()
                .take_while(|l| !l.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            table(Rows::Auto),
            [
                "┌──────────────────────────┬───────────┬────────────────────┬──────────┬────────────────┐",
                "│ HOST                     ┆ STATUS    ┆ REVISION           ┆ DURATION ┆ REASON         │",
                "╞══════════════════════════╪═══════════╪════════════════════╪══════════╪════════════════╡",
                "│ web[001-006,008,010-055] ┆ changed   ┆ 3f2a1c9 -> 77b0e41 ┆ max 1.2s ┆                │",
                "│ web007                   ┆ failed    ┆ 3f2a1c9 -> 77b0e41 ┆ 1.2s     ┆ puppet: exit 1 │",
                "│ web009                   ┆ failed    ┆ 3f2a1c9 -> 77b0e41 ┆ 1.2s     ┆ puppet: exit 1 │",
                "│ web[056-060]             ┆ unchanged ┆ 3f2a1c9 -> 77b0e41 ┆ max 1.2s ┆                │",
                "└──────────────────────────┴───────────┴────────────────────┴──────────┴────────────────┘",
            ]
        );
        // One row per host when asked, or with few hosts.
        assert_eq!(table(Rows::Full).len(), 3 + 60 + 1);
        let few = rollout(&hosts[..50]);
        assert_eq!(
            render(&few, &View::default())
                .lines()
                .take_while(|l| !l.is_empty())
                .count(),
            3 + 50 + 1
        );
    }

    #[test]
    fn a_host_set_that_does_not_fold_is_cut_with_its_count() {
        let names: Vec<String> = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(host_set(&names[..2], 60), "alpha,bravo");
        assert_eq!(host_set(&names, 60), "alpha,bravo,c… (6 hosts)");
        assert_eq!(
            host_set(&names, 120),
            "alpha,bravo,charlie,delta,echo,foxtrot"
        );
    }

    /// Gives `host` a Puppet run whose config version is `config`.
    fn set_config(host: &mut HostReport, config: &str) {
        host.puppet = Some(capo_schema::PuppetReport {
            exit_code: Some(2),
            resources: None,
            event_counts: None,
            config_version: Some(config.into()),
            events: vec![],
            diffs: vec![],
            unreadable: None,
        });
    }

    /// The table's lines of `render`'s output.
    fn table_lines(out: &str) -> Vec<&str> {
        out.lines().take_while(|l| !l.is_empty()).collect()
    }

    #[test]
    fn a_config_version_shows_only_when_it_is_not_the_applied_commit() {
        let mut report = rollout(&[("web01", "changed", None)]);
        let config = |report: &mut Report, v: &str| {
            set_config(&mut report.hosts[0], v);
            config_version(report, &report.hosts[0]).map(str::to_string)
        };
        assert_eq!(config(&mut report, "77b0e41bbbb"), None);
        assert_eq!(config(&mut report, "77B0E41BBBB"), None);
        // A short id of the commit, as `git rev-parse --short` prints it.
        assert_eq!(config(&mut report, "77b0e41"), None);
        assert_eq!(config(&mut report, " 77b0 "), None);
        // Too short to be taken for a commit, or not hex.
        assert_eq!(config(&mut report, "77b"), Some("77b".into()));
        assert_eq!(config(&mut report, "2024.12"), Some("2024.12".into()));
        // The commit it moved from is not the one applied.
        assert_eq!(config(&mut report, "3f2a1c9"), Some("3f2a1c9".into()));
        assert_eq!(
            config(&mut report, "77b0e41bbbbcc"),
            Some("77b0e41bbbbcc".into())
        );
        assert_eq!(config(&mut report, ""), None);
        report.hosts[0].puppet = None;
        assert_eq!(config_version(&report, &report.hosts[0]), None);
        // A plan compares with the commit it would apply.
        report.mode = Mode::Plan;
        report.hosts[0].rev_after = Some("3f2a1c9aaaa".into());
        report.hosts[0].target = Some("77b0e41bbbb".into());
        assert_eq!(config(&mut report, "77b0e41bbbb"), None);
        assert_eq!(
            config(&mut report, "3f2a1c9aaaa"),
            Some("3f2a1c9aaaa".into())
        );
    }

    #[test]
    fn a_differing_config_version_joins_the_revision_cell() {
        let mut report = rollout(&[
            ("web01", "changed", None),
            ("web02", "changed", None),
            ("web03", "failed", Some("exit 1")),
        ]);
        set_config(&mut report.hosts[0], "2024.12");
        set_config(&mut report.hosts[1], "77b0e41");
        set_config(&mut report.hosts[2], "2024.12");
        assert_eq!(
            host_revision_and_config(&report, &report.hosts[0]),
            "3f2a1c9 -> 77b0e41 (config 2024.12)"
        );
        assert_eq!(
            host_revision_and_config(&report, &report.hosts[1]),
            "3f2a1c9 -> 77b0e41"
        );
        let out = render(&report, &View::default());
        assert_eq!(
            table_lines(&out)[3..6],
            [
                "│ web01 ┆ changed ┆ 3f2a1c9 -> 77b0e41 (config 2024.12) ┆ 1.2s     ┆                │",
                "│ web02 ┆ changed ┆ 3f2a1c9 -> 77b0e41                  ┆ 1.2s     ┆                │",
                "│ web03 ┆ failed  ┆ 3f2a1c9 -> 77b0e41 (config 2024.12) ┆ 1.2s     ┆ puppet: exit 1 │",
            ]
        );
    }

    #[test]
    fn a_long_config_version_is_cut_to_the_width() {
        let mut report = rollout(&[
            ("web01", "changed", None),
            ("web02", "failed", Some("exit 1 and a long story after it")),
        ]);
        set_config(&mut report.hosts[0], &"v".repeat(100));
        set_config(&mut report.hosts[1], "2024.12");
        let lines = |width| {
            let out = render(
                &report,
                &View {
                    width,
                    ..View::default()
                },
            );
            table_lines(&out)
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
        };
        // Wide: cut to MAX_CONFIG, the reason gets the rest.
        let wide = lines(120);
        assert!(
            wide[3].contains(&format!("(config {}…)", "v".repeat(MAX_CONFIG - 1))),
            "{wide:#?}"
        );
        assert!(wide[4].contains("(config 2024.12)"), "{wide:#?}");
        assert!(
            wide[4].contains("puppet: exit 1 and a long story…"),
            "{wide:#?}"
        );
        for line in &wide {
            assert_eq!(line.width(), 120, "{line}");
        }
        // Narrow: the config versions give way to the reason's minimum, down to `…`.
        let narrow = lines(80);
        assert_eq!(
            narrow[3..5],
            [
                "│ web01 ┆ changed ┆ 3f2a1c9 -> 77b0e41 (config vvv…) ┆ 1.2s     ┆              │",
                "│ web02 ┆ failed  ┆ 3f2a1c9 -> 77b0e41 (config 202…) ┆ 1.2s     ┆ puppet: exi… │",
            ]
        );
        for line in &narrow {
            assert_eq!(line.width(), 80, "{line}");
        }
        let tiny = lines(20);
        assert!(tiny[3].contains("(config …)"), "{tiny:#?}");
    }

    #[test]
    fn hosts_with_different_config_versions_fold_apart() {
        let names: Vec<String> = (1..=60).map(|i| format!("web{i:03}")).collect();
        let hosts: Vec<(&str, &str, Option<&str>)> = names
            .iter()
            .map(|n| (n.as_str(), "changed", None))
            .collect();
        let mut report = rollout(&hosts);
        for (i, host) in report.hosts.iter_mut().enumerate() {
            match i {
                // The applied commit, in full and short: folds with hosts that have none.
                0..10 => set_config(host, "77b0e41bbbb"),
                10..20 => set_config(host, "77b0e41"),
                30..40 => set_config(host, "2024.12"),
                // Differs only past the cut of a narrow table.
                40..50 => set_config(host, &format!("{}1", "x".repeat(40))),
                50.. => set_config(host, &format!("{}2", "x".repeat(40))),
                _ => {}
            }
        }
        let out = render(&report, &View::default());
        assert_eq!(
            table_lines(&out)[3..7],
            [
                "│ web[001-030] ┆ changed ┆ 3f2a1c9 -> 77b0e41                                   ┆ max 1.2s ┆        │",
                "│ web[031-040] ┆ changed ┆ 3f2a1c9 -> 77b0e41 (config 2024.12)                  ┆ max 1.2s ┆        │",
                "│ web[041-050] ┆ changed ┆ 3f2a1c9 -> 77b0e41 (config xxxxxxxxxxxxxxxxxxxxxxx…) ┆ max 1.2s ┆        │",
                "│ web[051-060] ┆ changed ┆ 3f2a1c9 -> 77b0e41 (config xxxxxxxxxxxxxxxxxxxxxxx…) ┆ max 1.2s ┆        │",
            ]
        );
    }

    #[test]
    fn folded_host_sets_make_room_for_config_versions() {
        let names: Vec<String> = (1..=60).map(|i| format!("sim{i:05}")).collect();
        let hosts: Vec<(&str, &str, Option<&str>)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| match i + 1 {
                20 | 40 | 60 => (n.as_str(), "failed", Some("puppet apply failed (exit 6)")),
                _ => (n.as_str(), "changed", None),
            })
            .collect();
        let mut report = rollout(&hosts);
        for host in &mut report.hosts {
            set_config(host, "2024.12");
        }
        let view = |width| View {
            width,
            ..View::default()
        };
        let out = render(&report, &view(100));
        let table = table_lines(&out);
        assert_eq!(
            table[3],
            "│ sim[00001-00… (57 hosts) ┆ changed ┆ 3f2a1c9 -> 77b0e41 (config 2024…) ┆ max 1.2s ┆              │",
            "{out}"
        );
        for line in &table {
            assert!(line.width() <= 100, "{line}");
        }
        // With room, the host set keeps its third of the width and the config version is whole.
        let out = render(&report, &view(120));
        assert!(
            table_lines(&out)[3].starts_with(
                "│ sim[00001-00019,00021-00039,00041-00059] ┆ changed ┆ 3f2a1c9 -> 77b0e41 (config 2024.12) ┆"
            ),
            "{out}"
        );
    }

    #[test]
    fn seconds_have_one_decimal() {
        assert_eq!(seconds(12345), "12.3s");
        assert_eq!(seconds(0), "0.0s");
    }
}
