//! How the engine reaches a host: one [`Connector`] per run, shared by every host's task, that
//! turns a host's settings into an SSH session, retrying what is worth another try.
//!
//! It is one object rather than a function per host because what connections share belongs
//! to the run: the key and known_hosts files read once for all hosts, the keys unlocked with
//! a passphrase before the run, and the ssh-agent (its identities listed once, a small pool
//! of agent connections for every host's signatures); later bastion sessions, which must
//! not be set up again for each host.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use capo_inventory::{Host, HostKeyCheck};
use capo_schema::StopReason;
use capo_ssh::{ConnectConfig, FileCache, HostKeyPolicy, Session, SshError};
use tokio::sync::watch;

use crate::options::{hard_stop, Stop};
use crate::outcome::{ErrorKind, HostError};

/// What every connection of a run shares; build one per run and hand each host's task a
/// reference.
pub(super) struct Connector {
    /// Key and known_hosts files, read once for all hosts of the run, keys unlocked before
    /// it, and agents.
    files: Arc<FileCache>,
    /// `SSH_AUTH_SOCK` as the run started, for hosts whose `identity_agent` is the default.
    agent_env: Option<OsString>,
}

/// A session, and how many attempts it took.
pub(super) struct Connected {
    /// The host's one connection, for every step of the job.
    pub session: Session,
    /// Attempts made, this one included (for the report's `connect_attempts`).
    pub attempts: u32,
}

/// Why a host has no session, and how many attempts were made.
pub(super) struct NotConnected {
    /// Attempts made (for the report's `connect_attempts`).
    pub attempts: u32,
    /// How the last one ended.
    pub why: Refused,
}

/// How connecting to a host ended without a session.
pub(super) enum Refused {
    /// The host could not be reached, or refused us (the error says which).
    Unreachable(HostError),
    /// The controller asked for a hard stop while connecting or waiting to retry.
    Stopped(StopReason),
}

impl Connector {
    /// A connector for one run, sharing `files` (see [`crate::EngineOptions::ssh`]).
    pub fn new(files: Arc<FileCache>) -> Connector {
        Connector {
            files,
            agent_env: std::env::var_os("SSH_AUTH_SOCK"),
        }
    }

    /// Connects to `host`, retrying a failure to reach it up to its `connect_retries` times
    /// with backoff. A hard stop cuts the attempt or the wait short; a soft stop lets the
    /// attempt under way finish but ends the retries, since the run is winding down.
    pub async fn connect(
        &self,
        host: &Host,
        stop: &mut watch::Receiver<Stop>,
    ) -> Result<Connected, NotConnected> {
        let mut cfg = connect_config(host, self.agent_env.as_deref());
        cfg.cache = Some(self.files.clone());
        let retries = host.settings.connect_retries;
        let mut attempts = 0;
        let stopped = |attempts, reason| NotConnected {
            attempts,
            why: Refused::Stopped(reason),
        };
        loop {
            attempts += 1;
            let result = tokio::select! {
                r = capo_ssh::connect(&cfg) => r,
                reason = hard_stop(stop) => return Err(stopped(attempts, reason)),
            };
            let err = match result {
                Ok(session) => return Ok(Connected { session, attempts }),
                Err(err) => err,
            };
            let stopping = !matches!(*stop.borrow(), Stop::Run);
            if !retryable(&err) || attempts > retries || stopping {
                return Err(NotConnected {
                    attempts,
                    why: Refused::Unreachable(connect_error(&err, attempts)),
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff(attempts) + jitter(&host.name, attempts)) => {}
                reason = hard_stop(stop) => return Err(stopped(attempts, reason)),
            }
        }
    }
}

/// The SSH settings for a host. `agent_env` is `SSH_AUTH_SOCK`, read once per run by the
/// caller: the agent of hosts that do not name one.
pub fn connect_config(host: &Host, agent_env: Option<&std::ffi::OsStr>) -> ConnectConfig {
    let s = &host.settings;
    let mut cfg = ConnectConfig::new(host.address.clone(), s.port, s.user.clone());
    cfg.identity_files = s.identity_files.clone();
    cfg.identity_agent = s.identity_agent.socket(agent_env);
    cfg.identities_only = s.identities_only;
    cfg.known_hosts = s.known_hosts.clone();
    cfg.host_key_policy = match s.host_key_check {
        HostKeyCheck::Strict => HostKeyPolicy::Strict,
        HostKeyCheck::AcceptNew => HostKeyPolicy::AcceptNew,
        HostKeyCheck::Off => HostKeyPolicy::Off,
    };
    cfg.connect_timeout = s.connect_timeout;
    cfg.keepalive_interval = s.keepalive_interval;
    cfg.keepalive_max = usize::try_from(s.keepalive_count).unwrap_or(usize::MAX);
    cfg
}

/// The host's error for a failed connection: the transport's failure class in the report's
/// words, and how many attempts it took when there were several.
fn connect_error(err: &SshError, attempts: u32) -> HostError {
    let kind = match err.kind() {
        capo_ssh::ErrorKind::HostKey => ErrorKind::HostKey,
        capo_ssh::ErrorKind::Auth => ErrorKind::Auth,
        capo_ssh::ErrorKind::Connect | capo_ssh::ErrorKind::Channel => ErrorKind::Connect,
    };
    let tries = if attempts > 1 {
        format!(" ({attempts} attempts)")
    } else {
        String::new()
    };
    HostError::new(kind, format!("{err}{tries}"))
}

/// Only failures to reach the host are worth another try; a host key or auth refusal will
/// say the same thing again.
fn retryable(err: &SshError) -> bool {
    err.kind() == capo_ssh::ErrorKind::Connect
}

/// 1 s, 2 s, 4 s, ... capped at 10 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(4)).min(Duration::from_secs(10))
}

/// Up to half a second more, different per host and attempt, so that hosts refused together
/// (e.g. by sshd's MaxStartups when many connections arrive at once) do not retry in lockstep.
fn jitter(host: &str, attempt: u32) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (host, attempt).hash(&mut h);
    Duration::from_millis(h.finish() % 500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let secs: Vec<u64> = (1..=6).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn jitter_is_bounded_and_spreads_hosts() {
        let spread: std::collections::HashSet<Duration> =
            (0..20).map(|i| jitter(&format!("web{i:02}"), 1)).collect();
        assert!(spread.len() > 10, "{spread:?}");
        assert!(spread.iter().all(|d| *d < Duration::from_millis(500)));
    }
}
