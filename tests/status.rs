//! `capo status` against a real local fleet: each host's state in triage order from what is
//! on the host (the run record rollouts leave, the checkout against its remote branch, the
//! lock, the maintenance switch), the exit status a drift alarm relies on, the flat JSON
//! document, and nothing on the host changed by looking.

use std::path::Path;

use serde_json::Value;

use crate::common::run::{self, path_arg, Run};
use crate::common::Fleet;

fn status(fleet: &Fleet, inventory: &Path, args: &[&str]) -> Run {
    let mut all = vec!["-i", path_arg(inventory)];
    all.extend_from_slice(args);
    run::capo(fleet, "status", &all)
}

/// `host_state` of `name` in a status run's report.
fn state(r: &Run, name: &str) -> Value {
    r.host(name)["host_state"].clone()
}

/// The hosts' states, in inventory order.
fn states(r: &Run) -> Vec<(String, String)> {
    r.report["hosts"]
        .as_array()
        .map(|hosts| {
            hosts
                .iter()
                .map(|h| {
                    (
                        h["name"].as_str().unwrap_or("").to_string(),
                        h["host_state"]["state"].as_str().unwrap_or("-").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn status_shows_where_each_host_stands_and_changes_nothing() {
    let fleet = Fleet::up(3);
    let inv = fleet.inventory.clone();
    let names = ["host01", "host02", "host03"];

    // Nothing ever ran: never, and the alarm goes off.
    let r = status(&fleet, &inv, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&names, "ok"));
    assert_eq!(states(&r), run::all(&names, "never"));

    // A rollout: each host's record says changed, by this push.
    let push = run::rollout(&fleet, &[]);
    assert_eq!(push.code, 0, "{}", push.dump());
    let run_id = push.report["run_id"].as_str().unwrap_or("").to_string();
    let r = status(&fleet, &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(states(&r), run::all(&names, "changed"));
    let head = fleet.checkout_head("host01");
    let s = state(&r, "host01");
    assert_eq!(s["head"], head.as_str(), "{s}");
    assert_eq!(s["branch"], "main", "{s}");
    assert_eq!(s["behind"], 0, "{s}");
    assert_eq!(s["last_run"]["source"], "push", "{s}");
    assert_eq!(s["last_run"]["status"], "changed", "{s}");
    assert_eq!(s["last_run"]["run_id"], run_id.as_str(), "{s}");
    assert_eq!(s["last_run"]["rev"], head.as_str(), "{s}");
    assert_eq!(
        s["lock"],
        serde_json::json!({"held": false, "holder": null}),
        "{s}"
    );
    assert_eq!(s["pull"]["installed"], false, "{s}");
    assert!(s["age_s"].as_u64().is_some_and(|a| a < 600), "{s}");
    assert!(
        r.stdout.contains("revisions: 3 at ") && r.stdout.contains("(converged)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("3 hosts: 0 ok, 3 changed, 0 unreachable in "),
        "{}",
        r.stdout
    );

    // Again: unchanged is ok. Looking changes nothing on the host.
    let again = run::rollout(&fleet, &[]);
    assert_eq!(again.code, 0, "{}", again.dump());
    let before: Vec<String> = names
        .iter()
        .map(|h| run::host_snapshot(&fleet, h, &["/var/lib/capo"]))
        .collect();
    let r = status(&fleet, &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(states(&r), run::all(&names, "ok"));
    for (i, h) in names.iter().enumerate() {
        assert_eq!(
            run::host_snapshot(&fleet, h, &["/var/lib/capo"]),
            before[i],
            "{h} changed"
        );
    }

    // A new commit on the remote: hosts only know with --fetch; then they are behind.
    fleet.commit(
        "modules/capo_demo/files/message.txt",
        "not rolled out yet\n",
        "new message",
    );
    let r = status(&fleet, &inv, &[]);
    assert_eq!(states(&r), run::all(&names, "ok"));
    let r = status(&fleet, &inv, &["--fetch", "--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    let doc: Value = serde_json::from_str(&r.stdout).expect("stdout is JSON");
    assert_eq!(doc["schema"], "capo.status/v1");
    assert_eq!(doc["summary"], serde_json::json!({"behind": 3}));
    for (i, h) in names.iter().enumerate() {
        assert_eq!(doc["hosts"][i]["name"], *h);
        assert_eq!(doc["hosts"][i]["state"], "behind");
        assert_eq!(doc["hosts"][i]["behind"], 1);
        assert_eq!(doc["hosts"][i]["last_run"]["status"], "unchanged");
    }
    assert_eq!(
        fleet.checkout_head("host01"),
        head,
        "--fetch moved the checkout"
    );

    // host02 disabled, host03's lock held by someone, host01 stale by a short threshold.
    let d = run::capo(&fleet, "disable", &["-l", "host02", "-m", "disk swap"]);
    assert_eq!(d.code, 0, "{}", d.dump());
    let mut holder = fleet.hold_lock("host03", "ops, by hand");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let r = status(&fleet, &inv, &["--stale-after", "1s"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        states(&r),
        run::pairs(&[
            ("host01", "stale"),
            ("host02", "disabled"),
            ("host03", "running")
        ])
    );
    assert_eq!(state(&r, "host03")["lock"]["holder"], "ops, by hand");
    assert_eq!(r.host("host02")["disabled"]["message"], "disk swap");
    for line in [
        "disabled: host02 (1 host): disabled by capo: disk swap (",
        "running: host03 (1 host): held by ops, by hand\n",
        "stale: host01 (1 host)\n",
    ] {
        assert!(r.stdout.contains(line), "{line:?} not in\n{}", r.stdout);
    }
    drop(holder.stdin.take());
    holder.wait().expect("holder ends");
}

#[test]
fn status_reads_a_failed_last_run_and_an_unreachable_host() {
    let fleet = Fleet::up(2);
    fleet.commit(
        "manifests/site.pp",
        "node default {\n  file { '/srv/managed/x': ensure => file,\n",
        "Break the manifest",
    );
    let push = run::rollout(&fleet, &["-l", "host01"]);
    assert_eq!(push.code, 1, "{}", push.dump());
    fleet.stop("host02");
    let r = status(&fleet, &fleet.inventory, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[("host01", "ok"), ("host02", "unreachable")])
    );
    let s = state(&r, "host01");
    assert_eq!(s["state"], "failed", "{s}");
    assert_eq!(s["last_run"]["status"], "failed", "{s}");
    assert_eq!(s["last_run"]["step"], "apply", "{s}");
    assert_eq!(r.host("host02")["host_state"], Value::Null);
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("host01"))
        .expect("row");
    assert!(row.contains("push failed (apply)"), "{row}");
    assert!(
        r.stdout
            .contains("2 hosts: 0 ok, 0 changed, 1 failed, 1 unreachable in "),
        "{}",
        r.stdout
    );
}

#[test]
fn a_rollout_to_a_rev_pins_the_host_until_one_follows_the_branch() {
    let fleet = Fleet::up(1);
    let first = fleet.commit("modules/capo_demo/files/message.txt", "first\n", "first");
    let second = fleet.commit("modules/capo_demo/files/message.txt", "second\n", "second");
    let push = run::rollout(&fleet, &["--rev", &first]);
    assert_eq!(push.code, 0, "{}", push.dump());
    assert_eq!(fleet.checkout_head("host01"), first);
    let pin = run::on_host(&fleet, "host01", "cat /var/lib/capo/pin");
    assert!(
        pin.starts_with(&format!(
            "rev={first}\ncommit={first}\nby=capo run {}",
            push.report["run_id"].as_str().unwrap_or("?")
        )),
        "{pin}"
    );
    let r = status(&fleet, &fleet.inventory, &[]);
    let s = state(&r, "host01");
    assert_eq!(s["pinned"]["rev"], first.as_str(), "{s}");
    assert_eq!(s["pinned"]["commit"], first.as_str(), "{s}");
    assert!(
        r.stdout.contains(&format!(
            "pinned at {first}: host01 (1 host; a rollout without --rev unpins)\n"
        )),
        "{}",
        r.stdout
    );

    // Following the branch again ends the pin.
    let push = run::rollout(&fleet, &[]);
    assert_eq!(push.code, 0, "{}", push.dump());
    assert_eq!(fleet.checkout_head("host01"), second);
    assert_eq!(
        run::on_host(&fleet, "host01", "ls /var/lib/capo"),
        "last_run.json\nruns"
    );
    let r = status(&fleet, &fleet.inventory, &[]);
    assert_eq!(state(&r, "host01")["pinned"], Value::Null);
    assert!(!r.stdout.contains("pinned at"), "{}", r.stdout);
}
