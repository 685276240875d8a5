//! capo's engine: runs one job (rollout, plan, exec) across the selected hosts.
//!
//! Data flows one way: selected inventory hosts go in, the engine runs one task per host with
//! every step over that host's single SSH connection, bounded concurrency, deadlines, locking
//! and interruption, and [`Event`]s come out. Reporters turn events into tables and files; the
//! engine itself never formats output for people.
//!
//! - `options`: what a caller passes in ([`EngineOptions`], [`RunMode`], [`Stop`]);
//! - `scheduler`: batches, canary, failure budget, pause and confirm, stop ([`run`]);
//! - `connector`: the run's one way to reach hosts (shared files today; agent, bastions);
//! - `host`: the per-host runner (connect, lock, run a step, kill, logs, outcome);
//! - `jobs`: what runs on a connected host, a module per job (rollout, plan, exec);
//! - [`steps`]: which host-side script each step runs, and how its failures read;
//! - `remote`: every command sent to a host, as the login user or through sudo.

pub mod capture;
mod connector;
pub mod event;
mod host;
pub mod inline;
mod jobs;
mod options;
pub mod outcome;
mod remote;
mod scheduler;
pub mod steps;
pub mod strategy;

/// Bytes of each stream kept in memory for the report; the rest is only in the log files.
pub const DEFAULT_TAIL_BYTES: usize = 64 * 1024;

pub use capo_schema as schema;
pub use capo_schema::{ErrorKind, HaltReason, HostStatus, Mode, Signal, StepName, StopReason};
pub use connector::connect_config;
pub use event::{Event, RunMeta};
pub use host::safe_dir_name;
pub use options::{Confirm, EngineOptions, PullAction, RunMode, Stop};
pub use outcome::{HostError, HostOutcome, HostTiming, Incoming, PuppetResult, StepRecord};
pub use remote::BecomePassword;
pub use scheduler::run;
pub use strategy::Strategy;
