//! The run history: every run under `--runs-dir` keeps its report in its run directory
//! (`<runs-dir>/<run id>/report.json`), and one line about it in the index
//! (`<runs-dir>/index.jsonl`), appended when it ends. `capo runs`, `--rerun` and the default
//! retention read it from here.
//!
//! The index is a file of JSON lines, appended under a lock (`index.lock`, `flock`) with one
//! write per entry, so two runs ending at once never mix their lines; a line cut short by a
//! crash is skipped when read, and the next append starts on a line of its own. Runs from
//! before the index (a run directory with a report and no entry) are found by listing the
//! runs directory, so an upgrade loses no history. A run holds a lock on a file in its own
//! directory (`.capo-run.lock`) while it runs, so that no prune removes it under its feet.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use capo_engine::schema::{Mode, Report, ShardReport, Summary};
use capo_engine::HostStatus;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// The index file under the runs directory.
pub const INDEX: &str = "index.jsonl";
/// The lock every writer of the index takes (a file of its own, so that a prune can replace
/// the index by renaming while appenders wait).
pub const INDEX_LOCK: &str = "index.lock";
/// The report every run keeps in its run directory.
pub const RUN_REPORT: &str = "report.json";
/// The file a run holds locked in its run directory while it runs.
pub const RUN_LOCK: &str = ".capo-run.lock";
/// What prune renames a run directory to before removing it, so that the index and the
/// directories agree once the lock is released even if removing takes long or is cut short.
const REMOVING: &str = ".removing-";
/// How long a writer waits for the index lock before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// A run directory without a report younger than this may be a run starting: never removed.
const STARTING: Duration = Duration::from_secs(5 * 60);
/// A run directory without a report and without a run lock (from a capo that took none)
/// counts as abandoned once this old.
const ABANDONED_UNLOCKED: Duration = Duration::from_secs(24 * 3600);
/// How many runs every run leaves (`--keep-runs`'s default).
pub const DEFAULT_KEEP: usize = 50;

/// Why the run history cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A file or directory of the history cannot be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another capo holds the index lock for longer than [`LOCK_WAIT`].
    #[error("{}: still locked by another capo after {}s", .path.display(), LOCK_WAIT.as_secs())]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
    },
    /// No run has this id or id prefix.
    #[error("no run {id} in {}", .dir.display())]
    NoRun {
        /// The id or prefix asked for.
        id: String,
        /// The runs directory.
        dir: PathBuf,
    },
    /// An id prefix that more than one run starts with.
    #[error("`{prefix}` matches {} runs in {}: {}; give more of the id", .ids.len(), .dir.display(), .ids.join(", "))]
    Ambiguous {
        /// The prefix asked for.
        prefix: String,
        /// The runs directory.
        dir: PathBuf,
        /// The ids it matches, newest first.
        ids: Vec<String>,
    },
    /// `latest` in a runs directory without runs.
    #[error("no run in {}", .dir.display())]
    Empty {
        /// The runs directory.
        dir: PathBuf,
    },
    /// A run's report cannot be read.
    #[error("{}: {source}", .path.display())]
    ReadReport {
        /// The report file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A run's report is not a report.
    #[error("{}: {source}", .path.display())]
    ParseReport {
        /// The report file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// An index entry could not be encoded (a bug).
    #[error("cannot encode index entry: {0}")]
    Encode(serde_json::Error),
}

impl HistoryError {
    /// Whether the operator asked for something that is not there (a run id), rather than
    /// the history failing to be read.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            HistoryError::NoRun { .. }
                | HistoryError::Ambiguous { .. }
                | HistoryError::Empty { .. }
        )
    }
}

/// Which run a `--rerun` took its hosts from, as the index records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RerunOf {
    /// `--rerun`: the statuses asked for.
    pub statuses: Vec<HostStatus>,
    /// The run whose hosts were taken (the latest of the same mode and inventory, or
    /// `--rerun-from`'s).
    pub run: String,
}

/// One run in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEntry {
    /// The run id, also its directory's name.
    pub id: String,
    /// RFC 3339 UTC, from the report.
    pub started_at: String,
    /// RFC 3339 UTC, from the report.
    pub finished_at: String,
    /// Which command ran.
    pub mode: Mode,
    /// `--inventory` as given.
    pub inventory: String,
    /// Its canonical path when the run ended (what `--rerun` matches on), or null when it
    /// could not be resolved.
    #[serde(default)]
    pub inventory_path: Option<String>,
    /// `--limit`, or null.
    #[serde(default)]
    pub limit: Option<String>,
    /// `--rerun`: whose hosts this run took, or null.
    #[serde(default)]
    pub rerun: Option<RerunOf>,
    /// `--shard K/N`, or null.
    #[serde(default)]
    pub shard: Option<ShardReport>,
    /// `--rev`, or null.
    #[serde(default)]
    pub target_rev: Option<String>,
    /// Counts per status (`revisions` left empty: the report has them).
    pub summary: Summary,
    /// capo's exit status for the run; null for a run found without an index entry.
    #[serde(default)]
    pub exit: Option<u8>,
    /// The report's path, as the run wrote it (`<run_dir>/report.json`).
    pub report: String,
}

impl RunEntry {
    /// The entry for a finished run: `report` is its report, `inventory_path` where its
    /// inventory is, `exit` its exit status.
    pub fn of(
        report: &Report,
        inventory_path: Option<String>,
        rerun: Option<RerunOf>,
        exit: Option<u8>,
    ) -> RunEntry {
        RunEntry {
            id: report.run_id.clone(),
            started_at: report.started_at.clone(),
            finished_at: report.finished_at.clone(),
            mode: report.mode,
            inventory: report.inventory.clone(),
            inventory_path,
            limit: report.limit.clone(),
            rerun,
            shard: report.shard,
            target_rev: report.target_rev.clone(),
            summary: Summary {
                revisions: Vec::new(),
                ..report.summary.clone()
            },
            exit,
            report: Path::new(&report.run_dir)
                .join(RUN_REPORT)
                .display()
                .to_string(),
        }
    }

    /// When the run started: the report's time, else the second its id names.
    pub fn started(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.started_at)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| id_time(&self.id))
    }

    /// `1/4` for a shard, `-` for none.
    pub fn shard_text(&self) -> String {
        shard_text(self.shard)
    }
}

/// `1/4` for a shard, `-` for none.
pub fn shard_text(shard: Option<ShardReport>) -> String {
    shard.map_or_else(|| "-".to_string(), |s| format!("{}/{}", s.index, s.count))
}

/// The second a run id (`20261124T224501Z-1a2b`) names, if it is one.
pub fn id_time(id: &str) -> Option<DateTime<Utc>> {
    let (stamp, salt) = id.split_once('-')?;
    if salt.len() != 4 || !salt.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// The canonical path of an inventory, as runs are matched on it; the path made absolute
/// when it cannot be resolved (a file since removed).
pub fn inventory_key(inventory: &Path) -> Option<String> {
    std::fs::canonicalize(inventory)
        .or_else(|_| std::path::absolute(inventory))
        .ok()
        .map(|p| p.display().to_string())
}

// ---------------------------------------------------------------------------------------------
// Locks.

/// An exclusive `flock` on a file, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Tries to take `file`'s lock once: `Ok(false)` when another holds it.
fn try_flock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a descriptor this `File` owns and keeps open.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

fn open_lock_file(path: &Path) -> Result<File, HistoryError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Takes the lock on `path` (created if missing), waiting up to [`LOCK_WAIT`]; polled, as a
/// blocking `flock` cannot time out.
fn lock(path: &Path) -> Result<Lock, HistoryError> {
    let file = open_lock_file(path)?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match try_flock(&file) {
            Ok(true) => return Ok(Lock { _file: file }),
            Ok(false) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(false) => {
                return Err(HistoryError::LockTimeout {
                    path: path.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(HistoryError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Marks `run_dir` as a run in progress for as long as the returned lock lives: prunes
/// leave it alone, whether it has a report yet or not.
pub fn hold_run(run_dir: &Path) -> Result<Lock, HistoryError> {
    let path = run_dir.join(RUN_LOCK);
    let file = open_lock_file(&path)?;
    match try_flock(&file) {
        Ok(true) => Ok(Lock { _file: file }),
        Ok(false) => Err(HistoryError::LockTimeout { path }),
        Err(source) => Err(HistoryError::Io { path, source }),
    }
}

/// Whether a run still holds its run directory's lock (a missing lock file: `None`).
fn run_lock_held(run_dir: &Path) -> Option<bool> {
    let file = File::open(run_dir.join(RUN_LOCK)).ok()?;
    // A lock that cannot even be tried is taken for held: never remove what may be running.
    Some(!try_flock(&file).unwrap_or(false))
}

// ---------------------------------------------------------------------------------------------
// The index.

/// Appends `entry` to the index of `runs_dir`, under the index lock, as one write; starts a
/// new line first when the last one was cut short by a crash.
pub fn append(runs_dir: &Path, entry: &RunEntry) -> Result<(), HistoryError> {
    let mut line = serde_json::to_string(entry).map_err(HistoryError::Encode)?;
    line.push('\n');
    let _lock = lock(&runs_dir.join(INDEX_LOCK))?;
    let path = runs_dir.join(INDEX);
    let io = |source| HistoryError::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(&path)
        .map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1)).map_err(io)?;
        file.read_exact(&mut last).map_err(io)?;
        if last[0] != b'\n' {
            line.insert(0, '\n');
        }
    }
    file.write_all(line.as_bytes()).map_err(io)?;
    file.sync_data().map_err(io)
}

/// The entries of an index's text, in file order; lines that do not parse (cut short by a
/// crash, or written by hand) are skipped; a later entry of the same id replaces an earlier.
pub fn parse_index(text: &str) -> Vec<RunEntry> {
    let mut entries: Vec<RunEntry> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(entry) = serde_json::from_str::<RunEntry>(line) else {
            continue;
        };
        entries.retain(|e| e.id != entry.id);
        entries.push(entry);
    }
    entries
}

/// The index of `runs_dir` (none yet: empty).
fn read_index(runs_dir: &Path) -> Result<Vec<RunEntry>, HistoryError> {
    let path = runs_dir.join(INDEX);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(parse_index(&String::from_utf8_lossy(&bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(HistoryError::Io { path, source }),
    }
}

/// Replaces the index with `entries`, atomically (a temporary file renamed over it). The
/// caller holds the index lock.
fn rewrite_index(runs_dir: &Path, entries: &[RunEntry]) -> Result<(), HistoryError> {
    let path = runs_dir.join(INDEX);
    let io = |source| HistoryError::Io {
        path: path.clone(),
        source,
    };
    let mut text = String::new();
    for entry in entries {
        text.push_str(&serde_json::to_string(entry).map_err(HistoryError::Encode)?);
        text.push('\n');
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".index-")
        .tempfile_in(runs_dir)
        .map_err(io)?;
    tmp.write_all(text.as_bytes()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(&path).map_err(|e| io(e.error))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Run directories.

/// A directory under the runs directory that is (or was) a run's.
#[derive(Debug, Clone)]
struct RunDir {
    id: String,
    path: PathBuf,
    has_report: bool,
    /// Its run lock: held, free, or no lock file.
    locked: Option<bool>,
    modified: Option<SystemTime>,
}

impl RunDir {
    /// A run still going (or starting): its lock held, or no report yet and either young or
    /// without a lock file to tell.
    fn in_progress(&self, now: SystemTime) -> bool {
        if self.locked == Some(true) {
            return true;
        }
        if self.has_report {
            return false;
        }
        let age = self
            .modified
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        match self.locked {
            Some(_) => age < STARTING,
            None => age < ABANDONED_UNLOCKED,
        }
    }
}

/// The run directories under `runs_dir`: directories named like a run id or holding a
/// report. Anything else there is none of capo's business and never touched.
fn run_dirs(runs_dir: &Path) -> Result<Vec<RunDir>, HistoryError> {
    let read = match std::fs::read_dir(runs_dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(HistoryError::Io {
                path: runs_dir.to_path_buf(),
                source,
            })
        }
    };
    let mut dirs = Vec::new();
    for entry in read.filter_map(Result::ok) {
        let Ok(id) = entry.file_name().into_string() else {
            continue;
        };
        let path = entry.path();
        if id.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let has_report = path.join(RUN_REPORT).is_file();
        if !has_report && id_time(&id).is_none() {
            continue;
        }
        dirs.push(RunDir {
            locked: run_lock_held(&path),
            modified: entry.metadata().and_then(|m| m.modified()).ok(),
            id,
            path,
            has_report,
        });
    }
    Ok(dirs)
}

/// Reads a run's report.
pub fn read_report(path: &Path) -> Result<Report, HistoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| HistoryError::ReadReport {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| HistoryError::ParseReport {
        path: path.to_path_buf(),
        source,
    })
}

/// Every finished run of `runs_dir`, newest first (by start time, then id): the index's
/// entries, and runs from before the index (a report in a run directory, no entry) read from
/// their reports. A report that cannot be read is left out of the list.
pub fn runs(runs_dir: &Path) -> Result<Vec<RunEntry>, HistoryError> {
    let mut entries = read_index(runs_dir)?;
    let known: HashSet<String> = entries.iter().map(|e| e.id.clone()).collect();
    for dir in run_dirs(runs_dir)? {
        if known.contains(&dir.id) || !dir.has_report {
            continue;
        }
        let Ok(report) = read_report(&dir.path.join(RUN_REPORT)) else {
            continue;
        };
        let key = inventory_key(Path::new(&report.inventory));
        let mut entry = RunEntry::of(&report, key, None, None);
        entry.id = dir.id;
        entries.push(entry);
    }
    sort_newest_first(&mut entries);
    Ok(entries)
}

/// Newest first: by start time, then by id.
fn sort_newest_first(entries: &mut [RunEntry]) {
    entries.sort_by(|a, b| (b.started(), &b.id).cmp(&(a.started(), &a.id)));
}

/// The run `id` names among `runs` (newest first): `latest`, a whole id, or the start of
/// exactly one id.
pub fn find<'a>(
    runs: &'a [RunEntry],
    id: &str,
    runs_dir: &Path,
) -> Result<&'a RunEntry, HistoryError> {
    if id == "latest" {
        return runs.first().ok_or_else(|| HistoryError::Empty {
            dir: runs_dir.to_path_buf(),
        });
    }
    if let Some(exact) = runs.iter().find(|r| r.id == id) {
        return Ok(exact);
    }
    let matching: Vec<&RunEntry> = if id.is_empty() {
        Vec::new()
    } else {
        runs.iter().filter(|r| r.id.starts_with(id)).collect()
    };
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(HistoryError::NoRun {
            id: id.to_string(),
            dir: runs_dir.to_path_buf(),
        }),
        many => Err(HistoryError::Ambiguous {
            prefix: id.to_string(),
            dir: runs_dir.to_path_buf(),
            ids: many.iter().map(|r| r.id.clone()).collect(),
        }),
    }
}

/// Where the report of run `entry` is: in its directory under `runs_dir` (the runs directory
/// may have moved since the run wrote the path in the entry).
pub fn report_path(runs_dir: &Path, entry: &RunEntry) -> PathBuf {
    runs_dir.join(&entry.id).join(RUN_REPORT)
}

/// What `--rerun` looks for: the latest run of this mode, inventory and shard.
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    /// The mode of the run about to start.
    pub mode: Mode,
    /// Its inventory's canonical path ([`inventory_key`]).
    pub inventory_path: Option<&'a str>,
    /// Its shard.
    pub shard: Option<ShardReport>,
}

impl Wanted<'_> {
    /// Whether `entry` is such a run. Shards match on K/N (not on how many hosts the
    /// selection had).
    pub fn matches(&self, entry: &RunEntry) -> bool {
        entry.mode == self.mode
            && entry.inventory_path.is_some()
            && entry.inventory_path.as_deref() == self.inventory_path
            && entry.shard.map(|s| (s.index, s.count)) == self.shard.map(|s| (s.index, s.count))
    }

    /// How `entry` (the latest run, not a match) differs: `was a plan`, `was a rollout of
    /// other.toml`, `was shard 2/4`.
    pub fn differs(&self, entry: &RunEntry) -> String {
        if entry.mode != self.mode {
            format!("was {} {}", article(entry.mode.as_str()), entry.mode)
        } else if entry.inventory_path.as_deref() != self.inventory_path
            || entry.inventory_path.is_none()
        {
            format!(
                "was {} {} of {}",
                article(entry.mode.as_str()),
                entry.mode,
                entry.inventory
            )
        } else if entry.shard.is_none() {
            "was not sharded".to_string()
        } else {
            format!("was shard {}", entry.shard_text())
        }
    }
}

/// `a` or `an` before a mode word.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

// ---------------------------------------------------------------------------------------------
// Pruning.

/// What a prune removed and left.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// Finished runs removed, newest first.
    pub removed: Vec<String>,
    /// Run directories without a report whose run died (no lock held) removed.
    pub abandoned: Vec<String>,
    /// Index entries dropped because their run directory was gone.
    pub stale: Vec<String>,
    /// Finished runs left.
    pub kept: usize,
    /// Runs in progress left alone.
    pub running: Vec<String>,
}

/// Keeps the newest `keep` finished runs of `runs_dir` and removes the others (their
/// directories and index entries), and run directories a dead run left without a report.
/// Never removes a run in progress (its run lock held, or no report yet and younger than a
/// few minutes) nor `spare` (the run that just ended). The index is rewritten atomically,
/// under its lock; the directories are renamed aside under the lock and removed after it.
pub fn prune(runs_dir: &Path, keep: usize, spare: Option<&str>) -> Result<Pruned, HistoryError> {
    if !runs_dir.is_dir() {
        return Ok(Pruned::default());
    }
    let lock = lock(&runs_dir.join(INDEX_LOCK))?;
    let now = SystemTime::now();
    let index = read_index(runs_dir)?;
    let dirs = run_dirs(runs_dir)?;

    // Every finished run, newest first: the index's entries and directories with a report.
    struct Finished {
        id: String,
        started: Option<DateTime<Utc>>,
        dir: Option<RunDir>,
    }
    let mut finished: Vec<Finished> = index
        .iter()
        .map(|e| Finished {
            id: e.id.clone(),
            started: e.started(),
            dir: dirs.iter().find(|d| d.id == e.id).cloned(),
        })
        .collect();
    for d in &dirs {
        if d.has_report && !index.iter().any(|e| e.id == d.id) {
            finished.push(Finished {
                id: d.id.clone(),
                started: id_time(&d.id).or_else(|| d.modified.map(DateTime::<Utc>::from)),
                dir: Some(d.clone()),
            });
        }
    }
    finished.sort_by(|a, b| (b.started, &b.id).cmp(&(a.started, &a.id)));

    let mut pruned = Pruned::default();
    let mut remove: Vec<&RunDir> = Vec::new();
    let mut kept_ids: HashSet<&str> = HashSet::new();
    let mut counted = 0;
    for run in &finished {
        let Some(dir) = &run.dir else {
            pruned.stale.push(run.id.clone());
            continue;
        };
        let spared = spare == Some(run.id.as_str()) || dir.in_progress(now);
        if counted < keep || keep == 0 || spared {
            counted += 1;
            kept_ids.insert(&run.id);
            if dir.in_progress(now) {
                pruned.running.push(run.id.clone());
            }
        } else {
            pruned.removed.push(run.id.clone());
            remove.push(dir);
        }
    }
    pruned.kept = counted;
    for d in &dirs {
        if d.has_report || index.iter().any(|e| e.id == d.id) {
            continue;
        }
        if d.in_progress(now) || spare == Some(d.id.as_str()) {
            pruned.running.push(d.id.clone());
        } else {
            pruned.abandoned.push(d.id.clone());
            remove.push(d);
        }
    }

    if !pruned.removed.is_empty() || !pruned.stale.is_empty() {
        let left: Vec<RunEntry> = index
            .into_iter()
            .filter(|e| kept_ids.contains(e.id.as_str()))
            .collect();
        rewrite_index(runs_dir, &left)?;
    }
    let mut aside = Vec::new();
    for d in remove {
        let to = runs_dir.join(format!("{REMOVING}{}", d.id));
        std::fs::rename(&d.path, &to).map_err(|source| HistoryError::Io {
            path: d.path.clone(),
            source,
        })?;
        aside.push(to);
    }
    drop(lock);
    // Left over by a prune that was cut short, and ours.
    let leftovers = std::fs::read_dir(runs_dir)
        .map_err(|source| HistoryError::Io {
            path: runs_dir.to_path_buf(),
            source,
        })?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(REMOVING))
        .map(|e| e.path());
    for path in leftovers {
        match std::fs::remove_dir_all(&path) {
            // Another prune removing the same leftovers at the same time.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(HistoryError::Io { path, source }),
            Ok(()) => {}
        }
    }
    Ok(pruned)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn entry(id: &str, started_at: &str, mode: Mode, inventory: &str) -> RunEntry {
        RunEntry {
            id: id.to_string(),
            started_at: started_at.to_string(),
            finished_at: started_at.to_string(),
            mode,
            inventory: inventory.to_string(),
            inventory_path: Some(format!("/srv/{inventory}")),
            limit: None,
            rerun: None,
            shard: None,
            target_rev: None,
            summary: Summary::default(),
            exit: Some(0),
            report: format!(".capo/runs/{id}/report.json"),
        }
    }

    /// A finished run's directory with a report naming `hosts`' statuses.
    pub(crate) fn write_report(
        runs_dir: &Path,
        id: &str,
        mode: &str,
        inventory: &str,
        hosts: &[(&str, &str)],
    ) {
        let dir = runs_dir.join(id);
        std::fs::create_dir_all(&dir).expect("run dir");
        let hosts: Vec<serde_json::Value> = hosts
            .iter()
            .map(|(name, status)| {
                serde_json::json!({
                    "name": name, "address": name, "port": 22, "status": status, "error": null,
                    "rev_before": null, "rev_after": null, "duration_ms": 0, "log_dir": "",
                    "steps": [],
                })
            })
            .collect();
        let started = id_time(id)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        let report = serde_json::json!({
            "schema": "capo.report/v1", "run_id": id, "mode": mode,
            "started_at": started, "finished_at": started, "duration_ms": 0,
            "inventory": inventory, "limit": null, "run_dir": dir,
            "summary": {"total": hosts.len(), "unchanged": 0, "changed": 0, "failed": 0, "unreachable": 0},
            "hosts": hosts,
        });
        std::fs::write(dir.join(RUN_REPORT), report.to_string()).expect("write report");
    }

    fn ids(entries: &[RunEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn run_ids_name_their_second() {
        let t = id_time("20261124T224501Z-1a2b").expect("an id");
        assert_eq!(t.to_rfc3339(), "2026-11-24T22:45:01+00:00");
        assert_eq!(id_time("20261124T224501Z-1a2"), None);
        assert_eq!(id_time("notes"), None);
        assert_eq!(id_time("20261324T224501Z-1a2b"), None);
    }

    #[test]
    fn appended_entries_read_back_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = entry(
            "20261201T100000Z-aaaa",
            "2026-12-01T10:00:00.000Z",
            Mode::Rollout,
            "i.toml",
        );
        let b = entry(
            "20261201T100100Z-bbbb",
            "2026-12-01T10:01:00.000Z",
            Mode::Plan,
            "i.toml",
        );
        append(dir.path(), &a).expect("append a");
        append(dir.path(), &b).expect("append b");
        let text = std::fs::read_to_string(dir.path().join(INDEX)).expect("index");
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(parse_index(&text), [a.clone(), b.clone()]);
        // newest first
        assert_eq!(
            ids(&runs(dir.path()).expect("runs")),
            ["20261201T100100Z-bbbb", "20261201T100000Z-aaaa"]
        );
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_the_next_entry_starts_a_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = entry(
            "20261201T100000Z-aaaa",
            "2026-12-01T10:00:00.000Z",
            Mode::Rollout,
            "i.toml",
        );
        let b = entry(
            "20261201T100100Z-bbbb",
            "2026-12-01T10:01:00.000Z",
            Mode::Rollout,
            "i.toml",
        );
        append(dir.path(), &a).expect("append a");
        // A crash mid-write: half a line, no newline.
        let line = serde_json::to_string(&b).expect("json");
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(INDEX))
            .expect("open");
        f.write_all(&line.as_bytes()[..line.len() / 2])
            .expect("write");
        drop(f);
        assert_eq!(ids(&read_index(dir.path()).expect("read")), [a.id.as_str()]);
        let c = entry(
            "20261201T100200Z-cccc",
            "2026-12-01T10:02:00.000Z",
            Mode::Rollout,
            "i.toml",
        );
        append(dir.path(), &c).expect("append c");
        assert_eq!(
            ids(&read_index(dir.path()).expect("read")),
            [a.id.as_str(), c.id.as_str()]
        );
    }

    #[test]
    fn concurrent_appends_keep_every_line_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let path = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let mut e = entry(
                            &format!("20261201T1000{:02}Z-{t:02x}{i:02x}", i),
                            "2026-12-01T10:00:00.000Z",
                            Mode::Rollout,
                            "i.toml",
                        );
                        // long enough that a write could be split
                        e.limit = Some("x".repeat(5000));
                        append(&path, &e).expect("append");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let text = std::fs::read_to_string(dir.path().join(INDEX)).expect("index");
        assert_eq!(text.lines().count(), 200);
        assert_eq!(parse_index(&text).len(), 200);
    }

    #[test]
    fn runs_before_the_index_are_found_by_their_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_report(
            dir.path(),
            "20261201T090000Z-0001",
            "plan",
            "i.toml",
            &[("web01", "failed")],
        );
        std::fs::create_dir(dir.path().join("notes")).expect("not a run");
        let e = entry(
            "20261201T100000Z-aaaa",
            "2026-12-01T10:00:00.000Z",
            Mode::Rollout,
            "i.toml",
        );
        append(dir.path(), &e).expect("append");
        let all = runs(dir.path()).expect("runs");
        assert_eq!(
            ids(&all),
            ["20261201T100000Z-aaaa", "20261201T090000Z-0001"]
        );
        assert_eq!(all[1].mode, Mode::Plan);
        assert_eq!(all[1].exit, None);
        assert_eq!(all[1].summary.total, 1);
    }

    #[test]
    fn find_takes_latest_an_id_or_a_unique_prefix() {
        let dir = Path::new(".capo/runs");
        let all = vec![
            entry(
                "20261201T100100Z-bbbb",
                "2026-12-01T10:01:00.000Z",
                Mode::Plan,
                "i.toml",
            ),
            entry(
                "20261201T100000Z-aaab",
                "2026-12-01T10:00:00.000Z",
                Mode::Rollout,
                "i.toml",
            ),
            entry(
                "20261201T100000Z-aaaa",
                "2026-12-01T10:00:00.000Z",
                Mode::Rollout,
                "i.toml",
            ),
        ];
        assert_eq!(find(&all, "latest", dir).expect("latest").id, all[0].id);
        assert_eq!(
            find(&all, "20261201T1001", dir).expect("prefix").id,
            all[0].id
        );
        assert_eq!(
            find(&all, "20261201T100000Z-aaaa", dir).expect("whole").id,
            all[2].id
        );
        let err = find(&all, "20261201T1000", dir).expect_err("ambiguous");
        assert_eq!(
            err.to_string(),
            "`20261201T1000` matches 2 runs in .capo/runs: 20261201T100000Z-aaab, \
             20261201T100000Z-aaaa; give more of the id"
        );
        assert!(err.is_usage());
        let err = find(&all, "2025", dir).expect_err("none");
        assert_eq!(err.to_string(), "no run 2025 in .capo/runs");
        assert_eq!(
            find(&[], "latest", dir).expect_err("empty").to_string(),
            "no run in .capo/runs"
        );
        assert!(find(&all, "", dir).is_err());
    }

    #[test]
    fn matching_takes_mode_inventory_and_shard() {
        let inv = "/srv/i.toml";
        let shard = |index, count| {
            Some(ShardReport {
                index,
                count,
                selected: 9,
            })
        };
        let wanted = Wanted {
            mode: Mode::Rollout,
            inventory_path: Some(inv),
            shard: None,
        };
        let rollout = entry("r1", "", Mode::Rollout, "i.toml");
        assert!(wanted.matches(&rollout));
        let plan = entry("p1", "", Mode::Plan, "i.toml");
        assert!(!wanted.matches(&plan));
        assert_eq!(wanted.differs(&plan), "was a plan");
        let exec = entry("e1", "", Mode::Exec, "i.toml");
        assert_eq!(wanted.differs(&exec), "was an exec");
        let other = entry("o1", "", Mode::Rollout, "other.toml");
        assert!(!wanted.matches(&other));
        assert_eq!(wanted.differs(&other), "was a rollout of other.toml");
        let mut sharded = rollout.clone();
        sharded.shard = shard(2, 4);
        assert!(!wanted.matches(&sharded));
        assert_eq!(wanted.differs(&sharded), "was shard 2/4");
        let wanted_shard = Wanted {
            shard: Some(ShardReport {
                index: 2,
                count: 4,
                selected: 1,
            }),
            ..wanted.clone()
        };
        assert!(
            wanted_shard.matches(&sharded),
            "K/N match, whatever was selected"
        );
        assert_eq!(wanted_shard.differs(&rollout), "was not sharded");
        let mut unknown = rollout.clone();
        unknown.inventory_path = None;
        assert!(!Wanted {
            inventory_path: None,
            ..wanted
        }
        .matches(&unknown));
    }

    #[test]
    fn prune_keeps_the_newest_and_rewrites_the_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ids_all = [
            "20261201T100000Z-0001",
            "20261201T100100Z-0002",
            "20261201T100200Z-0003",
            "20261201T100300Z-0004",
        ];
        for (i, id) in ids_all.iter().enumerate() {
            write_report(dir.path(), id, "rollout", "i.toml", &[]);
            if i > 0 {
                // the first is a run from before the index
                let report = read_report(&dir.path().join(id).join(RUN_REPORT)).expect("report");
                append(dir.path(), &RunEntry::of(&report, None, None, Some(0))).expect("append");
            }
        }
        // not a run: never touched
        std::fs::create_dir(dir.path().join("keep-me")).expect("dir");
        let pruned = prune(dir.path(), 2, None).expect("prune");
        assert_eq!(
            pruned.removed,
            ["20261201T100100Z-0002", "20261201T100000Z-0001"]
        );
        assert_eq!(pruned.kept, 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "20261201T100200Z-0003",
                "20261201T100300Z-0004",
                INDEX,
                INDEX_LOCK,
                "keep-me"
            ]
        );
        assert_eq!(
            ids(&read_index(dir.path()).expect("index")),
            ["20261201T100200Z-0003", "20261201T100300Z-0004"]
        );
        // nothing more to do
        assert_eq!(
            prune(dir.path(), 2, None).expect("again").removed,
            Vec::<String>::new()
        );
        // 0 keeps all
        assert_eq!(prune(dir.path(), 0, None).expect("all").kept, 2);
    }

    #[test]
    fn prune_spares_runs_in_progress_and_the_run_that_just_ended() {
        let dir = tempfile::tempdir().expect("tempdir");
        for id in ["20261201T100000Z-0001", "20261201T100100Z-0002"] {
            write_report(dir.path(), id, "rollout", "i.toml", &[]);
        }
        // an older run still going: its lock held, a report not yet written
        let running = dir.path().join("20261201T090000Z-0003");
        std::fs::create_dir(&running).expect("dir");
        let held = hold_run(&running).expect("hold");
        // a run that died without a report (lock file, nobody holding it), long ago
        let dead = dir.path().join("20261201T080000Z-0004");
        std::fs::create_dir(&dead).expect("dir");
        drop(hold_run(&dead).expect("hold"));
        let old = SystemTime::now() - Duration::from_secs(3600);
        File::open(&dead)
            .expect("open")
            .set_modified(old)
            .expect("mtime");
        // a run that is starting (no lock file yet)
        let starting = dir.path().join("20261201T070000Z-0005");
        std::fs::create_dir(&starting).expect("dir");

        let pruned = prune(dir.path(), 1, Some("20261201T100000Z-0001")).expect("prune");
        assert_eq!(pruned.removed, Vec::<String>::new(), "{pruned:?}");
        assert_eq!(pruned.abandoned, ["20261201T080000Z-0004"]);
        assert!(running.is_dir() && starting.is_dir() && !dead.exists());
        let pruned = prune(dir.path(), 1, None).expect("prune");
        assert_eq!(pruned.removed, ["20261201T100000Z-0001"]);
        assert!(running.is_dir());
        drop(held);
    }

    #[test]
    fn prune_drops_entries_whose_directory_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = entry(
            "20261201T100000Z-aaaa",
            "2026-12-01T10:00:00.000Z",
            Mode::Rollout,
            "i.toml",
        );
        append(dir.path(), &e).expect("append");
        let pruned = prune(dir.path(), 5, None).expect("prune");
        assert_eq!(pruned.stale, [e.id.as_str()]);
        assert!(read_index(dir.path()).expect("index").is_empty());
    }
}
