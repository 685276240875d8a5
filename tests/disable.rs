//! `capo disable` / `capo enable`, the maintenance switch, against a real local fleet: a
//! disabled host is left alone by a rollout (no lock taken, nothing changed), reported
//! `disabled` with the message, who and since when, and counted apart; Puppet's own switch
//! (`puppet agent --disable`) is honoured the same way; `enable` lets the next rollout in.
//! The switch lives in each host's own /srv/state (the inventory's `state_dir`), so that no
//! test touches the machine's /var/lib/capo.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::run::{self, path_arg, Run};
use crate::common::Fleet;

/// The fleet's inventory with the switch in the hosts' own state directory, and `extra`.
fn inventory(fleet: &Fleet, extra: &[(&str, &str)]) -> PathBuf {
    let mut settings = vec![("state_dir", "\"/srv/state/capo\"")];
    settings.extend_from_slice(extra);
    run::inventory_with(fleet, &settings)
}

fn capo(fleet: &Fleet, sub: &str, inventory: &Path, args: &[&str]) -> Run {
    let mut all = vec!["-i", path_arg(inventory)];
    all.extend_from_slice(args);
    run::capo(fleet, sub, &all)
}

/// A change to roll out.
fn commit_change(fleet: &Fleet, text: &str) -> String {
    fleet.commit("modules/capo_demo/files/message.txt", text, "new message")
}

#[test]
fn a_disabled_host_is_left_alone_until_enabled() {
    let fleet = Fleet::up(2);
    let inv = inventory(&fleet, &[]);
    let before = fleet.checkout_head("host01");
    let head = commit_change(&fleet, "while host01 is in maintenance\n");

    let r = capo(
        &fleet,
        "disable",
        &inv,
        &["-l", "host01", "-m", "kernel upgrade, ask alice"],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "ok"));
    let d = &r.host("host01")["disabled"];
    assert_eq!(d["source"], "capo", "{d}");
    assert_eq!(d["message"], "kernel upgrade, ask alice", "{d}");
    let by = d["by"].as_str().unwrap_or("").to_string();
    assert!(by.contains('@'), "{d}");
    let since = d["since"].as_str().unwrap_or("").to_string();
    assert!(since.len() == 20 && since.ends_with('Z'), "{d}");
    assert_eq!(
        run::on_host(&fleet, "host01", "cat /srv/state/capo/disabled"),
        format!("message=kernel upgrade, ask alice\nby={by}\nsince={since}")
    );

    // A rollout leaves host01 alone and goes on with host02; a disabled host fails nothing.
    let lock_before = run::on_host(
        &fleet,
        "host01",
        "cat /srv/puppet/.git/capo.lock 2>/dev/null; true",
    );
    let r = capo(&fleet, "rollout", &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[("host01", "disabled"), ("host02", "changed")])
    );
    assert_eq!(r.host("host01")["disabled"], *d);
    assert_eq!(r.host("host01")["error"], Value::Null);
    assert_eq!(r.host("host01")["steps"], Value::Array(vec![]));
    assert_eq!(r.report["summary"]["disabled"], 1);
    assert_eq!(fleet.checkout_head("host01"), before);
    assert_eq!(fleet.checkout_head("host02"), head);
    // No lock was taken there: the lock file still names whoever held it before, if anyone.
    assert_eq!(
        run::on_host(
            &fleet,
            "host01",
            "cat /srv/puppet/.git/capo.lock 2>/dev/null; true"
        ),
        lock_before
    );
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("host01"))
        .expect("row");
    assert!(
        row.contains("disabled by capo: kernel upgrade, ask alice ("),
        "{row}"
    );
    assert!(
        r.stdout
            .contains("1 changed, 0 unchanged, 0 failed, 0 unreachable, 1 disabled in "),
        "{}",
        r.stdout
    );
    // Under lock = false too.
    let unlocked = inventory(&fleet, &[("lock", "false")]);
    let r = capo(&fleet, "rollout", &unlocked, &["-l", "host01"]);
    assert_eq!(
        r.statuses(),
        run::all(&["host01"], "disabled"),
        "{}",
        r.dump()
    );
    assert_eq!(fleet.checkout_head("host01"), before);
    // capo check says so, and why.
    let r = capo(&fleet, "check", &inv, &[]);
    assert_eq!(
        r.statuses(),
        run::pairs(&[("host01", "disabled"), ("host02", "ok")])
    );
    assert!(
        r.stdout
            .contains("disabled:\n  disabled by capo: kernel upgrade, ask alice ("),
        "{}",
        r.stdout
    );

    // Enabled again: the next rollout brings it along.
    let r = capo(&fleet, "enable", &inv, &["-l", "host01"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "ok"));
    assert_eq!(r.host("host01").get("disabled"), None, "{}", r.dump());
    assert_eq!(run::on_host(&fleet, "host01", "ls -A /srv/state/capo"), "");
    let r = capo(&fleet, "rollout", &inv, &[]);
    assert_eq!(
        r.statuses(),
        run::pairs(&[("host01", "changed"), ("host02", "unchanged")])
    );
    assert_eq!(fleet.checkout_head("host01"), head);
}

#[test]
fn puppet_agent_disable_is_honoured_like_capo_disable() {
    let fleet = Fleet::up(1);
    let inv = inventory(&fleet, &[]);
    let before = fleet.checkout_head("host01");
    let head = commit_change(&fleet, "after the migration\n");
    // Puppet's own switch, written by Puppet where its puppet.conf says.
    run::on_host(
        &fleet,
        "host01",
        "puppet agent --disable 'db migration until 14:00'",
    );

    let r = capo(&fleet, "rollout", &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "disabled"));
    let d = &r.host("host01")["disabled"];
    assert_eq!(d["source"], "puppet", "{d}");
    assert_eq!(d["message"], "db migration until 14:00", "{d}");
    assert_eq!(d["by"], "root", "{d}");
    assert_eq!(fleet.checkout_head("host01"), before);

    // `capo enable` removes only capo's switch: Puppet's still holds, and the report says so.
    let r = capo(&fleet, "enable", &inv, &[]);
    assert_eq!(r.statuses(), run::all(&["host01"], "ok"));
    assert_eq!(r.host("host01")["disabled"]["source"], "puppet");

    run::on_host(&fleet, "host01", "puppet agent --enable");
    let r = capo(&fleet, "rollout", &inv, &[]);
    assert_eq!(
        r.statuses(),
        run::all(&["host01"], "changed"),
        "{}",
        r.dump()
    );
    assert_eq!(fleet.checkout_head("host01"), head);
}

#[test]
fn a_switch_that_cannot_be_written_fails_the_host_and_says_where() {
    let fleet = Fleet::up(1);
    let inv = run::inventory_with(&fleet, &[("state_dir", "\"/proc/capo\"")]);
    let r = capo(&fleet, "disable", &inv, &["-m", "x"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "failed"));
    assert_eq!(
        r.error("host01"),
        (
            "command".into(),
            "cannot write /proc/capo/disabled as root; set state_dir to a directory it can write, or use become".into()
        )
    );
    // And a rollout is not held up by a switch that is not there.
    let r = capo(&fleet, "rollout", &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
}

#[test]
fn a_disable_message_must_be_one_line_and_nothing_is_contacted() {
    let fleet = Fleet::up(1);
    let connections = fleet.sshd_connections("host01");
    let out = fleet
        .capo()
        .args(["disable", "-m", "two\nlines"])
        .output()
        .expect("capo runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("must be one line without control characters"),
        "{stderr}"
    );
    assert_eq!(fleet.sshd_connections("host01"), connections);
}
