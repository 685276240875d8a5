//! `--limit` host selection.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::model::{Host, Inventory};
use crate::range::{self, RangeError};
use crate::suggest;

/// A `--limit` expression that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// The expression has an empty term (`"web,,db"`, `"web,"`, `"!"`).
    #[error("--limit: empty term in {limit:?}")]
    EmptyTerm {
        /// The whole expression.
        limit: String,
    },
    /// A term that names no host or group and whose pattern matches no host.
    #[error(
        "--limit: {term:?} matches no host or group in {}{}",
        inventory.display(),
        suggestion.as_ref().map(|s| format!("; did you mean {s:?}?")).unwrap_or_default()
    )]
    NoMatch {
        /// The term, without its `!`.
        term: String,
        /// The inventory file.
        inventory: PathBuf,
        /// A host or group name close to the term, if any.
        suggestion: Option<String>,
    },
    /// A term with a malformed range, e.g. `web[5-1]`.
    #[error("--limit: bad range in {term:?}: {reason}")]
    BadRange {
        /// The term, without its `!`.
        term: String,
        /// Why the range was rejected.
        reason: RangeError,
    },
    /// Every term matched something, but exclusions removed every host.
    #[error("--limit {limit:?} selects no hosts")]
    Empty {
        /// The whole expression.
        limit: String,
    },
}

pub(crate) fn select<'a>(
    inv: &'a Inventory,
    limit: Option<&str>,
) -> Result<Vec<&'a Host>, SelectError> {
    let Some(limit) = limit else {
        return Ok(inv.hosts.iter().collect());
    };
    let index: HashMap<&str, usize> = inv
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (h.name.as_str(), i))
        .collect();
    let mut included = vec![false; inv.hosts.len()];
    let mut excluded = vec![false; inv.hosts.len()];
    let mut any_positive = false;
    for raw in split_terms(limit) {
        let raw = raw.trim();
        let (term, negative) = match raw.strip_prefix('!') {
            Some(rest) => (rest.trim(), true),
            None => (raw, false),
        };
        if term.is_empty() {
            return Err(SelectError::EmptyTerm {
                limit: limit.to_owned(),
            });
        }
        let marks = if negative {
            &mut excluded
        } else {
            any_positive = true;
            &mut included
        };
        mark_term(inv, &index, term, marks)?;
    }
    let selected: Vec<&Host> = inv
        .hosts
        .iter()
        .enumerate()
        .filter(|&(i, _)| (included[i] || !any_positive) && !excluded[i])
        .map(|(_, h)| h)
        .collect();
    if selected.is_empty() {
        return Err(SelectError::Empty {
            limit: limit.to_owned(),
        });
    }
    Ok(selected)
}

/// Splits on commas outside brackets, so `web[1-3,7]` stays one term.
fn split_terms(limit: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in limit.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&limit[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&limit[start..]);
    terms
}

/// Marks the hosts `term` stands for. An exact host or group name wins over
/// pattern syntax; otherwise ranges are expanded and each result is a name or
/// a `*`/`?` glob over host names.
fn mark_term(
    inv: &Inventory,
    index: &HashMap<&str, usize>,
    term: &str,
    marks: &mut [bool],
) -> Result<(), SelectError> {
    if mark_name(inv, index, term, marks) {
        return Ok(());
    }
    let patterns = if term.contains(['[', ']']) {
        range::expand(term).map_err(|reason| SelectError::BadRange {
            term: term.to_owned(),
            reason,
        })?
    } else {
        vec![term.to_owned()]
    };
    let mut found = false;
    for pattern in &patterns {
        if mark_name(inv, index, pattern, marks) {
            found = true;
        } else if pattern.contains(['*', '?']) {
            let glob = wildmatch::WildMatch::new(pattern);
            for (i, host) in inv.hosts.iter().enumerate() {
                if glob.matches(&host.name) {
                    marks[i] = true;
                    found = true;
                }
            }
        }
    }
    if found {
        return Ok(());
    }
    let literal: String = term.chars().filter(|c| !matches!(c, '*' | '?')).collect();
    let names = inv
        .groups
        .iter()
        .map(|g| g.name.as_str())
        .chain(inv.hosts.iter().map(|h| h.name.as_str()));
    Err(SelectError::NoMatch {
        term: term.to_owned(),
        inventory: inv.path.clone(),
        suggestion: suggest::closest(&literal, names).map(str::to_owned),
    })
}

/// Marks a host or group called exactly `name`; returns whether one exists.
/// A group with no hosts still counts as found, so the error is "selects no
/// hosts" rather than a misleading "matches no group".
fn mark_name(
    inv: &Inventory,
    index: &HashMap<&str, usize>,
    name: &str,
    marks: &mut [bool],
) -> bool {
    let mut found = false;
    if let Some(&i) = index.get(name) {
        marks[i] = true;
        found = true;
    }
    if let Some(group) = inv.group(name) {
        for member in &group.hosts {
            if let Some(&i) = index.get(member.as_str()) {
                marks[i] = true;
            }
        }
        found = true;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn inventory() -> Inventory {
        let text = r#"
[defaults]
identity_files = []
known_hosts = "/kh"

[groups.web]
hosts = ["web[01-04]"]

[groups.db]
hosts = ["db1", "db2"]

[groups.empty]

[hosts.bastion]
"#;
        crate::parse::parse(text, Path::new("inventory.toml"), None).expect("test inventory parses")
    }

    fn names(inv: &Inventory, limit: &str) -> Result<Vec<String>, String> {
        inv.select(Some(limit))
            .map(|hosts| hosts.into_iter().map(|h| h.name.clone()).collect())
            .map_err(|e| e.to_string())
    }

    fn ok(inv: &Inventory, limit: &str) -> Vec<String> {
        names(inv, limit).unwrap_or_else(|e| panic!("{limit:?}: {e}"))
    }

    #[test]
    fn none_selects_all_in_order() {
        let inv = inventory();
        let all: Vec<&str> = inv
            .select(None)
            .expect("select all")
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        assert_eq!(
            all,
            ["web01", "web02", "web03", "web04", "db1", "db2", "bastion"]
        );
    }

    #[test]
    fn host_names_and_groups() {
        let inv = inventory();
        assert_eq!(ok(&inv, "db2"), ["db2"]);
        assert_eq!(ok(&inv, "db"), ["db1", "db2"]);
        // Inventory order, not term order.
        assert_eq!(
            ok(&inv, "bastion,db,web02"),
            ["web02", "db1", "db2", "bastion"]
        );
        assert_eq!(ok(&inv, " db1 , bastion "), ["db1", "bastion"]);
    }

    #[test]
    fn globs() {
        let inv = inventory();
        assert_eq!(ok(&inv, "web*"), ["web01", "web02", "web03", "web04"]);
        assert_eq!(ok(&inv, "db?"), ["db1", "db2"]);
        assert_eq!(ok(&inv, "*0?"), ["web01", "web02", "web03", "web04"]);
        assert_eq!(
            ok(&inv, "*"),
            ["web01", "web02", "web03", "web04", "db1", "db2", "bastion"]
        );
        assert_eq!(ok(&inv, "*st*"), ["bastion"]);
    }

    #[test]
    fn ranges() {
        let inv = inventory();
        assert_eq!(ok(&inv, "web[02-03]"), ["web02", "web03"]);
        assert_eq!(ok(&inv, "web[01,04],db1"), ["web01", "web04", "db1"]);
        // Names in the range that are not hosts are skipped, as long as one is.
        assert_eq!(ok(&inv, "web[03-09]"), ["web03", "web04"]);
        assert_eq!(ok(&inv, "db[1-2]*"), ["db1", "db2"]);
        assert_eq!(
            names(&inv, "web[5-1]"),
            Err("--limit: bad range in \"web[5-1]\": range `5-1` is backwards (start is greater than end)".into())
        );
    }

    #[test]
    fn exclusion() {
        let inv = inventory();
        assert_eq!(ok(&inv, "web,!web02"), ["web01", "web03", "web04"]);
        assert_eq!(ok(&inv, "!web02,web"), ["web01", "web03", "web04"]);
        assert_eq!(ok(&inv, "web*,!web0[3-4]"), ["web01", "web02"]);
    }

    #[test]
    fn only_negative_terms_start_from_all() {
        let inv = inventory();
        assert_eq!(ok(&inv, "!web"), ["db1", "db2", "bastion"]);
        assert_eq!(ok(&inv, "!web,!db1"), ["db2", "bastion"]);
    }

    #[test]
    fn no_match_is_an_error() {
        let inv = inventory();
        assert_eq!(
            names(&inv, "wbe*"),
            Err("--limit: \"wbe*\" matches no host or group in inventory.toml; did you mean \"web\"?".into())
        );
        assert_eq!(
            names(&inv, "nothing"),
            Err("--limit: \"nothing\" matches no host or group in inventory.toml".into())
        );
        // A typo in an exclusion must not silently select more.
        assert_eq!(
            names(&inv, "db,!db3"),
            Err(
                "--limit: \"db3\" matches no host or group in inventory.toml; did you mean \"db\"?"
                    .into()
            )
        );
        assert_eq!(
            names(&inv, "web[07-09]"),
            Err("--limit: \"web[07-09]\" matches no host or group in inventory.toml".into())
        );
    }

    #[test]
    fn empty_results_and_terms_are_errors() {
        let inv = inventory();
        assert_eq!(
            names(&inv, "web,!web"),
            Err("--limit \"web,!web\" selects no hosts".into())
        );
        assert_eq!(
            names(&inv, "empty"),
            Err("--limit \"empty\" selects no hosts".into())
        );
        assert_eq!(
            names(&inv, "!*"),
            Err("--limit \"!*\" selects no hosts".into())
        );
        for bad in ["", "web,,db", "web,", ",web", "!", "web, !"] {
            assert_eq!(
                names(&inv, bad),
                Err(format!("--limit: empty term in {bad:?}")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn glob_matching() {
        // `*` any run of characters, `?` exactly one, as OpenSSH and shells mean them.
        let m = |p: &str, n: &str| wildmatch::WildMatch::new(p).matches(n);
        assert!(m("*", ""));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("**a", "a"));
        assert!(!m("abc", "abcd"));
        assert!(m("*.example.com", "web01.example.com"));
    }

    #[test]
    fn split_respects_brackets() {
        assert_eq!(split_terms("a[1,2],b"), ["a[1,2]", "b"]);
        assert_eq!(split_terms("a,b"), ["a", "b"]);
        assert_eq!(split_terms(""), [""]);
    }
}
