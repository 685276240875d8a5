//! Recognizing capo's host-side scripts and deciding what a simulated host answers.
//!
//! capo sends every script as the one-line command of `capo_scripts::Call::command_line`,
//! whose last word is the script's id; [`classify`] reads the call back with
//! `capo_scripts::Call::parse` and dispatches on the id, taking the arguments it needs
//! from the call (see the scripts' headers in `crates/capo-scripts/sh`):
//!
//! | id | arguments used | answer |
//! |---|---|---|
//! | `capo-lock` | HOLDER | empty HOLDER (`lock = false`): `::capo:lock=off`, exit 0; else `::capo:lock=ok`, then holds the channel open until the client sends EOF (or closes), then exit 0; `::capo:lock=held` + `holder=` and exit 75 while another connection holds this host |
//! | `capo-collect` | DIR (`capo-plan.*` or not) | Puppet's summary, report and JSON log from the fixtures, each followed by `::capo:eof=FILE`; exit 0 |
//! | `capo-kill` | | exit 0 |
//! | every step (under `wrap.sh`) | DEADLINE | `::capo:pid=N` at once, then: |
//! | - `capo-plan` | REV, SHOW_DIFF | rev-before/rev-after, `target`, `incoming-count`, `incoming`, `results=/tmp/capo-plan.XXXXXX`, Puppet's noop console output; exit 0 |
//! | - `capo-sync-rev` | REV | `started` (for the run record), rev-before/rev-after, `target`, `ahead=1` when the host is past it; exit 0 |
//! | - `capo-sync` | REMOTE, BRANCH | `started`, rev-before, git's pull output, rev-after; exit 0 |
//! | - `capo-apply` | SHOW_DIFF | `results=/tmp/capo-run.XXXXXX`, Puppet's console output, `record=ok` (the run record, which the fleet does not keep); exit 2 (changed), 0 (unchanged) or 6 (failed) |
//! | - `capo-exec` | CMD | [`crate::shell::simulate`] |
//! | - `capo-check` | LOCK | user, pkg, git and puppet versions, `repo=checkout` with head and branch, `puppetfile=none`, and `lock=free`, `held` + `holder=` (while a connection holds it) or `off`; exit 0 |
//! | - `capo-status` | FETCH, LOCK | the host as it stands [`crate::sim::LAST_RUN_AGE`] after its last rollout: `now`, `pull=none`, that rollout's run record (`record=\|`, `changed`, `unchanged` or `failed` as the fleet's Puppet runs end) and Puppet's summary (`summary=\|`), `repo=checkout` with head and branch, `upstream` (FETCH 1: `fetch=ok` and the remote's commit, `behind=1` when the checkout is behind it; else the checkout's own, as the last sync left it), `behind`, `ahead`, and the lock as for `capo-check`; exit 0 |
//! | anything else | | [`crate::shell::simulate`] on the whole command |
//!
//! A wrapped step whose simulated time reaches the wrapper's deadline ends as the real wrapper
//! makes it end: `::capo:deadline=SECS` at the deadline, exit 143; a Puppet run cut that way
//! leaves an empty results directory (Puppet writes its files at the end).

use std::time::Duration;

use bytes::Bytes;
use capo_scripts::{Call, Script, MARK};

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The lock holder, with the holder line it would write.
    Lock {
        /// Who takes the lock (capo's run id, controller, pid, start time).
        holder: String,
    },
    /// Reading back a results directory.
    Collect {
        /// Whether the directory is a plan's (`capo-plan.*`) rather than a rollout's.
        plan: bool,
    },
    /// Stopping a step's process tree.
    Kill,
    /// A step under the deadline wrapper.
    Step {
        /// The wrapper's deadline, as written (e.g. `1800.000`), and as a duration.
        deadline: Option<(String, Duration)>,
        /// Which step.
        step: Step,
    },
    /// A command line capo did not wrap.
    Raw(String),
}

/// The steps that run under the deadline wrapper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `git pull --ff-only REMOTE BRANCH`.
    Sync {
        /// The remote.
        remote: String,
        /// The branch.
        branch: String,
    },
    /// Fetch, then fast-forward to `rev`.
    SyncToRev {
        /// The asked-for revision.
        rev: String,
    },
    /// `puppet apply`.
    Apply {
        /// Whether Puppet was asked for file diffs (`--show_diff`).
        show_diff: bool,
        /// Whether the results go back inline, after Puppet's output (INLINE).
        inline: bool,
    },
    /// `puppet apply --noop` on the target in a temporary copy.
    Plan {
        /// The asked-for revision, if any.
        rev: Option<String>,
        /// Whether Puppet was asked for file diffs (`--show_diff`).
        show_diff: bool,
    },
    /// `capo exec -- CMD`: the command line.
    Exec(String),
    /// `capo check`'s look at the host; whether to look at the lock (`lock` setting).
    Check {
        /// Whether the inventory lets runs take the lock.
        lock: bool,
    },
    /// `capo status`'s look at the host.
    Status {
        /// Whether the remote branch is fetched first (`--fetch`).
        fetch: bool,
        /// Whether the inventory lets runs take the lock.
        lock: bool,
    },
}

/// Sorts a command into a [`Kind`]; see the module documentation for the rules.
pub fn classify(command: &str) -> Kind {
    let Some(call) = Call::parse(command) else {
        return Kind::Raw(command.to_string());
    };
    let arg = |i: usize| call.args.get(i).cloned().unwrap_or_default();
    let deadline = call.deadline_text().zip(call.deadline);
    let step = match call.script {
        Script::Lock => return Kind::Lock { holder: arg(1) },
        Script::Collect => {
            let plan = arg(0)
                .rsplit('/')
                .next()
                .unwrap_or("")
                .starts_with("capo-plan.");
            return Kind::Collect { plan };
        }
        Script::Kill => return Kind::Kill,
        // The simulated checkout has no Puppetfile (its sync never says `modules=stale`), so
        // capo never sends this; played as a plain command line if it ever comes.
        Script::Modules => return Kind::Raw(command.to_string()),
        // The maintenance switch is not simulated (no benchmark sends it); played as a plain
        // command line if it ever comes.
        Script::Disable => return Kind::Raw(command.to_string()),
        // Every simulated host already has its checkout: bootstrap is not simulated, and is
        // played as a plain command line if it ever comes.
        Script::Bootstrap => return Kind::Raw(command.to_string()),
        Script::Status => Step::Status {
            fetch: arg(4) == "1",
            lock: arg(5) == "1",
        },
        // Pull mode is installed on real hosts only.
        Script::PullAdmin => return Kind::Raw(command.to_string()),
        Script::Sync => Step::Sync {
            remote: arg(1),
            branch: arg(2),
        },
        Script::SyncRev => Step::SyncToRev { rev: arg(2) },
        Script::Apply => Step::Apply {
            show_diff: arg(7) == "1",
            inline: arg(14) == "1",
        },
        Script::Plan => Step::Plan {
            rev: Some(arg(3)).filter(|r| !r.is_empty()),
            show_diff: arg(10) == "1",
        },
        Script::Exec => Step::Exec(arg(0)),
        Script::Check => Step::Check {
            lock: arg(3) == "1",
        },
    };
    if deadline.is_none() {
        return Kind::Raw(command.to_string());
    }
    Kind::Step { deadline, step }
}

/// How a simulated command ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Exit with this status once everything is sent.
    Exit(u32),
    /// Keep the channel open until the client sends EOF (or closes it), then exit 0.
    Hold,
}

/// What a simulated host sends back for one command.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Standard output sent at once.
    pub now: Bytes,
    /// Time before the rest.
    pub delay: Duration,
    /// Standard output after the delay.
    pub stdout: Bytes,
    /// Standard error after the delay.
    pub stderr: Bytes,
    /// How it ends.
    pub end: End,
    /// Whether the deadline wrapper cuts it short (see [`Reply::cut_at`]).
    pub cut: bool,
}

impl Reply {
    /// Output at once and an exit status, nothing else.
    pub fn immediate(now: impl Into<Bytes>, code: u32) -> Reply {
        Reply {
            now: now.into(),
            delay: Duration::ZERO,
            stdout: Bytes::new(),
            stderr: Bytes::new(),
            end: End::Exit(code),
            cut: false,
        }
    }

    /// What the deadline wrapper does to a step that runs past `deadline`: the deadline
    /// marker when it comes, then the step's tree is killed (TERM: exit 143).
    pub fn cut_at(self, deadline: Option<&(String, Duration)>) -> Reply {
        match deadline {
            Some((text, at)) if self.delay >= *at && matches!(self.end, End::Exit(_)) => Reply {
                now: self.now,
                delay: *at,
                stdout: Bytes::from(format!("\n{MARK}deadline={text}\n")),
                stderr: Bytes::new(),
                end: End::Exit(143),
                cut: true,
            },
            _ => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capo_engine::steps;
    use capo_inventory::Inventory;
    use std::path::Path;

    fn settings() -> capo_inventory::Settings {
        let text = "[defaults]\nrepo_dir = \"/srv/puppet\"\n[hosts.h1]\n";
        match Inventory::parse(text, Path::new("inv.toml")) {
            Ok(inv) => inv.hosts[0].settings.clone(),
            Err(e) => panic!("inventory: {e}"),
        }
    }

    const HOLDER: &str =
        "capo run 20261124T224501Z-1a2b from ctl (pid 7), started 2026-11-24T22:45:01Z";

    /// A push run's record arguments, as a rollout passes them after its sync (the
    /// arguments the simulated fleet reads by index must not move).
    fn record() -> steps::RunRecord {
        steps::RunRecord {
            started: "1795563412000 2026-11-24T22:45:01Z 20261124T224501".into(),
            rev_before: "3f2a1c9".into(),
            ..steps::RunRecord::push(&settings(), "20261124T224501Z-1a2b", HOLDER)
        }
    }

    #[test]
    fn every_capo_script_is_recognized() {
        let s = settings();
        let t = Duration::from_secs(300);
        assert_eq!(
            classify(&steps::lock(&s, HOLDER)),
            Kind::Lock {
                holder: HOLDER.into()
            }
        );
        let step = |k: Kind| match k {
            Kind::Step { deadline, step } => {
                assert_eq!(
                    deadline,
                    Some(("300.000".to_string(), Duration::from_secs(300)))
                );
                step
            }
            other => panic!("not a step: {other:?}"),
        };
        assert_eq!(
            step(classify(&steps::sync(&s, HOLDER, &record(), t).script())),
            Step::Sync {
                remote: "origin".into(),
                branch: "main".into()
            }
        );
        assert_eq!(
            step(classify(
                &steps::sync_to_rev(&s, "v1.2", HOLDER, &record(), t).script()
            )),
            Step::SyncToRev { rev: "v1.2".into() }
        );
        assert_eq!(
            step(classify(
                &steps::apply(&s, HOLDER, &record(), t, false).script()
            )),
            Step::Apply {
                show_diff: false,
                inline: true
            }
        );
        assert_eq!(
            step(classify(
                &steps::apply(&s, HOLDER, &record(), t, true).script()
            )),
            Step::Apply {
                show_diff: true,
                inline: true
            }
        );
        assert_eq!(
            step(classify(&steps::plan(&s, None, t, true).script())),
            Step::Plan {
                rev: None,
                show_diff: true
            }
        );
        assert_eq!(
            step(classify(
                &steps::plan(&s, Some("3f2a1c9"), t, false).script()
            )),
            Step::Plan {
                rev: Some("3f2a1c9".into()),
                show_diff: false
            }
        );
        assert_eq!(
            step(classify(&steps::exec("echo 'a b' \"$HOME\"", t).script())),
            Step::Exec("echo 'a b' \"$HOME\"".into())
        );
        assert_eq!(
            classify(&steps::collect("/tmp/capo-run.Ab12Cd").unwrap_or_default()),
            Kind::Collect { plan: false }
        );
        assert_eq!(
            classify(&steps::collect("/tmp/capo-plan.Ab12Cd").unwrap_or_default()),
            Kind::Collect { plan: true }
        );
        assert_eq!(
            step(classify(&steps::status(&s, false, t).script())),
            Step::Status {
                fetch: false,
                lock: true
            }
        );
        assert_eq!(
            step(classify(&steps::status(&s, true, t).script())),
            Step::Status {
                fetch: true,
                lock: true
            }
        );
        assert_eq!(classify(&steps::kill(4242)), Kind::Kill);
        assert_eq!(classify("uname -r"), Kind::Raw("uname -r".into()));
    }

    #[test]
    fn a_step_past_its_deadline_is_cut() {
        let slow = Reply {
            delay: Duration::from_secs(10),
            ..Reply::immediate("::capo:pid=9\n", 2)
        };
        let cut = slow.cut_at(Some(&("5.000".to_string(), Duration::from_secs(5))));
        assert_eq!(cut.delay, Duration::from_secs(5));
        assert_eq!(&cut.stdout[..], b"\n::capo:deadline=5.000\n");
        assert_eq!(cut.end, End::Exit(143));
    }
}
