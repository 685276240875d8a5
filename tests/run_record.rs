//! The run record a rollout leaves on each host (`/var/lib/capo/last_run.json` and `runs/`,
//! docs/run-record.md), written by the host-side steps themselves, against a real local
//! fleet. Needs root (the fleet uses unshare and bind mounts); see tests/fleet/README.md.

use std::path::Path;

use serde_json::Value;

use crate::common::run::{self, on_host, step_names, Run};
use crate::common::Fleet;

const MESSAGE: &str = "modules/capo_demo/files/message.txt";

/// Every field of a record, in the order it is written.
const FIELDS: [&str; 16] = [
    "schema",
    "time",
    "started",
    "source",
    "by",
    "run_id",
    "rev_before",
    "rev_after",
    "status",
    "step",
    "changed",
    "failed",
    "corrective",
    "out_of_sync",
    "config_version",
    "duration_ms",
];

/// The host's `last_run.json`, read inside the host (where pull mode and `capo status` will
/// read it), checked to hold exactly [`FIELDS`] in that order and to be the newest of runs/.
fn last_run(fleet: &Fleet, name: &str) -> Value {
    let text = on_host(fleet, name, "cat /var/lib/capo/last_run.json");
    let record: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}:\n{text}"));
    let keys: Vec<&str> = record
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = FIELDS.to_vec();
    sorted.sort_unstable();
    assert_eq!(keys, sorted, "{name}: {text}");
    let order: Vec<usize> = FIELDS
        .iter()
        .map(|f| text.find(&format!("\"{f}\":")).expect("field"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{name}: {text}");
    let runs = history(fleet, name);
    let newest = runs.last().expect("a record in runs/");
    let copy = std::fs::read_to_string(fleet.capo_state_dir(name).join("runs").join(newest))
        .expect("runs/ file");
    assert_eq!(copy.trim(), text, "{name}: runs/{newest}");
    assert_eq!(record["schema"], "capo.run/v1");
    assert_eq!(record["source"], "push");
    for key in ["time", "started"] {
        let t = record[key].as_str().expect("a time");
        assert!(
            t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{name}: {key} {t}"
        );
    }
    assert!(record["started"].as_str() <= record["time"].as_str());
    assert!(record["duration_ms"].as_u64().is_some(), "{record}");
    record
}

/// The file names in the host's /var/lib/capo/runs, oldest first.
fn history(fleet: &Fleet, name: &str) -> Vec<String> {
    let dir = fleet.capo_state_dir(name).join("runs");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts that the record names this run: its id and holder line, as the report has them.
fn names_the_run(record: &Value, run: &Run) {
    let run_id = run.report["run_id"].as_str().expect("run_id");
    assert_eq!(record["run_id"], run_id);
    let by = record["by"].as_str().expect("by");
    assert!(
        by.starts_with(&format!("capo run {run_id} from ")) && by.contains("(pid "),
        "{by}"
    );
}

/// Whether `dir` is empty or missing.
fn empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

#[test]
fn a_rollout_records_what_it_did_and_keeps_each_run() {
    let fleet = Fleet::up(1);
    let old = fleet.origin_head();
    let new = fleet.commit(MESSAGE, "second release\n", "Change the banner");
    assert!(empty(&fleet.capo_state_dir("host01")));

    let first = run::rollout(&fleet, &[]);
    assert_eq!(first.code, 0, "{}", first.dump());
    assert_eq!(first.statuses(), run::all(&["host01"], "changed"));
    let r = last_run(&fleet, "host01");
    names_the_run(&r, &first);
    assert_eq!(r["status"], "changed");
    assert_eq!(r["step"], Value::Null);
    assert_eq!(r["rev_before"], old.as_str());
    assert_eq!(r["rev_after"], new.as_str());
    assert_eq!(r["config_version"], new.as_str());
    let resources = &first.host("host01")["puppet"]["resources"];
    assert!(
        resources["changed"].as_u64().is_some_and(|n| n > 0),
        "{resources}"
    );
    for (field, count) in [
        ("changed", "changed"),
        ("failed", "failed"),
        ("corrective", "corrective_change"),
        ("out_of_sync", "out_of_sync"),
    ] {
        assert_eq!(r[field], resources[count], "{field}: {resources}");
    }
    assert!(first.host("host01").get("run_record_error").is_none());
    assert!(!first.stdout.contains("no run record"), "{}", first.dump());
    assert_eq!(history(&fleet, "host01").len(), 1);

    let second = run::rollout(&fleet, &[]);
    assert_eq!(second.code, 0, "{}", second.dump());
    assert_eq!(second.statuses(), run::all(&["host01"], "unchanged"));
    let r = last_run(&fleet, "host01");
    names_the_run(&r, &second);
    assert_ne!(r["run_id"], first.report["run_id"]);
    assert_eq!(r["status"], "unchanged");
    assert_eq!(
        (&r["rev_before"], &r["rev_after"]),
        (&r["rev_after"], &Value::from(new.as_str()))
    );
    assert_eq!(
        (r["changed"].as_u64(), r["failed"].as_u64()),
        (Some(0), Some(0))
    );
    let runs = history(&fleet, "host01");
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|f| f.ends_with("Z-push.json")), "{runs:?}");
}

#[test]
fn a_failed_apply_is_recorded_as_failed_at_apply() {
    let fleet = Fleet::up(1);
    let bad = fleet.commit(
        "manifests/site.pp",
        "node default {\n  file { '/srv/managed/x': ensure => file,\n",
        "Break the manifest",
    );
    let run = run::rollout(&fleet, &[]);
    assert_eq!(run.code, 1, "{}", run.dump());
    assert_eq!(run.statuses(), run::all(&["host01"], "failed"));
    assert_eq!(run.error("host01").0, "puppet");
    let r = last_run(&fleet, "host01");
    names_the_run(&r, &run);
    assert_eq!(
        (r["status"].as_str(), r["step"].as_str()),
        (Some("failed"), Some("apply"))
    );
    assert_eq!(r["rev_after"], bad.as_str());
    // A catalog that does not compile leaves no summary: no counts, no config version.
    for key in [
        "changed",
        "failed",
        "corrective",
        "out_of_sync",
        "config_version",
    ] {
        assert_eq!(r[key], Value::Null, "{key}");
    }
}

#[test]
fn a_failed_sync_is_recorded_with_no_counts_and_the_checkout_kept() {
    let fleet = Fleet::up(1);
    let old = fleet.origin_head();
    on_host(
        &fleet,
        "host01",
        &format!("cd /srv/puppet && printf 'edited on the host\\n' > {MESSAGE}"),
    );
    fleet.commit(MESSAGE, "second release\n", "Change the banner");
    let run = run::rollout(&fleet, &[]);
    assert_eq!(run.code, 1, "{}", run.dump());
    assert_eq!(run.error("host01").0, "sync", "{}", run.dump());
    assert_eq!(step_names(&run, "host01"), ["sync"]);
    let r = last_run(&fleet, "host01");
    names_the_run(&r, &run);
    assert_eq!(
        (r["status"].as_str(), r["step"].as_str()),
        (Some("failed"), Some("sync"))
    );
    assert_eq!(r["rev_before"], old.as_str());
    assert_eq!(r["rev_after"], old.as_str());
    for key in [
        "changed",
        "failed",
        "corrective",
        "out_of_sync",
        "config_version",
    ] {
        assert_eq!(r[key], Value::Null, "{key}");
    }
    assert_eq!(fleet.checkout_head("host01"), old);
    assert_eq!(
        on_host(&fleet, "host01", &format!("cat /srv/puppet/{MESSAGE}")),
        "edited on the host"
    );
}

#[test]
fn a_state_dir_that_cannot_be_written_keeps_the_status_and_warns() {
    let fleet = Fleet::up(2);
    fleet.commit(MESSAGE, "second release\n", "Change the banner");
    let inventory = run::inventory_with(&fleet, &[("state_dir", "\"/proc/nope\"")]);
    let run = run::rollout(&fleet, &["-i", run::path_arg(&inventory)]);
    assert_eq!(run.code, 0, "{}", run.dump());
    assert_eq!(run.statuses(), run::all(&["host01", "host02"], "changed"));
    let why = "cannot write /proc/nope as root: mkdir: cannot create directory '/proc/nope': No such file or directory";
    for name in ["host01", "host02"] {
        assert_eq!(run.host(name)["run_record_error"], why, "{}", run.dump());
        assert_eq!(run.host(name)["error"], Value::Null);
        assert!(empty(&fleet.capo_state_dir(name)), "{name}");
    }
    assert!(
        run.stdout.contains(&format!(
            "\nwarning: no run record written on 2 hosts (first: host01: {why})\n"
        )),
        "{}",
        run.dump()
    );
}

#[test]
fn plan_exec_and_check_write_no_record() {
    let fleet = Fleet::up(1);
    fleet.commit(MESSAGE, "second release\n", "Change the banner");
    for (subcommand, args) in [
        ("plan", &[][..]),
        ("exec", &["--", "true"][..]),
        ("check", &[][..]),
    ] {
        let run = run::capo(&fleet, subcommand, args);
        assert!(
            run.code == 0 || run.code == 3,
            "{subcommand}: {}",
            run.dump()
        );
        assert!(empty(&fleet.capo_state_dir("host01")), "{subcommand}");
    }
    assert_eq!(
        on_host(&fleet, "host01", "ls -A /var/lib/capo | wc -l"),
        "0"
    );
}
