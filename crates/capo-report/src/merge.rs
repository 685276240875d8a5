//! `capo report merge`: the reports of the parts of one run (`--shard K/N` jobs) made into
//! the report that one run over every host would have written.
//!
//! The parts must belong together: one command, one pinned revision (if any), one inventory
//! and `--limit`, no host twice, and, for shards, every part of the same N exactly once.
//! Anything else is refused with the first mismatch found, naming both files: a merge that
//! quietly dropped a part would report a fleet as converged with hosts missing.

use std::path::{Path, PathBuf};

use capo_schema::{PartReport, Report, Summary, SCHEMA};
use chrono::{DateTime, Utc};

/// A report read from a file, named as the user gave it.
#[derive(Debug, Clone)]
pub struct Part {
    /// The file, as given.
    pub path: PathBuf,
    /// Its report.
    pub report: Report,
}

/// Why parts cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// No part was given.
    #[error("no report to merge")]
    NoParts,
    /// A file cannot be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not a report.
    #[error("{} is not a capo report: {source}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A file is a report of another schema (e.g. `capo status --format json`'s).
    #[error("{} is a {schema} document, not a run report ({SCHEMA}; write one with --report)", .path.display())]
    Schema {
        /// The file.
        path: PathBuf,
        /// Its schema.
        schema: String,
    },
    /// Two parts disagree on something one run has once.
    #[error("{} {what} {a_value} and {} {b_value}: they are not parts of one run", .a.display(), .b.display())]
    Mismatch {
        /// The first part that says it.
        a: PathBuf,
        /// The part that disagrees.
        b: PathBuf,
        /// What they disagree on, worded for the message (`is a`, `pinned --rev`, ...).
        what: &'static str,
        /// The first part's value.
        a_value: String,
        /// The other's.
        b_value: String,
    },
    /// A host is in two parts.
    #[error("host {host} is in both {} and {}: the parts overlap", .a.display(), .b.display())]
    HostTwice {
        /// The host.
        host: String,
        /// One part.
        a: PathBuf,
        /// The other.
        b: PathBuf,
    },
    /// Two parts are the same shard.
    #[error("{} and {} are both shard {shard}", .a.display(), .b.display())]
    ShardTwice {
        /// `K/N`.
        shard: String,
        /// One part.
        a: PathBuf,
        /// The other.
        b: PathBuf,
    },
    /// A part's `shard` is not a part of N (edited, or from another program).
    #[error("{} says it is shard {index}/{count}, which no --shard writes", .path.display())]
    BadShard {
        /// The part.
        path: PathBuf,
        /// K.
        index: u32,
        /// N.
        count: u32,
    },
    /// Shards are missing.
    #[error("shard {missing} missing: the run has {count} parts and each must be merged (a job whose hosts failed still writes its report; pass it too)")]
    ShardMissing {
        /// The missing parts, `2/3, 3/3`.
        missing: String,
        /// N.
        count: u32,
    },
}

/// Reads the report at `path`.
pub fn read(path: &Path) -> Result<Part, MergeError> {
    let text = std::fs::read_to_string(path).map_err(|source| MergeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // The schema first: a status document parses as JSON but not as a report, and saying
    // which document it is helps more than a missing field.
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&text) {
        if let Some(schema) = map.get("schema").and_then(|s| s.as_str()) {
            if schema != SCHEMA {
                return Err(MergeError::Schema {
                    path: path.to_path_buf(),
                    schema: schema.to_string(),
                });
            }
        }
    }
    let report = serde_json::from_str(&text).map_err(|source| MergeError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Part {
        path: path.to_path_buf(),
        report,
    })
}

/// The report of one run made of `parts`, or why they are not parts of one run.
pub fn merge(parts: &[Part]) -> Result<Report, MergeError> {
    let Some(first) = parts.first() else {
        return Err(MergeError::NoParts);
    };
    check_together(parts)?;
    let start = parts
        .iter()
        .filter_map(|p| time(&p.report.started_at))
        .min();
    let mut hosts = Vec::with_capacity(parts.iter().map(|p| p.report.hosts.len()).sum());
    for part in parts {
        // Each part's times count from its own start; the merged run's from the earliest,
        // so that a timeline shows the parts where they ran.
        let offset = match (start, time(&part.report.started_at)) {
            (Some(start), Some(own)) => {
                u64::try_from((own - start).num_milliseconds()).unwrap_or(0)
            }
            _ => 0,
        };
        hosts.extend(part.report.hosts.iter().cloned().map(|mut h| {
            if let Some(t) = h.timing.as_mut() {
                t.started_ms += offset;
            }
            for step in &mut h.steps {
                step.started_ms = step.started_ms.map(|ms| ms + offset);
            }
            h
        }));
    }
    // Inventory order, as the unsharded run would list them; the sort is stable, so parts
    // without positions (unsharded) keep the order given.
    if hosts.iter().all(|h| h.position.is_some()) {
        hosts.sort_by_key(|h| h.position);
    }
    let mut summary = Summary::of(&hosts);
    summary.revisions = crate::collect::revisions(&hosts);
    let started = parts
        .iter()
        .map(|p| p.report.started_at.as_str())
        .min_by(|a, b| time(a).cmp(&time(b)));
    let finished = parts
        .iter()
        .map(|p| p.report.finished_at.as_str())
        .max_by(|a, b| time(a).cmp(&time(b)));
    let (started_at, finished_at) = (
        started.unwrap_or_default().to_string(),
        finished.unwrap_or_default().to_string(),
    );
    let duration_ms = match (time(&started_at), time(&finished_at)) {
        (Some(s), Some(f)) => u64::try_from((f - s).num_milliseconds()).unwrap_or(0),
        _ => parts
            .iter()
            .map(|p| p.report.duration_ms)
            .max()
            .unwrap_or(0),
    };
    let halted: Vec<String> = parts
        .iter()
        .filter_map(|p| {
            let why = p.report.halted.as_ref()?;
            Some(match p.report.shard {
                Some(s) => format!("shard {}/{}: {why}", s.index, s.count),
                None => format!("{}: {why}", p.report.run_id),
            })
        })
        .collect();
    let seed = first.report.seed.clone().filter(|seed| {
        parts
            .iter()
            .all(|p| p.report.seed.as_deref() == Some(seed.as_str()))
    });
    let ids: Vec<&str> = parts.iter().map(|p| p.report.run_id.as_str()).collect();
    Ok(Report {
        schema: SCHEMA.to_string(),
        run_id: format!(
            "merge-{:08x}",
            capo_inventory::shard::hash(&ids.join(" ")) >> 32
        ),
        mode: first.report.mode,
        target_rev: first.report.target_rev.clone(),
        started_at,
        finished_at,
        duration_ms,
        inventory: first.report.inventory.clone(),
        limit: first.report.limit.clone(),
        interrupted: parts.iter().find_map(|p| p.report.interrupted),
        halted: (!halted.is_empty()).then(|| halted.join("; ")),
        run_dir: common_dir(parts.iter().map(|p| Path::new(&p.report.run_dir))),
        summary,
        hosts,
        shard: None,
        seed,
        parts: parts
            .iter()
            .map(|p| PartReport {
                run_id: p.report.run_id.clone(),
                shard: p.report.shard,
                started_at: p.report.started_at.clone(),
                finished_at: p.report.finished_at.clone(),
                run_dir: p.report.run_dir.clone(),
                hosts: p.report.hosts.len(),
            })
            .collect(),
    })
}

/// Refuses parts that one run could not have produced.
fn check_together(parts: &[Part]) -> Result<(), MergeError> {
    for part in parts {
        if let Some(s) = part.report.shard {
            if s.count == 0 || s.index == 0 || s.index > s.count {
                return Err(MergeError::BadShard {
                    path: part.path.clone(),
                    index: s.index,
                    count: s.count,
                });
            }
        }
    }
    let first = &parts[0];
    let mismatch = |b: &Part, what, a_value: String, b_value: String| MergeError::Mismatch {
        a: first.path.clone(),
        b: b.path.clone(),
        what,
        a_value,
        b_value,
    };
    let a = &first.report;
    let pinned = |r: &Report| match &r.target_rev {
        Some(rev) => format!("--rev {rev}"),
        None => "no --rev".to_string(),
    };
    let shard = |r: &Report| match r.shard {
        Some(s) => format!("{}/{}", s.index, s.count),
        None => "no shard (the whole selection)".to_string(),
    };
    let limit = |r: &Report| match &r.limit {
        Some(l) => format!("{l:?}"),
        None => "none".to_string(),
    };
    for part in &parts[1..] {
        let b = &part.report;
        if b.mode != a.mode {
            return Err(mismatch(
                part,
                "is a",
                a.mode.to_string(),
                b.mode.to_string(),
            ));
        }
        if b.target_rev != a.target_rev {
            return Err(mismatch(part, "pinned", pinned(a), pinned(b)));
        }
        if b.inventory != a.inventory {
            return Err(mismatch(
                part,
                "read inventory",
                a.inventory.clone(),
                b.inventory.clone(),
            ));
        }
        if b.limit != a.limit {
            return Err(mismatch(part, "has --limit", limit(a), limit(b)));
        }
        match (a.shard, b.shard) {
            (None, None) => {}
            (Some(x), Some(y)) if x.count == y.count => {
                if x.selected != y.selected {
                    return Err(mismatch(
                        part,
                        "sharded a selection of",
                        format!("{} hosts", x.selected),
                        format!("{} hosts", y.selected),
                    ));
                }
            }
            _ => return Err(mismatch(part, "is shard", shard(a), shard(b))),
        }
    }
    if let Some(s) = a.shard {
        let mut by_index: Vec<Option<&PathBuf>> = vec![None; s.count as usize];
        for part in parts {
            let Some(p) = part.report.shard else { continue };
            // 1 <= K <= N was checked above, and every part has the first part's N.
            let slot = &mut by_index[p.index as usize - 1];
            if let Some(other) = slot {
                return Err(MergeError::ShardTwice {
                    shard: format!("{}/{}", p.index, p.count),
                    a: (*other).clone(),
                    b: part.path.clone(),
                });
            }
            *slot = Some(&part.path);
        }
        let missing: Vec<String> = by_index
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_none())
            .map(|(i, _)| format!("{}/{}", i + 1, s.count))
            .collect();
        if !missing.is_empty() {
            return Err(MergeError::ShardMissing {
                missing: missing.join(", "),
                count: s.count,
            });
        }
    }
    let mut seen = std::collections::HashMap::new();
    for part in parts {
        for host in &part.report.hosts {
            if let Some(other) = seen.insert(host.name.as_str(), &part.path) {
                return Err(MergeError::HostTwice {
                    host: host.name.clone(),
                    a: other.clone(),
                    b: part.path.clone(),
                });
            }
        }
    }
    Ok(())
}

fn time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The deepest directory every part's run directory is in: the run directory itself for one
/// part, the runs dir when the parts ran on one machine; empty when they share none.
fn common_dir<'a>(mut dirs: impl Iterator<Item = &'a Path>) -> String {
    let Some(first) = dirs.next() else {
        return String::new();
    };
    let mut common: PathBuf = first.to_path_buf();
    for dir in dirs {
        while !dir.starts_with(&common) {
            if !common.pop() {
                return String::new();
            }
        }
    }
    common.display().to_string()
}

#[cfg(test)]
mod tests {
    use capo_schema::{HostReport, HostStatus, Mode, RevisionCount, ShardReport};

    use super::*;

    const REV: &str = "77b0e41a0c0000000000000000000000000000bb";

    fn host(name: &str, status: HostStatus, position: usize) -> HostReport {
        HostReport {
            rev_after: Some(REV.into()),
            position: Some(position),
            ..HostReport::new(name, status)
        }
    }

    fn part(path: &str, shard: Option<(u32, u32)>, hosts: Vec<HostReport>) -> Part {
        let n = path.len() as u64;
        Part {
            path: path.into(),
            report: Report {
                schema: SCHEMA.into(),
                run_id: format!("run-{path}"),
                mode: Mode::Rollout,
                target_rev: None,
                started_at: format!("2026-12-03T10:00:0{n}.000Z"),
                finished_at: format!("2026-12-03T10:01:0{n}.000Z"),
                duration_ms: 60_000,
                inventory: "inventory.toml".into(),
                limit: None,
                interrupted: None,
                halted: None,
                run_dir: format!(".capo/runs/run-{path}"),
                summary: Summary::of(&hosts),
                hosts,
                shard: shard.map(|(index, count)| ShardReport {
                    index,
                    count,
                    selected: 4,
                }),
                seed: None,
                parts: vec![],
            },
        }
    }

    fn two_shards() -> Vec<Part> {
        vec![
            part(
                "b.json",
                Some((2, 2)),
                vec![
                    host("web02", HostStatus::Failed, 1),
                    host("web03", HostStatus::Changed, 2),
                ],
            ),
            part(
                "a1.json",
                Some((1, 2)),
                vec![
                    host("web01", HostStatus::Changed, 0),
                    host("web04", HostStatus::Unchanged, 3),
                ],
            ),
        ]
    }

    #[test]
    fn shards_merge_into_one_run_in_inventory_order() {
        let merged = merge(&two_shards()).expect("merges");
        let names: Vec<&str> = merged.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["web01", "web02", "web03", "web04"]);
        assert_eq!(
            (
                merged.summary.total,
                merged.summary.changed,
                merged.summary.failed,
                merged.summary.unchanged
            ),
            (4, 2, 1, 1)
        );
        assert_eq!(
            merged.summary.revisions,
            [RevisionCount {
                rev: REV.into(),
                hosts: 4,
                ahead: false
            }]
        );
        assert_eq!(merged.started_at, "2026-12-03T10:00:06.000Z");
        assert_eq!(merged.finished_at, "2026-12-03T10:01:07.000Z");
        assert_eq!(merged.duration_ms, 61_000);
        assert_eq!(merged.run_dir, ".capo/runs");
        assert_eq!(merged.shard, None);
        let parts: Vec<(&str, Option<u32>, usize)> = merged
            .parts
            .iter()
            .map(|p| (p.run_id.as_str(), p.shard.map(|s| s.index), p.hosts))
            .collect();
        assert_eq!(
            parts,
            [("run-b.json", Some(2), 2), ("run-a1.json", Some(1), 2)]
        );
        assert!(merged.run_id.starts_with("merge-"), "{}", merged.run_id);
        // The same parts give the same id.
        assert_eq!(merge(&two_shards()).expect("merges").run_id, merged.run_id);
    }

    #[test]
    fn each_part_s_times_move_to_the_merged_run_s_start() {
        let mut parts = two_shards();
        for part in &mut parts {
            for h in &mut part.report.hosts {
                h.timing = Some(capo_schema::HostTiming {
                    started_ms: 100,
                    connect_ms: 5,
                    lock_ms: None,
                });
            }
        }
        parts[0].report.hosts[0].steps = vec![capo_schema::StepReport {
            name: capo_schema::StepName::Sync,
            command: String::new(),
            exit_code: Some(0),
            duration_ms: 10,
            stdout_tail: String::new(),
            stderr_tail: String::new(),
            truncated: false,
            log_error: None,
            started_ms: Some(120),
        }];
        // b.json started at :06, a1.json at :07: a1's hosts move 1 s later.
        let merged = merge(&parts).expect("merges");
        let starts: Vec<(&str, u64)> = merged
            .hosts
            .iter()
            .map(|h| (h.name.as_str(), h.timing.map_or(0, |t| t.started_ms)))
            .collect();
        assert_eq!(
            starts,
            [
                ("web01", 1100),
                ("web02", 100),
                ("web03", 100),
                ("web04", 1100)
            ]
        );
        assert_eq!(merged.hosts[1].steps[0].started_ms, Some(120));
    }

    #[test]
    fn a_halt_is_kept_with_the_shard_that_halted() {
        let mut parts = two_shards();
        parts[0].report.halted = Some("the canary failed (web02)".into());
        let merged = merge(&parts).expect("merges");
        assert_eq!(
            merged.halted.as_deref(),
            Some("shard 2/2: the canary failed (web02)")
        );
    }

    fn refused(parts: &[Part]) -> String {
        merge(parts).expect_err("refused").to_string()
    }

    #[test]
    fn parts_of_different_runs_are_refused() {
        let mut parts = two_shards();
        parts[1].report.mode = Mode::Plan;
        assert_eq!(
            refused(&parts),
            "b.json is a rollout and a1.json plan: they are not parts of one run"
        );
        let mut parts = two_shards();
        parts[1].report.target_rev = Some("v1.2".into());
        assert_eq!(
            refused(&parts),
            "b.json pinned no --rev and a1.json --rev v1.2: they are not parts of one run"
        );
        let mut parts = two_shards();
        parts[0].report.target_rev = Some("v1.2".into());
        parts[1].report.target_rev = Some("v1.3".into());
        assert_eq!(
            refused(&parts),
            "b.json pinned --rev v1.2 and a1.json --rev v1.3: they are not parts of one run"
        );
        let mut parts = two_shards();
        parts[1].report.limit = Some("web*".into());
        assert_eq!(
            refused(&parts),
            "b.json has --limit none and a1.json \"web*\": they are not parts of one run"
        );
        let mut parts = two_shards();
        parts[1].report.shard = Some(ShardReport {
            index: 1,
            count: 3,
            selected: 4,
        });
        assert_eq!(
            refused(&parts),
            "b.json is shard 2/2 and a1.json 1/3: they are not parts of one run"
        );
        let mut parts = two_shards();
        parts[1].report.shard = None;
        assert_eq!(
            refused(&parts),
            "b.json is shard 2/2 and a1.json no shard (the whole selection): they are not parts of one run"
        );
        let mut parts = two_shards();
        parts[1].report.shard = Some(ShardReport {
            index: 1,
            count: 2,
            selected: 5,
        });
        assert_eq!(
            refused(&parts),
            "b.json sharded a selection of 4 hosts and a1.json 5 hosts: they are not parts of one run"
        );
    }

    #[test]
    fn overlapping_or_missing_parts_are_refused() {
        let mut parts = two_shards();
        parts[1]
            .report
            .hosts
            .push(host("web03", HostStatus::Changed, 2));
        assert_eq!(
            refused(&parts),
            "host web03 is in both b.json and a1.json: the parts overlap"
        );
        let mut parts = two_shards();
        parts[1].report.shard = Some(ShardReport {
            index: 2,
            count: 2,
            selected: 4,
        });
        assert_eq!(refused(&parts), "b.json and a1.json are both shard 2/2");
        let parts = vec![two_shards().remove(0)];
        assert_eq!(
            refused(&parts),
            "shard 1/2 missing: the run has 2 parts and each must be merged (a job whose hosts failed still writes its report; pass it too)"
        );
        assert_eq!(refused(&[]), "no report to merge");
        let mut parts = two_shards();
        parts[1].report.shard = Some(ShardReport {
            index: 3,
            count: 2,
            selected: 4,
        });
        assert_eq!(
            refused(&parts),
            "a1.json says it is shard 3/2, which no --shard writes"
        );
        parts[1].report.shard = Some(ShardReport {
            index: 0,
            count: 0,
            selected: 4,
        });
        assert_eq!(
            refused(&parts),
            "a1.json says it is shard 0/0, which no --shard writes"
        );
    }

    #[test]
    fn unsharded_parts_keep_the_order_given() {
        let mut parts = two_shards();
        for p in &mut parts {
            p.report.shard = None;
            for h in &mut p.report.hosts {
                h.position = None;
            }
        }
        let merged = merge(&parts).expect("merges");
        let names: Vec<&str> = merged.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["web02", "web03", "web01", "web04"]);
    }

    #[test]
    fn files_that_are_not_run_reports_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = dir.path().join("status.json");
        std::fs::write(&status, r#"{"schema": "capo.status/v1", "hosts": []}"#).expect("write");
        assert_eq!(
            read(&status).expect_err("status doc").to_string(),
            format!(
                "{} is a capo.status/v1 document, not a run report (capo.report/v1; write one with --report)",
                status.display()
            )
        );
        let junk = dir.path().join("junk.json");
        std::fs::write(&junk, "{").expect("write");
        assert!(read(&junk)
            .expect_err("junk")
            .to_string()
            .starts_with(&format!("{} is not a capo report: ", junk.display())));
        let missing = dir.path().join("missing.json");
        assert!(read(&missing)
            .expect_err("missing")
            .to_string()
            .starts_with(&format!("cannot read {}: ", missing.display())));
        let good = dir.path().join("good.json");
        let report = two_shards().remove(0).report;
        std::fs::write(&good, crate::json::to_string(&report).expect("json")).expect("write");
        assert_eq!(read(&good).expect("reads").report, report);
    }
}
