//! Passphrases for encrypted key files: asked on the terminal once per key file for the whole
//! run, one at a time, before any host is contacted and before the live display starts (so
//! nothing redraws over the prompt), and only for keys a host may need: not for one the
//! host's ssh-agent holds. Without a terminal nothing is asked; hosts with nothing else to
//! offer say to load the key into ssh-agent.
//!
//! The passphrase is read from the terminal with echo off and lives only in a buffer that is
//! zeroed when dropped; it never reaches argv, the environment, a log, the report or the
//! events file. The decrypted key stays in this process's memory.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use capo_inventory::Host;
use capo_ssh::{FileCache, GiveUp};
use zeroize::Zeroizing;

use crate::error::Error;

/// Wrong passphrases accepted per key file before it is given up on (OpenSSH's count).
const TRIES: u32 = 3;

/// What the SSH connections of a run over `hosts` share, with every encrypted key file they
/// need unlocked when there is a terminal to ask on. An interrupt (Ctrl-C) at the prompt
/// ends the command.
pub fn unlock(hosts: &[Host], runtime: &tokio::runtime::Runtime) -> Result<Arc<FileCache>, Error> {
    let cache = Arc::new(FileCache::default());
    let agent_env = std::env::var_os("SSH_AUTH_SOCK");
    let configs: Vec<_> = hosts
        .iter()
        .map(|h| capo_engine::connect_config(h, agent_env.as_deref()))
        .collect();
    let locked = runtime.block_on(cache.locked_keys(&configs));
    // stdin and stderr, as for --confirm: the prompt goes to stderr and the answer comes
    // from stdin; with either redirected nobody may be there to answer.
    if locked.is_empty() || !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Ok(cache);
    }
    for path in locked {
        ask(&cache, &path)?;
    }
    Ok(cache)
}

/// Asks for `path`'s passphrase until it is right, up to [`TRIES`] times.
fn ask(cache: &FileCache, path: &Path) -> Result<(), Error> {
    let shown = capo_report::sanitize::line(&path.display().to_string());
    let mut prompt = format!("capo: passphrase for key file {shown}: ");
    for _ in 0..TRIES {
        let passphrase = read_hidden(&prompt)?;
        if passphrase.is_empty() {
            cache.give_up(path, GiveUp::NoPassphrase);
            return Ok(());
        }
        if cache.unlock(path, &passphrase) {
            return Ok(());
        }
        prompt = format!("capo: wrong passphrase, try again for {shown}: ");
    }
    eprintln!("capo: {TRIES} wrong passphrases for {shown}; hosts that need it will fail");
    cache.give_up(path, GiveUp::WrongPassphrase { tries: TRIES });
    Ok(())
}

/// Asks on the terminal without echo, for a key file's passphrase.
fn read_hidden(prompt: &str) -> Result<Zeroizing<String>, Error> {
    match super::prompt::read_hidden(prompt) {
        Ok(super::prompt::Answer::Text(text)) => Ok(text),
        Ok(super::prompt::Answer::Interrupted) => Err(Error::PassphraseInterrupted),
        Err(e) => Err(Error::PassphraseRead(e)),
    }
}
