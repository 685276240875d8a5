//! Writing the JSON report.

use std::io::Write;
use std::path::Path;

use crate::model::Report;

/// Failure to write a report file.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The file system refused.
    #[error("cannot write report {path}: {source}")]
    Io {
        /// The report path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Serialisation failed (a bug).
    #[error("cannot encode report: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The report as pretty JSON text, ending with a newline.
pub fn to_string(report: &Report) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    Ok(text)
}

/// Writes the report atomically: a temporary file beside `path`, synced, then renamed over it,
/// so a reader never sees half a report.
pub fn write_atomic(report: &Report, path: &Path) -> Result<(), WriteError> {
    let io = |source| WriteError::Io {
        path: path.display().to_string(),
        source,
    };
    let text = to_string(report)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".capo-report-")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(text.as_bytes()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
