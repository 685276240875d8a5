//! A simulated fleet (capo-simfleet's library) served by the test process itself, for tests
//! of the real `capo` binary that need many hosts but no root.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};

use capo_simfleet::{Fleet, Options};

/// Each fleet gets its own /24 in 127.0.0.0/8 (127.43.N.x), clear of the real fleets
/// (127.0.0.1) and of capo-simfleet's own tests (127.42.x.y), so tests can run in parallel.
static NEXT_NET: AtomicU8 = AtomicU8::new(0);

/// A simulated fleet, served by its own runtime for as long as this lives.
pub struct SimFleet {
    fleet: Fleet,
    dir: tempfile::TempDir,
    // Dropped last: its worker threads serve the hosts.
    _runtime: tokio::runtime::Runtime,
}

impl SimFleet {
    /// `hosts` simulated hosts with capo-simfleet's defaults, changed by `tweak` (e.g.
    /// `fail_every`, `config_version`).
    pub fn start(hosts: u32, tweak: impl FnOnce(&mut Options)) -> SimFleet {
        let base = Ipv4Addr::new(127, 43, NEXT_NET.fetch_add(1, Ordering::Relaxed), 1);
        // Any port free on the first address serves: the fleet binds it on every address.
        let port = TcpListener::bind((base, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let mut options = Options::new(hosts, base, port, dir.path().join("fleet"));
        tweak(&mut options);
        let fleet = runtime
            .block_on(capo_simfleet::start(options))
            .expect("the simulated fleet starts");
        SimFleet {
            fleet,
            dir,
            _runtime: runtime,
        }
    }

    /// The test's own directory (the fleet's files are in `fleet/` under it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The fleet's files: keys, known_hosts, the inventory.
    pub fn fleet_dir(&self) -> PathBuf {
        self.dir.path().join("fleet")
    }

    /// The inventory the fleet wrote.
    pub fn inventory(&self) -> &Path {
        &self.fleet.files.inventory
    }

    /// `capo ARGS...` run in the test's directory with its runs kept there, no inventory
    /// from the environment, no GitHub step summary and stdin closed; `-i` is the caller's.
    pub fn capo(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_capo"));
        cmd.args(args)
            .arg("--runs-dir")
            .arg(self.dir.path().join("runs"))
            .env("NO_COLOR", "1")
            .env_remove("CAPO_INVENTORY")
            .env_remove("SSH_AUTH_SOCK")
            // Under GitHub Actions capo would append its summary to the job's.
            .env_remove("GITHUB_STEP_SUMMARY")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }
}
