//! What a caller tells the engine: which job to run and how ([`EngineOptions`], [`RunMode`]),
//! and how it asks a run to stop ([`Stop`]) or to go on to the next batch ([`Confirm`]).
//! The waits on the stop channel live here too: the scheduler, the connector and the
//! per-host runner all wait on it, and none of them should depend on another for that.

use capo_schema::{Mode, StopReason};
use tokio::sync::{mpsc, watch};

use crate::event::RunMeta;
use crate::remote::BecomePassword;
use crate::strategy::Strategy;

/// What the engine does on each host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMode {
    /// Bring the checkout to the target (`git pull --ff-only`, or fast-forward to `rev`) and
    /// run `puppet apply`.
    Rollout {
        /// `--rev`: an exact commit, tag or branch.
        rev: Option<String>,
    },
    /// Run `puppet apply --noop` on the target in a temporary copy; change nothing.
    Plan {
        /// `--rev`; without it, the remote branch `git pull` would bring.
        rev: Option<String>,
    },
    /// Run an ad-hoc command (no lock, no checkout, no Puppet).
    Exec {
        /// The remote command line, run by `sh -c` on the host.
        command: String,
    },
    /// Connect, authenticate and look at each host (`capo check`); change nothing.
    Check,
    /// Disable runs on each host (`capo disable -m MESSAGE`).
    Disable {
        /// Why, for whoever finds the host disabled.
        message: String,
        /// Who: `user@controller`.
        by: String,
    },
    /// Enable them again (`capo enable`).
    Enable,
    /// Install pull mode on each host (`capo pull install`), or remove it (`remove`).
    Pull(PullAction),
    /// Read where each host stands (`capo status`); change nothing.
    Status {
        /// `--fetch`: fetch the remote branch on each host first.
        fetch: bool,
        /// `--stale-after`: a last run older than this is stale; None: twice the pull
        /// interval where a systemd timer says it, else 24 h.
        stale_after: Option<std::time::Duration>,
    },
    /// Make each host ready for rollouts (`capo bootstrap`): git and Puppet there, a clone
    /// of the repo in an empty `repo_dir`, and a noop apply of it that compiles. A
    /// `repo_dir` that already holds a checkout of the repo is left alone.
    Bootstrap {
        /// `--repo`: the URL every host clones; None for each host's `repo_url` setting.
        repo: Option<String>,
        /// `--rev`: put the clone at exactly this commit, tag or branch; None for the tip
        /// of the host's `branch`.
        rev: Option<String>,
        /// `--install`: install a missing git or Puppet with the host's package manager.
        install: bool,
    },
}

/// What `capo pull` does on each host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullAction {
    /// Install the job, its scripts and its schedule.
    Install {
        /// When it runs.
        schedule: capo_scripts::pull::Schedule,
        /// `systemd`, `cron` or `auto` (systemd where it runs the host).
        scheduler: String,
        /// `--only-if-changed`: apply only when something changed, the last run failed, or
        /// it is older than this.
        only_if_changed: Option<std::time::Duration>,
    },
    /// Remove all of it.
    Remove,
    /// End the pin a `capo rollout --rev` left (`capo pull unpin`).
    Unpin,
}

impl RunMode {
    /// Which command this is, as reports name it.
    pub fn mode(&self) -> Mode {
        match self {
            RunMode::Rollout { .. } => Mode::Rollout,
            RunMode::Plan { .. } => Mode::Plan,
            RunMode::Exec { .. } => Mode::Exec,
            RunMode::Check => Mode::Check,
            RunMode::Disable { .. } => Mode::Disable,
            RunMode::Enable => Mode::Enable,
            RunMode::Status { .. } => Mode::Status,
            RunMode::Pull(_) => Mode::Pull,
            RunMode::Bootstrap { .. } => Mode::Bootstrap,
        }
    }
}

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Canary, batches, failure budget, pause.
    pub strategy: Strategy,
    /// Where to ask before each batch after the first (`--confirm`); None to not ask.
    pub confirm: Option<mpsc::Sender<Confirm>>,
    /// Rollout or plan, and the target revision.
    pub mode: RunMode,
    /// Ask Puppet for file content diffs (`--show_diff`).
    pub show_diff: bool,
    /// Send every output chunk as an event (`-v`).
    pub stream_output: bool,
    /// Facts passed through to reporters; `run_dir` is also where logs go.
    pub meta: RunMeta,
    /// At most this many hosts at a time.
    pub concurrency: usize,
    /// Bytes of each step's stdout and stderr kept in memory.
    pub tail_bytes: usize,
    /// Who holds a host's lock while this run works on it, e.g. `capo run ID from HOST (pid
    /// N), started TIME`; another run that finds the lock taken reports this.
    pub holder: String,
    /// The sudo password (`--ask-become-pass`) for hosts with `become = "sudo"`: given,
    /// sudo may ask for it (and gets it); `None`, it runs as `sudo -n`.
    pub become_password: Option<BecomePassword>,
    /// What the run's SSH connections share: key and known_hosts files read once, the keys
    /// the caller unlocked with a passphrase before the run ([`capo_ssh::FileCache::unlock`]),
    /// the agents. `Default::default()` for a fresh one.
    pub ssh: std::sync::Arc<capo_ssh::FileCache>,
}

/// What the controller wants the engine to do, sent through a `watch` channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Keep going.
    Run,
    /// Start no new host; let hosts in flight finish.
    Soft {
        /// Why, for the skipped hosts' errors.
        reason: StopReason,
    },
    /// Stop hosts in flight now, killing their remote commands.
    Hard {
        /// Why, for the cancelled hosts' errors.
        reason: StopReason,
    },
}

impl Stop {
    /// Why the run is asked to stop, if it is.
    pub(super) fn reason(&self) -> Option<StopReason> {
        match self {
            Stop::Run => None,
            Stop::Soft { reason } | Stop::Hard { reason } => Some(*reason),
        }
    }
}

/// Asks the operator whether to start the next batch (`--confirm`); the binary answers on
/// `reply`. The engine itself never touches a terminal.
#[derive(Debug)]
pub struct Confirm {
    /// 0-based index of the batch about to start.
    pub batch: usize,
    /// Its hosts.
    pub hosts: Vec<String>,
    /// `true` to go on; `false` (or dropping it) stops the run.
    pub reply: tokio::sync::oneshot::Sender<bool>,
}

/// Resolves once a stop of any kind is asked for; never if the sender is gone.
pub(super) async fn wait_for_stop(stop: &mut watch::Receiver<Stop>) {
    loop {
        if !matches!(*stop.borrow_and_update(), Stop::Run) {
            return;
        }
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves once `stop` asks for a hard stop, with its reason; never if the sender is gone.
pub(super) async fn hard_stop(stop: &mut watch::Receiver<Stop>) -> StopReason {
    loop {
        if let Stop::Hard { reason } = &*stop.borrow_and_update() {
            return *reason;
        }
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
