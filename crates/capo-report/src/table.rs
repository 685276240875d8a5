//! The terminal table and summary line for people.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, ContentArrangement, Table};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use capo_inventory::fold::fold_to_string;
use capo_schema::{HostReport, Mode, Report};

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
    /// Past [`FOLD_HOSTS`] hosts, hosts that share status, revision change and reason fold
    /// into one row per host set; a failed, unreachable or cancelled host keeps its own row.
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
    if report.mode == Mode::Exec {
        let mut out = crate::grouped::render_outputs(report);
        out.push_str(&crate::grouped::render(report, view.changes));
        out.push_str(&summary_line(report));
        out.push('\n');
        out.push_str(&logs_lines(report, "host"));
        return out;
    }
    let fold = view.rows == Rows::Auto && report.hosts.len() > FOLD_HOSTS;
    // Each row's hosts, its status, revision and reason cells, and its duration: a folded
    // row's duration is its slowest host's.
    let mut rows: Vec<(Vec<String>, [String; 3], u64)> = Vec::new();
    for h in &report.hosts {
        let reason = match (&h.error, h.locked) {
            (Some(e), _) => format!("{}: {}", e.kind, e.message),
            (None, Some(false)) => UNLOCKED.to_string(),
            (None, _) => String::new(),
        };
        let cells = [
            h.status.as_str().to_string(),
            host_revision(report, h),
            sanitize::line(&reason),
        ];
        let joins = fold && !h.status.is_failure();
        match rows.iter_mut().find(|(_, c, _)| joins && *c == cells) {
            Some((hosts, _, ms)) => {
                hosts.push(h.name.clone());
                *ms = (*ms).max(h.duration_ms);
            }
            None => rows.push((vec![h.name.clone()], cells, h.duration_ms)),
        }
    }
    let rows: Vec<[String; 5]> = rows
        .into_iter()
        .map(|(hosts, [status, revision, reason], ms)| {
            let (name, duration) = if hosts.len() == 1 {
                (sanitize::line(&hosts[0]), seconds(ms))
            } else {
                (host_set(&hosts, view.width), format!("max {}", seconds(ms)))
            };
            [name, status, revision, duration, reason]
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
    out.push_str(&logs_lines(report, "step"));
    out
}

/// A folded row's host set, in range notation; when that takes more than a third of `width`
/// (names that do not fold into ranges), cut with `…` and followed by the host count.
fn host_set(hosts: &[String], width: usize) -> String {
    let folded = sanitize::line(&fold_to_string(hosts));
    let room = (width / 3).max(MIN_HOST_SET);
    if folded.width() <= room {
        return folded;
    }
    let count = format!(" ({} hosts)", hosts.len());
    format!("{}{count}", cut(&folded, room.saturating_sub(count.len())))
}

/// The table of `rows` in at most `width` columns: the reasons are cut to what the other
/// columns leave (the full text is in `problems:`, the report and the logs).
fn host_table(mut rows: Vec<[String; 5]>, width: usize) -> String {
    // Each column has a border and one space either side; the last border closes the row.
    let frame = 1 + 3 * HEADER.len();
    let others: usize = (0..HEADER.len() - 1)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].width())
                .chain([HEADER[i].width()])
                .max()
                .unwrap_or(0)
        })
        .sum();
    let reason = width.saturating_sub(frame + others).max(MIN_REASON);
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(HEADER);
    for row in &mut rows {
        row[4] = cut(&row[4], reason);
        table.add_row(row.iter().map(Cell::new));
    }
    table.to_string()
}

/// Where the logs are, and a warning when some could not be written in full (a full disk,
/// too few file descriptors): the tails in the report are then all there is.
fn logs_lines(report: &Report, of: &str) -> String {
    let mut out = format!(
        "full output of every {of}: {}/<host>/\n",
        sanitize::line(&report.run_dir)
    );
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
    let hosts = format!("{} host{}", s.total, if s.total == 1 { "" } else { "s" });
    let mut line = if report.mode == Mode::Exec {
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
    if report.mode == Mode::Plan {
        revision(
            host.rev_before.as_deref(),
            host.target.as_deref().or(host.rev_after.as_deref()),
        )
    } else {
        revision(host.rev_before.as_deref(), host.rev_after.as_deref())
    }
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

    #[test]
    fn seconds_have_one_decimal() {
        assert_eq!(seconds(12345), "12.3s");
        assert_eq!(seconds(0), "0.0s");
    }
}
