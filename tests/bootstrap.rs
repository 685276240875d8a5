//! `capo bootstrap` against real local fleets: a host whose `repo_dir` is empty gets a clone
//! of the control repo that a rollout then works on; bootstrapping it again changes nothing
//! and says `already`; a `repo_dir` holding another repository or plain files is refused
//! and left byte for byte as it was; a missing Puppet is named with its install command;
//! code that does not compile fails the noop apply, and the clone stays; no URL at all is
//! refused before any host is contacted; the clone belongs to whoever the steps run as
//! (root through sudo, or the login user); a Puppetfile's modules are installed with the
//! clone, so the first rollout needs no modules step. (`--install` would run apt-get on
//! this machine, whose /usr the fleet's hosts share: its command line is tested in
//! capo-scripts' and capo-engine's unit tests instead.)

use std::path::Path;

use crate::common::run::{self, path_arg, Run};
use crate::common::Fleet;

/// `capo bootstrap -i INVENTORY ARGS...` to the end.
fn bootstrap(fleet: &Fleet, inventory: &Path, args: &[&str]) -> Run {
    let mut all = vec!["-i", path_arg(inventory)];
    all.extend_from_slice(args);
    run::capo(fleet, "bootstrap", &all)
}

/// The URL the fleet's hosts cloned their checkouts from (the fleet's `origin.git`).
fn origin_url(fleet: &Fleet) -> String {
    run::on_host(fleet, "host01", "git -C /srv/puppet remote get-url origin")
}

/// Everything under `dir` on the host, byte for byte: each entry's path, type, size, mode
/// and modification time, and each file's checksum.
fn snapshot(fleet: &Fleet, dir: &str) -> String {
    run::on_host(
        fleet,
        "host01",
        &format!(
            "cd {dir} && find . -printf '%p %y %s %m %T@\\n' | sort && \
             find . -type f -exec sha256sum {{}} + | sort"
        ),
    )
}

/// What a noop apply must not change: the files the manifests manage.
fn managed(fleet: &Fleet) -> String {
    run::on_host(
        fleet,
        "host01",
        "find /srv/managed -printf '%p %s %T@\\n' | sort",
    )
}

/// The fleet's inventory with `repo_dir` (and `repo_url`, when given) in `[defaults]`.
fn inventory(fleet: &Fleet, repo_dir: &str, repo_url: Option<&str>) -> std::path::PathBuf {
    let dir = format!("{repo_dir:?}");
    let mut settings = vec![("repo_dir", dir.as_str())];
    let url = repo_url.map(|u| format!("{u:?}"));
    if let Some(url) = &url {
        settings.push(("repo_url", url.as_str()));
    }
    run::inventory_with(fleet, &settings)
}

#[test]
fn bootstrap_clones_into_an_empty_repo_dir_then_says_already_and_rollouts_work() {
    let fleet = Fleet::up(1);
    let url = origin_url(&fleet);
    let head = fleet.origin_head();
    run::on_host(&fleet, "host01", "mkdir /srv/new-puppet");
    let inv = inventory(&fleet, "/srv/new-puppet", Some(&url));
    let untouched = managed(&fleet);

    let r = bootstrap(&fleet, &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "bootstrapped"));
    assert_eq!(r.report["mode"], "bootstrap");
    assert_eq!(r.report["summary"]["bootstrapped"], 1);
    let h = r.host("host01");
    assert_eq!(h["error"], serde_json::Value::Null, "{h}");
    assert_eq!(h["rev_after"], head.as_str(), "{h}");
    assert_eq!(run::step_names(&r, "host01"), ["bootstrap"]);
    assert_eq!(h["steps"][0]["exit_code"], 0, "{h}");
    assert_eq!(
        h["steps"][0]["command"],
        format!(
            "git clone -o origin -b main {url} /srv/new-puppet && puppet apply --detailed-exitcodes \
             --color=false --environment production --modulepath /srv/new-puppet/modules \
             /srv/new-puppet/manifests/site.pp --noop"
        )
    );
    // Puppet's own account of the noop apply: it compiled, and changed nothing.
    assert_eq!(h["puppet"]["exit_code"], 0, "{h}");
    assert_eq!(h["puppet"]["resources"]["changed"], 0, "{h}");
    assert_eq!(
        managed(&fleet),
        untouched,
        "a noop apply changed managed files"
    );
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("host01"))
        .unwrap_or_else(|| panic!("no row:\n{}", r.stdout));
    assert!(
        row.contains(&format!("bootstrapped at {}", run::short(&head))),
        "{row}"
    );
    assert!(
        r.stdout
            .contains("1 host: 1 bootstrapped, 0 already, 0 failed, 0 unreachable in "),
        "{}",
        r.stdout
    );
    // The clone: the remote named as the inventory says, its branch checked out, clean.
    assert_eq!(
        run::on_host(
            &fleet,
            "host01",
            "cd /srv/new-puppet && git rev-parse HEAD && git symbolic-ref --short HEAD && \
             git remote get-url origin && git rev-parse --abbrev-ref 'main@{upstream}' && \
             git status --porcelain"
        ),
        format!("{head}\nmain\n{url}\norigin/main")
    );

    // Again: already, and nothing in the checkout changed.
    let before = snapshot(&fleet, "/srv/new-puppet");
    let r = bootstrap(&fleet, &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "already"));
    let h = r.host("host01");
    assert_eq!(h["rev_after"], head.as_str(), "{h}");
    assert_eq!(h["rev_before"], head.as_str(), "{h}");
    assert_eq!(h["puppet"], serde_json::Value::Null, "no apply: {h}");
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("host01"))
        .unwrap_or("");
    assert!(
        row.contains(&format!("already bootstrapped at {}", run::short(&head))),
        "{row}"
    );
    assert!(
        r.stdout
            .contains("1 host: 0 bootstrapped, 1 already, 0 failed, 0 unreachable in "),
        "{}",
        r.stdout
    );
    assert_eq!(snapshot(&fleet, "/srv/new-puppet"), before);

    // It is set up as a rollout expects: the next commit rolls out onto it.
    let new = fleet.commit(
        "modules/capo_demo/files/message.txt",
        "bootstrapped\n",
        "after bootstrap",
    );
    let r = run::rollout(&fleet, &["-i", path_arg(&inv)]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "changed"));
    assert_eq!(r.host("host01")["rev_before"], head.as_str());
    assert_eq!(r.host("host01")["rev_after"], new.as_str());
    let motd = std::fs::read_to_string(fleet.managed_path("host01", "motd")).expect("motd");
    assert!(motd.contains("bootstrapped"), "{motd}");

    // The fleet's own checkout, cloned from the same URL, is already bootstrapped too.
    let r = bootstrap(&fleet, &fleet.inventory, &["--repo", &url]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "already"));
}

#[test]
fn bootstrap_clones_into_a_missing_repo_dir_at_a_revision() {
    let fleet = Fleet::up(1);
    let url = origin_url(&fleet);
    let first = fleet.origin_head();
    let second = fleet.commit("README", "two\n", "second");
    let inv = inventory(&fleet, "/srv/deep/puppet", None);

    let r = bootstrap(&fleet, &inv, &["--repo", &url, "--rev", &first]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "bootstrapped"));
    assert_eq!(r.report["target_rev"], first.as_str());
    assert_eq!(r.host("host01")["rev_after"], first.as_str());
    // The local branch is at exactly that commit, as `rollout --rev` leaves a checkout, and
    // a rollout without --rev then fast-forwards it to the branch's tip.
    assert_eq!(
        run::on_host(
            &fleet,
            "host01",
            "cd /srv/deep/puppet && git rev-parse HEAD && git symbolic-ref --short HEAD"
        ),
        format!("{first}\nmain")
    );
    let r = run::rollout(&fleet, &["-i", path_arg(&inv)]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.host("host01")["rev_after"], second.as_str());
}

#[test]
fn bootstrap_refuses_a_repo_dir_holding_another_repository_and_leaves_it_untouched() {
    let fleet = Fleet::up(1);
    let url = origin_url(&fleet);
    run::on_host(
        &fleet,
        "host01",
        "mkdir /srv/other && cd /srv/other && git init -q -b main && \
         git remote add origin https://git.example.invalid/other.git && \
         echo mine >notes.txt && git add notes.txt && \
         git -c user.name=t -c user.email=t@t commit -qm other",
    );
    let before = snapshot(&fleet, "/srv/other");
    let inv = inventory(&fleet, "/srv/other", Some(&url));

    let r = bootstrap(&fleet, &inv, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "failed"));
    assert_eq!(
        r.error("host01"),
        (
            "sync".to_string(),
            format!(
                "repo_dir /srv/other holds a checkout of another repository (its remote origin is \
                 https://git.example.invalid/other.git, not {url}); capo bootstrap leaves it alone"
            )
        )
    );
    assert_eq!(r.host("host01")["puppet"], serde_json::Value::Null);
    assert!(
        r.stdout
            .contains("1 host: 0 bootstrapped, 0 already, 1 failed, 0 unreachable in "),
        "{}",
        r.stdout
    );
    assert_eq!(
        snapshot(&fleet, "/srv/other"),
        before,
        "repo_dir was touched"
    );
}

#[test]
fn bootstrap_refuses_a_repo_dir_holding_files_and_leaves_it_untouched() {
    let fleet = Fleet::up(1);
    let url = origin_url(&fleet);
    run::on_host(
        &fleet,
        "host01",
        "mkdir -p /srv/files/sub && echo keep >/srv/files/sub/data && : >/srv/files/.hidden",
    );
    let before = snapshot(&fleet, "/srv/files");
    let inv = inventory(&fleet, "/srv/files", Some(&url));

    let r = bootstrap(&fleet, &inv, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "failed"));
    assert_eq!(
        r.error("host01"),
        (
            "sync".to_string(),
            "repo_dir /srv/files is not empty and not a git checkout; capo bootstrap leaves it \
             alone (empty it, or set repo_dir to an empty or missing directory)"
                .to_string()
        )
    );
    assert_eq!(
        snapshot(&fleet, "/srv/files"),
        before,
        "repo_dir was touched"
    );
}

#[test]
fn bootstrap_without_puppet_names_the_install_command_and_clones_nothing() {
    let fleet = Fleet::up(1);
    let url = origin_url(&fleet);
    let inv = inventory(&fleet, "/srv/new-puppet", Some(&url));
    let text = std::fs::read_to_string(&inv).expect("inventory");
    let inv = fleet.write_inventory(&text.replacen(
        "[defaults]\n",
        "[defaults]\npuppet = \"no-such-puppet\"\n",
        1,
    ));

    let r = bootstrap(&fleet, &inv, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "failed"));
    let (kind, message) = r.error("host01");
    assert_eq!(kind, "puppet");
    assert!(
        message.starts_with("no-such-puppet not found on host (PATH=/"),
        "{message}"
    );
    assert!(
        message.ends_with(
            "); install it (apt-get install puppet) or run capo bootstrap with --install"
        ),
        "{message}"
    );
    assert_eq!(
        run::on_host(&fleet, "host01", "test -e /srv/new-puppet || echo absent"),
        "absent"
    );
}

#[test]
fn bootstrap_of_code_that_does_not_compile_fails_and_keeps_the_clone() {
    let fleet = Fleet::up(1);
    let url = origin_url(&fleet);
    let broken = fleet.commit(
        "manifests/site.pp",
        "node default { this is not puppet\n",
        "broken",
    );
    let inv = inventory(&fleet, "/srv/new-puppet", Some(&url));
    let untouched = managed(&fleet);

    let r = bootstrap(&fleet, &inv, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "failed"));
    let (kind, message) = r.error("host01");
    assert_eq!(kind, "puppet");
    assert!(
        message.starts_with("the noop apply of the clone failed (exit 1): Error: "),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(
            "; the clone stays in /srv/new-puppet at {}, and a rollout after a fix takes it from there",
            run::short(&broken)
        )),
        "{message}"
    );
    assert_eq!(r.host("host01")["rev_after"], broken.as_str());
    assert_eq!(
        run::on_host(&fleet, "host01", "git -C /srv/new-puppet rev-parse HEAD"),
        broken
    );
    assert_eq!(managed(&fleet), untouched);
}

#[test]
fn bootstrap_without_a_url_is_refused_before_any_host_is_contacted() {
    let fleet = Fleet::up(1);
    let connections = fleet.sshd_connections("host01");
    let report = fleet.dir.join("no-url.json");
    let out = fleet
        .capo()
        .args(["bootstrap", "--report"])
        .arg(&report)
        .output()
        .expect("capo runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "capo: capo bootstrap needs the URL to clone: give --repo URL or set repo_url in the \
         inventory (not set for host01)\n"
    );
    assert!(!report.exists(), "a report was written");
    assert_eq!(fleet.sshd_connections("host01"), connections);
}

#[test]
fn the_clone_belongs_to_whoever_the_steps_run_as() {
    let fleet = Fleet::up_with_user(1, "deploy:/bin/sh");
    let url = origin_url(&fleet);
    // Through sudo, as root: a directory the deploy user could not even create.
    let inv = run::inventory_with(
        &fleet,
        &[
            ("user", "\"deploy\""),
            ("become", "\"sudo\""),
            ("repo_dir", "\"/srv/new-puppet\""),
        ],
    );
    let r = bootstrap(&fleet, &inv, &["--repo", &url]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "bootstrapped"));
    assert_eq!(
        run::on_host(
            &fleet,
            "host01",
            "stat -c %U /srv/new-puppet /srv/new-puppet/.git /srv/new-puppet/manifests/site.pp"
        ),
        "root\nroot\nroot"
    );
    // As the deploy user itself, in its home.
    let inv = run::inventory_with(
        &fleet,
        &[
            ("user", "\"deploy\""),
            ("repo_dir", "\"/srv/home/deploy/new-puppet\""),
        ],
    );
    let r = bootstrap(&fleet, &inv, &["--repo", &url]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "bootstrapped"));
    assert_eq!(
        run::on_host(
            &fleet,
            "host01",
            "stat -c %U /srv/home/deploy/new-puppet /srv/home/deploy/new-puppet/.git/HEAD"
        ),
        "deploy\ndeploy"
    );
}

#[test]
fn bootstrap_installs_the_puppetfiles_modules_so_the_first_rollout_needs_no_modules_step() {
    let fleet = Fleet::up_with_repo(1, "rolesprofiles");
    let url = origin_url(&fleet);
    let inv = inventory(&fleet, "/srv/new-puppet", Some(&url));

    let r = bootstrap(&fleet, &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "bootstrapped"));
    // The noop apply compiled with the modules r10k installed from the forge.
    assert_eq!(r.host("host01")["puppet"]["exit_code"], 0);
    assert!(
        r.stdout.contains("would change:"),
        "the noop apply's pending changes:\n{}",
        r.stdout
    );
    assert_eq!(
        run::on_host(
            &fleet,
            "host01",
            "test -f /srv/new-puppet/modules/motd/metadata.json && \
             test -f /srv/new-puppet/.git/capo.modules && echo installed"
        ),
        "installed"
    );
    let r = run::rollout(&fleet, &["-i", path_arg(&inv)]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "changed"));
    assert_eq!(run::step_names(&r, "host01"), ["sync", "apply"]);
}
