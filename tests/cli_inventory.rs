//! Inventory and --limit errors: exit 2, one message naming file, line, column and key, and no
//! host contacted. Also `capo hosts`. These need no fleet.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn capo(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capo"))
        .current_dir(dir)
        .env_remove("CAPO_INVENTORY")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("capo runs")
}

struct Case {
    dir: tempfile::TempDir,
    /// A listener the inventory's host points at, to prove nothing connected.
    listener: TcpListener,
}

impl Case {
    fn new() -> Case {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        Case {
            dir: tempfile::tempdir().expect("tempdir"),
            listener,
        }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().expect("addr").port()
    }

    fn write(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("inventory.toml");
        std::fs::write(&path, text).expect("write inventory");
        path
    }

    /// Runs capo and asserts exit 2, the exact stderr, and that nobody connected.
    fn expect_usage_error(&self, args: &[&str], message: &str) {
        let out = capo(self.dir.path(), args);
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("capo: {message}\n")
        );
        assert_eq!(out.status.code(), Some(2));
        assert!(out.stdout.is_empty());
        assert!(
            self.listener.accept().is_err(),
            "a host was contacted despite the error"
        );
    }

    fn base(&self) -> String {
        format!(
            "[defaults]\nconnect_timeout = \"2s\"\n\n[groups.web]\nhosts = [\"web[01-03]\"]\n\n[hosts.web01]\naddress = \"127.0.0.1\"\nport = {}\n",
            self.port()
        )
    }
}

#[test]
fn unknown_key_names_file_line_column_and_key() {
    let case = Case::new();
    case.write(&format!("{}usr = \"deploy\"\n", case.base()));
    case.expect_usage_error(
        &["rollout"],
        "inventory.toml:10:1: unknown key `usr` in [hosts.web01]; expected one of: address, user, port, identity_files, identity_agent, identities_only, known_hosts, host_key_check, connect_timeout, command_timeout, keepalive_interval, keepalive_count, connect_retries, repo_dir, repo_url, lock, state_dir, remote, branch, environment, manifest, modulepath, puppet, puppet_args, certname, puppetfile, become, become_user, jump",
    );
}

#[test]
fn bad_range_is_an_error() {
    let case = Case::new();
    case.write(&case.base().replace("web[01-03]", "web[03-01]"));
    case.expect_usage_error(
        &["rollout"],
        "inventory.toml:5:10: bad host pattern \"web[03-01]\" in [groups.web]: range `03-01` is backwards (start is greater than end)",
    );
}

#[test]
fn conflicting_groups_name_both() {
    let case = Case::new();
    case.write(&format!(
        "{}\n[groups.canary]\nhosts = [\"web02\"]\nuser = \"admin\"\n\n[groups.deploy]\nhosts = [\"web02\"]\nuser = \"deploy\"\n",
        case.base()
    ));
    case.expect_usage_error(
        &["rollout"],
        "inventory.toml:17:1: host \"web02\" is in groups \"canary\" and \"deploy\", which set `user` differently (\"admin\" and \"deploy\"); set `user` in [hosts.web02] to choose",
    );
}

#[test]
fn a_limit_that_matches_nothing_is_an_error() {
    let case = Case::new();
    case.write(&case.base());
    case.expect_usage_error(
        &["rollout", "-l", "wbe*"],
        "--limit: \"wbe*\" matches no host or group in inventory.toml; did you mean \"web\"?",
    );
}

#[test]
fn a_missing_inventory_is_an_error() {
    let case = Case::new();
    case.expect_usage_error(
        &["hosts", "-i", "nope.toml"],
        "nope.toml: cannot read inventory: No such file or directory (os error 2)",
    );
}

#[test]
fn hosts_lists_the_selection_in_inventory_order() {
    let case = Case::new();
    let path = case.write(&case.base());
    let out = capo(
        case.dir.path(),
        &[
            "hosts",
            "-i",
            path.to_str().expect("utf-8"),
            "-l",
            "web*,!web02",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let hosts: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let port = case.port();
    assert_eq!(
        hosts,
        serde_json::json!([
            {"name": "web01", "address": "127.0.0.1", "port": port, "user": "root", "groups": ["web"]},
            {"name": "web03", "address": "web03", "port": 22, "user": "root", "groups": ["web"]},
        ])
    );
    assert!(
        case.listener.accept().is_err(),
        "capo hosts must not connect"
    );
}

#[test]
fn the_inventory_comes_from_capo_inventory_when_not_given() {
    let case = Case::new();
    let path = case.write(&case.base());
    let out = Command::new(env!("CARGO_BIN_EXE_capo"))
        .current_dir("/")
        .env("CAPO_INVENTORY", &path)
        .args(["hosts", "-l", "web03"])
        .output()
        .expect("capo runs");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("web03"), "{stdout}");
    assert!(stdout.ends_with("1 host\n"), "{stdout}");
}

#[test]
fn hosts_piped_into_a_reader_that_stops_early_exits_0() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    // Far more than a pipe's 64 KiB buffer, so that capo is still writing when the reader
    // has gone (as in `capo hosts | head -1`).
    std::fs::write(
        dir.path().join("inventory.toml"),
        "[groups.all]\nhosts = [\"web[00001-05000].example.com\"]\n",
    )
    .expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_capo"))
        .current_dir(dir.path())
        .env_remove("CAPO_INVENTORY")
        .args(["hosts", "-i", "inventory.toml"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("capo starts");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("a line");
    assert!(first.starts_with('┌'), "{first}");
    let out = child.wait_with_output().expect("capo ends");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
