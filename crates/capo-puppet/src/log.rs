//! Puppet's log, as written by `--logdest FILE.jsonl` (one JSON object a line) or embedded in the
//! report, and the `--show_diff` content diffs found in it.

use serde::{Deserialize, Serialize};

/// One log line of a Puppet run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// Puppet's level: `debug`, `info`, `notice`, `warning`, `err`, `alert`, `emerg`, `crit`.
    pub level: String,
    /// The message; may span lines.
    pub message: String,
    /// Where it came from: `Puppet`, `Facter`, or a resource path such as
    /// `/Stage[main]/Main/File[/etc/motd]/content`. Empty if the entry has none.
    pub source: String,
    /// The entry's timestamp as Puppet wrote it (ISO 8601), if any.
    pub time: Option<String>,
}

/// The content diff `--show_diff` logged for one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDiff {
    /// The resource, e.g. `File[/etc/motd]`.
    pub resource: String,
    /// The unified diff. Its `---`/`+++` lines are rewritten to `--- PATH` and `+++ PATH`: Puppet
    /// puts file timestamps and a random temporary file name there, which would make the same
    /// change on two hosts look different.
    pub diff: String,
}

/// Levels at or above `err`, which Puppet uses for failures.
const ERROR_LEVELS: &[&str] = &["err", "alert", "emerg", "crit"];

#[derive(Deserialize)]
struct RawEntry {
    level: Option<String>,
    message: Option<String>,
    source: Option<String>,
    time: Option<String>,
}

/// Parses Puppet's JSON-lines log. Lines that are not a JSON object with a string `level` and
/// `message` (a line cut off by a dropped connection, noise from a wrapper) are skipped. Also
/// accepts the `.json` flavour, where the same objects sit in an array one per line.
pub fn parse_log_jsonl(text: &str) -> Vec<LogEntry> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            // The array flavour wraps the objects in `[`, `,` and `]`; none of those can start or
            // end a lone JSON object, so stripping them never damages one.
            let line = line.strip_prefix('[').unwrap_or(line);
            let line = line.strip_suffix(']').unwrap_or(line);
            let line = line.strip_suffix(',').unwrap_or(line).trim();
            if !line.starts_with('{') {
                return None;
            }
            let raw: RawEntry = serde_json::from_str(line).ok()?;
            Some(LogEntry {
                level: raw.level?,
                message: raw.message?,
                source: raw.source.unwrap_or_default(),
                time: raw.time,
            })
        })
        .collect()
}

/// Messages of the entries at level `err` or worse, in order. In a `--logdest` log this includes
/// errors from before the catalog was applied (a compile failure, Facter).
pub fn errors(entries: &[LogEntry]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| ERROR_LEVELS.contains(&e.level.as_str()))
        .map(|e| e.message.clone())
        .collect()
}

/// The `--show_diff` diffs among `entries` (from [`parse_log_jsonl`] or [`crate::Report::logs`]),
/// in order. Puppet logs each as a notice whose source ends in `/content` and whose message
/// starts with a newline and `--- `.
pub fn diffs(entries: &[LogEntry]) -> Vec<FileDiff> {
    entries
        .iter()
        .filter_map(|entry| {
            let owner = entry.source.strip_suffix("/content")?;
            let body = entry.message.strip_prefix('\n').unwrap_or(&entry.message);
            if !body.starts_with("--- ") {
                return None;
            }
            Some(FileDiff {
                resource: resource_of(owner).unwrap_or(owner).to_string(),
                diff: normalize_diff(body),
            })
        })
        .collect()
}

/// The last resource reference of a containment path: `File[/etc/motd]` out of
/// `/Stage[main]/Main/File[/etc/motd]`. Titles may hold `/` and `[`/`]`, so the reference is
/// found by balancing brackets from the end rather than by splitting on `/`.
fn resource_of(path: &str) -> Option<&str> {
    if !path.ends_with(']') {
        return None;
    }
    let mut depth = 0usize;
    let mut open = None;
    for (i, c) in path.char_indices().rev() {
        match c {
            ']' => depth += 1,
            '[' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    open = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let open = open?;
    let head = &path[..open];
    // Type names are `Foo` or `Foo::Bar`: ASCII word characters and colons.
    let type_len = head
        .bytes()
        .rev()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b':')
        .count();
    let start = open - type_len;
    let starts_type = path
        .as_bytes()
        .get(start)
        .is_some_and(u8::is_ascii_uppercase);
    let after_separator = start == 0 || path.as_bytes().get(start - 1) == Some(&b'/');
    (starts_type && after_separator).then(|| &path[start..])
}

/// Rewrites the two header lines of a unified diff to `--- PATH` / `+++ PATH`, PATH being the
/// file's real path from the `---` line (the `+++` line names Puppet's temporary file).
fn normalize_diff(body: &str) -> String {
    let mut lines = body.split_inclusive('\n');
    let Some(old_header) = lines.next() else {
        return String::new();
    };
    let old = old_header.strip_prefix("--- ").unwrap_or(old_header);
    // `diff -u` separates the name from the timestamp with a tab.
    let path = old
        .split('\t')
        .next()
        .unwrap_or(old)
        .trim_end_matches(['\n', '\r']);
    let mut out = format!("--- {path}\n");
    let mut rest = lines.peekable();
    if rest.peek().is_some_and(|l| l.starts_with("+++ ")) {
        rest.next();
        out.push_str(&format!("+++ {path}\n"));
    }
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_of_handles_slashes_and_brackets_in_titles() {
        assert_eq!(
            resource_of("/Stage[main]/Main/File[/etc/motd]"),
            Some("File[/etc/motd]")
        );
        assert_eq!(
            resource_of("/Stage[main]/Profile::Web/Concat::Fragment[a]/File[/srv/x[1]/y]"),
            Some("File[/srv/x[1]/y]")
        );
        assert_eq!(resource_of("File[/etc/motd]"), Some("File[/etc/motd]"));
        assert_eq!(
            resource_of("/Stage[main]/Main/Foo::Bar[t]"),
            Some("Foo::Bar[t]")
        );
        assert_eq!(resource_of("Puppet"), None);
        assert_eq!(resource_of("/Stage[main]/Main/file[x]"), None);
        assert_eq!(resource_of("]"), None);
        assert_eq!(resource_of("[x]"), None);
    }

    #[test]
    fn normalize_diff_rewrites_headers_only() {
        let raw = "--- /etc/motd\t2026-11-24 23:33:39.767579886 +0000\n+++ /tmp/puppet-file20261124-1-abc\t2026-11-24 23:33:41.599579865 +0000\n@@ -1 +1 @@\n-old\n+new\n";
        assert_eq!(
            normalize_diff(raw),
            "--- /etc/motd\n+++ /etc/motd\n@@ -1 +1 @@\n-old\n+new\n"
        );
        // A header without timestamp, and a body line that looks like a header, stay intact.
        let raw = "--- /a b\n+++ /tmp/x\n@@ -1 +1 @@\n---- x\n++++ y\n";
        assert_eq!(
            normalize_diff(raw),
            "--- /a b\n+++ /a b\n@@ -1 +1 @@\n---- x\n++++ y\n"
        );
        assert_eq!(normalize_diff("--- /a"), "--- /a\n");
    }

    #[test]
    fn jsonl_skips_bad_lines_and_accepts_the_array_flavour() {
        let text = concat!(
            "[\n",
            r#"{"level":"notice","message":"a","source":"Puppet","time":"t1"},"#,
            "\n",
            "not json\n",
            r#"{"level":"err","message":7}"#,
            "\n",
            r#"{"level":"err","message":"b"}"#,
            "\n",
            r#"{"level":"warning","message":"c"#,
            "\n]\n",
        );
        let entries = parse_log_jsonl(text);
        assert_eq!(
            entries,
            vec![
                LogEntry {
                    level: "notice".into(),
                    message: "a".into(),
                    source: "Puppet".into(),
                    time: Some("t1".into()),
                },
                LogEntry {
                    level: "err".into(),
                    message: "b".into(),
                    source: String::new(),
                    time: None,
                },
            ]
        );
        assert_eq!(errors(&entries), vec!["b".to_string()]);
    }
}
