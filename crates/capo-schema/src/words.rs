//! The words: each enum's variants, their one spelling, and what they mean to capo.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A word that is not one of an enum's spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{word}` (expected one of: {})", .expected.join(", "))]
pub struct UnknownWord {
    /// What was being parsed, e.g. `host status`.
    pub what: &'static str,
    /// The text given.
    pub word: String,
    /// Every accepted spelling.
    pub expected: Vec<&'static str>,
}

/// Defines a fieldless enum whose variants each have exactly one spelling, used by serde,
/// `as_str`, `Display` and `FromStr` alike.
macro_rules! words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The one spelling, as reports, events and tables write it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownWord {
                        what: $what,
                        word: s.to_string(),
                        expected: $name::ALL.iter().map(|v| v.as_str()).collect(),
                    })
            }
        }
    };
}

words! {
    /// The final status of one host in a run.
    pub enum HostStatus ("host status") {
        /// Puppet ran and changed nothing (exit 0).
        Unchanged = "unchanged",
        /// Puppet ran and changed resources (exit 2).
        Changed = "changed",
        /// The host was reached but a step failed.
        Failed = "failed",
        /// The host could not be connected to (network, host key, authentication).
        Unreachable = "unreachable",
        /// The host was never started (the run was interrupted or stopped early).
        Skipped = "skipped",
        /// The host was started but its work was cut short (second interrupt, grace period over).
        Cancelled = "cancelled",
        /// Plan only: Puppet would change resources (a `--noop` run found them out of sync).
        WouldChange = "would_change",
        /// The checkout is already past the target revision; capo left it alone.
        Ahead = "ahead",
        /// Exec only: the command exited 0.
        Ok = "ok",
        /// The host is disabled (`capo disable`, or Puppet's `puppet agent --disable`): a
        /// rollout left it alone, as pull mode does.
        Disabled = "disabled",
        /// Bootstrap only: capo cloned the repo into `repo_dir` (installing git or Puppet
        /// first with `--install`), and a noop apply of it compiled.
        Bootstrapped = "bootstrapped",
        /// Bootstrap only: `repo_dir` already is a checkout of the repo; nothing was changed.
        Already = "already",
    }
}

impl HostStatus {
    /// The order in which the live progress display shows counts: what went well, then what
    /// did not.
    pub const PROGRESS_ORDER: [HostStatus; 12] = [
        HostStatus::Changed,
        HostStatus::Unchanged,
        HostStatus::WouldChange,
        HostStatus::Ahead,
        HostStatus::Ok,
        HostStatus::Disabled,
        HostStatus::Bootstrapped,
        HostStatus::Already,
        HostStatus::Failed,
        HostStatus::Unreachable,
        HostStatus::Skipped,
        HostStatus::Cancelled,
    ];

    /// Whether the host failed: it was started and did not do its work, through a fault of
    /// the host, the network, or being cut short (`failed`, `unreachable`, `cancelled`).
    ///
    /// This is capo's one definition of a failed host: a canary host that fails halts the run,
    /// JUnit reports it as a failure, and the Markdown verdict counts it. A `skipped` host is
    /// not a failure (nothing was tried on it), but it does fail the run: see
    /// [`HostStatus::fails_run`].
    pub fn is_failure(self) -> bool {
        match self {
            HostStatus::Failed | HostStatus::Unreachable | HostStatus::Cancelled => true,
            HostStatus::Unchanged
            | HostStatus::Changed
            | HostStatus::Skipped
            | HostStatus::WouldChange
            | HostStatus::Ahead
            | HostStatus::Ok
            | HostStatus::Disabled
            | HostStatus::Bootstrapped
            | HostStatus::Already => false,
        }
    }

    /// Whether this host makes the run exit 1: a failure, or a host never started (the run
    /// did not bring it where it was asked to).
    pub fn fails_run(self) -> bool {
        self.is_failure() || self == HostStatus::Skipped
    }

    /// Whether this host uses up the failure budget (`--max-failures`): `failed` or
    /// `unreachable`. A `cancelled` host is a failure but does not count here: it was cut short
    /// by the operator (a second signal, or the grace period ran out), which says nothing of
    /// the fleet's health, and by then no host is started anyway.
    pub fn counts_against_budget(self) -> bool {
        matches!(self, HostStatus::Failed | HostStatus::Unreachable)
    }

    /// Sort key for listing hosts worst first (the Markdown host table): failures, then hosts
    /// never started, then what ran, then what moved; `unchanged` last.
    pub fn severity(self) -> u8 {
        match self {
            HostStatus::Failed => 0,
            HostStatus::Unreachable => 1,
            HostStatus::Cancelled => 2,
            HostStatus::Skipped => 3,
            HostStatus::Disabled => 4,
            HostStatus::Ok => 5,
            HostStatus::Bootstrapped => 6,
            HostStatus::Changed => 7,
            HostStatus::WouldChange => 8,
            HostStatus::Ahead => 9,
            HostStatus::Already => 10,
            HostStatus::Unchanged => 11,
        }
    }
}

words! {
    /// Why a host failed, was unreachable, or was not started or finished.
    pub enum ErrorKind ("error kind") {
        /// TCP connect, SSH handshake, or the connection dropping.
        Connect = "connect",
        /// The host key is unknown, changed or revoked.
        HostKey = "host_key",
        /// A jump host (`jump`) could not be reached, failed its host key check or
        /// authentication, refused to forward (unreachable), or its connection ended while a
        /// step ran through it (failed); the message names the jump host.
        Jump = "jump",
        /// The server refused every key (unreachable), or sudo refused to run capo's commands
        /// (`become = "sudo"`: a password it wants without `--ask-become-pass`, a wrong one,
        /// or its own error; failed, and nothing ran).
        Auth = "auth",
        /// Bringing the checkout to the wanted revision failed.
        Sync = "sync",
        /// Installing the Puppetfile's modules failed (or no installer is there).
        Modules = "modules",
        /// `puppet apply` failed.
        Puppet = "puppet",
        /// A step ran past `command_timeout`.
        Timeout = "timeout",
        /// Another capo run (or a pull-mode run) holds the host's lock.
        Locked = "locked",
        /// The host's lock cannot be taken there at all (no `flock`, a git directory the user
        /// cannot write), so the host did not run; `lock = false` opts out of locking.
        Lock = "lock",
        /// The run was interrupted (signal) before or while the host ran.
        Interrupted = "interrupted",
        /// The run stopped starting hosts: the canary failed, the failure budget ran out, or a
        /// batch was not confirmed.
        Aborted = "aborted",
        /// Exec only: the command exited non-zero.
        Command = "command",
        /// A fault inside capo itself (a bug); the message says what.
        Internal = "internal",
    }
}

words! {
    /// The steps capo runs on a host; the spelling is also the stem of their log files.
    pub enum StepName ("step") {
        /// Bring the checkout to the wanted revision.
        Sync = "sync",
        /// Install the modules the checkout's Puppetfile lists (r10k or g10k).
        Modules = "modules",
        /// Run `puppet apply`.
        Apply = "apply",
        /// Run `puppet apply --noop` on the target revision in a temporary copy.
        Plan = "plan",
        /// Run an ad-hoc command.
        Exec = "exec",
        /// Look at the host for `capo check`, changing nothing.
        Check = "check",
        /// Write the host's maintenance switch (`capo disable`).
        Disable = "disable",
        /// Remove it (`capo enable`).
        Enable = "enable",
        /// Clone the repo into an empty `repo_dir` and prove it compiles (`capo bootstrap`).
        Bootstrap = "bootstrap",
        /// Read the host's state for `capo status`, changing nothing.
        Status = "status",
        /// Install or remove pull mode (`capo pull install`, `capo pull remove`).
        Pull = "pull",
    }
}

words! {
    /// Which command produced the run.
    pub enum Mode ("mode") {
        /// `capo rollout`.
        Rollout = "rollout",
        /// `capo plan`.
        Plan = "plan",
        /// `capo exec`.
        Exec = "exec",
        /// `capo check`.
        Check = "check",
        /// `capo disable`.
        Disable = "disable",
        /// `capo enable`.
        Enable = "enable",
        /// `capo bootstrap`.
        Bootstrap = "bootstrap",
        /// `capo status`.
        Status = "status",
        /// `capo pull install` and `capo pull remove`.
        Pull = "pull",
    }
}

words! {
    /// Where a host stands (`capo status`), in the order operators triage: the first that
    /// applies.
    pub enum HostState ("host state") {
        /// Its last run failed.
        Failed = "failed",
        /// Runs are disabled there (`capo disable`, `puppet agent --disable`).
        Disabled = "disabled",
        /// A run holds its lock now.
        Running = "running",
        /// Its last run is older than the threshold (`--stale-after`).
        Stale = "stale",
        /// Its checkout is behind the remote branch.
        Behind = "behind",
        /// Its last run changed something.
        Changed = "changed",
        /// Its last run changed nothing.
        Ok = "ok",
        /// No run was ever recorded there.
        Never = "never",
    }
}

impl HostState {
    /// Whether the host needs no attention (`ok`, `changed`): `capo status` exits 0 when
    /// every host is.
    pub fn is_healthy(self) -> bool {
        matches!(self, HostState::Ok | HostState::Changed)
    }
}

words! {
    /// Who disabled a host.
    pub enum DisabledBy ("disabled by") {
        /// `capo disable` (the file `disabled` in the host's `state_dir`).
        Capo = "capo",
        /// `puppet agent --disable` (Puppet's `agent_disabled_lockfile`).
        Puppet = "puppet",
    }
}

words! {
    /// Where the identity the server accepted came from (`capo check`).
    pub enum IdentitySource ("identity source") {
        /// A key of the ssh-agent.
        Agent = "agent",
        /// An identity file.
        File = "file",
    }
}

words! {
    /// Why capo trusted a host's key (`capo check`).
    pub enum HostKeyTrust ("host key trust") {
        /// The key is listed in known_hosts.
        KnownHosts = "known_hosts",
        /// The host was new and its key was recorded (`host_key_check = "accept-new"`).
        AcceptedNew = "accepted_new",
        /// A host certificate signed by a CA that an `@cert-authority` line trusts.
        Certificate = "certificate",
        /// Not checked (`host_key_check = "off"`).
        Unchecked = "unchecked",
    }
}

words! {
    /// What is at a host's `repo_dir` (`capo check`).
    pub enum RepoState ("repo state") {
        /// The top of a git checkout.
        Checkout = "checkout",
        /// Nothing: `repo_dir` does not exist.
        Missing = "missing",
        /// Something that is not the top of a git checkout (or that git refuses to use,
        /// e.g. a checkout owned by another user).
        NotACheckout = "not_a_checkout",
        /// Not known: git is not installed.
        Unknown = "unknown",
    }
}

words! {
    /// The state of a host's capo lock (`capo check`).
    pub enum LockState ("lock state") {
        /// No run holds it: a rollout could take it now.
        Free = "free",
        /// Another run holds it (`holder` says which).
        Held = "held",
        /// No run holds it, but a step of an earlier run is still running.
        Busy = "busy",
        /// The inventory says `lock = false`: runs take no lock.
        Off = "off",
        /// It cannot be taken there at all (no `flock`, a git directory the user cannot
        /// write); a rollout would fail with kind `lock`.
        Unavailable = "unavailable",
    }
}

words! {
    /// A signal that interrupts a run.
    pub enum Signal ("signal") {
        /// Ctrl-C.
        Int = "SIGINT",
        /// A polite request to end (e.g. a CI job cancelled).
        Term = "SIGTERM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde, `as_str` and `FromStr` agree for every variant of `T`.
    fn spellings_agree<T>(all: &[T])
    where
        T: Copy + fmt::Debug + PartialEq + fmt::Display + FromStr + Serialize,
        T: for<'de> Deserialize<'de>,
        <T as FromStr>::Err: fmt::Debug,
    {
        for v in all {
            let text = v.to_string();
            let json = serde_json::to_string(v).expect("serialises");
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<T>(&json).expect("deserialises"), *v);
            assert_eq!(text.parse::<T>().expect("parses"), *v);
        }
    }

    #[test]
    fn every_spelling_round_trips() {
        spellings_agree(HostStatus::ALL);
        spellings_agree(ErrorKind::ALL);
        spellings_agree(StepName::ALL);
        spellings_agree(Mode::ALL);
        spellings_agree(Signal::ALL);
        spellings_agree(IdentitySource::ALL);
        spellings_agree(HostKeyTrust::ALL);
        spellings_agree(RepoState::ALL);
        spellings_agree(LockState::ALL);
        spellings_agree(DisabledBy::ALL);
        spellings_agree(HostState::ALL);
        assert_eq!(HostStatus::WouldChange.as_str(), "would_change");
        assert_eq!(ErrorKind::HostKey.as_str(), "host_key");
        assert_eq!(Signal::Int.as_str(), "SIGINT");
    }

    #[test]
    fn unknown_words_name_what_is_accepted() {
        let err = "fialed".parse::<HostStatus>().expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown host status `fialed` (expected one of: unchanged, changed, failed, \
             unreachable, skipped, cancelled, would_change, ahead, ok, disabled, bootstrapped, \
             already)"
        );
    }

    #[test]
    fn failure_sets_nest() {
        for s in HostStatus::ALL.iter().copied() {
            // What uses up the budget is a failure, and every failure fails the run.
            assert!(!s.counts_against_budget() || s.is_failure(), "{s}");
            assert!(!s.is_failure() || s.fails_run(), "{s}");
        }
        let failing: Vec<&str> = HostStatus::ALL
            .iter()
            .filter(|s| s.fails_run())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(failing, ["failed", "unreachable", "skipped", "cancelled"]);
    }

    #[test]
    fn progress_shows_every_status_once() {
        let mut order = HostStatus::PROGRESS_ORDER.to_vec();
        order.sort_by_key(|s| s.as_str());
        let mut all = HostStatus::ALL.to_vec();
        all.sort_by_key(|s| s.as_str());
        assert_eq!(order, all);
    }

    #[test]
    fn severities_are_distinct_and_problems_come_first() {
        let mut seen: Vec<u8> = HostStatus::ALL.iter().map(|s| s.severity()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), HostStatus::ALL.len());
        for s in HostStatus::ALL.iter().copied() {
            for t in HostStatus::ALL.iter().copied() {
                if s.fails_run() && !t.fails_run() {
                    assert!(s.severity() < t.severity(), "{s} before {t}");
                }
            }
        }
    }
}
