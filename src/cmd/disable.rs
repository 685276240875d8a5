//! `capo disable -m MESSAGE`: the maintenance switch. Each selected host gets a file in its
//! `state_dir` saying why, who and since when; rollouts (and pull runs) leave a disabled host
//! alone and report it `disabled` with that message until `capo enable`.

use capo_engine::RunMode;

use crate::cli::DisableArgs;
use crate::error::Error;
use crate::exit::Outcome;

/// Disables the selected hosts, as `user@controller`.
pub fn run(args: &DisableArgs) -> Result<Outcome, Error> {
    let mode = RunMode::Disable {
        message: args.message.clone(),
        by: crate::run::options::operator(),
    };
    crate::run::run(&args.selection, &args.run, mode, false)
}
