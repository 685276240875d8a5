//! capo's host-side scripts and the one command line that runs them.
//!
//! The scripts are real POSIX `sh` files under `sh/` in this crate, compiled in with
//! `include_str!`: constant text, every inventory value passed as a positional argument.
//! Each has a stable id ([`Script::id`], e.g. `capo-sync`) and a header saying its arguments,
//! its markers and exit codes, and how to run it by hand. They talk back through marker lines
//! on stdout (`::capo:KEY=VALUE`, see [`MARK`] and [`Marks`]).
//!
//! [`Call::command_line`] is the only place that turns a script and its arguments into the
//! string sent over SSH, and so the only place that quotes for the host, and where `sudo`
//! goes ([`Sudo`]). sshd hands that string to the user's login shell (`$SHELL -c STRING`), which
//! may be sh, bash, dash, csh, tcsh or fish; so it is one line that starts `sh` and whose
//! only quoted text means the same to all of them (see [`Call::command_line`]).

use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::Duration;

mod marks;
pub mod pull;
mod quote;
mod sudo;

pub use marks::{strip_marks, Marks, EOF_MARK, MARK};
pub use quote::{join, quote};
pub use sudo::{Sudo, SudoError};

/// Exit status of `capo-lock` when another run holds the lock, or a step of an earlier run
/// still runs (EX_TEMPFAIL).
pub const LOCKED_EXIT: u32 = 75;

/// How many incoming commits `capo-plan` lists (`git log -n 10`).
pub const INCOMING_SHOWN: usize = 10;

/// The process-tree functions (`tree`, `stop_tree`) of `wrap.sh` and `kill.sh`.
pub const LIB_PROC: &str = include_str!("../sh/lib-proc.sh");
/// The checkout functions of the lock, sync, apply and plan scripts.
pub const LIB_STEP: &str = include_str!("../sh/lib-step.sh");
/// The run record (`record_run` and what calls it), after [`LIB_STEP`], of the sync,
/// sync-rev, modules and apply steps alone: pull mode installs it beside them.
pub const LIB_RECORD: &str = include_str!("../sh/lib-record.sh");
/// The deadline wrapper every step runs under.
pub const WRAP: &str = include_str!("../sh/wrap.sh");

/// A script capo runs on hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Script {
    /// `lock.sh REPO_DIR HOLDER STATE_DIR`: unless the host is disabled, holds the host's
    /// lock while stdin stays open.
    Lock,
    /// `sync.sh REPO_DIR REMOTE BRANCH [HOLDER [INSTALLER]]`: `git pull --ff-only`.
    Sync,
    /// `sync-rev.sh REPO_DIR REMOTE REV [HOLDER [INSTALLER]]`: fetch and fast-forward to REV.
    SyncRev,
    /// `modules.sh REPO_DIR INSTALLER [HOLDER]`: install the Puppetfile's modules.
    Modules,
    /// `apply.sh REPO_DIR HOLDER PUPPET ENVIRONMENT MANIFEST MODULEPATH CERTNAME SHOW_DIFF
    /// STATE_DIR SOURCE RUN_ID BY STARTED REV_BEFORE INLINE [ARG...]`.
    Apply,
    /// `plan.sh REPO_DIR REMOTE BRANCH REV INSTALLER PUPPET ENVIRONMENT MANIFEST MODULEPATH
    /// CERTNAME SHOW_DIFF [ARG...]`.
    Plan,
    /// `capo exec -- CMD`: the user's command, run by `sh -c CMD`; no file of its own.
    Exec,
    /// `collect.sh DIR`: prints a results directory's files and removes it.
    Collect,
    /// `kill.sh PID`: stops a wrapped step's process tree.
    Kill,
    /// `check.sh REPO_DIR PUPPET INSTALLER LOCK STATE_DIR`: what `capo check` reports,
    /// changing nothing.
    Check,
    /// `disable.sh STATE_DIR disable|enable [MESSAGE BY]`: the host's maintenance switch.
    Disable,
    /// `bootstrap.sh REPO_DIR URL REMOTE BRANCH REV INSTALL INSTALLER PUPPET ENVIRONMENT
    /// MANIFEST MODULEPATH CERTNAME [ARG...]`: clone into an empty `repo_dir`, noop apply.
    Bootstrap,
    /// `status.sh REPO_DIR REMOTE BRANCH STATE_DIR FETCH LOCK`: what `capo status` reads.
    Status,
    /// `pull-admin.sh install|remove LIB_DIR ...`: installs or removes pull mode.
    PullAdmin,
}

impl Script {
    /// Every script.
    pub const ALL: [Script; 14] = [
        Script::Lock,
        Script::Sync,
        Script::SyncRev,
        Script::Modules,
        Script::Apply,
        Script::Plan,
        Script::Exec,
        Script::Collect,
        Script::Kill,
        Script::Check,
        Script::Disable,
        Script::Bootstrap,
        Script::Status,
        Script::PullAdmin,
    ];

    /// The stable id: the `$0` of the shell that runs it on the host (visible in `ps`), and
    /// what the simulated fleet dispatches on.
    pub fn id(self) -> &'static str {
        match self {
            Script::Lock => "capo-lock",
            Script::Sync => "capo-sync",
            Script::SyncRev => "capo-sync-rev",
            Script::Modules => "capo-modules",
            Script::Apply => "capo-apply",
            Script::Plan => "capo-plan",
            Script::Exec => "capo-exec",
            Script::Collect => "capo-collect",
            Script::Kill => "capo-kill",
            Script::Check => "capo-check",
            Script::Disable => "capo-disable",
            Script::Bootstrap => "capo-bootstrap",
            Script::Status => "capo-status",
            Script::PullAdmin => "capo-pull-admin",
        }
    }

    /// The script with id `id`.
    pub fn from_id(id: &str) -> Option<Script> {
        Script::ALL.into_iter().find(|s| s.id() == id)
    }

    /// The file under `sh/`, as in the repository (header comments and all): what pull mode
    /// installs on hosts. `None` for [`Script::Exec`].
    pub fn file(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Script::Lock => ("lock.sh", include_str!("../sh/lock.sh")),
            Script::Sync => ("sync.sh", include_str!("../sh/sync.sh")),
            Script::SyncRev => ("sync-rev.sh", include_str!("../sh/sync-rev.sh")),
            Script::Modules => ("modules.sh", include_str!("../sh/modules.sh")),
            Script::Apply => ("apply.sh", include_str!("../sh/apply.sh")),
            Script::Plan => ("plan.sh", include_str!("../sh/plan.sh")),
            Script::Collect => ("collect.sh", include_str!("../sh/collect.sh")),
            Script::Kill => ("kill.sh", include_str!("../sh/kill.sh")),
            Script::Check => ("check.sh", include_str!("../sh/check.sh")),
            Script::Disable => ("disable.sh", include_str!("../sh/disable.sh")),
            Script::Bootstrap => ("bootstrap.sh", include_str!("../sh/bootstrap.sh")),
            Script::Status => ("status.sh", include_str!("../sh/status.sh")),
            Script::PullAdmin => ("pull-admin.sh", include_str!("../sh/pull-admin.sh")),
            Script::Exec => return None,
        })
    }

    /// The libraries the script needs in front of it, in order.
    fn libs(self) -> &'static [&'static str] {
        match self {
            // Only the steps that write the run record carry it: every byte here goes to
            // every host, for every step.
            Script::Sync | Script::SyncRev | Script::Modules | Script::Apply => {
                &[LIB_STEP, LIB_RECORD]
            }
            Script::Lock
            | Script::Plan
            | Script::Collect
            | Script::Check
            | Script::Disable
            | Script::Bootstrap
            | Script::Status => &[LIB_STEP],
            Script::Kill => &[LIB_PROC],
            Script::Exec | Script::PullAdmin => &[],
        }
    }

    /// What is sent to the host: the library it needs, then the script, without comment
    /// lines and blank lines. Empty for [`Script::Exec`].
    pub fn text(self) -> &'static str {
        static TEXTS: LazyLock<Vec<String>> = LazyLock::new(|| {
            Script::ALL
                .iter()
                .map(|s| {
                    let mut text = String::new();
                    for lib in s.libs() {
                        text.push_str(&compact(lib));
                    }
                    if let Some((_, file)) = s.file() {
                        text.push_str(&compact(file));
                    }
                    text
                })
                .collect()
        });
        &TEXTS[self.index()]
    }

    /// The script's place in [`Script::ALL`], where the per-script tables keep it.
    fn index(self) -> usize {
        Script::ALL
            .iter()
            .position(|s| *s == self)
            .unwrap_or_default()
    }
}

/// The deadline wrapper as sent: `lib-proc.sh` and `wrap.sh` without comments.
fn wrap_text() -> &'static str {
    static TEXT: LazyLock<String> =
        LazyLock::new(|| format!("{}{}", compact(LIB_PROC), compact(WRAP)));
    &TEXT
}

/// `text` without its comment lines, blank lines and indentation (the scripts have no
/// here-documents and no line continued with a backslash right after a word, and
/// their multi-line strings, the awk programs in lib-record.sh, have no blank line and no line
/// starting with `#`; a unit test checks each script still parses, and the run record's tests
/// run those programs as sent).
fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let code = line.trim_start();
        if code.is_empty() || code.starts_with('#') {
            continue;
        }
        // Indentation means nothing to sh or awk here, and every byte goes to every host.
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// One run of a script on a host: which script, its positional arguments, and for a step,
/// the deadline under which [`WRAP`] runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The script.
    pub script: Script,
    /// Its positional arguments (for [`Script::Exec`], the one command line).
    pub args: Vec<String>,
    /// For a step: the host-side deadline (`wrap.sh DEADLINE ...`).
    pub deadline: Option<Duration>,
}

impl Call {
    /// A script run as is (lock, collect, kill).
    pub fn plain<I, S>(script: Script, args: I) -> Call
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Call {
            script,
            args: args.into_iter().map(Into::into).collect(),
            deadline: None,
        }
    }

    /// A step, run under `wrap.sh` with `deadline`.
    pub fn step<I, S>(script: Script, args: I, deadline: Duration) -> Call
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Call {
            deadline: Some(deadline),
            ..Call::plain(script, args)
        }
    }

    /// The deadline as `wrap.sh` gets it: seconds with three decimals (`300.000`).
    pub fn deadline_text(&self) -> Option<String> {
        self.deadline.map(|d| format!("{:.3}", d.as_secs_f64()))
    }

    /// The `sh` program the host runs: `set -- ARGS` and the script; for a step, `set --
    /// DEADLINE NAME SCRIPT ARGS` and the wrapper.
    pub fn program(&self) -> String {
        let mut program = String::from("set --");
        let mut push = |word: &str| {
            program.push(' ');
            program.push_str(&quote(word));
        };
        let text = match (self.deadline_text(), self.script) {
            (Some(secs), Script::Exec) => {
                push(&secs);
                // The user's command runs as `sh -c CMD`, as `ssh host CMD` would run it.
                push("sh");
                push(self.args.first().map(String::as_str).unwrap_or(""));
                wrap_text()
            }
            (Some(secs), script) => {
                push(&secs);
                push(script.id());
                push(script.text());
                self.args.iter().for_each(|a| push(a));
                wrap_text()
            }
            (None, Script::Exec) => {
                self.args.iter().for_each(|a| push(a));
                EVAL_FIRST
            }
            (None, script) => {
                self.args.iter().for_each(|a| push(a));
                script.text()
            }
        };
        program.push('\n');
        program.push_str(text);
        program
    }

    /// The command line sent over SSH: one line,
    ///
    /// ```text
    /// sh -c 'eval "$(printf %b "PROGRAM")"' capo-sync
    /// ```
    ///
    /// sshd runs it with the user's login shell. csh and tcsh reject a newline inside single
    /// quotes and expand `!` there; fish reads `\\` and `\'` inside them. So [`Call::program`]
    /// goes in escaped for `printf %b` (newline as `\n`; `\`, `'`, `"`, `$`, `` ` ``, `!`,
    /// other control characters and every non-ASCII byte as `\0NNN`), leaving nothing any of
    /// those shells reads differently. `printf` is built into sh: no extra program on the
    /// host, and no stdin (the lock holder lives until its stdin closes; an exec'd command
    /// may read it). `$0` is the script id, for `ps` on the host and the simulated fleet.
    pub fn command_line(&self) -> String {
        self.command_line_as(None)
    }

    /// [`Call::command_line`], run through `sudo` when `sudo` is given:
    ///
    /// ```text
    /// sudo -n -u root -- sh -c 'eval "$(printf %b "PROGRAM")"' capo-sync
    /// sudo -S -p PROMPT -u root -- sh -c 'eval "$(printf %b "PROGRAM")"' capo-sync
    /// ```
    ///
    /// The words sudo gets are checked by [`Sudo::new`] to mean the same to every login
    /// shell, unquoted; the rest is the line as without sudo, so it survives the same shells.
    pub fn command_line_as(&self, sudo: Option<&Sudo>) -> String {
        // The script text, the same for every host, is quoted and escaped once per process
        // ([`escaped_script`]): at thousands of hosts, escaping ~15 KiB per step per host was a
        // sixth of a rollout's controller CPU. Escaping works byte by byte, so the pieces
        // escaped apart join to exactly what escaping [`Call::program`] whole gives (a unit
        // test holds the two equal).
        let script_text = escaped_script(self.script);
        let mut line = String::with_capacity(script_text.quoted.len() + escaped_wrap().len() + 256);
        if let Some(sudo) = sudo {
            line.push_str(&sudo.prefix());
        }
        line.push_str("sh -c 'eval \"$(printf %b \"");
        escape_into(&mut line, "set --");
        let push = |line: &mut String, word: &str| {
            escape_into(line, " ");
            escape_into(line, &quote(word));
        };
        let body = match (self.deadline_text(), self.script) {
            (Some(secs), Script::Exec) => {
                push(&mut line, &secs);
                push(&mut line, "sh");
                push(
                    &mut line,
                    self.args.first().map(String::as_str).unwrap_or(""),
                );
                escaped_wrap()
            }
            (Some(secs), script) => {
                push(&mut line, &secs);
                push(&mut line, script.id());
                line.push_str(&script_text.quoted);
                self.args.iter().for_each(|a| push(&mut line, a));
                escaped_wrap()
            }
            (None, Script::Exec) => {
                self.args.iter().for_each(|a| push(&mut line, a));
                escaped_eval_first()
            }
            (None, _) => {
                self.args.iter().for_each(|a| push(&mut line, a));
                &script_text.text
            }
        };
        line.push_str(body);
        line.push_str("\")\"' ");
        line.push_str(self.script.id());
        line
    }

    /// The step or script as a person reads and re-runs it (`sh FILE` on the host): the
    /// arguments, then the script itself, without the deadline wrapper. For the `.cmd` log
    /// of a step that went wrong.
    pub fn readable(&self) -> String {
        let mut out = format!("# {}", self.script.id());
        if let Some(secs) = self.deadline_text() {
            let _ = write!(out, ", under a {secs} s deadline (wrap.sh)");
        }
        out.push_str("; run it by hand with: sh THIS_FILE\n");
        if self.script == Script::Exec {
            out.push_str(self.args.first().map(String::as_str).unwrap_or(""));
            out.push('\n');
            return out;
        }
        out.push_str("set --");
        for a in &self.args {
            out.push(' ');
            out.push_str(&quote(a));
        }
        out.push('\n');
        out.push_str(self.script.text());
        out
    }

    /// Reads a [`Call::command_line`] back: which script, with which arguments and
    /// deadline. `None` for any other command line.
    pub fn parse(line: &str) -> Option<Call> {
        // A line run through sudo ([`Call::command_line_as`]) reads back the same.
        let line = match line.strip_prefix("sudo ") {
            Some(rest) => rest.split_once(" -- ")?.1,
            None => line,
        };
        let rest = line.strip_prefix("sh -c 'eval \"$(printf %b \"")?;
        let (escaped, id) = rest.split_once("\")\"' ")?;
        let script = Script::from_id(id)?;
        let program = unescape(escaped)?;
        let set = program.strip_prefix("set --")?;
        let (mut args, body) = words(set)?;
        let deadline = if body == wrap_text() {
            if args.len() < 3 {
                return None;
            }
            let secs: f64 = args[0].parse().ok()?;
            if !secs.is_finite() || secs < 0.0 {
                return None;
            }
            let step: Vec<String> = args.drain(..3).collect();
            if script == Script::Exec {
                args = vec![step[2].clone()];
            } else if step[1] != script.id() || step[2] != script.text() {
                return None;
            }
            Some(Duration::from_secs_f64(secs))
        } else if script == Script::Exec || body != script.text() {
            return None;
        } else {
            None
        };
        Some(Call {
            script,
            args,
            deadline,
        })
    }
}

/// The body of a plain [`Script::Exec`]: run the one argument.
const EVAL_FIRST: &str = "eval \"$1\"\n";

/// `\n` and [`EVAL_FIRST`], escaped.
fn escaped_eval_first() -> &'static str {
    static TEXT: LazyLock<String> = LazyLock::new(|| escaped(&["\n", EVAL_FIRST]));
    &TEXT
}

/// `\n` and the deadline wrapper, escaped: the body of every step.
fn escaped_wrap() -> &'static str {
    static TEXT: LazyLock<String> = LazyLock::new(|| escaped(&["\n", wrap_text()]));
    &TEXT
}

/// A script's text escaped for `printf %b`, computed once per process.
struct Escaped {
    /// ` QUOTED-TEXT`: the text as the third word of a step's `set --` line.
    quoted: String,
    /// `\nTEXT`: the text as the body of a plain call.
    text: String,
}

/// The escaped texts of `script` (empty for [`Script::Exec`], which has no text).
fn escaped_script(script: Script) -> &'static Escaped {
    static ESCAPED: LazyLock<Vec<Escaped>> = LazyLock::new(|| {
        Script::ALL
            .iter()
            .map(|s| Escaped {
                quoted: escaped(&[" ", &quote(s.text())]),
                text: escaped(&["\n", s.text()]),
            })
            .collect()
    });
    &ESCAPED[script.index()]
}

/// `parts`, one after the other, escaped by [`escape_into`].
fn escaped(parts: &[&str]) -> String {
    let mut out = String::new();
    parts.iter().for_each(|part| escape_into(&mut out, part));
    out
}

/// Appends `text` escaped for `printf %b` inside double quotes inside single quotes (see
/// [`Call::command_line`]): newline as `\n`; `\`, `'`, `"`, `$`, `` ` ``, `!`, other control
/// characters and every non-ASCII byte as `\0NNN`.
fn escape_into(out: &mut String, text: &str) {
    for &b in text.as_bytes() {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\\' | b'\'' | b'"' | b'$' | b'`' | b'!' => push_octal(out, b),
            0x20..=0x7e => out.push(char::from(b)),
            _ => push_octal(out, b),
        }
    }
}

/// `\0NNN`, the byte's three octal digits.
fn push_octal(out: &mut String, b: u8) {
    out.push_str("\\0");
    for shift in [6, 3, 0] {
        out.push(char::from(b'0' + ((b >> shift) & 7)));
    }
}

/// Undoes the `printf %b` escaping of [`Call::command_line`].
fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1)? {
            b'n' => {
                out.push(b'\n');
                i += 2;
            }
            b'0' => {
                let digits = std::str::from_utf8(bytes.get(i + 2..i + 5)?).ok()?;
                out.push(u8::from_str_radix(digits, 8).ok()?);
                i += 5;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Reads the words [`quote`] wrote, separated by spaces, up to the end of the line; returns
/// them and the text after that line.
fn words(text: &str) -> Option<(Vec<String>, &str)> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            ' ' => words.extend(word.take()),
            '\n' => {
                words.extend(word.take());
                return Some((words, &text[i + 1..]));
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()?.1 {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).push(chars.next()?.1),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests;
