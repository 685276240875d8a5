//! What the Puppet jobs (rollout, plan) share: reading back Puppet's own account of its run.

use std::time::Duration;

use capo_ssh::{ExecEvent, Session};

use crate::remote::Remote;

use crate::outcome::PuppetResult;
use crate::steps::{self, Marks};

/// How long reading a run's results may take.
const RESULTS_TIMEOUT: Duration = Duration::from_secs(60);

/// The most of Puppet's result files capo reads from one host (a big catalog's report is a
/// few MiB).
const RESULTS_MAX_BYTES: usize = 64 << 20;

/// Reads (and removes) the results directory a Puppet run left on the host. Runs after the
/// step whatever its end, so the directory is cleaned up after failures and timeouts too.
pub(super) async fn results(
    session: &Session,
    remote: &Remote,
    marks: &Marks,
    exit_code: Option<i32>,
) -> Option<PuppetResult> {
    let call = steps::collect_call(marks.get("results")?)?;
    let mut result = PuppetResult {
        exit_code,
        ..PuppetResult::default()
    };
    let read = tokio::time::timeout(RESULTS_TIMEOUT, async {
        let mut exec = remote
            .exec(session, &call)
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(event) = exec.next().await {
            if let ExecEvent::Stdout(bytes) = event {
                if out.len() + bytes.len() > RESULTS_MAX_BYTES {
                    return Err(format!(
                        "Puppet's results are larger than {} MiB",
                        RESULTS_MAX_BYTES >> 20
                    ));
                }
                out.extend_from_slice(&bytes);
            }
        }
        Ok(out)
    })
    .await;
    let text = match read {
        Ok(Ok(out)) => String::from_utf8_lossy(&out).into_owned(),
        Ok(Err(why)) => {
            result.unreadable = Some(why);
            return Some(result);
        }
        Err(_) => {
            result.unreadable = Some("reading Puppet's results timed out".into());
            return Some(result);
        }
    };
    let files = steps::split_collected(&text);
    let mut problems = Vec::new();
    if !files.summary.trim().is_empty() {
        match capo_puppet::parse_summary(&files.summary) {
            Ok(summary) => result.summary = Some(summary),
            Err(e) => problems.push(format!("summary: {e}")),
        }
    }
    // The report is read for its events alone, and it is most of the bytes and of the
    // parsing time: skip it when this run's summary says there are none.
    let no_events = result.summary.as_ref().is_some_and(|s| !s.has_events());
    if !no_events && !files.report.trim().is_empty() {
        match capo_puppet::parse_report_events(&files.report) {
            Ok(events) => result.events = events,
            Err(e) => problems.push(format!("report: {e}")),
        }
    }
    let log = capo_puppet::parse_log_jsonl(&files.log);
    result.diffs = capo_puppet::diffs(&log);
    if !problems.is_empty() {
        result.unreadable = Some(problems.join("; "));
    }
    Some(result)
}
