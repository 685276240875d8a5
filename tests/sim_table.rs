//! The folded table end to end, without root: the real `capo` binary against a simulated
//! fleet that this test process serves itself (capo-simfleet's library, on 127.43.x.y), the
//! table laid out for `COLUMNS=100` as when stdout is not a terminal.

use std::path::Path;
use std::process::Output;

use crate::common::sim::SimFleet;

/// The width every table here is laid out for.
const COLUMNS: usize = 100;

/// `capo ARGS -i INVENTORY` against `sim`, with `COLUMNS` set.
fn capo(sim: &SimFleet, args: &[&str]) -> Output {
    sim.capo(args)
        .arg("-i")
        .arg(sim.inventory())
        .env("COLUMNS", COLUMNS.to_string())
        .output()
        .expect("capo runs")
}

/// The table's body rows (between the header and the bottom border), each as its cells.
fn rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with('╞'))
        .skip(1)
        .take_while(|l| !l.starts_with('└'))
        .map(|l| {
            l.trim_matches('│')
                .split('┆')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// Asserts that every line of the table (border to border) fits in [`COLUMNS`]; the lists
/// after it keep their lines whole by design.
fn assert_fits(stdout: &str, all: &str) {
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with('┌'))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(table.len() > 4, "no table\n{all}");
    for line in table {
        // Every character in the table is one column wide.
        assert!(
            line.chars().count() <= COLUMNS,
            "wider than {COLUMNS} columns: {line}\n{all}"
        );
    }
}

/// stdout and stderr, to show when an assertion fails.
fn dump(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_large_rollout_folds_its_table_and_keeps_failures_on_their_own_rows() {
    let sim = SimFleet::start(60, |o| o.fail_every = 20);
    let failed = ["sim00020", "sim00040", "sim00060"];

    let out = capo(&sim, &["rollout"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = dump(&out);
    assert_eq!(out.status.code(), Some(1), "failed hosts: exit 1\n{all}");
    let table = rows(&stdout);
    // One folded row for the 57 hosts that changed (their names, minus the failed ones, do
    // not fold into one range, so the set is cut and counted), then each failed host.
    assert_eq!(table.len(), 1 + failed.len(), "{all}");
    let (set, rest) = (&table[0], &table[1..]);
    assert!(
        set[0].starts_with("sim[00001-000") && set[0].ends_with("… (57 hosts)"),
        "{all}"
    );
    assert_eq!(set[1..3], ["changed", "3f2a1c9 -> 77b0e41"], "{all}");
    assert!(set[3].starts_with("max "), "{all}");
    assert_eq!(set[4], "", "{all}");
    for (row, host) in rest.iter().zip(failed) {
        assert_eq!(row[..3], [host, "failed", "3f2a1c9 -> 77b0e41"], "{all}");
        assert!(row[4].starts_with("puppet: "), "{all}");
    }
    assert_fits(&stdout, &all);
    assert!(
        stdout.contains("60 hosts: 57 changed, 0 unchanged, 3 failed, 0 unreachable"),
        "{all}"
    );
    // Puppet recorded the commit applied: nothing to add to the revisions.
    assert!(!stdout.contains("(config"), "{all}");

    // --table full: one row per host, in inventory order. The fleet is stateless, so the
    // second rollout ends the same way.
    let out = capo(&sim, &["rollout", "--table", "full"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = dump(&out);
    let table = rows(&stdout);
    let names: Vec<&str> = table.iter().map(|r| r[0].as_str()).collect();
    let expected: Vec<String> = (1..=60).map(|i| format!("sim{i:05}")).collect();
    assert_eq!(names, expected, "{all}");
    for row in &table {
        let status = if failed.contains(&row[0].as_str()) {
            "failed"
        } else {
            "changed"
        };
        assert_eq!(row[1], status, "{all}");
    }
    assert_fits(&stdout, &all);
    assert!(Path::new(&sim.dir().join("runs")).is_dir());
}

#[test]
fn a_config_version_of_the_repos_own_shows_beside_the_revision() {
    let sim = SimFleet::start(2, |o| o.config_version = Some("2024.12".into()));
    let summary = sim.dir().join("summary.md");
    let out = capo(
        &sim,
        &[
            "rollout",
            "--summary-md",
            summary.to_str().expect("a UTF-8 temporary path"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = dump(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    for row in rows(&stdout) {
        assert_eq!(row[2], "3f2a1c9 -> 77b0e41 (config 2024.12)", "{all}");
    }
    let md = std::fs::read_to_string(&summary).expect("the Markdown summary");
    assert!(
        md.contains("| `sim00001` | changed | `3f2a1c9 -> 77b0e41 (config 2024.12)` |"),
        "{md}"
    );
}

/// `capo check` of many hosts alike folds them into one row that fits the width, and the
/// versions line counts them all.
#[test]
fn check_of_sixty_hosts_alike_is_one_row() {
    let sim = SimFleet::start(60, |_| {});
    let out = capo(&sim, &["check"]);
    let all = dump(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_fits(&stdout, &all);
    let rows = rows(&stdout);
    assert_eq!(rows.len(), 1, "{all}");
    assert_eq!(rows[0][0], "sim[00001-00060] (60)", "{all}");
    // All direct, no become: no VIA, no RUNS AS.
    assert_eq!(
        rows[0][1..],
        [
            "ok",
            "root (key client_ed25519)",
            "2.39.5/7.23.0",
            "3f2a1c9 main",
            "free"
        ],
        "{all}"
    );
    assert!(
        stdout.contains("git: 2.39.5 on 60 hosts; puppet: 7.23.0 on 60 hosts\n"),
        "{all}"
    );
    assert!(
        stdout.contains("60 hosts: 60 ok, 0 failed, 0 unreachable in "),
        "{all}"
    );
}

/// `capo status` of simulated hosts (capo-simfleet answers `status.sh` as a host does ten
/// minutes after a rollout): each host's state from its run record, Puppet's summary and its
/// checkout against the remote; the failing hosts' alarm; `--fetch` finds every checkout one
/// commit behind.
#[test]
fn status_of_sixty_simulated_hosts_reads_their_last_rollout() {
    let sim = SimFleet::start(60, |o| o.fail_every = 20);
    let failed = ["sim00020", "sim00040", "sim00060"];
    let report = sim.dir().join("status.json");
    let out = capo(
        &sim,
        &[
            "status",
            "--report",
            report.to_str().expect("a UTF-8 temporary path"),
        ],
    );
    let all = dump(&out);
    assert_eq!(out.status.code(), Some(1), "failed hosts: the alarm\n{all}");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("the report")).expect("JSON");
    let hosts = doc["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 60, "{all}");
    for h in hosts {
        let name = h["name"].as_str().unwrap_or("");
        let s = &h["host_state"];
        assert_eq!(h["status"], "ok", "{name}: {h}");
        let (state, record) = if failed.contains(&name) {
            ("failed", "failed")
        } else {
            ("changed", "changed")
        };
        assert_eq!(s["state"], state, "{name}: {s}");
        assert_eq!(s["last_run"]["status"], record, "{name}: {s}");
        assert_eq!(s["last_run"]["source"], "push", "{name}: {s}");
        assert_eq!(s["head"], capo_simfleet::REV_BEFORE, "{s}");
        assert_eq!(
            (s["branch"].as_str(), s["behind"].as_u64()),
            (Some("main"), Some(0))
        );
        assert_eq!(s["age_s"], 600, "{name}: {s}");
        assert_eq!(s["lock"]["held"], false, "{name}: {s}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "failed: sim[00020,00040,00060] (3 hosts)\n",
        "revisions: 60 at 3f2a1c9 (converged)\n",
        "60 hosts: 0 ok, 57 changed, 3 failed, 0 unreachable in ",
    ] {
        assert!(stdout.contains(line), "{line:?} not in\n{all}");
    }

    let out = capo(&sim, &["status", "--fetch", "--format", "json"]);
    let all = dump(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(doc["schema"], "capo.status/v1", "{all}");
    assert_eq!(
        doc["summary"],
        serde_json::json!({"behind": 57, "failed": 3}),
        "{all}"
    );
}
