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

/// Why a report file could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file cannot be read.
    #[error("cannot read report {path}: {source}")]
    Io {
        /// The report path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a report.
    #[error("{path} is not a capo report: {source}")]
    Parse {
        /// The report path.
        path: String,
        /// Where and why it does not parse.
        source: serde_json::Error,
    },
    /// The file is a report of another schema.
    #[error("{path} is not a {SCHEMA} report (its schema is `{found}`)", SCHEMA = capo_schema::SCHEMA)]
    Schema {
        /// The report path.
        path: String,
        /// The schema it names.
        found: String,
    },
}

/// Reads a report written by `--report` (or kept in a run directory).
pub fn read(path: &Path) -> Result<Report, ReadError> {
    let shown = || path.display().to_string();
    let text = std::fs::read(path).map_err(|source| ReadError::Io {
        path: shown(),
        source,
    })?;
    let report: Report = serde_json::from_slice(&text).map_err(|source| ReadError::Parse {
        path: shown(),
        source,
    })?;
    if report.schema != capo_schema::SCHEMA {
        return Err(ReadError::Schema {
            path: shown(),
            found: report.schema,
        });
    }
    Ok(report)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_back_says_what_is_wrong_with_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.json");
        let err = read(&missing).expect_err("missing");
        assert!(matches!(err, ReadError::Io { .. }), "{err:?}");
        assert!(err.to_string().starts_with("cannot read report "), "{err}");

        let not_json = dir.path().join("notes.txt");
        std::fs::write(&not_json, "hello").expect("write");
        let err = read(&not_json).expect_err("not JSON");
        assert!(matches!(err, ReadError::Parse { .. }), "{err:?}");
        assert!(
            err.to_string().contains("notes.txt is not a capo report: "),
            "{err}"
        );

        let other = dir.path().join("other.json");
        std::fs::write(&other, r#"{"hosts": []}"#).expect("write");
        let err = read(&other).expect_err("not a report");
        assert!(err.to_string().contains("missing field `schema`"), "{err}");

        let report: serde_json::Value = serde_json::json!({
            "schema": "capo.report/v9", "run_id": "r", "mode": "rollout",
            "started_at": "", "finished_at": "", "duration_ms": 0, "inventory": "i",
            "limit": null, "run_dir": "d", "summary": {"total": 0, "unchanged": 0,
            "changed": 0, "failed": 0, "unreachable": 0}, "hosts": []
        });
        let newer = dir.path().join("newer.json");
        std::fs::write(&newer, report.to_string()).expect("write");
        let err = read(&newer).expect_err("another schema");
        assert!(
            err.to_string()
                .ends_with("is not a capo.report/v1 report (its schema is `capo.report/v9`)"),
            "{err}"
        );

        let mut good = report;
        good["schema"] = SCHEMA_V1.into();
        std::fs::write(&newer, good.to_string()).expect("write");
        assert_eq!(read(&newer).expect("a report").run_id, "r");
    }

    const SCHEMA_V1: &str = capo_schema::SCHEMA;
}
