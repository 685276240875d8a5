//! The scripts run for real, under dash and bash as `sh`, and the command line under every
//! login shell that is installed (sh, dash, bash, csh, tcsh, fish).

use super::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The shells `sh` may be on a host.
const SHS: [&str; 2] = ["dash", "bash"];

/// Login shells the command line must survive.
const LOGIN_SHELLS: [&str; 6] = ["sh", "dash", "bash", "csh", "tcsh", "fish"];

/// Words a value from an inventory could hold, each a trap for some shell.
const HOSTILE: [&str; 12] = [
    "it's",
    "!x !! !$",
    "new\nline",
    "$(id) `id` $HOME",
    "back\\slash \\' \\\\",
    "h\u{e9}llo \u{1f980} \u{65e5}\u{672c}",
    "\"dq\" %s %b \\n",
    "",
    "-n",
    "*?[] ~ {a,b} #c",
    "tab\there",
    "a;b|c&d>e<f",
];

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// A directory whose `sh` is `shell`, to put first on PATH.
fn sh_dir(shell: &str) -> Option<tempfile::TempDir> {
    let target = which(shell)?;
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(target, dir.path().join("sh")).expect("symlink");
    Some(dir)
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let old = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(&old));
    std::env::join_paths(paths).expect("PATH")
}

/// `login -c LINE` as sshd runs it, with `sh` being `shell`.
fn command(login: &str, shell: &Path, line: &str) -> Command {
    let mut cmd = Command::new(login);
    cmd.arg("-c").arg(line).env("PATH", path_with(shell));
    if login.ends_with("fish") {
        // fish wants a writable config home; keep the user's out of it.
        cmd.env("XDG_CONFIG_HOME", shell)
            .env("XDG_DATA_HOME", shell);
    }
    cmd
}

/// A shell that is not installed is skipped on a developer's machine, but fails CI (`CI` set),
/// where scripts/install-deps.sh installs every one of them: a skipped check passes nothing.
fn skip(shell: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{shell} is not installed; CI must test every shell (scripts/install-deps.sh)"
    );
    eprintln!("note: {shell} is not installed; skipped");
}

/// Runs `call` as sshd would with login shell `sh`, for each `sh` in [`SHS`].
fn each_sh(mut test: impl FnMut(&str, &dyn Fn(&Call) -> Output, &Path)) {
    for shell in SHS {
        let Some(dir) = sh_dir(shell) else {
            skip(shell);
            continue;
        };
        let run = |call: &Call| {
            command("sh", dir.path(), &call.command_line())
                .stdin(Stdio::null())
                .output()
                .expect("run")
        };
        test(shell, &run, dir.path());
    }
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// An origin repository with one commit, and a clone of it; returns (origin, clone).
fn repos(root: &Path) -> (PathBuf, PathBuf) {
    let origin = root.join("origin");
    let clone = root.join("clone");
    std::fs::create_dir_all(&origin).expect("mkdir");
    git(&origin, &["init", "-q", "-b", "main"]);
    std::fs::write(origin.join("site.pp"), "node default {}\n").expect("write");
    git(&origin, &["add", "-A"]);
    git(&origin, &["commit", "-q", "-m", "one"]);
    git(
        root,
        &["clone", "-q", origin.to_str().expect("utf-8"), "clone"],
    );
    (origin, clone)
}

fn path(p: &Path) -> String {
    p.to_str().expect("utf-8").to_string()
}

#[test]
fn every_file_is_valid_sh_as_written_and_as_sent() {
    for shell in SHS {
        let Some(sh) = which(shell) else { continue };
        let mut texts: Vec<(String, String)> = Script::ALL
            .iter()
            .filter_map(|s| s.file().map(|(n, t)| (n.to_string(), t.to_string())))
            .collect();
        texts.extend(Script::ALL.iter().map(|s| (s.id().into(), s.text().into())));
        texts.push(("lib-proc.sh".into(), LIB_PROC.into()));
        texts.push(("lib-step.sh".into(), LIB_STEP.into()));
        texts.push(("lib-record.sh".into(), LIB_RECORD.into()));
        texts.push(("wrap.sh".into(), wrap_text().into()));
        for (name, text) in texts {
            let out = Command::new(&sh)
                .args(["-n", "-c", &text])
                .output()
                .expect("sh -n");
            assert!(out.status.success(), "{shell} -n {name}: {out:?}");
        }
    }
}

#[test]
fn each_file_says_its_id_and_how_to_run_it() {
    for script in Script::ALL {
        let Some((name, text)) = script.file() else {
            continue;
        };
        assert!(text.starts_with("#!/bin/sh\n"), "{name}");
        let header: String = text.lines().take(3).collect::<Vec<_>>().join("\n");
        assert!(header.contains(&format!("# {}: ", script.id())), "{name}");
        assert!(text.contains(&format!("# Usage:   sh {name} ")), "{name}");
        // Markers are written with the one prefix.
        assert!(!text.contains("::capo") || text.contains(MARK), "{name}");
    }
    assert!(Script::Plan
        .text()
        .contains(&format!("git log -n {INCOMING_SHOWN} ")));
}

#[test]
fn command_lines_are_one_line_and_read_back() {
    let t = Duration::from_millis(1500);
    let calls = [
        Call::plain(Script::Lock, ["/srv/puppet", HOSTILE[0]]),
        Call::plain(Script::Collect, ["/tmp/capo-run.x"]),
        Call::plain(Script::Kill, ["42"]),
        Call::step(Script::Sync, HOSTILE, t),
        Call::step(Script::Apply, ["/srv/p", "", "puppet"], t),
        Call::step(Script::Exec, ["echo 'hi' \"$HOME\" !x"], t),
    ];
    for call in calls {
        let line = call.command_line();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.is_ascii(), "{line}");
        // Nothing fish reads inside single quotes, and one pair of them.
        assert!(!line.contains("\\\\") && !line.contains('!'), "{line}");
        assert_eq!(line.matches('\'').count(), 2, "{line}");
        assert!(line.ends_with(&format!("' {}", call.script.id())));
        assert_eq!(Call::parse(&line), Some(call.clone()), "{line}");
    }
    assert_eq!(Call::parse("uname -r"), None);
    assert_eq!(Call::parse("sh -c 'true' capo-sync"), None);
    assert_eq!(
        Call::step(Script::Sync, ["r"], Duration::from_secs(300)).deadline_text(),
        Some("300.000".into())
    );
}

/// The command line as it was built before the script texts were escaped once per process:
/// the whole program, escaped byte by byte.
fn command_line_escaped_whole(call: &Call, sudo: Option<&Sudo>) -> String {
    use std::fmt::Write as _;
    let mut line = sudo.map(Sudo::prefix).unwrap_or_default();
    line.push_str("sh -c 'eval \"$(printf %b \"");
    for &b in call.program().as_bytes() {
        match b {
            b'\n' => line.push_str("\\n"),
            b'\\' | b'\'' | b'"' | b'$' | b'`' | b'!' => write!(line, "\\0{b:03o}").unwrap(),
            0x20..=0x7e => line.push(char::from(b)),
            _ => write!(line, "\\0{b:03o}").unwrap(),
        }
    }
    line.push_str("\")\"' ");
    line.push_str(call.script.id());
    line
}

#[test]
fn the_cached_escaping_gives_the_line_escaping_the_whole_program_gives() {
    let sudo = Sudo::new("root", None).unwrap();
    let args = [
        "/srv/p",
        "it's",
        "$(id) `x` \"q\" \\ !h",
        "caf\u{e9}\ttab\nline",
        "",
    ];
    for script in Script::ALL {
        for call in [
            Call::plain(script, args),
            Call::step(script, args, Duration::from_millis(2500)),
        ] {
            for sudo in [None, Some(&sudo)] {
                assert_eq!(
                    call.command_line_as(sudo),
                    command_line_escaped_whole(&call, sudo),
                    "{script:?} {:?}",
                    call.deadline
                );
            }
        }
    }
}

#[test]
fn arguments_survive_every_login_shell() {
    let Some(dir) = sh_dir("dash").or_else(|| sh_dir("bash")) else {
        return;
    };
    // `eval "$1"` with every argument after it: print them all.
    let mut args = vec!["for a; do printf '<%s>\\n' \"$a\"; done; printf '0=%s\\n' \"$0\""];
    args.extend(HOSTILE);
    let call = Call::plain(Script::Exec, args.clone());
    let mut expected: String = args.iter().map(|a| format!("<{a}>\n")).collect();
    expected.push_str("0=capo-exec\n");
    for login in LOGIN_SHELLS {
        if which(login).is_none() {
            skip(login);
            continue;
        }
        let out = command(login, dir.path(), &call.command_line())
            .stdin(Stdio::null())
            .output()
            .expect("run");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected,
            "login shell {login}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{login}");
    }
}

#[test]
fn a_wrapped_step_runs_under_every_login_shell() {
    let Some(dir) = sh_dir("dash").or_else(|| sh_dir("bash")) else {
        return;
    };
    let call = Call::step(
        Script::Exec,
        ["echo \"it's $0\" 'a!b'; exit 3"],
        Duration::from_secs(30),
    );
    for login in LOGIN_SHELLS {
        if which(login).is_none() {
            continue;
        }
        let out = command(login, dir.path(), &call.command_line())
            .stdin(Stdio::null())
            .output()
            .expect("run");
        let marks = Marks::parse(&out.stdout);
        assert!(marks.pid().is_some(), "{login}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&strip_marks(&out.stdout)),
            "it's sh a!b\n",
            "{login}"
        );
        assert_eq!(out.status.code(), Some(3), "{login}");
    }
}

#[test]
fn sync_reports_a_directory_that_is_not_a_repo_and_pulls_a_repo() {
    each_sh(|shell, run, _| {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Duration::from_secs(30);
        let out = run(&Call::step(
            Script::Sync,
            [path(dir.path()), "origin".into(), "main".into()],
            t,
        ));
        assert_eq!(out.status.code(), Some(1), "{shell}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("fail"), Some("not-a-repo"), "{shell}");
        assert!(marks.pid().is_some());

        let (origin, clone) = repos(dir.path());
        std::fs::write(origin.join("site.pp"), "node default { }\n").expect("write");
        git(&origin, &["commit", "-qam", "two"]);
        let out = run(&Call::step(
            Script::Sync,
            [path(&clone), "origin".into(), "main".into(), "run A".into()],
            t,
        ));
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        let marks = Marks::parse(&out.stdout);
        assert!(marks.get("rev-before").is_some());
        assert_ne!(marks.get("rev-before"), marks.get("rev-after"), "{shell}");
        let step = std::fs::read_to_string(clone.join(".git/capo.lock.step")).expect("step");
        assert_eq!(step, "run A\n");
        // A branch that is not there: the pull fails, with the counts.
        let out = run(&Call::step(
            Script::Sync,
            [path(&clone), "origin".into(), "no;such".into()],
            t,
        ));
        assert_eq!(out.status.code(), Some(1), "{shell}");
        assert!(Marks::parse(&out.stdout).get("rev-after").is_some());
    });
}

#[test]
fn sync_rev_and_plan_find_the_target_and_say_ahead() {
    each_sh(|shell, run, _| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (origin, clone) = repos(dir.path());
        git(&origin, &["tag", "v1"]);
        std::fs::write(origin.join("site.pp"), "node default { }\n").expect("write");
        git(&origin, &["commit", "-qam", "two"]);
        let t = Duration::from_secs(30);
        let sync = |rev: &str| {
            run(&Call::step(
                Script::SyncRev,
                [path(&clone), "origin".into(), rev.into()],
                t,
            ))
        };
        let out = sync("main");
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("target"), marks.get("rev-after"));
        let out = sync("v1");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("ahead"), Some("1"), "{shell}: {out:?}");
        let out = sync("nope");
        assert_eq!(Marks::parse(&out.stdout).get("fail"), Some("rev-not-found"));

        // A plan of an older tag is ahead; of main, with a puppet that prints its words.
        let bin = tempfile::tempdir().expect("tempdir");
        let puppet = bin.path().join("fake-puppet");
        // It runs in the copy, beside the environment link plan.sh made for it.
        std::fs::write(
            &puppet,
            "#!/bin/sh\nprintf '<%s>' \"$@\"; echo\n\
             [ -f site.pp ] && [ -f ../env/production/site.pp ] && echo copy-ok\nexit 2\n",
        )
        .expect("w");
        std::fs::set_permissions(&puppet, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let plan = |rev: &str| {
            run(&Call::step(
                Script::Plan,
                [
                    path(&clone),
                    "origin".into(),
                    "main".into(),
                    rev.into(),
                    "r10k".into(),
                    path(&puppet),
                    "production".into(),
                    "site.pp".into(),
                    "modules:/abs".into(),
                    "web'1".into(),
                    "1".into(),
                    "--tags".into(),
                    "a b".into(),
                ],
                t,
            ))
        };
        assert_eq!(
            Marks::parse(&plan("v1").stdout).get("ahead"),
            Some("1"),
            "{shell}"
        );
        let out = plan("");
        assert_eq!(out.status.code(), Some(2), "{shell}: {out:?}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("incoming-count"), Some("0"));
        let r = marks.get("results").expect("results").to_string();
        let target = marks.get("target").expect("target").to_string();
        let printed = String::from_utf8_lossy(&out.stdout).into_owned();
        let words = format!(
            "<apply><--detailed-exitcodes><--color=false><--environmentpath><{r}/env>\
             <--environment><production><--certname><web'1>\
             <--modulepath><{r}/code/modules:/abs><{r}/code/site.pp>\
             <--config_version></bin/echo {target}><--noop><--tags><a b>\
             <--lastrunfile><{r}/summary.yaml><--lastrunreport><{r}/report.yaml>\
             <--statefile><{r}/state.yaml><--transactionstorefile><{r}/transactionstore.yaml>\
             <--logdest><{r}/log.jsonl><--logdest><console><--show_diff>\ncopy-ok\n"
        );
        // Puppet's output, then its results (none: the fake writes no files), sent inline.
        let block = format!(
            "::capo:results-begin={r}\n\n::capo:eof=summary.yaml\n\n\
             ::capo:eof=report.yaml\n\n::capo:eof=log.jsonl\n::capo:results-end={r}\n"
        );
        assert!(
            printed.ends_with(&format!("::capo:modules=none\n{words}{block}")),
            "{shell}: {printed}"
        );
        assert!(!Path::new(&r).exists(), "{shell}: the plan removes {r}");
        // collect.sh, for a step that ended before it sent its results.
        let left = tempfile::Builder::new()
            .prefix("capo-plan.")
            .tempdir()
            .expect("tempdir");
        std::fs::write(left.path().join("summary.yaml"), "s: 1").expect("write");
        let r = path(left.path());
        let collected = run(&Call::plain(Script::Collect, [r.clone()]));
        assert_eq!(
            String::from_utf8_lossy(&collected.stdout),
            "s: 1\n::capo:eof=summary.yaml\n\n::capo:eof=report.yaml\n\n::capo:eof=log.jsonl\n"
        );
        assert!(!Path::new(&r).exists(), "collect removes {r}");
        let refused = run(&Call::plain(Script::Collect, ["/home"]));
        assert_eq!(refused.status.code(), Some(2));
    });
}

#[test]
fn apply_passes_the_words_and_reports_a_missing_puppet() {
    each_sh(|shell, run, _| {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Duration::from_secs(30);
        let args = |puppet: &str, inline: &str| {
            vec![
                path(dir.path()),
                String::new(),
                puppet.to_string(),
                "production".to_string(),
                "/etc/site.pp".to_string(),
                String::new(),
                String::new(),
                "0".to_string(),
                // No run record: STATE_DIR SOURCE RUN_ID BY STARTED REV_BEFORE all empty;
                // INLINE: "1" sends the results on stdout, empty leaves them for collect.sh.
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                inline.to_string(),
                "$(id)".to_string(),
            ]
        };
        let out = run(&Call::step(Script::Apply, args("no-such-puppet", ""), t));
        assert_eq!(out.status.code(), Some(127), "{shell}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("fail"), Some("no-puppet"));
        assert!(marks.get("path").is_some_and(|p| p.contains("/bin")));
        let out = run(&Call::step(Script::Apply, args("echo", ""), t));
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        let r = Marks::parse(&out.stdout)
            .get("results")
            .expect("results")
            .to_string();
        assert!(r.contains("/capo-run."), "{r}");
        assert_eq!(
            String::from_utf8_lossy(&strip_marks(&out.stdout)),
            format!(
                "apply --detailed-exitcodes --color=false --environmentpath {r}/env --environment production \
                 --modulepath {d}/modules /etc/site.pp $(id) --lastrunfile {r}/summary.yaml \
                 --lastrunreport {r}/report.yaml --statefile {r}/state.yaml --transactionstorefile \
                 {r}/transactionstore.yaml --logdest {r}/log.jsonl --logdest console\n",
                d = path(dir.path())
            )
        );
        assert!(
            Path::new(&r).is_dir(),
            "without INLINE, {r} stays for collect.sh"
        );
        let _ = std::fs::remove_dir_all(&r);

        // INLINE: the results follow Puppet's output between the two framing lines, and go.
        let out = run(&Call::step(Script::Apply, args("echo", "1"), t));
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let r = Marks::parse(&out.stdout)
            .get("results")
            .expect("results")
            .to_string();
        let block = format!(
            "--logdest console\n::capo:results-begin={r}\n\n::capo:eof=summary.yaml\n\n\
             ::capo:eof=report.yaml\n\n::capo:eof=log.jsonl\n::capo:results-end={r}\n"
        );
        assert!(stdout.ends_with(&block), "{shell}: {stdout}");
        assert!(
            !Path::new(&r).exists(),
            "{shell}: inline results remove {r}"
        );
    });
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
    each_sh(|shell, run, _| {
        // A child in its own session (as Puppet runs `exec` resources) must die too.
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("pid");
        let inner = format!(
            "setsid sh -c 'echo $$ > {}; exec sleep 30' & wait",
            pidfile.display()
        );
        let started = std::time::Instant::now();
        let out = run(&Call::step(
            Script::Exec,
            [inner],
            Duration::from_millis(500),
        ));
        assert!(started.elapsed() < Duration::from_secs(5), "{shell}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("deadline"), Some("0.500"), "{shell}");
        let pid = std::fs::read_to_string(&pidfile).expect("pid written");
        assert!(gone(pid.trim()), "{shell}: the setsid child survived");
    });
}

#[test]
fn kill_stops_a_running_step_tree() {
    each_sh(|shell, run, shdir| {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("pid");
        let inner = format!(
            "setsid sh -c 'echo $$ > {}; exec sleep 30' & wait",
            pidfile.display()
        );
        let call = Call::step(Script::Exec, [inner], Duration::from_secs(60));
        let mut step = command("sh", shdir, &call.command_line())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut first = String::new();
        BufReader::new(step.stdout.as_mut().expect("stdout"))
            .read_line(&mut first)
            .expect("read");
        let marked = Marks::parse(first.as_bytes()).pid().expect("pid marker");
        for _ in 0..50 {
            if pidfile.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let pid = std::fs::read_to_string(&pidfile).expect("pid written");
        let killed = run(&Call::plain(Script::Kill, [marked.to_string()]));
        assert_eq!(killed.status.code(), Some(0), "{shell}");
        let status = step.wait().expect("wait");
        assert!(!status.success(), "{shell}");
        assert!(
            gone(pid.trim()),
            "{shell}: the setsid child survived the kill"
        );
    });
}

/// Starts the lock holder; returns it (stdin held open) and its first line.
fn hold(shdir: &Path, call: &Call) -> (std::process::Child, String) {
    let mut child = command("sh", shdir, &call.command_line())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    (child, line)
}

#[test]
fn lock_is_exclusive_and_names_its_holder() {
    each_sh(|shell, run, shdir| {
        let dir = tempfile::tempdir().expect("tempdir");
        git(dir.path(), &["init", "-q"]);
        let repo = path(dir.path());
        let lock = |holder: &str| Call::plain(Script::Lock, [repo.as_str(), holder]);
        let (mut first, line) = hold(shdir, &lock("run A from ctl (pid 1)"));
        assert_eq!(line, "::capo:lock=ok\n", "{shell}");
        let second = run(&lock("run B"));
        assert_eq!(second.status.code(), Some(LOCKED_EXIT as i32), "{shell}");
        let marks = Marks::parse(&second.stdout);
        assert_eq!(marks.get("lock"), Some("held"));
        assert_eq!(marks.get("holder"), Some("run A from ctl (pid 1)"));
        // Closing the first holder's stdin releases the lock.
        drop(first.stdin.take());
        first.wait().expect("wait");
        let third = run(&lock("run C"));
        assert_eq!(
            String::from_utf8_lossy(&third.stdout),
            "::capo:lock=ok\n",
            "{shell}"
        );
        // Not a checkout: nothing to lock, the sync step will say what is wrong.
        let none = run(&Call::plain(Script::Lock, ["/nonexistent", "x"]));
        assert_eq!(Marks::parse(&none.stdout).get("lock"), Some("none"));
        assert_eq!(none.status.code(), Some(0));
    });
}

#[test]
fn a_lock_that_cannot_be_taken_says_why() {
    each_sh(|shell, _, shdir| {
        let dir = tempfile::tempdir().expect("tempdir");
        git(dir.path(), &["init", "-q"]);
        let lock = Call::plain(Script::Lock, [path(dir.path()), "x".into()]);
        // A PATH with sh and git but no flock.
        let bin = tempfile::tempdir().expect("tempdir");
        for tool in ["git", "id"] {
            std::os::unix::fs::symlink(which(tool).expect(tool), bin.path().join(tool))
                .expect("symlink");
        }
        std::os::unix::fs::symlink(shdir.join("sh"), bin.path().join("sh")).expect("symlink");
        let sh = which(shell).expect("shell");
        let out = Command::new(&sh)
            .arg("-c")
            .arg(lock.command_line())
            .env("PATH", bin.path())
            .stdin(Stdio::null())
            .output()
            .expect("run");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("lock"), Some("failed"), "{shell}: {out:?}");
        assert_eq!(marks.get("why"), Some("no-flock"));
        assert_eq!(out.status.code(), Some(1));
        // The info lock held elsewhere for longer than the 10 s wait is not tested here.
    });
}

#[test]
fn apply_leaves_manifest_modulepath_and_config_version_to_environment_conf() {
    each_sh(|shell, run, _| {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = path(dir.path());
        let t = Duration::from_secs(30);
        let apply = |manifest: &str, modulepath: &str| {
            let out = run(&Call::step(
                Script::Apply,
                [
                    d.as_str(),
                    "",
                    "echo",
                    "live",
                    manifest,
                    modulepath,
                    "",
                    "0",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                ],
                t,
            ));
            assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
            let r = Marks::parse(&out.stdout)
                .get("results")
                .expect("results")
                .to_string();
            let printed = String::from_utf8_lossy(&strip_marks(&out.stdout)).into_owned();
            let linked = std::fs::read_link(Path::new(&r).join("env/live")).expect("env link");
            let _ = std::fs::remove_dir_all(&r);
            let logs = format!(
                " --lastrunfile {r}/summary.yaml --lastrunreport {r}/report.yaml --statefile \
                 {r}/state.yaml --transactionstorefile {r}/transactionstore.yaml --logdest \
                 {r}/log.jsonl --logdest console\n"
            );
            let head = format!(
                "apply --detailed-exitcodes --color=false --environmentpath {r}/env --environment live"
            );
            (
                printed
                    .strip_prefix(&head)
                    .and_then(|p| p.strip_suffix(&logs))
                    .unwrap_or_else(|| panic!("{shell}: {printed}"))
                    .to_string(),
                linked,
            )
        };
        std::fs::write(
            dir.path().join("environment.conf"),
            "modulepath = site:modules\n",
        )
        .expect("write");
        // Unset: the environment's own manifest and modulepath.
        let (words, linked) = apply("", "");
        assert_eq!(words, "", "{shell}");
        assert_eq!(linked, dir.path());
        // Set: they win.
        let (words, _) = apply("site.pp", "mods");
        assert_eq!(
            words,
            format!(" --modulepath {d}/mods {d}/site.pp"),
            "{shell}"
        );
        // A git checkout: its HEAD is the config version, unless environment.conf has one.
        let git = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
                .expect("git")
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        git(&["add", "-A"]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "c",
        ]);
        let head = String::from_utf8(
            std::process::Command::new("git")
                .args(["rev-parse", "HEAD"])
                .current_dir(dir.path())
                .output()
                .expect("git")
                .stdout,
        )
        .expect("utf-8");
        let (words, _) = apply("", "");
        assert_eq!(
            words,
            format!(" --config_version /bin/echo {}", head.trim()),
            "{shell}"
        );
        std::fs::write(
            dir.path().join("environment.conf"),
            "modulepath = site:modules\nconfig_version = scripts/version.sh\n",
        )
        .expect("write");
        let (words, _) = apply("", "");
        assert_eq!(words, "", "{shell}");
    });
}

/// A module repository (bare, at `root/forge/motd.git`) with tags v1.0.0 and v2.0.0, whose
/// metadata.json says its version.
fn forge(root: &Path) -> PathBuf {
    let src = root.join("motd-src");
    std::fs::create_dir_all(src.join("manifests")).expect("mkdir");
    git(&src, &["init", "-q", "-b", "main"]);
    std::fs::write(src.join("manifests/init.pp"), "class motd {}\n").expect("write");
    for v in ["1.0.0", "2.0.0"] {
        std::fs::write(
            src.join("metadata.json"),
            format!("{{\"version\": \"{v}\"}}\n"),
        )
        .expect("write");
        git(&src, &["add", "-A"]);
        git(&src, &["commit", "-q", "-m", v]);
        git(&src, &["tag", &format!("v{v}")]);
    }
    let bare = root.join("forge/motd.git");
    git(root, &["clone", "-q", "--bare", &path(&src), &path(&bare)]);
    bare
}

fn installed_version(moduledir: &Path) -> String {
    std::fs::read_to_string(moduledir.join("motd/metadata.json")).unwrap_or_default()
}

/// Every installer capo supports (r10k, g10k): one not installed fails CI, as a shell does.
fn each_installer(mut test: impl FnMut(&str)) {
    for installer in ["r10k", "g10k"] {
        if which(installer).is_none() {
            skip(installer);
            continue;
        }
        test(installer);
    }
}

#[test]
fn modules_are_installed_once_per_puppetfile_and_planned_in_the_copy() {
    each_installer(|installer| {
        let dir = tempfile::tempdir().expect("tempdir");
        let bare = forge(dir.path());
        let (origin, clone) = repos(dir.path());
        let puppetfile = |tag: &str| {
            std::fs::write(
                origin.join("Puppetfile"),
                format!(
                    "mod 'motd',\n  :git => '{}',\n  :tag => '{tag}'\n",
                    path(&bare)
                ),
            )
            .expect("write");
            std::fs::write(origin.join(".gitignore"), "/modules/\n").expect("write");
            git(&origin, &["add", "-A"]);
            git(&origin, &["commit", "-q", "-m", tag]);
        };
        let t = Duration::from_secs(60);
        let sh = sh_dir("dash").or_else(|| sh_dir("bash")).expect("a sh");
        let run = |call: &Call| {
            command("sh", sh.path(), &call.command_line())
                .stdin(Stdio::null())
                .output()
                .expect("run")
        };
        let sync = |inst: &str| {
            let out = run(&Call::step(
                Script::Sync,
                [
                    path(&clone),
                    "origin".into(),
                    "main".into(),
                    String::new(),
                    inst.into(),
                ],
                t,
            ));
            assert_eq!(out.status.code(), Some(0), "{installer}: {out:?}");
            Marks::parse(&out.stdout).get("modules").map(str::to_string)
        };
        let modules = || {
            run(&Call::step(
                Script::Modules,
                [path(&clone), installer.into(), "run A".into()],
                t,
            ))
        };
        // A Puppet that shows the modules the plan put in its copy (where it runs).
        let show_modules = dir.path().join("show-modules");
        std::fs::write(&show_modules, "#!/bin/sh\ncat modules/motd/metadata.json\n")
            .expect("write");
        std::fs::set_permissions(
            &show_modules,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let planned = |out: &std::process::Output| {
            String::from_utf8_lossy(&strip_marks(&out.stdout)).into_owned()
        };
        let plan = || {
            run(&Call::step(
                Script::Plan,
                [
                    path(&clone),
                    "origin".into(),
                    "main".into(),
                    String::new(),
                    installer.into(),
                    path(&show_modules),
                    "production".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    "0".into(),
                ],
                t,
            ))
        };
        let moduledir = clone.join("modules");

        // No Puppetfile: nothing to do; `ignore`: nothing either.
        assert_eq!(sync(installer).as_deref(), Some("none"), "{installer}");
        puppetfile("v1.0.0");
        assert_eq!(sync("ignore").as_deref(), Some("none"), "{installer}");
        // A Puppetfile never installed from: stale, then installed and recorded.
        assert_eq!(sync(installer).as_deref(), Some("stale"), "{installer}");
        let out = modules();
        assert_eq!(out.status.code(), Some(0), "{installer}: {out:?}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("modules"), Some("installed"));
        assert_eq!(marks.get("module-count"), Some("1"), "{installer}: {out:?}");
        assert!(
            installed_version(&moduledir).contains("1.0.0"),
            "{installer}"
        );
        assert_eq!(sync(installer).as_deref(), Some("current"), "{installer}");
        // The other installer did not install them: stale for it.
        let other = if installer == "r10k" { "g10k" } else { "r10k" };
        assert_eq!(sync(other).as_deref(), Some("stale"), "{installer}");
        // A module gone: stale again.
        std::fs::remove_dir_all(moduledir.join("motd")).expect("rm");
        assert_eq!(sync(installer).as_deref(), Some("stale"), "{installer}");
        assert_eq!(modules().status.code(), Some(0), "{installer}");

        // A plan of an unchanged Puppetfile copies the checkout's modules.
        let out = plan();
        assert_eq!(out.status.code(), Some(0), "{installer}: {out:?}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("modules"), Some("copied"), "{installer}: {out:?}");
        assert!(planned(&out).contains("1.0.0"), "{installer}: {out:?}");

        // The Puppetfile moves to v2.0.0: the plan installs it into its copy, and the
        // checkout's modules stay as they are.
        puppetfile("v2.0.0");
        let out = plan();
        assert_eq!(out.status.code(), Some(0), "{installer}: {out:?}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(
            marks.get("modules"),
            Some("installed"),
            "{installer}: {out:?}"
        );
        assert!(planned(&out).contains("2.0.0"), "{installer}: {out:?}");
        assert!(
            installed_version(&moduledir).contains("1.0.0"),
            "{installer}"
        );
        // The rollout's sync finds them stale and the modules step installs v2.0.0.
        assert_eq!(sync(installer).as_deref(), Some("stale"), "{installer}");
        assert_eq!(modules().status.code(), Some(0), "{installer}");
        assert!(
            installed_version(&moduledir).contains("2.0.0"),
            "{installer}"
        );

        // A ref that does not exist: the installer fails, the step says so, the plan too.
        puppetfile("v9.9.9");
        let out = plan();
        assert_eq!(out.status.code(), Some(1), "{installer}: {out:?}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("fail"), Some("modules"), "{installer}: {out:?}");
        if let Some(r) = marks.get("results") {
            let _ = std::fs::remove_dir_all(r);
        }
        assert_eq!(sync(installer).as_deref(), Some("stale"), "{installer}");
        let out = modules();
        assert_ne!(out.status.code(), Some(0), "{installer}: {out:?}");
        assert_eq!(Marks::parse(&out.stdout).get("modules"), None);
        // Not recorded: the next sync still finds them stale.
        assert_eq!(sync(installer).as_deref(), Some("stale"), "{installer}");

        // An installer that is not there says so, with the host's package manager.
        let out = run(&Call::step(
            Script::Modules,
            [path(&clone), "no-such-installer".into()],
            t,
        ));
        assert_eq!(out.status.code(), Some(127), "{installer}: {out:?}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("fail"), Some("no-installer"));
        assert_eq!(marks.get("installer"), Some("no-such-installer"));
        assert!(marks.get("pkg").is_some());
    });
}

/// A stand-in for sudo in `dir`: prints the options it got (one `<WORD>` line each, up to
/// `--`) on stderr, then runs the command after `--` as is.
fn fake_sudo(dir: &Path) {
    let sudo = dir.join("sudo");
    std::fs::write(
        &sudo,
        "#!/bin/sh\nwhile [ \"$1\" != -- ]; do printf '<%s>' \"$1\" >&2; shift; done\nshift\necho >&2\nexec \"$@\"\n",
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sudo, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn a_sudo_line_survives_every_login_shell_and_reads_back() {
    let Some(dir) = sh_dir("dash").or_else(|| sh_dir("bash")) else {
        return;
    };
    fake_sudo(dir.path());
    let mut args = vec!["for a; do printf '<%s>\\n' \"$a\"; done; printf '0=%s\\n' \"$0\""];
    args.extend(HOSTILE);
    let call = Call::plain(Script::Exec, args.clone());
    let mut expected: String = args.iter().map(|a| format!("<{a}>\n")).collect();
    expected.push_str("0=capo-exec\n");
    let quiet = Sudo::new("root", None).expect("valid");
    let asks = Sudo::new("svc.puppet-1", Some("capo-sudo-prompt-1a2b:")).expect("valid");
    for (sudo, options) in [
        (&quiet, "<-n><-u><root>\n"),
        (
            &asks,
            "<-S><-p><capo-sudo-prompt-1a2b:><-u><svc.puppet-1>\n",
        ),
    ] {
        let line = call.command_line_as(Some(sudo));
        assert!(line.starts_with("sudo "), "{line}");
        assert!(!line.contains('\n') && line.is_ascii(), "{line}");
        for login in LOGIN_SHELLS {
            if which(login).is_none() {
                skip(login);
                continue;
            }
            let out = command(login, dir.path(), &line)
                .stdin(Stdio::null())
                .output()
                .expect("run");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                expected,
                "login shell {login}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stderr), options, "{login}");
            assert!(out.status.success(), "{login}");
        }
    }
    for sudo in [&quiet, &asks] {
        let step = Call::step(Script::Sync, HOSTILE, Duration::from_secs(5));
        assert_eq!(
            Call::parse(&step.command_line_as(Some(sudo))),
            Some(step.clone())
        );
    }
    assert_eq!(Call::parse("sudo -n -u root sh -c 'x' capo-sync"), None);
}

/// `bootstrap.sh`'s arguments: REPO_DIR URL origin main REV INSTALL ignore PUPPET
/// production, no manifest, modulepath or certname.
fn bootstrap_call(repo: &Path, url: &str, rev: &str, install: bool, puppet: &str) -> Call {
    let args: Vec<String> = [
        path(repo).as_str(),
        url,
        "origin",
        "main",
        rev,
        if install { "1" } else { "0" },
        "ignore",
        puppet,
        "production",
        "",
        "",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Call::step(Script::Bootstrap, args, Duration::from_secs(60))
}

/// Every file under `dir` with its content (or `<dir>`), sorted: what "left alone" means.
fn tree(dir: &Path) -> Vec<String> {
    let out = Command::new("find")
        .arg(dir)
        .args(["-printf", "%P %y %s %m\\n"])
        .output()
        .expect("find");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let file = dir.join(l.split(' ').next().unwrap_or(""));
            match std::fs::read(&file) {
                Ok(bytes) if file.is_file() => format!("{l} {:?}", String::from_utf8_lossy(&bytes)),
                _ => l.to_string(),
            }
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn bootstrap_clones_into_an_empty_or_missing_dir_and_then_says_already() {
    each_sh(|shell, run, _| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (origin, _) = repos(dir.path());
        let url = path(&origin);
        let first = git_out(&origin, &["rev-parse", "HEAD"]);
        std::fs::write(origin.join("site.pp"), "node default { }\n").expect("write");
        git(&origin, &["commit", "-qam", "two"]);
        git(&origin, &["tag", "v1", &first]);
        let second = git_out(&origin, &["rev-parse", "HEAD"]);

        // A missing directory (and its missing parent): the tip of main, and the noop apply
        // (`echo` as Puppet) runs on it as the environment.
        let new = dir.path().join("a/new");
        let out = run(&bootstrap_call(&new, &url, "", false, "echo"));
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("rev-after"), Some(second.as_str()), "{shell}");
        assert_eq!(marks.get("missing"), None, "{shell}");
        let r = marks.get("results").expect("results").to_string();
        let said = String::from_utf8_lossy(&strip_marks(&out.stdout)).into_owned();
        assert!(
            said.starts_with(&format!(
                "apply --detailed-exitcodes --color=false --environmentpath {r}/env --environment production --modulepath {n}/modules {n}/manifests/site.pp --config_version /bin/echo {second} --noop",
                n = path(&new)
            )),
            "{shell}: {said}"
        );
        let _ = std::fs::remove_dir_all(&r);
        assert_eq!(git_out(&new, &["rev-parse", "HEAD"]), second);
        assert_eq!(git_out(&new, &["symbolic-ref", "--short", "HEAD"]), "main");
        assert_eq!(git_out(&new, &["remote"]), "origin");
        assert_eq!(
            git_out(&new, &["rev-parse", "--abbrev-ref", "main@{upstream}"]),
            "origin/main"
        );
        assert_eq!(git_out(&new, &["status", "--porcelain"]), "");

        // Again: already, and nothing changed (no apply either).
        let before = tree(&new);
        let out = run(&bootstrap_call(&new, &url, "", false, "echo"));
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("already"), Some("1"), "{shell}");
        assert_eq!(marks.get("head"), Some(second.as_str()), "{shell}");
        assert_eq!(marks.get("results"), None, "{shell}");
        assert_eq!(tree(&new), before, "{shell}");

        // An empty directory, at a tag: the local branch points at it.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        let out = run(&bootstrap_call(&empty, &url, "v1", false, "true"));
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        assert_eq!(git_out(&empty, &["rev-parse", "main"]), first);
        assert_eq!(
            git_out(&empty, &["symbolic-ref", "--short", "HEAD"]),
            "main"
        );
        if let Some(r) = Marks::parse(&out.stdout).get("results") {
            let _ = std::fs::remove_dir_all(r);
        }

        // A revision that is not there: the clone is removed again, the directory stays.
        let again = dir.path().join("again");
        std::fs::create_dir(&again).expect("mkdir");
        let out = run(&bootstrap_call(&again, &url, "no-such-rev", false, "true"));
        assert_eq!(out.status.code(), Some(1), "{shell}: {out:?}");
        assert_eq!(Marks::parse(&out.stdout).get("fail"), Some("rev-not-found"));
        assert_eq!(tree(&again), [" d 4096 755"], "{shell}");
        let gone = dir.path().join("gone");
        let out = run(&bootstrap_call(&gone, &url, "no-such-rev", false, "true"));
        assert_eq!(out.status.code(), Some(1), "{shell}: {out:?}");
        assert!(!gone.exists(), "{shell}");

        // A URL that is no repository: git's error.
        let out = run(&bootstrap_call(
            &gone,
            "/no/such/repo.git",
            "",
            false,
            "true",
        ));
        assert_eq!(out.status.code(), Some(1), "{shell}: {out:?}");
        assert_eq!(Marks::parse(&out.stdout).get("fail"), Some("clone"));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("fatal:"),
            "{out:?}"
        );
        assert!(!gone.exists(), "{shell}");
    });
}

#[test]
fn bootstrap_never_touches_a_dir_that_holds_something_else() {
    each_sh(|shell, run, _| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (origin, clone) = repos(dir.path());
        let url = path(&origin);
        let refused = |target: &Path, fail: &str| {
            let before = tree(target);
            let out = run(&bootstrap_call(target, &url, "", true, "echo"));
            assert_eq!(out.status.code(), Some(1), "{shell}: {out:?}");
            let marks = Marks::parse(&out.stdout);
            assert_eq!(marks.get("fail"), Some(fail), "{shell}: {out:?}");
            assert_eq!(marks.get("results"), None);
            assert_eq!(tree(target), before, "{shell}: {fail}");
            marks
        };
        // Another repository: a remote origin elsewhere, or none.
        git(&clone, &["remote", "set-url", "origin", "/else/where.git"]);
        let marks = refused(&clone, "other-repo");
        assert_eq!(marks.get("found-url"), Some("/else/where.git"));
        git(&clone, &["remote", "remove", "origin"]);
        assert_eq!(refused(&clone, "other-repo").get("found-url"), None);
        // Files that are not a checkout.
        let files = dir.path().join("files");
        std::fs::create_dir(&files).expect("mkdir");
        std::fs::write(files.join(".keep"), "mine\n").expect("write");
        refused(&files, "occupied");
        // A file.
        let file = dir.path().join("file");
        std::fs::write(&file, "data\n").expect("write");
        let out = run(&bootstrap_call(&file, &url, "", false, "echo"));
        assert_eq!(Marks::parse(&out.stdout).get("fail"), Some("not-a-dir"));
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "data\n");
    });
}

#[test]
fn bootstrap_names_what_is_missing_and_installs_it_with_the_package_manager() {
    each_sh(|shell, run, shdir| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (origin, _) = repos(dir.path());
        let url = path(&origin);
        let repo = dir.path().join("new");
        // Not installed, and not asked to install: named, nothing cloned.
        let out = run(&bootstrap_call(&repo, &url, "", false, "capo-test-puppet"));
        assert_eq!(out.status.code(), Some(1), "{shell}: {out:?}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("fail"), Some("missing"));
        assert_eq!(marks.get("missing"), Some("puppet"));
        assert_eq!(marks.get("pkg"), Some("apt"), "this machine is Debian");
        assert!(marks.get("search-path").is_some_and(|p| p.contains("/bin")));
        assert!(!repo.exists(), "{shell}");

        // --install: a stand-in apt-get (first on PATH) records how it was called and
        // "installs" the Puppet command, which then runs the noop apply.
        let apt = shdir.join("apt-get");
        std::fs::write(
            &apt,
            "#!/bin/sh\nd=$(dirname \"$0\")\necho \"$DEBIAN_FRONTEND $*\" >>\"$d/apt.log\"\n\
             printf '#!/bin/sh\\nexit 0\\n' >\"$d/capo-test-puppet\"\nchmod +x \"$d/capo-test-puppet\"\n",
        )
        .expect("write");
        std::fs::set_permissions(&apt, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let out = run(&bootstrap_call(&repo, &url, "", true, "capo-test-puppet"));
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("installed"), Some("puppet"));
        assert!(marks.get("rev-after").is_some());
        if let Some(r) = marks.get("results") {
            let _ = std::fs::remove_dir_all(r);
        }
        assert_eq!(
            std::fs::read_to_string(shdir.join("apt.log")).expect("apt.log"),
            "noninteractive install -y -q puppet\n"
        );
        for f in ["apt-get", "apt.log", "capo-test-puppet"] {
            let _ = std::fs::remove_file(shdir.join(f));
        }
    });
}

/// `git ARGS` in `dir`; its stdout, trimmed.
fn git_out(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `script` after lib-step.sh and lib-record.sh (as compacted and sent) in `sh` = `shell`, with `args` as
/// its positional arguments.
fn with_lib_step(shell: &Path, script: &str, args: &[&str]) -> Output {
    Command::new(shell)
        .arg("-c")
        .arg(format!(
            "{}{}{script}",
            compact(LIB_STEP),
            compact(LIB_RECORD)
        ))
        .arg("sh")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run")
}

#[test]
fn json_object_escapes_every_string_for_json() {
    let mut nasty: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
    nasty.push("ctl \u{1}\u{7}\u{8}\u{c}\r\u{1b}[0m\u{1f}\u{7f} end".into());
    nasty.push("capo run 1 from \"ctl\" (pid 7), started C:\\Temp\\".into());
    nasty.push("'quoted' ''".into());
    for shell in SHS {
        let Some(sh) = which(shell) else {
            skip(shell);
            continue;
        };
        let mut args: Vec<String> = Vec::new();
        for (i, v) in nasty.iter().enumerate() {
            args.extend([format!("k{i}"), "s".into(), v.clone()]);
        }
        let numbers = [
            ("12", "12"),
            ("0", "0"),
            ("", "null"),
            ("007", "null"),
            ("1x", "null"),
            ("-", "null"),
            ("-3", "null"),
        ];
        for (i, (n, _)) in numbers.iter().enumerate() {
            args.extend([format!("n{i}"), "n".into(), n.to_string()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = with_lib_step(&sh, "json_object \"$@\"\n", &refs);
        assert!(out.status.success(), "{shell}: {out:?}");
        let value: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{shell}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        for (i, v) in nasty.iter().enumerate() {
            let want = if v.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::Value::String(v.clone())
            };
            assert_eq!(value[format!("k{i}")], want, "{shell}: {v:?}");
        }
        for (i, (_, want)) in numbers.iter().enumerate() {
            assert_eq!(value[format!("n{i}")].to_string(), *want, "{shell}");
        }
        // One member a line, in the order given.
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("{\n  \"k0\": \"it's\",\n"),
            "{shell}: {text}"
        );
        assert!(text.ends_with("\n}\n"), "{shell}: {text}");
    }
}

/// A Puppet 7 summary (as in capo-puppet's fixtures) whose config version needs unquoting.
const SUMMARY: &str = "---\nversion:\n  config: 'it''s 3f2a1c9'\n  puppet: 7.23.0\nresources:\n  changed: 3\n  corrective_change: 1\n  failed: 2\n  failed_to_restart: 0\n  out_of_sync: 4\n  total: 11\ntime:\n  total: 0.02\nchanges:\n  total: 3\n";

/// The file names in `dir`, sorted, hidden ones included.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", path.display()))
}

#[test]
fn record_run_writes_the_record_and_keeps_the_newest() {
    for shell in SHS {
        let Some(sh) = which(shell) else {
            skip(shell);
            continue;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let runs = state.join("runs");
        std::fs::create_dir_all(&runs).expect("mkdir");
        // Five older records, and one of another kind of file that is not a record.
        for i in 1..=5 {
            std::fs::write(runs.join(format!("20200101T00000{i}.000Z-pull.json")), "{}")
                .expect("write");
        }
        let summary = dir.path().join("summary.yaml");
        std::fs::write(&summary, SUMMARY).expect("write");
        let by = "capo run R1 from \"ctl\" (pid 7), started 2026-11-24T22:45:01Z \\o/";
        let out = with_lib_step(
            &sh,
            "s=$(now)\nrecord_run \"$1\" push R1 \"$2\" \"$s\" aaa bbb changed '' \"$3\" 3\necho \"rc=$?\"\n",
            &[&path(&state), by, &path(&summary)],
        );
        assert!(out.status.success(), "{shell}: {out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout, "::capo:record=ok\nrc=0\n", "{shell}");
        let kept = names(&runs);
        assert_eq!(kept.len(), 3, "{shell}: {kept:?}");
        assert_eq!(
            kept[..2],
            [
                "20200101T000004.000Z-pull.json",
                "20200101T000005.000Z-pull.json"
            ],
            "{shell}"
        );
        assert!(
            kept[2].ends_with("Z-push.json")
                && kept[2].len() == "20261124T224501.123Z-push.json".len(),
            "{shell}: {kept:?}"
        );
        // No temporary file is left; last_run.json is the newest record.
        assert_eq!(names(&state), ["last_run.json", "runs"], "{shell}");
        let record = json(&state.join("last_run.json"));
        assert_eq!(record, json(&runs.join(&kept[2])), "{shell}");
        let keys: Vec<&str> = record
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = vec![
            "schema",
            "time",
            "started",
            "source",
            "by",
            "run_id",
            "rev_before",
            "rev_after",
            "status",
            "step",
            "changed",
            "failed",
            "corrective",
            "out_of_sync",
            "config_version",
            "duration_ms",
        ];
        want.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, want, "{shell}");
        assert_eq!(record["schema"], "capo.run/v1");
        assert_eq!(record["source"], "push");
        assert_eq!(record["by"], by);
        assert_eq!(record["run_id"], "R1");
        assert_eq!(
            (record["rev_before"].as_str(), record["rev_after"].as_str()),
            (Some("aaa"), Some("bbb"))
        );
        assert_eq!(record["status"], "changed");
        assert_eq!(record["step"], serde_json::Value::Null);
        assert_eq!(
            [
                &record["changed"],
                &record["failed"],
                &record["corrective"],
                &record["out_of_sync"]
            ]
            .map(|v| v.as_u64()),
            [Some(3), Some(2), Some(1), Some(4)],
            "{shell}"
        );
        assert_eq!(record["config_version"], "it's 3f2a1c9");
        let time = record["time"].as_str().expect("time");
        assert!(
            time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{time}"
        );
        assert!(
            record["started"].as_str().is_some_and(|s| s <= time),
            "{record}"
        );
        assert!(
            record["duration_ms"].as_u64().is_some_and(|ms| ms < 60_000),
            "{record}"
        );

        // The default keeps RECORD_KEEP (20); without a summary the counts are null.
        let out = with_lib_step(
            &sh,
            "s=$(now)\nrecord_run \"$1\" pull '' '' \"$s\" '' '' failed sync ''\n",
            &[&path(&state)],
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "::capo:record=ok\n",
            "{shell}"
        );
        assert_eq!(names(&runs).len(), 4, "{shell}");
        let record = json(&state.join("last_run.json"));
        assert_eq!(
            (record["source"].as_str(), record["step"].as_str()),
            (Some("pull"), Some("sync"))
        );
        for key in [
            "run_id",
            "by",
            "rev_before",
            "changed",
            "failed",
            "corrective",
            "out_of_sync",
            "config_version",
        ] {
            assert_eq!(record[key], serde_json::Value::Null, "{shell}: {key}");
        }
        let keep = with_lib_step(&sh, "echo \"$RECORD_KEEP\"\n", &[]);
        assert_eq!(String::from_utf8_lossy(&keep.stdout), "20\n");
    }
}

#[test]
fn a_record_that_cannot_be_written_is_reported_and_never_fails_the_step() {
    for shell in SHS {
        let Some(sh) = which(shell) else {
            skip(shell);
            continue;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        // A file where the state directory should be: no one can write there, root included.
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, "x").expect("write");
        for state in ["/proc/nope".to_string(), path(&blocked.join("state"))] {
            let out = with_lib_step(
                &sh,
                "record_run \"$1\" push R1 by \"$(now)\" a b unchanged '' ''\necho \"rc=$?\"\n",
                &[&state],
            );
            let marks = Marks::parse(&out.stdout);
            assert_eq!(marks.get("record"), Some("failed"), "{shell}: {out:?}");
            let why = marks.get("record-why").expect("why");
            assert!(
                why.starts_with(&format!("cannot write {state} as ")),
                "{shell}: {why}"
            );
            assert!(why.contains("mkdir: "), "{shell}: {why}");
            assert!(
                String::from_utf8_lossy(&out.stdout).ends_with("rc=0\n"),
                "{shell}"
            );
        }
        assert_eq!(std::fs::read_to_string(&blocked).expect("read"), "x");
    }
}

#[test]
fn steps_write_the_record_when_they_end_and_keep_their_exit_status() {
    each_sh(|shell, run, _| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, clone) = repos(dir.path());
        let state = dir.path().join("state");
        let t = Duration::from_secs(30);
        let record = [path(&state), "push".into(), "R9".into(), "by line".into()];
        // A sync that fails (no such branch): exit status kept, record failed at sync.
        let mut args = vec![
            path(&clone),
            "origin".into(),
            "nope".into(),
            String::new(),
            "ignore".into(),
        ];
        args.extend(record.iter().cloned());
        let out = run(&Call::step(Script::Sync, args, t));
        assert_eq!(out.status.code(), Some(1), "{shell}: {out:?}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("record"), Some("ok"), "{shell}: {out:?}");
        let started = marks.get("started").expect("started").to_string();
        let head = marks.get("rev-before").expect("rev-before").to_string();
        let r = json(&state.join("last_run.json"));
        assert_eq!(
            (r["status"].as_str(), r["step"].as_str()),
            (Some("failed"), Some("sync")),
            "{shell}"
        );
        assert_eq!(
            (r["rev_before"].as_str(), r["rev_after"].as_str()),
            (Some(head.as_str()), Some(head.as_str()))
        );
        assert_eq!(r["changed"], serde_json::Value::Null);
        // A sync that succeeds writes none: apply will.
        let mut args = vec![
            path(&clone),
            "origin".into(),
            "main".into(),
            String::new(),
            "ignore".into(),
        ];
        args.extend(record.iter().cloned());
        let out = run(&Call::step(Script::Sync, args, t));
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        assert_eq!(Marks::parse(&out.stdout).get("record"), None, "{shell}");
        assert_eq!(names(&state.join("runs")).len(), 1, "{shell}");
        // An apply by a Puppet that writes its summary and says "changed" (exit 2).
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        let puppet = bin.join("fake-puppet");
        let summary = dir.path().join("summary.yaml");
        std::fs::write(&summary, SUMMARY).expect("write");
        std::fs::write(
            &puppet,
            format!(
                "#!/bin/sh\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = --lastrunfile ]; then cp {} \"$2\"; fi\n  shift\ndone\nexit 2\n",
                path(&summary)
            ),
        )
        .expect("write");
        std::fs::set_permissions(&puppet, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let apply = |puppet: &str| {
            let mut args = vec![
                path(&clone),
                String::new(),
                puppet.to_string(),
                "production".into(),
                String::new(),
                String::new(),
                String::new(),
                "0".into(),
            ];
            args.extend(record.iter().cloned());
            // INLINE: the record must be written before the results are sent and removed.
            args.extend([started.clone(), "0123abc".into(), "1".into()]);
            let out = run(&Call::step(Script::Apply, args, t));
            if let Some(r) = Marks::parse(&out.stdout).get("results") {
                let _ = std::fs::remove_dir_all(r);
            }
            out
        };
        let out = apply(&path(&puppet));
        assert_eq!(out.status.code(), Some(2), "{shell}: {out:?}");
        assert_eq!(
            Marks::parse(&out.stdout).get("record"),
            Some("ok"),
            "{shell}: {out:?}"
        );
        let r = json(&state.join("last_run.json"));
        assert_eq!(
            (r["status"].as_str(), &r["step"]),
            (Some("changed"), &serde_json::Value::Null),
            "{shell}"
        );
        assert_eq!(
            (r["rev_before"].as_str(), r["rev_after"].as_str()),
            (Some("0123abc"), Some(head.as_str()))
        );
        assert_eq!(
            (r["changed"].as_u64(), r["config_version"].as_str()),
            (Some(3), Some("it's 3f2a1c9")),
            "{shell}"
        );
        assert_eq!(r["started"].as_str(), started.split(' ').nth(1), "{shell}");
        // No puppet at all: exit 127 kept, the record says failed at apply.
        let out = apply("no-such-puppet");
        assert_eq!(out.status.code(), Some(127), "{shell}: {out:?}");
        let r = json(&state.join("last_run.json"));
        assert_eq!(
            (r["status"].as_str(), r["step"].as_str()),
            (Some("failed"), Some("apply")),
            "{shell}"
        );
        assert_eq!(r["changed"], serde_json::Value::Null);
        assert_eq!(names(&state.join("runs")).len(), 3, "{shell}");
    });
}

#[test]
fn a_step_stopped_at_its_deadline_still_writes_the_record() {
    each_sh(|shell, run, _| {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, clone) = repos(dir.path());
        let state = dir.path().join("state");
        let puppet = dir.path().join("slow-puppet");
        std::fs::write(&puppet, "#!/bin/sh\nsleep 30\n").expect("write");
        std::fs::set_permissions(&puppet, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let mut args = vec![
            path(&clone),
            String::new(),
            path(&puppet),
            "production".into(),
        ];
        args.extend(
            [
                "",
                "",
                "",
                "0",
                &path(&state),
                "push",
                "R1",
                "by",
                "",
                "abc",
                "1",
            ]
            .map(String::from),
        );
        let started = std::time::Instant::now();
        let out = run(&Call::step(Script::Apply, args, Duration::from_secs(1)));
        assert!(started.elapsed() < Duration::from_secs(10), "{shell}");
        let marks = Marks::parse(&out.stdout);
        assert_eq!(marks.get("deadline"), Some("1.000"), "{shell}: {out:?}");
        assert_eq!(marks.get("record"), Some("ok"), "{shell}: {out:?}");
        let r = json(&state.join("last_run.json"));
        assert_eq!(
            (r["status"].as_str(), r["step"].as_str()),
            (Some("failed"), Some("apply")),
            "{shell}"
        );
        if let Some(results) = marks.get("results") {
            let _ = std::fs::remove_dir_all(results);
        }
    });
}
