//! The parsers against real `puppet apply` output (see `tests/fixtures/README.md`).

use std::path::PathBuf;

use capo_puppet::{
    diffs, errors, parse_log_jsonl, parse_report, parse_summary, Events, FileDiff, Report,
    ResourceEvent, Resources, Summary,
};

fn path(run: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(run)
        .join(file)
}

fn read(run: &str, file: &str) -> String {
    let p = path(run, file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn summary(run: &str) -> Summary {
    parse_summary(&read(run, "last_run_summary.yaml")).expect("summary parses")
}

fn report(run: &str) -> Report {
    parse_report(&read(run, "last_run_report.yaml")).expect("report parses")
}

fn event(
    resource: &str,
    property: Option<&str>,
    previous: Option<&str>,
    desired: Option<&str>,
    status: &str,
    message: &str,
) -> ResourceEvent {
    ResourceEvent {
        resource: resource.to_string(),
        property: property.map(str::to_string),
        previous: previous.map(str::to_string),
        desired: desired.map(str::to_string),
        status: status.to_string(),
        message: message.to_string(),
    }
}

const OLD_SUM: &str = "{sha256}01d09d19c2139a46aebfb577780d123d7396e97201bc7ead210a2ebff8239dee";
const NEW_SUM: &str = "{sha256}7aa7a5359173d05b63cfd682e3c38487f3cb4f7f1d60659fe59fab1505977d4c";
const FACTER_NOISE: &str = "Permission denied @ rb_sysopen - /proc/1/environ";
const F_DIFF: &str = "--- /tmp/pp/t/f\n+++ /tmp/pp/t/f\n@@ -1 +1 @@\n-old\n+new\n";

#[test]
fn summary_of_noop_run_with_pending_changes() {
    assert_eq!(
        summary("noop_pending"),
        Summary {
            resources: Resources {
                total: 11,
                out_of_sync: 3,
                ..Resources::default()
            },
            events: Events {
                total: 3,
                noop: 3,
                ..Events::default()
            },
            changes_total: 0,
            time_total_ms: Some(29),
            config_version: Some("1795563410".into()),
            puppet_version: Some("7.23.0".into()),
            last_run: Some(1795563410),
        }
    );
}

#[test]
fn summary_of_run_with_changes() {
    assert_eq!(
        summary("changed"),
        Summary {
            resources: Resources {
                total: 11,
                changed: 3,
                out_of_sync: 3,
                ..Resources::default()
            },
            events: Events {
                total: 3,
                success: 3,
                ..Events::default()
            },
            changes_total: 3,
            time_total_ms: Some(24),
            config_version: Some("1795563412".into()),
            puppet_version: Some("7.23.0".into()),
            last_run: Some(1795563412),
        }
    );
}

#[test]
fn summary_of_unchanged_run() {
    assert_eq!(
        summary("unchanged"),
        Summary {
            resources: Resources {
                total: 11,
                ..Resources::default()
            },
            events: Events::default(),
            changes_total: 0,
            time_total_ms: Some(17),
            config_version: Some("1795563414".into()),
            puppet_version: Some("7.23.0".into()),
            last_run: Some(1795563415),
        }
    );
}

#[test]
fn summary_of_failed_run() {
    assert_eq!(
        summary("failed"),
        Summary {
            resources: Resources {
                total: 11,
                changed: 1,
                failed: 2,
                out_of_sync: 3,
                skipped: 1,
                ..Resources::default()
            },
            events: Events {
                total: 3,
                success: 1,
                failure: 2,
                noop: 0,
            },
            changes_total: 1,
            time_total_ms: Some(22),
            config_version: Some("1795563418".into()),
            puppet_version: Some("7.23.0".into()),
            last_run: Some(1795563418),
        }
    );
}

#[test]
fn summary_of_dependency_cycle() {
    // The catalog compiled but was never applied: the time section has no catalog_application.
    assert_eq!(
        summary("cycle"),
        Summary {
            resources: Resources {
                total: 2,
                failed: 2,
                out_of_sync: 2,
                ..Resources::default()
            },
            events: Events {
                total: 2,
                failure: 2,
                ..Events::default()
            },
            changes_total: 0,
            time_total_ms: Some(4),
            config_version: Some("1795563422".into()),
            puppet_version: Some("7.23.0".into()),
            last_run: Some(1795563422),
        }
    );
}

#[test]
fn report_of_noop_run_with_pending_changes() {
    let r = report("noop_pending");
    assert_eq!(r.status.as_deref(), Some("unchanged"));
    assert_eq!(r.noop, Some(true));
    assert_eq!(r.noop_pending, Some(true));
    assert_eq!(
        r.events,
        vec![
            // The desired checksum is written as untagged base64 by Puppet 7: decoded here.
            event(
                "File[/tmp/pp/t/f]",
                Some("content"),
                Some(OLD_SUM),
                Some(NEW_SUM),
                "noop",
                &format!("current_value '{OLD_SUM}', should be '{NEW_SUM}' (noop)"),
            ),
            event(
                "File[/tmp/pp/t/g]",
                Some("mode"),
                Some("0644"),
                Some("0600"),
                "noop",
                "current_value '0644', should be '0600' (noop)",
            ),
            event(
                "File[/tmp/pp/t/h]",
                Some("ensure"),
                Some("absent"),
                Some("file"),
                "noop",
                "current_value 'absent', should be 'file' (noop)",
            ),
        ]
    );
    assert!(r.errors.is_empty());
    assert_eq!(r.logs.len(), 7);
    assert_eq!(r.logs[0].level, "notice");
    assert_eq!(
        r.logs[0].source,
        "/Stage[main]/Main/File[/tmp/pp/t/f]/content"
    );
    assert_eq!(
        r.logs[6].time.as_deref(),
        Some("2026-11-24T23:36:50.466784737+00:00")
    );
}

#[test]
fn report_of_run_with_changes() {
    let r = report("changed");
    assert_eq!(r.status.as_deref(), Some("changed"));
    assert_eq!(r.noop, Some(false));
    assert_eq!(r.noop_pending, Some(false));
    assert_eq!(
        r.events,
        vec![
            event(
                "File[/tmp/pp/t/f]",
                Some("content"),
                Some(OLD_SUM),
                Some(NEW_SUM),
                "success",
                &format!("content changed '{OLD_SUM}' to '{NEW_SUM}'"),
            ),
            event(
                "File[/tmp/pp/t/g]",
                Some("mode"),
                Some("0644"),
                Some("0600"),
                "success",
                "mode changed '0644' to '0600'",
            ),
            event(
                "File[/tmp/pp/t/h]",
                Some("ensure"),
                Some("absent"),
                Some("file"),
                "success",
                "defined content as \
                 '{sha256}5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03'",
            ),
        ]
    );
    assert!(r.errors.is_empty());
}

#[test]
fn report_of_unchanged_run() {
    // This report also holds a status under an explicit `? ` key (the long exec title).
    let text = read("unchanged", "last_run_report.yaml");
    assert!(text.contains("\n  ? Exec[check-xxx"));
    let r = parse_report(&text).expect("report parses");
    assert_eq!(r.status.as_deref(), Some("unchanged"));
    assert_eq!(r.noop, Some(false));
    assert_eq!(r.noop_pending, Some(false));
    assert!(r.events.is_empty());
    assert!(r.errors.is_empty());
    assert!(diffs(&r.logs).is_empty());
    assert_eq!(r.logs.len(), 1);
    assert_eq!(r.logs[0].message, "Applied catalog in 0.02 seconds");
}

const MISSING_DIR_ERROR: &str = "Could not set 'file' on ensure: No such file or directory - A \
    directory component in /tmp/pp/t/missing-dir/x20261124-30281-rj5kzd.lock does not exist or \
    is a dangling symbolic link";

#[test]
fn report_of_run_with_failing_resources() {
    let r = report("failed");
    assert_eq!(r.status.as_deref(), Some("failed"));
    assert_eq!(r.noop, Some(false));
    let set_failed = format!("{MISSING_DIR_ERROR} (file: /tmp/pp/failing.pp, line: 3)");
    assert_eq!(
        r.events,
        vec![
            event(
                "File[/tmp/pp/t/ok]",
                Some("ensure"),
                Some("absent"),
                Some("file"),
                "success",
                "defined content as \
                 '{sha256}dc51b8c96c2d745df3bd5590d990230a482fd247123599548e0632fdbf97fc22'",
            ),
            // `returns` wants the array ['0']: rendered joined.
            event(
                "Exec[false-cmd]",
                Some("returns"),
                Some("notrun"),
                Some("0"),
                "failure",
                "change from 'notrun' to ['0'] failed: '/bin/false' returned 1 instead of one of [0]",
            ),
            event(
                "File[/tmp/pp/t/missing-dir/x]",
                Some("ensure"),
                Some("absent"),
                Some("file"),
                "failure",
                &format!("change from 'absent' to 'file' failed: {set_failed}"),
            ),
        ]
    );
    assert_eq!(
        r.errors,
        vec![
            "'/bin/false' returned 1 instead of one of [0]".to_string(),
            "change from 'notrun' to ['0'] failed: '/bin/false' returned 1 instead of one of [0]"
                .to_string(),
            set_failed.clone(),
            format!(
                "{set_failed}\nWrapped exception:\n{}",
                MISSING_DIR_ERROR.trim_start_matches("Could not set 'file' on ensure: ")
            ),
            format!("change from 'absent' to 'file' failed: {set_failed}"),
        ]
    );
    // The skipped notify has no event, only a warning in the log.
    let warnings: Vec<_> = r.logs.iter().filter(|l| l.level == "warning").collect();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].source, "/Stage[main]/Main/Notify[after]");
    assert_eq!(
        warnings[0].message,
        "Skipping because of failed dependencies"
    );
}

#[test]
fn report_of_dependency_cycle() {
    let r = report("cycle");
    assert_eq!(r.status.as_deref(), Some("failed"));
    let cycle_event = |name: &str| {
        event(
            name,
            None,
            None,
            None,
            "failure",
            "resource is part of a dependency cycle",
        )
    };
    assert_eq!(
        r.events,
        vec![cycle_event("Notify[a]"), cycle_event("Notify[b]")]
    );
    assert_eq!(
        r.errors,
        vec![
            "Found 1 dependency cycle:\n(Notify[a] => Notify[b] => Notify[a])\\nTry the \
             '--graph' option and opening the resulting '.dot' file in OmniGraffle or GraphViz"
                .to_string(),
            "Failed to apply catalog: One or more resource dependency cycles detected in graph"
                .to_string(),
        ]
    );
}

#[test]
fn compile_error_leaves_only_the_log() {
    assert!(!path("compile_error", "last_run_summary.yaml").exists());
    assert!(!path("compile_error", "last_run_report.yaml").exists());
    let log = parse_log_jsonl(&read("compile_error", "log.jsonl"));
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].level, "err");
    assert_eq!(log[1].source, "Puppet");
    assert_eq!(
        log[1].time.as_deref(),
        Some("2026-11-24T23:37:00.518107250+00:00")
    );
    assert_eq!(
        errors(&log),
        vec![
            FACTER_NOISE.to_string(),
            "Syntax error at end of input".to_string()
        ]
    );
    assert!(diffs(&log).is_empty());
}

#[test]
fn jsonl_logs_parse_every_line() {
    for (run, lines) in [
        ("noop_pending", 9),
        ("changed", 7),
        ("unchanged", 3),
        ("failed", 11),
        ("cycle", 4),
        ("compile_error", 2),
    ] {
        let text = read(run, "log.jsonl");
        assert_eq!(text.lines().count(), lines, "{run}");
        let log = parse_log_jsonl(&text);
        assert_eq!(log.len(), lines, "{run}");
        assert_eq!(log[0].message, FACTER_NOISE, "{run}");
        assert_eq!(log[0].source, "Facter", "{run}");
    }
}

#[test]
fn jsonl_errors_are_the_reports_plus_pre_run_ones() {
    for run in ["failed", "cycle"] {
        let from_log = errors(&parse_log_jsonl(&read(run, "log.jsonl")));
        let mut expected = vec![FACTER_NOISE.to_string()];
        expected.extend(report(run).errors);
        assert_eq!(from_log, expected, "{run}");
    }
}

#[test]
fn content_diffs_are_found_and_normalized() {
    let expected = vec![FileDiff {
        resource: "File[/tmp/pp/t/f]".into(),
        diff: F_DIFF.into(),
    }];
    for run in ["noop_pending", "changed"] {
        let raw = read(run, "log.jsonl");
        // Puppet's headers carry a temporary file name that differs between the two runs.
        assert!(raw.contains("+++ /tmp/puppet-file2026"), "{run}");
        assert_eq!(diffs(&parse_log_jsonl(&raw)), expected, "{run} jsonl");
        assert_eq!(diffs(&report(run).logs), expected, "{run} report");
    }
    for run in ["unchanged", "failed", "cycle"] {
        assert!(diffs(&parse_log_jsonl(&read(run, "log.jsonl"))).is_empty());
    }
}

#[test]
fn a_summary_without_events_means_a_report_without_events() {
    // capo skips parsing the report when the summary has no events; these real runs show
    // that the two agree, both ways.
    for run in ["changed", "unchanged", "failed", "noop_pending", "cycle"] {
        let (s, r) = (summary(run), report(run));
        assert_eq!(s.has_events(), !r.events.is_empty(), "{run}");
    }
}

#[test]
fn the_quick_event_reader_finds_what_the_full_parse_finds() {
    for run in ["changed", "unchanged", "failed", "noop_pending", "cycle"] {
        let text = read(run, "last_run_report.yaml");
        assert_eq!(
            capo_puppet::parse_report_events(&text).expect("parses"),
            report(run).events,
            "{run}"
        );
    }
}
