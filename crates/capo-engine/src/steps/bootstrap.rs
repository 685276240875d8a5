//! `capo bootstrap`'s one step (`capo-bootstrap`), and what its failures mean.

use std::time::Duration;

use capo_inventory::Settings;
use capo_scripts::{join, Call, Marks, Script};

use super::{apply_command, classify_modules_failure, install_command, lit, render_display, Step};
use crate::outcome::{last_line, ErrorKind, HostError, StepName};

/// The bootstrap step (`capo-bootstrap`): git and Puppet looked for (installed with
/// `install`), `url` cloned into an absent or empty `repo_dir` with the inventory's
/// `remote` as the clone's remote name and its `branch` checked out (at exactly `rev` when
/// given), the Puppetfile's modules installed, and `puppet apply --noop` of the clone; a
/// `repo_dir` that already is a checkout of `url` is left alone. See `bootstrap.sh`.
pub fn bootstrap(
    settings: &Settings,
    url: &str,
    rev: Option<&str>,
    install: bool,
    deadline: Duration,
) -> Step {
    let mut display = join([
        "git",
        "clone",
        "-o",
        settings.remote.as_str(),
        "-b",
        settings.branch.as_str(),
        url,
        settings.repo_dir.as_str(),
    ]);
    if let Some(rev) = rev {
        display = format!("{display} && {}", join(["git", "reset", "--hard", rev]));
    }
    let noop = render_display(
        &apply_command(settings, &[lit("--noop")]),
        &settings.repo_dir,
    );
    let mut args = vec![
        settings.repo_dir.clone(),
        url.to_string(),
        settings.remote.clone(),
        settings.branch.clone(),
        rev.unwrap_or_default().to_string(),
        if install { "1" } else { "0" }.to_string(),
        settings.puppetfile.as_str().to_string(),
        settings.puppet.clone(),
        settings.environment.clone(),
        settings.manifest.clone().unwrap_or_default(),
        settings.modulepath.as_deref().unwrap_or_default().join(":"),
        settings.certname.clone().unwrap_or_default(),
    ];
    args.extend(settings.puppet_args.iter().cloned());
    Step::new(
        StepName::Bootstrap,
        format!("{display} && {noop}"),
        Call::step(Script::Bootstrap, args, deadline),
    )
}

/// Why git and/or Puppet (`missing`: the script's words, `git` and `puppet`) being absent
/// stops a bootstrap, with the command that installs them with the host's package manager
/// `pkg` (as `check.sh` names it). Kind `sync` when git is missing (nothing can be
/// cloned), else `puppet`.
pub fn missing_tools(
    settings: &Settings,
    missing: &[&str],
    pkg: Option<&str>,
    path: &str,
) -> HostError {
    let git = missing.contains(&"git");
    let names: Vec<&str> = missing
        .iter()
        .map(|m| {
            if *m == "puppet" {
                settings.puppet.as_str()
            } else {
                m
            }
        })
        .collect();
    let packages = missing.join(" ");
    let (what, them) = match names.as_slice() {
        [one] => (one.to_string(), "it"),
        _ => (names.join(" and "), "them"),
    };
    HostError::new(
        if git { ErrorKind::Sync } else { ErrorKind::Puppet },
        format!(
            "{what} not found on host (PATH={path}); install {them} ({}) or run capo bootstrap with --install",
            install_command(pkg, &packages)
        ),
    )
}

/// Explains in one line why a bootstrap stopped before its noop apply ran, from the step's
/// markers and output. A `repo_dir` holding something else is kind `sync` and says that it
/// was left alone.
pub fn classify_bootstrap_failure(
    settings: &Settings,
    url: &str,
    rev: Option<&str>,
    marks: &Marks,
    stdout: &str,
    stderr: &str,
) -> HostError {
    let dir = &settings.repo_dir;
    let left = "capo bootstrap leaves it alone";
    let first_error = || {
        stderr
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("fatal:") || l.starts_with("error:") || l.starts_with("E:"))
            .or_else(|| last_line(stderr))
            .unwrap_or("no output")
            .to_string()
    };
    let missing: Vec<&str> = marks
        .get("missing")
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let sync = |message: String| HostError::new(ErrorKind::Sync, message);
    match marks.get("fail") {
        Some("not-a-dir") => sync(format!(
            "repo_dir {dir} exists and is not a directory; {left} (remove it, or set repo_dir to an empty or missing directory)"
        )),
        Some("unreadable") => sync(format!(
            "repo_dir {dir} cannot be listed by {}; {left}",
            marks.get("user").unwrap_or("the remote user")
        )),
        Some("occupied") => {
            let why = marks.get("why").filter(|w| !w.is_empty() && w.contains("dubious"));
            sync(match why {
                Some(why) => format!(
                    "repo_dir {dir} is not empty and git refuses it ({why}); {left}"
                ),
                None => format!(
                    "repo_dir {dir} is not empty and not a git checkout; {left} (empty it, or set repo_dir to an empty or missing directory)"
                ),
            })
        }
        Some("other-repo") => {
            let remote = &settings.remote;
            let found = match marks.get("found-url").filter(|f| !f.is_empty()) {
                Some(found) => format!("its remote {remote} is {found}"),
                None => format!("it has no remote {remote}"),
            };
            sync(format!(
                "repo_dir {dir} holds a checkout of another repository ({found}, not {url}); {left}"
            ))
        }
        Some("missing") => missing_tools(
            settings,
            &missing,
            marks.get("pkg").filter(|p| !p.is_empty()),
            marks.get("search-path").unwrap_or("?"),
        ),
        Some("install") => {
            let kind = if missing.contains(&"git") {
                ErrorKind::Sync
            } else {
                ErrorKind::Puppet
            };
            let how = install_command(marks.get("pkg").filter(|p| !p.is_empty()), &missing.join(" "));
            let message = if marks.get("why") == Some("still-missing") {
                format!(
                    "{how} succeeded, but {} is still not found on host (PATH={})",
                    missing.join(" or "),
                    marks.get("search-path").unwrap_or("?")
                )
            } else if marks.get("pkg").is_none_or(str::is_empty) {
                format!("cannot install {}: no package manager found (apt-get, dnf, yum, zypper, apk)", missing.join(" "))
            } else {
                format!("{how} failed: {}", first_error())
            };
            HostError::new(kind, message)
        }
        Some("clone") => sync(format!("git clone {url} failed: {}", first_error())),
        Some("rev-not-found") => sync(format!(
            "revision {} not found in {url}; the clone was removed again",
            rev.unwrap_or("?")
        )),
        Some("no-installer" | "modules") => {
            let e = classify_modules_failure(settings, marks, stdout, stderr);
            HostError::new(
                e.kind,
                format!("{}; the clone stays in {dir}", e.message),
            )
        }
        other => HostError::new(
            ErrorKind::Internal,
            format!(
                "capo-bootstrap ended without saying why ({})",
                other.unwrap_or("no marker")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::steps::tests::settings;

    #[test]
    fn the_step_passes_every_value_as_an_argument() {
        let s = settings(
            "repo_dir = \"/srv/new puppet\"\nbranch = \"prod\"\nremote = \"up\"\npuppet_args = [\"--tags\", \"a;b\"]",
        );
        let step = bootstrap(
            &s,
            "/x/origin.git;id",
            Some("v1"),
            true,
            Duration::from_secs(9),
        );
        assert_eq!(step.name, StepName::Bootstrap);
        assert_eq!(
            step.display,
            "git clone -o up -b prod '/x/origin.git;id' '/srv/new puppet' && git reset --hard v1 \
             && puppet apply --detailed-exitcodes --color=false --environment production --noop --tags 'a;b'"
        );
        assert_eq!(
            step.call.args,
            [
                "/srv/new puppet",
                "/x/origin.git;id",
                "up",
                "prod",
                "v1",
                "1",
                "r10k",
                "puppet",
                "production",
                "",
                "",
                "",
                "--tags",
                "a;b"
            ]
        );
        assert_eq!(Call::parse(&step.script()), Some(step.call.clone()));
        let plain = bootstrap(&s, "u", None, false, Duration::from_secs(9));
        assert!(plain
            .display
            .starts_with("git clone -o up -b prod u '/srv/new puppet' && puppet apply"));
        assert_eq!(plain.call.args[4], "");
        assert_eq!(plain.call.args[5], "0");
    }

    #[test]
    fn missing_tools_say_how_to_install_them() {
        let s = settings("puppet = \"no-such-puppet\"");
        let e = missing_tools(&s, &["puppet"], Some("apt"), "/usr/bin:/bin");
        assert_eq!(e.kind, ErrorKind::Puppet);
        assert_eq!(
            e.message,
            "no-such-puppet not found on host (PATH=/usr/bin:/bin); install it (apt-get install puppet) or run capo bootstrap with --install"
        );
        let e = missing_tools(&s, &["git", "puppet"], Some("dnf"), "/bin");
        assert_eq!(e.kind, ErrorKind::Sync);
        assert_eq!(
            e.message,
            "git and no-such-puppet not found on host (PATH=/bin); install them (dnf install git puppet) or run capo bootstrap with --install"
        );
        let e = missing_tools(&s, &["git"], Some("apk"), "/bin");
        assert_eq!(e.kind, ErrorKind::Sync);
        assert!(e.message.contains("(apk add git)"), "{}", e.message);
        let e = missing_tools(&s, &["git"], None, "/bin");
        assert!(e.message.contains("(install git)"), "{}", e.message);
    }

    #[test]
    fn failures_are_explained_with_their_kind() {
        let s = settings("repo_dir = \"/srv/p\"");
        let why = |out: &str, stderr: &str| {
            let marks = Marks::parse(out.as_bytes());
            classify_bootstrap_failure(&s, "/o.git", Some("v9"), &marks, "", stderr)
        };
        let e = why("::capo:fail=other-repo\n::capo:found-url=/else.git\n", "");
        assert_eq!(e.kind, ErrorKind::Sync);
        assert_eq!(
            e.message,
            "repo_dir /srv/p holds a checkout of another repository (its remote origin is /else.git, not /o.git); capo bootstrap leaves it alone"
        );
        let e = why("::capo:fail=other-repo\n::capo:found-url=\n", "");
        assert!(
            e.message.contains("(it has no remote origin, not /o.git)"),
            "{}",
            e.message
        );
        let e = why(
            "::capo:fail=occupied\n::capo:why=fatal: not a git repository\n",
            "",
        );
        assert_eq!(
            e.message,
            "repo_dir /srv/p is not empty and not a git checkout; capo bootstrap leaves it alone (empty it, or set repo_dir to an empty or missing directory)"
        );
        let e = why("::capo:fail=not-a-dir\n", "");
        assert!(
            e.message
                .starts_with("repo_dir /srv/p exists and is not a directory"),
            "{}",
            e.message
        );
        let e = why(
            "::capo:fail=clone\n",
            "Cloning...\nfatal: repository '/o.git' does not exist\n",
        );
        assert_eq!(e.kind, ErrorKind::Sync);
        assert_eq!(
            e.message,
            "git clone /o.git failed: fatal: repository '/o.git' does not exist"
        );
        let e = why("::capo:fail=rev-not-found\n", "");
        assert_eq!(
            e.message,
            "revision v9 not found in /o.git; the clone was removed again"
        );
        let e = why(
            "::capo:pkg=apt\n::capo:missing=puppet\n::capo:fail=install\n",
            "E: Unable to locate package puppet\n",
        );
        assert_eq!(e.kind, ErrorKind::Puppet);
        assert_eq!(
            e.message,
            "apt-get install puppet failed: E: Unable to locate package puppet"
        );
        let e = why("::capo:pkg=\n::capo:missing=git\n::capo:fail=install\n", "");
        assert_eq!(e.kind, ErrorKind::Sync);
        assert_eq!(
            e.message,
            "cannot install git: no package manager found (apt-get, dnf, yum, zypper, apk)"
        );
        let e = why(
            "::capo:pkg=apt\n::capo:missing=git puppet\n::capo:search-path=/bin\n::capo:fail=missing\n",
            "",
        );
        assert_eq!(e.kind, ErrorKind::Sync);
        assert!(
            e.message.contains("(apt-get install git puppet)"),
            "{}",
            e.message
        );
        assert_eq!(why("", "").kind, ErrorKind::Internal);
    }
}
