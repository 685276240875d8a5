//! Error type. Every message is one line a person can act on, and never
//! contains key material.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use capo_inventory::duration::format as format_duration;

use crate::known_hosts::CertProblem;

/// Coarse classification of an [`SshError`], for retry and reporting decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The host could not be reached or the SSH handshake failed (including
    /// timeouts while connecting, exchanging keys or authenticating).
    Connect,
    /// The host key was unknown, changed, revoked, or could not be recorded.
    HostKey,
    /// The server refused every identity, or none was usable.
    Auth,
    /// Opening the exec channel failed, or the connection was lost mid-command.
    Channel,
    /// A jump host would not forward to the target (e.g. `AllowTcpForwarding no`), or its
    /// connection ended.
    Jump,
}

/// Which part of [`crate::connect`] was under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// DNS resolution and TCP connect.
    Connecting,
    /// SSH version exchange, key exchange and host key check.
    KeyExchange,
    /// Public-key authentication.
    Authenticating,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connecting => "connecting",
            Phase::KeyExchange => "exchanging keys",
            Phase::Authenticating => "authenticating",
        })
    }
}

/// Why an identity file was not offered to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The file does not exist.
    Missing,
    /// The key is protected by a passphrase and none was given: there was no terminal to
    /// ask on (load the key into ssh-agent instead).
    Encrypted,
    /// Every passphrase tried for it was wrong.
    WrongPassphrase {
        /// How many were tried.
        tries: u32,
    },
    /// An empty passphrase was given at the prompt: the key is skipped.
    NoPassphrase,
    /// The file exists but cannot be read.
    Unreadable(String),
    /// The file is not a private key russh understands.
    Invalid(String),
    /// The file is readable or writable by group or others (any of `0o077`
    /// set), which OpenSSH refuses too: such a key may already be copied.
    TooOpen {
        /// The file's permission bits (`mode & 0o777`), e.g. `0o644`.
        mode: u32,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Missing => f.write_str("missing"),
            SkipReason::Encrypted => {
                f.write_str("encrypted, and there is no terminal to ask for its passphrase")
            }
            SkipReason::WrongPassphrase { tries } => write!(
                f,
                "encrypted, and the passphrase was wrong {}",
                match tries {
                    1 => "once".to_string(),
                    n => format!("{n} times"),
                }
            ),
            SkipReason::NoPassphrase => f.write_str("encrypted, and no passphrase was given"),
            SkipReason::Unreadable(e) => write!(f, "unreadable: {e}"),
            SkipReason::Invalid(e) => write!(f, "invalid: {e}"),
            // OpenSSH's wording, so people recognise it (and know `chmod 600`).
            SkipReason::TooOpen { mode } => write!(
                f,
                "permissions {:04o} are too open: private key files must not be accessible by others",
                mode & 0o777
            ),
        }
    }
}

/// One entry of the identity list in auth errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityAttempt {
    /// The identity file as configured.
    pub path: PathBuf,
    /// `None` if the key was offered to (and refused by) the server.
    pub skipped: Option<SkipReason>,
}

/// What became of the ssh-agent's identities in an authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAttempt {
    /// The agent's socket.
    pub socket: PathBuf,
    /// What happened.
    pub outcome: AgentOutcome,
}

/// See [`AgentAttempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentOutcome {
    /// The agent could not be asked for its identities (not running, socket missing, ...);
    /// it was passed over, as OpenSSH does.
    Unavailable(String),
    /// Its identities (those `identities_only` let through) were offered: `keys` in all,
    /// `not_signed` of them accepted by the server but not signed by the agent (e.g. a
    /// confirm key denied).
    Offered {
        /// Identities offered.
        keys: usize,
        /// Of those, how many the agent refused to sign with.
        not_signed: usize,
    },
}

impl fmt::Display for AgentAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let socket = self.socket.display();
        match &self.outcome {
            AgentOutcome::Unavailable(e) => write!(f, "agent {socket} (unavailable: {e})"),
            AgentOutcome::Offered { keys: 0, .. } => write!(f, "agent {socket} (no keys to offer)"),
            AgentOutcome::Offered { keys, not_signed } => {
                write!(f, "agent {socket} ({keys} key{}", plural(*keys))?;
                if *not_signed > 0 {
                    write!(f, ", {not_signed} it refused to sign with")?;
                }
                f.write_str(")")
            }
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Everything that can go wrong talking to a host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SshError {
    /// TCP connect got RST.
    #[error("connection refused ({addr})")]
    Refused {
        /// `ip:port` that refused.
        addr: String,
    },
    /// The host name did not resolve.
    #[error("DNS failure: cannot resolve {host}: {detail}")]
    Resolve {
        /// Name as configured.
        host: String,
        /// Resolver message.
        detail: String,
    },
    /// Any other TCP connect failure (no route, network unreachable, ...).
    #[error("cannot connect to {addr}: {detail}")]
    Unreachable {
        /// `ip:port` tried last.
        addr: String,
        /// OS message.
        detail: String,
    },
    /// The server hung up before we were authenticated (e.g. sshd's
    /// `MaxStartups` dropping excess connections).
    #[error("connection closed by remote during {}", closed_during(*.phase))]
    Closed {
        /// Where we were when it happened.
        phase: Phase,
    },
    /// `connect_timeout` ran out.
    #[error("timed out after {} while {phase}", format_duration(*.after))]
    ConnectTimeout {
        /// The configured `connect_timeout`.
        after: Duration,
        /// Where we were when time ran out.
        phase: Phase,
    },
    /// SSH protocol failure during the handshake (no common algorithm, bad
    /// signature, garbage instead of an SSH banner, ...).
    #[error("SSH handshake failed while {phase}: {detail}")]
    Protocol {
        /// Where we were.
        phase: Phase,
        /// russh's description.
        detail: String,
    },

    /// Strict checking and the host is not in known_hosts.
    #[error(
        "host key for {host} is not in {} ({key_type} {fingerprint}); add it or set host_key_check = \"accept-new\"",
        .known_hosts.display()
    )]
    HostKeyUnknown {
        /// `host` or `[host]:port`.
        host: String,
        /// The known_hosts file consulted.
        known_hosts: PathBuf,
        /// e.g. `ssh-ed25519`.
        key_type: String,
        /// `SHA256:...` of the presented key.
        fingerprint: String,
    },
    /// The host presented a key different from every key on record.
    #[error(
        "HOST KEY CHANGED for {host}: presented {key_type} {fingerprint}, expected {}; possible man-in-the-middle, host not touched",
        fmt_expected(.expected)
    )]
    HostKeyChanged {
        /// `host` or `[host]:port`.
        host: String,
        /// Type of the presented key.
        key_type: String,
        /// `SHA256:...` of the presented key.
        fingerprint: String,
        /// `(fingerprint, file, line)` of each key on record for the host.
        expected: Vec<(String, PathBuf, usize)>,
    },
    /// The presented key is `@revoked`.
    #[error(
        "host key for {host} ({key_type} {fingerprint}) is marked @revoked in {}:{line}",
        .known_hosts.display()
    )]
    HostKeyRevoked {
        /// `host` or `[host]:port`.
        host: String,
        /// Type of the presented key.
        key_type: String,
        /// `SHA256:...` of the presented key.
        fingerprint: String,
        /// File holding the `@revoked` line.
        known_hosts: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// The server presented a host certificate that known_hosts does not vouch for (and
    /// no plain line lists its key).
    #[error("{}", fmt_cert(.host, .known_hosts, .problem))]
    HostCertificate {
        /// `host` or `[host]:port`.
        host: String,
        /// The known_hosts file consulted.
        known_hosts: PathBuf,
        /// What is wrong with it (boxed: it is large and rare).
        problem: Box<CertProblem>,
    },
    /// known_hosts exists but could not be read.
    #[error("cannot read known_hosts {}: {detail}", .path.display())]
    KnownHostsRead {
        /// The file.
        path: PathBuf,
        /// OS message.
        detail: String,
    },
    /// accept-new could not write the new key; refusing to trust a key we
    /// cannot pin.
    #[error("cannot record new host key for {host} in {}: {detail}", .path.display())]
    KnownHostsWrite {
        /// `host` or `[host]:port`.
        host: String,
        /// The file.
        path: PathBuf,
        /// OS message.
        detail: String,
    },

    /// Every usable key was refused.
    #[error("authentication refused for user {user} (tried: {})", fmt_identities(.agent, .tried))]
    AuthRefused {
        /// Remote user.
        user: String,
        /// The agent's identities, when an agent is configured.
        agent: Option<AgentAttempt>,
        /// Each configured identity file and what became of it.
        tried: Vec<IdentityAttempt>,
    },
    /// No identity file could be loaded and the agent had none to offer, so nothing was
    /// offered.
    #[error("no usable identity file (tried: {})", fmt_identities(.agent, .tried))]
    NoIdentity {
        /// The agent, when one is configured.
        agent: Option<AgentAttempt>,
        /// Each configured identity file and why it was skipped.
        tried: Vec<IdentityAttempt>,
    },
    /// Nothing could be offered but this encrypted key file, and there was no terminal to
    /// ask for its passphrase.
    #[error(
        "key file {} is encrypted and there is no terminal to ask for its passphrase: load it into ssh-agent (ssh-add {})",
        .path.display(), .path.display()
    )]
    EncryptedKey {
        /// The key file.
        path: PathBuf,
    },
    /// The server hung up while identities were being offered: sshd does so after
    /// `MaxAuthTries` refused ones ("Too many authentication failures").
    #[error(
        "connection closed by remote during authentication after {refused} refused identit{}{}{}",
        if *.refused == 1 { "y" } else { "ies" },
        fmt_reason(.reason),
        if *.agent_keys { "; the agent offers keys first: set identities_only = true to offer only identity_files' keys" } else { "" }
    )]
    AuthClosed {
        /// Identities the server refused before it hung up.
        refused: usize,
        /// What the server said, if anything.
        reason: Option<String>,
        /// Whether agent keys were offered without `identities_only`: the likely cause.
        agent_keys: bool,
    },

    /// A jump host did not open the connection to the next hop.
    #[error("jump host {jump} cannot reach {to}: {detail}")]
    Forward {
        /// The jump host, `user@host` or `user@[host]:port`.
        jump: String,
        /// Where it was asked to connect, `host` or `[host]:port`.
        to: String,
        /// The jump host refuses forwarding altogether (rather than failing this one).
        prohibited: bool,
        /// What it said.
        detail: String,
    },
    /// The jump host's connection ended before the next hop's channel opened.
    #[error("jump host {jump}: {reason}")]
    JumpLost {
        /// The jump host, `user@host` or `user@[host]:port`.
        jump: String,
        /// Why its connection ended.
        reason: String,
    },

    /// The server would not open a session channel.
    #[error("cannot open session channel: {detail}")]
    ChannelOpen {
        /// russh's description.
        detail: String,
    },
    /// The server answered the exec request with a failure.
    #[error("server refused to run the command (exec request failed)")]
    ExecRefused,
    /// The server did not confirm the channel or exec request in time.
    #[error("timed out after {} waiting for the server to start the command", format_duration(*.after))]
    ChannelTimeout {
        /// The configured `connect_timeout`, reused for this wait.
        after: Duration,
    },
    /// The connection went away while a command was running (or starting).
    #[error("connection lost while running command{}", fmt_reason(.reason))]
    ConnectionLost {
        /// e.g. `keepalive timeout`, if known.
        reason: Option<String>,
    },
    /// Input could not be sent: the command's channel has already closed
    /// (the command ended), or its input was closed before.
    #[error("cannot send input to the command: {detail}")]
    InputClosed {
        /// Which of the two.
        detail: String,
    },
    /// The channel closed without the server reporting how the command ended.
    #[error("command ended without an exit status")]
    NoExitStatus,
}

impl SshError {
    /// Coarse category, see [`ErrorKind`].
    pub fn kind(&self) -> ErrorKind {
        use SshError::*;
        match self {
            Refused { .. }
            | Resolve { .. }
            | Unreachable { .. }
            | Closed { .. }
            | ConnectTimeout { .. }
            | Protocol { .. } => ErrorKind::Connect,
            HostKeyUnknown { .. }
            | HostKeyChanged { .. }
            | HostKeyRevoked { .. }
            | HostCertificate { .. }
            | KnownHostsRead { .. }
            | KnownHostsWrite { .. } => ErrorKind::HostKey,
            AuthRefused { .. } | NoIdentity { .. } | EncryptedKey { .. } | AuthClosed { .. } => {
                ErrorKind::Auth
            }
            // A target the jump host cannot reach is the target's failure to be reached.
            Forward {
                prohibited: false, ..
            } => ErrorKind::Connect,
            Forward {
                prohibited: true, ..
            }
            | JumpLost { .. } => ErrorKind::Jump,
            ChannelOpen { .. }
            | ExecRefused
            | ChannelTimeout { .. }
            | ConnectionLost { .. }
            | InputClosed { .. }
            | NoExitStatus => ErrorKind::Channel,
        }
    }
}

fn closed_during(phase: Phase) -> &'static str {
    match phase {
        Phase::Connecting | Phase::KeyExchange => "handshake",
        Phase::Authenticating => "authentication",
    }
}

fn fmt_reason(reason: &Option<String>) -> String {
    match reason {
        Some(r) => format!(" ({r})"),
        None => String::new(),
    }
}

fn fmt_cert(host: &str, known_hosts: &std::path::Path, problem: &CertProblem) -> String {
    let mut msg = format!("host certificate for {host} refused: {problem}");
    if let CertProblem::UnknownCa { .. } = problem {
        msg.push_str(&format!(
            "; no @cert-authority line for {host} in {} lists it",
            known_hosts.display()
        ));
    }
    msg
}

fn fmt_expected(expected: &[(String, PathBuf, usize)]) -> String {
    expected
        .iter()
        .map(|(fp, path, line)| format!("{fp} ({}:{line})", path.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt_identities(agent: &Option<AgentAttempt>, tried: &[IdentityAttempt]) -> String {
    let files = tried.iter().map(|a| {
        let path = a.path.display();
        match &a.skipped {
            None => format!("{path}"),
            Some(reason @ SkipReason::Encrypted) => {
                format!("{path} ({reason}: load it into ssh-agent (ssh-add {path}))")
            }
            Some(reason) => format!("{path} ({reason})"),
        }
    });
    let all: Vec<String> = agent.iter().map(|a| a.to_string()).chain(files).collect();
    if all.is_empty() {
        return "no identity files configured".to_string();
    }
    all.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_written_as_the_inventory_writes_them() {
        // What a message says can be pasted back into `connect_timeout`.
        let e = SshError::ChannelTimeout {
            after: Duration::from_millis(1500),
        };
        assert_eq!(
            e.to_string(),
            "timed out after 1s500ms waiting for the server to start the command"
        );
    }

    #[test]
    fn messages() {
        let e = SshError::ConnectTimeout {
            after: Duration::from_secs(5),
            phase: Phase::KeyExchange,
        };
        assert_eq!(e.to_string(), "timed out after 5s while exchanging keys");
        assert_eq!(e.kind(), ErrorKind::Connect);

        let e = SshError::Refused {
            addr: "127.0.0.1:2222".into(),
        };
        assert_eq!(e.to_string(), "connection refused (127.0.0.1:2222)");

        let e = SshError::Closed {
            phase: Phase::KeyExchange,
        };
        assert_eq!(
            e.to_string(),
            "connection closed by remote during handshake"
        );

        let e = SshError::HostKeyUnknown {
            host: "[127.0.0.1]:2222".into(),
            known_hosts: "/kh".into(),
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:abc".into(),
        };
        assert_eq!(
            e.to_string(),
            "host key for [127.0.0.1]:2222 is not in /kh (ssh-ed25519 SHA256:abc); \
             add it or set host_key_check = \"accept-new\""
        );
        assert_eq!(e.kind(), ErrorKind::HostKey);

        let e = SshError::HostKeyChanged {
            host: "[127.0.0.1]:2222".into(),
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:xxx".into(),
            expected: vec![("SHA256:yyy".into(), "/kh".into(), 3)],
        };
        assert_eq!(
            e.to_string(),
            "HOST KEY CHANGED for [127.0.0.1]:2222: presented ssh-ed25519 SHA256:xxx, \
             expected SHA256:yyy (/kh:3); possible man-in-the-middle, host not touched"
        );

        let e = SshError::HostKeyRevoked {
            host: "h".into(),
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:xxx".into(),
            known_hosts: "/kh".into(),
            line: 7,
        };
        assert_eq!(
            e.to_string(),
            "host key for h (ssh-ed25519 SHA256:xxx) is marked @revoked in /kh:7"
        );

        let e = SshError::HostCertificate {
            host: "[127.0.0.1]:2222".into(),
            known_hosts: "/kh".into(),
            problem: Box::new(CertProblem::UnknownCa {
                ca: crate::known_hosts::KeyDesc {
                    key_type: "ssh-ed25519".into(),
                    fingerprint: "SHA256:ca".into(),
                },
            }),
        };
        assert_eq!(
            e.to_string(),
            "host certificate for [127.0.0.1]:2222 refused: signed by an unknown CA \
             (ssh-ed25519 SHA256:ca); no @cert-authority line for [127.0.0.1]:2222 in /kh lists it"
        );
        assert_eq!(e.kind(), ErrorKind::HostKey);
        let e = SshError::HostCertificate {
            host: "h".into(),
            known_hosts: "/kh".into(),
            problem: Box::new(CertProblem::NoPrincipals),
        };
        assert_eq!(
            e.to_string(),
            "host certificate for h refused: it lists no principals"
        );

        let e = SshError::AuthRefused {
            user: "root".into(),
            agent: None,
            tried: vec![
                IdentityAttempt {
                    path: "/k/id_ed25519".into(),
                    skipped: None,
                },
                IdentityAttempt {
                    path: "/k/id_rsa".into(),
                    skipped: Some(SkipReason::Missing),
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "authentication refused for user root (tried: /k/id_ed25519, /k/id_rsa (missing))"
        );
        assert_eq!(e.kind(), ErrorKind::Auth);

        let e = SshError::NoIdentity {
            agent: None,
            tried: vec![
                IdentityAttempt {
                    path: "a".into(),
                    skipped: Some(SkipReason::Missing),
                },
                IdentityAttempt {
                    path: "b".into(),
                    skipped: Some(SkipReason::Encrypted),
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "no usable identity file (tried: a (missing), b (encrypted, and there is no terminal \
             to ask for its passphrase: load it into ssh-agent (ssh-add b)))"
        );

        let e = SshError::NoIdentity {
            agent: None,
            tried: vec![
                IdentityAttempt {
                    path: "/k/id_ed25519".into(),
                    skipped: Some(SkipReason::TooOpen { mode: 0o644 }),
                },
                IdentityAttempt {
                    path: "/k/id_rsa".into(),
                    skipped: Some(SkipReason::Invalid("unsupported key type".into())),
                },
                IdentityAttempt {
                    path: "/k/id_ecdsa".into(),
                    skipped: Some(SkipReason::Unreadable("Permission denied".into())),
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "no usable identity file (tried: /k/id_ed25519 (permissions 0644 are too open: \
             private key files must not be accessible by others), \
             /k/id_rsa (invalid: unsupported key type), /k/id_ecdsa (unreadable: Permission denied))"
        );
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert_eq!(
            SkipReason::TooOpen { mode: 0o4 }.to_string(),
            "permissions 0004 are too open: private key files must not be accessible by others"
        );

        let e = SshError::EncryptedKey {
            path: "/k/id_ed25519".into(),
        };
        assert_eq!(
            e.to_string(),
            "key file /k/id_ed25519 is encrypted and there is no terminal to ask for its \
             passphrase: load it into ssh-agent (ssh-add /k/id_ed25519)"
        );
        assert_eq!(e.kind(), ErrorKind::Auth);

        let agent = |outcome| {
            Some(AgentAttempt {
                socket: "/run/agent".into(),
                outcome,
            })
        };
        let e = SshError::AuthRefused {
            user: "root".into(),
            agent: agent(AgentOutcome::Offered {
                keys: 2,
                not_signed: 1,
            }),
            tried: vec![IdentityAttempt {
                path: "/k/a".into(),
                skipped: Some(SkipReason::WrongPassphrase { tries: 3 }),
            }],
        };
        assert_eq!(
            e.to_string(),
            "authentication refused for user root (tried: agent /run/agent (2 keys, 1 it \
             refused to sign with), /k/a (encrypted, and the passphrase was wrong 3 times))"
        );
        let e = SshError::NoIdentity {
            agent: agent(AgentOutcome::Unavailable("Connection refused".into())),
            tried: vec![IdentityAttempt {
                path: "/k/a".into(),
                skipped: Some(SkipReason::NoPassphrase),
            }],
        };
        assert_eq!(
            e.to_string(),
            "no usable identity file (tried: agent /run/agent (unavailable: Connection refused), \
             /k/a (encrypted, and no passphrase was given))"
        );
        let e = SshError::NoIdentity {
            agent: agent(AgentOutcome::Offered {
                keys: 0,
                not_signed: 0,
            }),
            tried: vec![],
        };
        assert_eq!(
            e.to_string(),
            "no usable identity file (tried: agent /run/agent (no keys to offer))"
        );

        let e = SshError::AuthClosed {
            refused: 6,
            reason: Some("server disconnected: Too many authentication failures".into()),
            agent_keys: true,
        };
        assert_eq!(
            e.to_string(),
            "connection closed by remote during authentication after 6 refused identities \
             (server disconnected: Too many authentication failures); the agent offers keys \
             first: set identities_only = true to offer only identity_files' keys"
        );
        assert_eq!(e.kind(), ErrorKind::Auth);
        let e = SshError::Forward {
            jump: "root@[10.0.0.2]:2222".into(),
            to: "[127.0.0.1]:2200".into(),
            prohibited: true,
            detail: "forwarding refused (AllowTcpForwarding?)".into(),
        };
        assert_eq!(
            e.to_string(),
            "jump host root@[10.0.0.2]:2222 cannot reach [127.0.0.1]:2200: forwarding refused (AllowTcpForwarding?)"
        );
        assert_eq!(e.kind(), ErrorKind::Jump);
        let e = SshError::Forward {
            jump: "root@b".into(),
            to: "t".into(),
            prohibited: false,
            detail: "connect failed".into(),
        };
        assert_eq!(
            e.kind(),
            ErrorKind::Connect,
            "the target is down, not the jump host"
        );
        let e = SshError::JumpLost {
            jump: "root@b".into(),
            reason: "connection closed by remote".into(),
        };
        assert_eq!(
            e.to_string(),
            "jump host root@b: connection closed by remote"
        );
        assert_eq!(e.kind(), ErrorKind::Jump);

        let e = SshError::ConnectionLost {
            reason: Some("keepalive timeout".into()),
        };
        assert_eq!(
            e.to_string(),
            "connection lost while running command (keepalive timeout)"
        );
        assert_eq!(e.kind(), ErrorKind::Channel);
    }
}
