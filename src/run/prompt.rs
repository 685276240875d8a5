//! Asking on the terminal without echo: the one way capo reads a secret (a key file's
//! passphrase, the sudo password of `--ask-become-pass`). The prompt goes to stderr and the
//! answer comes from the terminal on stdin; the answer lives only in a buffer that is zeroed
//! when dropped.

use std::io::{self, Write};

use zeroize::Zeroizing;

/// What the person at the terminal answered.
pub enum Answer {
    /// The line, without its end.
    Text(Zeroizing<String>),
    /// Ctrl-C: they want to stop.
    Interrupted,
}

/// Prints `prompt` on stderr and reads a line from the terminal on stdin without echo.
///
/// Echo goes off before the prompt is shown, as OpenSSH's `readpassphrase` does: switching
/// the terminal discards what was typed before (`TCSAFLUSH`), so an answer typed as soon as
/// the prompt appears must find echo already off, or it would be shown and then lost.
pub fn read_hidden(prompt: &str) -> io::Result<Answer> {
    let mut err = io::stderr();
    let line = tty::read_line_hidden(libc::STDIN_FILENO, || {
        let _ = write!(err, "{prompt}");
        let _ = err.flush();
    });
    let _ = writeln!(err);
    Ok(match line? {
        tty::Line::Text(bytes) => {
            Answer::Text(Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()))
        }
        tty::Line::Interrupted => Answer::Interrupted,
    })
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

    /// Turns echo off, calls `prompt`, and reads a line.
    pub fn read_line_hidden(fd: RawFd, prompt: impl FnOnce()) -> io::Result<Line> {
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
        prompt();
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
