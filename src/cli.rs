//! Command-line definitions.

use std::path::PathBuf;
use std::time::Duration;

use capo_engine::HostStatus;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Roll masterless Puppet changes out to a fleet over SSH.
#[derive(Debug, Parser)]
#[command(name = "capo", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring every selected host's checkout up to date and run `puppet apply` there.
    Rollout(RolloutArgs),
    /// Show what a rollout would change on each host, changing nothing (`puppet apply --noop`
    /// on the target revision in a temporary copy).
    Plan(PlanArgs),
    /// Run an ad-hoc command on the hosts (no lock, no Puppet); identical outputs are shown
    /// once under their folded host set.
    Exec(ExecArgs),
    /// Check that every selected host is ready for a rollout, changing nothing: connect and
    /// log in (which identity, host key and jump hosts), become, git and Puppet versions,
    /// the checkout and the lock. Exits 1 when a rollout could not run on some host now.
    Check(CheckArgs),
    /// Disable runs on the hosts (a maintenance switch on each host, in `state_dir`): rollouts
    /// and pull runs leave them alone, reported `disabled` with the message, until `capo
    /// enable`.
    Disable(DisableArgs),
    /// Enable runs on the hosts again (removes what `capo disable` wrote).
    Enable(EnableArgs),
    /// Make new hosts ready for rollouts: git and Puppet there (--install installs them),
    /// the repo cloned into an empty or missing repo_dir, and a noop apply of it that
    /// compiles. A repo_dir that already is a checkout of the repo is left alone
    /// (`already`); one that holds anything else is refused and never touched.
    Bootstrap(BootstrapArgs),
    /// Show where each host stands, changing nothing: HEAD and how far behind the remote
    /// branch, the last run (push or pull) and Puppet's own, the lock, the maintenance switch,
    /// pull mode. Exits 1 unless every host is ok or changed (a drift alarm for CI).
    Status(StatusArgs),
    /// Pull mode: each host pulls and applies by itself on a timer (`install`, `remove`;
    /// `status` is `capo status`).
    #[command(subcommand)]
    Pull(PullCommand),
    /// List the hosts a --limit selects, without connecting to any.
    Hosts(HostsArgs),
    /// Work with run reports (the JSON of --report) without contacting any host.
    #[command(subcommand)]
    Report(ReportCommand),
    /// The run history under --runs-dir: list runs, show one again, prune old ones.
    #[command(subcommand)]
    Runs(RunsCommand),
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List the runs, newest first: id, start, mode, inventory, limit, shard, host counts
    /// and exit status.
    List(RunsListArgs),
    /// Show a run again from its stored report, as the run printed it (or as JSON), and write
    /// its --report, --junit and --summary-md files as the run would have.
    Show(RunsShowArgs),
    /// Remove all but the newest N runs (their directories and index entries), and the
    /// directories of runs that died before writing their report. Never a run in progress.
    Prune(RunsPruneArgs),
}

#[derive(Debug, Args)]
pub struct RunsListArgs {
    /// Where the runs are.
    #[arg(long, value_name = "DIR", default_value = ".capo/runs")]
    pub runs_dir: PathBuf,

    /// A table for people, or the index entries as JSON.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RunsShowArgs {
    /// The run: its id, the start of exactly one id, or `latest`.
    #[arg(value_name = "ID")]
    pub id: String,

    /// Where the runs are.
    #[arg(long, value_name = "DIR", default_value = ".capo/runs")]
    pub runs_dir: PathBuf,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct RunsPruneArgs {
    /// How many of the newest finished runs to keep (0 keeps all).
    #[arg(long, value_name = "N")]
    pub keep: usize,

    /// Where the runs are.
    #[arg(long, value_name = "DIR", default_value = ".capo/runs")]
    pub runs_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge the reports of the parts of one run (`--shard K/N` jobs) into the report one
    /// run over every host would have written, and exit as that run would have. Parts that
    /// do not belong together (another command, --rev, inventory or --limit, a host twice, a
    /// shard missing or twice) are refused with exit 2.
    Merge(ReportMergeArgs),
    /// Print a run's report as one self-contained HTML page (`> report.html`).
    ///
    /// The page loads nothing from the network (inline CSS, script and charts): the counts, a
    /// status grid of every host and the hosts folded by host set, a timeline of each host's
    /// connect, lock and steps with the stragglers marked, where the time went, the folded
    /// changes and problems, and the diffs collapsed.
    Html(ReportHtmlArgs),
}

#[derive(Debug, Args)]
pub struct ReportMergeArgs {
    /// The parts' reports (written with --report), in any order.
    #[arg(required = true, value_name = "REPORT")]
    pub parts: Vec<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Plans: exit 3 when any host would change and none failed (as `capo plan
    /// --fail-on-changes`).
    #[arg(long)]
    pub fail_on_changes: bool,
}

#[derive(Debug, Args)]
pub struct ReportHtmlArgs {
    /// The run's JSON report (written by --report, and kept as report.json in every run's
    /// directory under --runs-dir).
    #[arg(value_name = "RUN.json")]
    pub report: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum PullCommand {
    /// Install on each host the pull job (the same lock, sync, modules and apply scripts as a
    /// rollout, in /usr/local/lib/capo) and its schedule: a systemd timer, or a cron file
    /// where systemd does not run. Installing again changes only what differs.
    Install(PullInstallArgs),
    /// Remove pull mode from each host: the timer or cron file and the installed scripts.
    /// The run records in state_dir stay.
    Remove(EnableArgs),
    /// Where each host stands, pull mode included (the same as `capo status`).
    Status(StatusArgs),
    /// End the pin a `capo rollout --rev` left on each host, so that its pull job follows
    /// the branch again (as a rollout without --rev does).
    Unpin(EnableArgs),
}

#[derive(Debug, Args)]
pub struct PullInstallArgs {
    #[command(flatten)]
    pub selection: Selection,

    /// How long after one pull run ends the next starts (cron: the period, a divisor of an
    /// hour or a day).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub interval: Duration,

    /// Each host starts up to this much later than the schedule, by an amount fixed per
    /// host, so that the fleet does not pull all at once.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub splay: Duration,

    /// A pull run that takes longer than this is stopped (default: the host's
    /// command_timeout).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<Duration>,

    /// Apply only when the sync moved the checkout, the modules had to be installed, or the
    /// last run failed; and, so that drift is still corrected, when the last run is older than
    /// --max-age.
    #[arg(long)]
    pub only_if_changed: bool,

    /// With --only-if-changed: apply at least this often.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub max_age: Duration,

    /// Which scheduler: systemd, cron, or auto (systemd where it runs the host).
    #[arg(long, value_name = "WHICH", default_value = "auto", value_parser = ["auto", "systemd", "cron"])]
    pub scheduler: String,

    #[command(flatten)]
    pub run: RunArgs,
}

/// Which hosts, from which inventory.
#[derive(Debug, Args)]
pub struct Selection {
    /// Inventory file (TOML).
    #[arg(
        short,
        long,
        env = "CAPO_INVENTORY",
        default_value = "inventory.toml",
        value_name = "FILE"
    )]
    pub inventory: PathBuf,

    /// Hosts, groups or globs, comma-separated; a leading `!` excludes (e.g. 'web*,!web03').
    #[arg(short, long, value_name = "PATTERN")]
    pub limit: Option<String>,
}

#[derive(Debug, Args)]
pub struct RolloutArgs {
    #[command(flatten)]
    pub selection: Selection,

    /// Bring every host to exactly this commit, tag or branch (fetch, then fast-forward; a
    /// host already past it is left alone and reported `ahead`; none is moved backwards).
    #[arg(long, value_name = "REV", value_parser = parse_rev)]
    pub rev: Option<String>,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub selection: Selection,

    /// Plan for this commit, tag or branch instead of the tip of each host's branch.
    #[arg(long, value_name = "REV", value_parser = parse_rev)]
    pub rev: Option<String>,

    /// Exit 3 when any host would change and none failed (a drift check for CI).
    #[arg(long)]
    pub fail_on_changes: bool,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub selection: Selection,

    #[command(flatten)]
    pub run: RunArgs,

    /// The command and its arguments, joined with spaces and run by `sh -c` on each host
    /// (as `ssh host CMD...` does).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub selection: Selection,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct DisableArgs {
    #[command(flatten)]
    pub selection: Selection,

    /// Why, for whoever finds the host disabled (one line).
    #[arg(short, long, value_name = "MESSAGE", value_parser = parse_message)]
    pub message: String,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub selection: Selection,

    /// The URL the hosts clone the Puppet code from, as git on the host takes it; default:
    /// each host's `repo_url` setting.
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    pub repo: Option<String>,

    /// Put the clone at exactly this commit, tag or branch instead of the tip of the
    /// host's `branch` (the local branch then points at it, as after `rollout --rev`).
    #[arg(long, value_name = "REV", value_parser = parse_rev)]
    pub rev: Option<String>,

    /// Install a missing git or Puppet with the host's package manager (apt-get, dnf, yum,
    /// zypper or apk), through `become` when the inventory sets it.
    #[arg(long)]
    pub install: bool,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct EnableArgs {
    #[command(flatten)]
    pub selection: Selection,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub selection: Selection,

    /// Fetch the remote branch on each host first, so that `behind` is current (this moves
    /// the host's remote-tracking branch, nothing else).
    #[arg(long)]
    pub fetch: bool,

    /// A host whose last run ended longer ago than this is `stale` (default: twice the pull
    /// timer's interval where one is installed, else 24h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub stale_after: Option<Duration>,

    #[command(flatten)]
    pub run: RunArgs,
}

/// A disable message is stored as one line on the host and shown in tables.
fn parse_message(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("must not be empty".into())
    } else if s.chars().any(char::is_control) {
        Err("must be one line without control characters".into())
    } else {
        Ok(s.to_string())
    }
}

/// Where a report goes when a command ends: stdout (`--format`, and the table's
/// `--changes` and `--table`) and the files asked for. Runs, `capo report merge` and `capo
/// runs show` share them.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Also write the JSON report (schema capo.report/v1) to FILE, atomically.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// What to print on stdout at the end.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// How much of the table's changes list to print: past about 20 lines, `short` shows
    /// counts by resource type and host set and the first lines; `all` lists every one (the
    /// JSON report and the Markdown summary always keep everything).
    #[arg(long, value_enum, value_name = "HOW", default_value_t = ChangesView::Short)]
    pub changes: ChangesView,

    /// The table's rows: with more than 50 hosts, `auto` folds hosts that share status,
    /// revision change, config version and reason into one row per host set (a failed,
    /// unreachable or cancelled host keeps its own row); `full` shows one row per host.
    #[arg(long = "table", value_enum, value_name = "ROWS", default_value_t = TableRows::Auto)]
    pub table: TableRows,

    /// Also write a JUnit XML report (one testcase per host) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Also write a Markdown summary (for a pull-request comment) to FILE. A run and a merge
    /// also append it to GITHUB_STEP_SUMMARY when that is set.
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,

    /// Also write the report as one self-contained HTML page (counts, status grid, timeline,
    /// changes, problems; as `capo report html`) to FILE, atomically.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// Options every command that runs on hosts shares.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// At most this many hosts at a time.
    #[arg(short = 'j', long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Directory under which each run keeps every host's full output (<DIR>/<run id>/<host>/).
    #[arg(long, value_name = "DIR", default_value = ".capo/runs")]
    pub runs_dir: PathBuf,

    /// After a first Ctrl-C (or SIGTERM), how long hosts in flight may take to finish before
    /// they are stopped; a second Ctrl-C stops them at once.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub grace: Duration,

    /// Collect file content diffs from Puppet (show_diff) and print each distinct one once.
    #[arg(long)]
    pub show_diff: bool,

    /// Run the first N hosts alone first; if any of them fails, start no other host.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub canary: usize,

    /// Run hosts in batches, one after another: a count, a percentage, or a list like
    /// `1,10%,100%` whose last size repeats.
    #[arg(long, value_name = "SIZES", value_parser = parse_batches)]
    pub batch: Option<Batches>,

    /// Once more than N (or P% of the) hosts have failed, start no new host.
    #[arg(long, value_name = "N|P%", value_parser = parse_budget)]
    pub max_failures: Option<capo_engine::strategy::Budget>,

    /// Wait this long between batches.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub pause: Duration,

    /// Ask before each batch after the first (needs a terminal).
    #[arg(long)]
    pub confirm: bool,

    /// Ask once for the sudo password of hosts with become = "sudo" (on the terminal, without
    /// echo) and answer sudo's prompt with it; without it, sudo runs as `sudo -n` and a host
    /// whose sudo wants a password fails.
    #[arg(short = 'K', long)]
    pub ask_become_pass: bool,

    /// Host order: as in the inventory, or shuffled (seeded by --seed, else by the run id).
    #[arg(long, value_enum, default_value_t = Order::Inventory)]
    pub order: Order,

    /// With --order shuffle: the seed, so that a run (or each shard of one) can be repeated
    /// in the same order.
    #[arg(long, value_name = "TEXT")]
    pub seed: Option<String>,

    /// Take only part K of N of the selected hosts (by a stable hash of each host's name),
    /// so that N jobs together run every host once; `auto/N` takes K from
    /// JOB_COMPLETION_INDEX (a Kubernetes Indexed Job). Merge the parts' reports with `capo
    /// report merge`.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<capo_inventory::shard::ShardSpec>,

    /// Write the event stream as JSON Lines to FILE as it happens.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,

    /// Print no progress, only the final report.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Also stream every host's output as it comes, each line prefixed with the host name.
    #[arg(short, long)]
    pub verbose: bool,

    /// Select the hosts that ended with these statuses in the latest run of the same command
    /// and inventory (`capo runs list`), or in --rerun-from's run, e.g. `failed,unreachable`;
    /// combines with --limit.
    #[arg(long, value_name = "STATUSES", value_delimiter = ',', value_parser = host_status())]
    pub rerun: Vec<HostStatus>,

    /// With --rerun: take the hosts from this run, whatever its command (an id, the start of
    /// exactly one id, or `latest`).
    #[arg(long, value_name = "ID", requires = "rerun")]
    pub rerun_from: Option<String>,

    /// After the run, keep this many of the newest runs in --runs-dir and remove older ones
    /// (0 keeps all).
    #[arg(long, value_name = "N", env = "CAPO_KEEP_RUNS", default_value_t = crate::history::DEFAULT_KEEP)]
    pub keep_runs: usize,
}

/// A host status as reports spell it; `--help` and errors list every one.
fn host_status() -> impl TypedValueParser<Value = HostStatus> {
    PossibleValuesParser::new(HostStatus::ALL.iter().map(|s| s.as_str()))
        .try_map(|s| s.parse::<HostStatus>())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChangesView {
    /// Counts and the first lines when the list is long.
    Short,
    /// Every line.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableRows {
    /// One row per host set when there are many hosts.
    Auto,
    /// One row per host.
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Order {
    /// Inventory order.
    Inventory,
    /// A random order, different each run unless --seed is given.
    Shuffle,
}

/// `--batch` sizes (a newtype so clap takes the list as one value).
#[derive(Debug, Clone)]
pub struct Batches(pub Vec<capo_engine::strategy::Size>);

fn parse_batches(s: &str) -> Result<Batches, String> {
    capo_engine::strategy::parse_sizes(s).map(Batches)
}

fn parse_budget(s: &str) -> Result<capo_engine::strategy::Budget, String> {
    capo_engine::strategy::Budget::parse(s)
}

/// A revision reaches git's command line on every host: it must not look like an option.
fn parse_rev(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".into())
    } else if s.starts_with('-') {
        Err("must not start with `-`".into())
    } else if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Err("must not contain whitespace or control characters".into())
    } else {
        Ok(s.to_string())
    }
}

/// A repository URL as git clone takes it: one word that git must not read as an option.
fn parse_url(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".into())
    } else if s.starts_with('-') {
        Err("must not start with `-`".into())
    } else if s.chars().any(char::is_control) {
        Err("must not contain control characters".into())
    } else {
        Ok(s.to_string())
    }
}

fn parse_shard(s: &str) -> Result<capo_inventory::shard::ShardSpec, String> {
    s.parse()
        .map_err(|e: capo_inventory::shard::ShardError| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    capo_inventory::duration::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct HostsArgs {
    #[command(flatten)]
    pub selection: Selection,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// JSON for machines.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> RunArgs {
        let cli = Cli::try_parse_from(["capo", "rollout"].iter().chain(args)).expect("parses");
        match cli.command {
            Command::Rollout(r) => r.run,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_table_is_short_by_default_and_full_when_asked() {
        let default = run_args(&[]);
        assert_eq!(
            (default.output.changes, default.output.table),
            (ChangesView::Short, TableRows::Auto)
        );
        let full = run_args(&["--changes", "all", "--table", "full"]);
        assert_eq!(
            (full.output.changes, full.output.table),
            (ChangesView::All, TableRows::Full)
        );
        assert!(Cli::try_parse_from(["capo", "plan", "--changes", "some"]).is_err());
    }
}
