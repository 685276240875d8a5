//! Folding host names into range notation, the inverse of [`crate::range::expand`]:
//! `web01, web02, web03, db1` becomes `web[01-03],db1`.
//!
//! Names are grouped by the text around their last run of digits; numbers written with leading
//! zeros only fold with numbers of the same width, so expanding the result gives back exactly
//! the names given (as a set).

use std::collections::HashMap;

/// A name split around its last run of digits.
struct Numbered<'a> {
    prefix: &'a str,
    digits: &'a str,
    suffix: &'a str,
    value: u64,
}

fn split_last_number(name: &str) -> Option<Numbered<'_>> {
    let bytes = name.as_bytes();
    let end = bytes.iter().rposition(u8::is_ascii_digit)? + 1;
    let start = bytes[..end]
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let digits = &name[start..end];
    // Longer numbers would not survive the trip through u64; such names stay as they are.
    let value = digits.parse().ok().filter(|_| digits.len() <= 18)?;
    Some(Numbered {
        prefix: &name[..start],
        digits,
        suffix: &name[end..],
        value,
    })
}

/// Whether a number is written with leading zeros, which fixes its width.
fn padded(digits: &str) -> bool {
    digits.len() > 1 && digits.starts_with('0')
}

/// Names sharing prefix, suffix and (for zero-padded numbers) width.
struct Family {
    width: usize,
    values: Vec<u64>,
}

/// One piece of the output, in the order it first appears.
enum Entry {
    Plain(String),
    Family(String, String, Family),
}

/// Folds `names` into patterns, in the order each family first appears. Duplicates are
/// dropped; names that cannot be written as a range (no digits, or characters that are range
/// syntax) are kept as they are.
pub fn fold<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    let numbered: Vec<Option<Numbered<'_>>> = names
        .iter()
        .map(|n| {
            let n = n.as_ref();
            split_last_number(n).filter(|_| !n.contains(['[', ']', ',']))
        })
        .collect();
    // An unpadded number joins a padded family of its width (`10` beside `01`..`09`).
    let padded_widths: std::collections::HashSet<(&str, &str, usize)> = numbered
        .iter()
        .flatten()
        .filter(|n| padded(n.digits))
        .map(|n| (n.prefix, n.suffix, n.digits.len()))
        .collect();

    let mut entries: Vec<Entry> = Vec::new();
    let mut index: HashMap<(String, String, usize), usize> = HashMap::new();
    for (name, split) in names.iter().zip(numbered) {
        let name = name.as_ref();
        let Some(n) = split else {
            if !entries
                .iter()
                .any(|e| matches!(e, Entry::Plain(p) if p == name))
            {
                entries.push(Entry::Plain(name.to_string()));
            }
            continue;
        };
        let width = if padded_widths.contains(&(n.prefix, n.suffix, n.digits.len())) {
            n.digits.len()
        } else {
            0
        };
        let key = (n.prefix.to_string(), n.suffix.to_string(), width);
        let at = *index.entry(key).or_insert_with(|| {
            entries.push(Entry::Family(
                n.prefix.to_string(),
                n.suffix.to_string(),
                Family {
                    width,
                    values: Vec::new(),
                },
            ));
            entries.len() - 1
        });
        if let Some(Entry::Family(_, _, family)) = entries.get_mut(at) {
            // Duplicates go when the family is rendered, sorted: a search here would make
            // folding 10,000 hosts quadratic.
            family.values.push(n.value);
        }
    }
    entries
        .into_iter()
        .map(|entry| match entry {
            Entry::Plain(name) => name,
            Entry::Family(prefix, suffix, family) => render(&prefix, &suffix, family),
        })
        .collect()
}

fn render(prefix: &str, suffix: &str, mut family: Family) -> String {
    family.values.sort_unstable();
    family.values.dedup();
    let width = family.width;
    let number = |v: u64| format!("{v:0width$}");
    if let [only] = family.values[..] {
        return format!("{prefix}{}{suffix}", number(only));
    }
    let mut items: Vec<String> = Vec::new();
    let mut i = 0;
    while i < family.values.len() {
        let start = family.values[i];
        let mut end = start;
        while i + 1 < family.values.len() && family.values[i + 1] == end + 1 {
            i += 1;
            end = family.values[i];
        }
        items.push(if start == end {
            number(start)
        } else {
            format!("{}-{}", number(start), number(end))
        });
        i += 1;
    }
    format!("{prefix}[{}]{suffix}", items.join(","))
}

/// [`fold`] joined with commas, e.g. `web[01-40],db1`.
pub fn fold_to_string<S: AsRef<str>>(names: &[S]) -> String {
    fold(names).join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::range::expand;
    use proptest::prelude::*;

    #[test]
    fn folds_runs_into_ranges() {
        let names: Vec<String> = (1..=40)
            .map(|i| format!("web{i:02}"))
            .chain(["db1".to_string()])
            .collect();
        assert_eq!(fold_to_string(&names), "web[01-40],db1");
    }

    #[test]
    fn folds_gaps_singletons_and_plain_names() {
        assert_eq!(
            fold_to_string(&["web01", "web02", "web03", "web07", "web10", "web11"]),
            "web[01-03,07,10-11]"
        );
        assert_eq!(fold_to_string(&["host05"]), "host05");
        assert_eq!(
            fold_to_string(&["gateway", "web1", "web2"]),
            "gateway,web[1-2]"
        );
        assert_eq!(fold_to_string(&["web9", "web10", "web11"]), "web[9-11]");
        assert_eq!(
            fold_to_string(&["rack1-node03", "rack1-node04", "rack2-node03"]),
            "rack1-node[03-04],rack2-node03"
        );
        assert_eq!(
            fold_to_string(&["web1.example.com", "web2.example.com"]),
            "web[1-2].example.com"
        );
        assert_eq!(fold_to_string(&["a1", "a1", "a2"]), "a[1-2]");
        assert_eq!(fold_to_string::<&str>(&[]), "");
    }

    #[test]
    fn padded_and_unpadded_numbers_stay_apart() {
        assert_eq!(fold_to_string(&["n1", "n01", "n2"]), "n[1-2],n01");
    }

    fn expand_all(patterns: &[String]) -> Vec<String> {
        let mut out: Vec<String> = patterns
            .iter()
            .flat_map(|p| expand(p).unwrap_or_else(|e| panic!("{p}: {e}")))
            .collect();
        out.sort();
        out
    }

    proptest! {
        #[test]
        fn expanding_the_fold_gives_back_the_names(
            names in proptest::collection::vec(
                (
                    prop_oneof![Just("web"), Just("db"), Just("rack1-n"), Just("x"), Just("")],
                    0u64..130,
                    prop_oneof![Just(0usize), Just(2), Just(3)],
                    prop_oneof![Just(""), Just(".example.com"), Just("-a")],
                ),
                0..60,
            )
        ) {
            let names: Vec<String> = names
                .into_iter()
                .map(|(p, n, w, s)| {
                    let p = if p.is_empty() && s.is_empty() { "h" } else { p };
                    format!("{p}{n:0w$}{s}")
                })
                .collect();
            let mut want = names.clone();
            want.sort();
            want.dedup();
            prop_assert_eq!(expand_all(&fold(&names)), want);
        }
    }
}
