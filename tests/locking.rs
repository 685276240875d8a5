//! The per-host lock against a real local fleet: two runs never work on one host at once, and
//! a step left running by a dead controller keeps the next run out until it ends.
//! Needs root (the fleet uses unshare and bind mounts); see tests/fleet/README.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::run::step_names;
use crate::common::run::{self, Run};
use crate::common::Fleet;

/// The holder line capo writes into `capo.lock`: `capo run RUN_ID from CONTROLLER (pid N),
/// started YYYY-MM-DDTHH:MM:SSZ`. The start time is the one the run id is made from
/// (`20261124T224501Z-1a2b`); the controller is this machine's hostname, as capo runs here.
fn holder(run_id: &str, pid: u32) -> String {
    let t = run_id.as_bytes();
    assert!(
        run_id.len() > 17 && t[8] == b'T' && t[15] == b'Z' && t[16] == b'-',
        "unexpected run id {run_id:?}"
    );
    let controller = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string();
    format!(
        "capo run {run_id} from {controller} (pid {pid}), started {}-{}-{}T{}:{}:{}Z",
        &run_id[0..4],
        &run_id[4..6],
        &run_id[6..8],
        &run_id[9..11],
        &run_id[11..13],
        &run_id[13..15],
    )
}

/// A site.pp whose apply always changes something: it appends a line to
/// /srv/managed/applied (so the applies can be counted) and then sleeps `secs` seconds.
fn slow_manifest(secs: u32) -> String {
    format!(
        "node default {{\n  exec {{ 'slow':\n    command => \"/bin/sh -c 'echo x >> /srv/managed/applied; sleep {secs}'\",\n  }}\n}}\n"
    )
}

/// How many applies ran on the host (lines of /srv/managed/applied; 0 if it does not exist).
fn applied(fleet: &Fleet, name: &str) -> usize {
    match std::fs::read_to_string(fleet.managed_path(name, "applied")) {
        Ok(text) => text.lines().count(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => panic!("read applied of {name}: {e}"),
    }
}

fn run_id(run: &Run) -> String {
    run.report["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no run_id\n{}", run.dump()))
        .to_string()
}

/// Waits until no process inside the host has a command line containing any of `needles`.
fn wait_until_gone(fleet: &Fleet, name: &str, needles: &[&str], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let procs = fleet.procs(name);
        // Skip the header; `procs` leaves out its own `ps`.
        let left: Vec<&str> = procs
            .lines()
            .skip(1)
            .filter(|l| needles.iter().any(|n| l.contains(n)))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: still running after {timeout:?}: {left:?}\n{procs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `inventory` with its hosts in reverse order (`host05` first), so that a run using it
/// starts on the hosts in the opposite order from a run using `inventory` itself.
fn reversed_inventory(fleet: &Fleet, inventory: &Path) -> PathBuf {
    let text = std::fs::read_to_string(inventory).expect("inventory");
    let defaults = text
        .split("\n[groups.")
        .next()
        .expect("inventory starts with [defaults]");
    let mut out = format!("{}\n", defaults.trim_end());
    for h in fleet.hosts.iter().rev() {
        out.push_str(&format!(
            "\n[hosts.{}]\naddress = \"127.0.0.1\"\nport = {}\n",
            h.name, h.port
        ));
    }
    fleet.write_inventory(&out)
}

/// Connections waiting in the accept queue of the host's (frozen) sshd listener.
fn queued(fleet: &Fleet, name: &str) -> usize {
    let port = fleet.host(name).port;
    let out = Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("run ss");
    let text = String::from_utf8_lossy(&out.stdout);
    // LISTEN  RECV-Q  SEND-Q  LOCAL  PEER; for a listener Recv-Q is the accept queue.
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|q| q.parse::<usize>().ok())
        .sum()
}

#[test]
fn two_runs_at_once_each_host_is_applied_by_exactly_one_and_the_other_is_told_who_holds_it() {
    let fleet = Fleet::up(5);
    let names = fleet.host_names();
    // Both runs wait at the frozen listeners below; give them all the time they need.
    let inventory_a = run::inventory_with(&fleet, &[("connect_timeout", "\"60s\"")]);
    let inventory_b = reversed_inventory(&fleet, &inventory_a);
    let (inventory_a, inventory_b) = (
        inventory_a.to_str().expect("utf-8"),
        inventory_b.to_str().expect("utf-8"),
    );

    // Which run wins which host is a race. To make it a fair one, every sshd listener is
    // frozen while both runs start, so that both runs' connections wait in the accept queue
    // of every host and are let in together (capo's own start-up would otherwise give the
    // first run a head start on every host). Run B also lists the hosts in reverse order.
    // The scenario is repeated (a few times at most) until each run has lost at least one
    // host, so that both must exit 1; every attempt is checked in full.
    const ATTEMPTS: usize = 4;
    let mut one_sided = Vec::new();
    for attempt in 1..=ATTEMPTS {
        let head = fleet.commit(
            "manifests/site.pp",
            &slow_manifest(3),
            &format!("slow, attempt {attempt}"),
        );
        for name in &names {
            fleet.freeze(name);
        }
        let (child_a, report_a) = run::spawn_rollout(&fleet, &["-i", inventory_a]);
        let (child_b, report_b) = run::spawn_rollout(&fleet, &["-i", inventory_b]);
        let deadline = Instant::now() + Duration::from_secs(30);
        for name in &names {
            while queued(&fleet, name) < 2 {
                assert!(
                    Instant::now() < deadline,
                    "{name}: the two runs' connections never both reached the accept queue"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        for name in &names {
            fleet.thaw(name);
        }
        let (pid_a, pid_b) = (child_a.id(), child_b.id());
        let a = run::wait(child_a, &report_a);
        let b = run::wait(child_b, &report_b);
        let both = format!(
            "attempt {attempt}\n--- run A\n{}\n--- run B\n{}",
            a.dump(),
            b.dump()
        );
        let (id_a, id_b) = (run_id(&a), run_id(&b));
        assert_ne!(id_a, id_b, "{both}");
        eprintln!(
            "attempt {attempt}: A {:?}, B {:?}",
            a.statuses(),
            b.statuses()
        );

        for name in &names {
            let (sa, sb) = (&a.host(name)["status"], &b.host(name)["status"]);
            let (winner, loser, loser_label, holder_line) = match (sa.as_str(), sb.as_str()) {
                (Some("changed"), Some("failed")) => (&a, &b, "B", holder(&id_a, pid_a)),
                (Some("failed"), Some("changed")) => (&b, &a, "A", holder(&id_b, pid_b)),
                other => {
                    panic!("{name}: expected one changed and one failed, got {other:?}\n{both}")
                }
            };
            assert_eq!(
                loser.error(name),
                (
                    "locked".to_string(),
                    format!("host is locked by {holder_line}")
                ),
                "{name}, run {loser_label}\n{both}"
            );
            // The loser touched nothing: no step ran, no revision was read.
            assert_eq!(
                step_names(loser, name),
                Vec::<String>::new(),
                "{name}\n{both}"
            );
            assert!(loser.host(name)["rev_before"].is_null(), "{name}\n{both}");
            assert!(loser.host(name)["rev_after"].is_null(), "{name}\n{both}");
            // The winner did the whole job.
            assert_eq!(
                step_names(winner, name),
                ["sync", "apply"],
                "{name}\n{both}"
            );
            assert_eq!(winner.host(name)["steps"][1]["exit_code"], 2, "{name}");
            assert_eq!(winner.host(name)["rev_after"], head.as_str(), "{name}");
            assert!(winner.host(name)["error"].is_null(), "{name}\n{both}");
            // Applied exactly once per attempt.
            assert_eq!(applied(&fleet, name), attempt, "{name}: applies\n{both}");
            assert_eq!(fleet.checkout_head(name), head, "{name}");
        }

        // A run exits 1 when any of its hosts failed, 0 when it won every host.
        for (label, r) in [("A", &a), ("B", &b)] {
            let count = |status: &str| r.statuses().iter().filter(|(_, s)| s == status).count();
            let (failed, changed) = (count("failed"), count("changed"));
            assert_eq!(failed + changed, names.len(), "run {label}\n{both}");
            assert_eq!(r.report["summary"]["failed"], failed, "run {label}");
            assert_eq!(r.report["summary"]["changed"], changed, "run {label}");
            let expected = if failed > 0 { 1 } else { 0 };
            assert_eq!(r.code, expected, "run {label}: exit status\n{both}");
        }
        if a.code == 1 && b.code == 1 {
            return;
        }
        one_sided.push(format!("A {:?} / B {:?}", a.statuses(), b.statuses()));
        eprintln!("attempt {attempt}: one run won every host; trying again");
    }
    panic!(
        "in {ATTEMPTS} attempts one run won every host each time, so never did both exit 1: {one_sided:#?}"
    );
}

#[test]
fn a_step_left_running_by_a_killed_controller_locks_the_host_until_it_ends() {
    let fleet = Fleet::up(1);
    let head = fleet.commit("manifests/site.pp", &slow_manifest(5), "slow");

    let (mut child, _report) = run::spawn_rollout(&fleet, &[]);
    let killed_pid = child.id();
    assert!(
        fleet.wait_for_proc("host01", "sleep 5", Duration::from_secs(60)),
        "the apply never reached its exec:\n{}",
        fleet.procs("host01")
    );
    child.kill().expect("SIGKILL capo");
    let _ = child.wait_with_output().expect("reap capo");

    // The killed run wrote no report; its id is the name of its run directory.
    let runs: Vec<String> = std::fs::read_dir(fleet.dir.join(".capo/runs"))
        .expect("runs dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .into_string()
                .expect("utf-8")
        })
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let killed = holder(&runs[0], killed_pid);

    // Right away: the orphaned Puppet run of the dead controller is still at work.
    let second = run::rollout(&fleet, &[]);
    let still_there = fleet.procs("host01");
    assert!(
        still_there.contains("sleep 5"),
        "the orphaned apply ended before the second run was checked; the test proves nothing\n{still_there}\n{}",
        second.dump()
    );
    assert_eq!(second.code, 1, "{}", second.dump());
    assert_eq!(second.statuses(), run::all(&["host01"], "failed"));
    assert_eq!(
        second.error("host01"),
        (
            "locked".to_string(),
            format!(
                "a step started by {killed} is still running on the host; try again when it ends"
            )
        ),
        "{}",
        second.dump()
    );
    assert_eq!(step_names(&second, "host01"), Vec::<String>::new());
    assert!(second.host("host01")["rev_before"].is_null());

    // Once the orphan is gone, so is the lock.
    wait_until_gone(
        &fleet,
        "host01",
        &["sleep 5", "puppet apply"],
        Duration::from_secs(60),
    );
    assert_eq!(applied(&fleet, "host01"), 1, "only the orphan applied");

    let third = run::rollout(&fleet, &[]);
    assert_eq!(third.code, 0, "{}", third.dump());
    assert_eq!(third.statuses(), run::all(&["host01"], "changed"));
    assert!(third.host("host01")["error"].is_null(), "{}", third.dump());
    assert_eq!(step_names(&third, "host01"), ["sync", "apply"]);
    assert_eq!(third.host("host01")["rev_after"], head.as_str());
    assert_eq!(applied(&fleet, "host01"), 2);
}
