//! Connecting: TCP, SSH handshake, host key check, public-key auth.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, AuthResult, DisconnectReason, Handle};
use russh::keys::agent::AgentIdentity;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Channel, Disconnect, Preferred};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::agent::{self, Agent};
use crate::cache::FileCache;
use crate::error::{AgentAttempt, AgentOutcome, IdentityAttempt, Phase, SkipReason, SshError};
use crate::exec::Exec;
use crate::identity;
use crate::known_hosts::{self, HostKeyStatus, KnownHosts, RecordError, Recorded, Recorder};

/// What to do with the server's host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// The key must already be in known_hosts.
    Strict,
    /// Unknown hosts are trusted on first use and recorded; changed or
    /// revoked keys are still refused.
    AcceptNew,
    /// No checking at all (throwaway test hosts only).
    Off,
}

/// Where and how to connect. Build with [`ConnectConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    /// The address to connect to; also the name looked up in known_hosts.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Remote user.
    pub user: String,
    /// Private keys, tried in order after the agent's identities. Files that are missing,
    /// unusable or accessible by group or others (as OpenSSH, see [`crate::SkipReason`])
    /// are skipped, and so is a file whose key the agent already offered (unless the agent
    /// refused to sign with it).
    pub identity_files: Vec<PathBuf>,
    /// The ssh-agent socket whose identities are offered first; None for no agent. An
    /// agent that cannot be reached is passed over.
    pub identity_agent: Option<PathBuf>,
    /// Offer only agent identities whose public key is one of `identity_files`' (OpenSSH's
    /// `IdentitiesOnly`).
    pub identities_only: bool,
    /// known_hosts file to check (and, with [`HostKeyPolicy::AcceptNew`], append to).
    pub known_hosts: PathBuf,
    /// Host key policy.
    pub host_key_policy: HostKeyPolicy,
    /// Budget for TCP connect + SSH handshake + auth, all together. Also
    /// bounds the wait for the server to accept each exec request.
    pub connect_timeout: Duration,
    /// Send a keepalive after this much silence from the server. Zero
    /// disables keepalives (a dead server is then only noticed by TCP).
    pub keepalive_interval: Duration,
    /// Unanswered keepalives before the connection is considered dead.
    /// Zero turns the count off (russh's convention); the connection is then
    /// only dropped after a longer stretch of total silence.
    pub keepalive_max: usize,
    /// Identity and known_hosts files already read, shared with other connections of the
    /// same run; None reads them for this connection alone.
    pub cache: Option<Arc<FileCache>>,
}

impl ConnectConfig {
    /// Defaults: the agent `SSH_AUTH_SOCK` names, `~/.ssh/id_ed25519`, `~/.ssh/id_ecdsa`,
    /// `~/.ssh/id_rsa`, `~/.ssh/known_hosts`, strict host key checking, 10 s connect timeout,
    /// keepalive every 15 s, dead after 3 unanswered. `~` is `$HOME`; without
    /// it the paths are relative to the working directory.
    pub fn new(host: impl Into<String>, port: u16, user: impl Into<String>) -> Self {
        let ssh_dir = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".ssh");
        ConnectConfig {
            host: host.into(),
            port,
            user: user.into(),
            identity_files: ["id_ed25519", "id_ecdsa", "id_rsa"]
                .iter()
                .map(|f| ssh_dir.join(f))
                .collect(),
            identity_agent: std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            identities_only: false,
            known_hosts: ssh_dir.join("known_hosts"),
            host_key_policy: HostKeyPolicy::Strict,
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(15),
            keepalive_max: 3,
            cache: None,
        }
    }

    /// `host` for port 22, `[host]:port` otherwise, as in known_hosts.
    fn display_host(&self) -> String {
        known_hosts::lookup_name(&self.host, self.port)
    }
}

/// The identity the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginIdentity {
    /// A key of the ssh-agent at `socket`.
    Agent {
        /// The agent's socket.
        socket: PathBuf,
        /// The key's comment in the agent (`ssh-add -l` shows it), often the file it was
        /// added from or its owner's address.
        comment: String,
        /// `SHA256:...` of its public key.
        fingerprint: String,
        /// Whether the agent offered it as a certificate.
        certificate: bool,
    },
    /// An identity file.
    File {
        /// The file.
        path: PathBuf,
        /// `SHA256:...` of its public key.
        fingerprint: String,
    },
}

/// How the server's host key came to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyTrust {
    /// Listed in known_hosts.
    Known,
    /// Unknown until now, and recorded in known_hosts (`accept-new`).
    Recorded,
    /// A host certificate signed by a CA an `@cert-authority` line trusts.
    Certificate,
    /// Not checked (`host_key_check = "off"`).
    Unchecked,
}

/// The host key the server presented, and why capo trusted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeySeen {
    /// The key's algorithm, e.g. `ssh-ed25519`.
    pub key_type: String,
    /// `SHA256:...` of the key (for a certificate, of the key it certifies).
    pub fingerprint: String,
    /// Why it was trusted.
    pub trust: HostKeyTrust,
}

/// One authenticated SSH connection. Reusable for many [`Session::exec`] calls.
pub struct Session {
    handle: Handle<ClientHandler>,
    shared: Arc<Shared>,
    op_timeout: Duration,
    target: String,
    identity: LoginIdentity,
}

/// A session channel opened ahead of its command ([`Session::open`]); dropped unused, it
/// goes with the connection.
pub struct Opened(Result<Channel<client::Msg>, SshError>);

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Opened")
            .field(&self.0.as_ref().map(|c| c.id()))
            .finish()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// State the russh handler task shares with [`connect`] and [`Exec`].
pub(crate) struct Shared {
    /// Why the host key was refused. russh only reports a generic
    /// "unknown key", so the handler leaves the precise error here.
    host_key_error: Mutex<Option<SshError>>,
    /// The host key accepted, and why.
    host_key: Mutex<Option<HostKeySeen>>,
    /// Why the connection ended, once it has.
    disconnect: Mutex<Option<String>>,
    /// Nothing is ever sent on it: its sender lives in the handler, which
    /// russh drops when the session task ends for any reason. russh does not
    /// wake a write waiting for window space when the connection dies, so
    /// writers wait on this too.
    alive: watch::Receiver<()>,
    /// The jump host's connection this one runs inside, and its name for messages; set
    /// before the handshake, read when this connection ends.
    via: Mutex<Option<(String, Arc<Shared>)>>,
}

impl Shared {
    /// The shared state and the sender half of its liveness signal, which
    /// the handler must own.
    fn new() -> (Shared, watch::Sender<()>) {
        let (tx, rx) = watch::channel(());
        let shared = Shared {
            host_key_error: Mutex::default(),
            host_key: Mutex::default(),
            disconnect: Mutex::default(),
            alive: rx,
            via: Mutex::default(),
        };
        (shared, tx)
    }

    /// Resolves once the connection is gone for good (russh's session task
    /// has ended). Never resolves while it is alive.
    pub(crate) async fn gone(&self) {
        let mut rx = self.alive.clone();
        // `changed` only errors once the sender is dropped; it is never
        // sent on, so an `Ok` cannot happen, but looping keeps that honest.
        while rx.changed().await.is_ok() {}
    }

    fn set_host_key_error(&self, e: SshError) {
        *lock(&self.host_key_error) = Some(e);
    }

    fn take_host_key_error(&self) -> Option<SshError> {
        lock(&self.host_key_error).take()
    }

    fn set_disconnect(&self, reason: String) {
        lock(&self.disconnect).get_or_insert(reason);
    }

    /// Why the connection ended, if it has. A connection inside a jump host's that died
    /// with it says so: its own view ("closed by remote") would hide the cause.
    pub(crate) fn disconnect_reason(&self) -> Option<String> {
        if let Some(why) = self.jump_lost() {
            return Some(why);
        }
        lock(&self.disconnect).clone()
    }

    /// `jump host NAME: WHY` once the jump host's connection this one runs in has ended.
    fn jump_lost(&self) -> Option<String> {
        let via = lock(&self.via);
        let (name, shared) = via.as_ref()?;
        let why = shared.disconnect_reason()?;
        Some(format!("jump host {name}: {why}"))
    }
}

/// A poisoned lock only means another thread panicked mid-update of a plain
/// `Option`; the value is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens a connection and authenticates, all within `cfg.connect_timeout`.
pub async fn connect(cfg: &ConnectConfig) -> Result<Session, SshError> {
    connect_with(cfg, None).await
}

/// Like [`connect`], but through `jump`: the connection runs inside a direct-tcpip channel
/// of the jump host's session (OpenSSH's ProxyJump), so `cfg.host` is resolved and dialled
/// by the jump host. The jump host's session must stay open as long as this one is used;
/// once it ends, this one ends too, and its errors name the jump host.
pub async fn connect_via(cfg: &ConnectConfig, jump: &Session) -> Result<Session, SshError> {
    connect_with(cfg, Some(jump)).await
}

async fn connect_with(cfg: &ConnectConfig, via: Option<&Session>) -> Result<Session, SshError> {
    let mut phase = Phase::Connecting;
    // Bound to a variable so the future (which borrows `phase`) is gone
    // before we read `phase` to say where the time ran out.
    let res = tokio::time::timeout(cfg.connect_timeout, connect_inner(cfg, &mut phase, via)).await;
    match res {
        Ok(r) => r,
        Err(_) => Err(SshError::ConnectTimeout {
            after: cfg.connect_timeout,
            phase,
        }),
    }
}

async fn connect_inner(
    cfg: &ConnectConfig,
    phase: &mut Phase,
    via: Option<&Session>,
) -> Result<Session, SshError> {
    // Local checks first: no point dialling a host we could not log in to.
    let mut identities = Identities::gather(cfg).await?;

    let known = match cfg.host_key_policy {
        HostKeyPolicy::Off => Arc::new(KnownHosts::default()),
        HostKeyPolicy::Strict | HostKeyPolicy::AcceptNew => {
            let load = || async {
                KnownHosts::load(&cfg.known_hosts)
                    .await
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            };
            let loaded = match &cfg.cache {
                Some(cache) => cache.known_hosts(&cfg.known_hosts, load).await,
                None => load().await,
            };
            loaded.map_err(|detail| SshError::KnownHostsRead {
                path: cfg.known_hosts.clone(),
                detail,
            })?
        }
    };

    let stream: Box<dyn Transport> = match via {
        None => Box::new(tcp_connect(&cfg.host, cfg.port).await?),
        Some(jump) => Box::new(jump.direct_tcpip(&cfg.host, cfg.port).await?),
    };

    *phase = Phase::KeyExchange;
    let (shared, alive) = Shared::new();
    if let Some(jump) = via {
        *lock(&shared.via) = Some((jump.target.clone(), Arc::clone(&jump.shared)));
    }
    let shared = Arc::new(shared);
    let config = Arc::new(russh_config(cfg, &known));
    // One recorder per file and run: appends from every connection are serialized there.
    let recorder = (cfg.host_key_policy == HostKeyPolicy::AcceptNew).then(|| match &cfg.cache {
        Some(cache) => cache.recorder(&cfg.known_hosts),
        None => Arc::new(Recorder::new(&cfg.known_hosts)),
    });
    let handler = ClientHandler {
        _alive: alive,
        host: cfg.host.clone(),
        port: cfg.port,
        policy: cfg.host_key_policy,
        known_hosts_path: cfg.known_hosts.clone(),
        known,
        recorder,
        shared: Arc::clone(&shared),
    };
    let mut handle = match client::connect_stream(config, stream, handler).await {
        Ok(h) => h,
        Err(e) => {
            return Err(shared
                .take_host_key_error()
                .unwrap_or_else(|| handshake_error(e, *phase)))
        }
    };

    *phase = Phase::Authenticating;
    let mut auth = Auth {
        handle: &mut handle,
        user: &cfg.user,
        shared: &shared,
        rsa_hash: None,
        refused: 0,
    };
    if let Some(identity) = identities.authenticate(&mut auth).await? {
        return Ok(Session {
            handle,
            shared,
            op_timeout: cfg.connect_timeout,
            target: format!("{}@{}", cfg.user, cfg.display_host()),
            identity,
        });
    }
    // Be polite so the server logs a clean disconnect rather than a reset.
    let _ = handle.disconnect(Disconnect::ByApplication, "", "en").await;
    Err(SshError::AuthRefused {
        user: cfg.user.clone(),
        agent: identities.agent_attempt(),
        tried: identities.tried(),
    })
}

/// What one connection offers the server, in OpenSSH's order: the agent's identities
/// (with `identities_only`, only those matching an identity file), then the identity
/// files the agent did not already offer.
struct Identities {
    agent: Option<AgentIds>,
    files: Vec<FileId>,
    identities_only: bool,
}

/// The agent and the identities of it to offer.
struct AgentIds {
    agent: Arc<Agent>,
    /// Its identities, or why it could not be asked.
    ids: Result<Vec<AgentIdentity>, String>,
    /// How many the agent refused to sign with.
    not_signed: usize,
}

/// One identity file.
struct FileId {
    path: PathBuf,
    public: Option<PublicKey>,
    key: Result<Arc<PrivateKey>, SkipReason>,
}

/// An authentication under way: the handle and what the attempts so far have learnt.
struct Auth<'a> {
    handle: &'a mut Handle<ClientHandler>,
    user: &'a str,
    shared: &'a Shared,
    /// The RSA signature hash the server takes, once asked.
    rsa_hash: Option<Option<HashAlg>>,
    /// Identities the server refused.
    refused: usize,
}

impl Auth<'_> {
    async fn rsa_hash(&mut self, public: &PublicKey) -> Result<Option<HashAlg>, SshError> {
        if !public.algorithm().is_rsa() {
            return Ok(None);
        }
        if let Some(h) = self.rsa_hash {
            return Ok(h);
        }
        let h = self
            .handle
            .best_supported_rsa_hash()
            .await
            .map_err(|e| handshake_error(e, Phase::Authenticating))?
            .flatten();
        self.rsa_hash = Some(h);
        Ok(h)
    }

    /// After a refusal: did the server hang up (sshd does after `MaxAuthTries`)? russh
    /// reports a connection gone mid-authentication as a failure with no methods left.
    fn closed(&self, failure: &AuthResult) -> bool {
        let no_methods = matches!(
            failure,
            AuthResult::Failure { remaining_methods, .. } if remaining_methods.is_empty()
        );
        no_methods || self.handle.is_closed()
    }

    fn closed_error(&self, agent_keys: bool) -> SshError {
        if self.refused == 0 {
            return SshError::Closed {
                phase: Phase::Authenticating,
            };
        }
        SshError::AuthClosed {
            refused: self.refused,
            reason: self.shared.disconnect_reason(),
            agent_keys,
        }
    }
}

impl Identities {
    /// Reads the identity files and asks the agent for its identities (both once per run
    /// with a cache); fails when there is nothing to offer.
    async fn gather(cfg: &ConnectConfig) -> Result<Identities, SshError> {
        let cache = cfg.cache.as_deref();
        let files: Vec<FileId> = identity::load_all(&cfg.identity_files, cache)
            .await
            .into_iter()
            .map(|l| FileId {
                public: l.file.public.clone(),
                path: l.path,
                key: l.key,
            })
            .collect();
        let agent = match &cfg.identity_agent {
            None => None,
            Some(socket) => {
                let agent = match cache {
                    Some(c) => c.agent(socket),
                    None => Arc::new(Agent::new(socket)),
                };
                let ids = agent.identities(cfg.connect_timeout).await.map(|ids| {
                    ids.iter()
                        .filter(|id| {
                            !cfg.identities_only || {
                                let public = agent::public_key(id);
                                files.iter().any(|f| same_key(f.public.as_ref(), &public))
                            }
                        })
                        .cloned()
                        .collect()
                });
                Some(AgentIds {
                    agent,
                    ids,
                    not_signed: 0,
                })
            }
        };
        let identities = Identities {
            agent,
            files,
            identities_only: cfg.identities_only,
        };
        let agent_has_keys = identities
            .agent
            .as_ref()
            .is_some_and(|a| a.ids.as_ref().is_ok_and(|ids| !ids.is_empty()));
        if !agent_has_keys && identities.files.iter().all(|f| f.key.is_err()) {
            let encrypted = identities
                .files
                .iter()
                .find(|f| f.key.as_ref().err() == Some(&SkipReason::Encrypted));
            if let Some(f) = encrypted {
                return Err(SshError::EncryptedKey {
                    path: f.path.clone(),
                });
            }
            return Err(SshError::NoIdentity {
                agent: identities.agent_attempt(),
                tried: identities.tried(),
            });
        }
        Ok(identities)
    }

    /// Offers every identity in turn. `Ok(Some(identity))` once one is accepted, `Ok(None)`
    /// when all were refused.
    async fn authenticate(
        &mut self,
        auth: &mut Auth<'_>,
    ) -> Result<Option<LoginIdentity>, SshError> {
        // Keys the server already refused through the agent: their files are not offered
        // again. A key the agent would not sign with is, from its file.
        let mut offered: Vec<PublicKey> = Vec::new();
        let agent_keys = !self.identities_only;
        if let Some(agent) = &mut self.agent {
            let ids = agent.ids.as_ref().map(Vec::as_slice).unwrap_or_default();
            for id in ids {
                let public = agent::public_key(id);
                let hash = auth.rsa_hash(&public).await?;
                let mut signer = agent::Signer(&agent.agent);
                let user = auth.user.to_string();
                let res = match id {
                    AgentIdentity::PublicKey { key, .. } => {
                        auth.handle
                            .authenticate_publickey_with(user, key.clone(), hash, &mut signer)
                            .await
                    }
                    AgentIdentity::Certificate { certificate, .. } => {
                        auth.handle
                            .authenticate_certificate_with(
                                user,
                                certificate.clone(),
                                hash,
                                &mut signer,
                            )
                            .await
                    }
                };
                match res {
                    Ok(AuthResult::Success) => {
                        let (comment, certificate) = match id {
                            AgentIdentity::PublicKey { comment, .. } => (comment, false),
                            AgentIdentity::Certificate { comment, .. } => (comment, true),
                        };
                        return Ok(Some(LoginIdentity::Agent {
                            socket: agent.agent.socket().to_path_buf(),
                            comment: comment.clone(),
                            fingerprint: known_hosts::fingerprint(&public),
                            certificate,
                        }));
                    }
                    Ok(failure) => {
                        if auth.closed(&failure) {
                            return Err(auth.closed_error(agent_keys));
                        }
                        auth.refused += 1;
                        offered.push(public);
                    }
                    // The agent would not sign (a confirm key denied, a key gone from it):
                    // russh has abandoned the attempt and the next identity may go on.
                    Err(russh::AgentAuthError::Key(_)) => {
                        agent.not_signed += 1;
                        if auth.handle.is_closed() {
                            return Err(auth.closed_error(agent_keys));
                        }
                    }
                    Err(russh::AgentAuthError::Send(_)) => {
                        return Err(auth.closed_error(agent_keys));
                    }
                }
            }
        }
        let agent_offered = auth.refused > 0;
        for file in &self.files {
            let Ok(key) = &file.key else { continue };
            if offered.iter().any(|p| same_key(Some(key.public_key()), p)) {
                continue;
            }
            let hash = auth.rsa_hash(key.public_key()).await?;
            let fingerprint = known_hosts::fingerprint(key.public_key());
            let key = PrivateKeyWithHashAlg::new(Arc::clone(key), hash);
            match auth
                .handle
                .authenticate_publickey(auth.user.to_string(), key)
                .await
            {
                Ok(AuthResult::Success) => {
                    return Ok(Some(LoginIdentity::File {
                        path: file.path.clone(),
                        fingerprint,
                    }))
                }
                Ok(failure) => {
                    if auth.closed(&failure) {
                        return Err(auth.closed_error(agent_offered && agent_keys));
                    }
                    auth.refused += 1;
                }
                Err(russh::Error::SendError) => {
                    return Err(auth.closed_error(agent_offered && agent_keys))
                }
                Err(e) => return Err(handshake_error(e, Phase::Authenticating)),
            }
        }
        Ok(None)
    }

    fn agent_attempt(&self) -> Option<AgentAttempt> {
        self.agent.as_ref().map(|a| AgentAttempt {
            socket: a.agent.socket().to_path_buf(),
            outcome: match &a.ids {
                Ok(ids) => AgentOutcome::Offered {
                    keys: ids.len(),
                    not_signed: a.not_signed,
                },
                Err(e) => AgentOutcome::Unavailable(e.clone()),
            },
        })
    }

    fn tried(&self) -> Vec<IdentityAttempt> {
        self.files
            .iter()
            .map(|f| IdentityAttempt {
                path: f.path.clone(),
                skipped: f.key.as_ref().err().cloned(),
            })
            .collect()
    }
}

/// Whether `a` is the key `b` (comments aside).
fn same_key(a: Option<&PublicKey>, b: &PublicKey) -> bool {
    a.is_some_and(|a| a.key_data() == b.key_data())
}

/// What an SSH connection runs over: a TCP stream, or a jump host's direct-tcpip channel.
trait Transport: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Transport for T {}

/// Resolves and connects to each address in turn, like OpenSSH.
async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, SshError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| SshError::Resolve {
            host: host.to_string(),
            detail: e.to_string(),
        })?
        .collect();
    let mut last: Option<SshError> = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // Commands and replies are small; Nagle would only add latency.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = Some(SshError::Refused {
                    addr: addr.to_string(),
                })
            }
            Err(e) => {
                last = Some(SshError::Unreachable {
                    addr: addr.to_string(),
                    detail: e.to_string(),
                })
            }
        }
    }
    Err(last.unwrap_or_else(|| SshError::Resolve {
        host: host.to_string(),
        detail: "no addresses found".to_string(),
    }))
}

fn russh_config(cfg: &ConnectConfig, known: &KnownHosts) -> client::Config {
    let defaults = Preferred::default();

    // curve25519-sha256 first: every OpenSSH since 6.5 has it and it costs a
    // fraction of the post-quantum hybrid's CPU, which adds up when opening
    // hundreds of connections from one machine. The rest stay as fallbacks.
    let mut kex = vec![russh::kex::CURVE25519];
    kex.extend(
        defaults
            .kex
            .iter()
            .copied()
            .filter(|k| *k != russh::kex::CURVE25519),
    );

    // Ask for a host key type we already know for this host, as OpenSSH
    // does; otherwise a host known only by its RSA key would present
    // ed25519 and look like a changed key.
    let known_algs = known.known_algorithms(&cfg.host, cfg.port);
    let is_known = |a: &russh::keys::Algorithm| {
        known_algs
            .iter()
            .any(|k| k == a || (k.clone().is_rsa() && a.clone().is_rsa()))
    };
    let mut key_algs: Vec<_> = defaults
        .key
        .iter()
        .filter(|a| is_known(a))
        .cloned()
        .collect();
    key_algs.extend(defaults.key.iter().filter(|a| !is_known(a)).cloned());
    // Ask for a host certificate only where an @cert-authority line could vouch for it, as
    // OpenSSH does; a server without one still answers with its plain key. Certificate
    // types go first in the offer, in the order of the plain ones.
    let cert_algs: Vec<_> = if known.has_cert_authority(&cfg.host, cfg.port) {
        key_algs.clone()
    } else {
        Vec::new()
    };

    let keepalive = (!cfg.keepalive_interval.is_zero()).then_some(cfg.keepalive_interval);
    // Backstop for what keepalives cannot see: russh's writer blocks without
    // a timer when the peer stops reading, and a stalled handshake left
    // behind by our connect timeout would otherwise linger forever.
    let inactivity = keepalive.map(|k| {
        let by_keepalive = k.saturating_mul(
            u32::try_from(cfg.keepalive_max)
                .unwrap_or(u32::MAX)
                .saturating_add(2),
        );
        by_keepalive.max(cfg.connect_timeout.saturating_add(k))
    });

    client::Config {
        keepalive_interval: keepalive,
        keepalive_max: cfg.keepalive_max,
        inactivity_timeout: inactivity,
        nodelay: true,
        preferred: Preferred {
            kex: Cow::Owned(kex),
            key: Cow::Owned(key_algs),
            host_key_certificates: Cow::Owned(cert_algs),
            ..defaults
        },
        ..Default::default()
    }
}

/// Maps a russh failure before authentication completed.
fn handshake_error(e: russh::Error, phase: Phase) -> SshError {
    use std::io::ErrorKind as Io;
    match e {
        russh::Error::Disconnect
        | russh::Error::HUP
        | russh::Error::SendError
        | russh::Error::RecvError => SshError::Closed { phase },
        russh::Error::IO(ref io)
            if matches!(
                io.kind(),
                Io::UnexpectedEof | Io::ConnectionReset | Io::BrokenPipe | Io::ConnectionAborted
            ) =>
        {
            SshError::Closed { phase }
        }
        other => SshError::Protocol {
            phase,
            detail: other.to_string(),
        },
    }
}

/// Maps a russh failure on an established connection (channel work).
pub(crate) fn channel_error(e: russh::Error, shared: &Shared) -> SshError {
    match e {
        russh::Error::ChannelOpenFailure(reason) => SshError::ChannelOpen {
            detail: format!("{reason:?}"),
        },
        russh::Error::Disconnect
        | russh::Error::HUP
        | russh::Error::SendError
        | russh::Error::RecvError
        | russh::Error::IO(_) => SshError::ConnectionLost {
            reason: shared.disconnect_reason(),
        },
        other => SshError::ChannelOpen {
            detail: other.to_string(),
        },
    }
}

fn describe_disconnect(e: &russh::Error) -> String {
    match e {
        russh::Error::KeepaliveTimeout => "no reply to keepalives".to_string(),
        russh::Error::InactivityTimeout => {
            "nothing received from the server for too long".to_string()
        }
        russh::Error::Disconnect | russh::Error::HUP => "connection closed by remote".to_string(),
        // russh says "early eof" for a peer that vanished without a word (killed host).
        russh::Error::IO(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            "connection closed by remote".to_string()
        }
        other => other.to_string(),
    }
}

impl Session {
    /// Open a new session channel and exec `command` (a string given to the
    /// remote user's shell).
    ///
    /// Waits (up to `connect_timeout`) for the server to confirm the channel
    /// and accept the exec request, so a refused command is an error here
    /// rather than a silent empty [`Exec`].
    pub async fn exec(&self, command: &str) -> Result<Exec, SshError> {
        let channel = self.open_channel().await?;
        self.start(channel, command).await
    }

    /// Opens a session channel now for a command sent later by [`Session::exec_on`], so that
    /// the channel's round trip overlaps whatever runs meanwhile (the step before it): on a
    /// host far away, every round trip saved is one the whole run waits less.
    pub async fn open(&self) -> Opened {
        Opened(self.open_channel().await)
    }

    /// [`Session::exec`] on a channel [`Session::open`] opened; on a fresh channel when that
    /// one could not be opened (a refusal then is this command's, with its own error).
    pub async fn exec_on(&self, opened: Opened, command: &str) -> Result<Exec, SshError> {
        match opened.0 {
            Ok(channel) => self.start(channel, command).await,
            Err(_) => self.exec(command).await,
        }
    }

    /// Opens a session channel, waiting at most `connect_timeout` for the server.
    async fn open_channel(&self) -> Result<Channel<client::Msg>, SshError> {
        match tokio::time::timeout(self.op_timeout, self.handle.channel_open_session()).await {
            Ok(r) => r.map_err(|e| channel_error(e, &self.shared)),
            Err(_) => Err(SshError::ChannelTimeout {
                after: self.op_timeout,
            }),
        }
    }

    /// Sends `command` on `channel` and waits (at most `connect_timeout`) for the server to
    /// accept it.
    async fn start(&self, channel: Channel<client::Msg>, command: &str) -> Result<Exec, SshError> {
        let res = tokio::time::timeout(self.op_timeout, async {
            let mut exec = Exec::new(channel, Arc::clone(&self.shared));
            exec.start(command).await?;
            Ok(exec)
        })
        .await;
        match res {
            Ok(r) => r,
            Err(_) => Err(SshError::ChannelTimeout {
                after: self.op_timeout,
            }),
        }
    }

    /// Asks the server to open a TCP connection to `host:port` (resolved on its side) and
    /// returns it as a stream: how a jump host carries a target's connection. Waits at most
    /// `connect_timeout` for the server's answer.
    async fn direct_tcpip(
        &self,
        host: &str,
        port: u16,
    ) -> Result<russh::ChannelStream<russh::client::Msg>, SshError> {
        let jump = self.target.clone();
        let to = known_hosts::lookup_name(host, port);
        let res = tokio::time::timeout(
            self.op_timeout,
            // The originator is informational (sshd logs it); OpenSSH sends 127.0.0.1:0 too.
            self.handle
                .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0),
        )
        .await;
        match res {
            Ok(Ok(channel)) => Ok(channel.into_stream()),
            Ok(Err(russh::Error::ChannelOpenFailure(reason))) => Err(SshError::Forward {
                jump,
                to,
                prohibited: matches!(
                    reason,
                    russh::ChannelOpenFailure::AdministrativelyProhibited
                ),
                detail: match reason {
                    russh::ChannelOpenFailure::AdministrativelyProhibited => {
                        "forwarding refused (AllowTcpForwarding?)".to_string()
                    }
                    russh::ChannelOpenFailure::ConnectFailed => "connect failed".to_string(),
                    russh::ChannelOpenFailure::UnknownChannelType => {
                        "direct-tcpip channels not supported".to_string()
                    }
                    russh::ChannelOpenFailure::ResourceShortage => "resource shortage".to_string(),
                    other => format!("{other:?}"),
                },
            }),
            Ok(Err(e)) => Err(SshError::JumpLost {
                jump,
                reason: match channel_error(e, &self.shared) {
                    SshError::ConnectionLost { reason: Some(r) } => r,
                    other => other.to_string(),
                },
            }),
            Err(_) => Err(SshError::Forward {
                jump,
                to,
                prohibited: false,
                detail: format!(
                    "no answer within {}",
                    capo_inventory::duration::format(self.op_timeout)
                ),
            }),
        }
    }

    /// Why the connection ended (e.g. `connection closed by remote`), once it has.
    pub fn closed_reason(&self) -> Option<String> {
        self.shared.disconnect_reason()
    }

    /// True when this connection runs inside a jump host's and that one has ended: what
    /// went wrong here is the jump host's doing.
    pub fn jump_lost(&self) -> bool {
        self.shared.jump_lost().is_some()
    }

    /// True once the connection is gone (server closed it, keepalives
    /// failed, ...); a closed session cannot run commands.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// `user@host` or `user@[host]:port`, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The identity the server accepted.
    pub fn identity(&self) -> &LoginIdentity {
        &self.identity
    }

    /// The host key the server presented and why it was trusted.
    pub fn host_key(&self) -> Option<HostKeySeen> {
        lock(&self.shared.host_key).clone()
    }

    /// Polite disconnect, bounded by a short timeout; never errors.
    pub async fn close(mut self) {
        // Claim the disconnect reason first, so an `Exec` outliving its
        // session reports this rather than "closed by remote".
        self.shared
            .set_disconnect("session closed locally".to_string());
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = self
                .handle
                .disconnect(Disconnect::ByApplication, "", "en")
                .await;
            // Wait for russh to flush the disconnect and drop the socket.
            let _ = (&mut self.handle).await;
        })
        .await;
    }
}

struct ClientHandler {
    /// Dropped with the handler, which tells [`Shared::gone`] waiters.
    _alive: watch::Sender<()>,
    host: String,
    port: u16,
    policy: HostKeyPolicy,
    known: Arc<KnownHosts>,
    known_hosts_path: PathBuf,
    /// Where accept-new records new keys; `None` under other policies.
    recorder: Option<Arc<Recorder>>,
    shared: Arc<Shared>,
}

impl ClientHandler {
    async fn verify(&self, key: &PublicKey) -> Result<HostKeyTrust, SshError> {
        let host = known_hosts::lookup_name(&self.host, self.port);
        let key_type = key.algorithm().as_str().to_string();
        let fingerprint = known_hosts::fingerprint(key);
        match self.known.check(&self.host, self.port, key) {
            HostKeyStatus::Match { .. } => Ok(HostKeyTrust::Known),
            HostKeyStatus::Revoked { line } => Err(SshError::HostKeyRevoked {
                host,
                key_type,
                fingerprint,
                known_hosts: self.known_hosts_path.clone(),
                line,
            }),
            HostKeyStatus::Mismatch { expected } => Err(SshError::HostKeyChanged {
                host,
                key_type,
                fingerprint,
                expected,
            }),
            HostKeyStatus::Unknown => match (&self.recorder, self.policy) {
                (Some(recorder), HostKeyPolicy::AcceptNew) => {
                    // The file is read again under its lock: another connection or
                    // process may have recorded this host since the run started.
                    match recorder.record(&self.host, self.port, key).await {
                        Ok(Recorded::Added { .. }) => Ok(HostKeyTrust::Recorded),
                        Ok(_) => Ok(HostKeyTrust::Known),
                        Err(RecordError::Revoked { line }) => Err(SshError::HostKeyRevoked {
                            host,
                            key_type,
                            fingerprint,
                            known_hosts: self.known_hosts_path.clone(),
                            line,
                        }),
                        Err(RecordError::Changed { expected }) => Err(SshError::HostKeyChanged {
                            host,
                            key_type,
                            fingerprint,
                            expected,
                        }),
                        Err(RecordError::Io(e)) => Err(SshError::KnownHostsWrite {
                            host,
                            path: self.known_hosts_path.clone(),
                            detail: e.to_string(),
                        }),
                    }
                }
                _ => Err(SshError::HostKeyUnknown {
                    host,
                    known_hosts: self.known_hosts_path.clone(),
                    key_type,
                    fingerprint,
                }),
            },
        }
    }
}

/// A host certificate is good if an @cert-authority line vouches for it. If not, its key
/// is still good when a plain line lists it (OpenSSH falls back the same way), unless it or
/// its CA is revoked. A refused certificate is never recorded, not even by accept-new: a
/// host whose CA is trusted and whose certificate is wrong is a problem to look at, not a
/// new host.
fn verify_certificate(
    known: &KnownHosts,
    host: &str,
    port: u16,
    known_hosts_path: &std::path::Path,
    cert: &russh::keys::Certificate,
) -> Result<HostKeyTrust, SshError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let problem = match known.check_certificate(host, port, cert, now) {
        Ok(_) => return Ok(HostKeyTrust::Certificate),
        Err(p) => p,
    };
    if !problem.is_revocation() {
        let key = PublicKey::new(cert.public_key().clone(), "");
        if let HostKeyStatus::Match { .. } = known.check(host, port, &key) {
            return Ok(HostKeyTrust::Known);
        }
    }
    Err(SshError::HostCertificate {
        host: known_hosts::lookup_name(host, port),
        known_hosts: known_hosts_path.to_path_buf(),
        problem: Box::new(problem),
    })
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let (key_type, fingerprint) = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => (
                key.algorithm().as_str().to_string(),
                known_hosts::fingerprint(key),
            ),
            PublicKeyOrCertificate::Certificate(cert) => {
                let key = PublicKey::new(cert.public_key().clone(), "");
                (
                    key.algorithm().as_str().to_string(),
                    known_hosts::fingerprint(&key),
                )
            }
        };
        let seen = |trust| HostKeySeen {
            key_type: key_type.clone(),
            fingerprint: fingerprint.clone(),
            trust,
        };
        if self.policy == HostKeyPolicy::Off {
            *lock(&self.shared.host_key) = Some(seen(HostKeyTrust::Unchecked));
            return Ok(true);
        }
        let verdict = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.verify(key).await,
            PublicKeyOrCertificate::Certificate(cert) => {
                // The CA signature check is CPU work (tens of microseconds optimized, tens
                // of milliseconds in a debug build): off the runtime's threads.
                let known = Arc::clone(&self.known);
                let (host, port) = (self.host.clone(), self.port);
                let path = self.known_hosts_path.clone();
                let cert = cert.clone();
                tokio::task::spawn_blocking(move || {
                    verify_certificate(&known, &host, port, &path, &cert)
                })
                .await
                .unwrap_or_else(|e| {
                    Err(SshError::Protocol {
                        phase: Phase::KeyExchange,
                        detail: format!("host certificate check failed: {e}"),
                    })
                })
            }
        };
        match verdict {
            Ok(trust) => {
                *lock(&self.shared.host_key) = Some(seen(trust));
                Ok(true)
            }
            Err(e) => {
                self.shared.set_host_key_error(e);
                Ok(false)
            }
        }
    }

    async fn disconnected(
        &mut self,
        reason: DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        // Recorded before russh drops the channels, so an `Exec` that sees
        // its channel vanish can already tell why.
        match reason {
            DisconnectReason::ReceivedDisconnect(info) => {
                let msg = if info.message.is_empty() {
                    format!("server disconnected: {:?}", info.reason_code)
                } else {
                    format!("server disconnected: {}", info.message)
                };
                self.shared.set_disconnect(msg);
                Ok(())
            }
            DisconnectReason::Error(e) => {
                self.shared.set_disconnect(describe_disconnect(&e));
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn session_is_send_sync() {
        assert_send_sync::<Session>();
    }

    #[tokio::test]
    async fn gone_resolves_only_when_the_handler_is_dropped() {
        let (shared, alive) = Shared::new();
        let wait = tokio::time::timeout(Duration::from_millis(50), shared.gone()).await;
        assert!(wait.is_err(), "gone() resolved while the sender lives");
        drop(alive);
        let wait = tokio::time::timeout(Duration::from_secs(5), shared.gone()).await;
        assert!(
            wait.is_ok(),
            "gone() did not resolve after the sender was dropped"
        );
        // and again: every waiter sees it, not just the first
        let wait = tokio::time::timeout(Duration::from_secs(5), shared.gone()).await;
        assert!(wait.is_ok());
    }

    #[test]
    fn a_refused_certificate_falls_back_to_a_plain_line_unless_revoked() {
        use crate::known_hosts::tests::{CA, CERT_GOOD, HOST};
        use crate::known_hosts::CertProblem;
        let cert = match russh::keys::Certificate::from_openssh(CERT_GOOD) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let kh = std::path::Path::new("/kh");
        // The vector is valid in 2030 only: refused today, by its window.
        let ca_only = KnownHosts::parse(&format!("@cert-authority * {CA}\n"), kh);
        match verify_certificate(&ca_only, "127.0.0.1", 2222, kh, &cert) {
            Err(SshError::HostCertificate { problem, .. }) => {
                assert!(
                    matches!(*problem, CertProblem::NotYetValid { .. }),
                    "{problem:?}"
                )
            }
            other => panic!("{other:?}"),
        }
        // Its key listed plainly: accepted, as OpenSSH falls back to the plain key.
        let plain = format!("@cert-authority * {CA}\n[127.0.0.1]:2222 {HOST}\n");
        let both = KnownHosts::parse(&plain, kh);
        assert!(verify_certificate(&both, "127.0.0.1", 2222, kh, &cert).is_ok());
        // ... but never with its CA revoked.
        let revoked = KnownHosts::parse(&format!("{plain}@revoked * {CA}\n"), kh);
        match verify_certificate(&revoked, "127.0.0.1", 2222, kh, &cert) {
            Err(SshError::HostCertificate { problem, .. }) => {
                assert!(matches!(*problem, CertProblem::CaRevoked { line: 3, .. }))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn config_defaults() {
        let cfg = ConnectConfig::new("web1", 22, "root");
        assert_eq!(cfg.keepalive_interval, Duration::from_secs(15));
        assert_eq!(cfg.keepalive_max, 3);
        assert_eq!(cfg.host_key_policy, HostKeyPolicy::Strict);
        assert_eq!(cfg.identity_files.len(), 3);
        assert!(cfg.known_hosts.ends_with(".ssh/known_hosts"));
    }

    #[test]
    fn russh_config_prefers_curve25519_and_known_key_types() {
        let mut cfg = ConnectConfig::new("web1", 22, "root");
        cfg.connect_timeout = Duration::from_secs(5);
        let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCwzHVEJWDDwB8D3t9Zaxc7ysJgucsFZlqtDKww715P6AZVXaKpvpL+l76JcK9n6tRDTRKw+z/i76YA+Kmj1g+RyBIwCkngm/zjYmLr8mxaW8mH3VbDwUK7b67B7tVbQu5cb3QIW0NKr21BpwVpWi6IZ9gaYMGw48GDZbVCbu7ji3C1uTiUNCOct4R1PChBUON4zKKCqCm3ivkZlIc7BvrO2P0vB2KlNF4sap0/2e1Bls5xPTVBnP7Xbi59Fj4BFK5dBYe/1tbES7RKXeGJXdgBTSFFaCdS6RfB4qfYIhjcsAk4YSS2xzKdi8w2o0/YQw7RLoGN7LiYRT6pMc4FOMiH";
        let known = KnownHosts::parse(&format!("web1 {rsa}\n"), std::path::Path::new("/kh"));
        let c = russh_config(&cfg, &known);
        assert_eq!(c.preferred.kex.first(), Some(&russh::kex::CURVE25519));
        assert!(c.preferred.kex.contains(&russh::kex::MLKEM768X25519_SHA256));
        assert_eq!(
            c.preferred.kex.len(),
            Preferred::default().kex.len(),
            "only reordered"
        );
        assert!(c.preferred.key.iter().take(3).all(|a| a.clone().is_rsa()));
        assert_eq!(c.keepalive_interval, Some(Duration::from_secs(15)));
        assert_eq!(c.keepalive_max, 3);
        assert_eq!(c.inactivity_timeout, Some(Duration::from_secs(75)));
        assert!(c.nodelay);

        let c = russh_config(&cfg, &KnownHosts::default());
        assert_eq!(
            c.preferred.key.first(),
            Some(&russh::keys::Algorithm::Ed25519)
        );

        assert!(
            c.preferred.host_key_certificates.is_empty(),
            "no CA, no cert"
        );
        let ca = "@cert-authority web* ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAFhXbfrH/uz3RRB54tqZYfhzs7uKemo5Kw3/hxupAZu\n";
        let known = KnownHosts::parse(ca, std::path::Path::new("/kh"));
        let c = russh_config(&cfg, &known);
        assert_eq!(
            c.preferred.host_key_certificates.first(),
            Some(&russh::keys::Algorithm::Ed25519)
        );
        assert_eq!(c.preferred.host_key_certificates, c.preferred.key);
        cfg.host = "db1".into();
        let c = russh_config(&cfg, &known);
        assert!(
            c.preferred.host_key_certificates.is_empty(),
            "CA for web* only"
        );

        cfg.keepalive_interval = Duration::ZERO;
        let c = russh_config(&cfg, &KnownHosts::default());
        assert_eq!(c.keepalive_interval, None);
        assert_eq!(c.inactivity_timeout, None);
    }
}
