//! Host identity and client secrets: host keys are checked like OpenSSH does (changed,
//! revoked, unknown, accept-new, off), private keys open to others are refused, and no key
//! material ever reaches a log or a report. Runs against a real local fleet (needs root);
//! see tests/fleet/README.md.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::run::path_arg;
use crate::common::run::{self, all, Run};
use crate::common::Fleet;

const NAMES: [&str; 3] = ["host01", "host02", "host03"];

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
        "ssh-keygen -lf {}: {text}{}",
        pub_file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // "256 SHA256:abc... comment (ED25519)"
    let fp = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected ssh-keygen output: {text}"))
        .to_string();
    assert!(fp.starts_with("SHA256:"), "{text}");
    fp
}

/// The host's current public host key file.
fn host_pub(fleet: &Fleet, name: &str) -> PathBuf {
    fleet.host(name).dir.join("ssh_host_ed25519_key.pub")
}

/// The base64 blob of the host's current public host key.
fn host_key_blob(fleet: &Fleet, name: &str) -> String {
    let text = std::fs::read_to_string(host_pub(fleet, name)).expect("host public key");
    let mut fields = text.split_whitespace();
    assert_eq!(fields.next(), Some("ssh-ed25519"), "{text}");
    fields.next().expect("key blob").to_string()
}

/// `[127.0.0.1]:PORT`, the host's name in known_hosts.
fn kh_name(fleet: &Fleet, name: &str) -> String {
    format!("[127.0.0.1]:{}", fleet.host(name).port)
}

/// Absolute path of the known_hosts file as the fleet inventory resolves `keys/known_hosts`.
fn kh_path(fleet: &Fleet) -> PathBuf {
    let path = fleet.dir.join("keys/known_hosts");
    assert_eq!(path, fleet.known_hosts());
    path
}

fn kh_text(fleet: &Fleet) -> String {
    std::fs::read_to_string(kh_path(fleet)).expect("known_hosts")
}

/// 1-based line numbers of the (plain) known_hosts entries for the host.
fn kh_lines_of(fleet: &Fleet, name: &str) -> Vec<usize> {
    let prefix = format!("{} ", kh_name(fleet, name));
    kh_text(fleet)
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with(&prefix))
        .map(|(i, _)| i + 1)
        .collect()
}

/// The one line number of the host's known_hosts entry.
fn kh_line_of(fleet: &Fleet, name: &str) -> usize {
    let lines = kh_lines_of(fleet, name);
    assert_eq!(lines.len(), 1, "{name} in known_hosts:\n{}", kh_text(fleet));
    lines[0]
}

fn assert_unreachable_host_key(r: &Run, name: &str, message: &str) {
    assert_eq!(r.host(name)["status"], "unreachable", "{}", r.dump());
    assert_eq!(
        r.error(name),
        ("host_key".to_string(), message.to_string()),
        "{}",
        r.dump()
    );
    assert_eq!(
        r.host(name)["steps"].as_array().map(Vec::len),
        Some(0),
        "nothing may run on {name}"
    );
    assert!(r.host(name)["rev_before"].is_null());
    assert!(r.host(name)["rev_after"].is_null());
}

/// `[(host01, changed), (host02, STATUS2), (host03, changed)]`
fn host02_is(status2: &str) -> Vec<(String, String)> {
    vec![
        ("host01".into(), "changed".into()),
        ("host02".into(), status2.into()),
        ("host03".into(), "changed".into()),
    ]
}

#[test]
fn a_changed_host_key_names_both_fingerprints_and_the_known_hosts_line() {
    let fleet = Fleet::up(3);
    let old_fp = fingerprint(&host_pub(&fleet, "host02"));
    let line = kh_line_of(&fleet, "host02");
    fleet.rekey("host02");
    let new_fp = fingerprint(&host_pub(&fleet, "host02"));
    assert_ne!(old_fp, new_fp);

    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), host02_is("unreachable"));
    assert_unreachable_host_key(
        &r,
        "host02",
        &format!(
            "HOST KEY CHANGED for {}: presented ssh-ed25519 {new_fp}, expected {old_fp} ({}:{line}); \
             possible man-in-the-middle, host not touched",
            kh_name(&fleet, "host02"),
            kh_path(&fleet).display()
        ),
    );
    assert!(
        !fleet.managed_path("host02", "motd").exists(),
        "puppet ran on host02"
    );
}

#[test]
fn a_revoked_host_key_is_refused_even_when_also_listed() {
    let fleet = Fleet::up(3);
    let old = fleet.origin_head();
    let host = kh_name(&fleet, "host02");
    let blob = host_key_blob(&fleet, "host02");
    let fp = fingerprint(&host_pub(&fleet, "host02"));
    // Keep host02's normal line and revoke the same key at the end of the file.
    let mut text = kh_text(&fleet);
    assert!(text.ends_with('\n'));
    text.push_str(&format!("@revoked {host} ssh-ed25519 {blob}\n"));
    std::fs::write(kh_path(&fleet), &text).expect("write known_hosts");
    let revoked_line = text.lines().count();
    assert_eq!(kh_lines_of(&fleet, "host02").len(), 1, "normal line kept");

    let new = fleet.commit("modules/capo_demo/files/message.txt", "v2\n", "v2");
    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), host02_is("unreachable"));
    assert_unreachable_host_key(
        &r,
        "host02",
        &format!(
            "host key for {host} (ssh-ed25519 {fp}) is marked @revoked in {}:{revoked_line}",
            kh_path(&fleet).display()
        ),
    );
    // host02 untouched; the others took the change.
    assert_eq!(fleet.checkout_head("host02"), old);
    assert!(!fleet.managed_path("host02", "motd").exists());
    for name in ["host01", "host03"] {
        assert_eq!(fleet.checkout_head(name), new, "{name}");
        assert_eq!(r.host(name)["rev_after"], new.as_str());
        assert!(fleet.managed_path(name, "motd").is_file(), "{name}");
    }
}

/// known_hosts without host02's line.
fn forget_host02(fleet: &Fleet) {
    let line = kh_line_of(fleet, "host02");
    let text: String = kh_text(fleet)
        .lines()
        .enumerate()
        .filter(|(i, _)| i + 1 != line)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(kh_path(fleet), text).expect("write known_hosts");
    assert!(kh_lines_of(fleet, "host02").is_empty());
    assert_eq!(kh_lines_of(fleet, "host01").len(), 1);
    assert_eq!(kh_lines_of(fleet, "host03").len(), 1);
}

#[test]
fn an_unknown_host_key_is_refused_under_strict_checking() {
    let fleet = Fleet::up(3);
    forget_host02(&fleet);
    let before = kh_text(&fleet);
    let fp = fingerprint(&host_pub(&fleet, "host02"));

    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), host02_is("unreachable"));
    assert_unreachable_host_key(
        &r,
        "host02",
        &format!(
            "host key for {} is not in {} (ssh-ed25519 {fp}); add it or set host_key_check = \"accept-new\"",
            kh_name(&fleet, "host02"),
            kh_path(&fleet).display()
        ),
    );
    assert_eq!(kh_text(&fleet), before, "strict never writes known_hosts");
    assert!(!fleet.managed_path("host02", "motd").exists());
}

#[test]
fn accept_new_records_an_unknown_host_key_and_strict_accepts_it_afterwards() {
    let fleet = Fleet::up(3);
    forget_host02(&fleet);
    let before = kh_text(&fleet);
    let inventory = run::inventory_with(&fleet, &[("host_key_check", "\"accept-new\"")]);

    let r = run::rollout(&fleet, &["-i", path_arg(&inventory)]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), all(&NAMES, "changed"));
    assert!(fleet.managed_path("host02", "motd").is_file());
    // Exactly one line was added: host02's current key.
    let after = kh_text(&fleet);
    let expected_line = format!(
        "{} ssh-ed25519 {}",
        kh_name(&fleet, "host02"),
        host_key_blob(&fleet, "host02")
    );
    assert_eq!(after, format!("{before}{expected_line}\n"));
    assert_eq!(kh_lines_of(&fleet, "host02").len(), 1);

    // The recorded key is good for strict checking (the fleet inventory).
    let r = run::rollout(&fleet, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), all(&NAMES, "unchanged"));
    assert_eq!(kh_text(&fleet), after);
}

#[test]
fn host_key_check_off_accepts_a_changed_key_and_warns_once() {
    let fleet = Fleet::up(3);
    fleet.rekey("host02");
    let inventory = run::inventory_with(&fleet, &[("host_key_check", "\"off\"")]);
    let before = kh_text(&fleet);

    let r = run::rollout(&fleet, &["-i", path_arg(&inventory)]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.statuses(), all(&NAMES, "changed"));
    let warning = "capo: warning: host key checking is off for 3 hosts (host01, host02, host03); \
                   their identity is not verified";
    assert_eq!(
        r.stderr.lines().filter(|l| *l == warning).count(),
        1,
        "{}",
        r.dump()
    );
    assert_eq!(
        r.stderr
            .lines()
            .filter(|l| l.contains("host key checking is off"))
            .count(),
        1,
        "{}",
        r.dump()
    );
    assert_eq!(kh_text(&fleet), before, "off never writes known_hosts");
}

#[test]
fn a_private_key_readable_by_others_is_refused_without_contacting_any_host() {
    let fleet = Fleet::up(3);
    let key = fleet.dir.join("keys/client_ed25519_open");
    std::fs::copy(fleet.client_key(), &key).expect("copy client key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod 0644");
    let inventory = run::inventory_with(
        &fleet,
        &[("identity_files", &format!("[\"{}\"]", key.display()))],
    );
    let seen: Vec<usize> = NAMES.iter().map(|n| fleet.sshd_connections(n)).collect();
    assert!(
        seen.iter().all(|&n| n > 0),
        "sshd logs connections: {seen:?}"
    );

    let r = run::rollout(&fleet, &["-i", path_arg(&inventory)]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.statuses(), all(&NAMES, "unreachable"));
    let message = format!(
        "no usable identity file (tried: {} (permissions 0644 are too open: \
         private key files must not be accessible by others))",
        key.display()
    );
    for name in NAMES {
        assert_eq!(
            r.error(name),
            ("auth".to_string(), message.clone()),
            "{}",
            r.dump()
        );
        let ms = r.host(name)["duration_ms"].as_u64().expect("duration_ms");
        assert!(ms < 1000, "{name} took {ms} ms: was it contacted?");
        assert_eq!(r.host(name)["steps"].as_array().map(Vec::len), Some(0));
    }
    let after: Vec<usize> = NAMES.iter().map(|n| fleet.sshd_connections(n)).collect();
    assert_eq!(after, seen, "a host was contacted");
}

/// The base64 body of a PEM-style private key file: every line between the BEGIN and END
/// markers, and every 20-character chunk of those lines.
fn secret_fragments(key_file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(key_file).expect("private key");
    let body: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END "))
        .collect();
    assert!(body.len() >= 4, "unexpected key file:\n{text}");
    let mut out: Vec<String> = Vec::new();
    for line in body {
        out.push(line.to_string());
        let chars: Vec<char> = line.chars().collect();
        for chunk in chars.chunks(20).filter(|c| c.len() == 20) {
            out.push(chunk.iter().collect());
        }
    }
    out
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else if path.is_file() {
            out.push(path);
        }
    }
}

#[test]
fn no_private_key_material_reaches_output_reports_or_logs() {
    let fleet = Fleet::up(3);

    let ok = run::rollout(&fleet, &[]);
    assert_eq!(ok.code, 0, "{}", ok.dump());
    assert_eq!(ok.statuses(), all(&NAMES, "changed"));

    // A key the hosts do not accept.
    let wrong = fleet.dir.join("keys/wrong_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "wrong", "-f"])
        .arg(&wrong)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    assert!(out.status.success(), "{out:?}");
    let inventory = run::inventory_with(
        &fleet,
        &[("identity_files", &format!("[\"{}\"]", wrong.display()))],
    );
    let refused = run::rollout(&fleet, &["-i", path_arg(&inventory)]);
    assert_eq!(refused.code, 1, "{}", refused.dump());
    assert_eq!(refused.statuses(), all(&NAMES, "unreachable"));
    for name in NAMES {
        assert_eq!(
            refused.error(name),
            (
                "auth".to_string(),
                format!(
                    "authentication refused for user root (tried: {})",
                    wrong.display()
                )
            ),
            "{}",
            refused.dump()
        );
    }

    let mut secrets = secret_fragments(&fleet.client_key());
    secrets.extend(secret_fragments(&wrong));

    // Everything capo printed or wrote.
    let mut texts: Vec<(String, String)> = Vec::new();
    let mut files = Vec::new();
    for (what, r) in [("successful run", &ok), ("auth failure run", &refused)] {
        texts.push((format!("{what}: stdout"), r.stdout.clone()));
        texts.push((format!("{what}: stderr"), r.stderr.clone()));
        texts.push((format!("{what}: report"), r.report.to_string()));
        let run_dir = fleet
            .dir
            .join(r.report["run_dir"].as_str().expect("run_dir"));
        assert!(run_dir.is_dir(), "{}", run_dir.display());
        files_under(&run_dir, &mut files);
    }
    for entry in std::fs::read_dir(&fleet.dir).expect("fleet dir") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("report-") && name.ends_with(".json") {
            files.push(path);
        }
    }
    assert!(
        files.iter().any(|f| f.ends_with("host01/apply.stdout")),
        "run directories hold the step logs: {files:?}"
    );
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        texts.push((
            file.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    for (what, text) in &texts {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "private key material {secret:?} found in {what}"
            );
        }
    }
}
