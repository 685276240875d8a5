//! Loading private keys from identity files.

use std::io;
use std::path::{Path, PathBuf};

use russh::keys::PrivateKey;

use crate::error::SkipReason;

/// An identity file after loading: either a usable key or why it is skipped.
pub(crate) struct Loaded {
    pub path: PathBuf,
    pub key: Result<PrivateKey, SkipReason>,
}

/// Loads every file in order. Never fails: problems become [`SkipReason`]s
/// so the auth error can say what happened to each file.
pub(crate) async fn load_all(paths: &[PathBuf]) -> Vec<Loaded> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let key = load_one(path).await;
        out.push(Loaded {
            path: path.clone(),
            key,
        });
    }
    out
}

async fn load_one(path: &Path) -> Result<PrivateKey, SkipReason> {
    let text = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(SkipReason::Missing),
        Err(e) => return Err(SkipReason::Unreadable(e.to_string())),
    };
    // RSA key parsing does real bignum work; keep it off the runtime threads.
    match tokio::task::spawn_blocking(move || decode(&text)).await {
        Ok(r) => r,
        Err(e) => Err(SkipReason::Invalid(format!(
            "key decoding task failed: {e}"
        ))),
    }
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
            if let Err(e) = tokio::fs::write(p, t).await {
                panic!("{e}");
            }
        }
        let missing = dir.path().join("missing");
        let loaded = load_all(&[missing, garbage, public, enc, ok]).await;
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
