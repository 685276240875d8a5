//! OpenSSH `known_hosts` parsing and host key checking.
//!
//! The checker is pure (no I/O) so it can be unit-tested; [`KnownHosts::load`]
//! and [`append`] are the only functions touching the file system.
//!
//! Supported: plain and `[host]:port` patterns, `*`/`?` wildcards, `!`
//! negation, hashed entries (`|1|salt|hmac`), `@revoked`. `@cert-authority`
//! lines are ignored because capo never asks servers for host certificates.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use russh::keys::{Algorithm, HashAlg, PublicKey};
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
    revoked: bool,
    hosts: HostSpec,
    key: PublicKey,
    path: Arc<Path>,
    line: usize,
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
        let path: Arc<Path> = Arc::from(path);
        let entries: Vec<Entry> = text
            .lines()
            .enumerate()
            .filter_map(|(idx, line)| parse_line(line, &path, idx + 1))
            .collect();
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut scan = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match entry.hosts.plain_names() {
                Some(names) => {
                    for name in names {
                        let list = by_name.entry(name.to_string()).or_default();
                        // `a,a` lists the line once.
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
                None => scan.push(i),
            }
        }
        KnownHosts {
            entries,
            by_name,
            scan,
        }
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

    /// Number of usable (parsed, non-CA) entries.
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
        let name = lookup_name(host, port);
        let for_host = self.for_name(&name);

        if let Some(e) = for_host
            .iter()
            .find(|e| e.revoked && e.key.key_data() == key.key_data())
        {
            return HostKeyStatus::Revoked { line: e.line };
        }
        let listed: Vec<&Entry> = for_host.into_iter().filter(|e| !e.revoked).collect();
        if let Some(e) = listed.iter().find(|e| e.key.key_data() == key.key_data()) {
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

    /// Algorithms of the (non-revoked) keys already known for the host, in
    /// file order, without duplicates. Used to ask the server for a key type
    /// we can verify, as OpenSSH does.
    pub(crate) fn known_algorithms(&self, host: &str, port: u16) -> Vec<Algorithm> {
        let name = lookup_name(host, port);
        let mut out: Vec<Algorithm> = Vec::new();
        for e in self.for_name(&name).into_iter().filter(|e| !e.revoked) {
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

/// Appends `key` for `host`/`port` to `path`, creating the file and its
/// directory if needed. Writes `[host]:port` when `port != 22`, else `host`.
pub async fn append(path: &Path, host: &str, port: u16, key: &PublicKey) -> io::Result<()> {
    let blob = key
        .to_bytes()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let line = format!(
        "{} {} {}\n",
        lookup_name(host, port),
        key.algorithm().as_str(),
        STANDARD.encode(blob)
    );
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || append_blocking(&path, &line))
        .await
        .map_err(io::Error::other)?
}

fn append_blocking(path: &Path, line: &str) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};

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
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    // A file without a final newline would glue our entry onto its last line.
    let len = file.metadata()?.len();
    let mut text = String::with_capacity(line.len() + 1);
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            text.push('\n');
        }
    }
    text.push_str(line);
    // One write call: O_APPEND keeps concurrent appends from parallel
    // connections from interleaving.
    file.write_all(text.as_bytes())?;
    file.flush()
}

fn parse_line(raw: &str, path: &Arc<Path>, line: usize) -> Option<Entry> {
    let text = raw.trim();
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    let mut fields = text.split_whitespace();
    let mut first = fields.next()?;
    let mut revoked = false;
    if let Some(marker) = first.strip_prefix('@') {
        match marker {
            "revoked" => revoked = true,
            // CA keys sign host certificates; they are not host keys.
            "cert-authority" => return None,
            _ => return None,
        }
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
        revoked,
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
mod tests;
