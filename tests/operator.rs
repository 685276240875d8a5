//! Operator controls against a real local fleet: `--canary`, `--batch`, `--max-failures`,
//! `--confirm` without a terminal, and `capo exec` with its gathered output.
//! Needs root (the fleet uses unshare and bind mounts); see tests/fleet/README.md.
//!
//! Puppet is expensive (about 2 s of CPU per apply), so hosts that only have to fail get
//! `puppet = "/bin/false"` (apply exits 1: `failed`, kind `puppet`) and hosts that only have to
//! succeed get `puppet = "/bin/true"` (apply exits 0: `unchanged`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::run::is_seconds;
use crate::common::run::{self, all, pairs, Run};
use crate::common::run::{inventory_with_puppet, path_arg};
use crate::common::tmux::{sh_quote, Tmux};
use crate::common::Fleet;
use serde_json::Value;

/// The fleet's inventory with `puppet = "/bin/false"` on each of `hosts`.
fn inventory_breaking(fleet: &Fleet, hosts: &[&str]) -> PathBuf {
    let settings: Vec<(&str, &str)> = hosts.iter().map(|h| (*h, "/bin/false")).collect();
    inventory_with_puppet(fleet, &settings)
}

/// Every line of a `--events` file, parsed; each must be a JSON object with `event` and `time`.
fn read_events(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no events file at {} ({e})", path.display()));
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("event line is not JSON ({e}): {line}"));
            assert!(v["event"].is_string(), "no \"event\": {line}");
            assert!(v["time"].is_string(), "no \"time\": {line}");
            v
        })
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("?"))
        .collect()
}

/// `host` of every event named `name`, in order.
fn hosts_of(events: &[Value], name: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == name)
        .map(|e| e["host"].as_str().expect("host").to_string())
        .collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn err(kind: &str, message: &str) -> (String, String) {
    (kind.to_string(), message.to_string())
}

/// The `N hosts: ...` summary line of a table (or exec) output.
fn summary_line(r: &Run, total: usize) -> String {
    let prefix = format!("{total} hosts: ");
    let found: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .collect();
    assert_eq!(found.len(), 1, "one summary line expected\n{}", r.dump());
    found[0].to_string()
}

/// Asserts `line` is `{head}N.Ns{tail}` (the run's wall time masked).
fn assert_timed(line: &str, head: &str, tail: &str) {
    let middle = line
        .strip_prefix(head)
        .and_then(|rest| rest.strip_suffix(tail))
        .unwrap_or_else(|| panic!("expected {head:?} <secs> {tail:?}, got {line:?}"));
    assert!(is_seconds(middle), "duration {middle:?} in {line:?}");
}

fn assert_no_steps(r: &Run, name: &str) {
    let h = r.host(name);
    assert_eq!(
        h["steps"].as_array().map(Vec::len),
        Some(0),
        "{name}: {h:#}"
    );
    assert!(h["rev_before"].is_null(), "{name}: {h:#}");
    assert!(h["rev_after"].is_null(), "{name}: {h:#}");
}

// ---------------------------------------------------------------------------------------------
// --canary

#[test]
fn a_failed_canary_skips_every_other_host() {
    let fleet = Fleet::up(4);
    let inventory = inventory_breaking(&fleet, &["host01"]);
    let events = fleet.dir.join("events.jsonl");
    let r = run::rollout(
        &fleet,
        &[
            "-i",
            path_arg(&inventory),
            "--canary",
            "1",
            "--events",
            path_arg(&events),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        pairs(&[
            ("host01", "failed"),
            ("host02", "skipped"),
            ("host03", "skipped"),
            ("host04", "skipped"),
        ])
    );
    assert_eq!(
        r.error("host01"),
        err("puppet", "puppet apply failed (exit 1)")
    );
    for name in ["host02", "host03", "host04"] {
        assert_eq!(
            r.error(name),
            err("aborted", "not started: the canary failed (host01)"),
            "{name}"
        );
        assert_no_steps(&r, name);
    }
    assert_eq!(r.report["halted"], "the canary failed (host01)");
    assert_eq!(r.report["summary"]["failed"], 1);
    assert_eq!(r.report["summary"]["skipped"], 3);
    assert_timed(
        &summary_line(&r, 4),
        "4 hosts: 0 changed, 0 unchanged, 1 failed, 0 unreachable, 3 skipped in ",
        "; the canary failed (host01)",
    );

    // Nothing ran on the others: Puppet never wrote their files...
    for name in ["host02", "host03", "host04"] {
        assert!(
            !fleet.managed_path(name, "motd").exists(),
            "{name} was applied"
        );
    }
    // ...and the event stream never started them.
    let ev = read_events(&events);
    assert_eq!(hosts_of(&ev, "host_started"), names(&["host01"]));
    assert_eq!(
        hosts_of(&ev, "host_finished"),
        names(&["host01", "host02", "host03", "host04"])
    );
    let batches: Vec<&Value> = ev
        .iter()
        .filter(|e| e["event"] == "batch_started")
        .collect();
    assert_eq!(batches.len(), 1, "{ev:#?}");
    assert_eq!(batches[0]["index"], 0);
    assert_eq!(batches[0]["hosts"], serde_json::json!(["host01"]));
    let k = kinds(&ev);
    assert_eq!(k.first(), Some(&"run_started"));
    assert_eq!(k.last(), Some(&"run_finished"));
    assert_eq!(
        ev.last().expect("events")["halted"],
        "the canary failed (host01)"
    );
    for e in ev
        .iter()
        .filter(|e| e["event"] == "host_finished" && e["status"] == "skipped")
    {
        assert_eq!(e["error"]["kind"], "aborted", "{e}");
        assert_eq!(
            e["error"]["message"], "not started: the canary failed (host01)",
            "{e}"
        );
    }
}

#[test]
fn two_failed_canaries_are_named_folded() {
    let fleet = Fleet::up(4);
    let inventory = inventory_breaking(&fleet, &["host01", "host02"]);
    let r = run::rollout(
        &fleet,
        &[
            "-i",
            path_arg(&inventory),
            "--canary",
            "2",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        pairs(&[
            ("host01", "failed"),
            ("host02", "failed"),
            ("host03", "skipped"),
            ("host04", "skipped"),
        ])
    );
    for name in ["host03", "host04"] {
        assert_eq!(
            r.error(name),
            err("aborted", "not started: the canary failed (host[01-02])"),
            "{name}"
        );
    }
    assert_eq!(r.report["halted"], "the canary failed (host[01-02])");
    // --format json: stdout is the same document as --report
    let printed: Value = serde_json::from_str(&r.stdout).expect("stdout is JSON");
    assert_eq!(printed["halted"], "the canary failed (host[01-02])");
    assert_eq!(printed["run_id"], r.report["run_id"]);
}

#[test]
fn a_passing_canary_lets_the_rest_run() {
    let fleet = Fleet::up(3);
    let inventory = inventory_with_puppet(
        &fleet,
        &[
            ("host01", "/bin/true"),
            ("host02", "/bin/true"),
            ("host03", "/bin/true"),
        ],
    );
    let events = fleet.dir.join("events.jsonl");
    let r = run::rollout(
        &fleet,
        &[
            "-i",
            path_arg(&inventory),
            "--canary",
            "1",
            "--events",
            path_arg(&events),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        all(&["host01", "host02", "host03"], "unchanged")
    );
    assert!(r.report["halted"].is_null(), "{}", r.report["halted"]);
    let ev = read_events(&events);
    let batches: Vec<(u64, Value)> = ev
        .iter()
        .filter(|e| e["event"] == "batch_started")
        .map(|e| (e["index"].as_u64().expect("index"), e["hosts"].clone()))
        .collect();
    assert_eq!(
        batches,
        vec![
            (0, serde_json::json!(["host01"])),
            (1, serde_json::json!(["host02", "host03"])),
        ]
    );
    assert!(ev.last().expect("events")["halted"].is_null());
}

// ---------------------------------------------------------------------------------------------
// --batch

#[test]
fn batches_of_1_then_2_run_in_order_each_after_the_last_one_finished() {
    let fleet = Fleet::up(5);
    let events = fleet.dir.join("events.jsonl");
    let r = run::rollout(
        &fleet,
        &["--batch", "1,2", "-j", "5", "--events", path_arg(&events)],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    let every = ["host01", "host02", "host03", "host04", "host05"];
    assert_eq!(r.statuses(), all(&every, "changed"));

    let ev = read_events(&events);
    let expected = [
        names(&["host01"]),
        names(&["host02", "host03"]),
        names(&["host04", "host05"]),
    ];
    // (position in the stream, index, hosts) of every batch_started
    let starts: Vec<(usize, u64, Vec<String>)> = ev
        .iter()
        .enumerate()
        .filter(|(_, e)| e["event"] == "batch_started")
        .map(|(i, e)| {
            let hosts = e["hosts"]
                .as_array()
                .expect("hosts")
                .iter()
                .map(|h| h.as_str().expect("host").to_string())
                .collect();
            (i, e["index"].as_u64().expect("index"), hosts)
        })
        .collect();
    assert_eq!(
        starts.iter().map(|s| s.1).collect::<Vec<_>>(),
        [0, 1, 2],
        "{ev:#?}"
    );
    assert_eq!(
        starts.iter().map(|s| s.2.clone()).collect::<Vec<_>>(),
        expected
    );
    let position = |name: &str, host: &str| {
        ev.iter()
            .position(|e| e["event"] == name && e["host"] == host)
            .unwrap_or_else(|| panic!("no {name} for {host}: {ev:#?}"))
    };
    let batch_finished = |index: u64| {
        ev.iter()
            .position(|e| e["event"] == "batch_finished" && e["index"] == index)
            .unwrap_or_else(|| panic!("no batch_finished {index}: {ev:#?}"))
    };
    for (k, (start, index, hosts)) in starts.iter().enumerate() {
        for host in hosts {
            let started = position("host_started", host);
            let finished = position("host_finished", host);
            assert!(*start < started, "{host} started before its batch");
            assert!(
                finished < batch_finished(*index),
                "{host} finished after batch_finished {index}"
            );
            if let Some((next, ..)) = starts.get(k + 1) {
                assert!(
                    finished < *next,
                    "{host} (batch {index}) finished after batch {} started",
                    index + 1
                );
            }
        }
        if let Some((next, ..)) = starts.get(k + 1) {
            assert!(batch_finished(*index) < *next);
        }
        // -j 5: the hosts of one batch run side by side.
        let last_start = hosts.iter().map(|h| position("host_started", h)).max();
        let first_finish = hosts.iter().map(|h| position("host_finished", h)).min();
        assert!(
            last_start < first_finish,
            "batch {index} did not run its hosts in parallel: {ev:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// --max-failures

#[test]
fn max_failures_stops_starting_hosts_once_more_than_n_failed() {
    let fleet = Fleet::up(10);
    let inventory = inventory_breaking(&fleet, &["host01", "host02", "host03"]);
    let events = fleet.dir.join("events.jsonl");
    let r = run::rollout(
        &fleet,
        &[
            "-i",
            path_arg(&inventory),
            "--max-failures",
            "1",
            "-j",
            "1",
            "--events",
            path_arg(&events),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.dump());
    let rest = [
        "host03", "host04", "host05", "host06", "host07", "host08", "host09", "host10",
    ];
    let mut expected = all(&["host01", "host02"], "failed");
    expected.extend(all(&rest, "skipped"));
    assert_eq!(r.statuses(), expected);
    for name in ["host01", "host02"] {
        assert_eq!(
            r.error(name),
            err("puppet", "puppet apply failed (exit 1)"),
            "{name}"
        );
    }
    for name in rest {
        assert_eq!(
            r.error(name),
            err(
                "aborted",
                "not started: stopped after 2 failures (more than 1 allowed)"
            ),
            "{name}"
        );
        assert_no_steps(&r, name);
    }
    assert_eq!(
        r.report["halted"],
        "stopped after 2 failures (more than 1 allowed)"
    );
    assert_eq!(r.report["summary"]["failed"], 2);
    assert_eq!(r.report["summary"]["skipped"], 8);
    assert_timed(
        &summary_line(&r, 10),
        "10 hosts: 0 changed, 0 unchanged, 2 failed, 0 unreachable, 8 skipped in ",
        "; stopped after 2 failures (more than 1 allowed)",
    );
    let ev = read_events(&events);
    assert_eq!(hosts_of(&ev, "host_started"), names(&["host01", "host02"]));
    assert_eq!(
        ev.last().expect("events")["halted"],
        "stopped after 2 failures (more than 1 allowed)"
    );
}

#[test]
fn max_failures_as_a_percentage_of_the_selected_hosts() {
    // 25% of 4 hosts: 1 allowed, so the run stops at the second failure.
    let fleet = Fleet::up(4);
    let inventory = inventory_breaking(&fleet, &["host01", "host02", "host03"]);
    let r = run::rollout(
        &fleet,
        &[
            "-i",
            path_arg(&inventory),
            "--max-failures",
            "25%",
            "-j",
            "1",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        pairs(&[
            ("host01", "failed"),
            ("host02", "failed"),
            ("host03", "skipped"),
            ("host04", "skipped"),
        ])
    );
    assert_eq!(
        r.error("host04"),
        err(
            "aborted",
            "not started: stopped after 2 failures (more than 1 allowed)"
        )
    );
    assert_eq!(
        r.report["halted"],
        "stopped after 2 failures (more than 1 allowed)"
    );
}

#[test]
fn max_failures_counts_unreachable_hosts() {
    let fleet = Fleet::up(3);
    fleet.stop("host01");
    let inventory = run::inventory_with(&fleet, &[("connect_retries", "0")]);
    let r = run::rollout(
        &fleet,
        &["-i", path_arg(&inventory), "--max-failures", "0", "-j", "1"],
    );
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        pairs(&[
            ("host01", "unreachable"),
            ("host02", "skipped"),
            ("host03", "skipped"),
        ])
    );
    let port = fleet.host("host01").port;
    assert_eq!(
        r.error("host01"),
        err("connect", &format!("connection refused (127.0.0.1:{port})"))
    );
    assert_eq!(
        r.error("host03"),
        err(
            "aborted",
            "not started: stopped after 1 failure (more than 0 allowed)"
        )
    );
    assert_eq!(
        r.report["halted"],
        "stopped after 1 failure (more than 0 allowed)"
    );
}

// ---------------------------------------------------------------------------------------------
// --confirm

#[test]
fn confirm_without_a_terminal_is_refused_before_any_host_is_contacted() {
    let fleet = Fleet::up(2);
    let connections = |fleet: &Fleet| -> Vec<usize> {
        fleet
            .host_names()
            .iter()
            .map(|h| fleet.sshd_connections(h))
            .collect()
    };
    let logs_before = connections(&fleet);
    let events = fleet.dir.join("events.jsonl");
    let report = fleet.dir.join("report.json");
    let junit = fleet.dir.join("junit.xml");
    // stdin is /dev/null, stdout and stderr are pipes
    let out = fleet
        .capo()
        .args(["rollout", "--confirm", "--batch", "1"])
        .arg("--events")
        .arg(&events)
        .arg("--report")
        .arg(&report)
        .arg("--junit")
        .arg(&junit)
        .output()
        .expect("capo runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "capo: --confirm needs a terminal (stdin and stderr); run without --confirm in CI\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    for file in [&events, &report, &junit] {
        assert!(!file.exists(), "{} was written", file.display());
    }
    assert!(
        !fleet.dir.join(".capo").exists(),
        "a run directory was made"
    );
    assert_eq!(connections(&fleet), logs_before, "a host saw a connection");
    for name in ["host01", "host02"] {
        assert!(!fleet.managed_path(name, "motd").exists());
    }
}

#[test]
fn confirm_is_refused_for_exec_and_plan_too() {
    let fleet = Fleet::up(1);
    for args in [
        vec!["exec", "--confirm", "--", "true"],
        vec!["plan", "--confirm"],
    ] {
        let out = fleet.capo().args(&args).output().expect("capo runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr,
            "capo: --confirm needs a terminal (stdin and stderr); run without --confirm in CI\n",
            "{args:?}"
        );
    }
    assert!(!fleet.dir.join(".capo").exists());
}

// ---------------------------------------------------------------------------------------------
// capo exec

const SPLIT: &str = "case $(hostname) in host0[1-4]) echo same;; *) echo other; exit 3;; esac";

#[test]
fn exec_gathers_identical_outputs_under_their_folded_hosts() {
    let fleet = Fleet::up(6);
    let r = run::capo(&fleet, "exec", &["--", SPLIT]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.report["mode"], "exec");
    assert_eq!(
        r.statuses(),
        pairs(&[
            ("host01", "ok"),
            ("host02", "ok"),
            ("host03", "ok"),
            ("host04", "ok"),
            ("host05", "failed"),
            ("host06", "failed"),
        ])
    );
    for name in ["host01", "host02", "host03", "host04"] {
        assert!(r.host(name)["error"].is_null(), "{name}");
        assert_eq!(r.host(name)["steps"][0]["stdout_tail"], "same\n");
    }
    for name in ["host05", "host06"] {
        assert_eq!(r.error(name), err("command", "command exited 3"), "{name}");
        assert_eq!(r.host(name)["steps"][0]["exit_code"], 3);
    }
    assert_eq!(r.report["summary"]["ok"], 4);
    assert_eq!(r.report["summary"]["failed"], 2);

    // The whole stdout, the wall time and run id masked.
    let lines: Vec<&str> = r.stdout.lines().collect();
    let rule = |n: usize| "-".repeat(n);
    let head = [
        rule(21),
        "host[01-04] (4 hosts)".to_string(),
        rule(21),
        "same".to_string(),
        String::new(),
        rule(29),
        "host[05-06] (2 hosts), exit 3".to_string(),
        rule(29),
        "other".to_string(),
        String::new(),
        String::new(),
        "problems:".to_string(),
        "  command: command exited 3 on host[05-06] (2 hosts)".to_string(),
    ];
    assert_eq!(lines.len(), head.len() + 2, "{}", r.dump());
    assert_eq!(lines[..head.len()], head, "{}", r.stdout);
    assert_timed(
        lines[head.len()],
        "6 hosts: 4 ok, 2 failed, 0 unreachable in ",
        "",
    );
    let run_id = r.report["run_id"].as_str().expect("run_id");
    assert_eq!(
        lines[head.len() + 1],
        format!("full output of every host: .capo/runs/{run_id}/<host>/")
    );
    // exactly two header blocks
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("host[")).count(),
        2,
        "{}",
        r.stdout
    );
}

#[test]
fn exec_takes_a_command_as_separate_words() {
    let fleet = Fleet::up(2);
    // the words are joined with spaces and run by sh -c: the $(...) is expanded on the host
    let r = run::capo(&fleet, "exec", &["--", "echo", "on", "$(hostname)"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), all(&["host01", "host02"], "ok"));
    assert_eq!(
        r.host("host01")["steps"][0]["command"],
        "echo on $(hostname)"
    );
    assert_eq!(r.host("host01")["steps"][0]["stdout_tail"], "on host01\n");
    assert_eq!(r.host("host02")["steps"][0]["stdout_tail"], "on host02\n");
    let lines: Vec<&str> = r.stdout.lines().collect();
    let rule = "-".repeat("host01 (1 host)".len());
    let expected = [
        rule.as_str(),
        "host01 (1 host)",
        rule.as_str(),
        "on host01",
        "",
        rule.as_str(),
        "host02 (1 host)",
        rule.as_str(),
        "on host02",
        "",
    ];
    assert_eq!(lines.len(), expected.len() + 2, "{}", r.dump());
    assert_eq!(lines[..expected.len()], expected[..], "{}", r.stdout);
    assert_timed(
        lines[expected.len()],
        "2 hosts: 2 ok, 0 failed, 0 unreachable in ",
        "",
    );
}

#[test]
fn exec_with_format_json_prints_the_report() {
    let fleet = Fleet::up(3);
    let r = run::capo(&fleet, "exec", &["--format", "json", "--", "hostname"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let printed: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", r.stdout));
    assert_eq!(printed, r.report, "stdout and --report differ");
    assert_eq!(printed["schema"], "capo.report/v1");
    assert_eq!(printed["mode"], "exec");
    assert_eq!(printed["summary"]["total"], 3);
    assert_eq!(printed["summary"]["ok"], 3);
    assert_eq!(printed["summary"]["failed"], 0);
    assert_eq!(r.statuses(), all(&["host01", "host02", "host03"], "ok"));
    for name in ["host01", "host02", "host03"] {
        let h = r.host(name);
        assert!(h["error"].is_null());
        assert!(h["rev_before"].is_null());
        assert!(h["puppet"].is_null());
        let steps = h["steps"].as_array().expect("steps");
        assert_eq!(steps.len(), 1, "{h:#}");
        assert_eq!(steps[0]["name"], "exec");
        assert_eq!(steps[0]["command"], "hostname");
        assert_eq!(steps[0]["exit_code"], 0);
        assert_eq!(steps[0]["stdout_tail"], format!("{name}\n"));
    }
}

/// Processes left inside `host` other than its sshd (pid 1) and sshd sessions.
fn leftovers(fleet: &Fleet, host: &str) -> Vec<String> {
    fleet
        .procs(host)
        .lines()
        .skip(1)
        .filter(|l| !l.contains("sshd"))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn exec_output_is_the_commands_alone_and_ends_with_it_run_after_run() {
    // The step wrapper on the host must add nothing of its own to a command's output (a
    // shell's job notice such as `Terminated` when it stops its watchdog, say): that would
    // split identical outputs into separate groups. Nor may it leave its watchdog running
    // once the command is done: that keeps the channel open until the watchdog's deadline
    // (command_timeout, 5 minutes here). Many short runs, as both come and go with timing.
    let fleet = Fleet::up(6);
    let hosts = ["host01", "host02", "host03", "host04", "host05", "host06"];
    let runs = 30;
    let mut noisy = Vec::new();
    for i in 0..runs {
        let (mut cmd, report) = run::command(&fleet, "exec", &["-q", "--", "echo", "same"]);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("capo starts");
        let started = Instant::now();
        while child.try_wait().expect("poll capo").is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                let left: Vec<String> = hosts
                    .iter()
                    .flat_map(|h| {
                        leftovers(&fleet, h)
                            .into_iter()
                            .map(move |l| format!("{h}: {l}"))
                    })
                    .collect();
                panic!(
                    "run {i}: `capo exec -- echo same` still running after 30 s (killed it); \
                     left running on the hosts:\n{}\nearlier noise:\n{}",
                    left.join("\n"),
                    noisy.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let r = run::wait(child, &report);
        assert_eq!(r.code, 0, "run {i}: {}", r.dump());
        for name in hosts {
            let step = &r.host(name)["steps"][0];
            if step["stdout_tail"] != "same\n" || step["stderr_tail"] != "" {
                noisy.push(format!(
                    "run {i} {name}: stdout {} stderr {}",
                    step["stdout_tail"], step["stderr_tail"]
                ));
            }
        }
        if !r.stdout.starts_with(
            "---------------------\nhost[01-06] (6 hosts)\n---------------------\nsame\n\n6 hosts: ",
        ) {
            noisy.push(format!("run {i}: stdout\n{}", r.stdout));
        }
    }
    assert!(
        noisy.is_empty(),
        "{} of {} host runs carried output that is not the command's:\n{}",
        noisy.len(),
        runs * hosts.len(),
        noisy.join("\n")
    );
    for h in hosts {
        assert_eq!(leftovers(&fleet, h), Vec::<String>::new(), "{h}");
    }
}

// ---------------------------------------------------------------------------------------------
// --confirm under a terminal (tmux)

/// `cd FLEET && CAPO_INVENTORY=INV capo ARGS; echo CAPO-EXIT=$?; sleep 60`, for tmux.
fn in_terminal(fleet: &Fleet, inventory: &Path, args: &str) -> String {
    format!(
        "cd {dir} && CAPO_INVENTORY={inv} {bin} {args}; echo CAPO-EXIT=$?; sleep 60",
        dir = sh_quote(path_arg(&fleet.dir)),
        inv = sh_quote(path_arg(inventory)),
        bin = sh_quote(env!("CARGO_BIN_EXE_capo")),
    )
}

/// Waits until the events file has `batch_finished` for batch `index`.
fn wait_for_batch_finished(events: &Path, index: u64, tmux: &Tmux) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(events).unwrap_or_default();
        let done = text.lines().any(|l| {
            serde_json::from_str::<Value>(l)
                .map(|e| e["event"] == "batch_finished" && e["index"] == index)
                .unwrap_or(false)
        });
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "batch {index} did not finish; events:\n{text}\npane:\n{}",
            tmux.capture()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn all_true(fleet: &Fleet) -> PathBuf {
    let settings: Vec<(String, &str)> = fleet
        .host_names()
        .into_iter()
        .map(|h| (h, "/bin/true"))
        .collect();
    let settings: Vec<(&str, &str)> = settings.iter().map(|(h, p)| (h.as_str(), *p)).collect();
    inventory_with_puppet(fleet, &settings)
}

#[test]
fn confirm_in_a_terminal_runs_a_batch_on_yes_and_stops_on_no() {
    let fleet = Fleet::up(3);
    let inventory = all_true(&fleet);
    let events = fleet.dir.join("events.jsonl");
    let report = fleet.dir.join("report.json");
    let args = format!(
        "rollout --batch 1 --confirm --events {} --report {}",
        sh_quote(path_arg(&events)),
        sh_quote(path_arg(&report))
    );
    let tmux = Tmux::start(&in_terminal(&fleet, &inventory, &args));
    wait_for_batch_finished(&events, 0, &tmux);
    tmux.type_line("y");
    wait_for_batch_finished(&events, 1, &tmux);
    tmux.type_line("n");
    let pane = tmux.wait_for("exit", Duration::from_secs(30), |p| {
        p.contains("CAPO-EXIT=")
    });
    assert!(pane.contains("\nCAPO-EXIT=1\n"), "{pane}");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("JSON");
    let statuses: Vec<(String, String)> = report["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or("?").to_string(),
                h["status"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        pairs(&[
            ("host01", "unchanged"),
            ("host02", "unchanged"),
            ("host03", "skipped"),
        ])
    );
    assert_eq!(report["hosts"][2]["error"]["kind"], "aborted");
    assert_eq!(
        report["hosts"][2]["error"]["message"],
        "not started: batch 3 was not confirmed"
    );
    assert_eq!(report["halted"], "batch 3 was not confirmed");
    let ev = read_events(&events);
    assert_eq!(hosts_of(&ev, "host_started"), names(&["host01", "host02"]));
    let summary = pane
        .lines()
        .find(|l| l.starts_with("3 hosts: "))
        .unwrap_or_else(|| panic!("no summary line:\n{pane}"));
    assert_timed(
        summary.trim_end(),
        "3 hosts: 0 changed, 2 unchanged, 0 failed, 0 unreachable, 1 skipped in ",
        "; batch 3 was not confirmed",
    );
}

#[test]
fn the_confirm_question_stays_on_screen_under_the_progress_display() {
    let fleet = Fleet::up(2);
    let inventory = all_true(&fleet);
    let events = fleet.dir.join("events.jsonl");
    let args = format!(
        "rollout --batch 1 --confirm --events {}",
        sh_quote(path_arg(&events))
    );
    let tmux = Tmux::start(&in_terminal(&fleet, &inventory, &args));
    wait_for_batch_finished(&events, 0, &tmux);
    let question = "capo: start batch 2 (1 host: host02)? [y/N]";
    tmux.wait_for("question", Duration::from_secs(5), |p| p.contains(question));
    // ...and it stays while capo waits for the answer
    std::thread::sleep(Duration::from_millis(1000));
    let pane = tmux.capture();
    assert!(pane.contains(question), "the question went away:\n{pane}");
    assert!(!pane.contains("CAPO-EXIT="), "{pane}");
    tmux.type_line("n");
    let pane = tmux.wait_for("exit", Duration::from_secs(30), |p| {
        p.contains("CAPO-EXIT=")
    });
    assert!(pane.contains("\nCAPO-EXIT=1\n"), "{pane}");
    // nothing of the live display is left behind by the question
    assert!(
        !pane.contains("/2 hosts") && !pane.contains(['░', '█']),
        "leftover progress bar:\n{pane}"
    );
}

#[test]
fn confirm_needs_stderr_on_the_terminal_too() {
    let fleet = Fleet::up(1);
    let err = fleet.dir.join("stderr.txt");
    let args = format!("rollout --confirm 2>{}", sh_quote(path_arg(&err)));
    let tmux = Tmux::start(&in_terminal(&fleet, &fleet.inventory, &args));
    let pane = tmux.wait_for("exit", Duration::from_secs(30), |p| {
        p.contains("CAPO-EXIT=")
    });
    assert!(pane.contains("CAPO-EXIT=2\n"), "{pane}");
    assert_eq!(
        std::fs::read_to_string(&err).expect("stderr file"),
        "capo: --confirm needs a terminal (stdin and stderr); run without --confirm in CI\n"
    );
    assert!(
        !fleet.dir.join(".capo").exists(),
        "a run directory was made"
    );
}
