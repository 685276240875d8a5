//! The inventory as the rest of capo sees it: hosts with fully resolved
//! settings, in rollout order.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::error::{ErrorKind, InventoryError};
use crate::select::SelectError;

/// A parsed, validated inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The inventory file, as the caller named it.
    pub path: PathBuf,
    /// Every host, in inventory order: the order in which each host name
    /// first appears in the file. Rollouts go in this order.
    pub hosts: Vec<Host>,
    /// Every group, in the order the groups appear in the file.
    pub groups: Vec<Group>,
}

/// A named set of hosts from a `[groups.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The group's name (the `NAME` in `[groups.NAME]`).
    pub name: String,
    /// Member host names: ranges expanded, duplicates dropped, in the order
    /// written.
    pub hosts: Vec<String>,
}

/// One host with everything needed to reach it and run Puppet on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The host's inventory name.
    pub name: String,
    /// Where to connect: `address` from its `[hosts.NAME]` table, else `ssh_config`'s
    /// `HostName` for the name, else the name itself.
    pub address: String,
    /// The groups it belongs to, in file order.
    pub groups: Vec<String>,
    /// Its settings after applying host > group > defaults > built-in
    /// precedence.
    pub settings: Settings,
}

/// Per-host connection and Puppet settings. See `inventory.example.toml` at
/// the repository root for the meaning and built-in default of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// SSH user name.
    pub user: String,
    /// SSH port.
    pub port: u16,
    /// Private keys to try, in order; already resolved to local paths.
    pub identity_files: Vec<PathBuf>,
    /// Which ssh-agent to ask for identities, tried before `identity_files`.
    pub identity_agent: IdentityAgent,
    /// Offer only identities whose public key matches an `identity_files` entry, agent
    /// identities included (OpenSSH's `IdentitiesOnly`).
    pub identities_only: bool,
    /// The `known_hosts` file used to check host keys; a local path.
    pub known_hosts: PathBuf,
    /// How to treat unknown or changed host keys.
    pub host_key_check: HostKeyCheck,
    /// Limit on establishing the SSH connection.
    pub connect_timeout: Duration,
    /// Limit on each remote step (fetch, checkout, puppet apply, ...).
    pub command_timeout: Duration,
    /// Send an SSH keepalive after this much silence from the host.
    pub keepalive_interval: Duration,
    /// Unanswered keepalives before the host is considered gone, so a
    /// silent host is detected after about
    /// `keepalive_interval * (keepalive_count + 1)`.
    pub keepalive_count: u32,
    /// Extra connection attempts, with backoff, after a connect failure
    /// (refused, timed out, dropped during the handshake). Never used for
    /// host key or authentication failures, and never for a step that may
    /// have run.
    pub connect_retries: u32,
    /// The host's git checkout of the Puppet code (a remote path).
    pub repo_dir: String,
    /// The control repo's URL, as the host clones it (`capo bootstrap` without `--repo`);
    /// `None`: not set.
    pub repo_url: Option<String>,
    /// Take the host's lock (`capo.lock` in the checkout's git directory) for a rollout; a
    /// host where it cannot be taken fails. `false` runs unlocked, and the report says so.
    pub lock: bool,
    /// capo's own directory on the host (a remote path): the maintenance switch of `capo
    /// disable`, and the run record (`last_run.json` and `runs/`) that rollouts and pull
    /// runs write there.
    pub state_dir: String,
    /// The git remote to fetch from.
    pub remote: String,
    /// The branch to deploy.
    pub branch: String,
    /// The name of the Puppet environment the checkout (or, for a plan, the temporary copy
    /// of the target revision) is run as: Puppet gets `--environmentpath` of a per-run
    /// directory holding only this name, a link to the checkout.
    pub environment: String,
    /// The manifest to apply, relative to `repo_dir` (a remote path). `None`: the
    /// environment's (`environment.conf`'s `manifest`) when the repo has an
    /// `environment.conf`, else `manifests/site.pp`.
    pub manifest: Option<String>,
    /// Module directories, relative to `repo_dir` (remote paths). `None`: the environment's
    /// (`environment.conf`'s `modulepath`) when the repo has an `environment.conf`, else
    /// `modules`. Set, it wins over `environment.conf`.
    pub modulepath: Option<Vec<String>>,
    /// The Puppet executable on the host.
    pub puppet: String,
    /// Extra arguments for Puppet, each a separate word.
    pub puppet_args: Vec<String>,
    /// Puppet's `--certname`; `None` leaves Puppet's own default.
    pub certname: Option<String>,
    /// What installs the modules a checkout's `Puppetfile` lists (nothing happens for a
    /// checkout without one).
    pub puppetfile: Puppetfile,
    /// How every command capo sends runs on the host: as the login user, or through sudo
    /// (the `become` key).
    pub become_method: Become,
    /// Who commands run as through sudo (`become_user`, default `root`); a plain user name.
    pub become_user: String,
    /// The jump hosts (bastions) to go through, first hop first (`jump`); empty: connect
    /// directly.
    pub jump: Vec<JumpHost>,
}

/// One hop of a `jump` chain: `[user@]host[:port]`, as OpenSSH's `ProxyJump` writes it.
///
/// User and port stay `None` when not written, so that whoever connects can fill them
/// (capo uses the target's `user` and port 22; an ssh_config reader may take them from the
/// jump host's own `Host` block first).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JumpHost {
    /// The user to log in to the jump host as, if written.
    pub user: Option<String>,
    /// The jump host's name or address (an IPv6 address without its brackets).
    pub host: String,
    /// Its SSH port, if written.
    pub port: Option<u16>,
}

impl fmt::Display for JumpHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match (self.port, self.host.contains(':')) {
            (Some(port), true) => write!(f, "[{}]:{port}", self.host),
            (Some(port), false) => write!(f, "{}:{port}", self.host),
            (None, _) => f.write_str(&self.host),
        }
    }
}

/// Why a `jump` entry is not `[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseJumpHostError {
    /// Nothing where the host name goes.
    #[error("the host name is missing (write [user@]host[:port])")]
    NoHost,
    /// `@` with nothing before it.
    #[error("the user before `@` is empty")]
    EmptyUser,
    /// Whitespace, control characters, or a leading `-` (which ssh tools read as an option).
    #[error("must not contain whitespace or control characters, nor start with `-`")]
    BadChars,
    /// The port is not a number from 1 to 65535.
    #[error("the port must be a number from 1 to 65535")]
    BadPort,
    /// An unbracketed address with several colons.
    #[error("write an IPv6 address in brackets: [ADDRESS]:PORT")]
    Ipv6NeedsBrackets,
}

impl FromStr for JumpHost {
    type Err = ParseJumpHostError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with('-') || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ParseJumpHostError::BadChars);
        }
        // As OpenSSH: the last `@` ends the user (user names may contain `@`).
        let (user, rest) = match s.rsplit_once('@') {
            Some(("", _)) => return Err(ParseJumpHostError::EmptyUser),
            Some((user, rest)) => (Some(user.to_owned()), rest),
            None => (None, s),
        };
        let port = |p: &str| -> Result<u16, ParseJumpHostError> {
            match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                _ => Err(ParseJumpHostError::BadPort),
            }
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (addr, after) = inner
                .split_once(']')
                .ok_or(ParseJumpHostError::Ipv6NeedsBrackets)?;
            match after {
                "" => (addr, None),
                _ => match after.strip_prefix(':') {
                    Some(p) => (addr, Some(port(p)?)),
                    None => return Err(ParseJumpHostError::BadPort),
                },
            }
        } else {
            match rest.matches(':').count() {
                0 => (rest, None),
                1 => {
                    let (h, p) = rest.split_once(':').unwrap_or((rest, ""));
                    (h, Some(port(p)?))
                }
                _ => return Err(ParseJumpHostError::Ipv6NeedsBrackets),
            }
        };
        if host.is_empty() {
            return Err(ParseJumpHostError::NoHost);
        }
        if host.starts_with('-') {
            return Err(ParseJumpHostError::BadChars);
        }
        Ok(JumpHost {
            user,
            host: host.to_owned(),
            port,
        })
    }
}

crate::choice! {
    /// How capo's commands run on a host: the `become` setting.
    pub enum Become / ParseBecomeError {
        /// Through `sudo -u become_user`.
        Sudo = "sudo",
        /// As the login user (the default).
        #[default]
        None = "none",
    }
}

/// Where a host's ssh-agent is (`identity_agent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityAgent {
    /// The socket `SSH_AUTH_SOCK` names when capo runs, if it is set (the default).
    Env,
    /// No agent (`identity_agent = "none"`).
    None,
    /// This socket; a local path.
    Path(PathBuf),
}

impl IdentityAgent {
    /// The socket to use: `sock_env` is the value of `SSH_AUTH_SOCK`, read once by the
    /// caller. An empty variable means no agent, as for OpenSSH.
    pub fn socket(&self, sock_env: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
        match self {
            IdentityAgent::Env => sock_env.filter(|s| !s.is_empty()).map(PathBuf::from),
            IdentityAgent::None => None,
            IdentityAgent::Path(p) => Some(p.clone()),
        }
    }
}

crate::choice! {
    /// What to do with a host key that is not already trusted: the `host_key_check` setting.
    pub enum HostKeyCheck / ParseHostKeyCheckError {
        /// Refuse unknown and changed keys (the default).
        #[default]
        Strict = "strict",
        /// Trust and record unknown keys; refuse changed ones.
        AcceptNew = "accept-new",
        /// Accept any key. Only for throwaway test machines.
        Off = "off",
    }
}

crate::choice! {
    /// What installs the modules of a checkout's `Puppetfile`: the `puppetfile` setting (its
    /// spelling is also what the host scripts are given).
    pub enum Puppetfile / ParsePuppetfileError {
        /// `r10k puppetfile install` (the default).
        #[default]
        R10k = "r10k",
        /// `g10k -puppetfile`.
        G10k = "g10k",
        /// Leave the Puppetfile alone: the modules are put there some other way.
        Ignore = "ignore",
    }
}

impl Inventory {
    /// Reads and parses the inventory at `path`. Errors name `path` as given.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InventoryError::new(path, None, ErrorKind::Io(e)))?;
        Self::parse(&text, path)
    }

    /// Parses inventory text. `path` is used for error messages and to
    /// resolve relative local paths (against its directory); the file is not
    /// read. `~` expands to `$HOME`.
    pub fn parse(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        crate::parse::parse(text, path, home.as_deref())
    }

    /// Hosts matching a `--limit` expression, in inventory order. `None`
    /// selects all hosts.
    ///
    /// The expression is a comma-separated list of terms. A term is a host
    /// name, a group name, a range pattern such as `web[01-05]`, or a glob
    /// with `*` and `?` matched against host names. A leading `!` excludes.
    /// The result is the union of the positive terms (all hosts if there are
    /// none) minus the union of the negative ones. A term that matches
    /// nothing, an empty term, and an empty result are errors: a typo in a
    /// limit must not silently widen or empty a rollout.
    pub fn select(&self, limit: Option<&str>) -> Result<Vec<&Host>, SelectError> {
        crate::select::select(self, limit)
    }

    /// The host called `name`, if any.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The group called `name`, if any.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_key_check_spellings_round_trip() {
        for v in [
            HostKeyCheck::Strict,
            HostKeyCheck::AcceptNew,
            HostKeyCheck::Off,
        ] {
            assert_eq!(v.as_str().parse::<HostKeyCheck>(), Ok(v));
            assert_eq!(v.to_string(), v.as_str());
        }
        assert_eq!("yes".parse::<HostKeyCheck>(), Err(ParseHostKeyCheckError));
    }

    #[test]
    fn load_names_the_path_on_io_error() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let path = dir.path().join("missing.toml");
        let err = match Inventory::load(&path) {
            Err(e) => e,
            Ok(_) => panic!("loaded a missing file"),
        };
        assert!(matches!(err.kind(), ErrorKind::Io(_)));
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("{}: cannot read inventory: ", path.display())),
            "{shown}"
        );
    }

    #[test]
    fn load_reads_the_file() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let path = dir.path().join("inventory.toml");
        if let Err(e) = std::fs::write(
            &path,
            "[hosts.a]\n[defaults]\nknown_hosts = \"kh\"\nidentity_files = []\n",
        ) {
            panic!("write: {e}");
        }
        let inv = match Inventory::load(&path) {
            Ok(inv) => inv,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(inv.path, path);
        assert_eq!(inv.hosts.len(), 1);
        assert_eq!(inv.hosts[0].settings.known_hosts, dir.path().join("kh"));
    }
}
