//! Modules from a Puppetfile: against a fleet of the roles/profiles control repo, whose
//! Puppetfile takes the `motd` module from the fleet's forge (`/srv/forge/motd.git`, tags
//! v1.0.0 and v1.1.0; see tests/fleet/README.md), real r10k installs them on each host as the
//! step `modules`, only when the Puppetfile changed or its modules are gone, and a plan
//! installs the target's into its temporary copy. Needs root.

use crate::common::run::{self, step_names, Run};
use crate::common::Fleet;
use crate::plan::{differences, snapshot};

/// The Puppetfile of the roles/profiles repo, with `motd` at `tag`.
fn puppetfile(tag: &str) -> String {
    format!(
        "# Modules from outside the repo.\nmod 'motd',\n  :git => '/srv/forge/motd.git',\n  :tag => '{tag}'\n"
    )
}

fn motd(fleet: &Fleet, name: &str) -> String {
    std::fs::read_to_string(fleet.managed_path(name, "motd"))
        .unwrap_or_else(|e| panic!("{name}: motd: {e}"))
}

/// The version in the metadata.json of the motd module in a host's checkout.
fn installed(fleet: &Fleet, name: &str) -> String {
    let path = fleet.checkout_dir(name).join("modules/motd/metadata.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let json: serde_json::Value = serde_json::from_str(&text).expect("metadata.json");
    json["version"].as_str().unwrap_or("?").to_string()
}

fn steps_of_every_host(r: &Run, fleet: &Fleet) -> Vec<(String, Vec<String>)> {
    fleet
        .host_names()
        .into_iter()
        .map(|n| {
            let steps = step_names(r, &n);
            (n, steps)
        })
        .collect()
}

fn every_host(fleet: &Fleet, steps: &[&str]) -> Vec<(String, Vec<String>)> {
    fleet
        .host_names()
        .into_iter()
        .map(|n| (n, steps.iter().map(|s| s.to_string()).collect()))
        .collect()
}

#[test]
fn puppetfile_modules_are_installed_before_apply_and_only_when_the_puppetfile_changed() {
    let fleet = Fleet::up_with_repo(3, "rolesprofiles");
    let names = ["host01", "host02", "host03"];

    // A fresh checkout has no modules/: the first rollout installs them, then applies.
    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&names, "changed"));
    assert_eq!(
        steps_of_every_host(&r, &fleet),
        every_host(&fleet, &["sync", "modules", "apply"])
    );
    let modules = &r.host("host02")["steps"][1];
    assert_eq!(
        modules["command"],
        "r10k puppetfile install",
        "{}",
        r.dump()
    );
    assert_eq!(modules["exit_code"], 0);
    assert_eq!(installed(&fleet, "host02"), "1.0.0");
    assert_eq!(
        motd(&fleet, "host02"),
        "Managed by Puppet (capo roles/profiles fleet)\n"
    );
    // Nothing left behind in the checkout for git to see (modules/ is ignored).
    for name in names {
        assert_eq!(
            run::on_host(&fleet, name, "cd /srv/puppet && git status --porcelain"),
            ""
        );
    }

    run::site_runs(&fleet);

    // The same Puppetfile, its modules all there: no modules step.
    fleet.commit("data/nodes/host03.yaml", "---\n", "host03 has node data");
    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        steps_of_every_host(&r, &fleet),
        every_host(&fleet, &["sync", "apply"])
    );

    // A module gone from one host: that host installs again, and only that one.
    run::on_host(&fleet, "host03", "rm -rf /srv/puppet/modules/motd");
    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(step_names(&r, "host03"), ["sync", "modules", "apply"]);
    assert_eq!(step_names(&r, "host01"), ["sync", "apply"]);
    assert_eq!(r.host("host03")["status"], "unchanged", "{}", r.dump());

    // The Puppetfile moves motd to v1.1.0: the plan installs it into its copy and sees every
    // motd change, touching nothing on the hosts (their modules stay at 1.0.0).
    let bump = fleet.commit("Puppetfile", &puppetfile("v1.1.0"), "motd 1.1.0");
    let before: Vec<_> = names.iter().map(|n| (n, snapshot(&fleet, n))).collect();
    let p = run::capo(&fleet, "plan", &[]);
    assert_eq!(p.code, 0, "{}", p.dump());
    assert_eq!(
        p.statuses(),
        run::all(&names, "would_change"),
        "{}",
        p.dump()
    );
    for (name, snap) in &before {
        let diff = differences(snap, &snapshot(&fleet, name));
        assert!(diff.is_empty(), "plan touched {name}: {diff:#?}");
        assert_eq!(installed(&fleet, name), "1.0.0");
    }
    assert!(
        p.stdout
            .contains("File[/srv/managed/motd] content would change on host[01-03] (3 hosts)"),
        "{}",
        p.dump()
    );

    // The rollout installs v1.1.0 and applies it.
    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&names, "changed"), "{}", r.dump());
    assert_eq!(
        steps_of_every_host(&r, &fleet),
        every_host(&fleet, &["sync", "modules", "apply"])
    );
    for name in names {
        assert_eq!(fleet.checkout_head(name), bump);
        assert_eq!(installed(&fleet, name), "1.1.0");
        assert!(
            motd(&fleet, name).ends_with("\n-- motd 1.1.0\n"),
            "{name}: {:?}",
            motd(&fleet, name)
        );
    }
}

#[test]
fn a_puppetfile_ref_that_does_not_exist_fails_every_host_before_puppet_runs() {
    let fleet = Fleet::up_with_repo(3, "rolesprofiles");
    let names = ["host01", "host02", "host03"];
    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    run::site_runs(&fleet);

    let broken = fleet.commit("Puppetfile", &puppetfile("v9.9.9"), "motd 9.9.9");
    let message = "r10k puppetfile install failed: Unable to manage Puppetfile content 'motd': \
                   Could not resolve desired ref 'v9.9.9' and no default provided";

    // The plan: every host failed, kind modules, nothing touched.
    let before: Vec<_> = names.iter().map(|n| (n, snapshot(&fleet, n))).collect();
    let p = run::capo(&fleet, "plan", &[]);
    assert_eq!(p.code, 1, "{}", p.dump());
    assert_eq!(p.statuses(), run::all(&names, "failed"), "{}", p.dump());
    for name in names {
        assert_eq!(
            p.error(name),
            ("modules".to_string(), message.to_string()),
            "{}",
            p.dump()
        );
    }
    for (name, snap) in &before {
        let diff = differences(snap, &snapshot(&fleet, name));
        assert!(diff.is_empty(), "plan touched {name}: {diff:#?}");
    }

    // The rollout: the checkout moves (sync), the modules step fails, Puppet never runs:
    // Puppet's own last-run files and every managed file stay as they were.
    let before: Vec<_> = names.iter().map(|n| (n, snapshot(&fleet, n))).collect();
    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&names, "failed"), "{}", r.dump());
    for (name, snap) in &before {
        assert_eq!(
            r.error(name),
            ("modules".to_string(), message.to_string()),
            "{}",
            r.dump()
        );
        assert_eq!(step_names(&r, name), ["sync", "modules"], "{}", r.dump());
        assert!(r.host(name)["puppet"].is_null(), "{}", r.dump());
        assert_eq!(fleet.checkout_head(name), broken);
        let after = snapshot(&fleet, name);
        let diff: Vec<String> = differences(snap, &after)
            .into_iter()
            .filter(|d| d.starts_with("managed/") || d.starts_with("puppet "))
            .collect();
        assert!(diff.is_empty(), "Puppet ran on {name}: {diff:#?}");
    }
    assert!(
        run::section(&r.stdout, "problems:")
            .iter()
            .any(|l| l.contains(&format!("modules: {message} on host[01-03] (3 hosts)"))),
        "{}",
        r.dump()
    );
    // Not recorded as installed: the next rollout tries again (and fails the same way).
    let again = run::rollout(&fleet, &[]);
    assert_eq!(step_names(&again, "host01"), ["sync", "modules"]);
}

#[test]
fn a_host_without_the_installer_fails_with_the_command_that_installs_it() {
    let fleet = Fleet::up_with_repo(3, "rolesprofiles");
    // host02 has no r10k: hide it (a mount inside host02's own mount namespace).
    run::on_host(&fleet, "host02", "mount --bind /dev/null /usr/bin/r10k");
    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[
            ("host01", "changed"),
            ("host02", "failed"),
            ("host03", "changed"),
        ]),
        "{}",
        r.dump()
    );
    assert_eq!(
        r.error("host02"),
        (
            "modules".to_string(),
            "r10k not found on host, and the checkout has a Puppetfile; install it \
             (apt-get install r10k) or set puppetfile = \"ignore\""
                .to_string()
        )
    );
    assert_eq!(step_names(&r, "host02"), ["sync", "modules"]);
    assert!(!fleet.managed_path("host02", "motd").exists());

    // The other installer, set in the inventory, puts the same modules there.
    let inventory = run::inventory_with(&fleet, &[("puppetfile", "\"g10k\"")]);
    let r = run::rollout(&fleet, &["-i", run::path_arg(&inventory), "-l", "host02"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::pairs(&[("host02", "changed")]));
    let modules = &r.host("host02")["steps"][1];
    assert_eq!(modules["command"], "g10k -puppetfile", "{}", r.dump());
    assert_eq!(installed(&fleet, "host02"), "1.0.0");
    assert_eq!(
        motd(&fleet, "host02"),
        "Managed by Puppet (capo roles/profiles fleet)\n"
    );
}
