//! The engine: one task per host, every step over that host's one SSH connection, bounded
//! concurrency, deadlines, locking, interruption, and events out. It never formats anything
//! for people.
//!
//! - `options`: what a caller passes in, and the stop channel's waits;
//! - `scheduler`: batches, canary, failure budget, pause and confirm, stop;
//! - `connector`: the run's one way to reach hosts (shared files today; agent, bastions);
//! - `host`: the per-host runner (connect, lock, run a step, kill, logs, outcome);
//! - `jobs`: what runs on a connected host, a module per job (rollout, plan, exec).

mod connector;
mod host;
mod jobs;
mod options;
mod scheduler;

pub use connector::connect_config;
pub use host::safe_dir_name;
pub use options::{Confirm, EngineOptions, RunMode, Stop};
pub use scheduler::run;

/// Bytes of each stream kept in memory for the report; the rest is only in the log files.
pub const DEFAULT_TAIL_BYTES: usize = 64 * 1024;
