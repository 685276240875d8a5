//! capo-simfleet as a library: a whole fleet of simulated SSH hosts in one process, started
//! by the `capo-simfleet` binary (benchmarks) or inside a test that runs the real `capo`
//! binary against it (no root, no real hosts).
//!
//! Host i listens on the i-th loopback address from [`Options::base`] (127.1.0.1, 127.1.0.2,
//! ..., 127.1.0.254, 127.1.1.1, ...), all on [`Options::port`]. Before listening it writes
//! into [`Options::dir`]: a client key (`client_ed25519`), the host key all hosts share
//! (`host_ed25519`), `known_hosts` (one line per host) and `inventory.toml` (hosts
//! `sim00001`, ...). Hosts answer capo's host-side scripts with canned but realistic output
//! (see `script.rs`), after the configured delays.

mod puppet;
mod script;
mod server;
mod setup;
mod shell;
mod sim;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::MethodKind;

pub use crate::puppet::Outcome;
pub use crate::setup::{raise_nofile, Error, Files};
pub use crate::sim::{Delays, Stats};

use crate::server::Shared;
use crate::sim::Sim;

/// The commit every checkout starts at, unless told otherwise.
pub const REV_BEFORE: &str = "3f2a1c9e5d7b8a6c4f1e2d3c4b5a69788796a5b4";

/// The commit the remote branch is at, unless told otherwise.
pub const REV_AFTER: &str = "77b0e41a0c5f3e2d1c0b9a8f7e6d5c4b3a291807";

/// What the fleet looks like and how its hosts behave.
#[derive(Debug, Clone)]
pub struct Options {
    /// How many hosts.
    pub hosts: u32,
    /// Address of the first host; the others follow it (last octet 1..=254), in 127.0.0.0/8.
    pub base: Ipv4Addr,
    /// The SSH port every host listens on.
    pub port: u16,
    /// Where to write the keys, known_hosts and inventory.toml (created if missing).
    pub dir: PathBuf,
    /// How long each step takes.
    pub delays: Delays,
    /// How Puppet runs end.
    pub puppet: Outcome,
    /// Every Nth host fails its Puppet run instead (0: none).
    pub fail_every: u32,
    /// The commit every checkout starts at (40 hex digits).
    pub rev_before: String,
    /// The commit the remote branch is at (40 hex digits).
    pub rev_after: String,
    /// What Puppet records as its config version, as a control repo that sets its own
    /// `config_version` in environment.conf; None: the commit applied, as capo asks.
    pub config_version: Option<String>,
    /// `user` in the inventory.
    pub user: String,
    /// `connect_timeout` in the inventory.
    pub connect_timeout: String,
    /// `command_timeout` in the inventory.
    pub command_timeout: String,
}

impl Options {
    /// `hosts` hosts from `base` on `port`, files in `dir`; every Puppet run changes something
    /// after no delay, and the inventory logs in as root with capo's usual timeouts.
    pub fn new(hosts: u32, base: Ipv4Addr, port: u16, dir: PathBuf) -> Options {
        Options {
            hosts,
            base,
            port,
            dir,
            delays: Delays {
                sync: Duration::ZERO,
                apply: Duration::ZERO,
                exec: Duration::ZERO,
            },
            puppet: Outcome::Changed,
            fail_every: 0,
            rev_before: REV_BEFORE.into(),
            rev_after: REV_AFTER.into(),
            config_version: None,
            user: "root".into(),
            connect_timeout: "30s".into(),
            command_timeout: "5m".into(),
        }
    }
}

/// A fleet whose hosts are listening; they stop with the tokio runtime that started them.
pub struct Fleet {
    shared: Arc<Shared>,
    /// The inventory and known_hosts written.
    pub files: Files,
    /// Every host's address, in inventory order.
    pub addrs: Vec<Ipv4Addr>,
}

impl Fleet {
    /// Counters of what the hosts did so far.
    pub fn stats(&self) -> &Stats {
        &self.shared.sim.stats
    }
}

/// Writes the fleet's files, binds every host's listener and starts serving them on the
/// current tokio runtime. Fails when the options do not make a fleet (same commits, too many
/// hosts after `base`), a file cannot be written or an address cannot be bound.
pub async fn start(options: Options) -> Result<Fleet, Error> {
    if options.rev_before == options.rev_after {
        return Err("--rev-before and --rev-after must differ".into());
    }
    let addrs = (0..options.hosts)
        .map(|i| setup::host_addr(options.base, i))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            format!(
                "{} hosts do not fit after {} (must be in 127.0.0.0/8, last octet 1-254)",
                options.hosts, options.base
            )
        })?;

    let dir = &options.dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let client = setup::key(&dir.join("client_ed25519"), "capo-simfleet client")?;
    let host_key = setup::key(&dir.join("host_ed25519"), "capo-simfleet host")?;
    let name_width = options.hosts.to_string().len().max(5);
    let sim = Sim::new(
        options.delays,
        options.rev_before.clone(),
        options.rev_after.clone(),
        options.puppet,
        options.fail_every,
        name_width,
        options.config_version.as_deref(),
    );
    let files = setup::write_fleet(
        dir,
        &addrs,
        options.port,
        &setup::public_line(&host_key)?,
        |i| sim.name(i),
        &setup::InventoryDefaults {
            user: &options.user,
            connect_timeout: &options.connect_timeout,
            command_timeout: &options.command_timeout,
        },
    )?;
    let shared = Arc::new(Shared {
        sim,
        client_key: client.public_key().clone(),
    });

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

    // Every address is bound before any host serves, so a fleet that cannot listen everywhere
    // fails as a whole.
    let mut listeners = Vec::with_capacity(addrs.len());
    for addr in &addrs {
        let at = SocketAddr::from((*addr, options.port));
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
    Ok(Fleet {
        shared,
        files,
        addrs,
    })
}
