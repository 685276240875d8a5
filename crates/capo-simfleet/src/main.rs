//! capo-simfleet: a whole fleet of simulated SSH hosts in one process, for measuring what
//! capo itself costs at scale (benchmarks only; not part of the `capo` binary).
//!
//! Host i listens on the i-th loopback address from `--base` (127.1.0.1, 127.1.0.2, ...,
//! 127.1.0.254, 127.1.1.1, ...), all on `--port`. Before listening it writes into `--dir`: a
//! client key (`client_ed25519`), the host key all hosts share (`host_ed25519`),
//! `known_hosts` (one line per host) and `inventory.toml` (hosts `sim00001`, ...). It prints
//! `ready` on stdout once every listener is bound. Hosts answer capo's host-side scripts with
//! canned but realistic output (see `script.rs`), after the configured delays.

mod puppet;
mod script;
mod server;
mod setup;
mod shell;
mod sim;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use russh::keys::PrivateKey;
use russh::MethodKind;

use crate::puppet::Outcome;
use crate::server::Shared;
use crate::setup::Error;
use crate::sim::{Delays, Sim};

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

    /// Every Nth host fails its Puppet run instead (0: none).
    #[arg(long, default_value_t = 0)]
    fail_every: u32,

    /// The commit every checkout starts at (40 hex digits).
    #[arg(long, default_value = "3f2a1c9e5d7b8a6c4f1e2d3c4b5a69788796a5b4", value_parser = parse_sha)]
    rev_before: String,

    /// The commit the remote branch is at (40 hex digits).
    #[arg(long, default_value = "77b0e41a0c5f3e2d1c0b9a8f7e6d5c4b3a291807", value_parser = parse_sha)]
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
    if args.rev_before == args.rev_after {
        return Err("--rev-before and --rev-after must differ".into());
    }
    // Listeners, connections, and a margin for the runtime, stdio and key files.
    let need = u64::from(args.hosts) + args.connections + 64;
    setup::raise_nofile(need)?;

    let addrs = (0..args.hosts)
        .map(|i| setup::host_addr(args.base, i))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            format!(
                "{} hosts do not fit after {} (must be in 127.0.0.0/8, last octet 1-254)",
                args.hosts, args.base
            )
        })?;

    std::fs::create_dir_all(&args.dir).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    let client = setup::key(&args.dir.join("client_ed25519"), "capo-simfleet client")?;
    let host_key = setup::key(&args.dir.join("host_ed25519"), "capo-simfleet host")?;
    let name_width = args.hosts.to_string().len().max(5);
    let sim = Sim::new(
        Delays {
            sync: args.sync_delay,
            apply: args.apply_delay,
            exec: args.exec_delay,
        },
        args.rev_before.clone(),
        args.rev_after.clone(),
        args.puppet,
        args.fail_every,
        name_width,
    );
    let files = setup::write_fleet(
        &args.dir,
        &addrs,
        args.port,
        &setup::public_line(&host_key)?,
        |i| sim.name(i),
        &setup::InventoryDefaults {
            user: &args.user,
            connect_timeout: &args.connect_timeout,
            command_timeout: &args.command_timeout,
        },
    )?;

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let shared = Arc::new(Shared {
        sim,
        client_key: client.public_key().clone(),
    });
    runtime.block_on(listen(args, addrs, host_key, shared, files))
}

async fn listen(
    args: Args,
    addrs: Vec<Ipv4Addr>,
    host_key: PrivateKey,
    shared: Arc<Shared>,
    files: setup::Files,
) -> Result<(), Error> {
    let config = Arc::new(russh::server::Config {
        methods: (&[MethodKind::PublicKey][..]).into(),
        // A benchmark's own key is never refused, and nothing here is worth guessing at.
        auth_rejection_time: Duration::ZERO,
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        // capo sends keepalives; this only reaps connections a dead client left behind.
        inactivity_timeout: Some(Duration::from_secs(3600)),
        nodelay: true,
        ..Default::default()
    });

    let mut listeners = Vec::with_capacity(addrs.len());
    for addr in &addrs {
        let at = SocketAddr::from((*addr, args.port));
        let listener = tokio::net::TcpListener::bind(at)
            .await
            .map_err(|e| format!("listening on {at}: {e}"))?;
        listeners.push(listener);
    }
    for (i, listener) in listeners.into_iter().enumerate() {
        let host = u32::try_from(i + 1).map_err(|_| "too many hosts")?;
        tokio::spawn(server::serve(
            listener,
            host,
            Arc::clone(&shared),
            Arc::clone(&config),
        ));
    }

    let last = addrs.last().copied().unwrap_or(args.base);
    eprintln!(
        "capo-simfleet: {} hosts on {}..{} port {}; inventory {}, known_hosts {}",
        addrs.len(),
        args.base,
        last,
        args.port,
        files.inventory.display(),
        files.known_hosts.display()
    );
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready").and_then(|()| out.flush())?;
    }

    wait_for_signal().await?;
    let s = &shared.sim.stats;
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
