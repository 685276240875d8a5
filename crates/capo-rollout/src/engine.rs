//! The engine: one task per host, every step over that host's one SSH connection, bounded
//! concurrency, and events out. It never formats anything for people.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capo_inventory::{Host, HostKeyCheck};
use capo_ssh::{ConnectConfig, ExecEvent, ExitStatus, HostKeyPolicy, Session, SshError};
use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::capture::{Capture, Tail};
use crate::event::{Event, RunMeta};
use crate::outcome::{
    classify_apply, puppet_hint, ErrorKind, HostError, HostOutcome, HostStatus, StepRecord,
};
use crate::steps::{self, Step};

/// Bytes of each stream kept in memory for the report; the rest is only in the log files.
pub const DEFAULT_TAIL_BYTES: usize = 64 * 1024;

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Facts passed through to reporters; `run_dir` is also where logs go.
    pub meta: RunMeta,
    /// At most this many hosts at a time.
    pub concurrency: usize,
    /// Bytes of each step's stdout and stderr kept in memory.
    pub tail_bytes: usize,
}

/// Runs a rollout over `hosts` (in the given order) and sends every event to `events`.
///
/// Every host ends with exactly one `HostFinished`, then `RunFinished` is sent last. A closed
/// event channel does not stop the run: the hosts' work matters more than its display.
pub async fn run(hosts: Vec<Host>, options: EngineOptions, events: mpsc::Sender<Event>) {
    let started = Instant::now();
    let opts = Arc::new(options);
    let emit = Emitter(events);
    emit.send(Event::RunStarted {
        meta: opts.meta.clone(),
        hosts: hosts.iter().map(|h| h.name.clone()).collect(),
        started_at: Utc::now(),
    })
    .await;

    let concurrency = opts.concurrency.max(1);
    let mut pending = hosts.into_iter();
    let mut running: JoinSet<HostOutcome> = JoinSet::new();
    // Kept so a host whose task panicked still gets a status.
    let mut names: HashMap<tokio::task::Id, Host> = HashMap::new();

    loop {
        // Hosts start in inventory order; the next one starts as soon as a slot frees up.
        while running.len() < concurrency {
            let Some(host) = pending.next() else { break };
            emit.send(Event::HostStarted {
                host: host.name.clone(),
            })
            .await;
            let handle = running.spawn(run_host(host.clone(), opts.clone(), emit.clone()));
            names.insert(handle.id(), host);
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        let outcome = match joined {
            Ok((id, outcome)) => {
                names.remove(&id);
                outcome
            }
            Err(err) => {
                let host = names.remove(&err.id());
                internal_failure(host, &opts.meta.run_dir, &err.to_string())
            }
        };
        emit.send(Event::HostFinished { outcome }).await;
    }

    emit.send(Event::RunFinished {
        finished_at: Utc::now(),
        duration: started.elapsed(),
    })
    .await;
}

#[derive(Clone)]
struct Emitter(mpsc::Sender<Event>);

impl Emitter {
    async fn send(&self, event: Event) {
        // A reporter that went away must not stop the rollout; its loss is the binary's to report.
        let _ = self.0.send(event).await;
    }
}

fn internal_failure(host: Option<Host>, run_dir: &Path, why: &str) -> HostOutcome {
    let (name, address, port) = host
        .map(|h| (h.name, h.address, h.settings.port))
        .unwrap_or_else(|| ("?".into(), "?".into(), 0));
    HostOutcome {
        log_dir: run_dir.join(safe_dir_name(&name)),
        name,
        address,
        port,
        status: HostStatus::Failed,
        error: Some(HostError::new(
            ErrorKind::Internal,
            format!("capo internal error: {why}"),
        )),
        rev_before: None,
        rev_after: None,
        duration: Duration::ZERO,
        steps: Vec::new(),
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

/// The SSH settings for a host.
pub fn connect_config(host: &Host) -> ConnectConfig {
    let s = &host.settings;
    let mut cfg = ConnectConfig::new(host.address.clone(), s.port, s.user.clone());
    cfg.identity_files = s.identity_files.clone();
    cfg.known_hosts = s.known_hosts.clone();
    cfg.host_key_policy = match s.host_key_check {
        HostKeyCheck::Strict => HostKeyPolicy::Strict,
        HostKeyCheck::AcceptNew => HostKeyPolicy::AcceptNew,
        HostKeyCheck::Off => HostKeyPolicy::Off,
    };
    cfg.connect_timeout = s.connect_timeout;
    cfg
}

fn connect_error(err: &SshError) -> HostError {
    let kind = match err.kind() {
        capo_ssh::ErrorKind::HostKey => ErrorKind::HostKey,
        capo_ssh::ErrorKind::Auth => ErrorKind::Auth,
        capo_ssh::ErrorKind::Connect
        | capo_ssh::ErrorKind::Timeout
        | capo_ssh::ErrorKind::Channel => ErrorKind::Connect,
    };
    HostError::new(kind, err.to_string())
}

struct HostRun {
    outcome: HostOutcome,
    started: Instant,
}

impl HostRun {
    fn finish(mut self, status: HostStatus, error: Option<HostError>) -> HostOutcome {
        self.outcome.status = status;
        self.outcome.error = error;
        self.outcome.duration = self.started.elapsed();
        self.outcome
    }
}

async fn run_host(host: Host, opts: Arc<EngineOptions>, emit: Emitter) -> HostOutcome {
    let log_dir = opts.meta.run_dir.join(safe_dir_name(&host.name));
    // A missing log directory only loses the logs; Capture records that per stream.
    let _ = tokio::fs::create_dir_all(&log_dir).await;
    let mut run = HostRun {
        started: Instant::now(),
        outcome: HostOutcome {
            name: host.name.clone(),
            address: host.address.clone(),
            port: host.settings.port,
            status: HostStatus::Failed,
            error: None,
            rev_before: None,
            rev_after: None,
            duration: Duration::ZERO,
            steps: Vec::new(),
            log_dir: log_dir.clone(),
        },
    };

    let session = match capo_ssh::connect(&connect_config(&host)).await {
        Ok(session) => session,
        Err(err) => return run.finish(HostStatus::Unreachable, Some(connect_error(&err))),
    };
    let result = run_steps(&host, &session, &opts, &emit, &log_dir, &mut run).await;
    session.close().await;
    match result {
        Ok((status, error)) => run.finish(status, error),
        Err(error) => run.finish(HostStatus::Failed, Some(error)),
    }
}

async fn run_steps(
    host: &Host,
    session: &Session,
    opts: &EngineOptions,
    emit: &Emitter,
    log_dir: &Path,
    run: &mut HostRun,
) -> Result<(HostStatus, Option<HostError>), HostError> {
    let settings = &host.settings;
    let ctx = StepContext {
        host: &host.name,
        session,
        emit,
        log_dir,
        tail_bytes: opts.tail_bytes,
        timeout: settings.command_timeout,
    };

    // Sync: a failed sync means apply does not run.
    let sync = steps::sync(settings);
    let (mut record, end, head) = ctx.run(&sync).await;
    let marks = steps::parse_sync_marks(&String::from_utf8_lossy(&head));
    let tail_marks = steps::parse_sync_marks(&String::from_utf8_lossy(&record.stdout_tail));
    run.outcome.rev_before = marks.before.clone().or(tail_marks.before);
    run.outcome.rev_after = tail_marks.after.or(marks.after.clone());
    record.stdout_tail = steps::strip_sync_marks(&record.stdout_tail);
    let stderr = String::from_utf8_lossy(&record.stderr_tail).into_owned();
    ctx.finished(&mut run.outcome, record).await;
    match end {
        StepEnd::Exited(0) => {}
        StepEnd::Exited(_) => {
            let marks = steps::SyncMarks {
                fail: marks.fail.or(tail_marks.fail),
                ..marks
            };
            return Err(steps::classify_sync_failure(settings, &marks, &stderr));
        }
        other => return Err(other.into_error(&sync)),
    }

    let apply = steps::apply(settings);
    let (record, end, _) = ctx.run(&apply).await;
    let hint = puppet_hint(
        &String::from_utf8_lossy(&record.stderr_tail),
        &String::from_utf8_lossy(&record.stdout_tail),
    );
    ctx.finished(&mut run.outcome, record).await;
    match end {
        StepEnd::Exited(code) => Ok(classify_apply(code, hint.as_deref())),
        other => Err(other.into_error(&apply)),
    }
}

/// How a remote step ended.
enum StepEnd {
    Exited(i32),
    Signal(String),
    TimedOut(Duration),
    Lost(String),
}

impl StepEnd {
    fn into_error(self, step: &Step) -> HostError {
        let name = step.name.as_str();
        match self {
            StepEnd::Exited(code) => {
                HostError::new(ErrorKind::Internal, format!("{name} exited {code}"))
            }
            StepEnd::Signal(sig) => HostError::new(
                match step.name {
                    crate::outcome::StepName::Sync => ErrorKind::Sync,
                    crate::outcome::StepName::Apply => ErrorKind::Puppet,
                },
                format!("{name} was killed by signal {sig}"),
            ),
            StepEnd::TimedOut(after) => HostError::new(
                ErrorKind::Timeout,
                format!(
                    "{name} timed out after {} (command_timeout)",
                    capo_inventory::duration::format(after)
                ),
            ),
            StepEnd::Lost(why) => HostError::new(ErrorKind::Connect, format!("{name}: {why}")),
        }
    }
}

struct StepContext<'a> {
    host: &'a str,
    session: &'a Session,
    emit: &'a Emitter,
    log_dir: &'a Path,
    tail_bytes: usize,
    timeout: Duration,
}

/// Bytes of stdout kept from the start of a step, where the sync script's first marker is.
const HEAD_BYTES: usize = 1024;

impl StepContext<'_> {
    async fn finished(&self, outcome: &mut HostOutcome, record: StepRecord) {
        self.emit
            .send(Event::StepFinished {
                host: self.host.to_string(),
                record: record.clone(),
            })
            .await;
        outcome.steps.push(record);
    }

    /// Runs one step; returns its record, how it ended, and the first bytes of its stdout.
    async fn run(&self, step: &Step) -> (StepRecord, StepEnd, Vec<u8>) {
        self.emit
            .send(Event::StepStarted {
                host: self.host.to_string(),
                step: step.name,
            })
            .await;
        let started = Instant::now();
        let name = step.name.as_str();
        let log = |ext: &str| -> PathBuf { self.log_dir.join(format!("{name}.{ext}")) };
        // The exact script sent, for whoever debugs a failure from the logs.
        let _ = tokio::fs::write(log("cmd"), format!("{}\n", step.script)).await;
        let mut out = Capture::create(&log("stdout"), self.tail_bytes).await;
        let mut err = Capture::create(&log("stderr"), self.tail_bytes).await;
        let mut head = Vec::new();

        let streamed = tokio::time::timeout(self.timeout, async {
            let mut exec = self
                .session
                .exec(&step.script)
                .await
                .map_err(|e| e.to_string())?;
            let mut status = None;
            while let Some(event) = exec.next().await {
                match event {
                    ExecEvent::Stdout(bytes) => {
                        if head.len() < HEAD_BYTES {
                            let take = (HEAD_BYTES - head.len()).min(bytes.len());
                            head.extend_from_slice(&bytes[..take]);
                        }
                        out.write(&bytes).await;
                    }
                    ExecEvent::Stderr(bytes) => err.write(&bytes).await,
                    ExecEvent::Exit(s) => status = Some(s),
                }
            }
            match status {
                Some(status) => Ok(status),
                None => Err(exec
                    .missing_exit_error()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "command ended without an exit status".into())),
            }
        })
        .await;

        let end = match streamed {
            Err(_) => StepEnd::TimedOut(self.timeout),
            Ok(Err(why)) => StepEnd::Lost(why),
            Ok(Ok(ExitStatus::Code(code))) => {
                StepEnd::Exited(i32::try_from(code).unwrap_or(i32::MAX))
            }
            Ok(Ok(ExitStatus::Signal { name, .. })) => StepEnd::Signal(name),
        };
        let exit_code = match end {
            StepEnd::Exited(code) => Some(code),
            _ => None,
        };
        let (out, err) = (out.finish().await, err.finish().await);
        let record = StepRecord {
            name: step.name,
            command: step.display.clone(),
            exit_code,
            duration: started.elapsed(),
            stdout_bytes: out.total(),
            stderr_bytes: err.total(),
            stdout_tail: Tail::into_bytes(out),
            stderr_tail: Tail::into_bytes(err),
        };
        (record, end, head)
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
