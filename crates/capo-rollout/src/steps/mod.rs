//! The remote side: the exact scripts sent to a host, and how their output is read back.
//!
//! Every script runs under `sh -c` whatever the login shell is, and every inventory value in
//! it goes through [`quote`]. Scripts talk back through marker lines on stdout
//! (`::capo:KEY=VALUE`), which are stripped from the output shown to people.

use std::time::Duration;

use capo_inventory::Settings;

use crate::outcome::{last_line, ErrorKind, HostError, MissingPuppet, StepName};
use crate::shell::{join, quote};

mod revision;
pub use revision::{collect, plan, split_collected, sync_to_rev, Collected};

/// Prefix of the marker lines scripts print on stdout.
pub const MARK: &str = "::capo:";

/// How long the host-side stop of a step may take (TERM, then KILL after 2 s), plus slack.
pub const KILL_AFTER: Duration = Duration::from_secs(5);

/// Exit status of the lock script when another run holds the lock (EX_TEMPFAIL).
pub const LOCKED_EXIT: u32 = 75;

/// One step ready to run on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Which step.
    pub name: StepName,
    /// The command as a person would type it, for reports.
    pub display: String,
    /// The exact command string sent over the exec channel.
    pub script: String,
}

/// Wraps a POSIX script so it runs under `sh` whatever the login shell is.
fn sh_c(script: &str) -> String {
    format!("sh -c {}", quote(script))
}

/// A shell function `tree PID` printing PID and all its descendants, collected in one pass
/// before anything is killed so that children orphaned by the first kill are still caught.
/// Puppet runs `exec` resources in their own session, so a process-group kill would miss them.
/// Without `ps` it falls back to the process group.
const TREE_FN: &str = "tree() {\n\
  t=$(ps -eo pid=,ppid= 2>/dev/null | awk -v r=\"$1\" '{p[$1]=$2} END{d[r]=1; do {c=0; for (k in p) if (!(k in d) && (p[k] in d)) {d[k]=1; c=1}} while (c); for (k in d) print k}')\n\
  if [ -n \"$t\" ]; then echo $t; else echo \"-$1 $1\"; fi\n\
}\n\
stop_tree() {\n\
  kill -TERM $1 2>/dev/null\n\
  for i in 1 2 3 4 5 6 7 8 9 10; do\n\
    a=; for p in $1; do kill -0 $p 2>/dev/null && a=1; done\n\
    [ -n \"$a\" ] || return 0\n\
    sleep 0.2\n\
  done\n\
  kill -KILL $1 2>/dev/null\n\
}\n";

/// Wraps a step script so that the host itself enforces `deadline` and the controller can kill
/// the whole step later: it prints its pid, runs the step in the background, and at the
/// deadline kills the step's whole process tree and says so with a `deadline` marker.
/// (OpenSSH ignores signal requests for root and a closed channel does not stop a command, so
/// stopping must happen on the host.)
///
/// The timer is a plain `sleep` started by the wrapper itself, so its pid is known exactly
/// and nothing it forks can escape a kill; its output goes to /dev/null, so it never holds
/// the channel open. The step runs in a subshell that stops the timer as soon as the step
/// ends, and the wrapper waits for the timer alone: ended by that kill, the step is done;
/// ended by itself, the deadline has come. This costs two processes besides the step (the
/// timer and the step's `sh`), which matters when a quick command goes to many hosts.
fn deadline_wrapper(inner: &str, deadline: Duration) -> String {
    let secs = format!("{:.3}", deadline.as_secs_f64());
    let inner = quote(inner);
    sh_c(&format!(
        "echo \"{MARK}pid=$$\"\n\
         {TREE_FN}\
         sleep {secs} </dev/null >/dev/null 2>&1 &\n\
         s=$!\n\
         {{ sh -c {inner}; rc=$?; kill $s 2>/dev/null; exit $rc; }} &\n\
         c=$!\n\
         if wait $s 2>/dev/null; then\n\
           printf '\\n{MARK}deadline=%s\\n' {secs}\n\
           stop_tree \"$(tree $c)\"\n\
         fi\n\
         wait $c\n"
    ))
}

/// Shell test that the current directory is the top of a git checkout (not merely somewhere
/// inside one: git would happily work on an enclosing repository).
const AT_CHECKOUT_TOP: &str =
    "t=$(git rev-parse --show-toplevel 2>/dev/null) && [ -n \"$t\" ] && [ \"$(cd \"$t\" && pwd -P)\" = \"$(pwd -P)\" ]";

/// The shell snippet that sets `g` to the absolute path of the checkout's git directory, where
/// the lock files live (whoever may pull can write there), or to empty when there is none.
fn lock_dir(settings: &Settings) -> String {
    format!(
        "g=$(cd -- {} 2>/dev/null && {AT_CHECKOUT_TOP} && d=$(git rev-parse --git-common-dir 2>/dev/null) && [ -n \"$d\" ] && cd \"$d\" && [ -w . ] && pwd)\n",
        quote(&settings.repo_dir)
    )
}

/// The lock holder: runs for the whole time capo works on a host and holds `capo.lock` there.
///
/// It prints `lock=ok` once it holds the lock and then waits for its stdin to close, so the
/// lock dies with it: when capo finishes, is killed, or loses the connection. A holder finding
/// the lock taken prints who holds it and exits [`LOCKED_EXIT`]. Taking the lock and writing
/// the holder line (or failing and reading it) happen under a short lock on `capo.lock.info`,
/// so a loser never reads the line before the winner wrote it. It also checks that no step of
/// an earlier run is still running (those hold `capo.lock.step` shared).
pub fn lock(settings: &Settings, holder: &str) -> String {
    let holder = quote(holder);
    sh_c(&format!(
        "{dir}\
         if [ -z \"$g\" ] || ! command -v flock >/dev/null 2>&1; then echo '{MARK}lock=none'; exec cat >/dev/null; fi\n\
         exec 9<>\"$g/capo.lock\" 8<>\"$g/capo.lock.step\" 7<>\"$g/capo.lock.info\" || {{ echo '{MARK}lock=none'; exec cat >/dev/null; }}\n\
         flock -w 10 7\n\
         if ! flock -n 9; then echo \"{MARK}lock=held\"; echo \"{MARK}holder=$(head -c 300 \"$g/capo.lock\" | head -n 1)\"; exit {LOCKED_EXIT}; fi\n\
         if ! flock -n 8; then echo \"{MARK}lock=busy\"; echo \"{MARK}holder=$(head -c 300 \"$g/capo.lock.step\" | head -n 1)\"; exit {LOCKED_EXIT}; fi\n\
         flock -u 8; exec 8>&-\n\
         printf '%s\\n' {holder} > \"$g/capo.lock\"\n\
         flock -u 7; exec 7>&-\n\
         echo '{MARK}lock=ok'\n\
         exec cat >/dev/null\n",
        dir = lock_dir(settings),
    ))
}

/// Preamble of every step: a shared lock on `capo.lock.step` for as long as the step's
/// processes live, so a later run can tell that a step of ours outlived its controller.
fn step_lock(settings: &Settings, holder: &str) -> String {
    format!(
        "{dir}\
         if [ -n \"$g\" ] && command -v flock >/dev/null 2>&1; then\n\
           exec 8<>\"$g/capo.lock.step\" && flock -s -n 8 && printf '%s\\n' {holder} > \"$g/capo.lock.step\"\n\
         fi\n",
        dir = lock_dir(settings),
        holder = quote(holder),
    )
}

/// The sync step: `git pull --ff-only REMOTE BRANCH` in `repo_dir`, recording HEAD around it,
/// and on failure what blocked it (local changes, diverged history).
pub fn sync(settings: &Settings, holder: &str, deadline: Duration) -> Step {
    let dir = quote(&settings.repo_dir);
    let pull = join([
        "git",
        "pull",
        "--ff-only",
        &settings.remote,
        &settings.branch,
    ]);
    // LC_ALL=C keeps git's messages in English so they can be classified; GIT_TERMINAL_PROMPT=0
    // makes a remote that wants credentials fail instead of waiting for input that never comes.
    let inner = format!(
        "{lock}\
         cd -- {dir} 2>/dev/null || {{ echo '{MARK}fail=no-repo-dir'; exit 1; }}\n\
         {AT_CHECKOUT_TOP} || {{ echo '{MARK}fail=not-a-repo'; exit 1; }}\n\
         echo \"{MARK}rev-before=$(git rev-parse --verify -q HEAD)\"\n\
         LC_ALL=C GIT_TERMINAL_PROMPT=0 {pull}\n\
         rc=$?\n\
         echo \"{MARK}rev-after=$(git rev-parse --verify -q HEAD)\"\n\
         if [ $rc -ne 0 ]; then\n\
           git status --porcelain 2>/dev/null | head -n 20 | sed 's/^/{MARK}dirty=/'\n\
           echo \"{MARK}local-only=$(git rev-list --count FETCH_HEAD..HEAD 2>/dev/null)\"\n\
           echo \"{MARK}remote-only=$(git rev-list --count HEAD..FETCH_HEAD 2>/dev/null)\"\n\
         fi\n\
         exit $rc\n",
        lock = step_lock(settings, holder),
    );
    Step {
        name: StepName::Sync,
        display: pull,
        script: deadline_wrapper(&inner, deadline),
    }
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
/// (capo's own, e.g. `--noop`), then the inventory's `puppet_args`.
fn apply_command(settings: &Settings, extra: &[Word]) -> Vec<Word> {
    let mut words = vec![
        lit(&settings.puppet),
        lit("apply"),
        lit("--detailed-exitcodes"),
        // Colour codes would end up in logs and reports; the terminal shows a table anyway.
        lit("--color=false"),
    ];
    if let Some(certname) = &settings.certname {
        words.push(lit("--certname"));
        words.push(lit(certname));
    }
    if !settings.modulepath.is_empty() {
        words.push(lit("--modulepath"));
        let mut joined = Word::new();
        for (i, m) in settings.modulepath.iter().enumerate() {
            if i > 0 {
                joined.push(Piece::Lit(":".into()));
            }
            joined.extend(under_root(m));
        }
        words.push(joined);
    }
    words.push(under_root(&settings.manifest));
    words.extend(extra.iter().cloned());
    words.extend(settings.puppet_args.iter().map(lit));
    words
}

/// Renders words for a shell, with `root` (already a shell expression) for the checkout root.
fn render_shell(words: &[Word], root: &str) -> String {
    words
        .iter()
        .map(|word| {
            word.iter()
                .map(|piece| match piece {
                    Piece::Lit(text) if text.is_empty() => String::new(),
                    Piece::Lit(text) => quote(text),
                    Piece::Root => root.to_string(),
                })
                .collect::<String>()
        })
        .map(|w| if w.is_empty() { "''".to_string() } else { w })
        .collect::<Vec<_>>()
        .join(" ")
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

/// Puppet options that send its run summary, run report, state and a JSON log into a results
/// directory (the words' [`Piece::Root`]), where capo reads them back: capo's runs never
/// overwrite Puppet's own last-run files, and a plan leaves no trace in Puppet's state.
fn result_files(show_diff: bool) -> Vec<Word> {
    let in_dir = |file: &str| vec![Piece::Root, Piece::Lit(format!("/{file}"))];
    let mut words = vec![
        lit("--lastrunfile"),
        in_dir("summary.yaml"),
        lit("--lastrunreport"),
        in_dir("report.yaml"),
        lit("--statefile"),
        in_dir("state.yaml"),
        lit("--transactionstorefile"),
        in_dir("transactionstore.yaml"),
        lit("--logdest"),
        in_dir("log.jsonl"),
        lit("--logdest"),
        lit("console"),
    ];
    if show_diff {
        words.push(lit("--show_diff"));
    }
    words
}

/// The apply step: `puppet apply --detailed-exitcodes ...` in `repo_dir`, with its results
/// written to a fresh temporary directory on the host (see [`collect`]).
pub fn apply(settings: &Settings, holder: &str, deadline: Duration, show_diff: bool) -> Step {
    let command = apply_command(settings, &[]);
    let display = render_display(&command, &settings.repo_dir);
    let root = quote(&settings.repo_dir);
    let results = render_shell(&result_files(show_diff), "\"$r\"");
    let inner = format!(
        "{lock}\
         cd -- {root} || exit 1\n\
         command -v {puppet} >/dev/null 2>&1 || {{ echo '{MARK}fail=no-puppet'; echo \"{MARK}path=$PATH\"; exit 127; }}\n\
         r=$(mktemp -d \"${{TMPDIR:-/tmp}}/capo-run.XXXXXX\") || exit 1\n\
         echo \"{MARK}results=$r\"\n\
         exec {command} {results}\n",
        lock = step_lock(settings, holder),
        puppet = quote(&settings.puppet),
        command = render_shell(&command, &root),
    );
    Step {
        name: StepName::Apply,
        display,
        script: deadline_wrapper(&inner, deadline),
    }
}

/// An ad-hoc command, under the same host-side deadline as every step. Its words are joined
/// with spaces and run by `sh -c`, as `ssh host CMD...` joins them for the remote shell.
pub fn exec(command: &str, deadline: Duration) -> Step {
    Step {
        name: StepName::Exec,
        display: command.to_string(),
        script: deadline_wrapper(command, deadline),
    }
}

/// Kills a step's whole process tree (see [`deadline_wrapper`]): TERM, then KILL for whatever
/// is still there after 2 s.
pub fn kill(pid: u32) -> String {
    sh_c(&format!("{TREE_FN}stop_tree \"$(tree {pid})\"\nexit 0\n"))
}

/// The marker lines a script printed, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Marks(Vec<(String, String)>);

impl Marks {
    /// Reads every `::capo:KEY=VALUE` line of `stdout`.
    pub fn parse(stdout: &[u8]) -> Marks {
        let text = String::from_utf8_lossy(stdout);
        Marks(
            text.lines()
                .filter_map(|l| l.strip_prefix(MARK))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
                .collect(),
        )
    }

    /// Adds the marks of another chunk of output (e.g. the tail after the head).
    pub fn extend(&mut self, other: Marks) {
        self.0.extend(other.0);
    }

    /// The last non-empty value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The pid a step printed (its process group on the host).
    pub fn pid(&self) -> Option<u32> {
        self.get("pid").and_then(|p| p.parse().ok())
    }
}

/// `stdout` with capo's marker lines removed.
pub fn strip_marks(stdout: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stdout.len());
    for line in stdout.split_inclusive(|&b| b == b'\n') {
        if !line.starts_with(MARK.as_bytes()) {
            out.extend_from_slice(line);
        }
    }
    out
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
        Some("no-repo-dir") => format!(
            "repo_dir {dir} does not exist on the host; clone the control repo there (git clone URL {dir})"
        ),
        Some("not-a-repo") => format!(
            "repo_dir {dir} is not a git checkout; remove it and clone the control repo there"
        ),
        Some("fetch") => format!("git fetch {} failed: {}", settings.remote, first_error()),
        Some("rev-not-found") => match rev {
            Some(rev) => format!("revision {rev} not found on {}", settings.remote),
            None => format!("branch {upstream} not found after fetching {}", settings.remote),
        },
        Some("archive") => format!("cannot copy the target revision out of {dir}: {}", first_error()),
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

    fn settings(extra: &str) -> Settings {
        let text = format!("[defaults]\n{extra}\n[hosts.h1]\n");
        let inv = Inventory::parse(&text, Path::new("inv.toml")).expect("inventory parses");
        inv.hosts[0].settings.clone()
    }

    fn run_sh(script: &str) -> std::process::Output {
        // The scripts start with `sh -c '...'`: hand that to a local shell as sshd would.
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh runs")
    }

    #[test]
    fn apply_command_quotes_every_value() {
        let s = settings(
            "repo_dir = \"/srv/my repo's\"\ncertname = \"web'1\"\npuppet_args = [\"--tags\", \"a;b\"]",
        );
        assert_eq!(
            apply(&s, "h", Duration::from_secs(5), false).display,
            "puppet apply --detailed-exitcodes --color=false --certname 'web'\\''1' \
             --modulepath '/srv/my repo'\\''s/modules' '/srv/my repo'\\''s/manifests/site.pp' --tags 'a;b'"
        );
    }

    #[test]
    fn sync_command_quotes_branch() {
        let s = settings("branch = \"main;touch /tmp/pwned\"");
        let step = sync(&s, "h", Duration::from_secs(5));
        assert_eq!(
            step.display,
            "git pull --ff-only origin 'main;touch /tmp/pwned'"
        );
        assert!(step.script.starts_with("sh -c '"));
    }

    #[test]
    fn sync_script_reports_a_directory_that_is_not_a_repo() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = settings(&format!(
            "repo_dir = {:?}",
            dir.path().display().to_string()
        ));
        let out = run_sh(&sync(&s, "h", Duration::from_secs(5)).script);
        assert_eq!(out.status.code(), Some(1));
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("fail"), Some("not-a-repo"));
        assert!(marks.pid().is_some());
    }

    /// Whether `pid` has exited within 3 s (a zombie waiting to be reaped counts as exited).
    fn gone(pid: &str) -> bool {
        for _ in 0..30 {
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => return true,
                Ok(stat)
                    if stat
                        .rsplit(')')
                        .next()
                        .map(str::trim_start)
                        .is_some_and(|r| r.starts_with('Z')) =>
                {
                    return true
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        false
    }

    #[test]
    fn the_deadline_kills_the_whole_tree_on_the_host() {
        // A child in its own session (as Puppet runs `exec` resources) must die too.
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("pid");
        let inner = format!(
            "setsid sh -c 'echo $$ > {}; exec sleep 30' & wait",
            pidfile.display()
        );
        let started = std::time::Instant::now();
        let out = run_sh(&deadline_wrapper(&inner, Duration::from_millis(500)));
        assert!(started.elapsed() < Duration::from_secs(5));
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("deadline"), Some("0.500"));
        let pid = std::fs::read_to_string(&pidfile).expect("pid written");
        assert!(gone(pid.trim()), "the setsid child survived the deadline");
    }

    #[test]
    fn kill_stops_a_running_step_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("pid");
        let inner = format!(
            "setsid sh -c 'echo $$ > {}; exec sleep 30' & wait",
            pidfile.display()
        );
        let mut step = Command::new("sh")
            .arg("-c")
            .arg(deadline_wrapper(&inner, Duration::from_secs(60)))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let wrapper = step.id();
        for _ in 0..50 {
            if pidfile.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let pid = std::fs::read_to_string(&pidfile).expect("pid written");
        // The wrapper printed its own pid: `sh -c 'sh -c ...'` execs, so it is the spawned one
        // or its child; read it from the marker instead of guessing.
        let mut first = String::new();
        {
            use std::io::BufRead;
            let out = step.stdout.as_mut().expect("stdout");
            std::io::BufReader::new(out)
                .read_line(&mut first)
                .expect("read");
        }
        let marked: u32 = first
            .trim()
            .strip_prefix("::capo:pid=")
            .and_then(|p| p.parse().ok())
            .unwrap_or(wrapper);
        let killed = run_sh(&kill(marked));
        assert_eq!(killed.status.code(), Some(0));
        let status = step.wait().expect("wait");
        assert!(!status.success());
        assert!(gone(pid.trim()), "the setsid child survived the kill");
    }

    #[test]
    fn missing_puppet_is_reported_with_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = settings(&format!(
            "repo_dir = {:?}\npuppet = \"no-such-puppet\"",
            dir.path().display().to_string()
        ));
        let out = run_sh(&apply(&s, "h", Duration::from_secs(5), false).script);
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
        let mut first = Command::new("sh")
            .arg("-c")
            .arg(lock(&s, "run A from ctl (pid 1)"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut line = String::new();
        {
            use std::io::BufRead;
            let out = first.stdout.as_mut().expect("stdout");
            std::io::BufReader::new(out)
                .read_line(&mut line)
                .expect("read");
        }
        assert_eq!(line, "::capo:lock=ok\n");
        let second = run_sh(&lock(&s, "run B"));
        assert_eq!(second.status.code(), Some(LOCKED_EXIT as i32));
        let marks = Marks::parse(&second.stdout);
        assert_eq!(
            locked_error(&marks).message,
            "host is locked by run A from ctl (pid 1)"
        );
        // Closing the first holder's stdin releases the lock.
        drop(first.stdin.take());
        first.wait().expect("wait");
        let mut third = Command::new("sh")
            .arg("-c")
            .arg(lock(&s, "run C"))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run");
        third.stdout.truncate(16);
        assert_eq!(String::from_utf8_lossy(&third.stdout), "::capo:lock=ok\n");
    }

    #[test]
    fn marks_are_parsed_and_stripped() {
        let out = b"::capo:pid=42\n::capo:rev-before=abc\nAlready up to date.\n::capo:rev-after=def\n::capo:dirty= M a\n::capo:dirty=?? b\n";
        let marks = Marks::parse(out);
        assert_eq!(marks.get("rev-before"), Some("abc"));
        assert_eq!(marks.get("rev-after"), Some("def"));
        assert_eq!(marks.pid(), Some(42));
        assert_eq!(marks.all("dirty").collect::<Vec<_>>(), ["M a", "?? b"]);
        assert_eq!(strip_marks(out), b"Already up to date.\n");
        assert_eq!(
            Marks::parse(b"::capo:rev-before=\n").get("rev-before"),
            None
        );
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
}
