//! `capo check`, the preflight, against real local fleets: how each host was reached (the
//! identity file or agent key, the host key, the jump hosts), whom capo's steps run as
//! through sudo, git's and Puppet's versions, the checkout and the lock; each thing that
//! would stop a rollout with the status and kind the rollout would end with; and nothing on
//! any host changed by looking.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::agent::Agent;
use crate::common::run::{self, path_arg, Run};
use crate::common::Fleet;

/// `capo check -i INVENTORY ARGS...` to the end.
fn check(fleet: &Fleet, inventory: &Path, args: &[&str]) -> Run {
    let mut all = vec!["-i", path_arg(inventory)];
    all.extend_from_slice(args);
    run::capo(fleet, "check", &all)
}

/// What this machine's `git --version` and `puppet --version` say: the hosts of the test
/// fleet run the same programs.
fn local_versions() -> (String, String) {
    let out = |cmd: &str, arg: &str| {
        let o = Command::new(cmd).arg(arg).output().expect(cmd);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let git = out("git", "--version");
    (
        git.trim_start_matches("git version ").to_string(),
        out("puppet", "--version"),
    )
}

/// `SHA256:...` of a key file, as `ssh-keygen -l` prints it.
fn fingerprint(key: &Path) -> String {
    let o = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key)
        .output()
        .expect("ssh-keygen");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string()
}

/// The fleet's inventory with `lines` added to host `host`'s table.
fn with_host_settings(
    fleet: &Fleet,
    inventory: &Path,
    host: &str,
    lines: &str,
) -> std::path::PathBuf {
    let text = std::fs::read_to_string(inventory).expect("inventory");
    let table = format!("[hosts.{host}]\n");
    assert!(text.contains(&table), "{text}");
    fleet.write_inventory(&text.replacen(&table, &format!("{table}{lines}\n"), 1))
}

#[test]
fn check_says_how_each_host_was_reached_and_changes_nothing() {
    let fleet = Fleet::up(2);
    // A rollout first, so the lock's files exist and the look at them is a real one.
    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let before: Vec<String> = ["host01", "host02"]
        .iter()
        .map(|h| run::host_snapshot(&fleet, h, &[]))
        .collect();

    let r = check(&fleet, &fleet.inventory, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01", "host02"], "ok"));
    assert_eq!(r.report["mode"], "check");
    let (git, puppet) = local_versions();
    for (i, host) in ["host01", "host02"].iter().enumerate() {
        let c = &r.host(host)["check"];
        assert_eq!(c["user"], "root", "{c}");
        assert_eq!(c["jump"], Value::Array(vec![]), "{c}");
        assert_eq!(c["identity"]["source"], "file", "{c}");
        assert!(
            c["identity"]["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("keys/client_ed25519")),
            "{c}"
        );
        assert_eq!(
            c["identity"]["fingerprint"],
            fingerprint(&fleet.client_key())
        );
        assert_eq!(c["host_key"]["type"], "ssh-ed25519", "{c}");
        assert_eq!(c["host_key"]["trust"], "known_hosts", "{c}");
        assert_eq!(c["become"], Value::Null, "{c}");
        assert_eq!(c["runs_as"], "root", "{c}");
        assert_eq!(c["git"], git.as_str(), "{c}");
        assert_eq!(c["puppet"], puppet.as_str(), "{c}");
        assert_eq!(c["repo"]["dir"], "/srv/puppet", "{c}");
        assert_eq!(c["repo"]["state"], "checkout", "{c}");
        assert_eq!(c["repo"]["head"], fleet.checkout_head(host).as_str(), "{c}");
        assert_eq!(c["repo"]["branch"], "main", "{c}");
        assert_eq!(c["puppetfile"], Value::Null, "{c}");
        assert_eq!(c["lock"]["state"], "free", "{c}");
        assert_eq!(c["lock"]["holder"], Value::Null, "{c}");
        assert_eq!(run::step_names(&r, host), ["check"]);
        assert_eq!(
            run::host_snapshot(&fleet, host, &[]),
            before[i],
            "{host} changed"
        );
    }
    // The table: one row per host and the fleet's versions in one line; every host direct
    // and without become, so no VIA or RUNS AS column.
    let header = r.stdout.lines().nth(1).unwrap_or("");
    for column in ["HOST", "STATUS", "LOGIN", "GIT/PUPPET", "CHECKOUT", "LOCK"] {
        assert!(header.contains(column), "{column} not in {header}");
    }
    assert!(
        !header.contains("VIA") && !header.contains("RUNS AS"),
        "{header}"
    );
    for host in ["host01", "host02"] {
        let row = r
            .stdout
            .lines()
            .find(|l| l.contains(host))
            .unwrap_or_else(|| panic!("no row for {host}:\n{}", r.stdout));
        let versions = format!("{git}/{puppet}");
        for cell in ["ok", "root (key client_ed25519)", "free", &versions] {
            assert!(row.contains(cell), "{cell:?} not in {row:?}");
        }
    }
    assert!(
        r.stdout.contains(&format!(
            "git: {git} on 2 hosts; puppet: {puppet} on 2 hosts\n"
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("2 hosts: 2 ok, 0 failed, 0 unreachable in "),
        "{}",
        r.stdout
    );

    // --format json prints the same report on stdout.
    let r = check(&fleet, &fleet.inventory, &["--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let printed: Value = serde_json::from_str(&r.stdout).expect("stdout is JSON");
    assert_eq!(printed["hosts"][0]["check"]["lock"]["state"], "free");
    assert_eq!(printed["summary"]["ok"], 2);
}

#[test]
fn check_fails_a_locked_host_naming_the_holder_and_leaves_the_lock_alone() {
    let fleet = Fleet::up(2);
    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    // Someone holds host01's lock by hand, as lock.sh would: until stdin closes.
    let mut holder = fleet.hold_lock("host01", "ops, by hand");

    let r = check(&fleet, &fleet.inventory, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[("host01", "failed"), ("host02", "ok")])
    );
    assert_eq!(
        r.error("host01"),
        ("locked".into(), "host is locked by ops, by hand".into())
    );
    let lock = &r.host("host01")["check"]["lock"];
    assert_eq!(lock["state"], "held", "{lock}");
    assert_eq!(lock["holder"], "ops, by hand", "{lock}");
    assert_eq!(r.host("host02")["check"]["lock"]["state"], "free");
    assert!(
        r.stdout
            .contains("locked: host is locked by ops, by hand on host01 (1 host)"),
        "{}",
        r.stdout
    );

    // The look did not take the lock from its holder: a rollout still finds it held.
    let r = run::rollout(&fleet, &["-l", "host01"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.error("host01"),
        ("locked".into(), "host is locked by ops, by hand".into())
    );
    // Let go: free again.
    drop(holder.stdin.take());
    holder.wait().expect("holder ends");
    let r = check(&fleet, &fleet.inventory, &["-l", "host01"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.host("host01")["check"]["lock"]["state"], "free");
}

#[test]
fn check_reports_what_would_stop_a_rollout_host_by_host() {
    let fleet = Fleet::up(4);
    let inventory = with_host_settings(
        &fleet,
        &fleet.inventory,
        "host01",
        "repo_dir = \"/srv/nothing-here\"",
    );
    let inventory = with_host_settings(&fleet, &inventory, "host02", "puppet = \"no-such-puppet\"");
    let inventory = with_host_settings(&fleet, &inventory, "host03", "repo_dir = \"/etc\"");
    fleet.stop("host04");

    let r = check(&fleet, &inventory, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[
            ("host01", "failed"),
            ("host02", "failed"),
            ("host03", "failed"),
            ("host04", "unreachable"),
        ])
    );
    assert_eq!(
        r.error("host01"),
        (
            "sync".into(),
            "repo_dir /srv/nothing-here does not exist on the host; clone the control repo there (git clone URL /srv/nothing-here)".into()
        )
    );
    assert_eq!(r.host("host01")["check"]["repo"]["state"], "missing");
    let (kind, message) = r.error("host02");
    assert_eq!(kind, "puppet");
    assert!(
        message.starts_with("no-such-puppet not found on host (PATH=")
            && message.ends_with("); install Puppet or set `puppet` in the inventory"),
        "{message}"
    );
    assert_eq!(r.host("host02")["check"]["puppet"], Value::Null);
    assert_eq!(r.host("host02")["check"]["repo"]["state"], "checkout");
    let (kind, message) = r.error("host03");
    assert_eq!(kind, "sync");
    assert!(
        message.starts_with(
            "repo_dir /etc is not a git checkout; remove it and clone the control repo there (fatal: not a git repository"
        ),
        "{message}"
    );
    assert_eq!(r.host("host03")["check"]["repo"]["state"], "not_a_checkout");
    // Unreachable: the report still says how capo tried, and nothing more.
    let (kind, _) = r.error("host04");
    assert_eq!(kind, "connect");
    let c = &r.host("host04")["check"];
    assert_eq!(c["user"], "root", "{c}");
    assert_eq!(c["identity"], Value::Null, "{c}");
    assert_eq!(c["repo"], Value::Null, "{c}");
    assert!(
        r.stdout.contains("4 hosts: 0 ok, 3 failed, 1 unreachable"),
        "{}",
        r.stdout
    );
    // What a rollout says about host01 and host03 is what check said.
    let rollout = run::rollout(&fleet, &["-i", path_arg(&inventory), "-l", "host01,host03"]);
    assert_eq!(rollout.error("host01"), r.error("host01"));
    assert_eq!(rollout.error("host03").0, "sync");
}

#[test]
fn check_through_a_bastion_as_a_deploy_user_with_an_agent_key_and_sudo() {
    let fleet = Fleet::up_with(2, &["--bastion", "--user", "deploy:/bin/sh"]);
    let agent = Agent::start(&fleet.dir.join("agent.sock"), &[]);
    agent.add(&[path_arg(&fleet.client_key())]);
    let missing = fleet.dir.join("keys/missing");
    let inventory = run::inventory_with(
        &fleet,
        &[
            ("user", "\"deploy\""),
            ("become", "\"sudo\""),
            ("identity_files", &format!("[\"{}\"]", missing.display())),
            ("identity_agent", &format!("\"{}\"", agent.sock.display())),
        ],
    );
    let r = check(&fleet, &inventory, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let (addr, port) = fleet.bastion();
    let comment = std::fs::read_to_string(fleet.dir.join("keys/client_ed25519.pub"))
        .expect("public key")
        .split_whitespace()
        .nth(2)
        .unwrap_or("")
        .to_string();
    for host in ["host01", "host02"] {
        let c = &r.host(host)["check"];
        assert_eq!(c["user"], "deploy", "{c}");
        assert_eq!(
            c["jump"],
            serde_json::json!([format!("root@{addr}:{port}")]),
            "{c}"
        );
        assert_eq!(c["identity"]["source"], "agent", "{c}");
        assert_eq!(
            c["identity"]["path"],
            agent.sock.display().to_string(),
            "{c}"
        );
        assert_eq!(c["identity"]["comment"], comment.as_str(), "{c}");
        assert_eq!(
            c["identity"]["fingerprint"],
            fingerprint(&fleet.client_key())
        );
        assert_eq!(
            c["become"],
            serde_json::json!({"method": "sudo", "user": "root", "works": true}),
            "{c}"
        );
        assert_eq!(c["runs_as"], "root", "{c}");
        assert_eq!(c["repo"]["state"], "checkout", "{c}");
    }
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("host01"))
        .expect("row");
    for cell in [
        "deploy (agent: ",
        &format!("root@{addr}:{port}"),
        "root (sudo)",
    ] {
        assert!(row.contains(cell), "{cell:?} not in {row:?}");
    }
}

#[test]
fn check_fails_a_host_whose_sudo_wants_a_password_as_auth() {
    let fleet = Fleet::up_with_sudo_password(1, "deploy:/bin/sh", "Check-pw-3a9d");
    let inventory = run::inventory_with(&fleet, &[("user", "\"deploy\""), ("become", "\"sudo\"")]);
    let r = check(&fleet, &inventory, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "failed"));
    assert_eq!(
        r.error("host01"),
        (
            "auth".into(),
            "sudo requires a password for deploy (use --ask-become-pass or NOPASSWD)".into()
        )
    );
    let c = &r.host("host01")["check"];
    assert_eq!(c["identity"]["source"], "file", "{c}");
    assert_eq!(c["become"]["works"], false, "{c}");
    assert_eq!(c["runs_as"], Value::Null, "{c}");
    assert_eq!(c["repo"], Value::Null, "{c}");
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("host01"))
        .expect("row");
    assert!(row.contains("sudo refused"), "{row}");
}
