//! Every command capo sends to a host goes through here: as the login user, or through sudo
//! (the inventory's `become = "sudo"`).
//!
//! Without a password (`--ask-become-pass` not given) a command runs as `sudo -n`: a sudo that
//! would want a password fails at once, and [`Command::failure`] says so in capo's words.
//! With one, it runs as `sudo -S -p PROMPT`: sudo prints PROMPT on stderr when, and only
//! when, it wants the password, and reads it from stdin one byte at a time up to the newline,
//! so what follows on stdin reaches the command intact. The password is written only once
//! the prompt is seen: with NOPASSWD (or cached credentials) sudo reads nothing, and a
//! password written blindly would be read by the command itself (the lock holder reads its
//! stdin for as long as it holds the lock). A second prompt means the password was wrong: the
//! command is stopped there (its channel closed) rather than left waiting for another.
//! The prompt is stripped from stderr before anyone (logs, events, reports) sees it.

use std::sync::Arc;
use std::time::Duration;

use capo_inventory::{Become, Settings};
use capo_scripts::{Call, Sudo};
use capo_ssh::{Exec, ExecEvent, ExitStatus, Opened, Session, SshError};
use zeroize::Zeroizing;

use crate::outcome::{ErrorKind, HostError};

/// How long writing the password to sudo may take.
const PASSWORD_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of a command's stderr kept from before its first output, where sudo's own messages
/// are.
const EARLY_STDERR: usize = 4096;

/// The sudo password of a run (`--ask-become-pass`). It is only ever written to sudo's stdin;
/// `Debug` does not show it, and its memory is zeroed when the last copy is dropped.
#[derive(Clone)]
pub struct BecomePassword(Arc<Zeroizing<String>>);

impl BecomePassword {
    /// Keeps `password` (without its newline).
    pub fn new(password: String) -> BecomePassword {
        BecomePassword(Arc::new(Zeroizing::new(password)))
    }

    /// The password as sudo reads it: one line.
    fn line(&self) -> Zeroizing<Vec<u8>> {
        let mut line = Zeroizing::new(Vec::with_capacity(self.0.len() + 1));
        line.extend_from_slice(self.0.as_bytes());
        line.push(b'\n');
        line
    }
}

impl std::fmt::Debug for BecomePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BecomePassword(<redacted>)")
    }
}

/// The prompt `sudo -S -p` prints for a run: unlike anything a command prints, and made only
/// of characters every login shell and sudo read as they are (see [`Sudo::new`]).
pub(crate) fn prompt_for(run_id: &str) -> String {
    let id: String = run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("capo-sudo-password-{id}:")
}

/// How a host's commands run: as the login user, or through sudo (with or without a
/// password to answer its prompt).
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    sudo: Option<Sudo>,
    password: Option<BecomePassword>,
    login_user: String,
}

impl Remote {
    /// The way `settings` says commands run, with the run's password and prompt when
    /// `--ask-become-pass` gave one. Fails (kind `auth`) on a become_user sudo cannot take as
    /// one plain word (the inventory already refuses those).
    pub(crate) fn new(
        settings: &Settings,
        password: Option<&BecomePassword>,
        prompt: &str,
    ) -> Result<Remote, HostError> {
        let sudo = match settings.become_method {
            Become::None => None,
            Become::Sudo => Some(
                Sudo::new(&settings.become_user, password.is_some().then_some(prompt))
                    .map_err(|e| HostError::new(ErrorKind::Auth, e.to_string()))?,
            ),
        };
        Ok(Remote {
            password: sudo.as_ref().and(password.cloned()),
            sudo,
            login_user: settings.user.clone(),
        })
    }

    /// As the login user, for callers without a host's settings at hand.
    #[cfg(test)]
    pub(crate) fn plain(login_user: &str) -> Remote {
        Remote {
            sudo: None,
            password: None,
            login_user: login_user.to_string(),
        }
    }

    /// The exact command line sent for `call`.
    pub(crate) fn command_line(&self, call: &Call) -> String {
        call.command_line_as(self.sudo.as_ref())
    }

    /// Starts `call` on the host.
    pub(crate) async fn exec(&self, session: &Session, call: &Call) -> Result<Command, SshError> {
        let exec = session.exec(&self.command_line(call)).await?;
        Ok(self.command(exec))
    }

    /// Starts `call` on the host, on a channel opened ahead (`None`: a fresh one).
    pub(crate) async fn exec_on(
        &self,
        session: &Session,
        opened: Option<Opened>,
        call: &Call,
    ) -> Result<Command, SshError> {
        match opened {
            Some(opened) => {
                Ok(self.command(session.exec_on(opened, &self.command_line(call)).await?))
            }
            None => self.exec(session, call).await,
        }
    }

    fn command(&self, exec: Exec) -> Command {
        Command {
            exec: Some(exec),
            sudo: self.sudo.is_some(),
            watch: self
                .sudo
                .as_ref()
                .and_then(Sudo::prompt)
                .map(PromptWatch::new),
            password: self.password.clone(),
            login_user: self.login_user.clone(),
            output_seen: false,
            early_stderr: Vec::new(),
            failure: None,
            lost: None,
        }
    }
}

/// A command started by [`Remote::exec`]: [`Exec`]'s events, with sudo's prompt answered and
/// taken out of stderr, and sudo's own refusals turned into [`Command::failure`].
pub(crate) struct Command {
    /// `None` once stopped here (a wrong password).
    exec: Option<Exec>,
    sudo: bool,
    /// sudo's prompt, when it may ask for the password.
    watch: Option<PromptWatch>,
    password: Option<BecomePassword>,
    login_user: String,
    /// The command printed on stdout: sudo is done, and it runs.
    output_seen: bool,
    early_stderr: Vec<u8>,
    failure: Option<String>,
    /// Why no exit status came, when the channel ended without one.
    lost: Option<SshError>,
}

impl Command {
    /// The next event; `None` once the command's channel has closed (or capo stopped it
    /// after a wrong password: see [`Command::failure`]).
    pub(crate) async fn next(&mut self) -> Option<ExecEvent> {
        loop {
            let exec = self.exec.as_mut()?;
            let Some(event) = exec.next().await else {
                self.lost = exec.missing_exit_error();
                self.exec = None;
                // What was held back was not the prompt after all.
                let held = self
                    .watch
                    .as_mut()
                    .map(PromptWatch::flush)
                    .unwrap_or_default();
                return (!held.is_empty()).then(|| ExecEvent::Stderr(held.into()));
            };
            match event {
                ExecEvent::Stdout(bytes) => {
                    self.output_seen = true;
                    return Some(ExecEvent::Stdout(bytes));
                }
                ExecEvent::Stderr(bytes) => {
                    if !self.output_seen && self.early_stderr.len() < EARLY_STDERR {
                        let take = (EARLY_STDERR - self.early_stderr.len()).min(bytes.len());
                        self.early_stderr.extend_from_slice(&bytes[..take]);
                    }
                    let Some(watch) = self.watch.as_mut() else {
                        return Some(ExecEvent::Stderr(bytes));
                    };
                    let (shown, heard) = watch.feed(&bytes);
                    match heard {
                        Heard::Nothing => {}
                        Heard::Asked => {
                            self.answer().await;
                            if self.failure.is_some() {
                                self.exec = None;
                                return None;
                            }
                        }
                        Heard::AskedAgain => {
                            // The password was wrong. Stop here; the channel closing ends
                            // sudo's read.
                            self.failure = Some("sudo: incorrect password".into());
                            self.exec = None;
                            return None;
                        }
                    }
                    if !shown.is_empty() {
                        return Some(ExecEvent::Stderr(shown.into()));
                    }
                }
                ExecEvent::Exit(status) => {
                    if self.sudo && !self.output_seen && status != ExitStatus::Code(0) {
                        self.failure = sudo_refusal(&self.early_stderr, &self.login_user);
                    }
                    return Some(ExecEvent::Exit(status));
                }
            }
        }
    }

    /// Writes the password, once sudo asked for it.
    async fn answer(&mut self) {
        let (Some(exec), Some(password)) = (self.exec.as_mut(), self.password.as_ref()) else {
            return;
        };
        let line = password.line();
        match tokio::time::timeout(PASSWORD_WRITE_TIMEOUT, exec.write_stdin(&line)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.failure = Some(format!("sudo: cannot send the password: {e}")),
            Err(_) => self.failure = Some("sudo: cannot send the password: timed out".into()),
        }
    }

    /// Why sudo refused to run the command (kind `auth`), once the command has ended.
    pub(crate) fn failure(&self) -> Option<HostError> {
        self.failure
            .as_ref()
            .map(|m| HostError::new(ErrorKind::Auth, m.clone()))
    }

    /// Closes the command's stdin (the lock holder lets go of the lock).
    pub(crate) async fn close_stdin(&mut self) -> Result<(), SshError> {
        match self.exec.as_mut() {
            Some(exec) => exec.close_stdin().await,
            None => Ok(()),
        }
    }

    /// After [`Command::next`] returned `None` without an exit status: why.
    pub(crate) fn missing_exit_error(&mut self) -> Option<SshError> {
        self.lost.take()
    }
}

/// Watches a command's stderr for sudo's prompt, chunk by chunk, taking it out.
#[derive(Debug)]
struct PromptWatch {
    prompt: Vec<u8>,
    /// Stderr held back because it may be the start of the prompt.
    held: Vec<u8>,
    prompts: u32,
}

/// What a chunk of stderr said about sudo's prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heard {
    /// No prompt: write nothing.
    Nothing,
    /// sudo asked for the password, for the first time: answer it, once.
    Asked,
    /// sudo asked again: the password was wrong.
    AskedAgain,
}

impl PromptWatch {
    fn new(prompt: &str) -> PromptWatch {
        PromptWatch {
            prompt: prompt.as_bytes().to_vec(),
            held: Vec::new(),
            prompts: 0,
        }
    }

    /// Takes a chunk of stderr: what of it to show (prompts taken out, a tail that may be
    /// the start of one held back), and whether sudo asked.
    fn feed(&mut self, chunk: &[u8]) -> (Vec<u8>, Heard) {
        let mut text = std::mem::take(&mut self.held);
        text.extend_from_slice(chunk);
        let mut shown = Vec::with_capacity(text.len());
        let before = self.prompts;
        let mut i = 0;
        while i < text.len() {
            let rest = &text[i..];
            if rest.starts_with(&self.prompt) {
                self.prompts += 1;
                i += self.prompt.len();
            } else if self.prompt.starts_with(rest) {
                self.held = rest.to_vec();
                break;
            } else {
                shown.push(text[i]);
                i += 1;
            }
        }
        let heard = match (before, self.prompts) {
            (b, a) if a == b => Heard::Nothing,
            (0, 1) => Heard::Asked,
            _ => Heard::AskedAgain,
        };
        (shown, heard)
    }

    /// What is still held back, once stderr has ended.
    fn flush(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

/// What sudo said when it ran nothing: a password it could not ask for, or its own error line.
fn sudo_refusal(early_stderr: &[u8], login_user: &str) -> Option<String> {
    let text = String::from_utf8_lossy(early_stderr);
    if text.contains("a password is required") {
        return Some(format!(
            "sudo requires a password for {login_user} (use --ask-become-pass or NOPASSWD)"
        ));
    }
    if text.contains("incorrect password") {
        return Some("sudo: incorrect password".into());
    }
    let line = text.lines().map(str::trim).rfind(|l| l.contains("sudo"))?;
    Some(if line.starts_with("sudo:") {
        line.to_string()
    } else {
        format!("sudo failed: {line}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_wanted_only_when_sudo_asks_and_only_once() {
        // NOPASSWD or cached credentials: sudo asks nothing, whatever the command prints.
        let mut w = PromptWatch::new("capo-pw:");
        for chunk in [
            &b"sudo: unable to resolve host h\n"[..],
            b"capo-",
            b"x\n",
            b"0\n",
        ] {
            assert_eq!(w.feed(chunk).1, Heard::Nothing);
        }
        assert_eq!(w.flush(), b"");
        // A prompt split across chunks is one question, taken out of what is shown.
        let mut w = PromptWatch::new("capo-pw:");
        assert_eq!(w.feed(b"warn\ncapo-"), (b"warn\n".to_vec(), Heard::Nothing));
        assert_eq!(w.feed(b"pw:"), (vec![], Heard::Asked));
        assert_eq!(w.feed(b"err\n"), (b"err\n".to_vec(), Heard::Nothing));
        // Asked again after the answer: a wrong password.
        assert_eq!(
            w.feed(b"Sorry, try again.\ncapo-pw:"),
            (b"Sorry, try again.\n".to_vec(), Heard::AskedAgain)
        );
        // Two questions at once never get an answer either.
        let mut w = PromptWatch::new("capo-pw:");
        assert_eq!(w.feed(b"capo-pw:capo-pw:").1, Heard::AskedAgain);
        // A tail that only looked like the start of the prompt is shown in the end.
        let mut w = PromptWatch::new("capo-pw:");
        assert_eq!(w.feed(b"x capo-"), (b"x ".to_vec(), Heard::Nothing));
        assert_eq!(w.flush(), b"capo-");
    }

    #[test]
    fn sudo_refusals_read_as_capo_says_them() {
        assert_eq!(
            sudo_refusal(b"sudo: a password is required\n", "deploy").as_deref(),
            Some("sudo requires a password for deploy (use --ask-become-pass or NOPASSWD)")
        );
        assert_eq!(
            sudo_refusal(b"sudo: unknown user nosuch\n", "d").as_deref(),
            Some("sudo: unknown user nosuch")
        );
        assert_eq!(
            sudo_refusal(b"sh: 1: sudo: not found\n", "d").as_deref(),
            Some("sudo failed: sh: 1: sudo: not found")
        );
        assert_eq!(sudo_refusal(b"", "d"), None);
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let p = BecomePassword::new("hunter2".into());
        assert_eq!(format!("{p:?}"), "BecomePassword(<redacted>)");
        assert_eq!(&p.line()[..], b"hunter2\n");
        assert_eq!(
            prompt_for("20261124T224501Z-1a2b"),
            "capo-sudo-password-20261124T224501Z-1a2b:"
        );
        assert!(Sudo::new("root", Some(&prompt_for("20261124T224501Z-1a2b"))).is_ok());
        assert!(Remote::plain("x").sudo.is_none());
    }
}
