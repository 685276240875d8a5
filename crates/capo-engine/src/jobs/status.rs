//! Where a host stands (`capo status`): one look over its connection, changing nothing,
//! then the host's state in triage order.

use std::time::Duration;

use capo_schema::{
    HostState, HostStateReport, LastRunReport, LockHeld, PinReport, PullReport, PuppetSummaryReport,
};
use capo_ssh::Session;
use chrono::{DateTime, Utc};

use super::Job;
use crate::host::{HostRun, StepEnd, Verdict};
use crate::outcome::HostStatus;
use crate::steps::{self, Marks};

/// A last run older than this is stale when neither `--stale-after` nor a pull timer says.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Reads the host's state; `fetch` fetches the remote branch there first.
pub(super) struct Status {
    pub fetch: bool,
    pub stale_after: Option<Duration>,
}

impl Job for Status {
    // It only reads; the lock is looked at by the script, never held.
    const TAKES_LOCK: bool = false;

    async fn run(&self, run: &mut HostRun, session: &Session) -> Verdict {
        let settings = run.host.settings.clone();
        let step = steps::status(&settings, self.fetch, settings.command_timeout);
        let (record, end, marks) = run.run_step(session, &step).await;
        run.finished(record).await;
        match end {
            StepEnd::Exited(0) => {
                run.outcome.disabled = steps::disabled(&marks);
                let state = read(&marks, self.stale_after, run.outcome.disabled.is_some());
                // The fleet's revisions line counts checkouts by HEAD.
                run.outcome.rev_after = state.head.clone();
                run.outcome.host_state = Some(state);
                (HostStatus::Ok, None)
            }
            other => other.verdict(&step),
        }
    }
}

/// The lines of a file the script sent as `KEY=|LINE` markers.
fn file(marks: &Marks, key: &str) -> Option<String> {
    let lines: Vec<&str> = marks
        .all(key)
        .map(|l| l.strip_prefix('|').unwrap_or(l))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// The host's state from the status script's markers.
fn read(marks: &Marks, stale_after: Option<Duration>, disabled: bool) -> HostStateReport {
    let now = marks.get("now").and_then(|n| n.parse::<i64>().ok());
    let last_run = file(marks, "record").map(|text| last_run(&text));
    let puppet = file(marks, "summary").and_then(|text| {
        let s = capo_puppet::parse_summary(&text).ok()?;
        Some(PuppetSummaryReport {
            time: s
                .last_run
                .and_then(|t| DateTime::<Utc>::from_timestamp(i64::try_from(t).ok()?, 0))
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            config_version: s.config_version,
            changed: s.resources.changed,
            failed: s.resources.failed,
        })
    });
    let pull = match marks.get("pull") {
        Some(scheduler @ ("systemd" | "cron")) => PullReport {
            installed: true,
            scheduler: Some(scheduler.to_string()),
            interval_s: marks.get("pull-interval").and_then(|s| s.parse().ok()),
            active: marks.get("pull-active").map(|a| a == "yes"),
            next: marks.get("pull-next").map(str::to_string),
            ..PullReport::default()
        },
        _ => PullReport::default(),
    };
    let lock = match marks.get("lock") {
        Some("held" | "busy") => LockHeld {
            held: true,
            holder: marks.get("holder").map(str::to_string),
        },
        _ => LockHeld::default(),
    };
    let ended = last_run
        .as_ref()
        .and_then(|r| r.time.as_deref())
        .or(puppet.as_ref().and_then(|p| p.time.as_deref()))
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp());
    let age_s = now
        .zip(ended)
        .map(|(now, ended)| u64::try_from(now - ended).unwrap_or(0));
    let stale_after = stale_after
        .or_else(|| pull.interval_s.map(|s| Duration::from_secs(2 * s)))
        .unwrap_or(STALE_AFTER);
    let behind = marks.get("behind").and_then(|b| b.parse::<u64>().ok());
    let failed = match (&last_run, &puppet) {
        (Some(r), _) => r.status.as_deref() == Some("failed"),
        (None, Some(p)) => p.failed > 0,
        (None, None) => false,
    };
    let changed = match (&last_run, &puppet) {
        (Some(r), _) => r.status.as_deref() == Some("changed"),
        (None, Some(p)) => p.changed > 0,
        (None, None) => false,
    };
    let state = if failed {
        HostState::Failed
    } else if disabled {
        HostState::Disabled
    } else if lock.held {
        HostState::Running
    } else if ended.is_none() {
        HostState::Never
    } else if age_s.is_some_and(|age| age > stale_after.as_secs()) {
        HostState::Stale
    } else if behind.is_some_and(|b| b > 0) {
        HostState::Behind
    } else if changed {
        HostState::Changed
    } else {
        HostState::Ok
    };
    HostStateReport {
        state,
        head: marks.get("head").map(str::to_string),
        branch: marks.get("branch").map(str::to_string),
        behind,
        last_run,
        puppet,
        pull,
        lock,
        age_s,
        pinned: marks.get("pin-rev").map(|rev| PinReport {
            rev: rev.to_string(),
            commit: marks.get("pin-commit").map(str::to_string),
            by: marks.get("pin-by").map(str::to_string),
            since: marks.get("pin-since").map(str::to_string),
        }),
    }
}

/// The fields `capo status` shows of a `capo.run/v1` record.
fn last_run(text: &str) -> LastRunReport {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return LastRunReport {
                unreadable: Some(format!("last_run.json is not JSON: {e}")),
                ..LastRunReport::default()
            }
        }
    };
    let text = |k: &str| value[k].as_str().map(str::to_string);
    LastRunReport {
        time: text("time"),
        source: text("source"),
        status: text("status"),
        step: text("step"),
        rev: text("rev_after"),
        changed: value["changed"].as_u64(),
        failed: value["failed"].as_u64(),
        run_id: text("run_id"),
        unreadable: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = "::capo:record=|{\n::capo:record=|  \"schema\": \"capo.run/v1\",\n::capo:record=|  \"time\": \"2026-12-03T12:00:00Z\",\n::capo:record=|  \"source\": \"pull\",\n::capo:record=|  \"status\": \"STATUS\",\n::capo:record=|  \"rev_after\": \"abc\",\n::capo:record=|  \"changed\": 2,\n::capo:record=|  \"failed\": 0\n::capo:record=|}\n";

    fn state(extra: &str, status: &str, now: i64) -> HostStateReport {
        let text = format!(
            "::capo:now={now}\n{}::capo:repo=checkout\n::capo:head=abc\n::capo:branch=main\n{extra}",
            RECORD.replace("STATUS", status)
        );
        read(
            &Marks::parse(text.as_bytes()),
            None,
            extra.contains("disabled"),
        )
    }

    /// 2026-12-03T12:00:00Z.
    const T: i64 = 1_796_299_200;

    #[test]
    fn states_come_in_triage_order() {
        assert_eq!(state("", "changed", T + 60).state, HostState::Changed);
        assert_eq!(state("", "unchanged", T + 60).state, HostState::Ok);
        assert_eq!(
            state("::capo:behind=3\n", "unchanged", T + 60).state,
            HostState::Behind
        );
        assert_eq!(
            state("", "unchanged", T + 25 * 3600).state,
            HostState::Stale
        );
        assert_eq!(
            state(
                "::capo:lock=held\n::capo:holder=x\n",
                "unchanged",
                T + 25 * 3600
            )
            .state,
            HostState::Running
        );
        assert_eq!(
            state("::capo:disabled=capo\n", "unchanged", T).state,
            HostState::Disabled
        );
        assert_eq!(
            state("::capo:disabled=capo\n", "failed", T).state,
            HostState::Failed
        );
        // Twice the pull timer's interval.
        let s = state(
            "::capo:pull=systemd\n::capo:pull-interval=1800\n",
            "unchanged",
            T + 3601,
        );
        assert_eq!((s.state, s.pull.installed), (HostState::Stale, true));
        let never = read(
            &Marks::parse(b"::capo:now=5\n::capo:repo=checkout\n"),
            None,
            false,
        );
        assert_eq!(never.state, HostState::Never);
    }

    #[test]
    fn the_record_is_read_with_its_indentation() {
        let s = state("", "changed", T + 90);
        let r = s.last_run.expect("record");
        assert_eq!(
            (r.source.as_deref(), r.rev.as_deref(), r.changed, s.age_s),
            (Some("pull"), Some("abc"), Some(2), Some(90))
        );
    }
}
