//! Parsers for the files a masterless `puppet apply` run leaves behind, so capo can say what
//! Puppet did (or would do, under `--noop`) on each host:
//!
//! - [`parse_summary`]: `last_run_summary.yaml` (`--lastrunfile`), the run's counters.
//! - [`parse_report`]: `last_run_report.yaml` (`--lastrunreport`), every resource event plus the
//!   run's log.
//! - [`parse_log_jsonl`] and [`diffs`]: the JSON-lines log (`--logdest FILE.jsonl`), from which
//!   the `--show_diff` content diffs are pulled.
//!
//! Everything parsed here is output of a remote host and is treated as untrusted: the parsers
//! never panic, reject input nested deeper than [`MAX_DEPTH`] and larger than
//! [`MAX_INPUT_BYTES`], and run in time linear in the input.
//!
//! Things worth knowing about Puppet 7 when using these (all seen in `tests/fixtures/`):
//! - A compile failure (syntax error, `fail()`) writes neither the summary nor the report: the
//!   files on disk are the previous run's. Compare [`Summary::last_run`] with the run's start,
//!   or remove the files first, and read the error from the log.
//! - Under `--noop`, `--detailed-exitcodes` exits 0 and the report's status is `unchanged` even
//!   with changes pending; look at [`Report::noop_pending`], [`Resources::out_of_sync`] or
//!   [`Events::noop`] instead.

#![warn(missing_docs)]

mod log;
mod report;
mod summary;
mod value;
mod yaml;

pub use log::{diffs, errors, parse_log_jsonl, FileDiff, LogEntry};
pub use report::{parse_report, parse_report_events, Report, ResourceEvent};
pub use summary::{parse_summary, Events, Resources, Summary};

/// Deepest nesting of YAML collections accepted. Puppet's own files stay under 10 levels; the cap
/// exists so hostile input gets an error instead of exhausting the stack.
pub const MAX_DEPTH: usize = 64;

/// Largest YAML input accepted, in bytes. Reports of big catalogs run to a few MB; the cap keeps
/// the parser's node and event budgets (which scale with the input) bounded.
pub const MAX_INPUT_BYTES: usize = 256 * 1024 * 1024;

/// Why a summary or report could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The input is empty or only whitespace (e.g. a file truncated by a full disk).
    #[error("input is empty")]
    Empty,
    /// The input is larger than [`MAX_INPUT_BYTES`].
    #[error("input is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Size of the input.
        len: usize,
        /// The limit, [`MAX_INPUT_BYTES`].
        max: usize,
    },
    /// The input nests collections deeper than [`MAX_DEPTH`].
    #[error("input nests deeper than {max} levels")]
    TooDeep {
        /// The limit, [`MAX_DEPTH`].
        max: usize,
    },
    /// The input is not YAML, or its values do not have the types Puppet writes.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// The input is a YAML document but has none of the keys of the expected Puppet file.
    #[error("not a Puppet {expected}: none of its top-level keys are present")]
    NotPuppet {
        /// What was expected: `"last run summary"` or `"report"`.
        expected: &'static str,
    },
}
