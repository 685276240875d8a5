//! Identity and known_hosts files read once per run and shared by every connection, with the
//! passphrases given for encrypted keys and the ssh-agents the run uses.
//!
//! A rollout opens one connection per host, and every host usually names the same key and
//! known_hosts file. Reading and parsing them per connection costs O(hosts x lines): at
//! 10,000 hosts with a known_hosts line each, that is 10^8 parsed lines. Likewise the agent
//! is asked for its identities once per run, not once per host.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::keys::PrivateKey;
use tokio::sync::OnceCell;

use crate::agent::Agent;
use crate::error::SkipReason;
use crate::identity::{self, KeyFile};
use crate::known_hosts::{KnownHosts, Recorder};
use crate::ConnectConfig;

type Cell<T> = Arc<OnceCell<T>>;

/// A loaded identity file: a usable key or why it is skipped.
pub(crate) type LoadedKey = Arc<KeyFile>;

/// An encrypted key after the run's passphrase prompt: decrypted, or why not.
pub(crate) type Unlocked = Result<Arc<PrivateKey>, SkipReason>;

/// A loaded known_hosts file, or why it could not be read.
pub(crate) type LoadedKnownHosts = Result<Arc<KnownHosts>, String>;

/// Files already read, by path. Set [`crate::ConnectConfig::cache`] to share one between
/// connections; its contents are never re-read, so make a new one for each run.
#[derive(Default)]
pub struct FileCache {
    identities: Mutex<HashMap<PathBuf, Cell<LoadedKey>>>,
    known_hosts: Mutex<HashMap<PathBuf, Cell<LoadedKnownHosts>>>,
    /// accept-new's writer of each known_hosts file: one per file, so that the run's
    /// appends to it are serialized and each reads only what was added since the last.
    recorders: Mutex<HashMap<PathBuf, Arc<Recorder>>>,
    /// Encrypted identity files after [`FileCache::unlock`] or [`FileCache::give_up`].
    unlocked: Mutex<HashMap<PathBuf, Unlocked>>,
    /// ssh-agents by socket path.
    agents: Mutex<HashMap<PathBuf, Arc<Agent>>>,
}

/// Why no passphrase unlocked an encrypted key file (see [`FileCache::give_up`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// This many passphrases were tried and all were wrong.
    WrongPassphrase {
        /// How many.
        tries: u32,
    },
    /// The person at the terminal gave an empty passphrase: skip the key.
    NoPassphrase,
}

impl fmt::Debug for FileCache {
    // Private keys have no business in debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCache").finish_non_exhaustive()
    }
}

/// The cell for `path`, created empty when new. Concurrent callers for one path get the same
/// cell, so the file is read once and the others wait for that read.
fn cell<T>(map: &Mutex<HashMap<PathBuf, Cell<T>>>, path: &Path) -> Cell<T> {
    lock(map).entry(path.to_path_buf()).or_default().clone()
}

/// A poisoned lock only means another thread panicked mid-update of a plain map; the map is
/// still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FileCache {
    /// The encrypted identity files some of `configs` would need a passphrase for, each
    /// once, in the order first met: encrypted keys not already unlocked whose public key
    /// the config's agent does not hold (a key the agent holds is signed with there, as
    /// OpenSSH does). Reads the files and asks each agent for its identities, which the
    /// connections of the run then reuse; `configs` should use this cache.
    pub async fn locked_keys<'a>(
        &self,
        configs: impl IntoIterator<Item = &'a ConnectConfig>,
    ) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for cfg in configs {
            let mut agent_keys = None;
            for path in &cfg.identity_files {
                if out.contains(path) || self.unlocked(path).is_some() {
                    continue;
                }
                let file = identity::load(path, Some(self)).await;
                if file.key.as_ref().err() != Some(&SkipReason::Encrypted) {
                    continue;
                }
                if agent_keys.is_none() {
                    agent_keys = Some(match &cfg.identity_agent {
                        Some(socket) => self
                            .agent(socket)
                            .identities(cfg.connect_timeout)
                            .await
                            .unwrap_or_default(),
                        None => Arc::default(),
                    });
                }
                let held = agent_keys.as_ref().is_some_and(|ids| {
                    ids.iter()
                        .any(|id| file.matches(&crate::agent::public_key(id)))
                });
                if !held {
                    out.push(path.clone());
                }
            }
        }
        out
    }

    /// Tries `passphrase` on the encrypted key file `path` (read by [`Self::locked_keys`]);
    /// when it is right, every connection of the run uses the decrypted key, which stays in
    /// this process's memory only. Returns whether it was right. CPU-heavy (the key
    /// derivation is made slow on purpose): call it outside async code.
    pub fn unlock(&self, path: &Path, passphrase: &str) -> bool {
        let file = cell(&self.identities, path).get().cloned();
        let Some(key) = file.and_then(|f| f.decrypt(passphrase)) else {
            return false;
        };
        lock(&self.unlocked).insert(path.to_path_buf(), Ok(Arc::new(key)));
        true
    }

    /// Records that no passphrase will come for `path`, so hosts say why it was skipped.
    pub fn give_up(&self, path: &Path, why: GiveUp) {
        let reason = match why {
            GiveUp::WrongPassphrase { tries } => SkipReason::WrongPassphrase { tries },
            GiveUp::NoPassphrase => SkipReason::NoPassphrase,
        };
        lock(&self.unlocked).insert(path.to_path_buf(), Err(reason));
    }

    /// What the run's passphrase prompt made of an encrypted key file, if anything.
    pub(crate) fn unlocked(&self, path: &Path) -> Option<Unlocked> {
        lock(&self.unlocked).get(path).cloned()
    }

    /// The agent at `socket`, the same one for every connection of the run.
    pub(crate) fn agent(&self, socket: &Path) -> Arc<Agent> {
        lock(&self.agents)
            .entry(socket.to_path_buf())
            .or_insert_with(|| Arc::new(Agent::new(socket)))
            .clone()
    }

    pub(crate) async fn identity<F, Fut>(&self, path: &Path, load: F) -> LoadedKey
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = LoadedKey>,
    {
        cell(&self.identities, path).get_or_init(load).await.clone()
    }

    pub(crate) fn recorder(&self, path: &Path) -> Arc<Recorder> {
        let mut map = self.recorders.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(path.to_path_buf())
            .or_insert_with(|| Arc::new(Recorder::new(path)))
            .clone()
    }

    pub(crate) async fn known_hosts<F, Fut>(&self, path: &Path, load: F) -> LoadedKnownHosts
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = LoadedKnownHosts>,
    {
        cell(&self.known_hosts, path)
            .get_or_init(load)
            .await
            .clone()
    }
}
