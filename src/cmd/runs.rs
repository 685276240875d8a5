//! `capo runs`: the run history under `--runs-dir`. `list` shows the runs newest first,
//! `show` renders a stored report again with the same outputs a run has, `prune` removes old
//! runs. Nothing here contacts a host.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::Table;

use crate::cli::{Format, RunsCommand, RunsListArgs, RunsPruneArgs, RunsShowArgs};
use crate::error::Error;
use crate::exit::{Outcome, RunEnd};
use crate::history::{self, RunEntry};
use crate::run::outputs;

/// Runs the `capo runs` subcommand.
pub fn run(command: &RunsCommand) -> Result<Outcome, Error> {
    match command {
        RunsCommand::List(args) => list(args),
        RunsCommand::Show(args) => show(args),
        RunsCommand::Prune(args) => prune(args),
    }
}

fn list(args: &RunsListArgs) -> Result<Outcome, Error> {
    let runs = history::runs(&args.runs_dir)?;
    let text = match args.format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&runs).map_err(Error::EncodeRuns)?;
            text.push('\n');
            text
        }
        Format::Table => format!(
            "{}\n{} run{} in {}\n",
            table(&runs),
            runs.len(),
            if runs.len() == 1 { "" } else { "s" },
            args.runs_dir.display()
        ),
    };
    Ok(emit(&text))
}

/// Prints `text` on stdout. A reader that stopped reading (`capo runs list | head`) is no
/// failure; any other write error exits 1, as an output not written does.
fn emit(text: &str) -> Outcome {
    match crate::stdout::write(text) {
        Ok(()) => Outcome::Done,
        Err(e) => {
            eprintln!("capo: cannot write to stdout: {e}");
            not_written()
        }
    }
}

/// How a command ends whose output was not written: exit 1.
fn not_written() -> Outcome {
    Outcome::Run(RunEnd {
        outputs_failed: true,
        ..RunEnd::default()
    })
}

/// One row per run. Text from the inventory or the command line is sanitised: a limit may
/// hold anything.
fn table(runs: &[RunEntry]) -> Table {
    let line = capo_report::sanitize::line;
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header([
        "ID",
        "STARTED",
        "MODE",
        "INVENTORY",
        "LIMIT",
        "SHARD",
        "HOSTS",
        "EXIT",
    ]);
    for run in runs {
        table.add_row(vec![
            line(&run.id),
            run.started()
                .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
                .unwrap_or_else(|| "?".to_string()),
            run.mode.to_string(),
            line(&run.inventory),
            run.limit.as_deref().map_or_else(|| "-".to_string(), line),
            run.shard_text(),
            counts(run),
            run.exit.map_or_else(|| "?".to_string(), |e| e.to_string()),
        ]);
    }
    table
}

/// `3: 2 changed, 1 failed`: the total and every status some host ended with.
fn counts(run: &RunEntry) -> String {
    let parts: Vec<String> = capo_engine::HostStatus::ALL
        .iter()
        .filter_map(|s| {
            let n = run.summary.count(*s);
            (n > 0).then(|| format!("{n} {}", s.as_str().replace('_', " ")))
        })
        .collect();
    if parts.is_empty() {
        run.summary.total.to_string()
    } else {
        format!("{}: {}", run.summary.total, parts.join(", "))
    }
}

fn show(args: &RunsShowArgs) -> Result<Outcome, Error> {
    let runs = history::runs(&args.runs_dir)?;
    let entry = history::find(&runs, &args.id, &args.runs_dir)?;
    let report = history::read_report(&history::report_path(&args.runs_dir, entry))?;
    if outputs::show(&report, &args.output) {
        return Ok(not_written());
    }
    Ok(Outcome::Done)
}

fn prune(args: &RunsPruneArgs) -> Result<Outcome, Error> {
    let pruned = history::prune(&args.runs_dir, args.keep, None)?;
    let mut text = String::new();
    for id in &pruned.removed {
        text.push_str(&format!("removed {id}\n"));
    }
    for id in &pruned.abandoned {
        text.push_str(&format!("removed {id} (no report: its capo died)\n"));
    }
    for id in &pruned.stale {
        text.push_str(&format!(
            "dropped {id} from the index (its directory is gone)\n"
        ));
    }
    for id in &pruned.running {
        text.push_str(&format!("left {id} (in progress)\n"));
    }
    let removed = pruned.removed.len() + pruned.abandoned.len();
    text.push_str(&format!(
        "{removed} run{} removed, {} kept in {}\n",
        if removed == 1 { "" } else { "s" },
        pruned.kept,
        args.runs_dir.display()
    ));
    Ok(emit(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_name_every_status_some_host_has() {
        let mut run: RunEntry = serde_json::from_value(serde_json::json!({
            "id": "r1", "started_at": "", "finished_at": "", "mode": "plan",
            "inventory": "i.toml", "report": "r1/report.json",
            "summary": {"total": 3, "unchanged": 1, "changed": 0, "failed": 1, "unreachable": 0,
                        "would_change": 1},
        }))
        .expect("entry");
        assert_eq!(counts(&run), "3: 1 unchanged, 1 failed, 1 would change");
        run.summary = Default::default();
        assert_eq!(counts(&run), "0");
    }
}
