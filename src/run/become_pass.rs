//! `--ask-become-pass`: the sudo password, asked once per run on the terminal before any host
//! is contacted, without echo, and handed to the engine (which only ever writes it to sudo's
//! stdin when sudo asks for it). Read as key passphrases are ([`super::prompt`]): Ctrl-C at
//! the prompt ends the command cleanly with the terminal restored.

use std::io::IsTerminal;

use capo_engine::BecomePassword;
use capo_inventory::{Become, Host};

use crate::error::Error;

/// What the prompt says.
const PROMPT: &str = "capo: sudo password (become): ";

/// The run's sudo password when `ask` (`--ask-become-pass`), read from the terminal without
/// echo; `None` otherwise. Without a terminal there is nobody to ask: a usage error rather
/// than a run whose every sudo host fails. When none of `hosts` uses `become`, nothing would
/// ever be answered with it: not asked, and a note says so.
pub fn ask(ask: bool, hosts: &[Host]) -> Result<Option<BecomePassword>, Error> {
    if !ask {
        return Ok(None);
    }
    if !hosts
        .iter()
        .any(|h| h.settings.become_method == Become::Sudo)
    {
        eprintln!("capo: --ask-become-pass: no selected host uses become; not asking");
        return Ok(None);
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::BecomePassWithoutTerminal);
    }
    match super::prompt::read_hidden(PROMPT).map_err(Error::BecomePassRead)? {
        // Moved out, not copied: no copy of it is left behind that nobody zeroes.
        super::prompt::Answer::Text(mut password) => {
            Ok(Some(BecomePassword::new(std::mem::take(&mut *password))))
        }
        super::prompt::Answer::Interrupted => Err(Error::BecomePassInterrupted),
    }
}
