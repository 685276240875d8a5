//! `--shard K/N`: a partition of the selected hosts that N jobs (a CI matrix, a Kubernetes
//! Indexed Job) can each take one part of, without talking to each other.
//!
//! A host's part depends on its name only: the FNV-1a 64-bit hash of the name's UTF-8
//! bytes, mixed with splitmix64's finalizer (FNV's low bits alone spread names like
//! `web01`..`web99` unevenly), modulo N. Not the host's place in the inventory, nor the
//! clock: jobs that read the same inventory at different times, or an inventory with hosts
//! added, agree on every host that is in both. Every host is in exactly one part; a small
//! fleet may leave a part empty.

use std::fmt;
use std::str::FromStr;

/// One part of N: `index` from 1 to `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// K, from 1.
    pub index: u32,
    /// N.
    pub count: u32,
}

impl Shard {
    /// Whether the host named `name` is in this part.
    pub fn contains(&self, name: &str) -> bool {
        part_of(name, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `--shard` as given: a part, or `auto/N`, where the job's index picks the part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSpec {
    /// `K/N`.
    Fixed(Shard),
    /// `auto/N`: `JOB_COMPLETION_INDEX` (from 0, as Kubernetes sets it) + 1 is K.
    Auto {
        /// N.
        count: u32,
    },
}

/// The environment variable a Kubernetes Indexed Job sets in each pod.
pub const JOB_INDEX_VAR: &str = "JOB_COMPLETION_INDEX";

/// Why `--shard` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not `K/N` or `auto/N`.
    #[error("must be K/N with 1 <= K <= N (e.g. 2/3), or auto/N to take K from {JOB_INDEX_VAR}")]
    Syntax,
    /// `auto/N` without the job index.
    #[error("--shard auto/{count} takes the part from {JOB_INDEX_VAR}, which is not set (a Kubernetes Indexed Job sets it); elsewhere give --shard K/{count}")]
    NoJobIndex {
        /// N.
        count: u32,
    },
    /// `auto/N` with a job index that is not a number below N.
    #[error("{JOB_INDEX_VAR}={value:?} is not a number from 0 to {} (--shard auto/{count})", .count - 1)]
    BadJobIndex {
        /// The variable's value.
        value: String,
        /// N.
        count: u32,
    },
}

impl FromStr for ShardSpec {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<ShardSpec, ShardError> {
        let (k, n) = s.split_once('/').ok_or(ShardError::Syntax)?;
        let count: u32 = number(n).ok_or(ShardError::Syntax)?;
        if count == 0 {
            return Err(ShardError::Syntax);
        }
        if k == "auto" {
            return Ok(ShardSpec::Auto { count });
        }
        let index: u32 = number(k).ok_or(ShardError::Syntax)?;
        if index == 0 || index > count {
            return Err(ShardError::Syntax);
        }
        Ok(ShardSpec::Fixed(Shard { index, count }))
    }
}

/// Decimal digits only: `+2` or ` 2` in a shard would be a typo, not a number.
fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl ShardSpec {
    /// The part this job takes; `job_index` is `JOB_COMPLETION_INDEX`'s value, if set.
    pub fn resolve(self, job_index: Option<&str>) -> Result<Shard, ShardError> {
        match self {
            ShardSpec::Fixed(shard) => Ok(shard),
            ShardSpec::Auto { count } => {
                let value = job_index.ok_or(ShardError::NoJobIndex { count })?;
                let bad = || ShardError::BadJobIndex {
                    value: value.to_string(),
                    count,
                };
                let index = number(value.trim()).ok_or_else(bad)?;
                if index >= count {
                    return Err(bad());
                }
                Ok(Shard {
                    index: index + 1,
                    count,
                })
            }
        }
    }
}

/// The part (from 1) of N that the host named `name` is in.
pub fn part_of(name: &str, count: u32) -> u32 {
    (hash(name) % u64::from(count.max(1))) as u32 + 1
}

/// A stable 64-bit hash of `text`: FNV-1a, then splitmix64's finalizer. Also seeds
/// `--order shuffle` from `--seed` or the run id.
pub fn hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_refuse_what_is_not_k_of_n() {
        assert_eq!(
            "2/3".parse::<ShardSpec>(),
            Ok(ShardSpec::Fixed(Shard { index: 2, count: 3 }))
        );
        assert_eq!(
            "auto/4".parse::<ShardSpec>(),
            Ok(ShardSpec::Auto { count: 4 })
        );
        for bad in [
            "", "3", "0/3", "4/3", "1/0", "a/3", "1/b", "-1/3", "+1/3", " 1/3", "1/3/4", "auto/0",
        ] {
            assert_eq!(bad.parse::<ShardSpec>(), Err(ShardError::Syntax), "{bad:?}");
        }
        assert_eq!(
            ShardError::Syntax.to_string(),
            "must be K/N with 1 <= K <= N (e.g. 2/3), or auto/N to take K from JOB_COMPLETION_INDEX"
        );
    }

    #[test]
    fn auto_takes_the_part_from_the_job_index_counted_from_0() {
        let auto = ShardSpec::Auto { count: 3 };
        assert_eq!(auto.resolve(Some("0")), Ok(Shard { index: 1, count: 3 }));
        assert_eq!(auto.resolve(Some("2")), Ok(Shard { index: 3, count: 3 }));
        let err = auto.resolve(Some("3")).expect_err("out of range");
        assert_eq!(
            err.to_string(),
            "JOB_COMPLETION_INDEX=\"3\" is not a number from 0 to 2 (--shard auto/3)"
        );
        assert!(auto.resolve(Some("x")).is_err());
        assert_eq!(
            auto.resolve(None).expect_err("unset").to_string(),
            "--shard auto/3 takes the part from JOB_COMPLETION_INDEX, which is not set (a Kubernetes Indexed Job sets it); elsewhere give --shard K/3"
        );
        let fixed = ShardSpec::Fixed(Shard { index: 2, count: 3 });
        assert_eq!(fixed.resolve(Some("0")), Ok(Shard { index: 2, count: 3 }));
    }

    #[test]
    fn every_host_is_in_exactly_one_part() {
        let names: Vec<String> = (0..1000)
            .map(|i| format!("web{i:04}.example.com"))
            .collect();
        for count in [1, 2, 3, 7, 16] {
            let mut sizes = vec![0usize; count as usize];
            for name in &names {
                let parts: Vec<u32> = (1..=count)
                    .filter(|&index| Shard { index, count }.contains(name))
                    .collect();
                assert_eq!(parts.len(), 1, "{name} in {parts:?} of {count}");
                sizes[parts[0] as usize - 1] += 1;
            }
            // Roughly even: within 30% of the mean for these names.
            let mean = names.len() / count as usize;
            for size in sizes {
                assert!(
                    size.abs_diff(mean) * 10 <= mean * 3,
                    "{count}: {size} vs {mean}"
                );
            }
        }
    }

    /// Computed once, by this code and by an independent Python version of the same hash.
    const HASH_HOST01: u64 = 0x635c_d8de_c560_f575;
    const PARTS_OF_3: [u32; 6] = [1, 2, 3, 1, 2, 2];

    #[test]
    fn the_part_depends_on_the_name_only() {
        // Pinned: a change to the hash would move hosts between the parts of jobs that run
        // different capo versions, so it must be deliberate.
        assert_eq!(hash("host01"), HASH_HOST01);
        let parts: Vec<u32> = ["host01", "host02", "host03", "host04", "host05", "host06"]
            .iter()
            .map(|n| part_of(n, 3))
            .collect();
        assert_eq!(parts, PARTS_OF_3);
    }
}
