//! Steps run whatever the remote user's login shell is (sshd hands capo's command line to
//! it): a user whose login shell is tcsh rolls out and runs `capo exec`. And the host lock:
//! one that cannot be taken fails the host and changes nothing, and `lock = false` runs
//! unlocked and says so.

use crate::common::run::{self, path_arg};
use crate::common::Fleet;

/// The fleet user of these tests, with tcsh as its login shell.
const USER: &str = "deploy";

/// The fleet's inventory as `deploy`, with `repo_dir` = `repo`.
fn as_deploy(fleet: &Fleet, repo: &str) -> std::path::PathBuf {
    run::inventory_with(
        fleet,
        &[
            ("user", &format!("\"{USER}\"")),
            ("repo_dir", &format!("\"{repo}\"")),
        ],
    )
}

/// The fleet's login shell under test; missing is a failure, as a missing `sshd` or `puppet`
/// is (scripts/install-deps.sh installs it).
fn require_tcsh() {
    assert!(
        std::path::Path::new("/usr/bin/tcsh").exists(),
        "/usr/bin/tcsh is not installed (scripts/install-deps.sh installs it)"
    );
}

#[test]
fn a_user_whose_login_shell_is_tcsh_rolls_out_and_runs_commands() {
    require_tcsh();
    let fleet = Fleet::up_with_user(1, &format!("{USER}:/usr/bin/tcsh"));
    let motd = format!("/srv/home/{USER}/motd");
    let head = fleet.commit(
        "manifests/site.pp",
        &format!("node default {{ file {{ '{motd}': content => \"it's here!\\n\" }} }}\n"),
        "a file the user may write",
    );
    let inventory = as_deploy(&fleet, &format!("/srv/home/{USER}/puppet"));
    let inventory = path_arg(&inventory);

    let first = run::rollout(&fleet, &["-i", inventory]);
    assert_eq!(first.code, 0, "{}", first.dump());
    assert_eq!(first.statuses(), run::all(&["host01"], "changed"));
    assert_eq!(first.host("host01")["rev_after"], head.as_str());
    assert_eq!(first.host("host01")["locked"], true, "{}", first.dump());
    assert_eq!(
        run::on_host(&fleet, "host01", &format!("cat {motd}; stat -c %U {motd}")),
        format!("it's here!\n{USER}")
    );

    let second = run::rollout(&fleet, &["-i", inventory]);
    assert_eq!(second.code, 0, "{}", second.dump());
    assert_eq!(second.statuses(), run::all(&["host01"], "unchanged"));

    let exec = run::capo(
        &fleet,
        "exec",
        &[
            "-i",
            inventory,
            "--",
            "echo",
            "\"$0 it's\"",
            "!x;",
            "id",
            "-un",
        ],
    );
    assert_eq!(exec.code, 0, "{}", exec.dump());
    assert_eq!(
        exec.host("host01")["steps"][0]["stdout_tail"],
        format!("sh it's !x\n{USER}\n"),
        "{}",
        exec.dump()
    );
}

#[test]
fn a_lock_that_cannot_be_taken_fails_the_host_and_lock_false_runs_unlocked() {
    require_tcsh();
    let fleet = Fleet::up_with_user(1, &format!("{USER}:/usr/bin/tcsh"));
    let before = fleet.checkout_head("host01");
    let head = fleet.commit(
        "manifests/site.pp",
        "node default { file { '/srv/managed/unlocked': content => \"x\\n\" } }\n",
        "new",
    );
    // root's checkout: the user may read it but not write its git directory.
    let inventory = as_deploy(&fleet, "/srv/puppet");
    let r = run::rollout(&fleet, &["-i", path_arg(&inventory)]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "failed"));
    assert_eq!(
        r.error("host01"),
        (
            "lock".to_string(),
            format!("git directory not writable by {USER} (/srv/puppet/.git)")
        ),
        "{}",
        r.dump()
    );
    assert_eq!(r.host("host01")["steps"], serde_json::json!([]));
    assert!(r.host("host01")["locked"].is_null());
    assert_eq!(fleet.checkout_head("host01"), before, "nothing moved");
    assert!(!fleet.managed_path("host01", "unlocked").exists());

    // lock = false (as root, who can write the checkout): runs, and says it ran unlocked.
    let inventory = run::inventory_with(&fleet, &[("lock", "false")]);
    let r = run::rollout(&fleet, &["-i", path_arg(&inventory)]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "changed"));
    assert_eq!(r.host("host01")["locked"], false, "{}", r.dump());
    assert!(r.host("host01")["error"].is_null());
    assert_eq!(fleet.checkout_head("host01"), head);
    assert!(
        r.stdout.contains("; 1 ran unlocked (lock = false)"),
        "{}",
        r.stdout
    );
    // No lock was taken, so no holder line was written.
    let git = fleet.checkout_dir("host01").join(".git");
    assert!(!git.join("capo.lock").exists(), "capo.lock written");
    assert!(
        !git.join("capo.lock.step").exists(),
        "capo.lock.step written"
    );
}
