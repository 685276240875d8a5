//! OpenSSH `known_hosts` parsing and host key checking.
//!
//! The checker is pure (no I/O) so it can be unit-tested; [`KnownHosts::load`]
//! and [`Recorder`] are the only parts touching the file system.
//!
//! Supported: plain and `[host]:port` patterns, `*`/`?` wildcards, `!`
//! negation, hashed entries (`|1|salt|hmac`), `@revoked`, and `@cert-authority`
//! lines, whose keys vouch for host certificates (see
//! [`KnownHosts::check_certificate`]) and never for a plain host key.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Algorithm, Certificate, HashAlg, PublicKey};
use sha1::Sha1;

/// A parsed `known_hosts` file.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
    /// Entries whose host field is plain names only (no wildcard, negation or hash), by
    /// name: most lines, found without a scan. One run looks up every host of the fleet.
    by_name: HashMap<String, Vec<usize>>,
    /// Every other entry, tried in turn.
    scan: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Entry {
    marker: Marker,
    hosts: HostSpec,
    key: PublicKey,
    path: Arc<Path>,
    line: usize,
}

/// The `@...` marker that may start a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// No marker: a host key.
    None,
    /// `@revoked`: this key is refused, as a host key and as a CA.
    Revoked,
    /// `@cert-authority`: this key signs host certificates for the hosts listed.
    CertAuthority,
}

#[derive(Debug, Clone)]
enum HostSpec {
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    Patterns(Vec<Pattern>),
}

#[derive(Debug, Clone)]
struct Pattern {
    negated: bool,
    /// Lowercased, because OpenSSH compares host names case-insensitively.
    glob: String,
}

/// Outcome of looking a presented host key up in [`KnownHosts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// The key is listed for this host at `line`.
    Match {
        /// 1-based line number of the matching entry.
        line: usize,
    },
    /// The host has entries but none carries the presented key.
    Mismatch {
        /// Every key listed for the host: `(fingerprint, file, 1-based line)`.
        expected: Vec<(String, PathBuf, usize)>,
    },
    /// The presented key is marked `@revoked` for this host at `line`.
    Revoked {
        /// 1-based line number of the `@revoked` entry.
        line: usize,
    },
    /// The host has no entry at all.
    Unknown,
}

impl KnownHosts {
    /// Parses OpenSSH `known_hosts` text. `path` is only recorded for messages.
    ///
    /// Malformed lines are skipped rather than failing the whole file, like
    /// OpenSSH does: one bad line must not lock the operator out of every host.
    pub fn parse(text: &str, path: &Path) -> KnownHosts {
        let mut known = KnownHosts::default();
        known.extend(text, &Arc::from(path), 1);
        known
    }

    /// Adds the entries of `text`, whose first line is line `first_line` of `path`.
    fn extend(&mut self, text: &str, path: &Arc<Path>, first_line: usize) {
        for (idx, line) in text.lines().enumerate() {
            if let Some(entry) = parse_line(line, path, first_line + idx) {
                self.push(entry);
            }
        }
    }

    fn push(&mut self, entry: Entry) {
        let i = self.entries.len();
        match entry.hosts.plain_names() {
            Some(names) => {
                for name in names {
                    let list = self.by_name.entry(name.to_string()).or_default();
                    // `a,a` lists the line once.
                    if list.last() != Some(&i) {
                        list.push(i);
                    }
                }
            }
            None => self.scan.push(i),
        }
        self.entries.push(entry);
    }

    /// The entries for `name` (a [`lookup_name`]), in file order.
    fn for_name(&self, name: &str) -> Vec<&Entry> {
        let mut found: Vec<usize> = self.by_name.get(name).cloned().unwrap_or_default();
        found.extend(
            self.scan
                .iter()
                .copied()
                .filter(|&i| self.entries[i].hosts.matches(name)),
        );
        found.sort_unstable();
        found.dedup();
        found.into_iter().map(|i| &self.entries[i]).collect()
    }

    /// Reads and parses `path`; a missing file is an empty set of entries.
    pub async fn load(path: &Path) -> io::Result<KnownHosts> {
        match tokio::fs::read(path).await {
            Ok(bytes) => Ok(KnownHosts::parse(&String::from_utf8_lossy(&bytes), path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(KnownHosts::default()),
            Err(e) => Err(e),
        }
    }

    /// Number of usable (parsed) entries, `@revoked` and `@cert-authority` lines included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no usable entry was found.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks `key` presented by `host` on `port`.
    ///
    /// A revoked key wins over any matching line, then a matching key, then
    /// any other key listed for the host (a mismatch).
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> HostKeyStatus {
        self.check_key_data(host, port, key.key_data())
    }

    fn check_key_data(&self, host: &str, port: u16, key: &KeyData) -> HostKeyStatus {
        let name = lookup_name(host, port);
        let for_host = self.for_name(&name);

        if let Some(e) = for_host
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.key.key_data() == key)
        {
            return HostKeyStatus::Revoked { line: e.line };
        }
        // A CA key vouches for certificates only, never for itself as a host key.
        let listed: Vec<&Entry> = for_host
            .into_iter()
            .filter(|e| e.marker == Marker::None)
            .collect();
        if let Some(e) = listed.iter().find(|e| e.key.key_data() == key) {
            return HostKeyStatus::Match { line: e.line };
        }
        if listed.is_empty() {
            return HostKeyStatus::Unknown;
        }
        HostKeyStatus::Mismatch {
            expected: listed
                .iter()
                .map(|e| (fingerprint(&e.key), e.path.to_path_buf(), e.line))
                .collect(),
        }
    }

    /// True if an `@cert-authority` line covers `host`/`port`: then it is worth asking the
    /// server for a host certificate.
    pub fn has_cert_authority(&self, host: &str, port: u16) -> bool {
        self.for_name(&lookup_name(host, port))
            .iter()
            .any(|e| e.marker == Marker::CertAuthority)
    }

    /// Checks a host certificate `cert` presented by `host` on `port` at unix time `now`,
    /// as OpenSSH does: neither its key nor its CA is `@revoked` for the host, it is a host
    /// certificate, an `@cert-authority` line for the host (`[host]:port` for ports other
    /// than 22) lists the CA that signed it and the signature verifies, `now` is within its
    /// validity window, its principals include `host` itself (lowercased, without the
    /// port), and it has no critical options. Returns the 1-based line of the
    /// `@cert-authority` entry.
    ///
    /// What a refused certificate's plain key is worth is the caller's decision: OpenSSH
    /// still accepts it when a plain line lists it (see [`KnownHosts::check`]).
    pub fn check_certificate(
        &self,
        host: &str,
        port: u16,
        cert: &Certificate,
        now: u64,
    ) -> Result<usize, CertProblem> {
        let name = lookup_name(host, port);
        let for_host = self.for_name(&name);
        let revoked = |key: &KeyData| {
            for_host
                .iter()
                .find(|e| e.marker == Marker::Revoked && e.key.key_data() == key)
        };
        let ca_key = PublicKey::new(cert.signature_key().clone(), "");
        let ca = || KeyDesc::of(&ca_key);
        if let Some(e) = revoked(cert.public_key()) {
            return Err(CertProblem::KeyRevoked {
                key: KeyDesc::of(&PublicKey::new(cert.public_key().clone(), "")),
                path: e.path.to_path_buf(),
                line: e.line,
            });
        }
        if let Some(e) = revoked(cert.signature_key()) {
            return Err(CertProblem::CaRevoked {
                ca: ca(),
                path: e.path.to_path_buf(),
                line: e.line,
            });
        }
        if !cert.cert_type().is_host() {
            return Err(CertProblem::NotHost);
        }
        let Some(authority) = for_host.iter().find(|e| {
            e.marker == Marker::CertAuthority && e.key.key_data() == cert.signature_key()
        }) else {
            return Err(CertProblem::UnknownCa { ca: ca() });
        };
        let (after, before) = (cert.valid_after(), cert.valid_before());
        if after >= before {
            // An empty window is never valid; no point checking the signature of it.
            return Err(CertProblem::Expired { after, before });
        }
        // validate_at checks the signature and that the CA is the one given; at a time
        // inside the window, so that a failure can only be the signature.
        let ca_fp = ca_key.fingerprint(HashAlg::Sha256);
        if cert.validate_at(after, [&ca_fp]).is_err() {
            return Err(CertProblem::BadSignature { ca: ca() });
        }
        if now < after {
            return Err(CertProblem::NotYetValid { after, before });
        }
        if now >= before {
            return Err(CertProblem::Expired { after, before });
        }
        // OpenSSH refuses a host certificate without principals (it would be valid for
        // every host the CA covers), and compares the name it connected to, lowercased.
        let wanted = host.to_ascii_lowercase();
        let principals = cert.valid_principals();
        if principals.is_empty() {
            return Err(CertProblem::NoPrincipals);
        }
        if !principals.contains(&wanted) {
            return Err(CertProblem::WrongPrincipal {
                name: wanted,
                principals: principals.to_vec(),
            });
        }
        if !cert.critical_options().is_empty() {
            return Err(CertProblem::CriticalOptions {
                options: cert.critical_options().keys().cloned().collect(),
            });
        }
        Ok(authority.line)
    }

    /// Algorithms of the (non-revoked) keys already known for the host, in
    /// file order, without duplicates. Used to ask the server for a key type
    /// we can verify, as OpenSSH does.
    pub(crate) fn known_algorithms(&self, host: &str, port: u16) -> Vec<Algorithm> {
        let name = lookup_name(host, port);
        let mut out: Vec<Algorithm> = Vec::new();
        for e in self
            .for_name(&name)
            .into_iter()
            .filter(|e| e.marker == Marker::None)
        {
            let alg = e.key.algorithm();
            if !out.contains(&alg) {
                out.push(alg);
            }
        }
        out
    }
}

/// The name OpenSSH looks up: `host` for port 22, `[host]:port` otherwise.
pub fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// SHA-256 fingerprint exactly as OpenSSH prints it: `SHA256:<base64, no padding>`.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The known_hosts line OpenSSH writes for `key` of `host`/`port` (`[host]:port` when the
/// port is not 22), newline included.
pub fn entry_line(host: &str, port: u16, key: &PublicKey) -> io::Result<String> {
    let blob = key
        .to_bytes()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    Ok(format!(
        "{} {} {}\n",
        lookup_name(host, port),
        key.algorithm().as_str(),
        STANDARD.encode(blob)
    ))
}

/// How long [`Recorder::record`] waits for another process's lock on the file.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// What [`Recorder::record`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The key was appended as this 1-based line.
    Added {
        /// Line number of the new entry.
        line: usize,
    },
    /// The file already lists the key for the host (another connection or process
    /// recorded it since the file was read), at this 1-based line; nothing was written.
    AlreadyKnown {
        /// Line number of the existing entry.
        line: usize,
    },
}

/// Why [`Recorder::record`] did not record a key.
#[derive(Debug)]
pub enum RecordError {
    /// The file as it is now (changed by another process since it was read) revokes the
    /// key at this 1-based line.
    Revoked {
        /// Line of the `@revoked` entry.
        line: usize,
    },
    /// The file as it is now lists other keys for the host (another process recorded
    /// one since it was read): `(fingerprint, file, 1-based line)` of each.
    Changed {
        /// The keys on record.
        expected: Vec<(String, PathBuf, usize)>,
    },
    /// The file could not be opened, locked, read or written.
    Io(io::Error),
}

/// Appends host keys trusted on first use (`accept-new`) to one known_hosts file, safely
/// when hundreds of connections of one run, and other processes, add keys at once.
///
/// Within a process, calls on one `Recorder` are serialized; across processes (and
/// between `Recorder`s of one file) the file is locked with `flock` while it is read and
/// written. Under the lock the file is read again (only what was added since the last
/// call, when it is the same file grown), and the key is written only if the host still
/// has no entry, as one complete line in one `write` on an `O_APPEND` descriptor: a key
/// is never written twice, and a line is never lost or torn. Share one per file and run
/// (see [`crate::FileCache`]).
#[derive(Debug)]
pub struct Recorder {
    path: PathBuf,
    state: tokio::sync::Mutex<RecorderState>,
}

/// The file as far as the last call read or wrote it.
#[derive(Debug, Default)]
struct RecorderState {
    known: KnownHosts,
    /// Where that ends, if the file ended with a newline then (else read it whole again).
    seen: Option<Seen>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    dev: u64,
    ino: u64,
    len: u64,
    lines: usize,
}

impl Recorder {
    /// A recorder for the known_hosts file at `path` (created, with its directory, on the
    /// first key recorded).
    pub fn new(path: impl Into<PathBuf>) -> Recorder {
        Recorder {
            path: path.into(),
            state: tokio::sync::Mutex::default(),
        }
    }

    /// Appends `key` for `host`/`port`, unless the file now has an entry for the host.
    pub async fn record(
        &self,
        host: &str,
        port: u16,
        key: &PublicKey,
    ) -> Result<Recorded, RecordError> {
        let line = entry_line(host, port, key).map_err(RecordError::Io)?;
        let mut state = self.state.lock().await;
        // Taken out for the blocking task; if that task is lost (cancelled, panicked) the
        // default left behind only means the next call reads the file whole.
        let taken = std::mem::take(&mut *state);
        let path = self.path.clone();
        let (host, key) = (host.to_string(), key.clone());
        let (back, result) = tokio::task::spawn_blocking(move || {
            let mut st = taken;
            let result = record_locked(&path, &mut st, &host, port, &key, &line);
            if result.is_err() {
                st = RecorderState::default();
            }
            (st, result)
        })
        .await
        .map_err(|e| RecordError::Io(io::Error::other(e)))?;
        *state = back;
        result
    }
}

fn record_locked(
    path: &Path,
    st: &mut RecorderState,
    host: &str,
    port: u16,
    key: &PublicKey,
    line: &str,
) -> Result<Recorded, RecordError> {
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;

    let io = RecordError::Io;
    create_parent(path).map_err(io)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(io)?;
    lock(&file, path).map_err(io)?;
    // The lock goes with `file`, when it is closed at the end of this function.

    let meta = file.metadata().map_err(io)?;
    let (dev, ino, len) = (meta.dev(), meta.ino(), meta.len());
    let arc: Arc<Path> = Arc::from(path);
    let (from, mut lines) = match st.seen {
        Some(s) if s.dev == dev && s.ino == ino && s.len <= len => (s.len, s.lines),
        _ => {
            st.known = KnownHosts::default();
            (0, 0)
        }
    };
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(from)).map_err(io)?;
    (&mut file)
        .take(len - from)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let text = String::from_utf8_lossy(&bytes);
    st.known.extend(&text, &arc, lines + 1);
    lines += text.lines().count();
    // Nothing read means an empty file or nothing new after a point that ended cleanly.
    let ends_clean = bytes.last().is_none_or(|b| *b == b'\n');
    let total = from + bytes.len() as u64;
    st.seen = ends_clean.then_some(Seen {
        dev,
        ino,
        len: total,
        lines,
    });

    match st.known.check(host, port, key) {
        HostKeyStatus::Match { line } => return Ok(Recorded::AlreadyKnown { line }),
        HostKeyStatus::Revoked { line } => return Err(RecordError::Revoked { line }),
        HostKeyStatus::Mismatch { expected } => return Err(RecordError::Changed { expected }),
        HostKeyStatus::Unknown => {}
    }

    // A file without a final newline would glue our entry onto its last line.
    let mut out = String::with_capacity(line.len() + 1);
    if !ends_clean {
        out.push('\n');
    }
    out.push_str(line);
    // One write on an O_APPEND descriptor: the line lands whole at the end even if a
    // process that does not lock (ssh itself) appends at the same moment.
    if let Err(e) = file.write_all(out.as_bytes()) {
        // A short write (disk full) would leave half a line for the next writer to
        // continue; we hold the lock, so cutting it off again is safe.
        let _ = file.set_len(total);
        return Err(io(e));
    }
    let new_line = lines + 1;
    st.known.extend(line, &arc, new_line);
    st.seen = Some(Seen {
        dev,
        ino,
        len: total + out.len() as u64,
        lines: new_line,
    });
    Ok(Recorded::Added { line: new_line })
}

/// Takes the exclusive `flock` on `file`, waiting up to [`LOCK_WAIT`] for another holder.
fn lock(file: &std::fs::File, path: &Path) -> io::Result<()> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {
                if std::time::Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "{} is locked by another process (waited {}s)",
                            path.display(),
                            LOCK_WAIT.as_secs()
                        ),
                    ));
                }
                // We are on a blocking thread (spawn_blocking), never the runtime's.
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

fn create_parent(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                // Same as ~/.ssh: other users have no business listing it.
                builder.mode(0o700);
            }
            builder.create(dir)?;
        }
    }
    Ok(())
}

/// A key for messages: its type and fingerprint, e.g. `ssh-ed25519 SHA256:...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDesc {
    /// e.g. `ssh-ed25519`.
    pub key_type: String,
    /// `SHA256:...`, as OpenSSH prints it.
    pub fingerprint: String,
}

impl KeyDesc {
    fn of(key: &PublicKey) -> KeyDesc {
        KeyDesc {
            key_type: key.algorithm().as_str().to_string(),
            fingerprint: fingerprint(key),
        }
    }
}

impl fmt::Display for KeyDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key_type, self.fingerprint)
    }
}

/// Why a host certificate was refused (see [`KnownHosts::check_certificate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertProblem {
    /// The certified key is `@revoked` for the host.
    KeyRevoked {
        /// The certified key.
        key: KeyDesc,
        /// File of the `@revoked` line.
        path: PathBuf,
        /// Its 1-based line number.
        line: usize,
    },
    /// The CA that signed the certificate is `@revoked` for the host.
    CaRevoked {
        /// The CA key.
        ca: KeyDesc,
        /// File of the `@revoked` line.
        path: PathBuf,
        /// Its 1-based line number.
        line: usize,
    },
    /// A user certificate, presented as a host key.
    NotHost,
    /// No `@cert-authority` line for the host lists the CA that signed it.
    UnknownCa {
        /// The CA key.
        ca: KeyDesc,
    },
    /// The CA's signature does not verify.
    BadSignature {
        /// The CA key.
        ca: KeyDesc,
    },
    /// Valid only from `after`, later than now.
    NotYetValid {
        /// Unix time the validity starts.
        after: u64,
        /// Unix time it ends.
        before: u64,
    },
    /// Valid only until `before`, which has passed (or the window is empty).
    Expired {
        /// Unix time the validity starts.
        after: u64,
        /// Unix time it ends.
        before: u64,
    },
    /// The certificate lists no principals, which OpenSSH refuses for host certificates.
    NoPrincipals,
    /// The name connected to is not among the principals.
    WrongPrincipal {
        /// The name that was compared (the host name, lowercased, without port).
        name: String,
        /// The certificate's principals.
        principals: Vec<String>,
    },
    /// Host certificates must not have critical options (OpenSSH refuses them).
    CriticalOptions {
        /// Their names.
        options: Vec<String>,
    },
}

impl CertProblem {
    /// A revoked key or CA is refused even when a plain line lists the key.
    pub fn is_revocation(&self) -> bool {
        matches!(
            self,
            CertProblem::KeyRevoked { .. } | CertProblem::CaRevoked { .. }
        )
    }
}

/// A certificate time as `2026-12-01T09:00:00Z` (UTC); `forever` for the largest value.
pub fn format_cert_time(t: u64) -> String {
    i64::try_from(t)
        .ok()
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "forever".to_string())
}

impl fmt::Display for CertProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let window = |after: &u64, before: &u64| {
            format!(
                "valid from {} to {}",
                format_cert_time(*after),
                format_cert_time(*before)
            )
        };
        match self {
            CertProblem::KeyRevoked { key, path, line } => write!(
                f,
                "its key ({key}) is marked @revoked in {}:{line}",
                path.display()
            ),
            CertProblem::CaRevoked { ca, path, line } => write!(
                f,
                "its CA ({ca}) is marked @revoked in {}:{line}",
                path.display()
            ),
            CertProblem::NotHost => f.write_str("it is a user certificate, not a host certificate"),
            CertProblem::UnknownCa { ca } => write!(f, "signed by an unknown CA ({ca})"),
            CertProblem::BadSignature { ca } => {
                write!(f, "its signature by CA ({ca}) does not verify")
            }
            CertProblem::NotYetValid { after, before } => {
                write!(f, "not yet valid ({})", window(after, before))
            }
            CertProblem::Expired { after, before } => {
                write!(f, "expired ({})", window(after, before))
            }
            CertProblem::NoPrincipals => f.write_str("it lists no principals"),
            CertProblem::WrongPrincipal { name, principals } => write!(
                f,
                "not valid for {name} (principals: {})",
                principals.join(", ")
            ),
            CertProblem::CriticalOptions { options } => write!(
                f,
                "it has critical options ({}), which host certificates must not",
                options.join(", ")
            ),
        }
    }
}

fn parse_line(raw: &str, path: &Arc<Path>, line: usize) -> Option<Entry> {
    let text = raw.trim();
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    let mut fields = text.split_whitespace();
    let mut first = fields.next()?;
    let mut marker = Marker::None;
    if let Some(name) = first.strip_prefix('@') {
        marker = match name {
            "revoked" => Marker::Revoked,
            "cert-authority" => Marker::CertAuthority,
            // An unknown marker: skipping the line is the safe reading, as OpenSSH does.
            _ => return None,
        };
        first = fields.next()?;
    }
    let hosts = HostSpec::parse(first)?;
    let key_type = fields.next()?;
    let blob = STANDARD.decode(fields.next()?).ok()?;
    let key = PublicKey::from_bytes(&blob).ok()?;
    if key.algorithm().as_str() != key_type {
        return None;
    }
    Some(Entry {
        marker,
        hosts,
        key,
        path: Arc::clone(path),
        line,
    })
}

impl HostSpec {
    fn parse(field: &str) -> Option<HostSpec> {
        if let Some(rest) = field.strip_prefix("|1|") {
            let (salt, hash) = rest.split_once('|')?;
            let salt = STANDARD.decode(salt).ok()?;
            let hash = STANDARD.decode(hash).ok()?;
            return Some(HostSpec::Hashed { salt, hash });
        }
        let patterns: Vec<Pattern> = field
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| match p.strip_prefix('!') {
                Some(rest) => Pattern {
                    negated: true,
                    glob: rest.to_ascii_lowercase(),
                },
                None => Pattern {
                    negated: false,
                    glob: p.to_ascii_lowercase(),
                },
            })
            .collect();
        if patterns.is_empty() {
            return None;
        }
        Some(HostSpec::Patterns(patterns))
    }

    /// The names this spec lists when they are all plain (no wildcard, no negation, not
    /// hashed): it matches exactly those.
    fn plain_names(&self) -> Option<impl Iterator<Item = &str>> {
        match self {
            HostSpec::Patterns(patterns)
                if patterns
                    .iter()
                    .all(|p| !p.negated && !p.glob.contains(['*', '?'])) =>
            {
                Some(patterns.iter().map(|p| p.glob.as_str()))
            }
            _ => None,
        }
    }

    /// `name` is the lowercased lookup name (see [`lookup_name`]).
    fn matches(&self, name: &str) -> bool {
        match self {
            HostSpec::Hashed { salt, hash } => {
                let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(name.as_bytes());
                // Constant-time compare; not that timing matters much here.
                mac.verify_slice(hash).is_ok()
            }
            HostSpec::Patterns(patterns) => {
                let mut positive = false;
                for p in patterns {
                    if wildmatch::WildMatch::new(&p.glob).matches(name) {
                        if p.negated {
                            // A negated match vetoes the whole line.
                            return false;
                        }
                        positive = true;
                    }
                }
                positive
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
