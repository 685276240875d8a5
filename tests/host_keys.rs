//! Host identity beyond plain known_hosts lines: host certificates checked against
//! `@cert-authority` lines (CA, principals, validity, `@revoked`), and `accept-new` recording
//! new hosts once each, even with two runs at once, then refusing a changed key. Runs the
//! real capo against real sshd hosts presenting certificates signed by a test CA (`fleet.sh
//! up --host-certs`, `fleet.sh certify`); needs root, see tests/fleet/README.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::run::{self, path_arg, Run};
use crate::common::Fleet;

/// Where `capo exec` leaves its mark on a host (inside the host's /srv/managed).
const MARK: &str = "ran";

/// `SHA256:...` of a public key file, as `ssh-keygen -lf` prints it.
fn fingerprint(pub_file: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pub_file)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ssh-keygen -lf {}",
        pub_file.display()
    );
    let fp = text
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string();
    assert!(fp.starts_with("SHA256:"), "{text}");
    fp
}

fn host_pub(fleet: &Fleet, name: &str) -> PathBuf {
    fleet.host(name).dir.join("ssh_host_ed25519_key.pub")
}

fn host_cert(fleet: &Fleet, name: &str) -> PathBuf {
    fleet.host(name).dir.join("ssh_host_ed25519_key-cert.pub")
}

/// `[127.0.0.1]:PORT`, the name capo looks the host up by.
fn kh_name(fleet: &Fleet, name: &str) -> String {
    format!("[127.0.0.1]:{}", fleet.host(name).port)
}

/// The known_hosts line OpenSSH would write for the host's current key.
fn kh_line(fleet: &Fleet, name: &str) -> String {
    let text = std::fs::read_to_string(host_pub(fleet, name)).expect("host public key");
    let mut f = text.split_whitespace();
    let (kind, blob) = (f.next().expect("type"), f.next().expect("blob"));
    format!("{} {kind} {blob}", kh_name(fleet, name))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The validity window of the host's certificate, as capo writes it
/// (`2026-12-01T09:00:00Z`), from `ssh-keygen -L` in UTC.
fn cert_window(fleet: &Fleet, name: &str) -> (String, String) {
    let out = Command::new("ssh-keygen")
        .arg("-Lf")
        .arg(host_cert(fleet, name))
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen -L");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let valid = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Valid: from "))
        .unwrap_or_else(|| panic!("no validity in:\n{text}"));
    let (from, to) = valid.split_once(" to ").expect("from ... to ...");
    (format!("{from}Z"), format!("{to}Z"))
}

/// The fleet inventory with `known_hosts` and `host_key_check` set.
fn inventory(fleet: &Fleet, known_hosts: &str, check: &str) -> PathBuf {
    run::inventory_with(
        fleet,
        &[
            ("known_hosts", &format!("\"{known_hosts}\"")),
            ("host_key_check", &format!("\"{check}\"")),
        ],
    )
}

/// `capo exec` of `touch /srv/managed/ran` on every host.
fn exec_mark(fleet: &Fleet, inventory: &Path) -> Run {
    run::capo(
        fleet,
        "exec",
        &[
            "-i",
            path_arg(inventory),
            "--",
            "touch",
            &format!("/srv/managed/{MARK}"),
        ],
    )
}

fn marked(fleet: &Fleet, name: &str) -> bool {
    fleet.managed_path(name, MARK).exists()
}

/// Logins sshd accepted on the host so far.
fn logins(fleet: &Fleet, name: &str) -> usize {
    fleet.sshd_log(name).matches("Accepted publickey").count()
}

/// Every host ok and marked.
fn assert_all_ok(fleet: &Fleet, r: &Run) {
    assert_eq!(r.code, 0, "{}", r.dump());
    for name in fleet.host_names() {
        assert_eq!(r.host(&name)["status"], "ok", "{name}: {}", r.dump());
        assert!(marked(fleet, &name), "{name} not marked");
    }
}

/// `name` refused with kind host_key and `message`, nothing run there (no login, no mark);
/// every other host ok.
fn assert_refused(fleet: &Fleet, r: &Run, refused: &[&str], message: &dyn Fn(&str) -> String) {
    assert_eq!(r.code, 1, "{}", r.dump());
    for name in fleet.host_names() {
        if refused.contains(&name.as_str()) {
            assert_eq!(r.host(&name)["status"], "unreachable", "{}", r.dump());
            assert_eq!(
                r.error(&name),
                ("host_key".to_string(), message(&name)),
                "{}",
                r.dump()
            );
            assert_eq!(r.host(&name)["steps"].as_array().map(Vec::len), Some(0));
            assert!(!marked(fleet, &name), "something ran on {name}");
        } else {
            assert_eq!(r.host(&name)["status"], "ok", "{name}: {}", r.dump());
            assert!(marked(fleet, &name), "{name}");
        }
    }
}

#[test]
fn host_certificates_signed_by_the_fleet_ca_are_accepted_through_cert_authority_alone() {
    let fleet = Fleet::up_with_host_certs(3);
    let ca_file = fleet.dir.join("keys/known_hosts_ca");
    let before = read(&ca_file);
    let entries: Vec<&str> = before
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(entries.len(), 1, "{before}");
    assert!(entries[0].starts_with("@cert-authority 127.0.0.1,[127.0.0.1]:* ssh-ed25519 "));

    let r = exec_mark(&fleet, &inventory(&fleet, "keys/known_hosts_ca", "strict"));
    assert_all_ok(&fleet, &r);
    // accept-new has nothing to record for a host its CA vouches for.
    let r = exec_mark(
        &fleet,
        &inventory(&fleet, "keys/known_hosts_ca", "accept-new"),
    );
    assert_all_ok(&fleet, &r);
    assert_eq!(read(&ca_file), before);
    // Without a CA line capo does not ask for the certificate: plain lines still work.
    let r = exec_mark(&fleet, &fleet.inventory);
    assert_all_ok(&fleet, &r);
}

#[test]
fn a_host_certificate_without_the_name_connected_to_is_refused() {
    let fleet = Fleet::up_with_host_certs(3);
    fleet.certify("host02", &["--principals", "other.example,host09"]);
    let logins_before = logins(&fleet, "host02");
    let r = exec_mark(&fleet, &inventory(&fleet, "keys/known_hosts_ca", "strict"));
    assert_refused(&fleet, &r, &["host02"], &|name| {
        format!(
            "host certificate for {} refused: not valid for 127.0.0.1 (principals: other.example, host09)",
            kh_name(&fleet, name)
        )
    });
    assert_eq!(
        logins(&fleet, "host02"),
        logins_before,
        "capo logged in to host02"
    );
}

#[test]
fn an_expired_host_certificate_is_refused_with_its_window() {
    let fleet = Fleet::up_with_host_certs(3);
    fleet.certify("host02", &["--validity", "-2d:-1d"]);
    let (from, to) = cert_window(&fleet, "host02");
    let r = exec_mark(&fleet, &inventory(&fleet, "keys/known_hosts_ca", "strict"));
    assert_refused(&fleet, &r, &["host02"], &|name| {
        format!(
            "host certificate for {} refused: expired (valid from {from} to {to})",
            kh_name(&fleet, name)
        )
    });
}

#[test]
fn a_host_certificate_not_yet_valid_is_refused_with_its_window() {
    let fleet = Fleet::up_with_host_certs(3);
    fleet.certify("host03", &["--validity", "+1d:+2d"]);
    let (from, to) = cert_window(&fleet, "host03");
    let r = exec_mark(
        &fleet,
        &inventory(&fleet, "keys/known_hosts_ca", "accept-new"),
    );
    assert_refused(&fleet, &r, &["host03"], &|name| {
        format!(
            "host certificate for {} refused: not yet valid (valid from {from} to {to})",
            kh_name(&fleet, name)
        )
    });
}

#[test]
fn a_revoked_ca_is_refused_even_where_plain_lines_list_the_host_keys() {
    let fleet = Fleet::up_with_host_certs(2);
    let ca_pub = fleet.dir.join("keys/host_ca.pub");
    let ca = read(&ca_pub);
    let ca = ca.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    // The plain lines of `up`, the CA trusted, and then revoked.
    let mut text = read(&fleet.known_hosts());
    text.push_str(&format!("@cert-authority * {ca}\n@revoked * {ca}\n"));
    let path = fleet.dir.join("keys/known_hosts_revoked");
    std::fs::write(&path, &text).expect("write known_hosts");
    let line = text.lines().count();
    let fp = fingerprint(&ca_pub);
    let r = exec_mark(
        &fleet,
        &inventory(&fleet, "keys/known_hosts_revoked", "accept-new"),
    );
    assert_refused(&fleet, &r, &["host01", "host02"], &|name| {
        format!(
            "host certificate for {} refused: its CA (ssh-ed25519 {fp}) is marked @revoked in {}:{line}",
            kh_name(&fleet, name),
            path.display()
        )
    });
    assert_eq!(read(&path), text, "known_hosts unchanged");
}

#[test]
fn a_host_certificate_from_an_unknown_ca_is_refused() {
    let fleet = Fleet::up_with_host_certs(2);
    // Trust another CA for every host. host01 presents its certificate (capo asks for one,
    // a CA line covers it), which that CA did not sign, and is accepted through its plain
    // line, as OpenSSH falls back; host02 has no plain line.
    let other = fleet.dir.join("keys/other_ca");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .stdin(Stdio::null())
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success());
    let other_ca = read(&other.with_extension("pub"));
    let other_ca = other_ca
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let path = fleet.dir.join("keys/known_hosts_mixed");
    let text = format!(
        "{}\n@cert-authority * {other_ca}\n",
        kh_line(&fleet, "host01")
    );
    std::fs::write(&path, &text).expect("write known_hosts");
    let fp = fingerprint(&fleet.dir.join("keys/host_ca.pub"));
    let r = exec_mark(
        &fleet,
        &inventory(&fleet, "keys/known_hosts_mixed", "strict"),
    );
    assert_refused(&fleet, &r, &["host02"], &|name| {
        let host = kh_name(&fleet, name);
        format!(
            "host certificate for {host} refused: signed by an unknown CA (ssh-ed25519 {fp}); \
             no @cert-authority line for {host} in {} lists it",
            path.display()
        )
    });
    assert_eq!(read(&path), text);
}

/// The lines of a known_hosts file capo wrote, checked: one per host, each host's own.
fn assert_one_line_per_host(fleet: &Fleet, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), fleet.hosts.len(), "{text}");
    for name in fleet.host_names() {
        let want = kh_line(fleet, &name);
        assert_eq!(
            lines.iter().filter(|l| **l == want).count(),
            1,
            "{name} in:\n{text}"
        );
    }
    assert!(text.ends_with('\n'));
}

#[test]
fn accept_new_records_each_host_once_changes_nothing_the_second_time_and_refuses_a_changed_key() {
    let fleet = Fleet::up(8);
    let path = fleet.dir.join("keys/known_hosts_new");
    assert!(!path.exists());
    let inv = inventory(&fleet, "keys/known_hosts_new", "accept-new");

    let r = exec_mark(&fleet, &inv);
    assert_all_ok(&fleet, &r);
    let first = read(&path);
    assert_one_line_per_host(&fleet, &first);

    let r = exec_mark(&fleet, &inv);
    assert_all_ok(&fleet, &r);
    assert_eq!(read(&path), first, "the second run wrote nothing");

    let old_fp = fingerprint(&host_pub(&fleet, "host02"));
    let old_line = kh_line(&fleet, "host02");
    let line = first.lines().position(|l| l == old_line).expect("host02") + 1;
    fleet.rekey("host02");
    let new_fp = fingerprint(&host_pub(&fleet, "host02"));
    for name in fleet.host_names() {
        let _ = std::fs::remove_file(fleet.managed_path(&name, MARK));
    }
    let logins_before = logins(&fleet, "host02");
    let r = exec_mark(&fleet, &inv);
    assert_refused(&fleet, &r, &["host02"], &|name| {
        format!(
            "HOST KEY CHANGED for {}: presented ssh-ed25519 {new_fp}, expected {old_fp} ({}:{line}); \
             possible man-in-the-middle, host not touched",
            kh_name(&fleet, name),
            path.display()
        )
    });
    assert_eq!(logins(&fleet, "host02"), logins_before);
    assert_eq!(read(&path), first, "a changed key is never recorded");
}

#[test]
fn two_runs_at_once_record_each_new_host_once() {
    let fleet = Fleet::up(12);
    let path = fleet.dir.join("keys/known_hosts_new");
    let inv = inventory(&fleet, "keys/known_hosts_new", "accept-new");
    let start = |_: usize| {
        let (mut cmd, report) = run::command(&fleet, "exec", &["-i", path_arg(&inv), "--", "true"]);
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("capo starts");
        (child, report)
    };
    let runs: Vec<_> = (0..2).map(start).collect();
    for (child, report) in runs {
        let r = run::wait(child, &report);
        assert_eq!(r.code, 0, "{}", r.dump());
        for name in fleet.host_names() {
            assert_eq!(r.host(&name)["status"], "ok", "{}", r.dump());
        }
    }
    assert_one_line_per_host(&fleet, &read(&path));
}
