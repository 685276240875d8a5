//! How a run walks the fleet: a canary first, then batches one after another, and a failure
//! budget that stops new hosts from starting. Pure planning; the engine carries it out.

use std::time::Duration;

/// A batch size: a host count or a percentage of all selected hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// This many hosts.
    Count(usize),
    /// This percentage (1..=100) of the selected hosts, rounded up, at least 1.
    Percent(u32),
}

impl Size {
    /// The number of hosts this size means out of `total`.
    pub fn of(self, total: usize) -> usize {
        match self {
            Size::Count(n) => n.max(1),
            Size::Percent(p) => (total * p as usize).div_ceil(100).max(1),
        }
    }
}

/// Parses `10`, `25%`, or a list `1,10%,100%` (Ansible's `serial`: the last size repeats).
pub fn parse_sizes(text: &str) -> Result<Vec<Size>, String> {
    text.split(',')
        .map(|part| {
            let part = part.trim();
            if let Some(p) = part.strip_suffix('%') {
                match p.parse::<u32>() {
                    Ok(p) if (1..=100).contains(&p) => Ok(Size::Percent(p)),
                    _ => Err(format!("`{part}`: a percentage must be 1% to 100%")),
                }
            } else {
                match part.parse::<usize>() {
                    Ok(n) if n >= 1 => Ok(Size::Count(n)),
                    _ => Err(format!(
                        "`{part}`: expected a host count (1 or more) or a percentage like 10%"
                    )),
                }
            }
        })
        .collect()
}

/// How many failures (failed or unreachable hosts) a run tolerates before it starts no new host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// More than this many failures stop the run.
    Count(usize),
    /// More than this percentage of the selected hosts failing stops the run.
    Percent(u32),
}

impl Budget {
    /// Parses `3` or `10%`.
    pub fn parse(text: &str) -> Result<Budget, String> {
        let text = text.trim();
        if let Some(p) = text.strip_suffix('%') {
            match p.parse::<u32>() {
                Ok(p) if p <= 100 => Ok(Budget::Percent(p)),
                _ => Err(format!("`{text}`: a percentage must be 0% to 100%")),
            }
        } else {
            text.parse::<usize>().map(Budget::Count).map_err(|_| {
                format!("`{text}`: expected a number of hosts or a percentage like 10%")
            })
        }
    }

    /// The most failures allowed out of `total` hosts.
    pub fn allowed(self, total: usize) -> usize {
        match self {
            Budget::Count(n) => n,
            Budget::Percent(p) => total * p as usize / 100,
        }
    }
}

/// The operator's strategy for a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Strategy {
    /// Hosts that run alone first; if any of them fails, the run stops.
    pub canary: usize,
    /// Batch sizes after the canary; empty means one batch of everything.
    pub batches: Vec<Size>,
    /// Failures tolerated before no new host starts.
    pub max_failures: Option<Budget>,
    /// Wait between batches.
    pub pause: Duration,
}

/// Splits `total` hosts (by index, in order) into batches: the canary, then the sizes in
/// turn, the last size repeating until every host is in a batch.
pub fn plan(total: usize, strategy: &Strategy) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut next = 0;
    if strategy.canary > 0 && total > 0 {
        let end = strategy.canary.min(total);
        out.push(0..end);
        next = end;
    }
    let sizes: Vec<usize> = if strategy.batches.is_empty() {
        vec![total.max(1)]
    } else {
        strategy.batches.iter().map(|s| s.of(total)).collect()
    };
    let mut i = 0;
    while next < total {
        let size = sizes[i.min(sizes.len() - 1)];
        let end = (next + size).min(total);
        out.push(next..end);
        next = end;
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lens(total: usize, strategy: &Strategy) -> Vec<usize> {
        plan(total, strategy).iter().map(|r| r.len()).collect()
    }

    #[test]
    fn one_batch_by_default() {
        assert_eq!(lens(5, &Strategy::default()), [5]);
        assert_eq!(lens(0, &Strategy::default()), Vec::<usize>::new());
    }

    #[test]
    fn canary_then_batches_with_the_last_size_repeating() {
        let s = Strategy {
            canary: 1,
            batches: parse_sizes("1,2").expect("sizes"),
            ..Strategy::default()
        };
        assert_eq!(lens(8, &s), [1, 1, 2, 2, 2]);
        let s = Strategy {
            batches: parse_sizes("1,10%,100%").expect("sizes"),
            ..Strategy::default()
        };
        assert_eq!(lens(50, &s), [1, 5, 44]);
        assert_eq!(
            plan(
                5,
                &Strategy {
                    canary: 2,
                    ..Strategy::default()
                }
            ),
            [0..2, 2..5]
        );
    }

    #[test]
    fn sizes_and_budgets_parse_or_say_why() {
        assert_eq!(
            parse_sizes("1, 25%").expect("sizes"),
            [Size::Count(1), Size::Percent(25)]
        );
        assert_eq!(
            parse_sizes("0").unwrap_err(),
            "`0`: expected a host count (1 or more) or a percentage like 10%"
        );
        assert_eq!(
            parse_sizes("150%").unwrap_err(),
            "`150%`: a percentage must be 1% to 100%"
        );
        assert_eq!(Size::Percent(10).of(5), 1);
        assert_eq!(Budget::parse("3"), Ok(Budget::Count(3)));
        assert_eq!(Budget::parse("10%").map(|b| b.allowed(50)), Ok(5));
        assert!(Budget::parse("x").is_err());
    }
}
