//! Human-friendly durations as written in the inventory: `"10s"`, `"500ms"`,
//! `"1h30m"`, `"2d"`.
//!
//! A duration is one or more `NUMBER UNIT` pairs with units `d`, `h`, `m`, `s`
//! and `ms`, largest unit first, each unit at most once. Bare numbers are
//! rejected: `timeout = "10"` could mean seconds or milliseconds, and a wrong
//! guess turns a 10-minute Puppet run into a timeout storm.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// The string was empty.
    #[error("expected a number followed by ms, s, m, h or d (e.g. \"10s\")")]
    Empty,
    /// The string was a number without a unit.
    #[error("a bare number has no unit; write \"{0}s\" for {0} seconds (units: ms, s, m, h, d)")]
    MissingUnit(String),
    /// The string is not of the form `NUMBER UNIT [NUMBER UNIT ...]`.
    #[error("expected a number followed by ms, s, m, h or d (e.g. \"10s\")")]
    Syntax,
    /// Units were repeated or not written largest first (`"30m1h"`, `"1m1m"`).
    #[error("units must go from largest to smallest, each at most once (e.g. \"1h30m\")")]
    UnitOrder,
    /// The total does not fit in 64 bits of milliseconds.
    #[error("duration is too large")]
    Overflow,
}

/// Units from largest to smallest, with their size in milliseconds. The
/// index in this table is the unit's rank, used to enforce ordering.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a duration such as `"10s"`, `"500ms"`, `"1h30m"` or `"2d"`.
///
/// The result is always a whole number of milliseconds.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DurationError::MissingUnit(s.to_owned()));
    }
    let mut rest = s;
    let mut total_ms: u64 = 0;
    let mut last_rank: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::Syntax);
        }
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let rank = UNITS
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or(DurationError::Syntax)?;
        if last_rank.is_some_and(|last| rank <= last) {
            return Err(DurationError::UnitOrder);
        }
        last_rank = Some(rank);
        // Only digits reach here, so the sole failure is overflow.
        let n: u64 = number.parse().map_err(|_| DurationError::Overflow)?;
        total_ms = n
            .checked_mul(UNITS[rank].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or(DurationError::Overflow)?;
        rest = tail;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration in the syntax [`parse`] accepts, e.g. `"1h30m"`.
///
/// Sub-millisecond parts are dropped, so `parse(&format(d)) == Ok(d)` for
/// every duration that is a whole number of milliseconds up to `u64::MAX`
/// milliseconds. A zero duration formats as `"0s"`.
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        let size = u128::from(size);
        let n = ms / size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("30m"), Ok(Duration::from_secs(30 * 60)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn parses_compound() {
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(
            parse("1d2h3m4s5ms"),
            Ok(Duration::from_millis(
                86_400_000 + 2 * 3_600_000 + 3 * 60_000 + 4_000 + 5
            ))
        );
    }

    #[test]
    fn rejects_bare_numbers_with_hint() {
        assert_eq!(parse("10"), Err(DurationError::MissingUnit("10".into())));
        assert_eq!(
            parse("10").map_err(|e| e.to_string()),
            Err(
                "a bare number has no unit; write \"10s\" for 10 seconds (units: ms, s, m, h, d)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "10 seconds",
            "10sec",
            "s",
            "1.5h",
            " 10s",
            "10s ",
            "1h 30m",
            "-1s",
            "10S",
            "1h30",
            "h1",
        ] {
            assert_eq!(parse(bad), Err(DurationError::Syntax), "{bad:?}");
        }
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("30m1h"), Err(DurationError::UnitOrder));
        assert_eq!(parse("1m1m"), Err(DurationError::UnitOrder));
        assert_eq!(parse("99999999999999999999s"), Err(DurationError::Overflow));
        assert_eq!(parse("999999999999999999d"), Err(DurationError::Overflow));
    }

    #[test]
    fn formats() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_millis(500)), "500ms");
        assert_eq!(format(Duration::from_secs(10)), "10s");
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(2 * 86_400)), "2d");
        assert_eq!(format(Duration::from_millis(1_001)), "1s1ms");
        assert_eq!(format(Duration::from_nanos(1_500_000)), "1ms");
    }

    proptest! {
        #[test]
        fn format_round_trips(ms in 0u64..=u64::MAX) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(parse(&format(d)), Ok(d));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = parse(&s);
        }
    }
}
