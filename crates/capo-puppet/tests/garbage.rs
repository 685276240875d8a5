//! Untrusted input: whatever a host sends back, the parsers return (usually an error) and never
//! panic.

use capo_puppet::{diffs, errors, parse_log_jsonl, parse_report, parse_summary};
use proptest::prelude::*;

/// Keys whose presence lets a document pass as a summary or report; input without any of them
/// must be rejected.
const SUMMARY_KEYS: &[&str] = &["version", "resources", "events", "changes", "time"];
const REPORT_KEYS: &[&str] = &[
    "status",
    "resource_statuses",
    "report_format",
    "puppet_version",
    "logs",
];

fn mentions_any(text: &str, keys: &[&str]) -> bool {
    keys.iter().any(|k| text.contains(k))
}

fn check(text: &str) {
    let summary = parse_summary(text);
    if !mentions_any(text, SUMMARY_KEYS) {
        assert!(summary.is_err(), "accepted as summary: {text:?}");
    }
    let report = parse_report(text);
    if !mentions_any(text, REPORT_KEYS) {
        assert!(report.is_err(), "accepted as report: {text:?}");
    }
    if let Ok(report) = report {
        let _ = diffs(&report.logs);
    }
    let log = parse_log_jsonl(text);
    let _ = (diffs(&log), errors(&log));
}

const REPORT: &str = include_str!("fixtures/failed/last_run_report.yaml");
const SUMMARY: &str = include_str!("fixtures/failed/last_run_summary.yaml");
const LOG: &str = include_str!("fixtures/noop_pending/log.jsonl");

proptest! {
    #[test]
    fn arbitrary_strings(text in any::<String>()) {
        check(&text);
    }

    /// Strings made of YAML's syntax characters reach deeper into the parser than random text.
    #[test]
    fn yaml_like_strings(text in r##"([-:?!&*|>'"#%@`,\[\]{} \n\t]|status|time|logs|!ruby/sym |!binary |[a-z0-9]){0,120}"##) {
        check(&text);
    }

    /// Real files cut short (a dropped connection) or with a byte replaced.
    #[test]
    fn damaged_fixtures(cut in 0usize..12_000, at in 0usize..12_000, byte in any::<u8>()) {
        for original in [REPORT, SUMMARY, LOG] {
            let mut bytes = original.as_bytes().to_vec();
            if let Some(slot) = bytes.get_mut(at) {
                *slot = byte;
            }
            bytes.truncate(cut);
            check(&String::from_utf8_lossy(&bytes));
        }
    }
}
