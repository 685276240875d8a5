//! Passphrases for encrypted key files: asked on the terminal once per key file for the whole
//! run, one at a time, before any host is contacted and before the live display starts (so
//! nothing redraws over the prompt), and only for keys a host may need: not for one the
//! host's ssh-agent holds. Without a terminal nothing is asked; hosts with nothing else to
//! offer say to load the key into ssh-agent.
//!
//! The passphrase is read from the terminal with echo off and lives only in a buffer that is
//! zeroed when dropped; it never reaches argv, the environment, a log, the report or the
//! events file. The decrypted key stays in this process's memory.

use std::io::{IsTerminal, Write};
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

/// Prints `prompt` on stderr and reads a line from the terminal on stdin without echo.
fn read_hidden(prompt: &str) -> Result<Zeroizing<String>, Error> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{prompt}");
    let _ = err.flush();
    let line = tty::read_line_hidden(libc::STDIN_FILENO);
    let _ = writeln!(err);
    match line {
        Ok(tty::Line::Text(bytes)) => {
            Ok(Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()))
        }
        Ok(tty::Line::Interrupted) => Err(Error::PassphraseInterrupted),
        Err(e) => Err(Error::PassphraseRead(e)),
    }
}

/// Reading a line from the terminal with termios directly rather than a crate such as
/// rpassword: those leave `ISIG` on, so a Ctrl-C at the prompt kills capo by signal before
/// they restore echo, leaving the person's terminal without echo. Here `ISIG` and `ICANON`
/// are off too while reading, Ctrl-C is read as a byte (and ends the command cleanly), and
/// the terminal's settings are restored on every way out.
mod tty {
    use std::io;
    use std::os::fd::RawFd;

    use zeroize::Zeroizing;

    /// Longest passphrase kept; the rest of a longer line is dropped.
    const MAX: usize = 4096;

    /// What was read.
    pub enum Line {
        /// The line, without its end (the caller zeroes it).
        Text(Zeroizing<Vec<u8>>),
        /// Ctrl-C.
        Interrupted,
    }

    /// Restores the saved settings when dropped.
    struct Restore {
        fd: RawFd,
        saved: libc::termios,
    }

    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: `saved` came from tcgetattr on this same descriptor.
            unsafe {
                libc::tcsetattr(self.fd, libc::TCSAFLUSH, &self.saved);
            }
        }
    }

    pub fn read_line_hidden(fd: RawFd) -> io::Result<Line> {
        // SAFETY: plain termios calls on a descriptor we do not own or close; the struct is
        // fully written by tcgetattr before it is read.
        let saved = unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return Err(io::Error::last_os_error());
            }
            t
        };
        let restore = Restore { fd, saved };
        let mut raw = saved;
        raw.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::ISIG | libc::IEXTEN);
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        // SAFETY: as above.
        if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &raw) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // Never grown (a reallocation would leave a copy behind that nobody zeroes).
        let mut line = Zeroizing::new(Vec::with_capacity(MAX));
        let result = loop {
            let mut byte = 0u8;
            // SAFETY: reads at most one byte into a live local.
            let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break Err(e);
            }
            match (n, byte) {
                // End of input, Enter (CR or LF), or Ctrl-D: the line as it is.
                (0, _) | (_, b'\r' | b'\n' | 0x04) => break Ok(Line::Text(line)),
                (_, 0x03) => break Ok(Line::Interrupted),
                // Backspace / DEL, Ctrl-U: the editing a canonical terminal would do.
                (_, 0x7f | 0x08) => {
                    line.pop();
                }
                (_, 0x15) => line.clear(),
                (_, b) if line.len() < MAX => line.push(b),
                _ => {}
            }
        };
        drop(restore);
        result
    }
}
