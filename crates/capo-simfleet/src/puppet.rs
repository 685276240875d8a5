//! What a simulated `puppet apply` prints and leaves behind, from real Puppet 7 runs: the
//! fixtures in `crates/capo-puppet/tests/fixtures` (see the README there).

use bytes::Bytes;
use capo_scripts::EOF_MARK;

/// How every simulated `puppet apply` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Outcome {
    /// 3 resources changed (exit 2); the sync step moves the checkout forward.
    Changed,
    /// Nothing to do (exit 0); the checkout is already up to date.
    Unchanged,
    /// Some resources failed (exit 6); the sync step moves the checkout forward.
    Failed,
}

/// One kind of run, ready to send.
#[derive(Debug, Clone)]
pub struct Run {
    /// Puppet's console output on stdout (notices).
    pub stdout: Bytes,
    /// Puppet's console output on stderr (warnings, errors).
    pub stderr: Bytes,
    /// `--detailed-exitcodes` status.
    pub exit: u32,
    /// What capo's collect script prints for the results directory of this run, for a run
    /// with `--show_diff` (the JSON log has the file diffs) and without.
    pub collected: Bytes,
    /// The same without `--show_diff`: no diffs in the JSON log.
    pub collected_no_diff: Bytes,
    /// Puppet's `last_run_summary.yaml` of this run (with the config version given), which
    /// `capo status` reads back; its `last_run:` time is the fixture's.
    pub summary: String,
    /// The summary's resource counts, as the run record takes them (`changed`, `failed`,
    /// `corrective_change`, `out_of_sync`).
    pub resources: [Option<u64>; 4],
}

impl Run {
    /// What capo's collect script prints for this run's results directory, with or without
    /// `--show_diff`.
    pub fn collected(&self, show_diff: bool) -> &Bytes {
        if show_diff {
            &self.collected
        } else {
            &self.collected_no_diff
        }
    }
}

/// Every run the simulated hosts can make.
#[derive(Debug, Clone)]
pub struct Runs {
    /// `puppet apply` (rollout).
    pub apply: Run,
    /// `puppet apply --noop` (plan).
    pub noop: Run,
}

struct Fixture {
    summary: &'static str,
    report: &'static str,
    log: &'static str,
}

macro_rules! fixture {
    ($dir:literal) => {
        Fixture {
            summary: include_str!(concat!(
                "../../capo-puppet/tests/fixtures/",
                $dir,
                "/last_run_summary.yaml"
            )),
            report: include_str!(concat!(
                "../../capo-puppet/tests/fixtures/",
                $dir,
                "/last_run_report.yaml"
            )),
            log: include_str!(concat!(
                "../../capo-puppet/tests/fixtures/",
                $dir,
                "/log.jsonl"
            )),
        }
    };
}

impl Runs {
    /// The runs for `outcome`, with `config_version` as the config version Puppet records.
    pub fn new(outcome: Outcome, config_version: &str) -> Runs {
        let (apply, exit) = match outcome {
            Outcome::Changed => (fixture!("changed"), 2),
            Outcome::Unchanged => (fixture!("unchanged"), 0),
            Outcome::Failed => (fixture!("failed"), 6),
        };
        // A noop run never exits 2 (PUP-686); capo reads pending changes from its summary.
        let noop = match outcome {
            Outcome::Unchanged => fixture!("unchanged"),
            Outcome::Changed | Outcome::Failed => fixture!("noop_pending"),
        };
        Runs {
            apply: run(&apply, exit, config_version),
            noop: run(&noop, 0, config_version),
        }
    }
}

/// `summary` with `config_version` as its `version.config`: the fixtures were made without
/// capo, so they hold Puppet's default (a timestamp), where a host under capo records what
/// `--config_version` or the repo's `environment.conf` prints.
fn with_config_version(summary: &str, config_version: &str) -> String {
    let quoted = format!("  config: '{}'", config_version.replace('\'', "''"));
    summary
        .lines()
        .map(|l| {
            if l.starts_with("  config: ") {
                quoted.as_str()
            } else {
                l
            }
        })
        .flat_map(|l| [l, "\n"])
        .collect()
}

fn run(f: &Fixture, exit: u32, config_version: &str) -> Run {
    let (stdout, stderr) = console(f.log);
    let summary = with_config_version(f.summary, config_version);
    // The fixtures were made with --show_diff; without it Puppet logs no diffs.
    let log_no_diff: String = f
        .log
        .lines()
        .filter(|l| !l.contains(r#""message":"\n---"#))
        .flat_map(|l| [l, "\n"])
        .collect();
    Run {
        stdout: Bytes::from(stdout),
        stderr: Bytes::from(stderr),
        exit,
        collected: collected(&summary, f.report, f.log),
        collected_no_diff: collected(&summary, f.report, &log_no_diff),
        resources: ["changed", "failed", "corrective_change", "out_of_sync"]
            .map(|k| resource_count(&summary, k)),
        summary,
    }
}

/// `resources.KEY` of a Puppet summary, as `summary_values` in lib-record.sh reads it.
fn resource_count(summary: &str, key: &str) -> Option<u64> {
    let mut section = "";
    for line in summary.lines() {
        if !line.starts_with(' ') {
            section = line.split(':').next().unwrap_or("");
        } else if section == "resources" {
            if let Some((k, v)) = line.trim_start().split_once(':') {
                if k == key {
                    return v.trim().parse().ok();
                }
            }
        }
    }
    None
}

impl Run {
    /// The summary as Puppet would have written it at `last_run` (seconds since the epoch).
    pub fn summary_at(&self, last_run: i64) -> String {
        self.summary
            .lines()
            .map(|l| {
                if l.starts_with("  last_run: ") {
                    format!("  last_run: {last_run}")
                } else {
                    l.to_string()
                }
            })
            .flat_map(|l| [l, "\n".to_string()])
            .collect()
    }
}

/// What `capo-collect` (collect.sh) prints: each file followed by `::capo:eof=FILE`.
fn collected(summary: &str, report: &str, log: &str) -> Bytes {
    let mut out = String::with_capacity(summary.len() + report.len() + log.len() + 64);
    for (text, name) in [
        (summary, "summary.yaml"),
        (report, "report.yaml"),
        (log, "log.jsonl"),
    ] {
        out.push_str(text);
        out.push('\n');
        out.push_str(EOF_MARK);
        out.push_str(name);
        out.push('\n');
    }
    Bytes::from(out)
}

/// Puppet's console lines for a JSON log: `Notice: SOURCE: MESSAGE` (no source for Puppet's
/// own messages), notices on stdout, warnings and errors on stderr. Facter's permission
/// errors (an artefact of the machine the fixtures were made on) and file diffs (printed only
/// with `--show_diff`) are left out.
fn console(log: &str) -> (String, String) {
    let mut stdout = String::new();
    let mut stderr = String::new();
    for line in log.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let field = |k: &str| entry.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let (level, source, message) = (field("level"), field("source"), field("message"));
        if source == "Facter" || message.starts_with("\n---") {
            continue;
        }
        let (label, to) = match level {
            "notice" => ("Notice", &mut stdout),
            "info" => ("Info", &mut stdout),
            "warning" => ("Warning", &mut stderr),
            "err" => ("Error", &mut stderr),
            _ => continue,
        };
        to.push_str(label);
        to.push_str(": ");
        if source != "Puppet" && !source.is_empty() {
            to.push_str(source);
            to.push_str(": ");
        }
        to.push_str(message);
        to.push('\n');
    }
    (stdout, stderr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_output_looks_like_puppet() {
        let runs = Runs::new(Outcome::Changed, "77b0e41");
        let out = String::from_utf8_lossy(&runs.apply.stdout);
        assert!(out.starts_with("Notice: Compiled catalog for vm"), "{out}");
        assert!(out.contains(
            "Notice: /Stage[main]/Main/File[/tmp/pp/t/g]/mode: mode changed '0644' to '0600'\n"
        ));
        assert!(runs.apply.stderr.is_empty());
        assert_eq!(runs.apply.exit, 2);
        let failed = Runs::new(Outcome::Failed, "77b0e41");
        let err = String::from_utf8_lossy(&failed.apply.stderr);
        assert!(err.starts_with("Error: '/bin/false' returned 1"), "{err}");
        // The report keeps its logs; only the JSON log (the last file) loses the diff.
        let log = |b: &Bytes| {
            let text = String::from_utf8_lossy(b).into_owned();
            text.split(&format!("{EOF_MARK}report.yaml"))
                .nth(1)
                .unwrap_or_default()
                .to_string()
        };
        assert!(log(&runs.apply.collected).contains("+++ /tmp/puppet-file"));
        assert!(!log(&runs.apply.collected_no_diff).contains("+++ /tmp/puppet-file"));
        assert_eq!(
            log(&runs.apply.collected).lines().count(),
            log(&runs.apply.collected_no_diff).lines().count() + 1
        );
    }

    #[test]
    fn the_record_takes_the_summarys_resource_counts_and_time() {
        let runs = Runs::new(Outcome::Changed, "77b0e41");
        assert_eq!(runs.apply.resources, [Some(3), Some(0), Some(0), Some(3)]);
        let failed = Runs::new(Outcome::Failed, "77b0e41");
        assert!(failed.apply.resources[1].is_some_and(|n| n > 0));
        let summary = capo_puppet::parse_summary(&runs.apply.summary_at(1_796_299_200));
        assert_eq!(summary.ok().and_then(|s| s.last_run), Some(1_796_299_200));
    }

    #[test]
    fn the_summary_records_the_config_version_given() {
        let summary = |runs: &Runs| {
            let collected = String::from_utf8_lossy(&runs.noop.collected).into_owned();
            let summary = collected
                .split(&format!("{EOF_MARK}summary.yaml"))
                .next()
                .unwrap_or_default()
                .to_string();
            capo_puppet::parse_summary(&summary).expect("a summary")
        };
        let runs = Runs::new(Outcome::Changed, "77b0e41a0c5f");
        assert_eq!(
            summary(&runs).config_version.as_deref(),
            Some("77b0e41a0c5f")
        );
        let runs = Runs::new(Outcome::Changed, "it's 2024.12");
        assert_eq!(
            summary(&runs).config_version.as_deref(),
            Some("it's 2024.12")
        );
        assert!(summary(&runs).resources.changed > 0 || summary(&runs).resources.out_of_sync > 0);
    }
}
