//! Authentication as operators have it: a real `ssh-agent` (its keys offered first,
//! `identities_only`, a confirm key denied), and encrypted key files with and without a
//! terminal (a real pty under tmux).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::agent::{encrypted_copy, keygen, Agent};
use crate::common::run::{self, all, path_arg};
use crate::common::tmux::{sh_quote, Tmux};
use crate::common::Fleet;

const NAMES: [&str; 3] = ["host01", "host02", "host03"];

/// `capo exec ARGS... -- true` with `SSH_AUTH_SOCK` set to `sock` (none if `None`).
fn exec_true(fleet: &Fleet, inventory: &Path, sock: Option<&Path>) -> run::Run {
    let (mut cmd, report) = run::command(fleet, "exec", &["-i", path_arg(inventory), "--", "true"]);
    if let Some(sock) = sock {
        cmd.env("SSH_AUTH_SOCK", sock);
    }
    let out = cmd.output().expect("capo runs");
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    run::Run {
        code: out.status.code().unwrap_or(-1),
        report: serde_json::from_str(&text).expect("report is JSON"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn toml_path(p: &Path) -> String {
    format!("\"{}\"", p.display())
}

/// The fleet's client key, which every host accepts, only in the agent: the inventory's
/// identity file does not exist. The agent from `SSH_AUTH_SOCK` (the default) logs every
/// host in; `identity_agent = "none"` turns it off, and then nothing is left to offer.
#[test]
fn agent_holding_the_only_usable_key() {
    let fleet = Fleet::up(3);
    let agent = Agent::start(&fleet.dir.join("agent.sock"), &[]);
    agent.add(&[path_arg(&fleet.client_key())]);
    let missing = fleet.dir.join("keys/missing");
    let inventory = run::inventory_with(
        &fleet,
        &[("identity_files", &format!("[{}]", toml_path(&missing)))],
    );

    let r = exec_true(&fleet, &inventory, Some(&agent.sock));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), all(&NAMES, "ok"));
    for name in NAMES {
        assert_eq!(r.host(name)["connect_attempts"], 1, "{}", r.dump());
    }

    // Named in the inventory instead of the environment: the same.
    let inventory = run::inventory_with(
        &fleet,
        &[
            ("identity_files", &format!("[{}]", toml_path(&missing))),
            ("identity_agent", &toml_path(&agent.sock)),
        ],
    );
    let r = exec_true(&fleet, &inventory, None);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), all(&NAMES, "ok"));

    // No agent: nothing to offer, and no host is dialled.
    let inventory = run::inventory_with(
        &fleet,
        &[
            ("identity_files", &format!("[{}]", toml_path(&missing))),
            ("identity_agent", "\"none\""),
        ],
    );
    let before: Vec<usize> = NAMES.iter().map(|n| fleet.sshd_connections(n)).collect();
    let r = exec_true(&fleet, &inventory, Some(&agent.sock));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), all(&NAMES, "unreachable"));
    for name in NAMES {
        assert_eq!(
            r.error(name),
            (
                "auth".to_string(),
                format!(
                    "no usable identity file (tried: {} (missing))",
                    missing.display()
                )
            )
        );
    }
    let after: Vec<usize> = NAMES.iter().map(|n| fleet.sshd_connections(n)).collect();
    assert_eq!(before, after, "a host was contacted");

    // An agent that is not there is passed over, and the message says so.
    let gone = fleet.dir.join("no-agent.sock");
    let r = exec_true(
        &fleet,
        &run::inventory_with(
            &fleet,
            &[("identity_files", &format!("[{}]", toml_path(&missing)))],
        ),
        Some(&gone),
    );
    assert_eq!(r.statuses(), all(&NAMES, "unreachable"));
    assert_eq!(
        r.error("host01"),
        (
            "auth".to_string(),
            format!(
                "no usable identity file (tried: agent {} (unavailable: No such file or directory (os error 2)), {} (missing))",
                gone.display(),
                missing.display()
            )
        )
    );
}

/// Seven other keys in the agent before the right one: sshd (MaxAuthTries 6) hangs up before
/// the right key's turn. With `identities_only`, only the agent key matching the identity
/// file is offered, and every host logs in.
#[test]
fn identities_only_with_more_agent_keys_than_max_auth_tries() {
    let fleet = Fleet::up(3);
    let agent = Agent::start(&fleet.dir.join("agent.sock"), &[]);
    let mut keys = Vec::new();
    for i in 1..=7 {
        let k = fleet.dir.join(format!("keys/other{i}"));
        keygen(&k, "", &format!("other{i}"));
        keys.push(k);
    }
    for k in &keys {
        agent.add(&[path_arg(k)]);
    }
    agent.add(&[path_arg(&fleet.client_key())]);
    assert_eq!(agent.list().len(), 8);

    let r = exec_true(&fleet, &fleet.inventory, Some(&agent.sock));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), all(&NAMES, "unreachable"));
    for name in NAMES {
        assert_eq!(
            r.error(name),
            (
                "auth".to_string(),
                "connection closed by remote during authentication after 5 refused identities \
                 (server disconnected: Too many authentication failures); the agent offers keys \
                 first: set identities_only = true to offer only identity_files' keys"
                    .to_string()
            ),
            "{}",
            r.dump()
        );
        // not retried: the same keys would be refused again
        assert_eq!(r.host(name)["connect_attempts"], 1);
        assert!(
            fleet
                .sshd_log(name)
                .contains("Too many authentication failures"),
            "{}",
            fleet.sshd_log(name)
        );
    }

    let inventory = run::inventory_with(&fleet, &[("identities_only", "true")]);
    let r = exec_true(&fleet, &inventory, Some(&agent.sock));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), all(&NAMES, "ok"));

    // Matched through the `.pub` next to an identity file that is not there: the agent's copy
    // of the key is used.
    let only_pub = fleet.dir.join("keys/only_pub");
    std::fs::copy(
        fleet.dir.join("keys/client_ed25519.pub"),
        fleet.dir.join("keys/only_pub.pub"),
    )
    .expect("copy .pub");
    let inventory = run::inventory_with(
        &fleet,
        &[
            ("identities_only", "true"),
            ("identity_files", &format!("[{}]", toml_path(&only_pub))),
        ],
    );
    let r = exec_true(&fleet, &inventory, Some(&agent.sock));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), all(&NAMES, "ok"));
}

/// A confirm key (`ssh-add -c`) whose confirmation is denied (the agent's askpass exits 1):
/// the agent refuses to sign, and capo goes on to the key file, which holds the same key.
#[test]
fn agent_confirm_key_denied_falls_back_to_the_key_file() {
    let fleet = Fleet::up(3);
    let askpass = fleet.dir.join("deny-askpass");
    let asked = fleet.dir.join("askpass.log");
    std::fs::write(
        &askpass,
        format!(
            "#!/bin/sh\necho asked >> {}\nexit 1\n",
            sh_quote(path_arg(&asked))
        ),
    )
    .expect("write askpass");
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&askpass, mode).expect("chmod askpass");
    let agent = Agent::start(
        &fleet.dir.join("agent.sock"),
        &[
            ("SSH_ASKPASS", path_arg(&askpass)),
            ("SSH_ASKPASS_REQUIRE", "force"),
        ],
    );
    agent.add(&["-c", path_arg(&fleet.client_key())]);

    let r = exec_true(&fleet, &fleet.inventory, Some(&agent.sock));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), all(&NAMES, "ok"));
    // The agent was asked (and said no) once per host.
    let asks = std::fs::read_to_string(&asked).unwrap_or_default();
    assert_eq!(asks.lines().count(), NAMES.len(), "{asks}");

    // Without the key file the denial is all there is: refused, and the message says why.
    let missing = fleet.dir.join("keys/missing");
    let inventory = run::inventory_with(
        &fleet,
        &[("identity_files", &format!("[{}]", toml_path(&missing)))],
    );
    let r = exec_true(&fleet, &inventory, Some(&agent.sock));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), all(&NAMES, "unreachable"));
    for name in NAMES {
        assert_eq!(
            r.error(name),
            (
                "auth".to_string(),
                format!(
                    "authentication refused for user root (tried: agent {} (1 key, 1 it refused \
                     to sign with), {} (missing))",
                    agent.sock.display(),
                    missing.display()
                )
            )
        );
    }
}

/// An encrypted key file and no terminal: nothing is asked, and every host says to load the
/// key into ssh-agent. With the agent holding that key, nothing is asked either and every
/// host logs in through the agent.
#[test]
fn encrypted_key_without_a_terminal() {
    let fleet = Fleet::up(3);
    let enc = fleet.dir.join("keys/enc_ed25519");
    encrypted_copy(&fleet.client_key(), &enc, "correct horse");
    let inventory = run::inventory_with(
        &fleet,
        &[("identity_files", &format!("[{}]", toml_path(&enc)))],
    );

    let before: Vec<usize> = NAMES.iter().map(|n| fleet.sshd_connections(n)).collect();
    let r = exec_true(&fleet, &inventory, None);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), all(&NAMES, "unreachable"));
    let message = format!(
        "key file {0} is encrypted and there is no terminal to ask for its passphrase: load it \
         into ssh-agent (ssh-add {0})",
        enc.display()
    );
    for name in NAMES {
        assert_eq!(r.error(name), ("auth".to_string(), message.clone()));
        assert_eq!(r.host(name)["connect_attempts"], 1);
    }
    let after: Vec<usize> = NAMES.iter().map(|n| fleet.sshd_connections(n)).collect();
    assert_eq!(before, after, "a host was contacted");
    assert!(!r.stderr.contains("passphrase for"), "{}", r.stderr);

    let agent = Agent::start(&fleet.dir.join("agent.sock"), &[]);
    agent.add(&[path_arg(&fleet.client_key())]);
    let r = exec_true(&fleet, &inventory, Some(&agent.sock));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), all(&NAMES, "ok"));
}

const SECRET: &str = "s3cret-Passphrase-7f1e";

/// Runs `capo exec ... -- sleep 1` under tmux, recording capo's pid, with the fleet's
/// inventory pointing at an encrypted copy of the client key.
struct PtyRun {
    tmux: Tmux,
    pid_file: PathBuf,
    report: PathBuf,
    events: PathBuf,
    enc: PathBuf,
}

fn pty_run(fleet: &Fleet) -> PtyRun {
    let enc = fleet.dir.join("keys/enc_ed25519");
    encrypted_copy(&fleet.client_key(), &enc, SECRET);
    let inventory = run::inventory_with(
        fleet,
        &[("identity_files", &format!("[{}]", toml_path(&enc)))],
    );
    let pid_file = fleet.dir.join("capo.pid");
    let report = fleet.dir.join("pty-report.json");
    let events = fleet.dir.join("pty-events.jsonl");
    // `exec` so that the pid is capo's own.
    let command = format!(
        "cd {dir} && env -u SSH_AUTH_SOCK sh -c 'echo $$ > {pid}; exec \"$0\" \"$@\"' {bin} exec -i {inv} \
         --report {report} --events {events} -- sleep 1; echo CAPO-EXIT=$?; \
         echo STTY=$(stty -a | tr ' ;' '\\n\\n' | grep -x -e '-*echo' -e '-*isig' -e '-*icanon' | tr '\\n' ' '); \
         sleep 60",
        dir = sh_quote(path_arg(&fleet.dir)),
        pid = sh_quote(path_arg(&pid_file)),
        bin = sh_quote(env!("CARGO_BIN_EXE_capo")),
        inv = sh_quote(path_arg(&inventory)),
        report = sh_quote(path_arg(&report)),
        events = sh_quote(path_arg(&events)),
    );
    PtyRun {
        tmux: Tmux::start(&command),
        pid_file,
        report,
        events,
        enc,
    }
}

impl PtyRun {
    fn prompt(&self) -> String {
        // tmux drops the prompt's trailing space from the pane
        format!("capo: passphrase for key file {}:", self.enc.display())
    }

    /// Waits for the first host to start, then reads capo's argv and environment.
    fn argv_and_env(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let events = std::fs::read_to_string(&self.events).unwrap_or_default();
            if events.contains("\"host_started\"") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no host started:\n{}",
                self.tmux.capture()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let pid = std::fs::read_to_string(&self.pid_file).expect("pid file");
        let proc_dir = PathBuf::from(format!("/proc/{}", pid.trim()));
        let cmdline = std::fs::read(proc_dir.join("cmdline")).expect("capo still runs");
        let environ = std::fs::read(proc_dir.join("environ")).expect("capo still runs");
        assert!(
            String::from_utf8_lossy(&cmdline).contains("exec"),
            "not capo's argv"
        );
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&cmdline),
            String::from_utf8_lossy(&environ)
        )
    }

    fn finish(&self) -> (String, serde_json::Value) {
        let pane = self.tmux.wait_for("exit", Duration::from_secs(60), |p| {
            p.contains("CAPO-EXIT=")
        });
        let report = std::fs::read_to_string(&self.report).expect("report");
        (pane, serde_json::from_str(&report).expect("JSON"))
    }
}

/// Everything capo wrote that could leak: the report, the events file, every file of the run
/// directory (the hosts' logs), and the hosts' sshd logs.
fn assert_secret_nowhere(fleet: &Fleet, r: &PtyRun, argv_env: &str, pane: &str) {
    assert!(
        !argv_env.contains(SECRET),
        "passphrase in argv or environment"
    );
    assert!(!pane.contains(SECRET), "passphrase echoed:\n{pane}");
    let mut files = vec![r.report.clone(), r.events.clone()];
    let mut dirs = vec![fleet.dir.join(".capo")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read run dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    assert!(files.len() > 3, "{files:?}");
    for name in NAMES {
        files.push(fleet.host(name).dir.join("sshd.log"));
    }
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "passphrase in {}",
            f.display()
        );
    }
}

fn statuses(report: &serde_json::Value) -> Vec<(String, String)> {
    run::statuses_of(report)
}

/// On a terminal: one prompt for the whole run (three hosts need the key), the right
/// passphrase, and every host logs in. The passphrase is in none of capo's outputs, its argv
/// or its environment, and was not echoed.
#[test]
fn encrypted_key_on_a_terminal_is_asked_once() {
    let fleet = Fleet::up(3);
    let r = pty_run(&fleet);
    let prompt = r.prompt();
    r.tmux
        .wait_for("prompt", Duration::from_secs(30), |p| p.contains(&prompt));
    // Nothing was contacted while capo waits for the passphrase.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !r.events.exists()
            || std::fs::read_to_string(&r.events)
                .unwrap_or_default()
                .is_empty()
    );
    r.tmux.type_line(SECRET);
    let argv_env = r.argv_and_env();
    let (pane, report) = r.finish();
    assert!(pane.contains("CAPO-EXIT=0\n"), "{pane}");
    assert_eq!(statuses(&report), all(&NAMES, "ok"));
    assert_eq!(pane.matches("passphrase for key file").count(), 1, "{pane}");
    assert_secret_nowhere(&fleet, &r, &argv_env, &pane);
}

/// A wrong passphrase, then the right one: asked again once, then every host logs in.
#[test]
fn encrypted_key_wrong_then_right_passphrase() {
    let fleet = Fleet::up(3);
    let r = pty_run(&fleet);
    let prompt = r.prompt();
    r.tmux
        .wait_for("prompt", Duration::from_secs(30), |p| p.contains(&prompt));
    r.tmux.type_line("not-the-passphrase");
    let again = format!("capo: wrong passphrase, try again for {}:", r.enc.display());
    r.tmux
        .wait_for("second prompt", Duration::from_secs(30), |p| {
            p.contains(&again)
        });
    r.tmux.type_line(SECRET);
    let argv_env = r.argv_and_env();
    let (pane, report) = r.finish();
    assert!(pane.contains("CAPO-EXIT=0\n"), "{pane}");
    assert_eq!(statuses(&report), all(&NAMES, "ok"));
    assert_eq!(pane.matches("passphrase for key file").count(), 1, "{pane}");
    assert_eq!(
        pane.matches("wrong passphrase, try again").count(),
        1,
        "{pane}"
    );
    assert!(!pane.contains("not-the-passphrase"), "{pane}");
    assert_secret_nowhere(&fleet, &r, &argv_env, &pane);
}

/// Three wrong passphrases: no more tries, and the hosts that need the key end unreachable
/// saying so.
#[test]
fn encrypted_key_three_wrong_passphrases() {
    let fleet = Fleet::up(3);
    let r = pty_run(&fleet);
    let prompt = r.prompt();
    r.tmux
        .wait_for("prompt", Duration::from_secs(30), |p| p.contains(&prompt));
    for i in 1..=3 {
        r.tmux.type_line(&format!("wrong{i}"));
        if i < 3 {
            r.tmux
                .wait_for("next prompt", Duration::from_secs(30), |p| {
                    p.matches("wrong passphrase, try again").count() == i
                });
        }
    }
    let (pane, report) = r.finish();
    assert!(pane.contains("CAPO-EXIT=1\n"), "{pane}");
    assert!(
        pane.contains(&format!(
            "capo: 3 wrong passphrases for {}; hosts that need it will fail",
            r.enc.display()
        )),
        "{pane}"
    );
    assert_eq!(statuses(&report), all(&NAMES, "unreachable"));
    for h in report["hosts"].as_array().expect("hosts") {
        assert_eq!(h["error"]["kind"], "auth");
        assert_eq!(
            h["error"]["message"],
            format!(
                "no usable identity file (tried: {} (encrypted, and the passphrase was wrong 3 times))",
                r.enc.display()
            )
        );
    }
}

/// Ctrl-C at the prompt: capo exits 130 at once, says nothing was contacted, contacts no
/// host, and leaves the terminal as it found it (echo, signals and line editing on).
#[test]
fn ctrl_c_at_the_passphrase_prompt() {
    let fleet = Fleet::up(3);
    let before: Vec<usize> = NAMES.iter().map(|n| fleet.sshd_connections(n)).collect();
    let r = pty_run(&fleet);
    let prompt = r.prompt();
    r.tmux
        .wait_for("prompt", Duration::from_secs(30), |p| p.contains(&prompt));
    r.tmux.send_key("C-c");
    let pane = r
        .tmux
        .wait_for("stty", Duration::from_secs(30), |p| p.contains("STTY="));
    assert!(pane.contains("CAPO-EXIT=130\n"), "{pane}");
    assert!(
        pane.contains("capo: interrupted at the passphrase prompt; no host was contacted\n"),
        "{pane}"
    );
    // (tmux drops the trailing space)
    assert!(pane.contains("STTY=isig icanon echo\n"), "{pane}");
    assert!(!r.report.exists(), "a report was written");
    let after: Vec<usize> = NAMES.iter().map(|n| fleet.sshd_connections(n)).collect();
    assert_eq!(before, after, "a host was contacted");
}

/// Hundreds of hosts authenticating through one agent at once (a simulated fleet served by
/// this test process, no root needed): every signature request is answered, none is lost
/// to the agent socket's listen backlog, and every host logs in.
#[test]
fn agent_signs_for_hundreds_of_concurrent_hosts() {
    const HOSTS: u32 = 300;
    let sim = crate::common::sim::SimFleet::start(HOSTS, |_| {});
    let dir = sim.dir();
    let fleet_dir = sim.fleet_dir();
    let agent = Agent::start(&dir.join("agent.sock"), &[]);
    agent.add(&[path_arg(&fleet_dir.join("client_ed25519"))]);
    let text = std::fs::read_to_string(sim.inventory()).expect("inventory");
    let line = text
        .lines()
        .find(|l| l.starts_with("identity_files ="))
        .expect("identity_files line")
        .to_string();
    // beside the original: its relative paths (known_hosts) stay right
    let inventory = fleet_dir.join("agent-only.toml");
    std::fs::write(
        &inventory,
        text.replace(&line, "identity_files = [\"missing\"]"),
    )
    .expect("write inventory");
    let report = dir.join("report.json");
    let out = sim
        .capo(&["exec", "-q", "-j", "300", "-i", path_arg(&inventory)])
        .arg("--report")
        .arg(&report)
        .args(["--", "true"])
        .env("SSH_AUTH_SOCK", &agent.sock)
        .output()
        .expect("capo runs");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("JSON");
    let errors: Vec<String> = report["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .filter(|h| !h["error"].is_null())
        .take(3)
        .map(|h| h["error"].to_string())
        .collect();
    assert_eq!(
        report["summary"]["ok"], HOSTS,
        "{}: {errors:?}",
        report["summary"]
    );
    assert_eq!(out.status.code(), Some(0));
}
