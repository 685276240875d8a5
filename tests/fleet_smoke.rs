//! Smoke test of the local test fleet harness itself (tests/fleet/fleet.sh + tests/common).
//! Does not run capo. Needs root.

use crate::common::Fleet;
use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn can_connect(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).is_ok()
}

const APPLY: &str =
    "cd /srv/puppet && puppet apply --detailed-exitcodes --modulepath /srv/puppet/modules manifests/site.pp";

#[test]
fn fleet_harness_smoke() {
    let fleet = Fleet::up(3);
    assert_eq!(fleet.hosts.len(), 3);
    assert!(fleet.inventory.is_file());
    let inv = std::fs::read_to_string(&fleet.inventory).unwrap();
    assert!(inv.contains("hosts = [\"host[01-03]\"]"), "{inv}");
    assert!(
        inv.contains(&format!("port = {}", fleet.host("host02").port)),
        "{inv}"
    );

    // every checkout is at origin main
    let head = fleet.origin_head();
    assert_eq!(head.len(), 40);
    for h in fleet.host_names() {
        assert_eq!(fleet.checkout_head(&h), head, "{h}");
    }

    // a host sees itself as itself
    let out = fleet.host_exec("host02", "hostname");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "host02");
    let out = fleet.host_exec("host02", "cat /etc/puppet/puppet.conf; ls /srv/puppet");
    assert!(stdout(&out).contains("certname = host02"), "{out:?}");
    assert!(stdout(&out).contains("manifests"), "{out:?}");

    // puppet apply inside a host: changes first, idempotent second
    let out = fleet.host_exec("host01", APPLY);
    assert_eq!(out.status.code(), Some(2), "first apply: {out:?}");
    let motd = std::fs::read_to_string(fleet.managed_path("host01", "motd")).unwrap();
    assert!(
        motd.contains("certname: host01") && motd.contains("hostname: host01"),
        "{motd}"
    );
    assert!(fleet.managed_path("host01", "www/index.html").is_file());
    let out = fleet.host_exec("host01", APPLY);
    assert_eq!(out.status.code(), Some(0), "second apply: {out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("rror"),
        "{out:?}"
    );

    // stop / start keep the port
    let port = fleet.host("host03").port;
    assert!(can_connect(port));
    fleet.stop("host03");
    assert!(
        !can_connect(port),
        "host03 still accepts connections after stop"
    );
    assert!(!fleet.host_exec("host03", "true").status.success());
    fleet.start("host03");
    assert!(can_connect(port));
    assert_eq!(stdout(&fleet.host_exec("host03", "hostname")), "host03");

    // rekey: known_hosts keeps the old key, the host now has another one
    let pubkey = |f: &Fleet| {
        let s =
            std::fs::read_to_string(f.host("host03").dir.join("ssh_host_ed25519_key.pub")).unwrap();
        s.split_whitespace().nth(1).unwrap().to_string()
    };
    let old = pubkey(&fleet);
    fleet.rekey("host03");
    let new = pubkey(&fleet);
    assert_ne!(old, new);
    let kh = std::fs::read_to_string(fleet.known_hosts()).unwrap();
    assert!(
        kh.contains(&format!("[127.0.0.1]:{port} ssh-ed25519 {old}")),
        "{kh}"
    );
    assert!(!kh.contains(&new));
    assert!(can_connect(port));

    // commit moves origin, not the hosts
    let sha = fleet.commit(
        "modules/capo_demo/files/message.txt",
        "v2 from the smoke test\n",
        "bump",
    );
    assert_eq!(fleet.origin_head(), sha);
    assert_ne!(sha, head);
    assert_eq!(fleet.checkout_head("host01"), head);
    // ... until a host fetches it
    let out = fleet.host_exec(
        "host01",
        "cd /srv/puppet && git pull -q --ff-only origin main && git rev-parse HEAD",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), sha);
    assert_eq!(fleet.checkout_head("host01"), sha);
    let out = fleet.host_exec("host01", APPLY);
    assert_eq!(out.status.code(), Some(2), "apply after commit: {out:?}");
    let motd = std::fs::read_to_string(fleet.managed_path("host01", "motd")).unwrap();
    assert!(motd.contains("v2 from the smoke test"), "{motd}");

    // contents and messages that look like options are passed through untouched
    let sha2 = fleet.commit("notes/odd.txt", "--purge", "--dir /");
    assert_eq!(fleet.origin_head(), sha2);
    let odd = std::fs::read_to_string(fleet.dir.join("work/notes/odd.txt")).unwrap();
    assert_eq!(odd, "--purge");

    // alternative inventories live next to the generated one
    let alt = fleet.write_inventory("# empty\n");
    assert_eq!(alt.parent(), fleet.inventory.parent());

    // the capo command is wired to this fleet (not run here)
    let cmd = fleet.capo();
    assert_eq!(cmd.get_current_dir(), Some(fleet.dir.as_path()));

    let ports: Vec<u16> = fleet.hosts.iter().map(|h| h.port).collect();
    drop(fleet);
    for p in ports {
        assert!(!can_connect(p), "port {p} still open after drop");
    }
}

#[test]
fn fleets_in_parallel_do_not_collide() {
    let fleets: Vec<Fleet> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3).map(|_| s.spawn(|| Fleet::up(2))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ports: Vec<u16> = fleets
        .iter()
        .flat_map(|f| f.hosts.iter().map(|h| h.port))
        .collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 6);
    for f in &fleets {
        for h in &f.hosts {
            assert!(can_connect(h.port));
            assert_eq!(stdout(&f.host_exec(&h.name, "hostname")), h.name);
        }
    }
}

/// One row of `Fleet::procs`: (stat, args).
fn proc_rows(procs: &str) -> Vec<(String, String)> {
    procs
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_pid, _pgid, stat) = (f.next()?, f.next()?, f.next()?);
            Some((stat.to_string(), f.collect::<Vec<_>>().join(" ")))
        })
        .collect()
}

/// The sshd rows (listener and per-connection processes; `sshd-session` on newer OpenSSH).
fn sshd_rows(procs: &str) -> Vec<(String, String)> {
    proc_rows(procs)
        .into_iter()
        .filter(|(_, args)| args.starts_with("sshd") || args.starts_with("/usr/sbin/sshd"))
        .collect()
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn freeze_and_thaw() {
    let fleet = Fleet::up(1);
    let port = fleet.host("host01").port;
    let addr = ([127, 0, 0, 1], port).into();

    // Listener frozen: the kernel still completes the TCP handshake, sshd says nothing.
    fleet.freeze("host01");
    assert!(fleet.fleet(&["status"]).contains("frozen"));
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .expect("TCP connect to a frozen host succeeds");
    conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 256];
    match conn.read(&mut buf) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("expected no SSH banner from a frozen sshd, got {other:?}"),
    }

    // Thawed: the same connection, left waiting in the backlog, gets its banner.
    fleet.thaw("host01");
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut banner = Vec::new();
    while !banner.ends_with(b"\n") {
        let n = conn.read(&mut buf).expect("banner after thaw");
        assert!(n > 0, "connection closed before the banner");
        banner.extend_from_slice(&buf[..n]);
    }
    let banner = String::from_utf8_lossy(&banner);
    assert!(banner.starts_with("SSH-2.0-"), "{banner:?}");
    drop(conn);

    // freeze_all: a running session's sshd stops too, the command it runs does not.
    let mut ssh = fleet
        .ssh("host01", "sleep 5; echo slept")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        fleet.wait_for_proc("host01", "^sleep 5$", Duration::from_secs(10)),
        "sleep never started: {}",
        fleet.procs("host01")
    );
    fleet.freeze_all("host01");
    let procs = fleet.procs("host01");
    let sshd = sshd_rows(&procs);
    assert!(
        sshd.len() >= 2,
        "listener and session sshd expected:\n{procs}"
    );
    assert!(
        sshd.iter().all(|(stat, _)| stat.starts_with('T')),
        "every sshd stopped:\n{procs}"
    );
    let rows = proc_rows(&procs);
    let sleep = rows.iter().find(|(_, args)| args == "sleep 5");
    assert!(
        matches!(sleep, Some((stat, _)) if !stat.starts_with('T')),
        "sleep runs on:\n{procs}"
    );
    // (and wait_for_proc gives up on a process that never shows)
    assert!(!fleet.wait_for_proc("host01", "^no such process$", Duration::from_millis(300)));

    // Thawed: the session carries on and ends normally.
    fleet.thaw("host01");
    let procs = fleet.procs("host01");
    assert!(
        sshd_rows(&procs)
            .iter()
            .all(|(stat, _)| !stat.starts_with('T')),
        "{procs}"
    );
    let status = wait_child(&mut ssh, Duration::from_secs(20)).expect("ssh ends after thaw");
    let out = ssh.wait_with_output().unwrap();
    assert!(status.success(), "{status:?} {out:?}");
    assert_eq!(stdout(&out), "slept");

    // down works on a frozen host: stopped processes are killed, the client sees it.
    let mut ssh = fleet
        .ssh("host01", "sleep 30")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(fleet.wait_for_proc("host01", "^sleep 30$", Duration::from_secs(10)));
    fleet.freeze_all("host01");
    fleet.fleet(&["down"]);
    assert!(!can_connect(port), "port {port} still open after down");
    let status = wait_child(&mut ssh, Duration::from_secs(10)).expect("ssh ends after down");
    assert!(!status.success());
    // thaw of a host that is down is a no-op, so Drop (thaw, then down) still works
    fleet.thaw("host01");
}

/// Each host has its own /etc/systemd/system, /etc/cron.d, /var/lib/capo and
/// /usr/local/lib/capo (bind-mounted from hosts/HOST/, as /etc/puppet is): a file written
/// there through one host is in that host's directory alone, not in another host's, and not
/// on the machine.
#[test]
fn capo_s_host_directories_are_per_host() {
    let fleet = Fleet::up(2);
    let file = format!("capo-fleet-smoke-{}", std::process::id());
    for (src, target) in [
        ("etc-systemd-system", "/etc/systemd/system"),
        ("etc-cron.d", "/etc/cron.d"),
        ("var-lib-capo", "/var/lib/capo"),
        ("usr-local-lib-capo", "/usr/local/lib/capo"),
    ] {
        let path = format!("{target}/{file}");
        let out = fleet.host_exec("host01", &format!("echo host01 > {path} && cat {path}"));
        assert!(out.status.success(), "{path}: {out:?}");
        assert_eq!(stdout(&out), "host01");
        let own = fleet.host("host01").dir.join(src).join(&file);
        assert_eq!(
            std::fs::read_to_string(&own).ok().as_deref(),
            Some("host01\n"),
            "{}",
            own.display()
        );
        let out = fleet.host_exec("host02", &format!("test -d {target} && ! test -e {path}"));
        assert!(out.status.success(), "host02 sees {path}: {out:?}");
        assert!(
            !fleet.host("host02").dir.join(src).join(&file).exists(),
            "{src}"
        );
        assert!(
            !std::path::Path::new(&path).exists(),
            "{path} is on the machine"
        );
    }
}
