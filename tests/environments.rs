//! The checkout is a Puppet environment: `capo plan` and `capo rollout` against a fleet of the
//! roles/profiles control repo (`fleet.sh up --repo rolesprofiles`: `environment.conf`, an
//! environment-level `hiera.yaml` with common and per-node data, site modules with a custom
//! fact; each host's environment `production` links to its checkout, as on a masterless
//! site). Everything Puppet reads from the repo must come from the revision being applied or
//! planned, and Puppet's config version is the commit. Needs root; see tests/fleet/README.md.

use crate::common::run::{self, Run};
use crate::common::Fleet;
use crate::plan::{differences, events, snapshot};
use std::collections::BTreeMap;

const COMMON: &str = "data/common.yaml";
const HOST01: &str = "data/nodes/host01.yaml";

const NEW_COMMON: &str = "---
motd::message: \"Managed by Puppet (capo roles/profiles fleet)\"
profile::web::greeting: \"Hello from the new data\"
profile::web::pages:
  - index
  - about
  - contact
  - news
  - help
profile::db::port: 5432
";

const NEW_HOST01: &str = "---
motd::message: \"host01: new node data\"
";

/// Every host's `puppet.config_version` in a report.
fn config_versions(r: &Run, fleet: &Fleet) -> Vec<(String, String)> {
    fleet
        .host_names()
        .into_iter()
        .map(|n| {
            let v = r.host(&n)["puppet"]["config_version"]
                .as_str()
                .unwrap_or_else(|| panic!("{n}: no puppet.config_version\n{}", r.dump()))
                .to_string();
            (n, v)
        })
        .collect()
}

fn each(fleet: &Fleet, value: &str) -> Vec<(String, String)> {
    let names = fleet.host_names();
    run::all(&names.iter().map(String::as_str).collect::<Vec<_>>(), value)
}

/// Every host's snapshot (plan.rs), to check afterwards that a plan touched nothing.
fn snapshots(fleet: &Fleet) -> Vec<(String, BTreeMap<String, Vec<u8>>)> {
    fleet
        .host_names()
        .into_iter()
        .map(|n| {
            let s = snapshot(fleet, &n);
            (n, s)
        })
        .collect()
}

fn managed(fleet: &Fleet, name: &str, rel: &str) -> String {
    std::fs::read_to_string(fleet.managed_path(name, rel))
        .unwrap_or_else(|e| panic!("{name}: {rel}: {e}"))
}

#[test]
fn hiera_data_is_planned_and_applied_from_the_target_revision() {
    let fleet = Fleet::up_with_repo(3, "rolesprofiles");
    let first = fleet.origin_head();

    // The first rollout: environment.conf's modulepath, the environment's Hiera data and the
    // repo's custom fact are all the checkout's.
    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::all(&["host01", "host02", "host03"], "changed")
    );
    assert_eq!(config_versions(&r, &fleet), each(&fleet, &first));
    assert_eq!(
        managed(&fleet, "host01", "motd"),
        "host01: the first web host\n"
    );
    assert_eq!(
        managed(&fleet, "host02", "motd"),
        "Managed by Puppet (capo roles/profiles fleet)\n"
    );
    assert_eq!(
        managed(&fleet, "host02", "www/index.html"),
        "<html><body><h1>Welcome</h1><p>index</p></body></html>\n"
    );
    assert_eq!(managed(&fleet, "host03", "db.conf"), "port = 5432\n");
    for name in fleet.host_names() {
        assert_eq!(managed(&fleet, &name, "site"), "capo-rolesprofiles\n");
    }

    // The site's own run (environment production = the checkout) agrees, and leaves Puppet's
    // last-run files for the snapshots.
    run::site_runs(&fleet);

    // A commit that changes only common Hiera data: the web hosts would change, the db host
    // not, and nothing on any host is touched.
    let second = fleet.commit(COMMON, NEW_COMMON, "New web greeting");
    let before = snapshots(&fleet);
    let p = run::capo(&fleet, "plan", &[]);
    assert_eq!(p.code, 0, "{}", p.dump());
    assert_eq!(
        p.statuses(),
        run::pairs(&[
            ("host01", "would_change"),
            ("host02", "would_change"),
            ("host03", "unchanged"),
        ]),
        "{}",
        p.dump()
    );
    assert_eq!(config_versions(&p, &fleet), each(&fleet, &second));
    eprintln!("capo plan of a common Hiera data change:\n{}", p.stdout);
    for name in ["host01", "host02"] {
        let ev = events(&p, name);
        assert_eq!(ev.len(), 5, "{name}: {ev:?}");
        assert!(
            ev.iter()
                .all(|(res, prop, st)| res.starts_with("File[/srv/managed/www/")
                    && prop == "content"
                    && st == "noop"),
            "{name}: {ev:?}"
        );
    }
    assert!(events(&p, "host03").is_empty());
    for (name, snap) in &before {
        let diff = differences(snap, &snapshot(&fleet, name));
        assert!(diff.is_empty(), "plan touched {name}: {diff:#?}");
    }

    // The rollout changes exactly those hosts, and Puppet records the commit.
    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[
            ("host01", "changed"),
            ("host02", "changed"),
            ("host03", "unchanged"),
        ]),
        "{}",
        r.dump()
    );
    assert_eq!(config_versions(&r, &fleet), each(&fleet, &second));
    assert_eq!(
        managed(&fleet, "host02", "www/index.html"),
        "<html><body><h1>Hello from the new data</h1><p>index</p></body></html>\n"
    );

    // A commit that changes one node's data file: exactly that host.
    let third = fleet.commit(HOST01, NEW_HOST01, "New motd for host01");
    let before = snapshots(&fleet);
    let p = run::capo(&fleet, "plan", &[]);
    assert_eq!(p.code, 0, "{}", p.dump());
    assert_eq!(
        p.statuses(),
        run::pairs(&[
            ("host01", "would_change"),
            ("host02", "unchanged"),
            ("host03", "unchanged"),
        ]),
        "{}",
        p.dump()
    );
    assert_eq!(
        events(&p, "host01"),
        [(
            "File[/srv/managed/motd]".to_string(),
            "content".to_string(),
            "noop".to_string()
        )]
    );
    for (name, snap) in &before {
        let diff = differences(snap, &snapshot(&fleet, name));
        assert!(diff.is_empty(), "plan touched {name}: {diff:#?}");
    }
    eprintln!("capo plan of a node data change:\n{}", p.stdout);

    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[
            ("host01", "changed"),
            ("host02", "unchanged"),
            ("host03", "unchanged"),
        ]),
        "{}",
        r.dump()
    );
    assert_eq!(config_versions(&r, &fleet), each(&fleet, &third));
    assert_eq!(managed(&fleet, "host01", "motd"), "host01: new node data\n");
}
