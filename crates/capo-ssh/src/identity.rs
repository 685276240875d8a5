//! Loading private keys from identity files.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::keys::{PrivateKey, PublicKey};

use crate::cache::{FileCache, LoadedKey};
use crate::error::SkipReason;

/// An identity file as read from disk.
pub(crate) struct KeyFile {
    /// The public half when it can be known without a passphrase: from the key file itself
    /// (an OpenSSH key file keeps it in the clear, encrypted or not), else from the `.pub`
    /// file next to it. Used to match agent identities (`identities_only`) and to not ask
    /// for a passphrase the agent makes unnecessary.
    pub public: Option<PublicKey>,
    /// The usable key, or why it is skipped.
    pub key: Result<Arc<PrivateKey>, SkipReason>,
    /// An encrypted key file's text, kept to decrypt it once a passphrase is given (it is
    /// the encrypted form: nothing secret without the passphrase).
    encrypted: Option<String>,
}

impl std::fmt::Debug for KeyFile {
    // Private keys have no business in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("skipped", &self.key.as_ref().err())
            .finish_non_exhaustive()
    }
}

impl KeyFile {
    /// Whether `public` is this file's key.
    pub(crate) fn matches(&self, public: &PublicKey) -> bool {
        self.public
            .as_ref()
            .is_some_and(|p| p.key_data() == public.key_data())
    }

    /// Decrypts an encrypted key file with `passphrase`. `None` when the passphrase is
    /// wrong (or the file was not an encrypted key to begin with).
    pub(crate) fn decrypt(&self, passphrase: &str) -> Option<PrivateKey> {
        let text = self.encrypted.as_deref()?;
        russh::keys::decode_secret_key(text, Some(passphrase)).ok()
    }
}

/// An identity file after loading: either a usable key or why it is skipped.
pub(crate) struct Loaded {
    pub path: PathBuf,
    pub file: LoadedKey,
    /// The key to use: the file's, or the one decrypted with the passphrase given for it
    /// this run.
    pub key: Result<Arc<PrivateKey>, SkipReason>,
}

/// Loads every file in order. Never fails: problems become [`SkipReason`]s
/// so the auth error can say what happened to each file.
pub(crate) async fn load_all(paths: &[PathBuf], cache: Option<&FileCache>) -> Vec<Loaded> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let file = load(path, cache).await;
        let key = match (&file.key, cache) {
            (Err(SkipReason::Encrypted), Some(cache)) => {
                cache.unlocked(path).unwrap_or(Err(SkipReason::Encrypted))
            }
            (k, _) => k.clone(),
        };
        out.push(Loaded {
            path: path.clone(),
            file,
            key,
        });
    }
    out
}

/// One identity file, through the cache when there is one.
pub(crate) async fn load(path: &Path, cache: Option<&FileCache>) -> LoadedKey {
    let load = || async { Arc::new(load_one(path).await) };
    match cache {
        Some(cache) => cache.identity(path, load).await,
        None => load().await,
    }
}

async fn load_one(path: &Path) -> KeyFile {
    let (key, public, encrypted) = match load_private(path).await {
        Ok(Decoded::Plain(key)) => {
            let public = key.public_key().clone();
            (Ok(Arc::new(*key)), Some(public), None)
        }
        Ok(Decoded::Encrypted { public, text }) => (Err(SkipReason::Encrypted), public, Some(text)),
        Err(reason) => (Err(reason), None, None),
    };
    let public = match public {
        Some(p) => Some(p),
        None => read_public(path).await,
    };
    KeyFile {
        public,
        key,
        encrypted,
    }
}

/// The `.pub` file next to `path`, if there is a readable one.
async fn read_public(path: &Path) -> Option<PublicKey> {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    // A public key is one short line; a FIFO or a huge file named *.pub is not one.
    let meta = tokio::fs::metadata(&name).await.ok()?;
    if !meta.is_file() || meta.len() > 64 * 1024 {
        return None;
    }
    let text = tokio::fs::read_to_string(&name).await.ok()?;
    PublicKey::from_openssh(text.trim()).ok()
}

async fn load_private(path: &Path) -> Result<Decoded, SkipReason> {
    // stat before open: opening a FIFO (or a device) named as an identity
    // would block, and a key that is too open is skipped without being read.
    let meta = match tokio::fs::metadata(path).await {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(SkipReason::Missing),
        Err(e) => return Err(SkipReason::Unreadable(e.to_string())),
    };
    if !meta.is_file() {
        return Err(SkipReason::Unreadable("not a regular file".into()));
    }
    check_mode(&meta)?;
    let text = match read_checked(path).await {
        Ok(bytes) => bytes,
        Err(Read::Io(e)) if e.kind() == io::ErrorKind::NotFound => return Err(SkipReason::Missing),
        Err(Read::Io(e)) => return Err(SkipReason::Unreadable(e.to_string())),
        Err(Read::Skip(reason)) => return Err(reason),
    };
    // RSA key parsing does real bignum work; keep it off the runtime threads.
    match tokio::task::spawn_blocking(move || decode(&text)).await {
        Ok(r) => r,
        Err(e) => Err(SkipReason::Invalid(format!(
            "key decoding task failed: {e}"
        ))),
    }
}

/// Why [`read_checked`] returned no bytes: an I/O error to classify, or a
/// reason already decided.
enum Read {
    Io(io::Error),
    Skip(SkipReason),
}

/// Reads the file, checking the mode again on the opened handle: the
/// `stat` by path could have seen a different file than the one opened
/// (replaced in between), and what counts is the file whose bytes we use.
async fn read_checked(path: &Path) -> Result<Vec<u8>, Read> {
    use tokio::io::AsyncReadExt;

    let mut file = tokio::fs::File::open(path).await.map_err(Read::Io)?;
    let meta = file.metadata().await.map_err(Read::Io)?;
    if !meta.is_file() {
        return Err(Read::Skip(SkipReason::Unreadable(
            "not a regular file".into(),
        )));
    }
    check_mode(&meta).map_err(Read::Skip)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).await.map_err(Read::Io)?;
    Ok(bytes)
}

/// Refuses key files that group or others can access, as OpenSSH does: such
/// a key must be considered leaked, and using it anyway would hide that.
/// Unlike OpenSSH this applies whoever owns the file: when the key is not
/// ours, we can only be reading it through group or other permissions.
#[cfg(unix)]
fn check_mode(meta: &std::fs::Metadata) -> Result<(), SkipReason> {
    use std::os::unix::fs::PermissionsExt;

    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SkipReason::TooOpen { mode });
    }
    Ok(())
}

/// Elsewhere permissions are not Unix modes; nothing to check.
#[cfg(not(unix))]
fn check_mode(_meta: &std::fs::Metadata) -> Result<(), SkipReason> {
    Ok(())
}

/// A key file's contents, decoded as far as they can be without a passphrase.
enum Decoded {
    Plain(Box<PrivateKey>),
    Encrypted {
        public: Option<PublicKey>,
        text: String,
    },
}

fn decode(bytes: &[u8]) -> Result<Decoded, SkipReason> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(SkipReason::Invalid("not a text key file".into()));
    };
    // Legacy PEM and PKCS#8 say so in their headers; russh reports those as
    // generic decode errors when no passphrase is given.
    let encrypted_pem =
        text.contains("BEGIN ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED");
    let encrypted = || {
        // An OpenSSH key file keeps its public half unencrypted; legacy PEM does not.
        let public = russh::keys::ssh_key::PrivateKey::from_openssh(text)
            .ok()
            .map(|k| k.public_key().clone());
        Ok(Decoded::Encrypted {
            public,
            text: text.to_string(),
        })
    };
    match russh::keys::decode_secret_key(text, None) {
        Ok(key) => Ok(Decoded::Plain(Box::new(key))),
        Err(russh::keys::Error::KeyIsEncrypted) => encrypted(),
        Err(_) if encrypted_pem => encrypted(),
        // The decoder's own messages can quote bytes of the file; say only
        // what kind of problem it is so no key material reaches a log.
        Err(russh::keys::Error::UnsupportedKeyType { .. }) => {
            Err(SkipReason::Invalid("unsupported key type".into()))
        }
        Err(_) => Err(SkipReason::Invalid(
            "not a private key in a supported format".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn classifies_files() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let garbage = dir.path().join("garbage");
        let public = dir.path().join("id.pub");
        let enc = dir.path().join("enc");
        let ok = dir.path().join("ok");
        let writes = [
            (&garbage, "hello\n".to_string()),
            (
                &public,
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMD8n5C6F1xcFTg2/F+VX4jgMjTJb5qXri5PXgeG9O48\n"
                    .to_string(),
            ),
            (&enc, ed25519_pem(Some("secret"))),
            (&ok, ed25519_pem(None)),
        ];
        for (p, t) in writes {
            write_key_file(p, &t, 0o600).await;
        }
        let missing = dir.path().join("missing");
        let loaded = load_all(&[missing, garbage, public, enc, ok], None).await;
        let reasons: Vec<_> = loaded
            .iter()
            .map(|l| l.key.as_ref().err().cloned())
            .collect();
        assert_eq!(reasons[0], Some(SkipReason::Missing));
        assert!(matches!(reasons[1], Some(SkipReason::Invalid(_))));
        assert!(matches!(reasons[2], Some(SkipReason::Invalid(_))));
        assert_eq!(reasons[3], Some(SkipReason::Encrypted));
        assert_eq!(reasons[4], None);
    }

    #[tokio::test]
    async fn refuses_keys_open_to_group_or_others() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let pem = ed25519_pem(None);
        let mut paths = Vec::new();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o700, 0o400, 0o600] {
            let p = dir.path().join(format!("key{mode:o}"));
            write_key_file(&p, &pem, mode).await;
            paths.push((p, mode));
        }
        let only: Vec<PathBuf> = paths.iter().map(|(p, _)| p.clone()).collect();
        let loaded = load_all(&only, None).await;
        for ((path, mode), l) in paths.iter().zip(&loaded) {
            assert_eq!(&l.path, path);
            if mode & 0o077 != 0 {
                assert_eq!(
                    l.key.as_ref().err(),
                    Some(&SkipReason::TooOpen { mode: *mode }),
                    "mode {mode:o}"
                );
            } else {
                assert!(l.key.is_ok(), "mode {mode:o}: {:?}", l.key.as_ref().err());
            }
        }

        // Through `connect`: identities are checked before dialling, so this
        // never touches the network (port 9 is never reached).
        let key = &paths[0].0;
        let mut cfg = crate::ConnectConfig::new("127.0.0.1", 9, "root");
        cfg.identity_files = vec![key.clone()];
        cfg.identity_agent = None;
        let err = match crate::connect(&cfg).await {
            Ok(_) => panic!("connected with a 0644 key"),
            Err(e) => e,
        };
        assert_eq!(err.kind(), crate::ErrorKind::Auth);
        let msg = err.to_string();
        assert_eq!(
            msg,
            format!(
                "no usable identity file (tried: {} (permissions 0644 are too open: \
                 private key files must not be accessible by others))",
                key.display()
            )
        );
        assert!(!msg.contains('\n'));
        // No key material anywhere: neither the PEM body nor the Debug form.
        let debug = format!("{err:?}");
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!msg.contains(line) && !debug.contains(line));
        }
    }

    #[tokio::test]
    async fn public_halves_and_passphrases() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let enc = dir.path().join("enc");
        let gone = dir.path().join("gone");
        write_key_file(&enc, &ed25519_pem(Some("secret")), 0o600).await;
        let public = PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(
            &[7u8; 32],
        ))
        .public_key()
        .clone();
        // A missing private key still has the public half of its `.pub` (as OpenSSH).
        let line = match public.to_openssh() {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        write_key_file(
            &dir.path().join("gone.pub"),
            &format!("{line} op@host\n"),
            0o644,
        )
        .await;

        let cache = FileCache::default();
        let mut cfg = crate::ConnectConfig::new("127.0.0.1", 9, "root");
        cfg.identity_agent = None;
        cfg.identity_files = vec![gone.clone(), enc.clone()];
        let loaded = load_all(&cfg.identity_files, Some(&cache)).await;
        assert_eq!(loaded[0].key.as_ref().err(), Some(&SkipReason::Missing));
        assert!(loaded[0].file.matches(&public));
        // the OpenSSH file's own public half, readable without the passphrase
        assert_eq!(loaded[1].key.as_ref().err(), Some(&SkipReason::Encrypted));
        assert!(loaded[1].file.matches(&public));

        assert_eq!(cache.locked_keys([&cfg]).await, vec![enc.clone()]);
        assert!(!cache.unlock(&enc, "wrong"));
        assert!(!cache.unlock(&gone, "secret"), "not an encrypted key");
        assert!(cache.unlock(&enc, "secret"));
        assert!(cache.locked_keys([&cfg]).await.is_empty());
        let loaded = load_all(&cfg.identity_files, Some(&cache)).await;
        match &loaded[1].key {
            Ok(k) => assert_eq!(k.public_key().key_data(), public.key_data()),
            Err(e) => panic!("not unlocked: {e}"),
        }

        // Nothing else to offer and no terminal: the one-line message naming ssh-add.
        cfg.identity_files = vec![enc.clone()];
        let err = match crate::connect(&cfg).await {
            Ok(_) => panic!("connected with an encrypted key"),
            Err(e) => e,
        };
        assert_eq!(
            err.to_string(),
            format!(
                "key file {0} is encrypted and there is no terminal to ask for its passphrase: \
                 load it into ssh-agent (ssh-add {0})",
                enc.display()
            )
        );
        // Given up on: the reason shows.
        let cache = FileCache::default();
        assert_eq!(cache.locked_keys([&cfg]).await, vec![enc.clone()]);
        cache.give_up(&enc, crate::GiveUp::WrongPassphrase { tries: 3 });
        cfg.cache = Some(std::sync::Arc::new(cache));
        let err = match crate::connect(&cfg).await {
            Ok(_) => panic!("connected with an encrypted key"),
            Err(e) => e,
        };
        assert_eq!(
            err.to_string(),
            format!(
                "no usable identity file (tried: {} (encrypted, and the passphrase was wrong 3 times))",
                enc.display()
            )
        );
    }

    async fn write_key_file(path: &Path, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;

        if let Err(e) = tokio::fs::write(path, text).await {
            panic!("{e}");
        }
        // Set explicitly: the umask decides what `write` creates.
        let perms = std::fs::Permissions::from_mode(mode);
        if let Err(e) = tokio::fs::set_permissions(path, perms).await {
            panic!("{e}");
        }
    }

    /// A fixed-seed ed25519 key as OpenSSH PEM text, plain or
    /// passphrase-protected. Built here so no key file sits in the repo.
    fn ed25519_pem(passphrase: Option<&str>) -> String {
        use russh::keys::ssh_key::private::Ed25519Keypair;
        use russh::keys::ssh_key::{Cipher, Kdf, LineEnding};

        let key = PrivateKey::from(Ed25519Keypair::from_seed(&[7u8; 32]));
        let key = match passphrase {
            None => key,
            Some(pw) => {
                let kdf = Kdf::Bcrypt {
                    salt: vec![1u8; 16],
                    rounds: 1,
                };
                match key.encrypt_with(Cipher::Aes256Ctr, kdf, 42, pw) {
                    Ok(k) => k,
                    Err(e) => panic!("encrypt: {e}"),
                }
            }
        };
        match key.to_openssh(LineEnding::LF) {
            Ok(pem) => pem.to_string(),
            Err(e) => panic!("encode: {e}"),
        }
    }
}
