//! Capturing a remote stream: the raw bytes go to a log file, the last few KiB stay in memory.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// Keeps the last `cap` bytes written to it, so memory per stream is bounded whatever the host prints.
#[derive(Debug)]
pub struct Tail {
    buf: VecDeque<u8>,
    cap: usize,
    total: u64,
}

impl Tail {
    /// An empty tail keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Tail {
            buf: VecDeque::with_capacity(cap.min(4096)),
            cap,
            total: 0,
        }
    }

    /// Appends bytes, dropping the oldest beyond the cap.
    pub fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let bytes = if bytes.len() > self.cap {
            &bytes[bytes.len() - self.cap..]
        } else {
            bytes
        };
        let overflow = (self.buf.len() + bytes.len()).saturating_sub(self.cap);
        self.buf.drain(..overflow);
        self.buf.extend(bytes);
    }

    /// Total bytes ever pushed.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf.into()
    }

    /// A copy of the kept bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.buf.iter().copied().collect()
    }
}

/// Output waits in memory until this much has gathered: most steps print less, and then
/// their whole log is written in one go when they end (like a `BufWriter` of this size).
const FLUSH_AT: usize = 8 * 1024;

/// One captured stream: a log file with everything plus an in-memory tail.
///
/// The file is written from the blocking pool in as few handoffs as possible: when a step
/// ends, [`write_logs`] writes its streams and its command together. A stream that never
/// printed anything leaves no file.
#[derive(Debug)]
pub struct Capture {
    path: PathBuf,
    tail: Tail,
    /// Bytes not yet in the file.
    pending: Vec<u8>,
    /// Whether the file was created by an earlier flush.
    created: bool,
    /// The first error writing the log; later output is then only kept in the tail.
    write_error: Option<String>,
}

impl Capture {
    /// A capture whose log will be `path` (its directory is created when it is written).
    pub fn new(path: &Path, tail_cap: usize) -> Self {
        Capture {
            path: path.to_path_buf(),
            tail: Tail::new(tail_cap),
            pending: Vec::new(),
            created: false,
            write_error: None,
        }
    }

    /// Records a chunk of output.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.tail.push(bytes);
        if self.write_error.is_some() {
            return;
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= FLUSH_AT {
            let log = self.take();
            if let Some(err) = write_logs(vec![log]).await {
                self.write_error = Some(err);
                self.pending = Vec::new();
            }
        }
    }

    /// What is still to be written, leaving the capture ready for more.
    fn take(&mut self) -> LogWrite {
        let log = LogWrite {
            path: self.path.clone(),
            bytes: std::mem::take(&mut self.pending),
            append: self.created,
        };
        self.created = true;
        log
    }

    /// Ends the capture: the tail, the write still to be done (none for a stream that
    /// printed nothing or whose log already failed), and the error so far.
    pub fn finish(mut self) -> (Tail, Option<LogWrite>, Option<String>) {
        let last = if self.write_error.is_some() || (self.pending.is_empty() && !self.created) {
            None
        } else {
            Some(self.take())
        };
        (self.tail, last, self.write_error)
    }
}

/// Bytes for one log file.
#[derive(Debug)]
pub struct LogWrite {
    /// The file.
    pub path: PathBuf,
    /// What to write.
    pub bytes: Vec<u8>,
    /// Add to the file rather than create (or truncate) it.
    pub append: bool,
}

impl LogWrite {
    /// A whole file with `bytes`.
    pub fn file(path: PathBuf, bytes: Vec<u8>) -> Self {
        LogWrite {
            path,
            bytes,
            append: false,
        }
    }
}

/// Writes the logs in one trip to the blocking pool, creating their directories as needed.
/// Returns the first error (naming the file), if any; the other files are still written.
pub async fn write_logs(logs: Vec<LogWrite>) -> Option<String> {
    let job = tokio::task::spawn_blocking(move || {
        let mut first = None;
        for log in logs {
            if let Err(e) = write_log(&log) {
                first.get_or_insert(format!("{}: {e}", log.path.display()));
            }
        }
        first
    });
    match job.await {
        Ok(first) => first,
        Err(e) => Some(format!("writing the logs failed: {e}")),
    }
}

fn write_log(log: &LogWrite) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = log.path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(log.append)
        .truncate(!log.append)
        .open(&log.path)?;
    file.write_all(&log.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_only_the_last_bytes() {
        let mut t = Tail::new(5);
        t.push(b"abc");
        t.push(b"defg");
        assert_eq!(t.to_bytes(), b"cdefg");
        t.push(b"0123456789");
        assert_eq!(t.to_bytes(), b"56789");
        assert_eq!(t.total(), 17);
    }

    #[tokio::test]
    async fn capture_writes_everything_to_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("host").join("out.log");
        let mut c = Capture::new(&path, 4);
        c.write(b"hello ").await;
        c.write(b"world").await;
        let (tail, last, err) = c.finish();
        assert_eq!(tail.into_bytes(), b"orld");
        assert_eq!(err, None);
        assert_eq!(write_logs(last.into_iter().collect()).await, None);
        assert_eq!(std::fs::read(&path).expect("log exists"), b"hello world");
    }

    #[tokio::test]
    async fn a_long_stream_is_written_as_it_comes_and_completed_at_the_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.log");
        let mut c = Capture::new(&path, 16);
        let chunk = vec![b'x'; FLUSH_AT / 2 + 1];
        c.write(&chunk).await;
        c.write(&chunk).await;
        assert_eq!(
            std::fs::metadata(&path).expect("flushed mid-stream").len(),
            2 * chunk.len() as u64
        );
        c.write(b"end").await;
        let (tail, last, _) = c.finish();
        assert_eq!(tail.total(), 2 * chunk.len() as u64 + 3);
        assert_eq!(write_logs(last.into_iter().collect()).await, None);
        let all = std::fs::read(&path).expect("log");
        assert_eq!(all.len(), 2 * chunk.len() + 3);
        assert!(all.ends_with(b"xend"));
    }

    #[tokio::test]
    async fn a_silent_stream_leaves_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.log");
        let (_, last, err) = Capture::new(&path, 16).finish();
        assert!(last.is_none());
        assert_eq!(err, None);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_log_that_cannot_be_written_is_reported_and_the_tail_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A file where the log's directory should be.
        let blocker = dir.path().join("host");
        std::fs::write(&blocker, b"").expect("write");
        let mut c = Capture::new(&blocker.join("out.log"), 4);
        c.write(&vec![b'y'; FLUSH_AT]).await;
        c.write(b"tail").await;
        let (tail, last, err) = c.finish();
        assert!(last.is_none());
        let err = err.expect("the error is kept");
        assert!(err.contains("host/out.log"), "{err}");
        assert_eq!(tail.into_bytes(), b"tail");
    }
}
