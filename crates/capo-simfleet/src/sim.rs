//! The simulated hosts' shared state and their answers to each kind of script.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;

use crate::puppet::{Outcome, Runs};
use crate::script::{classify, End, Kind, Reply, Step};
use crate::shell::{self, HostFacts};

use capo_scripts::{EOF_MARK, LOCKED_EXIT, MARK};

/// Subject of the one commit a sync brings in.
/// What a simulated sync says about when the run began (`record_start` in lib-record.sh), for
/// the run record, which capo passes on to the apply step.
const STARTED: &str = "::capo:started=1795563412000 2026-11-24T22:45:01Z 20261124T224501\n";

/// What a simulated apply prints once it wrote the run record.
const RECORD_OK: &str = "::capo:record=ok\n";

const COMMIT_SUBJECT: &str = "Raise the MOTD";

/// How long before `capo status` looks each simulated host's last rollout ended: recent
/// enough for every default staleness threshold (`--stale-after`, 24 h without a pull timer).
pub const LAST_RUN_AGE: Duration = Duration::from_secs(600);

/// The results block the apply and plan steps print once Puppet ends (`results_inline` in
/// lib-step.sh): the collected files between two lines naming the directory.
fn push_inline(out: &mut Vec<u8>, dir: &str, collected: &[u8]) {
    out.extend_from_slice(format!("{MARK}results-begin={dir}\n").as_bytes());
    out.extend_from_slice(collected);
    out.extend_from_slice(format!("{MARK}results-end={dir}\n").as_bytes());
}

/// A time as the run record writes it: RFC 3339 UTC, whole seconds.
fn rfc3339(epoch: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(epoch, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// A JSON string (or null when empty), as `json_object` in lib-record.sh writes one.
fn json_str(text: &str) -> String {
    if text.is_empty() {
        "null".to_string()
    } else {
        serde_json::Value::from(text).to_string()
    }
}

/// How long each simulated step takes.
#[derive(Debug, Clone, Copy)]
pub struct Delays {
    /// `git pull` / fetch.
    pub sync: Duration,
    /// `puppet apply` (plan: fetch + apply).
    pub apply: Duration,
    /// Every ad-hoc command (process start-up), on top of its own `sleep`s.
    pub exec: Duration,
}

/// Counters printed when the fleet stops.
#[derive(Debug, Default)]
pub struct Stats {
    /// TCP connections accepted.
    pub connections: AtomicU64,
    /// Sessions that ended with an error (handshake or protocol).
    pub session_errors: AtomicU64,
    /// Exec requests answered.
    pub execs: AtomicU64,
    /// Lock requests refused because another connection held the host.
    pub locked: AtomicU64,
    /// Accept errors (e.g. out of file descriptors).
    pub accept_errors: AtomicU64,
}

/// What one connection remembers between commands.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ConnState {
    /// The last command took the host's lock (the caller releases it when its channel ends).
    pub took_lock: bool,
    /// The last Puppet run was asked for diffs, so its results have them.
    pub show_diff: bool,
    /// The last Puppet run was killed at its deadline, so it left no results.
    pub cut: bool,
}

/// Everything the simulated hosts share.
pub struct Sim {
    /// Step durations.
    pub delays: Delays,
    /// The commit every checkout starts at (40 hex digits).
    pub before: String,
    /// The commit the remote branch is at (40 hex digits).
    pub after: String,
    /// How Puppet runs end.
    pub outcome: Outcome,
    /// Every `fail_every`-th host (1-based) fails its Puppet run; 0: none.
    pub fail_every: u32,
    /// Digits in host names (`sim00001`).
    pub name_width: usize,
    runs: Runs,
    failing: Runs,
    /// Source of fake pids and temporary directory names.
    counter: AtomicU64,
    /// Hosts whose lock is held, with the holder line.
    locks: Mutex<HashMap<u32, Box<str>>>,
    /// Counters.
    pub stats: Stats,
}

impl Sim {
    /// A fleet whose hosts behave as described.
    pub fn new(
        delays: Delays,
        before: String,
        after: String,
        outcome: Outcome,
        fail_every: u32,
        name_width: usize,
        config_version: Option<&str>,
    ) -> Sim {
        // As on a host under capo: the commit applied, unless the repo sets its own.
        let config = config_version.unwrap_or(&after).to_string();
        Sim {
            delays,
            before,
            after,
            outcome,
            fail_every,
            name_width,
            runs: Runs::new(outcome, &config),
            failing: Runs::new(Outcome::Failed, &config),
            counter: AtomicU64::new(0),
            locks: Mutex::default(),
            stats: Stats::default(),
        }
    }

    /// The inventory name of host `host` (1-based).
    pub fn name(&self, host: u32) -> String {
        format!("sim{host:0width$}", width = self.name_width)
    }

    fn runs(&self, host: u32) -> &Runs {
        if self.fail_every > 0 && host.is_multiple_of(self.fail_every) {
            &self.failing
        } else {
            &self.runs
        }
    }

    /// Whether host `host`'s checkout starts behind the remote.
    fn behind(&self, host: u32) -> bool {
        self.outcome != Outcome::Unchanged || self.runs(host).apply.exit != 0
    }

    /// The commit host `host`'s checkout is at.
    fn head(&self, host: u32) -> &str {
        if self.behind(host) {
            &self.before
        } else {
            &self.after
        }
    }

    /// The commit `rev` names: `before` when it is a prefix of it (4+ digits), else `after`
    /// (any branch or tag is taken to point there).
    fn resolve(&self, rev: Option<&str>) -> &str {
        match rev {
            Some(rev) if rev.len() >= 4 && self.before.starts_with(rev) => &self.before,
            _ => &self.after,
        }
    }

    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// A plausible pid for a new step's shell.
    fn pid(&self) -> u64 {
        1000 + self.next() % 4_000_000
    }

    /// A `mktemp -d` style directory name: `/tmp/PREFIX.XXXXXX`.
    fn tmp_dir(&self, prefix: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        // Spread consecutive numbers over the name, like mktemp's random letters.
        let mut n = self.next().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
        let mut name = format!("/tmp/{prefix}.");
        for _ in 0..6 {
            name.push(char::from(ALPHABET[(n % 62) as usize]));
            n /= 62;
        }
        name
    }

    /// Takes host `host`'s lock for `holder`; on failure, the current holder's line.
    pub fn take_lock(&self, host: u32, holder: &str) -> Result<(), String> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(current) = locks.get(&host) {
            return Err(current.to_string());
        }
        locks.insert(host, holder.into());
        Ok(())
    }

    /// Who holds host `host`'s lock, if anyone does.
    pub fn lock_holder(&self, host: u32) -> Option<String> {
        let locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.get(&host).map(|h| h.to_string())
    }

    /// Releases host `host`'s lock.
    pub fn release_lock(&self, host: u32) {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.remove(&host);
    }

    /// The answer of host `host` to `command` on a connection in state `conn`.
    pub fn reply(&self, host: u32, command: &str, conn: &mut ConnState) -> Reply {
        self.stats.execs.fetch_add(1, Ordering::Relaxed);
        conn.took_lock = false;
        match classify(command) {
            Kind::Lock { holder } if holder.is_empty() => {
                Reply::immediate(format!("{MARK}lock=off\n"), 0)
            }
            Kind::Lock { holder } => match self.take_lock(host, &holder) {
                Ok(()) => {
                    conn.took_lock = true;
                    Reply {
                        end: End::Hold,
                        ..Reply::immediate(format!("{MARK}lock=ok\n"), 0)
                    }
                }
                Err(current) => {
                    self.stats.locked.fetch_add(1, Ordering::Relaxed);
                    let text = format!("{MARK}lock=held\n{MARK}holder={current}\n");
                    Reply::immediate(text, LOCKED_EXIT)
                }
            },
            Kind::Collect { .. } if conn.cut => Reply::immediate(
                format!(
                    "\n{EOF_MARK}summary.yaml\n\n{EOF_MARK}report.yaml\n\n{EOF_MARK}log.jsonl\n"
                ),
                0,
            ),
            Kind::Collect { plan } => {
                let runs = self.runs(host);
                let run = if plan { &runs.noop } else { &runs.apply };
                Reply::immediate(run.collected(conn.show_diff).clone(), 0)
            }
            Kind::Kill => Reply::immediate(Bytes::new(), 0),
            Kind::Step { deadline, step } => {
                let puppet = match step {
                    Step::Apply { show_diff, .. } | Step::Plan { show_diff, .. } => Some(show_diff),
                    _ => None,
                };
                let reply = self.step(host, step).cut_at(deadline.as_ref());
                if let Some(show_diff) = puppet {
                    conn.show_diff = show_diff;
                    conn.cut = reply.cut;
                }
                reply
            }
            Kind::Raw(line) => {
                let name = self.name(host);
                let played = shell::simulate(&line, &HostFacts { name: &name });
                Reply {
                    now: Bytes::new(),
                    delay: self.delays.exec + played.sleep,
                    stdout: Bytes::from(played.stdout),
                    stderr: Bytes::from(played.stderr),
                    end: End::Exit(played.code),
                    cut: false,
                }
            }
        }
    }

    fn step(&self, host: u32, step: Step) -> Reply {
        let pid = self.pid();
        let head = self.head(host);
        match step {
            Step::Sync { remote, branch } => {
                let now = format!("{MARK}pid={pid}\n{STARTED}{MARK}rev-before={head}\n");
                let from = format!(
                    "From /srv/git/puppet\n * branch            {branch:<10} -> FETCH_HEAD\n"
                );
                let (stdout, stderr) = if head == self.after {
                    (
                        format!("Already up to date.\n{MARK}rev-after={head}\n"),
                        from,
                    )
                } else {
                    let (b, a) = (&head[..7], &self.after[..7]);
                    (
                        format!(
                            "Updating {b}..{a}\nFast-forward\n manifests/site.pp | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)\n{MARK}rev-after={}\n",
                            self.after
                        ),
                        format!("{from}   {b}..{a}  {branch:<10} -> {remote}/{branch}\n"),
                    )
                };
                Reply {
                    now: Bytes::from(now),
                    delay: self.delays.sync,
                    stdout: Bytes::from(stdout),
                    stderr: Bytes::from(stderr),
                    end: End::Exit(0),
                    cut: false,
                }
            }
            Step::SyncToRev { rev } => {
                let target = self.resolve(Some(&rev));
                let now = format!(
                    "{MARK}pid={pid}\n{STARTED}{MARK}rev-before={head}\n{MARK}rev-after={head}\n"
                );
                let rest = if target == head {
                    format!("{MARK}target={target}\n{MARK}rev-after={head}\n")
                } else if target == self.before {
                    // The checkout (at `after`) is already past the target.
                    format!("{MARK}target={target}\n{MARK}ahead=1\n{MARK}rev-after={head}\n")
                } else {
                    format!("{MARK}target={target}\n{MARK}rev-after={target}\n")
                };
                Reply {
                    now: Bytes::from(now),
                    delay: self.delays.sync,
                    stdout: Bytes::from(rest),
                    stderr: Bytes::new(),
                    end: End::Exit(0),
                    cut: false,
                }
            }
            Step::Apply { show_diff, inline } => {
                let run = &self.runs(host).apply;
                let dir = self.tmp_dir("capo-run");
                let now = format!("{MARK}pid={pid}\n{MARK}results={dir}\n");
                // The host writes the run record when Puppet ends, and says so; then the
                // results, when they go back inline.
                let collected = run.collected(show_diff);
                let mut stdout = Vec::with_capacity(
                    run.stdout.len() + RECORD_OK.len() + collected.len() + 2 * dir.len() + 64,
                );
                stdout.extend_from_slice(&run.stdout);
                stdout.extend_from_slice(RECORD_OK.as_bytes());
                if inline {
                    push_inline(&mut stdout, &dir, collected);
                }
                Reply {
                    now: Bytes::from(now),
                    delay: self.delays.apply,
                    stdout: Bytes::from(stdout),
                    stderr: run.stderr.clone(),
                    end: End::Exit(run.exit),
                    cut: false,
                }
            }
            Step::Plan { rev, show_diff } => {
                let target = self.resolve(rev.as_deref());
                let now =
                    format!("{MARK}pid={pid}\n{MARK}rev-before={head}\n{MARK}rev-after={head}\n");
                let delay = self.delays.sync + self.delays.apply;
                if target != head && target == self.before {
                    let rest = format!("{MARK}target={target}\n{MARK}ahead=1\n");
                    return Reply {
                        now: Bytes::from(now),
                        delay: self.delays.sync,
                        stdout: Bytes::from(rest),
                        stderr: Bytes::new(),
                        end: End::Exit(0),
                        cut: false,
                    };
                }
                let run = &self.runs(host).noop;
                let mut rest = format!("{MARK}target={target}\n");
                if target == head {
                    rest.push_str(&format!("{MARK}incoming-count=0\n"));
                } else {
                    rest.push_str(&format!(
                        "{MARK}incoming-count=1\n{MARK}incoming={} {COMMIT_SUBJECT}\n",
                        &target[..7]
                    ));
                }
                let dir = self.tmp_dir("capo-plan");
                rest.push_str(&format!("{MARK}results={dir}\n"));
                let mut rest = rest.into_bytes();
                rest.extend_from_slice(&run.stdout);
                push_inline(&mut rest, &dir, run.collected(show_diff));
                Reply {
                    now: Bytes::from(now),
                    delay,
                    stdout: Bytes::from(rest),
                    stderr: run.stderr.clone(),
                    end: End::Exit(run.exit),
                    cut: false,
                }
            }
            Step::Check { lock } => {
                let lock = match (lock, self.lock_holder(host)) {
                    (false, _) => "lock=off\n".to_string(),
                    (true, None) => "lock=free\n".to_string(),
                    (true, Some(holder)) => format!("lock=held\n{MARK}holder={holder}\n"),
                };
                let text = format!(
                    "{MARK}user=root\n{MARK}pkg=apt\n{MARK}git=2.39.5\n\
                     {MARK}puppet=7.23.0\n{MARK}repo=checkout\n{MARK}head={head}\n\
                     {MARK}branch=main\n{MARK}puppetfile=none\n{MARK}{lock}"
                );
                Reply {
                    now: Bytes::from(format!("{MARK}pid={pid}\n")),
                    delay: self.delays.exec,
                    stdout: Bytes::from(text),
                    stderr: Bytes::new(),
                    end: End::Exit(0),
                    cut: false,
                }
            }
            Step::Status { fetch, lock } => self.status(host, pid, fetch, lock),
            Step::Exec(line) => {
                let name = self.name(host);
                let played = shell::simulate(&line, &HostFacts { name: &name });
                Reply {
                    now: Bytes::from(format!("{MARK}pid={pid}\n")),
                    delay: self.delays.exec + played.sleep,
                    stdout: Bytes::from(played.stdout),
                    stderr: Bytes::from(played.stderr),
                    end: End::Exit(played.code),
                    cut: false,
                }
            }
        }
    }
}

impl Sim {
    /// What `status.sh` prints on host `host` (see the module documentation of
    /// [`crate::script`]): the host as it stands [`LAST_RUN_AGE`] after its last rollout,
    /// which ended as every rollout of this fleet does.
    fn status(&self, host: u32, pid: u64, fetch: bool, lock: bool) -> Reply {
        let now = chrono::Utc::now().timestamp();
        let ended = now - i64::try_from(LAST_RUN_AGE.as_secs()).unwrap_or(0);
        let took = self.delays.sync + self.delays.apply;
        let started = ended - i64::try_from(took.as_secs()).unwrap_or(0);
        let run = &self.runs(host).apply;
        let head = self.head(host);
        let (status, step) = match run.exit {
            0 => ("unchanged", ""),
            2 => ("changed", ""),
            _ => ("failed", "apply"),
        };
        let run_id = format!(
            "{}Z-{:04x}",
            rfc3339(started)
                .replace(['-', ':'], "")
                .trim_end_matches('Z'),
            host % 0x10000
        );
        let by = format!(
            "capo run {run_id} from capo-simfleet (pid 1), started {}",
            rfc3339(started)
        );
        let count = |n: Option<u64>| n.map_or("null".to_string(), |n| n.to_string());
        let [changed, failed, corrective, out_of_sync] = run.resources.map(count);
        let config = run
            .summary
            .lines()
            .find_map(|l| l.strip_prefix("  config: "))
            .map(|c| c.trim_matches('\'').replace("''", "'"))
            .unwrap_or_default();
        // The record as json_object writes it: one member a line.
        let record = format!(
            "{{\n  \"schema\": \"capo.run/v1\",\n  \"time\": \"{}\",\n  \"started\": \"{}\",\n  \
             \"source\": \"push\",\n  \"by\": {},\n  \"run_id\": {},\n  \"rev_before\": {},\n  \
             \"rev_after\": {},\n  \"status\": \"{status}\",\n  \"step\": {},\n  \
             \"changed\": {changed},\n  \"failed\": {failed},\n  \"corrective\": {corrective},\n  \
             \"out_of_sync\": {out_of_sync},\n  \"config_version\": {},\n  \"duration_ms\": {}\n}}\n",
            rfc3339(ended),
            rfc3339(started),
            json_str(&by),
            json_str(&run_id),
            json_str(head),
            json_str(head),
            json_str(step),
            json_str(&config),
            took.as_millis(),
        );
        let summary = run.summary_at(ended);
        let mut out = String::with_capacity(record.len() + summary.len() + 1024);
        out.push_str(&format!("{MARK}now={now}\n{MARK}pull=none\n"));
        for (key, text) in [("record", &record), ("summary", &summary)] {
            for line in text.lines() {
                out.push_str(&format!("{MARK}{key}=|{line}\n"));
            }
        }
        out.push_str(&format!(
            "{MARK}repo=checkout\n{MARK}head={head}\n{MARK}branch=main\n"
        ));
        // Without a fetch the remote-tracking branch is where the last sync left it: at HEAD.
        let upstream = if fetch {
            out.push_str(&format!("{MARK}fetch=ok\n"));
            self.after.as_str()
        } else {
            head
        };
        let behind = u32::from(upstream != head);
        out.push_str(&format!(
            "{MARK}upstream={upstream}\n{MARK}behind={behind}\n{MARK}ahead=0\n"
        ));
        out.push_str(&match (lock, self.lock_holder(host)) {
            (false, _) => format!("{MARK}lock=off\n"),
            (true, None) => format!("{MARK}lock=free\n"),
            (true, Some(holder)) => format!("{MARK}lock=held\n{MARK}holder={holder}\n"),
        });
        Reply {
            now: Bytes::from(format!("{MARK}pid={pid}\n")),
            delay: self.delays.exec
                + if fetch {
                    self.delays.sync
                } else {
                    Duration::ZERO
                },
            stdout: Bytes::from(out),
            stderr: Bytes::new(),
            end: End::Exit(0),
            cut: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capo_engine::inline::{Inline, Splitter};
    use capo_engine::steps::{self, Marks};
    use capo_inventory::Inventory;
    use std::path::Path;

    const BEFORE: &str = "3f2a1c9e5d7b8a6c4f1e2d3c4b5a697887960001";
    const AFTER: &str = "77b0e41a0c5f3e2d1c0b9a8f7e6d5c4b3a290002";

    fn fleet(outcome: Outcome) -> Sim {
        let delays = Delays {
            sync: Duration::from_millis(50),
            apply: Duration::from_secs(1),
            exec: Duration::ZERO,
        };
        Sim::new(delays, BEFORE.into(), AFTER.into(), outcome, 0, 5, None)
    }

    fn settings() -> capo_inventory::Settings {
        let text = "[defaults]\nrepo_dir = \"/srv/puppet\"\n[hosts.h1]\n";
        match Inventory::parse(text, Path::new("inv.toml")) {
            Ok(inv) => inv.hosts[0].settings.clone(),
            Err(e) => panic!("inventory: {e}"),
        }
    }

    fn all(r: &Reply) -> Vec<u8> {
        [&r.now[..], &r.stdout[..]].concat()
    }

    #[test]
    fn a_rollout_moves_the_checkout_and_changes_resources() {
        let sim = fleet(Outcome::Changed);
        let s = settings();
        let t = Duration::from_secs(300);
        let mut conn = ConnState::default();
        let lock = sim.reply(7, &steps::lock(&s, "run A"), &mut conn);
        assert!(conn.took_lock);
        assert_eq!(lock.end, End::Hold);
        assert_eq!(&lock.now[..], b"::capo:lock=ok\n");
        let mut other = ConnState::default();
        let second = sim.reply(7, &steps::lock(&s, "run B"), &mut other);
        assert!(!other.took_lock);
        assert_eq!(second.end, End::Exit(LOCKED_EXIT));
        assert_eq!(Marks::parse(&second.now).get("holder"), Some("run A"));
        sim.release_lock(7);

        let sync = sim.reply(
            7,
            &steps::sync(&s, "run A", &steps::RunRecord::default(), t).script(),
            &mut conn,
        );
        let marks = Marks::parse(&all(&sync));
        assert!(marks.pid().is_some());
        assert_eq!(marks.get("rev-before"), Some(BEFORE));
        assert_eq!(marks.get("rev-after"), Some(AFTER));
        assert_eq!(sync.end, End::Exit(0));
        assert_eq!(sync.delay, Duration::from_millis(50));

        let apply = sim.reply(
            7,
            &steps::apply(&s, "run A", &steps::RunRecord::default(), t, false).script(),
            &mut conn,
        );
        assert_eq!(apply.end, End::Exit(2));
        // The results come back inline, after the record's marker, as capo reads them.
        let mut split = Splitter::new();
        let mut own = Vec::new();
        split.feed(&all(&apply), &mut own);
        let Some(Inline::Complete(block)) = split.finish(&mut own) else {
            panic!(
                "no results block in {}",
                String::from_utf8_lossy(&all(&apply))
            );
        };
        let marks = Marks::parse(&own);
        assert_eq!(marks.get("record"), Some("ok"));
        assert!(marks
            .get("results")
            .is_some_and(|r| r.starts_with("/tmp/capo-run.")));
        assert!(!String::from_utf8_lossy(&own).contains("report.yaml"));
        let files = steps::split_collected(&String::from_utf8_lossy(&block));
        assert!(files.summary.contains("changed: 3"));
        assert!(files
            .report
            .starts_with("--- !ruby/object:Puppet::Transaction::Report"));
        assert!(files.log.ends_with("}\n"));
        assert!(!files.log.contains("+++ "), "no diffs without --show_diff");
    }

    #[test]
    fn a_plan_would_change_and_rev_can_be_ahead() {
        let sim = fleet(Outcome::Changed);
        let s = settings();
        let t = Duration::from_secs(300);
        let mut conn = ConnState::default();
        let plan = sim.reply(1, &steps::plan(&s, None, t, false).script(), &mut conn);
        let marks = Marks::parse(&all(&plan));
        assert_eq!(marks.get("target"), Some(AFTER));
        assert_eq!(marks.get("incoming-count"), Some("1"));
        assert_eq!(marks.get("incoming"), Some("77b0e41 Raise the MOTD"));
        assert!(marks
            .get("results")
            .is_some_and(|r| r.starts_with("/tmp/capo-plan.")));
        assert_eq!(plan.end, End::Exit(0));
        let mut split = Splitter::new();
        let Some(Inline::Complete(block)) = ({
            split.feed(&all(&plan), &mut Vec::new());
            split.finish(&mut Vec::new())
        }) else {
            panic!("no results block in the plan's output");
        };
        let files = steps::split_collected(&String::from_utf8_lossy(&block));
        assert!(
            files.summary.contains("out_of_sync: 3"),
            "{}",
            files.summary
        );

        let up = fleet(Outcome::Unchanged);
        let rev = up.reply(
            1,
            &steps::sync_to_rev(&s, "3f2a1c9", "r", &steps::RunRecord::default(), t).script(),
            &mut conn,
        );
        let marks = Marks::parse(&all(&rev));
        assert_eq!(marks.get("ahead"), Some("1"));
        assert_eq!(marks.get("rev-after"), Some(AFTER));
    }

    /// The markers of a status look, and the run record and summary read back as capo's
    /// status job reads them (`KEY=|LINE`).
    fn status_of(sim: &Sim, host: u32, fetch: bool) -> (Marks, serde_json::Value, String) {
        let t = Duration::from_secs(300);
        let step = steps::status(&settings(), fetch, t);
        let r = sim.reply(host, &step.script(), &mut ConnState::default());
        assert_eq!(r.end, End::Exit(0));
        let marks = Marks::parse(&all(&r));
        let file = |key| {
            marks
                .all(key)
                .map(|l| l.strip_prefix('|').unwrap_or(l))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let record = serde_json::from_str(&file("record")).expect("the record is JSON");
        let summary = file("summary");
        (marks, record, summary)
    }

    #[test]
    fn status_sees_the_last_rollout_and_how_far_behind_the_remote_is() {
        let mut sim = fleet(Outcome::Changed);
        sim.fail_every = 3;
        let (marks, record, summary) = status_of(&sim, 1, false);
        assert!(marks.pid().is_some());
        let now: i64 = marks.get("now").and_then(|n| n.parse().ok()).unwrap_or(0);
        assert!((now - chrono::Utc::now().timestamp()).abs() < 5, "{now}");
        assert_eq!(marks.get("pull"), Some("none"));
        assert_eq!(marks.get("repo"), Some("checkout"));
        assert_eq!(marks.get("head"), Some(BEFORE));
        assert_eq!(marks.get("branch"), Some("main"));
        assert_eq!(marks.get("upstream"), Some(BEFORE));
        assert_eq!(marks.get("behind"), Some("0"));
        assert_eq!(marks.get("fetch"), None);
        assert_eq!(marks.get("lock"), Some("free"));
        assert_eq!(record["schema"], "capo.run/v1");
        assert_eq!(record["source"], "push");
        assert_eq!(record["status"], "changed");
        assert_eq!(record["step"], serde_json::Value::Null);
        assert_eq!(record["rev_after"], BEFORE);
        assert_eq!(record["config_version"], AFTER);
        assert_eq!(
            (record["changed"].as_u64(), record["failed"].as_u64()),
            (Some(3), Some(0))
        );
        let ended = chrono::DateTime::parse_from_rfc3339(record["time"].as_str().unwrap_or(""))
            .map(|t| t.timestamp())
            .unwrap_or(0);
        assert_eq!(now - ended, 600);
        let puppet = capo_puppet::parse_summary(&summary).expect("Puppet's summary");
        assert_eq!(puppet.last_run, u64::try_from(ended).ok());
        assert_eq!(puppet.resources.changed, 3);

        // --fetch: the remote is one commit ahead of the checkout.
        let (marks, _, _) = status_of(&sim, 1, true);
        assert_eq!(marks.get("fetch"), Some("ok"));
        assert_eq!(marks.get("upstream"), Some(AFTER));
        assert_eq!(marks.get("behind"), Some("1"));

        // Every third host's Puppet runs fail; the record says so.
        let (_, record, summary) = status_of(&sim, 3, false);
        assert_eq!(
            (record["status"].as_str(), record["step"].as_str()),
            (Some("failed"), Some("apply"))
        );
        assert!(capo_puppet::parse_summary(&summary).is_ok_and(|s| s.resources.failed > 0));

        // A held lock shows with its holder; an up-to-date fleet is not behind after a fetch.
        assert!(sim.take_lock(2, "capo run X").is_ok());
        let (marks, _, _) = status_of(&sim, 2, false);
        assert_eq!(
            (marks.get("lock"), marks.get("holder")),
            (Some("held"), Some("capo run X"))
        );
        let up = fleet(Outcome::Unchanged);
        let (marks, record, _) = status_of(&up, 1, true);
        assert_eq!(
            (marks.get("head"), marks.get("behind")),
            (Some(AFTER), Some("0"))
        );
        assert_eq!(record["status"], "unchanged");
    }

    #[test]
    fn exec_plays_simple_commands() {
        let sim = fleet(Outcome::Changed);
        let t = Duration::from_secs(300);
        let mut conn = ConnState::default();
        let r = sim.reply(42, &steps::exec("true", t).script(), &mut conn);
        assert_eq!(r.end, End::Exit(0));
        assert!(r.stdout.is_empty());
        let r = sim.reply(
            42,
            &steps::exec("echo hi there; hostname", t).script(),
            &mut conn,
        );
        assert_eq!(&r.stdout[..], b"hi there\nsim00042\n");
        let r = sim.reply(
            42,
            &steps::exec("sleep 600", Duration::from_secs(2)).script(),
            &mut conn,
        );
        assert_eq!(r.end, End::Exit(143));
        assert_eq!(Marks::parse(&r.stdout).get("deadline"), Some("2.000"));
        // An apply killed at its deadline leaves no results behind.
        let s = settings();
        let apply = steps::apply(
            &s,
            "h",
            &steps::RunRecord::default(),
            Duration::from_millis(500),
            false,
        );
        let r = sim.reply(42, &apply.script(), &mut conn);
        assert_eq!(r.end, End::Exit(143));
        let dir = Marks::parse(&all(&r))
            .get("results")
            .unwrap_or_default()
            .to_string();
        let collect = steps::collect(&dir).unwrap_or_default();
        let collected = sim.reply(42, &collect, &mut conn);
        let files = steps::split_collected(&String::from_utf8_lossy(&collected.now));
        assert_eq!(files, steps::Collected::default());
    }
}
