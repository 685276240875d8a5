//! Pull mode's job (`crates/capo-scripts/sh/pull.sh`) on a real fleet host, installed by hand
//! beside the step scripts in the host's own /usr/local/lib/capo, and run as its timer would:
//! it brings the checkout to a new commit and applies it under the host's lock, writes the run
//! record as `pull` (which `capo status` then shows), keeps to a pin left by `capo rollout
//! --rev`, and skips a host that a push holds locked or that is disabled, saying why.

use std::path::Path;

use crate::common::run;
use crate::common::Fleet;

/// Copies capo's host-side scripts into `host`'s /usr/local/lib/capo, as pull mode installs
/// them.
fn install(fleet: &Fleet, host: &str) {
    let dir = fleet
        .dir
        .join("hosts")
        .join(host)
        .join("usr-local-lib-capo");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/capo-scripts/sh");
    for entry in std::fs::read_dir(&src).expect("sh dir").flatten() {
        std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy script");
    }
}

/// Runs the pull job on `host` as the timer would; its exit code and output.
fn pull(fleet: &Fleet, host: &str) -> (i32, String) {
    let out = fleet.host_exec(
        host,
        "sh /usr/local/lib/capo/pull.sh /srv/puppet origin main /var/lib/capo r10k puppet \
         production manifests/site.pp modules '' 2>&1",
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn last_run(fleet: &Fleet, host: &str) -> serde_json::Value {
    let text = run::on_host(fleet, host, "cat /var/lib/capo/last_run.json");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn the_pull_job_applies_a_new_commit_and_status_says_pull() {
    let fleet = Fleet::up(2);
    install(&fleet, "host01");
    let head = fleet.commit(
        "modules/capo_demo/files/message.txt",
        "pulled, not pushed\n",
        "new message",
    );
    let (code, out) = pull(&fleet, "host01");
    assert_eq!(code, 2, "{out}");
    assert_eq!(fleet.checkout_head("host01"), head);
    let motd = std::fs::read_to_string(fleet.managed_path("host01", "motd")).unwrap_or_default();
    assert!(motd.ends_with("\npulled, not pushed\n"), "{motd}");
    let r = last_run(&fleet, "host01");
    assert_eq!(
        (
            r["source"].as_str(),
            r["status"].as_str(),
            r["rev_after"].as_str()
        ),
        (Some("pull"), Some("changed"), Some(head.as_str())),
        "{r}"
    );
    assert!(
        r["by"]
            .as_str()
            .is_some_and(|b| b.starts_with("capo pull on ")),
        "{r}"
    );
    // Its results directory is gone (the hosts share the machine's /tmp: only this one's).
    let results = out
        .lines()
        .find_map(|l| l.strip_prefix("::capo:results="))
        .unwrap_or_else(|| panic!("no results line in\n{out}"));
    assert!(results.contains("/capo-run."), "{results}");
    assert!(!Path::new(results).exists(), "{results} left behind");
    let s = run::capo(&fleet, "status", &[]);
    assert_eq!(s.host("host01")["host_state"]["last_run"]["source"], "pull");
    assert_eq!(s.host("host01")["host_state"]["state"], "changed");
    assert_eq!(s.host("host02")["host_state"]["state"], "never");
    assert_eq!(s.host("host01")["host_state"]["lock"]["held"], false);

    // Again, nothing new: unchanged.
    let (code, out) = pull(&fleet, "host01");
    assert_eq!(code, 0, "{out}");
    assert_eq!(last_run(&fleet, "host01")["status"], "unchanged");
}

#[test]
fn the_pull_job_skips_a_locked_or_disabled_host_and_keeps_to_a_pin() {
    let fleet = Fleet::up(1);
    install(&fleet, "host01");
    let before = fleet.checkout_head("host01");
    fleet.commit("modules/capo_demo/files/message.txt", "v2\n", "v2");

    // A push holds the lock: the pull skips, says why, and changes nothing.
    let mut holder = fleet.hold_lock("host01", "capo run R from ctl (pid 1)");
    let (code, out) = pull(&fleet, "host01");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("capo-pull: skipped: locked by capo run R from ctl (pid 1)"),
        "{out}"
    );
    assert!(
        run::on_host(&fleet, "host01", "cat /var/lib/capo/last_skip")
            .contains("why=locked by capo run R from ctl (pid 1)"),
    );
    assert_eq!(fleet.checkout_head("host01"), before);
    drop(holder.stdin.take());
    holder.wait().expect("holder ends");

    // Disabled: skipped too.
    let d = run::capo(&fleet, "disable", &["-m", "maintenance"]);
    assert_eq!(d.code, 0, "{}", d.dump());
    let (code, out) = pull(&fleet, "host01");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("capo-pull: skipped: disabled (maintenance)"),
        "{out}"
    );
    assert_eq!(fleet.checkout_head("host01"), before);
    let e = run::capo(&fleet, "enable", &[]);
    assert_eq!(e.code, 0, "{}", e.dump());

    // Pinned by a rollout --rev to the first commit: the pull keeps to it while the branch
    // moves on.
    let push = run::rollout(&fleet, &["--rev", &before]);
    assert_eq!(push.code, 0, "{}", push.dump());
    fleet.commit("modules/capo_demo/files/message.txt", "v3\n", "v3");
    let (code, out) = pull(&fleet, "host01");
    assert!(code == 0 || code == 2, "{out}");
    assert_eq!(fleet.checkout_head("host01"), before, "{out}");
    assert_eq!(last_run(&fleet, "host01")["source"], "pull");
    // A rollout without --rev unpins; the next pull follows the branch.
    let push = run::rollout(&fleet, &[]);
    assert_eq!(push.code, 0, "{}", push.dump());
    let head = fleet.checkout_head("host01");
    let new = fleet.commit("modules/capo_demo/files/message.txt", "v4\n", "v4");
    assert_ne!(head, new);
    let (code, out) = pull(&fleet, "host01");
    assert_eq!(code, 2, "{out}");
    assert_eq!(fleet.checkout_head("host01"), new);
}

#[test]
fn a_pull_run_that_fails_shows_failed_in_status() {
    let fleet = Fleet::up(1);
    install(&fleet, "host01");
    fleet.commit(
        "manifests/site.pp",
        "node default {\n  file { '/srv/managed/x': ensure => file,\n",
        "Break the manifest",
    );
    let (code, out) = pull(&fleet, "host01");
    assert!(![0, 2].contains(&code), "{out}");
    let r = last_run(&fleet, "host01");
    assert_eq!(
        (
            r["source"].as_str(),
            r["status"].as_str(),
            r["step"].as_str()
        ),
        (Some("pull"), Some("failed"), Some("apply")),
        "{r}"
    );
    let s = run::capo(&fleet, "status", &[]);
    assert_eq!(s.code, 1, "{}", s.dump());
    let st = &s.host("host01")["host_state"];
    assert_eq!(st["state"], "failed", "{st}");
    assert_eq!(st["last_run"]["source"], "pull", "{st}");
    let row = s
        .stdout
        .lines()
        .find(|l| l.contains("host01"))
        .expect("row");
    assert!(row.contains("pull failed (apply)"), "{row}");
}
