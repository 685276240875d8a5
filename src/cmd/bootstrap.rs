//! `capo bootstrap`: make new hosts ready for rollouts. Each selected host gets git and
//! Puppet (installed with `--install`), a clone of the repo in its empty or missing
//! `repo_dir` and a noop apply of it that proves it compiles; a host whose `repo_dir`
//! already is a checkout of the repo is left alone, and one whose `repo_dir` holds anything
//! else is refused and never touched.

use capo_engine::RunMode;

use crate::cli::BootstrapArgs;
use crate::error::Error;
use crate::exit::Outcome;

/// Runs the bootstrap; a run where some selected host would have no URL to clone (no
/// `--repo`, no `repo_url`) is refused before any host is contacted.
pub fn run(args: &BootstrapArgs) -> Result<Outcome, Error> {
    if args.repo.is_none() {
        let hosts =
            crate::select::for_run(&args.selection, &args.run, capo_engine::Mode::Bootstrap, "")?
                .hosts;
        let without: Vec<&str> = hosts
            .iter()
            .filter(|h| h.settings.repo_url.is_none())
            .map(|h| h.name.as_str())
            .collect();
        if !without.is_empty() {
            return Err(Error::NoRepoUrl {
                hosts: capo_inventory::fold::fold_to_string(&without),
            });
        }
    }
    let mode = RunMode::Bootstrap {
        repo: args.repo.clone(),
        rev: args.rev.clone(),
        install: args.install,
    };
    crate::run::run(&args.selection, &args.run, mode, false)
}
