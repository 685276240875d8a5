//! Marker lines: how the scripts talk back to capo on stdout.

/// Prefix of the marker lines scripts print on stdout (`::capo:KEY=VALUE`); the one
/// definition, for capo and for the simulated fleet.
pub const MARK: &str = "::capo:";

/// Ends each file in `capo-collect`'s output (`::capo:eof=FILE`).
pub const EOF_MARK: &str = "::capo:eof=";

/// The marker lines a script printed, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Marks(Vec<(String, String)>);

impl Marks {
    /// Reads every `::capo:KEY=VALUE` line of `stdout`.
    pub fn parse(stdout: &[u8]) -> Marks {
        let text = String::from_utf8_lossy(stdout);
        Marks(
            text.lines()
                .filter_map(|l| l.strip_prefix(MARK))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
                .collect(),
        )
    }

    /// Adds the marks of another chunk of output (e.g. the tail after the head).
    pub fn extend(&mut self, other: Marks) {
        self.0.extend(other.0);
    }

    /// The last non-empty value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The pid a step printed (its wrapper's shell on the host).
    pub fn pid(&self) -> Option<u32> {
        self.get("pid").and_then(|p| p.parse().ok())
    }
}

/// `stdout` with the marker lines removed.
pub fn strip_marks(stdout: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stdout.len());
    for line in stdout.split_inclusive(|&b| b == b'\n') {
        if !line.starts_with(MARK.as_bytes()) {
            out.extend_from_slice(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_parsed_and_stripped() {
        let out = b"::capo:pid=42\n::capo:rev-before=abc\nAlready up to date.\n::capo:rev-after=def\n::capo:dirty= M a\n::capo:dirty=?? b\n";
        let marks = Marks::parse(out);
        assert_eq!(marks.get("rev-before"), Some("abc"));
        assert_eq!(marks.get("rev-after"), Some("def"));
        assert_eq!(marks.pid(), Some(42));
        assert_eq!(marks.all("dirty").collect::<Vec<_>>(), ["M a", "?? b"]);
        assert_eq!(strip_marks(out), b"Already up to date.\n");
        assert_eq!(
            Marks::parse(b"::capo:rev-before=\n").get("rev-before"),
            None
        );
    }
}
