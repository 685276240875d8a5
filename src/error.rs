//! The binary's one error type: everything that ends a command before or instead of a run's
//! own verdict, or that makes a finished run exit 1 (an output file not written).
//!
//! Each message is printed once, as `capo: <message>`, by [`print`]; scripts and tests match
//! these lines, so their wording is part of capo's interface. The libraries' errors keep
//! their own text (an inventory error already says `file:line:col`).

use std::path::PathBuf;

use crate::exit;
use crate::select::RerunError;

/// Why a command could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The inventory could not be read or is invalid.
    #[error(transparent)]
    Inventory(#[from] capo_inventory::InventoryError),
    /// `--limit` is malformed or selects nothing.
    #[error(transparent)]
    Limit(#[from] capo_inventory::SelectError),
    /// `--rerun` cannot select from an earlier run.
    #[error(transparent)]
    Rerun(#[from] RerunError),
    /// `--shard auto/N` without a usable job index.
    #[error(transparent)]
    Shard(#[from] capo_inventory::shard::ShardError),
    /// `capo report merge`: the parts cannot be read or do not belong together.
    #[error(transparent)]
    Merge(#[from] capo_report::merge::MergeError),
    /// `capo runs`: the run history cannot be read or pruned, or has no such run.
    #[error(transparent)]
    Runs(#[from] crate::history::HistoryError),
    /// `--confirm` with nobody to answer: refused rather than hang.
    #[error("--confirm needs a terminal (stdin and stderr); run without --confirm in CI")]
    ConfirmWithoutTerminal,
    /// `--ask-become-pass` with nobody to answer: refused before any host is contacted.
    #[error("--ask-become-pass needs a terminal to ask for the sudo password on; without one, give the deploy user NOPASSWD sudo")]
    BecomePassWithoutTerminal,
    /// Ctrl-C at the sudo password prompt: nothing was contacted.
    #[error("interrupted at the sudo password prompt; no host was contacted")]
    BecomePassInterrupted,
    /// The sudo password could not be read from the terminal.
    #[error("cannot read the sudo password: {0}")]
    BecomePassRead(std::io::Error),
    /// Ctrl-C at a passphrase prompt: nothing was contacted.
    #[error("interrupted at the passphrase prompt; no host was contacted")]
    PassphraseInterrupted,
    /// The terminal could not be read for a passphrase.
    #[error("cannot read a passphrase from the terminal: {0}")]
    PassphraseRead(std::io::Error),
    /// `capo bootstrap` without `--repo`, for hosts without `repo_url`: refused before any
    /// host is contacted.
    #[error("capo bootstrap needs the URL to clone: give --repo URL or set repo_url in the inventory (not set for {hosts})")]
    NoRepoUrl {
        /// The selected hosts without `repo_url`, folded (`host[01-03]`).
        hosts: String,
    },
    /// `--events` names a file that cannot be created.
    #[error("cannot create event log {}: {source}", .path.display())]
    EventLog {
        /// The `--events` path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The run's directory under `--runs-dir` cannot be created.
    #[error("cannot create run directory {}: {source}", .path.display())]
    RunDir {
        /// The run directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The tokio runtime did not start (threads or file descriptors exhausted).
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The engine ended without its `run_finished` event (a bug).
    #[error("the run produced no report")]
    NoReport,
    /// `capo hosts --format json` could not encode the list (a bug).
    #[error("cannot encode host list: {0}")]
    EncodeHosts(serde_json::Error),
    /// `capo runs list --format json` could not encode the list (a bug).
    #[error("cannot encode run list: {0}")]
    EncodeRuns(serde_json::Error),
    /// `--format json` could not encode the report (a bug).
    #[error("cannot encode report: {0}")]
    EncodeReport(serde_json::Error),
    /// A JSON report or Markdown summary file could not be written.
    #[error(transparent)]
    Write(#[from] capo_report::json::WriteError),
    /// The JUnit file could not be written.
    #[error(transparent)]
    Junit(#[from] capo_report::JunitError),
    /// What a command prints could not be written to stdout (a closed pipe, a full disk).
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
}

impl Error {
    /// The exit status this error ends capo with: [`exit::USAGE`] for what the operator can
    /// fix on the command line or in the inventory before anything ran, [`exit::FAILURE`]
    /// for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Inventory(_)
            | Error::Limit(_)
            | Error::Rerun(_)
            | Error::Shard(_)
            | Error::Merge(_)
            | Error::ConfirmWithoutTerminal
            | Error::BecomePassWithoutTerminal
            | Error::BecomePassRead(_)
            | Error::NoRepoUrl { .. }
            | Error::EventLog { .. } => exit::USAGE,
            Error::Runs(e) if e.is_usage() => exit::USAGE,
            Error::PassphraseInterrupted | Error::BecomePassInterrupted => exit::INTERRUPTED,
            Error::RunDir { .. }
            | Error::Runs(_)
            | Error::PassphraseRead(_)
            | Error::Runtime(_)
            | Error::NoReport
            | Error::EncodeHosts(_)
            | Error::EncodeRuns(_)
            | Error::EncodeReport(_)
            | Error::Write(_)
            | Error::Junit(_)
            | Error::Stdout(_) => exit::FAILURE,
        }
    }
}

/// Prints an error (or a warning worded as one) the way capo prints every message on stderr.
pub fn print(error: &Error) {
    eprintln!("capo: {error}");
}
