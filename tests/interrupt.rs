//! SIGINT/SIGTERM sent to the real capo process mid-rollout, against a real local fleet: the
//! first signal starts no new hosts and lets hosts in flight finish (within `--grace`), a
//! second one (or the grace period running out) stops them on the host, and the report is
//! still written. Needs root (the fleet uses unshare and bind mounts); see tests/fleet/README.md.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use crate::common::run::{self, all, Run};
use crate::common::Fleet;

/// A manifest whose apply sleeps `secs` seconds (an `exec` always runs).
fn sleeping_manifest(secs: u32) -> String {
    format!("node default {{ exec {{ 'slow': command => '/bin/sleep {secs}' }} }}")
}

/// Waits until `pattern` runs on every host in `names`; if it never does, ends capo and fails.
fn wait_until_running(
    fleet: &Fleet,
    names: &[&str],
    pattern: &str,
    child: Child,
    report: &Path,
) -> Child {
    for name in names {
        if !fleet.wait_for_proc(name, pattern, Duration::from_secs(60)) {
            let (r, _) = run::wait_within(child, report, Duration::from_secs(120));
            panic!("{pattern:?} never ran on {name}\n{}", r.dump());
        }
    }
    child
}

/// The summary line of the table (`N hosts: ...`).
fn summary_line(r: &Run) -> &str {
    r.stdout
        .lines()
        .find(|l| l.contains(" hosts: ") || l.contains(" host: "))
        .unwrap_or_else(|| panic!("no summary line\n{}", r.dump()))
}

#[test]
fn a_first_sigint_lets_hosts_in_flight_finish_and_skips_the_rest() {
    let fleet = Fleet::up(4);
    fleet.commit("manifests/site.pp", &sleeping_manifest(6), "sleep 6");
    let (child, report) = run::spawn_rollout(&fleet, &["-j", "2", "--grace", "60s"]);
    let child = wait_until_running(&fleet, &["host01", "host02"], "sleep 6", child, &report);
    run::signal(&child, "INT");
    let (r, _) = run::wait_within(child, &report, Duration::from_secs(90));

    assert_eq!(r.code, 130, "{}", r.dump());
    assert!(report.is_file(), "no report at {}", report.display());
    assert_eq!(
        r.statuses(),
        run::pairs(&[
            ("host01", "changed"),
            ("host02", "changed"),
            ("host03", "skipped"),
            ("host04", "skipped"),
        ]),
        "{}",
        r.dump()
    );
    for name in ["host01", "host02"] {
        assert!(r.host(name)["error"].is_null(), "{name}\n{}", r.dump());
        assert_eq!(r.host(name)["steps"][1]["exit_code"], 2, "{name}");
    }
    for name in ["host03", "host04"] {
        assert_eq!(
            r.error(name),
            (
                "interrupted".to_string(),
                "not started: interrupted by SIGINT".to_string()
            ),
            "{name}\n{}",
            r.dump()
        );
        assert_eq!(r.host(name)["steps"].as_array().map(Vec::len), Some(0));
        assert_eq!(r.host(name)["connect_attempts"], 0, "{name}");
        // Never contacted: Puppet never wrote its files there.
        assert!(!fleet.managed_path(name, "motd").exists(), "{name}");
        assert!(!fleet.managed_path(name, "role").exists(), "{name}");
    }
    assert_eq!(r.report["interrupted"], "SIGINT", "{}", r.dump());
    assert_eq!(r.report["summary"]["total"], 4);
    assert_eq!(r.report["summary"]["changed"], 2);
    assert_eq!(r.report["summary"]["skipped"], 2);
    assert!(
        r.stderr.contains("capo: SIGINT: starting no new hosts"),
        "{}",
        r.dump()
    );
    let line = summary_line(&r);
    assert!(
        line.starts_with("4 hosts: 2 changed, 0 unchanged, 0 failed, 0 unreachable, 2 skipped in "),
        "{line}"
    );
    assert!(line.ends_with("(interrupted by SIGINT)"), "{line}");
}

#[test]
fn a_second_sigint_stops_hosts_in_flight_now() {
    let fleet = Fleet::up(2);
    let names = ["host01", "host02"];
    fleet.commit("manifests/site.pp", &sleeping_manifest(60), "sleep 60");
    let (child, report) = run::spawn_rollout(&fleet, &[]);
    let child = wait_until_running(&fleet, &names, "sleep 60", child, &report);
    run::signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(500));
    run::signal(&child, "INT");
    let (r, took) = run::wait_within(child, &report, Duration::from_secs(60));

    assert!(
        took < Duration::from_secs(15),
        "capo took {took:?} to stop after the second SIGINT\n{}",
        r.dump()
    );
    assert_eq!(r.code, 130, "{}", r.dump());
    assert_eq!(r.statuses(), all(&names, "cancelled"), "{}", r.dump());
    for name in names {
        assert_eq!(
            r.error(name),
            (
                "interrupted".to_string(),
                "apply cut short: interrupted by a second SIGINT".to_string()
            ),
            "{name}\n{}",
            r.dump()
        );
        assert!(r.host(name)["steps"][1]["exit_code"].is_null(), "{name}");
    }
    assert_eq!(r.report["interrupted"], "SIGINT");
    assert_eq!(r.report["summary"]["total"], 2);
    assert_eq!(r.report["summary"]["cancelled"], 2);
    assert!(
        r.stderr
            .contains("capo: interrupted by a second SIGINT: stopping hosts in flight"),
        "{}",
        r.dump()
    );
    let line = summary_line(&r);
    assert!(
        line.starts_with(
            "2 hosts: 0 changed, 0 unchanged, 0 failed, 0 unreachable, 2 cancelled in "
        ),
        "{line}"
    );
    assert!(line.ends_with("(interrupted by SIGINT)"), "{line}");
    for name in names {
        run::assert_nothing_left(&fleet, name);
    }
}

#[test]
fn hosts_in_flight_are_stopped_when_the_grace_period_runs_out() {
    let fleet = Fleet::up(1);
    fleet.commit("manifests/site.pp", &sleeping_manifest(60), "sleep 60");
    let (child, report) = run::spawn_rollout(&fleet, &["--grace", "2s"]);
    let child = wait_until_running(&fleet, &["host01"], "sleep 60", child, &report);
    run::signal(&child, "INT");
    let (r, took) = run::wait_within(child, &report, Duration::from_secs(60));

    assert!(
        took >= Duration::from_secs(2),
        "capo did not wait out the 2s grace period: {took:?}\n{}",
        r.dump()
    );
    assert!(
        took < Duration::from_secs(15),
        "capo took {took:?} after the SIGINT with --grace 2s\n{}",
        r.dump()
    );
    assert_eq!(r.code, 130, "{}", r.dump());
    assert_eq!(r.statuses(), all(&["host01"], "cancelled"), "{}", r.dump());
    assert_eq!(
        r.error("host01"),
        (
            "interrupted".to_string(),
            "apply cut short: interrupted by SIGINT; the grace period of 2s ran out".to_string()
        ),
        "{}",
        r.dump()
    );
    assert!(r.host("host01")["steps"][1]["exit_code"].is_null());
    assert_eq!(r.report["interrupted"], "SIGINT");
    run::assert_nothing_left(&fleet, "host01");
}

#[test]
fn sigterm_is_handled_like_sigint() {
    let fleet = Fleet::up(2);
    fleet.commit("manifests/site.pp", &sleeping_manifest(4), "sleep 4");
    let (child, report) = run::spawn_rollout(&fleet, &["-j", "1", "--grace", "60s"]);
    let child = wait_until_running(&fleet, &["host01"], "sleep 4", child, &report);
    run::signal(&child, "TERM");
    let (r, _) = run::wait_within(child, &report, Duration::from_secs(90));

    assert_eq!(r.code, 130, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[("host01", "changed"), ("host02", "skipped")]),
        "{}",
        r.dump()
    );
    assert_eq!(
        r.error("host02"),
        (
            "interrupted".to_string(),
            "not started: interrupted by SIGTERM".to_string()
        ),
        "{}",
        r.dump()
    );
    assert_eq!(r.report["interrupted"], "SIGTERM", "{}", r.dump());
    assert_eq!(r.report["summary"]["skipped"], 1);
    assert!(
        r.stderr.contains("capo: SIGTERM: starting no new hosts"),
        "{}",
        r.dump()
    );
    assert!(
        summary_line(&r).ends_with("(interrupted by SIGTERM)"),
        "{}",
        r.dump()
    );
}
