//! The capo inventory: which hosts to roll Puppet out to, in what order, and
//! how to reach each of them.
//!
//! An inventory is a TOML file with a `[defaults]` table, `[groups.NAME]`
//! tables listing hosts (with ranges such as `web[01-20]`), and
//! `[hosts.NAME]` tables for per-host settings. `inventory.example.toml` at
//! the repository root documents every key.
//!
//! ```
//! use std::path::Path;
//! use capo_inventory::Inventory;
//!
//! let inv = Inventory::parse(
//!     r#"
//!     [defaults]
//!     identity_files = ["/keys/deploy"]
//!     known_hosts = "/keys/known_hosts"
//!
//!     [groups.web]
//!     hosts = ["web[01-03].example.com"]
//!     user = "deploy"
//!     "#,
//!     Path::new("inventory.toml"),
//! )?;
//! let hosts = inv.select(Some("web,!web02.example.com"))?;
//! assert_eq!(hosts.len(), 2);
//! assert_eq!(hosts[0].settings.user, "deploy");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod choice;
pub mod duration;
mod error;
pub mod fold;
mod model;
mod parse;
pub mod range;
mod select;
mod settings;
pub mod shard;
mod ssh_config;
mod suggest;
#[cfg(test)]
mod tests;

pub use duration::DurationError;
pub use error::{ErrorKind, InventoryError};
pub use model::{
    Become, Group, Host, HostKeyCheck, IdentityAgent, Inventory, JumpHost, ParseBecomeError,
    ParseHostKeyCheckError, ParseJumpHostError, ParsePuppetfileError, Puppetfile, Settings,
};
pub use range::RangeError;
pub use select::SelectError;
pub use ssh_config::SshConfigError;
