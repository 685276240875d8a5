//! capo's vocabulary and the schema of its JSON report, apart from the engine that produces
//! them and the reporters that show them (as nextest keeps `nextest-metadata` apart from its
//! runner).
//!
//! Every word capo writes into a report, an event or a table is defined here once: host
//! [`HostStatus`]es, error [`ErrorKind`]s, [`StepName`]s, run [`Mode`]s and [`Signal`]s, each
//! with `ALL`, `as_str`, `Display` and `FromStr` that agree with its serde form. Which
//! statuses count as a failure is decided here too ([`HostStatus::is_failure`]), the
//! [`Report`]'s [`Summary`] is counted from the enum, and why a run stopped is typed
//! ([`StopReason`], [`HaltReason`]) and worded here, once.
//!
//! `docs/report-schema.md` documents the report; a unit test fails when it misses a word one
//! of these enums has.

#![warn(missing_docs)]

mod reason;
pub mod report;
pub mod status;
mod words;

pub use reason::{HaltReason, StopReason};
pub use report::{
    BecomeReport, CheckReport, DiffReport, DisabledReport, ErrorReport, EventReport, HostKeyReport,
    HostReport, HostStateReport, HostTiming, IdentityReport, IncomingReport, LastRunReport,
    LockHeld, LockReport, PartReport, PinReport, PullReport, PuppetReport, PuppetSummaryReport,
    PuppetfileReport, RepoReport, Report, RevisionCount, ShardReport, StepReport, Summary, SCHEMA,
};
pub use status::{StatusDocument, StatusHost, STATUS_SCHEMA};
pub use words::{
    DisabledBy, ErrorKind, HostKeyTrust, HostState, HostStatus, IdentitySource, LockState, Mode,
    RepoState, Signal, StepName, UnknownWord,
};

#[cfg(test)]
mod doc_tests;
