//! What the Puppet jobs (rollout, plan) share: reading back Puppet's own account of its run.

use std::time::Duration;

use capo_ssh::{ExecEvent, Session};

use crate::inline::Inline;
use crate::remote::Remote;

use crate::outcome::PuppetResult;
use crate::steps::{self, Marks};

/// How long reading a run's results by `collect.sh` may take.
const RESULTS_TIMEOUT: Duration = Duration::from_secs(60);

/// The most of Puppet's result files capo reads from one host, inline or not.
const RESULTS_MAX_BYTES: usize = crate::inline::MAX_BYTES;

/// Reads Puppet's results: those the step sent inline, else (a step that ended before it
/// could send them, a step that does not) the results directory it left on the host, which
/// `collect.sh` prints and removes. Runs after the step whatever its end, so the directory is
/// cleaned up after failures and timeouts too.
pub(super) async fn results(
    session: &Session,
    remote: &Remote,
    marks: &Marks,
    exit_code: Option<i32>,
    inline: Option<Inline>,
) -> Option<PuppetResult> {
    let dir = marks.get("results")?;
    let mut result = PuppetResult {
        exit_code,
        ..PuppetResult::default()
    };
    let text = match inline {
        Some(Inline::Complete(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Some(Inline::TooBig) => {
            result.unreadable = Some(too_big());
            return Some(result);
        }
        None => match collect(session, remote, dir).await? {
            Ok(text) => text,
            Err(why) => {
                result.unreadable = Some(why);
                return Some(result);
            }
        },
    };
    parse(&text, &mut result);
    Some(result)
}

fn too_big() -> String {
    format!(
        "Puppet's results are larger than {} MiB",
        RESULTS_MAX_BYTES >> 20
    )
}

/// Reads the results directory `dir` by `collect.sh`, which removes it; `None` when `dir` is
/// not one capo made.
async fn collect(session: &Session, remote: &Remote, dir: &str) -> Option<Result<String, String>> {
    let call = steps::collect_call(dir)?;
    let read = tokio::time::timeout(RESULTS_TIMEOUT, async {
        let mut exec = remote
            .exec(session, &call)
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(event) = exec.next().await {
            if let ExecEvent::Stdout(bytes) = event {
                if out.len() + bytes.len() > RESULTS_MAX_BYTES {
                    return Err(too_big());
                }
                out.extend_from_slice(&bytes);
            }
        }
        Ok(out)
    })
    .await;
    Some(match read {
        Ok(Ok(out)) => Ok(String::from_utf8_lossy(&out).into_owned()),
        Ok(Err(why)) => Err(why),
        Err(_) => Err("reading Puppet's results timed out".into()),
    })
}

/// Fills `result` in from the results' text (as `collect.sh` prints them).
fn parse(text: &str, result: &mut PuppetResult) {
    let files = steps::split_collected(text);
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
}
