//! capo's engine: runs one job (rollout, plan, exec) across the selected hosts.
//!
//! Data flows one way: selected inventory hosts go in, the engine runs one task per host with
//! every step over that host's single SSH connection, and [`Event`]s come out. Reporters turn
//! events into tables and files; the engine itself never formats output for people.

pub mod capture;
pub mod engine;
pub mod event;
pub mod outcome;
pub mod shell;
pub mod steps;
pub mod strategy;

pub use capo_schema as schema;
pub use capo_schema::{ErrorKind, HaltReason, HostStatus, Mode, Signal, StepName, StopReason};
pub use engine::{run, Confirm, EngineOptions, RunMode, Stop, DEFAULT_TAIL_BYTES};
pub use event::{Event, RunMeta};
pub use outcome::{HostError, HostOutcome, Incoming, PuppetResult, StepRecord};
pub use strategy::Strategy;
