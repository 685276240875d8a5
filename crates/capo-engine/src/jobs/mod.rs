//! The jobs: what runs on a host once the runner has connected to it (and, for a job that
//! takes it, holds the host's lock). Each job is one module with one type implementing
//! [`Job`]; [`run`] is the one place a [`RunMode`] becomes a job.
//!
//! Adding a job means a module here, a `RunMode` variant (with its report word in
//! `RunMode::mode`), and its arm in [`run`].

mod bootstrap;
mod check;
mod exec;
mod plan;
mod pull;
mod puppet;
mod rollout;
mod status;
mod switch;

use capo_ssh::Session;

use crate::host::{HostRun, Verdict};
use crate::options::RunMode;
use bootstrap::Bootstrap;
use check::Check;
use exec::Exec;
use plan::Plan;
use pull::Pull;
use rollout::Rollout;
use status::Status;
use switch::Switch;

/// One kind of work on a connected host.
///
/// Statically dispatched (`async fn` in a trait is not object-safe): [`run`] picks the type
/// and the runner is generic over it.
pub(super) trait Job {
    /// Whether the runner holds the host's lock around [`Job::run`] (unless the inventory
    /// says `lock = false`): for jobs that move the checkout or apply Puppet, which two runs
    /// must not do on one host at once.
    const TAKES_LOCK: bool;

    /// Runs the job's steps over `session` (each with [`HostRun::run_step`], recorded with
    /// [`HostRun::finished`]), fills in what the job learns in `run.outcome`, and says how
    /// the host ended.
    async fn run(&self, run: &mut HostRun, session: &Session) -> Verdict;
}

/// Runs `mode`'s job on one host, connect to close.
pub(super) async fn run(mode: &RunMode, run: &mut HostRun) -> Verdict {
    match mode {
        RunMode::Rollout { rev } => {
            run.work(&Rollout {
                rev: rev.as_deref(),
            })
            .await
        }
        RunMode::Plan { rev } => {
            run.work(&Plan {
                rev: rev.as_deref(),
            })
            .await
        }
        RunMode::Exec { command } => run.work(&Exec { command }).await,
        RunMode::Check => {
            // Known before connecting, so an unreachable host's report still says how capo
            // tried to reach it.
            run.outcome.check = Some(check::before_connect(run));
            run.work(&Check).await
        }
        RunMode::Disable { message, by } => {
            run.work(&Switch {
                disable: Some((message, by)),
            })
            .await
        }
        RunMode::Enable => run.work(&Switch { disable: None }).await,
        RunMode::Pull(action) => run.work(&Pull { action }).await,
        RunMode::Status { fetch, stale_after } => {
            run.work(&Status {
                fetch: *fetch,
                stale_after: *stale_after,
            })
            .await
        }
        RunMode::Bootstrap { repo, rev, install } => {
            // --repo, else the host's own repo_url; the binary refuses a run where some
            // host has neither, so None here is only a bug's way in.
            let Some(url) = repo.clone().or_else(|| run.host.settings.repo_url.clone()) else {
                return bootstrap::no_url();
            };
            run.work(&Bootstrap {
                url: &url,
                rev: rev.as_deref(),
                install: *install,
            })
            .await
        }
    }
}
