//! The report as JUnit XML, for CI systems that show test results (GitLab, Jenkins, GitHub
//! test-report actions): one testsuite per run, one testcase per host.
//!
//! Host output is untrusted and may be cut anywhere (a tail starts mid-stream), so every string
//! passes through `xml_text` before it reaches `quick-junit`: its own filter (`XmlString`)
//! keeps U+FFFE/U+FFFF, which makes the document unparseable, drops tabs and carriage returns,
//! and lets an escape sequence that is never terminated swallow the rest of the output.

use std::path::Path;
use std::time::Duration;

use capo_schema::{HostReport, HostStatus, Report, StepReport};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

/// Failure to render or write the JUnit report.
#[derive(Debug, thiserror::Error)]
pub enum JunitError {
    /// The XML writer failed (a bug: it writes to memory).
    #[error("cannot encode JUnit report: {0}")]
    Encode(#[from] quick_junit::SerializeError),
    /// The file system refused.
    #[error("cannot write JUnit report {path}: {source}")]
    Io {
        /// The report path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// The report as a JUnit XML document: a testsuite `capo <mode>` with one testcase per host
/// (classname `capo.<mode>`). Hosts whose status is a failure ([`HostStatus::is_failure`]:
/// `failed`, `unreachable`, `cancelled`) fail with the error's kind as `type` and its message;
/// `skipped` and `disabled` hosts are skipped; every other host passes. Each testcase's system-out and system-err hold the
/// steps' output tails.
pub fn to_junit(report: &Report) -> Result<String, JunitError> {
    let mode = report.mode.as_str();
    let classname = format!("capo.{mode}");
    let mut suite = TestSuite::new(format!("capo {mode}"));
    // A report read back from a file may carry anything here; an unreadable start time only
    // costs the timestamp attribute.
    if let Ok(started) = chrono::DateTime::parse_from_rfc3339(&report.started_at) {
        suite.set_timestamp(started);
    }
    suite.set_time(Duration::from_millis(report.duration_ms));
    let optional = [
        ("limit", report.limit.as_deref()),
        ("target_rev", report.target_rev.as_deref()),
        ("interrupted", report.interrupted.map(|s| s.as_str())),
        ("halted", report.halted.as_deref()),
    ];
    let properties = [
        ("run_id", Some(report.run_id.as_str())),
        ("inventory", Some(report.inventory.as_str())),
        ("run_dir", Some(report.run_dir.as_str())),
    ]
    .into_iter()
    .chain(optional)
    .filter_map(|(name, value)| value.map(|v| (name.to_string(), xml_text(v))));
    suite.add_properties(properties);
    suite.add_test_cases(report.hosts.iter().map(|h| test_case(h, &classname)));

    let mut junit = quick_junit::Report::new("capo");
    if let Ok(started) = chrono::DateTime::parse_from_rfc3339(&report.started_at) {
        junit.set_timestamp(started);
    }
    junit.set_time(Duration::from_millis(report.duration_ms));
    junit.add_test_suite(suite);
    Ok(junit.to_string()?)
}

/// Writes [`to_junit`]'s document atomically (a temporary file beside `path`, synced, then
/// renamed over it), so a CI job never picks up half a file.
pub fn write_junit(report: &Report, path: &Path) -> Result<(), JunitError> {
    let xml = to_junit(report)?;
    crate::atomic::write(path, xml.as_bytes()).map_err(|source| JunitError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn test_case(host: &HostReport, classname: &str) -> TestCase {
    let error = host.error.as_ref();
    let mut status = if host.status.is_failure() {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        match error {
            Some(e) => {
                s.set_type(e.kind.as_str());
                s.set_message(xml_text(&e.message));
            }
            None => {
                s.set_message(format!("status {}", host.status));
            }
        }
        s
    } else if host.status == HostStatus::Skipped {
        let mut s = TestCaseStatus::skipped();
        if let Some(e) = error {
            s.set_message(xml_text(&e.message));
        }
        s
    } else if host.status == HostStatus::Disabled {
        // Left alone on purpose: CI shows it as skipped, with why.
        let mut s = TestCaseStatus::skipped();
        if let Some(d) = &host.disabled {
            s.set_message(xml_text(&crate::table::disabled_reason(d)));
        }
        s
    } else {
        TestCaseStatus::success()
    };
    if !matches!(status, TestCaseStatus::Success { .. }) {
        // CI pages often show only the failure's text: point at the full output from there.
        status.set_description(format!(
            "full output of every step: {}/",
            xml_text(&host.log_dir)
        ));
    }
    let mut case = TestCase::new(xml_text(&host.name), status);
    case.set_classname(classname);
    case.set_time(Duration::from_millis(host.duration_ms));
    if let Some(out) = step_output(&host.steps, |s| &s.stdout_tail) {
        case.set_system_out(out);
    }
    if let Some(err) = step_output(&host.steps, |s| &s.stderr_tail) {
        case.set_system_err(err);
    }
    case
}

/// `== <step> (exit N) ==` then the tail, for every step; None when every tail is empty, so a
/// quiet host gets no empty element.
fn step_output(steps: &[StepReport], tail: impl Fn(&StepReport) -> &String) -> Option<String> {
    if steps.iter().all(|s| tail(s).is_empty()) {
        return None;
    }
    let mut out = String::new();
    for step in steps {
        let exit = match step.exit_code {
            Some(code) => format!("exit {code}"),
            None => "did not finish".to_string(),
        };
        out.push_str(&format!("== {} ({exit}) ==\n", step.name));
        let text = xml_text(tail(step));
        out.push_str(&text);
        if !text.is_empty() && !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Some(out)
}

/// Tab stops for expanding tabs, as a terminal would show them.
const TAB_WIDTH: usize = 8;

/// Makes remote text fit for XML 1.0 and a CI page: terminal escape sequences (CSI such as
/// colours, OSC/DCS strings, two-character escapes) are removed, and so is every control
/// character but the newline (C0, DEL, C1) and the non-characters U+FFFE and U+FFFF. Tabs
/// become spaces to the next tab stop and a lone carriage return becomes a newline, because
/// `quick-junit` would otherwise delete them and glue words and progress lines together.
fn xml_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut column = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            '\t' => {
                let n = TAB_WIDTH - column % TAB_WIDTH;
                out.extend(std::iter::repeat_n(' ', n));
                column += n;
            }
            '\n' => {
                out.push('\n');
                column = 0;
            }
            '\r' => {
                // CRLF is one line end; a lone CR (progress output) starts a new line.
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                    column = 0;
                }
            }
            c if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => {
                out.push(c);
                column += 1;
            }
        }
    }
    out
}

/// Skips the rest of an escape sequence whose ESC was just read. Strings (OSC, DCS, SOS, PM,
/// APC) end at BEL or ESC \ but never run past the end of the line, so a sequence cut off by the
/// tail or left open by a hostile host hides one line at most.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.peek() {
        Some('[') => {
            chars.next();
            // Parameter and intermediate bytes, then one final byte.
            while chars
                .next_if(|c| ('\u{20}'..='\u{3f}').contains(c))
                .is_some()
            {}
            chars.next_if(|c| ('\u{40}'..='\u{7e}').contains(c));
        }
        Some(']' | 'P' | 'X' | '^' | '_') => {
            chars.next();
            while let Some(c) = chars.next_if(|c| *c != '\n') {
                if c == '\u{7}' {
                    break;
                }
                if c == '\u{1b}' {
                    chars.next_if_eq(&'\\');
                    break;
                }
            }
        }
        _ => {
            // nF / Fp / Fe / Fs escapes: intermediates, then one final byte (ESC ( B, ESC 7).
            while chars
                .next_if(|c| ('\u{20}'..='\u{2f}').contains(c))
                .is_some()
            {}
            chars.next_if(|c| ('\u{30}'..='\u{7e}').contains(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capo_schema::{ErrorKind, ErrorReport, Mode, StepName, Summary};

    fn step(name: StepName, exit_code: Option<i32>, stdout: &str, stderr: &str) -> StepReport {
        StepReport {
            name,
            command: String::new(),
            exit_code,
            duration_ms: 100,
            stdout_tail: stdout.into(),
            stderr_tail: stderr.into(),
            truncated: false,
            log_error: None,
            started_ms: None,
        }
    }

    fn host(name: &str, status: HostStatus, error: Option<(ErrorKind, &str)>) -> HostReport {
        HostReport {
            name: name.into(),
            address: "10.0.0.1".into(),
            port: 22,
            status,
            error: error.map(|(kind, message)| ErrorReport {
                kind,
                message: message.into(),
            }),
            duration_ms: 1500,
            log_dir: format!(".capo/runs/r1/{name}"),
            connect_attempts: 1,
            ..HostReport::new(name, status)
        }
    }

    fn report(hosts: Vec<HostReport>) -> Report {
        Report {
            schema: crate::SCHEMA.into(),
            run_id: "r1".into(),
            mode: Mode::Rollout,
            target_rev: None,
            started_at: "2026-11-24T22:45:01.123Z".into(),
            finished_at: "2026-11-24T22:45:09.456Z".into(),
            duration_ms: 8333,
            inventory: "inventory.toml".into(),
            limit: Some("web*".into()),
            interrupted: None,
            halted: None,
            run_dir: ".capo/runs/r1".into(),
            summary: Summary::default(),
            hosts,
            shard: None,
            seed: None,
            parts: vec![],
        }
    }

    fn fleet() -> Report {
        let mut web01 = host("web01", HostStatus::Changed, None);
        web01.steps = vec![
            step(StepName::Sync, Some(0), "Fast-forward\n", ""),
            step(
                StepName::Apply,
                Some(2),
                "\u{1b}[31mNotice:\u{1b}[0m a\u{0}b\tc",
                "",
            ),
        ];
        let mut web02 = host(
            "web02",
            HostStatus::Failed,
            Some((
                ErrorKind::Puppet,
                "puppet apply failed (exit 1): <Error> & \"x\"",
            )),
        );
        web02.steps = vec![step(StepName::Sync, None, "", "fatal: boom\r\n")];
        let web03 = host(
            "web03",
            HostStatus::Skipped,
            Some((ErrorKind::Interrupted, "not started: interrupted by SIGINT")),
        );
        let web04 = host(
            "web04",
            HostStatus::Unreachable,
            Some((ErrorKind::Connect, "refused")),
        );
        let web05 = host("web05", HostStatus::WouldChange, None);
        report(vec![web01, web02, web03, web04, web05])
    }

    #[test]
    fn renders_exactly() {
        let xml = to_junit(&fleet()).expect("junit");
        let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="capo" tests="5" skipped="1" failures="2" errors="0" timestamp="2026-11-24T22:45:01.123+00:00" time="8.333">
    <testsuite name="capo rollout" tests="5" skipped="1" errors="0" failures="2" timestamp="2026-11-24T22:45:01.123+00:00" time="8.333">
        <properties>
            <property name="run_id" value="r1"/>
            <property name="inventory" value="inventory.toml"/>
            <property name="run_dir" value=".capo/runs/r1"/>
            <property name="limit" value="web*"/>
        </properties>
        <testcase name="web01" classname="capo.rollout" time="1.500">
            <system-out>== sync (exit 0) ==
Fast-forward
== apply (exit 2) ==
Notice: ab      c
</system-out>
        </testcase>
        <testcase name="web02" classname="capo.rollout" time="1.500">
            <failure message="puppet apply failed (exit 1): &lt;Error&gt; &amp; &quot;x&quot;" type="puppet">full output of every step: .capo/runs/r1/web02/</failure>
            <system-err>== sync (did not finish) ==
fatal: boom
</system-err>
        </testcase>
        <testcase name="web03" classname="capo.rollout" time="1.500">
            <skipped message="not started: interrupted by SIGINT">full output of every step: .capo/runs/r1/web03/</skipped>
        </testcase>
        <testcase name="web04" classname="capo.rollout" time="1.500">
            <failure message="refused" type="connect">full output of every step: .capo/runs/r1/web04/</failure>
        </testcase>
        <testcase name="web05" classname="capo.rollout" time="1.500"/>
    </testsuite>
</testsuites>
"#;
        assert_eq!(xml, expected);
    }

    #[test]
    fn parses_back_with_counts_names_and_failures() {
        let xml = to_junit(&fleet()).expect("junit");
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .expect("a testsuite");
        assert_eq!(suite.attribute("name"), Some("capo rollout"));
        assert_eq!(suite.attribute("tests"), Some("5"));
        assert_eq!(suite.attribute("failures"), Some("2"));
        assert_eq!(suite.attribute("skipped"), Some("1"));
        let cases: Vec<_> = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        let names: Vec<_> = cases.iter().filter_map(|c| c.attribute("name")).collect();
        assert_eq!(names, ["web01", "web02", "web03", "web04", "web05"]);
        assert!(cases
            .iter()
            .all(|c| c.attribute("classname") == Some("capo.rollout")));
        let failure = cases[1]
            .children()
            .find(|n| n.has_tag_name("failure"))
            .expect("web02 failed");
        assert_eq!(failure.attribute("type"), Some("puppet"));
        assert_eq!(
            failure.attribute("message"),
            Some("puppet apply failed (exit 1): <Error> & \"x\"")
        );
        let out = cases[0]
            .children()
            .find(|n| n.has_tag_name("system-out"))
            .and_then(|n| n.text());
        assert_eq!(
            out,
            Some("== sync (exit 0) ==\nFast-forward\n== apply (exit 2) ==\nNotice: ab      c\n")
        );
    }

    #[test]
    fn hostile_output_still_makes_well_formed_xml() {
        let mut h = host(
            "web\u{1b}[2J01\u{0}",
            HostStatus::Failed,
            Some((ErrorKind::Sync, "bad\u{7}\u{ffff}")),
        );
        h.steps = vec![step(
            StepName::Sync,
            Some(1),
            "\u{1b}]0;title with no end\nnext line\u{fffe}\n\u{9b}31mc1\u{7f}\n",
            "progress 10%\rprogress 20%\r\n",
        )];
        let xml = to_junit(&report(vec![h])).expect("junit");
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let case = doc
            .descendants()
            .find(|n| n.has_tag_name("testcase"))
            .expect("a testcase");
        assert_eq!(case.attribute("name"), Some("web01"));
        let text = |tag: &str| {
            case.children()
                .find(|n| n.has_tag_name(tag))
                .and_then(|n| n.text())
                .map(str::to_string)
        };
        // The unterminated OSC hides only its own line.
        assert_eq!(
            text("system-out").as_deref(),
            Some("== sync (exit 1) ==\n\nnext line\n31mc1\n")
        );
        assert_eq!(
            text("system-err").as_deref(),
            Some("== sync (exit 1) ==\nprogress 10%\nprogress 20%\n")
        );
        let failure = case
            .children()
            .find(|n| n.has_tag_name("failure"))
            .expect("failure");
        assert_eq!(failure.attribute("message"), Some("bad"));
    }

    #[test]
    fn an_exec_host_that_ended_ok_passes() {
        let mut r = report(vec![
            host("web01", HostStatus::Ok, None),
            host(
                "web02",
                HostStatus::Failed,
                Some((ErrorKind::Command, "command exited 1")),
            ),
        ]);
        r.mode = Mode::Exec;
        let xml = to_junit(&r).expect("junit");
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .expect("a testsuite");
        assert_eq!(suite.attribute("failures"), Some("1"), "{xml}");
        let web01 = doc
            .descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("web01"))
            .expect("web01");
        assert!(
            web01.children().all(|n| !n.has_tag_name("failure")),
            "{xml}"
        );
    }

    #[test]
    fn xml_text_strips_escapes_and_invalid_characters() {
        assert_eq!(xml_text("\u{1b}[31mred\u{1b}[0m\u{0}!"), "red!");
        assert_eq!(
            xml_text("a\tb\n1234567890\tc"),
            "a       b\n1234567890      c"
        );
        assert_eq!(
            xml_text("\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{7}"),
            "link"
        );
        assert_eq!(xml_text("\u{1b}(Bx\u{1b}7y"), "xy");
        assert_eq!(xml_text("héllo ✓ \u{202e}"), "héllo ✓ \u{202e}");
    }

    #[test]
    fn write_junit_replaces_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("junit.xml");
        std::fs::write(&path, "old").expect("seed");
        write_junit(&fleet(), &path).expect("write");
        let written = std::fs::read_to_string(&path).expect("read");
        assert_eq!(written, to_junit(&fleet()).expect("junit"));
    }
}
