//! `capo status`: where each host stands, read over one connection per host and changing
//! nothing (`--fetch` moves only the remote-tracking branch): HEAD and how far behind, the
//! last run record (push or pull) and Puppet's own summary, the lock, the maintenance switch
//! and pull mode, folded into one state per host in triage order.

use capo_engine::RunMode;

use crate::cli::StatusArgs;
use crate::error::Error;
use crate::exit::Outcome;

/// Reads the fleet's state; exits 1 unless every host is `ok` or `changed`.
pub fn run(args: &StatusArgs) -> Result<Outcome, Error> {
    let mode = RunMode::Status {
        fetch: args.fetch,
        stale_after: args.stale_after,
    };
    crate::run::run(&args.selection, &args.run, mode, false)
}
