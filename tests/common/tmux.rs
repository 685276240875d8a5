//! A tmux server of a test's own, to run capo under a real pseudo-terminal.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A tmux server of our own (its own socket), killed on drop, also when the test panics.
pub struct Tmux {
    socket: PathBuf,
    session: String,
}

impl Tmux {
    /// Starts `command` (run by the shell) in a detached 120x30 session.
    pub fn start(command: &str) -> Tmux {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let id = format!("capo-test-{}-{nanos}", std::process::id());
        // a socket of our own, not under /tmp/tmux-UID, so that drop can remove it
        let tmux = Tmux {
            socket: std::env::temp_dir().join(format!("{id}.tmux")),
            session: id,
        };
        let out = tmux
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                &tmux.session,
                "-x",
                "120",
                "-y",
                "30",
            ])
            .arg(command)
            .output()
            .expect("run tmux (is it installed?)");
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.socket).stdin(Stdio::null());
        cmd
    }

    /// The visible pane, escape sequences left out.
    pub fn capture(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("tmux capture-pane");
        assert!(out.status.success(), "tmux capture-pane failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` and Enter.
    pub fn type_line(&self, text: &str) {
        let status = self
            .cmd()
            .args(["send-keys", "-t", &self.session, "-l", text])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
        let status = self
            .cmd()
            .args(["send-keys", "-t", &self.session, "Enter"])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    /// Sends one key by its tmux name, e.g. `C-c`.
    pub fn send_key(&self, key: &str) {
        let status = self
            .cmd()
            .args(["send-keys", "-t", &self.session, key])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    /// Polls the pane until `pred` holds; panics with the pane after `limit`.
    pub fn wait_for(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let pane = self.capture();
            if pred(&pane) {
                return pane;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {limit:?}; pane:\n{pane}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
        let _ = std::fs::remove_file(&self.socket);
    }
}

pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
