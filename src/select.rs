//! Host selection: which hosts a command works on, and in what order. The inventory and
//! `--limit` decide for every command; `--rerun` narrows a run to hosts of an earlier run by
//! their status (the latest run of the same mode, inventory and shard in the run history, or
//! `--rerun-from`'s), and `--order shuffle` reorders. Nothing here connects to a host.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use capo_engine::schema::{Mode, ShardReport};
use capo_engine::HostStatus;
use capo_inventory::shard::JOB_INDEX_VAR;
use capo_inventory::{Host, Inventory};

use crate::cli::{Order, RunArgs, Selection};
use crate::error::Error;
use crate::history::{self, HistoryError, RerunOf, RunEntry, Wanted};

/// Why `--rerun` selects nothing. Every message names the option it is about.
#[derive(Debug, thiserror::Error)]
pub enum RerunError {
    /// The run history cannot be read, or a run's report.
    #[error("--rerun: {0}")]
    History(HistoryError),
    /// `--rerun-from` names no run, or more than one.
    #[error("--rerun-from: {0}")]
    From(HistoryError),
    /// No earlier run of this mode, inventory and shard.
    #[error("--rerun: {0}")]
    NoEarlier(Box<NoEarlier>),
    /// The run has no host with any of the statuses asked for.
    #[error("--rerun: {run} has no {} hosts", .statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or "))]
    NoneWith {
        /// Which run: `the last rollout of inventory.toml (ID)`, `run ID`.
        run: String,
        /// `--rerun`.
        statuses: Vec<HostStatus>,
    },
    /// The run has such hosts, but the inventory and `--limit` select none of them.
    #[error("--rerun: none of those hosts is selected by this inventory and --limit")]
    NoneSelected,
}

/// What `--rerun` looked for and did not find, and what the latest run there was instead.
#[derive(Debug, thiserror::Error)]
#[error("no earlier {mode} of {inventory}{} in {} ({})", shard_words(*.shard), .dir.display(), latest_words(.latest))]
pub struct NoEarlier {
    /// The mode of the run about to start.
    pub mode: Mode,
    /// `--inventory` as given.
    pub inventory: String,
    /// The shard of the run about to start.
    pub shard: Option<ShardReport>,
    /// `--runs-dir`.
    pub dir: std::path::PathBuf,
    /// The latest run there and how it differs (`was a plan`), if there is one.
    pub latest: Option<(String, String)>,
}

fn shard_words(shard: Option<ShardReport>) -> String {
    shard.map_or_else(String::new, |s| format!(" (shard {}/{})", s.index, s.count))
}

fn latest_words(latest: &Option<(String, String)>) -> String {
    match latest {
        None => "it holds no runs".to_string(),
        Some((id, differs)) => format!("the latest run there, {id}, {differs}"),
    }
}

/// What `--rerun` and `--rerun-from` ask of the run history for a run about to start.
#[derive(Debug, Clone)]
pub struct Rerun<'a> {
    /// `--rerun`: empty for none.
    pub statuses: &'a [HostStatus],
    /// `--rerun-from`: a run id, a unique prefix of one, or `latest`.
    pub from: Option<&'a str>,
    /// `--runs-dir`.
    pub runs_dir: &'a Path,
    /// The mode of the run about to start.
    pub mode: Mode,
    /// Its shard (`--shard K/N`), matched against earlier runs' shards.
    pub shard: Option<ShardReport>,
}

impl<'a> Rerun<'a> {
    /// `--rerun`, `--rerun-from` and `--runs-dir` of a run of `mode` in `shard`.
    pub fn of(args: &'a RunArgs, mode: Mode, shard: Option<ShardReport>) -> Rerun<'a> {
        Rerun {
            statuses: &args.rerun,
            from: args.rerun_from.as_deref(),
            runs_dir: &args.runs_dir,
            mode,
            shard,
        }
    }
}

/// The hosts a run works on, the run `--rerun` took them from, and what the report says
/// about how they were picked.
#[derive(Debug)]
pub struct Selected {
    /// In the order the run takes them.
    pub hosts: Vec<Host>,
    /// What the run history records about `--rerun`.
    pub rerun: Option<RerunOf>,
    /// `--shard`: the part taken.
    pub shard: Option<ShardReport>,
    /// `--order shuffle`: the seed.
    pub seed: Option<String>,
    /// `--shard`: each host's place in the whole selection, for `capo report merge`.
    positions: HashMap<String, usize>,
}

impl Selected {
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

/// The hosts of the inventory that `--limit` selects, in inventory order.
pub fn limited(selection: &Selection) -> Result<Vec<Host>, Error> {
    let inventory = Inventory::load(&selection.inventory)?;
    let hosts = inventory.select(selection.limit.as_deref())?;
    Ok(hosts.into_iter().cloned().collect())
}

/// The hosts a run of `mode` works on: the `--limit` selection, narrowed by `--rerun` when
/// given (from the latest run of the same mode, inventory and shard, or `--rerun-from`'s),
/// then to the `--shard` part, in `--order` (shuffled with `--seed`, else `run_id`).
pub fn for_run(
    selection: &Selection,
    args: &RunArgs,
    mode: Mode,
    run_id: &str,
) -> Result<Selected, Error> {
    // Resolved first: a bad `--shard auto/N` is refused before the inventory is read, and
    // `--rerun` matches earlier runs by their shard.
    let shard = args
        .shard
        .map(|spec| spec.resolve(std::env::var(JOB_INDEX_VAR).ok().as_deref()))
        .transpose()?;
    let mut hosts = limited(selection)?;
    let mut rerun_of = None;
    let rerun = Rerun::of(
        args,
        mode,
        shard.map(|s| ShardReport {
            index: s.index,
            count: s.count,
            selected: hosts.len(),
        }),
    );
    if !rerun.statuses.is_empty() {
        let (run, names) = rerun_hosts(&selection.inventory, &rerun)?;
        hosts.retain(|h| names.contains(&h.name));
        if hosts.is_empty() {
            return Err(RerunError::NoneSelected.into());
        }
        rerun_of = Some(RerunOf {
            statuses: rerun.statuses.to_vec(),
            run,
        });
    }
    let mut positions = HashMap::new();
    let shard = shard.map(|shard| {
        let selected = hosts.len();
        let mut kept = Vec::new();
        for (i, host) in std::mem::take(&mut hosts).into_iter().enumerate() {
            if shard.contains(&host.name) {
                positions.insert(host.name.clone(), i);
                kept.push(host);
            }
        }
        hosts = kept;
        ShardReport {
            index: shard.index,
            count: shard.count,
            selected,
        }
    });
    let seed = (args.order == Order::Shuffle).then(|| {
        let seed = args.seed.clone().unwrap_or_else(|| run_id.to_string());
        shuffle(&mut hosts, capo_inventory::shard::hash(&seed) | 1);
        seed
    });
    Ok(Selected {
        hosts,
        rerun: rerun_of,
        shard,
        seed,
        positions,
    })
}

/// The run `--rerun` takes its hosts from (`--rerun-from`'s, else the latest of the same
/// mode, inventory and shard), and the names of its hosts whose status is one of
/// `--rerun`'s; never empty.
pub fn rerun_hosts(
    inventory: &Path,
    rerun: &Rerun,
) -> Result<(String, HashSet<String>), RerunError> {
    let runs = history::runs(rerun.runs_dir).map_err(RerunError::History)?;
    let (entry, which): (&RunEntry, String) = match rerun.from {
        Some(id) => {
            let entry = history::find(&runs, id, rerun.runs_dir).map_err(RerunError::From)?;
            (entry, format!("run {} (--rerun-from)", entry.id))
        }
        None => {
            let key = history::inventory_key(inventory);
            let wanted = Wanted {
                mode: rerun.mode,
                inventory_path: key.as_deref(),
                shard: rerun.shard,
            };
            let Some(entry) = runs.iter().find(|e| wanted.matches(e)) else {
                return Err(RerunError::NoEarlier(Box::new(NoEarlier {
                    mode: rerun.mode,
                    inventory: inventory.display().to_string(),
                    shard: rerun.shard,
                    dir: rerun.runs_dir.to_path_buf(),
                    latest: runs.first().map(|e| (e.id.clone(), wanted.differs(e))),
                })));
            };
            let which = format!(
                "the last {} of {}{} ({})",
                rerun.mode,
                inventory.display(),
                shard_words(rerun.shard),
                entry.id
            );
            (entry, which)
        }
    };
    let report = history::read_report(&history::report_path(rerun.runs_dir, entry))
        .map_err(RerunError::History)?;
    let names: HashSet<String> = report
        .hosts
        .iter()
        .filter(|h| rerun.statuses.contains(&h.status))
        .map(|h| h.name.clone())
        .collect();
    if names.is_empty() {
        return Err(RerunError::NoneWith {
            run: which,
            statuses: rerun.statuses.to_vec(),
        });
    }
    Ok((entry.id.clone(), names))
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
    use std::path::PathBuf;

    use super::*;
    use crate::history::tests::write_report;

    fn names(set: HashSet<String>) -> Vec<String> {
        let mut v: Vec<String> = set.into_iter().collect();
        v.sort();
        v
    }

    /// A runs dir and an inventory file in a temporary directory.
    struct Setup {
        dir: tempfile::TempDir,
        runs: PathBuf,
        inventory: PathBuf,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let runs = dir.path().join("runs");
        std::fs::create_dir(&runs).expect("runs dir");
        let inventory = dir.path().join("i.toml");
        std::fs::write(&inventory, "").expect("inventory");
        Setup {
            dir,
            runs,
            inventory,
        }
    }

    impl Setup {
        /// A finished run of `mode` on `inventory` (a path under the temporary directory),
        /// recorded in the index.
        fn run(&self, id: &str, mode: &str, inventory: &str, hosts: &[(&str, &str)]) {
            let inventory = self.dir.path().join(inventory);
            write_report(
                &self.runs,
                id,
                mode,
                &inventory.display().to_string(),
                hosts,
            );
            let report = history::read_report(&self.runs.join(id).join(history::RUN_REPORT))
                .expect("report");
            let entry = RunEntry::of(&report, history::inventory_key(&inventory), None, Some(1));
            history::append(&self.runs, &entry).expect("append");
        }

        fn rerun<'a>(&'a self, statuses: &'a [HostStatus], mode: Mode) -> Rerun<'a> {
            Rerun {
                statuses,
                from: None,
                runs_dir: &self.runs,
                mode,
                shard: None,
            }
        }
    }

    const FAILED: &[HostStatus] = &[HostStatus::Failed];

    #[test]
    fn rerun_takes_the_latest_run_of_the_same_mode_and_inventory() {
        let s = setup();
        s.run(
            "20261201T100000Z-0001",
            "rollout",
            "i.toml",
            &[("web01", "failed"), ("web02", "changed")],
        );
        s.run(
            "20261201T100100Z-0002",
            "plan",
            "i.toml",
            &[("web02", "failed"), ("web03", "unreachable")],
        );
        s.run(
            "20261201T100200Z-0003",
            "rollout",
            "other.toml",
            &[("web04", "failed")],
        );
        let (run, got) =
            rerun_hosts(&s.inventory, &s.rerun(FAILED, Mode::Rollout)).expect("rollout");
        assert_eq!(
            (run.as_str(), names(got)),
            ("20261201T100000Z-0001", vec!["web01".to_string()])
        );
        let statuses = [HostStatus::Failed, HostStatus::Unreachable];
        let (run, got) = rerun_hosts(&s.inventory, &s.rerun(&statuses, Mode::Plan)).expect("plan");
        assert_eq!(run, "20261201T100100Z-0002");
        assert_eq!(names(got), ["web02", "web03"]);
        // the same file by another path is the same inventory
        let dotted = s.dir.path().join(".").join("i.toml");
        let (run, _) = rerun_hosts(&dotted, &s.rerun(FAILED, Mode::Rollout)).expect("same file");
        assert_eq!(run, "20261201T100000Z-0001");
    }

    #[test]
    fn the_index_time_decides_not_the_file_time() {
        let s = setup();
        s.run(
            "20261201T100100Z-0002",
            "rollout",
            "i.toml",
            &[("web02", "failed")],
        );
        s.run(
            "20261201T100000Z-0001",
            "rollout",
            "i.toml",
            &[("web01", "failed")],
        );
        // the older run's report written last
        let (run, _) = rerun_hosts(&s.inventory, &s.rerun(FAILED, Mode::Rollout)).expect("rerun");
        assert_eq!(run, "20261201T100100Z-0002");
    }

    #[test]
    fn rerun_says_what_it_looked_for_and_what_the_latest_run_was() {
        let s = setup();
        let err = rerun_hosts(&s.inventory, &s.rerun(FAILED, Mode::Rollout)).expect_err("none");
        let inv = s.inventory.display();
        let dir = s.runs.display();
        assert_eq!(
            err.to_string(),
            format!("--rerun: no earlier rollout of {inv} in {dir} (it holds no runs)")
        );
        s.run(
            "20261201T100000Z-0001",
            "plan",
            "i.toml",
            &[("web01", "failed")],
        );
        let err = rerun_hosts(&s.inventory, &s.rerun(FAILED, Mode::Rollout)).expect_err("a plan");
        assert_eq!(
            err.to_string(),
            format!(
                "--rerun: no earlier rollout of {inv} in {dir} (the latest run there, \
                 20261201T100000Z-0001, was a plan)"
            )
        );
        let shard = Some(ShardReport {
            index: 1,
            count: 2,
            selected: 4,
        });
        let err = rerun_hosts(
            &s.inventory,
            &Rerun {
                shard,
                ..s.rerun(FAILED, Mode::Plan)
            },
        )
        .expect_err("not sharded");
        assert_eq!(
            err.to_string(),
            format!(
                "--rerun: no earlier plan of {inv} (shard 1/2) in {dir} (the latest run there, \
                 20261201T100000Z-0001, was not sharded)"
            )
        );
        let none = [HostStatus::Failed, HostStatus::Skipped];
        s.run(
            "20261201T100100Z-0002",
            "rollout",
            "i.toml",
            &[("web01", "changed")],
        );
        let err = rerun_hosts(&s.inventory, &s.rerun(&none, Mode::Rollout)).expect_err("no failed");
        assert_eq!(
            err.to_string(),
            format!(
                "--rerun: the last rollout of {inv} (20261201T100100Z-0002) has no failed or \
                 skipped hosts"
            )
        );
    }

    #[test]
    fn rerun_from_takes_that_run_whatever_its_mode() {
        let s = setup();
        s.run(
            "20261201T100000Z-0001",
            "plan",
            "i.toml",
            &[("web01", "failed")],
        );
        s.run(
            "20261201T100000Z-0002",
            "plan",
            "i.toml",
            &[("web02", "failed")],
        );
        s.run(
            "20261201T100100Z-0003",
            "rollout",
            "i.toml",
            &[("web03", "failed")],
        );
        let from = |id| Rerun {
            from: Some(id),
            ..s.rerun(FAILED, Mode::Rollout)
        };
        let (run, got) = rerun_hosts(&s.inventory, &from("20261201T100000Z-0001")).expect("id");
        assert_eq!(
            (run.as_str(), names(got)),
            ("20261201T100000Z-0001", vec!["web01".to_string()])
        );
        let (run, _) = rerun_hosts(&s.inventory, &from("20261201T100000Z-0002")).expect("id");
        assert_eq!(run, "20261201T100000Z-0002");
        let (run, _) = rerun_hosts(&s.inventory, &from("latest")).expect("latest");
        assert_eq!(run, "20261201T100100Z-0003");
        let err = rerun_hosts(&s.inventory, &from("20261201T1000")).expect_err("ambiguous");
        assert_eq!(
            err.to_string(),
            format!(
                "--rerun-from: `20261201T1000` matches 2 runs in {}: 20261201T100000Z-0002, \
                 20261201T100000Z-0001; give more of the id",
                s.runs.display()
            )
        );
        let err = rerun_hosts(&s.inventory, &from("2025")).expect_err("none");
        assert_eq!(
            err.to_string(),
            format!("--rerun-from: no run 2025 in {}", s.runs.display())
        );
        let changed = [HostStatus::Changed];
        let err = rerun_hosts(
            &s.inventory,
            &Rerun {
                from: Some("20261201T100100Z"),
                ..s.rerun(&changed, Mode::Rollout)
            },
        )
        .expect_err("nothing changed");
        assert_eq!(
            err.to_string(),
            "--rerun: run 20261201T100100Z-0003 (--rerun-from) has no changed hosts"
        );
    }

    #[test]
    fn runs_from_before_the_index_are_still_rerun() {
        let s = setup();
        let inventory = s.inventory.display().to_string();
        write_report(
            &s.runs,
            "20261201T100000Z-0001",
            "rollout",
            &inventory,
            &[("web01", "failed")],
        );
        let (run, got) =
            rerun_hosts(&s.inventory, &s.rerun(FAILED, Mode::Rollout)).expect("legacy");
        assert_eq!(
            (run.as_str(), names(got)),
            ("20261201T100000Z-0001", vec!["web01".to_string()])
        );
    }

    #[test]
    fn a_report_that_does_not_parse_is_named() {
        let s = setup();
        s.run(
            "20261201T100000Z-0001",
            "rollout",
            "i.toml",
            &[("web01", "failed")],
        );
        let path = s
            .runs
            .join("20261201T100000Z-0001")
            .join(history::RUN_REPORT);
        std::fs::write(&path, "{").expect("write");
        let err = rerun_hosts(&s.inventory, &s.rerun(FAILED, Mode::Rollout)).expect_err("bad json");
        assert!(
            err.to_string()
                .starts_with(&format!("--rerun: {}: ", path.display())),
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
