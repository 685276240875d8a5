//! Quoting for POSIX `sh`, for showing commands as a person would type them. The one copy
//! lives in `capo-scripts`, beside the command line it quotes for.

pub use capo_scripts::{join, quote};
