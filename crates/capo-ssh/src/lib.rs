//! SSH transport for capo: connect to a host with public-key auth (ssh-agent identities
//! first, then key files, as OpenSSH) and
//! OpenSSH-compatible host key checking, then run commands and stream their
//! output. Built on russh; no OpenSSH client processes are involved.
//!
//! ```no_run
//! # async fn demo() -> Result<(), capo_ssh::SshError> {
//! use capo_ssh::{connect, ConnectConfig, ExecEvent};
//! let session = connect(&ConnectConfig::new("web1.example.org", 22, "root")).await?;
//! let mut exec = session.exec("puppet --version").await?;
//! while let Some(event) = exec.next().await {
//!     if let ExecEvent::Exit(status) = event {
//!         println!("{status:?}");
//!     }
//! }
//! session.close().await;
//! # Ok(()) }
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

mod agent;
mod cache;
mod error;
mod exec;
mod identity;
pub mod known_hosts;
mod session;

pub use bytes::Bytes;
pub use cache::{FileCache, GiveUp};
pub use error::{
    AgentAttempt, AgentOutcome, ErrorKind, IdentityAttempt, Phase, SkipReason, SshError,
};
pub use exec::{Exec, ExecEvent, ExitStatus};
pub use session::{
    connect, connect_via, ConnectConfig, HostKeyPolicy, HostKeySeen, HostKeyTrust, LoginIdentity,
    Opened, Session,
};
