//! Events the engine emits as a run goes; reporters subscribe to these and nothing else.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use capo_schema::{HaltReason, Mode};

use crate::outcome::{HostOutcome, StepName, StepRecord};

/// Facts about the run that reporters print but the engine does not need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMeta {
    /// Unique id of the run (also the run directory's name).
    pub run_id: String,
    /// Which command.
    pub mode: Mode,
    /// The inventory file, as given.
    pub inventory: PathBuf,
    /// The --limit expression, if any.
    pub limit: Option<String>,
    /// Where per-host output is written.
    pub run_dir: PathBuf,
    /// `--rev`, as given.
    pub target_rev: Option<String>,
}

/// One thing that happened during a run, in the order it happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// The run begins with these hosts, in order.
    RunStarted {
        /// Run facts.
        meta: RunMeta,
        /// Selected host names in inventory order.
        hosts: Vec<String>,
        /// Wall-clock start.
        started_at: DateTime<Utc>,
    },
    /// A host got a concurrency slot and is being connected to.
    HostStarted {
        /// Host name.
        host: String,
    },
    /// A step begins on a host.
    StepStarted {
        /// Host name.
        host: String,
        /// The step.
        step: StepName,
    },
    /// A chunk of a step's output (only with `EngineOptions::stream_output`); raw bytes, not
    /// line-aligned, capo's marker lines included.
    Output {
        /// Host name.
        host: String,
        /// The step.
        step: StepName,
        /// `true` for stderr.
        stderr: bool,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// A step ended (in any way).
    StepFinished {
        /// Host name.
        host: String,
        /// What it did (boxed: it holds the output tails).
        record: Box<StepRecord>,
    },
    /// A host has its final status.
    HostFinished {
        /// Everything about the host (boxed: it is much larger than the other events).
        outcome: Box<HostOutcome>,
    },
    /// A batch (the canary is batch 0 when there is one) starts.
    BatchStarted {
        /// 0-based index.
        index: usize,
        /// Its hosts, in order.
        hosts: Vec<String>,
    },
    /// Every host of a batch has finished.
    BatchFinished {
        /// 0-based index.
        index: usize,
    },
    /// Every host has finished.
    RunFinished {
        /// Wall-clock end.
        finished_at: DateTime<Utc>,
        /// Monotonic duration of the run.
        duration: Duration,
        /// Why the run stopped starting hosts early (canary, failure budget, a batch not
        /// confirmed), if it did.
        halted: Option<HaltReason>,
    },
}
