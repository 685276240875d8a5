//! `capo plan` against a real local fleet: a dry run of the target revision (`puppet apply
//! --noop` on a `git archive` of it in a temporary directory) that says what a rollout would
//! change, and leaves every host exactly as it found it. Needs root (the fleet uses unshare
//! and bind mounts); see tests/fleet/README.md.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::run::{self, Run};
use crate::common::run::{git, on_host, on_host_raw};
use crate::common::run::{section, short, step_names};
use crate::common::Fleet;
use serde_json::json;

const INDEX: &str = "modules/capo_demo/files/index.html";
const INDEX_RESOURCE: &str = "File[/srv/managed/www/index.html]";
const NEW_INDEX: &str = "<html><body><h1>capo demo web, second release</h1></body></html>\n";
const SUBJECT: &str = "New index page";

fn sha256(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(bytes)
        .expect("write to sha256sum");
    let out = child.wait_with_output().expect("sha256sum finishes");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

/// How many lines of stdout are exactly `header`.
fn count_lines(stdout: &str, line: &str) -> usize {
    stdout.lines().filter(|l| *l == line).count()
}

/// `(resource, property, status)` of every Puppet event of a host.
pub(crate) fn events(run: &Run, name: &str) -> Vec<(String, String, String)> {
    run.host(name)["puppet"]["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no puppet.events\n{}", run.dump()))
        .iter()
        .map(|e| {
            (
                e["resource"].as_str().unwrap_or("?").to_string(),
                e["property"].as_str().unwrap_or("?").to_string(),
                e["status"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// Every file (recursively) under `dir`, relative path -> absolute path.
fn files_under(dir: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                out.insert(format!("{rel}/"), path.clone());
                walk(root, &path, out);
            } else {
                out.insert(rel, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The one file called `file_name` under `dir`.
fn find_one(dir: &Path, file_name: &str) -> PathBuf {
    let found: Vec<PathBuf> = files_under(dir)
        .into_values()
        .filter(|p| p.file_name().is_some_and(|n| n == file_name))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{file_name} under {}: {found:?}",
        dir.display()
    );
    found.into_iter().next().expect("one")
}

/// What a plan must not change on a host, by name: checkout HEAD and git status, the bytes of
/// the git index, HEAD, config and branch refs, every file under /srv/managed (mode + bytes),
/// every file of the checkout's modules/ (installed from a Puppetfile, or vendored) and the
/// record of their install (.git/capo.modules), and Puppet's own last run summary and report.
pub(crate) fn snapshot(fleet: &Fleet, name: &str) -> BTreeMap<String, Vec<u8>> {
    let checkout = fleet.checkout_dir(name);
    let git_dir = checkout.join(".git");
    let mut snap = BTreeMap::new();
    // The bytes first: nothing below writes to the git directory (status takes no optional
    // locks, so it never refreshes the index).
    for file in ["index", "HEAD", "config"] {
        snap.insert(
            format!(".git/{file}"),
            std::fs::read(git_dir.join(file)).unwrap_or_else(|e| panic!("{name} .git/{file}: {e}")),
        );
    }
    let heads = files_under(&git_dir.join("refs/heads"));
    assert!(heads.contains_key("main"), "{name}: refs/heads: {heads:?}");
    for (rel, path) in heads {
        let bytes = if rel.ends_with('/') {
            Vec::new()
        } else {
            std::fs::read(&path).expect("ref")
        };
        snap.insert(format!(".git/refs/heads/{rel}"), bytes);
    }
    let dir = checkout.to_str().expect("utf-8");
    snap.insert(
        "for-each-ref refs/heads".into(),
        git(&["-C", dir, "for-each-ref", "refs/heads"]).into_bytes(),
    );
    snap.insert("HEAD sha".into(), fleet.checkout_head(name).into_bytes());
    snap.insert(
        "git status --porcelain".into(),
        on_host_raw(
            fleet,
            name,
            "cd /srv/puppet && git --no-optional-locks status --porcelain",
        )
        .into_bytes(),
    );
    for (rel, path) in files_under(&checkout.join("modules")) {
        let bytes = if rel.ends_with('/') {
            Vec::new()
        } else {
            std::fs::read(&path).expect("module file")
        };
        snap.insert(format!("modules/{rel}"), bytes);
    }
    if let Ok(bytes) = std::fs::read(git_dir.join("capo.modules")) {
        snap.insert(".git/capo.modules".into(), bytes);
    }
    let managed = fleet.host(name).dir.join("managed");
    for (rel, path) in files_under(&managed) {
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        let mut value = format!("mode {:o}\n", meta.permissions().mode()).into_bytes();
        if meta.is_file() {
            value.extend(std::fs::read(&path).expect("managed file"));
        }
        snap.insert(format!("managed/{rel}"), value);
    }
    let state = fleet.state_dir(name);
    for file in ["last_run_summary.yaml", "last_run_report.yaml"] {
        let path = find_one(&state, file);
        snap.insert(
            format!("puppet {file}"),
            std::fs::read(&path).expect("puppet last run file"),
        );
    }
    snap
}

/// Names of the entries that differ between two snapshots (the bytes are too long to show).
pub(crate) fn differences(
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
) -> Vec<String> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| {
            let show = |v: Option<&Vec<u8>>| match v {
                None => "(missing)".to_string(),
                Some(b) if b.len() <= 200 => format!("{:?}", String::from_utf8_lossy(b)),
                Some(b) => format!("({} bytes)", b.len()),
            };
            format!("{k}: {} -> {}", show(before.get(k)), show(after.get(k)))
        })
        .collect()
}

/// Runs a plain `puppet apply` on every host at once (Puppet then writes its own last run
/// files, which capo's runs never touch).
fn plain_apply_everywhere(fleet: &Fleet) {
    std::thread::scope(|s| {
        for name in fleet.host_names() {
            s.spawn(move || {
                on_host(
                    fleet,
                    &name,
                    "cd /srv/puppet && puppet apply --modulepath /srv/puppet/modules manifests/site.pp",
                );
            });
        }
    });
}

/// The results directory a host's plan made (from the raw step log, which keeps capo's marker
/// lines), if it made one.
fn plan_results_dir(run: &Run, fleet: &Fleet, name: &str) -> Option<String> {
    let log = run.log_dir(fleet, name).join("plan.stdout");
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let dirs: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("::capo:results="))
        .collect();
    assert!(dirs.len() <= 1, "{name}: {dirs:?}");
    dirs.first().map(|d| d.to_string())
}

/// A fleet of `n` hosts, all converged on the initial commit by a plain rollout.
fn converged(n: usize) -> Fleet {
    let fleet = Fleet::up(n);
    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::all(
            &fleet
                .host_names()
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            "changed"
        ),
        "{}",
        r.dump()
    );
    fleet
}

fn names(fleet: &Fleet) -> Vec<String> {
    fleet.host_names()
}

#[test]
fn plan_reports_what_would_change_and_leaves_every_host_byte_for_byte_as_it_was() {
    let fleet = converged(5);
    let old = fleet.origin_head();
    plain_apply_everywhere(&fleet);
    let new = fleet.commit(INDEX, NEW_INDEX, SUBJECT);
    assert_ne!(old, new);

    let before: Vec<_> = names(&fleet)
        .iter()
        .map(|n| (n.clone(), snapshot(&fleet, n)))
        .collect();

    let r = run::capo(&fleet, "plan", &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[
            ("host01", "would_change"),
            ("host02", "would_change"),
            ("host03", "would_change"),
            ("host04", "unchanged"),
            ("host05", "unchanged"),
        ]),
        "{}",
        r.dump()
    );
    assert_eq!(r.report["mode"], "plan");
    assert!(
        r.report["target_rev"].is_null(),
        "{}",
        r.report["target_rev"]
    );
    let summary = &r.report["summary"];
    assert_eq!(summary["total"], 5);
    assert_eq!(summary["would_change"], 3);
    assert_eq!(summary["unchanged"], 2);
    assert_eq!(summary["changed"], 0);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["ahead"], 0);
    assert_eq!(
        summary["revisions"],
        json!([{"rev": old, "hosts": 5, "ahead": false}])
    );

    let old_index = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fleet/control-repo")
            .join(INDEX),
    )
    .expect("control repo index.html");
    let previous = format!("{{sha256}}{}", sha256(&old_index));
    let desired = format!("{{sha256}}{}", sha256(NEW_INDEX.as_bytes()));
    for name in names(&fleet) {
        let h = r.host(&name);
        let web = name.as_str() <= "host03";
        assert!(h["error"].is_null(), "{name}: {h:#}");
        assert_eq!(h["target"], new.as_str(), "{name}");
        assert_eq!(h["rev_before"], old.as_str(), "{name}");
        assert_eq!(h["rev_after"], old.as_str(), "{name}: a plan moves nothing");
        assert_eq!(
            h["incoming"],
            json!({"count": 1, "commits": [format!("{} {SUBJECT}", short(&new))]}),
            "{name}"
        );
        assert_eq!(step_names(&r, &name), ["plan"], "{name}");
        let puppet = &h["puppet"];
        assert!(puppet["unreadable"].is_null(), "{name}: {puppet:#}");
        assert_eq!(puppet["resources"]["failed"], 0, "{name}");
        assert_eq!(puppet["resources"]["changed"], 0, "{name}");
        assert_eq!(puppet["diffs"], json!([]), "{name}: no --show-diff");
        if web {
            assert_eq!(
                events(&r, &name),
                [(
                    INDEX_RESOURCE.to_string(),
                    "content".to_string(),
                    "noop".to_string()
                )],
                "{name}"
            );
            let e = &puppet["events"][0];
            assert_eq!(e["previous"], previous.as_str(), "{name}");
            assert_eq!(e["desired"], desired.as_str(), "{name}");
            assert_eq!(puppet["resources"]["out_of_sync"], 1, "{name}");
            assert_eq!(
                puppet["event_counts"],
                json!({"total": 1, "success": 0, "failure": 0, "noop": 1}),
                "{name}"
            );
        } else {
            assert_eq!(puppet["events"], json!([]), "{name}");
            assert_eq!(puppet["resources"]["out_of_sync"], 0, "{name}");
            assert_eq!(
                puppet["event_counts"],
                json!({"total": 0, "success": 0, "failure": 0, "noop": 0}),
                "{name}"
            );
        }
    }

    assert_eq!(
        section(&r.stdout, "would change:"),
        [format!(
            "  {INDEX_RESOURCE} content would change on host[01-03] (3 hosts)"
        )],
        "{}",
        r.dump()
    );
    assert_eq!(
        section(&r.stdout, "1 incoming commit on host[01-05] (5 hosts):"),
        [format!("  {} {SUBJECT}", short(&new))],
        "{}",
        r.dump()
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l == format!("revisions: 5 at {} (converged)", short(&old))),
        "{}",
        r.dump()
    );

    // Nothing changed on any host, byte for byte.
    for (name, snap) in &before {
        let after = snapshot(&fleet, name);
        let diff = differences(snap, &after);
        assert!(diff.is_empty(), "{name} changed:\n{}", diff.join("\n"));
        assert_eq!(
            std::fs::read(fleet.managed_path(name, "www/index.html")).ok(),
            (name.as_str() <= "host03").then(|| old_index.clone()),
            "{name}"
        );
    }
    // Each host's temporary copy is gone. (Only this run's own directories are checked: other
    // tests may be planning at the same time in the shared /tmp.)
    for name in names(&fleet) {
        let dir = plan_results_dir(&r, &fleet, &name)
            .unwrap_or_else(|| panic!("{name}: no results marker\n{}", r.dump()));
        let base = dir
            .strip_prefix("/tmp/capo-plan.")
            .unwrap_or_else(|| panic!("{name}: results in {dir}"));
        assert_eq!(base.len(), 6, "{dir}");
        assert!(!Path::new(&dir).exists(), "{name}: {dir} was left behind");
    }
}

#[test]
fn fail_on_changes_exits_3_when_a_host_would_change_and_0_on_a_converged_fleet() {
    // 3 web hosts and 1 db host.
    let fleet = converged(4);
    let head = fleet.origin_head();

    let r = run::capo(&fleet, "plan", &["--fail-on-changes"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::all(&["host01", "host02", "host03", "host04"], "unchanged"),
        "{}",
        r.dump()
    );
    for name in names(&fleet) {
        let h = r.host(&name);
        assert_eq!(h["target"], head.as_str(), "{name}");
        assert_eq!(h["incoming"], json!({"count": 0, "commits": []}), "{name}");
        assert_eq!(h["puppet"]["events"], json!([]), "{name}");
    }
    assert_eq!(r.report["summary"]["would_change"], 0);
    assert_eq!(section(&r.stdout, "would change:"), Vec::<String>::new());
    assert!(!r.stdout.contains("would change:"), "{}", r.dump());

    let new = fleet.commit(INDEX, NEW_INDEX, SUBJECT);
    let r = run::capo(&fleet, "plan", &["--fail-on-changes"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[
            ("host01", "would_change"),
            ("host02", "would_change"),
            ("host03", "would_change"),
            ("host04", "unchanged"),
        ]),
        "{}",
        r.dump()
    );
    assert_eq!(r.report["summary"]["would_change"], 3);
    assert_eq!(
        section(&r.stdout, "would change:"),
        [format!(
            "  {INDEX_RESOURCE} content would change on host[01-03] (3 hosts)"
        )],
        "{}",
        r.dump()
    );
    // Still a plan: nothing moved.
    for name in names(&fleet) {
        assert_eq!(r.host(&name)["target"], new.as_str(), "{name}");
        assert_eq!(fleet.checkout_head(&name), head, "{name}");
    }
}

#[test]
fn show_diff_prints_an_identical_diff_once_for_all_its_hosts() {
    // 3 web hosts and 1 db host.
    let fleet = converged(4);
    fleet.commit(INDEX, NEW_INDEX, SUBJECT);
    let old_index = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fleet/control-repo")
            .join(INDEX),
    )
    .expect("control repo index.html");

    let r = run::capo(&fleet, "plan", &["--show-diff"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[
            ("host01", "would_change"),
            ("host02", "would_change"),
            ("host03", "would_change"),
            ("host04", "unchanged"),
        ]),
        "{}",
        r.dump()
    );
    let expected_diff = format!(
        "--- /srv/managed/www/index.html\n+++ /srv/managed/www/index.html\n@@ -1 +1 @@\n-{old_index}+{NEW_INDEX}"
    );
    for name in ["host01", "host02", "host03"] {
        let diffs = &r.host(name)["puppet"]["diffs"];
        assert_eq!(
            diffs,
            &json!([{"resource": INDEX_RESOURCE, "diff": expected_diff}]),
            "{name}\n{}",
            r.dump()
        );
    }
    assert_eq!(r.host("host04")["puppet"]["diffs"], json!([]));

    let header = format!("diff of {INDEX_RESOURCE} on host[01-03] (3 hosts):");
    assert_eq!(count_lines(&r.stdout, &header), 1, "{}", r.dump());
    assert_eq!(
        r.stdout.matches("diff of ").count(),
        1,
        "one diff block in all\n{}",
        r.dump()
    );
    assert!(
        r.stdout.contains(&format!("{header}\n{expected_diff}")),
        "{}",
        r.dump()
    );
}

#[test]
fn plan_of_an_unknown_revision_fails_every_host_as_sync() {
    let fleet = Fleet::up(3);
    let head = fleet.origin_head();

    let r = run::capo(&fleet, "plan", &["--rev", "nope"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::all(&["host01", "host02", "host03"], "failed"),
        "{}",
        r.dump()
    );
    assert_eq!(r.report["target_rev"], "nope");
    assert_eq!(r.report["summary"]["failed"], 3);
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
        assert_eq!(step_names(&r, &name), ["plan"], "{name}");
        assert_eq!(h["steps"][0]["exit_code"], 1, "{name}");
        assert_eq!(h["rev_before"], head.as_str(), "{name}");
        assert_eq!(h["rev_after"], head.as_str(), "{name}");
        assert!(h["target"].is_null(), "{name}: {h:#}");
        assert!(h["incoming"].is_null(), "{name}: {h:#}");
        assert!(h["puppet"].is_null(), "{name}: {h:#}");
        // It stopped before making a temporary copy, and Puppet never ran.
        assert_eq!(plan_results_dir(&r, &fleet, &name), None, "{name}");
        assert_eq!(fleet.checkout_head(&name), head, "{name}");
        assert!(!fleet.managed_path(&name, "motd").exists(), "{name}");
    }
    assert_eq!(
        section(&r.stdout, "problems:"),
        ["  sync: revision nope not found on origin on host[01-03] (3 hosts)"],
        "{}",
        r.dump()
    );
}

#[test]
fn twenty_hosts_with_two_distinct_changes_fold_into_two_lines() {
    let fleet = Fleet::up(20);
    let old = fleet.origin_head();
    let site = "node /^host(0[1-9]|1[0-2])$/ {\n  \
                  file { '/srv/managed/a': content => \"a\\n\" }\n  \
                  file { '/srv/managed/b': content => \"b\\n\" }\n\
                }\n\
                node default {\n  \
                  file { '/srv/managed/a': content => \"a\\n\" }\n\
                }\n";
    let new = fleet.commit("manifests/site.pp", site, "Two files");

    let r = run::capo(&fleet, "plan", &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let all: Vec<String> = names(&fleet);
    let expected: Vec<(String, String)> = all
        .iter()
        .map(|n| (n.clone(), "would_change".to_string()))
        .collect();
    assert_eq!(r.statuses(), expected, "{}", r.dump());
    assert_eq!(r.report["summary"]["would_change"], 20);
    for (i, name) in all.iter().enumerate() {
        let h = r.host(name);
        assert_eq!(h["target"], new.as_str(), "{name}");
        assert_eq!(h["rev_before"], old.as_str(), "{name}");
        assert_eq!(h["incoming"]["count"], 1, "{name}");
        let mut want = vec![(
            "File[/srv/managed/a]".to_string(),
            "ensure".to_string(),
            "noop".to_string(),
        )];
        if i < 12 {
            want.push((
                "File[/srv/managed/b]".to_string(),
                "ensure".to_string(),
                "noop".to_string(),
            ));
        }
        assert_eq!(events(&r, name), want, "{name}\n{}", r.dump());
        for e in h["puppet"]["events"].as_array().expect("events") {
            assert_eq!(e["previous"], "absent", "{name}: {e:#}");
            assert_eq!(e["desired"], "file", "{name}: {e:#}");
        }
        // Nothing was created.
        assert!(!fleet.managed_path(name, "a").exists(), "{name}");
        assert!(!fleet.managed_path(name, "b").exists(), "{name}");
    }
    assert_eq!(
        section(&r.stdout, "would change:"),
        [
            "  File[/srv/managed/a] ensure would change (absent -> file) on host[01-20] (20 hosts)",
            "  File[/srv/managed/b] ensure would change (absent -> file) on host[01-12] (12 hosts)",
        ],
        "{}",
        r.dump()
    );
    assert_eq!(
        section(&r.stdout, "1 incoming commit on host[01-20] (20 hosts):"),
        [format!("  {} Two files", short(&new))],
        "{}",
        r.dump()
    );
}
