//! The folded table end to end, without root: the real `capo` binary against a simulated
//! fleet that this test process serves itself (capo-simfleet's library, on 127.43.x.y), the
//! table laid out for `COLUMNS=100` as when stdout is not a terminal.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};

use capo_simfleet::{Fleet, Options};

/// The width every table here is laid out for.
const COLUMNS: usize = 100;

/// Each fleet gets its own /24 in 127.0.0.0/8, clear of the real fleets (127.0.0.1) and of
/// capo-simfleet's own tests (127.42.x.y), so tests can run in parallel.
static NEXT_NET: AtomicU8 = AtomicU8::new(0);

/// A simulated fleet, served by its own runtime for as long as this lives.
struct SimFleet {
    fleet: Fleet,
    dir: tempfile::TempDir,
    // Dropped last: its worker threads serve the hosts.
    _runtime: tokio::runtime::Runtime,
}

impl SimFleet {
    /// `hosts` hosts whose Puppet runs change something, every `fail_every`-th failing, and
    /// record `config_version` (None: the commit applied, as capo asks).
    fn start(hosts: u32, fail_every: u32, config_version: Option<&str>) -> SimFleet {
        let base = Ipv4Addr::new(127, 43, NEXT_NET.fetch_add(1, Ordering::Relaxed), 1);
        // Any port free on the first address serves: the fleet binds it on every address.
        let port = TcpListener::bind((base, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let options = Options {
            fail_every,
            config_version: config_version.map(str::to_string),
            ..Options::new(hosts, base, port, dir.path().join("fleet"))
        };
        let fleet = runtime
            .block_on(capo_simfleet::start(options))
            .expect("the simulated fleet starts");
        SimFleet {
            fleet,
            dir,
            _runtime: runtime,
        }
    }

    /// `capo ARGS` against the fleet, with `COLUMNS` set and the runs kept in the test's
    /// directory.
    fn capo(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_capo"))
            .args(args)
            .arg("-i")
            .arg(&self.fleet.files.inventory)
            .arg("--runs-dir")
            .arg(self.dir.path().join("runs"))
            .env("COLUMNS", COLUMNS.to_string())
            .env("NO_COLOR", "1")
            .env_remove("CAPO_INVENTORY")
            // Under GitHub Actions capo would append its summary to the job's.
            .env_remove("GITHUB_STEP_SUMMARY")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("capo runs")
    }
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
    let sim = SimFleet::start(60, 20, None);
    let failed = ["sim00020", "sim00040", "sim00060"];

    let out = sim.capo(&["rollout"]);
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
    let out = sim.capo(&["rollout", "--table", "full"]);
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
    assert!(Path::new(&sim.dir.path().join("runs")).is_dir());
}

#[test]
fn a_config_version_of_the_repos_own_shows_beside_the_revision() {
    let sim = SimFleet::start(2, 0, Some("2024.12"));
    let summary = sim.dir.path().join("summary.md");
    let out = sim.capo(&[
        "rollout",
        "--summary-md",
        summary.to_str().expect("a UTF-8 temporary path"),
    ]);
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
