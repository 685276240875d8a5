//! A running remote command: its output and exit status as a stream of events.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use russh::client::Msg;
use russh::{Channel, ChannelMsg, Sig};

use crate::error::SshError;
use crate::session::{channel_error, Shared};

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// Normal exit with this code.
    Code(u32),
    /// Killed by a signal.
    Signal {
        /// Signal name without `SIG`, e.g. `KILL`.
        name: String,
        /// Whether the process dumped core.
        core_dumped: bool,
        /// Server-supplied message, often empty.
        message: String,
    },
}

/// One thing that happened to a running command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    /// A chunk of standard output, as received (not line-aligned).
    Stdout(Bytes),
    /// A chunk of standard error, as received (not line-aligned).
    Stderr(Bytes),
    /// The exit status. More output may still follow it.
    Exit(ExitStatus),
}

/// A command started by [`crate::Session::exec`].
///
/// Read it with [`Exec::next`] until `None`. Output is never accumulated
/// here: when the caller stops reading, russh's bounded channel buffer and
/// the SSH window stop the server from sending more.
///
/// The command's standard input stays open until [`Exec::close_stdin`] (or
/// the end of the channel): a command that reads stdin, like `cat`, waits for
/// input until then. [`Exec::write_stdin`] feeds it.
///
/// Dropping an unfinished `Exec` closes its channel (the remote command then
/// sees its output pipes close; it is not killed).
pub struct Exec {
    /// `None` once the channel has closed.
    channel: Option<Channel<Msg>>,
    /// A message read while waiting for the exec reply, not yet handed out.
    pending: Option<ChannelMsg>,
    exit_seen: bool,
    /// EOF has been sent on the channel; no more input may follow.
    stdin_closed: bool,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Exec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exec")
            .field("open", &self.channel.is_some())
            .field("exit_seen", &self.exit_seen)
            .field("stdin_closed", &self.stdin_closed)
            .finish_non_exhaustive()
    }
}

impl Exec {
    pub(crate) fn new(channel: Channel<Msg>, shared: Arc<Shared>) -> Self {
        Exec {
            channel: Some(channel),
            pending: None,
            exit_seen: false,
            stdin_closed: false,
            shared,
        }
    }

    /// Sends the exec request and waits for the server's verdict. The
    /// caller bounds this with a timeout.
    pub(crate) async fn start(&mut self, command: &str) -> Result<(), SshError> {
        let Some(channel) = self.channel.as_mut() else {
            return Err(self.lost());
        };
        channel
            .exec(true, command)
            .await
            .map_err(|e| channel_error(e, &self.shared))?;
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => return Ok(()),
                Some(ChannelMsg::Failure) => return Err(SshError::ExecRefused),
                Some(ChannelMsg::WindowAdjusted { .. }) => {}
                Some(other) => {
                    // Output or exit before the reply: the command clearly
                    // started. Keep the message for `next`.
                    self.pending = Some(other);
                    return Ok(());
                }
                None => {
                    self.channel = None;
                    return Err(self.lost());
                }
            }
        }
    }

    fn lost(&self) -> SshError {
        SshError::ConnectionLost {
            reason: self.shared.disconnect_reason(),
        }
    }

    /// Next event from the running command; `None` after the channel closed.
    ///
    /// All output is delivered, including output that arrives after the exit
    /// status. If the channel closes without an exit status (connection lost,
    /// server gone), this just returns `None`: callers must treat "no
    /// [`ExecEvent::Exit`] before `None`" as a failure, and can ask
    /// [`Exec::missing_exit_error`] why. A dead connection is detected by
    /// keepalives, so this never hangs on a vanished server for longer than
    /// `keepalive_interval * (keepalive_max + 1)`; a command that merely runs
    /// long is the caller's to time out.
    pub async fn next(&mut self) -> Option<ExecEvent> {
        loop {
            let channel = self.channel.as_mut()?;
            let msg = match self.pending.take() {
                Some(m) => Some(m),
                None => channel.wait().await,
            };
            let event = match msg {
                None | Some(ChannelMsg::Close) => {
                    // Closed by the server (russh already answered the
                    // close) or by a dead connection: nothing left to close.
                    self.channel = None;
                    return None;
                }
                Some(ChannelMsg::Data { data }) => ExecEvent::Stdout(data),
                // ext 1 is SSH_EXTENDED_DATA_STDERR, the only one defined.
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => ExecEvent::Stderr(data),
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    self.exit_seen = true;
                    ExecEvent::Exit(ExitStatus::Code(exit_status))
                }
                Some(ChannelMsg::ExitSignal {
                    signal_name,
                    core_dumped,
                    error_message,
                    ..
                }) => {
                    self.exit_seen = true;
                    ExecEvent::Exit(ExitStatus::Signal {
                        name: signal_name_str(&signal_name),
                        core_dumped,
                        message: error_message,
                    })
                }
                // Eof, window adjustments, late request replies: nothing
                // for the caller.
                Some(_) => continue,
            };
            return Some(event);
        }
    }

    /// Sends `data` to the command's standard input.
    ///
    /// Returns once russh has taken all of it, which the server's flow
    /// control (the SSH window) can hold up: a command that stops reading its
    /// input stalls this call, and so does one whose output fills up while
    /// the caller is not reading it with [`Exec::next`]. Bound it with the
    /// command's timeout, as [`Exec::next`]. A dead connection ends it with
    /// [`SshError::ConnectionLost`] once keepalives notice.
    ///
    /// Fails with [`SshError::InputClosed`] after [`Exec::close_stdin`], or
    /// once [`Exec::next`] has seen the channel close.
    pub async fn write_stdin(&mut self, data: &[u8]) -> Result<(), SshError> {
        if self.stdin_closed {
            return Err(SshError::InputClosed {
                detail: "its input was already closed".to_string(),
            });
        }
        let Some(channel) = self.channel.as_ref() else {
            return Err(self.channel_gone());
        };
        if data.is_empty() {
            // An empty SSH data message is legal but pointless.
            return Ok(());
        }
        let send = channel.data_bytes(Bytes::copy_from_slice(data));
        // russh waits for window space without noticing a dead connection.
        tokio::select! {
            res = send => res.map_err(|e| channel_error(e, &self.shared)),
            () = self.shared.gone() => Err(self.lost()),
        }
    }

    /// Closes the command's standard input (sends EOF on the channel), so a
    /// command reading it, such as `cat`, sees end of file. Output and the
    /// exit status are still read with [`Exec::next`].
    ///
    /// Closing twice, or after the channel has closed, does nothing: the
    /// command's input is closed either way. A connection lost before the EOF
    /// could be sent is [`SshError::ConnectionLost`].
    pub async fn close_stdin(&mut self) -> Result<(), SshError> {
        if self.stdin_closed {
            return Ok(());
        }
        let Some(channel) = self.channel.as_ref() else {
            return Ok(());
        };
        // The send only waits while russh's outgoing queue is full; it fails
        // on its own once the session ends, but there is no reason to wait
        // for that when the connection is known to be gone.
        let res = tokio::select! {
            res = channel.eof() => res.map_err(|e| channel_error(e, &self.shared)),
            () = self.shared.gone() => Err(self.lost()),
        };
        res?;
        self.stdin_closed = true;
        Ok(())
    }

    /// Why input cannot be sent on a channel that has closed.
    fn channel_gone(&self) -> SshError {
        match self.shared.disconnect_reason() {
            Some(reason) => SshError::ConnectionLost {
                reason: Some(reason),
            },
            None => SshError::InputClosed {
                detail: "it has ended (channel closed)".to_string(),
            },
        }
    }

    /// After [`Exec::next`] returned `None`: why no exit status was seen
    /// ([`SshError::ConnectionLost`] or [`SshError::NoExitStatus`]), or `None`
    /// if there was one or the command has not finished yet.
    pub fn missing_exit_error(&self) -> Option<SshError> {
        if self.exit_seen || self.channel.is_some() {
            return None;
        }
        Some(match self.shared.disconnect_reason() {
            Some(reason) => SshError::ConnectionLost {
                reason: Some(reason),
            },
            None => SshError::NoExitStatus,
        })
    }
}

impl Drop for Exec {
    fn drop(&mut self) {
        let Some(channel) = self.channel.take() else {
            return;
        };
        // Closing needs an async send; without a runtime (dropped during
        // shutdown) the connection going away closes the channel anyway.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), channel.close()).await;
            });
        }
    }
}

fn signal_name_str(sig: &Sig) -> String {
    match sig {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(name) => name,
    }
    .to_string()
}
