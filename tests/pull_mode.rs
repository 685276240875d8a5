//! `capo pull install|remove` against a real local fleet (each host with its own
//! /usr/local/lib/capo, /etc/cron.d and /etc/systemd/system): the job and the scripts it runs
//! installed as they are in the repository, a cron file whose command, run as cron would run
//! it, pulls and applies a new commit and writes the run record as `pull`; systemd units that
//! `systemd-analyze verify` accepts; installing again changes nothing; a push that finds a
//! pull run holding the lock is told so; removing leaves nothing behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::run::{self, Run};
use crate::common::Fleet;

/// A host's own directory, as mounted at `at` on the host.
fn host_dir(fleet: &Fleet, host: &str, name: &str) -> PathBuf {
    fleet.dir.join("hosts").join(host).join(name)
}

/// The files in `dir`, sorted (none when it does not exist).
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `capo pull ACTION ARGS...` (`args[0]` is the action).
fn pull(fleet: &Fleet, args: &[&str]) -> Run {
    run::capo(fleet, &format!("pull {}", args[0]), &args[1..])
}

/// The command of the cron file's job line (what cron hands to /bin/sh).
fn cron_command(fleet: &Fleet, host: &str) -> String {
    let text = std::fs::read_to_string(host_dir(fleet, host, "etc-cron.d").join("capo-pull"))
        .expect("cron file");
    let line = text.lines().last().unwrap_or("");
    line.splitn(7, ' ').nth(6).unwrap_or("").to_string()
}

#[test]
fn pull_install_writes_the_job_and_a_cron_file_that_pulls_and_applies() {
    let fleet = Fleet::up(2);
    let r = pull(&fleet, &["install", "--interval", "30m", "--splay", "10m"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01", "host02"], "ok"));
    let p = &r.host("host01")["pull"];
    assert_eq!(p["installed"], true, "{p}");
    assert_eq!(p["scheduler"], "cron", "{p}");
    assert_eq!(p["interval_s"], 1800, "{p}");
    assert_eq!(p["changed"], 9, "{p}");

    // The scripts, byte for byte as in the repository.
    let lib = host_dir(&fleet, "host01", "usr-local-lib-capo");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/capo-scripts/sh");
    let installed = files(&lib);
    assert_eq!(
        installed,
        [
            "apply.sh",
            "lib-record.sh",
            "lib-step.sh",
            "lock.sh",
            "modules.sh",
            "pull.sh",
            "sync-rev.sh",
            "sync.sh"
        ]
    );
    for name in &installed {
        assert_eq!(
            std::fs::read(lib.join(name)).expect("installed"),
            std::fs::read(src.join(name)).expect("source"),
            "{name}"
        );
    }
    // The job every 30 min at a minute of this host's own within the 10 min splay.
    let cron = std::fs::read_to_string(host_dir(&fleet, "host01", "etc-cron.d").join("capo-pull"))
        .expect("cron file");
    let line = cron.lines().last().unwrap_or("");
    let minute: u32 = line
        .split('-')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(99);
    assert!(minute <= 10, "{line}");
    assert!(
        line.ends_with(
            "-59/30 * * * * root timeout --kill-after=30s 300s /bin/sh /usr/local/lib/capo/pull.sh \
             /srv/puppet origin main /var/lib/capo r10k puppet production manifests/site.pp modules ''"
        ),
        "{line}"
    );

    // What cron would run: the new commit is pulled and applied, recorded as pull.
    let head = fleet.commit(
        "modules/capo_demo/files/message.txt",
        "from the timer\n",
        "new message",
    );
    let out = fleet.host_exec("host01", &cron_command(&fleet, "host01"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(fleet.checkout_head("host01"), head);
    let s = run::capo(&fleet, "status", &[]);
    let st = &s.host("host01")["host_state"];
    assert_eq!(st["last_run"]["source"], "pull", "{st}");
    assert_eq!(st["state"], "changed", "{st}");
    assert_eq!(st["pull"]["installed"], true, "{st}");
    assert_eq!(st["pull"]["scheduler"], "cron", "{st}");
    // No cron daemon runs on this machine: installed, and status says it will not fire.
    assert_eq!(st["pull"]["active"], false, "{st}");
    let row = s
        .stdout
        .lines()
        .find(|l| l.contains("host01"))
        .expect("row");
    assert!(row.contains("cron every 30m (not running)"), "{row}");
    assert_eq!(fleet.checkout_head("host02"), fleet.checkout_head("host02"));

    // Installing again changes nothing.
    let before = std::fs::metadata(lib.join("pull.sh"))
        .and_then(|m| m.modified())
        .expect("mtime");
    let r = pull(&fleet, &["install", "--interval", "30m", "--splay", "10m"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.host("host01")["pull"]["changed"], 0);
    assert_eq!(
        std::fs::metadata(lib.join("pull.sh"))
            .and_then(|m| m.modified())
            .expect("mtime"),
        before
    );
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("host01"))
        .expect("row");
    assert!(
        row.contains("installed: cron every 30m (unchanged"),
        "{row}"
    );
}

#[test]
fn pull_install_with_systemd_writes_units_systemd_accepts_and_remove_leaves_nothing() {
    let fleet = Fleet::up(1);
    let r = pull(
        &fleet,
        &["install", "--scheduler", "systemd", "--interval", "15m"],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.host("host01")["pull"]["scheduler"], "systemd");
    let units = host_dir(&fleet, "host01", "etc-systemd-system");
    assert_eq!(files(&units), ["capo-pull.service", "capo-pull.timer"]);
    assert_eq!(
        files(&host_dir(&fleet, "host01", "etc-cron.d")),
        Vec::<String>::new()
    );
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(units.join("capo-pull.service"))
        .arg(units.join("capo-pull.timer"))
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("capo-pull"),
        "{stderr}"
    );
    let timer = std::fs::read_to_string(units.join("capo-pull.timer")).expect("timer");
    assert!(timer.contains("\nOnUnitActiveSec=900s\n"), "{timer}");
    let service = std::fs::read_to_string(units.join("capo-pull.service")).expect("service");
    assert!(
        service
            .contains("\nExecStart=/bin/sh /usr/local/lib/capo/pull.sh /srv/puppet origin main "),
        "{service}"
    );
    // This machine runs no systemd: the units are there, the timer could not be started.
    assert_eq!(r.host("host01")["pull"]["active"], false);

    // A rollout leaves a record; remove takes pull mode away and keeps the records.
    let push = run::rollout(&fleet, &[]);
    assert_eq!(push.code, 0, "{}", push.dump());
    let r = pull(&fleet, &["remove"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.host("host01")["pull"]["installed"], false);
    for dir in ["usr-local-lib-capo", "etc-systemd-system", "etc-cron.d"] {
        assert_eq!(
            files(&host_dir(&fleet, "host01", dir)),
            Vec::<String>::new(),
            "{dir}"
        );
    }
    assert!(host_dir(&fleet, "host01", "var-lib-capo")
        .join("last_run.json")
        .exists());
    let s = run::capo(&fleet, "status", &[]);
    assert_eq!(s.host("host01")["host_state"]["pull"]["installed"], false);
}

#[test]
fn a_push_that_finds_a_pull_run_is_told_so_and_the_pull_finishes() {
    let fleet = Fleet::up(1);
    let r = pull(&fleet, &["install"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    fleet.commit(
        "manifests/site.pp",
        "node default {\n  exec { 'slow':\n    command => \"/bin/sh -c 'sleep 6'\",\n  }\n}\n",
        "a slow apply",
    );
    let command = cron_command(&fleet, "host01");
    let job = {
        std::thread::scope(|scope| {
            let job = scope.spawn(|| fleet.host_exec("host01", &command));
            // Wait for the pull's apply to run, then push.
            if !fleet.wait_for_proc("host01", "sleep 6", Duration::from_secs(30)) {
                let out = job.join().expect("the pull job");
                panic!("the pull never got to its apply: {out:?}");
            }
            let push = run::rollout(&fleet, &[]);
            assert_eq!(push.code, 1, "{}", push.dump());
            let (kind, message) = push.error("host01");
            assert_eq!(kind, "locked", "{}", push.dump());
            assert!(
                message.starts_with("host is locked by capo pull on host01 (pid "),
                "{message}"
            );
            job.join().expect("the pull job")
        })
    };
    assert_eq!(job.status.code(), Some(2), "{job:?}");
    let record = run::on_host(&fleet, "host01", "cat /var/lib/capo/last_run.json");
    assert!(record.contains("\"source\": \"pull\""), "{record}");
}

#[test]
fn only_if_changed_skips_an_unchanged_host_until_something_changes_and_unpin_ends_a_pin() {
    let fleet = Fleet::up(1);
    let r = pull(&fleet, &["install", "--only-if-changed", "--max-age", "1h"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let command = cron_command(&fleet, "host01");
    assert!(
        command.contains("/usr/local/lib/capo/pull.sh --only-if-changed=3600 /srv/puppet "),
        "{command}"
    );
    let runs = || run::on_host(&fleet, "host01", "ls /var/lib/capo/runs | wc -l");

    // No run yet: it applies, and records it.
    let out = fleet.host_exec("host01", &command);
    assert!(matches!(out.status.code(), Some(0 | 2)), "{out:?}");
    assert_eq!(runs(), "1");
    // Nothing new since, and that run went well: skipped, no new record.
    let out = fleet.host_exec("host01", &command);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("capo-pull: skipped: nothing changed at "),
        "{said}"
    );
    assert_eq!(runs(), "1");
    // A new commit: applied.
    let head = fleet.commit("modules/capo_demo/files/message.txt", "new\n", "new");
    let out = fleet.host_exec("host01", &command);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(fleet.checkout_head("host01"), head);
    assert_eq!(runs(), "2");

    // Unpin: a pin left by a rollout --rev is gone, and said so; a second time, nothing to do.
    let push = run::rollout(&fleet, &["--rev", &head]);
    assert_eq!(push.code, 0, "{}", push.dump());
    assert!(host_dir(&fleet, "host01", "var-lib-capo")
        .join("pin")
        .exists());
    let r = pull(&fleet, &["unpin"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.host("host01")["unpinned"], head.as_str());
    assert!(!host_dir(&fleet, "host01", "var-lib-capo")
        .join("pin")
        .exists());
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("host01"))
        .expect("row");
    assert!(row.contains("unpinned (was pinned at "), "{row}");
    let r = pull(&fleet, &["unpin"]);
    assert_eq!(r.host("host01")["unpinned"], "");
}
