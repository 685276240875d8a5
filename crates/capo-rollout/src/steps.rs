//! The remote steps: the exact scripts sent to a host, and how their output is read back.

use capo_inventory::Settings;

use crate::outcome::{last_line, ErrorKind, HostError, StepName};
use crate::shell::{join, quote};

/// Marker lines the sync script prints on stdout so that one exec channel can report the HEAD
/// before and after the pull; they are stripped from the output shown to people.
const MARK_BEFORE: &str = "::capo:rev-before=";
const MARK_AFTER: &str = "::capo:rev-after=";
const MARK_FAIL: &str = "::capo:fail=";

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

/// The sync step: `git pull --ff-only REMOTE BRANCH` in `repo_dir`, recording HEAD around it.
pub fn sync(settings: &Settings) -> Step {
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
    let script = format!(
        "cd -- {dir} 2>/dev/null || {{ echo '{MARK_FAIL}no-repo-dir'; exit 1; }}\n\
         git rev-parse --git-dir >/dev/null 2>&1 || {{ echo '{MARK_FAIL}not-a-repo'; exit 1; }}\n\
         echo \"{MARK_BEFORE}$(git rev-parse --verify -q HEAD)\"\n\
         LC_ALL=C GIT_TERMINAL_PROMPT=0 {pull}\n\
         rc=$?\n\
         echo \"{MARK_AFTER}$(git rev-parse --verify -q HEAD)\"\n\
         exit $rc\n"
    );
    Step {
        name: StepName::Sync,
        display: pull,
        script: sh_c(&script),
    }
}

/// The words of the `puppet apply` command line, with paths made absolute under `repo_dir`.
pub fn apply_words(settings: &Settings) -> Vec<String> {
    let under_repo = |p: &str| {
        if p.starts_with('/') {
            p.to_string()
        } else {
            format!("{}/{}", settings.repo_dir.trim_end_matches('/'), p)
        }
    };
    let mut words = vec![
        settings.puppet.clone(),
        "apply".into(),
        "--detailed-exitcodes".into(),
        // Colour codes would end up in logs and reports; the terminal shows a table anyway.
        "--color=false".into(),
    ];
    if let Some(certname) = &settings.certname {
        words.push("--certname".into());
        words.push(certname.clone());
    }
    let modulepath: Vec<String> = settings.modulepath.iter().map(|m| under_repo(m)).collect();
    if !modulepath.is_empty() {
        words.push("--modulepath".into());
        words.push(modulepath.join(":"));
    }
    words.push(under_repo(&settings.manifest));
    words.extend(settings.puppet_args.iter().cloned());
    words
}

/// The apply step: `puppet apply --detailed-exitcodes ...` in `repo_dir`.
pub fn apply(settings: &Settings) -> Step {
    let display = join(apply_words(settings));
    let script = format!(
        "cd -- {} || exit 1\nexec {display}\n",
        quote(&settings.repo_dir)
    );
    Step {
        name: StepName::Apply,
        display,
        script: sh_c(&script),
    }
}

/// What the sync script reported besides git's own output.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncMarks {
    /// HEAD before the pull (None if the checkout has no commit or was not reached).
    pub before: Option<String>,
    /// HEAD after the pull.
    pub after: Option<String>,
    /// A failure the script detected before running git.
    pub fail: Option<String>,
}

/// Reads the marker lines out of the sync step's stdout.
pub fn parse_sync_marks(stdout: &str) -> SyncMarks {
    let mut marks = SyncMarks::default();
    for line in stdout.lines() {
        let rev = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
        if let Some(v) = line.strip_prefix(MARK_BEFORE) {
            marks.before = rev(v);
        } else if let Some(v) = line.strip_prefix(MARK_AFTER) {
            marks.after = rev(v);
        } else if let Some(v) = line.strip_prefix(MARK_FAIL) {
            marks.fail = rev(v);
        }
    }
    marks
}

/// The sync step's stdout with capo's marker lines removed.
pub fn strip_sync_marks(stdout: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stdout.len());
    for line in stdout.split_inclusive(|&b| b == b'\n') {
        if !line.starts_with(b"::capo:") {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Explains a failed sync in one line.
pub fn classify_sync_failure(settings: &Settings, marks: &SyncMarks, stderr: &str) -> HostError {
    let dir = &settings.repo_dir;
    let message = match marks.fail.as_deref() {
        Some("no-repo-dir") => format!(
            "repo_dir {dir} does not exist on the host; clone the control repo there (git clone URL {dir})"
        ),
        Some("not-a-repo") => format!(
            "repo_dir {dir} is not a git checkout; remove it and clone the control repo there"
        ),
        _ => {
            let hint = stderr
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
                .or_else(|| last_line(stderr))
                .unwrap_or("no output");
            format!(
                "git pull --ff-only {} {} failed: {hint}",
                settings.remote, settings.branch
            )
        }
    };
    HostError::new(ErrorKind::Sync, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use capo_inventory::Inventory;
    use std::path::Path;

    fn settings(extra: &str) -> Settings {
        let text = format!("[defaults]\n{extra}\n[hosts.h1]\n");
        let inv = Inventory::parse(&text, Path::new("inv.toml")).expect("inventory parses");
        inv.hosts[0].settings.clone()
    }

    #[test]
    fn apply_command_quotes_every_value() {
        let s = settings(
            "repo_dir = \"/srv/my repo's\"\ncertname = \"web'1\"\npuppet_args = [\"--tags\", \"a;b\"]",
        );
        assert_eq!(
            apply(&s).display,
            "puppet apply --detailed-exitcodes --color=false --certname 'web'\\''1' \
             --modulepath '/srv/my repo'\\''s/modules' '/srv/my repo'\\''s/manifests/site.pp' --tags 'a;b'"
        );
    }

    #[test]
    fn sync_command_quotes_branch() {
        let s = settings("branch = \"main;touch /tmp/pwned\"");
        let step = sync(&s);
        assert_eq!(
            step.display,
            "git pull --ff-only origin 'main;touch /tmp/pwned'"
        );
        assert!(step.script.starts_with("sh -c '"));
    }

    #[test]
    fn sync_script_runs_under_sh_and_reports_marks() {
        // Run the real script against a directory that is not a repository.
        let dir = tempfile::tempdir().expect("tempdir");
        let s = settings(&format!(
            "repo_dir = {:?}",
            dir.path().display().to_string()
        ));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(sync(&s).script)
            .output()
            .expect("sh runs");
        assert_eq!(out.status.code(), Some(1));
        let marks = parse_sync_marks(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(marks.fail.as_deref(), Some("not-a-repo"));
    }

    #[test]
    fn marks_are_parsed_and_stripped() {
        let out = "::capo:rev-before=abc\nAlready up to date.\n::capo:rev-after=def\n";
        let marks = parse_sync_marks(out);
        assert_eq!(marks.before.as_deref(), Some("abc"));
        assert_eq!(marks.after.as_deref(), Some("def"));
        assert_eq!(strip_sync_marks(out.as_bytes()), b"Already up to date.\n");
        assert_eq!(parse_sync_marks("::capo:rev-before=\n").before, None);
    }

    #[test]
    fn sync_failure_names_git_fatal_line() {
        let s = settings("");
        let err = classify_sync_failure(
            &s,
            &SyncMarks::default(),
            "remote: x\nfatal: couldn't find remote ref nope\n",
        );
        assert_eq!(err.kind, ErrorKind::Sync);
        assert_eq!(
            err.message,
            "git pull --ff-only origin main failed: fatal: couldn't find remote ref nope"
        );
    }
}
