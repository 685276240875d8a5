//! Host checkouts in bad shape against a real local fleet: capo says exactly what is wrong,
//! never merges, resets or discards anything, and does not run Puppet on a checkout it could
//! not bring up to date. Needs root (the fleet uses unshare and bind mounts); see
//! tests/fleet/README.md.

use crate::common::run::on_host;
use crate::common::run::step_names;
use crate::common::run::{self, Run};
use crate::common::Fleet;

const MESSAGE: &str = "modules/capo_demo/files/message.txt";

/// `git status --porcelain` of the host's checkout.
fn git_status(fleet: &Fleet, name: &str) -> String {
    on_host(fleet, name, "cd /srv/puppet && git status --porcelain")
}

/// Asserts that the host's only step was a failed sync.
fn only_a_failed_sync(run: &Run, name: &str) {
    assert_eq!(step_names(run, name), ["sync"], "{name}\n{}", run.dump());
    let code = &run.host(name)["steps"][0]["exit_code"];
    assert!(
        code.as_i64().is_some_and(|c| c != 0),
        "{name}: sync exit_code {code}\n{}",
        run.dump()
    );
}

#[test]
fn local_changes_that_block_the_pull_fail_the_host_and_are_kept() {
    let fleet = Fleet::up(2);
    let old = fleet.origin_head();
    on_host(
        &fleet,
        "host01",
        &format!("cd /srv/puppet && printf 'edited on the host\\n' > {MESSAGE}"),
    );
    let new = fleet.commit(MESSAGE, "second release\n", "Change the banner");

    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        vec![
            ("host01".to_string(), "failed".to_string()),
            ("host02".to_string(), "changed".to_string()),
        ],
        "{}",
        r.dump()
    );
    assert_eq!(
        r.error("host01"),
        (
            "sync".to_string(),
            format!(
                "local changes in /srv/puppet block the pull: M {MESSAGE}; commit, stash or discard them on the host"
            )
        ),
        "{}",
        r.dump());
    // The exact script of the failed step is kept for debugging; a step that succeeded has
    // only its output on disk.
    let script = std::fs::read_to_string(r.log_dir(&fleet, "host01").join("sync.cmd"))
        .unwrap_or_else(|e| panic!("host01 sync.cmd: {e}\n{}", r.dump()));
    assert!(script.contains("pull --ff-only"), "{script}");
    let good = r.log_dir(&fleet, "host02");
    assert!(good.join("apply.stdout").is_file(), "{}", good.display());
    for step in ["sync", "apply"] {
        assert!(
            !good.join(format!("{step}.cmd")).exists(),
            "{step}.cmd for host02"
        );
    }
    let h = r.host("host01");
    assert_eq!(h["rev_before"], old.as_str());
    assert_eq!(h["rev_after"], old.as_str());
    only_a_failed_sync(&r, "host01");

    // Nothing moved on host01 and the edit is still there; Puppet never ran.
    assert_eq!(fleet.checkout_head("host01"), old);
    assert_eq!(
        std::fs::read_to_string(fleet.checkout_dir("host01").join(MESSAGE)).expect("message"),
        "edited on the host\n"
    );
    assert_eq!(git_status(&fleet, "host01"), format!("M {MESSAGE}"));
    assert!(!fleet.managed_path("host01", "motd").exists());

    // The other host took the change.
    assert_eq!(r.host("host02")["rev_after"], new.as_str());
    assert_eq!(fleet.checkout_head("host02"), new);
    let motd = std::fs::read_to_string(fleet.managed_path("host02", "motd")).expect("motd");
    assert!(motd.contains("second release"), "{motd}");
}

#[test]
fn a_diverged_checkout_is_neither_merged_nor_reset() {
    let fleet = Fleet::up(1);
    let local = on_host(
        &fleet,
        "host01",
        "cd /srv/puppet && printf 'local tweak\\n' >> modules/capo_demo/files/index.html \
         && git -c user.name=x -c user.email=x@y commit -qam local && git rev-parse HEAD",
    );
    assert_eq!(fleet.checkout_head("host01"), local);
    let new = fleet.commit(MESSAGE, "second release\n", "Change the banner");
    assert_ne!(local, new);

    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "failed"));
    assert_eq!(
        r.error("host01"),
        (
            "sync".to_string(),
            "checkout in /srv/puppet has diverged from origin/main: 1 local commit not on origin, 1 new on it; capo never merges or resets, reconcile the checkout by hand"
                .to_string()
        ),
        "{}",
        r.dump()
    );
    let h = r.host("host01");
    assert_eq!(h["rev_before"], local.as_str());
    assert_eq!(h["rev_after"], local.as_str());
    only_a_failed_sync(&r, "host01");

    // HEAD is still the local commit, nothing half-merged, and Puppet never ran.
    assert_eq!(fleet.checkout_head("host01"), local);
    assert_eq!(git_status(&fleet, "host01"), "");
    assert_eq!(
        on_host(
            &fleet,
            "host01",
            "cd /srv/puppet && git rev-list --count HEAD"
        ),
        "2",
        "initial commit + the local one"
    );
    assert!(!fleet.managed_path("host01", "motd").exists());
}

#[test]
fn a_missing_repo_dir_fails_sync_with_how_to_clone_it() {
    let fleet = Fleet::up(1);
    on_host(&fleet, "host01", "test ! -e /srv/nope");
    let inventory = run::inventory_with(&fleet, &[("repo_dir", "\"/srv/nope\"")]);

    let r = run::rollout(&fleet, &["-i", inventory.to_str().expect("utf-8")]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "failed"));
    assert_eq!(
        r.error("host01"),
        (
            "sync".to_string(),
            "repo_dir /srv/nope does not exist on the host; clone the control repo there (git clone URL /srv/nope)"
                .to_string()
        ),
        "{}",
        r.dump()
    );
    let h = r.host("host01");
    assert!(h["rev_before"].is_null(), "{h:#}");
    assert!(h["rev_after"].is_null(), "{h:#}");
    only_a_failed_sync(&r, "host01");
    // capo created nothing there, and Puppet never ran.
    on_host(&fleet, "host01", "test ! -e /srv/nope");
    assert!(!fleet.managed_path("host01", "motd").exists());
}

#[test]
fn a_repo_dir_that_is_not_a_checkout_fails_sync_and_is_left_alone() {
    let fleet = Fleet::up(1);
    on_host(&fleet, "host01", "printf 'keep me\\n' > /srv/managed/keep");
    let inventory = run::inventory_with(&fleet, &[("repo_dir", "\"/srv/managed\"")]);

    let r = run::rollout(&fleet, &["-i", inventory.to_str().expect("utf-8")]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "failed"));
    assert_eq!(
        r.error("host01"),
        (
            "sync".to_string(),
            "repo_dir /srv/managed is not a git checkout; remove it and clone the control repo there"
                .to_string()
        ),
        "{}",
        r.dump()
    );
    let h = r.host("host01");
    assert!(h["rev_before"].is_null(), "{h:#}");
    assert!(h["rev_after"].is_null(), "{h:#}");
    only_a_failed_sync(&r, "host01");
    // The directory holds exactly what it held before: no .git, no lock files, no Puppet output.
    assert_eq!(
        on_host(&fleet, "host01", "ls -A /srv/managed"),
        "keep",
        "{}",
        r.dump()
    );
    assert_eq!(
        std::fs::read_to_string(fleet.managed_path("host01", "keep")).expect("keep"),
        "keep me\n"
    );
}

#[test]
fn puppet_not_installed_fails_apply_after_a_successful_sync() {
    let fleet = Fleet::up(1);
    let old = fleet.origin_head();
    let new = fleet.commit(MESSAGE, "second release\n", "Change the banner");
    let inventory = run::inventory_with(&fleet, &[("puppet", "\"puppet-not-here\"")]);

    let r = run::rollout(&fleet, &["-i", inventory.to_str().expect("utf-8")]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "failed"));
    let (kind, message) = r.error("host01");
    assert_eq!(kind, "puppet", "{}", r.dump());
    let path = message
        .strip_prefix("puppet-not-here not found on host (PATH=")
        .and_then(|m| m.strip_suffix("); install Puppet or set `puppet` in the inventory"))
        .unwrap_or_else(|| panic!("unexpected message: {message:?}\n{}", r.dump()));
    assert!(
        path.split(':').any(|dir| dir == "/usr/bin"),
        "PATH in the message lacks /usr/bin: {path:?}"
    );
    assert!(
        !path.contains(char::is_whitespace) && !path.contains(')'),
        "{path:?}"
    );

    // Sync did its job before apply failed.
    let h = r.host("host01");
    assert_eq!(h["rev_before"], old.as_str());
    assert_eq!(h["rev_after"], new.as_str());
    assert_eq!(fleet.checkout_head("host01"), new);
    assert_eq!(step_names(&r, "host01"), ["sync", "apply"]);
    assert_eq!(h["steps"][0]["exit_code"], 0);
    assert_eq!(h["steps"][1]["exit_code"], 127);
    // No Puppet ran: nothing was written.
    assert!(!fleet.managed_path("host01", "motd").exists());
}
