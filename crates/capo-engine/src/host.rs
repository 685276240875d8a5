//! The per-host runner: one task per host that connects through the run's connector, takes
//! the host's lock, runs the job's steps (streaming their output to logs and events, within
//! their deadline, killing them on the host when they overrun or the run is cut short), and
//! folds everything into the host's outcome.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capo_inventory::Host;
use capo_schema::StopReason;
use capo_scripts::Script;
use capo_ssh::{ExecEvent, ExitStatus, Opened, Session};
use tokio::sync::watch;

use crate::capture::{write_logs, Capture, LogWrite};
use crate::connector::{Connected, Connector, NotConnected, Refused};
use crate::event::Event;
use crate::inline::{Inline, Splitter};
use crate::jobs::{self, Job};
use crate::options::{hard_stop, EngineOptions, Stop};
use crate::outcome::{
    ErrorKind, HostError, HostOutcome, HostStatus, HostTiming, StepName, StepRecord,
};
use crate::remote::{prompt_for, Command, Remote};
use crate::scheduler::Emitter;
use crate::steps::{self, Marks, Step};

/// Bytes of stdout kept from the start of a step, where the scripts' first markers are.
const HEAD_BYTES: usize = 1024;

/// How long the controller waits beyond `command_timeout` before it gives up on a step itself;
/// normally the host's own `timeout` ends the step first and says so with exit 124.
const CLIENT_DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// The outcome of a host that has not done anything (yet).
fn blank_outcome(host: &Host, run_dir: &Path) -> HostOutcome {
    blank(
        &host.name,
        &host.address,
        host.settings.port,
        run_dir.join(safe_dir_name(&host.name)),
    )
}

/// An outcome with nothing learnt yet: the one list of every field's starting value.
fn blank(name: &str, address: &str, port: u16, log_dir: PathBuf) -> HostOutcome {
    HostOutcome {
        name: name.to_string(),
        address: address.to_string(),
        port,
        status: HostStatus::Skipped,
        error: None,
        rev_before: None,
        rev_after: None,
        duration: Duration::ZERO,
        steps: Vec::new(),
        log_dir,
        connect_attempts: 0,
        locked: None,
        target: None,
        incoming: None,
        puppet: None,
        check: None,
        disabled: None,
        run_record_error: None,
        host_state: None,
        pull: None,
        unpinned: None,
        timing: None,
    }
}

/// The error of a host never started, for `reason`.
pub(super) fn not_started(kind: ErrorKind, reason: &dyn std::fmt::Display) -> HostError {
    HostError::new(kind, format!("not started: {reason}"))
}

/// The outcome of a host never started, with why.
pub(super) fn skipped(host: &Host, run_dir: &Path, error: HostError) -> HostOutcome {
    HostOutcome {
        error: Some(error),
        ..blank_outcome(host, run_dir)
    }
}

/// The outcome of a host whose task panicked; `None` when even its name was lost.
pub(super) fn internal_failure(host: Option<Host>, run_dir: &Path, why: &str) -> HostOutcome {
    let error = Some(HostError::new(
        ErrorKind::Internal,
        format!("capo internal error: {why}"),
    ));
    match host {
        Some(host) => HostOutcome {
            status: HostStatus::Failed,
            error,
            ..blank_outcome(&host, run_dir)
        },
        None => HostOutcome {
            status: HostStatus::Failed,
            error,
            ..blank("?", "?", 0, run_dir.to_path_buf())
        },
    }
}

/// A file-system-safe directory name for a host, so an inventory name can never escape the run dir.
pub fn safe_dir_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => format!("_{cleaned}"),
        _ => cleaned,
    }
}

/// How one host's work ended, before it is folded into the outcome.
pub(super) type Verdict = (HostStatus, Option<HostError>);

/// One host's run: what a job works with, and the outcome it fills in.
pub(super) struct HostRun {
    /// The host, with its settings.
    pub host: Host,
    /// The run's options.
    pub opts: Arc<EngineOptions>,
    connector: Arc<Connector>,
    emit: Emitter,
    stop: watch::Receiver<Stop>,
    log_dir: PathBuf,
    /// How every command reaches the host (as the login user, or through sudo); `Err`: it
    /// cannot, and the host fails before it is contacted.
    remote: Result<Remote, HostError>,
    /// What the host's report says; the runner sets status, error and duration at the end.
    pub outcome: HostOutcome,
    /// When the run started: steps and the host's timing are measured from there, so that
    /// one timeline holds every host.
    run_started: Instant,
    /// What the last step sent inline after its output (Puppet's results), if anything.
    pub inline: Option<Inline>,
    /// A channel opened for the next step while the one before it ran.
    ahead: Option<Opened>,
}

/// Runs the job on one host, start to end, and returns its outcome; `run_started` is when
/// the run began, which the host's timing counts from.
pub(super) async fn run_host(
    host: Host,
    opts: Arc<EngineOptions>,
    connector: Arc<Connector>,
    emit: Emitter,
    stop: watch::Receiver<Stop>,
    run_started: Instant,
) -> HostOutcome {
    let started = Instant::now();
    // Created with the first log written into it.
    let log_dir = opts.meta.run_dir.join(safe_dir_name(&host.name));
    let outcome = HostOutcome {
        timing: Some(HostTiming {
            started: started.saturating_duration_since(run_started),
            ..HostTiming::default()
        }),
        ..blank_outcome(&host, &opts.meta.run_dir)
    };
    let remote = Remote::new(
        &host.settings,
        opts.become_password.as_ref(),
        &prompt_for(&opts.meta.run_id),
    );
    let mut run = HostRun {
        remote,
        host,
        opts,
        connector,
        emit,
        stop,
        log_dir,
        outcome,
        run_started,
        inline: None,
        ahead: None,
    };
    let opts = run.opts.clone();
    let (status, error) = jobs::run(&opts.mode, &mut run).await;
    run.outcome.status = status;
    run.outcome.error = error;
    run.outcome.duration = started.elapsed();
    run.outcome
}

impl HostRun {
    /// Connects, runs `job` (under the host's lock if it takes one), and closes.
    pub(super) async fn work<J: Job>(&mut self, job: &J) -> Verdict {
        if let Err(error) = &self.remote {
            return (HostStatus::Failed, Some(error.clone()));
        }
        let session = match self.connect().await {
            Ok(session) => session,
            Err(verdict) => return verdict,
        };
        let verdict = self.run_locked(job, &session).await;
        session.close().await;
        verdict
    }

    /// Runs `job`, holding the host's lock around it when the job takes one and the
    /// inventory does not say `lock = false`; records in the outcome whether it did. A host
    /// disabled for runs (`capo disable`, `puppet agent --disable`) is left alone: the lock
    /// script says so before it takes anything, also under `lock = false`.
    async fn run_locked<J: Job>(&mut self, job: &J, session: &Session) -> Verdict {
        if !J::TAKES_LOCK {
            return job.run(self, session).await;
        }
        let started = Instant::now();
        // The job's first step gets a channel opened while the lock is taken.
        let (locked, opened) = tokio::join!(self.lock(session), session.open());
        self.ahead = Some(opened);
        if let Some(timing) = &mut self.outcome.timing {
            timing.lock = Some(started.elapsed());
        }
        let holder = match locked {
            Ok(Locked::Held(holder)) => Some(holder),
            Ok(Locked::Nothing) => None,
            Ok(Locked::Off) => {
                // `lock = false`: no lock, no step lock, and the report says so.
                self.outcome.locked = Some(false);
                return job.run(self, session).await;
            }
            Err(verdict) => return verdict,
        };
        if holder.is_some() {
            self.outcome.locked = Some(true);
        }
        let verdict = job.run(self, session).await;
        if let Some(mut holder) = holder {
            // The holder's `cat` ends on EOF, and the lock dies with it.
            let _ = holder.close_stdin().await;
        }
        verdict
    }

    /// How commands reach the host; an error verdict when they cannot (checked before
    /// connecting, so only a bug gets here with one).
    pub(super) fn remote(&self) -> Result<&Remote, Verdict> {
        self.remote
            .as_ref()
            .map_err(|error| (HostStatus::Failed, Some(error.clone())))
    }

    /// What a step that changes the checkout writes into its step lock: this run's holder
    /// line, or nothing, which means no step lock, under `lock = false`.
    pub(super) fn step_lock_holder(&self) -> &str {
        if self.host.settings.lock {
            &self.opts.holder
        } else {
            ""
        }
    }

    /// Reaches the host through the run's connector; the attempts go into the outcome
    /// either way, a failure becomes the host's verdict.
    async fn connect(&mut self) -> Result<Session, Verdict> {
        let started = Instant::now();
        let connected = self.connector.connect(&self.host, &mut self.stop).await;
        if let Some(timing) = &mut self.outcome.timing {
            timing.connect = started.elapsed();
        }
        match connected {
            Ok(Connected { session, attempts }) => {
                self.outcome.connect_attempts = attempts;
                Ok(session)
            }
            Err(NotConnected { attempts, why }) => {
                self.outcome.connect_attempts = attempts;
                Err(match why {
                    Refused::Unreachable(error) => (HostStatus::Unreachable, Some(error)),
                    Refused::Stopped(reason) => cancelled("connect", reason),
                })
            }
        }
    }

    /// Takes the host's lock (under `lock = false`, only asks whether the host is
    /// disabled). A disabled host ends here, `disabled`. A lock that cannot be taken there at
    /// all (no `flock`, a git directory the user cannot write) fails the host: runs that
    /// cannot exclude each other must not go on as if they could.
    async fn lock(&mut self, session: &Session) -> Result<Locked, Verdict> {
        let holder = if self.host.settings.lock {
            self.opts.holder.as_str()
        } else {
            ""
        };
        let call = steps::lock_call(&self.host.settings, holder);
        let failed = |why: String| {
            Err((
                HostStatus::Failed,
                Some(HostError::new(
                    ErrorKind::Locked,
                    format!("could not take the host lock: {why}"),
                )),
            ))
        };
        let mut exec = match self.remote()?.exec(session, &call).await {
            Ok(exec) => exec,
            Err(e) => return failed(e.to_string()),
        };
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut exit = None;
        let waited = tokio::time::timeout(self.host.settings.connect_timeout, async {
            while let Some(event) = exec.next().await {
                match event {
                    ExecEvent::Stdout(b) => {
                        stdout.extend_from_slice(&b);
                        let marks = Marks::parse(&stdout);
                        if matches!(marks.get("lock"), Some("ok" | "none" | "off" | "disabled"))
                            && stdout.ends_with(b"\n")
                        {
                            return;
                        }
                    }
                    ExecEvent::Stderr(b) => stderr.extend_from_slice(&b[..b.len().min(4096)]),
                    ExecEvent::Exit(s) => exit = Some(s),
                }
                if stdout.len() > 64 * 1024 {
                    return;
                }
            }
        })
        .await;
        // sudo refused (a password it wants, a wrong one): nothing ran, nothing will.
        if let Some(error) = exec.failure() {
            return Err((HostStatus::Failed, Some(error)));
        }
        if waited.is_err() {
            return failed(format!(
                "no answer within {}",
                capo_inventory::duration::format(self.host.settings.connect_timeout)
            ));
        }
        let marks = Marks::parse(&stdout);
        match (marks.get("lock"), exit) {
            (Some("ok"), _) => Ok(Locked::Held(Box::new(exec))),
            (Some("none"), _) => Ok(Locked::Nothing),
            (Some("off"), _) => Ok(Locked::Off),
            (Some("disabled"), _) => {
                self.outcome.disabled = steps::disabled(&marks);
                Err((HostStatus::Disabled, None))
            }
            (Some("held" | "busy"), _) => {
                Err((HostStatus::Failed, Some(steps::locked_error(&marks))))
            }
            (Some("failed"), _) => Err((
                HostStatus::Failed,
                Some(steps::lock_error(&marks, &String::from_utf8_lossy(&stderr))),
            )),
            (_, exit) => {
                let text = String::from_utf8_lossy(&stderr);
                failed(format!(
                    "lock script ended ({}) {}",
                    match exit {
                        Some(ExitStatus::Code(c)) => format!("exit {c}"),
                        Some(ExitStatus::Signal { name, .. }) => format!("signal {name}"),
                        None => "without status".into(),
                    },
                    crate::outcome::last_line(&text).unwrap_or("")
                ))
            }
        }
    }

    /// Records a step that ended, in the outcome and as an event.
    pub(super) async fn finished(&mut self, record: StepRecord) {
        self.emit
            .send(Event::StepFinished {
                host: self.host.name.clone(),
                record: Box::new(record.clone()),
            })
            .await;
        self.outcome.steps.push(record);
    }

    /// [`HostRun::run_step`], opening the channel of the step after it meanwhile: that step
    /// then waits one round trip less.
    pub(super) async fn run_step_then(
        &mut self,
        session: &Session,
        step: &Step,
    ) -> (StepRecord, StepEnd, Marks) {
        let (ran, opened) = tokio::join!(self.run_step(session, step), session.open());
        self.ahead = Some(opened);
        ran
    }

    /// Runs one step (on the channel opened for it, if any); returns its record, how it
    /// ended, and the marker lines it printed.
    pub(super) async fn run_step(
        &mut self,
        session: &Session,
        step: &Step,
    ) -> (StepRecord, StepEnd, Marks) {
        self.emit
            .send(Event::StepStarted {
                host: self.host.name.clone(),
                step: step.name,
            })
            .await;
        let started = Instant::now();
        let started_at = started.saturating_duration_since(self.run_started);
        let name = step.name.as_str();
        let log = |ext: &str| -> PathBuf { self.log_dir.join(format!("{name}.{ext}")) };
        let tail_bytes = self.opts.tail_bytes;
        let mut out = Capture::new(&log("stdout"), tail_bytes);
        let mut err = Capture::new(&log("stderr"), tail_bytes);
        let mut head = Vec::new();
        // The apply and plan steps send Puppet's results after its output (crate::inline).
        let mut split =
            matches!(step.call.script, Script::Apply | Script::Plan).then(Splitter::new);
        let mut own = Vec::new();
        let timeout = self.host.settings.command_timeout;
        let stream = self.opts.stream_output;
        let (emit, host) = (&self.emit, self.host.name.as_str());

        let end = {
            let remote = self.remote.as_ref().map_err(Clone::clone);
            let opened = self.ahead.take();
            let streamed = async {
                let remote = remote.map_err(Ended::Refused)?;
                let mut exec = remote
                    .exec_on(session, opened, &step.call)
                    .await
                    .map_err(|e| Ended::Lost(e.to_string()))?;
                let mut status = None;
                while let Some(event) = exec.next().await {
                    match event {
                        ExecEvent::Stdout(bytes) => {
                            let bytes = match &mut split {
                                Some(split) => {
                                    own.clear();
                                    split.feed(&bytes, &mut own);
                                    &own[..]
                                }
                                None => &bytes[..],
                            };
                            if bytes.is_empty() {
                                continue;
                            }
                            keep_head(&mut head, bytes);
                            out.write(bytes).await;
                            if stream {
                                emit.send(output(host, step.name, false, bytes)).await;
                            }
                        }
                        ExecEvent::Stderr(bytes) => {
                            err.write(&bytes).await;
                            if stream {
                                emit.send(output(host, step.name, true, &bytes)).await;
                            }
                        }
                        ExecEvent::Exit(s) => status = Some(s),
                    }
                }
                if let Some(error) = exec.failure() {
                    return Err(Ended::Refused(error));
                }
                match status {
                    Some(status) => Ok(status),
                    None => Err(Ended::Lost(
                        exec.missing_exit_error()
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| "command ended without an exit status".into()),
                    )),
                }
            };
            tokio::select! {
                r = tokio::time::timeout(timeout + steps::KILL_AFTER + CLIENT_DEADLINE_MARGIN, streamed) => match r {
                    Err(_) => StepEnd::TimedOut(timeout),
                    Ok(Err(Ended::Lost(why))) if session.jump_lost() => StepEnd::JumpLost(why),
                    Ok(Err(Ended::Lost(why))) => StepEnd::Lost(why),
                    Ok(Err(Ended::Refused(error))) => StepEnd::Refused(error),
                    Ok(Ok(ExitStatus::Code(code))) => StepEnd::Exited(i32::try_from(code).unwrap_or(i32::MAX)),
                    Ok(Ok(ExitStatus::Signal { name, .. })) => StepEnd::Signal(name),
                },
                reason = hard_stop(&mut self.stop) => StepEnd::Cancelled(reason),
            }
        };

        // Output held back as a maybe-marker, or a block the step did not finish sending.
        self.inline = None;
        if let Some(split) = split {
            let mut rest = Vec::new();
            self.inline = split.finish(&mut rest);
            if !rest.is_empty() {
                keep_head(&mut head, &rest);
                out.write(&rest).await;
                if stream {
                    emit.send(output(host, step.name, false, &rest)).await;
                }
            }
        }
        let mut marks = Marks::parse(&head);
        // The step may still be running on the host; end it there, where it runs.
        if matches!(end, StepEnd::TimedOut(_) | StepEnd::Cancelled(_)) {
            if let (Some(pid), Ok(remote)) = (marks.pid(), &self.remote) {
                kill_remote(session, remote, pid).await;
            }
        }
        let (out, out_last, out_error) = out.finish();
        let (err, err_last, err_error) = err.finish();
        // The script that ran, with its arguments, as a person reads and re-runs it, for
        // whoever debugs a failure from the logs, written with the rest of the step's logs in
        // one trip. Only then: the report has the command as typed, and at thousands of hosts
        // every file created costs (an inode, on ext4 ~0.1 ms).
        let mut logs = Vec::with_capacity(3);
        if !end.ended_well(step.name) {
            logs.push(LogWrite::file(
                log("cmd"),
                step.call.readable().into_bytes(),
            ));
        }
        logs.extend(out_last);
        logs.extend(err_last);
        let log_error = write_logs(logs).await.or(out_error).or(err_error);
        let (stdout_bytes, stderr_bytes) = (out.total(), err.total());
        let stdout_tail = out.into_bytes();
        // Markers near the start (the pid) are in `head`, the rest near the end, in the tail;
        // read each byte once, from the head only what the tail does not also hold.
        let before_tail =
            usize::try_from(stdout_bytes - stdout_tail.len() as u64).unwrap_or(usize::MAX);
        marks = Marks::parse(&head[..head.len().min(before_tail)]);
        marks.extend(Marks::parse(&stdout_tail));
        // The host's own watchdog ended the step at the deadline.
        let end = match end {
            StepEnd::Exited(_) | StepEnd::Signal(_) if marks.get("deadline").is_some() => {
                StepEnd::TimedOut(timeout)
            }
            end => end,
        };
        let exit_code = match end {
            StepEnd::Exited(code) => Some(code),
            _ => None,
        };
        let stderr_tail = err.into_bytes();
        let record = StepRecord {
            name: step.name,
            command: step.display.clone(),
            exit_code,
            duration: started.elapsed(),
            stdout_bytes,
            stderr_bytes,
            // Judged on the raw tail: the marker lines are part of what the log holds.
            truncated: (stdout_tail.len() as u64) < stdout_bytes
                || (stderr_tail.len() as u64) < stderr_bytes,
            stdout_tail: steps::strip_marks(&stdout_tail),
            stderr_tail,
            log_error,
            started: started_at,
        };
        (record, end, marks)
    }
}

/// Keeps the start of a step's stdout, where the scripts' first markers are.
fn keep_head(head: &mut Vec<u8>, bytes: &[u8]) {
    if head.len() < HEAD_BYTES {
        let take = (HEAD_BYTES - head.len()).min(bytes.len());
        head.extend_from_slice(&bytes[..take]);
    }
}

/// An `Output` event for `-v`.
fn output(host: &str, step: StepName, stderr: bool, bytes: &[u8]) -> Event {
    Event::Output {
        host: host.to_string(),
        step,
        stderr,
        bytes: bytes.to_vec(),
    }
}

/// Ends a step's whole process group on the host, within a few seconds; best effort (the
/// connection may be the thing that failed).
async fn kill_remote(session: &Session, remote: &Remote, pid: u32) {
    let _ = tokio::time::timeout(Duration::from_secs(8), async {
        if let Ok(mut exec) = remote.exec(session, &steps::kill_call(pid)).await {
            while exec.next().await.is_some() {}
        }
    })
    .await;
}

fn cancelled(what: &str, reason: StopReason) -> Verdict {
    (
        HostStatus::Cancelled,
        Some(HostError::new(
            reason.error_kind(),
            format!("{what} cut short: {reason}"),
        )),
    )
}

/// What the lock script did.
enum Locked {
    /// It holds the lock until its stdin closes.
    Held(Box<Command>),
    /// The host has no place for one (no checkout yet: the sync step then says what is
    /// wrong).
    Nothing,
    /// `lock = false`: none taken.
    Off,
}

/// Why a step's stream ended without an exit status.
enum Ended {
    /// The connection or channel went away.
    Lost(String),
    /// sudo refused to run it.
    Refused(HostError),
}

/// How a remote step ended.
pub(super) enum StepEnd {
    Exited(i32),
    Signal(String),
    TimedOut(Duration),
    Lost(String),
    /// The connection went away because the jump host's did (kind `jump`).
    JumpLost(String),
    /// sudo refused to run it (kind `auth`): the step never ran.
    Refused(HostError),
    Cancelled(StopReason),
}

impl StepEnd {
    /// Whether the step exited 0.
    pub(super) fn succeeded(&self) -> bool {
        matches!(self, StepEnd::Exited(0))
    }

    /// Whether `step` did what it was sent for: exit 0, or for Puppet's steps also 2
    /// (`--detailed-exitcodes`: changes made or pending).
    fn ended_well(&self, step: StepName) -> bool {
        self.succeeded()
            || (matches!(self, StepEnd::Exited(2))
                && matches!(step, StepName::Apply | StepName::Plan))
    }

    /// How the host ended when `step` ended this way and the job has nothing more specific
    /// to say.
    pub(super) fn verdict(self, step: &Step) -> Verdict {
        let name = step.name.as_str();
        let failed =
            |kind, message: String| (HostStatus::Failed, Some(HostError::new(kind, message)));
        match self {
            StepEnd::Exited(code) => failed(ErrorKind::Internal, format!("{name} exited {code}")),
            StepEnd::Signal(sig) => failed(
                match step.name {
                    StepName::Sync => ErrorKind::Sync,
                    StepName::Modules => ErrorKind::Modules,
                    StepName::Apply | StepName::Plan => ErrorKind::Puppet,
                    StepName::Exec | StepName::Disable | StepName::Enable => ErrorKind::Command,
                    // capo's own look at the host, which nothing should kill.
                    StepName::Check | StepName::Status => ErrorKind::Internal,
                    StepName::Pull => ErrorKind::Command,
                    // Most of its time is the clone and the packages.
                    StepName::Bootstrap => ErrorKind::Sync,
                },
                format!("{name} was killed by signal {sig}"),
            ),
            StepEnd::TimedOut(after) => failed(
                ErrorKind::Timeout,
                format!(
                    "{name} timed out after {} (command_timeout); stopped on the host",
                    capo_inventory::duration::format(after)
                ),
            ),
            StepEnd::Lost(why) => failed(ErrorKind::Connect, format!("{name}: {why}")),
            StepEnd::JumpLost(why) => failed(ErrorKind::Jump, format!("{name}: {why}")),
            StepEnd::Refused(error) => (HostStatus::Failed, Some(error)),
            StepEnd::Cancelled(reason) => cancelled(name, reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_cannot_escape() {
        assert_eq!(safe_dir_name("web01.example.com"), "web01.example.com");
        assert_eq!(safe_dir_name("../etc"), ".._etc");
        assert_eq!(safe_dir_name(".."), "_..");
        assert_eq!(safe_dir_name("a/b c"), "a_b_c");
        assert_eq!(safe_dir_name(""), "_");
    }
}
