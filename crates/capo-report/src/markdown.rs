//! A Markdown summary of the report, fit for a pull-request comment or a GitHub Actions job
//! summary (`$GITHUB_STEP_SUMMARY`): a verdict heading, the counts, where the fleet's
//! revisions are, a table of the hosts that did something or went wrong, and the folded
//! changes and problems.
//!
//! Text from hosts (names, revisions, error messages, resource titles) is put in code spans:
//! inside one, Markdown renders no HTML, links, images, emphasis or @mentions, so a hostile
//! host cannot restyle the comment or ping people. Other text built from the report is escaped:
//! `&`, `<`, `>` as entities and Markdown punctuation with backslashes. Control characters are
//! made inert first, as on the terminal ([`sanitize::line`]).

use std::io::Write;
use std::path::Path;

use capo_schema::{HostReport, HostStatus, Mode, Report};

use crate::grouped::{self, Group};
use crate::json::WriteError;
use crate::sanitize;
use crate::table;

/// Rows shown in the host table (and bullets in each folded list) before `... and N more`:
/// a pull-request comment is capped at 65536 characters.
pub const MAX_ROWS: usize = 50;

/// Characters of host text shown in one cell or bullet before it is cut, for the same reason.
pub const MAX_CELL_CHARS: usize = 200;

/// Renders the summary, ending with a newline.
pub fn to_markdown(report: &Report) -> String {
    let mut out = format!(
        "### capo {}: {}\n\n{}\n",
        text(report.mode.as_str()),
        verdict(report),
        text(&table::summary_line(report))
    );
    if let Some(line) = table::revisions_line(report) {
        out.push_str(&format!("\n{}\n", text(&line)));
    }

    let mut rows: Vec<&HostReport> = report
        .hosts
        .iter()
        .filter(|h| h.status != HostStatus::Unchanged)
        .collect();
    // Worst first, so that the cap hides changed hosts rather than failed ones; the sort is
    // stable, so each status keeps inventory order.
    rows.sort_by_key(|h| h.status.severity());
    if !rows.is_empty() {
        out.push_str("\n| host | status | revision | reason |\n|---|---|---|---|\n");
        for h in rows.iter().take(MAX_ROWS) {
            let reason = h
                .error
                .as_ref()
                .map(|e| format!("{}: {}", e.kind, e.message))
                .unwrap_or_default();
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                code(&h.name, true),
                text(h.status.as_str()),
                code(&table::host_revision_and_config(report, h), true),
                code(&reason, true),
            ));
        }
        // A blank line first: a line right after a table would be read as another row.
        more(&mut out, rows.len(), "\n... and {} more\n");
    }

    let changes = grouped::changes(report);
    // A bootstrap's apply is a noop too: what the first rollout would change.
    let title = if matches!(report.mode, Mode::Plan | Mode::Bootstrap) {
        "would change"
    } else {
        "changes"
    };
    bullets(&mut out, title, &changes);
    bullets(&mut out, "problems", &grouped::failures(report));
    out
}

/// Writes [`to_markdown`]'s text atomically (a temporary file beside `path`, synced, then
/// renamed over it).
pub fn write_markdown(report: &Report, path: &Path) -> Result<(), WriteError> {
    crate::atomic::write(path, to_markdown(report).as_bytes())
        .map_err(|source| io_error(path, source))
}

/// Appends [`to_markdown`]'s text to `path`, creating it if needed: GitHub Actions collects a
/// job summary from what each step appends to `$GITHUB_STEP_SUMMARY`.
pub fn append_markdown(report: &Report, path: &Path) -> Result<(), WriteError> {
    let io = |source| io_error(path, source);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(io)?;
    let mut text = to_markdown(report);
    // Keep our heading off whatever an earlier step left on the last line.
    if file.metadata().map_err(io)?.len() > 0 {
        text.insert(0, '\n');
    }
    // One write of the whole text, so another step appending at the same time cannot land in
    // the middle of it.
    file.write_all(text.as_bytes()).map_err(io)?;
    file.flush().map_err(io)
}

fn io_error(path: &Path, source: std::io::Error) -> WriteError {
    WriteError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// `interrupted by SIGINT`, `F of N hosts failed`, `S of N hosts skipped` or `all N hosts ok`,
/// with ` (halted)` when the run stopped starting hosts early (the counts line says why).
fn verdict(report: &Report) -> String {
    if let Some(signal) = &report.interrupted {
        return format!("interrupted by {}", text(signal.as_str()));
    }
    let s = &report.summary;
    let n = s.total;
    let hosts = if n == 1 { "host" } else { "hosts" };
    // Skipped hosts are counted apart: after a failed canary, "1 of 50 hosts failed" says what
    // went wrong, "50 of 50" would not.
    let failed = s.count_where(HostStatus::is_failure);
    let mut verdict = if failed > 0 {
        format!("{failed} of {n} {hosts} failed")
    } else if s.skipped > 0 {
        format!("{} of {n} {hosts} skipped", s.skipped)
    } else {
        format!("all {n} {hosts} ok")
    };
    if report.halted.is_some() {
        verdict.push_str(" (halted)");
    }
    verdict
}

/// `**title:**` and one bullet per group, capped; nothing when there are no groups.
fn bullets(out: &mut String, title: &str, groups: &[Group]) {
    if groups.is_empty() {
        return;
    }
    out.push_str(&format!("\n**{title}:**\n\n"));
    for g in groups.iter().take(MAX_ROWS) {
        out.push_str(&format!("- {}\n", code(&g.line(), false)));
    }
    more(out, groups.len(), "- ... and {} more\n");
}

/// Appends `template` with the number of items past [`MAX_ROWS`], if any.
fn more(out: &mut String, total: usize, template: &str) {
    if total > MAX_ROWS {
        out.push_str(&template.replace("{}", &(total - MAX_ROWS).to_string()));
    }
}

/// Plain text made inert: control characters escaped, HTML's `&`, `<` and `>` as entities,
/// and Markdown punctuation (emphasis, links, code, tables, strikethrough) backslash-escaped.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in sanitize::line(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Host text as one code span, cut to [`MAX_CELL_CHARS`]; empty text gives an empty string.
/// Entities are not decoded inside code spans, so `<` and `&` stay as they are (and show as
/// such). `in_table`: `|` would end the cell even inside a code span, so it is written `\|`,
/// which GitHub's table parser turns back into `|`; outside a table that would show the
/// backslash.
fn code(s: &str, in_table: bool) -> String {
    let mut body = sanitize::line(s);
    if body.is_empty() {
        return String::new();
    }
    if body.chars().count() > MAX_CELL_CHARS {
        body = body.chars().take(MAX_CELL_CHARS).collect();
        body.push_str("...");
    }
    if in_table {
        body = body.replace('|', "\\|");
    }
    // The fence must be longer than any run of backticks inside.
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // A space each side is stripped again by the parser; it keeps a backtick at either end
    // from joining the fence, and keeps leading or trailing spaces.
    let pad = if body.starts_with(['`', ' ']) || body.ends_with(['`', ' ']) {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use capo_schema::{
        ErrorKind, ErrorReport, EventReport, PuppetReport, RevisionCount, Signal, Summary,
    };

    const OLD: &str = "3f2a1c9e5d0000000000000000000000000000aa";
    const NEW: &str = "77b0e41a0c0000000000000000000000000000bb";

    fn host(name: &str, status: HostStatus, error: Option<(ErrorKind, &str)>) -> HostReport {
        let moved = status == HostStatus::Changed;
        HostReport {
            name: name.into(),
            address: "10.0.0.1".into(),
            port: 22,
            status,
            error: error.map(|(kind, message)| ErrorReport {
                kind,
                message: message.into(),
            }),
            rev_before: Some(OLD.into()),
            rev_after: Some(if moved { NEW } else { OLD }.into()),
            duration_ms: 1000,
            log_dir: String::new(),
            connect_attempts: 1,
            ..HostReport::new(name, status)
        }
    }

    fn motd_changed(mut h: HostReport) -> HostReport {
        h.puppet = Some(PuppetReport {
            exit_code: Some(2),
            resources: None,
            event_counts: None,
            events: vec![EventReport {
                resource: "File[/etc/motd]".into(),
                property: Some("content".into()),
                previous: Some("{sha256}a".into()),
                desired: Some("{sha256}b".into()),
                status: "success".into(),
                message: String::new(),
            }],
            diffs: vec![],
            unreadable: None,
            config_version: None,
        });
        h
    }

    fn report(hosts: Vec<HostReport>) -> Report {
        let summary = Summary::of(&hosts);
        Report {
            schema: crate::SCHEMA.into(),
            run_id: "r1".into(),
            mode: Mode::Rollout,
            target_rev: None,
            started_at: String::new(),
            finished_at: String::new(),
            duration_ms: 4200,
            inventory: "inventory.toml".into(),
            limit: None,
            interrupted: None,
            halted: None,
            run_dir: ".capo/runs/r1".into(),
            summary,
            hosts,
            shard: None,
            seed: None,
            parts: vec![],
        }
    }

    #[test]
    fn a_mixed_run_renders_exactly() {
        let mut r = report(vec![
            motd_changed(host("web01", HostStatus::Changed, None)),
            host("web02", HostStatus::Unchanged, None),
            host(
                "web03",
                HostStatus::Failed,
                Some((
                    ErrorKind::Puppet,
                    "Error: <img src=x onerror=alert(1)> a|b & `c` @admin",
                )),
            ),
            host(
                "web04",
                HostStatus::Unreachable,
                Some((ErrorKind::Connect, "connection refused")),
            ),
        ]);
        r.hosts[3].rev_before = None;
        r.hosts[3].rev_after = None;
        r.summary.revisions = vec![
            RevisionCount {
                rev: NEW.into(),
                hosts: 1,
                ahead: false,
            },
            RevisionCount {
                rev: OLD.into(),
                hosts: 2,
                ahead: false,
            },
        ];
        let expected = "\
### capo rollout: 2 of 4 hosts failed

4 hosts: 1 changed, 1 unchanged, 1 failed, 1 unreachable in 4.2s

revisions: 1 at 77b0e41, 2 at 3f2a1c9, 1 unknown

| host | status | revision | reason |
|---|---|---|---|
| `web03` | failed | `3f2a1c9` | ``puppet: Error: <img src=x onerror=alert(1)> a\\|b & `c` @admin`` |
| `web04` | unreachable | `-` | `connect: connection refused` |
| `web01` | changed | `3f2a1c9 -> 77b0e41` |  |

**changes:**

- `File[/etc/motd] content changed on web01 (1 host)`

**problems:**

- ``puppet: Error: <img src=x onerror=alert(1)> a|b & `c` @admin on web03 (1 host)``
- `connect: connection refused on web04 (1 host)`
";
        assert_eq!(to_markdown(&r), expected);
    }

    #[test]
    fn an_all_ok_run_has_no_table() {
        let r = report(vec![
            host("a", HostStatus::Unchanged, None),
            host("b", HostStatus::Unchanged, None),
        ]);
        assert_eq!(
            to_markdown(&r),
            "### capo rollout: all 2 hosts ok\n\n\
             2 hosts: 0 changed, 2 unchanged, 0 failed, 0 unreachable in 4.2s\n"
        );
    }

    #[test]
    fn an_interrupted_plan_says_so() {
        let mut r = report(vec![
            host("a", HostStatus::WouldChange, None),
            host(
                "b",
                HostStatus::Skipped,
                Some((ErrorKind::Interrupted, "not started")),
            ),
        ]);
        r.mode = Mode::Plan;
        r.interrupted = Some(Signal::Int);
        r.hosts[0].target = Some(NEW.into());
        assert_eq!(
            to_markdown(&r),
            "\
### capo plan: interrupted by SIGINT

2 hosts: 0 changed, 0 unchanged, 0 failed, 0 unreachable, 1 would change, 1 skipped in 4.2s (interrupted by SIGINT)

| host | status | revision | reason |
|---|---|---|---|
| `b` | skipped | `3f2a1c9` | `interrupted: not started` |
| `a` | would\\_change | `3f2a1c9 -> 77b0e41` |  |

**problems:**

- `interrupted: not started on b (1 host)`
"
        );
    }

    #[test]
    fn a_halted_run_counts_failures_apart_from_skipped_hosts() {
        let mut r = report(vec![
            host(
                "web01",
                HostStatus::Failed,
                Some((ErrorKind::Puppet, "puppet apply failed (exit 1)")),
            ),
            host(
                "web02",
                HostStatus::Skipped,
                Some((ErrorKind::Aborted, "not started: the canary failed (web01)")),
            ),
        ]);
        r.halted = Some("the canary failed (web01)".into());
        let md = to_markdown(&r);
        assert!(
            md.starts_with(
                "### capo rollout: 1 of 2 hosts failed (halted)\n\n\
                 2 hosts: 0 changed, 0 unchanged, 1 failed, 0 unreachable, 1 skipped in 4.2s; \
                 the canary failed (web01)\n"
            ),
            "{md}"
        );
        r.hosts[0].status = HostStatus::Skipped;
        r.summary.failed = 0;
        r.summary.skipped = 2;
        assert!(md_heading(&r).ends_with(": 2 of 2 hosts skipped (halted)"));
    }

    fn md_heading(r: &Report) -> String {
        to_markdown(r)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn a_config_version_shows_when_it_is_not_the_commit() {
        let config = |h: HostReport, v: &str| {
            let mut h = motd_changed(h);
            if let Some(p) = h.puppet.as_mut() {
                p.config_version = Some(v.into());
            }
            h
        };
        let md = to_markdown(&report(vec![
            config(host("web01", HostStatus::Changed, None), "2024.12|b"),
            config(host("web02", HostStatus::Changed, None), NEW),
            config(host("web03", HostStatus::Changed, None), &NEW[..7]),
        ]));
        assert!(
            md.contains("| `web01` | changed | `3f2a1c9 -> 77b0e41 (config 2024.12\\|b)` |  |\n"),
            "{md}"
        );
        assert!(
            md.contains("| `web02` | changed | `3f2a1c9 -> 77b0e41` |  |\n"),
            "{md}"
        );
        assert!(
            md.contains("| `web03` | changed | `3f2a1c9 -> 77b0e41` |  |\n"),
            "{md}"
        );
    }

    #[test]
    fn the_table_is_capped() {
        let hosts = (1..=53)
            .map(|i| host(&format!("h{i:02}"), HostStatus::Changed, None))
            .collect();
        let md = to_markdown(&report(hosts));
        let rows = md.lines().filter(|l| l.starts_with("| `h")).count();
        assert_eq!(rows, MAX_ROWS);
        assert!(md.contains("| `h50` |"));
        assert!(!md.contains("| `h51` |"));
        assert!(md.ends_with("|\n\n... and 3 more\n"), "{md}");
    }

    #[test]
    fn cells_and_text_are_inert() {
        assert_eq!(code("a|b\nc\u{1b}[2J", true), "`a\\|b\\x0ac\\x1b[2J`");
        assert_eq!(code("a|b", false), "`a|b`");
        assert_eq!(code("`x``", false), "``` `x`` ```");
        assert_eq!(code("", true), "");
        let long = "x".repeat(MAX_CELL_CHARS + 10);
        assert_eq!(
            code(&long, false),
            format!("`{}...`", "x".repeat(MAX_CELL_CHARS))
        );
        assert_eq!(
            text("<b>&amp; *x* [l](u) a|b"),
            "&lt;b&gt;&amp;amp; \\*x\\* \\[l\\](u) a\\|b"
        );
    }

    #[test]
    fn append_adds_after_earlier_steps_and_write_replaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = report(vec![host("a", HostStatus::Unchanged, None)]);
        let md = to_markdown(&r);

        let summary = dir.path().join("step_summary.md");
        append_markdown(&r, &summary).expect("append to a new file");
        assert_eq!(std::fs::read_to_string(&summary).expect("read"), md);
        std::fs::write(&summary, "earlier step").expect("seed");
        append_markdown(&r, &summary).expect("append");
        assert_eq!(
            std::fs::read_to_string(&summary).expect("read"),
            format!("earlier step\n{md}")
        );

        let file = dir.path().join("summary.md");
        std::fs::write(&file, "old").expect("seed");
        write_markdown(&r, &file).expect("write");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), md);
    }
}
