//! ProxyJump (`jump`) against a real local fleet whose hosts live in a network namespace that
//! only a bastion reaches (`fleet.sh up --bastion`): a rollout through the bastion, one bastion
//! session for every target, the bastion's host key checked, a bastion that is down or dies
//! mid-step, and a host reached directly in the same run going on unaffected.
//! Needs root (namespaces, veth); see tests/fleet/README.md.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::run::{self, path_arg, Run};
use crate::common::Fleet;

/// `capo SUB -i INVENTORY ARGS...` on `fleet`, to the end.
fn capo_with(fleet: &Fleet, sub: &str, inventory: &Path, args: &[&str]) -> Run {
    let mut all = vec!["-i", path_arg(inventory)];
    all.extend_from_slice(args);
    run::capo(fleet, sub, &all)
}

/// How the bastion appears in messages: `root@[ADDR]:PORT`.
fn bastion_name(fleet: &Fleet) -> String {
    let (addr, port) = fleet.bastion();
    format!("root@[{addr}]:{port}")
}

/// Lines of the bastion's sshd log that say a login succeeded.
fn bastion_logins(fleet: &Fleet) -> usize {
    fleet
        .bastion_log()
        .matches("Accepted publickey for root")
        .count()
}

/// TCP connections the bastion's sshd has logged.
fn bastion_connections(fleet: &Fleet) -> usize {
    fleet.bastion_log().matches("Connection from ").count()
}

/// Whether a TCP connect from here (the controller's network namespace) to `addr` succeeds.
fn reachable(addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().expect("socket address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// Waits until sshd has written `count` matches of `what` in the bastion's log (it logs a
/// login's last lines a moment after the client is done).
fn wait_for_log(fleet: &Fleet, what: fn(&Fleet) -> usize, count: usize) -> usize {
    for _ in 0..50 {
        if what(fleet) >= count {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    what(fleet)
}

/// The fleet's inventory plus `host` of `direct` (another, ordinary fleet), reached directly
/// (`jump = "none"`) with that fleet's key and known_hosts.
fn with_direct_host(fleet: &Fleet, direct: &Fleet, host: &str, name: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&fleet.inventory).expect("inventory");
    let extra = format!(
        "\n[hosts.{name}]\naddress = \"127.0.0.1\"\nport = {}\njump = \"none\"\n\
         identity_files = [{:?}]\nknown_hosts = {:?}\n",
        direct.host(host).port,
        direct.client_key().display().to_string(),
        direct.known_hosts().display().to_string(),
    );
    fleet.write_inventory(&format!("{text}{extra}"))
}

#[test]
fn a_rollout_goes_through_the_bastion_to_hosts_the_controller_cannot_reach() {
    let fleet = Fleet::up_with_bastion(3);
    let (addr, port) = fleet.bastion();
    // The targets exist only inside their namespace: not on our loopback, not on the veth.
    for h in &fleet.hosts {
        assert!(
            !reachable(&format!("127.0.0.1:{}", h.port)),
            "{} is reachable directly",
            h.name
        );
        assert!(
            !reachable(&format!("{addr}:{}", h.port)),
            "{} is reachable on the bastion's address",
            h.name
        );
    }
    assert!(reachable(&format!("{addr}:{port}")), "the bastion is not");
    // And so a direct connect fails, with connect's own kind and message.
    let direct = run::inventory_with(&fleet, &[("jump", "\"none\""), ("connect_retries", "0")]);
    let r = capo_with(&fleet, "exec", &direct, &["--", "true"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    for h in &fleet.hosts {
        assert_eq!(r.host(&h.name)["status"], "unreachable", "{}", r.dump());
        assert_eq!(
            r.error(&h.name),
            (
                "connect".to_string(),
                format!("connection refused (127.0.0.1:{})", h.port)
            )
        );
    }

    let logins = bastion_logins(&fleet);
    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::all(&["host01", "host02", "host03"], "changed"),
        "{}",
        r.dump()
    );
    for h in &fleet.hosts {
        let motd = std::fs::read_to_string(fleet.managed_path(&h.name, "motd")).expect("motd");
        assert!(motd.contains(&h.name), "{motd}");
        // The target saw its connection come from its own loopback: the bastion's sshd.
        assert!(
            fleet
                .sshd_log(&h.name)
                .contains("Accepted publickey for root from 127.0.0.1"),
            "{}",
            fleet.sshd_log(&h.name)
        );
        assert_eq!(r.host(&h.name)["connect_attempts"], 1);
    }
    // One login on the bastion carried all three hosts.
    assert_eq!(wait_for_log(&fleet, bastion_logins, logins + 1), logins + 1);
}

#[test]
fn one_bastion_session_carries_every_target() {
    let fleet = Fleet::up_with_bastion(12);
    let connections = bastion_connections(&fleet);
    let logins = bastion_logins(&fleet);
    let r = run::capo(&fleet, "exec", &["--", "hostname"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let names: Vec<String> = fleet.host_names();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(r.statuses(), run::all(&names, "ok"), "{}", r.dump());
    // Let sshd write the last lines of the session, then count: exactly one more of each.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        bastion_connections(&fleet),
        connections + 1,
        "{}",
        fleet.bastion_log()
    );
    assert_eq!(
        bastion_logins(&fleet),
        logins + 1,
        "{}",
        fleet.bastion_log()
    );
    // capo closed it politely at the end of the run.
    assert!(
        fleet.bastion_log().contains("Received disconnect from"),
        "{}",
        fleet.bastion_log()
    );
}

#[test]
fn an_unknown_bastion_key_makes_its_targets_unreachable_with_kind_jump() {
    let fleet = Fleet::up_with_bastion(2);
    let (addr, port) = fleet.bastion();
    // A known_hosts with every target's key but not the bastion's.
    let known = std::fs::read_to_string(fleet.known_hosts()).expect("known_hosts");
    let without: String = known
        .lines()
        .filter(|l| !l.starts_with(&format!("[{addr}]:")))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(without.lines().count(), 2, "{known}");
    let kh = fleet.dir.join("keys/known_hosts.targets-only");
    std::fs::write(&kh, &without).expect("write known_hosts");
    let inventory = run::inventory_with(
        &fleet,
        &[("known_hosts", &format!("{:?}", kh.display().to_string()))],
    );
    let fingerprint = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(fleet.bastion_dir().join("ssh_host_ed25519_key.pub"))
        .stderr(Stdio::inherit())
        .output()
        .expect("ssh-keygen");
    let fingerprint = String::from_utf8_lossy(&fingerprint.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string();
    let connections = bastion_connections(&fleet);
    let target_connections: Vec<usize> = fleet
        .hosts
        .iter()
        .map(|h| fleet.sshd_connections(&h.name))
        .collect();

    let r = capo_with(&fleet, "exec", &inventory, &["--", "true"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    // Kind jump, not host_key: the targets' own keys were never looked at (nothing reached
    // them); the fix is on the bastion's line, and the message carries the host key error.
    for h in &fleet.hosts {
        assert_eq!(r.host(&h.name)["status"], "unreachable", "{}", r.dump());
        assert_eq!(
            r.error(&h.name),
            (
                "jump".to_string(),
                format!(
                    "jump host {}: host key for [{addr}]:{port} is not in {} (ssh-ed25519 {fingerprint}); \
                     add it or set host_key_check = \"accept-new\"",
                    bastion_name(&fleet),
                    kh.display()
                )
            )
        );
        // A refusal is not retried.
        assert_eq!(r.host(&h.name)["connect_attempts"], 1);
    }
    // Refused once for the whole run, and no target was contacted.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        bastion_connections(&fleet),
        connections + 1,
        "{}",
        fleet.bastion_log()
    );
    assert_eq!(
        bastion_logins(&fleet),
        1,
        "only fleet.sh's own check logged in"
    );
    let after: Vec<usize> = fleet
        .hosts
        .iter()
        .map(|h| fleet.sshd_connections(&h.name))
        .collect();
    assert_eq!(after, target_connections);
}

#[test]
fn a_bastion_that_is_down_makes_only_its_targets_unreachable() {
    let fleet = Fleet::up_with_bastion(2);
    let direct = Fleet::up(1);
    let (addr, port) = fleet.bastion();
    fleet.fleet(&["stop", "bastion"]);
    let inventory = with_direct_host(&fleet, &direct, "host01", "direct01");
    let inventory = {
        let text = std::fs::read_to_string(&inventory).expect("inventory");
        fleet.write_inventory(&text.replacen(
            "[defaults]\n",
            "[defaults]\nconnect_retries = 1\n",
            1,
        ))
    };
    let r = capo_with(&fleet, "exec", &inventory, &["--", "hostname"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[
            ("host01", "unreachable"),
            ("host02", "unreachable"),
            ("direct01", "ok")
        ]),
        "{}",
        r.dump()
    );
    for name in ["host01", "host02"] {
        assert_eq!(
            r.error(name),
            (
                "jump".to_string(),
                format!(
                    "jump host {}: connection refused ({addr}:{port}) (2 attempts)",
                    bastion_name(&fleet)
                )
            )
        );
        assert_eq!(r.host(name)["connect_attempts"], 2);
    }
    assert_eq!(r.error("direct01"), (String::new(), String::new()));
}

#[test]
fn a_bastion_killed_mid_step_fails_its_targets_with_kind_jump_and_spares_the_rest() {
    let fleet = Fleet::up_with_bastion(2);
    let direct = Fleet::up(1);
    let inventory = with_direct_host(&fleet, &direct, "host01", "direct01");
    let (mut cmd, report) = run::command(
        &fleet,
        "exec",
        &["-i", path_arg(&inventory), "--", "sleep", "6"],
    );
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("capo starts");
    for name in ["host01", "host02"] {
        assert!(
            fleet.wait_for_proc(name, "sleep 6", Duration::from_secs(20)),
            "{name} never started the step"
        );
    }
    assert!(direct.wait_for_proc("host01", "sleep 6", Duration::from_secs(20)));
    fleet.fleet(&["stop", "bastion"]);
    let (r, _) = run::wait_within(child, &report, Duration::from_secs(30));
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[
            ("host01", "failed"),
            ("host02", "failed"),
            ("direct01", "ok")
        ]),
        "{}",
        r.dump()
    );
    for name in ["host01", "host02"] {
        assert_eq!(
            r.error(name),
            (
                "jump".to_string(),
                format!(
                    "exec: connection lost while running command (jump host {}: connection closed by remote)",
                    bastion_name(&fleet)
                )
            ),
            "{}",
            r.dump()
        );
    }
    // The direct host's step ran its 6 s to the end, untouched. (Its own duration, not the
    // wait after the bastion died: on a loaded machine the step may have been well under way
    // by then.)
    let ran = r.host("direct01")["steps"][0]["duration_ms"]
        .as_u64()
        .unwrap_or(0);
    assert!(ran >= 5_900, "{}", r.dump());
    assert_eq!(r.error("direct01"), (String::new(), String::new()));
}

#[test]
fn a_target_down_behind_a_live_bastion_is_that_targets_connect_failure() {
    let fleet = Fleet::up_with_bastion(2);
    fleet.stop("host02");
    let inventory = run::inventory_with(&fleet, &[("connect_retries", "0")]);
    let r = capo_with(&fleet, "exec", &inventory, &["--", "hostname"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::pairs(&[("host01", "ok"), ("host02", "unreachable")]),
        "{}",
        r.dump()
    );
    // The bastion is fine and says it could not connect: the target's failure, kind connect.
    assert_eq!(
        r.error("host02"),
        (
            "connect".to_string(),
            format!(
                "jump host {} cannot reach [127.0.0.1]:{}: connect failed",
                bastion_name(&fleet),
                fleet.host("host02").port
            )
        )
    );
}

#[test]
fn a_chain_of_two_hops_goes_through_each_in_turn() {
    // The bastion twice: the second hop is reached through the first (the bastion forwards to
    // its own address), so its sshd sees two logins, the second one from itself.
    let fleet = Fleet::up_with_bastion(2);
    let (addr, port) = fleet.bastion();
    let hop = format!("\"{addr}:{port}\"");
    let inventory = run::inventory_with(&fleet, &[("jump", &format!("[{hop}, {hop}]"))]);
    let logins = bastion_logins(&fleet);
    let r = capo_with(&fleet, "exec", &inventory, &["--", "hostname"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        r.statuses(),
        run::all(&["host01", "host02"], "ok"),
        "{}",
        r.dump()
    );
    assert_eq!(wait_for_log(&fleet, bastion_logins, logins + 2), logins + 2);
    let from_itself = format!("Accepted publickey for root from {addr} ");
    assert_eq!(
        fleet.bastion_log().matches(&from_itself).count(),
        2,
        "fleet.sh's own check and the second hop:\n{}",
        fleet.bastion_log()
    );
}

/// Restarts the bastion with `from` replaced by `to` in its sshd_config.
fn reconfigure_bastion(fleet: &Fleet, from: &str, to: &str) {
    let path = fleet.bastion_dir().join("sshd_config");
    let text = std::fs::read_to_string(&path).expect("bastion sshd_config");
    assert!(text.contains(from), "{from:?} not in:\n{text}");
    fleet.fleet(&["stop", "bastion"]);
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write sshd_config");
    fleet.fleet(&["start", "bastion"]);
}

#[test]
fn a_bastion_that_refuses_our_key_makes_its_targets_unreachable_once() {
    let fleet = Fleet::up_with_bastion(2);
    let keys = fleet.dir.join("keys/authorized_keys");
    reconfigure_bastion(
        &fleet,
        &format!("AuthorizedKeysFile {}", keys.display()),
        "AuthorizedKeysFile /dev/null",
    );
    let connections = bastion_connections(&fleet);
    let r = run::capo(&fleet, "exec", &["--", "true"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    for name in ["host01", "host02"] {
        assert_eq!(r.host(name)["status"], "unreachable", "{}", r.dump());
        assert_eq!(
            r.error(name),
            (
                "jump".to_string(),
                format!(
                    "jump host {}: authentication refused for user root (tried: {})",
                    bastion_name(&fleet),
                    fleet.client_key().display()
                )
            )
        );
        assert_eq!(r.host(name)["connect_attempts"], 1);
    }
    // Refused once for the run, not once per host.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        bastion_connections(&fleet),
        connections + 1,
        "{}",
        fleet.bastion_log()
    );
}

#[test]
fn a_bastion_that_does_not_forward_makes_its_targets_unreachable_with_kind_jump() {
    let fleet = Fleet::up_with_bastion(2);
    reconfigure_bastion(&fleet, "AllowTcpForwarding yes", "AllowTcpForwarding no");
    let before: Vec<usize> = fleet
        .hosts
        .iter()
        .map(|h| fleet.sshd_connections(&h.name))
        .collect();
    let r = run::capo(&fleet, "exec", &["--", "true"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    for h in &fleet.hosts {
        assert_eq!(r.host(&h.name)["status"], "unreachable", "{}", r.dump());
        assert_eq!(
            r.error(&h.name),
            (
                "jump".to_string(),
                format!(
                    "jump host {} cannot reach [127.0.0.1]:{}: forwarding refused (AllowTcpForwarding?)",
                    bastion_name(&fleet),
                    h.port
                )
            )
        );
        // Not retried: the bastion would refuse again.
        assert_eq!(r.host(&h.name)["connect_attempts"], 1);
    }
    // Nothing reached the targets (their logs hold only fleet.sh's own check).
    let after: Vec<usize> = fleet
        .hosts
        .iter()
        .map(|h| fleet.sshd_connections(&h.name))
        .collect();
    assert_eq!(after, before);
}
