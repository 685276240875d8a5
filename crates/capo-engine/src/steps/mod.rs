//! The remote side: which of capo's host-side scripts (crate `capo-scripts`) each step runs,
//! with which arguments, and how their output is read back.
//!
//! The scripts are POSIX `sh` files; every inventory value reaches them as a positional
//! argument, and `capo_scripts::Call::command_line` is the one place that quotes. Scripts
//! talk back through marker lines on stdout (`::capo:KEY=VALUE`), which are stripped from
//! the output shown to people.

use std::time::Duration;

use capo_inventory::{Puppetfile, Settings};
use capo_scripts::{Call, Script};

use crate::outcome::{last_line, ErrorKind, HostError, MissingPuppet, StepName};
use capo_scripts::join;

pub use capo_scripts::{strip_marks, Marks, LOCKED_EXIT, MARK};

mod bootstrap;
mod check;
mod revision;
pub use bootstrap::{bootstrap, classify_bootstrap_failure, missing_tools};
pub use check::{check, check_problem, install_command};
pub use revision::{collect, collect_call, plan, split_collected, sync_to_rev, Collected};

/// How long the host-side stop of a step may take (TERM, then KILL after 2 s), plus slack.
pub const KILL_AFTER: Duration = Duration::from_secs(5);

/// One step ready to run on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Which step.
    pub name: StepName,
    /// The command as a person would type it, for reports.
    pub display: String,
    /// The script and its arguments.
    pub call: Call,
}

impl Step {
    fn new(name: StepName, display: String, call: Call) -> Step {
        Step {
            name,
            display,
            call,
        }
    }

    /// The command line sent over the exec channel as the login user (with `become =
    /// "sudo"`, the runner sends `call` through sudo instead: `remote::Remote`). Built when
    /// asked, not with the step: the runner builds the line it sends itself, and a line
    /// carries the whole script (~15 KiB).
    pub fn script(&self) -> String {
        self.call.command_line()
    }
}

/// What a rollout's steps pass on so that they write the host's run record themselves (see
/// `record_run` in capo-scripts' `lib-record.sh`, and docs/run-record.md): the sync or modules
/// step when it fails, the apply step whatever its end. Pull mode's job passes the same
/// arguments to the same scripts. [`RunRecord::default`]: no record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunRecord {
    /// The host's `state_dir`; empty: no record.
    pub state_dir: String,
    /// The run's id.
    pub run_id: String,
    /// The run's holder line (run id, controller, pid, start), the record's `by`.
    pub by: String,
    /// When the run began on the host: the sync step's `started=` marker (host clock);
    /// empty until the sync said it.
    pub started: String,
    /// HEAD before the sync, for the steps after it.
    pub rev_before: String,
}

impl RunRecord {
    /// What the record `source` is for runs from capo on the controller.
    pub const PUSH: &'static str = "push";

    /// The record of a push run `run_id` whose holder line is `by`, into the host's
    /// `state_dir`.
    pub fn push(settings: &Settings, run_id: &str, by: &str) -> RunRecord {
        RunRecord {
            state_dir: settings.state_dir.clone(),
            run_id: run_id.to_string(),
            by: by.to_string(),
            ..RunRecord::default()
        }
    }

    /// STATE_DIR SOURCE RUN_ID BY: the sync scripts' record arguments.
    fn sync_args(&self) -> [&str; 4] {
        let source = if self.state_dir.is_empty() {
            ""
        } else {
            RunRecord::PUSH
        };
        [&self.state_dir, source, &self.run_id, &self.by]
    }

    /// STATE_DIR SOURCE RUN_ID BY STARTED REV_BEFORE: the modules and apply scripts'.
    fn step_args(&self) -> [&str; 6] {
        let [dir, source, run_id, by] = self.sync_args();
        [dir, source, run_id, by, &self.started, &self.rev_before]
    }

    /// Takes what the sync step said that the later steps' records need.
    pub fn after_sync(&mut self, marks: &Marks) {
        self.started = marks.get("started").unwrap_or_default().to_string();
        self.rev_before = marks.get("rev-before").unwrap_or_default().to_string();
    }
}

/// Why a step could not write the host's run record, when it says so (`record=failed`).
pub fn record_error(marks: &Marks) -> Option<String> {
    (marks.get("record") == Some("failed")).then(|| {
        marks
            .get("record-why")
            .unwrap_or("no reason given")
            .to_string()
    })
}

/// The lock holder (`capo-lock`): runs for the whole time capo works on a host and holds
/// `capo.lock` in the checkout's git directory; see `lock.sh` for its markers.
pub fn lock(settings: &Settings, holder: &str) -> String {
    lock_call(settings, holder).command_line()
}

/// [`lock`] as a call, for the runner to send as the host's commands go (maybe through sudo).
pub fn lock_call(settings: &Settings, holder: &str) -> Call {
    Call::plain(
        Script::Lock,
        [settings.repo_dir.as_str(), holder, &settings.state_dir],
    )
}

/// The maintenance switch (`capo-disable`): `Some((message, by))` disables the host, `None`
/// enables it again.
pub fn disable(settings: &Settings, disable: Option<(&str, &str)>, deadline: Duration) -> Step {
    let (name, call) = match disable {
        Some((message, by)) => (
            StepName::Disable,
            Call::step(
                Script::Disable,
                [settings.state_dir.as_str(), "disable", message, by],
                deadline,
            ),
        ),
        None => (
            StepName::Enable,
            Call::step(
                Script::Disable,
                [settings.state_dir.as_str(), "enable"],
                deadline,
            ),
        ),
    };
    Step::new(name, format!("capo {name}"), call)
}

/// The status step (`capo-status`): what `capo status` reads on the host, changing nothing
/// (unless `fetch`: then the remote branch is fetched first); see `status.sh`.
pub fn status(settings: &Settings, fetch: bool, deadline: Duration) -> Step {
    let call = Call::step(
        Script::Status,
        [
            settings.repo_dir.as_str(),
            &settings.remote,
            &settings.branch,
            &settings.state_dir,
            if fetch { "1" } else { "0" },
            if settings.lock { "1" } else { "0" },
        ],
        deadline,
    );
    Step::new(StepName::Status, "capo status".to_string(), call)
}

/// The pull job's command line for a host: `/bin/sh /usr/local/lib/capo/pull.sh` and the
/// host's settings, as its timer or cron runs it; with `only_if_changed`, the job applies only
/// when something changed, the last run failed, or it is older than that.
pub fn pull_job(settings: &Settings, only_if_changed: Option<Duration>) -> Vec<String> {
    let mut args: Vec<String> = only_if_changed
        .map(|d| format!("--only-if-changed={}", d.as_secs()))
        .into_iter()
        .collect();
    args.extend([
        settings.repo_dir.clone(),
        settings.remote.clone(),
        settings.branch.clone(),
        settings.state_dir.clone(),
        settings.puppetfile.as_str().to_string(),
        settings.puppet.clone(),
        settings.environment.clone(),
        settings.manifest.clone().unwrap_or_default(),
        settings
            .modulepath
            .as_ref()
            .map(|m| m.join(":"))
            .unwrap_or_default(),
        settings.certname.clone().unwrap_or_default(),
    ]);
    args.extend(settings.puppet_args.iter().cloned());
    capo_scripts::pull::pull_command(args)
}

/// Installs pull mode on a host (`capo-pull-admin install`): the job and the scripts it runs
/// into `/usr/local/lib/capo`, and its timer (or cron file: `scheduler` is `systemd`, `cron`
/// or `auto`) on `schedule`. `host` fixes the cron file's minute.
pub fn pull_install(
    settings: &Settings,
    host: &str,
    schedule: &capo_scripts::pull::Schedule,
    scheduler: &str,
    only_if_changed: Option<Duration>,
    deadline: Duration,
) -> Step {
    use capo_scripts::pull;
    let job = pull_job(settings, only_if_changed);
    // cron cannot say every interval; systemd can: an empty cron file text is never chosen
    // by a host with systemd, and fails one without it (the step says so).
    let cron = pull::cron(&job, schedule, host).unwrap_or_default();
    let mut args: Vec<String> = vec![
        "install".into(),
        pull::paths::LIB_DIR.into(),
        scheduler.into(),
        pull::service(&job, schedule),
        pull::timer(schedule),
        cron,
    ];
    for (name, text) in pull::INSTALLED {
        args.push(name.into());
        args.push(text.into());
    }
    let call = Call::step(Script::PullAdmin, args, deadline);
    Step::new(StepName::Pull, "capo pull install".to_string(), call)
}

/// Ends a host's pin (`capo-pull-admin unpin`): the pull job follows the branch again.
pub fn pull_unpin(settings: &Settings, deadline: Duration) -> Step {
    let call = Call::step(
        Script::PullAdmin,
        ["unpin", settings.state_dir.as_str()],
        deadline,
    );
    Step::new(StepName::Pull, "capo pull unpin".to_string(), call)
}

/// Removes pull mode from a host (`capo-pull-admin remove`).
pub fn pull_remove(deadline: Duration) -> Step {
    let call = Call::step(
        Script::PullAdmin,
        ["remove", capo_scripts::pull::paths::LIB_DIR],
        deadline,
    );
    Step::new(StepName::Pull, "capo pull remove".to_string(), call)
}

/// Who disabled the host, from the markers of `disabled` (lib-step.sh); None when it is not.
pub fn disabled(marks: &Marks) -> Option<capo_schema::DisabledReport> {
    let source = marks.get("disabled")?.parse().ok()?;
    Some(capo_schema::DisabledReport {
        source,
        message: marks.get("disabled-message").unwrap_or("").to_string(),
        by: marks.get("disabled-by").map(str::to_string),
        since: marks.get("disabled-since").map(str::to_string),
    })
}

/// The sync step (`capo-sync`): `git pull --ff-only REMOTE BRANCH` in `repo_dir`, recording
/// HEAD around it, and on failure what blocked it (local changes, diverged history); on
/// success, whether the Puppetfile's modules need installing (`modules=stale`, see
/// [`modules`]). `holder` is written into the step lock; empty (`lock = false`): no step lock.
///
/// With a `record` (not [`RunRecord::default`]), a sync that fails writes the run record.
pub fn sync(settings: &Settings, holder: &str, record: &RunRecord, deadline: Duration) -> Step {
    let display = join([
        "git",
        "pull",
        "--ff-only",
        &settings.remote,
        &settings.branch,
    ]);
    let mut args = vec![
        settings.repo_dir.as_str(),
        &settings.remote,
        &settings.branch,
        holder,
        settings.puppetfile.as_str(),
    ];
    if !record.state_dir.is_empty() {
        args.extend(record.sync_args());
    }
    let call = Call::step(Script::Sync, args, deadline);
    Step::new(StepName::Sync, display, call)
}

/// Whether a sync that succeeded said the checkout's Puppetfile modules must be installed
/// (a Puppetfile other than the one they were last installed from, or some of them gone).
pub fn modules_stale(marks: &Marks) -> bool {
    marks.get("modules") == Some("stale")
}

/// The modules step (`capo-modules`): the checkout's Puppetfile modules installed by the
/// `puppetfile` setting's installer, in `repo_dir`, and recorded for the next sync. With a
/// `record`, a modules step that fails writes the run record.
pub fn modules(settings: &Settings, holder: &str, record: &RunRecord, deadline: Duration) -> Step {
    let display = match settings.puppetfile {
        Puppetfile::G10k => "g10k -puppetfile".to_string(),
        _ => "r10k puppetfile install".to_string(),
    };
    let mut args = vec![
        settings.repo_dir.as_str(),
        settings.puppetfile.as_str(),
        holder,
    ];
    if !record.state_dir.is_empty() {
        args.extend(record.step_args());
    }
    let call = Call::step(Script::Modules, args, deadline);
    Step::new(StepName::Modules, display, call)
}

/// Whether a step's markers say the modules could not be put in place (the modules step, or
/// a plan's copy of the target).
pub fn modules_failed(marks: &Marks) -> bool {
    matches!(
        marks.get("fail"),
        Some("modules" | "no-installer" | "modules-outside")
    )
}

/// The installer's own error in `text`: its last `ERROR -> ...` line (r10k) without the
/// level, or its last line starting with `Error` or `Failed` (g10k).
fn installer_error(text: &str) -> Option<&str> {
    let line =
        text.lines().rev().map(str::trim).find(|l| {
            l.starts_with("ERROR") || l.starts_with("Error") || l.starts_with("Failed")
        })?;
    Some(match line.split_once("-> ") {
        Some((_, rest)) if line.starts_with("ERROR") => rest.trim(),
        _ => line,
    })
}

/// Explains in one line why the Puppetfile's modules could not be put in place: no
/// installer on the host (with the command that installs it), a Puppetfile `moduledir`
/// outside a plan's copy, or the installer's own error (its last `ERROR` line, or its last
/// line).
pub fn classify_modules_failure(
    settings: &Settings,
    marks: &Marks,
    stdout: &str,
    stderr: &str,
) -> HostError {
    let installer = marks
        .get("installer")
        .unwrap_or(settings.puppetfile.as_str());
    let message = match marks.get("fail") {
        Some("no-installer") => no_installer(installer, marks.get("pkg")),
        Some("modules-outside") => format!(
            "the Puppetfile's moduledir {} is outside the checkout: capo plan cannot install its modules without touching the host",
            marks.get("moduledir").unwrap_or("?")
        ),
        _ => {
            let why = installer_error(stderr)
                .or_else(|| installer_error(stdout))
                .or_else(|| last_line(stderr))
                .or_else(|| last_line(stdout))
                .unwrap_or("no output");
            let command = match installer {
                "g10k" => "g10k -puppetfile",
                _ => "r10k puppetfile install",
            };
            format!("{command} failed: {why}")
        }
    };
    HostError::new(ErrorKind::Modules, message)
}

/// Why the Puppetfile's modules cannot be installed without `installer` on the host, and how
/// to install it with the host's package manager `pkg`.
fn no_installer(installer: &str, pkg: Option<&str>) -> String {
    let how = match (pkg, installer) {
        (Some("apt"), name) => format!("apt-get install {name}"),
        (Some(pkg @ ("dnf" | "yum" | "zypper")), "g10k") => {
            format!(
                "download it from https://github.com/xorpaul/g10k/releases ({pkg} has no package)"
            )
        }
        (_, "g10k") => "download it from https://github.com/xorpaul/g10k/releases".to_string(),
        _ => "gem install r10k".to_string(),
    };
    format!(
        "{installer} not found on host, and the checkout has a Puppetfile; install it ({how}) or set puppetfile = \"ignore\""
    )
}

/// One piece of a shell word: literal text, or the checkout's root directory (which is
/// `repo_dir` for a rollout, and a temporary copy of the target revision for a plan).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Root,
}

/// A command-line word made of pieces.
type Word = Vec<Piece>;

fn lit(s: impl Into<String>) -> Word {
    vec![Piece::Lit(s.into())]
}

/// A path relative to the checkout root, or an absolute one as is.
fn under_root(path: &str) -> Word {
    if path.starts_with('/') {
        lit(path)
    } else {
        vec![Piece::Root, Piece::Lit(format!("/{path}"))]
    }
}

/// The `puppet apply` command line: the `puppet` setting, then capo's options, then `extra`
/// (capo's own, e.g. `--noop`), then the inventory's `puppet_args`. The checkout root runs
/// as the environment `environment` (the script links it into a per-run
/// `--environmentpath`, left out here); without `manifest` or `modulepath` settings, the environment's
/// own apply (and manifests/site.pp and modules for a repo without `environment.conf`).
fn apply_command(settings: &Settings, extra: &[Word]) -> Vec<Word> {
    let mut words = vec![
        lit(&settings.puppet),
        lit("apply"),
        lit("--detailed-exitcodes"),
        // Colour codes would end up in logs and reports; the terminal shows a table anyway.
        lit("--color=false"),
        lit("--environment"),
        lit(&settings.environment),
    ];
    if let Some(certname) = &settings.certname {
        words.push(lit("--certname"));
        words.push(lit(certname));
    }
    if let Some(modulepath) = settings.modulepath.as_ref().filter(|m| !m.is_empty()) {
        words.push(lit("--modulepath"));
        let mut joined = Word::new();
        for (i, m) in modulepath.iter().enumerate() {
            if i > 0 {
                joined.push(Piece::Lit(":".into()));
            }
            joined.extend(under_root(m));
        }
        words.push(joined);
    }
    if let Some(manifest) = &settings.manifest {
        words.push(under_root(manifest));
    }
    words.extend(extra.iter().cloned());
    words.extend(settings.puppet_args.iter().map(lit));
    words
}

/// Renders words as a person would type them, with `root` for the checkout root.
fn render_display(words: &[Word], root: &str) -> String {
    join(words.iter().map(|word| {
        word.iter()
            .map(|piece| match piece {
                Piece::Lit(text) => text.clone(),
                Piece::Root => root.trim_end_matches('/').to_string(),
            })
            .collect::<String>()
    }))
}

/// The arguments `apply.sh` and `plan.sh` share after their own: PUPPET ENVIRONMENT MANIFEST
/// MODULEPATH CERTNAME SHOW_DIFF PUPPET_ARG... (an unset manifest or modulepath: empty).
fn puppet_args(settings: &Settings, show_diff: bool) -> Vec<String> {
    let mut args = vec![
        settings.puppet.clone(),
        settings.environment.clone(),
        settings.manifest.clone().unwrap_or_default(),
        settings.modulepath.as_deref().unwrap_or_default().join(":"),
        settings.certname.clone().unwrap_or_default(),
        if show_diff { "1" } else { "0" }.to_string(),
    ];
    args.extend(settings.puppet_args.iter().cloned());
    args
}

/// The apply step (`capo-apply`): `puppet apply --detailed-exitcodes ...` in `repo_dir`, with
/// its results written to a fresh temporary directory on the host and sent back inline on
/// the step's own channel when Puppet ends (see [`crate::inline`]; [`collect`] when the step
/// ended before it could). With a `record`, it writes the run record when Puppet ends.
pub fn apply(
    settings: &Settings,
    holder: &str,
    record: &RunRecord,
    deadline: Duration,
    show_diff: bool,
) -> Step {
    let command = apply_command(settings, &[]);
    let display = render_display(&command, &settings.repo_dir);
    let mut args = vec![settings.repo_dir.clone(), holder.to_string()];
    let mut puppet = puppet_args(settings, show_diff);
    // PUPPET .. SHOW_DIFF, then the record's arguments, then the PUPPET_ARGs.
    let rest = puppet.split_off(6);
    args.extend(puppet);
    args.extend(record.step_args().map(str::to_string));
    // INLINE: the results come back on this step's channel.
    args.push("1".to_string());
    args.extend(rest);
    Step::new(
        StepName::Apply,
        display,
        Call::step(Script::Apply, args, deadline),
    )
}

/// An ad-hoc command, under the same host-side deadline as every step. Its words are joined
/// with spaces and run by `sh -c`, as `ssh host CMD...` joins them for the remote shell.
pub fn exec(command: &str, deadline: Duration) -> Step {
    Step::new(
        StepName::Exec,
        command.to_string(),
        Call::step(Script::Exec, [command], deadline),
    )
}

/// Kills a step's whole process tree (`capo-kill`): TERM, then KILL for whatever is still
/// there after 2 s.
pub fn kill(pid: u32) -> String {
    kill_call(pid).command_line()
}

/// [`kill`] as a call, for the runner to send as the host's commands go (maybe through sudo).
pub fn kill_call(pid: u32) -> Call {
    Call::plain(Script::Kill, [pid.to_string()])
}

/// What the apply step said about a missing puppet executable.
pub fn missing_puppet(settings: &Settings, marks: &Marks) -> Option<MissingPuppet> {
    (marks.get("fail") == Some("no-puppet")).then(|| MissingPuppet {
        command: settings.puppet.clone(),
        path: marks.get("path").unwrap_or("?").to_string(),
    })
}

/// Explains a failed sync (or a plan that could not get to the target) in one line. `rev` is
/// the asked-for revision, if any.
pub fn classify_sync_failure(
    settings: &Settings,
    rev: Option<&str>,
    marks: &Marks,
    stderr: &str,
) -> HostError {
    let dir = &settings.repo_dir;
    let upstream = format!("{}/{}", settings.remote, settings.branch);
    let first_error = || {
        stderr
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
            .or_else(|| last_line(stderr))
            .unwrap_or("no output")
            .to_string()
    };
    let count = |key| marks.get(key).and_then(|v| v.parse::<u64>().ok());
    let dirty: Vec<&str> = marks.all("dirty").filter(|l| !l.is_empty()).collect();
    let message = match marks.get("fail") {
        Some("no-repo-dir") => no_repo_dir(dir),
        Some("not-a-repo") => not_a_repo(dir),
        Some("fetch") => format!("git fetch {} failed: {}", settings.remote, first_error()),
        Some("rev-not-found") => match rev {
            Some(rev) => format!("revision {rev} not found on {}", settings.remote),
            None => format!(
                "branch {upstream} not found after fetching {}",
                settings.remote
            ),
        },
        Some("archive") => format!(
            "cannot copy the target revision out of {dir}: {}",
            first_error()
        ),
        Some("diverged") if rev.is_some() => {
            let rev = rev.unwrap_or_default();
            let local = count("local-only").unwrap_or(0);
            let remote = count("remote-only").unwrap_or(0);
            format!(
                "checkout in {dir} has diverged from {rev}: {local} local commit{} not in {rev}, {remote} new in it; capo never merges or resets, reconcile the checkout by hand",
                if local == 1 { "" } else { "s" },
            )
        }
        _ if stderr.contains("would be overwritten by merge")
            || stderr.contains("Your local changes") =>
        {
            format!(
                "local changes in {dir} block the pull: {}; commit, stash or discard them on the host",
                if dirty.is_empty() { "(git status shows none)".to_string() } else { dirty.join(", ") }
            )
        }
        _ if marks.get("fail") == Some("diverged")
            || stderr.contains("Not possible to fast-forward")
            || stderr.contains("diverg") =>
        {
            let local = count("local-only").unwrap_or(0);
            let remote = count("remote-only").unwrap_or(0);
            format!(
                "checkout in {dir} has diverged from {upstream}: {local} local commit{} not on {}, {remote} new on it; capo never merges or resets, reconcile the checkout by hand",
                if local == 1 { "" } else { "s" },
                settings.remote,
            )
        }
        _ => match rev {
            Some(rev) => format!("git merge --ff-only {rev} failed: {}", first_error()),
            None => format!(
                "git pull --ff-only {} {} failed: {}",
                settings.remote,
                settings.branch,
                first_error()
            ),
        },
    };
    HostError::new(ErrorKind::Sync, message)
}

/// Why a host whose `repo_dir` does not exist cannot sync, and what to do.
fn no_repo_dir(dir: &str) -> String {
    format!(
        "repo_dir {dir} does not exist on the host; clone the control repo there (git clone URL {dir})"
    )
}

/// Why a host whose `repo_dir` is not a checkout cannot sync, and what to do.
fn not_a_repo(dir: &str) -> String {
    format!("repo_dir {dir} is not a git checkout; remove it and clone the control repo there")
}

/// Explains a lock that cannot be taken on the host (`lock=failed`) in one line.
pub fn lock_error(marks: &Marks, stderr: &str) -> HostError {
    let path = marks.get("path").unwrap_or("?");
    let user = marks.get("user").unwrap_or("the remote user");
    let message = match marks.get("why") {
        Some("no-flock") => "flock not found on host".to_string(),
        Some("not-writable") => format!("git directory not writable by {user} ({path})"),
        Some("open") => format!(
            "cannot open the lock files in {path} as {user}: {}",
            last_line(stderr).unwrap_or("no error shown")
        ),
        Some("info-timeout") => format!(
            "timed out after 10s waiting for {path}; another capo run on the host seems stuck taking the lock"
        ),
        other => format!("lock script failed ({})", other.unwrap_or("no reason given")),
    };
    HostError::new(ErrorKind::Lock, message)
}

/// Explains a held lock in one line.
pub fn locked_error(marks: &Marks) -> HostError {
    let holder = marks.get("holder").unwrap_or("an unknown holder");
    let message = match marks.get("lock") {
        Some("busy") => format!(
            "a step started by {holder} is still running on the host; try again when it ends"
        ),
        _ => format!("host is locked by {holder}"),
    };
    HostError::new(ErrorKind::Locked, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use capo_inventory::Inventory;
    use std::path::Path;
    use std::process::Command;

    /// A host's settings from `extra` lines of `[defaults]` (also for the step modules'
    /// tests).
    pub(super) fn settings(extra: &str) -> Settings {
        let text = format!("[defaults]\n{extra}\n[hosts.h1]\n");
        let inv = Inventory::parse(&text, Path::new("inv.toml")).expect("inventory parses");
        inv.hosts[0].settings.clone()
    }

    /// The lock script of `s` running as `holder`, once it says it holds the lock; it keeps
    /// it until its stdin (a pipe the caller holds) closes.
    fn hold_lock(s: &Settings, holder: &str) -> std::process::Child {
        use std::io::BufRead;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(lock(s, holder))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut line = String::new();
        let out = child.stdout.as_mut().expect("stdout");
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line, "::capo:lock=ok\n");
        child
    }

    /// Runs a command line as sshd would with `sh` as the login shell. (Each script runs
    /// under dash and bash, and the command line under every login shell, in capo-scripts.)
    fn run_sh(script: &str) -> std::process::Output {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh runs")
    }

    #[test]
    fn apply_command_quotes_every_value() {
        let s = settings(
            "repo_dir = \"/srv/my repo's\"\ncertname = \"web'1\"\npuppet_args = [\"--tags\", \"a;b\"]\n\
             manifest = \"manifests/site.pp\"\nmodulepath = [\"modules\"]",
        );
        let mut record = RunRecord::push(&s, "R1", "capo run R1 from 'ctl'");
        record.after_sync(&Marks::parse(
            b"::capo:started=1000 2026-11-24T22:45:01Z 20261124T224501\n::capo:rev-before=abc\n",
        ));
        let step = apply(&s, "h", &record, Duration::from_secs(5), false);
        assert_eq!(
            step.display,
            "puppet apply --detailed-exitcodes --color=false --environment production --certname 'web'\\''1' \
             --modulepath '/srv/my repo'\\''s/modules' '/srv/my repo'\\''s/manifests/site.pp' --tags 'a;b'"
        );
        assert_eq!(step.call.script, Script::Apply);
        assert_eq!(
            step.call.args,
            [
                "/srv/my repo's",
                "h",
                "puppet",
                "production",
                "manifests/site.pp",
                "modules",
                "web'1",
                "0",
                "/var/lib/capo",
                "push",
                "R1",
                "capo run R1 from 'ctl'",
                "1000 2026-11-24T22:45:01Z 20261124T224501",
                "abc",
                // INLINE: the results come back on the step's own channel.
                "1",
                "--tags",
                "a;b"
            ]
        );
        assert_eq!(Call::parse(&step.script()), Some(step.call));
    }

    #[test]
    fn the_run_record_arguments_follow_each_script_s_own() {
        let s = settings("state_dir = \"/srv/state dir\"");
        let record = RunRecord::push(&s, "R1", "by");
        let t = Duration::from_secs(5);
        let tail = |step: Step| step.call.args[step.call.args.len() - 4..].to_vec();
        assert_eq!(
            tail(sync(&s, "h", &record, t)),
            ["/srv/state dir", "push", "R1", "by"]
        );
        assert_eq!(
            tail(sync_to_rev(&s, "v1", "h", &record, t)),
            ["/srv/state dir", "push", "R1", "by"]
        );
        let m = modules(&s, "h", &record, t);
        assert_eq!(
            m.call.args[3..],
            ["/srv/state dir", "push", "R1", "by", "", ""]
        );
        // No record: the optional arguments are left out, apply's are empty (INLINE follows).
        let none = RunRecord::default();
        assert_eq!(sync(&s, "h", &none, t).call.args.len(), 5);
        assert_eq!(modules(&s, "h", &none, t).call.args.len(), 3);
        assert_eq!(
            apply(&s, "h", &none, t, false).call.args[8..],
            ["", "", "", "", "", "", "1"]
        );
        assert_eq!(record_error(&Marks::parse(b"::capo:record=ok\n")), None);
        assert_eq!(
            record_error(&Marks::parse(
                b"::capo:record=failed\n::capo:record-why=cannot write /x as deploy: mkdir: no\n"
            ))
            .as_deref(),
            Some("cannot write /x as deploy: mkdir: no")
        );
    }

    #[test]
    fn sync_command_passes_the_branch_as_an_argument() {
        let s = settings("branch = \"main;touch /tmp/pwned\"");
        let step = sync(&s, "h", &RunRecord::default(), Duration::from_secs(5));
        assert_eq!(
            step.display,
            "git pull --ff-only origin 'main;touch /tmp/pwned'"
        );
        assert!(step.script().starts_with("sh -c '"));
        assert!(!step.script().contains('\n'));
        assert_eq!(
            step.call.args,
            [
                "/etc/puppetlabs/code/capo",
                "origin",
                "main;touch /tmp/pwned",
                "h",
                "r10k"
            ]
        );
        assert_eq!(step.call.deadline, Some(Duration::from_secs(5)));
        // What the .cmd log of a failed sync holds: readable, and runnable by hand.
        let readable = step.call.readable();
        assert!(readable
            .contains("set -- /etc/puppetlabs/code/capo origin 'main;touch /tmp/pwned' h r10k\n"));
        assert!(readable.contains("git pull --ff-only \"$remote\" \"$branch\""));
    }

    #[test]
    fn sync_script_reports_a_directory_that_is_not_a_repo() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = settings(&format!(
            "repo_dir = {:?}",
            dir.path().display().to_string()
        ));
        let out = run_sh(&sync(&s, "h", &RunRecord::default(), Duration::from_secs(5)).script());
        assert_eq!(out.status.code(), Some(1));
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("fail"), Some("not-a-repo"));
        assert!(marks.pid().is_some());
    }

    #[test]
    fn missing_puppet_is_reported_with_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = settings(&format!(
            "repo_dir = {:?}\npuppet = \"no-such-puppet\"",
            dir.path().display().to_string()
        ));
        let out = run_sh(
            &apply(
                &s,
                "h",
                &RunRecord::default(),
                Duration::from_secs(5),
                false,
            )
            .script(),
        );
        assert_eq!(out.status.code(), Some(127));
        let marks = Marks::parse(&out.stdout);
        let missing = missing_puppet(&s, &marks).expect("reported");
        assert_eq!(missing.command, "no-such-puppet");
        assert!(missing.path.contains("/bin"), "{}", missing.path);
    }

    #[test]
    fn lock_is_exclusive_and_names_its_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let git = Command::new("git")
            .args(["init", "-q"])
            .arg(dir.path())
            .status()
            .expect("git runs");
        assert!(git.success());
        let s = settings(&format!(
            "repo_dir = {:?}",
            dir.path().display().to_string()
        ));
        // First holder keeps its stdin open (a pipe we hold), so it keeps the lock.
        let mut first = hold_lock(&s, "run A from ctl (pid 1)");
        let second = run_sh(&lock(&s, "run B"));
        assert_eq!(second.status.code(), Some(LOCKED_EXIT as i32));
        let marks = Marks::parse(&second.stdout);
        assert_eq!(
            locked_error(&marks).message,
            "host is locked by run A from ctl (pid 1)"
        );
        drop(first.stdin.take());
        first.wait().expect("wait");
    }

    /// The files in `dir`'s git directory, with their sizes and modification times.
    fn git_dir_files(dir: &Path) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(dir.join(".git"))
            .expect("git dir")
            .flatten()
            .map(|e| {
                let m = e.metadata().expect("metadata");
                format!("{:?} {} {:?}", e.file_name(), m.len(), m.modified().ok())
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn check_looks_at_the_lock_without_creating_or_taking_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .status()
                .expect("git runs")
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q", "-b", "main"]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "one",
        ]);
        let s = settings(&format!(
            "repo_dir = {:?}\npuppet = \"no-such-puppet\"",
            dir.path().display().to_string()
        ));
        let look = || {
            let out = run_sh(&check(&s, Duration::from_secs(20)).script());
            assert_eq!(out.status.code(), Some(0));
            Marks::parse(&out.stdout)
        };
        // Never locked: free, and no lock file is made by looking.
        let before = git_dir_files(dir.path());
        let marks = look();
        assert_eq!(marks.get("repo"), Some("checkout"));
        assert_eq!(marks.get("branch"), Some("main"));
        assert_eq!(marks.get("head").map(str::len), Some(40));
        assert_eq!(marks.get("lock"), Some("free"));
        assert_eq!(marks.get("puppet"), Some("missing"));
        assert_eq!(git_dir_files(dir.path()), before);
        // The first thing a rollout would meet here is the missing Puppet.
        let problem = check_problem(&s, &marks).expect("a problem");
        assert_eq!(problem.kind, ErrorKind::Puppet);
        assert!(problem
            .message
            .starts_with("no-such-puppet not found on host (PATH="));

        // Held by a run: held, with its line; and still held after the look.
        let mut holder = hold_lock(&s, "run A from ctl (pid 1)");
        let before = git_dir_files(dir.path());
        let marks = look();
        assert_eq!(marks.get("lock"), Some("held"));
        assert_eq!(marks.get("holder"), Some("run A from ctl (pid 1)"));
        let problem = check_problem(&s, &marks).expect("a problem");
        assert_eq!(problem.message, "host is locked by run A from ctl (pid 1)");
        assert_eq!(git_dir_files(dir.path()), before);
        let second = run_sh(&lock(&s, "run B"));
        assert_eq!(second.status.code(), Some(LOCKED_EXIT as i32));
        drop(holder.stdin.take());
        holder.wait().expect("wait");
        assert_eq!(look().get("lock"), Some("free"));
    }

    #[test]
    fn check_names_what_is_at_repo_dir_and_what_a_rollout_would_say() {
        let dir = tempfile::tempdir().expect("tempdir");
        let at = |path: &Path| {
            let s = settings(&format!("repo_dir = {:?}", path.display().to_string()));
            let out = run_sh(&check(&s, Duration::from_secs(20)).script());
            assert_eq!(out.status.code(), Some(0));
            let marks = Marks::parse(&out.stdout);
            (
                marks.get("repo").map(str::to_string),
                check_problem(&s, &marks),
            )
        };
        let missing = dir.path().join("nothing");
        let (state, problem) = at(&missing);
        assert_eq!(state.as_deref(), Some("missing"));
        let problem = problem.expect("a problem");
        assert_eq!(problem.kind, ErrorKind::Sync);
        assert_eq!(problem.message, no_repo_dir(&missing.display().to_string()));
        let (state, problem) = at(dir.path());
        assert_eq!(state.as_deref(), Some("not-a-checkout"));
        let problem = problem.expect("a problem");
        assert_eq!(problem.kind, ErrorKind::Sync);
        assert!(
            problem
                .message
                .starts_with(&not_a_repo(&dir.path().display().to_string())),
            "{}",
            problem.message
        );
    }

    #[test]
    fn install_commands_follow_the_package_manager() {
        assert_eq!(install_command(Some("apt"), "git"), "apt-get install git");
        assert_eq!(install_command(Some("dnf"), "git"), "dnf install git");
        assert_eq!(install_command(Some("apk"), "git"), "apk add git");
        assert_eq!(install_command(None, "git"), "install git");
    }

    #[test]
    fn a_lock_that_cannot_be_taken_is_explained() {
        let err = |out: &[u8], stderr| lock_error(&Marks::parse(out), stderr);
        let e = err(
            b"::capo:lock=failed\n::capo:why=no-flock\n::capo:path=/bin\n",
            "",
        );
        assert_eq!(e.kind, ErrorKind::Lock);
        assert_eq!(e.message, "flock not found on host");
        let e = err(
            b"::capo:lock=failed\n::capo:why=not-writable\n::capo:user=deploy\n::capo:path=/srv/puppet/.git\n",
            "",
        );
        assert_eq!(
            e.message,
            "git directory not writable by deploy (/srv/puppet/.git)"
        );
        let e = err(
            b"::capo:lock=failed\n::capo:why=open\n::capo:user=deploy\n::capo:path=/g\n",
            "sh: 1: cannot create /g/capo.lock: Permission denied\n",
        );
        assert_eq!(
            e.message,
            "cannot open the lock files in /g as deploy: sh: 1: cannot create /g/capo.lock: Permission denied"
        );
        assert!(err(
            b"::capo:lock=failed\n::capo:why=info-timeout\n::capo:path=/g/capo.lock.info\n",
            ""
        )
        .message
        .starts_with("timed out after 10s waiting for /g/capo.lock.info"));
    }

    #[test]
    fn sync_failure_names_git_fatal_line() {
        let s = settings("");
        let err = classify_sync_failure(
            &s,
            None,
            &Marks::default(),
            "remote: x\nfatal: couldn't find remote ref nope\n",
        );
        assert_eq!(err.kind, ErrorKind::Sync);
        assert_eq!(
            err.message,
            "git pull --ff-only origin main failed: fatal: couldn't find remote ref nope"
        );
    }

    #[test]
    fn sync_failure_lists_local_changes() {
        let s = settings("repo_dir = \"/srv/puppet\"");
        let marks = Marks::parse(b"::capo:dirty= M manifests/site.pp\n::capo:dirty=?? junk\n");
        let err = classify_sync_failure(
            &s,
            None,
            &marks,
            "error: Your local changes to the following files would be overwritten by merge:\n",
        );
        assert_eq!(
            err.message,
            "local changes in /srv/puppet block the pull: M manifests/site.pp, ?? junk; commit, stash or discard them on the host"
        );
    }

    #[test]
    fn sync_failure_explains_divergence() {
        let s = settings("repo_dir = \"/srv/puppet\"");
        let marks = Marks::parse(b"::capo:local-only=1\n::capo:remote-only=2\n");
        let err = classify_sync_failure(
            &s,
            None,
            &marks,
            "fatal: Not possible to fast-forward, aborting.\n",
        );
        assert_eq!(
            err.message,
            "checkout in /srv/puppet has diverged from origin/main: 1 local commit not on origin, 2 new on it; capo never merges or resets, reconcile the checkout by hand"
        );
    }

    #[test]
    fn a_missing_installer_says_how_to_install_it() {
        let err = |settings_text: &str, out: &[u8]| {
            classify_modules_failure(&settings(settings_text), &Marks::parse(out), "", "")
        };
        let e = err(
            "",
            b"::capo:fail=no-installer\n::capo:installer=r10k\n::capo:pkg=apt\n",
        );
        assert_eq!(e.kind, ErrorKind::Modules);
        assert_eq!(
            e.message,
            "r10k not found on host, and the checkout has a Puppetfile; install it (apt-get install r10k) or set puppetfile = \"ignore\""
        );
        let e = err(
            "puppetfile = \"r10k\"",
            b"::capo:fail=no-installer\n::capo:installer=r10k\n::capo:pkg=dnf\n",
        );
        assert!(e.message.contains("(gem install r10k)"), "{}", e.message);
        let e = err(
            "puppetfile = \"g10k\"",
            b"::capo:fail=no-installer\n::capo:installer=g10k\n::capo:pkg=\n",
        );
        assert!(
            e.message.starts_with(
                "g10k not found on host, and the checkout has a Puppetfile; install it (download it from https://github.com/xorpaul/g10k/releases)"
            ),
            "{}",
            e.message
        );
    }

    #[test]
    fn an_installer_failure_names_its_error_line() {
        let marks = Marks::parse(b"::capo:fail=modules\n");
        // r10k's own words for a ref that does not exist (r10k 3.15).
        let r10k = "ERROR\t -> Error during concurrent deploy of a module: Unable to manage Puppetfile content 'motd': Could not resolve desired ref 'v9.9.9' and no default provided\n\
                    ERROR\t -> Unable to manage Puppetfile content 'motd': Could not resolve desired ref 'v9.9.9' and no default provided\n";
        let e = classify_modules_failure(&settings(""), &marks, "", r10k);
        assert_eq!(e.kind, ErrorKind::Modules);
        assert_eq!(
            e.message,
            "r10k puppetfile install failed: Unable to manage Puppetfile content 'motd': Could not resolve desired ref 'v9.9.9' and no default provided"
        );
        let g10k = "Failed to resolve git module 'motd' with repository /srv/forge/motd.git and branch/reference 'v9.9.9'\n";
        let e = classify_modules_failure(&settings("puppetfile = \"g10k\""), &marks, g10k, "");
        assert_eq!(
            e.message,
            "g10k -puppetfile failed: Failed to resolve git module 'motd' with repository /srv/forge/motd.git and branch/reference 'v9.9.9'"
        );
        let e = classify_modules_failure(&settings(""), &marks, "", "");
        assert_eq!(e.message, "r10k puppetfile install failed: no output");
    }

    #[test]
    fn modules_run_only_when_the_sync_says_stale() {
        let marks = |text: &[u8]| Marks::parse(text);
        assert!(modules_stale(&marks(b"::capo:modules=stale\n")));
        assert!(!modules_stale(&marks(b"::capo:modules=current\n")));
        assert!(!modules_stale(&marks(b"::capo:modules=none\n")));
        assert!(!modules_stale(&marks(b"")));
        let s = settings("repo_dir = \"/srv/puppet\"\npuppetfile = \"g10k\"");
        let step = modules(&s, "h", &RunRecord::default(), Duration::from_secs(5));
        assert_eq!(step.name, StepName::Modules);
        assert_eq!(step.display, "g10k -puppetfile");
        assert_eq!(step.call.args, ["/srv/puppet", "g10k", "h"]);
        assert_eq!(Call::parse(&step.script()), Some(step.call));
    }
}
