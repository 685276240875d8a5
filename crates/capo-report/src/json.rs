//! Writing the JSON report.

use std::path::Path;

use capo_schema::Report;

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
    let text = to_string(report)?;
    crate::atomic::write(path, text.as_bytes()).map_err(|source| WriteError::Io {
        path: path.display().to_string(),
        source,
    })
}
