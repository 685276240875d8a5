//! capo-simfleet: a whole fleet of simulated SSH hosts in one process, for measuring what
//! capo itself costs at scale (benchmarks only; not part of the `capo` binary).
//!
//! Host i listens on the i-th loopback address from `--base` (127.1.0.1, 127.1.0.2, ...,
//! 127.1.0.254, 127.1.1.1, ...), all on `--port`. Before listening it writes into `--dir`: a
//! client key (`client_ed25519`), the host key all hosts share (`host_ed25519`),
//! `known_hosts` (one line per host) and `inventory.toml` (hosts `sim00001`, ...). It prints
//! `ready` on stdout once every listener is bound. Hosts answer capo's host-side scripts with
//! canned but realistic output (see `script.rs`), after the configured delays.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;

use capo_simfleet::{Delays, Error, Options, Outcome};

/// A fleet of simulated SSH hosts in one process, answering capo's scripts.
#[derive(Debug, Parser)]
#[command(name = "capo-simfleet", version)]
struct Args {
    /// How many hosts.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    hosts: u32,

    /// Address of the first host; the others follow it (last octet 1..=254). Must be in
    /// 127.0.0.0/8, which Linux routes to loopback without any setup.
    #[arg(long, default_value = "127.1.0.1")]
    base: Ipv4Addr,

    /// The SSH port every host listens on.
    #[arg(long, default_value_t = 2222)]
    port: u16,

    /// Where to write the keys, known_hosts and inventory.toml (created if missing).
    #[arg(long)]
    dir: PathBuf,

    /// How long `git pull` takes.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    sync_delay: Duration,

    /// How long `puppet apply` takes (a plan takes sync + apply).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    apply_delay: Duration,

    /// How long every ad-hoc command (`capo exec`) takes, on top of its own `sleep`s.
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    exec_delay: Duration,

    /// How Puppet runs end: changed (exit 2, the checkout moves forward), unchanged (exit 0,
    /// already up to date) or failed (exit 6).
    #[arg(long, value_enum, default_value_t = Outcome::Changed)]
    puppet: Outcome,

    /// What Puppet records as its config version, as for a control repo whose
    /// environment.conf sets `config_version` (default: the commit applied, as capo asks).
    #[arg(long, value_name = "TEXT")]
    config_version: Option<String>,

    /// Every Nth host fails its Puppet run instead (0: none).
    #[arg(long, default_value_t = 0)]
    fail_every: u32,

    /// The commit every checkout starts at (40 hex digits).
    #[arg(long, default_value = capo_simfleet::REV_BEFORE, value_parser = parse_sha)]
    rev_before: String,

    /// The commit the remote branch is at (40 hex digits).
    #[arg(long, default_value = capo_simfleet::REV_AFTER, value_parser = parse_sha)]
    rev_after: String,

    /// Connections expected at once (capo's -j), for the file descriptor budget.
    #[arg(long, default_value_t = 1024)]
    connections: u64,

    /// Worker threads of the runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,

    /// `user` in the inventory.
    #[arg(long, default_value = "root")]
    user: String,

    /// `connect_timeout` in the inventory.
    #[arg(long, default_value = "30s")]
    connect_timeout: String,

    /// `command_timeout` in the inventory.
    #[arg(long, default_value = "5m")]
    command_timeout: String,
}

/// `250ms`, `1s`, `1.5s`, `2m`, `0`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 50ms, 1.5s, 2m)"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "" if value == 0.0 => 0.0,
        _ => return Err(format!("`{s}`: unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

fn parse_sha(s: &str) -> Result<String, String> {
    if s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err("a commit id is 40 hex digits".into())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("capo-simfleet: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Error> {
    // Listeners, connections, and a margin for the runtime, stdio and key files.
    let need = u64::from(args.hosts) + args.connections + 64;
    capo_simfleet::raise_nofile(need)?;

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let options = Options {
        delays: Delays {
            sync: args.sync_delay,
            apply: args.apply_delay,
            exec: args.exec_delay,
        },
        puppet: args.puppet,
        fail_every: args.fail_every,
        rev_before: args.rev_before,
        rev_after: args.rev_after,
        config_version: args.config_version,
        user: args.user,
        connect_timeout: args.connect_timeout,
        command_timeout: args.command_timeout,
        ..Options::new(args.hosts, args.base, args.port, args.dir)
    };
    runtime.block_on(listen(options))
}

/// Starts the fleet, says `ready`, and serves until a signal ends the process.
async fn listen(options: Options) -> Result<(), Error> {
    let (base, port) = (options.base, options.port);
    let fleet = capo_simfleet::start(options).await?;
    let last = fleet.addrs.last().copied().unwrap_or(base);
    eprintln!(
        "capo-simfleet: {} hosts on {base}..{last} port {port}; inventory {}, known_hosts {}",
        fleet.addrs.len(),
        fleet.files.inventory.display(),
        fleet.files.known_hosts.display()
    );
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready").and_then(|()| out.flush())?;
    }

    wait_for_signal().await?;
    let s = fleet.stats();
    eprintln!(
            "capo-simfleet: stopping: {} connections, {} commands, {} session errors, {} lock refusals, {} accept errors",
            s.connections.load(Ordering::Relaxed),
            s.execs.load(Ordering::Relaxed),
            s.session_errors.load(Ordering::Relaxed),
            s.locked.load(Ordering::Relaxed),
            s.accept_errors.load(Ordering::Relaxed),
        );
    // Connections still open are simply dropped with the process.
    std::process::exit(0)
}

async fn wait_for_signal() -> Result<(), Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = hup.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
