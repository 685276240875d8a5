//! Local test fleet for integration tests: a thin wrapper around `tests/fleet/fleet.sh`.
//!
//! Every `Fleet` lives in its own temporary directory with its own loopback ports, so
//! tests may bring up fleets in parallel. Needs root (the hosts are sshd processes in
//! their own pid/mount/uts namespaces). See `tests/fleet/README.md`.
//!
//! Set `CAPO_FLEET_KEEP=1` to keep a fleet's directory after the test (its hosts are
//! still stopped); the path is printed on drop.

pub mod agent;
pub mod run;
pub mod sim;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Path of the fleet script.
pub fn fleet_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fleet/fleet.sh")
}

/// A running local fleet of `n` hosts (`host01`..`hostNN`).
pub struct Fleet {
    /// The fleet directory (DIR in fleet.sh terms); it is the root of `_tmp`.
    pub dir: PathBuf,
    /// `dir/inventory.toml`, as written by `fleet.sh up`.
    pub inventory: PathBuf,
    pub hosts: Vec<FleetHost>,
    _tmp: tempfile::TempDir,
}

#[derive(Debug, Clone)]
pub struct FleetHost {
    /// `host01`, `host02`, ...
    pub name: String,
    /// Loopback port of the host's sshd (address is always 127.0.0.1).
    pub port: u16,
    /// `dir/hosts/NAME`
    pub dir: PathBuf,
}

static INVENTORY_SEQ: AtomicUsize = AtomicUsize::new(0);

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what} failed ({}):\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Fleet {
    /// Bring up a fleet of `n` hosts. Panics with fleet.sh's output on failure.
    pub fn up(n: usize) -> Fleet {
        Fleet::up_with(n, &[])
    }

    /// Like [`Fleet::up`], each host also having the non-root user of `fleet.sh up --user
    /// NAME:SHELL` (home and own checkout under `/srv/home/NAME`).
    pub fn up_with_user(n: usize, spec: &str) -> Fleet {
        Fleet::up_with(n, &["--user", spec])
    }

    /// Like [`Fleet::up`], with the control repo of `fleet.sh up --repo NAME` (e.g.
    /// `rolesprofiles`).
    pub fn up_with_repo(n: usize, repo: &str) -> Fleet {
        Fleet::up_with(n, &["--repo", repo])
    }

    /// Like [`Fleet::up_with_user`], the user's sudo wanting `password` (`fleet.sh up --user
    /// SPEC --sudo password:-`, the password on its stdin, so that no command line or process
    /// environment shows it while other tests look for it there).
    pub fn up_with_sudo_password(n: usize, spec: &str, password: &str) -> Fleet {
        Fleet::up_with_stdin(n, &["--user", spec, "--sudo", "password:-"], Some(password))
    }

    /// Like [`Fleet::up`], with host certificates (`fleet.sh up --host-certs`): every host
    /// key signed by `dir/keys/host_ca`, presented by sshd, and `dir/keys/known_hosts_ca`
    /// trusting that CA alone.
    pub fn up_with_host_certs(n: usize) -> Fleet {
        Fleet::up_with(n, &["--host-certs"])
    }

    /// Like [`Fleet::up`], the hosts in a network namespace of their own that only the fleet's
    /// bastion reaches (`fleet.sh up --bastion`); the inventory goes through it (`jump`).
    pub fn up_with_bastion(n: usize) -> Fleet {
        Fleet::up_with(n, &["--bastion"])
    }

    /// `dir/hosts/bastion` (`up --bastion`).
    pub fn bastion_dir(&self) -> PathBuf {
        self.dir.join("hosts/bastion")
    }

    /// The bastion's address and port (`up --bastion`): its end of the veth pair.
    pub fn bastion(&self) -> (String, u16) {
        let read = |f: &str| {
            std::fs::read_to_string(self.bastion_dir().join(f))
                .unwrap_or_else(|e| panic!("read bastion {f}: {e}"))
                .trim()
                .to_string()
        };
        let port = read("port").parse().expect("bastion port");
        (read("addr"), port)
    }

    /// The bastion's sshd log (`up --bastion`).
    pub fn bastion_log(&self) -> String {
        std::fs::read_to_string(self.bastion_dir().join("sshd.log")).unwrap_or_default()
    }

    pub fn up_with(n: usize, extra: &[&str]) -> Fleet {
        Fleet::up_with_stdin(n, extra, None)
    }

    fn up_with_stdin(n: usize, extra: &[&str], stdin: Option<&str>) -> Fleet {
        assert!((1..=99).contains(&n), "Fleet::up: n must be 1..=99");
        let mut tmp = tempfile::Builder::new()
            .prefix("capo-fleet-")
            .tempdir()
            .expect("create fleet temp dir");
        if std::env::var_os("CAPO_FLEET_KEEP").is_some() {
            tmp.disable_cleanup(true);
        }
        let dir = tmp.path().to_path_buf();
        let mut child = Command::new("bash")
            .arg(fleet_sh())
            .arg("up")
            .arg(n.to_string())
            .arg("--dir")
            .arg(&dir)
            .args(extra)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tests/fleet/fleet.sh (is bash installed?)");
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            pipe.write_all(format!("{text}\n").as_bytes())
                .expect("write fleet.sh's stdin");
        }
        let out = child
            .wait_with_output()
            .expect("wait for tests/fleet/fleet.sh");
        if !out.status.success() {
            // make sure nothing is left running before the TempDir goes away
            let _ = Self::run_sh(&dir, &["down"]);
            panic!("{}", describe("fleet.sh up", &out));
        }
        let inventory = PathBuf::from(stdout_line(&out));
        assert_eq!(
            inventory,
            dir.join("inventory.toml"),
            "unexpected inventory path from fleet.sh up"
        );
        let hosts = (1..=n)
            .map(|i| {
                let name = format!("host{i:02}");
                let hdir = dir.join("hosts").join(&name);
                let port = std::fs::read_to_string(hdir.join("port"))
                    .unwrap_or_else(|e| panic!("read port of {name}: {e}"))
                    .trim()
                    .parse()
                    .unwrap_or_else(|e| panic!("bad port file of {name}: {e}"));
                FleetHost {
                    name,
                    port,
                    dir: hdir,
                }
            })
            .collect();
        Fleet {
            dir,
            inventory,
            hosts,
            _tmp: tmp,
        }
    }

    /// `fleet.sh SUBCOMMAND --dir DIR REST...` (the option right after the subcommand, so
    /// `REST` may hold anything after a `--`).
    fn run_sh(dir: &Path, args: &[&str]) -> Output {
        let (sub, rest) = args.split_first().expect("fleet.sh subcommand");
        Command::new("bash")
            .arg(fleet_sh())
            .arg(sub)
            .arg("--dir")
            .arg(dir)
            .args(rest)
            .stdin(Stdio::null())
            .output()
            .expect("run tests/fleet/fleet.sh")
    }

    /// Run `fleet.sh SUB --dir DIR ARGS...` (`args[0]` = SUB), panic unless it succeeds, return its stdout (trimmed).
    pub fn fleet(&self, args: &[&str]) -> String {
        let out = Self::run_sh(&self.dir, args);
        if !out.status.success() {
            panic!(
                "{}",
                describe(&format!("fleet.sh {}", args.join(" ")), &out)
            );
        }
        stdout_line(&out)
    }

    pub fn host(&self, name: &str) -> &FleetHost {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name} in this fleet"))
    }

    pub fn host_names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name.clone()).collect()
    }

    /// Kill the host's namespace (sshd and everything running in it). Same port on start.
    pub fn stop(&self, name: &str) {
        self.host(name);
        self.fleet(&["stop", name]);
    }

    /// Restart a stopped host (same port, same host key). No-op if it is running.
    pub fn start(&self, name: &str) {
        self.host(name);
        self.fleet(&["start", name]);
    }

    /// New host key and restart; `keys/known_hosts` keeps the old key.
    pub fn rekey(&self, name: &str) {
        self.host(name);
        self.fleet(&["rekey", name]);
    }

    /// Sign the host's key again with the fleet's host CA (`fleet.sh certify HOST ARGS...`,
    /// e.g. `["--principals", "a,b"]` or `["--validity", "-2d:-1d"]`) and restart it.
    pub fn certify(&self, name: &str, args: &[&str]) {
        self.host(name);
        let mut all = vec!["certify", name];
        all.extend_from_slice(args);
        self.fleet(&all);
    }

    /// SIGSTOP the host's listening sshd: TCP connects still succeed (the kernel fills the
    /// listen backlog) but no SSH banner comes. Established sessions keep working.
    pub fn freeze(&self, name: &str) {
        self.host(name);
        self.fleet(&["freeze", name]);
    }

    /// SIGSTOP every sshd process of the host, per-connection ones included, so
    /// established connections go silent mid-command too. The commands the sessions run
    /// (puppet, sleep, ...) keep running. Returns once all of them are stopped.
    pub fn freeze_all(&self, name: &str) {
        self.host(name);
        self.fleet(&["freeze", name, "--all"]);
    }

    /// SIGCONT every sshd process of the host (undoes `freeze`/`freeze_all`). A no-op on
    /// a host that is not running.
    pub fn thaw(&self, name: &str) {
        self.host(name);
        self.fleet(&["thaw", name]);
    }

    /// `ps -eo pid,pgid,stat,args` as seen inside the host's pid namespace (pid 1 is its
    /// sshd), header line included, the `ps` itself left out.
    pub fn procs(&self, name: &str) -> String {
        self.host(name);
        self.fleet(&["procs", name])
    }

    /// Polls `pgrep -f PATTERN` inside the host every 100 ms until a process matches
    /// (true) or `timeout` passes (false). PATTERN is an extended regex against full
    /// command lines; pgrep never matches itself.
    pub fn wait_for_proc(&self, name: &str, pattern: &str, timeout: Duration) -> bool {
        self.host(name);
        let deadline = Instant::now() + timeout;
        loop {
            // Straight to pgrep, not through `sh -c`: a shell's command line would
            // contain the pattern and match itself.
            let out = Self::run_sh(
                &self.dir,
                &["exec", name, "--", "pgrep", "-f", "--", pattern],
            );
            if out.status.success() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Write `content` to `path` (relative to the control repo) in `dir/work`, commit,
    /// push to origin main; returns the new commit sha (= new origin head).
    pub fn commit(&self, path: &str, content: &str, message: &str) -> String {
        let sha = self.fleet(&["commit", "--", path, content, message]);
        assert_eq!(sha.len(), 40, "fleet.sh commit printed {sha:?}");
        sha
    }

    /// Full sha of `main` in `dir/origin.git`.
    pub fn origin_head(&self) -> String {
        git(&[
            "--git-dir",
            path_str(&self.dir.join("origin.git")),
            "rev-parse",
            "refs/heads/main",
        ])
    }

    /// Full sha of HEAD of the host's checkout (`/srv/puppet` inside the host).
    pub fn checkout_head(&self, name: &str) -> String {
        git(&[
            "-C",
            path_str(&self.checkout_dir(name)),
            "rev-parse",
            "HEAD",
        ])
    }

    /// `dir/hosts/NAME/checkout` (mounted at `/srv/puppet` inside the host).
    pub fn checkout_dir(&self, name: &str) -> PathBuf {
        self.host(name).dir.join("checkout")
    }

    /// `dir/hosts/NAME/managed/REL` (`/srv/managed/REL` inside the host).
    pub fn managed_path(&self, name: &str, rel: &str) -> PathBuf {
        self.host(name).dir.join("managed").join(rel)
    }

    /// `dir/hosts/NAME/state` (`/srv/state` inside the host: Puppet's vardir etc.).
    pub fn state_dir(&self, name: &str) -> PathBuf {
        self.host(name).dir.join("state")
    }

    /// `dir/hosts/NAME/var-lib-capo` (`/var/lib/capo` inside the host: capo's own state there,
    /// the run record).
    pub fn capo_state_dir(&self, name: &str) -> PathBuf {
        self.host(name).dir.join("var-lib-capo")
    }

    /// `dir/hosts/NAME/sshd.log`.
    pub fn sshd_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.host(name).dir.join("sshd.log")).unwrap_or_default()
    }

    /// TCP connections the host's sshd has logged so far (a count, not the log: sshd may still
    /// be writing the last lines of an earlier session, e.g. the fleet's own readiness check).
    pub fn sshd_connections(&self, name: &str) -> usize {
        self.sshd_log(name).matches("Connection from ").count()
    }

    /// The client private key (`dir/keys/client_ed25519`).
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("keys/client_ed25519")
    }

    /// `dir/keys/known_hosts` (as written by `up`; rekey does not update it).
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("keys/known_hosts")
    }

    /// Run `sh -c CMD` inside the host's namespaces (as the host sees itself: hostname,
    /// /srv/puppet, /srv/managed, /etc/puppet). Does not panic on failure.
    pub fn host_exec(&self, name: &str, cmd: &str) -> Output {
        self.host(name);
        Command::new("bash")
            .arg(fleet_sh())
            .args(["exec", "--dir"])
            .arg(&self.dir)
            .args([name, "--", "sh", "-c", cmd])
            .stdin(Stdio::null())
            .output()
            .expect("run fleet.sh exec")
    }

    /// The OpenSSH client (`ssh`) set up to run `remote_cmd` as root on the host: fleet
    /// client key and known_hosts only, strict host key checking, no prompts, and no
    /// client-side keepalives, so it waits as long as a frozen host keeps it waiting.
    pub fn ssh(&self, name: &str, remote_cmd: &str) -> Command {
        let port = self.host(name).port;
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "/dev/null", "-i"])
            .arg(self.client_key())
            .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o"])
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts().display()
            ))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "ConnectTimeout=5",
                "-o",
                "LogLevel=ERROR",
                "-p",
            ])
            .arg(port.to_string())
            .arg("root@127.0.0.1")
            .arg(remote_cmd)
            .stdin(Stdio::null());
        cmd
    }

    /// Takes `host`'s capo lock by hand as `holder`, the way lock.sh takes it, and keeps it
    /// until the returned child's stdin is closed (drop it, then wait).
    pub fn hold_lock(&self, host: &str, holder: &str) -> std::process::Child {
        use std::io::BufRead;
        let mut child = self
            .ssh(
                host,
                &format!(
                    "cd /srv/puppet/.git && exec 9<>capo.lock 7<>capo.lock.info && flock -n 9 \
                     && echo {} >capo.lock && flock -u 7 && echo locked && exec cat >/dev/null",
                    tmux::sh_quote(holder)
                ),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("ssh");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line, "locked\n", "could not take {host}'s lock");
        child
    }

    /// `capo` binary with cwd = fleet dir, `CAPO_INVENTORY` = the fleet inventory, `NO_COLOR=1`,
    /// no `SSH_AUTH_SOCK` (an agent of whoever runs the tests would add its keys to every
    /// authentication; the agent tests set their own), and `HOME` = the fleet dir (the
    /// machine's own `~/.ssh/config` must not reach the tests; the ssh_config tests set theirs).
    pub fn capo(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_capo"));
        cmd.current_dir(&self.dir)
            .env("HOME", &self.dir)
            .env("CAPO_INVENTORY", &self.inventory)
            .env("NO_COLOR", "1")
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null());
        cmd
    }

    /// Write an alternative inventory into the fleet dir (so relative `keys/...` paths
    /// still resolve) and return its path. Each call writes a new file.
    pub fn write_inventory(&self, text: &str) -> PathBuf {
        let n = INVENTORY_SEQ.fetch_add(1, Ordering::SeqCst);
        let path = self.dir.join(format!("inventory-alt{n}.toml"));
        std::fs::write(&path, text).expect("write inventory");
        path
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // shown with the failing test's output
            eprintln!(
                "---- fleet {} (test failed); last sshd log lines:",
                self.dir.display()
            );
            for h in &self.hosts {
                let log = self.sshd_log(&h.name);
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(8)..];
                eprintln!("-- {} (port {}):\n{}", h.name, h.port, tail.join("\n"));
            }
            if self.bastion_dir().exists() {
                let log = self.bastion_log();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(8)..];
                eprintln!("-- bastion:\n{}", tail.join("\n"));
            }
        }
        // A test that failed while a host was frozen must not leave stopped processes
        // behind: thaw first (down kills stopped processes too, but this keeps that true
        // whatever down does), and keep going if it fails.
        for h in &self.hosts {
            let out = Self::run_sh(&self.dir, &["thaw", &h.name]);
            if !out.status.success() {
                eprintln!("{}", describe(&format!("fleet.sh thaw {}", h.name), &out));
            }
        }
        // A fleet with a network namespace of its own (`up --bastion`) takes it down too,
        // unless the fleet is kept: the namespace outlives its directory otherwise.
        let purge =
            self.dir.join("netns").exists() && std::env::var_os("CAPO_FLEET_KEEP").is_none();
        let args: &[&str] = if purge {
            &["down", "--purge"]
        } else {
            &["down"]
        };
        let out = Self::run_sh(&self.dir, args);
        if !out.status.success() {
            eprintln!("{}", describe("fleet.sh down", &out));
        }
        if std::env::var_os("CAPO_FLEET_KEEP").is_some() {
            eprintln!("CAPO_FLEET_KEEP: fleet dir kept at {}", self.dir.display());
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("fleet paths are UTF-8")
}

fn git(args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::null())
        .output()
        .expect("run git");
    if !out.status.success() {
        panic!("{}", describe(&format!("git {}", args.join(" ")), &out));
    }
    stdout_line(&out)
}
