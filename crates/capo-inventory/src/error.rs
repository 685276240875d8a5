//! Errors from loading an inventory, rendered as `PATH:LINE:COL: message`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::duration::DurationError;
use crate::range::RangeError;

/// An inventory could not be read or is invalid.
///
/// Displays as `PATH:LINE:COL: message`, or `PATH: message` when the problem
/// has no single place in the file (an unreadable file, no hosts at all).
/// `PATH` is the path exactly as given to [`crate::Inventory::load`] or
/// [`crate::Inventory::parse`]; `LINE` and `COL` are 1-based, and `COL`
/// counts characters, not bytes.
#[derive(Debug)]
pub struct InventoryError {
    path: PathBuf,
    position: Option<(usize, usize)>,
    // Boxed: the kinds carry several strings, and this error travels in
    // every `Result` of the parser.
    kind: Box<ErrorKind>,
}

impl InventoryError {
    pub(crate) fn new(path: &Path, position: Option<(usize, usize)>, kind: ErrorKind) -> Self {
        Self {
            path: path.to_path_buf(),
            position,
            kind: Box::new(kind),
        }
    }

    /// The inventory file, as the caller named it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// 1-based line of the offending text, if the error has a position.
    pub fn line(&self) -> Option<usize> {
        self.position.map(|(line, _)| line)
    }

    /// 1-based column (in characters) of the offending text, if the error
    /// has a position.
    pub fn column(&self) -> Option<usize> {
        self.position.map(|(_, column)| column)
    }

    /// What went wrong, for callers that need to tell errors apart.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => {
                write!(f, "{}:{line}:{column}: {}", self.path.display(), self.kind)
            }
            None => write!(f, "{}: {}", self.path.display(), self.kind),
        }
    }
}

impl std::error::Error for InventoryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The kind's text is already part of our message; only an I/O error
        // carries a cause worth walking to.
        match &*self.kind {
            ErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// The specific problem behind an [`InventoryError`]. Displays without the
/// `PATH:LINE:COL: ` prefix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    #[error("cannot read inventory: {0}")]
    Io(std::io::Error),
    /// The file is not valid TOML; the text is the TOML parser's.
    #[error("{0}")]
    Syntax(String),
    /// A key that is not allowed in this table.
    #[error("unknown key `{key}` in {table}; expected one of: {}{}", expected.join(", "), hint.unwrap_or(""))]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The table it was found in, e.g. `[groups.web]`.
        table: String,
        /// The keys that table accepts.
        expected: Vec<&'static str>,
        /// Extra advice, starting with `"; "`, or nothing.
        hint: Option<&'static str>,
    },
    /// A value of the wrong TOML type.
    #[error("{what} must be {expected}, found {found}")]
    WrongType {
        /// What had the wrong type, e.g. ``"`port`"`` or
        /// ``"each entry of `identity_files`"``.
        what: String,
        /// What was expected, e.g. `an integer`.
        expected: &'static str,
        /// The TOML type found, e.g. `string`.
        found: &'static str,
    },
    /// A malformed duration.
    #[error("bad duration {value} for `{key}`: {reason}")]
    BadDuration {
        /// The key.
        key: String,
        /// The value as shown to the user (quoted if it was a string).
        value: String,
        /// Why it was rejected.
        reason: DurationError,
    },
    /// A value of the right type that is not acceptable.
    #[error("bad value {value} for `{key}`: {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// The value as shown to the user (quoted if it was a string).
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A group `hosts` entry that is not a valid range pattern.
    #[error("bad host pattern {pattern:?} in [groups.{group}]: {reason}")]
    BadPattern {
        /// The pattern as written.
        pattern: String,
        /// The group (as a TOML key).
        group: String,
        /// Why it was rejected.
        reason: RangeError,
    },
    /// A host or group name that cannot be used.
    #[error("bad {what} name {name:?}: {reason}")]
    BadName {
        /// `host` or `group`.
        what: &'static str,
        /// The name.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A host is in two groups that disagree on a setting.
    #[error(
        "host {host:?} is in groups {first_group:?} and {second_group:?}, which set `{key}` \
         differently ({first_value} and {second_value}); set `{key}` in [hosts.{host_key}] to choose"
    )]
    GroupConflict {
        /// The host.
        host: String,
        /// The host name as a TOML key, for the advice.
        host_key: String,
        /// The setting.
        key: &'static str,
        /// The group that appears first in the file.
        first_group: String,
        /// Its value.
        first_value: String,
        /// The other group.
        second_group: String,
        /// Its value.
        second_value: String,
    },
    /// A `~` path with `$HOME` unset or empty.
    #[error("cannot expand `~` in {}`{key}`: $HOME is not set{}",
        if *builtin { "the built-in default for " } else { "" },
        if *builtin { "; set it in [defaults]" } else { "" })]
    NoHome {
        /// The setting.
        key: &'static str,
        /// True if the `~` comes from a built-in default, not the file.
        builtin: bool,
    },
    /// The whole inventory expands to more than this many host names.
    #[error("the inventory expands to more than {0} host names")]
    TooManyHosts(usize),
    /// The `ssh_config` file cannot be read, or says something capo cannot apply as
    /// OpenSSH would.
    #[error("{0}")]
    SshConfig(crate::ssh_config::SshConfigError),
    /// The inventory defines no hosts.
    #[error("no hosts defined; list some in a group's `hosts` or add a [hosts.NAME] table")]
    NoHosts,
}

/// Converts a byte offset into a 1-based (line, column) pair, counting the
/// column in characters. Works on bytes so that an offset inside a
/// multi-byte character (which toml's error spans can produce) cannot panic.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let before = &bytes[..offset.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        let text = "ab\ncé d\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 1), (1, 2));
        assert_eq!(line_column(text, 3), (2, 1));
        // "é" is two bytes; the space after it is the third character.
        assert_eq!(line_column(text, 6), (2, 3));
        // An offset inside "é" still yields a sane answer.
        assert_eq!(line_column(text, 5), (2, 3));
        assert_eq!(line_column(text, 999), (3, 1));
    }

    #[test]
    fn display_with_and_without_position() {
        let e = InventoryError::new(Path::new("inv.toml"), Some((3, 7)), ErrorKind::NoHosts);
        assert!(e.to_string().starts_with("inv.toml:3:7: no hosts defined"));
        let e = InventoryError::new(Path::new("inv.toml"), None, ErrorKind::NoHosts);
        assert!(e.to_string().starts_with("inv.toml: no hosts defined"));
        assert_eq!(e.path(), Path::new("inv.toml"));
        assert_eq!(e.line(), None);
        assert_eq!(e.column(), None);
    }
}
