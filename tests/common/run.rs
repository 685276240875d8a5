//! Running the capo binary against a fleet and reading its JSON report.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Fleet;

/// What one capo run left behind.
pub struct Run {
    /// Exit status (-1 if killed by a signal).
    pub code: i32,
    /// The JSON report (`--report`).
    pub report: Value,
    /// Everything capo printed on stdout.
    pub stdout: String,
    /// Everything capo printed on stderr.
    pub stderr: String,
}

impl Run {
    /// The report entry of host `name`.
    pub fn host(&self, name: &str) -> &Value {
        self.report["hosts"]
            .as_array()
            .and_then(|hosts| hosts.iter().find(|h| h["name"] == name))
            .unwrap_or_else(|| panic!("{name} missing from report:\n{}", self.dump()))
    }

    /// `(name, status)` of every host, in report order.
    pub fn statuses(&self) -> Vec<(String, String)> {
        statuses_of(&self.report)
    }

    /// `error.kind` and `error.message` of host `name` (empty strings when there is no error).
    pub fn error(&self, name: &str) -> (String, String) {
        let e = &self.host(name)["error"];
        (
            e["kind"].as_str().unwrap_or("").to_string(),
            e["message"].as_str().unwrap_or("").to_string(),
        )
    }

    /// The run's output, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// A host's log directory, resolved against the fleet directory.
    pub fn log_dir(&self, fleet: &Fleet, name: &str) -> PathBuf {
        let dir = PathBuf::from(self.host(name)["log_dir"].as_str().expect("log_dir"));
        if dir.is_absolute() {
            dir
        } else {
            fleet.dir.join(dir)
        }
    }
}

/// `(name, status)` pairs for `names`, all with `status`.
pub fn all(names: &[&str], status: &str) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| (n.to_string(), status.to_string()))
        .collect()
}

static REPORTS: AtomicUsize = AtomicUsize::new(0);

fn report_path(fleet: &Fleet) -> PathBuf {
    fleet.dir.join(format!(
        "report-{}.json",
        REPORTS.fetch_add(1, Ordering::SeqCst)
    ))
}

/// A capo command line (`capo SUBCOMMAND --report FILE ARGS...`) with its report path;
/// SUBCOMMAND may be two words (`pull install`).
pub fn command(fleet: &Fleet, subcommand: &str, args: &[&str]) -> (Command, PathBuf) {
    let report = report_path(fleet);
    let mut cmd = fleet.capo();
    cmd.args(subcommand.split(' '))
        .arg("--report")
        .arg(&report)
        .args(args);
    (cmd, report)
}

/// Runs `capo SUBCOMMAND ARGS...` to the end and reads its report.
pub fn capo(fleet: &Fleet, subcommand: &str, args: &[&str]) -> Run {
    let (mut cmd, report) = command(fleet, subcommand, args);
    let out = cmd.output().expect("capo runs");
    finish(out, &report)
}

/// Runs `capo rollout ARGS...`.
pub fn rollout(fleet: &Fleet, args: &[&str]) -> Run {
    capo(fleet, "rollout", args)
}

/// Starts `capo rollout ARGS...` in the background, with piped output.
pub fn spawn_rollout(fleet: &Fleet, args: &[&str]) -> (Child, PathBuf) {
    let (mut cmd, report) = command(fleet, "rollout", args);
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("capo starts");
    (child, report)
}

/// Waits for a background capo and reads its report.
pub fn wait(child: Child, report: &Path) -> Run {
    let out = child.wait_with_output().expect("capo finishes");
    finish(out, report)
}

/// Sends `signal` (e.g. "INT") to a background capo.
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} failed");
}

fn finish(out: std::process::Output, report: &Path) -> Run {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code().unwrap_or(-1);
    let text = std::fs::read_to_string(report).unwrap_or_else(|e| {
        panic!(
            "no report at {} ({e})\nexit {code}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            report.display()
        )
    });
    let report: Value = serde_json::from_str(&text).expect("report is JSON");
    Run {
        code,
        report,
        stdout,
        stderr,
    }
}

/// The fleet's inventory with `[defaults]` lines replaced or added: `("command_timeout", "\"3s\"")`.
pub fn inventory_with(fleet: &Fleet, defaults: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(&fleet.inventory).expect("inventory");
    for (key, value) in defaults {
        let line = format!("{key} = {value}");
        let existing = text
            .lines()
            .find(|l| l.starts_with(&format!("{key} =")))
            .map(str::to_string);
        text = match existing {
            Some(old) => text.replacen(&old, &line, 1),
            None => text.replacen("[defaults]\n", &format!("[defaults]\n{line}\n"), 1),
        };
    }
    fleet.write_inventory(&text)
}

/// `(name, status)` pairs from a literal list.
pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

/// Waits up to `limit` for a background capo to exit, then reads its report; returns how long
/// it took. On timeout the capo process is killed and the test fails with its output.
pub fn wait_within(mut child: Child, report: &Path, limit: Duration) -> (Run, Duration) {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("poll capo").is_some() {
            let took = start.elapsed();
            return (wait(child, report), took);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("capo is reaped");
            panic!(
                "capo still running {limit:?} later; killed it\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Processes of a step (puppet, sleep) running on a host.
pub fn step_procs(fleet: &Fleet, name: &str) -> Vec<String> {
    fleet
        .procs(name)
        .lines()
        .skip(1)
        .filter(|l| l.contains("puppet") || l.contains("sleep"))
        .map(str::to_string)
        .collect()
}

/// Asserts that nothing of a step (puppet, sleep) is left on the host, after giving a kill
/// that is under way a few seconds to land.
pub fn assert_nothing_left(fleet: &Fleet, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !step_procs(fleet, name).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let left = step_procs(fleet, name);
    assert!(
        left.is_empty(),
        "still running on {name}: {left:#?}\nall processes:\n{}",
        fleet.procs(name)
    );
}

/// A path as a command-line argument (the fleet's paths are UTF-8).
pub fn path_arg(p: &Path) -> &str {
    p.to_str().expect("fleet paths are UTF-8")
}

/// `sh -c CMD` inside the host; panics unless it succeeds; returns its stdout as is.
pub fn on_host_raw(fleet: &Fleet, name: &str, cmd: &str) -> String {
    let out = fleet.host_exec(name, cmd);
    assert!(
        out.status.success(),
        "{name}: {cmd} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sh -c CMD` inside the host; panics unless it succeeds; returns its stdout, trimmed.
pub fn on_host(fleet: &Fleet, name: &str, cmd: &str) -> String {
    on_host_raw(fleet, name, cmd).trim().to_string()
}

/// The site's own `puppet apply` on every host of a roles/profiles fleet (environment
/// production is the checkout), which leaves Puppet's last-run files for the plan snapshots
/// (capo's own runs keep theirs in a per-run directory).
pub fn site_runs(fleet: &Fleet) {
    for name in fleet.host_names() {
        on_host(
            fleet,
            &name,
            "puppet apply --detailed-exitcodes /srv/puppet/manifests/site.pp",
        );
    }
}

/// `git ARGS` on the real machine, with no user or system configuration; its stdout, trimmed.
pub fn git(args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::null())
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The fleet's inventory with `puppet = "PROGRAM"` set on each listed host.
pub fn inventory_with_puppet(fleet: &Fleet, settings: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(&fleet.inventory).expect("inventory");
    for (host, program) in settings {
        let header = format!("[hosts.{host}]\n");
        assert!(text.contains(&header), "no {header:?} in the inventory");
        text = text.replacen(&header, &format!("{header}puppet = \"{program}\"\n"), 1);
    }
    fleet.write_inventory(&text)
}

/// `(name, status)` of every host of a JSON report, in report order.
pub fn statuses_of(report: &Value) -> Vec<(String, String)> {
    report["hosts"]
        .as_array()
        .expect("hosts array")
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or("?").to_string(),
                h["status"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// The first 7 characters of a commit id, as capo prints it.
pub fn short(sha: &str) -> &str {
    &sha[..7]
}

/// The names of the steps a host ran, from the JSON report.
pub fn step_names(run: &Run, name: &str) -> Vec<String> {
    run.host(name)["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no steps array\n{}", run.dump()))
        .iter()
        .map(|s| s["name"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The indented lines that follow the line `header` on stdout.
pub fn section(stdout: &str, header: &str) -> Vec<String> {
    let mut lines = stdout.lines();
    if !lines.any(|l| l == header) {
        return Vec::new();
    }
    lines
        .take_while(|l| l.starts_with("  "))
        .map(str::to_string)
        .collect()
}

/// `12.3s`, `0.0s`: what capo prints for a duration.
pub fn is_seconds(s: &str) -> bool {
    let Some(num) = s.strip_suffix('s') else {
        return false;
    };
    let Some((int, frac)) = num.split_once('.') else {
        return false;
    };
    !int.is_empty()
        && int.chars().all(|c| c.is_ascii_digit())
        && frac.len() == 1
        && frac.chars().all(|c| c.is_ascii_digit())
}

/// What looking at a host must not change: the checkout's HEAD and git directory (names,
/// sizes, modification times), the managed files, and each of `dirs` (e.g. capo's state
/// directory). Not /tmp: the fleet's hosts share the machine's, where other tests' runs come
/// and go.
pub fn host_snapshot(fleet: &Fleet, host: &str, dirs: &[&str]) -> String {
    let mut cmd = "cd /srv/puppet && git rev-parse HEAD && find .git -maxdepth 1 -printf '%p %s %T@\\n' | sort \
                   && ls -la --time-style=+%s /srv/managed"
        .to_string();
    for dir in dirs {
        cmd.push_str(&format!(" && find {dir} -printf '%p %s %T@\\n' | sort"));
    }
    on_host(fleet, host, &cmd)
}
