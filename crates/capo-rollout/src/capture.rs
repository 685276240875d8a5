//! Capturing a remote stream: the raw bytes go to a log file, the last few KiB stay in memory.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use tokio::fs::File;
use tokio::io::{AsyncWriteExt, BufWriter};

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

/// One captured stream: a log file with everything plus an in-memory tail.
#[derive(Debug)]
pub struct Capture {
    file: Option<BufWriter<File>>,
    path: PathBuf,
    tail: Tail,
    /// The first error writing the log, kept so the run can say the log is incomplete.
    pub write_error: Option<String>,
}

impl Capture {
    /// Creates the log file at `path` (parent directories must exist).
    pub async fn create(path: &Path, tail_cap: usize) -> Self {
        let (file, write_error) = match File::create(path).await {
            Ok(f) => (Some(BufWriter::new(f)), None),
            Err(e) => (None, Some(format!("{}: {e}", path.display()))),
        };
        Capture {
            file,
            path: path.to_path_buf(),
            tail: Tail::new(tail_cap),
            write_error,
        }
    }

    /// Records a chunk of output.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.tail.push(bytes);
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = f.write_all(bytes).await {
                self.write_error = Some(format!("{}: {e}", self.path.display()));
                self.file = None;
            }
        }
    }

    /// Flushes the log file and returns the tail.
    pub async fn finish(mut self) -> Tail {
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = f.flush().await {
                self.write_error = Some(format!("{}: {e}", self.path.display()));
            }
        }
        self.tail
    }
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
        let path = dir.path().join("out.log");
        let mut c = Capture::create(&path, 4).await;
        c.write(b"hello ").await;
        c.write(b"world").await;
        let tail = c.finish().await;
        assert_eq!(tail.into_bytes(), b"orld");
        assert_eq!(std::fs::read(&path).expect("log exists"), b"hello world");
    }
}
