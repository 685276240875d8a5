//! Whole-file tests: every key, precedence, error messages and positions,
//! path resolution, host order, and the shipped example.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;

use crate::parse::parse;
use crate::{
    Become, ErrorKind, HostKeyCheck, IdentityAgent, Inventory, InventoryError, JumpHost,
    Puppetfile, Settings,
};

const HOME: &str = "/home/op";

fn parse_at(text: &str, path: &str) -> Result<Inventory, InventoryError> {
    parse(text, Path::new(path), Some(Path::new(HOME)))
}

fn ok(text: &str) -> Inventory {
    parse_at(text, "inventory.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    match parse_at(text, "inventory.toml") {
        Ok(inv) => panic!("parsed, expected an error: {inv:?}"),
        Err(e) => e.to_string(),
    }
}

fn builtin() -> Settings {
    Settings {
        user: "root".into(),
        port: 22,
        identity_files: vec![
            PathBuf::from("/home/op/.ssh/id_ed25519"),
            PathBuf::from("/home/op/.ssh/id_ecdsa"),
            PathBuf::from("/home/op/.ssh/id_rsa"),
        ],
        identity_agent: IdentityAgent::Env,
        identities_only: false,
        known_hosts: PathBuf::from("/home/op/.ssh/known_hosts"),
        host_key_check: HostKeyCheck::Strict,
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(1800),
        keepalive_interval: Duration::from_secs(15),
        keepalive_count: 3,
        connect_retries: 2,
        repo_dir: "/etc/puppetlabs/code/capo".into(),
        repo_url: None,
        lock: true,
        state_dir: "/var/lib/capo".into(),
        remote: "origin".into(),
        branch: "main".into(),
        environment: "production".into(),
        manifest: None,
        modulepath: None,
        puppet: "puppet".into(),
        puppet_args: vec![],
        certname: None,
        puppetfile: Puppetfile::R10k,
        become_method: Become::None,
        become_user: "root".into(),
        jump: vec![],
    }
}

fn names(inv: &Inventory) -> Vec<&str> {
    inv.hosts.iter().map(|h| h.name.as_str()).collect()
}

#[test]
fn builtin_defaults_apply_when_nothing_is_set() {
    let inv = ok("[hosts.a]\n");
    assert_eq!(inv.hosts.len(), 1);
    let host = &inv.hosts[0];
    assert_eq!(host.name, "a");
    assert_eq!(host.address, "a");
    assert!(host.groups.is_empty());
    assert_eq!(host.settings, builtin());
    assert_eq!(inv.path, PathBuf::from("inventory.toml"));
}

#[test]
fn every_key_is_parsed() {
    let inv = parse_at(
        r#"
[defaults]
user = "deploy"
port = 2200
identity_files = ["keys/a", "/abs/b", "~/c"]
known_hosts = "known"
host_key_check = "accept-new"
connect_timeout = "1500ms"
command_timeout = "1h30m"
keepalive_interval = "5s"
keepalive_count = 7
connect_retries = 0
repo_dir = "/srv/puppet"
repo_url = "git@git.example.com:puppet/control.git"
lock = false
state_dir = "/srv/capo-state"
remote = "upstream"
branch = "production"
environment = "live_2"
manifest = "site.pp"
modulepath = ["modules", "site-modules"]
puppet = "/opt/puppetlabs/bin/puppet"
puppet_args = ["--noop", "--tags", "a b", ""]
certname = "node.example.com"
puppetfile = "g10k"
become = "sudo"
become_user = "puppet-run"
jump = "ops@bastion.example.com:2222"

[hosts."web01.example.com"]
address = "192.0.2.10"
"#,
        "/etc/capo/inventory.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let host = &inv.hosts[0];
    assert_eq!(host.address, "192.0.2.10");
    assert_eq!(
        host.settings,
        Settings {
            user: "deploy".into(),
            port: 2200,
            identity_files: vec![
                PathBuf::from("/etc/capo/keys/a"),
                PathBuf::from("/abs/b"),
                PathBuf::from("/home/op/c"),
            ],
            identity_agent: IdentityAgent::Env,
            identities_only: false,
            known_hosts: PathBuf::from("/etc/capo/known"),
            host_key_check: HostKeyCheck::AcceptNew,
            connect_timeout: Duration::from_millis(1500),
            command_timeout: Duration::from_secs(5400),
            keepalive_interval: Duration::from_secs(5),
            keepalive_count: 7,
            connect_retries: 0,
            repo_dir: "/srv/puppet".into(),
            repo_url: Some("git@git.example.com:puppet/control.git".into()),
            lock: false,
            state_dir: "/srv/capo-state".into(),
            remote: "upstream".into(),
            branch: "production".into(),
            environment: "live_2".into(),
            manifest: Some("site.pp".into()),
            modulepath: Some(vec!["modules".into(), "site-modules".into()]),
            puppet: "/opt/puppetlabs/bin/puppet".into(),
            puppet_args: vec![
                "--noop".into(),
                "--tags".into(),
                "a b".into(),
                String::new()
            ],
            certname: Some("node.example.com".into()),
            puppetfile: Puppetfile::G10k,
            become_method: Become::Sudo,
            become_user: "puppet-run".into(),
            jump: vec![JumpHost {
                user: Some("ops".into()),
                host: "bastion.example.com".into(),
                port: Some(2222),
            }],
        }
    );
}

#[test]
fn jump_is_one_host_a_chain_or_none() {
    let inv = ok(r#"
[defaults]
jump = "bastion"
[groups.far]
hosts = ["b"]
jump = ["a@outer:2200", "[2001:db8::1]:22", "u@x@inner"]
[hosts.a]
[hosts.b]
[hosts.c]
jump = "none"
"#);
    let hop = |user: Option<&str>, host: &str, port: Option<u16>| JumpHost {
        user: user.map(Into::into),
        host: host.into(),
        port,
    };
    let jump = |name: &str| {
        let host = inv.hosts.iter().find(|h| h.name == name);
        host.map(|h| h.settings.jump.clone()).unwrap_or_default()
    };
    assert_eq!(jump("a"), [hop(None, "bastion", None)]);
    assert_eq!(
        jump("b"),
        [
            hop(Some("a"), "outer", Some(2200)),
            hop(None, "2001:db8::1", Some(22)),
            hop(Some("u@x"), "inner", None),
        ]
    );
    assert!(jump("c").is_empty());
    let shown: Vec<String> = jump("b").iter().map(|j| j.to_string()).collect();
    assert_eq!(shown, ["a@outer:2200", "[2001:db8::1]:22", "u@x@inner"]);
}

#[test]
fn bad_jump_values_are_refused_where_written() {
    for (value, reason) in [
        (
            "\"\"",
            "the host name is missing (write [user@]host[:port])",
        ),
        ("\"@b\"", "the user before `@` is empty"),
        ("\"b:0\"", "the port must be a number from 1 to 65535"),
        ("\"b:x\"", "the port must be a number from 1 to 65535"),
        ("\"b:70000\"", "the port must be a number from 1 to 65535"),
        (
            "\"::1\"",
            "write an IPv6 address in brackets: [ADDRESS]:PORT",
        ),
        (
            "\"-oProxyCommand=x\"",
            "must not contain whitespace or control characters, nor start with `-`",
        ),
        (
            "\"a b\"",
            "must not contain whitespace or control characters, nor start with `-`",
        ),
    ] {
        let shown = value.trim_matches('"');
        assert_eq!(
            err(&format!("[defaults]\njump = {value}\n")),
            format!("inventory.toml:2:8: bad value {shown:?} for `jump`: {reason}"),
            "{value}"
        );
    }
    assert_eq!(
        err("[defaults]\njump = [\"a\", \"none\"]\n"),
        "inventory.toml:2:14: bad value \"none\" for `jump`: \"none\" stands alone, not in a list"
    );
    assert_eq!(
        err("[defaults]\njump = []\n"),
        "inventory.toml:2:8: bad value \"[]\" for `jump`: list at least one jump host, or write \"none\" to connect directly"
    );
    assert_eq!(
        err("[defaults]\njump = 3\n"),
        "inventory.toml:2:8: `jump` must be a string or an array of strings, found integer"
    );
}

#[test]
fn become_is_sudo_or_none_and_become_user_a_plain_name() {
    let inv = ok("[defaults]\nbecome = \"sudo\"\n[hosts.a]\n[hosts.b]\nbecome = \"none\"\n");
    assert_eq!(inv.hosts[0].settings.become_method, Become::Sudo);
    assert_eq!(inv.hosts[0].settings.become_user, "root");
    assert_eq!(inv.hosts[1].settings.become_method, Become::None);
    assert_eq!(
        err("[defaults]\nbecome = \"su\"\n[hosts.a]\n"),
        "inventory.toml:2:10: bad value \"su\" for `become`: expected one of: sudo, none"
    );
    for bad in ["", "-x", "a b", "r'oot", "#0"] {
        let e = err(&format!("[defaults]\nbecome_user = {bad:?}\n[hosts.a]\n"));
        assert!(
            e.ends_with(
                "must be a user name: letters, digits, `_`, `.` and `-`, not starting with `-`"
            ),
            "{e}"
        );
    }
}

#[test]
fn lock_is_a_boolean_and_on_by_default() {
    assert!(ok("[hosts.a]\n").hosts[0].settings.lock);
    let inv = ok("[defaults]\nlock = false\n[groups.g]\nhosts = [\"b\"]\nlock = true\n[hosts.a]\n[hosts.b]\n");
    let mut locks: Vec<(&str, bool)> = inv
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h.settings.lock))
        .collect();
    locks.sort();
    assert_eq!(locks, [("a", false), ("b", true)]);
    assert_eq!(
        err("[defaults]\nlock = \"no\"\n"),
        "inventory.toml:2:8: `lock` must be true or false, found string"
    );
}

#[test]
fn host_key_check_values() {
    for (text, want) in [
        ("strict", HostKeyCheck::Strict),
        ("accept-new", HostKeyCheck::AcceptNew),
        ("off", HostKeyCheck::Off),
    ] {
        let inv = ok(&format!(
            "[defaults]\nhost_key_check = \"{text}\"\n[hosts.a]\n"
        ));
        assert_eq!(inv.hosts[0].settings.host_key_check, want);
    }
    assert_eq!(
        err("[defaults]\nhost_key_check = \"yes\"\n[hosts.a]\n"),
        "inventory.toml:2:18: bad value \"yes\" for `host_key_check`: expected one of: strict, accept-new, off"
    );
}

#[test]
fn precedence_host_over_group_over_defaults_over_builtin() {
    let inv = ok(r#"
[defaults]
user = "d"
port = 2022
branch = "from-defaults"

[groups.g]
hosts = ["a", "b"]
user = "g"
port = 3022

[hosts.a]
user = "h"
"#);
    let a = &inv.hosts[0].settings;
    let b = &inv.hosts[1].settings;
    assert_eq!(
        (a.user.as_str(), a.port, a.branch.as_str()),
        ("h", 3022, "from-defaults")
    );
    assert_eq!(
        (b.user.as_str(), b.port, b.branch.as_str()),
        ("g", 3022, "from-defaults")
    );
    assert_eq!(a.remote, "origin");
    assert_eq!(inv.hosts[0].groups, ["g"]);
}

#[test]
fn conflicting_groups_are_an_error_naming_both() {
    let text = r#"[groups.web]
hosts = ["web[1-2]"]
user = "deploy"

[groups.canary]
hosts = ["web2"]
user = "admin"
"#;
    assert_eq!(
        err(text),
        "inventory.toml:7:1: host \"web2\" is in groups \"web\" and \"canary\", which set `user` \
         differently (\"deploy\" and \"admin\"); set `user` in [hosts.web2] to choose"
    );
    let e = parse_at(text, "inventory.toml")
        .err()
        .map(|e| (e.line(), e.column()));
    assert_eq!(e, Some((Some(7), Some(1))));
}

#[test]
fn conflict_message_quotes_values_by_type() {
    let e = err(r#"[groups.a]
hosts = ["h.example.com"]
connect_timeout = "90s"
[groups.b]
hosts = ["h.example.com"]
connect_timeout = "1m"
"#);
    assert_eq!(
        e,
        "inventory.toml:6:1: host \"h.example.com\" is in groups \"a\" and \"b\", which set \
         `connect_timeout` differently (\"1m30s\" and \"1m\"); set `connect_timeout` in \
         [hosts.\"h.example.com\"] to choose"
    );
}

#[test]
fn groups_agreeing_on_a_value_are_fine() {
    let inv = ok(r#"
[groups.a]
hosts = ["h"]
port = 2222
[groups.b]
hosts = ["h"]
port = 2222
"#);
    assert_eq!(inv.hosts[0].settings.port, 2222);
    assert_eq!(inv.hosts[0].groups, ["a", "b"]);
}

#[test]
fn host_override_settles_a_group_conflict() {
    let inv = ok(r#"
[groups.a]
hosts = ["h"]
port = 2222
user = "x"
[groups.b]
hosts = ["h"]
port = 2222
user = "y"
[hosts.h]
user = "z"
"#);
    let h = &inv.hosts[0];
    assert_eq!((h.settings.user.as_str(), h.settings.port), ("z", 2222));
    assert_eq!(h.groups, ["a", "b"]);
}

#[test]
fn unknown_keys_are_reported_at_the_key() {
    let all = "user, port, identity_files, identity_agent, identities_only, known_hosts, \
               host_key_check, connect_timeout, \
               command_timeout, keepalive_interval, keepalive_count, connect_retries, repo_dir, repo_url, lock, state_dir, remote, branch, environment, manifest, modulepath, puppet, \
               puppet_args, certname, puppetfile, become, become_user, jump";
    assert_eq!(
        err("[groups.web]\nhosts = [\"a\"]\n\n  usr = \"x\"\n"),
        format!(
            "inventory.toml:4:3: unknown key `usr` in [groups.web]; expected one of: hosts, {all}"
        )
    );
    assert_eq!(
        err("[defaults]\nuser = \"a\"\nprot = 22\n"),
        format!(
            "inventory.toml:3:1: unknown key `prot` in [defaults]; expected one of: {all}, ssh_config"
        )
    );
    assert_eq!(
        err("[hosts.\"a.example.com\"]\nadress = \"x\"\n"),
        format!(
            "inventory.toml:2:1: unknown key `adress` in [hosts.\"a.example.com\"]; \
             expected one of: address, {all}"
        )
    );
    assert_eq!(
        err("[hosts.a]\n[default]\nuser = \"x\"\n"),
        "inventory.toml:2:2: unknown key `default` in the top-level table; expected one of: \
         defaults, groups, hosts"
    );
    // Dotted and inline forms still point at the key itself.
    assert_eq!(
        err("[hosts.a]\nx = 1\n").split(';').next(),
        Some("inventory.toml:2:1: unknown key `x` in [hosts.a]")
    );
    assert_eq!(
        err("groups.web = { hosts = [\"a\"], bad = 1 }\n")
            .split(';')
            .next(),
        Some("inventory.toml:1:31: unknown key `bad` in [groups.web]")
    );
}

#[test]
fn unknown_key_hints() {
    assert!(err("[groups.g]\nhosts = [\"a\"]\naddress = \"1.2.3.4\"\n")
        .ends_with("; `address` can only be set in a [hosts.NAME] table"));
    assert!(err("[hosts.a]\nhosts = [\"b\"]\n")
        .ends_with("; hosts are listed in a [groups.NAME] table's `hosts`"));
}

#[test]
fn first_error_in_file_order_is_reported() {
    // toml sorts keys; errors must still come out in file order.
    assert_eq!(
        err("[hosts.a]\nzz = 1\naa = 2\n").split(';').next(),
        Some("inventory.toml:2:1: unknown key `zz` in [hosts.a]")
    );
}

#[test]
fn bad_ranges_name_the_pattern_and_position() {
    assert_eq!(
        err("[groups.web]\nhosts = [\"ok\", \"web[5-1]\"]\n"),
        "inventory.toml:2:16: bad host pattern \"web[5-1]\" in [groups.web]: range `5-1` is \
         backwards (start is greater than end)"
    );
    assert_eq!(
        err("[groups.web]\nhosts = [\"web[1-\"]\n"),
        "inventory.toml:2:10: bad host pattern \"web[1-\" in [groups.web]: `[` is never closed"
    );
    assert_eq!(
        err("[groups.web]\nhosts = [\"web[1-99999999]\"]\n"),
        "inventory.toml:2:10: bad host pattern \"web[1-99999999]\" in [groups.web]: pattern \
         expands to more than 100000 names"
    );
    assert_eq!(
        err("[groups.web]\nhosts = [\"\"]\n"),
        "inventory.toml:2:10: bad host pattern \"\" in [groups.web]: empty pattern"
    );
}

#[test]
fn total_expansion_is_capped() {
    let patterns: Vec<String> = (0..11).map(|i| format!("\"g{i}-[1-100000]\"")).collect();
    let text = format!("[groups.big]\nhosts = [{}]\n", patterns.join(", "));
    let e = err(&text);
    assert!(
        e.ends_with(": the inventory expands to more than 1000000 host names"),
        "{e}"
    );
}

#[test]
fn bad_durations() {
    assert_eq!(
        err("[defaults]\nconnect_timeout = \"10 seconds\"\n"),
        "inventory.toml:2:19: bad duration \"10 seconds\" for `connect_timeout`: expected a \
         number followed by ms, s, m, h or d (e.g. \"10s\")"
    );
    assert_eq!(
        err("[defaults]\ncommand_timeout = \"30\"\n"),
        "inventory.toml:2:19: bad duration \"30\" for `command_timeout`: a bare number has no \
         unit; write \"30s\" for 30 seconds (units: ms, s, m, h, d)"
    );
    assert_eq!(
        err("[defaults]\nconnect_timeout = 10\n"),
        "inventory.toml:2:19: bad duration 10 for `connect_timeout`: a bare number has no unit; \
         write \"10s\" for 10 seconds (units: ms, s, m, h, d)"
    );
    assert_eq!(
        err("[defaults]\nconnect_timeout = \"0s\"\n"),
        "inventory.toml:2:19: bad value \"0s\" for `connect_timeout`: must be greater than zero"
    );
    assert_eq!(
        err("[defaults]\nconnect_timeout = 1.5\n"),
        "inventory.toml:2:19: `connect_timeout` must be a duration string such as \"10s\", found float"
    );
}

#[test]
fn wrong_types() {
    assert_eq!(
        err("[defaults]\nport = \"22\"\n"),
        "inventory.toml:2:8: `port` must be an integer, found string"
    );
    assert_eq!(
        err("[defaults]\nidentity_files = \"~/.ssh/id\"\n"),
        "inventory.toml:2:18: `identity_files` must be an array of strings, found string"
    );
    assert_eq!(
        err("[defaults]\nmodulepath = [\"a\", 1]\n"),
        "inventory.toml:2:20: each entry of `modulepath` must be a string, found integer"
    );
    assert_eq!(
        err("[groups.g]\nhosts = \"a\"\n"),
        "inventory.toml:2:9: `hosts` must be an array of host names, found string"
    );
    assert_eq!(
        err("[groups.g]\nhosts = [[\"a\"]]\n"),
        "inventory.toml:2:10: each entry of `hosts` must be a string, found array"
    );
    assert_eq!(
        err("hosts = [\"a\"]\n"),
        "inventory.toml:1:9: `hosts` must be a table of [hosts.NAME] tables, found array"
    );
    assert_eq!(
        err("[[groups]]\nname = \"x\"\n"),
        "inventory.toml:1:1: `groups` must be a table of [groups.NAME] tables, found array"
    );
    assert_eq!(
        err("[groups]\nweb = 1\n"),
        "inventory.toml:2:7: `groups.web` must be a table, found integer"
    );
    assert_eq!(
        err("defaults = true\n"),
        "inventory.toml:1:12: `defaults` must be a table, found boolean"
    );
    assert_eq!(
        err("[defaults]\nuser = 1979-05-27\n"),
        "inventory.toml:2:8: `user` must be a string, found datetime"
    );
    assert_eq!(
        err("[hosts.a]\naddress = 7\n"),
        "inventory.toml:2:11: `address` must be a string, found integer"
    );
}

#[test]
fn port_range() {
    for (port, shown) in [
        ("0", "0"),
        ("65536", "65536"),
        ("-1", "-1"),
        ("99999999999999999999999", "99999999999999999999999"),
    ] {
        assert_eq!(
            err(&format!("[defaults]\nport = {port}\n")),
            format!(
                "inventory.toml:2:8: bad value {shown} for `port`: must be between 1 and 65535"
            )
        );
    }
    assert_eq!(
        ok("[defaults]\nport = 65535\n[hosts.a]\n").hosts[0]
            .settings
            .port,
        65535
    );
    assert_eq!(
        ok("[defaults]\nport = 0x16\n[hosts.a]\n").hosts[0]
            .settings
            .port,
        22
    );
    assert_eq!(
        ok("[defaults]\nport = 1\n[hosts.a]\n").hosts[0]
            .settings
            .port,
        1
    );
}

#[test]
fn keepalive_and_retry_defaults() {
    let s = &ok("[hosts.a]\n").hosts[0].settings;
    assert_eq!(
        (s.keepalive_interval, s.keepalive_count, s.connect_retries),
        (Duration::from_secs(15), 3, 2)
    );
}

#[test]
fn keepalive_and_retry_values() {
    let s = &ok(
        "[defaults]\nkeepalive_interval = \"1m30s\"\nkeepalive_count = 100\nconnect_retries = 10\n\
         [hosts.a]\n",
    )
    .hosts[0]
        .settings;
    assert_eq!(
        (s.keepalive_interval, s.keepalive_count, s.connect_retries),
        (Duration::from_secs(90), 100, 10)
    );
    let s = &ok(
        "[defaults]\nkeepalive_interval = \"250ms\"\nkeepalive_count = 1\nconnect_retries = 0\n\
         [hosts.a]\n",
    )
    .hosts[0]
        .settings;
    assert_eq!(
        (s.keepalive_interval, s.keepalive_count, s.connect_retries),
        (Duration::from_millis(250), 1, 0)
    );
    // Other integer spellings TOML allows.
    let s = &ok("[defaults]\nkeepalive_count = 0x0a\nconnect_retries = +5\n[hosts.a]\n").hosts[0]
        .settings;
    assert_eq!((s.keepalive_count, s.connect_retries), (10, 5));
}

#[test]
fn keepalive_count_range() {
    for shown in ["0", "101", "-1", "4294967296", "99999999999999999999999"] {
        assert_eq!(
            err(&format!("[defaults]\nkeepalive_count = {shown}\n")),
            format!(
                "inventory.toml:2:19: bad value {shown} for `keepalive_count`: must be between \
                 1 and 100"
            )
        );
    }
    assert_eq!(
        err("[defaults]\nkeepalive_count = \"3\"\n"),
        "inventory.toml:2:19: `keepalive_count` must be an integer, found string"
    );
    assert_eq!(
        err("[groups.g]\nhosts = [\"a\"]\nkeepalive_count = 2.5\n"),
        "inventory.toml:3:19: `keepalive_count` must be an integer, found float"
    );
}

#[test]
fn connect_retries_range() {
    for shown in ["11", "-1", "4294967296"] {
        assert_eq!(
            err(&format!("[hosts.a]\nconnect_retries = {shown}\n")),
            format!(
                "inventory.toml:2:19: bad value {shown} for `connect_retries`: must be between \
                 0 and 10"
            )
        );
    }
    assert_eq!(
        err("[defaults]\nconnect_retries = \"2\"\n"),
        "inventory.toml:2:19: `connect_retries` must be an integer, found string"
    );
    assert_eq!(
        err("[defaults]\nconnect_retries = true\n"),
        "inventory.toml:2:19: `connect_retries` must be an integer, found boolean"
    );
}

#[test]
fn keepalive_interval_is_a_duration() {
    assert_eq!(
        err("[defaults]\nkeepalive_interval = \"0s\"\n"),
        "inventory.toml:2:22: bad value \"0s\" for `keepalive_interval`: must be greater than zero"
    );
    assert_eq!(
        err("[defaults]\nkeepalive_interval = 15\n"),
        "inventory.toml:2:22: bad duration 15 for `keepalive_interval`: a bare number has no \
         unit; write \"15s\" for 15 seconds (units: ms, s, m, h, d)"
    );
    assert_eq!(
        err("[defaults]\nkeepalive_interval = \"15 s\"\n"),
        "inventory.toml:2:22: bad duration \"15 s\" for `keepalive_interval`: expected a number \
         followed by ms, s, m, h or d (e.g. \"10s\")"
    );
    assert_eq!(
        err("[defaults]\nkeepalive_interval = [\"15s\"]\n"),
        "inventory.toml:2:22: `keepalive_interval` must be a duration string such as \"10s\", \
         found array"
    );
}

#[test]
fn keepalive_and_retry_precedence() {
    let inv = ok(r#"
[defaults]
keepalive_interval = "30s"
keepalive_count = 5
connect_retries = 4

[groups.g]
hosts = ["a", "b", "c"]
keepalive_count = 6
connect_retries = 0

[hosts.a]
keepalive_interval = "1s"
connect_retries = 9

[hosts.d]
"#);
    let got: Vec<(&str, Duration, u32, u32)> = inv
        .hosts
        .iter()
        .map(|h| {
            let s = &h.settings;
            (
                h.name.as_str(),
                s.keepalive_interval,
                s.keepalive_count,
                s.connect_retries,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("a", Duration::from_secs(1), 6, 9),
            ("b", Duration::from_secs(30), 6, 0),
            ("c", Duration::from_secs(30), 6, 0),
            ("d", Duration::from_secs(30), 5, 4),
        ]
    );
}

#[test]
fn keepalive_and_retry_group_conflicts() {
    assert_eq!(
        err("[groups.a]\nhosts = [\"h\"]\nkeepalive_count = 3\n\
             [groups.b]\nhosts = [\"h\"]\nkeepalive_count = 4\n"),
        "inventory.toml:6:1: host \"h\" is in groups \"a\" and \"b\", which set `keepalive_count` \
         differently (3 and 4); set `keepalive_count` in [hosts.h] to choose"
    );
    assert_eq!(
        err(
            "[groups.a]\nhosts = [\"h\"]\nkeepalive_interval = \"60s\"\n\
             [groups.b]\nhosts = [\"h\"]\nkeepalive_interval = \"2m\"\n"
        ),
        "inventory.toml:6:1: host \"h\" is in groups \"a\" and \"b\", which set \
         `keepalive_interval` differently (\"1m\" and \"2m\"); set `keepalive_interval` in \
         [hosts.h] to choose"
    );
    // Equal values agree; the host table settles a disagreement.
    let inv = ok(
        "[groups.a]\nhosts = [\"h\"]\nconnect_retries = 1\nkeepalive_count = 3\n\
                  [groups.b]\nhosts = [\"h\"]\nconnect_retries = 1\nkeepalive_count = 4\n\
                  [hosts.h]\nkeepalive_count = 8\n",
    );
    let s = &inv.hosts[0].settings;
    assert_eq!((s.connect_retries, s.keepalive_count), (1, 8));
}

#[test]
fn string_value_checks() {
    assert_eq!(
        err("[defaults]\nrepo_dir = \"\"\n"),
        "inventory.toml:2:12: bad value \"\" for `repo_dir`: must not be empty"
    );
    assert_eq!(
        err("[defaults]\nbranch = \"--upload-pack=evil\"\n"),
        "inventory.toml:2:10: bad value \"--upload-pack=evil\" for `branch`: must not start with `-`"
    );
    assert_eq!(
        err("[defaults]\nbranch = \"a\\tb\"\n"),
        "inventory.toml:2:10: bad value \"a\\tb\" for `branch`: must not contain control characters"
    );
    assert_eq!(
        err("[defaults]\npuppet_args = [\"ok\", \"a\\u0000b\"]\n"),
        "inventory.toml:2:22: bad value \"a\\0b\" for `puppet_args`: must not contain NUL characters"
    );
    assert_eq!(
        err("[defaults]\nmodulepath = [\"a:b\"]\n"),
        "inventory.toml:2:15: bad value \"a:b\" for `modulepath`: entries must not contain `:`; \
         list each directory separately"
    );
    assert_eq!(
        err("[defaults]\nrepo_dir = \"/srv/a\\nb\"\n"),
        "inventory.toml:2:12: bad value \"/srv/a\\nb\" for `repo_dir`: must not contain control characters"
    );
    assert_eq!(
        err("[defaults]\nrepo_url = \"--upload-pack=evil\"\n"),
        "inventory.toml:2:12: bad value \"--upload-pack=evil\" for `repo_url`: must not start with `-`"
    );
    assert_eq!(
        err("[defaults]\ncertname = \"-x\"\n"),
        "inventory.toml:2:12: bad value \"-x\" for `certname`: must not start with `-`"
    );
    assert_eq!(
        err("[hosts.a]\naddress = \"\"\n"),
        "inventory.toml:2:11: bad value \"\" for `address`: must not be empty"
    );
    assert_eq!(
        err("[defaults]\nuser = \"\"\n"),
        "inventory.toml:2:8: bad value \"\" for `user`: must not be empty"
    );
}

#[test]
fn identity_agent_and_identities_only() {
    let text = r#"
[defaults]
identities_only = true
[groups.g]
hosts = ["b", "c"]
identity_agent = "~/agent.sock"
[hosts.a]
[hosts.b]
identity_agent = "none"
identities_only = false
[hosts.c]
"#;
    let inv = parse_at(text, "/etc/capo/inventory.toml").unwrap_or_else(|e| panic!("{e}"));
    let agents: Vec<_> = inv
        .hosts
        .iter()
        .map(|h| {
            (
                h.name.as_str(),
                h.settings.identity_agent.clone(),
                h.settings.identities_only,
            )
        })
        .collect();
    assert_eq!(
        agents,
        [
            ("b", IdentityAgent::None, false),
            ("c", IdentityAgent::Path("/home/op/agent.sock".into()), true),
            ("a", IdentityAgent::Env, true),
        ]
    );
    let env = std::ffi::OsStr::new("/run/agent");
    assert_eq!(
        IdentityAgent::Env.socket(Some(env)),
        Some("/run/agent".into())
    );
    assert_eq!(IdentityAgent::Env.socket(Some("".as_ref())), None);
    assert_eq!(IdentityAgent::Env.socket(None), None);
    assert_eq!(IdentityAgent::None.socket(Some(env)), None);
    assert_eq!(
        err("[defaults]\nidentities_only = \"yes\"\n"),
        "inventory.toml:2:19: `identities_only` must be true or false, found string"
    );
    assert_eq!(
        err("[defaults]\nidentity_agent = \"\"\n"),
        "inventory.toml:2:18: bad value \"\" for `identity_agent`: must not be empty"
    );
}

#[test]
fn local_paths_resolve_against_the_inventory_dir_and_home() {
    let text = r#"
[defaults]
identity_files = ["keys/id", "~", "~/.ssh/k", "/abs/k", "../up/k"]
known_hosts = "kh"
[hosts.a]
"#;
    let s = &parse_at(text, "/etc/capo/inventory.toml")
        .unwrap_or_else(|e| panic!("{e}"))
        .hosts[0]
        .settings;
    assert_eq!(
        s.identity_files,
        [
            PathBuf::from("/etc/capo/keys/id"),
            PathBuf::from("/home/op"),
            PathBuf::from("/home/op/.ssh/k"),
            PathBuf::from("/abs/k"),
            PathBuf::from("/etc/capo/../up/k"),
        ]
    );
    assert_eq!(s.known_hosts, PathBuf::from("/etc/capo/kh"));

    // A bare file name stays relative to the working directory, which is
    // where the inventory is.
    let s = &ok(text).hosts[0].settings;
    assert_eq!(s.identity_files[0], PathBuf::from("keys/id"));
    let s = &parse_at(text, "conf/inventory.toml")
        .unwrap_or_else(|e| panic!("{e}"))
        .hosts[0]
        .settings;
    assert_eq!(s.known_hosts, PathBuf::from("conf/kh"));

    // Remote paths are left alone.
    let s = &ok("[defaults]\nrepo_dir = \"code\"\nmanifest = \"~/site.pp\"\n[hosts.a]\n").hosts[0]
        .settings;
    assert_eq!(
        (s.repo_dir.as_str(), s.manifest.as_deref().unwrap_or("")),
        ("code", "~/site.pp")
    );
}

#[test]
fn tilde_user_and_missing_home() {
    assert_eq!(
        err("[defaults]\nknown_hosts = \"~bob/kh\"\n"),
        "inventory.toml:2:15: bad value \"~bob/kh\" for `known_hosts`: only `~` and `~/` are \
         expanded, not `~user`"
    );
    let no_home = |text: &str| match parse(text, Path::new("inventory.toml"), None) {
        Ok(_) => panic!("parsed without $HOME"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        no_home("[defaults]\nknown_hosts = \"~/kh\"\n[hosts.a]\n"),
        "inventory.toml:2:15: cannot expand `~` in `known_hosts`: $HOME is not set"
    );
    assert_eq!(
        no_home("[defaults]\nknown_hosts = \"/kh\"\n[hosts.a]\n"),
        "inventory.toml: cannot expand `~` in the built-in default for `identity_files`: $HOME \
         is not set; set it in [defaults]"
    );
    let inv = parse(
        "[defaults]\nknown_hosts = \"/kh\"\nidentity_files = []\n[hosts.a]\n",
        Path::new("inventory.toml"),
        None,
    );
    assert!(inv.is_ok());
}

#[test]
fn host_order_is_first_appearance_in_the_file() {
    let inv = ok(r#"
[hosts.z]
[groups.web]
hosts = ["web[01-03]", "lb", "web02"]
[hosts.a]
[groups.db]
hosts = ["db1", "web03", "a", "db0"]
[hosts.lb]
port = 2222
"#);
    assert_eq!(
        names(&inv),
        ["z", "web01", "web02", "web03", "lb", "a", "db1", "db0"]
    );
    let groups: Vec<(&str, Vec<&str>)> = inv
        .groups
        .iter()
        .map(|g| {
            (
                g.name.as_str(),
                g.hosts.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("web", vec!["web01", "web02", "web03", "lb"]),
            ("db", vec!["db1", "web03", "a", "db0"]),
        ]
    );
    let web03 = inv.host("web03").map(|h| h.groups.clone());
    assert_eq!(web03, Some(vec!["web".to_owned(), "db".to_owned()]));
    assert_eq!(inv.host("lb").map(|h| h.settings.port), Some(2222));
    assert_eq!(inv.group("db").map(|g| g.hosts.len()), Some(4));
}

#[test]
fn groups_are_in_file_order_not_alphabetical() {
    let inv = ok("[groups.zeta]\nhosts = [\"b\"]\n[groups.alpha]\nhosts = [\"a\"]\n");
    let groups: Vec<&str> = inv.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(groups, ["zeta", "alpha"]);
    assert_eq!(names(&inv), ["b", "a"]);
}

#[test]
fn address_defaults_to_the_name() {
    let inv = ok("[groups.g]\nhosts = [\"a\", \"b\"]\n[hosts.b]\naddress = \"10.0.0.2\"\n");
    let addrs: Vec<&str> = inv.hosts.iter().map(|h| h.address.as_str()).collect();
    assert_eq!(addrs, ["a", "10.0.0.2"]);
    let inv = ok("[hosts.v6]\naddress = \"2001:db8::1\"\n");
    assert_eq!(inv.hosts[0].address, "2001:db8::1");
}

#[test]
fn no_hosts_is_an_error() {
    assert_eq!(
        err(""),
        "inventory.toml: no hosts defined; list some in a group's `hosts` or add a [hosts.NAME] table"
    );
    assert!(err("[defaults]\nuser = \"x\"\n[groups.g]\nhosts = []\n")
        .starts_with("inventory.toml: no hosts defined"));
    let e = parse_at("", "inventory.toml").err();
    assert!(matches!(
        e.as_ref().map(InventoryError::kind),
        Some(ErrorKind::NoHosts)
    ));
}

#[test]
fn bad_names() {
    assert_eq!(
        err("[hosts.\"web[1-2]\"]\n"),
        "inventory.toml:1:8: bad host name \"web[1-2]\": must not contain `[` or `]`; ranges are \
         only expanded in a group's `hosts` list"
    );
    assert_eq!(
        err("[groups.\"a,b\"]\nhosts = [\"x\"]\n"),
        "inventory.toml:1:9: bad group name \"a,b\": must not contain `,`, which separates \
         --limit terms"
    );
    assert_eq!(
        err("[groups.g]\nhosts = [\"!x\"]\n"),
        "inventory.toml:2:10: bad host name \"!x\": must not start with `!`, which excludes in --limit"
    );
    assert_eq!(
        err("[groups.g]\nhosts = [\"web*\"]\n"),
        "inventory.toml:2:10: bad host name \"web*\": must not contain `*` or `?`, which are \
         --limit wildcards"
    );
    assert!(err("[hosts.\"a b\"]\n").ends_with("must not contain whitespace or control characters"));
    assert!(err("[hosts.\"\"]\n").ends_with("bad host name \"\": must not be empty"));
}

#[test]
fn toml_syntax_errors_have_positions() {
    assert_eq!(
        err("[hosts.a]\nport = \n"),
        "inventory.toml:2:8: string values must be quoted, expected literal string"
    );
    assert_eq!(
        err("[hosts.a]\n[hosts.a]\n"),
        "inventory.toml:2:8: duplicate key"
    );
}

#[test]
fn error_accessors() {
    let e = parse_at("[hosts.a]\nport = \"x\"\n", "dir/inv.toml").err();
    let e = e.unwrap_or_else(|| panic!("expected an error"));
    assert_eq!(e.path(), Path::new("dir/inv.toml"));
    assert_eq!((e.line(), e.column()), (Some(2), Some(8)));
    assert!(matches!(e.kind(), ErrorKind::WrongType { .. }));
    assert_eq!(
        e.to_string(),
        "dir/inv.toml:2:8: `port` must be an integer, found string"
    );
}

#[test]
fn example_inventory_parses_and_documents_the_builtins() {
    let text = include_str!("../../../inventory.example.toml");
    let inv = parse_at(text, "inventory.example.toml").unwrap_or_else(|e| panic!("{e}"));
    assert!(!inv.hosts.is_empty());
    // The example's [defaults] spells out every built-in value, so a host
    // the example does not customise must equal the built-ins.
    let plain = inv
        .hosts
        .iter()
        .find(|h| h.settings == builtin())
        .map(|h| h.name.as_str());
    assert!(
        plain.is_some(),
        "no host in the example has exactly the built-in settings"
    );
    // Every settings key appears in the example, documented.
    for key in crate::settings::SETTING_KEYS
        .iter()
        .chain(&["address", "hosts", "ssh_config"])
    {
        assert!(
            text.lines().any(|l| l
                .trim_start()
                .trim_start_matches("# ")
                .starts_with(&format!("{key} ="))),
            "`{key}` is not shown in inventory.example.toml"
        );
    }
}

/// TOML-ish lines built from inventory vocabulary, so that generated inputs
/// get past the TOML parser and exercise the inventory rules.
fn inventory_like() -> impl Strategy<Value = String> {
    let header = prop::sample::select(vec![
        "[defaults]",
        "[groups.web]",
        "[groups.db]",
        "[hosts.a]",
        "[hosts.\"b.example.com\"]",
        "[groups]",
        "[hosts]",
        "[[groups]]",
    ])
    .prop_map(str::to_owned);
    let key = prop::sample::select(vec![
        "hosts",
        "address",
        "user",
        "port",
        "identity_files",
        "known_hosts",
        "host_key_check",
        "connect_timeout",
        "command_timeout",
        "keepalive_interval",
        "keepalive_count",
        "connect_retries",
        "repo_dir",
        "remote",
        "branch",
        "manifest",
        "modulepath",
        "puppet",
        "puppet_args",
        "certname",
        "puppetfile",
        "web",
        "bogus",
    ]);
    let value = prop_oneof![
        "[a-z0-9\\[\\],~/. -]{0,12}".prop_map(|s| format!("{s:?}")),
        "[a-z0-9\\[\\],-]{0,12}".prop_map(|s| format!("[{s:?}, \"x\"]")),
        any::<i64>().prop_map(|n| n.to_string()),
        "[0-9]{1,3}(ms|s|m|h|d|x)?".prop_map(|s| format!("{s:?}")),
        Just("true".to_owned()),
        Just("{}".to_owned()),
        Just("[]".to_owned()),
    ];
    let line = prop_oneof![header, (key, value).prop_map(|(k, v)| format!("{k} = {v}"))];
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = parse_at(&text, "inventory.toml");
    }

    #[test]
    fn parse_never_panics_on_inventory_like_text(text in inventory_like()) {
        if let Ok(inv) = parse_at(&text, "inventory.toml") {
            prop_assert!(!inv.hosts.is_empty());
            let _ = inv.select(Some("web,!a,b*"));
        }
    }

    #[test]
    fn select_never_panics(limit in "[a-z0-9!*?\\[\\],-]{0,16}") {
        let inv = ok("[groups.web]\nhosts = [\"web[1-3]\"]\n[hosts.a]\n");
        let _ = inv.select(Some(&limit));
    }
}

#[test]
fn environment_must_be_a_puppet_environment_name() {
    assert_eq!(
        err("[defaults]\nenvironment = \"Prod-1\"\n"),
        "inventory.toml:2:15: bad value \"Prod-1\" for `environment`: must be a Puppet environment name: lowercase letters, digits and `_`"
    );
    assert!(err("[defaults]\nenvironment = \"\"\n").contains("for `environment`"));
    let s = &ok("[hosts.a]\n").hosts[0].settings;
    assert_eq!(
        (s.environment.as_str(), &s.manifest, &s.modulepath),
        ("production", &None, &None)
    );
}

#[test]
fn puppetfile_names_the_module_installer_and_defaults_to_r10k() {
    assert_eq!(
        err("[defaults]\npuppetfile = \"librarian\"\n"),
        "inventory.toml:2:14: bad value \"librarian\" for `puppetfile`: expected one of: r10k, g10k, ignore"
    );
    assert_eq!(
        ok("[hosts.a]\n").hosts[0].settings.puppetfile,
        Puppetfile::R10k
    );
    let inv =
        ok("[defaults]\npuppetfile = \"ignore\"\n[hosts.a]\n[hosts.b]\npuppetfile = \"g10k\"\n");
    let got: Vec<Puppetfile> = inv.hosts.iter().map(|h| h.settings.puppetfile).collect();
    assert_eq!(got, [Puppetfile::Ignore, Puppetfile::G10k]);
}
