//! `become = "sudo"`: a deploy user logs in with its key and every command capo sends runs
//! through the host's real sudo, as root. NOPASSWD sudo rolls out and `capo exec` runs as
//! root; a sudo that wants a password fails the host at once without `--ask-become-pass`, and
//! with it (under a real terminal) the right password rolls out and a wrong one is refused.
//! The password reaches no command line on the host, no log, report or events file, and not
//! the terminal.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::run::{self, path_arg};
use crate::common::tmux::{sh_quote, Tmux};
use crate::common::Fleet;

/// The deploy user, whose login shell is tcsh: the sudo line must survive it too.
const USER: &str = "deploy";
const SPEC: &str = "deploy:/usr/bin/tcsh";

/// The sudo password of the fleets that want one; distinctive, so that a grep finds it only
/// where it leaked.
const PASSWORD: &str = "Sudo-pw-4f1c9e-capo";

/// The fleet's inventory as `deploy` with `become = "sudo"`, on root's checkout.
fn as_deploy_with_sudo(fleet: &Fleet) -> PathBuf {
    run::inventory_with(
        fleet,
        &[("user", &format!("\"{USER}\"")), ("become", "\"sudo\"")],
    )
}

/// A change to roll out: a new message in every motd.
fn commit_change(fleet: &Fleet) -> String {
    fleet.commit(
        "modules/capo_demo/files/message.txt",
        "rolled out through sudo\n",
        "new message",
    )
}

#[test]
fn a_deploy_user_with_nopasswd_sudo_rolls_out_as_root() {
    let fleet = Fleet::up_with_user(1, SPEC);
    let before = fleet.checkout_head("host01");
    let head = commit_change(&fleet);
    let inventory = as_deploy_with_sudo(&fleet);
    let inventory = path_arg(&inventory);
    // The checkout is root's: deploy alone could not even take the lock there.
    assert_eq!(
        run::on_host(&fleet, "host01", "stat -c %U /srv/puppet/.git"),
        "root"
    );

    let first = run::rollout(&fleet, &["-i", inventory]);
    assert_eq!(first.code, 0, "{}", first.dump());
    assert_eq!(first.statuses(), run::all(&["host01"], "changed"));
    assert_eq!(first.host("host01")["rev_before"], before.as_str());
    assert_eq!(first.host("host01")["rev_after"], head.as_str());
    assert_eq!(first.host("host01")["locked"], true, "{}", first.dump());
    assert_eq!(fleet.checkout_head("host01"), head);
    // Written by root: Puppet's files, and git's in the checkout.
    assert_eq!(
        run::on_host(
            &fleet,
            "host01",
            "stat -c %U /srv/managed/motd /srv/puppet/.git/FETCH_HEAD /srv/puppet/.git/capo.lock; grep -c 'rolled out through sudo' /srv/managed/motd"
        ),
        "root\nroot\nroot\n1"
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
            "id",
            "-u;",
            "id",
            "-un;",
            "echo",
            "$SUDO_USER",
        ],
    );
    assert_eq!(exec.code, 0, "{}", exec.dump());
    assert_eq!(exec.statuses(), run::all(&["host01"], "ok"));
    assert_eq!(
        exec.host("host01")["steps"][0]["stdout_tail"],
        format!("0\nroot\n{USER}\n"),
        "{}",
        exec.dump()
    );
}

#[test]
fn a_sudo_that_wants_a_password_fails_the_host_at_once_without_ask_become_pass() {
    let fleet = Fleet::up_with_sudo_password(2, SPEC, PASSWORD);
    let before = fleet.checkout_head("host01");
    commit_change(&fleet);
    let inventory = as_deploy_with_sudo(&fleet);
    let inventory = path_arg(&inventory);
    let message = "sudo requires a password for deploy (use --ask-become-pass or NOPASSWD)";

    let rollout = run::rollout(&fleet, &["-i", inventory]);
    assert_eq!(rollout.code, 1, "{}", rollout.dump());
    assert_eq!(
        rollout.statuses(),
        run::all(&["host01", "host02"], "failed")
    );
    for host in ["host01", "host02"] {
        assert_eq!(
            rollout.error(host),
            ("auth".to_string(), message.to_string())
        );
        // It failed at the lock holder, the first command: no step ran.
        assert_eq!(run::step_names(&rollout, host), Vec::<String>::new());
        assert_eq!(fleet.checkout_head(host), before);
        assert_eq!(
            run::on_host(
                &fleet,
                host,
                "ls /srv/managed | wc -l; ls /srv/puppet/.git | grep -c capo || true"
            ),
            "0\n0"
        );
    }
    assert!(
        rollout
            .stdout
            .contains(&format!("auth: {message} on host[01-02] (2 hosts)")),
        "{}",
        rollout.dump()
    );

    // The same for a plan and an ad-hoc command, whose first command is their step.
    for (sub, args) in [
        ("plan", vec!["-i", inventory]),
        (
            "exec",
            vec!["-i", inventory, "--", "touch", "/srv/managed/x"],
        ),
    ] {
        let run = run::capo(&fleet, sub, &args);
        assert_eq!(run.code, 1, "{sub}: {}", run.dump());
        assert_eq!(
            run.error("host01"),
            ("auth".to_string(), message.to_string()),
            "{sub}"
        );
    }
    assert_eq!(
        run::on_host(&fleet, "host01", "ls /srv/managed | wc -l"),
        "0"
    );
}

#[test]
fn ask_become_pass_without_a_terminal_is_a_usage_error_and_contacts_nobody() {
    let fleet = Fleet::up_with_sudo_password(1, SPEC, PASSWORD);
    let inventory = as_deploy_with_sudo(&fleet);
    let connections = fleet.sshd_connections("host01");
    let (mut cmd, report) = run::command(
        &fleet,
        "rollout",
        &["-i", path_arg(&inventory), "--ask-become-pass"],
    );
    let out = cmd.output().expect("capo runs");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "capo: --ask-become-pass needs a terminal to ask for the sudo password on; without one, give the deploy user NOPASSWD sudo\n"
    );
    assert!(!report.exists());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fleet.sshd_connections("host01"), connections);
}

/// `capo ARGS` in a terminal (tmux) from the fleet directory, then `CAPO-EXIT=STATUS`.
fn in_terminal(fleet: &Fleet, args: &str) -> String {
    format!(
        "cd {dir} && {bin} {args}; echo CAPO-EXIT=$?; sleep 60",
        dir = sh_quote(path_arg(&fleet.dir)),
        bin = sh_quote(env!("CARGO_BIN_EXE_capo")),
    )
}

/// Runs `capo ARGS` in a terminal, answers the sudo password prompt with `password`, and
/// while capo runs, reads the command line and environment of every process on this machine (the hosts' are
/// among them: their pid namespaces are children of this one) over and over, but tmux's own
/// (the test types the password through `tmux send-keys`). Returns the pane at the end and
/// the lines seen that mention capo or sudo, or `password`.
fn run_with_password(fleet: &Fleet, args: &str, password: &str) -> (String, String) {
    let tmux = Tmux::start(&in_terminal(fleet, args));
    let prompt = "capo: sudo password (become):";
    tmux.wait_for("password prompt", Duration::from_secs(30), |p| {
        p.contains(prompt)
    });
    tmux.type_line(password);
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for round in 0.. {
        for line in command_lines() {
            if line.contains("capo") || line.contains("sudo") || line.contains(password) {
                seen.insert(line);
            }
        }
        if round % 20 == 0 {
            let pane = tmux.capture();
            if pane.contains("CAPO-EXIT=") {
                return (pane, seen.into_iter().collect::<Vec<_>>().join("\n"));
            }
            assert!(Instant::now() < deadline, "capo did not end; pane:\n{pane}");
        }
    }
    unreachable!()
}

/// The command line and environment of every process on this machine but tmux's, each as
/// one line (NULs as spaces).
fn command_lines() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| {
            let argv = std::fs::read(e.path().join("cmdline")).ok()?;
            let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
            Some(format!(
                "{} [env: {}]",
                String::from_utf8_lossy(&argv).replace('\0', " "),
                String::from_utf8_lossy(&env).replace('\0', " ")
            ))
        })
        .filter(|line| !line.starts_with("tmux"))
        .collect()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Asserts that `password` is in none of the run's traces: the command lines seen on the
/// hosts, the terminal, the run directories (logs, `.cmd` files, the runs' reports), the
/// report and events files, and each host's sshd log.
fn assert_nowhere(fleet: &Fleet, password: &str, pane: &str, procs: &str, files: &[&Path]) {
    // The samples caught capo's commands: sudo waiting for the password, or what it runs
    // (sudo execs the command in its own place when it need not wait for it).
    assert!(
        ["sudo -S -p capo-sudo-password-", " capo-lock", " capo-exec"]
            .iter()
            .any(|seen| procs.contains(seen)),
        "{procs}"
    );
    // And the password was on no command line and in no environment (capo's own included).
    assert!(!procs.contains(password), "{procs}");
    assert!(!pane.contains(password), "{pane}");
    let mut checked = files_under(&fleet.dir.join(".capo/runs"));
    assert!(!checked.is_empty(), "no run directory");
    checked.extend(files.iter().map(|f| f.to_path_buf()));
    checked.extend(
        fleet
            .host_names()
            .iter()
            .map(|h| fleet.dir.join("hosts").join(h).join("sshd.log")),
    );
    for file in checked {
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(password), "{} holds it", file.display());
        // Nor sudo's prompt, which capo takes out of the output.
        assert!(
            !text.contains("capo-sudo-password-") || file.ends_with("sshd.log"),
            "{}:\n{text}",
            file.display()
        );
    }
}

fn read_report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report")).expect("JSON")
}

#[test]
fn ask_become_pass_answers_sudo_with_the_right_password_and_refuses_a_wrong_one() {
    let fleet = Fleet::up_with_sudo_password(2, SPEC, PASSWORD);
    let before = fleet.checkout_head("host01");
    let inventory = as_deploy_with_sudo(&fleet);
    let inv = sh_quote(path_arg(&inventory));

    // A wrong password: refused at the lock holder, nothing changes, nothing is left running.
    let report = fleet.dir.join("wrong.json");
    let events = fleet.dir.join("wrong.jsonl");
    let wrong = "not-the-password";
    let (pane, procs) = run_with_password(
        &fleet,
        &format!(
            "rollout -K -i {inv} --report {} --events {}",
            sh_quote(path_arg(&report)),
            sh_quote(path_arg(&events))
        ),
        wrong,
    );
    assert!(pane.contains("\nCAPO-EXIT=1\n"), "{pane}");
    let r = read_report(&report);
    assert_eq!(
        run::statuses_of(&r),
        run::all(&["host01", "host02"], "failed")
    );
    for (i, host) in ["host01", "host02"].iter().enumerate() {
        assert_eq!(r["hosts"][i]["error"]["kind"], "auth", "{r}");
        assert_eq!(
            r["hosts"][i]["error"]["message"], "sudo: incorrect password",
            "{r}"
        );
        assert_eq!(r["hosts"][i]["steps"], Value::Array(vec![]), "{r}");
        assert_eq!(fleet.checkout_head(host), before);
        assert_eq!(run::on_host(&fleet, host, "ls /srv/managed | wc -l"), "0");
        // sudo, stopped by its channel closing, ends within moments.
        let left = || -> Vec<String> {
            fleet
                .procs(host)
                .lines()
                .filter(|l| l.contains("sudo") || l.contains("capo-lock"))
                .map(str::to_string)
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !left().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(left(), Vec::<String>::new(), "{host}");
    }
    assert_nowhere(&fleet, wrong, &pane, &procs, &[&report, &events]);

    // The right one: asked once for the whole run, answered on every host; root does the work.
    let head = commit_change(&fleet);
    let report = fleet.dir.join("right.json");
    let events = fleet.dir.join("right.jsonl");
    let (pane, procs) = run_with_password(
        &fleet,
        &format!(
            "rollout -K -i {inv} --report {} --events {}",
            sh_quote(path_arg(&report)),
            sh_quote(path_arg(&events))
        ),
        PASSWORD,
    );
    assert!(pane.contains("\nCAPO-EXIT=0\n"), "{pane}");
    assert_eq!(
        pane.matches("capo: sudo password (become):").count(),
        1,
        "{pane}"
    );
    let r = read_report(&report);
    assert_eq!(
        run::statuses_of(&r),
        run::all(&["host01", "host02"], "changed"),
        "{r}"
    );
    for host in ["host01", "host02"] {
        assert_eq!(fleet.checkout_head(host), head);
        assert_eq!(
            run::on_host(
                &fleet,
                host,
                "stat -c %U /srv/managed/motd /srv/puppet/.git/FETCH_HEAD"
            ),
            "root\nroot"
        );
    }
    assert_nowhere(&fleet, PASSWORD, &pane, &procs, &[&report, &events]);

    // `capo exec` through a password-asking sudo runs as root; sudo's prompt is not in its
    // output.
    let report = fleet.dir.join("exec.json");
    let (pane, procs) = run_with_password(
        &fleet,
        &format!(
            "exec -K -i {inv} --report {} -- 'id -u; sleep 1'",
            sh_quote(path_arg(&report))
        ),
        PASSWORD,
    );
    assert!(pane.contains("\nCAPO-EXIT=0\n"), "{pane}");
    let r = read_report(&report);
    for i in 0..2 {
        assert_eq!(r["hosts"][i]["steps"][0]["stdout_tail"], "0\n", "{r}");
        assert_eq!(r["hosts"][i]["steps"][0]["stderr_tail"], "", "{r}");
    }
    assert_nowhere(&fleet, PASSWORD, &pane, &procs, &[&report]);
}

#[test]
fn with_nopasswd_sudo_ask_become_pass_writes_the_password_nowhere() {
    // sudo asks nothing here: the run goes through as root, and the password typed goes
    // nowhere. (Whether it is written to stdin cannot be seen from the host: a step's
    // command has /dev/null for stdin, and the lock holder discards what it reads; the unit
    // tests of capo-engine's remote.rs check that only a prompt gets it.)
    let fleet = Fleet::up_with_user(1, SPEC);
    let inventory = as_deploy_with_sudo(&fleet);
    let report = fleet.dir.join("exec.json");
    let (pane, procs) = run_with_password(
        &fleet,
        &format!(
            "exec -K -i {} --report {} -- 'id -u; sleep 1'",
            sh_quote(path_arg(&inventory)),
            sh_quote(path_arg(&report))
        ),
        PASSWORD,
    );
    assert!(pane.contains("\nCAPO-EXIT=0\n"), "{pane}");
    let r = read_report(&report);
    assert_eq!(r["hosts"][0]["steps"][0]["stdout_tail"], "0\n", "{r}");
    assert_nowhere(&fleet, PASSWORD, &pane, &procs, &[&report]);
}

#[test]
fn a_step_cut_short_is_killed_on_the_host_through_sudo_too() {
    // The step runs as root: only a kill sent through sudo as well can stop it (OpenSSH does
    // not, and the host-side deadline is minutes away).
    let fleet = Fleet::up_with_user(1, SPEC);
    let inventory = as_deploy_with_sudo(&fleet);
    let (mut cmd, report) = run::command(
        &fleet,
        "exec",
        &["-i", path_arg(&inventory), "--", "sleep", "300"],
    );
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("capo starts");
    assert!(
        fleet.wait_for_proc("host01", "^sleep 300", Duration::from_secs(20)),
        "{}",
        fleet.procs("host01")
    );
    assert_eq!(
        run::on_host(&fleet, "host01", "ps -o user= -C sleep | sort -u"),
        "root"
    );
    run::signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(300));
    run::signal(&child, "INT");
    let (r, _) = run::wait_within(child, &report, Duration::from_secs(30));
    assert_eq!(r.code, 130, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "cancelled"));
    assert_eq!(
        r.error("host01"),
        (
            "interrupted".to_string(),
            "exec cut short: interrupted by a second SIGINT".to_string()
        )
    );
    run::assert_nothing_left(&fleet, "host01");
}

/// Ctrl-C at the sudo password prompt ends capo cleanly: exit 130, the terminal's echo and
/// signals back as they were, no host contacted, no report.
#[test]
fn ctrl_c_at_the_sudo_password_prompt_contacts_nobody_and_restores_the_terminal() {
    let fleet = Fleet::up_with_sudo_password(1, SPEC, PASSWORD);
    let inventory = as_deploy_with_sudo(&fleet);
    let report = fleet.dir.join("interrupted.json");
    let before = fleet.sshd_connections("host01");
    let command = format!(
        "cd {dir} && {bin} rollout -K -i {inv} --report {report}; echo CAPO-EXIT=$?; \
         echo STTY=$(stty -a | tr ' ;' '\\n\\n' | grep -x -e '-*echo' -e '-*isig' -e '-*icanon' | tr '\\n' ' '); \
         sleep 60",
        dir = sh_quote(path_arg(&fleet.dir)),
        bin = sh_quote(env!("CARGO_BIN_EXE_capo")),
        inv = sh_quote(path_arg(&inventory)),
        report = sh_quote(path_arg(&report)),
    );
    let tmux = Tmux::start(&command);
    tmux.wait_for("password prompt", Duration::from_secs(30), |p| {
        p.contains("capo: sudo password (become):")
    });
    tmux.send_key("C-c");
    let pane = tmux.wait_for("stty", Duration::from_secs(30), |p| p.contains("STTY="));
    assert!(pane.contains("CAPO-EXIT=130\n"), "{pane}");
    assert!(
        pane.contains("capo: interrupted at the sudo password prompt; no host was contacted\n"),
        "{pane}"
    );
    // (tmux drops the trailing space)
    assert!(pane.contains("STTY=isig icanon echo\n"), "{pane}");
    assert!(!report.exists(), "a report was written");
    assert_eq!(
        fleet.sshd_connections("host01"),
        before,
        "a host was contacted"
    );
}

/// `-K` when no selected host uses become: nothing would ever be answered with the password,
/// so it is not asked for (no terminal needed), and a note says why.
#[test]
fn ask_become_pass_is_not_asked_when_no_host_uses_become() {
    let fleet = Fleet::up(1);
    let r = run::capo(&fleet, "exec", &["-K", "--", "true"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), run::all(&["host01"], "ok"));
    assert!(
        r.stderr
            .contains("capo: --ask-become-pass: no selected host uses become; not asking"),
        "{}",
        r.dump()
    );
    assert!(!r.stderr.contains("sudo password"), "{}", r.dump());
}
