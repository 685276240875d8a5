//! Host selection: which hosts a command works on, and in what order. The inventory and
//! `--limit` decide for every command; `--rerun` narrows a run to hosts of the last run by
//! their status, and `--order shuffle` reorders. Nothing here connects to a host.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use capo_engine::schema::ShardReport;
use capo_engine::HostStatus;
use capo_inventory::shard::JOB_INDEX_VAR;
use capo_inventory::{Host, Inventory};

use crate::cli::{Order, RunArgs, Selection};
use crate::error::Error;

/// The report every run keeps in its run directory; `--rerun` reads the newest one.
pub const RUN_REPORT: &str = "report.json";

/// Why `--rerun` selects nothing.
#[derive(Debug, thiserror::Error)]
pub enum RerunError {
    /// The runs directory cannot be listed.
    #[error("no previous run in {} ({source})", .dir.display())]
    NoRunsDir {
        /// `--runs-dir`.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No run under the runs directory kept a report.
    #[error("no previous run with a report in {}", .dir.display())]
    NoReport {
        /// `--runs-dir`.
        dir: PathBuf,
    },
    /// The newest report cannot be read.
    #[error("{}: {source}", .path.display())]
    Read {
        /// The report file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The newest report is not a report.
    #[error("{}: {source}", .path.display())]
    Parse {
        /// The report file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The last run has no host with any of the statuses asked for.
    #[error("the last run ({run_id}) has no {} hosts", .statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or "))]
    NoneWith {
        /// The last run's id.
        run_id: String,
        /// `--rerun`.
        statuses: Vec<HostStatus>,
    },
    /// The last run has such hosts, but the inventory and `--limit` select none of them.
    #[error("none of those hosts is selected by this inventory and --limit")]
    NoneSelected,
}

/// The hosts of the inventory that `--limit` selects, in inventory order.
pub fn limited(selection: &Selection) -> Result<Vec<Host>, Error> {
    let inventory = Inventory::load(&selection.inventory)?;
    let hosts = inventory.select(selection.limit.as_deref())?;
    Ok(hosts.into_iter().cloned().collect())
}

/// The hosts a run works on, and what its report says about how they were picked.
#[derive(Debug)]
pub struct Picked {
    /// The hosts, in the order the run takes them.
    pub hosts: Vec<Host>,
    /// `--shard`: the part taken.
    pub shard: Option<ShardReport>,
    /// `--order shuffle`: the seed.
    pub seed: Option<String>,
    /// `--shard`: each host's place in the whole selection, for `capo report merge`.
    positions: HashMap<String, usize>,
}

impl Picked {
    /// Writes into `report` what it says about the pick.
    pub fn stamp(&self, report: &mut capo_report::Report) {
        report.shard = self.shard;
        report.seed = self.seed.clone();
        if !self.positions.is_empty() {
            for host in &mut report.hosts {
                host.position = self.positions.get(&host.name).copied();
            }
        }
    }
}

/// The hosts a run works on: the `--limit` selection, narrowed by `--rerun` when given, then
/// to the `--shard` part, in `--order` (shuffled with `--seed`, else `run_id`).
pub fn for_run(selection: &Selection, args: &RunArgs, run_id: &str) -> Result<Picked, Error> {
    let mut hosts = limited(selection)?;
    if !args.rerun.is_empty() {
        let names = last_run_hosts(&args.runs_dir, &args.rerun)?;
        hosts.retain(|h| names.contains(&h.name));
        if hosts.is_empty() {
            return Err(RerunError::NoneSelected.into());
        }
    }
    let mut positions = HashMap::new();
    let shard = match args.shard {
        None => None,
        Some(spec) => {
            let job_index = std::env::var(JOB_INDEX_VAR).ok();
            let shard = spec.resolve(job_index.as_deref())?;
            let selected = hosts.len();
            let mut kept = Vec::new();
            for (i, host) in hosts.into_iter().enumerate() {
                if shard.contains(&host.name) {
                    positions.insert(host.name.clone(), i);
                    kept.push(host);
                }
            }
            hosts = kept;
            Some(ShardReport {
                index: shard.index,
                count: shard.count,
                selected,
            })
        }
    };
    let seed = (args.order == Order::Shuffle).then(|| {
        let seed = args.seed.clone().unwrap_or_else(|| run_id.to_string());
        shuffle(&mut hosts, capo_inventory::shard::hash(&seed) | 1);
        seed
    });
    Ok(Picked {
        hosts,
        shard,
        seed,
        positions,
    })
}

/// The names of the hosts of the newest run under `runs_dir` whose status is one of
/// `statuses`; never empty.
pub fn last_run_hosts(
    runs_dir: &Path,
    statuses: &[HostStatus],
) -> Result<HashSet<String>, RerunError> {
    let path = newest_report(runs_dir)?;
    let text = std::fs::read_to_string(&path).map_err(|source| RerunError::Read {
        path: path.clone(),
        source,
    })?;
    let report: capo_report::Report =
        serde_json::from_str(&text).map_err(|source| RerunError::Parse { path, source })?;
    let names: HashSet<String> = report
        .hosts
        .iter()
        .filter(|h| statuses.contains(&h.status))
        .map(|h| h.name.clone())
        .collect();
    if names.is_empty() {
        return Err(RerunError::NoneWith {
            run_id: report.run_id,
            statuses: statuses.to_vec(),
        });
    }
    Ok(names)
}

/// The newest run report under `runs_dir`, by modification time: run ids started in the
/// same second do not sort by time.
fn newest_report(runs_dir: &Path) -> Result<PathBuf, RerunError> {
    std::fs::read_dir(runs_dir)
        .map_err(|source| RerunError::NoRunsDir {
            dir: runs_dir.to_path_buf(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join(RUN_REPORT))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .ok_or_else(|| RerunError::NoReport {
            dir: runs_dir.to_path_buf(),
        })
}

/// Shuffles `items` in place (Fisher-Yates over xorshift64, seeded with `seed`, which must
/// not be 0).
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut x = seed;
    for i in (1..items.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = (x % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn host(name: &str, status: &str) -> serde_json::Value {
        serde_json::json!({
            "name": name, "address": name, "port": 22, "status": status, "error": null,
            "rev_before": null, "rev_after": null, "duration_ms": 0, "log_dir": "", "steps": [],
        })
    }

    /// Writes `<dir>/<run_id>/report.json` with `hosts`, modified at `age` before now.
    fn write_run(dir: &Path, run_id: &str, hosts: &[serde_json::Value], age: Duration) {
        let run_dir = dir.join(run_id);
        std::fs::create_dir_all(&run_dir).expect("run dir");
        let report = serde_json::json!({
            "schema": "capo.report/v1", "run_id": run_id, "mode": "rollout",
            "started_at": "", "finished_at": "", "duration_ms": 0, "inventory": "i.toml",
            "limit": null, "run_dir": run_dir,
            "summary": {"total": hosts.len(), "unchanged": 0, "changed": 0, "failed": 0, "unreachable": 0},
            "hosts": hosts,
        });
        let path = run_dir.join(RUN_REPORT);
        std::fs::write(&path, report.to_string()).expect("write report");
        let file = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_modified(SystemTime::now() - age).expect("mtime");
    }

    fn names(set: HashSet<String>) -> Vec<String> {
        let mut v: Vec<String> = set.into_iter().collect();
        v.sort();
        v
    }

    #[test]
    fn rerun_takes_the_hosts_of_the_newest_report_with_the_statuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The newer run has the smaller id: modification time decides, not the name.
        write_run(
            dir.path(),
            "b-old",
            &[host("web01", "failed")],
            Duration::from_secs(60),
        );
        write_run(
            dir.path(),
            "a-new",
            &[
                host("web01", "changed"),
                host("web02", "failed"),
                host("web03", "unreachable"),
                host("web04", "skipped"),
            ],
            Duration::ZERO,
        );
        let got = last_run_hosts(dir.path(), &[HostStatus::Failed, HostStatus::Unreachable])
            .expect("selection");
        assert_eq!(names(got), ["web02", "web03"]);
    }

    #[test]
    fn rerun_says_which_statuses_the_last_run_lacks() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_run(
            dir.path(),
            "r1",
            &[host("web01", "changed")],
            Duration::ZERO,
        );
        let err = last_run_hosts(dir.path(), &[HostStatus::Failed, HostStatus::Skipped])
            .expect_err("nothing failed");
        assert_eq!(
            err.to_string(),
            "the last run (r1) has no failed or skipped hosts"
        );
    }

    #[test]
    fn rerun_without_a_previous_run_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("no-report")).expect("dir");
        let err = last_run_hosts(dir.path(), &[HostStatus::Failed]).expect_err("no report");
        assert_eq!(
            err.to_string(),
            format!("no previous run with a report in {}", dir.path().display())
        );
        let missing = dir.path().join("missing");
        let err = last_run_hosts(&missing, &[HostStatus::Failed]).expect_err("no dir");
        assert!(
            err.to_string()
                .starts_with(&format!("no previous run in {} (", missing.display())),
            "{err}"
        );
    }

    #[test]
    fn a_report_that_does_not_parse_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("r1")).expect("dir");
        let path = dir.path().join("r1").join(RUN_REPORT);
        std::fs::write(&path, "{").expect("write");
        let err = last_run_hosts(dir.path(), &[HostStatus::Failed]).expect_err("bad json");
        assert!(
            err.to_string()
                .starts_with(&format!("{}: ", path.display())),
            "{err}"
        );
    }

    #[test]
    fn shuffle_keeps_every_host() {
        for seed in [1, 3, 0x9e37_79b9_7f4a_7c15, u64::MAX] {
            for len in [0, 1, 2, 7, 100] {
                let mut items: Vec<usize> = (0..len).collect();
                shuffle(&mut items, seed);
                let mut sorted = items.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..len).collect::<Vec<_>>(), "seed {seed}");
            }
        }
    }

    #[test]
    fn shuffle_changes_the_order() {
        let mut items: Vec<usize> = (0..100).collect();
        shuffle(&mut items, 0x9e37_79b9_7f4a_7c15);
        assert_ne!(items, (0..100).collect::<Vec<_>>());
    }
}
