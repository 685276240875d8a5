//! `capo rollout` against a real local fleet: OpenSSH sshd per host, real git, real Puppet.
//! Needs root (the fleet uses unshare and bind mounts); see tests/fleet/README.md.

use std::path::Path;
use std::process::Output;

use crate::common::run::statuses_of as statuses;
use crate::common::run::{self, all};
use crate::common::Fleet;
use serde_json::Value;

/// Runs `capo rollout` with a JSON report and returns (exit code, report, stdout, stderr).
fn rollout(fleet: &Fleet, extra: &[&str]) -> (i32, Value, String, String) {
    let r = run::rollout(fleet, extra);
    (r.code, r.report, r.stdout, r.stderr)
}

fn host<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["hosts"]
        .as_array()
        .and_then(|hosts| hosts.iter().find(|h| h["name"] == name))
        .unwrap_or_else(|| panic!("{name} missing from report: {report:#}"))
}

fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn first_rollout_changes_every_host_and_the_second_changes_nothing() {
    let fleet = Fleet::up(5);
    let head = fleet.origin_head();
    let names = ["host01", "host02", "host03", "host04", "host05"];

    let (code, report, stdout, stderr) = rollout(&fleet, &[]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(statuses(&report), all(&names, "changed"));
    assert_eq!(report["schema"], "capo.report/v1");
    assert_eq!(report["mode"], "rollout");
    assert_eq!(report["summary"]["total"], 5);
    assert_eq!(report["summary"]["changed"], 5);
    for name in names {
        let h = host(&report, name);
        assert_eq!(h["rev_after"], head.as_str(), "{name}");
        assert_eq!(h["rev_before"], head.as_str(), "{name}");
        assert!(h["error"].is_null());
        let steps: Vec<&str> = h["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| s["name"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(steps, ["sync", "apply"]);
        assert_eq!(h["steps"][1]["exit_code"], 2);
        // The full output is on disk where the report says.
        let log_dir = Path::new(h["log_dir"].as_str().expect("log_dir"));
        let log_dir = if log_dir.is_absolute() {
            log_dir.to_path_buf()
        } else {
            fleet.dir.join(log_dir)
        };
        let apply_log = std::fs::read_to_string(log_dir.join("apply.stdout"))
            .unwrap_or_else(|e| panic!("{}: {e}", log_dir.display()));
        // Puppet's results came back on the apply step's channel: read into the report,
        // kept out of the step's log, and their directory on the host removed.
        assert_eq!(h["puppet"]["exit_code"], 2, "{h}");
        assert!(
            h["puppet"]["resources"]["changed"].as_u64() > Some(0),
            "{h}"
        );
        assert!(h["puppet"]["unreadable"].is_null(), "{h}");
        assert!(
            h["puppet"]["events"]
                .as_array()
                .is_some_and(|e| !e.is_empty()),
            "the report's events: {h}"
        );
        assert!(
            !apply_log.contains("::capo:results-begin=")
                && !apply_log.contains("::capo:eof=")
                && !apply_log.contains("Puppet::Transaction::Report"),
            "{name}: the results are in apply.stdout:\n{apply_log}"
        );
        assert!(apply_log.contains("Notice: Applied catalog"), "{apply_log}");
        let results = apply_log
            .lines()
            .find_map(|l| l.strip_prefix("::capo:results="))
            .unwrap_or_else(|| panic!("{name}: no results marker in\n{apply_log}"));
        assert!(results.starts_with("/tmp/capo-run."), "{results}");
        assert!(
            !Path::new(results).exists(),
            "{name}: {results} was left behind"
        );
        assert!(fleet.managed_path(name, "motd").is_file(), "{name} motd");
    }
    assert!(stdout.contains("5 hosts: 5 changed, 0 unchanged, 0 failed, 0 unreachable"));

    let (code, report, stdout, _) = rollout(&fleet, &[]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(statuses(&report), all(&names, "unchanged"));
    assert!(stdout.contains("5 hosts: 0 changed, 5 unchanged, 0 failed, 0 unreachable"));
}

#[test]
fn a_new_commit_on_origin_reaches_every_host() {
    let fleet = Fleet::up(3);
    let names = ["host01", "host02", "host03"];
    let old = fleet.origin_head();
    let (code, ..) = rollout(&fleet, &[]);
    assert_eq!(code, 0);

    let new = fleet.commit(
        "modules/capo_demo/files/message.txt",
        "second release\n",
        "Change the banner",
    );
    assert_ne!(old, new);
    let (code, report, stdout, _) = rollout(&fleet, &[]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(statuses(&report), all(&names, "changed"));
    for name in names {
        let h = host(&report, name);
        assert_eq!(h["rev_before"], old.as_str());
        assert_eq!(h["rev_after"], new.as_str());
        assert_eq!(fleet.checkout_head(name), new);
    }
    let short = |r: &str| r[..7].to_string();
    assert!(
        stdout.contains(&format!("{} -> {}", short(&old), short(&new))),
        "{stdout}"
    );
}

#[test]
fn a_manifest_syntax_error_fails_every_host_as_puppet() {
    let fleet = Fleet::up(3);
    let bad = fleet.commit(
        "manifests/site.pp",
        "node default {\n  file { '/srv/managed/x': ensure => file,\n",
        "Break the manifest",
    );
    let (code, report, stdout, _) = rollout(&fleet, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        statuses(&report),
        all(&["host01", "host02", "host03"], "failed")
    );
    for h in report["hosts"].as_array().expect("hosts") {
        assert_eq!(h["error"]["kind"], "puppet");
        let message = h["error"]["message"].as_str().expect("message");
        assert!(
            message.starts_with("puppet apply failed (exit 1): Error: Could not parse"),
            "{message}"
        );
        assert_eq!(
            h["rev_after"],
            bad.as_str(),
            "sync still moved the checkout"
        );
        assert_eq!(h["steps"][1]["exit_code"], 1);
    }
    assert!(stdout.contains("3 hosts: 0 changed, 0 unchanged, 3 failed, 0 unreachable"));
}

#[test]
fn a_host_with_sshd_stopped_is_unreachable_and_the_others_succeed() {
    let fleet = Fleet::up(3);
    fleet.stop("host02");
    let (code, report, stdout, _) = rollout(&fleet, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        statuses(&report),
        vec![
            ("host01".into(), "changed".into()),
            ("host02".into(), "unreachable".into()),
            ("host03".into(), "changed".into()),
        ]
    );
    let h = host(&report, "host02");
    assert_eq!(h["error"]["kind"], "connect");
    let port = fleet.host("host02").port;
    assert_eq!(
        h["error"]["message"],
        format!("connection refused (127.0.0.1:{port}) (3 attempts)"),
        "connect_retries defaults to 2"
    );
    assert_eq!(h["steps"].as_array().map(Vec::len), Some(0));
    assert!(stdout.contains("3 hosts: 2 changed, 0 unchanged, 0 failed, 1 unreachable"));
}

#[test]
fn a_changed_host_key_leaves_the_host_untouched() {
    let fleet = Fleet::up(3);
    let old = fleet.origin_head();
    fleet.rekey("host02");
    let new = fleet.commit("modules/capo_demo/files/message.txt", "v2\n", "v2");
    let (code, report, stdout, _) = rollout(&fleet, &[]);
    assert_eq!(code, 1, "{stdout}");
    let h = host(&report, "host02");
    assert_eq!(h["status"], "unreachable");
    assert_eq!(h["error"]["kind"], "host_key");
    let message = h["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("HOST KEY CHANGED for [127.0.0.1]:"),
        "{message}"
    );
    // Nothing ran there: the checkout did not move and Puppet never wrote its files.
    assert_eq!(fleet.checkout_head("host02"), old);
    assert!(!fleet.managed_path("host02", "motd").exists());
    assert_eq!(fleet.checkout_head("host01"), new);
    assert_eq!(host(&report, "host01")["status"], "changed");
}

#[test]
fn a_repo_dir_with_a_space_and_a_quote_works() {
    let fleet = Fleet::up(2);
    let odd = "/srv/it's a repo;x";
    for name in ["host01", "host02"] {
        let out = fleet.host_exec(
            name,
            &format!(
                "git clone -q {} \"{odd}\"",
                fleet.dir.join("origin.git").display()
            ),
        );
        succeeded(&out);
    }
    let inventory = std::fs::read_to_string(&fleet.inventory).expect("inventory");
    let inventory = inventory.replace("repo_dir = \"/srv/puppet\"", &format!("repo_dir = {odd:?}"));
    let path = fleet.write_inventory(&inventory);
    let (code, report, stdout, stderr) = rollout(&fleet, &["-i", path.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(statuses(&report), all(&["host01", "host02"], "changed"));
    let head = fleet.origin_head();
    assert_eq!(host(&report, "host01")["rev_after"], head.as_str());
}

#[test]
fn a_branch_with_shell_syntax_is_a_git_error_and_runs_nothing() {
    let fleet = Fleet::up(2);
    let marker = fleet.dir.join("pwned");
    let branch = format!("main;touch {}", marker.display());
    let inventory = std::fs::read_to_string(&fleet.inventory).expect("inventory");
    let inventory = inventory.replace("branch = \"main\"", &format!("branch = {branch:?}"));
    let path = fleet.write_inventory(&inventory);
    let (code, report, stdout, _) = rollout(&fleet, &["-i", path.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(statuses(&report), all(&["host01", "host02"], "failed"));
    for h in report["hosts"].as_array().expect("hosts") {
        assert_eq!(h["error"]["kind"], "sync");
        // git words it "couldn't find remote ref" or "invalid refspec" depending on its version.
        let message = h["error"]["message"].as_str().expect("message");
        let prefix = format!("git pull --ff-only origin {branch} failed: fatal: ");
        let git_said = message
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{message}"));
        assert!(
            git_said == format!("invalid refspec '{branch}'")
                || git_said == format!("couldn't find remote ref {branch}"),
            "{message}"
        );
        // A failed sync means apply never ran.
        assert_eq!(h["steps"].as_array().map(Vec::len), Some(1));
    }
    assert!(!marker.exists(), "the branch name ran as a command");
}

#[test]
fn limit_selects_a_group_minus_a_host() {
    let fleet = Fleet::up(5);
    let (code, report, stdout, _) = rollout(&fleet, &["-l", "web,!host02"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(statuses(&report), all(&["host01", "host03"], "changed"));
    assert_eq!(report["limit"], "web,!host02");
    assert!(!fleet.managed_path("host02", "motd").exists());
    assert!(!fleet.managed_path("host05", "motd").exists());
}
