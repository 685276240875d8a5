//! `capo pull install|remove|status|unpin`: sets up (or takes down) the decentralized half, where
//! each host pulls and applies by itself on a timer with the same scripts as a push.

use capo_engine::{PullAction, RunMode};
use capo_scripts::pull::Schedule;

use crate::cli::PullCommand;
use crate::error::Error;
use crate::exit::Outcome;

/// Installs or removes pull mode on the selected hosts, or shows where they stand.
pub fn run(command: &PullCommand) -> Result<Outcome, Error> {
    match command {
        PullCommand::Install(args) => {
            // Without --deadline (zero here), each host's own command_timeout, which the
            // engine knows.
            let schedule = Schedule {
                interval: args.interval,
                splay: args.splay,
                deadline: args.deadline.unwrap_or(std::time::Duration::ZERO),
            };
            let mode = RunMode::Pull(PullAction::Install {
                schedule,
                scheduler: args.scheduler.clone(),
                only_if_changed: args.only_if_changed.then_some(args.max_age),
            });
            crate::run::run(&args.selection, &args.run, mode, false)
        }
        PullCommand::Remove(args) => crate::run::run(
            &args.selection,
            &args.run,
            RunMode::Pull(PullAction::Remove),
            false,
        ),
        PullCommand::Status(args) => super::status::run(args),
        PullCommand::Unpin(args) => crate::run::run(
            &args.selection,
            &args.run,
            RunMode::Pull(PullAction::Unpin),
            false,
        ),
    }
}
