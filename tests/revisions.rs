//! `capo rollout --rev` against a real local fleet: fetch, then fast-forward every host to an
//! exact commit, tag or branch; a host already past it is left alone (`ahead`), a diverged one
//! fails, and nothing is ever moved backwards, merged or reset. Needs root (the fleet uses
//! unshare and bind mounts); see tests/fleet/README.md.

use std::collections::BTreeSet;

use crate::common::run::{self, Run};
use crate::common::run::{git, on_host};
use crate::common::run::{section, short, step_names};
use crate::common::Fleet;
use serde_json::json;

const INDEX: &str = "modules/capo_demo/files/index.html";
const MESSAGE: &str = "modules/capo_demo/files/message.txt";

/// `git rev-parse REV` in the fleet's origin.git.
fn origin_rev(fleet: &Fleet, rev: &str) -> String {
    let origin = fleet.dir.join("origin.git");
    git(&[
        "--git-dir",
        origin.to_str().expect("utf-8"),
        "rev-parse",
        "--verify",
        rev,
    ])
}

fn has_line(run: &Run, line: &str) -> bool {
    run.stdout.lines().any(|l| l == line)
}

/// `(resource, property)` of a host's Puppet events with `status`.
fn events_with(run: &Run, name: &str, status: &str) -> BTreeSet<(String, String)> {
    run.host(name)["puppet"]["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no puppet.events\n{}", run.dump()))
        .iter()
        .filter(|e| e["status"] == status)
        .map(|e| {
            (
                e["resource"].as_str().unwrap_or("?").to_string(),
                e["property"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// Every file under the host's /srv/managed with its bytes.
fn managed(fleet: &Fleet, name: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let root = fleet.host(name).dir.join("managed");
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read managed dir") {
            let path = entry.expect("entry").path();
            let rel = path
                .strip_prefix(&root)
                .expect("under root")
                .display()
                .to_string();
            if path.is_dir() {
                out.push((format!("{rel}/"), Vec::new()));
                dirs.push(path);
            } else {
                out.push((rel, std::fs::read(&path).expect("managed file")));
            }
        }
    }
    out.sort();
    out
}

fn names(fleet: &Fleet) -> Vec<String> {
    fleet.host_names()
}

fn all_of(fleet: &Fleet, status: &str) -> Vec<(String, String)> {
    names(fleet)
        .into_iter()
        .map(|n| (n, status.to_string()))
        .collect()
}

/// A plain rollout that must change every host.
fn converge(fleet: &Fleet) {
    let r = run::rollout(fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), all_of(fleet, "changed"), "{}", r.dump());
}

#[test]
fn rollout_to_a_commit_makes_exactly_the_changes_the_plan_reported() {
    let fleet = Fleet::up(5);
    converge(&fleet);
    let old = fleet.origin_head();
    let new = fleet.commit(
        INDEX,
        "<html><body><h1>capo demo web, second release</h1></body></html>\n",
        "New index page",
    );

    let plan = run::capo(&fleet, "plan", &[]);
    assert_eq!(plan.code, 0, "{}", plan.dump());
    let would = run::pairs(&[
        ("host01", "would_change"),
        ("host02", "would_change"),
        ("host03", "would_change"),
        ("host04", "unchanged"),
        ("host05", "unchanged"),
    ]);
    assert_eq!(plan.statuses(), would, "{}", plan.dump());

    let r = run::rollout(&fleet, &["--rev", &new]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[
            ("host01", "changed"),
            ("host02", "changed"),
            ("host03", "changed"),
            ("host04", "unchanged"),
            ("host05", "unchanged"),
        ]),
        "{}",
        r.dump()
    );
    assert_eq!(r.report["mode"], "rollout");
    assert_eq!(r.report["target_rev"], new.as_str());
    for name in names(&fleet) {
        let planned = events_with(&plan, &name, "noop");
        let made = events_with(&r, &name, "success");
        assert_eq!(made, planned, "{name}\n{}\n{}", plan.dump(), r.dump());
        let expected: BTreeSet<(String, String)> = if name.as_str() <= "host03" {
            [(
                "File[/srv/managed/www/index.html]".to_string(),
                "content".to_string(),
            )]
            .into()
        } else {
            BTreeSet::new()
        };
        assert_eq!(made, expected, "{name}");
        assert_eq!(
            r.host(&name)["puppet"]["events"].as_array().map(Vec::len),
            Some(made.len()),
            "{name}: only successful events\n{}",
            r.dump()
        );
        let h = r.host(&name);
        assert!(h["error"].is_null(), "{name}: {h:#}");
        assert_eq!(h["target"], new.as_str(), "{name}");
        assert_eq!(h["rev_before"], old.as_str(), "{name}");
        assert_eq!(h["rev_after"], new.as_str(), "{name}");
        assert_eq!(step_names(&r, &name), ["sync", "apply"], "{name}");
        assert_eq!(fleet.checkout_head(&name), new, "{name}");
    }
    assert_eq!(
        r.report["summary"]["revisions"],
        json!([{"rev": new, "hosts": 5, "ahead": false}])
    );
    assert!(
        has_line(&r, &format!("revisions: 5 at {} (converged)", short(&new))),
        "{}",
        r.dump()
    );
    assert_eq!(
        section(&r.stdout, "changes:"),
        ["  File[/srv/managed/www/index.html] content changed on host[01-03] (3 hosts)"],
        "{}",
        r.dump()
    );
}

#[test]
fn rollout_to_an_annotated_tag_moves_hosts_to_the_tagged_commit() {
    let fleet = Fleet::up(2);
    let old = fleet.origin_head();
    let tagged = fleet.commit(MESSAGE, "tagged release\n", "Tagged release");
    let work = fleet.dir.join("work");
    let work = work.to_str().expect("utf-8");
    git(&["-C", work, "tag", "-a", "v1", "-m", "v1", &tagged]);
    git(&["-C", work, "push", "-q", "origin", "v1"]);
    // origin main moves on past the tag: the tag, not the branch, is the target.
    let later = fleet.commit(MESSAGE, "after the tag\n", "After the tag");
    let tag_object = origin_rev(&fleet, "refs/tags/v1");
    assert_ne!(
        tag_object, tagged,
        "an annotated tag is an object of its own"
    );
    assert_eq!(origin_rev(&fleet, "v1^{commit}"), tagged);

    let r = run::rollout(&fleet, &["--rev", "v1"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), all_of(&fleet, "changed"), "{}", r.dump());
    assert_eq!(r.report["target_rev"], "v1");
    for name in names(&fleet) {
        let h = r.host(&name);
        assert_eq!(h["target"], tagged.as_str(), "{name}");
        assert_eq!(h["rev_before"], old.as_str(), "{name}");
        assert_eq!(h["rev_after"], tagged.as_str(), "{name}");
        assert_eq!(fleet.checkout_head(&name), tagged, "{name}");
        assert_ne!(fleet.checkout_head(&name), later, "{name}");
        // Fetching puts tags under refs/remotes/origin/tags, never into the checkout's own tags.
        let tags = std::process::Command::new("git")
            .arg("-C")
            .arg(fleet.checkout_dir(&name))
            .args(["tag", "-l"])
            .output()
            .expect("git runs");
        assert_eq!(String::from_utf8_lossy(&tags.stdout), "", "{name}");
        let motd = std::fs::read_to_string(fleet.managed_path(&name, "motd")).expect("motd");
        assert!(motd.ends_with("tagged release\n"), "{name}: {motd}");
    }
    assert_eq!(
        r.report["summary"]["revisions"],
        json!([{"rev": tagged, "hosts": 2, "ahead": false}])
    );
}

#[test]
fn hosts_past_the_revision_are_left_alone_as_ahead() {
    let fleet = Fleet::up(3);
    let b = fleet.commit(MESSAGE, "release B\n", "Release B");
    let a = origin_rev(&fleet, &format!("{b}^"));
    converge(&fleet);
    for name in names(&fleet) {
        assert_eq!(fleet.checkout_head(&name), b, "{name}");
    }
    let before: Vec<_> = names(&fleet).iter().map(|n| managed(&fleet, n)).collect();

    let r = run::rollout(&fleet, &["--rev", &a]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), all_of(&fleet, "ahead"), "{}", r.dump());
    assert_eq!(r.report["target_rev"], a.as_str());
    assert_eq!(r.report["summary"]["ahead"], 3);
    assert_eq!(
        r.report["summary"]["revisions"],
        json!([{"rev": b, "hosts": 3, "ahead": true}])
    );
    for name in names(&fleet) {
        let h = r.host(&name);
        assert!(h["error"].is_null(), "{name}: {h:#}");
        assert_eq!(step_names(&r, &name), ["sync"], "{name}: no apply step");
        assert_eq!(h["steps"][0]["exit_code"], 0, "{name}");
        assert_eq!(h["target"], a.as_str(), "{name}");
        assert_eq!(h["rev_before"], b.as_str(), "{name}");
        assert_eq!(h["rev_after"], b.as_str(), "{name}");
        assert!(h["puppet"].is_null(), "{name}: {h:#}");
        assert_eq!(
            fleet.checkout_head(&name),
            b,
            "{name}: never moved backwards"
        );
    }
    assert!(
        has_line(&r, &format!("revisions: 3 ahead at {}", short(&b))),
        "{}",
        r.dump()
    );
    let after: Vec<_> = names(&fleet).iter().map(|n| managed(&fleet, n)).collect();
    assert_eq!(before, after, "Puppet ran on a host left alone");

    let p = run::capo(&fleet, "plan", &["--rev", &a]);
    assert_eq!(p.code, 0, "{}", p.dump());
    assert_eq!(p.statuses(), all_of(&fleet, "ahead"), "{}", p.dump());
    assert_eq!(p.report["mode"], "plan");
    assert_eq!(p.report["summary"]["ahead"], 3);
    assert_eq!(
        p.report["summary"]["revisions"],
        json!([{"rev": b, "hosts": 3, "ahead": true}])
    );
    for name in names(&fleet) {
        let h = p.host(&name);
        assert!(h["error"].is_null(), "{name}: {h:#}");
        assert_eq!(h["target"], a.as_str(), "{name}");
        assert!(h["puppet"].is_null(), "{name}: no noop run\n{h:#}");
        assert_eq!(fleet.checkout_head(&name), b, "{name}");
    }
}

#[test]
fn a_checkout_diverged_from_the_revision_fails_and_is_left_as_it_was() {
    let fleet = Fleet::up(2);
    let old = fleet.origin_head();
    let local = on_host(
        &fleet,
        "host01",
        "cd /srv/puppet && echo x >> README.local && git add -A \
         && git -c user.name=t -c user.email=t@t commit -qm local && git rev-parse HEAD",
    );
    assert_eq!(fleet.checkout_head("host01"), local);
    let new = fleet.commit(MESSAGE, "second release\n", "Change the banner");

    let r = run::rollout(&fleet, &["--rev", &new]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[("host01", "failed"), ("host02", "changed")]),
        "{}",
        r.dump()
    );
    assert_eq!(
        r.error("host01"),
        (
            "sync".to_string(),
            format!(
                "checkout in /srv/puppet has diverged from {new}: 1 local commit not in {new}, 1 new in it; capo never merges or resets, reconcile the checkout by hand"
            )
        ),
        "{}",
        r.dump()
    );
    let h = r.host("host01");
    assert_eq!(step_names(&r, "host01"), ["sync"], "no apply step");
    assert_eq!(h["steps"][0]["exit_code"], 1);
    assert_eq!(h["rev_before"], local.as_str());
    assert_eq!(h["rev_after"], local.as_str());
    // HEAD is still the local commit, nothing half-merged, and Puppet never ran.
    assert_eq!(fleet.checkout_head("host01"), local);
    assert_eq!(
        on_host(&fleet, "host01", "cd /srv/puppet && git status --porcelain"),
        ""
    );
    assert_eq!(
        std::fs::read_to_string(fleet.checkout_dir("host01").join("README.local"))
            .expect("README.local"),
        "x\n"
    );
    assert!(!fleet.managed_path("host01", "motd").exists());

    let h = r.host("host02");
    assert_eq!(h["rev_before"], old.as_str());
    assert_eq!(h["rev_after"], new.as_str());
    assert_eq!(fleet.checkout_head("host02"), new);
    let motd = std::fs::read_to_string(fleet.managed_path("host02", "motd")).expect("motd");
    assert!(motd.ends_with("second release\n"), "{motd}");
}

#[test]
fn rollout_to_an_unknown_revision_fails_every_host_and_runs_nothing() {
    let fleet = Fleet::up(2);
    let head = fleet.origin_head();

    let r = run::rollout(&fleet, &["--rev", "nope"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), all_of(&fleet, "failed"), "{}", r.dump());
    assert_eq!(r.report["target_rev"], "nope");
    for name in names(&fleet) {
        assert_eq!(
            r.error(&name),
            (
                "sync".to_string(),
                "revision nope not found on origin".to_string()
            ),
            "{name}\n{}",
            r.dump()
        );
        let h = r.host(&name);
        assert_eq!(step_names(&r, &name), ["sync"], "{name}: no apply step");
        assert_eq!(h["steps"][0]["exit_code"], 1, "{name}");
        assert_eq!(h["rev_before"], head.as_str(), "{name}");
        assert_eq!(h["rev_after"], head.as_str(), "{name}");
        assert!(h["target"].is_null(), "{name}: {h:#}");
        assert!(h["puppet"].is_null(), "{name}: {h:#}");
        assert_eq!(fleet.checkout_head(&name), head, "{name}");
        assert!(!fleet.managed_path(&name, "motd").exists(), "{name}");
    }
    assert_eq!(
        section(&r.stdout, "problems:"),
        ["  sync: revision nope not found on origin on host[01-02] (2 hosts)"],
        "{}",
        r.dump()
    );
}
