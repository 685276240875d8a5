//! How the engine reaches a host: one [`Connector`] per run, shared by every host's task, that
//! turns a host's settings into an SSH session, retrying what is worth another try.
//!
//! It is one object rather than a function per host because what connections share belongs
//! to the run: the key and known_hosts files read once for all hosts, the keys unlocked with
//! a passphrase before the run, the ssh-agent (its identities listed once, a small pool of
//! agent connections for every host's signatures), and the jump host (bastion) sessions,
//! opened once and shared by every target behind them.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capo_inventory::{Host, HostKeyCheck, JumpHost};
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
    /// Jump host sessions, one per distinct chain of hops (and the settings they log in
    /// with), opened on first use and kept for the run.
    jumps: Mutex<HashMap<JumpKey, Arc<JumpSlot>>>,
}

/// What makes two targets share a jump host session: the same hops, logged in to the same
/// way. Targets whose settings differ (another key, another known_hosts, another policy) get
/// a session of their own, so that none is trusted on terms it was not given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct JumpKey {
    /// `(user, host, port)` of each hop, first hop first.
    hops: Vec<(String, String, u16)>,
    identity_files: Vec<PathBuf>,
    /// The agent the hops log in through (`identity_agent`), and whether only the
    /// identity files' keys are offered: two targets differing here log in differently.
    identity_agent: Option<PathBuf>,
    identities_only: bool,
    known_hosts: PathBuf,
    host_key_check: HostKeyCheck,
}

/// One jump chain's session, and the outcome of the last attempt to open it.
#[derive(Default)]
struct JumpSlot {
    /// Attempts finished so far; a task that waited for the lock while this moved on
    /// shares that attempt's outcome instead of making another.
    attempts: AtomicU64,
    state: tokio::sync::Mutex<JumpState>,
}

#[derive(Default)]
struct JumpState {
    session: Option<Arc<Session>>,
    failure: Option<JumpFailure>,
}

/// Why a jump host session could not be had: the host's error, and whether another try
/// may help.
#[derive(Debug, Clone)]
struct JumpFailure {
    message: String,
    retryable: bool,
}

/// One failed attempt to reach a host.
enum Failure {
    /// The host itself (directly or through its jump hosts' channel).
    Ssh(SshError),
    /// A jump host on the way.
    Jump(JumpFailure),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Ssh(err) => retryable(err),
            Failure::Jump(j) => j.retryable,
        }
    }

    fn error(&self, attempts: u32) -> HostError {
        match self {
            Failure::Ssh(err) => connect_error(err, attempts),
            Failure::Jump(j) => HostError::new(ErrorKind::Jump, with_tries(&j.message, attempts)),
        }
    }
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
            jumps: Mutex::default(),
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
                r = self.attempt(host, &cfg) => r,
                reason = hard_stop(stop) => return Err(stopped(attempts, reason)),
            };
            let err = match result {
                Ok(session) => return Ok(Connected { session, attempts }),
                Err(err) => err,
            };
            let stopping = !matches!(*stop.borrow(), Stop::Run);
            if !err.retryable() || attempts > retries || stopping {
                return Err(NotConnected {
                    attempts,
                    why: Refused::Unreachable(err.error(attempts)),
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff(attempts) + jitter(&host.name, attempts)) => {}
                reason = hard_stop(stop) => return Err(stopped(attempts, reason)),
            }
        }
    }
}

impl Connector {
    /// Closes the jump host sessions, last hops first (each inner one runs inside the one
    /// before it), each within a couple of seconds. For the end of the run.
    pub async fn close(&self) {
        let mut slots: Vec<(usize, Arc<JumpSlot>)> = {
            let jumps = self.jumps.lock().unwrap_or_else(|p| p.into_inner());
            jumps
                .iter()
                .map(|(k, v)| (k.hops.len(), Arc::clone(v)))
                .collect()
        };
        slots.sort_by_key(|(hops, _)| std::cmp::Reverse(*hops));
        for (_, slot) in slots {
            let session = slot.state.lock().await.session.take();
            // Only the pool holds it now that every host is done; if not, dropping is enough.
            if let Some(session) = session.and_then(|s| Arc::try_unwrap(s).ok()) {
                session.close().await;
            }
        }
    }

    /// One attempt: directly, or through the host's jump hosts.
    async fn attempt(&self, host: &Host, cfg: &ConnectConfig) -> Result<Session, Failure> {
        let hops = &host.settings.jump;
        if hops.is_empty() {
            return capo_ssh::connect(cfg).await.map_err(Failure::Ssh);
        }
        let via = self.jump(host, cfg, hops).await.map_err(Failure::Jump)?;
        match capo_ssh::connect_via(cfg, &via).await {
            Ok(session) => Ok(session),
            // The jump host died under this attempt: that, not the target, is what to report.
            Err(err) if via.is_closed() || err.kind() == capo_ssh::ErrorKind::Jump => {
                let message = match (&err, via.closed_reason()) {
                    (SshError::Forward { .. } | SshError::JumpLost { .. }, _) => err.to_string(),
                    (_, Some(why)) => format!("jump host {}: {why}", via.target()),
                    (_, None) => format!("jump host {}: {err}", via.target()),
                };
                let prohibited = matches!(
                    err,
                    SshError::Forward {
                        prohibited: true,
                        ..
                    }
                );
                Err(Failure::Jump(JumpFailure {
                    message,
                    retryable: !prohibited,
                }))
            }
            Err(err) => Err(Failure::Ssh(err)),
        }
    }

    /// The session of the last hop of `hops`, opening it (and the hops before it) on first
    /// use. Tasks asking at the same time share one attempt: the first opens, the others
    /// wait for it and take its outcome. A session that has died, or could not be opened for
    /// a reason worth another try, is opened again by the next task that needs it; a refusal
    /// is remembered for the run.
    fn jump<'a>(
        &'a self,
        host: &'a Host,
        target: &'a ConnectConfig,
        hops: &'a [JumpHost],
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Arc<Session>, JumpFailure>> + Send + 'a>,
    > {
        Box::pin(async move {
            let Some((last, before)) = hops.split_last() else {
                // Not reached: callers pass at least one hop.
                return Err(JumpFailure {
                    message: "internal error: empty jump chain".into(),
                    retryable: false,
                });
            };
            let cfg = hop_config(host, target, last);
            let key = jump_key(host, target, hops);
            let slot = {
                let mut jumps = self.jumps.lock().unwrap_or_else(|p| p.into_inner());
                Arc::clone(jumps.entry(key).or_default())
            };
            let seen = slot.attempts.load(Ordering::Acquire);
            let mut state = slot.state.lock().await;
            if let Some(session) = &state.session {
                if !session.is_closed() {
                    return Ok(Arc::clone(session));
                }
            }
            if let Some(failure) = &state.failure {
                // Shared with whoever waited for it; and a refusal (host key, auth,
                // forwarding) is final for the run: asking again would only be refused again.
                if !failure.retryable || slot.attempts.load(Ordering::Acquire) != seen {
                    return Err(failure.clone());
                }
            }
            let name = format!(
                "{}@{}",
                cfg.user,
                capo_ssh::known_hosts::lookup_name(&cfg.host, cfg.port)
            );
            let result = if before.is_empty() {
                capo_ssh::connect(&cfg).await
            } else {
                let via = self.jump(host, target, before).await?;
                capo_ssh::connect_via(&cfg, &via).await
            };
            slot.attempts.fetch_add(1, Ordering::AcqRel);
            match result {
                Ok(session) => {
                    let session = Arc::new(session);
                    state.session = Some(Arc::clone(&session));
                    state.failure = None;
                    Ok(session)
                }
                Err(err) => {
                    let failure = JumpFailure {
                        // Errors about the next hop's channel name the jump host already.
                        message: match err {
                            SshError::Forward { .. } | SshError::JumpLost { .. } => err.to_string(),
                            _ => format!("jump host {name}: {err}"),
                        },
                        retryable: retryable(&err),
                    };
                    state.session = None;
                    state.failure = Some(failure.clone());
                    Err(failure)
                }
            }
        })
    }
}

/// What `target` (the settings of `host`) shares a session to the last of `hops` under.
fn jump_key(host: &Host, target: &ConnectConfig, hops: &[JumpHost]) -> JumpKey {
    JumpKey {
        hops: hops
            .iter()
            .map(|h| {
                let c = hop_config(host, target, h);
                (c.user, c.host, c.port)
            })
            .collect(),
        identity_files: target.identity_files.clone(),
        identity_agent: target.identity_agent.clone(),
        identities_only: target.identities_only,
        known_hosts: target.known_hosts.clone(),
        host_key_check: host.settings.host_key_check,
    }
}

/// The jump hosts `host` is reached through, first hop first, each as `user@host:port` with
/// the user and port a connection uses (for `capo check`'s report).
pub(super) fn jump_path(host: &Host) -> Vec<String> {
    let target = connect_config(host, None);
    host.settings
        .jump
        .iter()
        .map(|hop| {
            let c = hop_config(host, &target, hop);
            if c.host.contains(':') {
                format!("{}@[{}]:{}", c.user, c.host, c.port)
            } else {
                format!("{}@{}:{}", c.user, c.host, c.port)
            }
        })
        .collect()
}

/// The settings for one jump host: the target's (keys, known_hosts, policy, timeouts,
/// keepalives), with the hop's address; a hop without a user logs in as the target's user,
/// one without a port uses 22.
fn hop_config(host: &Host, target: &ConnectConfig, hop: &JumpHost) -> ConnectConfig {
    let mut cfg = target.clone();
    cfg.host = hop.host.clone();
    cfg.port = hop.port.unwrap_or(22);
    cfg.user = hop
        .user
        .clone()
        .unwrap_or_else(|| host.settings.user.clone());
    cfg
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
        capo_ssh::ErrorKind::Jump => ErrorKind::Jump,
        capo_ssh::ErrorKind::Connect | capo_ssh::ErrorKind::Channel => ErrorKind::Connect,
    };
    HostError::new(kind, with_tries(&err.to_string(), attempts))
}

/// `message`, and how many attempts it took when there were several.
fn with_tries(message: &str, attempts: u32) -> String {
    if attempts > 1 {
        format!("{message} ({attempts} attempts)")
    } else {
        message.to_string()
    }
}

/// Only failures to reach the host are worth another try; a host key or auth refusal will
/// say the same thing again, and so will a jump host that refuses to forward. A jump host
/// whose connection dropped may be back.
fn retryable(err: &SshError) -> bool {
    err.kind() == capo_ssh::ErrorKind::Connect || matches!(err, SshError::JumpLost { .. })
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

    fn host_with_jump(jump: &str) -> Host {
        let text = format!(
            "[defaults]\nuser = \"deploy\"\nport = 2200\nidentity_files = [\"/k\"]\n\
             known_hosts = \"/kh\"\njump = {jump}\n[hosts.web1]\n"
        );
        let inv = capo_inventory::Inventory::parse(&text, std::path::Path::new("/inv.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        inv.hosts[0].clone()
    }

    #[test]
    fn targets_that_log_in_differently_do_not_share_a_jump_session() {
        let host = host_with_jump(r#""bastion""#);
        let target = connect_config(&host, None);
        let hops = &host.settings.jump;
        let key = jump_key(&host, &target, hops);
        assert_eq!(jump_key(&host, &target.clone(), hops), key);
        let mut only = target.clone();
        only.identities_only = true;
        assert_ne!(jump_key(&host, &only, hops), key);
        let mut agent = target.clone();
        agent.identity_agent = Some(PathBuf::from("/run/other-agent.sock"));
        assert_ne!(jump_key(&host, &agent, hops), key);
    }

    #[test]
    fn a_hop_takes_the_targets_user_port_22_and_the_targets_settings() {
        let host = host_with_jump(r#"["bastion", "ops@[2001:db8::1]:2222"]"#);
        let target = connect_config(&host, None);
        let first = hop_config(&host, &target, &host.settings.jump[0]);
        assert_eq!(
            (first.user.as_str(), first.host.as_str(), first.port),
            ("deploy", "bastion", 22)
        );
        let second = hop_config(&host, &target, &host.settings.jump[1]);
        assert_eq!(
            (second.user.as_str(), second.host.as_str(), second.port),
            ("ops", "2001:db8::1", 2222)
        );
        assert_eq!(second.identity_files, [std::path::PathBuf::from("/k")]);
        assert_eq!(second.known_hosts, std::path::PathBuf::from("/kh"));
        assert_eq!(second.connect_timeout, target.connect_timeout);
    }

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
