//! The run history on a real fleet: `--rerun` takes the latest run of the same mode and
//! inventory (a plan between two rollouts does not change which hosts a rollout reruns),
//! `--rerun-from ID` any run; `capo runs list`, `show` (the stored report, and the JUnit file
//! the run wrote) and `prune`; runs from before the index; usage errors that contact no host.
//! Needs root (the fleet uses unshare and bind mounts); see tests/fleet/README.md.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::common::run::{self, inventory_with_puppet, path_arg, Run};
use crate::common::Fleet;

/// A `puppet` for the host that refuses real applies (exit 1) and plans as Puppet does.
const FAILS_APPLY: &str = "#!/bin/sh\nfor a; do [ \"$a\" = --noop ] && exec puppet \"$@\"; done\n\
                           echo 'refusing to apply' >&2\nexit 1\n";
/// A `puppet` for the host that refuses plans (noop runs, exit 1) and applies as Puppet does.
const FAILS_PLAN: &str =
    "#!/bin/sh\nfor a; do [ \"$a\" = --noop ] && { echo 'refusing to plan' >&2; \
                          exit 1; }; done\nexec puppet \"$@\"\n";

/// Writes an executable script into the fleet directory (the hosts see the machine's files).
fn script(fleet: &Fleet, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = fleet.dir.join(name);
    std::fs::write(&path, text).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// The fleet's inventory with host02's rollouts and host03's plans failing.
fn split_inventory(fleet: &Fleet) -> PathBuf {
    let apply = script(fleet, "fails-apply.sh", FAILS_APPLY);
    let plan = script(fleet, "fails-plan.sh", FAILS_PLAN);
    inventory_with_puppet(
        fleet,
        &[("host02", path_arg(&apply)), ("host03", path_arg(&plan))],
    )
}

/// `capo ARGS...` in the fleet directory, without a report of its own.
fn capo_plain(fleet: &Fleet, args: &[&str]) -> Output {
    fleet.capo().args(args).output().expect("capo runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn names(run: &Run) -> Vec<String> {
    run.statuses().into_iter().map(|(n, _)| n).collect()
}

fn id(run: &Run) -> String {
    run.report["run_id"].as_str().expect("run_id").to_string()
}

/// SSH connections each host's sshd has seen so far.
fn connections(fleet: &Fleet) -> Vec<usize> {
    fleet
        .host_names()
        .iter()
        .map(|n| fleet.sshd_connections(n))
        .collect()
}

/// The ids of `capo runs list --format json`, in the order listed.
fn listed(fleet: &Fleet) -> Vec<String> {
    let out = capo_plain(fleet, &["runs", "list", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let list: Value = serde_json::from_slice(&out.stdout).expect("runs list is JSON");
    list.as_array()
        .expect("an array")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect()
}

fn runs_dir(fleet: &Fleet) -> PathBuf {
    fleet.dir.join(".capo/runs")
}

#[test]
fn rerun_takes_the_latest_run_of_the_same_mode_with_a_plan_in_between() {
    let fleet = Fleet::up(3);
    let inv = split_inventory(&fleet);
    let i = path_arg(&inv);

    let rollout = run::rollout(&fleet, &["-i", i]);
    assert_eq!(rollout.code, 1, "{}", rollout.dump());
    assert_eq!(
        run::statuses_of(&rollout.report),
        run::pairs(&[
            ("host01", "changed"),
            ("host02", "failed"),
            ("host03", "changed")
        ])
    );
    let plan = run::capo(&fleet, "plan", &["-i", i]);
    assert_eq!(plan.code, 1, "{}", plan.dump());
    assert_eq!(
        run::statuses_of(&plan.report),
        run::pairs(&[
            ("host01", "unchanged"),
            ("host02", "would_change"),
            ("host03", "failed")
        ])
    );
    assert_eq!(plan.error("host03").0, "puppet", "{}", plan.dump());

    // The newest run is the plan; a rollout reruns the rollout's failed host, and contacts
    // no other.
    let before = connections(&fleet);
    let head_host03 = fleet.checkout_head("host03");
    let again = run::rollout(&fleet, &["-i", i, "--rerun", "failed"]);
    assert_eq!(again.code, 1, "{}", again.dump());
    assert_eq!(names(&again), ["host02"], "{}", again.dump());
    assert_eq!(again.error("host02").0, "puppet");
    let after = connections(&fleet);
    assert_eq!(
        (after[0], after[2]),
        (before[0], before[2]),
        "only host02 is contacted"
    );
    assert!(after[1] > before[1], "host02 is contacted");
    assert_eq!(fleet.checkout_head("host03"), head_host03);

    // And a plan the plan's, though a rollout is newer.
    let replan = run::capo(&fleet, "plan", &["-i", i, "--rerun", "failed"]);
    assert_eq!(replan.code, 1, "{}", replan.dump());
    assert_eq!(names(&replan), ["host03"], "{}", replan.dump());

    // --rerun-from takes the first plan's failed host for a rollout, whatever its mode; a
    // unique prefix of the id is enough.
    let plan_id = id(&plan);
    let prefix = &plan_id[..plan_id.len() - 2];
    let unique = [&rollout, &again, &replan]
        .iter()
        .all(|r| !id(r).starts_with(prefix));
    let from = if unique { prefix } else { plan_id.as_str() };
    let from_plan = run::rollout(
        &fleet,
        &["-i", i, "--rerun", "failed", "--rerun-from", from],
    );
    assert_eq!(from_plan.code, 0, "{}", from_plan.dump());
    assert_eq!(
        run::statuses_of(&from_plan.report),
        run::pairs(&[("host03", "unchanged")])
    );

    // The index says which run each rerun took its hosts from.
    let index = std::fs::read_to_string(runs_dir(&fleet).join("index.jsonl")).expect("index");
    let entries: Vec<Value> = index
        .lines()
        .map(|l| serde_json::from_str(l).expect("an entry per line"))
        .collect();
    let rerun_of: Vec<(String, Value)> = entries
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap_or("?").to_string(),
                e["rerun"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rerun_of,
        [
            (id(&rollout), Value::Null),
            (id(&plan), Value::Null),
            (
                id(&again),
                serde_json::json!({"statuses": ["failed"], "run": id(&rollout)})
            ),
            (
                id(&replan),
                serde_json::json!({"statuses": ["failed"], "run": id(&plan)})
            ),
            (
                id(&from_plan),
                serde_json::json!({"statuses": ["failed"], "run": id(&plan)})
            ),
        ]
    );
    let exits: Vec<u64> = entries
        .iter()
        .map(|e| e["exit"].as_u64().unwrap_or(99))
        .collect();
    assert_eq!(exits, [1, 1, 1, 1, 0]);
    let canonical = std::fs::canonicalize(&inv).expect("canonical");
    assert!(entries
        .iter()
        .all(|e| e["inventory"] == i && e["inventory_path"] == path_arg(&canonical)));
}

#[test]
fn rerun_without_an_earlier_run_of_that_mode_contacts_no_host() {
    let fleet = Fleet::up(3);
    let inv = split_inventory(&fleet);
    let i = path_arg(&inv);
    let dir = ".capo/runs";

    let out = capo_plain(&fleet, &["rollout", "-i", i, "--rerun", "failed"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!("capo: --rerun: no earlier rollout of {i} in {dir} (it holds no runs)\n")
    );

    let plan = run::capo(&fleet, "plan", &["-i", i, "-l", "host01,host02"]);
    assert_eq!(plan.code, 0, "{}", plan.dump());
    let before = connections(&fleet);
    let heads: Vec<String> = fleet
        .host_names()
        .iter()
        .map(|n| fleet.checkout_head(n))
        .collect();

    let out = capo_plain(&fleet, &["rollout", "-i", i, "--rerun", "failed"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "capo: --rerun: no earlier rollout of {i} in {dir} (the latest run there, {}, was a \
             plan)\n",
            id(&plan)
        )
    );
    // The same mode on another inventory is not it either.
    let other = fleet.inventory.display().to_string();
    let out = capo_plain(&fleet, &["plan", "--rerun", "failed"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "capo: --rerun: no earlier plan of {other} in {dir} (the latest run there, {}, was a \
             plan of {i})\n",
            id(&plan)
        )
    );
    let out = capo_plain(&fleet, &["plan", "-i", i, "--rerun", "failed"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "capo: --rerun: the last plan of {i} ({}) has no failed hosts\n",
            id(&plan)
        )
    );
    let out = capo_plain(
        &fleet,
        &[
            "rollout",
            "-i",
            i,
            "--rerun",
            "failed",
            "--rerun-from",
            "1999",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!("capo: --rerun-from: no run 1999 in {dir}\n")
    );
    let out = capo_plain(&fleet, &["rollout", "-i", i, "--rerun-from", "latest"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap: --rerun-from needs --rerun"
    );
    assert!(
        text(&out.stderr).contains("--rerun <STATUSES>"),
        "{}",
        text(&out.stderr)
    );

    assert_eq!(connections(&fleet), before, "no host contacted");
    let after: Vec<String> = fleet
        .host_names()
        .iter()
        .map(|n| fleet.checkout_head(n))
        .collect();
    assert_eq!(after, heads);
    assert_eq!(listed(&fleet), [id(&plan)], "refused runs are not runs");
}

#[test]
fn runs_list_show_and_prune() {
    let fleet = Fleet::up(3);
    let inv = split_inventory(&fleet);
    let i = path_arg(&inv);
    let junit = fleet.dir.join("run.xml");
    let md = fleet.dir.join("run.md");

    let rollout = run::rollout(
        &fleet,
        &[
            "-i",
            i,
            "-l",
            "host01,host02",
            "--junit",
            path_arg(&junit),
            "--summary-md",
            path_arg(&md),
        ],
    );
    assert_eq!(rollout.code, 1, "{}", rollout.dump());
    let plan = run::capo(&fleet, "plan", &["-i", i]);
    assert_eq!(plan.code, 1, "{}", plan.dump());
    let exec = run::capo(&fleet, "exec", &["-i", i, "--", "true"]);
    assert_eq!(exec.code, 0, "{}", exec.dump());

    assert_eq!(listed(&fleet), [id(&exec), id(&plan), id(&rollout)]);
    let out = capo_plain(&fleet, &["runs", "list"]);
    assert_eq!(out.status.code(), Some(0));
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    for word in [
        "ID",
        "STARTED",
        "MODE",
        "INVENTORY",
        "LIMIT",
        "SHARD",
        "HOSTS",
        "EXIT",
    ] {
        assert!(lines[1].contains(word), "{table}");
    }
    let row = |run_id: &str| {
        lines
            .iter()
            .find(|l| l.contains(run_id))
            .unwrap_or_else(|| panic!("{run_id} not listed:\n{table}"))
            .split('┆')
            .map(|c| {
                c.trim_matches(|ch: char| ch == '│' || ch.is_whitespace())
                    .to_string()
            })
            .collect::<Vec<String>>()
    };
    let r = row(&id(&rollout));
    assert_eq!(
        (&r[2], &r[3], &r[4], &r[5], &r[6], &r[7]),
        (
            &"rollout".to_string(),
            &i.to_string(),
            &"host01,host02".to_string(),
            &"-".to_string(),
            &"2: 1 changed, 1 failed".to_string(),
            &"1".to_string()
        ),
        "{table}"
    );
    assert_eq!(row(&id(&exec))[6], "3: 3 ok", "{table}");
    assert_eq!(
        lines.last().copied(),
        Some("3 runs in .capo/runs"),
        "{table}"
    );

    // show: the stored report as JSON, the same table the run printed, and the files the
    // run wrote.
    let stored = std::fs::read_to_string(runs_dir(&fleet).join(id(&rollout)).join("report.json"))
        .expect("stored report");
    let out = capo_plain(&fleet, &["runs", "show", &id(&rollout), "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), stored);
    assert_eq!(
        serde_json::from_str::<Value>(&stored).expect("json"),
        rollout.report
    );
    let junit_again = fleet.dir.join("again.xml");
    let md_again = fleet.dir.join("again.md");
    let report_again = fleet.dir.join("again.json");
    let out = capo_plain(
        &fleet,
        &[
            "runs",
            "show",
            &id(&rollout)[..18],
            "--junit",
            path_arg(&junit_again),
            "--summary-md",
            path_arg(&md_again),
            "--report",
            path_arg(&report_again),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        rollout.stdout,
        "the table the run printed"
    );
    let read = |p: &Path| std::fs::read_to_string(p).expect("output file");
    assert_eq!(read(&junit_again), read(&junit));
    assert_eq!(read(&md_again), read(&md));
    assert_eq!(read(&report_again), stored);
    let out = capo_plain(&fleet, &["runs", "show", "latest", "--format", "json"]);
    let latest: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(latest, exec.report);
    let out = capo_plain(&fleet, &["runs", "show", "1999"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr), "capo: no run 1999 in .capo/runs\n");

    // A run from before the index (no entry) is still listed, shown and rerun.
    let index = runs_dir(&fleet).join("index.jsonl");
    let kept: Vec<String> = std::fs::read_to_string(&index)
        .expect("index")
        .lines()
        .filter(|l| !l.contains(&id(&rollout)))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&index, kept.concat()).expect("rewrite index");
    assert_eq!(listed(&fleet), [id(&exec), id(&plan), id(&rollout)]);
    let again = run::rollout(&fleet, &["-i", i, "--rerun", "failed"]);
    assert_eq!(names(&again), ["host02"], "{}", again.dump());

    // prune --keep 1: the newest stays, in the index and on disk.
    let out = capo_plain(&fleet, &["runs", "prune", "--keep", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "removed {}\nremoved {}\nremoved {}\n3 runs removed, 1 kept in .capo/runs\n",
            id(&exec),
            id(&plan),
            id(&rollout)
        )
    );
    assert_eq!(listed(&fleet), [id(&again)]);
    let mut left: Vec<String> = std::fs::read_dir(runs_dir(&fleet))
        .expect("runs dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [id(&again), "index.jsonl".into(), "index.lock".into()]
    );
    // The run the next rerun would need is gone, and the error says so.
    let out = capo_plain(&fleet, &["plan", "-i", i, "--rerun", "failed"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "capo: --rerun: no earlier plan of {i} in .capo/runs (the latest run there, {}, was \
             a rollout)\n",
            id(&again)
        )
    );
}

#[test]
fn each_run_keeps_the_newest_keep_runs() {
    let fleet = Fleet::up(1);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let out = capo_plain(&fleet, &["exec", "--keep-runs", "2", "--", "true"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        ids.push(listed(&fleet)[0].clone());
    }
    ids.reverse();
    assert_eq!(listed(&fleet), ids[..2]);
    assert!(!runs_dir(&fleet).join(&ids[2]).exists());
    // CAPO_KEEP_RUNS=0 keeps all.
    let out = fleet
        .capo()
        .env("CAPO_KEEP_RUNS", "0")
        .args(["exec", "--", "true"])
        .output()
        .expect("capo");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(listed(&fleet).len(), 3);
}

#[test]
fn runs_ending_at_once_each_get_their_line() {
    let fleet = Fleet::up(1);
    let children: Vec<std::process::Child> = (0..4)
        .map(|_| {
            fleet
                .capo()
                .args(["exec", "-q", "--", "true"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("capo starts")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("capo ends");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let index = std::fs::read_to_string(runs_dir(&fleet).join("index.jsonl")).expect("index");
    let mut ids: Vec<String> = index
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {index}"));
            e["id"].as_str().expect("id").to_string()
        })
        .collect();
    ids.sort();
    let mut dirs: Vec<String> = std::fs::read_dir(runs_dir(&fleet))
        .expect("runs dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("index."))
        .collect();
    dirs.sort();
    assert_eq!(ids.len(), 4, "{index}");
    assert_eq!(ids, dirs);
}
