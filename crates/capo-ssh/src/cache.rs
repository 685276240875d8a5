//! Identity and known_hosts files read once per run and shared by every connection.
//!
//! A rollout opens one connection per host, and every host usually names the same key and
//! known_hosts file. Reading and parsing them per connection costs O(hosts x lines): at
//! 10,000 hosts with a known_hosts line each, that is 10^8 parsed lines.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::keys::PrivateKey;
use tokio::sync::OnceCell;

use crate::error::SkipReason;
use crate::known_hosts::{KnownHosts, Recorder};

type Cell<T> = Arc<OnceCell<T>>;

/// A loaded identity file: a usable key or why it is skipped.
pub(crate) type LoadedKey = Result<Arc<PrivateKey>, SkipReason>;

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
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(path.to_path_buf()).or_default().clone()
}

impl FileCache {
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
