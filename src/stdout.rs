//! Writing what a command prints on stdout. A reader that stopped reading (`capo hosts |
//! head`) is not an error: what it wanted it got. Rust's `print!` would panic there instead.

use std::io::Write;

/// Writes `text` to stdout and flushes it; a closed pipe counts as written.
pub fn write(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
