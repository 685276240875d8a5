//! `docs/report-schema.md` names every word the enums have, each where a reader looks for it.

use crate::{ErrorKind, HostStatus, Mode, Signal, StepName};

const DOC: &str = include_str!("../../../docs/report-schema.md");

/// The first line of the document that starts with `prefix`.
fn line(prefix: &str) -> &'static str {
    DOC.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("docs/report-schema.md has no line starting with {prefix:?}"))
}

/// The words of `all` that `text` does not name in backticks.
fn missing<T: std::fmt::Display>(all: &[T], text: &str) -> Vec<String> {
    all.iter()
        .map(|w| format!("`{w}`"))
        .filter(|w| !text.contains(w.as_str()))
        .collect()
}

#[test]
fn the_schema_doc_lists_every_status() {
    let row = line("| `status` |");
    assert_eq!(missing(HostStatus::ALL, row), Vec::<String>::new(), "{row}");
    let summary = line("| `summary` |");
    assert_eq!(
        missing(HostStatus::ALL, summary),
        Vec::<String>::new(),
        "{summary}"
    );
}

#[test]
fn the_schema_doc_lists_every_error_kind() {
    let undocumented: Vec<&str> = ErrorKind::ALL
        .iter()
        .map(|k| k.as_str())
        .filter(|k| !DOC.lines().any(|l| l.starts_with(&format!("| `{k}` |"))))
        .collect();
    assert_eq!(
        undocumented,
        Vec::<&str>::new(),
        "error kinds without a row in the `error.kind` table"
    );
}

#[test]
fn the_schema_doc_lists_every_step_mode_and_signal() {
    let steps = line("Per step:");
    assert_eq!(
        missing(StepName::ALL, steps),
        Vec::<String>::new(),
        "{steps}"
    );
    let mode = line("| `mode` |");
    assert_eq!(missing(Mode::ALL, mode), Vec::<String>::new(), "{mode}");
    let interrupted = line("| `interrupted` |");
    assert_eq!(
        missing(Signal::ALL, interrupted),
        Vec::<String>::new(),
        "{interrupted}"
    );
}
