//! Loading private keys from identity files.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::keys::PrivateKey;

use crate::cache::{FileCache, LoadedKey};
use crate::error::SkipReason;

/// An identity file after loading: either a usable key or why it is skipped.
pub(crate) struct Loaded {
    pub path: PathBuf,
    pub key: LoadedKey,
}

/// Loads every file in order. Never fails: problems become [`SkipReason`]s
/// so the auth error can say what happened to each file.
pub(crate) async fn load_all(paths: &[PathBuf], cache: Option<&FileCache>) -> Vec<Loaded> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let load = || async { load_one(path).await.map(Arc::new) };
        let key = match cache {
            Some(cache) => cache.identity(path, load).await,
            None => load().await,
        };
        out.push(Loaded {
            path: path.clone(),
            key,
        });
    }
    out
}

async fn load_one(path: &Path) -> Result<PrivateKey, SkipReason> {
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

fn decode(bytes: &[u8]) -> Result<PrivateKey, SkipReason> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(SkipReason::Invalid("not a text key file".into()));
    };
    // Legacy PEM and PKCS#8 say so in their headers; russh reports those as
    // generic decode errors when no passphrase is given.
    let encrypted_pem =
        text.contains("BEGIN ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED");
    match russh::keys::decode_secret_key(text, None) {
        Ok(key) => Ok(key),
        Err(russh::keys::Error::KeyIsEncrypted) => Err(SkipReason::Encrypted),
        Err(_) if encrypted_pem => Err(SkipReason::Encrypted),
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
