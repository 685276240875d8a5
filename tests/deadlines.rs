//! Deadlines against a real local fleet: connect_timeout (frozen sshd, a port that never
//! speaks), command_timeout (and nothing left running on the host), keepalives on a connection
//! that goes silent mid-command, and connect_retries (which failures are retried, which not).
//! Needs root (the fleet uses unshare and bind mounts); see tests/fleet/README.md.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::run::path_arg;
use crate::common::run::{self, all, Run};
use crate::common::Fleet;

/// An apply that takes 30 s (an `exec` always runs).
const SLOW_MANIFEST: &str = "node default { exec { 'slow': command => '/bin/sleep 30' } }";

/// `capo rollout -i INVENTORY EXTRA...`, to the end.
fn rollout_with(fleet: &Fleet, inventory: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["-i", path_arg(inventory)];
    args.extend_from_slice(extra);
    run::rollout(fleet, &args)
}

fn duration_ms(run: &Run, name: &str) -> u64 {
    run.host(name)["duration_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} has no duration_ms:\n{}", run.dump()))
}

/// Rewrites the inventory at `path` (an alternative inventory in the fleet dir) with `edit`
/// and returns the path of the new file.
fn edit_inventory(fleet: &Fleet, path: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(path).expect("read inventory");
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the inventory edit changed nothing:\n{text}");
    fleet.write_inventory(&edited)
}

/// Adds `line` right after the `[hosts.NAME]` header.
fn with_host_line(text: String, name: &str, line: &str) -> String {
    let header = format!("[hosts.{name}]\n");
    assert!(text.contains(&header), "no {header:?} in:\n{text}");
    text.replacen(&header, &format!("{header}{line}\n"), 1)
}

#[test]
fn a_frozen_sshd_times_out_while_exchanging_keys() {
    let fleet = Fleet::up(3);
    fleet.freeze("host02");
    let inventory = run::inventory_with(
        &fleet,
        &[("connect_timeout", "\"2s\""), ("connect_retries", "0")],
    );
    let r = rollout_with(&fleet, &inventory, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[
            ("host01", "changed"),
            ("host02", "unreachable"),
            ("host03", "changed"),
        ]),
        "{}",
        r.dump()
    );
    assert_eq!(
        r.error("host02"),
        (
            "connect".to_string(),
            "timed out after 2s while exchanging keys".to_string()
        ),
        "{}",
        r.dump()
    );
    let took = duration_ms(&r, "host02");
    assert!(
        (2000..4000).contains(&took),
        "host02 took {took} ms for a 2s connect_timeout and no retries\n{}",
        r.dump()
    );
    assert_eq!(r.host("host02")["steps"].as_array().map(Vec::len), Some(0));
    assert_eq!(r.report["summary"]["total"], 3);
    assert_eq!(r.report["summary"]["unreachable"], 1);
    assert!(
        r.stdout
            .contains("3 hosts: 2 changed, 0 unchanged, 0 failed, 1 unreachable"),
        "{}",
        r.dump()
    );
    fleet.thaw("host02");
}

#[test]
fn a_port_that_accepts_and_never_speaks_times_out_while_exchanging_keys() {
    let fleet = Fleet::up(2);
    // Never accepted: the kernel completes the TCP handshake into the backlog, nothing answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind a silent port");
    let silent_port = silent.local_addr().expect("local addr").port();
    let inventory = run::inventory_with(
        &fleet,
        &[("connect_timeout", "\"2s\""), ("connect_retries", "0")],
    );
    let real_port = fleet.host("host01").port;
    let inventory = edit_inventory(&fleet, &inventory, |text| {
        let old = format!("[hosts.host01]\naddress = \"127.0.0.1\"\nport = {real_port}\n");
        assert!(text.contains(&old), "no {old:?} in:\n{text}");
        text.replacen(
            &old,
            &format!("[hosts.host01]\naddress = \"127.0.0.1\"\nport = {silent_port}\n"),
            1,
        )
    });

    let started = Instant::now();
    let r = rollout_with(&fleet, &inventory, &[]);
    let wall = started.elapsed();
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[("host01", "unreachable"), ("host02", "changed")]),
        "{}",
        r.dump()
    );
    assert_eq!(
        r.error("host01"),
        (
            "connect".to_string(),
            "timed out after 2s while exchanging keys".to_string()
        ),
        "{}",
        r.dump()
    );
    assert_eq!(r.host("host01")["port"], silent_port);
    let took = duration_ms(&r, "host01");
    assert!(
        (2000..4000).contains(&took),
        "host01 took {took} ms for a 2s connect_timeout and no retries\n{}",
        r.dump()
    );
    // host02's Puppet run is the long pole; the silent port must not add to it much.
    assert!(wall < Duration::from_secs(30), "rollout took {wall:?}");
    drop(silent);
}

#[test]
fn command_timeout_fails_every_host_and_stops_the_step_on_the_host() {
    let fleet = Fleet::up(2);
    let names = ["host01", "host02"];
    fleet.commit("manifests/site.pp", SLOW_MANIFEST, "slow");
    let inventory = run::inventory_with(&fleet, &[("command_timeout", "\"3s\"")]);
    let r = rollout_with(&fleet, &inventory, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), all(&names, "failed"), "{}", r.dump());
    for name in names {
        assert_eq!(
            r.error(name),
            (
                "timeout".to_string(),
                "apply timed out after 3s (command_timeout); stopped on the host".to_string()
            ),
            "{name}\n{}",
            r.dump()
        );
        let h = r.host(name);
        let steps: Vec<&str> = h["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| s["name"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(steps, ["sync", "apply"], "{name}");
        assert_eq!(h["steps"][0]["exit_code"], 0, "{name}: sync");
        assert!(
            h["steps"][1]["exit_code"].is_null(),
            "{name}: apply exit_code {}",
            h["steps"][1]["exit_code"]
        );
        let took = duration_ms(&r, name);
        assert!(
            (3000..15000).contains(&took),
            "{name} took {took} ms with a 3s command_timeout\n{}",
            r.dump()
        );
        // Stopped before it could send Puppet's results, the step left them on the host:
        // capo read them with collect.sh, which removed them.
        let log = r.log_dir(&fleet, name).join("apply.stdout");
        let apply_log =
            std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        assert!(
            !apply_log.contains("::capo:results-begin="),
            "{name}: {apply_log}"
        );
        let results = apply_log
            .lines()
            .find_map(|l| l.strip_prefix("::capo:results="))
            .unwrap_or_else(|| panic!("{name}: no results marker in\n{apply_log}"));
        assert!(results.starts_with("/tmp/capo-run."), "{results}");
        assert!(
            !std::path::Path::new(results).exists(),
            "{name}: {results} was left behind"
        );
        assert_eq!(h["puppet"]["exit_code"], serde_json::Value::Null, "{name}");
    }
    assert!(
        r.stdout
            .contains("2 hosts: 0 changed, 0 unchanged, 2 failed, 0 unreachable"),
        "{}",
        r.dump()
    );
    for name in names {
        run::assert_nothing_left(&fleet, name);
    }
}

#[test]
fn a_connection_that_goes_silent_mid_apply_is_lost_after_missed_keepalives() {
    let fleet = Fleet::up(1);
    fleet.commit("manifests/site.pp", SLOW_MANIFEST, "slow");
    let inventory = run::inventory_with(
        &fleet,
        &[("keepalive_interval", "\"1s\""), ("keepalive_count", "2")],
    );
    let (child, report) = run::spawn_rollout(&fleet, &["-i", path_arg(&inventory)]);
    // Puppet's exec runs `/bin/sleep 30` itself (no shell), so its whole command line is
    // that. Anchored: every step (sync too) runs under wrap.sh's timer, `sleep 300.000` with
    // the fleet's 5m command_timeout, which an unanchored `sleep 30` matches during sync.
    let running = fleet.wait_for_proc("host01", "^/bin/sleep 30$", Duration::from_secs(30));
    if !running {
        let (r, _) = run::wait_within(child, &report, Duration::from_secs(60));
        panic!("the slow apply never started on host01\n{}", r.dump());
    }
    fleet.freeze_all("host01");
    // Expected after about keepalive_interval x (keepalive_count + 1) = 3 s.
    let (r, took) = run::wait_within(child, &report, Duration::from_secs(60));
    fleet.thaw("host01");
    assert!(
        took < Duration::from_secs(10),
        "capo noticed the silent connection only {took:?} after the freeze\n{}",
        r.dump()
    );
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), all(&["host01"], "failed"), "{}", r.dump());
    assert_eq!(
        r.error("host01"),
        (
            "connect".to_string(),
            "apply: connection lost while running command (no reply to keepalives)".to_string()
        ),
        "{}",
        r.dump()
    );
    assert!(r.host("host01")["steps"][1]["exit_code"].is_null());
}

#[test]
fn a_later_connect_attempt_reaches_a_host_that_came_back() {
    let fleet = Fleet::up(2);
    fleet.stop("host02");
    // Up to six attempts, at about 0 s, 1 s, 3 s, 7 s, 15 s and 31 s: the first one is refused,
    // and a restart that takes long on a loaded machine is still caught by a later one.
    let inventory = run::inventory_with(&fleet, &[("connect_retries", "5")]);
    let (child, report) = run::spawn_rollout(&fleet, &["-i", path_arg(&inventory)]);
    std::thread::sleep(Duration::from_millis(1500));
    fleet.start("host02");
    let (r, _) = run::wait_within(child, &report, Duration::from_secs(120));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        all(&["host01", "host02"], "changed"),
        "{}",
        r.dump()
    );
    assert!(r.host("host02")["error"].is_null(), "{}", r.dump());
    // The report says that it took more than one attempt (the first is refused; the second
    // comes 1-1.5 s in, about when the host is back, or a later one on a loaded machine where
    // the restart takes longer), and that host01 took one.
    let attempts = r.host("host02")["connect_attempts"].as_u64();
    assert!(
        matches!(attempts, Some(2..=6)),
        "host02 connect_attempts {attempts:?}\n{}",
        r.dump()
    );
    assert_eq!(r.host("host01")["connect_attempts"], 1, "{}", r.dump());
    // It waited out at least the first backoff (1 s) before an attempt got through.
    let took = duration_ms(&r, "host02");
    assert!(took >= 1000, "host02 took only {took} ms\n{}", r.dump());
    assert_eq!(fleet.checkout_head("host02"), fleet.origin_head());
}

#[test]
fn with_no_retries_a_refused_connection_is_reported_once() {
    let fleet = Fleet::up(2);
    fleet.stop("host02");
    let inventory = run::inventory_with(&fleet, &[("connect_retries", "0")]);
    let r = rollout_with(&fleet, &inventory, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[("host01", "changed"), ("host02", "unreachable")]),
        "{}",
        r.dump()
    );
    let port = fleet.host("host02").port;
    assert_eq!(
        r.error("host02"),
        (
            "connect".to_string(),
            format!("connection refused (127.0.0.1:{port})")
        ),
        "{}",
        r.dump()
    );
    // No backoff was waited out.
    let took = duration_ms(&r, "host02");
    assert!(took < 1000, "host02 took {took} ms\n{}", r.dump());
}

#[test]
fn an_auth_failure_is_not_retried() {
    let fleet = Fleet::up(2);
    let key = fleet.dir.join("keys/stranger_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .expect("run ssh-keygen");
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    // connect_retries keeps its default (2), so a retry would be allowed for connect failures.
    let inventory = edit_inventory(&fleet, &fleet.inventory, |text| {
        assert!(!text.contains("connect_retries"), "{text}");
        with_host_line(
            text,
            "host02",
            &format!("identity_files = [{:?}]", path_arg(&key)),
        )
    });
    let r = rollout_with(&fleet, &inventory, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[("host01", "changed"), ("host02", "unreachable")]),
        "{}",
        r.dump()
    );
    let (kind, message) = r.error("host02");
    assert_eq!(kind, "auth", "{message}\n{}", r.dump());
    assert!(
        message.starts_with("authentication refused for user root (tried: "),
        "{message}"
    );
    assert!(
        message.contains(path_arg(&key)),
        "the message names the key that was tried: {message}"
    );
    assert!(
        !message.ends_with(" attempts)"),
        "an auth failure was retried: {message}"
    );
    let took = duration_ms(&r, "host02");
    assert!(took < 1000, "host02 took {took} ms\n{}", r.dump());
}
