//! `ssh_config`: inventory host names that are Host aliases of an OpenSSH client config, read
//! from the default `~/.ssh/config` (a HOME of the test's own: the machine's is never read) or
//! a path; `Include`; inventory values beating the config's; a `Match` block refused before
//! any host is contacted.

use std::path::{Path, PathBuf};

use crate::common::run::{self, path_arg, Run};
use crate::common::Fleet;

const MARK: &str = "ssh-config-mark";

/// A home directory of the test's own.
fn home() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
    path.to_path_buf()
}

/// `Host web-a` / `Host web-b` for host01 / host02: everything needed to reach them comes
/// from the config (the fleet's key and known_hosts, root, loopback and the hosts' ports).
fn alias_blocks(fleet: &Fleet) -> String {
    format!(
        "Host web-a\n  HostName 127.0.0.1\n  Port {}\n\
         Host web-b\n  HostName 127.0.0.1\n  Port {}\n\
         Host web-*\n  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
         UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  ConnectTimeout 5\n",
        fleet.host("host01").port,
        fleet.host("host02").port,
        fleet.client_key().display(),
        fleet.known_hosts().display(),
    )
}

/// `capo exec -i INVENTORY -- touch /srv/managed/MARK` with `HOME` set to `home`.
fn exec_mark(fleet: &Fleet, inventory: &Path, home: &Path) -> (Run, std::process::Output) {
    let (mut cmd, report) = run::command(
        fleet,
        "exec",
        &[
            "-i",
            path_arg(inventory),
            "--",
            "touch",
            &format!("/srv/managed/{MARK}"),
        ],
    );
    let out = cmd.env("HOME", home).output().expect("capo runs");
    let run = if report.exists() {
        let report = serde_json::from_str(&std::fs::read_to_string(&report).expect("report"))
            .expect("report is JSON");
        Run {
            code: out.status.code().unwrap_or(-1),
            report,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    } else {
        Run {
            code: out.status.code().unwrap_or(-1),
            report: serde_json::Value::Null,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    (run, out)
}

fn assert_marked(fleet: &Fleet, r: &Run) {
    assert_eq!(r.code, 0, "{}", r.dump());
    for (alias, host) in [("web-a", "host01"), ("web-b", "host02")] {
        assert_eq!(r.host(alias)["status"], "ok", "{alias}: {}", r.dump());
        assert!(fleet.managed_path(host, MARK).exists(), "{host} not marked");
    }
}

#[test]
fn host_aliases_from_the_default_config_through_an_include() {
    let fleet = Fleet::up(2);
    let home = home();
    // ~/.ssh/config only includes; the blocks are in conf.d, found by a glob.
    write(
        &home.path().join(".ssh/config"),
        "# the operator's config\nInclude conf.d/*.conf\n",
    );
    write(
        &home.path().join(".ssh/conf.d/fleet.conf"),
        &alias_blocks(&fleet),
    );
    // The inventory has only the names.
    let inventory = fleet.write_inventory("[groups.web]\nhosts = [\"web-a\", \"web-b\"]\n");
    let (r, _) = exec_mark(&fleet, &inventory, home.path());
    assert_marked(&fleet, &r);
}

#[test]
fn inventory_values_beat_the_config() {
    let fleet = Fleet::up(2);
    let home = home();
    // The config sends web-a to a port nobody listens on, as a user that does not exist.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let config = write(
        &home.path().join("elsewhere/config"),
        &format!(
            "Host web-a\n  Port {closed}\n  User nobody-here\n{}",
            alias_blocks(&fleet)
        ),
    );
    let inventory = fleet.write_inventory(&format!(
        "[defaults]\nssh_config = \"{}\"\nuser = \"root\"\n\n[groups.web]\nhosts = [\"web-a\", \"web-b\"]\n\n[hosts.web-a]\nport = {}\n",
        config.display(),
        fleet.host("host01").port
    ));
    let (r, _) = exec_mark(&fleet, &inventory, home.path());
    assert_marked(&fleet, &r);
}

#[test]
fn a_match_block_is_refused_before_any_host_is_contacted() {
    let fleet = Fleet::up(2);
    let home = home();
    let config = write(
        &home.path().join("ssh_config"),
        &format!(
            "{}\n# below: evaluated by ssh, not by capo\nMatch user root\n  Port 1\n",
            alias_blocks(&fleet)
        ),
    );
    let inventory = fleet.write_inventory(&format!(
        "[defaults]\nssh_config = \"{}\"\n\n[groups.web]\nhosts = [\"web-a\", \"web-b\"]\n",
        config.display()
    ));
    let before: Vec<usize> = ["host01", "host02"]
        .iter()
        .map(|h| fleet.sshd_connections(h))
        .collect();
    let (r, out) = exec_mark(&fleet, &inventory, home.path());
    assert_eq!(
        r.stderr,
        format!(
            "capo: {}:2:14: {}:16: `Match` blocks are not supported; capo cannot apply it as OpenSSH would, so it stops here: set `ssh_config = false` in [defaults] or move these settings into the inventory\n",
            inventory.display(),
            config.display()
        )
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let after: Vec<usize> = ["host01", "host02"]
        .iter()
        .map(|h| fleet.sshd_connections(h))
        .collect();
    assert_eq!(before, after, "a host was contacted");
    for host in ["host01", "host02"] {
        assert!(!fleet.managed_path(host, MARK).exists(), "{host} marked");
    }
    // `ssh_config = false` turns it off: the names alone then lead nowhere known (web-a does
    // not resolve), which is the operator's call; here it is enough that the refusal goes.
    let off = fleet.write_inventory(&format!(
        "[defaults]\nssh_config = false\nconnect_timeout = \"2s\"\nconnect_retries = 0\n\n[hosts.web-a]\naddress = \"127.0.0.1\"\nport = {}\nidentity_files = [\"{}\"]\nknown_hosts = \"{}\"\n",
        fleet.host("host01").port,
        fleet.client_key().display(),
        fleet.known_hosts().display()
    ));
    let (r, _) = exec_mark(&fleet, &off, home.path());
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(fleet.managed_path("host01", MARK).exists());
}
