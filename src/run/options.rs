//! What the engine is told about a run: its strategy, its id and directory, the line other
//! runs see in the hosts' locks, and how many hosts at a time the file descriptor limit allows.

use std::path::PathBuf;

use capo_engine::{Confirm, EngineOptions, RunMeta, RunMode, Strategy, DEFAULT_TAIL_BYTES};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::cli::{RunArgs, Selection};
use crate::error::Error;

/// A run's id and when it started.
#[derive(Debug, Clone)]
pub struct RunId {
    /// See [`new_run_id`].
    pub id: String,
    /// When capo started the run.
    pub started: DateTime<Utc>,
}

/// The engine's options for a run in `mode`; creates the run's directory under
/// `--runs-dir`, where the engine keeps every host's output. `confirm` carries the engine's
/// questions when `--confirm` is given.
pub fn build(
    selection: &Selection,
    args: &RunArgs,
    mode: RunMode,
    run: RunId,
    confirm: Option<mpsc::Sender<Confirm>>,
) -> Result<EngineOptions, Error> {
    let RunId {
        id: run_id,
        started,
    } = run;
    let run_dir = args.runs_dir.join(&run_id);
    std::fs::create_dir_all(&run_dir).map_err(|source| Error::RunDir {
        path: run_dir.clone(),
        source,
    })?;
    let holder = holder(&run_id, started);
    let (concurrency, fd_warning) = crate::limits::fit_concurrency(args.concurrency as usize);
    if let Some(warning) = fd_warning {
        eprintln!("{warning}");
    }
    Ok(EngineOptions {
        strategy: strategy(args),
        confirm,
        meta: meta(selection, &mode, run_id, run_dir),
        mode,
        show_diff: args.show_diff,
        stream_output: args.verbose,
        concurrency,
        tail_bytes: DEFAULT_TAIL_BYTES,
        holder,
        become_password: None,
        ssh: Default::default(),
    })
}

/// `--canary`, `--batch`, `--max-failures` and `--pause`.
fn strategy(args: &RunArgs) -> Strategy {
    Strategy {
        canary: args.canary,
        batches: args.batch.clone().map(|b| b.0).unwrap_or_default(),
        max_failures: args.max_failures,
        pause: args.pause,
    }
}

/// What the run's events and report say about it besides its hosts.
fn meta(selection: &Selection, mode: &RunMode, run_id: String, run_dir: PathBuf) -> RunMeta {
    let target_rev = match mode {
        RunMode::Rollout { rev } | RunMode::Plan { rev } | RunMode::Bootstrap { rev, .. } => {
            rev.clone()
        }
        RunMode::Exec { .. }
        | RunMode::Check
        | RunMode::Disable { .. }
        | RunMode::Enable
        | RunMode::Status { .. }
        | RunMode::Pull(_) => None,
    };
    RunMeta {
        run_id,
        mode: mode.mode(),
        inventory: selection.inventory.clone(),
        limit: selection.limit.clone(),
        run_dir,
        target_rev,
    }
}

/// The lock holder line: enough for an operator whose run finds a host locked to know whose
/// run it is and since when.
fn holder(run_id: &str, started: DateTime<Utc>) -> String {
    format!(
        "capo run {run_id} from {} (pid {}), started {}",
        controller_name(),
        std::process::id(),
        started.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// `user@controller`: who runs capo here, for what is left on hosts (`capo disable`).
pub fn operator() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".to_string());
    format!("{user}@{}", controller_name())
}

/// The name of the user this process runs as, from /etc/passwd (cron jobs and containers
/// often set no USER).
fn user_from_passwd() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_string())
    })
}

/// This machine's name, for lock holder messages.
fn controller_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-controller".to_string())
}

/// `20261124T224501Z-1a2b`: sortable by time, unique enough for runs started in the same second.
pub fn new_run_id(now: DateTime<Utc>) -> String {
    let salt = (std::process::id() ^ now.timestamp_subsec_nanos()) & 0xffff;
    format!("{}-{salt:04x}", now.format("%Y%m%dT%H%M%SZ"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_their_start_second() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("time")
                .with_timezone(&Utc)
        };
        let id = new_run_id(at("2026-11-24T22:45:01.5Z"));
        assert!(id.starts_with("20261124T224501Z-"), "{id}");
        assert_eq!(id.len(), "20261124T224501Z-1a2b".len(), "{id}");
        assert!(id < new_run_id(at("2026-11-24T22:45:02Z")));
    }
}
