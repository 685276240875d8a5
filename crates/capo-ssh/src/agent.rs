//! ssh-agent: its identities (listed once per run) and signatures (through a small pool of
//! agent connections shared by every host's authentication).
//!
//! Why a pool rather than a connection per host: ssh-agent serves one request at a time, so
//! more connections add no throughput, and hundreds of hosts authenticating at once would
//! otherwise open hundreds of connections at once, overflowing the agent socket's listen
//! backlog (a non-blocking connect then fails with `EAGAIN`). Why not one connection: a
//! request that waits (a confirm key's dialog) would hold every other host up behind it in
//! our own queue too.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{HashAlg, PublicKey};
use tokio::net::UnixStream;
use tokio::sync::{OnceCell, Semaphore};

/// Agent connections open at most at once, per agent socket and run.
const POOL_SIZE: usize = 8;

/// Idle agent connections kept for reuse.
type Idle = Mutex<Vec<AgentClient<UnixStream>>>;

/// One agent socket, as a run sees it.
pub(crate) struct Agent {
    socket: PathBuf,
    listing: OnceCell<Listing>,
    idle: Idle,
    slots: Semaphore,
}

/// What the agent said when asked for its identities: the identities, or why it could not
/// be asked (then it is passed over, as OpenSSH does).
pub(crate) type Listing = Result<Arc<Vec<AgentIdentity>>, String>;

impl Agent {
    /// The agent at `socket`; nothing is connected yet.
    pub(crate) fn new(socket: &Path) -> Agent {
        Agent {
            socket: socket.to_path_buf(),
            listing: OnceCell::new(),
            idle: Mutex::default(),
            slots: Semaphore::new(POOL_SIZE),
        }
    }

    /// The agent socket's path.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// The agent's identities, asked for once: a key added to the agent later in the run is
    /// not seen, and one removed later only fails to sign, which moves on to the next
    /// identity. `limit` bounds the wait.
    pub(crate) async fn identities(&self, limit: Duration) -> Listing {
        self.listing
            .get_or_init(|| async {
                match tokio::time::timeout(limit, self.list()).await {
                    Ok(r) => r,
                    Err(_) => Err(format!(
                        "no answer within {}",
                        capo_inventory::duration::format(limit)
                    )),
                }
            })
            .await
            .clone()
    }

    async fn list(&self) -> Listing {
        let _slot = self.slots.acquire().await.map_err(|e| e.to_string())?;
        let mut client = self.client().await?;
        let ids = client
            .request_identities()
            .await
            .map_err(|e| describe(&e))?;
        self.put_back(client);
        Ok(Arc::new(ids))
    }

    /// An idle connection, or a new one.
    async fn client(&self) -> Result<AgentClient<UnixStream>, String> {
        let idle = lock(&self.idle).pop();
        match idle {
            Some(c) => Ok(c),
            None => AgentClient::connect_uds(&self.socket)
                .await
                .map_err(|e| describe(&e)),
        }
    }

    fn put_back(&self, client: AgentClient<UnixStream>) {
        lock(&self.idle).push(client);
    }

    /// Asks the agent to sign `data` with `identity`. The agent refusing (a confirm key
    /// denied, a key removed since the listing) is [`russh::keys::Error::AgentFailure`].
    pub(crate) async fn sign(
        &self,
        identity: &AgentIdentity,
        hash: Option<HashAlg>,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, russh::keys::Error> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| russh::keys::Error::AgentProtocolError)?;
        // Bound first: a guard in the `match` head would live across the connect's await.
        let idle = lock(&self.idle).pop();
        let mut client = match idle {
            Some(c) => c,
            None => AgentClient::connect_uds(&self.socket).await?,
        };
        let res = client.sign_request(identity, hash, data).await;
        // A refusal is a complete answer and leaves the connection usable; anything else
        // (I/O, a garbled reply) may have left it mid-message.
        if matches!(res, Ok(_) | Err(russh::keys::Error::AgentFailure)) {
            self.put_back(client);
        }
        res
    }
}

/// The public key an agent identity proves, certificate or not.
pub(crate) fn public_key(id: &AgentIdentity) -> PublicKey {
    match id {
        AgentIdentity::PublicKey { key, .. } => key.clone(),
        AgentIdentity::Certificate { certificate, .. } => {
            PublicKey::new(certificate.public_key().clone(), "")
        }
    }
}

/// Signs through [`Agent::sign`] for russh's `authenticate_*_with`.
pub(crate) struct Signer<'a>(pub &'a Agent);

impl russh::Signer for Signer<'_> {
    type Error = russh::AgentAuthError;

    async fn auth_sign(
        &mut self,
        key: &AgentIdentity,
        hash_alg: Option<HashAlg>,
        to_sign: Vec<u8>,
    ) -> Result<Vec<u8>, Self::Error> {
        Ok(self.0.sign(key, hash_alg, to_sign).await?)
    }
}

/// A poisoned lock only means another task panicked while pushing or popping; the list is
/// still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One line for an agent failure.
fn describe(e: &russh::keys::Error) -> String {
    match e {
        russh::keys::Error::IO(io) => io.to_string(),
        russh::keys::Error::AgentFailure => "the agent refused".to_string(),
        other => other.to_string(),
    }
}
