//! Host name ranges: `web[01-20].example.com`, `web[1-3,7,10-12]`,
//! `rack[1-2]-node[1-4]`.
//!
//! A bracket holds comma-separated items, each a number or `START-END`.
//! Numbers whose start is written with a leading zero are zero-padded to the
//! width written (`[01-20]` gives `01`..`20`, `[1-20]` gives `1`..`20`).
//! Several brackets form a cartesian product, left-most varying slowest, so
//! names come out in the order a person reading the pattern would expect.

/// The most names one pattern may expand to. Checked before anything is
/// allocated, so `web[1-99999999]` fails at once instead of eating memory.
pub const MAX_EXPANSION: usize = 100_000;

/// The longest pattern accepted, in bytes. Host names are at most 253 bytes;
/// the cap keeps `MAX_EXPANSION` copies of a pattern small.
pub const MAX_PATTERN_LEN: usize = 1024;

/// Why a range pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RangeError {
    /// The pattern was the empty string.
    #[error("empty pattern")]
    Empty,
    /// The pattern is longer than [`MAX_PATTERN_LEN`].
    #[error("pattern is longer than {MAX_PATTERN_LEN} bytes")]
    TooLong,
    /// A `[` without a matching `]`.
    #[error("`[` is never closed")]
    Unclosed,
    /// A `]` without a preceding `[`.
    #[error("`]` has no matching `[`")]
    Unopened,
    /// A `[` inside another bracket.
    #[error("brackets cannot be nested")]
    Nested,
    /// `[]`, or an empty item such as `[1,,3]`.
    #[error("empty item in `[{0}]`")]
    EmptyItem(String),
    /// `[1-]` or `[-3]`.
    #[error("incomplete range `{0}`; expected START-END, e.g. `01-20`")]
    Incomplete(String),
    /// An item that is not a decimal number, e.g. `[a-z]`.
    #[error("`{0}` is not a number; only numeric ranges such as `[01-20]` are supported")]
    NotNumeric(String),
    /// `[5-1]`.
    #[error("range `{start}-{end}` is backwards (start is greater than end)")]
    Backwards {
        /// The start as written.
        start: String,
        /// The end as written.
        end: String,
    },
    /// A number that does not fit in 64 bits.
    #[error("number `{0}` is too large")]
    TooLarge(String),
    /// The pattern would expand to more than [`MAX_EXPANSION`] names.
    #[error("pattern expands to more than {MAX_EXPANSION} names")]
    TooMany,
}

/// One `START-END` (or single number) item of a bracket.
#[derive(Debug, Clone, Copy)]
struct Item {
    start: u64,
    end: u64,
    width: usize,
}

impl Item {
    /// Number of values; saturates so that absurd ranges hit the cap instead
    /// of overflowing.
    fn len(self) -> u64 {
        (self.end - self.start).saturating_add(1)
    }
}

#[derive(Debug)]
enum Segment<'a> {
    Literal(&'a str),
    Choices(Vec<Item>),
}

/// Expands every bracket in `pattern` into the list of names it stands for.
///
/// A pattern without brackets expands to itself.
pub fn expand(pattern: &str) -> Result<Vec<String>, RangeError> {
    let segments = split(pattern)?;
    let mut total: u64 = 1;
    for segment in &segments {
        if let Segment::Choices(items) = segment {
            let count = items
                .iter()
                .try_fold(0u64, |acc, item| acc.checked_add(item.len()))
                .ok_or(RangeError::TooMany)?;
            total = total.checked_mul(count).ok_or(RangeError::TooMany)?;
            if total > MAX_EXPANSION as u64 {
                return Err(RangeError::TooMany);
            }
        }
    }
    let mut names = vec![String::new()];
    for segment in &segments {
        match segment {
            Segment::Literal(text) => names.iter_mut().for_each(|name| name.push_str(text)),
            Segment::Choices(items) => {
                let mut next = Vec::with_capacity(names.len().saturating_mul(items.len()));
                for prefix in &names {
                    for item in items {
                        for n in item.start..=item.end {
                            next.push(format!("{prefix}{n:0width$}", width = item.width));
                        }
                    }
                }
                names = next;
            }
        }
    }
    Ok(names)
}

fn split(pattern: &str) -> Result<Vec<Segment<'_>>, RangeError> {
    if pattern.is_empty() {
        return Err(RangeError::Empty);
    }
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(RangeError::TooLong);
    }
    let mut segments = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find(['[', ']']) {
        if rest[open..].starts_with(']') {
            return Err(RangeError::Unopened);
        }
        if open > 0 {
            segments.push(Segment::Literal(&rest[..open]));
        }
        let inner_and_tail = &rest[open + 1..];
        let close = inner_and_tail
            .find(['[', ']'])
            .ok_or(RangeError::Unclosed)?;
        if inner_and_tail[close..].starts_with('[') {
            return Err(RangeError::Nested);
        }
        let inner = &inner_and_tail[..close];
        let items = inner
            .split(',')
            .map(|item| parse_item(item, inner))
            .collect::<Result<Vec<_>, _>>()?;
        segments.push(Segment::Choices(items));
        rest = &inner_and_tail[close + 1..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Literal(rest));
    }
    Ok(segments)
}

fn parse_item(item: &str, bracket: &str) -> Result<Item, RangeError> {
    if item.is_empty() {
        return Err(RangeError::EmptyItem(bracket.to_owned()));
    }
    let (start_text, end_text) = match item.split_once('-') {
        Some((start, end)) => {
            if start.is_empty() || end.is_empty() {
                return Err(RangeError::Incomplete(item.to_owned()));
            }
            (start, end)
        }
        None => (item, item),
    };
    let start = parse_number(start_text)?;
    let end = parse_number(end_text)?;
    if start > end {
        return Err(RangeError::Backwards {
            start: start_text.to_owned(),
            end: end_text.to_owned(),
        });
    }
    let width = if start_text.len() > 1 && start_text.starts_with('0') {
        start_text.len()
    } else {
        0
    };
    Ok(Item { start, end, width })
}

fn parse_number(text: &str) -> Result<u64, RangeError> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RangeError::NotNumeric(text.to_owned()));
    }
    text.parse()
        .map_err(|_| RangeError::TooLarge(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(pattern: &str) -> Vec<String> {
        match expand(pattern) {
            Ok(names) => names,
            Err(e) => panic!("{pattern:?}: {e}"),
        }
    }

    #[test]
    fn no_brackets_is_identity() {
        assert_eq!(ok("web01.example.com"), ["web01.example.com"]);
    }

    #[test]
    fn zero_padding_follows_the_start() {
        assert_eq!(ok("web[01-03].x"), ["web01.x", "web02.x", "web03.x"]);
        assert_eq!(ok("web[1-3]"), ["web1", "web2", "web3"]);
        assert_eq!(ok("web[8-10]"), ["web8", "web9", "web10"]);
        assert_eq!(ok("web[08-10]"), ["web08", "web09", "web10"]);
        assert_eq!(ok("w[098-101]"), ["w098", "w099", "w100", "w101"]);
        assert_eq!(ok("w[0-2]"), ["w0", "w1", "w2"]);
        assert_eq!(ok("w[07]"), ["w07"]);
        let names = ok("web[01-20].example.com");
        assert_eq!(names.len(), 20);
        assert_eq!(names[0], "web01.example.com");
        assert_eq!(names[19], "web20.example.com");
    }

    #[test]
    fn comma_parts() {
        assert_eq!(
            ok("web[1-3,7,10-12]"),
            ["web1", "web2", "web3", "web7", "web10", "web11", "web12"]
        );
    }

    #[test]
    fn cartesian_product_left_most_slowest() {
        assert_eq!(
            ok("rack[1-2]-node[1-3]"),
            [
                "rack1-node1",
                "rack1-node2",
                "rack1-node3",
                "rack2-node1",
                "rack2-node2",
                "rack2-node3"
            ]
        );
        assert_eq!(ok("[1-2][5]"), ["15", "25"]);
    }

    #[test]
    fn bad_ranges() {
        assert_eq!(
            expand("web[5-1]"),
            Err(RangeError::Backwards {
                start: "5".into(),
                end: "1".into()
            })
        );
        assert_eq!(expand("web[1-]"), Err(RangeError::Incomplete("1-".into())));
        assert_eq!(expand("web[-3]"), Err(RangeError::Incomplete("-3".into())));
        assert_eq!(expand("web["), Err(RangeError::Unclosed));
        assert_eq!(expand("web[1-3"), Err(RangeError::Unclosed));
        assert_eq!(expand("web]"), Err(RangeError::Unopened));
        assert_eq!(expand("web[1[2]]"), Err(RangeError::Nested));
        assert_eq!(expand("web[]"), Err(RangeError::EmptyItem(String::new())));
        assert_eq!(
            expand("web[1,,3]"),
            Err(RangeError::EmptyItem("1,,3".into()))
        );
        assert_eq!(expand("web[a-z]"), Err(RangeError::NotNumeric("a".into())));
        assert_eq!(
            expand("web[1-2-3]"),
            Err(RangeError::NotNumeric("2-3".into()))
        );
        assert_eq!(expand(""), Err(RangeError::Empty));
        assert_eq!(
            expand("web[99999999999999999999]"),
            Err(RangeError::TooLarge("99999999999999999999".into()))
        );
        assert_eq!(
            expand("web[a-z]").map_err(|e| e.to_string()),
            Err("`a` is not a number; only numeric ranges such as `[01-20]` are supported".into())
        );
        assert_eq!(
            expand("web[5-1]").map_err(|e| e.to_string()),
            Err("range `5-1` is backwards (start is greater than end)".into())
        );
    }

    #[test]
    fn expansion_is_capped_before_allocating() {
        assert_eq!(expand("web[1-99999999]"), Err(RangeError::TooMany));
        assert_eq!(
            expand("web[0-18446744073709551615]"),
            Err(RangeError::TooMany)
        );
        assert_eq!(expand("a[1-1000]b[1-1000]"), Err(RangeError::TooMany));
        assert_eq!(
            expand("a[0-18446744073709551615,0-18446744073709551615]"),
            Err(RangeError::TooMany)
        );
        assert_eq!(ok("a[1-100000]").len(), MAX_EXPANSION);
        assert_eq!(ok("a[1-100]b[1-1000]").len(), MAX_EXPANSION);
        assert_eq!(expand("a[1-100001]"), Err(RangeError::TooMany));
        assert_eq!(
            expand(&"a".repeat(MAX_PATTERN_LEN + 1)),
            Err(RangeError::TooLong)
        );
        assert_eq!(
            expand("web[1-99999999]").map_err(|e| e.to_string()),
            Err("pattern expands to more than 100000 names".into())
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "[a-z0-9\\[\\],-]{0,24}") {
            let _ = expand(&s);
        }

        #[test]
        fn never_panics_on_any_text(s in "\\PC{0,40}") {
            let _ = expand(&s);
        }

        #[test]
        fn simple_range_has_expected_length(start in 0u64..1000, len in 1u64..200) {
            let end = start + len - 1;
            let names = expand(&format!("h[{start}-{end}]")).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(names.len() as u64, len);
            let first = format!("h{start}");
            let last = format!("h{end}");
            prop_assert_eq!(names.first(), Some(&first));
            prop_assert_eq!(names.last(), Some(&last));
        }
    }
}
