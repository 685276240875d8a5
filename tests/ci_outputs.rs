//! What capo leaves for CI and for people watching: the JUnit file, the Markdown summary (and
//! `$GITHUB_STEP_SUMMARY`), plain escape-free progress lines without a terminal, and the live
//! progress display under a real pseudo-terminal (tmux).
//! Needs root (the fleet uses unshare and bind mounts); see tests/fleet/README.md.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::run::{self, Run};
use crate::common::run::{inventory_with_puppet, path_arg};
use crate::common::run::{is_seconds, short};
use crate::common::tmux::{sh_quote, Tmux};
use crate::common::Fleet;

/// Replaces the run's wall time in `... in 12.3s` (the first ` in N.Ns` followed by `;`, `\n`
/// or the end) with `<T>`.
fn mask_wall_time(line: &str) -> String {
    let Some(at) = line.find(" in ") else {
        return line.to_string();
    };
    let rest = &line[at + 4..];
    let end = rest.find([';', '\n']).unwrap_or(rest.len());
    assert!(is_seconds(&rest[..end]), "no duration in {line:?}");
    format!("{} in <T>{}", &line[..at], &rest[end..])
}

// ---------------------------------------------------------------------------------------------
// capo's JUnit file read back with an independent XML parser (roxmltree), into an owned tree
// the assertions can walk.

#[derive(Debug)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Element>,
    /// The element's own text (its text and CDATA children, joined).
    text: String,
}

impl Element {
    fn from_node(node: roxmltree::Node<'_, '_>) -> Element {
        Element {
            name: node.tag_name().name().to_string(),
            attrs: node
                .attributes()
                .map(|a| (a.name().to_string(), a.value().to_string()))
                .collect(),
            children: node
                .children()
                .filter(|c| c.is_element())
                .map(Element::from_node)
                .collect(),
            text: node
                .children()
                .filter(|c| c.is_text())
                .filter_map(|c| c.text())
                .collect(),
        }
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn child_names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }
}

fn read_junit(path: &Path) -> (String, Element) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no JUnit file at {} ({e})", path.display()));
    assert!(
        text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        "{text}"
    );
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("JUnit file is not well-formed XML ({e}):\n{text}"));
    let root = Element::from_node(doc.root_element());
    (text, root)
}

fn seconds_attr(e: &Element, attr: &str) -> f64 {
    let v = e
        .attr(attr)
        .unwrap_or_else(|| panic!("<{}> has no {attr}", e.name));
    v.parse()
        .unwrap_or_else(|_| panic!("<{}> {attr}={v:?} is not a number", e.name))
}

// ---------------------------------------------------------------------------------------------
// --junit

#[test]
fn junit_has_one_testcase_per_host_and_the_failure_with_its_kind() {
    let fleet = Fleet::up(3);
    let inventory = inventory_with_puppet(&fleet, &[("host02", "/bin/false")]);
    let junit = fleet.dir.join("junit.xml");
    let r = run::rollout(
        &fleet,
        &["-i", path_arg(&inventory), "--junit", path_arg(&junit)],
    );
    assert_eq!(r.code, 1, "{}", r.dump());
    let run_id = r.report["run_id"].as_str().expect("run_id");
    let run_dir = r.report["run_dir"].as_str().expect("run_dir");

    let (text, root) = read_junit(&junit);
    assert_eq!(root.name, "testsuites", "{text}");
    assert_eq!(root.attr("name"), Some("capo"));
    assert_eq!(root.attr("tests"), Some("3"));
    assert_eq!(root.attr("failures"), Some("1"));
    assert_eq!(root.attr("errors"), Some("0"));
    assert_eq!(root.attr("skipped"), Some("0"));
    assert_eq!(root.child_names(), ["testsuite"], "one testsuite per run");

    let suite = root.child("testsuite").expect("testsuite");
    assert_eq!(suite.attr("name"), Some("capo rollout"));
    assert_eq!(suite.attr("tests"), Some("3"));
    assert_eq!(suite.attr("failures"), Some("1"));
    assert_eq!(suite.attr("errors"), Some("0"));
    assert_eq!(suite.attr("skipped"), Some("0"));
    let wall = r.report["duration_ms"].as_f64().expect("duration_ms") / 1000.0;
    assert!((seconds_attr(suite, "time") - wall).abs() < 0.002, "{text}");
    // timestamp: the run's start, RFC 3339
    let started = r.report["started_at"].as_str().expect("started_at");
    let stamp = suite.attr("timestamp").expect("timestamp");
    assert_eq!(stamp[..19], started[..19], "{stamp} vs {started}");

    let properties: Vec<(&str, &str)> = suite
        .child("properties")
        .expect("properties")
        .children_named("property")
        .map(|p| {
            (
                p.attr("name").unwrap_or("?"),
                p.attr("value").unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(
        properties,
        [
            ("run_id", run_id),
            ("inventory", path_arg(&inventory)),
            ("run_dir", run_dir),
        ]
    );

    let cases: Vec<&Element> = suite.children_named("testcase").collect();
    let names: Vec<&str> = cases
        .iter()
        .map(|c| c.attr("name").unwrap_or("?"))
        .collect();
    assert_eq!(names, ["host01", "host02", "host03"]);
    for case in &cases {
        let name = case.attr("name").unwrap_or("?");
        assert_eq!(case.attr("classname"), Some("capo.rollout"), "{name}");
        let ms = r.host(name)["duration_ms"].as_f64().expect("duration_ms");
        assert!(
            (seconds_attr(case, "time") - ms / 1000.0).abs() < 0.002,
            "{name}"
        );
        assert!(case.child("skipped").is_none(), "{name}");
    }
    // the passing hosts: no failure; their Puppet output is kept
    for case in [cases[0], cases[2]] {
        assert!(case.child("failure").is_none(), "{text}");
        let out = &case.child("system-out").expect("system-out").text;
        assert!(out.starts_with("== sync (exit 0) ==\n"), "{out}");
        assert!(out.contains("\n== apply (exit 2) ==\n"), "{out}");
    }
    let failures: Vec<&Element> = cases[1].children_named("failure").collect();
    assert_eq!(failures.len(), 1, "{text}");
    let failure = failures[0];
    assert_eq!(failure.attr("type"), Some("puppet"));
    assert_eq!(
        failure.attr("message"),
        Some("puppet apply failed (exit 1)")
    );
    assert_eq!(
        failure.text,
        format!("full output of every step: {run_dir}/host02/")
    );
    assert_eq!(
        cases[1].child("system-out").expect("system-out").text,
        "== sync (exit 0) ==\nAlready up to date.\n== apply (exit 1) ==\n"
    );
    // the exact element, as CI tools read it
    assert!(
        text.contains(
            "<failure message=\"puppet apply failed (exit 1)\" type=\"puppet\">full output of every step: "
        ),
        "{text}"
    );
}

#[test]
fn junit_marks_hosts_a_failed_canary_kept_back_as_skipped() {
    let fleet = Fleet::up(3);
    let inventory = inventory_with_puppet(&fleet, &[("host01", "/bin/false")]);
    let junit = fleet.dir.join("junit.xml");
    let r = run::rollout(
        &fleet,
        &[
            "-i",
            path_arg(&inventory),
            "--canary",
            "1",
            "--junit",
            path_arg(&junit),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.dump());
    let (text, root) = read_junit(&junit);
    assert_eq!(root.attr("tests"), Some("3"));
    assert_eq!(root.attr("failures"), Some("1"));
    assert_eq!(root.attr("skipped"), Some("2"));
    let suite = root.child("testsuite").expect("testsuite");
    assert_eq!(suite.attr("skipped"), Some("2"));
    assert_eq!(suite.attr("failures"), Some("1"));
    let halted: Vec<&str> = suite
        .child("properties")
        .expect("properties")
        .children_named("property")
        .filter(|p| p.attr("name") == Some("halted"))
        .filter_map(|p| p.attr("value"))
        .collect();
    assert_eq!(halted, ["the canary failed (host01)"], "{text}");
    let cases: Vec<&Element> = suite.children_named("testcase").collect();
    assert_eq!(cases.len(), 3);
    let failure = cases[0].child("failure").expect("host01 failed");
    assert_eq!(failure.attr("type"), Some("puppet"));
    let run_dir = r.report["run_dir"].as_str().expect("run_dir");
    for (case, name) in cases[1..].iter().zip(["host02", "host03"]) {
        assert_eq!(case.attr("name"), Some(name));
        assert!(case.child("failure").is_none(), "{text}");
        let skipped: Vec<&Element> = case.children_named("skipped").collect();
        assert_eq!(skipped.len(), 1, "{text}");
        assert_eq!(
            skipped[0].attr("message"),
            Some("not started: the canary failed (host01)")
        );
        assert_eq!(
            skipped[0].text,
            format!("full output of every step: {run_dir}/{name}/")
        );
        // never ran: no output elements
        assert!(case.child("system-out").is_none(), "{text}");
        assert!(case.child("system-err").is_none(), "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// --summary-md and $GITHUB_STEP_SUMMARY

#[test]
fn summary_md_is_written_and_appended_to_the_github_step_summary() {
    let fleet = Fleet::up(2);
    let rev = short(&fleet.origin_head()).to_string();
    let inventory = inventory_with_puppet(&fleet, &[("host02", "/bin/false")]);
    let md = fleet.dir.join("summary.md");
    let step_summary = fleet.dir.join("step-summary.md");
    std::fs::write(&step_summary, "## an earlier step\n").expect("write");

    let (mut cmd, report) = run::command(
        &fleet,
        "rollout",
        &["-i", path_arg(&inventory), "--summary-md", path_arg(&md)],
    );
    let child = cmd
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("capo starts");
    let r = run::wait(child, &report);
    assert_eq!(r.code, 1, "{}", r.dump());

    let expected = format!(
        "### capo rollout: 1 of 2 hosts failed\n\
         \n\
         2 hosts: 1 changed, 0 unchanged, 1 failed, 0 unreachable in <T>\n\
         \n\
         revisions: 2 at {rev} (converged)\n\
         \n\
         | host | status | revision | reason |\n\
         |---|---|---|---|\n\
         | `host02` | failed | `{rev}` | `puppet: puppet apply failed (exit 1)` |\n\
         | `host01` | changed | `{rev}` |  |\n\
         \n\
         **changes:**\n\
         \n\
         - `File[/srv/managed/motd] ensure changed (absent -> file) on host01 (1 host)`\n\
         - `File[/srv/managed/role] ensure changed (absent -> file) on host01 (1 host)`\n\
         - `File[/srv/managed/www] ensure changed (absent -> directory) on host01 (1 host)`\n\
         - `File[/srv/managed/www/index.html] ensure changed (absent -> file) on host01 (1 host)`\n\
         \n\
         **problems:**\n\
         \n\
         - `puppet: puppet apply failed (exit 1) on host02 (1 host)`\n"
    );
    let written = std::fs::read_to_string(&md).expect("--summary-md file");
    let masked: String = written
        .lines()
        .map(|l| {
            if l.starts_with("2 hosts: ") {
                mask_wall_time(l)
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert_eq!(masked, expected, "{written}");
    assert!(written.starts_with("### capo rollout: "));
    // the summary line is the table's, wall time included
    let table_summary = r
        .stdout
        .lines()
        .find(|l| l.starts_with("2 hosts: "))
        .expect("summary line on stdout");
    assert!(
        written.contains(&format!("\n{table_summary}\n")),
        "{written}\n{table_summary}"
    );

    // $GITHUB_STEP_SUMMARY: the same text, after what was there, a blank line between.
    let appended = std::fs::read_to_string(&step_summary).expect("step summary");
    assert_eq!(appended, format!("## an earlier step\n\n{written}"));

    // A second run appends again and keeps both.
    let (mut cmd, report) = run::command(
        &fleet,
        "rollout",
        &["-i", path_arg(&inventory), "-l", "host02"],
    );
    let child = cmd
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("capo starts");
    let r2 = run::wait(child, &report);
    assert_eq!(r2.code, 1, "{}", r2.dump());
    let both = std::fs::read_to_string(&step_summary).expect("step summary");
    let second = both
        .strip_prefix(&appended)
        .unwrap_or_else(|| panic!("the first summary was not kept:\n{both}"));
    assert!(
        second.starts_with("\n### capo rollout: 1 of 1 host failed\n\n1 host: 0 changed, 0 unchanged, 1 failed, 0 unreachable in "),
        "{second:?}"
    );
    assert_eq!(both.matches("### capo rollout: ").count(), 2, "{both}");
}

#[test]
fn an_empty_github_step_summary_variable_is_ignored_without_complaint() {
    let fleet = Fleet::up(1);
    let inventory = inventory_with_puppet(&fleet, &[("host01", "/bin/true")]);
    let (mut cmd, report) = run::command(&fleet, "rollout", &["-i", path_arg(&inventory)]);
    let child = cmd
        .env("GITHUB_STEP_SUMMARY", "")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("capo starts");
    let r = run::wait(child, &report);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.dump());
}

// ---------------------------------------------------------------------------------------------
// Without a terminal: plain lines, no escapes

/// Runs `capo rollout` with piped output and none of the variables that turn colour off, and
/// a terminal type that would allow it.
fn rollout_piped_in_colour_country(fleet: &Fleet, args: &[&str]) -> Run {
    let (mut cmd, report) = run::command(fleet, "rollout", args);
    let child = cmd
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .env("COLORTERM", "truecolor")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("capo starts");
    run::wait(child, &report)
}

fn assert_no_escapes(r: &Run) {
    for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        assert!(
            !text.contains('\u{1b}'),
            "escape byte on {stream}:\n{}",
            r.dump()
        );
        assert!(!text.contains('\r'), "carriage return on {stream}");
    }
}

/// Asserts that `line` is `NAME  STATUS  DURATION  REST` as capo prints it for a finished host:
/// the name padded to `width`, the status to 12, the duration right-aligned in 7 columns.
fn assert_host_line(line: &str, width: usize, name: &str, status: &str, rest: &str) {
    let head = format!("{name:<width$}  {status:<12} ");
    let tail = format!("  {rest}");
    let duration = line
        .strip_prefix(&head)
        .and_then(|l| l.strip_suffix(&tail))
        .unwrap_or_else(|| panic!("expected {head:?} <7 columns> {tail:?}, got {line:?}"));
    assert_eq!(duration.chars().count(), 7, "{line:?}");
    assert!(is_seconds(duration.trim_start()), "{line:?}");
}

fn stderr_line<'a>(r: &'a Run, name: &str) -> &'a str {
    let found: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.split(' ').next() == Some(name))
        .collect();
    assert_eq!(found.len(), 1, "one line for {name}:\n{}", r.stderr);
    found[0]
}

#[test]
fn without_a_terminal_progress_is_one_plain_line_per_host_and_no_escapes() {
    let fleet = Fleet::up(2);
    let old = fleet.origin_head();

    // A run that goes well.
    let r = rollout_piped_in_colour_country(&fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_no_escapes(&r);
    assert_eq!(r.stderr.lines().count(), 2, "{}", r.dump());
    for name in ["host01", "host02"] {
        assert_host_line(stderr_line(&r, name), 6, name, "changed", short(&old));
    }
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("2 hosts: 2 changed, 0 unchanged, 0 failed, 0 unreachable in ")),
        "{}",
        r.dump()
    );

    // A run that fails on one host, after a new commit.
    let new = fleet.commit("modules/capo_demo/files/message.txt", "v2\n", "v2");
    let inventory = inventory_with_puppet(&fleet, &[("host02", "/bin/false")]);
    let r = rollout_piped_in_colour_country(&fleet, &["-i", path_arg(&inventory)]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_no_escapes(&r);
    assert_eq!(r.stderr.lines().count(), 2, "{}", r.dump());
    let moved = format!("{} -> {}", short(&old), short(&new));
    assert_host_line(stderr_line(&r, "host01"), 6, "host01", "changed", &moved);
    assert_host_line(
        stderr_line(&r, "host02"),
        6,
        "host02",
        "failed",
        &format!("{moved}  puppet: puppet apply failed (exit 1)"),
    );

    // --format json: stdout is nothing but the JSON document.
    let r =
        rollout_piped_in_colour_country(&fleet, &["-i", path_arg(&inventory), "--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_no_escapes(&r);
    let printed: serde_json::Value = serde_json::from_str(&r.stdout).expect("stdout is JSON");
    assert_eq!(printed, r.report);

    // -q: no progress at all; the results still go to stdout.
    let r = rollout_piped_in_colour_country(&fleet, &["-i", path_arg(&inventory), "-q"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.stderr, "", "{}", r.dump());
    assert!(r
        .stdout
        .contains("2 hosts: 0 changed, 1 unchanged, 1 failed, 0 unreachable in "));
    assert_no_escapes(&r);
}

#[test]
fn plain_lines_pad_names_to_the_longest_and_show_skipped_hosts() {
    let fleet = Fleet::up(2);
    // a host with a longer name (at host02's address), outside every group
    let mut text = std::fs::read_to_string(&fleet.inventory)
        .expect("inventory")
        .replace(
            "[hosts.host01]\n",
            "[hosts.host01]\npuppet = \"/bin/false\"\n",
        );
    text.push_str(&format!(
        "\n[hosts.\"host03-long\"]\naddress = \"127.0.0.1\"\nport = {}\n",
        fleet.host("host02").port
    ));
    let inventory = fleet.write_inventory(&text);
    let r = rollout_piped_in_colour_country(
        &fleet,
        &[
            "-i",
            path_arg(&inventory),
            "--canary",
            "1",
            "-l",
            "host01,host02,host03-long",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_no_escapes(&r);
    assert_eq!(r.stderr.lines().count(), 3, "{}", r.dump());
    let rev = fleet.origin_head();
    assert_host_line(
        stderr_line(&r, "host01"),
        11,
        "host01",
        "failed",
        &format!("{}  puppet: puppet apply failed (exit 1)", short(&rev)),
    );
    for name in ["host02", "host03-long"] {
        assert_host_line(
            stderr_line(&r, name),
            11,
            name,
            "skipped",
            "-  aborted: not started: the canary failed (host01)",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Under a terminal: tmux

fn is_bar(row: &str) -> bool {
    row.contains("/3 hosts")
}

#[test]
fn under_a_terminal_a_live_bar_then_the_table_and_no_leftover_bar() {
    let fleet = Fleet::up(3);
    let command = format!(
        "cd {dir} && CAPO_INVENTORY={inv} {bin} rollout -j 1; echo CAPO-EXIT=$?; sleep 60",
        dir = sh_quote(path_arg(&fleet.dir)),
        inv = sh_quote(path_arg(&fleet.inventory)),
        bin = sh_quote(env!("CARGO_BIN_EXE_capo")),
    );
    let tmux = Tmux::start(&command);

    let deadline = Instant::now() + Duration::from_secs(90);
    let mut panes = Vec::new();
    let mut last_bar_row = None;
    let mut saw_host_in_flight = false;
    let final_pane = loop {
        let pane: Vec<String> = tmux.capture().lines().map(str::to_string).collect();
        if pane.iter().any(|r| r.starts_with("CAPO-EXIT=")) {
            break pane;
        }
        if let Some(row) = pane.iter().rposition(|r| is_bar(r)) {
            last_bar_row = Some(row);
            // the bar: `<30 cells> N/3 hosts  <counts>  [<elapsed>]`
            assert!(pane[row].contains(" hosts "), "{:?}", pane[row]);
            assert!(pane[row].trim_end().ends_with(']'), "{:?}", pane[row]);
            // under it, the host in flight and its step (-j 1: one at a time)
            let below: Vec<&String> = pane[row + 1..]
                .iter()
                .filter(|r| !r.trim().is_empty())
                .collect();
            if let Some(spinner) = below.first() {
                if ["sync", "apply", "connecting"]
                    .iter()
                    .any(|s| spinner.contains(&format!("  {s} ")))
                {
                    saw_host_in_flight = true;
                }
            }
        }
        panes.push(pane.join("\n"));
        assert!(
            Instant::now() < deadline,
            "capo did not finish under tmux; last pane:\n{}",
            panes.last().map(String::as_str).unwrap_or("")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let shown = final_pane.join("\n");
    let last_bar_row =
        last_bar_row.unwrap_or_else(|| panic!("never saw the progress bar; final pane:\n{shown}"));
    assert!(
        saw_host_in_flight,
        "never saw a host in flight:\n{}",
        panes.join("\n~~~~\n")
    );

    let exit_row = final_pane
        .iter()
        .position(|r| r.starts_with("CAPO-EXIT="))
        .expect("exit row");
    assert_eq!(final_pane[exit_row], "CAPO-EXIT=0", "{shown}");
    // no bar, no spinner, no bar cells left anywhere
    for row in &final_pane {
        assert!(!is_bar(row), "leftover bar {row:?}:\n{shown}");
        assert!(
            !row.contains(['░', '█']),
            "leftover bar cells {row:?}:\n{shown}"
        );
        assert!(
            !row.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c)),
            "leftover spinner {row:?}:\n{shown}"
        );
    }
    // the finished hosts scrolled above, then the table, then the summary
    let rev = short(&fleet.origin_head()).to_string();
    let line_of = |pred: &dyn Fn(&str) -> bool, what: &str| {
        final_pane
            .iter()
            .position(|r| pred(r))
            .unwrap_or_else(|| panic!("no {what} in the final pane:\n{shown}"))
    };
    let mut host_rows = Vec::new();
    for name in ["host01", "host02", "host03"] {
        let row = line_of(&|r: &str| r.starts_with(&format!("{name}  ")), name);
        assert_host_line(final_pane[row].trim_end(), 6, name, "changed", &rev);
        host_rows.push(row);
    }
    assert_eq!(
        host_rows,
        {
            let mut sorted = host_rows.clone();
            sorted.sort();
            sorted
        },
        "-j 1: hosts finish in order"
    );
    let header = line_of(&|r: &str| r.starts_with("│ HOST "), "table header");
    for name in ["host01", "host02", "host03"] {
        let row = line_of(
            &|r: &str| r.starts_with(&format!("│ {name} ┆ changed ")),
            name,
        );
        assert!(row > header, "{shown}");
    }
    let summary = line_of(&|r: &str| r.starts_with("3 hosts: "), "summary line");
    assert_eq!(
        mask_wall_time(final_pane[summary].trim_end()),
        "3 hosts: 3 changed, 0 unchanged, 0 failed, 0 unreachable in <T>"
    );
    assert!(
        host_rows.iter().all(|r| *r < header) && header < summary && summary < exit_row,
        "{shown}"
    );
    assert!(
        summary > last_bar_row,
        "summary at row {summary}, the bar was last at row {last_bar_row}:\n{shown}"
    );
}
