//! The engine's event stream as JSON Lines, written as it happens: one object per line, each
//! handed to the operating system before [`EventLog::write`] returns, so if capo dies (panic,
//! SIGKILL, OOM) the file still holds every event up to that point, and a consumer can follow
//! it live (`tail -f`).
//!
//! Every line is `{"event": NAME, "time": RFC 3339 UTC with milliseconds, ...}`:
//!
//! | event | fields |
//! |---|---|
//! | `run_started` | `run_id`, `mode`, `hosts` (selected names, inventory order) |
//! | `host_started` | `host` |
//! | `step_started` | `host`, `step` |
//! | `step_finished` | `host`, `step`, `exit_code` (null: did not finish), `duration_ms` |
//! | `host_finished` | `host`, `status`, `error` (`{kind, message}` or null), `duration_ms`, `rev_before`, `rev_after` |
//! | `batch_started` | `index` (0-based; the canary is batch 0 when there is one), `hosts` |
//! | `batch_finished` | `index` |
//! | `run_finished` | `duration_ms`, `halted` (why the run stopped starting hosts early, or null) |
//!
//! Strings are written as the engine has them; JSON escapes control characters, so hostile
//! host names cannot break a line.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use capo_engine::Event;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// An open event log. Lines are written unbuffered, one `write_all` each.
#[derive(Debug)]
pub struct EventLog {
    file: File,
}

impl EventLog {
    /// Creates (or truncates) the log at `path`.
    pub fn create(path: &Path) -> io::Result<EventLog> {
        Ok(EventLog {
            file: File::create(path)?,
        })
    }

    /// Appends `event` as one line, stamped with the event's own time when it carries one
    /// (run start and end) and the current time otherwise.
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        self.write_at(event, Utc::now())
    }

    /// Like [`EventLog::write`], with `now` as the time stamped on the event.
    pub fn write_at(&mut self, event: &Event, now: DateTime<Utc>) -> io::Result<()> {
        let mut line = serde_json::to_vec(&to_json(event, now)).map_err(io::Error::other)?;
        line.push(b'\n');
        // The whole line in one call and no user-space buffer: what is written is in the
        // kernel's hands at once, and a reader never sees a line without its end.
        self.file.write_all(&line)?;
        if let Event::RunFinished { .. } = event {
            // The last event: make the whole log durable, once, rather than paying for a sync
            // per event in the engine's event loop.
            self.file.sync_data()?;
        }
        Ok(())
    }
}

/// The JSON object for one event (see the module documentation), stamped `now`: every event is
/// stamped when written, so times in the file never go backwards.
pub fn to_json(event: &Event, now: DateTime<Utc>) -> Value {
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    match event {
        // Only sent with -v; the text as lossy UTF-8 (the run's log files keep the raw bytes).
        Event::Output {
            host,
            step,
            stderr,
            bytes,
        } => json!({
            "event": "output",
            "time": time(now),
            "host": host,
            "step": step.as_str(),
            "stream": if *stderr { "stderr" } else { "stdout" },
            "text": String::from_utf8_lossy(bytes),
        }),
        Event::RunStarted {
            meta,
            hosts,
            started_at: _,
        } => json!({
            "event": "run_started",
            "time": time(now),
            "run_id": meta.run_id,
            "mode": meta.mode.as_str(),
            "hosts": hosts,
        }),
        Event::HostStarted { host } => json!({
            "event": "host_started",
            "time": time(now),
            "host": host,
        }),
        Event::StepStarted { host, step } => json!({
            "event": "step_started",
            "time": time(now),
            "host": host,
            "step": step.as_str(),
        }),
        Event::StepFinished { host, record } => json!({
            "event": "step_finished",
            "time": time(now),
            "host": host,
            "step": record.name.as_str(),
            "exit_code": record.exit_code,
            "duration_ms": millis(record.duration),
        }),
        Event::HostFinished { outcome } => json!({
            "event": "host_finished",
            "time": time(now),
            "host": outcome.name,
            "status": outcome.status.as_str(),
            "error": outcome.error.as_ref().map(|e| json!({
                "kind": e.kind.as_str(),
                "message": e.message,
            })),
            "duration_ms": millis(outcome.duration),
            "rev_before": outcome.rev_before,
            "rev_after": outcome.rev_after,
        }),
        Event::BatchStarted { index, hosts } => json!({
            "event": "batch_started",
            "time": time(now),
            "index": index,
            "hosts": hosts,
        }),
        Event::BatchFinished { index } => json!({
            "event": "batch_finished",
            "time": time(now),
            "index": index,
        }),
        Event::RunFinished {
            finished_at: _,
            duration,
            halted,
        } => json!({
            "event": "run_finished",
            "time": time(now),
            "duration_ms": millis(*duration),
            "halted": halted.as_ref().map(ToString::to_string),
        }),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use capo_engine::{
        ErrorKind, HaltReason, HostError, HostOutcome, HostStatus, Mode, RunMeta, StepName,
        StepRecord,
    };
    use chrono::TimeZone;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_795_992_301_000 + ms)
            .single()
            .expect("valid time")
    }

    fn events() -> Vec<Event> {
        let record = StepRecord {
            name: StepName::Sync,
            command: "git pull --ff-only origin main".into(),
            exit_code: Some(1),
            duration: Duration::from_millis(310),
            stdout_tail: b"out".to_vec(),
            stderr_tail: b"fatal: diverged".to_vec(),
            stdout_bytes: 3,
            stderr_bytes: 15,
            truncated: false,
            log_error: None,
            started: Duration::ZERO,
        };
        let outcome = HostOutcome {
            name: "web\u{1b}01".into(),
            address: "10.0.0.1".into(),
            port: 22,
            status: HostStatus::Failed,
            error: Some(HostError::new(ErrorKind::Sync, "checkout diverged")),
            rev_before: Some("3f2a1c9".into()),
            rev_after: None,
            duration: Duration::from_millis(1234),
            steps: vec![record.clone()],
            log_dir: ".capo/runs/r1/web01".into(),
            connect_attempts: 1,
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
        };
        vec![
            Event::RunStarted {
                meta: RunMeta {
                    run_id: "r1".into(),
                    mode: Mode::Rollout,
                    inventory: "inventory.toml".into(),
                    limit: None,
                    run_dir: ".capo/runs/r1".into(),
                    target_rev: None,
                },
                hosts: vec!["web\u{1b}01".into(), "web02".into()],
                started_at: at(0),
            },
            Event::BatchStarted {
                index: 0,
                hosts: vec!["web\u{1b}01".into()],
            },
            Event::HostStarted {
                host: "web\u{1b}01".into(),
            },
            Event::StepStarted {
                host: "web\u{1b}01".into(),
                step: StepName::Sync,
            },
            Event::StepFinished {
                host: "web\u{1b}01".into(),
                record: Box::new(record),
            },
            Event::HostFinished {
                outcome: Box::new(outcome),
            },
            Event::BatchFinished { index: 0 },
            Event::RunFinished {
                finished_at: at(2500),
                duration: Duration::from_millis(2499),
                halted: Some(HaltReason::CanaryFailed {
                    hosts: vec!["web01".into()],
                }),
            },
        ]
    }

    #[test]
    fn writes_one_json_object_per_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        let mut log = EventLog::create(&path).expect("create");
        for e in events() {
            log.write_at(&e, at(1000)).expect("write");
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.ends_with('\n'));
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        let expected = [
            json!({"event": "run_started", "time": "2026-11-29T22:45:02.000Z", "run_id": "r1",
                   "mode": "rollout", "hosts": ["web\u{1b}01", "web02"]}),
            json!({"event": "batch_started", "time": "2026-11-29T22:45:02.000Z", "index": 0,
                   "hosts": ["web\u{1b}01"]}),
            json!({"event": "host_started", "time": "2026-11-29T22:45:02.000Z",
                   "host": "web\u{1b}01"}),
            json!({"event": "step_started", "time": "2026-11-29T22:45:02.000Z",
                   "host": "web\u{1b}01", "step": "sync"}),
            json!({"event": "step_finished", "time": "2026-11-29T22:45:02.000Z",
                   "host": "web\u{1b}01", "step": "sync", "exit_code": 1, "duration_ms": 310}),
            json!({"event": "host_finished", "time": "2026-11-29T22:45:02.000Z",
                   "host": "web\u{1b}01", "status": "failed",
                   "error": {"kind": "sync", "message": "checkout diverged"},
                   "duration_ms": 1234, "rev_before": "3f2a1c9", "rev_after": null}),
            json!({"event": "batch_finished", "time": "2026-11-29T22:45:02.000Z", "index": 0}),
            json!({"event": "run_finished", "time": "2026-11-29T22:45:02.000Z",
                   "duration_ms": 2499, "halted": "the canary failed (web01)"}),
        ];
        assert_eq!(lines, expected);
        // The escape character is escaped, not written raw.
        assert!(text.contains(r#""host":"web\u001b01""#), "{text}");
    }

    #[test]
    fn each_event_is_on_disk_before_the_next() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        let mut log = EventLog::create(&path).expect("create");
        let all = events();
        for (n, e) in all.iter().take(3).enumerate() {
            log.write(e).expect("write");
            // Read through another handle while the log is still open, as after a crash.
            let text = std::fs::read_to_string(&path).expect("read");
            assert_eq!(text.lines().count(), n + 1);
        }
        let line = std::fs::read_to_string(&path).expect("read");
        let first: Value = serde_json::from_str(line.lines().next().unwrap_or_default())
            .expect("first line is JSON");
        assert_eq!(first["event"], "run_started");
    }

    #[test]
    fn a_finished_step_without_exit_code_says_null() {
        let record = StepRecord {
            name: StepName::Apply,
            command: String::new(),
            exit_code: None,
            duration: Duration::from_millis(5),
            stdout_tail: vec![],
            stderr_tail: vec![],
            stdout_bytes: 0,
            stderr_bytes: 0,
            truncated: false,
            log_error: None,
            started: Duration::ZERO,
        };
        let v = to_json(
            &Event::StepFinished {
                host: "h".into(),
                record: Box::new(record),
            },
            at(0),
        );
        assert_eq!(v["exit_code"], Value::Null);
        assert_eq!(v["step"], "apply");
    }
}
