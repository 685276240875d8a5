//! A real OpenSSH `ssh-agent` of a test's own, killed on drop, and `ssh-add`/`ssh-keygen`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `ssh-agent -D -a SOCK`, a child of the test process.
pub struct Agent {
    /// The agent's socket (what `SSH_AUTH_SOCK` names).
    pub sock: PathBuf,
    child: Child,
}

impl Agent {
    /// Starts an agent listening on `sock`, with `env` added to its environment (e.g.
    /// `SSH_ASKPASS` for confirm keys).
    pub fn start(sock: &Path, env: &[(&str, &str)]) -> Agent {
        let _ = std::fs::remove_file(sock);
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(sock)
            .envs(env.iter().copied())
            .env_remove("DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh-agent (is openssh-client installed?)");
        let agent = Agent {
            sock: sock.to_path_buf(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "ssh-agent made no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    /// `ssh-add ARGS...` against this agent; panics unless it succeeds.
    pub fn add(&self, args: &[&str]) {
        let out = Command::new("ssh-add")
            .args(args)
            .env("SSH_AUTH_SOCK", &self.sock)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh-add");
        assert!(
            out.status.success(),
            "ssh-add {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The public keys the agent lists (`ssh-add -L`), one line each.
    pub fn list(&self) -> Vec<String> {
        let out = Command::new("ssh-add")
            .arg("-L")
            .env("SSH_AUTH_SOCK", &self.sock)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh-add -L");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.sock);
    }
}

/// A new ed25519 key pair at `path` (and `path.pub`) protected by `passphrase` ("" for none).
pub fn keygen(path: &Path, passphrase: &str, comment: &str) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-C", comment, "-N", passphrase, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A copy of the key file `from` at `to` protected by `passphrase` (`ssh-keygen -p`), mode 600,
/// with its `.pub` left out so that only the key file itself says which key it is.
pub fn encrypted_copy(from: &Path, to: &Path, passphrase: &str) {
    std::fs::copy(from, to).expect("copy key");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", passphrase, "-f"])
        .arg(to)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen -p");
    assert!(
        out.status.success(),
        "ssh-keygen -p: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
