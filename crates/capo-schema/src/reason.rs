//! Why a run stopped starting hosts or cut them short, as types; their `Display` is the one
//! wording of each, used in host error messages, the report's `halted` field and the terminal.

use std::fmt;
use std::time::Duration;

use capo_inventory::fold::fold_to_string;

use crate::{ErrorKind, Signal};

/// Why the controller asked the engine to stop (sent to it by the binary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The first SIGINT or SIGTERM: start no new host, let hosts in flight finish.
    Signal(Signal),
    /// A signal after the first one (of either kind): stop hosts in flight now.
    SecondSignal(Signal),
    /// The grace period hosts in flight had after the first signal ran out: stop them now.
    GraceExpired {
        /// The first signal.
        signal: Signal,
        /// How long the hosts had (`--grace`).
        grace: Duration,
    },
}

impl StopReason {
    /// The kind of error of a host this stop kept from starting or cut short.
    pub fn error_kind(self) -> ErrorKind {
        ErrorKind::Interrupted
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Signal(signal) => write!(f, "interrupted by {signal}"),
            StopReason::SecondSignal(signal) => write!(f, "interrupted by a second {signal}"),
            StopReason::GraceExpired { signal, grace } => write!(
                f,
                "interrupted by {signal}; the grace period of {} ran out",
                capo_inventory::duration::format(*grace)
            ),
        }
    }
}

/// Why the engine itself stopped starting hosts (the report's `halted`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaltReason {
    /// A host of the canary batch failed ([`crate::HostStatus::is_failure`]).
    CanaryFailed {
        /// The canary hosts that failed, in the order they finished.
        hosts: Vec<String>,
    },
    /// More hosts failed than `--max-failures` allows
    /// ([`crate::HostStatus::counts_against_budget`]).
    FailureBudget {
        /// Hosts failed when the budget ran out.
        failures: usize,
        /// Hosts allowed to fail.
        allowed: usize,
    },
    /// The operator did not confirm a batch (`--confirm`).
    NotConfirmed {
        /// The batch's 0-based index (the canary is batch 0 when there is one); people are
        /// shown it counted from 1.
        batch: usize,
    },
}

impl HaltReason {
    /// The kind of error of a host this halt kept from starting.
    pub fn error_kind(&self) -> ErrorKind {
        ErrorKind::Aborted
    }
}

impl fmt::Display for HaltReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HaltReason::CanaryFailed { hosts } => {
                write!(f, "the canary failed ({})", fold_to_string(hosts))
            }
            HaltReason::FailureBudget { failures, allowed } => write!(
                f,
                "stopped after {failures} failure{} (more than {allowed} allowed)",
                if *failures == 1 { "" } else { "s" }
            ),
            HaltReason::NotConfirmed { batch } => {
                write!(f, "batch {} was not confirmed", batch + 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_are_worded_as_before() {
        let cases = [
            (StopReason::Signal(Signal::Int), "interrupted by SIGINT"),
            (StopReason::Signal(Signal::Term), "interrupted by SIGTERM"),
            (
                StopReason::SecondSignal(Signal::Int),
                "interrupted by a second SIGINT",
            ),
            (
                StopReason::GraceExpired {
                    signal: Signal::Int,
                    grace: Duration::from_secs(2),
                },
                "interrupted by SIGINT; the grace period of 2s ran out",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
            assert_eq!(reason.error_kind(), ErrorKind::Interrupted);
        }
    }

    #[test]
    fn halt_reasons_are_worded_as_before() {
        let cases = [
            (
                HaltReason::CanaryFailed {
                    hosts: vec!["host01".into(), "host02".into()],
                },
                "the canary failed (host[01-02])",
            ),
            (
                HaltReason::FailureBudget {
                    failures: 1,
                    allowed: 0,
                },
                "stopped after 1 failure (more than 0 allowed)",
            ),
            (
                HaltReason::FailureBudget {
                    failures: 2,
                    allowed: 1,
                },
                "stopped after 2 failures (more than 1 allowed)",
            ),
            (
                HaltReason::NotConfirmed { batch: 2 },
                "batch 3 was not confirmed",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
            assert_eq!(reason.error_kind(), ErrorKind::Aborted);
        }
    }
}
